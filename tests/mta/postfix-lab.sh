#!/usr/bin/env bash
# postfix-lab.sh - a throw-away, isolated Postfix instance that acts as a REAL
# MTA client for the milter under test (smtpd_milters + non_smtpd_milters,
# milter protocol 6), on loopback only, with no DNS. Several instances can run
# at once (one LAB_DIR and LAB_PORT each). Run as root (Postfix master,
# post-install and postsuper need it). Packages come from install-deps.sh;
# nothing here needs the network, so it also works inside a private network
# namespace:  unshare --net sh -c 'ip link set lo up; tests/mta/postfix-lab.sh start ...'
#
# Usage:
#   postfix-lab.sh start MILTER_ADDR   create/configure/start the instance and wait
#                                      until the SMTP listener is up. MILTER_ADDR:
#                                      inet:127.0.0.1:PORT | inet:[::1]:PORT | unix:/abs/path
#                                      | none; libmilter forms inet:PORT@HOST,
#                                      inet6:PORT@::1, local:/path are converted;
#                                      several milters: comma separated.
#                                      Same configuration already running: no-op (0.1 s).
#                                      Only milter/size/TLS/timeout settings changed:
#                                      reload. Anything else changed: restart.
#   postfix-lab.sh milter MILTER_ADDR  point the running instance at another milter
#                                      (postconf + reload, no restart)
#   postfix-lab.sh send [swaks args]   one SMTP transaction via swaks; exit code = swaks'
#                                      (0 accepted; 23/24/25 rejected at MAIL/RCPT/DATA,
#                                      26 rejected after the message body = milter
#                                      reject/tempfail at end of message). Add --tls for
#                                      STARTTLS (needs LAB_TLS), --data @FILE for a file.
#   postfix-lab.sh inject FILE|- [RCPT..]  submit with Postfix sendmail(1) -> pickup ->
#                                      cleanup (non_smtpd_milters); no RCPT: -t
#   postfix-lab.sh inbox [-c|-H]       wait until nothing is waiting for delivery, then
#                                      print delivered mail, oldest first, each under a
#                                      "==> message N: PATH <==" line (-c: count only,
#                                      -H: headers only)
#   postfix-lab.sh held [-c|-v]        hold queue (milter QUARANTINE) as postqueue -j JSON
#                                      lines; -c: count; -v: adds each message's headers
#   postfix-lab.sh queue               postqueue -p (all queues)
#   postfix-lab.sh drain [SECS]        wait until no message is waiting for delivery
#   postfix-lab.sh log [-f]            the instance's maillog file
#   postfix-lab.sh clear               delete all queued/held/delivered mail, empty the log
#   postfix-lab.sh postconf K=V ...    postconf -e + reload (without '=': print the value)
#   postfix-lab.sh status              state; exit 0 running, 3 stopped
#   postfix-lab.sh env                 shell exports (LAB_DIR, LAB_PORT, LAB_BIND,
#                                      MAIL_CONFIG, LAB_TLS_CERT)
#   postfix-lab.sh stop                stop master and every child (files kept); safe
#                                      to call when not running or never started
#   postfix-lab.sh destroy             stop and delete the state directory
#   postfix-lab.sh install             run install-deps.sh (needs the Debian mirror)
#
# Environment:
#   LAB_DIR        state directory (default: a mktemp dir under ${TMPDIR:-/tmp},
#                  remembered in $LAB_STATE_FILE). Set it explicitly when several
#                  instances run at once.
#   LAB_STATE_FILE where the default LAB_DIR is remembered (${TMPDIR:-/tmp}/postfix-lab.current)
#   LAB_PORT       SMTP port for `start` (default: the instance's previous port, else
#                  2525; "auto" picks a free one, see `env`/`status`). Every other
#                  command uses the port the instance was started with ($LAB_DIR/lab.env).
#   LAB_BIND       listen address (default 127.0.0.1; ::1 works too)
#   LAB_INET_PROTOCOLS  default all (so milters on 127.0.0.1 and [::1] both work)
#   LAB_TLS        0 (default): no STARTTLS; 1 or may: STARTTLS offered
#                  (smtpd_tls_security_level = may); encrypt: STARTTLS required.
#                  A self-signed certificate is made once in $LAB_DIR/tls/ (cert.pem:
#                  CN and subjectAltName = LAB_HOSTNAME, localhost, 127.0.0.1, ::1;
#                  CA:FALSE, so rustls accepts it as its own trust anchor).
#   LAB_TLS_CERT / LAB_TLS_KEY  use these PEM files instead of generating one
#   LAB_MESSAGE_SIZE_LIMIT  message_size_limit in bytes (default 50000000)
#   LAB_HEADER_SIZE_LIMIT   header_size_limit (default 102400, Postfix's default)
#   LAB_MILTER_DEFAULT_ACTION  accept|reject|tempfail|quarantine (default tempfail,
#                  Postfix's own default)
#   LAB_MILTER_CONNECT_TIMEOUT / LAB_MILTER_COMMAND_TIMEOUT / LAB_MILTER_CONTENT_TIMEOUT
#                  (default 10s / 30s / 60s)
#   LAB_MILTER_CONNECT_MACROS, _HELO_, _MAIL_, _RCPT_, _DATA_, _EOH_, _EOD_MACROS
#                  override the milter_*_macros lists (see write_config; TLS macros
#                  are sent at HELO, MAIL and DATA)
#   LAB_HOSTNAME   myhostname (default lab.localdomain)
#   LAB_FROM / LAB_TO / LAB_HELO  swaks defaults for `send`
#   LAB_WAIT       seconds `inbox`/`drain` wait for delivery (default 15)
#   LAB_MAIL_UID / LAB_MAIL_GID  owner of delivered files (default 65534 = nobody/nogroup)
#
# $LAB_DIR layout: etc/ (main.cf, master.cf; used via postfix -c), spool/
# (queue_directory), data/, maildir/inbox/{new,cur}/ (every delivered message,
# one file each), postfix.log (maillog_file; there is no syslog), tls/, lab.env.
# Delivery: every recipient in every domain goes to that one Maildir
# (transport_maps = static:virtual); nothing ever leaves the machine.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "$0")" && pwd -P)
LAB_BIND=${LAB_BIND:-127.0.0.1}
LAB_HOSTNAME=${LAB_HOSTNAME:-lab.localdomain}
LAB_INET_PROTOCOLS=${LAB_INET_PROTOCOLS:-all}
LAB_TLS=${LAB_TLS:-0}
LAB_MESSAGE_SIZE_LIMIT=${LAB_MESSAGE_SIZE_LIMIT:-50000000}
LAB_HEADER_SIZE_LIMIT=${LAB_HEADER_SIZE_LIMIT:-102400}
LAB_MILTER_DEFAULT_ACTION=${LAB_MILTER_DEFAULT_ACTION:-tempfail}
LAB_MILTER_CONNECT_TIMEOUT=${LAB_MILTER_CONNECT_TIMEOUT:-10s}
LAB_MILTER_COMMAND_TIMEOUT=${LAB_MILTER_COMMAND_TIMEOUT:-30s}
LAB_MILTER_CONTENT_TIMEOUT=${LAB_MILTER_CONTENT_TIMEOUT:-60s}
TLS_MACROS='{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}'
defmac() { [ -n "${!1:-}" ] || printf -v "$1" '%s' "$2"; }
defmac LAB_MILTER_CONNECT_MACROS 'j {daemon_name} {daemon_addr} v _ {client_addr} {client_name}'
defmac LAB_MILTER_HELO_MACROS "$TLS_MACROS"
defmac LAB_MILTER_MAIL_MACROS "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer} $TLS_MACROS"
defmac LAB_MILTER_RCPT_MACROS 'i {rcpt_addr} {rcpt_host} {rcpt_mailer}'
defmac LAB_MILTER_DATA_MACROS "i $TLS_MACROS"
defmac LAB_MILTER_EOH_MACROS 'i'
defmac LAB_MILTER_EOD_MACROS 'i'
LAB_FROM=${LAB_FROM:-sender@example.test}
LAB_TO=${LAB_TO:-rcpt@example.test}
LAB_HELO=${LAB_HELO:-client.example.test}
LAB_WAIT=${LAB_WAIT:-15}
LAB_MAIL_UID=${LAB_MAIL_UID:-65534}
LAB_MAIL_GID=${LAB_MAIL_GID:-65534}
LAB_STATE_FILE=${LAB_STATE_FILE:-${TMPDIR:-/tmp}/postfix-lab.current}

