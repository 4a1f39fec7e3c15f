//! Runtime feature settings: what admins change in the console (a feature's default model alias,
//! its pinned guardrail version and its throttle limits) on top of the configuration file's
//! `[features.*]`, without a restart.
//!
//! Overrides live in SQLite (`<data_dir>/features.db`, one row per feature) and in memory behind
//! a lock the request path reads once per request ([`FeatureSettings::effective`]); a write
//! updates both, so the next request sees it. The configuration file stays the source of which
//! features exist and which app clients they have; a row only overrides values. Every write is
//! validated against the configuration and the guardrail registry first
//! ([`FeatureSettings::apply`]): unknown features, unknown model aliases, guardrail versions
//! that do not exist (or DRAFT) and zero or absurd limits are refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::config::{Config, FeatureConfig, ThrottleLimits};
use crate::guard::registry::{Registry, RegistryError, parse_version};

/// The largest limit accepted for any throttle value (keeps arithmetic far from overflow).
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

/// What the console may change about one feature. `None` keeps the configuration's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureOverride {
    /// The default (pinned) model alias: moved to the front of the feature's aliases.
    pub model: Option<String>,
    /// The pinned numbered guardrail version of the feature's guardrail.
    pub guardrail_version: Option<String>,
    pub throttle: Option<ThrottleLimits>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeatureSettingsError {
    /// The change was refused; the message says why and is safe to show.
    #[error("{0}")]
    Invalid(String),
    #[error("feature settings storage failed: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> FeatureSettingsError {
    FeatureSettingsError::Storage(e.to_string())
}

/// The store of overrides, shared by the gateway and the console in one process.
pub struct FeatureSettings {
    db: Mutex<Connection>,
    current: RwLock<Arc<BTreeMap<String, FeatureOverride>>>,
}

impl std::fmt::Debug for FeatureSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureSettings").finish_non_exhaustive()
    }
}

impl FeatureSettings {
    /// Open (creating if needed) `<data_dir>/features.db`.
    pub fn open(data_dir: &Path) -> Result<FeatureSettings, FeatureSettingsError> {
        FeatureSettings::with_connection(
            Connection::open(data_dir.join("features.db")).map_err(storage)?,
        )
    }

    /// A store that lives only in memory (tests).
    pub fn in_memory() -> Result<FeatureSettings, FeatureSettingsError> {
        FeatureSettings::with_connection(Connection::open_in_memory().map_err(storage)?)
    }

