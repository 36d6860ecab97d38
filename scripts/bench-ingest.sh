#!/usr/bin/env bash
# Benchmark: `teams-archiver ingest` against DuckDB on the same generated Graph pages.
#
#   scripts/bench-ingest.sh [MESSAGES] [BIG_MESSAGES]      defaults: 200000 1000000
#   RUNS=3 scripts/bench-ingest.sh                         repeat steps 2-5 (a noisy machine)
#   BENCH_SKIP_BUILD=1 scripts/bench-ingest.sh             use the release binary as it is
#
# 1. Generates MESSAGES getAllMessages messages in 50-message pages with
#    ../shared/bench/gen_chat_pages.py (same seed, same bytes), under
#    target/bench-ingest/pages-N (shared with scripts/bench-query.sh).
# 2. Archives them with the release build of `ingest` (raw_json kept, zstd Parquet).
# 3. Converts the same pages with DuckDB, typed columns only
#    (../shared/bench/duckdb_convert.py: read_json, COPY ... PARTITION_BY (date), zstd, 2 threads).
# 4. Converts them with DuckDB keeping each message's JSON and its SHA-256
#    (../shared/bench/duckdb_lossless.py: the archiver's contract, same settings).
# 5. Prints the three rates and the ratios in messages/s (goals: archiver >= 1.0x DuckDB
#    typed-only, >= 1.5x DuckDB lossless), the bytes of the three outputs, and our archive's
#    bytes (table, _archive and _state) against the lossless conversion's (goal <= 1.0x).
# 6. Archives BIG_MESSAGES and prints peak memory (goal: <= 256 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-200000}
big=${2:-1000000}
source scripts/bench-common.sh
work=$pages_root

echo "==> $messages messages"
small=$(pages "$messages")
for run in $(seq 1 "${RUNS:-1}"); do
  [ "${RUNS:-1}" -gt 1 ] && echo "-- run $run"
  rm -rf "$work/archive" "$work/duckdb" "$work/duckdb-lossless"
  # Each starts with no other's writes pending: the disk flushing the previous tool's
  # output would slow whichever runs next.
  sync
  ours=$("$py" scripts/measure.py -- "$bin" --no-progress ingest --kind chat --out "$work/archive" "$small")
  sync
  typed=$("$py" scripts/measure.py -- "$py" "$duck" "$small" "$work/duckdb" 2)
  sync
  full=$("$py" scripts/measure.py -- "$py" "$lossless" "$small" "$work/duckdb-lossless" 2)
  "$py" - "$messages" "$(field "$ours" seconds)" "$(field "$typed" seconds)" "$(field "$full" seconds)" \
    "$(field "$ours" peak_rss_mib)" "$(field "$typed" peak_rss_mib)" "$(field "$full" peak_rss_mib)" <<'PY'
import sys
n = int(sys.argv[1])
ours, typed, full = (float(s) for s in sys.argv[2:5])
rss_ours, rss_typed, rss_full = sys.argv[5:8]
a, t, f = n / ours, n / typed, n / full
print(f"teams-archiver ingest:          {a:>9,.0f} messages/s ({ours:.2f} s, peak {rss_ours} MiB)")
print(f"duckdb typed-only (convert):    {t:>9,.0f} messages/s ({typed:.2f} s, peak {rss_typed} MiB)")
print(f"duckdb lossless (+raw_json/sha):{f:>9,.0f} messages/s ({full:.2f} s, peak {rss_full} MiB)")
print(f"ratio vs duckdb typed-only: {a / t:.2f}x (goal >= 1.0x) -> {'PASS' if a / t >= 1.0 else 'FAIL'}")
print(f"ratio vs duckdb lossless:   {a / f:.2f}x (goal >= 1.5x) -> {'PASS' if a / f >= 1.5 else 'FAIL'}")
PY
done
"$py" - "$work/archive" "$work/duckdb" "$work/duckdb-lossless" <<'PY'
import os, sys
def size(path):  # bytes in the files under path (apparent sizes)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
archive, typed, full = sys.argv[1:4]
a, t, f = size(archive), size(typed), size(full)
table = size(os.path.join(archive, "chat_messages"))
mib = lambda b: f"{b / 2**20:,.1f} MiB"
print(f"size: teams-archiver archive   {mib(a)} (chat_messages table {mib(table)}, _archive + _state {mib(a - table)})")
print(f"size: duckdb typed-only        {mib(t)}")
print(f"size: duckdb lossless          {mib(f)}")
print(f"size ratio archive / duckdb lossless: {a / f:.2f}x (table alone {table / f:.2f}x) (goal <= 1.0x) -> {'PASS' if a / f <= 1.0 else 'FAIL'}")
PY

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
