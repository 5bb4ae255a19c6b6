#!/usr/bin/env bash
# First fit at scale: benches/c/workload.c linked with the
# original (asm/run.s), the port (asm walk), the port with --features
# indexed-fit and glibc malloc (benches/c/malloc_pools.c).
#
#   walk N M       N blocks of 48 bytes, every other one free (too small), then
#                  M allocates of 96 bytes that walk the whole list and append
#   reuse_end N    N blocks in use and a free one after them: the allocate
#                  reuses it (no append, no syscall)
#
# Measures
#   * whole-program callgrind instructions of `walk 10000 1000`;
#   * wall time per allocate of reuse_end at N = 10 000 (median of medians);
#   * the growth curve N = 1 000 ... 100 000: ns per walking allocate
#     (M = N / 10, at least 100) and per reusing allocate, for each build.
#     A build's curve stops at the first N where one process took longer than
#     STOP_AFTER seconds (building the heap costs the original O(N^2)).
#
#   bash benches/scaling.sh          # about 10 minutes on 2 cores (N = 100 000 dominates)
#   QUICK=1 bash benches/scaling.sh  # one process per point
#
# Writes docs/perf/scaling-{machine.txt,ir.tsv,time.tsv,summary.txt} and
# docs/perf-scaling.svg. Needs gcc, valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/perf
source benches/workloads.sh
mkdir -p "$OUT"
if [[ -n "${QUICK:-}" ]]; then PROCS=1; else PROCS=3; fi
STOP_AFTER=${STOP_AFTER:-60}
REPS=501
NS=${NS:-"1000 2000 5000 10000 20000 50000 100000"}
IMPLS="original port indexed malloc"

build_workloads indexed:indexed-fit

describe_machine > "$OUT/scaling-machine.txt"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "callgrind: walk 10000 1000, whole program" >&2
printf 'impl\tworkload\tn\tir\n' > "$OUT/scaling-ir.tsv"
for impl in $IMPLS; do
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$BIN/workload-$impl" walk 10000 1000 \
    > /dev/null 2> "$tmp/err"
  ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/err")
  printf '%s\twalk\t10000\t%s\n' "$impl" "$ir" >> "$OUT/scaling-ir.tsv"
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "wall time: growth curve" >&2
printf 'impl\top\tn\tns\n' > "$OUT/scaling-time.tsv"
declare -A stopped
for n in $NS; do
  m=$((n / 10 > 100 ? n / 10 : 100))
  for op in walk reuse_end; do
    for impl in $IMPLS; do : > "$tmp/t.$impl"; done
    for ((p = 0; p < PROCS; p++)); do
      for impl in $IMPLS; do
        [[ -n "${stopped[$impl]:-}" ]] && continue
        start=$(date +%s)
        if [[ $op == walk ]]; then
          "$BIN/workload-$impl" walk "$n" "$m" >> "$tmp/t.$impl"
        else
          "$BIN/workload-$impl" time reuse_end "$n" "$REPS" >> "$tmp/t.$impl"
        fi
        if (($(date +%s) - start > STOP_AFTER)); then
          stopped[$impl]=$n
          echo "  $impl: one process took over ${STOP_AFTER}s at N=$n; its curve stops here" >&2
        fi
      done
    done
    for impl in $IMPLS; do
      [[ -s "$tmp/t.$impl" ]] || continue
      printf '%s\t%s\t%s\t%s\n' "$impl" "$op" "$n" "$(median < "$tmp/t.$impl")" >> "$OUT/scaling-time.tsv"
    done
    echo "  N=$n $op done" >&2
  done
done

{
  awk -F'\t' 'NR > 1 { v[$1] = $4 }
    END {
      printf "walk 10000 1000, whole program Ir: original %d, port %d, indexed-fit %d, glibc malloc %d\n",
        v["original"], v["port"], v["indexed"], v["malloc"]
      printf "original / indexed-fit: %.1fx fewer instructions (target >= 50x)\n", v["original"] / v["indexed"]
    }' "$OUT/scaling-ir.tsv"
  awk -F'\t' 'NR > 1 && $3 == 10000 { v[$1, $2] = $4 }
    END {
      printf "N = 10000, ns per allocate (median): walk: original %d, port %d, indexed-fit %d, malloc %d\n",
        v["original", "walk"], v["port", "walk"], v["indexed", "walk"], v["malloc", "walk"]
      printf "N = 10000, ns per allocate (median): reuse_end: original %d, port %d, indexed-fit %d, malloc %d\n",
        v["original", "reuse_end"], v["port", "reuse_end"], v["indexed", "reuse_end"], v["malloc", "reuse_end"]
      printf "reuse_end indexed-fit / malloc: %.1fx (target <= 3x)\n", v["indexed", "reuse_end"] / v["malloc", "reuse_end"]
    }' "$OUT/scaling-time.tsv"
  for impl in $IMPLS; do
    [[ -n "${stopped[$impl]:-}" ]] && echo "$impl: curve stops at N=${stopped[$impl]} (a process took over ${STOP_AFTER}s)"
  done
  true
} | tee "$OUT/scaling-summary.txt"

cargo run --release --quiet --example perf_plot -- --scaling "$OUT" docs/perf-scaling.svg
echo "wrote $OUT/scaling-*.{tsv,txt} and docs/perf-scaling.svg" >&2
