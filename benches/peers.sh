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
# milter's caches. All milters run at once and are loaded one after the other in each of
# $ROUNDS rounds (default 3; each turn starts with $REWARM unmeasured messages, default 50);
# the table gives each figure's median over the rounds, and the msg/s ratio of each round,
# so a machine whose speed drifts cannot favour whichever milter it ran first. CPU and peak
# RSS are those of each milter's whole process tree.
# MIMEDefang and clamav-milter listen on unix sockets (over TCP they stall ~40 ms a message on
# the client's delayed ACK); rspamd and inspect-milter on 127.0.0.1, or on unix sockets too
# with TRANSPORT=unix (how a milter on the MTA's own machine is usually reached; loopback TCP
# costs both ends more kernel time). After the table, the daemon against the in-process
# engine: with a filter thread per core, and with one filter thread (a core left for the
# protocol and the load generator); and what the protocol alone costs (a null filter),
# which bounds the first of these on a machine the load generator shares.
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
ROUNDS="${ROUNDS:-3}"
REWARM="${REWARM:-50}"
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
        # No package may start its service (or fetch signatures) on this machine. A
        # policy-rc.d already there (container images ship one) is put back as it was, from
        # beside it (where a killed run leaves it for the next run, or a person, to find).
        rc_d=/usr/sbin/policy-rc.d
        if { [ -e "$rc_d" ] || [ -L "$rc_d" ]; } && ! [ -e "$rc_d.peers-saved" ]; then
            mv "$rc_d" "$rc_d.peers-saved"
        fi
        restore_rc_d() {
            if [ -e "$rc_d.peers-saved" ] || [ -L "$rc_d.peers-saved" ]; then
                mv -f "$rc_d.peers-saved" "$rc_d"
            else
                rm -f "$rc_d"
            fi
        }
        trap restore_rc_d EXIT
        printf '#!/bin/sh\nexit 101\n' > "$rc_d" && chmod +x "$rc_d"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        restore_rc_d
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
# The null-filter run listens the way inspect-milter does.
if [ "$TRANSPORT" = unix ]; then
    NULL_ADDR="unix:$PEER_RUN_BASE/null.sock"
    rm -f "$PEER_RUN_BASE/null.sock"
else
    NULL_ADDR="inet:127.0.0.1:0"
fi
# A second inspect-milter with one filter thread, for the comparison with the engine.
ONE="$PEER_RUN_BASE/one-thread"

stop_all() {
    for p in $PEERS; do
        case "$p" in
            rspamd) "$PEERS_DIR/rspamd/stop-rspamd.sh" >/dev/null 2>&1 || true ;;
            mimedefang) "$PEERS_DIR/mimedefang/stop-mimedefang.sh" >/dev/null 2>&1 || true ;;
            clamav) "$PEERS_DIR/clamav/stop-clamav.sh" >/dev/null 2>&1 || true ;;
        esac
    done
    "$PEERS_DIR/inspect-milter/stop-inspect-milter.sh" >/dev/null 2>&1 || true
    PEER_RUN_BASE="$ONE" "$PEERS_DIR/inspect-milter/stop-inspect-milter.sh" >/dev/null 2>&1 || true
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

