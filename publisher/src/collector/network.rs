//! Network interfaces: rates since the previous sample and totals since boot.
//!
//! On Linux the counters come from `/proc/net/dev` (through `procfs`): one file for every
//! interface. sysinfo reads nine sysfs files per interface instead, which was two thirds of
//! the sampler's cost on a host with four interfaces, and grows with every container's veth.
//! Elsewhere, sysinfo.

use shared::reading::Network;
use std::collections::HashMap;
use std::time::Duration;

/// Interface counters, kept between samples to turn totals into rates.
pub(super) struct Interfaces {
    /// Received and transmitted totals at the previous sample, by interface.
    previous: HashMap<String, (u64, u64)>,
    #[cfg(not(target_os = "linux"))]
    networks: sysinfo::Networks,
}

impl Interfaces {
    /// Reads the counters once, as the baseline for the first rates.
    pub(super) fn new() -> Self {
        let mut interfaces = Self {
            previous: HashMap::new(),
            #[cfg(not(target_os = "linux"))]
            networks: sysinfo::Networks::new(),
        };
        interfaces.previous = interfaces.totals();
        interfaces
    }

    /// Every interface but loopback, sorted by name; rates over `elapsed`, the time since the
    /// previous call.
    pub(super) fn read(&mut self, elapsed: Duration) -> Vec<Network> {
        let totals = self.totals();
        let list = networks(&totals, &self.previous, elapsed);
        self.previous = totals;
        list
    }

    /// Received and transmitted bytes since boot, by interface; empty if unreadable.
    #[cfg(target_os = "linux")]
    fn totals(&mut self) -> HashMap<String, (u64, u64)> {
        match procfs::net::dev_status() {
            Ok(devices) => devices
                .into_iter()
                .map(|(name, d)| (name, (d.recv_bytes, d.sent_bytes)))
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read /proc/net/dev");
                HashMap::new()
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn totals(&mut self) -> HashMap<String, (u64, u64)> {
        self.networks.refresh(true);
        self.networks
            .iter()
            .map(|(name, data)| {
                (
                    name.to_string_lossy().into_owned(),
                    (data.total_received(), data.total_transmitted()),
                )
            })
            .collect()
    }
}

/// Interfaces from their totals now and at the previous sample `elapsed` ago. Loopback is
/// left out: its traffic says nothing about the host's network.
fn networks(
    totals: &HashMap<String, (u64, u64)>,
    previous: &HashMap<String, (u64, u64)>,
    elapsed: Duration,
) -> Vec<Network> {
    let secs = elapsed.as_secs_f64().max(f64::EPSILON);
    // A counter that went backwards (interface re-created, 32-bit wrap) gives 0, not a spike.
    let rate = |now: u64, before: u64| (now.saturating_sub(before) as f64 / secs).round() as u64;
    let mut list: Vec<Network> = totals
        .iter()
        .filter(|(name, _)| name.as_str() != "lo")
        .map(|(name, &(received, transmitted))| {
            // An interface new since the last sample has no rate yet.
            let (received_before, transmitted_before) = previous
                .get(name)
                .copied()
                .unwrap_or((received, transmitted));
            Network {
                interface: name.clone(),
                received_bytes_per_sec: rate(received, received_before),
                transmitted_bytes_per_sec: rate(transmitted, transmitted_before),
                total_received_bytes: received,
                total_transmitted_bytes: transmitted,
                receive_errors_per_sec: None,
                transmit_errors_per_sec: None,
                receive_drops_per_sec: None,
                transmit_drops_per_sec: None,
            }
        })
        .collect();
    list.sort_by(|a, b| a.interface.cmp(&b.interface));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(pairs: &[(&str, u64, u64)]) -> HashMap<String, (u64, u64)> {
        pairs
            .iter()
            .map(|(name, rx, tx)| (name.to_string(), (*rx, *tx)))
            .collect()
    }

    #[test]
    fn rates_are_bytes_per_second_since_the_previous_sample() {
        let before = totals(&[("eth0", 1_000, 5_000), ("lo", 0, 0), ("wg0", 100, 100)]);
        let now = totals(&[
            ("eth0", 5_000, 7_000),
            ("lo", 9_000, 9_000),
            ("wg0", 50, 100),
            ("veth1", 10, 20),
        ]);
        let list = networks(&now, &before, Duration::from_secs(2));
        let names: Vec<&str> = list.iter().map(|n| n.interface.as_str()).collect();
        assert_eq!(names, ["eth0", "veth1", "wg0"], "sorted, loopback left out");
        assert_eq!(list[0].received_bytes_per_sec, 2_000);
        assert_eq!(list[0].transmitted_bytes_per_sec, 1_000);
        assert_eq!(list[0].total_received_bytes, 5_000);
        assert_eq!(
            list[1].received_bytes_per_sec, 0,
            "new interface: no rate yet"
        );
        assert_eq!(
            list[2].received_bytes_per_sec, 0,
            "a counter that fell: 0, not a spike"
        );
    }

    #[test]
    fn this_hosts_interfaces_are_read() {
        let mut interfaces = Interfaces::new();
        let list = interfaces.read(Duration::from_secs(1));
        assert!(list.iter().all(|n| n.interface != "lo"));
        #[cfg(target_os = "linux")]
        assert!(
            std::fs::read_to_string("/proc/net/dev")
                .is_ok_and(|dev| list.iter().all(|n| dev.contains(&n.interface))),
            "{list:?}"
        );
    }
}
