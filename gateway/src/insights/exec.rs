//! Running a [`Plan`] over a stream of event rows: expressions evaluated with SQL-style nulls
//! (A5, A6), streaming stages (`filter`, `fields`, `parse`, `limit`), and the blocking ones
//! with bounded memory where the language allows it: hash aggregation for `stats`, top-k for
//! `sort … | limit`, `dedup` in the current order (A29).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use super::InsightsError;
use super::ast::BinaryOp;
use super::functions::time_of;
use super::plan::{AggKind, AggSpec, CExpr, Pattern, Plan, Stage, StatsPlan};
use super::value::{Num, Value, collate, collate_nulls_last, compare, equals};
use super::{ResultField, ResultRow};

/// The most groups one `stats` may hold.
pub const MAX_GROUPS: usize = 1_000_000;

/// Whether the producer should keep sending rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Evaluate `e` over `row`; `now` is the query start in epoch seconds.
pub(crate) fn eval<'a>(e: &'a CExpr, row: &'a [Value], now: i64) -> Cow<'a, Value> {
    match e {
        CExpr::Slot(i) => Cow::Borrowed(row.get(*i).unwrap_or(&Value::Null)),
        CExpr::Const(v) => Cow::Borrowed(v),
        CExpr::Neg(x) => Cow::Owned(match eval(x, row, now).as_num() {
            Some(Num::Int(i)) => i
                .checked_neg()
                .map_or(Value::Float(-(i as f64)), Value::Int),
            Some(Num::Float(f)) => Value::Float(-f),
            None => Value::Null,
        }),
        CExpr::Not(x) => Cow::Owned(match eval(x, row, now).truth() {
            Some(b) => Value::Bool(!b),
            None => Value::Null,
        }),
        CExpr::And(a, b) => {
            let l = eval(a, row, now).truth();
            if l == Some(false) {
                return Cow::Owned(Value::Bool(false));
            }
            let r = eval(b, row, now).truth();
            Cow::Owned(match (l, r) {
                (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            })
        }
        CExpr::Or(a, b) => {
            let l = eval(a, row, now).truth();
            if l == Some(true) {
                return Cow::Owned(Value::Bool(true));
            }
            let r = eval(b, row, now).truth();
            Cow::Owned(match (l, r) {
                (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            })
        }
        CExpr::Cmp(op, a, b) => {
            let (l, r) = (eval(a, row, now), eval(b, row, now));
            Cow::Owned(match compare(&l, &r) {
                None => Value::Null,
                Some(o) => Value::Bool(match op {
                    BinaryOp::Eq => o == Ordering::Equal,
                    BinaryOp::Ne => o != Ordering::Equal,
                    BinaryOp::Lt => o == Ordering::Less,
                    BinaryOp::Le => o != Ordering::Greater,
                    BinaryOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }),
            })
        }
        CExpr::Arith(op, a, b) => {
            let (l, r) = (eval(a, row, now), eval(b, row, now));
            Cow::Owned(match (l.as_num(), r.as_num()) {
                (Some(x), Some(y)) => arith(*op, x, y),
                _ => Value::Null,
            })
        }
        CExpr::Like {
            expr,
            pattern,
            negated,
        } => {
            let v = eval(expr, row, now);
            let Some(text) = v.as_text() else {
                return Cow::Owned(Value::Null);
            };
            let hit = match pattern {
                Pattern::Substring(s) => text.contains(s.as_str()),
                Pattern::Regex(re) => re.is_match(&text),
                Pattern::Dynamic(p) => match eval(p, row, now).as_text() {
                    Some(s) => text.contains(s.as_ref()),
                    None => return Cow::Owned(Value::Null),
                },
            };
            Cow::Owned(Value::Bool(hit != *negated))
        }
        CExpr::In {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, row, now);
            if v.is_null() {
                return Cow::Owned(Value::Null);
            }
            let found = list
                .iter()
                .any(|x| equals(&v, &eval(x, row, now)) == Some(true));
            Cow::Owned(Value::Bool(found != *negated))
        }
        CExpr::Call { func, args, period } => {
            let values: Vec<Value> = args
                .iter()
                .map(|a| eval(a, row, now).into_owned())
                .collect();
            Cow::Owned(func.apply(&values, *period, now))
        }
        CExpr::Bin { period, ts } => Cow::Owned(
            row.get(*ts)
                .and_then(time_of)
                .map_or(Value::Null, |t| Value::Time(period.floor(t))),
        ),
    }
}

fn arith(op: BinaryOp, x: Num, y: Num) -> Value {
    let float = |f: f64| {
        if f.is_finite() {
            Value::Float(f)
        } else {
            Value::Null
        }
    };
    match (op, x, y) {
        (BinaryOp::Add, Num::Int(a), Num::Int(b)) => a
            .checked_add(b)
            .map_or(float(a as f64 + b as f64), Value::Int),
        (BinaryOp::Sub, Num::Int(a), Num::Int(b)) => a
            .checked_sub(b)
            .map_or(float(a as f64 - b as f64), Value::Int),
        (BinaryOp::Mul, Num::Int(a), Num::Int(b)) => a
            .checked_mul(b)
            .map_or(float(a as f64 * b as f64), Value::Int),
        (BinaryOp::Mod, Num::Int(a), Num::Int(b)) => {
            if b == 0 {
                Value::Null
            } else {
                a.checked_rem(b).map_or(Value::Int(0), Value::Int)
            }
        }
        (BinaryOp::Add, a, b) => float(a.as_f64() + b.as_f64()),
        (BinaryOp::Sub, a, b) => float(a.as_f64() - b.as_f64()),
        (BinaryOp::Mul, a, b) => float(a.as_f64() * b.as_f64()),
        (BinaryOp::Div, a, b) => {
            if b.as_f64() == 0.0 {
                Value::Null
            } else {
                float(a.as_f64() / b.as_f64())
            }
        }
        (BinaryOp::Mod, a, b) => {
            if b.as_f64() == 0.0 {
                Value::Null
            } else {
                float(a.as_f64() % b.as_f64())
            }
        }
        (BinaryOp::Pow, a, b) => float(a.as_f64().powf(b.as_f64())),
        _ => Value::Null,
    }
}

// ---------------------------------------------------------------------------------------------
// Aggregation.

/// A hashable group key part: numbers that are equal group together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyPart {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Time(i64),
}

