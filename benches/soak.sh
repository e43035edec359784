#!/usr/bin/env bash
# A sustained run: the release daemon with the shipped rules under the load generator for a
# fixed time, sampling its memory, file descriptors and threads, to show none of them grows.
# A benchmark, not a test; loopback only, bounded in time.
#
#   benches/soak.sh CORPUS_DIR [SECONDS=600] [CONCURRENCY=8]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:?usage: benches/soak.sh CORPUS_DIR [SECONDS] [CONCURRENCY]}
seconds=${2:-600}
concurrency=${3:-8}
cargo build --release --locked --bin inspect-milter --example loadgen >/dev/null
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/config.yaml" <<CONF
listen: inet:127.0.0.1:$port
quarantine:
  dir: $work/q
release:
  secret_file: $work/release.key
log:
  level: warn
CONF
target/release/inspect-milter serve --config "$work/config.yaml" 2>"$work/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do ss -ltn "sport = :$port" | grep -q LISTEN && break; sleep 0.2; done
sample() {
    local rss fds threads
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    fds=$(ls /proc/$pid/fd | wc -l)
    threads=$(awk '/Threads/ {print $2}' /proc/$pid/status)
    printf '%6ss  rss=%6d KiB  fds=%4d  threads=%3d\n' "$1" "$rss" "$fds" "$threads"
}
sample 0
target/release/examples/loadgen --addr "inet:127.0.0.1:$port" --corpus "$corpus" \
    --concurrency "$concurrency" --messages 100000000 --seconds "$seconds" --pid "$pid" > "$work/load.out" &
load=$!
start=$(date +%s)
while kill -0 $load 2>/dev/null; do
    sleep 30
    kill -0 $load 2>/dev/null && sample $(( $(date +%s) - start ))
done
wait $load
cat "$work/load.out"
sleep 2
sample after
# Once no message has begun for a tick (5 s), the daemon gives back what it no longer needs.
sleep 13
sample idle
