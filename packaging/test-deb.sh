#!/usr/bin/env bash
# Installs the package built by build-deb.sh and checks it works as installed, the way an
# administrator meets it:
#
#   1. state a manual run as root left behind: the README's quick start (built-in defaults,
#      state in /var/lib/inspect-milter owned by root) holding one message, and a symbolic
#      link in the state directory pointing out of it;
#   2. the previous build (this package under a lower version) installed over that state:
#      everything in the state directory becomes the daemon's, nothing outside it; the
#      daemon, started the way the systemd unit starts it (its own user, /run/inspect-milter),
#      answers `check --connect` on its unix socket, Postfix talks to it there, it holds a
#      message, and `inspect-milter quarantine list` (no --config: the site's file) lists both;
#   3. the upgrade to this build: the entries are kept and listable; every man page renders;
#      the unit passes `systemd-analyze verify` where available; the daemon delivers mail with
#      its verdict header, and, given a release key it cannot read, says who owns it and the
#      command that fixes it;
#   4. `dpkg -r` keeps the state; `dpkg --purge` removes it, the user and the configuration.
#
# An installed inspect-milter is purged first and the package is purged at the end, also on
# failure. Run as root, on a machine where nothing else listens on 127.0.0.1:8897.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t target/packaging/inspect-milter_*.deb | head -1)
lab=tests/mta/postfix-lab.sh
state=/var/lib/inspect-milter
# Held by the default policy: an encrypted archive (encrypted-archive: quarantine).
held_message=tests/fixtures/mime/encrypted/zip-password.eml
work=$(mktemp -d)
chmod 755 "$work"
export LAB_DIR=$work/postfix LAB_PORT=auto LAB_STATE_FILE=$work/lab.current
pid=
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    "$lab" destroy >/dev/null 2>&1 || true
    dpkg --purge inspect-milter >/dev/null 2>&1 || true
    rm -rf "$work" /run/inspect-milter
}
trap cleanup EXIT
dpkg --purge inspect-milter >/dev/null 2>&1 || true

version=$(dpkg-deb -f "$deb" Version)
echo "test-deb: $deb ($version)"
# The previous build: this package under a lower version (uncompressed: it only lives here).
dpkg-deb -R "$deb" "$work/prev"
sed -i "s/^Version: .*/Version: $version~prev/" "$work/prev/DEBIAN/control"
dpkg-deb -Znone -b "$work/prev" "$work/prev.deb" >/dev/null
bin=$work/prev/usr/bin/inspect-milter

# Waits until the milter at $1 negotiates (the log $2 is shown if it never does).
wait_milter() {
    for _ in $(seq 300); do
        "$bin" check --connect "$1" --timeout 1s >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$2"
    fail "no milter at $1"
}
# The daemon as systemd runs it: RuntimeDirectory, the unit's user and group, its ExecStart
# (under the command "$@", if any).
daemon() {
    install -d -o inspect-milter -g inspect-milter -m 0750 /run/inspect-milter
    local exec_start
    exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/inspect-milter.service)
    # shellcheck disable=SC2086 # ExecStart is split into words, as systemd does
    "$@" setpriv --reuid=inspect-milter --regid=inspect-milter --init-groups --no-new-privs -- $exec_start \
        2> "$work/daemon.log"
}
start_daemon() {
    daemon exec &  # $! is then the daemon itself, for kill and wait
    pid=$!
    wait_milter unix:/run/inspect-milter/milter.sock "$work/daemon.log"
}
stop_daemon() {
    kill -TERM "$pid"
    wait "$pid" || fail "the daemon did not stop cleanly on SIGTERM"
    pid=
}
# Entries in the quarantine, as `quarantine list` finds them without --config.
entries() { inspect-milter quarantine list --json | wc -l; }

# 1. What a manual run as root leaves behind.
INSPECT_MILTER_CONFIG= "$bin" serve 2> "$work/manual.log" &
pid=$!
wait_milter inet:127.0.0.1:8897 "$work/manual.log"
"$lab" start inet:127.0.0.1:8897 >/dev/null
"$lab" send --data "@$held_message" >"$work/send.out" || { cat "$work/send.out"; fail "send to the manual run"; }
kill -INT "$pid"
wait "$pid" || true
pid=
"$lab" destroy >/dev/null
held=$(INSPECT_MILTER_CONFIG= "$bin" quarantine list --json | wc -l)
[ "$held" -ge 1 ] || { cat "$work/manual.log"; fail "the manual run held nothing"; }
for f in "$state/quarantine/.lock" "$state/release.key"; do
    [ "$(stat -c %U "$f")" = root ] || fail "$f: not made by root"
done
echo "outside the state directory" > "$work/outside"
ln -s "$work/outside" "$state/link-out"
echo "test-deb: a manual run as root left $state owned by root, with $held held message(s)"

