//! Temperature sensors; many virtual machines have none.

use shared::reading::Temperature;
use sysinfo::Components;

/// Refreshes the known sensors' figures; with `relist`, also looks for sensors that came or
/// went (a walk of `/sys/class/hwmon`).
pub(super) fn refresh(components: &mut Components, relist: bool) {
    components.refresh(relist);
}

/// Every sensor that reports a temperature.
pub(super) fn read(components: &Components) -> Vec<Temperature> {
    components
        .iter()
        .filter_map(|c| {
            let celsius = c.temperature().filter(|t| t.is_finite())?;
            Some(Temperature {
                label: c.label().to_owned(),
                celsius: (celsius * 10.0).round() / 10.0,
            })
        })
        .collect()
}