# start_milter NAME : starts one milter and records its address and root pids.
declare -A ADDR ROOTS
start_milter() {
    local name="$1"
    case "$name" in
        inspect-milter)
            "$PEERS_DIR/inspect-milter/start-inspect-milter.sh" "$BIN" > "$RESULTS/start.log"
            ROOTS[$name]="$(cat "$PEER_RUN_BASE/inspect-milter/pid")" ;;
        inspect-milter-1thread)
            PEER_RUN_BASE="$ONE" PORT_INSPECT=$((PORT_INSPECT + 1)) INSPECT_THREADS=1 \
                "$PEERS_DIR/inspect-milter/start-inspect-milter.sh" "$BIN" > "$RESULTS/start.log"
            ROOTS[$name]="$(cat "$ONE/inspect-milter/pid")" ;;
        rspamd)
            "$PEERS_DIR/rspamd/start-rspamd.sh" > "$RESULTS/start.log"
            ROOTS[$name]="$(cat "$PEER_RUN_BASE/rspamd/rspamd.pid")" ;;
        mimedefang)
            "$PEERS_DIR/mimedefang/start-mimedefang.sh" > "$RESULTS/start.log"
            ROOTS[$name]="$(cat "$PEER_RUN_BASE/mimedefang/mimedefang.pid") $(cat "$PEER_RUN_BASE/mimedefang/multiplexor.pid")" ;;
        clamav-milter)
            "$PEERS_DIR/clamav/start-clamav.sh" > "$RESULTS/start.log"
            ROOTS[$name]="$(cat "$PEER_RUN_BASE/clamav/clamav-milter.pid") $(cat "$PEER_RUN_BASE/clamav/clamd.pid")" ;;
        *) echo "unknown milter $name"; exit 2 ;;
    esac
    cat "$RESULTS/start.log"
    ADDR[$name]="$(tail -1 "$RESULTS/start.log")"
}

# load NAME CONCURRENCY OUT [--pid PIDS] : one measured run
load() {
    local name="$1" c="$2" out="$3"
    shift 3
    "$LOADGEN" --addr "${ADDR[$name]}" --generate "$CORPUS_COUNT" --seed "$SEED" --concurrency "$c" \
        --messages "$MESSAGES" --seconds "$SECONDS_MAX" "$@" > "$out"
}

# brief FILE : one line from a loadgen report
brief() {
    awk '/^throughput/ { r = $2 } /^server cpu/ { c = $3 } /^messages/ { e = $5 }
        END { printf "%s msg/s, %s ms CPU a message, %s errors\n", r, c, e }' "$1" | tr -d '('
}

MILTERS="inspect-milter"
for p in $PEERS; do
    case "$p" in
        clamav) MILTERS="$MILTERS clamav-milter" ;;
        *) MILTERS="$MILTERS $p" ;;
    esac
done
# Every milter runs for the whole benchmark (idle ones cost nothing measurable) and each
# round loads them one after the other: a machine whose speed drifts (other tenants, heat)
# slows the milters of one round alike, and the table takes the median of the rounds.
for m in $MILTERS inspect-milter-1thread; do
    start_milter "$m"
    # Unmeasured warm-up: caches filled (our lazy DFAs and scanners, rspamd's hyperscan
    # databases, MIMEDefang's workers) before anything is counted.
    if [ "$WARMUP" -gt 0 ]; then
        "$LOADGEN" --addr "${ADDR[$m]}" --generate "$CORPUS_COUNT" --seed "$SEED" --concurrency 8 \
            --messages "$WARMUP" --seconds "$SECONDS_MAX" > "$RESULTS/$m-warmup.txt"
    fi
