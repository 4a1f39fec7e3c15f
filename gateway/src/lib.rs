//! Golden Path gateway: the one sanctioned request path from a product team to a foundation model.
//!
//! Every request takes the same path (see `ARCHITECTURE.md`): [`auth`] → [`throttle`] →
//! [`guard`] (input) → [`model`] → [`guard`] (output) → [`audit`] event + [`vault`] record.
//! [`chat`] owns that path; [`router`] maps it onto HTTP; [`cli`] is the `gateway` binary.

pub mod audit;
pub mod auth;
pub mod aws;
pub mod chat;
pub mod cli;
pub mod config;
pub mod error;
pub mod features;
pub mod guard;
pub mod insights;
pub mod lambda;
pub mod model;
pub mod net;
pub mod openai;
pub mod router;
pub mod secret_file;
pub mod state;
pub mod throttle;
pub mod vault;

/// Milliseconds since the Unix epoch, the unit of every timestamp the gateway writes.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}
