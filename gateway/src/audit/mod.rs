//! The audit trail: one metadata event per request (DESIGN §5) and one access event per vault
//! opening. Never prompt or response text, never a token, never a key.
//!
//! [`AuditStore`] is the trait both backends fill: [`sqlite`] on the embedded default,
//! CloudWatch Logs in AWS (`crate::aws::cloudwatch`). Everything the console reads from the
//! audit trail goes through it; [`rollup`] owns the overview's usage summary.

pub mod prompt_hash;
pub mod rollup;
pub mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use rollup::UsageSummary;

/// One request's metadata, exactly the fields of DESIGN §5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub request_id: String,
    pub user_sub: String,
    pub feature: String,
    /// The pinned model id actually invoked.
    pub model: String,
    pub model_alias: String,
    /// `hmac-sha256:<hex>` of the raw prompt, keyed by a deployment secret.
    pub prompt_hash: String,
    pub latency_ms: u64,
    pub model_latency_ms: u64,
    pub guardrail_id: String,
    pub guardrail_version: String,
    /// `NONE` or `INTERVENED`.
    pub guardrail_action: String,
    /// `NONE`, `ANONYMIZED` or `BLOCKED`.
    pub input_action: String,
    pub output_action: String,
    pub policies: Vec<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The HTTP status returned to the caller.
    pub status: u16,
    pub stream: bool,
    /// The vault object key of this request's full record, when one was written.
    pub vault_key: Option<String>,
    pub source_ip: String,
    pub user_agent: String,
}

/// One opening of a vault record: who, which record, why, when, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEvent {
    pub timestamp: i64,
    /// Who opened it (console user name, or `cli:<os user>`).
    pub actor: String,
    pub request_id: String,
    pub vault_key: String,
    pub reason: String,
    /// `console` or `cli`, plus the client address where known.
    pub origin: String,
}

/// Requests in one minute, for the overview chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCount {
    /// Start of the minute, ms since the epoch.
    pub minute: i64,
    pub requests: u64,
    /// Requests where a guardrail intervened.
    pub interventions: u64,
}

/// Which vault openings to list: since when, by whom, how many (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessFilter {
    /// Only openings at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only openings by this actor (exact match).
    pub actor: Option<String>,
    /// Most openings returned.
    pub limit: usize,
}

/// Most openings one [`AuditStore::access_log`] call returns, whatever the filter asks.
pub const MAX_ACCESS_LOG: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit store failed: {0}")]
    Store(String),
}

/// Where audit and access events are written and read back.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Durably record one request's event. Returns only once the event would survive the
    /// process being killed.
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;
    /// Durably record a vault opening (before the plaintext is shown).
    async fn record_access(&self, event: &AccessEvent) -> Result<(), AuditError>;
    /// The event of one request.
    async fn find(&self, request_id: &str) -> Result<Option<AuditEvent>, AuditError>;
    /// Every opening of one request's record, oldest first.
    async fn accesses(&self, request_id: &str) -> Result<Vec<AccessEvent>, AuditError>;
    /// Requests per minute in `[since_ms, until_ms)`, minutes without requests omitted.
    async fn requests_per_minute(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<MinuteCount>, AuditError>;
    /// The overview's numbers for `[since_ms, until_ms)` widened to whole minutes
    /// ([`rollup::whole_minutes`]), with at most `top` (≤ [`rollup::MAX_TOP`]) top users and
    /// policies. Equal to [`rollup::UsageBuilder`] over the raw events of the range.
    async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        top: usize,
    ) -> Result<UsageSummary, AuditError>;
    /// Requests per feature with a timestamp in `[since_ms, until_ms)`; features without
    /// requests are absent.
    async fn requests_by_feature(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<BTreeMap<String, u64>, AuditError>;
    /// Vault openings matching `filter`, newest first, at most `filter.limit` (capped at
    /// [`MAX_ACCESS_LOG`]).
    async fn access_log(&self, filter: &AccessFilter) -> Result<Vec<AccessEvent>, AuditError>;
}
