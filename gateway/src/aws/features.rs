//! The console's feature overrides on DynamoDB (`backend = "aws"`), in the same table as the
//! throttle counters (`aws.throttle_table`, string partition key `pk`).
//!
//! One item per overridden feature:
//! `pk = "feature#<name>"`, `settings` (the [`FeatureOverride`] as JSON), `version` (a number
//! raised by one on every write), `updatedMs`, `updatedBy`. The items carry no `expiresAt`, so
//! the table's TTL never removes them.
//!
//! Reads are one consistent BatchGetItem of the configured features' keys (the configuration
//! says which features exist, so nothing is scanned; at most [`MAX_FEATURES`] keys, 100 a
//! call). Writes are a PutItem conditioned on the version the writer last saw (or on the item
//! being absent), so two consoles never silently overwrite each other.
//!
//! [`DynamoFeatureStore`] runs every call on a small runtime of its own (one worker thread):
//! the request path reads feature settings synchronously, and a synchronous caller may wait
//! for a refresh only if that refresh can make progress without the caller's own thread,
//! which is not the case on a current-thread or one-worker runtime (a Lambda with one vCPU).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use anyhow::Context;

use super::{describe, error_code};
use crate::config::Config;
use crate::features::{FeatureOverride, FeatureSettings};

/// The most features one load reads (10 BatchGetItem calls).
pub const MAX_FEATURES: usize = 1000;
/// Keys per BatchGetItem (the service's limit).
const BATCH_KEYS: usize = 100;
/// BatchGetItem rounds for keys the service left unprocessed, per batch.
const UNPROCESSED_ROUNDS: u32 = 3;
/// Largest `settings` value read (a real override is a few hundred bytes).
pub const MAX_SETTINGS_BYTES: usize = 16 * 1024;
/// Longest feature name stored (DynamoDB allows 2048 bytes of partition key).
pub const MAX_FEATURE_NAME: usize = 1024;
/// Longest `updatedBy` stored.
const MAX_ACTOR: usize = 300;

/// The partition key of a feature's override item.
pub fn feature_key(feature: &str) -> String {
    format!("feature#{feature}")
}

/// An override as stored, with the version it was stored at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOverride {
    pub settings: FeatureOverride,
    pub version: u64,
}

/// Why a write did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutError {
    /// Someone else wrote the feature since the version this writer last saw.
    Conflict,
    /// The store could not be reached or refused the call (the text is safe to log).
    Failed(String),
}

/// The DynamoDB side of [`crate::features::FeatureSettings`].
pub struct DynamoFeatureStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// `Some` until dropped; shut down without blocking (it may be dropped inside a runtime).
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for DynamoFeatureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoFeatureStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Drop for DynamoFeatureStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl DynamoFeatureStore {
    /// A store on `table`, with its own one-thread runtime for the SDK calls.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Result<DynamoFeatureStore, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("feature-settings")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the feature settings runtime: {e}"))?;
        Ok(DynamoFeatureStore {
            client,
            table: table.to_string(),
            runtime: Some(runtime),
        })
    }

    /// A handle for calls that outlive the caller's borrow (a refresh task).
    pub fn handle(&self) -> DynamoFeatures {
        DynamoFeatures {
            client: self.client.clone(),
            table: self.table.clone(),
        }
    }

    /// Run `fut` on the store's runtime; `None` if the store is shutting down.
    pub fn spawn<F>(&self, fut: F) -> Option<tokio::task::JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.as_ref().map(|rt| rt.spawn(fut))
    }

    /// Run `fut` on the store's runtime and wait for it from async code.
    pub async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, String> {
        match self.spawn(fut) {
            Some(task) => task
                .await
                .map_err(|e| format!("feature settings task failed: {e}"))?,
            None => Err("the feature settings store is shutting down".into()),
        }
    }

    /// Run `fut` on the store's runtime and wait for it, blocking this thread at most `wait`.
    /// Safe from any thread, async or not: the work never needs the caller's thread.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
        wait: Duration,
    ) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.spawn(async move {
            let _ = tx.send(fut.await);
        })?;
        rx.recv_timeout(wait).ok()
    }
}

