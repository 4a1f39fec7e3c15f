//! Throttle counters shared by every instance (every concurrent Lambda) in one DynamoDB table,
//! so a feature's limits hold across the fleet, not per process.
//!
//! The table has one string partition key `pk` and a TTL attribute `expiresAt` (epoch
//! seconds). Per feature:
//! - `bucket#<feature>`: the request token bucket (`tokens`, refilled as of `ts` ms) and a
//!   version `v`. `admit` reads it with the token counters in one consistent BatchGetItem, and
//!   takes a token with a conditional UpdateItem (`v` unchanged, or the item absent), so two
//!   instances can never spend the same token; a lost race re-reads and retries.
//! - `tpm#<feature>#<minute>`: model tokens charged in one UTC minute (atomic `ADD`). The rolling
//!   minute is estimated the usual sliding-window way: this minute plus the previous minute
//!   weighted by the part of it still inside the window.
//! - `tpd#<feature>#<day>`: model tokens charged in one UTC day (atomic `ADD`).
//!
//! As on the embedded default, a request is refused on tokens only when earlier usage already
//! fills the window. When DynamoDB cannot be reached the decision falls back to in-process
//! counters ([`LocalThrottle`]), so limits still hold per instance (and API Gateway's own
//! throttle holds in front); the failure is logged. After a failure the table is left alone for
//! [`PAUSE_AFTER_FAILURE`], so a hanging DynamoDB costs one timeout, not one per request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::local::LocalThrottle;
use super::{Denied, Throttle};
use crate::aws::{describe, error_code};
use crate::config::ThrottleLimits;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// Conditional-update attempts per admission before falling back to in-process counters.
const MAX_ATTEMPTS: u32 = 32;

/// [`Throttle`] on a DynamoDB table shared by every instance.
pub struct DynamoThrottle {
    client: aws_sdk_dynamodb::Client,
    table: String,
    fallback: LocalThrottle,
    /// Until when the table is skipped after a failure.
    paused_until: std::sync::Mutex<Option<Instant>>,
}

/// How long the in-process counters decide alone after DynamoDB failed.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(3);

impl std::fmt::Debug for DynamoThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoThrottle")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

type Item = HashMap<String, AttributeValue>;

/// The request bucket as read.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    ts: i64,
    version: u64,
}

/// Everything one admission decides from.
#[derive(Debug, Default)]
struct Snapshot {
    bucket: Option<Bucket>,
    minute: u64,
    previous_minute: u64,
    day: u64,
}

fn key(pk: String) -> Item {
    HashMap::from([("pk".to_string(), AttributeValue::S(pk))])
}

fn number<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => Some(n.as_str()),
        _ => None,
    }
}

