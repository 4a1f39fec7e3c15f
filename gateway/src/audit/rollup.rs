//! Usage summaries of the audit trail for the console's overview: requests and interventions
//! per minute, tokens by feature, a latency histogram, top users and top triggered policies over
//! a range of whole minutes.
//!
//! Owns the shapes every [`super::AuditStore`] returns ([`UsageSummary`]), the latency buckets
//! (fixed, log-spaced: percentiles are exact to within one bucket), the reference computation
//! over raw events ([`UsageBuilder`], used by the CloudWatch store and by the tests that hold the
//! SQLite rollup equal to the raw events), and the SQL of the SQLite rollup tables and the
//! triggers that maintain them in the same transaction as each event insert.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{AuditEvent, MinuteCount};

/// Upper bounds (exclusive, ms) of the latency buckets: eight per decade from 1 ms to 100 s
/// (each about 1.33× the previous), so a percentile read from the histogram is within one
/// bucket, at most a third above the true value. Bucket `i` holds latencies in
/// `[LATENCY_BOUNDS_MS[i - 1], LATENCY_BOUNDS_MS[i])`; the last bucket everything from 100 s.
pub const LATENCY_BOUNDS_MS: [u64; 40] = [
    1, 2, 3, 4, 5, 6, 8, 10, 13, 18, 24, 32, 42, 56, 75, 100, 133, 178, 237, 316, 422, 562, 750,
    1_000, 1_334, 1_778, 2_371, 3_162, 4_217, 5_623, 7_499, 10_000, 13_335, 17_783, 23_714, 31_623,
    42_170, 56_234, 74_989, 100_000,
];
/// Number of latency buckets (one more than there are bounds).
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;
/// Most entries in the top-users and top-policies lists.
pub const MAX_TOP: usize = 50;

/// The latency bucket of `ms`.
pub fn latency_bucket(ms: u64) -> usize {
    LATENCY_BOUNDS_MS.partition_point(|b| *b <= ms)
}

/// Request latencies counted per bucket of [`LATENCY_BOUNDS_MS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// One count per bucket, [`LATENCY_BUCKETS`] long.
    pub counts: Vec<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; LATENCY_BUCKETS],
        }
    }
}

/// Where a percentile lies: somewhere in `[lower_ms, upper_ms)`; `upper_ms` is `None` for the
/// open last bucket (100 s and more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyBucket {
    pub lower_ms: u64,
    pub upper_ms: Option<u64>,
}

impl LatencyHistogram {
    /// Count one latency.
    pub fn add(&mut self, ms: u64) {
        self.add_to_bucket(latency_bucket(ms), 1);
    }

    /// Add `n` to bucket `i` (ignored when `i` is out of range).
    pub fn add_to_bucket(&mut self, i: usize, n: u64) {
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_add(n);
        }
    }

    /// Latencies counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket holding the `p`-th percentile (`0 < p <= 1`, nearest-rank), or `None` when
    /// nothing was counted.
    pub fn percentile(&self, p: f64) -> Option<LatencyBucket> {
        let total = self.total();
        if total == 0 || !(p > 0.0 && p <= 1.0) {
            return None;
        }
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(LatencyBucket {
                    lower_ms: if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] },
                    upper_ms: LATENCY_BOUNDS_MS.get(i).copied(),
                });
            }
        }
        None
    }
}

/// One feature's traffic in a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FeatureUsage {
    pub feature: String,
    pub requests: u64,
    pub interventions: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A name and how often it occurred (a user's requests, a policy's interventions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked {
    pub name: String,
    pub count: u64,
}

/// Everything the overview shows about `[since_ms, until_ms)` (whole minutes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UsageSummary {
    pub since_ms: i64,
    pub until_ms: i64,
    /// Minutes with requests, oldest first.
    pub minutes: Vec<MinuteCount>,
    /// Features with requests, most tokens first (ties by name).
    pub features: Vec<FeatureUsage>,
    pub latency: LatencyHistogram,
    /// Users with the most requests, most first (ties by name).
    pub top_users: Vec<Ranked>,
    /// Policies that triggered most often (each counted once per request), most first.
    pub top_policies: Vec<Ranked>,
}

/// `[since_ms, until_ms)` widened to whole minutes: since rounded down, until rounded up.
pub fn whole_minutes(since_ms: i64, until_ms: i64) -> (i64, i64) {
    let since = since_ms.div_euclid(60_000) * 60_000;
    let until = until_ms
        .div_euclid(60_000)
        .saturating_add(i64::from(until_ms.rem_euclid(60_000) != 0))
        .saturating_mul(60_000);
    (since, until.max(since))
}

