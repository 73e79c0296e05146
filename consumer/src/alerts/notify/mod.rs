//! Alert notifications: a [`Notice`] per host per evaluation step, delivered to a generic JSON
//! webhook, ntfy, a Slack-compatible webhook and e-mail, each channel on its own with bounded
//! retries, never blocking the caller. Independent of the rule engine's types: the engine's
//! events are turned into a `Notice` where the two are wired together.

mod channels;
mod delivery;
mod notice;
mod settings;

#[cfg(test)]
mod test_servers;
#[cfg(test)]
mod tests;

pub use channels::ChannelKind;
pub use delivery::{Notifier, NotifyError, OUTCOMES};
pub use notice::{
    EventKind, Item, ItemKind, Notice, NoticeEvent, NoticeStatus, Severity, NOTICE_VERSION,
};
pub use settings::{
    masked, EmailSettings, Endpoint, NotifySettings, NtfySettings, RetryPolicy, SmtpSecurity,
    SmtpServer,
};