fn key_part(v: &Value) -> KeyPart {
    match v {
        Value::Null => KeyPart::Null,
        Value::Bool(b) => KeyPart::Bool(*b),
        Value::Int(i) => KeyPart::Int(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => KeyPart::Int(*f as i64),
        Value::Float(f) => KeyPart::Float(f.to_bits()),
        Value::Str(s) => KeyPart::Str(s.clone()),
        Value::Time(t) => KeyPart::Time(*t),
    }
}

#[derive(Debug)]
enum Agg {
    Count(u64),
    Distinct(HashSet<KeyPart>),
    Sum {
        int: i128,
        float: f64,
        floats: bool,
        n: u64,
    },
    MinMax(Option<Value>),
    Pct(Vec<f64>),
    Stddev {
        n: u64,
        mean: f64,
        m2: f64,
    },
    /// (timestamp, value) of the earliest/latest event having the field.
    At(Option<(i64, Value)>),
    Sorts(Option<Value>),
}

impl Agg {
    fn new(kind: AggKind) -> Agg {
        match kind {
            AggKind::Count => Agg::Count(0),
            AggKind::CountDistinct => Agg::Distinct(HashSet::new()),
            AggKind::Sum | AggKind::Avg => Agg::Sum {
                int: 0,
                float: 0.0,
                floats: false,
                n: 0,
            },
            AggKind::Min | AggKind::Max => Agg::MinMax(None),
            AggKind::Pct => Agg::Pct(Vec::new()),
            AggKind::Stddev => Agg::Stddev {
                n: 0,
                mean: 0.0,
                m2: 0.0,
            },
            AggKind::Earliest | AggKind::Latest => Agg::At(None),
            AggKind::SortsFirst | AggKind::SortsLast => Agg::Sorts(None),
        }
    }

    fn add(&mut self, spec: &AggSpec, v: Option<&Value>, ts: Option<i64>) {
        let Some(v) = v else {
            // count(*)
            if let Agg::Count(n) = self {
                *n += 1;
            }
            return;
        };
        if v.is_null() {
            return;
        }
        match self {
            Agg::Count(n) => *n += 1,
            Agg::Distinct(set) => {
                set.insert(key_part(v));
            }
            Agg::Sum {
                int,
                float,
                floats,
                n,
            } => match v.as_num() {
                Some(Num::Int(i)) => {
                    *int += i128::from(i);
                    *float += i as f64;
                    *n += 1;
                }
                Some(Num::Float(f)) => {
                    *floats = true;
                    *float += f;
                    *n += 1;
                }
                None => {}
            },
            Agg::MinMax(best) => {
                let Some(x) = v.as_num() else { return };
                let replace = match best.as_ref().and_then(Value::as_num) {
                    None => true,
                    Some(b) => {
                        let o = x.compare(b);
                        if spec.kind == AggKind::Min {
                            o == Some(Ordering::Less)
                        } else {
                            o == Some(Ordering::Greater)
                        }
                    }
                };
                if replace {
                    *best = Some(match v {
                        Value::Str(_) => x.into_value(),
                        other => other.clone(),
                    });
                }
            }
            Agg::Pct(values) => {
                if let Some(x) = v.as_num() {
                    values.push(x.as_f64());
                }
            }
            Agg::Stddev { n, mean, m2 } => {
                if let Some(x) = v.as_num() {
                    let x = x.as_f64();
                    *n += 1;
                    let delta = x - *mean;
                    *mean += delta / *n as f64;
                    *m2 += delta * (x - *mean);
                }
            }
            Agg::At(best) => {
                let t = ts.unwrap_or(0);
                let replace = match best {
                    None => true,
                    Some((bt, _)) => {
                        if spec.kind == AggKind::Earliest {
                            t < *bt
                        } else {
                            t > *bt
                        }
                    }
                };
                if replace {
                    *best = Some((t, v.clone()));
                }
            }
            Agg::Sorts(best) => {
                let replace = match best {
                    None => true,
                    Some(b) => {
                        let o = collate(v, b);
                        if spec.kind == AggKind::SortsFirst {
                            o == Ordering::Less
                        } else {
                            o == Ordering::Greater
                        }
                    }
                };
                if replace {
                    *best = Some(v.clone());
                }
            }
        }
    }

    fn finish(self, spec: &AggSpec) -> Value {
        match self {
            Agg::Count(n) => Value::Int(i64::try_from(n).unwrap_or(i64::MAX)),
            Agg::Distinct(set) => Value::Int(i64::try_from(set.len()).unwrap_or(i64::MAX)),
            Agg::Sum {
                int,
                float,
                floats,
                n,
            } => {
                if n == 0 {
                    return Value::Null;
                }
                if spec.kind == AggKind::Sum {
                    if floats {
                        Value::Float(float)
                    } else {
                        i64::try_from(int).map_or(Value::Float(int as f64), Value::Int)
                    }
                } else if floats {
                    Value::Float(float / n as f64)
                } else {
                    Value::Float(int as f64 / n as f64)
                }
            }
            Agg::MinMax(v) | Agg::Sorts(v) => v.unwrap_or(Value::Null),
            Agg::Pct(mut values) => {
                if values.is_empty() {
                    return Value::Null;
                }
                values.sort_by(f64::total_cmp);
                let n = values.len();
                // A13: nearest rank.
                let rank = (spec.pct / 100.0 * n as f64).ceil() as usize;
                let i = rank.saturating_sub(1).min(n - 1);
                Value::Float(values[i])
            }
            Agg::Stddev { n, m2, .. } => {
                if n < 2 {
                    Value::Null
                } else {
                    Value::Float((m2 / (n - 1) as f64).sqrt())
                }
            }
            Agg::At(v) => v.map_or(Value::Null, |(_, v)| v),
        }
    }
}

struct Group {
    keys: Vec<Value>,
    aggs: Vec<Agg>,
}

#[derive(Default)]
struct StatsState {
    index: HashMap<Vec<KeyPart>, usize>,
    groups: Vec<Group>,
    /// The current row's key, reused across rows.
    scratch: Vec<KeyPart>,
}

struct SortEntry {
    keys: Vec<Value>,
    seq: u64,
    row: Vec<Value>,
}

enum State {
    None,
    Limit(u64),
    Sort { buf: Vec<SortEntry>, seq: u64 },
    Dedup(Vec<Vec<Value>>),
    Stats(StatsState),
}

/// One run of a plan. Feed event rows with [`Executor::push`], then call
/// [`Executor::finish`].
pub struct Executor<'p> {
    plan: &'p Plan,
    states: Vec<State>,
    output: Vec<Vec<Value>>,
    now: i64,
    /// Events that reached the first stats (or the output).
    pub matched: u64,
}

