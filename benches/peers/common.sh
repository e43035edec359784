# Settings shared by the peer start/stop scripts and ../peers.sh. Source it; do not run it.
# Everything is relative to this directory; runtime state goes to $PEER_RUN_BASE/<peer>
# (default /tmp/peer-milters), never into the source tree.
PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEER_RUN_BASE="${PEER_RUN_BASE:-/tmp/peer-milters}"

# loopback ports (override with env)
PORT_MIMEDEFANG="${PORT_MIMEDEFANG:-19101}"
PORT_RSPAMD="${PORT_RSPAMD:-19102}"
PORT_CLAMAV="${PORT_CLAMAV:-19104}"
PORT_INSPECT="${PORT_INSPECT:-19110}"

# wait_port PORT SECONDS : wait until something listens on 127.0.0.1:PORT
wait_port() {
    local port="$1" secs="${2:-30}" i
    for ((i = 0; i < secs * 10; i++)); do
        if ss -ltnH "sport = :$port" 2>/dev/null | grep -q .; then return 0; fi
        sleep 0.1
    done
    echo "timeout waiting for port $port" >&2
    return 1
}

# wait_socket PATH SECONDS : wait until the unix socket PATH exists
wait_socket() {
    local path="$1" secs="${2:-30}" i
    for ((i = 0; i < secs * 10; i++)); do
        [ -S "$path" ] && return 0
        sleep 0.1
    done
    echo "timeout waiting for socket $path" >&2
    return 1
}

# stop_pidfile FILE [SECONDS] : TERM the pid in FILE, wait, then KILL (by PID only)
stop_pidfile() {
    local f="$1" secs="${2:-15}" pid i
    [ -s "$f" ] || return 0
    pid="$(tr -dc '0-9' < "$f")"
    [ -n "$pid" ] || return 0
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$f"; return 0; fi
    kill -TERM "$pid"
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { echo "stopped pid $pid"; rm -f "$f"; return 0; }
        sleep 0.1
    done
    echo "pid $pid did not exit after ${secs}s; sending KILL"
    kill -KILL "$pid" 2>/dev/null
    rm -f "$f"
}
