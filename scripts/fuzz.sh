#!/usr/bin/env bash
# Runs cargo fuzz targets the way docs/fuzzing.md records them: each until 10^7 executions
# or one hour, whichever comes first, from its committed seeds and its growing corpus.
# Usage: scripts/fuzz.sh [TARGET...]   (all targets when none is named)
# Environment: RUNS (default 10000000), MAX_SECONDS (default 3600).
# Needs cargo-fuzz (cargo install cargo-fuzz --locked); the stable toolchain builds it with
# RUSTC_BOOTSTRAP=1. A crash leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
# Each crate fuzzes its own code: the wire formats in omadm-proto, the daemon's in fuzz/.
dirs=("$top/crates/omadm-proto/fuzz" "$top/fuzz")
declare -A dir_of
for d in "${dirs[@]}"; do
    for t in $(sed -n 's/^name = "\(.*\)"$/\1/p' "$d/Cargo.toml" | grep -v -- '-fuzz$'); do
        dir_of[$t]=$d
    done
done
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=("${!dir_of[@]}")
fi
for t in "${targets[@]}"; do
    [ -n "${dir_of[$t]:-}" ] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
    cd "${dir_of[$t]}"
    mkdir -p "corpus/$t"
    extra=()
    # DDFs are files of kilobytes; let the fuzzer make them.
    [ "$t" = ddf ] && extra=(-max_len=16384)
    echo "== $t"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -runs="${RUNS:-10000000}" -max_total_time="${MAX_SECONDS:-3600}" \
        -rss_limit_mb=3072 -print_final_stats=1 "${extra[@]}" 2>&1 |
        grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)|#[0-9]+ +DONE|ERROR|panicked' || true
done
