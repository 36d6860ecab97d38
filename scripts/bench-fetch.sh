#!/usr/bin/env bash
# The request rate the Graph client reaches against the simulator at Graph's app limit:
# 200 users x 500 chat messages, every user's chat delta round (32 at a time), a limit of
# 200 requests/s and 30 ms latency per page. Prints the requests/s reached (it must be at
# least 90% of the limit, or this exits non-zero) and the number of 429s the client provoked.
#
#   scripts/bench-fetch.sh                     the benchmark as specified
#   scripts/bench-fetch.sh --limit 100 ...     other settings (see --help)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-release}
cargo build --release -p fetch --example bench-fetch
exec "$CARGO_TARGET_DIR/release/examples/bench-fetch" "$@"
