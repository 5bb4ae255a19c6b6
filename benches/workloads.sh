# Sourced by the bench scripts (compare.sh, constant.sh, scaling.sh, reuse.sh,
# mallocs.sh): builds
# benches/c/workload.c against each implementation, and describes the machine.
# Run from the repository root.

# Cargo's target directory ($CARGO_TARGET_DIR if set).
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/perf
W=benches/c/workload.c
CFLAGS=(-O2 -g -Wall)
# One link line for every implementation. -no-pie: run.s addresses its globals
# absolutely and cannot link as PIE, so the others link the same way (a PIE
# costs the port's start-up ~10 000 more instructions of relative
# relocations). --gc-sections: what a C program linked with a Rust staticlib
# uses anyway (rustc passes it when it links Rust programs itself): without
# it ld keeps every section of every archive member it pulls in, ~11 000
# relocations of unreachable std and dependency code that the dynamic loader
# then processes at every start (~240 000 instructions).
# Neither flag changes the original's instructions.
LDFLAGS=(-no-pie -Wl,--gc-sections)

# c_library [CARGO ARGS]: $TARGET/c-lib/libbrk_pools.a, the static library as
# a C program links it: Cargo.toml's c-lib profile (release with fat LTO
# across the crate and std; only a staticlib-only build gets LTO).
c_library() {
    cargo rustc -p brk-pools --profile c-lib --quiet --lib --crate-type staticlib "$@"
}

# build_workloads [NAME:FEATURE ...]
# Builds $BIN/workload-original (run.s), $BIN/workload-port (c_library,
# default features), $BIN/workload-malloc (glibc malloc behind the same API),
# and for each NAME:FEATURE $BIN/workload-NAME, linked with the library built
# with FEATURE.
build_workloads() {
    mkdir -p "$BIN"
    echo "building" >&2
    local spec name feature
    for spec in "$@"; do
        name=${spec%%:*}
        feature=${spec#*:}
        c_library --features "$feature"
        cp "$TARGET/c-lib/libbrk_pools.a" "$BIN/libbrk_pools-$name.a"
        gcc "${CFLAGS[@]}" "${LDFLAGS[@]}" "$W" "$BIN/libbrk_pools-$name.a" -lpthread -ldl -lm -o "$BIN/workload-$name"
    done
    c_library
    cp "$TARGET/c-lib/libbrk_pools.a" "$BIN/libbrk_pools.a"
    gcc "${CFLAGS[@]}" "${LDFLAGS[@]}" "$W" asm/run.s -o "$BIN/workload-original"
    gcc "${CFLAGS[@]}" "${LDFLAGS[@]}" "$W" "$BIN/libbrk_pools.a" -lpthread -ldl -lm -o "$BIN/workload-port"
    gcc "${CFLAGS[@]}" "${LDFLAGS[@]}" "$W" benches/c/malloc_pools.c -o "$BIN/workload-malloc"
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
