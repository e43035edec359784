#!/usr/bin/env bash
# Builds the Debian package: man pages and completions generated from the binary's own CLI
# definition, then `cargo deb`.
#
#   packaging/build-deb.sh              release build (what to ship): inspect-milter_*.deb with
#                                       the binary stripped, and its debug symbols (the line
#                                       tables of the release profile) in
#                                       inspect-milter-dbgsym_*.ddeb beside it, for gdb,
#                                       perf or a backtrace (`dpkg -i` both)
#   packaging/build-deb.sh --profile dev --no-build
#                                       package the debug binary the tests already built (CI),
#                                       stripped too, with no dbgsym (its debug information is
#                                       some 340 MB the package test has no use for)
#
# Needs cargo-deb (`cargo install cargo-deb --version 3.8.0 --locked`, done here when missing;
# pinned: later releases will refuse to package the dev profile).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || cargo install cargo-deb --version 3.8.0 --locked

profile=release
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[$i]}" = "--profile" ] && profile=${args[$((i + 1))]}
done
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
if [[ " ${args[*]} " != *" --no-build "* ]]; then
    cargo build --locked --profile "$profile" --bin inspect-milter
fi
rm -rf target/packaging
"target/$dir/inspect-milter" manual --out target/packaging
# The pack's own README is the rule reference; the tests beside it are not shipped.
test -f rules/README.md
if [ "$profile" = dev ]; then
    debug=(--strip --no-dbgsym --fast)
else
    debug=(--dbgsym --compress-debug-symbols=zlib)  # --dbgsym strips the binary
fi
cargo deb --locked "${debug[@]}" "$@" -o target/packaging/
ls -l target/packaging/*.deb
ls -l target/packaging/*.ddeb 2>/dev/null || true
