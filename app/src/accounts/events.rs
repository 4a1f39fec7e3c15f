//! The console's own audit trail (`console_events` in `console.db`): sign-ins (and refused
//! ones), sign-outs, account changes, guardrail edits and versions, feature bindings and
//! throttle changes — who, what, when, from where.
//!
//! It lives beside the users and sessions rather than in the gateway's audit store because it
//! records the console's actions on the console's own data (an account change and its event
//! are written by the same store), and the gateway's store is tuned for a million request
//! events whose schema is the gateway's audit event. Vault openings stay in the gateway's
//! store (`AccessEvent`); the audit page shows both.
//!
//! Events never carry a password, a token, or prompt text; every field is length-capped.

use rusqlite::{Connection, params, params_from_iter};

use super::{Accounts, AccountsError, blocking};

/// The longest value stored in any text field of an event.
pub const FIELD_MAX: usize = 300;
/// The most events one query returns.
pub const QUERY_MAX: usize = 1000;

/// One console event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleEvent {
    pub at_ms: i64,
    /// The console user who acted (or the name tried, for a refused sign-in).
    pub actor: String,
    /// `login`, `login.failed`, `logout`, `account.create`, `account.role`, `account.disable`,
    /// `account.enable`, `account.password`, `guardrail.edit`, `guardrail.version`,
    /// `feature.binding`, `feature.throttle`, `feature.model`.
    pub kind: String,
    /// What was acted on: a user, a guardrail id, a feature.
    pub target: String,
    /// A short human description of the change (no secrets).
    pub detail: String,
    /// The client address.
    pub client: String,
}

/// Which events to return; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub actor: Option<String>,
    /// A kind, or a prefix ending in `.` (`account.`).
    pub kind: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: usize,
}

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

fn cap(value: &str) -> String {
    value.chars().take(FIELD_MAX).collect()
}

impl Accounts {
    /// Append one event.
    pub async fn record_event(&self, event: ConsoleEvent) -> Result<(), AccountsError> {
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