/// Builds a [`UsageSummary`] from raw events: the reference every store's summary must equal.
#[derive(Debug)]
pub struct UsageBuilder {
    since_ms: i64,
    until_ms: i64,
    top: usize,
    minutes: BTreeMap<i64, (u64, u64)>,
    features: BTreeMap<String, FeatureUsage>,
    latency: LatencyHistogram,
    users: HashMap<String, u64>,
    policies: HashMap<String, u64>,
}

impl UsageBuilder {
    /// A builder for `[since_ms, until_ms)` widened to whole minutes, keeping `top` users and
    /// policies (at most [`MAX_TOP`]).
    pub fn new(since_ms: i64, until_ms: i64, top: usize) -> UsageBuilder {
        let (since_ms, until_ms) = whole_minutes(since_ms, until_ms);
        UsageBuilder {
            since_ms,
            until_ms,
            top: top.min(MAX_TOP),
            minutes: BTreeMap::new(),
            features: BTreeMap::new(),
            latency: LatencyHistogram::default(),
            users: HashMap::new(),
            policies: HashMap::new(),
        }
    }

    /// Count `event` if it lies in the range.
    pub fn add(&mut self, event: &AuditEvent) {
        if !(self.since_ms..self.until_ms).contains(&event.timestamp) {
            return;
        }
        let intervened = u64::from(event.guardrail_action == "INTERVENED");
        let minute = event.timestamp.div_euclid(60_000) * 60_000;
        let slot = self.minutes.entry(minute).or_default();
        slot.0 += 1;
        slot.1 += intervened;
        let f = self
            .features
            .entry(event.feature.clone())
            .or_insert_with(|| FeatureUsage {
                feature: event.feature.clone(),
                ..FeatureUsage::default()
            });
        f.requests += 1;
        f.interventions += intervened;
        f.input_tokens = f.input_tokens.saturating_add(event.input_tokens);
        f.output_tokens = f.output_tokens.saturating_add(event.output_tokens);
        self.latency.add(event.latency_ms);
        *self.users.entry(event.user_sub.clone()).or_default() += 1;
        let distinct: BTreeSet<&String> = event.policies.iter().collect();
        for p in distinct {
            *self.policies.entry(p.clone()).or_default() += 1;
        }
    }

    /// The summary of everything added.
    pub fn finish(self) -> UsageSummary {
        let mut features: Vec<FeatureUsage> = self.features.into_values().collect();
        sort_features(&mut features);
        UsageSummary {
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            minutes: self
                .minutes
                .into_iter()
                .map(|(minute, (requests, interventions))| MinuteCount {
                    minute,
                    requests,
                    interventions,
                })
                .collect(),
            features,
            latency: self.latency,
            top_users: top_n(self.users, self.top),
            top_policies: top_n(self.policies, self.top),
        }
    }
}

/// Most tokens first, then by name.
pub fn sort_features(features: &mut [FeatureUsage]) {
    features.sort_by(|a, b| {
        let tokens = |f: &FeatureUsage| f.input_tokens.saturating_add(f.output_tokens);
        tokens(b)
            .cmp(&tokens(a))
            .then_with(|| a.feature.cmp(&b.feature))
    });
}

/// The `n` largest counts, largest first, ties by name.
fn top_n(counts: HashMap<String, u64>, n: usize) -> Vec<Ranked> {
    let mut all: Vec<Ranked> = counts
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(name, count)| Ranked { name, count })
        .collect();
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    all.truncate(n);
    all
}

// ---------------------------------------------------------------------------------------------
// SQLite rollup tables and triggers.

/// `floor(expr / n)` in SQLite, whose `/` truncates towards zero.
fn floor_div(expr: &str, n: i64) -> String {
    format!("(CASE WHEN {expr} >= 0 THEN {expr} / {n} ELSE -((-({expr}) - 1) / {n}) - 1 END)")
}

/// `expr` when it is valid JSON, else an empty array (json_each fails on malformed JSON, and a
/// trigger failing would refuse the event).
fn valid_json(expr: &str) -> String {
    format!("(CASE WHEN json_valid({expr}) THEN {expr} ELSE '[]' END)")
}

/// The latency bucket of `expr` in SQL, equal to [`latency_bucket`].
fn bucket_sql(expr: &str) -> String {
    let mut s = String::from("CASE");
    for (i, bound) in LATENCY_BOUNDS_MS.iter().enumerate() {
        s.push_str(&format!(" WHEN {expr} < {bound} THEN {i}"));
    }
    s.push_str(&format!(" ELSE {} END", LATENCY_BOUNDS_MS.len()));
    s
}

/// The histogram columns, `h0, h1, …`.
pub(crate) fn histogram_columns() -> Vec<String> {
    (0..LATENCY_BUCKETS).map(|i| format!("h{i}")).collect()
}

