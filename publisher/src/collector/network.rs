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

    /// Every interface but loopback (its traffic says nothing about the host's network),
    /// sorted by name; rates over `elapsed`, the time since the previous call.
    pub(super) fn read(&mut self, elapsed: Duration) -> Vec<Network> {
        let totals = self.totals();
        let secs = elapsed.as_secs_f64().max(f64::EPSILON);
        // A counter that went backwards (interface re-created, 32-bit wrap) gives 0, not a spike.
        let rate =
            |now: u64, before: u64| (now.saturating_sub(before) as f64 / secs).round() as u64;
        let mut list: Vec<Network> = totals
            .iter()
            .filter(|(name, _)| name.as_str() != "lo")
            .map(|(name, &(received, transmitted))| {
                let (received_before, transmitted_before) = self
                    .previous
                    .get(name)
                    .copied()
                    .unwrap_or((received, transmitted));
                Network {
                    interface: name.clone(),
                    received_bytes_per_sec: rate(received, received_before),
                    transmitted_bytes_per_sec: rate(transmitted, transmitted_before),
                    total_received_bytes: received,
                    total_transmitted_bytes: transmitted,
                }
            })
            .collect();
        list.sort_by(|a, b| a.interface.cmp(&b.interface));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_the_difference_over_time_and_never_negative() {
        let mut interfaces = Interfaces {
            previous: HashMap::from([
                ("eth0".to_owned(), (1_000, 5_000)),
                ("lo".to_owned(), (0, 0)),
            ]),
            #[cfg(not(target_os = "linux"))]
            networks: sysinfo::Networks::new(),
        };
        let now = interfaces.totals();
        let list = interfaces.read(Duration::from_secs(2));
        assert!(
            list.iter().all(|n| n.interface != "lo"),
            "loopback is left out"
        );
        for n in &list {
            // Totals since boot only grow (traffic may have come in between the two reads).
            assert!(n.total_received_bytes >= now[&n.interface].0, "{n:?}");
        }
        // Counters seen falling (here: a made-up previous total above the real one) give 0.
        interfaces.previous = HashMap::from([("eth0".to_owned(), (u64::MAX, u64::MAX))]);
        for n in interfaces.read(Duration::from_secs(1)) {
            if n.interface == "eth0" {
                assert_eq!(n.received_bytes_per_sec, 0);
                assert_eq!(n.transmitted_bytes_per_sec, 0);
            }
        }
    }

    #[test]
    fn the_rate_is_bytes_per_second() {
        let mut interfaces = Interfaces::new();
        let name = interfaces
            .previous
            .keys()
            .find(|n| n.as_str() != "lo")
            .cloned();
        let Some(name) = name else {
            return; // a host with loopback only has no rate to check
        };
        let (received, transmitted) = interfaces.previous[&name];
        interfaces.previous.insert(
            name.clone(),
            (
                received.saturating_sub(4_000),
                transmitted.saturating_sub(2_000),
            ),
        );
        let list = interfaces.read(Duration::from_secs(2));
        let n = list
            .iter()
            .find(|n| n.interface == name)
            .expect("still there");
        // At least what was taken off the baseline, over two seconds (plus real traffic).
        assert!(n.received_bytes_per_sec >= 2_000, "{n:?}");
        assert!(n.transmitted_bytes_per_sec >= 1_000, "{n:?}");
    }
}
