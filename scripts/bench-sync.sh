#!/usr/bin/env bash
# Benchmark: a first `teams-archiver sync` of 200 users x 500 chat messages against the
# Graph simulator with 30 ms latency per page, in two cases:
#   published  Graph's published limits and an app bucket of 200 requests/s;
#   lower      a server that really enforces only 40 requests/s (Retry-After: 1), which
#              the client must find from its 429s and keep to.
# Each prints the elapsed time beside the ideal (requests / limit; goal: within 1.25x),
# the 429s provoked, and the archiver's peak memory, overall and in each quarter of the run
# (memory that grows with the tenant keeps rising from quarter to quarter).
#
#   scripts/bench-sync.sh                 both cases
#   CASES=lower scripts/bench-sync.sh     one case
#   USERS=50 scripts/bench-sync.sh        a smaller tenant
#   SYNC_ARGS="--memory-budget-mib 128" scripts/bench-sync.sh   other sync flags
#   MEMORY=1 scripts/bench-sync.sh   peak memory against the budget: 200 and 2,000 users,
#                                    budgets of 128 and 256 MiB (published limits; ~15 min)
#   BENCH_SKIP_BUILD=1 scripts/bench-sync.sh                      use the release binary as it is
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
users=${USERS:-200}
messages=${MESSAGES:-500}
cases=${CASES:-published lower}
# Peak RSS may exceed the budget by at most this floor (the program, its runtime and TLS,
# and what the allocator keeps): the figure `sync --help` and the README state.
floor_mib=64
venv=${TEAMS_ARCHIVER_VENV:-$root/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py=$venv/bin/python
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-release}
if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
  echo "==> release build skipped (BENCH_SKIP_BUILD=1)"
else
  echo "==> release build"
  cargo build --release --quiet -p teams-archiver -p graph-sim
fi
bin=$CARGO_TARGET_DIR/release
work=$root/target/bench-sync
# The budget the run is given (sync's default unless SYNC_ARGS sets one), printed beside
# its peak memory.
rm -rf "$work" && mkdir -p "$work"

run_case() {
  local case=$1 limit retry=""
  local budget
  budget=$(printf '%s\n' "${SYNC_ARGS:-}" | sed -n 's/.*--memory-budget-mib[ =]\([0-9]*\).*/\1/p')
  budget=${budget:-256}
  case $case in
    published) limit=200 ;;
    lower) limit=40; retry="--retry-after 1" ;;
    *) echo "unknown case $case (published, lower)" >&2; return 2 ;;
  esac
  local dir=$work/$case
  # Every run is a first sync, into an archive of its own.
  rm -rf "$dir" && mkdir -p "$dir"
  "$bin/graph-sim" serve --preset bench --users "$users" --messages-per-user "$messages" \
    --rate-limit "$limit" $retry --latency-ms 30 >"$dir/sim.json" 2>"$dir/sim.log" &
  sim_pid=$!
  trap 'kill $sim_pid 2>/dev/null || true' RETURN
  for _ in $(seq 1 300); do [ -s "$dir/sim.json" ] && break; sleep 0.1; done
  [ -s "$dir/sim.json" ] || { cat "$dir/sim.log"; echo "the simulator did not start" >&2; exit 1; }
  get() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$dir/sim.json" "$1"; }
  admin=$(get admin)
  curl -fsS -X DELETE "${admin}stats" >/dev/null

  echo "==> $case: sync of $users users x $messages messages (limit $limit requests/s, 30 ms per page)"
  run=$(TEAMS_ARCHIVER_CLIENT_SECRET=$(get clientSecret) "$py" scripts/measure.py -- \
    "$bin/teams-archiver" --no-progress sync --source chats \
    --tenant-id "$(get tenantId)" --client-id "$(get clientId)" \
    --graph-url "$(get graphUrl)" --login-url "$(get loginUrl)" --allow-insecure-http --out "$dir/archive" ${SYNC_ARGS:-})
  curl -fsS "${admin}stats" >"$dir/stats.json"

  "$py" - "$run" "$dir/stats.json" "$limit" "$budget" "$floor_mib" <<'PY'
import json, sys
run, stats, limit = json.loads(sys.argv[1]), json.load(open(sys.argv[2])), float(sys.argv[3])
budget, floor = int(sys.argv[4]), int(sys.argv[5])
requests = sum(r["count"] for r in stats["requests"] if r["endpoint"] != "token")
ideal = requests / limit
seconds = run["seconds"]
ratio = seconds / ideal
print(run["stdout"].splitlines()[0])
print(f"requests: {requests} Graph calls, {stats['throttled']} answered 429 by the limit")
print(f"elapsed: {seconds:.1f} s, ideal {ideal:.1f} s (requests / {limit:.0f} per s): {ratio:.2f}x (goal <= 1.25) -> {'PASS' if ratio <= 1.25 else 'FAIL'}")
over = run['peak_rss_mib'] - budget
print(f"peak memory: {run['peak_rss_mib']:.0f} MiB against a --memory-budget-mib of {budget} ({over:+.0f} MiB; goal <= +{floor}) -> {'PASS' if over <= floor else 'FAIL'}")
quarters = run["peak_rss_mib_by_quarter"]
print("peak memory in each quarter of the run: " + " / ".join(f"{q:.0f}" for q in quarters) + " MiB")
PY
  kill $sim_pid 2>/dev/null || true
}

if [ "${MEMORY:-0}" = 1 ]; then
  for users in 200 2000; do
    for budget_mib in 128 256; do
      SYNC_ARGS="--memory-budget-mib $budget_mib" run_case published
    done
  done
else
  for case in $cases; do
    run_case "$case"
  done
fi
