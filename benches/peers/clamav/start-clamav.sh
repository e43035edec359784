#!/bin/bash
# clamav-milter 1.4 + clamd (Debian packages) peer with a tiny hand-made signature DB
# (bench.ndb: the EICAR string, a phishing host). NOT rule-equivalent to the regex peers: it
# scans the whole message (decoded attachments and zip members included) for 2 byte
# signatures; quarantines on a hit and adds X-Virus-* headers. The milter listens on a unix
# socket (over TCP it stalls ~40 ms per message on the client's delayed ACK).
# Env: CLAMD_THREADS (default 4), CLAMAV_LISTEN (default unix:$RUN/clamav-milter.sock, or
#      inet:PORT@127.0.0.1), PEER_RUN_BASE. Prints the milter address on its last line.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
command -v clamd >/dev/null || { echo "apt-get install clamav-daemon clamav-milter"; exit 1; }
RUN="$PEER_RUN_BASE/clamav"
HERE="$PEERS_DIR/clamav"
LISTEN="${CLAMAV_LISTEN:-unix:$RUN/clamav-milter.sock}"
mkdir -p "$RUN/db" "$RUN/tmp"
rm -f "$RUN/clamav-milter.sock"
cp "$HERE/bench.ndb" "$RUN/db/bench.ndb"
sed -e "s#@RUN@#$RUN#g" -e "s#@THREADS@#${CLAMD_THREADS:-4}#g" "$HERE/clamd.conf.in" > "$RUN/clamd.conf"
sed -e "s#@RUN@#$RUN#g" -e "s#@LISTEN@#$LISTEN#g" "$HERE/clamav-milter.conf.in" > "$RUN/clamav-milter.conf"
chown -R clamav:clamav "$RUN"
clamd -c "$RUN/clamd.conf"
wait_socket "$RUN/clamd.sock" 30 || { tail "$RUN/clamd.log"; exit 1; }
clamav-milter -c "$RUN/clamav-milter.conf"
case "$LISTEN" in
    unix:*) wait_socket "${LISTEN#unix:}" 20 ;;
    inet:*) port="${LISTEN#inet:}"; wait_port "${port%@*}" 20 ;;
esac
echo "clamd pid $(cat "$RUN/clamd.pid") clamav-milter pid $(cat "$RUN/clamav-milter.pid")"
echo "$LISTEN"
