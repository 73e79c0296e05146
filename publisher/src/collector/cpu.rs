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
    let load = System::load_average().unwrap_or(sysinfo::LoadAvg {
        one: 0.0,
        five: 0.0,
        fifteen: 0.0,
    });
    Cpu {
        usage_percent: round_percent(system.global_cpu_usage()),
        per_core_percent: cpus.iter().map(|c| round_percent(c.usage())).collect(),
        core_count: u32::try_from(cpus.len()).unwrap_or(u32::MAX),
        brand: cpus
            .first()
            .map(|c| c.brand().trim().to_owned())
            .unwrap_or_default(),
        frequency_mhz: cpus.iter().map(sysinfo::Cpu::frequency).max().unwrap_or(0),
        load_average: LoadAverage {
            one: load.one,
            five: load.five,
            fifteen: load.fifteen,
        },
    }
}