    fn with_connection(conn: Connection) -> Result<FeatureSettings, FeatureSettingsError> {
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS feature_settings (
                 feature    TEXT PRIMARY KEY NOT NULL,
                 settings   TEXT NOT NULL,
                 updated_ms INTEGER NOT NULL,
                 updated_by TEXT NOT NULL)",
        )
        .map_err(storage)?;
        let mut map = BTreeMap::new();
        {
            let mut st = conn
                .prepare("SELECT feature, settings FROM feature_settings")
                .map_err(storage)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(storage)?;
            for row in rows {
                let (feature, json) = row.map_err(storage)?;
                match serde_json::from_str::<FeatureOverride>(&json) {
                    Ok(o) => {
                        map.insert(feature, o);
                    }
                    Err(e) => {
                        tracing::warn!(feature, error = %e, "ignoring unreadable feature settings")
                    }
                }
            }
        }
        Ok(FeatureSettings {
            db: Mutex::new(conn),
            current: RwLock::new(Arc::new(map)),
        })
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, FeatureOverride>> {
        match self.current.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The override stored for `feature`, if any.
    pub fn get(&self, feature: &str) -> Option<FeatureOverride> {
        self.snapshot().get(feature).cloned()
    }

    /// `base` (the configuration's feature) with this feature's override applied: what the
    /// request path uses.
    pub fn effective(&self, feature: &str, base: &FeatureConfig) -> FeatureConfig {
        let mut out = base.clone();
        if let Some(o) = self.snapshot().get(feature) {
            if let Some(model) = &o.model {
                out.models.retain(|m| m != model);
                out.models.insert(0, model.clone());
            }
            if let Some(v) = &o.guardrail_version {
                out.guardrail_version = v.clone();
            }
            if let Some(t) = o.throttle {
                out.throttle = t;
            }
        }
        out
    }

    /// Validate `change` for `feature` against the configuration and the registry, store it
    /// and make it live. `actor` is recorded with the row.
    pub fn apply(
        &self,
        config: &Config,
        registry: &Registry,
        feature: &str,
        change: FeatureOverride,
        actor: &str,
        now_ms: i64,
    ) -> Result<FeatureConfig, FeatureSettingsError> {
        let invalid = |m: String| Err(FeatureSettingsError::Invalid(m));
        let Some(base) = config.features.get(feature) else {
            return invalid("there is no such feature".into());
        };
        if let Some(model) = &change.model
            && !config.models.contains_key(model)
        {
            return invalid("that model alias is not configured".into());
        }
        if let Some(v) = &change.guardrail_version {
            let number = match parse_version(v, false) {
                Ok(Some(n)) => n,
                _ => {
                    return invalid("pin a numbered guardrail version (1, 2, …), not DRAFT".into());
                }
            };
            match registry.get(&base.guardrail, Some(number)) {
                Ok(_) => {}
                Err(RegistryError::NotFound(_)) => {
                    return invalid(format!(
                        "guardrail {} has no version {number}",
                        base.guardrail
                    ));
                }
                Err(e) => return Err(storage(e)),
            }
        }
        if let Some(t) = change.throttle {
            let values = [
                u64::from(t.requests_per_minute),
                u64::from(t.burst),
                t.tokens_per_minute,
                t.tokens_per_day,
            ];
            if values.iter().any(|&v| v == 0 || v > MAX_LIMIT) {
                return invalid(format!(
                    "every throttle limit must be between 1 and {MAX_LIMIT}"
                ));
            }
        }
        let json = serde_json::to_string(&change).map_err(storage)?;
        {
            let db = self.db.lock().map_err(|_| storage("lock poisoned"))?;
            db.execute(
                "INSERT INTO feature_settings (feature, settings, updated_ms, updated_by)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(feature) DO UPDATE SET settings = ?2, updated_ms = ?3, updated_by = ?4",
                params![feature, json, now_ms, actor],
            )
            .map_err(storage)?;
            let mut current = self.current.write().map_err(|_| storage("lock poisoned"))?;
            let mut map = (**current).clone();
            map.insert(feature.to_string(), change);
            *current = Arc::new(map);
        }
        Ok(self.effective(feature, base))
    }

    /// Every (guardrail id, version) a feature pins right now, configuration and overrides.
    pub fn pins(&self, config: &Config) -> Vec<(String, String)> {
        config
            .features
            .iter()
            .map(|(name, f)| {
                let f = self.effective(name, f);
                (f.guardrail, f.guardrail_version)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {

    use std::time::Instant;

    use super::*;
    use crate::auth::Caller;
    use crate::chat::{RequestMeta, chat};
    use crate::error::ApiError;
    use crate::state::AppState;

    fn meta(n: u32) -> RequestMeta {
        RequestMeta {
            request_id: format!("req-{n}"),
            started: Instant::now(),
            timestamp_ms: crate::now_ms(),
            source_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        }
    }

    async fn state(dir: &Path) -> AppState {
        let mut config = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        let f = config.features.get_mut("default").unwrap();
        f.throttle = ThrottleLimits {
            requests_per_minute: 1,
            burst: 1,
            tokens_per_minute: 1_000_000,
            tokens_per_day: 1_000_000,
        };
        AppState::build(config).await.unwrap()
    }

    fn caller(state: &AppState) -> Caller {
        Caller {
            sub: "alice@example.com".into(),
            client_id: state.config.features["default"].clients[0].clone(),
        }
    }

    const BODY: &[u8] = br#"{"messages":[{"role":"user","content":"hello"}]}"#;

    #[tokio::test]
    async fn a_raised_limit_takes_effect_on_the_next_request_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let who = caller(&state);
        chat(&state, &who, meta(1), BODY).await.unwrap();
        match chat(&state, &who, meta(2), BODY).await {
            Err(ApiError::RateLimited { limit, .. }) => assert_eq!(limit, "requests_per_minute"),
            Err(e) => panic!("expected 429, got {e}"),
            Ok(_) => panic!("expected 429, got an answer"),
        }
        let raised = ThrottleLimits {
            requests_per_minute: 600,
            burst: 50,
            tokens_per_minute: 1_000_000,
            tokens_per_day: 1_000_000,
        };
        let change = FeatureOverride {
            throttle: Some(raised),
            ..FeatureOverride::default()
        };
        let effective = state
            .features
            .apply(
                &state.config,
                &state.registry,
                "default",
                change.clone(),
                "admin",
                1,
            )
            .unwrap();
        assert_eq!(effective.throttle, raised);
        // Same process, no restart: the bucket now refills at 10/s up to 50.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        chat(&state, &who, meta(3), BODY).await.unwrap();
        drop(state);
        let reopened = FeatureSettings::open(dir.path()).unwrap();
        assert_eq!(reopened.get("default"), Some(change));
    }

    #[tokio::test]
    async fn changes_naming_missing_versions_models_or_features_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let apply = |change: FeatureOverride, feature: &str| {
            state
                .features
                .apply(&state.config, &state.registry, feature, change, "admin", 1)
        };
        let pin = |v: &str| FeatureOverride {
            guardrail_version: Some(v.into()),
            ..FeatureOverride::default()
        };
        for bad in ["99", "DRAFT", "0", "x"] {
            assert!(matches!(
                apply(pin(bad), "default"),
                Err(FeatureSettingsError::Invalid(_))
            ));
        }
        assert!(apply(pin("1"), "default").is_ok());
        assert!(apply(pin("1"), "nope").is_err());
        let model = FeatureOverride {
            model: Some("gpt-unknown".into()),
            ..FeatureOverride::default()
        };
        assert!(apply(model, "default").is_err());
        let zero = FeatureOverride {
            throttle: Some(ThrottleLimits {
                requests_per_minute: 0,
                burst: 1,
                tokens_per_minute: 1,
                tokens_per_day: 1,
            }),
            ..FeatureOverride::default()
        };
        assert!(apply(zero, "default").is_err());
        assert_eq!(state.features.get("default"), Some(pin("1")));
    }

    #[tokio::test]
    async fn a_pinned_version_changes_what_the_gateway_applies() {
        use crate::guard::policy::{PiiAction, PiiEntityConfig, SensitiveInformationPolicy};
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let id = state.config.features["default"].guardrail.clone();
        let mut draft = state.registry.get(&id, None).unwrap().policy;
        draft.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
            pii_entities_config: vec![PiiEntityConfig {
                entity_type: "EMAIL".into(),
                action: PiiAction::Block,
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            }],
            regexes_config: vec![],
        });
        state.registry.update(&id, &draft).unwrap();
        let v = state.registry.create_version(&id, None, None).unwrap();
        let change = FeatureOverride {
            guardrail_version: Some(v),
            ..FeatureOverride::default()
        };
        state
            .features
            .apply(
                &state.config,
                &state.registry,
                "default",
                change,
                "admin",
                1,
            )
            .unwrap();
        let body = br#"{"messages":[{"role":"user","content":"mail jane.doe@example.com"}]}"#;
        match chat(&state, &caller(&state), meta(1), body).await.unwrap() {
            crate::chat::ChatReply::Complete {
                guardrail_action, ..
            } => assert_eq!(guardrail_action, "INTERVENED"),
            crate::chat::ChatReply::Stream { .. } => panic!("not a stream"),
        }
    }
}
