#!/bin/bash
# The peer comparison: inspect-milter against rspamd, MIMEDefang and clamav-milter (Debian
# packages) on the same generated corpus, side by side, loopback only.
#
#   sudo benches/peers.sh                 # install what is missing, build, run, print the table
#   PEERS="rspamd mimedefang" MESSAGES=2000 sudo benches/peers.sh
#
# What runs: the release daemon with the shipped YARA pack plus the peers' 50 regex rules
# (peers/inspect-milter/peer-rules.yaml; RULESET=all adds the shipped regex pack too),
# rspamd's milter proxy with the same 50 rules (2 workers), MIMEDefang with the same 50
# rules (4 Perl workers), and clamav-milter + clamd with 2 signatures (not rule-equivalent;
# a floor for an AV milter).
# Each gets the same load from examples/loadgen.rs: the deterministic corpus (seed
# $SEED, $CORPUS_COUNT messages), $MESSAGES messages per run at each concurrency in
# $CONCURRENCY, 20 messages per connection with ABORT between them, bounded by
# $SECONDS_MAX seconds, after $WARMUP unmeasured messages (default 200) that fill every
# milter's caches. CPU and peak RSS are those of each milter's whole process tree.
# MIMEDefang and clamav-milter listen on unix sockets (over TCP they stall ~40 ms a message on
# the client's delayed ACK); rspamd and inspect-milter on 127.0.0.1, or on unix sockets too
# with TRANSPORT=unix (how a milter on the MTA's own machine is usually reached; loopback TCP
# costs both ends more kernel time). After the table, the daemon against the in-process
# engine: with a filter thread per core, and with one filter thread (a core left for the
# protocol and the load generator).
#
# Everything runs inside a private network namespace when `unshare` allows it (nothing can
# leave the machine, no peer can do a DNS lookup); runtime files go to $PEER_RUN_BASE; every
# peer is stopped at the end, also on failure or Ctrl-C. A benchmark, not a test: the numbers
# depend on the machine, so compare the ratios. Needs root (packages, the peers' users).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PEERS_DIR="$HERE/peers"
export PEER_RUN_BASE="${PEER_RUN_BASE:-/tmp/peer-milters}"
PEERS="${PEERS:-rspamd mimedefang clamav}"
CONCURRENCY="${CONCURRENCY:-8 32}"
MESSAGES="${MESSAGES:-1200}"
SECONDS_MAX="${SECONDS_MAX:-120}"
CORPUS_COUNT="${CORPUS_COUNT:-400}"
SEED="${SEED:-20240601}"
WARMUP="${WARMUP:-200}"
RESULTS="$PEER_RUN_BASE/results"

if [ "${PEERS_IN_NAMESPACE:-0}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "peers.sh: run as root (it installs packages and starts the peers as their users)"; exit 2; }
    # Packages first, with the network: the run itself happens without it.
    need=()
    for p in $PEERS; do
        case "$p" in
            rspamd) command -v rspamd >/dev/null || need+=(rspamd) ;;
            # mimedefang.pl needs Net::DNS (a Recommends): without it every worker dies at
            # start and every message is tempfailed.
            mimedefang) { command -v mimedefang >/dev/null && perl -MNet::DNS -e1 2>/dev/null; } ||
                need+=(mimedefang libarchive-zip-perl libhtml-parser-perl libnet-dns-perl) ;;
            clamav) command -v clamd >/dev/null || need+=(clamav-daemon clamav-milter) ;;
        esac
    done
    if [ ${#need[@]} -gt 0 ]; then
        echo "installing ${need[*]}"
        # No package may start its service (or fetch signatures) on this machine.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        (cd "$ROOT" && cargo build --release --bin inspect-milter --example loadgen)
    fi
    export PEERS_IN_NAMESPACE=1
    if unshare --net true 2>/dev/null; then
        exec unshare --net bash -c 'ip link set lo up && exec "$0"' "$0"
    fi
    echo "peers.sh: no private network namespace here; running on the host's loopback"
    exec "$0"
fi

BIN="$ROOT/target/release/inspect-milter"
LOADGEN="$ROOT/target/release/examples/loadgen"
source "$PEERS_DIR/common.sh"
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.txt

stop_all() {
    for p in $PEERS; do
        case "$p" in
            rspamd) "$PEERS_DIR/rspamd/stop-rspamd.sh" >/dev/null 2>&1 || true ;;
            mimedefang) "$PEERS_DIR/mimedefang/stop-mimedefang.sh" >/dev/null 2>&1 || true ;;
            clamav) "$PEERS_DIR/clamav/stop-clamav.sh" >/dev/null 2>&1 || true ;;
        esac
    done
    "$PEERS_DIR/inspect-milter/stop-inspect-milter.sh" >/dev/null 2>&1 || true
}
trap stop_all EXIT INT TERM