/// Statements that add (`sign = 1`) or remove (`sign = -1`) the row `alias` (`NEW`/`OLD`) of
/// `audit_events` to or from the rollups.
fn apply(alias: &str, sign: i64) -> String {
    let h = histogram_columns();
    let ts = format!("{alias}.timestamp");
    let minute = floor_div(&ts, 60_000);
    let hour = floor_div(&ts, 3_600_000);
    let bucket = bucket_sql(&format!("{alias}.latency_ms"));
    let policies = valid_json(&format!("{alias}.policies"));
    let h_values: Vec<String> = (0..LATENCY_BUCKETS)
        .map(|i| format!("{sign} * (b = {i})"))
        .collect();
    let h_updates: Vec<String> = h
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    let mut out = format!(
        "INSERT INTO audit_minutes (minute, feature, requests, interventions, input_tokens,
             output_tokens, {h_cols})
         SELECT {minute}, {alias}.feature, {sign}, {sign} * ({alias}.guardrail_action = 'INTERVENED'),
             {sign} * {alias}.input_tokens, {sign} * {alias}.output_tokens, {h_values}
         FROM (SELECT {bucket} AS b) WHERE true
         ON CONFLICT (minute, feature) DO UPDATE SET
             requests = requests + excluded.requests,
             interventions = interventions + excluded.interventions,
             input_tokens = input_tokens + excluded.input_tokens,
             output_tokens = output_tokens + excluded.output_tokens,
             {h_updates};
         INSERT INTO audit_hour_users (hour, user_sub, requests)
         VALUES ({hour}, {alias}.user_sub, {sign})
         ON CONFLICT (hour, user_sub) DO UPDATE SET requests = requests + excluded.requests;
         INSERT INTO audit_minute_policies (minute, policy, hits)
         SELECT DISTINCT {minute}, value, {sign} FROM json_each({policies})
         WHERE type = 'text'
         ON CONFLICT (minute, policy) DO UPDATE SET hits = hits + excluded.hits;",
        h_cols = h.join(", "),
        h_values = h_values.join(", "),
        h_updates = h_updates.join(", "),
    );
    if sign < 0 {
        // Rows that no longer count anything go, so readers never see empty minutes.
        out.push_str(&format!(
            "DELETE FROM audit_minutes WHERE minute = {minute} AND feature = {alias}.feature
                 AND requests = 0;
             DELETE FROM audit_hour_users WHERE hour = {hour} AND user_sub = {alias}.user_sub
                 AND requests = 0;
             DELETE FROM audit_minute_policies WHERE minute = {minute} AND hits = 0;"
        ));
    }
    out
}

