//! Resource limits and memory figures of this process, for the cases that
//! run in child processes of their own (`support::child_cases`). Apart from
//! `support` because it needs `unsafe`, which some test binaries forbid.

/// A resource limit of this process (`libc::RLIMIT_*`).
pub fn limit(resource: libc::__rlimit_resource_t) -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut limit) }, 0);
    limit
}

/// Sets the soft `resource` limit to `soft`, keeping the hard one.
pub fn set_soft_limit(resource: libc::__rlimit_resource_t, soft: u64) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: limit(resource).rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit.
    assert_eq!(unsafe { libc::setrlimit(resource, &limit) }, 0);
}

/// A `kB` line of `/proc/self/status` (`VmData`, `VmSize`, …), in bytes.
pub fn vm_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let prefix = format!("{field}:");
    let line = status.lines().find(|l| l.starts_with(&prefix)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}