fn count(item: Option<&Item>) -> u64 {
    item.and_then(|i| number(i, "n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn bucket_key(feature: &str) -> String {
    format!("bucket#{feature}")
}
fn minute_key(feature: &str, minute: i64) -> String {
    format!("tpm#{feature}#{minute}")
}
fn day_key(feature: &str, day: i64) -> String {
    format!("tpd#{feature}#{day}")
}

/// The sliding-window estimate of tokens in the minute ending at `now_ms`.
fn rolling_minute(snapshot: &Snapshot, now_ms: i64) -> u64 {
    let into = now_ms.rem_euclid(MINUTE_MS);
    let weight = (MINUTE_MS - into) as f64 / MINUTE_MS as f64;
    snapshot.minute + (snapshot.previous_minute as f64 * weight).round() as u64
}

/// Seconds until the rolling estimate falls to `target` or below.
fn seconds_until_minute_at_most(snapshot: &Snapshot, target: u64, now_ms: i64) -> u64 {
    let into = now_ms.rem_euclid(MINUTE_MS);
    let (cur, prev, target) = (
        snapshot.minute as f64,
        snapshot.previous_minute as f64,
        target as f64,
    );
    let wait_ms = if cur <= target && prev > 0.0 {
        // The previous minute's share has to shrink: cur + prev * (1 - t/60s) <= target.
        let t = (1.0 - (target - cur) / prev) * MINUTE_MS as f64;
        t - into as f64
    } else {
        // Wait for this minute to become the previous one and shrink in turn.
        let share = if cur > 0.0 { 1.0 - target / cur } else { 0.0 };
        (MINUTE_MS - into) as f64 + share * MINUTE_MS as f64
    };
    ((wait_ms / 1000.0).ceil() as u64).clamp(1, 120)
}

impl DynamoThrottle {
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> DynamoThrottle {
        DynamoThrottle {
            client,
            table: table.to_string(),
            fallback: LocalThrottle::new(),
            paused_until: std::sync::Mutex::new(None),
        }
    }

    /// Whether the table is being skipped after a recent failure.
    fn paused(&self) -> bool {
        let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    /// Note a failure: skip the table for [`PAUSE_AFTER_FAILURE`]; log once per pause.
    fn failed(&self, feature: &str, what: &str, error: &str) {
        let mut until = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        let already = until.is_some_and(|t| Instant::now() < t);
        *until = Some(Instant::now() + PAUSE_AFTER_FAILURE);
        if !already {
            tracing::warn!(
                feature,
                error,
                pause_secs = PAUSE_AFTER_FAILURE.as_secs(),
                "shared throttle unavailable; {what}"
            );
        }
    }

    /// Check that the table exists and is reachable (at start-up, for a clear error).
    pub async fn check(&self) -> Result<(), String> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe("DynamoDB DescribeTable", &e))
    }

    async fn snapshot(&self, feature: &str, now_ms: i64) -> Result<Snapshot, String> {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let names = [
            bucket_key(feature),
            minute_key(feature, minute),
            minute_key(feature, minute - 1),
            day_key(feature, now_ms.div_euclid(DAY_MS)),
        ];
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(names.iter().map(|n| key(n.clone())).collect()))
            .consistent_read(true)
            .build()
            .map_err(|e| format!("DynamoDB BatchGetItem: {e}"))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(|e| describe("DynamoDB BatchGetItem", &e))?;
        if out.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
            return Err("DynamoDB BatchGetItem left keys unprocessed".into());
        }
        let items: HashMap<&str, &Item> = out
            .responses()
            .and_then(|r| r.get(&self.table))
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| match i.get("pk") {
                        Some(AttributeValue::S(pk)) => Some((pk.as_str(), i)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let bucket = items.get(names[0].as_str()).and_then(|i| {
            Some(Bucket {
                tokens: number(i, "tokens")?.parse().ok()?,
                ts: number(i, "ts")?.parse().ok()?,
                version: number(i, "v")?.parse().ok()?,
            })
        });
        Ok(Snapshot {
            bucket,
            minute: count(items.get(names[1].as_str()).copied()),
            previous_minute: count(items.get(names[2].as_str()).copied()),
            day: count(items.get(names[3].as_str()).copied()),
        })
    }

    /// Store the bucket with one token fewer, if nobody changed it since `seen`.
    /// `Ok(false)`: lost the race.
    async fn take_token(
        &self,
        feature: &str,
        seen: Option<Bucket>,
        tokens_after: f64,
        now_ms: i64,
    ) -> Result<bool, String> {
        let version = seen.map_or(0, |b| b.version);
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(bucket_key(feature))))
            .update_expression("SET tokens = :t, ts = :now, v = :next, expiresAt = :exp")
            .expression_attribute_values(":t", AttributeValue::N(format!("{tokens_after}")))
            // Never move `ts` back (clock skew between instances would mint tokens).
            .expression_attribute_values(
                ":now",
                AttributeValue::N(seen.map_or(now_ms, |b| b.ts.max(now_ms)).to_string()),
            )
            .expression_attribute_values(":next", AttributeValue::N((version + 1).to_string()))
            .expression_attribute_values(":exp", expires_at(now_ms + DAY_MS));
        req = match seen {
            None => req.condition_expression("attribute_not_exists(pk)"),
            Some(_) => req
                .condition_expression("v = :seen")
                .expression_attribute_values(":seen", AttributeValue::N(version.to_string())),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(describe("DynamoDB UpdateItem", &e)),
        }
    }

    async fn admit_shared(
        &self,
        feature: &str,
        limits: &ThrottleLimits,
        estimated_tokens: u64,
        now_ms: i64,
    ) -> Result<Result<(), Denied>, String> {
        let burst = f64::from(limits.burst.max(1));
        let per_ms = f64::from(limits.requests_per_minute.max(1)) / 60_000.0;
        for attempt in 0..MAX_ATTEMPTS {
            let s = self.snapshot(feature, now_ms).await?;
            let tokens = match s.bucket {
                None => burst,
                Some(b) => (b.tokens + (now_ms - b.ts).max(0) as f64 * per_ms).min(burst),
            };
            if tokens < 1.0 {
                let wait_ms = (1.0 - tokens) / per_ms;
                return Ok(Err(Denied {
                    limit: "requests_per_minute",
                    retry_after_secs: (wait_ms / 1000.0).ceil().max(1.0) as u64,
                }));
            }
            let minute_used = rolling_minute(&s, now_ms);
            if minute_used > 0
                && minute_used.saturating_add(estimated_tokens) > limits.tokens_per_minute
            {
                let target = limits.tokens_per_minute.saturating_sub(estimated_tokens);
                return Ok(Err(Denied {
                    limit: "tokens_per_minute",
                    retry_after_secs: seconds_until_minute_at_most(&s, target, now_ms),
                }));
            }
            if s.day > 0 && s.day.saturating_add(estimated_tokens) > limits.tokens_per_day {
                let next_day_ms = (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
                return Ok(Err(Denied {
                    limit: "tokens_per_day",
                    retry_after_secs: ((next_day_ms - now_ms) / 1000).max(1) as u64,
                }));
            }
            if self
                .take_token(feature, s.bucket, tokens - 1.0, now_ms)
                .await?
            {
                return Ok(Ok(()));
            }
            // Lost a race with another instance: back off a random little (racers that all
            // waited the same would collide again), re-read, decide again.
            tokio::time::sleep(Duration::from_millis(backoff_ms(attempt))).await;
        }
        Err(format!(
            "DynamoDB: no conditional update won in {MAX_ATTEMPTS} attempts"
        ))
    }

    async fn add(&self, pk: String, tokens: u64, expires_ms: i64) -> Result<(), String> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk)))
            .update_expression("ADD n :n SET expiresAt = :exp")
            .expression_attribute_values(":n", AttributeValue::N(tokens.to_string()))
            .expression_attribute_values(":exp", expires_at(expires_ms))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe("DynamoDB UpdateItem", &e))
    }
}

