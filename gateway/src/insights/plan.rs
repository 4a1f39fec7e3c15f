//! From syntax tree to executable plan: names resolved to row slots, functions and regexes
//! compiled, the rules of the language checked (at most two `stats`, what may follow `dedup`,
//! aggregates only in `stats`), the output columns decided (A4, A26, A30, A31), and what can be
//! pushed into the store found (time range is separate; here equality on indexed fields).

use std::collections::HashMap;

use regex::Regex;

use super::InsightsError;
use super::ast::{BinaryOp, Command, Expr, Item, ParsePattern, Query};
use super::functions::{Func, Period};
use super::value::Value;

/// Slot of `@timestamp` and `@ptr` in the event scope.
pub(crate) const TS_SLOT: usize = 0;
pub(crate) const PTR_SLOT: usize = 1;

/// An expression compiled against a scope's slots.
#[derive(Debug)]
pub(crate) enum CExpr {
    Slot(usize),
    Const(Value),
    Neg(Box<CExpr>),
    Not(Box<CExpr>),
    And(Box<CExpr>, Box<CExpr>),
    Or(Box<CExpr>, Box<CExpr>),
    Cmp(BinaryOp, Box<CExpr>, Box<CExpr>),
    Arith(BinaryOp, Box<CExpr>, Box<CExpr>),
    Like {
        expr: Box<CExpr>,
        pattern: Pattern,
        negated: bool,
    },
    In {
        expr: Box<CExpr>,
        list: Vec<CExpr>,
        negated: bool,
    },
    Call {
        func: Func,
        args: Vec<CExpr>,
        period: Option<Period>,
    },
    /// `bin(period)` over the `@timestamp` slot.
    Bin {
        period: Period,
        ts: usize,
    },
}

