#!/usr/bin/env bash
# Benchmark: `teams-archiver export` to RSMF and JSONL, and its memory at two archive sizes.
#
#   scripts/bench-export.sh [SMALL] [BIG] [BUDGET_MIB]     defaults: 250000 1000000 16
#
# 1. Generates SMALL and BIG getAllMessages messages with ../shared/bench/gen_chat_pages.py
#    (same seed, same bytes; 2,000 chats over 90 days) and archives each with the release
#    build of `ingest` (one custodian), under target/bench-export/ (built once, kept).
# 2. Exports each archive, measured by scripts/measure.py (wall time, peak resident memory):
#    RSMF (one .rsmf per conversation and day) and JSONL with the default settings, then
#    JSONL with --memory-budget-mib BUDGET_MIB.
# 3. Prints messages per second and peak memory per run, and the peaks at both sizes:
#    memory grows with the rows of one day until the budget is reached, not with the
#    archive (a day's rows are sorted out of core past the budget).
set -euo pipefail
cd "$(dirname "$0")/.."
small=${1:-250000}
big=${2:-1000000}
budget=${3:-16}
source scripts/bench-common.sh
work=$root/target/bench-export
mkdir -p "$work"
custodian=0b4f1cf6-54c8-4820-bbb7-2a1f4257ade5

archive() { # N -> an archive of N generated messages (built once)
  local n=$1 pages=$work/pages-$1 out=$work/archive-$1
  if [ ! -f "$out/.done" ]; then
    rm -rf "$pages" "$out"
    echo "    generating $n messages" >&2
    "$py" "$gen" --messages "$n" --out "$pages" >&2
    echo "    archiving them" >&2
    # Exit code 0: every generated item is a chat message.
    "$bin" --no-progress ingest --kind chat --custodian "$custodian" --out "$out" "$pages" >/dev/null 2>&1
    rm -rf "$pages"
    touch "$out/.done"
  fi
  echo "$out"
}

# Exports stay until every run is measured (deleting hundreds of thousands of files right
# before a run slows the file system down while that run creates its own), then go.
exports=$work/exports
rm -rf "$exports"
mkdir -p "$exports"
results=$work/results.tsv
: >"$results"
run() { # N ARCHIVE FORMAT LABEL [ENV=VALUE...] -- [EXPORT ARGS...]
  local n=$1 archive=$2 format=$3 label=$4
  shift 4
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  local out=$exports/$n-$format-$label
  local measured
  measured=$(env "${env[@]}" "$py" scripts/measure.py -- "$bin" --no-progress export \
    --archive "$archive" --out "$out" --format "$format" --include-deleted "$@")
  local files
  files=$(find "$out" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$format" "$label" "$(field "$measured" seconds)" \
    "$(field "$measured" peak_rss_mib)" "$files" >>"$results"
  tail -1 "$results" | awk -F'\t' '{printf "    %s messages, %s, %s: %.1f s, peak %s MiB, %s files\n", $1, $2, $3, $4, $5, $6}'
}

for n in "$small" "$big"; do
  echo "==> $n messages"
  dir=$(archive "$n")
  run "$n" "$dir" rsmf default --
  run "$n" "$dir" jsonl default --
  run "$n" "$dir" jsonl "budget-${budget}MiB" -- --memory-budget-mib "$budget"
done

"$py" - "$results" "$small" "$big" <<'PY'
import csv, sys
path, small, big = sys.argv[1], sys.argv[2], sys.argv[3]
rows = list(csv.reader(open(path), delimiter="\t"))
print("\n messages  format  settings                     seconds  messages/s  peak MiB    files")
peak, labels = {}, []
for n, fmt, label, secs, rss, files in rows:
    peak[(n, fmt, label)] = float(rss)
    if (fmt, label) not in labels:
        labels.append((fmt, label))
    print(f"{int(n):>9,}  {fmt:<6}  {label:<26} {float(secs):>8.1f}  {int(n) / float(secs):>10,.0f}"
          f"  {float(rss):>8.1f}  {int(files):>7,}")
print()
for fmt, label in labels:
    a, b = peak[(small, fmt, label)], peak[(big, fmt, label)]
    print(f"peak memory, {fmt} {label}: {a:.0f} MiB at {int(small):,} messages, {b:.0f} MiB at "
          f"{int(big):,} ({b / a:.2f}x for {int(big) / int(small):.0f}x the messages)")
PY
echo "==> removing the exports ($(du -sh "$exports" | cut -f1))"
rm -rf "$exports"
