#!/usr/bin/env bash
# sendmail-lab.sh - a private, throw-away Sendmail 8.17 that acts as a real
# milter client (INPUT_MAIL_FILTER) for end-to-end tests, on loopback only.
#
# Sendmail is NOT installed: Debian's sendmail-bin conflicts with postfix. Its
# .debs are fetched once with `apt-get download` and unpacked with `dpkg -x`
# into a cache directory ($SM_CACHE) that survives between runs and checkouts;
# every later start uses that cache and needs no network, so it also works
# inside a private network namespace (`unshare --net`, with `ip link set lo up`).
# Each instance keeps its state (config, queue, inbox, logs) in its own
# directory under ${TMPDIR:-/tmp}.
#
# Sendmail runs in private mount+UTS namespaces (unshare -m -u) with hostname
# smlab.localdomain and bind-mounted private /etc/hosts and /etc/resolv.conf
# (nameserver 127.0.0.1): it makes no DNS queries and, because its hostname is
# qualified, does not sleep 60 s looking it up. Nothing outside changes.
#
# Usage (as root):
#   sendmail-lab.sh install [--check]  download + unpack into $SM_CACHE (needs the
#                                      Debian mirror); --check: exit 0 if done, 1 if not
#   sendmail-lab.sh start MILTER_ADDR  generate lab.cf and run `sendmail -bD` on
#                                      127.0.0.1:$SM_PORT. MILTER_ADDR is libmilter
#                                      style inet:PORT@127.0.0.1, inet6:PORT@::1,
#                                      unix:/abs/path (local:/abs/path); Postfix style
#                                      inet:127.0.0.1:PORT and inet:[::1]:PORT are converted.
#                                      Restarts the instance if it is already running.
#   sendmail-lab.sh send [swaks args]  one SMTP transaction via swaks; exit code = swaks'
#                                      (0 accepted; 23/24/25 rejected at MAIL/RCPT/DATA;
#                                      26 rejected after the message body = milter
#                                      reject/tempfail at end of message)
#   sendmail-lab.sh inbox [-c]         wait for delivery, print delivered messages
#                                      (one file each, oldest first) / only the count
#   sendmail-lab.sh held [-c]          quarantined messages (sendmail -bp -qQ, with a
#                                      "QUARANTINE: <reason>" line each) / only the count
#   sendmail-lab.sh queue              sendmail -bp (normal queue)
#   sendmail-lab.sh log                SMTP traffic log (sendmail -X): every command and reply
#   sendmail-lab.sh clear              empty queue, quarantine and inbox
#   sendmail-lab.sh status             "running ..." (exit 0) or "stopped" (exit 3)
#   sendmail-lab.sh env                shell exports (SM_DIR, SM_PORT)
#   sendmail-lab.sh stop               stop the daemon and all its children (files kept)
#   sendmail-lab.sh destroy            stop and delete the state directory
#
# Environment:
#   SM_CACHE     unpacked Sendmail (shared, read-only after install)
#                (default /var/cache/inspect-milter-tests/sendmail)
#   SM_DIR       state directory (default: a mktemp dir, remembered in $SM_STATE_FILE)
#   SM_STATE_FILE  where the default SM_DIR is remembered (${TMPDIR:-/tmp}/sendmail-lab.current)
#   SM_PORT      SMTP port on 127.0.0.1 (default 2526; remembered by `start` for later commands)
#   SM_MILTER_DEFAULT_ACTION  what Sendmail does when the milter is unreachable or
#                fails: tempfail (default, F=T), reject (F=R) or accept (no flag)
#   SM_MILTER_TIMEOUTS  INPUT_MAIL_FILTER T= value (default C:10s;S:30s;R:30s;E:60s)
#   SM_MAX_MESSAGE_SIZE  MaxMessageSize (default 0 = unlimited)
#   SM_FROM / SM_TO / SM_HELO  swaks defaults for `send`
#   SM_WAIT      seconds `inbox` waits for delivery (default 15)
#   SM_NO_INSTALL=1  never download (fail if the cache is not unpacked)
#   SM_DEBUG     sendmail -d flags, e.g. 64.5 (milter trace; it also reaches SMTP
#                clients before the greeting, which confuses strict clients)
#
# State dir layout: lab.mc/lab.cf (config), mqueue/ (queue and quarantine),
# inbox/*.eml (delivered mail, one file per message and recipient),
# traffic.log (SMTP dialogue incl. the milter's 4xx/5xx), sendmail.out
# (startup errors; with SM_DEBUG=64.5 also a milter trace), launcher.pid.
# There is no syslog: per-message log lines (milter decisions) are not kept.
set -euo pipefail