# descendants PID... : the pids and all their descendants, comma-separated
descendants() {
    local all=("$@") frontier=("$@") next kid p
    while [ ${#frontier[@]} -gt 0 ]; do
        next=()
        for p in "${frontier[@]}"; do
            for kid in $(pgrep -P "$p" || true); do next+=("$kid"); all+=("$kid"); done
        done
        frontier=()
        if [ ${#next[@]} -gt 0 ]; then frontier=("${next[@]}"); fi
    done
    local IFS=,
    echo "${all[*]}"
}

# run NAME ADDR ROOT_PID... : the load at each concurrency against one milter
run() {
    local name="$1" addr="$2"
    shift 2
    local c pids
    # Unmeasured warm-up: caches filled (our lazy DFAs and scanners, rspamd's hyperscan
    # databases, MIMEDefang's workers) before anything is counted.
    if [ "$WARMUP" -gt 0 ]; then
        "$LOADGEN" --addr "$addr" --generate "$CORPUS_COUNT" --seed "$SEED" --concurrency 8 \
            --messages "$WARMUP" --seconds "$SECONDS_MAX" > "$RESULTS/$name-warmup.txt"
    fi
    for c in $CONCURRENCY; do
        pids="$(descendants "$@")"
        echo "== $name, concurrency $c"
        "$LOADGEN" --addr "$addr" --generate "$CORPUS_COUNT" --seed "$SEED" --concurrency "$c" \
            --messages "$MESSAGES" --seconds "$SECONDS_MAX" --pid "$pids" | tee "$RESULTS/$name-$c.txt"
    done
}

"$PEERS_DIR/inspect-milter/start-inspect-milter.sh" "$BIN" > "$RESULTS/start.log"
cat "$RESULTS/start.log"
run inspect-milter "$(tail -1 "$RESULTS/start.log")" "$(cat "$PEER_RUN_BASE/inspect-milter/pid")"
"$PEERS_DIR/inspect-milter/stop-inspect-milter.sh"
echo "== in-process engine (no protocol)"
"$LOADGEN" --engine "$PEER_RUN_BASE/inspect-milter/config.yaml" --generate "$CORPUS_COUNT" --seed "$SEED" \
    --messages "$MESSAGES" --seconds "$SECONDS_MAX" | tee "$RESULTS/engine.txt"
# The same comparison with one filter thread: a core is left for the protocol and the load
# generator, so the daemon's cost over the engine shows without the two fighting for cores.
INSPECT_THREADS=1 "$PEERS_DIR/inspect-milter/start-inspect-milter.sh" "$BIN" > "$RESULTS/start.log"
addr="$(tail -1 "$RESULTS/start.log")"
"$LOADGEN" --addr "$addr" --generate "$CORPUS_COUNT" --seed "$SEED" --concurrency 8 \
    --messages "$WARMUP" --seconds "$SECONDS_MAX" > "$RESULTS/inspect-milter-1thread-warmup.txt"
echo "== inspect-milter with 1 filter thread, concurrency 8"
"$LOADGEN" --addr "$addr" --generate "$CORPUS_COUNT" --seed "$SEED" --concurrency 8 \
    --messages "$MESSAGES" --seconds "$SECONDS_MAX" --pid "$(cat "$PEER_RUN_BASE/inspect-milter/pid")" \
    | tee "$RESULTS/inspect-milter-1thread.txt"
"$PEERS_DIR/inspect-milter/stop-inspect-milter.sh"
echo "== in-process engine with 1 thread"
"$LOADGEN" --engine "$PEER_RUN_BASE/inspect-milter/config.yaml" --generate "$CORPUS_COUNT" --seed "$SEED" \
    --messages "$MESSAGES" --seconds "$SECONDS_MAX" | tee "$RESULTS/engine-1thread.txt"

for p in $PEERS; do
    case "$p" in
        rspamd)
            "$PEERS_DIR/rspamd/start-rspamd.sh" > "$RESULTS/start.log"
            cat "$RESULTS/start.log"
            run rspamd "$(tail -1 "$RESULTS/start.log")" "$(cat "$PEER_RUN_BASE/rspamd/rspamd.pid")"
            "$PEERS_DIR/rspamd/stop-rspamd.sh"
            ;;
        mimedefang)
            "$PEERS_DIR/mimedefang/start-mimedefang.sh" > "$RESULTS/start.log"
            cat "$RESULTS/start.log"
            addr="$(tail -1 "$RESULTS/start.log")"
            run mimedefang "$addr" "$(cat "$PEER_RUN_BASE/mimedefang/mimedefang.pid")" \
                "$(cat "$PEER_RUN_BASE/mimedefang/multiplexor.pid")"
            "$PEERS_DIR/mimedefang/stop-mimedefang.sh"
            ;;
        clamav)
            "$PEERS_DIR/clamav/start-clamav.sh" > "$RESULTS/start.log"
            cat "$RESULTS/start.log"
            addr="$(tail -1 "$RESULTS/start.log")"
            run clamav-milter "$addr" "$(cat "$PEER_RUN_BASE/clamav/clamav-milter.pid")" \
                "$(cat "$PEER_RUN_BASE/clamav/clamd.pid")"
            "$PEERS_DIR/clamav/stop-clamav.sh"
            ;;
        *) echo "unknown peer $p"; exit 2 ;;
    esac