/// A random pause of up to `2 + 2 * attempt` ms (at most 20) after a lost conditional update.
fn backoff_ms(attempt: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    random % (2 + 2 * u64::from(attempt)).min(20) + 1
}

fn expires_at(ms: i64) -> AttributeValue {
    AttributeValue::N(ms.div_euclid(1000).to_string())
}

#[async_trait]
impl Throttle for DynamoThrottle {
    async fn admit(
        &self,
        feature: &str,
        limits: &ThrottleLimits,
        estimated_tokens: u64,
        now_ms: i64,
    ) -> Result<(), Denied> {
        if self.paused() {
            return self
                .fallback
                .admit(feature, limits, estimated_tokens, now_ms)
                .await;
        }
        match self
            .admit_shared(feature, limits, estimated_tokens, now_ms)
            .await
        {
            Ok(decision) => decision,
            Err(e) => {
                self.failed(feature, "using in-process counters", &e);
                self.fallback
                    .admit(feature, limits, estimated_tokens, now_ms)
                    .await
            }
        }
    }

    async fn charge(&self, feature: &str, tokens: u64, now_ms: i64) {
        if tokens == 0 {
            return;
        }
        if self.paused() {
            self.fallback.charge(feature, tokens, now_ms).await;
            return;
        }
        let minute = minute_key(feature, now_ms.div_euclid(MINUTE_MS));
        let day = day_key(feature, now_ms.div_euclid(DAY_MS));
        let (m, d) = tokio::join!(
            self.add(minute, tokens, now_ms + 2 * MINUTE_MS),
            self.add(day, tokens, now_ms + 2 * DAY_MS),
        );
        if let Err(e) = m.and(d) {
            self.failed(feature, "charged in-process", &e);
            self.fallback.charge(feature, tokens, now_ms).await;
        }
    }

    async fn usage(&self, feature: &str, now_ms: i64) -> (u64, u64) {
        if self.paused() {
            return self.fallback.usage(feature, now_ms).await;
        }
        match self.snapshot(feature, now_ms).await {
            Ok(s) => (rolling_minute(&s, now_ms), s.day),
            Err(e) => {
                self.failed(feature, "usage from in-process counters", &e);
                self.fallback.usage(feature, now_ms).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rolling_minute_weighs_the_previous_minute_by_overlap() {
        let s = Snapshot {
            minute: 10,
            previous_minute: 60,
            ..Snapshot::default()
        };
        let start = 1_000 * MINUTE_MS;
        assert_eq!(rolling_minute(&s, start), 70);
        assert_eq!(rolling_minute(&s, start + 30_000), 40);
        assert_eq!(rolling_minute(&s, start + 59_999), 10);
        // Down to 40 (of which 10 is this minute's): half of the previous minute must age out.
        assert_eq!(seconds_until_minute_at_most(&s, 40, start), 30);
        // Below this minute's own usage: wait for it to become the previous minute.
        let s = Snapshot {
            minute: 100,
            previous_minute: 0,
            ..Snapshot::default()
        };
        assert_eq!(seconds_until_minute_at_most(&s, 50, start + 30_000), 60);
    }
}
