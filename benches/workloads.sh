# Sourced by the bench scripts (compare.sh, constant.sh, scaling.sh): builds
# benches/c/workload.c against each implementation, and describes the machine.
# Run from the repository root.

BIN=target/perf
W=benches/c/workload.c
CFLAGS=(-O2 -g -Wall)

# build_workloads [NAME:FEATURE ...]
# Builds $BIN/workload-original (run.s, -no-pie: it addresses its globals
# absolutely), $BIN/workload-port (libbrk_pools.a, default features),
# $BIN/workload-malloc (glibc malloc behind the same API), and for each
# NAME:FEATURE $BIN/workload-NAME, linked with the library built with FEATURE.
build_workloads() {
    mkdir -p "$BIN"
    echo "building" >&2
    local spec name feature
    for spec in "$@"; do
        name=${spec%%:*}
        feature=${spec#*:}
        cargo build --release --quiet --features "$feature"
        cp target/release/libbrk_pools.a "$BIN/libbrk_pools-$name.a"
        gcc "${CFLAGS[@]}" "$W" "$BIN/libbrk_pools-$name.a" -lpthread -ldl -lm -o "$BIN/workload-$name"
    done
    cargo build --release --quiet
    cp target/release/libbrk_pools.a "$BIN/libbrk_pools.a"
    gcc "${CFLAGS[@]}" -no-pie "$W" asm/run.s -o "$BIN/workload-original"
    gcc "${CFLAGS[@]}" "$W" "$BIN/libbrk_pools.a" -lpthread -ldl -lm -o "$BIN/workload-port"
    gcc "${CFLAGS[@]}" "$W" benches/c/malloc_pools.c -o "$BIN/workload-malloc"
}

# describe_machine: the lines every report's machine file starts with.
describe_machine() {
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "gcc: $(gcc --version | head -1)"
    echo "valgrind: $(valgrind --version)"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src benches || echo '+changes')"
}
