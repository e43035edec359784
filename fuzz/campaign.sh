#!/usr/bin/env bash
# A fuzzing campaign outside CI: every target for a fixed time on the nightly toolchain, then
# one summary line per target (executions, coverage, crashes). Crashes land in
# fuzz/artifacts/<target>/; each one becomes a regression seed in fuzz/corpus/<target>/
# (replayed by the ordinary test suite) once fixed.
#
#   fuzz/campaign.sh [SECONDS_PER_TARGET=300] [TARGET...]
#
# Slow units: `SLOW=1` runs with inputs up to 1 MB (`-max_len=1048576`) and reports any input
# that takes longer than `TIMEOUT` seconds (default 10) as a crash (`-timeout`), in
# fuzz/artifacts/<target>/timeout-*. Each one becomes a case of the complexity campaign
# (tests/complexity_inputs.rs) once fixed.
#
# Needs `cargo install cargo-fuzz` and the nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(milter_stream mime_walk rule_files config_file)
cargo +nightly fuzz build -O
mkdir -p target/campaign
for t in "${targets[@]}"; do
    # A scratch corpus per target, seeded from the committed seeds; the seeds stay small.
    work=target/campaign/$t
    mkdir -p "$work"
    cp -n corpus/"$t"/* "$work"/ 2>/dev/null || true
    log=target/campaign/$t.log
    status=0
    slow=()
    [ "${SLOW:-0}" = 1 ] && slow=(-max_len=1048576 -timeout="${TIMEOUT:-10}" -rss_limit_mb=4096)
    cargo +nightly fuzz run -O "$t" "$work" -- -max_total_time="$seconds" -print_final_stats=1 "${slow[@]}" >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    crashes=$(ls artifacts/"$t" 2>/dev/null | wc -l)
    echo "$t: ${execs:-?} executions in ${seconds}s, cov ${cov:-?}, exit $status, artifacts $crashes"
done
