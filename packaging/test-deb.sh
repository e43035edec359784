#!/usr/bin/env bash
# Installs the package built by build-deb.sh and checks it works as installed: the binary,
# started with the installed configuration the way the systemd unit starts it (its own user,
# /run/inspect-milter), answers `check --connect` on its unix socket, and Postfix talks to it
# there; every man page renders; the unit passes `systemd-analyze verify` where available.
# The package is purged at the end, also on failure. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t target/packaging/inspect-milter_*.deb | head -1)
lab=tests/mta/postfix-lab.sh
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

echo "test-deb: installing $deb"
dpkg -i "$deb" >/dev/null
getent passwd inspect-milter >/dev/null || fail "no inspect-milter user"
[ "$(stat -c %U /var/lib/inspect-milter/quarantine)" = inspect-milter ] || fail "state directory not owned by inspect-milter"
dpkg-query -W -f='${Conffiles}\n' inspect-milter | grep -q /etc/inspect-milter/config.yaml || fail "config.yaml is not a conffile"

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

# What systemd would do: RuntimeDirectory, the unit's user and group, its ExecStart.
install -d -o inspect-milter -g inspect-milter -m 0750 /run/inspect-milter
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/inspect-milter.service)
setpriv --reuid=inspect-milter --regid=inspect-milter --init-groups --no-new-privs -- $exec_start \
    2> "$work/daemon.log" &
pid=$!
for _ in $(seq 100); do
    [ -S /run/inspect-milter/milter.sock ] && break
    sleep 0.1
done
[ -S /run/inspect-milter/milter.sock ] || { cat "$work/daemon.log"; fail "no socket"; }
[ "$(stat -c %a /run/inspect-milter/milter.sock)" = 660 ] || fail "socket mode is not 0660"
inspect-milter check --connect unix:/run/inspect-milter/milter.sock 2>&1 | tee "$work/connect.out" || true
grep -q "version 6" "$work/connect.out" || { cat "$work/daemon.log"; fail "check --connect"; }

# Postfix (in the inspect-milter group, as the package arranged) over the unix socket.
id -nG postfix | grep -qw inspect-milter || fail "postfix is not in the inspect-milter group"
"$lab" start unix:/run/inspect-milter/milter.sock >/dev/null
"$lab" send --header "Subject: package test" >"$work/send.out" || { cat "$work/send.out"; fail "send"; }
"$lab" inbox > "$work/inbox.out"
grep -q "^X-Inspect-Verdict: accept score=" "$work/inbox.out" || { cat "$work/inbox.out" "$work/daemon.log"; fail "no verdict header on delivered mail"; }
grep -q "decision=accept" "$work/daemon.log" || fail "no summary line in the daemon's log"
echo "test-deb: the installed daemon answered check --connect and Postfix over its unix socket"
echo "test-deb: PASS"
