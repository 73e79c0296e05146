//! Network interfaces: rates since the previous sample (bytes, errors, drops) and totals
//! since boot.
//!
//! On Linux the counters come from `/proc/net/dev`, parsed by `procfs`: one file for every
//! interface. sysinfo reads nine sysfs files per interface instead, which was two thirds of
//! the sampler's cost on a host with four interfaces, and grows with every container's veth.
//! Elsewhere, sysinfo (without errors and drops).
//!
//! Which interfaces are the host's is a choice ([`InterfaceFilter`], `NETWORK_INTERFACES`): by
//! default the virtual ones container engines and hypervisors make (a `veth` per container,
//! their bridges) are left out, since their traffic is the containers', already counted on the
//! host's real interfaces.

use super::proc_file::{per_sec, round2, Skips};
use shared::reading::Network;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Interfaces left out when `NETWORK_INTERFACES` is not set: each container's `veth` end, the
/// bridges of Docker, Podman, LXC/LXD and libvirt, and the overlay devices of Kubernetes'
/// network plugins.
pub const DEFAULT_EXCLUDED_INTERFACES: &[&str] = &[
    "veth*", "docker*", "br-*", "podman*", "cni*", "virbr*", "vnet*", "lxcbr*", "lxdbr*", "lxc*",
    "flannel*", "cali*", "cilium*", "weave*", "vxlan*", "kube-*",
];

/// Which interfaces a reading lists: include and exclude globs, as in `eth*,!veth*`.
///
/// With any include pattern, an interface must match one; an exclude pattern (`!`) always
/// wins. Loopback is never listed.
#[derive(Debug, Clone)]
pub struct InterfaceFilter {
    include: Option<globset::GlobSet>,
    exclude: globset::GlobSet,
}

impl Default for InterfaceFilter {
    /// Every interface but the virtual ones of [`DEFAULT_EXCLUDED_INTERFACES`].
    fn default() -> Self {
        let patterns = DEFAULT_EXCLUDED_INTERFACES.iter().map(|p| format!("!{p}"));
        Self::parse(&patterns.collect::<Vec<_>>().join(","))
            .unwrap_or_else(|_| unreachable!("the default patterns are valid globs"))
    }
}

impl InterfaceFilter {
    /// Reads a comma-separated list of globs, each one an include, or an exclude when it starts
    /// with `!`. It replaces the default list whole.
    pub fn parse(list: &str) -> Result<Self, String> {
        let (mut include, mut exclude) = (
            globset::GlobSetBuilder::new(),
            globset::GlobSetBuilder::new(),
        );
        let mut includes = 0;
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (builder, pattern) = match item.strip_prefix('!') {
                Some(pattern) => (&mut exclude, pattern.trim()),
                None => {
                    includes += 1;
                    (&mut include, item)
                }
            };
            if pattern.is_empty() {
                return Err(format!("{item:?} names no interface"));
            }
            let glob =
                globset::Glob::new(pattern).map_err(|e| format!("{item:?}: {}", e.kind()))?;
            builder.add(glob);
        }
        let build = |b: globset::GlobSetBuilder| b.build().map_err(|e| e.to_string());
        Ok(Self {
            include: if includes > 0 {
                Some(build(include)?)
            } else {
                None
            },
            exclude: build(exclude)?,
        })
    }

    /// Whether `interface` belongs in the reading.
    pub fn keeps(&self, interface: &str) -> bool {
        interface != "lo"
            && !self.exclude.is_match(interface)
            && self.include.as_ref().is_none_or(|i| i.is_match(interface))
    }
}

/// One interface's counters since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counters {
    received_bytes: u64,
    transmitted_bytes: u64,
    /// Errors and drops, where the platform counts them.
    faults: Option<Faults>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Faults {
    receive_errors: u64,
    transmit_errors: u64,
    receive_drops: u64,
    transmit_drops: u64,
}

