#!/bin/bash
# inspect-milter for the peer comparison: BINARY (default target/release/inspect-milter)
# with the shipped rules plus ./peer-rules.yaml, on inet:127.0.0.1:$PORT_INSPECT.
# Env: PORT_INSPECT, PEER_RUN_BASE. Writes $PEER_RUN_BASE/inspect-milter/pid.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
ROOT="$(cd "$PEERS_DIR/../.." && pwd)"
BIN="${1:-$ROOT/target/release/inspect-milter}"
RUN="$PEER_RUN_BASE/inspect-milter"
mkdir -p "$RUN"
sed -e "s#@RUN@#$RUN#g" -e "s#@PORT@#$PORT_INSPECT#g" -e "s#@ROOT@#$ROOT#g" \
    "$PEERS_DIR/inspect-milter/config.yaml.in" > "$RUN/config.yaml"
"$BIN" check --config "$RUN/config.yaml" >/dev/null
"$BIN" serve --config "$RUN/config.yaml" 2>"$RUN/serve.log" &
echo $! > "$RUN/pid"
wait_port "$PORT_INSPECT" 30
echo "inspect-milter pid $(cat "$RUN/pid") on inet:127.0.0.1:$PORT_INSPECT"