done

# The table: one row per milter and concurrency, ratios against inspect-milter.
field() { # FILE KEY WORD-INDEX
    awk -v k="$2" -v n="$3" 'index($0, k) == 1 { print $n; exit }' "$1"
}
echo
echo "corpus: seed $SEED, $CORPUS_COUNT messages; $MESSAGES messages per run; inspect-milter rules: ${RULESET:-equivalent}; inspect-milter and rspamd over $TRANSPORT sockets"
printf '%-15s %5s %8s %9s %9s %9s %10s %9s   %s\n' milter conc msg/s p50_ms p99_ms cpu_ms rss_MB errors "inspect-milter is: x msg/s, x lower p50/p99, x less CPU"
for c in $CONCURRENCY; do
    base="$RESULTS/inspect-milter-$c.txt"
    for name in inspect-milter rspamd mimedefang clamav-milter; do
        f="$RESULTS/$name-$c.txt"
        [ -f "$f" ] || continue
        rate="$(field "$f" throughput 2)"
        p50="$(field "$f" "latency ms" 4)"
        p99="$(field "$f" "latency ms" 8)"
        cpu="$(field "$f" "server cpu" 3)"
        rss="$(field "$f" "server peak rss" 4)"
        errs="$(awk '/^messages/ { gsub(/\(/, "", $5); print $5; exit }' "$f")"
        ratio=""
        if [ "$name" != inspect-milter ]; then
            ratio="$(awk -v a="$(field "$base" throughput 2)" -v b="$rate" \
                -v p="$(field "$base" "latency ms" 4)" -v q="$p50" \
                -v r="$(field "$base" "latency ms" 8)" -v s="$p99" \
                -v x="$(field "$base" "server cpu" 3)" -v y="$cpu" \
                'BEGIN { printf "%.2fx  %.2fx/%.2fx  %.2fx", a / b, q / p, s / r, y / x }')"
        fi
        printf '%-15s %5s %8s %9s %9s %9s %10s %9s   %s\n' "$name" "$c" "$rate" "$p50" "$p99" "$cpu" "$rss" "$errs" "$ratio"
        # A milter that tempfails every message is broken, not fast: say so next to its row.
        if grep -q '^decisions  *{"tempfail": [0-9]*}$' "$f"; then
            echo "  ^ $name tempfailed every message: its numbers measure a failure (see its logs)"
        fi
    done
done
engine_rate="$(field "$RESULTS/engine.txt" throughput 2)"
engine_cpu="$(field "$RESULTS/engine.txt" "server cpu" 3)"
for c in $CONCURRENCY; do
    f="$RESULTS/inspect-milter-$c.txt"
    awk -v d="$(field "$f" throughput 2)" -v e="$engine_rate" -v c="$c" \
        -v dc="$(field "$f" "server cpu" 3)" -v ec="$engine_cpu" -v lc="$(field "$f" "client cpu" 3)" \
        'BEGIN { printf "daemon at concurrency %s: %.0f%% of the in-process engine'"'"'s msg/s (%s); CPU a message %.3f ms, engine %.3f ms: protocol and session +%.0f%%; the load generator took %.3f ms a message of the same cores\n", c, 100 * d / e, e, dc, ec, 100 * (dc - ec) / ec, lc }'
done
awk -v d="$(field "$RESULTS/inspect-milter-1thread.txt" throughput 2)" \
    -v e="$(field "$RESULTS/engine-1thread.txt" throughput 2)" \
    'BEGIN { printf "with 1 filter thread (a core left for the protocol and the load generator): the daemon at concurrency 8 makes %.0f%% of the engine'"'"'s msg/s (%s of %s)\n", 100 * d / e, d, e }'
echo "(rss_MB: the sum of each process's peak over the milter's process tree)"