/// The feature settings of `backend = "aws"`: overrides in `aws.throttle_table`, on a DynamoDB
/// client of their own (made by [`super::Clients`], so endpoint overrides apply), refreshed
/// every `features_refresh_secs`. Never fails for an unreachable table (the configuration's
/// values serve until it answers); fails only without an `[aws]` section or a runtime.
pub async fn settings(
    config: &Config,
    credentials: Option<&super::StaticCredentials>,
) -> anyhow::Result<FeatureSettings> {
    let aws = config
        .aws
        .as_ref()
        .context("backend = \"aws\" needs an [aws] section")?;
    let sdk = super::sdk_config(aws, credentials).await;
    let clients = super::Clients::new(&sdk, aws);
    let store = DynamoFeatureStore::new(clients.dynamodb, &aws.throttle_table)
        .map_err(|e| anyhow::anyhow!("feature settings: {e}"))?;
    Ok(FeatureSettings::dynamo(store, config).await)
}

/// The calls themselves, cheap to clone into a task.
#[derive(Clone, Debug)]
pub struct DynamoFeatures {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn key(pk: String) -> Item {
    HashMap::from([("pk".to_string(), AttributeValue::S(pk))])
}

/// The feature an item overrides and its stored override, or why it cannot be used.
pub fn parse_item(item: &Item) -> Result<(String, StoredOverride), String> {
    let Some(AttributeValue::S(pk)) = item.get("pk") else {
        return Err("item without a string pk".into());
    };
    let Some(feature) = pk.strip_prefix("feature#") else {
        return Err("not a feature item".into());
    };
    let version = match item.get("version") {
        Some(AttributeValue::N(n)) => n
            .parse::<u64>()
            .map_err(|_| format!("feature {feature:?}: version is not a whole number"))?,
        _ => return Err(format!("feature {feature:?}: no version")),
    };
    let settings = match item.get("settings") {
        Some(AttributeValue::S(s)) if s.len() <= MAX_SETTINGS_BYTES => {
            serde_json::from_str::<FeatureOverride>(s)
                .map_err(|e| format!("feature {feature:?}: unreadable settings: {e}"))?
        }
        Some(AttributeValue::S(_)) => {
            return Err(format!(
                "feature {feature:?}: settings over {MAX_SETTINGS_BYTES} bytes"
            ));
        }
        _ => return Err(format!("feature {feature:?}: no settings")),
    };
    Ok((feature.to_string(), StoredOverride { settings, version }))
}

impl DynamoFeatures {
    /// The stored overrides of `features` (consistent reads). Unreadable items are skipped
    /// with a warning, as the embedded store skips unreadable rows.
    pub async fn load(
        &self,
        features: &[String],
    ) -> Result<BTreeMap<String, StoredOverride>, String> {
        if features.len() > MAX_FEATURES {
            return Err(format!(
                "{} features configured; feature settings load at most {MAX_FEATURES}",
                features.len()
            ));
        }
        let keys: Vec<String> = features
            .iter()
            .filter(|f| f.len() <= MAX_FEATURE_NAME)
            .map(|f| feature_key(f))
            .collect();
        let mut out = BTreeMap::new();
        for chunk in keys.chunks(BATCH_KEYS) {
            let mut pending: Vec<Item> = chunk.iter().map(|k| key(k.clone())).collect();
            let mut rounds = 0;
            while !pending.is_empty() {
                rounds += 1;
                if rounds > UNPROCESSED_ROUNDS {
                    return Err("DynamoDB BatchGetItem kept keys unprocessed".into());
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| format!("DynamoDB BatchGetItem: {e}"))?;
                let page = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| describe("DynamoDB BatchGetItem", &e))?;
                for item in page
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    match parse_item(item) {
                        Ok((feature, stored)) => {
                            out.insert(feature, stored);
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring a feature settings item"),
                    }
                }
                if let Some(left) = page
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .filter(|k| !k.is_empty())
                {
                    pending = left;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(rounds))).await;
                }
            }
        }
        Ok(out)
    }

    /// Store `settings` for `feature` at `expected + 1` (`expected = None`: the item must not
    /// exist yet). Returns the new version.
    pub async fn put(
        &self,
        feature: &str,
        settings: &FeatureOverride,
        expected: Option<u64>,
        actor: &str,
        now_ms: i64,
    ) -> Result<u64, PutError> {
        if feature.len() > MAX_FEATURE_NAME {
            return Err(PutError::Failed("feature name too long".into()));
        }
        let json = serde_json::to_string(settings)
            .map_err(|e| PutError::Failed(format!("cannot encode the settings: {e}")))?;
        let version = expected.unwrap_or(0) + 1;
        let actor: String = actor.chars().take(MAX_ACTOR).collect();
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(feature_key(feature)))
            .item("settings", AttributeValue::S(json))
            .item("version", AttributeValue::N(version.to_string()))
            .item("updatedMs", AttributeValue::N(now_ms.to_string()))
            .item("updatedBy", AttributeValue::S(actor));
        req = match expected {
            None => req.condition_expression("attribute_not_exists(pk)"),
            Some(v) => req
                .condition_expression("version = :seen")
                .expression_attribute_values(":seen", AttributeValue::N(v.to_string())),
        };
        match req.send().await {
            Ok(_) => Ok(version),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => {
                Err(PutError::Conflict)
            }
            Err(e) => Err(PutError::Failed(describe("DynamoDB PutItem", &e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ThrottleLimits;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn items_parse_and_bad_ones_say_why() {
        let change = FeatureOverride {
            model: Some("dev".into()),
            guardrail_version: Some("2".into()),
            throttle: Some(ThrottleLimits {
                requests_per_minute: 1,
                burst: 2,
                tokens_per_minute: 3,
                tokens_per_day: 4,
            }),
        };
        let json = serde_json::to_string(&change).unwrap();
        let good = item(&[
            ("pk", AttributeValue::S("feature#search".into())),
            ("settings", AttributeValue::S(json.clone())),
            ("version", AttributeValue::N("7".into())),
        ]);
        let (feature, stored) = parse_item(&good).unwrap();
        assert_eq!(feature, "search");
        assert_eq!(
            stored,
            StoredOverride {
                settings: change,
                version: 7
            }
        );
        let cases = [
            (
                item(&[("pk", AttributeValue::S("bucket#search".into()))]),
                "not a feature",
            ),
            (
                item(&[
                    ("pk", AttributeValue::S("feature#a".into())),
                    ("settings", AttributeValue::S(json.clone())),
                ]),
                "no version",
            ),
            (
                item(&[
                    ("pk", AttributeValue::S("feature#a".into())),
                    ("settings", AttributeValue::S("{nope".into())),
                    ("version", AttributeValue::N("1".into())),
                ]),
                "unreadable",
            ),
            (
                item(&[
                    ("pk", AttributeValue::S("feature#a".into())),
                    (
                        "settings",
                        AttributeValue::S("x".repeat(MAX_SETTINGS_BYTES + 1)),
                    ),
                    ("version", AttributeValue::N("1".into())),
                ]),
                "over",
            ),
            (
                item(&[
                    ("pk", AttributeValue::S("feature#a".into())),
                    ("settings", AttributeValue::S(json)),
                    ("version", AttributeValue::N("-1".into())),
                ]),
                "whole number",
            ),
        ];
        for (bad, why) in cases {
            let err = parse_item(&bad).unwrap_err();
            assert!(err.contains(why), "{err} should say {why}");
        }
    }

    #[tokio::test]
    async fn run_blocking_works_from_a_current_thread_runtime() {
        // The caller's only thread is blocked while the work runs on the store's runtime.
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let store = DynamoFeatureStore::new(aws_sdk_dynamodb::Client::new(&sdk), "t").unwrap();
        let got = store.run_blocking(
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                41 + 1
            },
            Duration::from_secs(5),
        );
        assert_eq!(got, Some(42));
        let late = store.run_blocking(
            tokio::time::sleep(Duration::from_secs(5)),
            Duration::from_millis(20),
        );
        assert_eq!(late, None);
        assert_eq!(store.run(async { Ok(5) }).await, Ok(5));
        // Dropped inside a runtime without panicking.
        drop(store);
    }
}