/// Interface counters, kept between samples to turn totals into rates.
pub(super) struct Interfaces {
    /// Counters at the previous sample, by interface.
    previous: HashMap<String, Counters>,
    filter: InterfaceFilter,
    #[cfg(target_os = "linux")]
    file: super::proc_file::ProcFile,
    #[cfg(not(target_os = "linux"))]
    networks: sysinfo::Networks,
}

impl Interfaces {
    /// Reads the counters once (`<root>/net/dev` on Linux), as the baseline for the first
    /// rates; lists only the interfaces `filter` keeps.
    pub(super) fn new(root: &Path, filter: InterfaceFilter, skips: &mut Skips) -> Self {
        #[cfg(not(target_os = "linux"))]
        let _ = root;
        let mut interfaces = Self {
            previous: HashMap::new(),
            filter,
            #[cfg(target_os = "linux")]
            file: super::proc_file::ProcFile::new(root, "net/dev"),
            #[cfg(not(target_os = "linux"))]
            networks: sysinfo::Networks::new(),
        };
        interfaces.previous = interfaces.totals(skips);
        interfaces
    }

    /// Every interface the filter keeps (never loopback), sorted by name; rates over
    /// `elapsed`, the time since the previous call.
    pub(super) fn read(&mut self, elapsed: Duration, skips: &mut Skips) -> Vec<Network> {
        let totals = self.totals(skips);
        let list = networks(&totals, &self.previous, elapsed, skips);
        self.previous = totals;
        list
    }

