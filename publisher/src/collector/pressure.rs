//! Pressure stall information from `/proc/pressure/{cpu,memory,io}` (Linux 4.20 and later,
//! when the kernel was built and booted with PSI): the share of time tasks waited for a CPU,
//! for memory or for I/O — the plainest sign that a host is starved. Parsed by `procfs`.

#[cfg(target_os = "linux")]
use procfs::FromRead;
use shared::reading::Pressure;
#[cfg(target_os = "linux")]
use shared::reading::Stall;
use std::path::Path;

use super::proc_file::ProcFile;

/// The three PSI files; `None` where the kernel has no PSI, found once at start.
pub(super) struct PressureFiles {
    files: Option<[ProcFile; 3]>,
}

impl PressureFiles {
    /// Looks for `<root>/pressure`; says once in the log when the kernel has none.
    pub(super) fn new(root: &Path) -> Self {
        let mut files = [
            ProcFile::new(root, "pressure/cpu"),
            ProcFile::new(root, "pressure/memory"),
            ProcFile::new(root, "pressure/io"),
        ];
        // A kernel without PSI has no folder; one booted with psi=0 has the files but refuses
        // to read them. Either way there is nothing to send, and no reason to try every second.
        let readable = files.iter_mut().any(|f| f.read().is_ok());
        if !readable {
            tracing::info!(
                path = %root.join("pressure").display(),
                "no pressure stall information on this kernel: readings go out without `pressure`"
            );
        }
        Self {
            files: readable.then_some(files),
        }
    }

    /// The current figures; `None` where the kernel has no PSI. A file that cannot be read or
    /// parsed this time leaves its resource out.
    #[cfg(target_os = "linux")]
    pub(super) fn read(&mut self) -> Option<Pressure> {
        let [cpu, memory, io] = self.files.as_mut()?;
        let pressure = Pressure {
            cpu: read_cpu(cpu),
            memory: read_with_full::<procfs::MemoryPressure>(memory, |p| (p.some, p.full)),
            io: read_with_full::<procfs::IoPressure>(io, |p| (p.some, p.full)),
        };
        let any = pressure.cpu.is_some() || pressure.memory.is_some() || pressure.io.is_some();
        any.then_some(pressure)
    }

    /// Only Linux has PSI.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn read(&mut self) -> Option<Pressure> {
        None
    }
}

/// The CPU's "some" line only: the kernel defines no host-wide "full" for the CPU (since 5.13
/// it prints one, always zero, for compatibility).
#[cfg(target_os = "linux")]
fn read_cpu(file: &mut ProcFile) -> Option<Stall> {
    let cpu = logged(parse::<procfs::CpuPressure>(file), file.path())?;
    Some(Stall {
        some_avg10_percent: percent(cpu.some.avg10),
        some_total_micros: cpu.some.total,
        full_avg10_percent: None,
        full_total_micros: None,
    })
}

/// Memory and I/O: a "some" and a "full" line.
#[cfg(target_os = "linux")]
fn read_with_full<T: FromRead>(
    file: &mut ProcFile,
    lines: impl Fn(T) -> (procfs::PressureRecord, procfs::PressureRecord),
) -> Option<Stall> {
    let (some, full) = lines(logged(parse::<T>(file), file.path())?);
    Some(Stall {
        some_avg10_percent: percent(some.avg10),
        some_total_micros: some.total,
        full_avg10_percent: Some(percent(full.avg10)),
        full_total_micros: Some(full.total),
    })
}

#[cfg(target_os = "linux")]
fn parse<T: FromRead>(file: &mut ProcFile) -> Result<T, String> {
    let text = file.read().map_err(|e| format!("cannot read: {e}"))?;
    T::from_read(text.as_bytes()).map_err(|e| format!("cannot parse: {e}"))
}

/// The figures or nothing; why is logged at debug level only, since a resource left out once
/// is no news (the kernel gives no reason to expect it).
#[cfg(target_os = "linux")]
fn logged<T>(parsed: Result<T, String>, path: &Path) -> Option<T> {
    parsed
        .map_err(|e| tracing::debug!(path = %path.display(), "{e}"))
        .ok()
}

/// The kernel prints two decimals; a value outside 0..=100 would be a kernel bug, held in range
/// so the reading stays valid.
#[cfg(target_os = "linux")]
fn percent(value: f32) -> f32 {
    shared::reading::round_percent(value)
}

#[cfg(test)]
mod tests {
    use super::super::proc_file::testing::fixtures;
    use super::*;

    #[test]
    fn the_captured_files_are_read_some_and_full() {
        let mut files = PressureFiles::new(&fixtures());
        let pressure = files.read().expect("the fixture has PSI");
        let cpu = pressure.cpu.expect("cpu");
        assert_eq!(cpu.some_avg10_percent, 98.56);
        assert_eq!(cpu.some_total_micros, 3_722_245_793);
        assert_eq!(cpu.full_avg10_percent, None, "no host-wide cpu full");
        let memory = pressure.memory.expect("memory");
        assert_eq!(memory.some_avg10_percent, 3.04);
        assert_eq!(memory.full_avg10_percent, Some(0.12));
        assert_eq!(memory.full_total_micros, Some(7_614_860));
        let io = pressure.io.expect("io");
        assert_eq!(io.some_total_micros, 108_046_901);
        assert_eq!(io.full_total_micros, Some(4_060_795));
    }

    #[test]
    fn a_kernel_without_psi_gives_no_pressure_and_a_broken_file_leaves_its_resource_out() {
        let none = tempfile::tempdir().expect("temp dir");
        assert_eq!(PressureFiles::new(none.path()).read(), None);
        let partial = tempfile::tempdir().expect("temp dir");
        let folder = partial.path().join("pressure");
        std::fs::create_dir(&folder).expect("mkdir");
        std::fs::write(
            folder.join("cpu"),
            "some avg10=1.50 avg60=0 avg300=0 total=9\n",
        )
        .expect("write");
        std::fs::write(folder.join("memory"), "garbage\n").expect("write");
        let pressure = PressureFiles::new(partial.path()).read().expect("cpu read");
        assert_eq!(pressure.cpu.map(|c| c.some_avg10_percent), Some(1.5));
        assert_eq!(pressure.memory, None, "unparsable: left out");
        assert_eq!(pressure.io, None, "missing: left out");
    }
}
