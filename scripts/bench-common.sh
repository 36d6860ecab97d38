# Shared by the benchmarks that run on generated Graph pages (sourced, from the repo root):
# the peer scripts, the Python tools, the release build and the pages themselves.
#
#   TEAMS_ARCHIVER_SHARED  folder holding bench/ (default ../shared)
#   TEAMS_ARCHIVER_VENV    Python virtualenv (default .venv)
#   BENCH_SKIP_BUILD=1     use the release binary as it is
root=$PWD
shared=${TEAMS_ARCHIVER_SHARED:-$root/../shared}
gen=$shared/bench/gen_chat_pages.py
duck=$shared/bench/duckdb_convert.py
lossless=$shared/bench/duckdb_lossless.py
for f in "$gen" "$duck" "$lossless"; do
  [ -f "$f" ] || { echo "missing $f (set TEAMS_ARCHIVER_SHARED to the folder holding bench/)" >&2; exit 1; }
done
venv=${TEAMS_ARCHIVER_VENV:-$root/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
py=$venv/bin/python
pages_root=$root/target/bench-ingest
mkdir -p "$pages_root"

bin=$root/target-release/release/teams-archiver
if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
  echo "==> release build skipped (BENCH_SKIP_BUILD=1)"
else
  echo "==> release build"
  CARGO_TARGET_DIR=$root/target-release cargo build --release --quiet -p teams-archiver
fi
[ -x "$bin" ] || { echo "missing $bin (build it, or unset BENCH_SKIP_BUILD)" >&2; exit 1; }

pages() { # N -> folder of pages (generated once; a half-written folder is never used)
  local n=$1 dir=$pages_root/pages-$1 tmp
  if [ ! -f "$dir/.done" ]; then
    tmp=$dir.partial-$$
    rm -rf "$dir" "$tmp"
    "$py" "$gen" --messages "$n" --out "$tmp" >&2
    touch "$tmp/.done"
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp" # another run got there first
  fi
  echo "$dir"
}

field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
