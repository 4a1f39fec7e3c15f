//! The console's own audit trail: sign-ins (and refused ones), sign-outs, account changes,
//! guardrail edits and versions, feature bindings and throttle changes — who, what, when,
//! from where.
//!
//! Where it lives:
//! - embedded default: `console_events` in `console.db`, beside the users and sessions (an
//!   account change and its event are written by the same store);
//! - `backend = "aws"` ([`Accounts::with_event_log`]): CloudWatch Logs, the audit log group's
//!   stream `<log_stream>-console`, one JSON message per event marked
//!   `"eventType": "consoleEvent"` ([`gateway::aws::console_events`], which also defines the
//!   event and filter types both stores share), so the trail outlives the console's container
//!   and sits with the gateway's audit events. Reads there check every event with
//!   [`EventFilter::matches`], the same rules as the SQL query below (a test holds them equal).
//!
//! It is kept apart from the gateway's audit store, whose schema is the gateway's audit event
//! and which is tuned for a million request events. Vault openings stay in the gateway's store
//! (`AccessEvent`); the audit page shows both.
//!
//! Events never carry a password, a token, or prompt text; every field is length-capped.
//!
//! Refused sign-ins ([`Accounts::record_refused_sign_in`]) are counted, not listed: one row per
//! kind, account and address in each [`REFUSAL_WINDOW_MS`] (its `detail` says how many, its time
//! is the latest), and a name that is no account is recorded as [`UNKNOWN_ACCOUNT`], so a flood
//! of made-up names adds a handful of rows and never pushes real events off the audit page. On
//! CloudWatch Logs, where events cannot be updated, the 1st, 2nd, 4th, 8th, … refusal of a
//! window is written, each with the count so far.

use std::collections::HashMap;
use std::sync::Arc;

use gateway::aws::console_events::{ConsoleEventLog, cap};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{Accounts, AccountsError, blocking, valid_name};

pub use gateway::aws::console_events::{ConsoleEvent, EventFilter, FIELD_MAX, QUERY_MAX};

pub(crate) fn migrate(conn: &Connection) -> Result<(), AccountsError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS console_events (
             id     INTEGER PRIMARY KEY AUTOINCREMENT,
             at     INTEGER NOT NULL,
             actor  TEXT NOT NULL,
             kind   TEXT NOT NULL,
             target TEXT NOT NULL,
             detail TEXT NOT NULL,
             client TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS console_events_by_time ON console_events(at);
         CREATE INDEX IF NOT EXISTS console_events_by_actor ON console_events(actor, at);
         CREATE INDEX IF NOT EXISTS console_events_by_client ON console_events(client, actor, at);",
    )?;
    // How many events a row stands for (refused sign-ins are counted in place); added to
    // databases created before it existed.
    let has_repeats = conn
        .query_row(
            "SELECT 1 FROM pragma_table_info('console_events') WHERE name = 'repeats'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !has_repeats {
        conn.execute_batch(
            "ALTER TABLE console_events ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1",
        )?;
    }
    Ok(())
}

/// The actor recorded for a refused sign-in whose name is no account (never the name itself:
/// it may be a mistyped password, and made-up names are unbounded).
pub const UNKNOWN_ACCOUNT: &str = "unknown account";
/// Refused sign-ins of one kind, account and address are counted in one row per window.
pub const REFUSAL_WINDOW_MS: i64 = 60_000;
/// Refusal counters kept per window for the CloudWatch store; past it each refusal of a new
/// key is written as a first one.
const REFUSAL_KEYS_MAX: usize = 10_000;

/// A refused sign-in's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Wrong password or unknown name (`login.failed`).
    Failed,
    /// Refused before the password was checked (`login.throttled`).
    Throttled,
}

impl Refused {
    pub fn kind(self) -> &'static str {
        match self {
            Refused::Failed => "login.failed",
            Refused::Throttled => "login.throttled",
        }
    }
}

fn refusal_detail(count: i64) -> String {
    if count == 1 {
        "1 refused sign-in in this minute".to_string()
    } else {
        format!("{count} refused sign-ins in this minute")
    }
}