impl<'p> Executor<'p> {
    pub fn new(plan: &'p Plan, now_secs: i64) -> Executor<'p> {
        let states = plan
            .stages
            .iter()
            .map(|s| match s {
                Stage::Limit(_) => State::Limit(0),
                Stage::Sort { .. } => State::Sort {
                    buf: Vec::new(),
                    seq: 0,
                },
                Stage::Dedup { .. } => State::Dedup(Vec::new()),
                Stage::Stats(_) => State::Stats(StatsState::default()),
                _ => State::None,
            })
            .collect();
        Executor {
            plan,
            states,
            output: Vec::new(),
            now: now_secs,
            matched: 0,
        }
    }

    /// A fresh event row for the store to fill.
    pub fn new_row(&self) -> Vec<Value> {
        vec![Value::Null; self.plan.widths.first().copied().unwrap_or(0)]
    }

    /// One event.
    pub fn push(&mut self, row: Vec<Value>) -> Result<Flow, InsightsError> {
        self.push_from(0, row)
    }

    fn push_from(&mut self, start: usize, mut row: Vec<Value>) -> Result<Flow, InsightsError> {
        let plan = self.plan;
        let n = plan.stages.len();
        let mut stop = false;
        let flow = |stop: bool| if stop { Flow::Stop } else { Flow::Continue };
        for i in start..=n {
            if i == plan.match_point {
                self.matched += 1;
            }
            if i == n {
                self.output.push(row);
                if self.output.len() >= plan.result_limit {
                    return Ok(Flow::Stop);
                }
                return Ok(flow(stop));
            }
            match &plan.stages[i] {
                Stage::Filter(e) => {
                    if eval(e, &row, self.now).truth() != Some(true) {
                        return Ok(flow(stop));
                    }
                }
                Stage::Assign(list) => {
                    for (slot, e) in list {
                        let v = eval(e, &row, self.now).into_owned();
                        if let Some(cell) = row.get_mut(*slot) {
                            *cell = v;
                        }
                    }
                }
                Stage::Parse {
                    source,
                    regex,
                    targets,
                } => {
                    let captured: Option<Vec<(usize, Value)>> =
                        row.get(*source).and_then(Value::as_text).and_then(|text| {
                            regex.captures(&text).map(|caps| {
                                targets
                                    .iter()
                                    .map(|(slot, g)| {
                                        (
                                            *slot,
                                            caps.get(*g).map_or(Value::Null, |m| {
                                                Value::Str(m.as_str().to_string())
                                            }),
                                        )
                                    })
                                    .collect()
                            })
                        });
                    for (slot, v) in captured.into_iter().flatten() {
                        if let Some(cell) = row.get_mut(slot) {
                            *cell = v;
                        }
                    }
                }
                Stage::Limit(max) => {
                    let State::Limit(seen) = &mut self.states[i] else {
                        continue;
                    };
                    if *seen >= *max {
                        return Ok(Flow::Stop);
                    }
                    *seen += 1;
                    if *seen >= *max {
                        stop = true;
                    }
                }
                Stage::Sort { keys, k } => {
                    let sort_keys: Vec<Value> = keys
                        .iter()
                        .map(|(e, _)| eval(e, &row, self.now).into_owned())
                        .collect();
                    let State::Sort { buf, seq } = &mut self.states[i] else {
                        continue;
                    };
                    if *k == Some(0) {
                        return Ok(flow(stop));
                    }
                    *seq += 1;
                    buf.push(SortEntry {
                        keys: sort_keys,
                        seq: *seq,
                        row,
                    });
                    if let Some(k) = *k
                        && buf.len() >= k.saturating_mul(2).max(1024)
                    {
                        sort_entries(buf, keys);
                        buf.truncate(k);
                    }
                    return Ok(flow(stop));
                }
                Stage::Dedup { .. } => {
                    if let State::Dedup(buf) = &mut self.states[i] {
                        buf.push(row);
                    }
                    return Ok(flow(stop));
                }
                Stage::Stats(sp) => {
                    let State::Stats(st) = &mut self.states[i] else {
                        continue;
                    };
                    aggregate(sp, st, &row, self.now)?;
                    return Ok(flow(stop));
                }
            }
        }
        Ok(flow(stop))
    }

    /// Flush the blocking stages in order; the result rows and the events matched.
    pub fn finish(mut self) -> Result<(Vec<ResultRow>, u64), InsightsError> {
        let plan = self.plan;
        for i in 0..plan.stages.len() {
            let state = std::mem::replace(&mut self.states[i], State::None);
            let rows: Vec<Vec<Value>> = match (state, &plan.stages[i]) {
                (State::Sort { mut buf, .. }, Stage::Sort { keys, k }) => {
                    sort_entries(&mut buf, keys);
                    if let Some(k) = k {
                        buf.truncate(*k);
                    }
                    buf.into_iter().map(|e| e.row).collect()
                }
                (State::Dedup(mut buf), Stage::Dedup { keys, presort }) => {
                    if let Some(ts) = presort {
                        buf.sort_by(|a, b| {
                            collate_nulls_last(
                                a.get(*ts).unwrap_or(&Value::Null),
                                b.get(*ts).unwrap_or(&Value::Null),
                                true,
                            )
                        });
                    }
                    let mut seen = HashSet::new();
                    buf.into_iter()
                        .filter(|row| {
                            let key: Vec<KeyPart> = keys
                                .iter()
                                .map(|k| key_part(row.get(*k).unwrap_or(&Value::Null)))
                                .collect();
                            key.contains(&KeyPart::Null) || seen.insert(key)
                        })
                        .collect()
                }
                (State::Stats(st), Stage::Stats(sp)) => stats_rows(plan, sp, st)?,
                _ => continue,
            };
            for row in rows {
                if self.push_from(i + 1, row)? == Flow::Stop {
                    break;
                }
            }
        }
        let matched = self.matched;
        Ok((self.render(), matched))
    }

    fn render(self) -> Vec<ResultRow> {
        let plan = self.plan;
        self.output
            .into_iter()
            .map(|row| {
                let mut fields: Vec<ResultField> = plan
                    .output
                    .iter()
                    .filter_map(|(name, slot)| {
                        row.get(*slot)
                            .and_then(Value::render)
                            .map(|value| ResultField {
                                field: name.clone(),
                                value,
                            })
                    })
                    .collect();
                if plan.with_ptr
                    && let Some(ptr) = row.get(super::plan::PTR_SLOT).and_then(Value::render)
                {
                    fields.push(ResultField {
                        field: "@ptr".into(),
                        value: ptr,
                    });
                }
                fields
            })
            .collect()
    }
}

fn sort_entries(buf: &mut [SortEntry], keys: &[(CExpr, bool)]) {
    buf.sort_by(|a, b| {
        for (j, (_, desc)) in keys.iter().enumerate() {
            let o = collate_nulls_last(&a.keys[j], &b.keys[j], *desc);
            if o != Ordering::Equal {
                return o;
            }
        }
        a.seq.cmp(&b.seq)
    });
}

fn aggregate(
    sp: &StatsPlan,
    st: &mut StatsState,
    row: &[Value],
    now: i64,
) -> Result<(), InsightsError> {
    st.scratch.clear();
    for k in &sp.keys {
        st.scratch.push(key_part(&eval(k, row, now)));
    }
    let index = match st.index.get(st.scratch.as_slice()) {
        Some(i) => *i,
        None => {
            if st.groups.len() >= MAX_GROUPS {
                return Err(InsightsError::TooManyGroups(MAX_GROUPS));
            }
            st.groups.push(Group {
                keys: sp
                    .keys
                    .iter()
                    .map(|k| eval(k, row, now).into_owned())
                    .collect(),
                aggs: sp.aggs.iter().map(|a| Agg::new(a.kind)).collect(),
            });
            st.index.insert(st.scratch.clone(), st.groups.len() - 1);
            st.groups.len() - 1
        }
    };
    let ts = sp.ts_slot.and_then(|s| row.get(s)).and_then(time_of);
    let group = &mut st.groups[index];
    for (spec, agg) in sp.aggs.iter().zip(group.aggs.iter_mut()) {
        match &spec.arg {
            None => agg.add(spec, None, ts),
            Some(e) => {
                let v = eval(e, row, now);
                agg.add(spec, Some(&v), ts);
            }
        }
    }
    Ok(())
}

fn stats_rows(
    plan: &Plan,
    sp: &StatsPlan,
    mut st: StatsState,
) -> Result<Vec<Vec<Value>>, InsightsError> {
    if st.groups.is_empty() && sp.keys.is_empty() {
        st.groups.push(Group {
            keys: Vec::new(),
            aggs: sp.aggs.iter().map(|a| Agg::new(a.kind)).collect(),
        });
    }
    let mut groups = st.groups;
    groups.sort_by(|a, b| {
        for (x, y) in a.keys.iter().zip(&b.keys) {
            let o = collate_nulls_last(x, y, false);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let width = plan.widths.get(sp.out_scope).copied().unwrap_or(0);
    let mut rows = Vec::with_capacity(groups.len());
    for g in groups {
        let mut row = vec![Value::Null; width];
        for (slot, v) in sp.key_slots.iter().zip(g.keys) {
            if let Some(cell) = row.get_mut(*slot) {
                *cell = v;
            }
        }
        let finals: Vec<Value> = g
            .aggs
            .into_iter()
            .zip(&sp.aggs)
            .map(|(a, spec)| a.finish(spec))
            .collect();
        for (slot, e) in &sp.outputs {
            let v = eval(e, &finals, 0).into_owned();
            if let Some(cell) = row.get_mut(*slot) {
                *cell = v;
            }
        }
        rows.push(row);
    }
    Ok(rows)
}