#[derive(Debug)]
pub(crate) enum Pattern {
    Substring(String),
    Regex(Regex),
    /// `like <expr>`: substring computed per row.
    Dynamic(Box<CExpr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggKind {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Pct,
    Stddev,
    Earliest,
    Latest,
    SortsFirst,
    SortsLast,
}

impl AggKind {
    fn lookup(name: &str) -> Option<AggKind> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggKind::Count,
            "count_distinct" => AggKind::CountDistinct,
            "sum" => AggKind::Sum,
            "avg" => AggKind::Avg,
            "min" => AggKind::Min,
            "max" => AggKind::Max,
            "pct" => AggKind::Pct,
            "stddev" => AggKind::Stddev,
            "earliest" => AggKind::Earliest,
            "latest" => AggKind::Latest,
            "sortsfirst" => AggKind::SortsFirst,
            "sortslast" => AggKind::SortsLast,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub(crate) struct AggSpec {
    pub kind: AggKind,
    /// `None` for `count(*)`.
    pub arg: Option<CExpr>,
    /// The percentile of `pct`.
    pub pct: f64,
}

#[derive(Debug)]
pub(crate) struct StatsPlan {
    pub keys: Vec<CExpr>,
    pub key_slots: Vec<usize>,
    pub aggs: Vec<AggSpec>,
    /// Output slot and the expression over the aggregate results (slot k = aggregate k).
    pub outputs: Vec<(usize, CExpr)>,
    /// The scope the output rows belong to (index into [`Plan::widths`]).
    pub out_scope: usize,
    /// `@timestamp` in the input rows, for `earliest`/`latest`.
    pub ts_slot: Option<usize>,
}

#[derive(Debug)]
pub(crate) enum Stage {
    Filter(CExpr),
    Assign(Vec<(usize, CExpr)>),
    Parse {
        source: usize,
        regex: Regex,
        /// (slot, capture group index)
        targets: Vec<(usize, usize)>,
    },
    Limit(u64),
    Sort {
        keys: Vec<(CExpr, bool)>,
        /// Keep only the first k rows (top-k) when what follows allows it.
        k: Option<usize>,
    },
    Dedup {
        keys: Vec<usize>,
        /// Without an earlier sort, order by this `@timestamp` slot descending first (A29).
        presort: Option<usize>,
    },
    Stats(StatsPlan),
}

/// Equality conjuncts on indexed fields, pushed into the store's `WHERE`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pushdown {
    pub user_sub: Option<Vec<String>>,
    pub feature: Option<Vec<String>>,
    pub request_id: Option<Vec<String>>,
}

/// A query ready to run.
#[derive(Debug)]
pub struct Plan {
    pub(crate) stages: Vec<Stage>,
    /// Event fields the store must load, with their slots.
    pub event_fields: Vec<(String, usize)>,
    /// Row width per scope (scope 0 = events; one more per `stats`).
    pub(crate) widths: Vec<usize>,
    /// Output columns of the final scope: name and slot.
    pub(crate) output: Vec<(String, usize)>,
    /// Whether rows carry `@ptr` (queries without `stats`).
    pub(crate) with_ptr: bool,
    /// Stop after this many result rows.
    pub(crate) result_limit: usize,
    /// Whether event order matters (no `stats` before a `limit`): scan newest first.
    pub ordered: bool,
    pub pushdown: Pushdown,
    /// Stage index where an event counts as matched (the first `stats`, or the end).
    pub(crate) match_point: usize,
}

struct Scope {
    slots: HashMap<String, usize>,
    width: usize,
    /// Scope 0: any name is an event field.
    open: bool,
    /// `stats` output columns, in order.
    base: Vec<String>,
    /// Columns named by `fields` commands, in order.
    fields: Vec<String>,
    display: Option<Vec<String>>,
    sorted: bool,
}

impl Scope {
    fn new(open: bool) -> Scope {
        Scope {
            slots: HashMap::new(),
            width: 0,
            open,
            base: Vec::new(),
            fields: Vec::new(),
            display: None,
            sorted: false,
        }
    }

    fn define(&mut self, name: &str) -> usize {
        if let Some(s) = self.slots.get(name) {
            return *s;
        }
        let s = self.width;
        self.width += 1;
        self.slots.insert(name.to_string(), s);
        s
    }
}

struct Planner {
    scopes: Vec<Scope>,
    event_fields: Vec<(String, usize)>,
}

fn plan_err(msg: impl Into<String>) -> InsightsError {
    InsightsError::Plan(msg.into())
}

impl Planner {
    fn scope(&mut self) -> &mut Scope {
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    /// The slot a reference to `name` reads.
    fn lookup(&mut self, name: &str) -> Result<usize, InsightsError> {
        let scope_index = self.scopes.len() - 1;
        let scope = self.scope();
        if let Some(s) = scope.slots.get(name) {
            return Ok(*s);
        }
        if scope.open {
            let s = scope.define(name);
            if scope_index == 0 {
                self.event_fields.push((name.to_string(), s));
            }
            return Ok(s);
        }
        let mut known: Vec<&str> = scope.slots.keys().map(String::as_str).collect();
        known.sort_unstable();
        Err(plan_err(format!(
            "field {name:?} does not exist after stats; available: {}",
            known.join(", ")
        )))
    }

    fn compile(&mut self, e: &Expr) -> Result<CExpr, InsightsError> {
        Ok(match e {
            Expr::Field(name) => CExpr::Slot(self.lookup(name)?),
            Expr::Str(s) => CExpr::Const(Value::Str(s.clone())),
            Expr::Int(i) => CExpr::Const(Value::Int(*i)),
            Expr::Float(f) => CExpr::Const(Value::Float(*f)),
            Expr::Period { amount, unit } => {
                return Err(plan_err(format!(
                    "the period {amount}{unit} can only be an argument of bin, datefloor or dateceil"
                )));
            }
            Expr::Regex(_) => {
                return Err(plan_err(
                    "a regex can only follow like or =~, or be a parse pattern",
                ));
            }
            Expr::Star => return Err(plan_err("'*' is only valid in count(*)")),
            Expr::Neg(x) => CExpr::Neg(Box::new(self.compile(x)?)),
            Expr::Not(x) => CExpr::Not(Box::new(self.compile(x)?)),
            Expr::Binary { op, lhs, rhs } => {
                let (l, r) = (Box::new(self.compile(lhs)?), Box::new(self.compile(rhs)?));
                match op {
                    BinaryOp::And => CExpr::And(l, r),
                    BinaryOp::Or => CExpr::Or(l, r),
                    BinaryOp::Eq
                    | BinaryOp::Ne
                    | BinaryOp::Lt
                    | BinaryOp::Le
                    | BinaryOp::Gt
                    | BinaryOp::Ge => CExpr::Cmp(*op, l, r),
                    BinaryOp::Add
                    | BinaryOp::Sub
                    | BinaryOp::Mul
                    | BinaryOp::Div
                    | BinaryOp::Mod
                    | BinaryOp::Pow => CExpr::Arith(*op, l, r),
                }
            }
            Expr::Like {
                expr,
                pattern,
                negated,
            } => CExpr::Like {
                expr: Box::new(self.compile(expr)?),
                pattern: match &**pattern {
                    Expr::Regex(r) => Pattern::Regex(compile_regex(r)?),
                    Expr::Str(s) => Pattern::Substring(s.clone()),
                    other => Pattern::Dynamic(Box::new(self.compile(other)?)),
                },
                negated: *negated,
            },
            Expr::Matches { expr, regex } => CExpr::Like {
                expr: Box::new(self.compile(expr)?),
                pattern: match &**regex {
                    Expr::Regex(r) | Expr::Str(r) => Pattern::Regex(compile_regex(r)?),
                    _ => return Err(plan_err("=~ needs a regex such as /abc/")),
                },
                negated: false,
            },
            Expr::In {
                expr,
                list,
                negated,
            } => CExpr::In {
                expr: Box::new(self.compile(expr)?),
                list: list
                    .iter()
                    .map(|x| self.compile(x))
                    .collect::<Result<_, _>>()?,
                negated: *negated,
            },
            Expr::Call { name, args } => self.compile_call(name, args)?,
        })
    }

    fn compile_call(&mut self, name: &str, args: &[Expr]) -> Result<CExpr, InsightsError> {
        if AggKind::lookup(name).is_some() {
            return Err(plan_err(format!(
                "{name}() is an aggregate function: use it in stats"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if lower == "bin" {
            let [Expr::Period { amount, unit }] = args else {
                return Err(plan_err("bin takes one period, as in bin(5m)"));
            };
            let period = Period::new(*amount, unit, true).map_err(plan_err)?;
            let ts = self.lookup("@timestamp").map_err(|_| {
                plan_err(
                    "bin() needs @timestamp; after stats, bucket a propagated timestamp with \
                     datefloor(@t, 5m) or dateceil(@t, 5m)",
                )
            })?;
            return Ok(CExpr::Bin { period, ts });
        }
        if matches!(lower.as_str(), "jsonparse" | "jsonstringify") {
            return Err(InsightsError::Unsupported(format!("the function {name}()")));
        }
        let Some((func, min, max)) = Func::lookup(name) else {
            return Err(plan_err(format!("unknown function {name}()")));
        };
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(plan_err(format!(
                "{name}() takes {want} argument(s), got {}",
                args.len()
            )));
        }
        let mut period = None;
        let mut compiled = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            if i == 1
                && matches!(func, Func::DateFloor | Func::DateCeil)
                && let Expr::Period { amount, unit } = a
            {
                period = Some(Period::new(*amount, unit, false).map_err(plan_err)?);
                compiled.push(CExpr::Const(Value::Null));
                continue;
            }
            compiled.push(self.compile(a)?);
        }
        if matches!(func, Func::DateFloor | Func::DateCeil) && period.is_none() {
            return Err(plan_err(format!(
                "{name}() takes a timestamp and a period, as in {name}(@timestamp, 1h)"
            )));
        }
        Ok(CExpr::Call {
            func,
            args: compiled,
            period,
        })
    }

    /// A stats item: aggregates become slots of the aggregate-result row.
    fn compile_agg_item(
        &mut self,
        e: &Expr,
        aggs: &mut Vec<AggSpec>,
    ) -> Result<CExpr, InsightsError> {
        Ok(match e {
            Expr::Call { name, args } => {
                if let Some(kind) = AggKind::lookup(name) {
                    let spec = self.agg_spec(kind, name, args)?;
                    aggs.push(spec);
                    return Ok(CExpr::Slot(aggs.len() - 1));
                }
                // A scalar function over aggregates.
                let Some((func, min, max)) = Func::lookup(name) else {
                    return Err(plan_err(format!(
                        "unknown function {name}() in stats (aggregates: count, count_distinct, sum, avg, min, max, pct, stddev, earliest, latest, sortsFirst, sortsLast)"
                    )));
                };
                if args.len() < min
                    || args.len() > max
                    || matches!(func, Func::DateFloor | Func::DateCeil)
                {
                    return Err(plan_err(format!(
                        "{name}() cannot be applied to aggregates here"
                    )));
                }
                let args = args
                    .iter()
                    .map(|a| self.compile_agg_item(a, aggs))
                    .collect::<Result<_, _>>()?;
                CExpr::Call {
                    func,
                    args,
                    period: None,
                }
            }
            Expr::Field(name) => {
                return Err(plan_err(format!(
                    "field {name:?} must be inside an aggregate function in stats, or in its by clause"
                )));
            }
            Expr::Str(_) | Expr::Int(_) | Expr::Float(_) => self.compile(e)?,
            Expr::Neg(x) => CExpr::Neg(Box::new(self.compile_agg_item(x, aggs)?)),
            Expr::Binary { op, lhs, rhs } => {
                let l = Box::new(self.compile_agg_item(lhs, aggs)?);
                let r = Box::new(self.compile_agg_item(rhs, aggs)?);
                match op {
                    BinaryOp::Add
                    | BinaryOp::Sub
                    | BinaryOp::Mul
                    | BinaryOp::Div
                    | BinaryOp::Mod
                    | BinaryOp::Pow => CExpr::Arith(*op, l, r),
                    _ => {
                        return Err(plan_err(format!(
                            "'{}' cannot combine aggregates in stats",
                            op.symbol()
                        )));
                    }
                }
            }
            _ => {
                return Err(plan_err(format!(
                    "stats needs aggregate functions, not {e}"
                )));
            }
        })
    }

    fn agg_spec(
        &mut self,
        kind: AggKind,
        name: &str,
        args: &[Expr],
    ) -> Result<AggSpec, InsightsError> {
        let one = |p: &mut Planner| -> Result<CExpr, InsightsError> {
            match args {
                [a] if *a != Expr::Star => p.compile_no_agg(a),
                _ => Err(plan_err(format!("{name}() takes one field or expression"))),
            }
        };
        Ok(match kind {
            AggKind::Count => AggSpec {
                kind,
                arg: match args {
                    [] | [Expr::Star] => None,
                    [a] => Some(self.compile_no_agg(a)?),
                    _ => return Err(plan_err("count() takes *, or one field")),
                },
                pct: 0.0,
            },
            AggKind::Pct => {
                let [a, p] = args else {
                    return Err(plan_err(
                        "pct() takes a field and a percentile, as in pct(latencyMs, 99)",
                    ));
                };
                let p = match p {
                    Expr::Int(i) => *i as f64,
                    Expr::Float(f) => *f,
                    _ => {
                        return Err(plan_err(
                            "pct()'s percentile must be a number from 0 to 100",
                        ));
                    }
                };
                if !(0.0..=100.0).contains(&p) {
                    return Err(plan_err(
                        "pct()'s percentile must be a number from 0 to 100",
                    ));
                }
                AggSpec {
                    kind,
                    arg: Some(self.compile_no_agg(a)?),
                    pct: p,
                }
            }
            _ => AggSpec {
                kind,
                arg: Some(one(self)?),
                pct: 0.0,
            },
        })
    }

    fn compile_no_agg(&mut self, e: &Expr) -> Result<CExpr, InsightsError> {
        if contains_aggregate(e) {
            return Err(plan_err(format!(
                "aggregate functions cannot be nested: {e}"
            )));
        }
        self.compile(e)
    }
}

fn contains_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Call { name, args } => {
            AggKind::lookup(name).is_some() || args.iter().any(contains_aggregate)
        }
        Expr::Neg(x) | Expr::Not(x) => contains_aggregate(x),
        Expr::Binary { lhs, rhs, .. } => contains_aggregate(lhs) || contains_aggregate(rhs),
        Expr::Like { expr, pattern, .. } => contains_aggregate(expr) || contains_aggregate(pattern),
        Expr::Matches { expr, .. } => contains_aggregate(expr),
        Expr::In { expr, list, .. } => {
            contains_aggregate(expr) || list.iter().any(contains_aggregate)
        }
        _ => false,
    }
}

pub(crate) fn compile_regex(source: &str) -> Result<Regex, InsightsError> {
    Regex::new(source).map_err(|e| {
        let first = e.to_string();
        let brief = first.lines().last().unwrap_or("invalid").trim().to_string();
        plan_err(format!("regex /{source}/ is not supported: {brief}"))
    })
}

/// The regex a glob pattern stands for (A19): literal text exact, each `*` lazy except a
/// trailing one, unanchored.
pub(crate) fn glob_regex(glob: &str) -> String {
    let parts: Vec<&str> = glob.split('*').collect();
    let mut out = String::from("(?s)");
    for (i, part) in parts.iter().enumerate() {
        out.push_str(&regex::escape(part));
        if i + 1 < parts.len() {
            let trailing = i + 2 == parts.len() && parts[i + 1].is_empty();
            out.push_str(if trailing { "(.*)" } else { "(.*?)" });
        }
    }
    out
}

/// Plan `query` for a store; `result_limit` caps the rows returned.
pub fn plan(query: &Query, result_limit: usize) -> Result<Plan, InsightsError> {
    let mut p = Planner {
        scopes: vec![Scope::new(true)],
        event_fields: Vec::new(),
    };
    let ts = p.lookup("@timestamp")?;
    let ptr = p.lookup("@ptr")?;
    debug_assert_eq!((ts, ptr), (TS_SLOT, PTR_SLOT));

    validate(query)?;

    let mut stages = Vec::new();
    let mut match_point = None;
    for cmd in &query.commands {
        match cmd {
            Command::Filter(e) => {
                if contains_aggregate(e) {
                    return Err(plan_err("aggregate functions are only allowed in stats"));
                }
                let c = p.compile(e)?;
                stages.push(Stage::Filter(c));
            }
            Command::Fields(items) => {
                let mut assigns = Vec::new();
                for item in items {
                    if contains_aggregate(&item.expr) {
                        return Err(plan_err("aggregate functions are only allowed in stats"));
                    }
                    let name = item.name().to_string();
                    match &item.expr {
                        Expr::Field(f) if *f == name => {
                            p.lookup(f)?;
                        }
                        e => {
                            let c = p.compile(e)?;
                            let slot = p.scope().define(&name);
                            assigns.push((slot, c));
                        }
                    }
                    let scope = p.scope();
                    if !scope.fields.contains(&name) {
                        scope.fields.push(name);
                    }
                }
                if !assigns.is_empty() {
                    stages.push(Stage::Assign(assigns));
                }
            }
            Command::Display(names) => {
                for n in names {
                    p.lookup(n)?;
                }
                p.scope().display = Some(names.clone());
            }
            Command::Stats { aggregates, by } => {
                if match_point.is_none() {
                    match_point = Some(stages.len());
                }
                stages.push(Stage::Stats(plan_stats(&mut p, aggregates, by)?));
            }
            Command::Sort(keys) => {
                let mut compiled = Vec::new();
                for k in keys {
                    if contains_aggregate(&k.expr) {
                        return Err(plan_err("aggregate functions are only allowed in stats"));
                    }
                    compiled.push((p.compile(&k.expr)?, k.descending));
                }
                p.scope().sorted = true;
                stages.push(Stage::Sort {
                    keys: compiled,
                    k: None,
                });
            }
            Command::Limit(n) => stages.push(Stage::Limit(*n)),
            Command::Parse {
                field,
                pattern,
                aliases,
            } => {
                let source = p.lookup(field.as_deref().unwrap_or("@message"))?;
                let regex = match pattern {
                    ParsePattern::Glob(g) => compile_regex(&glob_regex(g))?,
                    ParsePattern::Regex(r) => compile_regex(r)?,
                };
                let mut targets = Vec::new();
                match pattern {
                    ParsePattern::Glob(_) => {
                        for (i, a) in aliases.iter().enumerate() {
                            targets.push((p.scope().define(a), i + 1));
                        }
                    }
                    ParsePattern::Regex(_) => {
                        for (i, name) in regex.capture_names().enumerate() {
                            if let Some(name) = name {
                                targets.push((p.scope().define(name), i));
                            }
                        }
                        if targets.is_empty() {
                            return Err(plan_err(
                                "a parse regex needs named groups such as (?<user>\\S+)",
                            ));
                        }
                    }
                }
                stages.push(Stage::Parse {
                    source,
                    regex,
                    targets,
                });
            }
            Command::Dedup(names) => {
                let keys = names
                    .iter()
                    .map(|n| p.lookup(n))
                    .collect::<Result<Vec<_>, _>>()?;
                let presort = if p.scope().sorted {
                    None
                } else {
                    p.scope().slots.get("@timestamp").copied()
                };
                stages.push(Stage::Dedup { keys, presort });
            }
            Command::Unsupported { name, .. } => {
                return Err(InsightsError::Unsupported(format!(
                    "the {name} command (it needs the hosted CloudWatch service)"
                )));
            }
        }
    }

    // Output columns of the final scope.
    let final_index = p.scopes.len() - 1;
    let columns: Vec<String> = {
        let scope = &p.scopes[final_index];
        if let Some(d) = &scope.display {
            d.clone()
        } else if !scope.open {
            let mut cols = scope.base.clone();
            for f in &scope.fields {
                if !cols.contains(f) {
                    cols.push(f.clone());
                }
            }
            cols
        } else if !scope.fields.is_empty() {
            scope.fields.clone()
        } else {
            vec!["@timestamp".to_string(), "@message".to_string()]
        }
    };
    let mut output = Vec::new();
    for c in columns {
        if output.iter().any(|(n, _)| *n == c) {
            continue;
        }
        let slot = p.lookup(&c)?;
        output.push((c, slot));
    }
    let with_ptr = final_index == 0;

    // Top-k for a sort whose rows are only cut or reshaped afterwards.
    let n = stages.len();
    for i in 0..n {
        if !matches!(stages[i], Stage::Sort { .. }) {
            continue;
        }
        let mut k = Some(result_limit);
        for next in &stages[i + 1..] {
            match next {
                Stage::Assign(_) | Stage::Parse { .. } => continue,
                Stage::Limit(l) => {
                    k = Some(usize::try_from(*l).unwrap_or(usize::MAX).min(result_limit));
                    break;
                }
                _ => {
                    k = None;
                    break;
                }
            }
        }
        if let Stage::Sort { k: slot, .. } = &mut stages[i] {
            *slot = k;
        }
    }

    let first_stats = stages.iter().position(|s| matches!(s, Stage::Stats(_)));
    let first_limit = stages.iter().position(|s| matches!(s, Stage::Limit(_)));
    let ordered = match (first_stats, first_limit) {
        (None, _) => true,
        (Some(s), Some(l)) => l < s,
        (Some(_), None) => false,
    };

    Ok(Plan {
        match_point: match_point.unwrap_or(stages.len()),
        stages,
        event_fields: p.event_fields,
        widths: p.scopes.iter().map(|s| s.width).collect(),
        output,
        with_ptr,
        result_limit,
        ordered,
        pushdown: pushdown(query),
    })
}

fn plan_stats(
    p: &mut Planner,
    aggregates: &[Item],
    by: &[Item],
) -> Result<StatsPlan, InsightsError> {
    let ts_slot = p.scope().slots.get("@timestamp").copied();
    let mut keys = Vec::new();
    for item in by {
        if contains_aggregate(&item.expr) {
            return Err(plan_err(
                "aggregate functions cannot be used in a by clause",
            ));
        }
        keys.push(p.compile(&item.expr)?);
    }
    let mut aggs = Vec::new();
    let mut out_exprs = Vec::new();
    for item in aggregates {
        let before = aggs.len();
        let e = p.compile_agg_item(&item.expr, &mut aggs)?;
        if aggs.len() == before {
            return Err(plan_err(format!(
                "stats item {} has no aggregate function",
                item.text
            )));
        }
        out_exprs.push(e);
    }
    let mut scope = Scope::new(false);
    let mut key_slots = Vec::new();
    for item in by {
        key_slots.push(scope.define(item.name()));
        scope.base.push(item.name().to_string());
    }
    let mut outputs = Vec::new();
    for (item, e) in aggregates.iter().zip(out_exprs) {
        outputs.push((scope.define(item.name()), e));
        if !scope.base.iter().any(|b| b == item.name()) {
            scope.base.push(item.name().to_string());
        }
    }
    p.scopes.push(scope);
    Ok(StatsPlan {
        keys,
        key_slots,
        aggs,
        outputs,
        out_scope: p.scopes.len() - 1,
        ts_slot,
    })
}

/// The structural rules: at most two stats; with two, sort/limit only after the second;
/// after dedup only limit.
fn validate(query: &Query) -> Result<(), InsightsError> {
    let stats: Vec<usize> = query
        .commands
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c, Command::Stats { .. }))
        .map(|(i, _)| i)
        .collect();
    if stats.len() > 2 {
        return Err(plan_err("a query can have at most two stats commands"));
    }
    if let [_, second] = stats[..] {
        let early = query.commands[..second]
            .iter()
            .any(|c| matches!(c, Command::Sort(_) | Command::Limit(_)));
        if early {
            return Err(plan_err(
                "with two stats commands, sort and limit must come after the second",
            ));
        }
    }
    if let Some(d) = query
        .commands
        .iter()
        .position(|c| matches!(c, Command::Dedup(_)))
    {
        let bad = query.commands[d + 1..]
            .iter()
            .any(|c| !matches!(c, Command::Limit(_)));
        if bad {
            return Err(plan_err("only limit may follow dedup"));
        }
    }
    Ok(())
}

/// Indexed-field equality from the leading filters, while nothing before has redefined the
/// field or cut the rows.
pub(crate) fn pushdown(query: &Query) -> Pushdown {
    let mut out = Pushdown::default();
    let mut redefined: Vec<String> = Vec::new();
    for cmd in &query.commands {
        match cmd {
            Command::Filter(e) => collect_pushdown(e, &redefined, &mut out),
            Command::Fields(items) => {
                redefined.extend(items.iter().map(|i| i.name().to_string()));
            }
            Command::Parse {
                pattern, aliases, ..
            } => match pattern {
                ParsePattern::Glob(_) => redefined.extend(aliases.iter().cloned()),
                ParsePattern::Regex(r) => {
                    // Be conservative: any name in the regex may be a group.
                    redefined.push(r.clone());
                    for f in ["userSub", "feature", "requestId"] {
                        if r.contains(f) {
                            redefined.push(f.to_string());
                        }
                    }
                }
            },
            Command::Display(_) | Command::Sort(_) => {}
            _ => break,
        }
    }
    out
}

fn collect_pushdown(e: &Expr, redefined: &[String], out: &mut Pushdown) {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            collect_pushdown(lhs, redefined, out);
            collect_pushdown(rhs, redefined, out);
        }
        Expr::Binary {
            op: BinaryOp::Eq,
            lhs,
            rhs,
        } => {
            let pair = match (&**lhs, &**rhs) {
                (Expr::Field(f), Expr::Str(s)) | (Expr::Str(s), Expr::Field(f)) => {
                    Some((f, vec![s.clone()]))
                }
                _ => None,
            };
            if let Some((f, values)) = pair {
                add_pushdown(f, values, redefined, out);
            }
        }
        Expr::In {
            expr,
            list,
            negated: false,
        } => {
            if let Expr::Field(f) = &**expr {
                let values: Option<Vec<String>> = list
                    .iter()
                    .map(|x| match x {
                        Expr::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                if let Some(values) = values {
                    add_pushdown(f, values, redefined, out);
                }
            }
        }
        _ => {}
    }
}

fn add_pushdown(field: &str, values: Vec<String>, redefined: &[String], out: &mut Pushdown) {
    if redefined.iter().any(|r| r == field) {
        return;
    }
    // A numeric-looking string also equals a number (A5/compare), which a text column
    // would miss: keep those in the engine only.
    if values
        .iter()
        .any(|v| super::value::parse_numeric_str(v).is_some())
    {
        return;
    }
    let slot = match field {
        "userSub" => &mut out.user_sub,
        "feature" => &mut out.feature,
        "requestId" => &mut out.request_id,
        _ => return,
    };
    *slot = Some(match slot.take() {
        // Two conjuncts on one field: the intersection.
        Some(prev) => prev.into_iter().filter(|v| values.contains(v)).collect(),
        None => values,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::parser::parse;

    fn plan_of(q: &str) -> Result<Plan, InsightsError> {
        plan(&parse(q).unwrap(), 10_000)
    }

    #[test]
    fn pushdown_takes_leading_equalities_only() {
        let p =
            plan_of("filter userSub = \"u1\" and feature in [\"a\", \"b\"] | fields x").unwrap();
        assert_eq!(p.pushdown.user_sub, Some(vec!["u1".into()]));
        assert_eq!(p.pushdown.feature, Some(vec!["a".into(), "b".into()]));
        let p = plan_of("filter userSub = \"u1\" or feature = \"a\"").unwrap();
        assert_eq!(p.pushdown, Pushdown::default());
        let p = plan_of("fields feature as userSub | filter userSub = \"u1\"").unwrap();
        assert_eq!(p.pushdown.user_sub, None);
        let p = plan_of("limit 5 | filter userSub = \"u1\"").unwrap();
        assert_eq!(p.pushdown.user_sub, None);
        let p = plan_of("filter requestId = \"123\"").unwrap();
        assert_eq!(p.pushdown.request_id, None);
    }

    #[test]
    fn rules_are_enforced() {
        for (q, msg) in [
            (
                "stats count(*) | stats count(*) | stats count(*)",
                "at most two",
            ),
            (
                "stats count(*) as c by a | sort c | stats max(c)",
                "after the second",
            ),
            ("dedup a | fields b", "only limit"),
            ("filter count(*) > 1", "only allowed in stats"),
            ("stats x by y", "inside an aggregate"),
            (
                "stats count(*) by a | filter b = 1",
                "does not exist after stats",
            ),
            ("fields nosuch(a)", "unknown function"),
            ("fields substr(a)", "takes 2 to 3"),
            ("stats pct(a, 101)", "0 to 100"),
            ("filter a =~ /(?<=x)y/", "not supported"),
            (
                "stats count(*) as c by userSub | stats count(*) by bin(1h)",
                "datefloor",
            ),
        ] {
            let e = plan_of(q).unwrap_err().to_string();
            assert!(e.contains(msg), "{q}: {e}");
        }
        let e = plan_of("pattern @message").unwrap_err();
        assert!(matches!(e, InsightsError::Unsupported(_)), "{e}");
        assert!(
            e.to_string()
                .contains("not supported on the embedded backend"),
            "{e}"
        );
    }

    #[test]
    fn output_columns() {
        let cols = |q: &str| -> Vec<String> {
            plan_of(q)
                .unwrap()
                .output
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(cols("filter a = 1"), ["@timestamp", "@message"]);
        assert_eq!(cols("fields a | fields b, a"), ["a", "b"]);
        assert_eq!(cols("fields a, b | display b"), ["b"]);
        assert_eq!(cols("stats count(*) by bin(5m)"), ["bin(5m)", "count(*)"]);
        assert_eq!(
            cols("stats count(*) as n by userSub | fields n * 2 as m"),
            ["userSub", "n", "m"]
        );
    }

    #[test]
    fn glob_translation() {
        assert_eq!(glob_regex("a=*, b=*"), "(?s)a=(.*?), b=(.*)");
        assert_eq!(glob_regex("[*]"), "(?s)\\[(.*?)\\]");
    }
}
