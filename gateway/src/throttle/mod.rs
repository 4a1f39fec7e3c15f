//! Per-feature throttles (DESIGN §2.2): requests per minute with a burst (token bucket), model
//! tokens per rolling minute, model tokens per UTC day. The [`Throttle`] trait is what the request
//! path calls; [`local`] keeps counters in-process on the embedded default (a shared store backs
//! it in AWS). Limits are passed on every call, so a changed limit applies without a restart.

pub mod dynamo;
pub mod local;

use async_trait::async_trait;

use crate::config::ThrottleLimits;

/// Why a request was refused and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// Which limit: `requests_per_minute`, `tokens_per_minute` or `tokens_per_day`.
    pub limit: &'static str,
    pub retry_after_secs: u64,
}

#[async_trait]
pub trait Throttle: Send + Sync {
    /// Admit one request expected to use about `estimated_tokens`, or say when to retry.
    /// A request is refused on tokens only when earlier usage already fills the window, so a
    /// single request larger than the window is never refused forever.
    async fn admit(
        &self,
        feature: &str,
        limits: &ThrottleLimits,
        estimated_tokens: u64,
        now_ms: i64,
    ) -> Result<(), Denied>;
    /// Charge the tokens a request actually used.
    async fn charge(&self, feature: &str, tokens: u64, now_ms: i64);
    /// Current usage: (tokens in the rolling minute, tokens today), for the console.
    async fn usage(&self, feature: &str, now_ms: i64) -> (u64, u64);
}
