#!/usr/bin/env bash
# Builds the Debian package: man pages and completions generated from the binary's own CLI
# definition, then `cargo deb`.
#
#   packaging/build-deb.sh              release build (what to ship)
#   packaging/build-deb.sh --profile dev --no-build
#                                       package the debug binary the tests already built (CI)
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
cargo deb --locked --no-strip --fast "$@" -o target/packaging/
ls -l target/packaging/*.deb
