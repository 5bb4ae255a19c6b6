#!/usr/bin/env bash
# The port's constant per call, whole-program callgrind
# instructions of benches/c/workload.c linked with the original (asm/run.s),
# the port (target/c-lib/libbrk_pools.a) and the port with --features
# indexed-fit:
#
#   mixed   a fixed mixed workload, whole program: port / original
#   pairs   deallocate + first-fit allocate of the first block on a 10 000-block
#           heap: (Ir with 30 000 pairs - Ir with 10 000 pairs) / 20 000
#
# and, for the port, where the per-pair instructions go, line by line
# (benches/callgrind_lines.py: the difference of the two runs' self cost per
# source line, inlined std code included, grouped into categories).
#
#   bash benches/constant.sh      # about two minutes on 2 cores
#
# Writes docs/perf/constant.tsv, docs/perf/pair-lines-<impl>.tsv. Needs gcc, valgrind, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/perf}
source benches/workloads.sh
mkdir -p "$OUT"

build_workloads indexed:indexed-fit
IMPLS="original port indexed"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
total_ir() { # whole-program instructions of one callgrind run
  valgrind --tool=callgrind --callgrind-out-file="$tmp/$1.out" "${@:2}" > "$tmp/$1.stdout" 2> "$tmp/$1.err"
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/$1.err"
}

echo "callgrind: mixed and pairs" >&2
printf 'impl\tworkload\tir\tchecksum\n' > "$OUT/constant.tsv"
for impl in $IMPLS; do
  ir=$(total_ir "mixed-$impl" "$BIN/workload-$impl" mixed)
  printf '%s\tmixed\t%s\t%s\n' "$impl" "$ir" "$(cat "$tmp/mixed-$impl.stdout")" >> "$OUT/constant.tsv"
  for pairs in 10000 30000; do
    ir=$(total_ir "pairs-$impl-$pairs" "$BIN/workload-$impl" pairs 10000 "$pairs")
    printf '%s\tpairs_10000_%s\t%s\t-\n' "$impl" "$pairs" "$ir" >> "$OUT/constant.tsv"
  done
  python3 benches/callgrind_lines.py "$tmp/pairs-$impl-10000.out" "$tmp/pairs-$impl-30000.out" 20000 \
    > "$OUT/pair-lines-$impl.tsv"
done

awk -F'\t' 'NR > 1 { v[$1, $2] = $3; c[$1] = c[$1] $4 }
  END {
    printf "mixed workload, whole program: original %d, port %d (port/original %.4f), indexed-fit %d (%.4f)\n",
      v["original", "mixed"], v["port", "mixed"], v["port", "mixed"] / v["original", "mixed"],
      v["indexed", "mixed"], v["indexed", "mixed"] / v["original", "mixed"]
    split("original port indexed", impls, " ")
    for (i = 1; i <= 3; i++) {
      pair[impls[i]] = (v[impls[i], "pairs_10000_30000"] - v[impls[i], "pairs_10000_10000"]) / 20000
      printf "pair (deallocate + allocate of the first block, N = 10000), %s: %.1f Ir\n", impls[i], pair[impls[i]]
    }
    printf "pair port/original: %.1fx, indexed-fit/original: %.1fx\n",
      pair["port"] / pair["original"], pair["indexed"] / pair["original"]
  }' "$OUT/constant.tsv" | tee "$OUT/constant.txt"
echo "per-line breakdown: $OUT/pair-lines-port.tsv" >&2
