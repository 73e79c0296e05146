//! CPU usage (total and per core), model, frequency and load average.

use shared::reading::{round_percent, Cpu, LoadAverage};
use sysinfo::{CpuRefreshKind, System};

/// Refreshes usage; with `slow`, also the list of CPUs and their frequency, which on many
/// machines means reading `/proc/cpuinfo`: costly, and the figure moves slowly.
pub(super) fn refresh(system: &mut System, slow: bool) {
    if slow {
        system.refresh_cpu_all();
    } else {
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
    }
}

/// The CPU section of a reading.
pub(super) fn read(system: &System) -> Cpu {
    let cpus = system.cpus();
    // Not every platform has a load average: absent then, not a made-up 0.
    let load = System::load_average().ok();
    Cpu {
        usage_percent: round_percent(system.global_cpu_usage()),
        per_core_percent: cpus.iter().map(|c| round_percent(c.usage())).collect(),
        core_count: Some(u32::try_from(cpus.len()).unwrap_or(u32::MAX)),
        brand: cpus
            .first()
            .map(|c| c.brand().trim().to_owned())
            .unwrap_or_default(),
        frequency_mhz: cpus.iter().map(sysinfo::Cpu::frequency).max(),
        load_average: load.map(|load| LoadAverage {
            one: load.one,
            five: load.five,
            fifteen: load.fifteen,
        }),
        time_split: None,
    }
}
