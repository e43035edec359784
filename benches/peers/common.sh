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

# How inspect-milter and rspamd are reached: inet (127.0.0.1, the default) or unix (a socket
# under $PEER_RUN_BASE, as a local MTA would reach them; MIMEDefang and clamav-milter are on
# unix sockets either way).
TRANSPORT="${TRANSPORT:-inet}"
case "$TRANSPORT" in inet | unix) ;; *) echo "TRANSPORT must be inet or unix" >&2; exit 2 ;; esac

# wait_listen ADDR SECONDS : wait for an inet:PORT@HOST / inet:HOST:PORT or unix:PATH address
wait_listen() {
    case "$1" in
        unix:*) wait_socket "${1#unix:}" "${2:-30}" ;;
        *) wait_port "${1##*:}" "${2:-30}" ;;
    esac
}

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
