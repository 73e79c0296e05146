//! Temperature sensors; many virtual machines have none.

use shared::reading::Temperature;
use sysinfo::Components;

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
