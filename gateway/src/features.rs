//! Runtime feature settings: what admins change in the console (a feature's default model alias,
//! its pinned guardrail version and its throttle limits) on top of the configuration file's
//! `[features.*]`, without a restart.
//!
//! The configuration file stays the source of which features exist and which app clients they
//! have; an override only replaces values. Every write is validated against the configuration
//! and the guardrail registry first ([`FeatureSettings::apply`]): unknown features, unknown
//! model aliases, guardrail versions that do not exist (or DRAFT) and zero or absurd limits are
//! refused. The request path reads the overrides once per request
//! ([`FeatureSettings::effective`]) from an in-memory copy behind a lock.
//!
//! Where the overrides persist ([`Store`]):
//! - embedded default: SQLite (`<data_dir>/features.db`, one row per feature). The console and
//!   the gateway share one process, so a write updates the row and the in-memory copy, and the
//!   next request sees it.
//! - `backend = "aws"`: DynamoDB, items `feature#<name>` in the throttle table
//!   ([`crate::aws::features`]). Each instance (each Lambda) keeps an in-memory copy no older
//!   than `features_refresh_secs`: a read that finds the copy due starts one BatchGetItem and
//!   waits for it at most [`REFRESH_WAIT`] (so even a Lambda thawed after minutes answers with
//!   current settings); requests arriving while that refresh is in flight wait for the same one.
//!   A write from this process is in its copy at once. Writes are conditioned on the version
//!   this process last saw, so a console whose copy is stale gets "changed by someone else"
//!   instead of overwriting. If a refresh fails, requests keep the last known settings, the
//!   failure is logged once per interval (one attempt per interval), and until a refresh
//!   succeeds again no request waits for the retries; at start-up without a reachable store,
//!   the configuration's values serve until a refresh succeeds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::aws::features::{DynamoFeatureStore, PutError, StoredOverride};
use crate::config::{Config, FeatureConfig, ThrottleLimits};
use crate::guard::registry::{RegistryError, parse_version};
use crate::guard::registry_api::VersionLookup;

/// The largest limit accepted for any throttle value (keeps arithmetic far from overflow).
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

/// The longest a read waits for a due refresh before going on with the last known settings.
pub const REFRESH_WAIT: Duration = Duration::from_secs(1);

/// The longest a console write waits for DynamoDB.
const WRITE_WAIT: Duration = Duration::from_secs(15);

/// The longest start-up waits for the first load before serving the configuration's values.
const START_WAIT: Duration = Duration::from_secs(5);

/// What a write refused because another writer got there first says (safe to show).
pub const CONFLICT_MESSAGE: &str = "this feature was changed by someone else since this page \
     was loaded; reload the page to see their change, then save again";

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
    /// The change was refused; the message says why and is safe to show. A write that lost
    /// to a concurrent one says [`CONFLICT_MESSAGE`].
    #[error("{0}")]
    Invalid(String),
    #[error("feature settings storage failed: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> FeatureSettingsError {
    FeatureSettingsError::Storage(e.to_string())
}

/// One feature's override and the store version it was read or written at (0 on SQLite).
type Overrides = BTreeMap<String, StoredOverride>;

/// Where the overrides persist: a closed set, chosen by `backend`.
enum Store {
    Sqlite(Mutex<Connection>),
    Dynamo(Dynamo),
}

struct Dynamo {
    store: DynamoFeatureStore,
    /// The configured features: the keys one refresh reads.
    features: Vec<String>,
    every: Duration,
}

