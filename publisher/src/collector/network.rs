//! Network interfaces: rates since the previous sample and totals since boot.

use shared::reading::Network;
use std::time::Duration;
use sysinfo::Networks;

/// Every interface but loopback, whose traffic says nothing about the host's network.
pub(super) fn read(networks: &Networks, elapsed: Duration) -> Vec<Network> {
    let secs = elapsed.as_secs_f64().max(f64::EPSILON);
    let per_sec = |bytes: u64| (bytes as f64 / secs).round() as u64;
    let mut list: Vec<Network> = networks
        .iter()
        .filter(|(name, _)| name.as_os_str() != "lo")
        .map(|(name, data)| Network {
            interface: name.to_string_lossy().into_owned(),
            received_bytes_per_sec: per_sec(data.received()),
            transmitted_bytes_per_sec: per_sec(data.transmitted()),
            total_received_bytes: data.total_received(),
            total_transmitted_bytes: data.total_transmitted(),
        })
        .collect();
    list.sort_by(|a, b| a.interface.cmp(&b.interface));
    list
}
