#!/usr/bin/env bash
# Same-workload comparison: benches/c/workload.c linked with the original
# (asm/run.s), the port (target/c-lib/libbrk_pools.a, faithful and with
# --features batched-brk) and glibc malloc (benches/c/malloc_pools.c).
#
#   bash benches/compare.sh            # everything, about a minute on 2 cores
#   QUICK=1 bash benches/compare.sh    # fewer timing runs (for a smoke test)
#
# Writes docs/perf/{machine.txt,ir.tsv,time.tsv,brk.tsv,summary.md} and
# regenerates docs/perf-cost.svg. Needs gcc, valgrind (with valgrind/callgrind.h)
# and strace.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/perf
source benches/workloads.sh
mkdir -p "$OUT"

OPS="append reuse_end reuse_first pool_none pool_all dealloc"
NS="10 100 1000 10000"
if [[ -n "${QUICK:-}" ]]; then PROCS=3; REPS=5; APPEND_PROCS=5; BRK_RUNS=5; else PROCS=5; REPS=21; APPEND_PROCS=15; BRK_RUNS=21; fi

# ---------------------------------------------------------------- build
build_workloads port-batched:batched-brk
IMPLS="original port malloc"

describe_machine > "$OUT/machine.txt"

# Inclusive Ir of the calls the driver (benches/c/workload.c) makes while
# collection is on: the one call to allocate / deallocate / deallocate_pool,
# everything it calls included. (By the caller's file, not its name: when
# instrumentation starts inside main, callgrind may leave main unnamed.)
incl_ir() {
  awk '
    /^fl=/ { match($0, /\(([0-9]+)\)/); id = substr($0, RSTART + 1, RLENGTH - 2)
             rest = substr($0, RSTART + RLENGTH); sub(/^ /, "", rest)
             if (rest != "") file[id] = rest; cur = file[id]; next }
    /^calls=/ { if (cur ~ /workload\.c$/) { getline; sum += $2 } next }
    END { print sum + 0 }' "$1"
}

# ---------------------------------------------------------------- instructions
echo "instructions (callgrind)" >&2
printf 'impl\top\tn\tir\n' > "$OUT/ir.tsv"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for impl in $IMPLS; do
  for op in $OPS; do
    for n in $NS; do
      valgrind --tool=callgrind --collect-atstart=no --instr-atstart=no \
        --callgrind-out-file="$tmp/cg" "$BIN/workload-$impl" ir "$op" "$n" 2>/dev/null
      printf '%s\t%s\t%s\t%s\n' "$impl" "$op" "$n" "$(incl_ir "$tmp/cg")" >> "$OUT/ir.tsv"
    done
  done
done

# ---------------------------------------------------------------- wall time
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "wall time" >&2
printf 'impl\top\tn\tns\n' > "$OUT/time.tsv"
for op in $OPS; do
  for n in $NS; do
    procs=$PROCS reps=$REPS
    [[ $op == append ]] && procs=$APPEND_PROCS
    [[ $op == pool_all && $n -ge 1000 ]] && reps=5
    for impl in $IMPLS; do : > "$tmp/t.$impl"; done
    for ((p = 0; p < procs; p++)); do
      # Interleave the implementations so that machine noise hits all of them.
      for impl in $IMPLS; do "$BIN/workload-$impl" time "$op" "$n" "$reps" >> "$tmp/t.$impl"; done
    done
    for impl in $IMPLS; do
      printf '%s\t%s\t%s\t%s\n' "$impl" "$op" "$n" "$(median < "$tmp/t.$impl")" >> "$OUT/time.tsv"
    done
  done
done