done
# measure NAME ROUND : both concurrencies against one milter, after a short unmeasured run:
# the milters loaded since its last turn have had the caches.
measure() {
    local m="$1" r="$2" c
    if [ "$REWARM" -gt 0 ]; then
        "$LOADGEN" --addr "${ADDR[$m]}" --generate "$CORPUS_COUNT" --seed "$SEED" --concurrency 8 \
            --messages "$REWARM" --seconds "$SECONDS_MAX" > "$RESULTS/$m-rewarm.txt"
    fi
    for c in $CONCURRENCY; do
        # Process trees are read again each time: MIMEDefang replaces its workers.
        # shellcheck disable=SC2086
        load "$m" "$c" "$RESULTS/$m-$c-$r.txt" --pid "$(descendants ${ROOTS[$m]})"
        echo "$m, concurrency $c: $(brief "$RESULTS/$m-$c-$r.txt")"
    done
}
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r of $ROUNDS"
    # The daemon and the engine back to back, so their ratio is of one moment of the machine.
    measure inspect-milter "$r"
    "$LOADGEN" --engine "$PEER_RUN_BASE/inspect-milter/config.yaml" --generate "$CORPUS_COUNT" --seed "$SEED" \
        --messages "$MESSAGES" --seconds "$SECONDS_MAX" > "$RESULTS/engine-$r.txt"
    echo "in-process engine: $(brief "$RESULTS/engine-$r.txt")"
    # The protocol alone: the same load through an in-process server whose filter accepts
    # everything, client and server in one process. What it costs a message is the part of
    # the daemon's work (and the load generator's) that no filter tuning removes.
    "$LOADGEN" --null --addr "$NULL_ADDR" --generate "$CORPUS_COUNT" --seed "$SEED" --concurrency 8 \
        --messages "$MESSAGES" --seconds "$SECONDS_MAX" > "$RESULTS/null-$r.txt"
    echo "protocol alone (null filter, client and server): $(brief "$RESULTS/null-$r.txt")"
    # The same comparison with one filter thread: a core is left for the protocol and the
    # load generator, so the daemon's cost over the engine shows without the two fighting
    # for cores.
    load inspect-milter-1thread 8 "$RESULTS/inspect-milter-1thread-$r.txt" --pid "${ROOTS[inspect-milter-1thread]}"
    echo "inspect-milter with 1 filter thread, concurrency 8: $(brief "$RESULTS/inspect-milter-1thread-$r.txt")"
    "$LOADGEN" --engine "$ONE/inspect-milter/config.yaml" --generate "$CORPUS_COUNT" --seed "$SEED" \
        --messages "$MESSAGES" --seconds "$SECONDS_MAX" > "$RESULTS/engine-1thread-$r.txt"
    echo "in-process engine with 1 thread: $(brief "$RESULTS/engine-1thread-$r.txt")"
    for m in $MILTERS; do
        [ "$m" = inspect-milter ] || measure "$m" "$r"
    done
done

# The table: one row per milter and concurrency, each figure the median of the rounds,
# ratios against inspect-milter's medians.
field() { # FILE KEY WORD-INDEX
    awk -v k="$2" -v n="$3" 'index($0, k) == 1 { print $n; exit }' "$1"
}
median() { # KEY WORD-INDEX FILE...
    local k="$1" n="$2" f
    shift 2
    for f in "$@"; do field "$f" "$k" "$n"; done | tr -d '(' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
rounds() { # PREFIX : the files of every round
    local r
    for r in $(seq 1 "$ROUNDS"); do echo "$RESULTS/$1-$r.txt"; done
}
echo
echo "corpus: seed $SEED, $CORPUS_COUNT messages; $MESSAGES messages per run, $ROUNDS rounds (medians);" \
    "inspect-milter rules: ${RULESET:-equivalent}; inspect-milter and rspamd over $TRANSPORT sockets"
printf '%-15s %5s %8s %9s %9s %9s %10s %9s   %s\n' milter conc msg/s p50_ms p99_ms cpu_ms rss_MB errors "inspect-milter is: x msg/s, x lower p50/p99, x less CPU"
for c in $CONCURRENCY; do
    # shellcheck disable=SC2046
    {
        base_rate="$(median throughput 2 $(rounds "inspect-milter-$c"))"
        base_p50="$(median "latency ms" 4 $(rounds "inspect-milter-$c"))"
        base_p99="$(median "latency ms" 8 $(rounds "inspect-milter-$c"))"
        base_cpu="$(median "server cpu" 3 $(rounds "inspect-milter-$c"))"
    }
    for name in $MILTERS; do
        files=()
        mapfile -t files < <(rounds "$name-$c")
        rate="$(median throughput 2 "${files[@]}")"
        p50="$(median "latency ms" 4 "${files[@]}")"
        p99="$(median "latency ms" 8 "${files[@]}")"
        cpu="$(median "server cpu" 3 "${files[@]}")"
        # Peak RSS is a lifetime figure: round 1 (each concurrency after the lower ones only).
        rss="$(field "${files[0]}" "server peak rss" 4)"
        errs="$(for f in "${files[@]}"; do awk '/^messages/ { gsub(/\(/, "", $5); print $5; exit }' "$f"; done |
            awk '{ s += $1 } END { print s + 0 }')"
        ratio=""
        if [ "$name" != inspect-milter ]; then
            ratio="$(awk -v a="$base_rate" -v b="$rate" -v p="$base_p50" -v q="$p50" -v r="$base_p99" -v s="$p99" \
                -v x="$base_cpu" -v y="$cpu" 'BEGIN { printf "%.2fx  %.2fx/%.2fx  %.2fx", a / b, q / p, s / r, y / x }')"
        fi
        printf '%-15s %5s %8s %9s %9s %9s %10s %9s   %s\n' "$name" "$c" "$rate" "$p50" "$p99" "$cpu" "$rss" "$errs" "$ratio"
        # A milter that tempfails every message is broken, not fast: say so next to its row.
        if grep -q '^decisions  *{"tempfail": [0-9]*}$' "${files[@]}"; then
            echo "  ^ $name tempfailed every message: its numbers measure a failure (see its logs)"
        fi
        if [ "$name" != inspect-milter ]; then
            per_round="$(for r in $(seq 1 "$ROUNDS"); do
                awk -v a="$(field "$RESULTS/inspect-milter-$c-$r.txt" throughput 2)" \
                    -v b="$(field "$RESULTS/$name-$c-$r.txt" throughput 2)" 'BEGIN { printf "%.2fx ", a / b }'
            done)"
            echo "  msg/s ratio in each round: $per_round"
        fi
    done
