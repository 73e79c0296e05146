//! Mounted file systems and their space.

use shared::reading::{percent_of, Disk};
use sysinfo::{DiskRefreshKind, Disks};

/// Refreshes space figures (one `statvfs` per disk); with `relist`, also re-reads the mounts
/// (`/proc/mounts`, `/dev/disk/by-id`) to pick up file systems that came or went.
pub(super) fn refresh(disks: &mut Disks, relist: bool) {
    if relist {
        disks.refresh(true);
    } else {
        for disk in disks.iter_mut() {
            disk.refresh_specifics(DiskRefreshKind::nothing().with_storage());
        }
    }
}

/// Every mounted file system with a size, once per mount point.
pub(super) fn read(disks: &Disks) -> Vec<Disk> {
    let mut seen = std::collections::HashSet::new();
    disks
        .iter()
        .filter(|d| d.total_space() > 0)
        .filter(|d| seen.insert(d.mount_point().to_path_buf()))
        .map(|d| {
            let total = d.total_space();
            let available = d.available_space().min(total);
            let used = total - available;
            Disk {
                name: d.name().to_string_lossy().into_owned(),
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                file_system: d.file_system().to_string_lossy().into_owned(),
                total_bytes: total,
                available_bytes: available,
                used_bytes: used,
                usage_percent: percent_of(used, total),
                reserved_bytes: None,
            }
        })
        .collect()
}
