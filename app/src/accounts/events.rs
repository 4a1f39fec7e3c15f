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

use std::sync::Arc;

use gateway::aws::console_events::{ConsoleEventLog, cap};
use rusqlite::{Connection, params, params_from_iter};

use super::{Accounts, AccountsError, blocking};

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
         CREATE INDEX IF NOT EXISTS console_events_by_actor ON console_events(actor, at);",
    )?;
    Ok(())
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
