//! Parser properties: it never panics, whatever the input; and printing a tree then parsing
//! the text gives the same tree, both for generated trees and for parsed inputs.

use gateway::insights::ast::{BinaryOp, Command, Expr, Item, ParsePattern, Query, SortKey};
use gateway::insights::parse;
use gateway::insights::parser::PERIOD_UNITS;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_.]{0,8}",
        "@[a-zA-Z][a-zA-Z0-9]{0,5}",
        "@@[a-z]{1,4}",
        Just("by".to_string()),
        Just("DESC".to_string()),
        Just("not".to_string()),
        "[a-z]{1,3}[- :`#|]{1,2}[a-z0-9]{0,3}",
        "@[a-z]{1,3}[-`]{1,2}",
        "[0-9][a-z]{0,3}",
        "\\PC{1,6}",
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z *\"'\\\\#|]{0,8}",
        "\\PC{0,8}",
        Just("line\nbreak\t".to_string())
    ]
}

fn regex_source() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z.*+?()\\[\\] |#\"']{0,8}",
        Just("(?i)abc\\/def".to_string()),
        Just("(?<user>\\S+)".to_string()),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        name().prop_map(Expr::Field),
        string().prop_map(Expr::Str),
        (0i64..=i64::MAX).prop_map(Expr::Int),
        (0.0f64..1e12).prop_map(Expr::Float),
        (1u64..1000, proptest::sample::select(PERIOD_UNITS)).prop_map(|(amount, unit)| {
            Expr::Period {
                amount,
                unit: unit.to_string(),
            }
        }),
    ]
}

fn op() -> impl Strategy<Value = BinaryOp> {
    proptest::sample::select(vec![
        BinaryOp::Or,
        BinaryOp::And,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Mod,
        BinaryOp::Pow,
    ])
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Neg(Box::new(e))),
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r)
            }),
            (
                inner.clone(),
                prop_oneof![
                    regex_source().prop_map(Expr::Regex),
                    string().prop_map(Expr::Str),
                    inner.clone()
                ],
                any::<bool>()
            )
                .prop_map(|(e, p, negated)| Expr::Like {
                    expr: Box::new(e),
                    pattern: Box::new(p),
                    negated
                }),
            (inner.clone(), regex_source()).prop_map(|(e, r)| Expr::Matches {
                expr: Box::new(e),
                regex: Box::new(Expr::Regex(r))
            }),
            (
                inner.clone(),
                proptest::collection::vec(inner.clone(), 0..3),
                any::<bool>()
            )
                .prop_map(|(e, list, negated)| Expr::In {
                    expr: Box::new(e),
                    list,
                    negated
                }),
            (
                proptest::sample::select(vec!["count", "COUNT", "bin", "concat", "x_1", "pct"]),
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..3),
                    Just(vec![Expr::Star])
                ]
            )
                .prop_map(|(n, args)| Expr::Call {
                    name: n.to_string(),
                    args
                }),
        ]
    })
}

/// Expressions whose text survives being lexed without regex context (unsupported commands).
fn plain_expr() -> impl Strategy<Value = Expr> {
    expr().prop_filter("no regex", |e| !format!("{e:?}").contains("Regex("))
}

fn items() -> impl Strategy<Value = Vec<Item>> {
    proptest::collection::vec(
        (expr(), proptest::option::of(name())).prop_map(|(e, a)| Item::new(e, a)),
        1..3,
    )
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        items().prop_map(Command::Fields),
        proptest::collection::vec(name(), 1..3).prop_map(Command::Display),
        expr().prop_map(Command::Filter),
        (items(), prop_oneof![Just(Vec::new()), items()])
            .prop_map(|(aggregates, by)| Command::Stats { aggregates, by }),
        proptest::collection::vec(
            (expr(), any::<bool>()).prop_map(|(expr, descending)| SortKey { expr, descending }),
            1..3
        )
        .prop_map(Command::Sort),
        (0u64..=i64::MAX as u64).prop_map(Command::Limit),
        (
            proptest::option::of(name()),
            proptest::collection::vec(name(), 1..3),
            string()
        )
            .prop_map(|(field, aliases, lit)| {
                let glob = aliases
                    .iter()
                    .map(|_| format!("{}*", lit.replace('*', "")))
                    .collect::<String>();
                Command::Parse {
                    field,
                    pattern: ParsePattern::Glob(glob),
                    aliases,
                }
            }),
        (proptest::option::of(name()), regex_source()).prop_map(|(field, r)| Command::Parse {
            field,
            pattern: ParsePattern::Regex(r),
            aliases: Vec::new(),
        }),
        proptest::collection::vec(name(), 1..3).prop_map(Command::Dedup),
        (
            proptest::sample::select(vec!["pattern", "ANOMALY", "diff", "filterIndex"]),
            proptest::option::of(plain_expr())
        )
            .prop_map(|(n, args)| Command::Unsupported {
                name: n.to_string(),
                args: args.map(|e| e.to_string()).unwrap_or_default(),
            }),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    proptest::collection::vec(command(), 0..5).prop_map(|commands| Query { commands })
}

/// Text that looks like queries: keywords, operators, quotes, comments, backticks.
fn query_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(vec![
                "fields ",
                "filter ",
                "stats ",
                "sort ",
                "limit ",
                "parse ",
                "dedup ",
                "display ",
                "by ",
                "as ",
                "and ",
                "or ",
                "not ",
                "in ",
                "like ",
                "desc",
                "|",
                ",",
                "(",
                ")",
                "[",
                "]",
                "=",
                "!=",
                "<=",
                ">",
                "=~",
                "+",
                "-",
                "*",
                "/",
                "%",
                "^",
                "\"",
                "'",
                "`",
                "#",
                "\n",
                " ",
                "@timestamp",
                "count(*)",
                "bin(5m)",
                "5m",
                "1.5",
                "42",
                "/re/",
                "x",
                "@",
                ".",
                "0"
            ])
            .prop_map(str::to_string),
            "\\PC{0,3}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,80}") {
        let _ = parse(&s);
    }

    #[test]
    fn never_panics_on_query_like_text(s in query_like()) {
        if let Ok(q) = parse(&s) {
            let printed = q.to_string();
            let again = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
            prop_assert_eq!(q, again);
        }
    }

    #[test]
    fn print_then_parse_is_identity(q in query()) {
        let printed = q.to_string();
        let parsed = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
        prop_assert_eq!(q, parsed, "{}", printed);
    }
}

#[test]
fn error_positions_point_at_the_problem() {
    let e = parse("fields @timestamp\n| stats count(*) by\n| sort x").unwrap_err();
    assert_eq!((e.line, e.column), (3, 1));
    assert_eq!(e.expected, "an expression");
    assert_eq!(e.found, "'|'");
}
