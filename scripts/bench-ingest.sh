#!/usr/bin/env bash
# Benchmark: `teams-archiver ingest` against DuckDB on the same generated Graph pages.
#
#   scripts/bench-ingest.sh [MESSAGES] [BIG_MESSAGES]      defaults: 200000 1000000
#   RUNS=3 scripts/bench-ingest.sh                         repeat step 2-4 (a noisy machine)
#
# 1. Generates MESSAGES getAllMessages messages in 50-message pages with
#    ../shared/bench/gen_chat_pages.py (same seed, same bytes).
# 2. Archives them with the release build of `ingest` (raw_json kept, zstd Parquet).
# 3. Converts the same pages with DuckDB (../shared/bench/duckdb_convert.py: read_json,
#    COPY ... PARTITION_BY (date), zstd, 2 threads).
# 4. Prints both rates and their ratio (goal: archiver >= 4x DuckDB in messages/s).
# 5. Archives BIG_MESSAGES and prints peak memory (goal: <= 256 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
messages=${1:-200000}
big=${2:-1000000}
shared=${TEAMS_ARCHIVER_SHARED:-$root/../shared}
gen=$shared/bench/gen_chat_pages.py
duck=$shared/bench/duckdb_convert.py
[ -f "$gen" ] || { echo "missing $gen (set TEAMS_ARCHIVER_SHARED to the folder holding bench/)" >&2; exit 1; }
venv=${TEAMS_ARCHIVER_VENV:-$root/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
py=$venv/bin/python
work=$root/target/bench-ingest
mkdir -p "$work"

echo "==> release build"
CARGO_TARGET_DIR=$root/target-release cargo build --release --quiet -p teams-archiver
bin=$root/target-release/release/teams-archiver

pages() { # N -> folder of pages (generated once)
  local n=$1 dir=$work/pages-$1
  if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"
    "$py" "$gen" --messages "$n" --out "$dir" >&2
    touch "$dir/.done"
  fi
  echo "$dir"
}

field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

echo "==> $messages messages"
small=$(pages "$messages")
for run in $(seq 1 "${RUNS:-1}"); do
  [ "${RUNS:-1}" -gt 1 ] && echo "-- run $run"
  rm -rf "$work/archive" "$work/duckdb"
  ours=$("$py" scripts/measure.py -- "$bin" --no-progress ingest --kind chat --out "$work/archive" "$small")
  theirs=$("$py" scripts/measure.py -- "$py" "$duck" "$small" "$work/duckdb" 2)
  ours_s=$(field "$ours" seconds); theirs_s=$(field "$theirs" seconds)
  "$py" - "$messages" "$ours_s" "$theirs_s" "$(field "$ours" peak_rss_mib)" <<'PY'
import sys
n, ours, theirs, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
a, d = n / ours, n / theirs
print(f"teams-archiver ingest: {a:,.0f} messages/s ({ours:.2f} s, peak {rss} MiB)")
print(f"duckdb read_json+COPY: {d:,.0f} messages/s ({theirs:.2f} s)")
print(f"ratio: {a / d:.2f}x (goal >= 4x) -> {'PASS' if a / d >= 4 else 'FAIL'}")
PY
done
du -sh "$work/archive" "$work/duckdb" | sed 's/^/size: /'

if [ "$big" -gt 0 ]; then
  echo "==> $big messages (memory)"
  large=$(pages "$big")
  rm -rf "$work/archive-big"
  run=$("$py" scripts/measure.py -- "$bin" --no-progress ingest --kind chat --out "$work/archive-big" "$large")
  "$py" - "$big" "$(field "$run" seconds)" "$(field "$run" peak_rss_mib)" <<'PY'
import sys
n, s, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"teams-archiver ingest: {n:,} messages in {s:.2f} s ({n / s:,.0f}/s), peak memory {rss:.0f} MiB (goal <= 256) -> {'PASS' if rss <= 256 else 'FAIL'}")
PY
fi
