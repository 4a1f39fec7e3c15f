//! The Logs Insights syntax tree and its printer. Printing a parsed query and parsing the text
//! again gives the same tree (`print ∘ parse = id`), which the property tests check.

use std::fmt::{self, Display, Formatter, Write as _};

/// A whole query: commands separated by `|`, run in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub commands: Vec<Command>,
}

/// One pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `fields a, expr as b`
    Fields(Vec<Item>),
    /// `display a, b`
    Display(Vec<String>),
    /// `filter expr` (also spelled `where`)
    Filter(Expr),
    /// `stats agg [as x], ... [by expr [as y], ...]`
    Stats {
        aggregates: Vec<Item>,
        by: Vec<Item>,
    },
    /// `sort key [asc|desc], ...`
    Sort(Vec<SortKey>),
    /// `limit n`
    Limit(u64),
    /// `parse [field] "glob" as a, b` or `parse [field] /regex with (?<name>…)/`
    Parse {
        /// `None` means `@message`.
        field: Option<String>,
        pattern: ParsePattern,
        aliases: Vec<String>,
    },
    /// `dedup a, b`
    Dedup(Vec<String>),
    /// A command of the language the embedded backend cannot run (`pattern`, `anomaly`,
    /// `diff`, `unmask`, …), kept with its argument text so a hosted backend could.
    Unsupported { name: String, args: String },
}

/// An expression with an optional alias; `text` is how it was written (whitespace runs and
/// comments collapsed to one space), which names the column when there is no alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub expr: Expr,
    pub alias: Option<String>,
    pub text: String,
}

impl Item {
    /// An item whose text is the printed expression.
    pub fn new(expr: Expr, alias: Option<String>) -> Item {
        let text = expr.to_string();
        Item { expr, alias, text }
    }

    /// The column this item produces.
    pub fn name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParsePattern {
    /// `*` placeholders, literal text otherwise.
    Glob(String),
    /// The regex source between the slashes, as written.
    Regex(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
        }
    }

    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => 4,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 6,
            BinaryOp::Pow => 8,
        }
    }
}

/// Precedence levels used by the parser and the printer.
pub(crate) const PREC_NOT: u8 = 3;
pub(crate) const PREC_CMP: u8 = 4;
pub(crate) const PREC_NEG: u8 = 7;
pub(crate) const PREC_ATOM: u8 = 9;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A field name (backticks removed).
    Field(String),
    Str(String),
    Int(i64),
    Float(f64),
    /// A time period such as `5m` or `1h`: the number and the unit as written.
    Period {
        amount: u64,
        unit: String,
    },
    /// The source between `/…/`.
    Regex(String),
    /// `*` in `count(*)`.
    Star,
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `a like "x"`, `a like /re/`, `a not like …`
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
    },
    /// `a =~ /re/`
    Matches {
        expr: Box<Expr>,
        regex: Box<Expr>,
    },
    /// `a in [x, y]`, `a not in [...]`
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `name(args)`; the name as written (functions are matched case-insensitively).
    Call {
        name: String,
        args: Vec<Expr>,
    },
}

impl Expr {
    pub fn precedence(&self) -> u8 {
        match self {
            Expr::Binary { op, .. } => op.precedence(),
            Expr::Not(_) => PREC_NOT,
            Expr::Like { .. } | Expr::Matches { .. } | Expr::In { .. } => PREC_CMP,
            Expr::Neg(_) => PREC_NEG,
            Expr::Int(i) if *i < 0 => PREC_NEG,
            Expr::Float(f) if f.is_sign_negative() => PREC_NEG,
            _ => PREC_ATOM,
        }
    }
}

/// Words that cannot be bare field names (they need backticks).
pub const KEYWORDS: &[&str] = &["and", "or", "not", "in", "like", "as", "by", "asc", "desc"];

/// Whether `name` can be written without backticks.
pub fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '@') {
        return false;
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.')
    {
        return false;
    }
    if name.ends_with('.') || name == "@" {
        return false;
    }
    !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name))
}

/// A field name as it must be written.
pub fn quote_name(name: &str) -> String {
    if is_plain_name(name) {
        return name.to_string();
    }
    let (at, rest) = match name.strip_prefix('@') {
        Some(rest) if !rest.is_empty() && !rest.starts_with('@') => ("@", rest),
        _ => ("", name),
    };
    format!("{at}`{}`", rest.replace('`', "``"))
}