done
# per_round FORMULA FILE-PREFIX-A KEY-A WORD-A FILE-PREFIX-B KEY-B WORD-B : FORMULA (awk, of a
# and b) for each round, then their median: "median (r1 r2 r3)". Figures of one round were
# measured within seconds of each other, so their ratio drifts less than a ratio of medians.
per_round() {
    local formula="$1" pa="$2" ka="$3" na="$4" pb="$5" kb="$6" nb="$7" r values
    values="$(for r in $(seq 1 "$ROUNDS"); do
        awk -v a="$(field "$RESULTS/$pa-$r.txt" "$ka" "$na" | tr -d '(')" \
            -v b="$(field "$RESULTS/$pb-$r.txt" "$kb" "$nb" | tr -d '(')" "BEGIN { printf \"%.0f\\n\", $formula }"
    done)"
    printf '%s%% (rounds: %s)' \
        "$(echo "$values" | sort -g | awk '{ v[NR] = $1 } END { printf "%.0f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')" \
        "$(echo "$values" | tr '\n' ' ' | sed 's/ $//')"
}
for c in $CONCURRENCY; do
    echo "daemon at concurrency $c: $(per_round "100 * a / b" "inspect-milter-$c" throughput 2 engine throughput 2)" \
        "of the in-process engine's msg/s; CPU a message" \
        "+$(per_round "100 * (a - b) / b" "inspect-milter-$c" "server cpu" 3 engine "server cpu" 3) over the engine's;" \
        "the load generator took $(median "client cpu" 3 $(rounds "inspect-milter-$c")) ms a message of the same cores"
done
# With every core busy, msg/s goes as 1 / (CPU a message): the engine's work plus the
# protocol's (both ends, as the null run measures it) puts the daemon's share of the
# engine's msg/s near engine / (engine + protocol) at best, whatever the filter does (the
# machine's drift between the runs blurs it by some per cent either way).
echo "the protocol alone costs $(per_round "100 * a / b" null "server cpu" 3 engine "server cpu" 3)" \
    "of the engine's CPU a message (client and server, null filter): sharing the cores with the" \
    "load generator, the daemon is expected to make about $(per_round "100 * b / (a + b)" null "server cpu" 3 engine "server cpu" 3)" \
    "of the engine's msg/s at best"
echo "with 1 filter thread (a core left for the protocol and the load generator): the daemon at" \
    "concurrency 8 makes $(per_round "100 * a / b" inspect-milter-1thread throughput 2 engine-1thread throughput 2)" \
    "of the engine's msg/s"
echo "(rss_MB: the sum of each process's peak over the milter's process tree, in round 1)"