    /// Counters since boot, by interface; empty (counted) if unreadable.
    #[cfg(target_os = "linux")]
    fn totals(&mut self, skips: &mut Skips) -> HashMap<String, Counters> {
        use procfs::FromRead;
        let parsed = self
            .file
            .read()
            .map_err(|e| e.to_string())
            .and_then(|text| {
                procfs::net::InterfaceDeviceStatus::from_read(text.as_bytes())
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Ok(devices) => devices
                .0
                .into_iter()
                .filter(|(name, _)| self.filter.keeps(name))
                .map(|(name, d)| {
                    let faults = Faults {
                        receive_errors: d.recv_errs,
                        transmit_errors: d.sent_errs,
                        receive_drops: d.recv_drop,
                        transmit_drops: d.sent_drop,
                    };
                    let counters = Counters {
                        received_bytes: d.recv_bytes,
                        transmitted_bytes: d.sent_bytes,
                        faults: Some(faults),
                    };
                    (name, counters)
                })
                .collect(),
            Err(e) => {
                let path = self.file.path().display().to_string();
                skips.skip("network", format_args!("cannot read {path}: {e}"));
                HashMap::new()
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn totals(&mut self, _skips: &mut Skips) -> HashMap<String, Counters> {
        self.networks.refresh(true);
        self.networks
            .iter()
            .filter(|(name, _)| self.filter.keeps(&name.to_string_lossy()))
            .map(|(name, data)| {
                let counters = Counters {
                    received_bytes: data.total_received(),
                    transmitted_bytes: data.total_transmitted(),
                    faults: None,
                };
                (name.to_string_lossy().into_owned(), counters)
            })
            .collect()
    }
}

/// Interfaces from their counters now and at the previous sample `elapsed` ago. Loopback is
/// left out: its traffic says nothing about the host's network.
fn networks(
    totals: &HashMap<String, Counters>,
    previous: &HashMap<String, Counters>,
    elapsed: Duration,
    skips: &mut Skips,
) -> Vec<Network> {
    let mut list: Vec<Network> = Vec::with_capacity(totals.len());
    for (name, now) in totals.iter().filter(|(name, _)| name.as_str() != "lo") {
        // An interface new since the last sample has no rate yet.
        let before = previous.get(name).copied().unwrap_or(*now);
        let bytes = |now, before| per_sec(now, before, elapsed).map(|r| r.round() as u64);
        let received = bytes(now.received_bytes, before.received_bytes);
        let transmitted = bytes(now.transmitted_bytes, before.transmitted_bytes);
        let faults = now.faults.zip(before.faults).and_then(|(now, before)| {
            let rate = |now, before| per_sec(now, before, elapsed).map(round2);
            Some([
                rate(now.receive_errors, before.receive_errors)?,
                rate(now.transmit_errors, before.transmit_errors)?,
                rate(now.receive_drops, before.receive_drops)?,
                rate(now.transmit_drops, before.transmit_drops)?,
            ])
        });
        let went_back = received.is_none()
            || transmitted.is_none()
            || (now.faults.is_some() && faults.is_none());
        if went_back {
            // Interface re-created, or a 32-bit counter wrapped: no rate this once.
            skips.skip(
                "network",
                format_args!("the counters of {name} went back (re-created or wrapped)"),
            );
        }
        let rates_known = !went_back;
        let faults = faults.filter(|_| rates_known);
        list.push(Network {
            interface: name.clone(),
            received_bytes_per_sec: received.filter(|_| rates_known).unwrap_or(0),
            transmitted_bytes_per_sec: transmitted.filter(|_| rates_known).unwrap_or(0),
            total_received_bytes: now.received_bytes,
            total_transmitted_bytes: now.transmitted_bytes,
            receive_errors_per_sec: faults.map(|f| f[0]),
            transmit_errors_per_sec: faults.map(|f| f[1]),
            receive_drops_per_sec: faults.map(|f| f[2]),
            transmit_drops_per_sec: faults.map(|f| f[3]),
        });
    }
    list.sort_by(|a, b| a.interface.cmp(&b.interface));
    list
}

#[cfg(test)]
mod tests {
    use super::super::proc_file::testing::{fixtures, skips};
    use super::*;

    fn counters(rx: u64, tx: u64, faults: [u64; 4]) -> Counters {
        Counters {
            received_bytes: rx,
            transmitted_bytes: tx,
            faults: Some(Faults {
                receive_errors: faults[0],
                transmit_errors: faults[1],
                receive_drops: faults[2],
                transmit_drops: faults[3],
            }),
        }
    }

    fn totals(list: &[(&str, Counters)]) -> HashMap<String, Counters> {
        list.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn rates_are_per_second_since_the_previous_sample() {
        let mut skips = skips();
        let before = totals(&[
            ("eth0", counters(1_000, 5_000, [0, 0, 10, 0])),
            ("lo", counters(0, 0, [0; 4])),
            ("wg0", counters(100, 100, [0; 4])),
        ]);
        let now = totals(&[
            ("eth0", counters(5_000, 7_000, [1, 0, 16, 2])),
            ("lo", counters(9_000, 9_000, [0; 4])),
            ("wg0", counters(50, 100, [0; 4])),
            ("veth1", counters(10, 20, [0; 4])),
        ]);
        let list = networks(&now, &before, Duration::from_secs(2), &mut skips);
        let names: Vec<&str> = list.iter().map(|n| n.interface.as_str()).collect();
        assert_eq!(names, ["eth0", "veth1", "wg0"], "sorted, loopback left out");
        assert_eq!(list[0].received_bytes_per_sec, 2_000);
        assert_eq!(list[0].transmitted_bytes_per_sec, 1_000);
        assert_eq!(list[0].total_received_bytes, 5_000);
        assert_eq!(list[0].receive_errors_per_sec, Some(0.5));
        assert_eq!(list[0].receive_drops_per_sec, Some(3.0));
        assert_eq!(list[0].transmit_drops_per_sec, Some(1.0));
        assert_eq!(
            list[1].received_bytes_per_sec, 0,
            "new interface: no rate yet"
        );
        assert_eq!(
            list[2].received_bytes_per_sec, 0,
            "a counter that fell: 0, not a spike"
        );
        assert_eq!(list[2].receive_errors_per_sec, None, "and no fault rates");
        assert_eq!(skips.count("network"), 1, "the fallen counter is counted");
    }

    #[test]
    fn the_captured_file_is_read_with_errors_and_drops() {
        let mut skips = skips();
        let mut interfaces = Interfaces::new(&fixtures(), InterfaceFilter::default(), &mut skips);
        let list = interfaces.read(Duration::from_secs(1), &mut skips);
        let names: Vec<&str> = list.iter().map(|n| n.interface.as_str()).collect();
        assert_eq!(names, ["eth0", "ifb0", "ifb1"]);
        assert_eq!(list[0].total_received_bytes, 491_069_333);
        assert_eq!(list[0].receive_errors_per_sec, Some(0.0));
        assert_eq!(skips.count("network"), 0);
    }

    #[test]
    fn this_hosts_interfaces_are_read() {
        let mut skips = skips();
        let mut interfaces =
            Interfaces::new(Path::new("/proc"), InterfaceFilter::default(), &mut skips);
        let list = interfaces.read(Duration::from_secs(1), &mut skips);
        assert!(list.iter().all(|n| n.interface != "lo"));
        #[cfg(target_os = "linux")]
        assert!(
            std::fs::read_to_string("/proc/net/dev")
                .is_ok_and(|dev| list.iter().all(|n| dev.contains(&n.interface))),
            "{list:?}"
        );
        assert_eq!(skips.count("network"), 0);
    }

    fn names(list: &[Network]) -> Vec<&str> {
        list.iter().map(|n| n.interface.as_str()).collect()
    }

    /// The fixture `net/dev.docker`: the captured file with what Docker adds on a host running
    /// three containers (its bridge, a user-defined network's bridge, one veth per container).
    fn docker_host(filter: InterfaceFilter) -> Vec<String> {
        let mut skips = skips();
        let mut interfaces = Interfaces::new(&fixtures(), filter, &mut skips);
        interfaces.file = super::super::proc_file::ProcFile::new(&fixtures(), "net/dev.docker");
        let list = interfaces.read(Duration::from_secs(1), &mut skips);
        names(&list).into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn the_virtual_interfaces_of_a_docker_host_are_left_out_by_default() {
        assert_eq!(
            docker_host(InterfaceFilter::default()),
            ["eth0", "ifb0", "ifb1", "wg0"],
            "no docker0, br-…, veth…; a VPN's interface is the host's"
        );
    }

    #[test]
    fn network_interfaces_includes_and_excludes_by_glob() {
        let only = |list| docker_host(InterfaceFilter::parse(list).expect("valid"));
        assert_eq!(only("eth*,!veth*"), ["eth0"]);
        assert_eq!(
            only("eth0, wg*"),
            ["eth0", "wg0"],
            "spaces around items are fine"
        );
        assert_eq!(
            only("!ifb*"),
            [
                "br-3f2a9c1d4e5b",
                "docker0",
                "eth0",
                "veth1a2b3c4",
                "veth5d6e7f8",
                "veth9a8b7c6",
                "wg0"
            ],
            "the setting replaces the default list: only its excludes apply"
        );
        assert_eq!(
            only("*,!veth*,!eth0"),
            ["br-3f2a9c1d4e5b", "docker0", "ifb0", "ifb1", "wg0"]
        );
        assert_eq!(only("lo"), Vec::<String>::new(), "loopback never");
    }

    #[test]
    fn a_bad_glob_is_refused_naming_it() {
        for bad in ["eth[", "!", "eth0,!", "{a,b"] {
            let err = InterfaceFilter::parse(bad).expect_err(bad);
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(InterfaceFilter::parse("eth[").is_err_and(|e| e.contains("eth[")));
        assert!(
            InterfaceFilter::parse("").is_ok_and(|f| f.keeps("veth0")),
            "empty: every one"
        );
    }
}
