//! Host identity: name, operating system, kernel, uptime.

use shared::reading::OsInfo;
use sysinfo::System;

/// The system host name, or "unknown" where the system will not say.
pub(super) fn host_name() -> String {
    System::host_name()
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Operating system name, version and kernel; read once, they do not change while running.
pub(super) fn os_info() -> OsInfo {
    OsInfo {
        name: System::name().unwrap_or_default(),
        version: System::os_version().unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
    }
}

/// Seconds since boot.
pub(super) fn uptime_secs() -> u64 {
    System::uptime().unwrap_or(0)
}

/// The page size in bytes and the clock ticks per second, the units of `/proc`'s counters.
#[cfg(target_os = "linux")]
pub(super) fn units() -> (u64, u64) {
    (procfs::page_size(), procfs::ticks_per_second())
}

/// Elsewhere there is no `/proc`; the usual values keep the arithmetic defined.
#[cfg(not(target_os = "linux"))]
pub(super) fn units() -> (u64, u64) {
    (4096, 100)
}
