#!/usr/bin/env bash
# install-deps.sh - install everything the real-MTA and fixture tests need on a
# Debian 12 (bookworm) machine, as root. Idempotent: when everything is already
# present it only runs a few dpkg-query/stat checks (well under a second) and
# never calls apt-get (no `apt-get update`).
#
# Usage:
#   tests/mta/install-deps.sh            install what is missing
#   tests/mta/install-deps.sh --check    install nothing; list what is missing,
#                                        exit 1 if anything is
#   tests/mta/install-deps.sh --no-sendmail   skip the Sendmail download
#
# What it installs (Debian packages, `apt-get install --no-install-recommends`):
#   postfix      the main MTA client. debconf is preseeded with
#                "postfix/main_mailer_type = No configuration", so Debian writes
#                no /etc/postfix/main.cf and starts no system Postfix on port 25;
#                postfix-lab.sh runs private instances with their own main.cf.
#   swaks        the SMTP client used by `postfix-lab.sh send` / `sendmail-lab.sh send`
#   libnet-ssleay-perl, libio-socket-inet6-perl   what `swaks --tls` and swaks
#                to ::1 need (only Recommends of swaks)
#   miltertest   scriptable milter client (tests/mta/miltertest/*.lua)
#   openssl      self-signed certificate for STARTTLS (postfix-lab.sh, LAB_TLS=1)
#   iproute2     `ip` (loopback in a private network namespace) and `ss`
#   util-linux   unshare, setsid
#   mount        mount --bind (Sendmail's private /etc/hosts and resolv.conf)
#   gnupg zip unzip qpdf   tools the fixture tests use to build test messages
# and then runs `sendmail-lab.sh install`: Sendmail 8.17 is NOT installed (its
# package conflicts with postfix); its .debs are fetched with `apt-get download`
# and unpacked into a cache ($SM_CACHE, default /var/cache/inspect-milter-tests/sendmail)
# that later runs use without any network, e.g. inside `unshare --net`.
#
# Environment: SM_CACHE (see sendmail-lab.sh), DEBIAN_FRONTEND is forced to
# noninteractive for apt-get.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "$0")" && pwd -P)
PKGS=(postfix swaks libnet-ssleay-perl libio-socket-inet6-perl miltertest openssl iproute2 util-linux mount gnupg zip unzip qpdf)

check_only=0 with_sendmail=1
for a in "$@"; do
    case "$a" in
        --check) check_only=1 ;;
        --no-sendmail) with_sendmail=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "$PROG: unknown argument '$a'" >&2; exit 2 ;;
    esac
done

die()  { echo "$PROG: error: $*" >&2; exit 1; }
info() { echo "$PROG: $*" >&2; }

# packages whose status is not "install ok installed"
missing_packages() {
    local p st
    for p in "${PKGS[@]}"; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [ "$st" = "install ok installed" ] || echo "$p"
    done
}

mapfile -t need < <(missing_packages)
# a program can be missing although dpkg says its package is installed
# (a broken install): report it; apt-get cannot repair that on its own
for b in postfix:postfix swaks:swaks miltertest:miltertest openssl:openssl ip:iproute2 ss:iproute2 \
         unshare:util-linux setsid:util-linux gpg:gnupg zip:zip unzip:unzip qpdf:qpdf; do
    PATH=$PATH:/usr/sbin:/sbin command -v "${b%%:*}" >/dev/null && continue
    case " ${need[*]} " in *" ${b#*:} "*) ;; *) info "warning: ${b%%:*} not found although package ${b#*:} is installed" ;; esac
done

sm_ok=1
if [ $with_sendmail = 1 ]; then
    "$HERE/sendmail-lab.sh" install --check >/dev/null 2>&1 || sm_ok=0
fi

if [ $check_only = 1 ]; then
    rc=0
    if [ ${#need[@]} -gt 0 ]; then echo "missing packages: ${need[*]}"; rc=1; fi
    if [ $sm_ok = 0 ]; then echo "sendmail cache not unpacked (run: $HERE/sendmail-lab.sh install)"; rc=1; fi
    [ $rc = 0 ] && echo "all test dependencies present"
    exit $rc
fi

if [ "$(id -u)" != 0 ] && { [ ${#need[@]} -gt 0 ] || [ $sm_ok = 0 ]; }; then
    die "must run as root to install what is missing (see --check)"
fi

if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing packages (${need[*]}) and no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # 'No configuration': no /etc/postfix/main.cf, no system Postfix on port 25.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    info "apt-get update"
    apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null \
        || info "warning: apt-get update failed; trying the install with the current lists"
    info "installing: ${need[*]}"
    apt-get -y -q -o DPkg::Lock::Timeout=300 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        install --no-install-recommends "${need[@]}" >/dev/null \
        || die "apt-get install ${need[*]} failed"
    mapfile -t still < <(missing_packages)
    [ ${#still[@]} -eq 0 ] || die "still missing after install: ${still[*]}"
    getent passwd postfix >/dev/null || die "user 'postfix' missing after installing postfix"
    getent group postdrop >/dev/null || die "group 'postdrop' missing after installing postfix"
fi

if [ $with_sendmail = 1 ] && [ $sm_ok = 0 ]; then
    "$HERE/sendmail-lab.sh" install
fi

info "all test dependencies present (postfix $(/usr/sbin/postconf -d -h mail_version 2>/dev/null || echo '?'))"
