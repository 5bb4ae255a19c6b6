#!/usr/bin/env bash
# The reusing allocate in detail: a reusing allocate at N = 10 000 live
# blocks (`reuse_end`: the free block is the last one; no append, no syscall)
# with --features indexed-fit, against glibc malloc (benches/c/workload.c, as
# in scaling.sh).
#
#   bash benches/reuse.sh                   # this tree's indexed-fit vs malloc
#   BEFORE=acac14f bash benches/reuse.sh    # and the indexed-fit of a commit
#
# Prints, for each build:
#   * first reuse, Ir: `workload ir reuse_end 10000` under callgrind
#     (--collect-atstart=no --instr-atstart=no): the one allocate after the
#     heap is built, C driver included;
#   * steady allocate / deallocate, Ir: callgrind --toggle-collect=allocate
#     (then =deallocate) on `workload time reuse_end 10000 R`, the difference
#     between R = 1000 and R = 500 divided by 500: one timed allocate and the
#     deallocate that puts the block back, as the timing loop runs them
#     (inclusive, without the driver);
#   * ns: `workload time reuse_end 10000 501` (the median of 501 timed
#     allocates, timer overhead subtracted) in PROCS processes (default 15),
#     the builds interleaved; the median of the medians, then all of them.
# Needs gcc, valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/workloads.sh
PROCS=${PROCS:-15}
N=10000

build_workloads indexed:indexed-fit
impls=(indexed malloc)
if [[ -n "${BEFORE:-}" ]]; then
    tree=$(mktemp -d)
    git archive "$BEFORE" | tar -x -C "$tree"
    (cd "$tree" && CARGO_TARGET_DIR="$tree/target" cargo build --release --quiet --features indexed-fit)
    gcc "${CFLAGS[@]}" "$W" "$tree/target/release/libbrk_pools.a" -lpthread -ldl -lm -o "$BIN/workload-before"
    rm -rf "$tree"
    impls=(before indexed malloc)
fi
describe_machine
[[ -n "${BEFORE:-}" ]] && echo "before: $(git rev-parse --short "$BEFORE")"

collected() { sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
first_reuse() {
    valgrind --tool=callgrind --collect-atstart=no --instr-atstart=no --callgrind-out-file=/dev/null \
        "$BIN/workload-$1" ir reuse_end $N 2>&1 > /dev/null | collected
}
steady() { # IMPL FUNCTION
    local at500 at1000
    at500=$(valgrind --tool=callgrind --toggle-collect="$2" --callgrind-out-file=/dev/null \
        "$BIN/workload-$1" time reuse_end $N 500 2>&1 > /dev/null | collected)
    at1000=$(valgrind --tool=callgrind --toggle-collect="$2" --callgrind-out-file=/dev/null \
        "$BIN/workload-$1" time reuse_end $N 1000 2>&1 > /dev/null | collected)
    echo $(((at1000 - at500) / 500))
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for impl in "${impls[@]}"; do : > "$tmp/$impl"; done
for ((p = 0; p < PROCS; p++)); do
    for impl in "${impls[@]}"; do
        "$BIN/workload-$impl" time reuse_end $N 501 >> "$tmp/$impl"
    done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

printf '%-8s %12s %14s %16s %6s  %s\n' build "first reuse" "steady alloc" "steady dealloc" ns "ns of each process (sorted)"
for impl in "${impls[@]}"; do
    sorted=$(sort -n "$tmp/$impl" | tr '\n' ' ')
    median=$(sort -n "$tmp/$impl" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    printf '%-8s %12s %14s %16s %6s  %s\n' "$impl" "$(first_reuse "$impl")" "$(steady "$impl" allocate)" \
        "$(steady "$impl" deallocate)" "$median" "$sorted"
done
