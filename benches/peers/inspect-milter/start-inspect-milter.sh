#!/bin/bash
# inspect-milter for the peer comparison: BINARY (default target/release/inspect-milter)
# with ./peer-rules.yaml (the peers' 50 regex rules) plus the shipped YARA pack — the
# comparison's definition — on inet:127.0.0.1:$PORT_INSPECT. RULESET=all adds the shipped
# regex pack as well (everything the default configuration loads).
# Env: PORT_INSPECT, TRANSPORT (inet or unix), PEER_RUN_BASE, RULESET, INSPECT_THREADS (filter
# threads; default: one per core). Writes
# $PEER_RUN_BASE/inspect-milter/pid; the last line printed is the milter's address.
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
if [ "$TRANSPORT" = unix ]; then
    LISTEN="unix:$RUN/milter.sock"
else
    LISTEN="inet:127.0.0.1:$PORT_INSPECT"
fi
sed -e "s#@RUN@#$RUN#g" -e "s#@LISTEN@#$LISTEN#g" -e "s#@SHIPPED@#$shipped#g" -e "s#@ROOT@#$ROOT#g" \
    "$PEERS_DIR/inspect-milter/config.yaml.in" > "$RUN/config.yaml"
if [ -n "${INSPECT_THREADS:-}" ]; then
    printf 'inspect:\n  threads: %s\n' "$INSPECT_THREADS" >> "$RUN/config.yaml"
fi
"$BIN" check --config "$RUN/config.yaml" >/dev/null
"$BIN" serve --config "$RUN/config.yaml" 2>"$RUN/serve.log" &
echo $! > "$RUN/pid"
wait_listen "$LISTEN" 30
echo "inspect-milter pid $(cat "$RUN/pid") on"
echo "$LISTEN"
