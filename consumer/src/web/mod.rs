//! The web face of the consumer, the last stage of the path: the dashboard, `/ws`, `/api/*`,
//! `/health`, `/ready` and `/metrics`, behind the login and token checks.
//!
//! - [`routes`]: the HTTP routes.
//! - [`ws`]: WebSocket sessions fed from the live view.
//! - [`auth`]: login, sessions, API tokens, the login brake.
//! - [`origin`]: which pages may open the WebSocket.

pub mod auth;
pub mod origin;
pub mod routes;
pub mod ws;