/// A string literal in double quotes with `\` escapes.
pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_child(f: &mut Formatter<'_>, child: &Expr, min_prec: u8) -> fmt::Result {
    if child.precedence() < min_prec {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Field(name) => f.write_str(&quote_name(name)),
            Expr::Str(s) => f.write_str(&quote_string(s)),
            Expr::Int(i) => write!(f, "{i}"),
            Expr::Float(x) => {
                let text = format!("{x}");
                if text.contains('.') || !x.is_finite() {
                    f.write_str(&text)
                } else {
                    write!(f, "{text}.0")
                }
            }
            Expr::Period { amount, unit } => write!(f, "{amount}{unit}"),
            Expr::Regex(re) => write!(f, "/{re}/"),
            Expr::Star => f.write_str("*"),
            Expr::Neg(e) => {
                f.write_str("-")?;
                // `--x` would read as two minus tokens anyway; keep a space for clarity.
                if matches!(**e, Expr::Neg(_)) || e.precedence() == PREC_NEG {
                    f.write_str(" ")?;
                }
                write_child(f, e, PREC_NEG)
            }
            Expr::Not(e) => {
                f.write_str("not ")?;
                write_child(f, e, PREC_NOT)
            }
            Expr::Binary { op, lhs, rhs } => {
                let p = op.precedence();
                let (lp, rp) = match op {
                    BinaryOp::Pow => (p + 1, p),
                    // Comparisons do not chain: both sides bind tighter.
                    _ if p == PREC_CMP => (p + 1, p + 1),
                    _ => (p, p + 1),
                };
                write_child(f, lhs, lp)?;
                write!(f, " {} ", op.symbol())?;
                write_child(f, rhs, rp)
            }
            Expr::Like {
                expr,
                pattern,
                negated,
            } => {
                write_child(f, expr, PREC_CMP + 1)?;
                f.write_str(if *negated { " not like " } else { " like " })?;
                write_child(f, pattern, PREC_CMP + 1)
            }
            Expr::Matches { expr, regex } => {
                write_child(f, expr, PREC_CMP + 1)?;
                f.write_str(" =~ ")?;
                write_child(f, regex, PREC_CMP + 1)
            }
            Expr::In {
                expr,
                list,
                negated,
            } => {
                write_child(f, expr, PREC_CMP + 1)?;
                f.write_str(if *negated { " not in [" } else { " in [" })?;
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                for (i, e) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
        }
    }
}

fn write_items(out: &mut String, items: &[Item]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item.text);
        if let Some(alias) = &item.alias {
            let _ = write!(out, " as {}", quote_name(alias));
        }
    }
}

fn write_names(out: &mut String, names: &[String]) {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&quote_name(n));
    }
}

impl Display for Command {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        match self {
            Command::Fields(items) => {
                out.push_str("fields ");
                write_items(&mut out, items);
            }
            Command::Display(names) => {
                out.push_str("display ");
                write_names(&mut out, names);
            }
            Command::Filter(e) => {
                let _ = write!(out, "filter {e}");
            }
            Command::Stats { aggregates, by } => {
                out.push_str("stats ");
                write_items(&mut out, aggregates);
                if !by.is_empty() {
                    out.push_str(" by ");
                    write_items(&mut out, by);
                }
            }
            Command::Sort(keys) => {
                out.push_str("sort ");
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(
                        out,
                        "{} {}",
                        k.expr,
                        if k.descending { "desc" } else { "asc" }
                    );
                }
            }
            Command::Limit(n) => {
                let _ = write!(out, "limit {n}");
            }
            Command::Parse {
                field,
                pattern,
                aliases,
            } => {
                out.push_str("parse ");
                if let Some(field) = field {
                    out.push_str(&quote_name(field));
                    out.push(' ');
                }
                match pattern {
                    ParsePattern::Glob(g) => out.push_str(&quote_string(g)),
                    ParsePattern::Regex(r) => {
                        let _ = write!(out, "/{r}/");
                    }
                }
                if !aliases.is_empty() {
                    out.push_str(" as ");
                    write_names(&mut out, aliases);
                }
            }
            Command::Dedup(names) => {
                out.push_str("dedup ");
                write_names(&mut out, names);
            }
            Command::Unsupported { name, args } => {
                out.push_str(name);
                if !args.is_empty() {
                    out.push(' ');
                    out.push_str(args);
                }
            }
        }
        f.write_str(&out)
    }
}

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, c) in self.commands.iter().enumerate() {
            if i > 0 {
                f.write_str("\n| ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}
