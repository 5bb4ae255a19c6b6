#!/usr/bin/env bash
# The port beside general-purpose allocators: glibc malloc, and mimalloc and
# jemalloc when their Debian packages (libmimalloc2.0, libjemalloc2) are
# installed (loaded with LD_PRELOAD into the malloc build; skipped with a
# message when missing), and a bump arena (benches/c/bump_pools.c: the floor;
# it never reuses a block, so its "reuse" is an allocate that bumps, and its
# release drops every pool at once).
#
#   threads   benches/c/threads.c: allocate/deallocate pairs on 0 (the main
#             thread alone), 1, 2 and 4 threads, each in its own pool:
#             million pairs per second, the median of PROCS processes
#   reuse     benches/c/workload.c `reuse_end` at N = 1 000, 10 000, 100 000:
#             ns per reusing allocate + deallocate pair (`workload reuses`: a
#             million pairs timed together, 2·10^7/N for the walking builds;
#             the median of PROCS processes, the builds interleaved) and the
#             Ir of one allocate once the heap is built (callgrind)
#   release   `pool_16`: a pool of 16 blocks spread among N released by
#             deallocate_pool (glibc & co.: 16 frees, benches/c/malloc_pools.c),
#             Ir (callgrind)
#
#   bash benches/mallocs.sh           # about 10 minutes on 2 cores (PROCS=5)
#   PROCS=1 bash benches/mallocs.sh   # about 3 minutes, noisier
#
# The original and the default port build their N blocks with O(N^2) walks:
# at N = 100 000 they are timed but not run under callgrind ("-").
# Writes (over the committed ones) docs/perf/mallocs.txt, the instruction
# counts again as docs/perf/mallocs.tsv, and docs/perf-mallocs.svg from them
# (examples/perf_plot.rs).
# Needs gcc, valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/workloads.sh
PROCS=${PROCS:-5}
OUT=docs/perf/mallocs.txt
NS="1000 10000 100000"

build_workloads indexed:indexed-fit
gcc "${CFLAGS[@]}" "${LDFLAGS[@]}" benches/c/threads.c "$BIN/libbrk_pools.a" -lpthread -ldl -lm -o "$BIN/threads-port"
gcc "${CFLAGS[@]}" "${LDFLAGS[@]}" benches/c/threads.c "$BIN/libbrk_pools-indexed.a" -lpthread -ldl -lm -o "$BIN/threads-indexed"
gcc "${CFLAGS[@]}" -DUSE_MALLOC benches/c/threads.c -lpthread -o "$BIN/threads-malloc"
gcc "${CFLAGS[@]}" "${LDFLAGS[@]}" "$W" benches/c/bump_pools.c -o "$BIN/workload-bump"
gcc "${CFLAGS[@]}" "${LDFLAGS[@]}" benches/c/threads.c benches/c/bump_pools.c -lpthread -o "$BIN/threads-bump"

# name:binary-suffix:preload
impls=(port:port: indexed:indexed: glibc:malloc:)
for lib in mimalloc:libmimalloc.so.2 jemalloc:libjemalloc.so.2; do
    path=/usr/lib/x86_64-linux-gnu/${lib#*:}
    if [[ -e $path ]]; then
        impls+=("${lib%%:*}:malloc:$path")
    else
        echo "skipping ${lib%%:*}: $path is missing (apt-get install libmimalloc2.0 libjemalloc2)" >&2
    fi
done
impls+=(bump:bump:)
names=$(for i in "${impls[@]}"; do printf '%s ' "${i%%:*}"; done)

run() { # IMPL PROGRAM ARGS... (IMPL is name:suffix:preload)
    local spec=$1 program=$2
    shift 2
    local rest=${spec#*:}
    local suffix=${rest%%:*} preload=${rest#*:}
    LD_PRELOAD=$preload "$BIN/$program-$suffix" "$@"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
collected() { sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
ir() { # IMPL OP N
    local spec=$1 rest=${1#*:}
    local suffix=${rest%%:*} preload=${rest#*:}
    LD_PRELOAD=$preload valgrind --tool=callgrind --collect-atstart=no --instr-atstart=no \
        --callgrind-out-file=/dev/null "$BIN/workload-$suffix" ir "$2" "$3" 2>&1 > /dev/null | collected
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/tsv"
{
    describe_machine
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "## threads: million allocate/deallocate pairs per second, all threads together (median of $PROCS processes)"
    printf '%-9s %8s %8s %8s %8s\n' build "main" "1 thread" "2" "4"
    for t in 0 1 2 4; do
        for ((p = 0; p < PROCS; p++)); do
            for spec in "${impls[@]}"; do
                run "$spec" threads "$t" 2000000 >> "$tmp/threads-${spec%%:*}-$t"
            done
        done
    done
    for spec in "${impls[@]}"; do
        name=${spec%%:*}
        printf '%-9s' "$name"
        for t in 0 1 2 4; do printf ' %8s' "$(median < "$tmp/threads-$name-$t")"; done
        echo
    done
    echo "(main: the main thread alone, in a process that never had a second thread)"
    echo
    echo "## reuse: allocate reusing the free block after N blocks in use (reuse_end), then deallocate"
    echo "## (ns: per allocate + deallocate pair; Ir: the allocate alone)"
    printf '%-9s' build
    for n in $NS; do printf ' %12s %9s' "ns N=$n" "Ir"; done
    echo
    # The builds' processes interleaved, as for threads: a drift of the
    # machine's speed during the run then touches every build alike.
    for n in $NS; do
        for ((p = 0; p < PROCS; p++)); do
            for spec in original:original: "${impls[@]}"; do
                name=${spec%%:*}
                pairs=1000000
                [[ $name == original || $name == port ]] && pairs=$((20000000 / n))
                run "$spec" workload reuses "$n" "$pairs" >> "$tmp/reuse-$name-$n"
            done
        done
    done
    for spec in original:original: "${impls[@]}"; do
        name=${spec%%:*}
        printf '%-9s' "$name"
        for n in $NS; do
            if [[ $n -ge 100000 && ($name == original || $name == port) ]]; then
                count=-
            else
                count=$(ir "$spec" reuse_end "$n")
                printf '%s\treuse\t%s\t%s\n' "$name" "$n" "$count" >> "$tmp/tsv"
            fi
            printf ' %12s %9s' "$(median < "$tmp/reuse-$name-$n")" "$count"
        done
        echo
    done
    echo
    echo "## release: deallocate_pool of a 16-block pool spread among N blocks (pool_16), Ir"
    printf '%-9s' build
    for n in $NS; do printf ' %10s' "N=$n"; done
    echo
    for spec in original:original: "${impls[@]}"; do
        name=${spec%%:*}
        printf '%-9s' "$name"
        for n in $NS; do
            if [[ $n -ge 100000 && ($name == original || $name == port) ]]; then
                printf ' %10s' -
            else
                count=$(ir "$spec" pool_16 "$n")
                printf '%s\trelease\t%s\t%s\n' "$name" "$n" "$count" >> "$tmp/tsv"
                printf ' %10s' "$count"
            fi
        done
        echo
    done
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"
{
    printf 'impl\top\tn\tir\n'
    cat "$tmp/tsv"
} > docs/perf/mallocs.tsv
cargo run --release --quiet --example perf_plot -- --mallocs docs/perf docs/perf-mallocs.svg
