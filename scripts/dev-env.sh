#!/usr/bin/env bash
# For working on one crate: start moto like scripts/test.sh does and print the variables
# the tests read. Usage: eval "$(scripts/dev-env.sh)"   (stop moto with: kill $MOTO_PID)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${TEAMS_ARCHIVER_VENV:-$PWD/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt >&2
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target/test-logs
nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/test-logs/moto-dev.log 2>&1 &
echo "export MOTO_PID=$!"
echo "export TEAMS_ARCHIVER_TEST_PYTHON=$venv/bin/python"
echo "export TEAMS_ARCHIVER_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
command -v chromium >/dev/null && echo "export TEAMS_ARCHIVER_TEST_CHROMIUM=$(command -v chromium)"
