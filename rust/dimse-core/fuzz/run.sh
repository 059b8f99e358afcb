#!/usr/bin/env bash
# Runs the fuzz targets one after the other, each for a given time, and appends what each
# run did (executions, crashes) to runs.tsv next to this script.
#
#   fuzz/run.sh                      # every target, 5 minutes each
#   fuzz/run.sh -m 30 pdu_reader     # one target, 30 minutes
#   fuzz/run.sh -m 480 -n            # every target, 8 hours each, at the lowest priority
#   fuzz/run.sh -s 20                # every target, 20 seconds each (the CI smoke run)
#
# -m MINUTES  time per target (default 5)
# -s SECONDS  time per target in seconds instead
# -n          run under `nice -n 19` (fuzz beside other work without slowing it)
# -j JOBS     libFuzzer -fork=JOBS (default 1: a 2-core machine has no core to spare)
#
# A run that finds a crash stops that target, leaves the input in artifacts/<target>/ and
# makes this script exit non-zero after the remaining targets ran (see README.md for how
# to reproduce, minimize and turn it into a regression test).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."

seconds_each=300
nice_cmd=()
jobs=1
while getopts "m:s:nj:h" opt; do
    case "$opt" in
        m) [[ "$OPTARG" =~ ^[0-9]+$ ]] && seconds_each=$((OPTARG * 60)) || seconds_each=bad ;;
        s) seconds_each="$OPTARG" ;;
        n) nice_cmd=(nice -n 19) ;;
        j) jobs="$OPTARG" ;;
        *) sed -n '2,18p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' "$here/Cargo.toml" | grep -v '^dimse-core-fuzz$')
fi
if ! [[ "$seconds_each" =~ ^[0-9]+$ ]] || [ "$seconds_each" -lt 1 ]; then
    echo "run.sh: -m and -s want a whole number of minutes or seconds (at least 1)" >&2
    exit 2
fi

# cargo-fuzz passes -Z flags to rustc; a stable toolchain accepts them only with this set.
export RUSTC_BOOTSTRAP=1
# The core forbids unsafe code, so AddressSanitizer finds little a plain build would not,
# and without it the targets run about four times as fast.
"${nice_cmd[@]}" cargo fuzz build -s none || exit 1
bin="$here/target/$(rustc -vV | sed -n 's/^host: //p')/release"

log="$here/runs.tsv"
[ -s "$log" ] || printf 'finished_utc\ttarget\tseconds\texecutions\tcrashes\tcorpus\n' >"$log"
# -fork=1 would restart the target for every job (ten times slower): only for real forks.
fork=()
[ "$jobs" -gt 1 ] && fork=(-fork="$jobs")
# Inputs libFuzzer saved as failing for a target so far.
found() {
    find "$here/artifacts/$1" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l
}
status=0
for target in "${targets[@]}"; do
    mkdir -p "$here/corpus/$target" "$here/artifacts/$target"
    before=$(found "$target")
    out="$here/artifacts/$target/last-run.txt"
    start=$(date +%s)
    # The binaries built above, run directly: editing the core while a long run goes on
    # must not rebuild (or break) the targets still to come.
    "${nice_cmd[@]}" "$bin/$target" "$here/corpus/$target" \
        -artifact_prefix="$here/artifacts/$target/" -max_total_time="$seconds_each" \
        -print_final_stats=1 "${fork[@]}" >"$out" 2>&1
    rc=$?
    seconds=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
    if [ -z "$execs" ]; then
        execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$out" | tail -1)
    fi
    new_crashes=$(($(found "$target") - before))
    corpus=$(find "$here/corpus/$target" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$target" "$seconds" "${execs:-?}" \
        "$new_crashes" "$corpus" >>"$log"
    echo "$target: ${seconds}s, ${execs:-?} executions, $new_crashes new crash(es), corpus $corpus (rc $rc)"
    if [ "$rc" -ne 0 ] || [ "$new_crashes" -gt 0 ]; then
        status=1
        tail -40 "$out"
    fi
done
exit $status