# ---------------------------------------------------------------- brk traffic
echo "brk calls for 1000 and 10000 appends" >&2
BRK_IMPLS="original port port-batched malloc"
printf 'impl\tappends\tbrk_calls\tms_median\n' > "$OUT/brk.tsv"
for count in 1000 10000; do
  for impl in $BRK_IMPLS; do : > "$tmp/ms.$impl"; done
  for ((r = 0; r < BRK_RUNS; r++)); do
    for impl in $BRK_IMPLS; do "$BIN/workload-$impl" appends "$count" >> "$tmp/ms.$impl"; done
  done
  for impl in $BRK_IMPLS; do
    strace -f -c -e trace=brk -o "$tmp/strace" "$BIN/workload-$impl" appends "$count" > /dev/null
    calls=$(awk '$NF == "brk" { print $(NF - 1) + 0; exit }' "$tmp/strace")
    ms=$(median < "$tmp/ms.$impl" | awk '{ printf "%.3f", $1 / 1e6 }')
    printf '%s\t%s\t%s\t%s\n' "$impl" "$count" "$calls" "$ms" >> "$OUT/brk.tsv"
  done
done

# ---------------------------------------------------------------- summary
echo "summary" >&2
{
  echo "# Same-workload comparison"
  echo
  echo '```'
  cat "$OUT/machine.txt"
  echo '```'
  echo
  echo "## Instructions per call (callgrind, inclusive Ir of the called function)"
  echo
  echo "| operation | N | original | port | port/original | glibc malloc |"
  echo "|---|---:|---:|---:|---:|---:|"
  awk -F'\t' 'NR > 1 { v[$1, $2, $3] = $4; if (!seen[$2]++) ops[++k] = $2; if (!nseen[$3]++) ns[++m] = $3 }
    END { for (i = 1; i <= k; i++) for (j = 1; j <= m; j++) { o = v["original", ops[i], ns[j]]; p = v["port", ops[i], ns[j]]
      printf "| %s | %s | %d | %d | %.3f | %d |\n", ops[i], ns[j], o, p, p / o, v["malloc", ops[i], ns[j]] } }' "$OUT/ir.tsv"
  echo
  echo "Per-block cost (Ir at N=10000 minus Ir at N=1000, over 9000):"
  echo
  echo "| operation | original | port |"
  echo "|---|---:|---:|"
  awk -F'\t' 'NR > 1 { v[$1, $2, $3] = $4; if (!seen[$2]++) ops[++k] = $2 }
    END { for (i = 1; i <= k; i++) printf "| %s | %.3f | %.3f |\n", ops[i],
      (v["original", ops[i], 10000] - v["original", ops[i], 1000]) / 9000,
      (v["port", ops[i], 10000] - v["port", ops[i], 1000]) / 9000 }' "$OUT/ir.tsv"
  echo
  echo "## Wall time per call (ns, median; timer overhead subtracted)"
  echo
  echo "| operation | N | original | port | port/original | glibc malloc |"
  echo "|---|---:|---:|---:|---:|---:|"
  awk -F'\t' 'NR > 1 { v[$1, $2, $3] = $4; if (!seen[$2]++) ops[++k] = $2; if (!nseen[$3]++) ns[++m] = $3 }
    END { for (i = 1; i <= k; i++) for (j = 1; j <= m; j++) { o = v["original", ops[i], ns[j]]; p = v["port", ops[i], ns[j]]
      r = o > 0 ? sprintf("%.2f", p / o) : "n/a"
      printf "| %s | %s | %d | %d | %s | %d |\n", ops[i], ns[j], o, p, r, v["malloc", ops[i], ns[j]] } }' "$OUT/time.tsv"
  echo
  echo "## brk calls and time for N appending allocates (from an empty heap)"
  echo
  echo "| build | appends | brk calls (strace -c) | wall ms (median of $BRK_RUNS) |"
  echo "|---|---:|---:|---:|"
  awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$OUT/brk.tsv"
} > "$OUT/summary.md"

cargo run --release --quiet --example perf_plot -- "$OUT" docs/perf-cost.svg
echo "wrote $OUT/summary.md and docs/perf-cost.svg" >&2
