#!/usr/bin/env bash
# Benchmark: `teams-archiver export` to RSMF and JSONL, and its memory at two archive sizes.
#
#   scripts/bench-export.sh [SMALL] [BIG] [BUDGET_MIB]     defaults: 250000 1000000 32
#
# 1. Generates SMALL and BIG getAllMessages messages with ../shared/bench/gen_chat_pages.py
#    (same seed, same bytes; 2,000 chats over 90 days) and archives each with the release
#    build of `ingest` (one custodian), under target/bench-export/.
# 2. Exports each archive to RSMF (one .rsmf per conversation and day) and to JSONL, with
#    the default sorting memory and with --memory-budget-mib BUDGET_MIB, measured by
#    scripts/measure.py (wall time, peak resident memory).
# 3. Prints messages per second and peak memory per run. Memory is bounded: with the same
#    budget, the peak at BIG is about the peak at SMALL (days are sorted out of core).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
small=${1:-250000}
big=${2:-1000000}
budget=${3:-32}
shared=${TEAMS_ARCHIVER_SHARED:-$root/../shared}
gen=$shared/bench/gen_chat_pages.py
[ -f "$gen" ] || { echo "missing $gen (set TEAMS_ARCHIVER_SHARED to the folder holding bench/)" >&2; exit 1; }
venv=${TEAMS_ARCHIVER_VENV:-$root/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
py=$venv/bin/python
work=$root/target/bench-export
mkdir -p "$work"
custodian=0b4f1cf6-54c8-4820-bbb7-2a1f4257ade5

echo "==> release build"
CARGO_TARGET_DIR=$root/target-release cargo build --release --quiet -p teams-archiver
bin=$root/target-release/release/teams-archiver

archive() { # N -> an archive of N generated messages (built once)
  local n=$1 pages=$work/pages-$1 out=$work/archive-$1
  if [ ! -f "$out/.done" ]; then
    rm -rf "$pages" "$out"
    echo "    generating $n messages" >&2
    "$py" "$gen" --messages "$n" --out "$pages" >&2
    echo "    archiving them" >&2
    # Exit code 0: every generated item is a chat message.
    "$bin" --no-progress ingest --kind chat --custodian "$custodian" --out "$out" "$pages" >/dev/null
    rm -rf "$pages"
    touch "$out/.done"
  fi
  echo "$out"
}

field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# Exports stay until every run is measured: deleting hundreds of thousands of files right
# before the next run would slow the file system down while that run creates its own.
exports=$work/exports
if [ -d "$exports" ]; then
  echo "==> removing the exports of an earlier run"
  rm -rf "$exports"
fi
mkdir -p "$exports"
results=$work/results.tsv
: >"$results"
run() { # N ARCHIVE FORMAT BUDGET_LABEL [EXTRA ARGS...]
  local n=$1 archive=$2 format=$3 label=$4
  shift 4
  local out=$exports/$n-$format-$label
  local measured
  measured=$("$py" scripts/measure.py -- "$bin" --no-progress export --archive "$archive" --out "$out" \
    --format "$format" --include-deleted "$@")
  local files
  files=$(find "$out" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$format" "$label" "$(field "$measured" seconds)" \
    "$(field "$measured" peak_rss_mib)" "$files" >>"$results"
  tail -1 "$results" | awk -F'\t' '{printf "    %s messages, %s, budget %s: %.1f s, peak %s MiB, %s files\n", $1, $2, $3, $4, $5, $6}'
}

for n in "$small" "$big"; do
  echo "==> $n messages"
  dir=$(archive "$n")
  for format in rsmf jsonl; do
    run "$n" "$dir" "$format" default
    run "$n" "$dir" "$format" "${budget}MiB" --memory-budget-mib "$budget"
  done
done

"$py" - "$results" "$small" "$big" "$budget" <<'PY'
import csv, sys
path, small, big, budget = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = list(csv.reader(open(path), delimiter="\t"))
print("\nmessages  format  budget     seconds  messages/s  peak MiB  files")
peak = {}
for n, fmt, label, secs, rss, files in rows:
    rate = int(n) / float(secs)
    peak[(n, fmt, label)] = float(rss)
    print(f"{int(n):>8,}  {fmt:<6}  {label:<9} {float(secs):>8.1f}  {rate:>10,.0f}  {float(rss):>8.1f}  {int(files):>6,}")
print()
for fmt in ("rsmf", "jsonl"):
    for label in ("default", f"{budget}MiB"):
        a, b = peak[(small, fmt, label)], peak[(big, fmt, label)]
        print(f"{fmt} peak memory, budget {label}: {a:.0f} MiB at {int(small):,} messages, "
              f"{b:.0f} MiB at {int(big):,} ({b / a:.2f}x for {int(big) / int(small):.0f}x the messages)")
PY
echo "exports kept in $exports (removed by the next run)"