die()  { echo "$PROG: error: $*" >&2; exit 1; }
warn() { echo "$PROG: warning: $*" >&2; }
info() { echo "$PROG: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (Postfix master, post-install and postsuper need it)"

need_packages() {
    [ -x /usr/sbin/postfix ] || die "postfix is not installed (run $HERE/install-deps.sh)"
    getent passwd postfix >/dev/null || die "user 'postfix' missing (broken postfix install?)"
    getent group postdrop >/dev/null || die "group 'postdrop' missing (broken postfix install?)"
}

# ---------------------------------------------------------------- state dir --
# resolve_lab_dir create|existing|maybe
resolve_lab_dir() {
    local mode=$1
    if [ -n "${LAB_DIR:-}" ]; then
        :
    elif [ -s "$LAB_STATE_FILE" ] && [ -d "$(cat "$LAB_STATE_FILE")" ]; then
        LAB_DIR=$(cat "$LAB_STATE_FILE")
    elif [ "$mode" = create ]; then
        LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/postfix-lab.XXXXXX")
        echo "$LAB_DIR" > "$LAB_STATE_FILE"
    elif [ "$mode" = maybe ]; then
        LAB_DIR=""; return 0
    else
        die "no lab instance (LAB_DIR unset and $LAB_STATE_FILE missing); run '$PROG start MILTER_ADDR' first"
    fi
    if [ "$mode" = create ]; then
        mkdir -p "$LAB_DIR"
    elif [ "$mode" = maybe ]; then
        [ -d "$LAB_DIR" ] || { LAB_DIR=""; return 0; }
    else
        [ -f "$LAB_DIR/etc/main.cf" ] || die "$LAB_DIR has no lab instance; run '$PROG start MILTER_ADDR' first"
    fi
    LAB_DIR=$(cd "$LAB_DIR" && pwd -P)
    ETC=$LAB_DIR/etc
    SPOOL=$LAB_DIR/spool
    MAILDIR=$LAB_DIR/maildir/inbox
    LOG=$LAB_DIR/postfix.log
    export MAIL_CONFIG=$ETC
    # port/bind the instance was started with: they win over LAB_PORT/LAB_BIND
    # for every command but `start` (which uses LAB_PORT if given)
    if [ -f "$LAB_DIR/lab.env" ]; then
        RUN_BIND=$(sed -n 's/^LAB_BIND=//p' "$LAB_DIR/lab.env")
        if [ "$mode" != create ] || [ -z "${LAB_PORT:-}" ]; then
            LAB_PORT=$(sed -n 's/^LAB_PORT=//p' "$LAB_DIR/lab.env")
        fi
    fi
    LAB_PORT=${LAB_PORT:-2525}
}

# USER (postfix; nobody for delivery) must be able to traverse DIR. A private
# temporary parent (mktemp -d and Rust's tempfile make them 0700) gets o+x
# (search only, not read); anything outside the temp directory is left alone.
make_traversable() {
    local dir=$1 user=$2 d tmproot
    su -s /bin/sh "$user" -c "test -x '$dir'" 2>/dev/null && return 0
    tmproot=$(cd "${TMPDIR:-/tmp}" && pwd -P)
    d=$dir
    while [ "$d" != / ] && [ -n "$d" ]; do
        if [ ! -x "$d" ] || ! su -s /bin/sh "$user" -c "test -x '$d'" 2>/dev/null; then
            case "$d/" in
                "$tmproot"/?*|/tmp/?*) chmod o+x "$d"; info "made $d searchable for '$user' (chmod o+x)" ;;
            esac
        fi
        d=$(dirname "$d")
    done
    su -s /bin/sh "$user" -c "test -x '$dir'" 2>/dev/null \
        || die "user '$user' cannot reach $dir (a parent directory is not searchable by others); choose another directory"
}