# 2. The previous build over it.
dpkg -i "$work/prev.deb" >/dev/null
getent passwd inspect-milter >/dev/null || fail "no inspect-milter user"
not_ours=$(find -P "$state" \( ! -user inspect-milter -o ! -group inspect-milter \) -printf '%p ')
[ -z "$not_ours" ] || fail "not the daemon's after install: $not_ours"
[ "$(stat -c %U "$work/outside")" = root ] || fail "postinst followed a link out of $state"
start_daemon
[ "$(stat -c %a /run/inspect-milter/milter.sock)" = 660 ] || fail "socket mode is not 0660"
inspect-milter check --connect unix:/run/inspect-milter/milter.sock 2>&1 | tee "$work/connect.out" || true
grep -q "version 6" "$work/connect.out" || { cat "$work/daemon.log"; fail "check --connect"; }
# Postfix (in the inspect-milter group, as the package arranged) over the unix socket.
id -nG postfix | grep -qw inspect-milter || fail "postfix is not in the inspect-milter group"
"$lab" start unix:/run/inspect-milter/milter.sock >/dev/null
"$lab" send --data "@$held_message" >"$work/send.out" || { cat "$work/send.out"; fail "send"; }
grep -q "decision=quarantine" "$work/daemon.log" || { cat "$work/daemon.log"; fail "the daemon held nothing"; }
[ "$(entries)" -eq $((held + 1)) ] || fail "quarantine list does not find the daemon's store: $(entries) entries"
stop_daemon
echo "test-deb: $version~prev installed over it; its daemon started, held a message, and quarantine list found $((held + 1))"

# 3. The upgrade to this build.
dpkg -i "$deb" >/dev/null
[ "$(dpkg-query -W -f='${Version}' inspect-milter)" = "$version" ] || fail "not upgraded to $version"
dpkg-query -W -f='${Conffiles}\n' inspect-milter | grep -q /etc/inspect-milter/config.yaml || fail "config.yaml is not a conffile"
[ "$(entries)" -eq $((held + 1)) ] || fail "entries lost in the upgrade: $(entries)"
inspect-milter quarantine list --json > "$work/list.json"
[[ $(sed -n 1p "$work/list.json") =~ \"id\":\"([^\"]*)\" ]] || fail "no id in quarantine list --json"
id=${BASH_REMATCH[1]}
inspect-milter quarantine show "$id" >/dev/null || fail "quarantine show $id"

for page in /usr/share/man/man1/inspect-milter*.1.gz; do
    out=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l $page: $out"
    echo "$out" | grep -q "NAME" || fail "$page has no NAME section"
done
echo "test-deb: $(ls /usr/share/man/man1/inspect-milter*.1.gz | wc -l) man pages render"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /usr/lib/systemd/system/inspect-milter.service || fail "systemd-analyze verify"
    echo "test-deb: systemd-analyze verify passed"
else
    echo "test-deb: systemd-analyze not available here; unit not verified"
fi

start_daemon
"$lab" send --header "Subject: package test" >"$work/send.out" || { cat "$work/send.out"; fail "send"; }
"$lab" inbox > "$work/inbox.out"
grep -q "^X-Inspect-Verdict: accept score=" "$work/inbox.out" || { cat "$work/inbox.out" "$work/daemon.log"; fail "no verdict header on delivered mail"; }
grep -q "decision=accept" "$work/daemon.log" || fail "no summary line in the daemon's log"
stop_daemon
echo "test-deb: upgraded to $version: $((held + 1)) entries kept; the daemon answered check --connect and Postfix over its unix socket"

# State the daemon cannot open (say, restored from a backup as root): the error says why.
chown root:root "$state/release.key"
if daemon timeout 60; then
    fail "the daemon started with a release key it cannot read"
fi
grep -q "release.key is owned by root .* runs as inspect-milter; fix (as root): chown -R inspect-milter: $state$" "$work/daemon.log" \
    || { cat "$work/daemon.log"; fail "the daemon's error does not say who owns the key and how to fix it"; }
echo "test-deb: a key the daemon cannot read: $(tail -1 "$work/daemon.log" | sed 's/.*; fix/fix/')"

# 4. Remove keeps the state; purge removes it.
dpkg -r inspect-milter >/dev/null
# (The configuration, a conffile, stays too: the command finds the store through it.)
[ "$("$bin" quarantine list --json | wc -l)" -eq $((held + 1)) ] || fail "dpkg -r did not keep the quarantine"
dpkg --purge inspect-milter >/dev/null
[ ! -e "$state" ] || fail "dpkg --purge left $state"
[ ! -e /etc/inspect-milter/config.yaml ] || fail "dpkg --purge left the configuration"
! getent passwd inspect-milter >/dev/null || fail "dpkg --purge left the inspect-milter user"
! getent group inspect-milter >/dev/null || fail "dpkg --purge left the inspect-milter group"
echo "test-deb: dpkg -r kept the state, dpkg --purge removed it"
echo "test-deb: PASS"