PROG=${0##*/}
SM_CACHE=${SM_CACHE:-/var/cache/inspect-milter-tests/sendmail}
SM_FROM=${SM_FROM:-sender@example.test}
SM_TO=${SM_TO:-rcpt@example.test}
SM_HELO=${SM_HELO:-client.example.test}
SM_WAIT=${SM_WAIT:-15}
SM_MILTER_DEFAULT_ACTION=${SM_MILTER_DEFAULT_ACTION:-tempfail}
SM_MILTER_TIMEOUTS=${SM_MILTER_TIMEOUTS:-C:10s;S:30s;R:30s;E:60s}
SM_MAX_MESSAGE_SIZE=${SM_MAX_MESSAGE_SIZE:-0}
SM_STATE_FILE=${SM_STATE_FILE:-${TMPDIR:-/tmp}/sendmail-lab.current}
SM_PKGS=(sendmail-bin sendmail-base sendmail-cf m4 libwrap0)

die()  { echo "$PROG: error: $*" >&2; exit 1; }
warn() { echo "$PROG: warning: $*" >&2; }
info() { echo "$PROG: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root"

ROOT=$SM_CACHE/root                     # dpkg -x target
SMBIN=$ROOT/usr/libexec/sendmail/sendmail
M4BIN=$ROOT/usr/bin/m4
CFDIR=$ROOT/usr/share/sendmail/cf
READY=$SM_CACHE/.unpacked               # written last by a complete install

lib_path() {
    local d p=""
    for d in "$ROOT"/usr/lib/*-linux-gnu* "$ROOT"/lib/*-linux-gnu*; do
        [ -d "$d" ] && p="${p:+$p:}$d"
    done
    echo "$p"
}
set_ld_path() {
    local p; p=$(lib_path)
    [ -z "$p" ] || export LD_LIBRARY_PATH=$p${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}

# ---------------------------------------------------------------- install --
is_unpacked() { [ -f "$READY" ] && [ -x "$SMBIN" ] && [ -x "$M4BIN" ] && [ -f "$CFDIR/m4/cf.m4" ]; }

# shared library -> Debian package, for libraries sendmail needs that a
# machine with postfix may lack (checked with ldd after unpacking)
lib_pkg() {
    case "$1" in
        libwrap.so.*) echo libwrap0 ;;
        liblockfile.so.*) echo liblockfile1 ;;
        libldap*|liblber*) echo libldap-2.5-0 ;;
        libsasl2.so.*) echo libsasl2-2 ;;
        libnsl.so.*) echo libnsl2 ;;
        libdb-5.3.so) echo libdb5.3 ;;
        libssl.so.*|libcrypto.so.*) echo libssl3 ;;
        libtirpc.so.*) echo libtirpc3 ;;
        libgssapi_krb5.so.*|libkrb5.so.*|libk5crypto.so.*|libkrb5support.so.*) echo libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 ;;
        libcom_err.so.*) echo libcom-err2 ;;
        libkeyutils.so.*) echo libkeyutils1 ;;
        *) return 1 ;;
    esac
}

download_unpack() {   # download_unpack PKG...
    local debs=$SM_CACHE/debs d
    mkdir -p "$debs" "$ROOT"
    # apt-get download runs the fetch as user _apt: it needs a writable dir
    chmod 777 "$debs"
    info "downloading $* (apt-get download; nothing is installed)"
    if ! (cd "$debs" && apt-get -q download "$@" >/dev/null 2>&1); then
        env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null 2>&1 \
            || warn "apt-get update failed"
        (cd "$debs" && apt-get -q download "$@") || die "apt-get download $* failed"
    fi
    for d in "$@"; do
        for f in "$debs/${d}"_*.deb; do dpkg -x "$f" "$ROOT"; done
    done
}

cmd_install() {
    if [ "${1:-}" = --check ]; then
        if is_unpacked; then echo "sendmail unpacked in $ROOT"; return 0; fi
        echo "sendmail not unpacked in $ROOT"; return 1
    fi
    is_unpacked && { info "already unpacked in $ROOT"; return 0; }
    [ "${SM_NO_INSTALL:-0}" = 1 ] && die "sendmail not unpacked in $ROOT and SM_NO_INSTALL=1 (run '$PROG install' first)"
    command -v apt-get >/dev/null || die "no apt-get: cannot download sendmail"
    mkdir -p "$SM_CACHE"
    # serialise concurrent installs into the same cache
    exec 9>"$SM_CACHE/.lock"
    flock 9
    is_unpacked && { info "already unpacked in $ROOT"; return 0; }
    rm -rf "$ROOT" "$SM_CACHE/debs"
    download_unpack "${SM_PKGS[@]}"
    # the binary is setgid: the loader would ignore LD_LIBRARY_PATH (libwrap)
    chmod g-s "$SMBIN"
    # any other library the host lacks?
    set_ld_path
    local missing pkgs=() more=() l p
    missing=$(ldd "$SMBIN" "$M4BIN" 2>/dev/null | awk '/not found/ { print $1 }' | sort -u)
    for l in $missing; do
        p=$(lib_pkg "$l") || die "sendmail needs $l, which is not installed (install the package that has it)"
        read -r -a more <<< "$p"
        pkgs+=("${more[@]}")
    done
    if [ ${#pkgs[@]} -gt 0 ]; then
        mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
        download_unpack "${pkgs[@]}"
        set_ld_path
        missing=$(ldd "$SMBIN" "$M4BIN" 2>/dev/null | awk '/not found/ { print $1 }' | sort -u)
        [ -z "$missing" ] || die "sendmail still lacks: $missing"
    fi
    # keep only the unpacked tree (the .debs are not needed any more)
    rm -rf "$SM_CACHE/debs"
    date -u +%FT%TZ > "$READY"
    info "unpacked into $ROOT"
}

# --------------------------------------------------------------- state dir --
# The delivery agent runs as nobody and must traverse the state dir. A private
# temporary parent (mktemp -d and Rust's tempfile make them 0700) gets o+x
# (search only, not read); anything outside the temp directory is left alone.
make_traversable() {
    local dir=$1 user=$2 d tmproot
    setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$dir" 2>/dev/null && return 0
    tmproot=$(cd "${TMPDIR:-/tmp}" && pwd -P)
    d=$dir
    while [ "$d" != / ] && [ -n "$d" ]; do
        if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$d" 2>/dev/null; then
            case "$d/" in
                "$tmproot"/?*|/tmp/?*) chmod o+x "$d"; info "made $d searchable for $user (chmod o+x)" ;;
            esac
        fi
        d=$(dirname "$d")
    done
    setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$dir" 2>/dev/null \
        || die "user $user cannot reach $dir (a parent directory is not searchable by others); choose another SM_DIR"
}

resolve_dir() {
    local mode=$1
    if [ -n "${SM_DIR:-}" ]; then :
    elif [ -s "$SM_STATE_FILE" ] && [ -d "$(cat "$SM_STATE_FILE")" ]; then SM_DIR=$(cat "$SM_STATE_FILE")
    elif [ "$mode" = create ]; then
        SM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sendmail-lab.XXXXXX"); echo "$SM_DIR" > "$SM_STATE_FILE"
    elif [ "$mode" = maybe ]; then
        SM_DIR=""; return 0
    else die "no sendmail lab (SM_DIR unset, $SM_STATE_FILE missing); run '$PROG start MILTER_ADDR'"; fi
    if [ "$mode" = create ]; then mkdir -p "$SM_DIR"; chmod 755 "$SM_DIR"; fi
    [ -d "$SM_DIR" ] || { [ "$mode" = maybe ] && { SM_DIR=""; return 0; }; die "$SM_DIR does not exist"; }
    SM_DIR=$(cd "$SM_DIR" && pwd -P)
    CF=$SM_DIR/lab.cf
    # the port `start` used, unless SM_PORT is given
    if [ -z "${SM_PORT:-}" ] && [ -f "$SM_DIR/lab.env" ]; then
        SM_PORT=$(sed -n 's/^SM_PORT=//p' "$SM_DIR/lab.env")
    fi
    SM_PORT=${SM_PORT:-2526}
    set_ld_path
}

norm_milter() {
    case "$1" in
        inet:*@*|inet6:*@*|unix:/*) echo "$1" ;;
        local:/*) echo "unix:${1#local:}" ;;
        inet:\[*\]:*) local r=${1#inet:}; local h=${r%:*}; h=${h#[}; h=${h%]}; echo "inet6:${r##*:}@$h" ;;
        inet:*:*) local r=${1#inet:}; echo "inet:${r##*:}@${r%:*}" ;;
        *) die "bad milter address '$1' (want inet:PORT@127.0.0.1, inet6:PORT@::1 or unix:/abs/path)" ;;
    esac
}

write_ns_files() {
    printf '127.0.0.1\tlocalhost\n127.0.0.1\tsmlab.localdomain smlab\n::1\tlocalhost ip6-localhost\n' > "$SM_DIR/hosts"
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$SM_DIR/resolv.conf"
}

write_config() {
    local milter=$1 flags
    case "$SM_MILTER_DEFAULT_ACTION" in
        tempfail) flags="F=T, " ;; reject) flags="F=R, " ;; accept) flags="" ;;
        *) die "SM_MILTER_DEFAULT_ACTION must be tempfail|reject|accept" ;;
    esac
    case "$SM_MAX_MESSAGE_SIZE" in ''|*[!0-9]*) die "SM_MAX_MESSAGE_SIZE must be a number" ;; esac
    mkdir -p "$SM_DIR/mqueue" "$SM_DIR/inbox"
    chmod 700 "$SM_DIR/mqueue"
    chown 65534:65534 "$SM_DIR/inbox"; chmod 755 "$SM_DIR/inbox"
    printf 'hosts\tfiles\naliases\tfiles\n' > "$SM_DIR/service.switch"
    write_ns_files
    : > "$SM_DIR/aliases"
    : > "$SM_DIR/helpfile"
    # delivery "mailer": one file per message and recipient, run as nobody
    cat > "$SM_DIR/deliver.sh" <<EOF
#!/bin/sh
# \$1 = recipient; stdin = message (sendmail prog mailer)
umask 022
f="$SM_DIR/inbox/\$(date +%s.%N).\$\$.eml"
cat > "\$f.tmp" && mv "\$f.tmp" "\$f"
EOF
    chmod 755 "$SM_DIR/deliver.sh"
    cat > "$SM_DIR/lab.mc" <<EOF
divert(-1)
# generated by $PROG - do not edit
divert(0)dnl
VERSIONID(\`sendmail-lab')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`smlab.localdomain')dnl
define(\`QUEUE_DIR', \`$SM_DIR/mqueue')dnl
define(\`STATUS_FILE', \`$SM_DIR/sendmail.st')dnl
define(\`confPID_FILE', \`$SM_DIR/sendmail.pid')dnl
define(\`ALIAS_FILE', \`$SM_DIR/aliases')dnl
define(\`confHELP_FILE', \`$SM_DIR/helpfile')dnl
define(\`confSERVICE_SWITCH_FILE', \`$SM_DIR/service.switch')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confDEAD_LETTER_DROP', \`$SM_DIR/dead.letter')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`confDEF_USER_ID', \`65534:65534')dnl
define(\`confDELIVERY_MODE', \`background')dnl
define(\`confMAX_MESSAGE_SIZE', \`$SM_MAX_MESSAGE_SIZE')dnl
define(\`confLOG_LEVEL', \`14')dnl
define(\`confMILTER_LOG_LEVEL', \`14')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confDONT_BLAME_SENDMAIL', \`GroupWritableDirPathSafe,TrustStickyBit')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`promiscuous_relay')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA-lab, Port=$SM_PORT, Addr=127.0.0.1')dnl
INPUT_MAIL_FILTER(\`lab', \`S=$milter, ${flags}T=$SM_MILTER_TIMEOUTS')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
MAILER_DEFINITIONS
Mlab,	P=$SM_DIR/deliver.sh, F=lsDFMnq, S=EnvFromL/HdrFromL, R=EnvToL/HdrToL, A=deliver.sh \$u
LOCAL_RULE_0
# every recipient goes to the lab inbox
R\$+	\$#lab \$: \$1
EOF
    # (m4 warns on stderr that promiscuous_relay makes an open relay: it only listens on 127.0.0.1)
    "$M4BIN" -D_CF_DIR_="$CFDIR/" "$CFDIR/m4/cf.m4" "$SM_DIR/lab.mc" > "$CF.new" 2> "$SM_DIR/m4.err" \
        || { cat "$SM_DIR/m4.err" >&2; die "m4 failed (see $SM_DIR/lab.mc)"; }
    mv -f "$CF.new" "$CF"
    grep -q "^Xlab" "$CF" || die "generated $CF has no Xlab (milter) line"
}

# Run a command in private mount+UTS namespaces: FQDN hostname and private
# /etc/hosts + /etc/resolv.conf. Without this, sendmail asks the system DNS
# server about an unqualified hostname and then sleeps 60 s ("My unqualified
# host name (x) unknown; sleeping for retry").
NS_SCRIPT='mount --bind "$0/hosts" /etc/hosts &&
    mount --bind "$0/resolv.conf" /etc/resolv.conf &&
    hostname smlab.localdomain && exec "$@"'
smrun() { unshare -m -u --propagation private sh -c "$NS_SCRIPT" "$SM_DIR" "$@"; }

# Is PID a live process? (kill -0 also succeeds on a zombie, and an exited
# daemon stays a zombie until init reaps it, which can take seconds)
alive() {
    local st
    st=$(sed -n 's/^.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

smpid() { [ -n "${SM_DIR:-}" ] && [ -s "$SM_DIR/sendmail.pid" ] && sed -n 1p "$SM_DIR/sendmail.pid" || true; }
launcher_pid() { [ -n "${SM_DIR:-}" ] && cat "$SM_DIR/launcher.pid" 2>/dev/null || true; }
is_running() { local p; p=$(launcher_pid); [ -n "$p" ] && alive "$p" && listening; }
listening() { ss -Hltn "sport = :$SM_PORT" 2>/dev/null | grep -q .; }

# every process in the instance's private mount namespace (daemon, its SMTP
# and queue-runner children, the delivery agent)
ns_pids() {
    local ns=$1 p
    [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ] || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && alive "${p#/proc/}" && echo "${p#/proc/}"
    done
    return 0
}

cmd_start() {
    [ $# -eq 1 ] || die "usage: $PROG start MILTER_ADDR"
    local milter; milter=$(norm_milter "$1")
    case "$SM_PORT" in ''|*[!0-9]*) die "SM_PORT must be a number" ;; esac
    command -v swaks >/dev/null || warn "swaks is not installed ('$PROG send' needs it)"
    is_unpacked || cmd_install
    is_running && cmd_stop
    if listening; then die "127.0.0.1:$SM_PORT already in use (set SM_PORT)"; fi
    make_traversable "$SM_DIR" nobody
    write_config "$milter"
    rm -f "$SM_DIR/sendmail.pid" "$SM_DIR/mntns"
    : > "$SM_DIR/traffic.log"
    # -bD: daemon in the foreground (backgrounded here, in its own session so
    # that `stop` can signal the whole process group); -q15s: run the queue
    # often. No -d debug flags by default: in the SMTP server children debug
    # output goes to the client, before the greeting (SM_DEBUG=64.5 for a
    # milter trace anyway).
    setsid unshare -m -u --propagation private sh -c "$NS_SCRIPT" "$SM_DIR" \
        "$SMBIN" -C "$CF" -bD -q15s ${SM_DEBUG:+-d$SM_DEBUG} -X "$SM_DIR/traffic.log" \
        > "$SM_DIR/sendmail.out" 2>&1 < /dev/null &
    local lp=$!
    echo "$lp" > "$SM_DIR/launcher.pid"
    { echo "SM_DIR=$SM_DIR"; echo "SM_PORT=$SM_PORT"; echo "MILTER=$milter"; } > "$SM_DIR/lab.env"
    for _ in $(seq 1 100); do listening && break; alive "$lp" || break; sleep 0.1; done
    listening || { tail -n 30 "$SM_DIR/sendmail.out" >&2; die "sendmail did not start listening on 127.0.0.1:$SM_PORT"; }
    readlink "/proc/$lp/ns/mnt" > "$SM_DIR/mntns" 2>/dev/null || true
    info "running: smtp=127.0.0.1:$SM_PORT milter=$milter pid=$lp SM_DIR=$SM_DIR"
}

# PID belongs to this instance (not a stale pid file's number reused by
# another process): in the instance's mount namespace, or the cached binary
is_ours() {
    local pid=$1 ns=$2
    alive "$pid" || return 1
    if [ -n "$ns" ]; then [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ]; return; fi
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$SMBIN" ]
}

cmd_stop() {
    [ -n "${SM_DIR:-}" ] || { info "nothing to stop"; return 0; }
    local lp ns pids p
    lp=$(launcher_pid)
    ns=$(cat "$SM_DIR/mntns" 2>/dev/null || true)
    case "$lp" in ''|*[!0-9]*|0|1) lp="" ;; esac
    if [ -n "$lp" ] && ! is_ours "$lp" "$ns"; then lp=""; fi
    if [ -n "$lp" ]; then
        # the launcher is the session and process-group leader (setsid)
        kill -TERM -- "-$lp" 2>/dev/null || kill -TERM "$lp" 2>/dev/null || true
        for _ in $(seq 1 50); do alive "$lp" || break; sleep 0.05; done
    fi
    # anything left in the group or in the private mount namespace: SIGKILL
    pids=""
    for p in $(ns_pids "$ns"); do alive "$p" && pids="$pids $p"; done
    # the daemon's process group (lp is validated above; never "pgrep -g 0",
    # that would be the caller's own group)
    if [ -n "$lp" ]; then
        for p in $(pgrep -g "$lp" 2>/dev/null || true); do
            [ "$p" != "$$" ] && is_ours "$p" "$ns" && pids="$pids $p"
        done
    fi
    pids=${pids# }
    if [ -n "$pids" ]; then
        warn "killing leftover processes: $pids"
        kill -9 $pids 2>/dev/null || true
    fi
    for _ in $(seq 1 30); do listening || break; sleep 0.1; done
    listening && warn "127.0.0.1:$SM_PORT is still in use"
    rm -f "$SM_DIR/launcher.pid" "$SM_DIR/mntns"
    info "stopped (SM_DIR=$SM_DIR)"
}

need_running() { is_running || die "sendmail lab not running (SM_DIR=$SM_DIR); run '$PROG start MILTER_ADDR'"; }

cmd_send() {
    need_running
    command -v swaks >/dev/null || die "swaks not installed"
    exec swaks --server 127.0.0.1 --port "$SM_PORT" --from "$SM_FROM" --to "$SM_TO" \
        --helo "$SM_HELO" --timeout 120 "$@"
}

# messages in mqueue that are neither quarantined nor delivered
pending() {
    local n
    n=$(smrun "$SMBIN" -C "$CF" -bp 2>/dev/null | grep -c '^[A-Za-z0-9]\{14\}' || true)
    echo "${n:-0}"
}

cmd_inbox() {
    local deadline=$(( $(date +%s) + SM_WAIT ))
    if is_running; then
        while [ "$(pending)" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.3; done
    fi
    if [ "${1:-}" = -c ]; then find "$SM_DIR/inbox" -name '*.eml' | wc -l; return; fi
    local f n=0
    while IFS= read -r f; do
        n=$((n + 1)); echo "==> message $n: $f <=="; cat "$f"; echo
    done < <(find "$SM_DIR/inbox" -name '*.eml' -printf '%T@ %p\n' | sort -n | cut -d' ' -f2-)
    [ $n -gt 0 ] || info "inbox is empty"
}

cmd_held() {
    local out; out=$(smrun "$SMBIN" -C "$CF" -bp -qQ 2>&1 || true)
    if [ "${1:-}" = -c ]; then printf '%s\n' "$out" | grep -c '^[A-Za-z0-9]\{14\}' || true; return; fi
    printf '%s\n' "$out"
}

cmd_clear() {
    find "$SM_DIR/mqueue" -type f -delete 2>/dev/null || true
    find "$SM_DIR/inbox" -type f -delete 2>/dev/null || true
    : > "$SM_DIR/traffic.log"
    info "cleared"
}

cmd_destroy() {
    resolve_dir maybe
    [ -n "$SM_DIR" ] || { info "nothing to destroy"; return 0; }
    cmd_stop
    case "$SM_DIR" in /|"") die "refusing to delete '$SM_DIR'" ;; esac
    rm -rf -- "$SM_DIR"
    if [ "$(cat "$SM_STATE_FILE" 2>/dev/null)" = "$SM_DIR" ]; then rm -f "$SM_STATE_FILE"; fi
    info "removed $SM_DIR"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

sub=${1:-}; [ $# -gt 0 ] && shift
case "$sub" in
    install) cmd_install "$@" ;;
    start)   resolve_dir create; cmd_start "$@" ;;
    stop)    resolve_dir maybe; cmd_stop ;;
    destroy) cmd_destroy ;;
    send)    resolve_dir existing; cmd_send "$@" ;;
    inbox)   resolve_dir existing; cmd_inbox "$@" ;;
    held)    resolve_dir existing; cmd_held "$@" ;;
    queue)   resolve_dir existing; smrun "$SMBIN" -C "$CF" -bp ;;
    log)     resolve_dir existing; cat "$SM_DIR/traffic.log" 2>/dev/null || info "no traffic yet" ;;
    clear)   resolve_dir existing; cmd_clear ;;
    status)  resolve_dir existing
             if is_running; then echo "running pid=$(launcher_pid) port=$SM_PORT SM_DIR=$SM_DIR"; else echo "stopped SM_DIR=$SM_DIR"; exit 3; fi ;;
    env)     resolve_dir existing; echo "export SM_DIR='$SM_DIR'"; echo "export SM_PORT=$SM_PORT" ;;
    -h|--help|help|"") usage ;;
    *) usage >&2; die "unknown subcommand '$sub'" ;;
esac
