//! Mounted file systems and their space, as `df` reports it.

use shared::reading::{percent_of, Disk};
use sysinfo::{DiskRefreshKind, Disks};

/// Refreshes the list of mounts (`/proc/mounts`, `/dev/disk/by-id`) when `relist`, to pick up
/// file systems that came or went. On Linux the space figures are read at [`read`] (one
/// `statvfs` per mount); elsewhere sysinfo refreshes them here.
pub(super) fn refresh(disks: &mut Disks, relist: bool) {
    if relist {
        disks.refresh(true);
    } else if !cfg!(target_os = "linux") {
        for disk in disks.iter_mut() {
            disk.refresh_specifics(DiskRefreshKind::nothing().with_storage());
        }
    }
}

/// Space on one file system, in blocks of `block_bytes`, as `statvfs` gives it.
#[derive(Debug, Clone, Copy)]
struct Space {
    blocks: u64,
    free: u64,
    /// Free to ordinary users: `free` less what is reserved for root.
    available: u64,
    block_bytes: u64,
}

/// Every mounted file system with a size, once per mount point.
pub(super) fn read(disks: &Disks) -> Vec<Disk> {
    let mut seen = std::collections::HashSet::new();
    disks
        .iter()
        .filter(|d| seen.insert(d.mount_point().to_path_buf()))
        .filter_map(|d| {
            let space = space(d)?;
            let mut disk = usage(space);
            disk.name = d.name().to_string_lossy().into_owned();
            disk.mount_point = d.mount_point().to_string_lossy().into_owned();
            disk.file_system = d.file_system().to_string_lossy().into_owned();
            Some(disk)
        })
        .filter(|d| d.total_bytes > 0)
        .collect()
}

/// The file system's space now; `None` when it cannot be asked (unmounted meanwhile).
#[cfg(target_os = "linux")]
fn space(disk: &sysinfo::Disk) -> Option<Space> {
    let stat = rustix::fs::statvfs(disk.mount_point()).ok()?;
    Some(Space {
        blocks: stat.f_blocks,
        free: stat.f_bfree,
        available: stat.f_bavail,
        block_bytes: stat.f_frsize,
    })
}

/// Elsewhere sysinfo knows no reserved space: all that is not available counts as used.
#[cfg(not(target_os = "linux"))]
fn space(disk: &sysinfo::Disk) -> Option<Space> {
    Some(Space {
        blocks: disk.total_space(),
        free: disk.available_space(),
        available: disk.available_space(),
        block_bytes: 1,
    })
}

/// `df`'s figures: used is what files take, and "Use%" is used ÷ (used + available), so the
/// space reserved for root is in neither and is reported apart.
fn usage(space: Space) -> Disk {
    let bytes = |blocks: u64| blocks.saturating_mul(space.block_bytes);
    let free = space.free.min(space.blocks);
    let available = space.available.min(free);
    let used = bytes(space.blocks - free);
    Disk {
        name: String::new(),
        mount_point: String::new(),
        file_system: String::new(),
        total_bytes: bytes(space.blocks),
        available_bytes: bytes(available),
        used_bytes: used,
        usage_percent: percent_of(used, used.saturating_add(bytes(available))),
        reserved_bytes: Some(bytes(free - available)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_dfs_and_the_reserve_is_apart() {
        // An ext4 file system with 5 % reserved for root: taking all that is not available as
        // used would say 17.5 %; df says 14 %.
        let disk = usage(Space {
            blocks: 66_053_021,
            free: 57_800_000,
            available: 54_497_349,
            block_bytes: 4096,
        });
        assert_eq!(disk.used_bytes, 8_253_021 * 4096);
        assert_eq!(disk.available_bytes, 54_497_349 * 4096);
        assert_eq!(disk.reserved_bytes, Some(3_302_651 * 4096));
        assert_eq!(disk.usage_percent, 13.15, "used / (used + available)");
        assert_eq!(disk.total_bytes, 66_053_021 * 4096);
    }

    #[test]
    fn inconsistent_figures_give_no_negative_space() {
        let disk = usage(Space {
            blocks: 10,
            free: 20,
            available: 30,
            block_bytes: 1,
        });
        assert_eq!(disk.used_bytes, 0);
        assert_eq!(disk.reserved_bytes, Some(0));
        assert_eq!(disk.usage_percent, 0.0);
    }

    #[test]
    fn the_root_file_system_matches_df() {
        let disks = Disks::new_with_refreshed_list().expect("the mounts are listed");
        let list = read(&disks);
        let root = list
            .iter()
            .find(|d| d.mount_point == "/")
            .expect("the root file system is listed");
        let df = std::process::Command::new("df")
            .args(["--output=pcent", "/"])
            .output()
            .expect("df is part of coreutils");
        let text = String::from_utf8_lossy(&df.stdout);
        let df_percent: f32 = text
            .lines()
            .nth(1)
            .and_then(|l| l.trim().trim_end_matches('%').parse().ok())
            .expect("df prints a percentage");
        // df rounds up to a whole percent, and files change between the two looks.
        assert!(
            (root.usage_percent - df_percent).abs() <= 1.5,
            "we say {} %, df says {df_percent} %",
            root.usage_percent
        );
        assert!(root.reserved_bytes.is_some());
    }
}
