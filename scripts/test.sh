#!/usr/bin/env bash
# The one test command. On a fresh machine it installs what the tests need (a Python
# virtualenv with moto, DuckDB, pyarrow and pyspark; Debian's Chromium), starts moto's
# S3 server on loopback, runs formatting, lints and every test, and stops what it
# started, also when something fails.
#
#   scripts/test.sh              everything
#   scripts/test.sh -p sink      extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${TEAMS_ARCHIVER_VENV:-$root/.venv}
logs=$root/target/test-logs
mkdir -p "$logs"

step() { printf '\n==> %s\n' "$*"; }

step "python tools (moto, duckdb, pyarrow, pyspark) in $venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt

step "chromium (HTML export rendering)"
if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi
command -v chromium

pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

step "moto S3 server"
moto_port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$logs/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$moto_port/" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$moto_port/" >/dev/null || { cat "$logs/moto.log"; echo "moto did not start" >&2; exit 1; }
echo "moto on 127.0.0.1:$moto_port"

# What the tests read to find the real parts they drive.
export TEAMS_ARCHIVER_TEST_PYTHON=$venv/bin/python
export TEAMS_ARCHIVER_TEST_S3_ENDPOINT=http://127.0.0.1:$moto_port
export TEAMS_ARCHIVER_TEST_CHROMIUM=$(command -v chromium)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace "$@"

step "all checks passed"