/// Refusals counted in the current window, for the store that cannot update in place.
#[derive(Debug, Default)]
pub(crate) struct RefusalCounts {
    window: i64,
    counts: HashMap<(&'static str, String, String), i64>,
}

impl RefusalCounts {
    /// Count one refusal; `Some(count)` when it is to be written (count 1, 2, 4, 8, …).
    fn count(&mut self, kind: &'static str, actor: &str, client: &str, window: i64) -> Option<i64> {
        if window > self.window {
            self.window = window;
            self.counts.clear();
        }
        let key = (kind, actor.to_string(), client.to_string());
        if self.counts.len() >= REFUSAL_KEYS_MAX && !self.counts.contains_key(&key) {
            return Some(1);
        }
        let n = self.counts.entry(key).or_insert(0);
        *n += 1;
        (n.count_ones() == 1).then_some(*n)
    }
}

fn log_error(e: String) -> AccountsError {
    AccountsError::EventLog(e)
}

impl Accounts {
    /// Keep the audit trail in `log` (CloudWatch Logs) instead of `console.db`.
    pub fn with_event_log(mut self, log: Arc<ConsoleEventLog>) -> Accounts {
        self.event_log = Some(log);
        self
    }

    /// Append one event.
    pub async fn record_event(&self, event: ConsoleEvent) -> Result<(), AccountsError> {
        if let Some(log) = &self.event_log {
            return log.record(&event).await.map_err(log_error);
        }
        let this = self.clone();
        blocking(move || {
            this.with_db(|db| {
                db.execute(
                    "INSERT INTO console_events (at, actor, kind, target, detail, client)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        event.at_ms,
                        cap(&event.actor),
                        cap(&event.kind),
                        cap(&event.target),
                        cap(&event.detail),
                        cap(&event.client)
                    ],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Record a refused sign-in of `name` from `client`: counted into this window's row for
    /// the account (or [`UNKNOWN_ACCOUNT`]) and address, created if there is none.
    pub async fn record_refused_sign_in(
        &self,
        refused: Refused,
        name: &str,
        client: &str,
        now_ms: i64,
    ) -> Result<(), AccountsError> {
        let kind = refused.kind();
        let window = now_ms - now_ms.rem_euclid(REFUSAL_WINDOW_MS);
        let this = self.clone();
        let (name, client) = (name.to_string(), cap(client));
        let to_log = blocking(move || {
            this.with_db(|db| {
                let known = valid_name(&name)
                    && db
                        .query_row("SELECT 1 FROM users WHERE name = ?1", params![name], |_| {
                            Ok(())
                        })
                        .optional()?
                        .is_some();
                let actor = if known {
                    name
                } else {
                    UNKNOWN_ACCOUNT.to_string()
                };
                if this.event_log.is_some() {
                    let mut counts = this.refusals.lock().map_err(|_| AccountsError::Poisoned)?;
                    return Ok(counts.count(kind, &actor, &client, window).map(|count| {
                        ConsoleEvent {
                            at_ms: now_ms,
                            actor,
                            kind: kind.to_string(),
                            target: String::new(),
                            detail: refusal_detail(count),
                            client,
                        }
                    }));
                }
                let updated = db.execute(
                    "UPDATE console_events
                        SET repeats = repeats + 1, at = max(at, ?1),
                            detail = (repeats + 1) || ' refused sign-ins in this minute'
                      WHERE id = (SELECT id FROM console_events
                                   WHERE client = ?2 AND actor = ?3 AND kind = ?4
                                     AND at >= ?5 AND at < ?6
                                   ORDER BY id DESC LIMIT 1)",
                    params![
                        now_ms,
                        client,
                        actor,
                        kind,
                        window,
                        window + REFUSAL_WINDOW_MS
                    ],
                )?;
                if updated == 0 {
                    db.execute(
                        "INSERT INTO console_events
                             (at, actor, kind, target, detail, client, repeats)
                         VALUES (?1, ?2, ?3, '', ?4, ?5, 1)",
                        params![now_ms, actor, kind, refusal_detail(1), client],
                    )?;
                }
                Ok(None)
            })
        })
        .await?;
        match (to_log, &self.event_log) {
            (Some(event), Some(log)) => log.record(&event).await.map_err(log_error),
            _ => Ok(()),
        }
    }

    /// Events matching `filter`, newest first, at most `filter.limit` (capped at
    /// [`QUERY_MAX`]).
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<ConsoleEvent>, AccountsError> {
        if let Some(log) = &self.event_log {
            return log.events(&filter).await.map_err(log_error);
        }
        let this = self.clone();
        blocking(move || {
            let mut sql = String::from(
                "SELECT at, actor, kind, target, detail, client FROM console_events WHERE 1 = 1",
            );
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(actor) = &filter.actor {
                sql.push_str(" AND actor = ?");
                args.push(cap(actor).into());
            }
            if let Some(kind) = &filter.kind {
                if kind.ends_with('.') {
                    sql.push_str(" AND substr(kind, 1, length(?)) = ?");
                    args.push(cap(kind).into());
                    args.push(cap(kind).into());
                } else {
                    sql.push_str(" AND kind = ?");
                    args.push(cap(kind).into());
                }
            }
            if let Some(since) = filter.since_ms {
                sql.push_str(" AND at >= ?");
                args.push(since.into());
            }
            if let Some(until) = filter.until_ms {
                sql.push_str(" AND at < ?");
                args.push(until.into());
            }
            sql.push_str(" ORDER BY at DESC, id DESC LIMIT ?");
            args.push((filter.limit.clamp(1, QUERY_MAX) as i64).into());
            this.with_db(|db| {
                let mut st = db.prepare(&sql)?;
                let rows = st.query_map(params_from_iter(args), |r| {
                    Ok(ConsoleEvent {
                        at_ms: r.get(0)?,
                        actor: r.get(1)?,
                        kind: r.get(2)?,
                        target: r.get(3)?,
                        detail: r.get(4)?,
                        client: r.get(5)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {

    use super::super::Role;
    use super::super::password::HashCost;
    use super::*;

    fn event(at_ms: i64, actor: &str, kind: &str) -> ConsoleEvent {
        ConsoleEvent {
            at_ms,
            actor: actor.into(),
            kind: kind.into(),
            target: "t".into(),
            detail: "x".repeat(1000),
            client: "127.0.0.1".into(),
        }
    }

    /// The CloudWatch store filters in code with `EventFilter::matches` and orders newest first
    /// with later-written first on ties; this holds that equal to the SQL query.
    #[tokio::test]
    async fn the_code_filter_agrees_with_the_sql_query() {
        let dir = tempfile::tempdir().unwrap();
        let cost = HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let a = Accounts::open_with_cost(&dir.path().join("console.db"), cost).unwrap();
        let actors = ["admin", "ana", "bo", &"x".repeat(FIELD_MAX + 5)];
        let kinds = [
            "login",
            "login.failed",
            "account.create",
            "account.role",
            "feature.model",
        ];
        let mut written = Vec::new();
        for i in 0..60i64 {
            let e = event(i / 3, actors[i as usize % 4], kinds[i as usize % 5]);
            a.record_event(e.clone()).await.unwrap();
            // As stored: every field capped.
            written.push(ConsoleEvent {
                actor: cap(&e.actor),
                detail: cap(&e.detail),
                ..e
            });
        }
        let mut filters = Vec::new();
        for actor in [None, Some("ana"), Some(actors[3]), Some("nobody")] {
            for kind in [
                None,
                Some("login"),
                Some("account."),
                Some("login."),
                Some("acc"),
            ] {
                for (since, until) in [(None, None), (Some(5), None), (Some(3), Some(12))] {
                    for limit in [1, 7, 100] {
                        filters.push(EventFilter {
                            actor: actor.map(str::to_string),
                            kind: kind.map(str::to_string),
                            since_ms: since,
                            until_ms: until,
                            limit,
                        });
                    }
                }
            }
        }
        for f in filters {
            let sql = a.events(f.clone()).await.unwrap();
            let mut code: Vec<ConsoleEvent> = written
                .iter()
                .rev()
                .filter(|e| f.matches(e))
                .cloned()
                .collect();
            code.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
            code.truncate(f.limit.clamp(1, QUERY_MAX));
            assert_eq!(sql, code, "{f:?}");
        }
    }

    fn store() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let cost = HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let a = Accounts::open_with_cost(&dir.path().join("console.db"), cost).unwrap();
        (dir, a)
    }

    fn page(limit: usize) -> EventFilter {
        EventFilter {
            limit,
            ..EventFilter::default()
        }
    }

    /// Issue 13, finding 16: 600 made-up names in 17 s wrote 600 rows and pushed real events off
    /// the audit page. Now they are one counted row, under "unknown account".
    #[tokio::test]
    async fn a_flood_of_made_up_names_adds_one_counted_row() {
        let (_dir, a) = store();
        let base = 10 * REFUSAL_WINDOW_MS;
        let real = ConsoleEvent {
            at_ms: base - 1,
            actor: "admin".into(),
            kind: "account.create".into(),
            target: "ana".into(),
            detail: String::new(),
            client: "10.0.0.1".into(),
        };
        a.record_event(real.clone()).await.unwrap();
        for i in 0..600u64 {
            let name = format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let at = base + i as i64 * 28;
            a.record_refused_sign_in(Refused::Failed, &name, "203.0.113.7", at)
                .await
                .unwrap();
        }
        let first_page = a.events(page(20)).await.unwrap();
        assert_eq!(first_page.len(), 2, "{first_page:?}");
        let flood = &first_page[0];
        assert_eq!(flood.actor, UNKNOWN_ACCOUNT);
        assert_eq!(flood.kind, "login.failed");
        assert_eq!(flood.client, "203.0.113.7");
        assert_eq!(flood.detail, "600 refused sign-ins in this minute");
        assert_eq!(flood.at_ms, base + 599 * 28);
        assert_eq!(first_page[1], real);
    }

    #[tokio::test]
    async fn refusals_are_counted_per_account_address_kind_and_minute() {
        let (_dir, a) = store();
        a.create_user("ana", "a long enough password", Role::Viewer, 1)
            .await
            .unwrap();
        let w = REFUSAL_WINDOW_MS;
        for (at, refused, name, client) in [
            (w, Refused::Failed, "ana", "a"),
            (w + 1, Refused::Failed, "ana", "a"),
            (w + 2, Refused::Failed, "ana", "b"),
            (w + 3, Refused::Throttled, "ana", "a"),
            (w + 4, Refused::Failed, "nobody", "a"),
            (w + 5, Refused::Failed, "bad name\n", "a"),
            (2 * w, Refused::Failed, "ana", "a"),
        ] {
            a.record_refused_sign_in(refused, name, client, at)
                .await
                .unwrap();
        }
        let rows: Vec<_> = a
            .events(page(100))
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.at_ms, e.actor, e.kind, e.client, e.detail))
            .collect();
        let row = |at: i64, actor: &str, kind: &str, client: &str, n: i64| {
            let detail = if n == 1 {
                refusal_detail(1)
            } else {
                format!("{n} refused sign-ins in this minute")
            };
            (at, actor.into(), kind.into(), client.into(), detail)
        };
        assert_eq!(
            rows,
            [
                row(2 * w, "ana", "login.failed", "a", 1),
                row(w + 5, UNKNOWN_ACCOUNT, "login.failed", "a", 2),
                row(w + 3, "ana", "login.throttled", "a", 1),
                row(w + 2, "ana", "login.failed", "b", 1),
                row(w + 1, "ana", "login.failed", "a", 2),
            ]
        );
    }

    #[test]
    fn the_cloudwatch_store_writes_refusals_at_powers_of_two() {
        let mut counts = RefusalCounts::default();
        let written: Vec<_> = (0..20)
            .filter_map(|_| counts.count("login.failed", UNKNOWN_ACCOUNT, "a", 60_000))
            .collect();
        assert_eq!(written, [1, 2, 4, 8, 16]);
        assert_eq!(
            counts.count("login.failed", UNKNOWN_ACCOUNT, "b", 60_000),
            Some(1)
        );
        // A new window starts counting again.
        assert_eq!(
            counts.count("login.failed", UNKNOWN_ACCOUNT, "a", 120_000),
            Some(1)
        );
    }

    #[test]
    fn databases_without_the_repeats_column_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE console_events (
                     id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
                     actor TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,
                     detail TEXT NOT NULL, client TEXT NOT NULL);
                 INSERT INTO console_events (at, actor, kind, target, detail, client)
                 VALUES (1, 'admin', 'login', '', '', 'ip');",
            )
            .unwrap();
        let cost = HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        Accounts::open_with_cost(&path, cost).unwrap();
        let repeats: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT repeats FROM console_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(repeats, 1);
    }

    #[tokio::test]
    async fn events_filter_by_actor_kind_prefix_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let cost = HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let a = Accounts::open_with_cost(&dir.path().join("console.db"), cost).unwrap();
        for (at, actor, kind) in [
            (10, "admin", "login"),
            (20, "admin", "account.create"),
            (30, "ana", "login"),
            (40, "admin", "account.role"),
        ] {
            a.record_event(event(at, actor, kind)).await.unwrap();
        }
        let all = a
            .events(EventFilter {
                limit: 100,
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
            [40, 30, 20, 10]
        );
        assert_eq!(all[0].detail.chars().count(), FIELD_MAX);
        let f = |actor: Option<&str>, kind: Option<&str>, since, until| EventFilter {
            actor: actor.map(str::to_string),
            kind: kind.map(str::to_string),
            since_ms: since,
            until_ms: until,
            limit: 100,
        };
        assert_eq!(
            a.events(f(Some("ana"), None, None, None))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            a.events(f(None, Some("account."), None, None))
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            a.events(f(None, Some("login"), None, None))
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            a.events(f(Some("admin"), None, Some(15), Some(40)))
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
