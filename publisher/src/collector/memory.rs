//! Memory and swap.

use shared::reading::{percent_of, Memory};
use sysinfo::{MemoryRefreshKind, System};

/// Refreshes RAM and swap figures.
pub(super) fn refresh(system: &mut System) {
    system.refresh_memory_specifics(MemoryRefreshKind::everything());
}

/// The memory section of a reading.
pub(super) fn read(system: &System) -> Memory {
    let total = system.total_memory();
    // "Used" as people mean it: what is not available to new programs (caches excluded).
    let available = system.available_memory().min(total);
    let used = total - available;
    Memory {
        total_bytes: total,
        used_bytes: used,
        available_bytes: available,
        usage_percent: percent_of(used, total),
        swap_total_bytes: system.total_swap(),
        swap_used_bytes: system.used_swap(),
        cached_buffers_bytes: None,
        swap_in_bytes_per_sec: None,
        swap_out_bytes_per_sec: None,
    }
}