/// The rollup tables and the triggers that keep them equal to `audit_events` (schema version
/// 3). Every statement is idempotent.
pub(crate) fn sqlite_schema() -> String {
    let h_defs: Vec<String> = histogram_columns()
        .iter()
        .map(|c| format!("{c} INTEGER NOT NULL DEFAULT 0"))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS audit_minutes (
             minute        INTEGER NOT NULL, -- floor(timestamp / 60000)
             feature       TEXT    NOT NULL,
             requests      INTEGER NOT NULL,
             interventions INTEGER NOT NULL,
             input_tokens  INTEGER NOT NULL,
             output_tokens INTEGER NOT NULL,
             {h_defs},
             PRIMARY KEY (minute, feature)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS audit_hour_users (
             hour     INTEGER NOT NULL, -- floor(timestamp / 3600000)
             user_sub TEXT    NOT NULL,
             requests INTEGER NOT NULL,
             PRIMARY KEY (hour, user_sub)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS audit_minute_policies (
             minute INTEGER NOT NULL,
             policy TEXT    NOT NULL,
             hits   INTEGER NOT NULL,
             PRIMARY KEY (minute, policy)
         ) WITHOUT ROWID;
         CREATE TRIGGER IF NOT EXISTS audit_rollup_insert AFTER INSERT ON audit_events BEGIN
             {insert}
         END;
         CREATE TRIGGER IF NOT EXISTS audit_rollup_delete AFTER DELETE ON audit_events BEGIN
             {delete}
         END;
         CREATE TRIGGER IF NOT EXISTS audit_rollup_update AFTER UPDATE ON audit_events BEGIN
             {delete}
             {insert}
         END;",
        h_defs = h_defs.join(",\n             "),
        insert = apply("NEW", 1),
        delete = apply("OLD", -1),
    )
}

/// Rebuild the rollups from `audit_events` (opening a database written before version 3).
pub(crate) fn sqlite_backfill() -> String {
    let h = histogram_columns();
    let minute = floor_div("timestamp", 60_000);
    let hour = floor_div("timestamp", 3_600_000);
    let bucket = bucket_sql("latency_ms");
    let h_sums: Vec<String> = (0..LATENCY_BUCKETS)
        .map(|i| format!("SUM(b = {i})"))
        .collect();
    format!(
        "DELETE FROM audit_minutes;
         DELETE FROM audit_hour_users;
         DELETE FROM audit_minute_policies;
         INSERT INTO audit_minutes (minute, feature, requests, interventions, input_tokens,
             output_tokens, {h_cols})
         SELECT m, feature, COUNT(*), SUM(guardrail_action = 'INTERVENED'), SUM(input_tokens),
             SUM(output_tokens), {h_sums}
         FROM (SELECT {minute} AS m, feature, guardrail_action, input_tokens, output_tokens,
                      {bucket} AS b FROM audit_events)
         GROUP BY m, feature;
         INSERT INTO audit_hour_users (hour, user_sub, requests)
         SELECT {hour} AS h, user_sub, COUNT(*) FROM audit_events GROUP BY h, user_sub;
         INSERT INTO audit_minute_policies (minute, policy, hits)
         SELECT m, policy, COUNT(*) FROM (
             SELECT DISTINCT e.id, {minute_e} AS m, j.value AS policy
             FROM audit_events e, json_each({policies_e}) j
             WHERE j.type = 'text')
         GROUP BY m, policy;",
        h_cols = h.join(", "),
        h_sums = h_sums.join(", "),
        minute_e = floor_div("e.timestamp", 60_000),
        policies_e = valid_json("e.policies"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_spaced_and_cover_everything() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 1);
        assert_eq!(latency_bucket(99), 15);
        assert_eq!(latency_bucket(100), 16);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
        for w in LATENCY_BOUNDS_MS.windows(2) {
            assert!(w[0] < w[1]);
            // At most twice the previous; within a third from 18 ms on (below that, whole
            // milliseconds round the log steps).
            assert!(w[1] <= 2 * w[0], "{w:?}");
            if w[0] >= 18 {
                assert!(w[1] as f64 / w[0] as f64 <= 1.34, "{w:?}");
            }
        }
    }

    #[test]
    fn percentiles_are_the_nearest_rank_bucket() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.percentile(0.5), None);
        for ms in 1..=100 {
            h.add(ms);
        }
        // The 50th value is 50 ms: bucket [42, 56).
        assert_eq!(
            h.percentile(0.5),
            Some(LatencyBucket {
                lower_ms: 42,
                upper_ms: Some(56)
            })
        );
        // The 99th is 99 ms: [75, 100).
        assert_eq!(h.percentile(0.99).unwrap().upper_ms, Some(100));
        h.add(200_000);
        assert_eq!(h.percentile(1.0).unwrap().upper_ms, None);
        assert_eq!(h.percentile(0.0), None);
    }

    #[test]
    fn whole_minutes_widen_the_range() {
        assert_eq!(whole_minutes(60_000, 120_000), (60_000, 120_000));
        assert_eq!(whole_minutes(60_001, 120_001), (60_000, 180_000));
        assert_eq!(whole_minutes(-1, 0), (-60_000, 0));
    }

    #[test]
    fn the_builder_counts_policies_once_per_request_and_ranks_ties_by_name() {
        let event = |user: &str, policies: &[&str]| AuditEvent {
            timestamp: 90_000,
            user_sub: user.into(),
            feature: "f".into(),
            latency_ms: 10,
            input_tokens: 3,
            output_tokens: 4,
            guardrail_action: "INTERVENED".into(),
            policies: policies.iter().map(|p| p.to_string()).collect(),
            ..AuditEvent::default()
        };
        let mut b = UsageBuilder::new(60_000, 120_000, 2);
        b.add(&event("bob", &["pii:EMAIL", "pii:EMAIL"]));
        b.add(&event("alice", &["pii:EMAIL", "topic:X"]));
        b.add(&event("carol", &[]));
        let mut outside = event("zed", &["pii:EMAIL"]);
        outside.timestamp = 120_000;
        b.add(&outside);
        let s = b.finish();
        assert_eq!(s.minutes.len(), 1);
        assert_eq!(s.minutes[0].requests, 3);
        assert_eq!(
            s.top_policies,
            vec![
                Ranked {
                    name: "pii:EMAIL".into(),
                    count: 2
                },
                Ranked {
                    name: "topic:X".into(),
                    count: 1
                }
            ]
        );
        let users: Vec<_> = s.top_users.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(users, ["alice", "bob"]);
        assert_eq!(s.features[0].input_tokens, 9);
    }
}
