//! History: every reading kept, at three tiers, in SQLite or PostgreSQL.
//!
//! ```text
//! history queue ─▶ intake ─▶ StoreSink (recorder.rs) ─▶ store ─▶ /api/hosts/{host}/history
//! ```
//! - [`recorder`]: the store's own durable quorum queue → the store; a batch is acknowledged
//!   only once the store committed it. Also the store's upkeep (retention, sizes).
//! - [`store`]: the database: packed rows, rollups, queries by tier, the alert state and the
//!   API tokens tables.

pub mod recorder;
pub mod store;

pub use recorder::{History, Recorder};