/// The in-memory copy and the refresh bookkeeping, shared with refresh tasks.
struct Shared {
    current: RwLock<Arc<Overrides>>,
    refresh: Mutex<RefreshState>,
    refreshed: Condvar,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct RefreshState {
    /// When the last refresh started (`None`: due now).
    started: Option<Instant>,
    in_flight: bool,
    /// Writes this process made so far (a refresh started before one must not undo it).
    writes: u64,
    /// The last refresh failed (logged once per attempt, so once per interval).
    failing: bool,
}

/// What a read does about refreshing: start one now, and wait until when for it.
#[derive(Debug, PartialEq, Eq)]
struct RefreshPlan {
    start: bool,
    wait_until: Option<Instant>,
}

/// Decide, from the bookkeeping alone, whether a read starts a refresh and how long it waits.
fn plan_refresh(
    state: &RefreshState,
    now: Instant,
    every: Duration,
    wait: Duration,
) -> RefreshPlan {
    let due = state
        .started
        .is_none_or(|t| now.saturating_duration_since(t) >= every);
    if state.failing {
        // The store is down: keep trying every interval, but never make a request wait.
        return RefreshPlan {
            start: due && !state.in_flight,
            wait_until: None,
        };
    }
    if state.in_flight {
        let until = state.started.map(|t| t + wait).filter(|&u| u > now);
        return RefreshPlan {
            start: false,
            wait_until: until,
        };
    }
    RefreshPlan {
        start: due,
        wait_until: due.then_some(now + wait),
    }
}

/// The copy after a refresh read `loaded`. When this process wrote since the refresh started,
/// the newer version of each feature wins (the read may predate the write); otherwise the
/// store's answer replaces the copy whole.
fn merge(current: &Overrides, loaded: Overrides, wrote_since: bool) -> Overrides {
    if !wrote_since {
        return loaded;
    }
    let mut out = loaded;
    for (feature, mine) in current {
        let keep_mine = out
            .get(feature)
            .is_none_or(|theirs| theirs.version < mine.version);
        if keep_mine {
            out.insert(feature.clone(), mine.clone());
        }
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The store of overrides, shared by the gateway and the console.
pub struct FeatureSettings {
    store: Store,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FeatureSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureSettings").finish_non_exhaustive()
    }
}

impl FeatureSettings {
    fn new(store: Store, overrides: Overrides) -> FeatureSettings {
        FeatureSettings {
            store,
            shared: Arc::new(Shared {
                current: RwLock::new(Arc::new(overrides)),
                refresh: Mutex::new(RefreshState::default()),
                refreshed: Condvar::new(),
            }),
        }
    }

    /// Open (creating if needed) `<data_dir>/features.db`.
    pub fn open(data_dir: &Path) -> Result<FeatureSettings, FeatureSettingsError> {
        let path = data_dir.join("features.db");
        crate::secret_file::private_sqlite(&path).map_err(storage)?;
        FeatureSettings::with_connection(Connection::open(path).map_err(storage)?)
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
                    Ok(settings) => {
                        map.insert(
                            feature,
                            StoredOverride {
                                settings,
                                version: 0,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(feature, error = %e, "ignoring unreadable feature settings")
                    }
                }
            }
        }
        Ok(FeatureSettings::new(Store::Sqlite(Mutex::new(conn)), map))
    }

    /// Overrides on DynamoDB (`backend = "aws"`) for `config`'s features, refreshed at most
    /// every `config.features_refresh_secs`. Waits a few seconds for the first load; if the
    /// store does not answer, starts with the configuration's values (logged) and keeps
    /// retrying every interval.
    pub async fn dynamo(store: DynamoFeatureStore, config: &Config) -> FeatureSettings {
        let features: Vec<String> = config.features.keys().cloned().collect();
        let every = Duration::from_secs(config.features_refresh_secs.max(1));
        let calls = store.handle();
        let wanted = features.clone();
        let first = tokio::time::timeout(
            START_WAIT,
            store.run(async move { calls.load(&wanted).await }),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        let this = FeatureSettings::new(
            Store::Dynamo(Dynamo {
                store,
                features,
                every,
            }),
            BTreeMap::new(),
        );
        {
            let mut st = lock(&this.shared.refresh);
            st.started = Some(Instant::now());
            match first {
                Ok(loaded) => {
                    this.replace(loaded);
                }
                Err(e) => {
                    st.failing = true;
                    tracing::warn!(
                        error = %e,
                        retry_secs = every.as_secs(),
                        "feature settings store unreachable at start-up; serving the \
                         configuration's values until it answers"
                    );
                }
            }
        }
        this
    }

    fn replace(&self, overrides: Overrides) {
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Arc::new(overrides);
    }

    fn current(&self) -> Arc<Overrides> {
        match self.shared.current.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The copy, refreshed first when it is due (DynamoDB only; bounded wait).
    fn snapshot(&self) -> Arc<Overrides> {
        if let Store::Dynamo(d) = &self.store {
            self.refresh_if_due(d);
        }
        self.current()
    }

    fn refresh_if_due(&self, d: &Dynamo) {
        let mut st = lock(&self.shared.refresh);
        let plan = plan_refresh(&st, Instant::now(), d.every, REFRESH_WAIT);
        if plan.start {
            st.in_flight = true;
            st.started = Some(Instant::now());
            let (shared, calls, features, writes) = (
                self.shared.clone(),
                d.store.handle(),
                d.features.clone(),
                st.writes,
            );
            let task = d.store.spawn(async move {
                let result = calls.load(&features).await;
                finish_refresh(&shared, result, writes);
            });
            if task.is_none() {
                st.in_flight = false;
                return;
            }
        }
        if let Some(until) = plan.wait_until {
            while st.in_flight {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                st = match self.shared.refreshed.wait_timeout(st, until - now) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
        }
    }

    /// The override stored for `feature`, if any.
    pub fn get(&self, feature: &str) -> Option<FeatureOverride> {
        self.snapshot().get(feature).map(|s| s.settings.clone())
    }

    /// The store version of `feature`'s override as this process last saw it (`None`: no
    /// override; always 0 on the embedded store).
    pub fn version(&self, feature: &str) -> Option<u64> {
        self.snapshot().get(feature).map(|s| s.version)
    }

    /// `base` (the configuration's feature) with this feature's override applied: what the
    /// request path uses.
    pub fn effective(&self, feature: &str, base: &FeatureConfig) -> FeatureConfig {
        let mut out = base.clone();
        if let Some(stored) = self.snapshot().get(feature) {
            let o = &stored.settings;
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
        registry: &dyn VersionLookup,
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
        match &self.store {
            Store::Sqlite(db) => self.store_sqlite(db, feature, change, actor, now_ms)?,
            Store::Dynamo(d) => self.store_dynamo(d, feature, change, actor, now_ms)?,
        }
        Ok(self.effective(feature, base))
    }

    fn store_sqlite(
        &self,
        db: &Mutex<Connection>,
        feature: &str,
        change: FeatureOverride,
        actor: &str,
        now_ms: i64,
    ) -> Result<(), FeatureSettingsError> {
        let json = serde_json::to_string(&change).map_err(storage)?;
        let db = db.lock().map_err(|_| storage("lock poisoned"))?;
        db.execute(
            "INSERT INTO feature_settings (feature, settings, updated_ms, updated_by)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(feature) DO UPDATE SET settings = ?2, updated_ms = ?3, updated_by = ?4",
            params![feature, json, now_ms, actor],
        )
        .map_err(storage)?;
        self.remember(feature, change, 0);
        Ok(())
    }

    fn store_dynamo(
        &self,
        d: &Dynamo,
        feature: &str,
        change: FeatureOverride,
        actor: &str,
        now_ms: i64,
    ) -> Result<(), FeatureSettingsError> {
        // The version this process last saw: a write someone else made since then (in this
        // process's copy or not yet) makes the conditional put fail instead of being lost.
        let expected = self.current().get(feature).map(|s| s.version);
        let calls = d.store.handle();
        let (name, settings, who) = (feature.to_string(), change.clone(), actor.to_string());
        let outcome = d
            .store
            .run_blocking(
                async move { calls.put(&name, &settings, expected, &who, now_ms).await },
                WRITE_WAIT,
            )
            .unwrap_or_else(|| Err(PutError::Failed("DynamoDB PutItem timed out".into())));
        match outcome {
            Ok(version) => {
                self.remember(feature, change, version);
                Ok(())
            }
            Err(PutError::Conflict) => {
                // Load the other writer's change so a reload shows it.
                lock(&self.shared.refresh).started = None;
                self.refresh_if_due(d);
                Err(FeatureSettingsError::Invalid(CONFLICT_MESSAGE.into()))
            }
            Err(PutError::Failed(e)) => Err(storage(e)),
        }
    }

    /// Put a write of this process into the copy at once.
    fn remember(&self, feature: &str, settings: FeatureOverride, version: u64) {
        let mut st = lock(&self.shared.refresh);
        st.writes += 1;
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut map = (**current).clone();
        map.insert(feature.to_string(), StoredOverride { settings, version });
        *current = Arc::new(map);
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

/// A refresh task's end: install what it read (or log why not) and wake the waiting readers.
fn finish_refresh(shared: &Shared, result: Result<Overrides, String>, writes_at_start: u64) {
    let mut st = lock(&shared.refresh);
    match result {
        Ok(loaded) => {
            let mut current = shared
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let merged = merge(&current, loaded, st.writes != writes_at_start);
            *current = Arc::new(merged);
            if st.failing {
                tracing::info!("feature settings store answers again");
            }
            st.failing = false;
        }
        Err(e) => {
            st.failing = true;
            tracing::warn!(
                error = %e,
                "feature settings refresh failed; serving the last known settings"
            );
        }
    }
    st.in_flight = false;
    shared.refreshed.notify_all();
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

    fn stored(model: &str, version: u64) -> StoredOverride {
        StoredOverride {
            settings: FeatureOverride {
                model: Some(model.into()),
                ..FeatureOverride::default()
            },
            version,
        }
    }

    #[test]
    fn a_read_refreshes_when_due_and_waits_a_bounded_time() {
        let (every, wait) = (Duration::from_secs(5), Duration::from_secs(1));
        let now = Instant::now();
        // Never loaded: start now, wait for it.
        let fresh = RefreshState::default();
        assert_eq!(
            plan_refresh(&fresh, now, every, wait),
            RefreshPlan {
                start: true,
                wait_until: Some(now + wait)
            }
        );
        // Loaded 2 s ago: nothing to do.
        let recent = RefreshState {
            started: Some(now - Duration::from_secs(2)),
            ..RefreshState::default()
        };
        assert_eq!(
            plan_refresh(&recent, now, every, wait),
            RefreshPlan {
                start: false,
                wait_until: None
            }
        );
        // Due (a thawed Lambda after minutes): start one.
        let stale = RefreshState {
            started: Some(now - Duration::from_secs(300)),
            ..RefreshState::default()
        };
        assert!(plan_refresh(&stale, now, every, wait).start);
        // One in flight since 200 ms: join it, until its start + wait; never start a second.
        let flying = RefreshState {
            started: Some(now - Duration::from_millis(200)),
            in_flight: true,
            ..RefreshState::default()
        };
        assert_eq!(
            plan_refresh(&flying, now, every, wait),
            RefreshPlan {
                start: false,
                wait_until: Some(now + Duration::from_millis(800))
            }
        );
        // One hanging for longer than the wait (store unreachable): go on with what we have.
        let hanging = RefreshState {
            started: Some(now - Duration::from_secs(3)),
            in_flight: true,
            ..RefreshState::default()
        };
        assert_eq!(
            plan_refresh(&hanging, now, every, wait),
            RefreshPlan {
                start: false,
                wait_until: None
            }
        );
        // After a failed refresh: retry every interval, but no read waits for the retries.
        let failing = RefreshState {
            started: Some(now - Duration::from_secs(6)),
            failing: true,
            ..RefreshState::default()
        };
        assert_eq!(
            plan_refresh(&failing, now, every, wait),
            RefreshPlan {
                start: true,
                wait_until: None
            }
        );
        let retrying = RefreshState {
            in_flight: true,
            started: Some(now - Duration::from_millis(10)),
            ..failing
        };
        assert_eq!(
            plan_refresh(&retrying, now, every, wait),
            RefreshPlan {
                start: false,
                wait_until: None
            }
        );
    }

    #[test]
    fn the_refresh_interval_is_bounded_in_the_configuration() {
        assert_eq!(Config::default().features_refresh_secs, 5);
        for (secs, ok) in [(0, false), (1, true), (3600, true), (3601, false)] {
            let c = Config {
                features_refresh_secs: secs,
                ..Config::default()
            };
            assert_eq!(c.validate().is_ok(), ok, "{secs}");
        }
    }

    #[test]
    fn a_refresh_replaces_the_copy_unless_it_may_predate_a_local_write() {
        let mine = BTreeMap::from([
            ("a".to_string(), stored("new", 3)),
            ("b".to_string(), stored("b", 1)),
        ]);
        let loaded = BTreeMap::from([
            ("a".to_string(), stored("old", 2)),
            ("c".to_string(), stored("c", 5)),
        ]);
        // No local write since the read started: the store is the truth (b was removed).
        assert_eq!(merge(&mine, loaded.clone(), false), loaded);
        // A local write raced the read: the newer version of each feature wins.
        let merged = merge(&mine, loaded, true);
        assert_eq!(merged["a"], stored("new", 3));
        assert_eq!(merged["b"], stored("b", 1));
        assert_eq!(merged["c"], stored("c", 5));
        let newer = BTreeMap::from([("a".to_string(), stored("theirs", 4))]);
        assert_eq!(merge(&mine, newer, true)["a"], stored("theirs", 4));
    }

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
