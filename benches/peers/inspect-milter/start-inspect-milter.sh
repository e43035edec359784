#!/bin/bash
# inspect-milter for the peer comparison: BINARY (default target/release/inspect-milter)
# with ./peer-rules.yaml (the peers' 50 regex rules) plus the shipped YARA pack — the
# comparison's definition — on inet:127.0.0.1:$PORT_INSPECT. RULESET=all adds the shipped
# regex pack as well (everything the default configuration loads).
# Env: PORT_INSPECT, PEER_RUN_BASE, RULESET. Writes $PEER_RUN_BASE/inspect-milter/pid.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
ROOT="$(cd "$PEERS_DIR/../.." && pwd)"
BIN="${1:-$ROOT/target/release/inspect-milter}"
RUN="$PEER_RUN_BASE/inspect-milter"
mkdir -p "$RUN"
if [ "${RULESET:-equivalent}" = all ]; then
    shipped="$ROOT/rules"
else
    shipped="$RUN/shipped-yara"
    rm -rf "$shipped" && mkdir -p "$shipped" && cp "$ROOT"/rules/*.yar "$shipped"/
fi
sed -e "s#@RUN@#$RUN#g" -e "s#@PORT@#$PORT_INSPECT#g" -e "s#@SHIPPED@#$shipped#g" -e "s#@ROOT@#$ROOT#g" \
    "$PEERS_DIR/inspect-milter/config.yaml.in" > "$RUN/config.yaml"
"$BIN" check --config "$RUN/config.yaml" >/dev/null
"$BIN" serve --config "$RUN/config.yaml" 2>"$RUN/serve.log" &
echo $! > "$RUN/pid"
wait_port "$PORT_INSPECT" 30
echo "inspect-milter pid $(cat "$RUN/pid") on inet:127.0.0.1:$PORT_INSPECT"