master_pid() {
    [ -n "${SPOOL:-}" ] && [ -s "$SPOOL/pid/master.pid" ] || return 0
    sed -n '1{s/ //g;p}' "$SPOOL/pid/master.pid"
}

# Is PID a live process? (kill -0 also succeeds on a zombie, and an exited
# daemon stays a zombie until init reaps it, which can take seconds)
alive() {
    local st
    st=$(sed -n 's/^.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# PID is this instance's master (not a stale pid file's number reused by
# another process): alive, named master, working in our queue directory
is_our_master() {
    [ -n "$1" ] && alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = master ] \
        && [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$SPOOL" ]
}

# quiet check ('postfix status' would write to the maillog every time)
is_running() {
    [ -n "${ETC:-}" ] && [ -f "$ETC/main.cf" ] || return 1
    is_our_master "$(master_pid)"
}

# every process of this instance: Postfix programs chdir() into
# queue_directory, and the daemons share the master's process group
is_postfix_exe() {
    case "$(readlink "/proc/$1/exe" 2>/dev/null)" in
        /usr/lib/postfix/*|/usr/libexec/postfix/*|/usr/sbin/post*|/usr/sbin/sendmail) return 0 ;;
    esac
    return 1
}
instance_pids() {
    local mpid=${1:-} p
    for p in $(find /proc -mindepth 2 -maxdepth 2 -name cwd \( -lname "$SPOOL" -o -lname "$SPOOL/*" \) \
                    2>/dev/null | cut -d/ -f3); do
        is_postfix_exe "$p" && echo "$p"
    done
    # (never "pgrep -g 0": that is the caller's own process group)
    case "$mpid" in
        ''|*[!0-9]*|0|1) ;;
        *) for p in $(pgrep -g "$mpid" 2>/dev/null || true); do is_postfix_exe "$p" && echo "$p"; done ;;
    esac
    return 0
}

# ------------------------------------------------------------------ milter --
# Normalise one milter address to Postfix syntax.
norm_milter() {
    local a=$1
    case "$a" in
        none|"") echo ""; return ;;
        # libmilter/sendmail style inet:PORT@HOST -> inet:HOST:PORT
        inet:*@\[*\]) local r=${a#inet:}; echo "inet:${r#*@}:${r%%@*}"; return ;;
        inet:*@*:*) local r=${a#inet:}; echo "inet:[${r#*@}]:${r%%@*}"; return ;;
        inet:*@*)  local r=${a#inet:};  echo "inet:${r#*@}:${r%%@*}"; return ;;
        inet6:*@*) local r=${a#inet6:}; local h=${r#*@}; h=${h#[}; h=${h%]}; echo "inet:[$h]:${r%%@*}"; return ;;
        local:/*)  echo "unix:${a#local:}"; return ;;
        inet:*:*|unix:/*) echo "$a"; return ;;
        unix:*|local:*) die "unix milter socket must be an absolute path (Postfix resolves relative ones inside its queue directory): $a" ;;
        *) die "bad milter address '$a' (want inet:127.0.0.1:PORT, inet:[::1]:PORT, unix:/abs/path, inet:PORT@HOST or none)" ;;
    esac
}

norm_milters() {
    local arg a m milters=""
    for arg in "$@"; do
        for a in ${arg//,/ }; do
            m=$(norm_milter "$a")
            [ -n "$m" ] && milters="${milters:+$milters, }$m"
        done
    done
    echo "$milters"
}

check_milter_reachable() {
    local a=$1 hp host port
    case "$a" in
        inet:*)
            hp=${a#inet:}; port=${hp##*:}; host=${hp%:*}; host=${host#[}; host=${host%]}
            if ! tcp_listening "$host" "$port"; then
                warn "milter $a is not accepting connections now (milter_default_action=$LAB_MILTER_DEFAULT_ACTION applies)"
            fi ;;
        unix:*)
            local p=${a#unix:}
            if [ ! -S "$p" ]; then
                warn "milter socket $p does not exist now (milter_default_action=$LAB_MILTER_DEFAULT_ACTION applies)"
            elif ! su -s /bin/sh postfix -c "test -w '$p'" 2>/dev/null; then
                warn "milter socket $p is not writable by user 'postfix' (smtpd/cleanup connect as postfix)"
            fi ;;
    esac
}

# -------------------------------------------------------------------- TLS --
ensure_cert() {
    TLS_CERT=${LAB_TLS_CERT:-$LAB_DIR/tls/cert.pem}
    TLS_KEY=${LAB_TLS_KEY:-$LAB_DIR/tls/key.pem}
    if [ -n "${LAB_TLS_CERT:-}" ] || [ -n "${LAB_TLS_KEY:-}" ]; then
        [ -r "$TLS_CERT" ] && [ -r "$TLS_KEY" ] || die "LAB_TLS_CERT/LAB_TLS_KEY must both name readable PEM files"
        return 0
    fi
    [ -s "$TLS_CERT" ] && [ -s "$TLS_KEY" ] && return 0
    command -v openssl >/dev/null || die "openssl is not installed (run $HERE/install-deps.sh)"
    mkdir -p "$LAB_DIR/tls"; chmod 755 "$LAB_DIR/tls"
    cat > "$LAB_DIR/tls/openssl.cnf" <<EOF
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = $LAB_HOSTNAME
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$LAB_HOSTNAME, DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
EOF
    (umask 077; openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
        -config "$LAB_DIR/tls/openssl.cnf" -keyout "$TLS_KEY.tmp" -out "$TLS_CERT.tmp" >/dev/null 2>&1) \
        || die "openssl req failed"
    chmod 600 "$TLS_KEY.tmp"; chmod 644 "$TLS_CERT.tmp"
    mv -f "$TLS_KEY.tmp" "$TLS_KEY"; mv -f "$TLS_CERT.tmp" "$TLS_CERT"
}

# ------------------------------------------------------------------ config --
write_config() {
    local milters=$1 listen tls_level
    case "$LAB_BIND" in
        *:*) listen="[$LAB_BIND]:$LAB_PORT" ;;
        *)   listen="$LAB_BIND:$LAB_PORT" ;;
    esac
    case "$LAB_TLS" in
        0|no|none|"") tls_level=none ;;
        1|yes|may) tls_level=may ;;
        encrypt) tls_level=encrypt ;;
        *) die "LAB_TLS must be 0, 1 (may) or encrypt" ;;
    esac
    mkdir -p "$ETC"
    cat > "$ETC/main.cf.new" <<EOF
# generated by $PROG - isolated test instance (use '$PROG postconf K=V' to change)
compatibility_level = 3.6
queue_directory = $SPOOL
data_directory = $LAB_DIR/data
mail_owner = postfix
setgid_group = postdrop

# logging without syslog: postlogd (see master.cf) writes this file
maillog_file = $LOG
maillog_file_prefixes = $LAB_DIR

# loopback only, no DNS
myhostname = $LAB_HOSTNAME
mydomain = localdomain
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = $LAB_INET_PROTOCOLS
mynetworks = 127.0.0.0/8 [::1]/128
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_banner = \$myhostname ESMTP postfix-lab
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
notify_classes =
biff = no
append_dot_mydomain = no
readme_directory = no
alias_maps =
alias_database =
local_recipient_maps =
relayhost =

# sizes
message_size_limit = $LAB_MESSAGE_SIZE_LIMIT
header_size_limit = $LAB_HEADER_SIZE_LIMIT
mailbox_size_limit = 0
virtual_mailbox_limit = 0

# STARTTLS (LAB_TLS)
smtpd_tls_security_level = $tls_level
smtpd_tls_cert_file = ${TLS_CERT:-}
smtpd_tls_key_file = ${TLS_KEY:-}
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtp_tls_security_level = none

# never deliver anywhere but the lab maildir
transport_maps = static:virtual
virtual_mailbox_base = $LAB_DIR/maildir
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:$LAB_MAIL_UID
virtual_gid_maps = static:$LAB_MAIL_GID
virtual_minimum_uid = 1
# retry deferred mail quickly; no delay warnings
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 30s
delay_warning_time = 0
in_flow_delay = 0

# --- the milter under test ---
smtpd_milters = $milters
non_smtpd_milters = $milters
milter_default_action = $LAB_MILTER_DEFAULT_ACTION
milter_protocol = 6
milter_connect_timeout = $LAB_MILTER_CONNECT_TIMEOUT
milter_command_timeout = $LAB_MILTER_COMMAND_TIMEOUT
milter_content_timeout = $LAB_MILTER_CONTENT_TIMEOUT
# explicit macro lists (a milter that sends SETSYMLIST overrides them per stage)
milter_connect_macros = $LAB_MILTER_CONNECT_MACROS
milter_helo_macros = $LAB_MILTER_HELO_MACROS
milter_mail_macros = $LAB_MILTER_MAIL_MACROS
milter_rcpt_macros = $LAB_MILTER_RCPT_MACROS
milter_data_macros = $LAB_MILTER_DATA_MACROS
milter_end_of_header_macros = $LAB_MILTER_EOH_MACROS
milter_end_of_data_macros = $LAB_MILTER_EOD_MACROS
EOF
    # chroot column = n everywhere: the lab dir is not a chroot jail.
    cat > "$ETC/master.cf.new" <<EOF
# generated by $PROG
# service type  private unpriv  chroot  wakeup  maxproc command + args
$listen inet n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# main.cf settings that need a full restart when they change (the rest: reload)
RESTART_KEYS='^(queue_directory|data_directory|mail_owner|setgid_group|maillog_file|maillog_file_prefixes|inet_interfaces|inet_protocols) '
restart_needed() {
    ! cmp -s "$ETC/master.cf.new" "$ETC/master.cf" && return 0
    ! cmp -s <(grep -E "$RESTART_KEYS" "$ETC/main.cf.new") <(grep -E "$RESTART_KEYS" "$ETC/main.cf")
}
config_changed() {
    ! { cmp -s "$ETC/main.cf.new" "$ETC/main.cf" && cmp -s "$ETC/master.cf.new" "$ETC/master.cf"; }
}
install_config() {
    mv -f "$ETC/main.cf.new" "$ETC/main.cf"
    mv -f "$ETC/master.cf.new" "$ETC/master.cf"
    backdate_config
}

# Is something listening on HOST PORT?  Uses ss(8), so that no connection is
# made (a probe connection would be a real SMTP session and reach the milter).
tcp_listening() {
    local host=$1 port=$2
    ss -Hltn "sport = :$port" 2>/dev/null | awk -v h="$host" -v p="$port" '
        { a=$4 } a==h":"p || a=="["h"]:"p || a=="0.0.0.0:"p || a=="*:"p || a=="[::]:"p { f=1 } END { exit !f }'
}
port_in_use() { tcp_listening "${RUN_BIND:-$LAB_BIND}" "$LAB_PORT"; }
any_listener_on() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# A free port below the kernel's ephemeral range: a port from that range can be handed to any
# connecting socket (or a listener on port 0) between this check and Postfix's bind.
pick_port() {
    local p i low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$low" -gt 12000 ] 2>/dev/null || low=32768
    for i in $(seq 1 200); do
        p=$(( 10000 + (RANDOM * 32768 + RANDOM) % (low - 10000) ))
        any_listener_on "$p" || { echo "$p"; return 0; }
    done
    die "no free port found"
}

# Postfix waits until main.cf/master.cf are at least a couple of seconds old
# before it reads them (so as not to read a half-written file): every program
# started right after a change - postfix start, a reloaded master, each new
# smtpd - would sleep up to 2 s. The files are written atomically here, so
# date them back.
backdate_config() {
    touch -d "@$(( $(date +%s) - 10 ))" "$ETC/main.cf" "$ETC/master.cf"
}

# reload and wait until the processes that ran with the old configuration
# (idle smtpd, cleanup, ...) have exited, so the next connection gets the new one
do_reload() {
    local mpid old p i alive
    mpid=$(master_pid)
    old=$(instance_pids "$mpid" | sort -u | grep -vx "$mpid" || true)
    backdate_config
    kill -HUP "$mpid" 2>/dev/null || die "cannot signal master $mpid (reload)"
    for i in $(seq 1 60); do
        alive=""
        for p in $old; do alive "$p" && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.05
    done
    [ -z "$alive" ] || warn "processes still running with the old configuration after reload:$alive"
}

write_env() {
    {
        echo "LAB_DIR=$LAB_DIR"; echo "LAB_PORT=$LAB_PORT"; echo "LAB_BIND=$LAB_BIND"
        echo "MILTERS=$1"; echo "LAB_MILTER_DEFAULT_ACTION=$LAB_MILTER_DEFAULT_ACTION"
        echo "LAB_TLS=$LAB_TLS"; echo "LAB_TLS_CERT=${TLS_CERT:-}"
    } > "$LAB_DIR/lab.env"
}

# -------------------------------------------------------------- subcommands --
cmd_start() {
    [ $# -ge 1 ] || die "usage: $PROG start MILTER_ADDR   (inet:127.0.0.1:PORT | inet:[::1]:PORT | unix:/path | none)"
    case "$LAB_MILTER_DEFAULT_ACTION" in accept|reject|tempfail|quarantine) ;;
        *) die "LAB_MILTER_DEFAULT_ACTION must be accept|reject|tempfail|quarantine" ;; esac
    case "$LAB_MESSAGE_SIZE_LIMIT$LAB_HEADER_SIZE_LIMIT" in *[!0-9]*) die "LAB_MESSAGE_SIZE_LIMIT/LAB_HEADER_SIZE_LIMIT must be numbers" ;; esac
    local milters
    milters=$(norm_milters "$@")
    need_packages
    resolve_lab_dir create
    RUN_BIND=$LAB_BIND
    # an explicit LAB_PORT wins over the remembered one; "auto" keeps a running
    # instance's port and otherwise picks a free one
    if [ "$LAB_PORT" = auto ]; then
        LAB_PORT=$(sed -n 's/^LAB_PORT=//p' "$LAB_DIR/lab.env" 2>/dev/null || true)
        if [ -z "$LAB_PORT" ] || ! is_running; then LAB_PORT=$(pick_port); fi
    fi
    case "$LAB_PORT" in ''|*[!0-9]*) die "LAB_PORT must be a number or auto" ;; esac
    # Postfix daemons run as 'postfix' and must traverse the lab dir.
    chmod 755 "$LAB_DIR"
    make_traversable "$LAB_DIR" postfix
    TLS_CERT="" TLS_KEY=""
    case "$LAB_TLS" in 0|no|none|"") ;; *) ensure_cert ;; esac
    write_config "$milters"
    if is_running; then
        if ! config_changed; then
            rm -f "$ETC"/*.new
            info "already running with this configuration (LAB_DIR=$LAB_DIR port=$LAB_PORT)"
            [ -z "$milters" ] || check_milter_reachable "${milters%%,*}"
            write_env "$milters"
            return 0
        fi
        if ! restart_needed; then
            install_config
            do_reload
            write_env "$milters"
            [ -z "$milters" ] || check_milter_reachable "${milters%%,*}"
            info "reloaded: smtp=$LAB_BIND:$LAB_PORT milters='${milters:-none}' default_action=$LAB_MILTER_DEFAULT_ACTION tls=$LAB_TLS LAB_DIR=$LAB_DIR"
            return 0
        fi
        info "configuration changed; restarting"
        cmd_stop
    else
        # leftovers of an instance that died (stale pid file, orphaned children)
        cmd_stop >/dev/null 2>&1 || true
    fi
    if port_in_use; then
        rm -f "$ETC"/*.new
        die "$LAB_BIND:$LAB_PORT is already in use by another process (set LAB_PORT)"
    fi
    install_config
    # postfix(1) chdir()s into queue_directory before anything else
    mkdir -p "$SPOOL" "$LAB_DIR/data" "$LAB_DIR/maildir"
    chmod 755 "$SPOOL"
    chown postfix "$LAB_DIR/data"; chmod 700 "$LAB_DIR/data"
    chown "$LAB_MAIL_UID:$LAB_MAIL_GID" "$LAB_DIR/maildir"
    chmod 755 "$LAB_DIR/maildir"
    touch "$LOG"
    if ! postfix -c "$ETC" start >"$LAB_DIR/start.out" 2>&1; then
        cat "$LAB_DIR/start.out" >&2
        tail -n 20 "$LOG" >&2 || true
        die "postfix start failed (LAB_DIR=$LAB_DIR)"
    fi
    # wait for the SMTP listener (master opens it before it forks smtpd)
    local i
    for i in $(seq 1 100); do
        port_in_use && break
        sleep 0.05
    done
    port_in_use || { tail -n 20 "$LOG" >&2; die "SMTP listener $LAB_BIND:$LAB_PORT did not come up"; }
    write_env "$milters"
    [ -z "$milters" ] || check_milter_reachable "${milters%%,*}"
    info "running: smtp=$LAB_BIND:$LAB_PORT milters='${milters:-none}' default_action=$LAB_MILTER_DEFAULT_ACTION tls=$LAB_TLS LAB_DIR=$LAB_DIR"
}

cmd_milter() {
    [ $# -ge 1 ] || die "usage: $PROG milter MILTER_ADDR"
    need_running
    local milters
    milters=$(norm_milters "$@")
    postconf -c "$ETC" -e "smtpd_milters = $milters" "non_smtpd_milters = $milters"
    do_reload
    sed -i "s|^MILTERS=.*|MILTERS=$milters|" "$LAB_DIR/lab.env"
    LAB_MILTER_DEFAULT_ACTION=$(postconf -c "$ETC" -h milter_default_action)
    [ -z "$milters" ] || check_milter_reachable "${milters%%,*}"
    info "milters now '${milters:-none}' (reloaded)"
}

cmd_stop() {
    if [ -z "${LAB_DIR:-}" ]; then info "nothing to stop"; return 0; fi
    [ -d "$SPOOL" ] || { info "not running (LAB_DIR=$LAB_DIR)"; return 0; }
    local pid i left
    pid=$(master_pid)
    if is_our_master "$pid"; then
        # what `postfix stop` does, without its 1-second polling: SIGTERM makes
        # master terminate its whole process group and exit
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            alive "$pid" || break
            sleep 0.05
        done
    else
        pid=""
    fi
    # whatever is left (a hung master, orphaned children): SIGKILL
    for i in 1 2 3; do
        left=$(instance_pids "$pid" | sort -u | tr '\n' ' ')
        left=${left% }
        [ -n "$left" ] || break
        [ $i = 1 ] && sleep 0.2 && continue
        warn "killing leftover Postfix processes: $left"
        kill -9 $left 2>/dev/null || true
        sleep 0.1
    done
    # the listener goes away with master
    for i in $(seq 1 40); do port_in_use || break; sleep 0.05; done
    port_in_use && warn "${RUN_BIND:-$LAB_BIND}:$LAB_PORT is still in use after stop"
    rm -f "$SPOOL/pid/master.pid"
    info "stopped (LAB_DIR=$LAB_DIR)"
}

cmd_destroy() {
    resolve_lab_dir maybe
    [ -n "$LAB_DIR" ] || { info "nothing to destroy"; return 0; }
    cmd_stop
    case "$LAB_DIR" in /|"") die "refusing to delete '$LAB_DIR'" ;; esac
    rm -rf -- "$LAB_DIR"
    if [ -s "$LAB_STATE_FILE" ] && [ "$(cat "$LAB_STATE_FILE")" = "$LAB_DIR" ]; then rm -f "$LAB_STATE_FILE"; fi
    info "removed $LAB_DIR"
}

need_running() { is_running || die "lab postfix is not running (LAB_DIR=$LAB_DIR); run '$PROG start MILTER_ADDR'"; }

cmd_send() {
    need_running
    command -v swaks >/dev/null || die "swaks not installed (run $HERE/install-deps.sh)"
    # later options override these defaults (swaks: last one wins)
    exec swaks --server "${RUN_BIND:-$LAB_BIND}" --port "$LAB_PORT" --from "$LAB_FROM" --to "$LAB_TO" \
        --helo "$LAB_HELO" --timeout 120 "$@"
}

cmd_inject() {
    need_running
    [ $# -ge 1 ] || die "usage: $PROG inject FILE|- [RCPT...]   (no RCPT: recipients from headers, -t)"
    local f=$1; shift
    local in=/dev/stdin
    [ "$f" = - ] || { [ -r "$f" ] || die "cannot read $f"; in=$f; }
    if [ $# -eq 0 ]; then
        /usr/sbin/sendmail -C "$ETC" -i -f "$LAB_FROM" -t < "$in"
    else
        /usr/sbin/sendmail -C "$ETC" -i -f "$LAB_FROM" -- "$@" < "$in"
    fi
    # make pickup look now instead of at its next wakeup
    postqueue -c "$ETC" -f >/dev/null 2>&1 || true
}

# messages not yet delivered (everything but the hold queue)
pending_count() {
    local n m
    n=$(postqueue -c "$ETC" -j 2>/dev/null | grep -vc '"queue_name": *"hold"' || true)
    m=$(find "$SPOOL/maildrop" "$SPOOL/incoming" "$SPOOL/active" -type f 2>/dev/null | wc -l)
    echo $(( ${n:-0} + m ))
}

cmd_drain() {
    need_running
    local secs=${1:-$LAB_WAIT} deadline n
    deadline=$(( $(date +%s) + secs ))
    while :; do
        n=$(pending_count)
        [ "$n" -eq 0 ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && { warn "$n message(s) still queued after ${secs}s (see '$PROG queue')"; return 1; }
        sleep 0.1
    done
}

maildir_files() {
    [ -d "$MAILDIR" ] || return 0
    find "$MAILDIR/new" "$MAILDIR/cur" -type f -printf '%T@ %p\n' 2>/dev/null | sort -n | cut -d' ' -f2-
}

cmd_inbox() {
    local mode=all
    case "${1:-}" in -c|--count) mode=count ;; -H|--headers) mode=headers ;; "") ;;
        *) die "usage: $PROG inbox [-c|--count|-H|--headers]" ;; esac
    if is_running; then cmd_drain || true; fi
    if [ $mode = count ]; then maildir_files | wc -l; return 0; fi
    local f n=0
    while IFS= read -r f; do
        n=$((n + 1))
        echo "==> message $n: $f <=="
        if [ $mode = headers ]; then sed '/^\r\{0,1\}$/q' "$f"; else cat "$f"; fi
        echo
    done < <(maildir_files)
    [ $n -gt 0 ] || info "inbox is empty ($MAILDIR)"
}

cmd_held() {
    local mode=list
    case "${1:-}" in -c|--count) mode=count ;; -v|--verbose) mode=verbose ;; "") ;;
        *) die "usage: $PROG held [-c|--count|-v|--verbose]" ;; esac
    need_running
    local lines
    lines=$(postqueue -c "$ETC" -j | grep '"queue_name": *"hold"' || true)
    if [ $mode = count ]; then
        if [ -z "$lines" ]; then echo 0; else printf '%s\n' "$lines" | wc -l; fi
        return 0
    fi
    [ -n "$lines" ] || { info "hold queue is empty"; return 0; }
    printf '%s\n' "$lines"
    if [ $mode = verbose ]; then
        local id
        for id in $(printf '%s\n' "$lines" | sed -n 's/.*"queue_id": *"\([^"]*\)".*/\1/p'); do
            echo "==> held $id <=="
            postcat -c "$ETC" -h -q "$id" || true
            echo
        done
    fi
}

cmd_queue() { need_running; postqueue -c "$ETC" -p; }

cmd_log() {
    [ -f "$LOG" ] || die "no log yet ($LOG)"
    if [ "${1:-}" = -f ]; then exec tail -n +1 -F "$LOG"; fi
    cat "$LOG"
}

cmd_clear() {
    need_running
    postsuper -c "$ETC" -d ALL >/dev/null 2>&1 || true
    find "$MAILDIR" -type f -delete 2>/dev/null || true
    : > "$LOG"
    info "cleared queues, maildir and log"
}

cmd_postconf() {
    [ $# -ge 1 ] || die "usage: $PROG postconf KEY=VALUE ...   (without '=': print)"
    local kv changed=0
    for kv in "$@"; do
        case "$kv" in *=*) postconf -c "$ETC" -e "$kv"; changed=1 ;; *) postconf -c "$ETC" -h "$kv" ;; esac
    done
    if [ $changed = 1 ] && is_running; then do_reload; info "reloaded"; fi
}

cmd_status() {
    echo "LAB_DIR=$LAB_DIR"
    grep -v '^LAB_DIR=' "$LAB_DIR/lab.env" 2>/dev/null || true
    if is_running; then
        echo "state=running master_pid=$(master_pid)"
    else
        echo "state=stopped"; return 3
    fi
}

cmd_env() {
    echo "export LAB_DIR='$LAB_DIR'"
    echo "export MAIL_CONFIG='$ETC'"
    sed -n 's/^\(LAB_PORT\|LAB_BIND\|LAB_TLS_CERT\)=\(.*\)/export \1='"'"'\2'"'"'/p' "$LAB_DIR/lab.env" 2>/dev/null || true
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

sub=${1:-}; [ $# -gt 0 ] && shift
case "$sub" in
    start)    cmd_start "$@" ;;
    milter)   resolve_lab_dir existing; cmd_milter "$@" ;;
    stop)     resolve_lab_dir maybe; cmd_stop ;;
    destroy)  cmd_destroy ;;
    install)  exec "$HERE/install-deps.sh" "$@" ;;
    send)     resolve_lab_dir existing; cmd_send "$@" ;;
    inject)   resolve_lab_dir existing; cmd_inject "$@" ;;
    inbox)    resolve_lab_dir existing; cmd_inbox "$@" ;;
    held)     resolve_lab_dir existing; cmd_held "$@" ;;
    queue|mailq) resolve_lab_dir existing; cmd_queue ;;
    log)      resolve_lab_dir existing; cmd_log "$@" ;;
    drain|wait) resolve_lab_dir existing; cmd_drain "$@" ;;
    clear)    resolve_lab_dir existing; cmd_clear ;;
    postconf) resolve_lab_dir existing; cmd_postconf "$@" ;;
    status)   resolve_lab_dir existing; cmd_status ;;
    env)      resolve_lab_dir existing; cmd_env ;;
    -h|--help|help|"") usage ;;
    *) usage >&2; die "unknown subcommand '$sub'" ;;
esac
