//! The Logs Insights lexer and recursive-descent parser: query text to [`Query`], or a
//! [`ParseError`] that says where (line, column) and what was expected.
//!
//! The lexer is driven by the parser because `/` means division in an expression but starts a
//! regex after `like`, `=~` and in `parse`. Keywords are case-insensitive; field names are not.

use std::fmt;

use super::ast::{BinaryOp, Command, Expr, Item, KEYWORDS, ParsePattern, Query, SortKey};

/// Where a query stops making sense, and what would have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What the parser expected there.
    pub expected: String,
    /// What it found instead.
    pub found: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: expected {}, found {}",
            self.line, self.column, self.expected, self.found
        )
    }
}

/// The commands the embedded engine knows but cannot run.
const UNSUPPORTED: &[&str] = &[
    "pattern",
    "anomaly",
    "diff",
    "unmask",
    "filterindex",
    "source",
    "unnest",
    "lookup",
    "logcompare",
    "addtotals",
];

/// The valid time units of a period literal (`5m`, `1h`), lower-case.
pub const PERIOD_UNITS: &[&str] = &[
    "ms",
    "msec",
    "msecs",
    "millisecond",
    "milliseconds",
    "s",
    "sec",
    "secs",
    "second",
    "seconds",
    "m",
    "min",
    "mins",
    "minute",
    "minutes",
    "h",
    "hr",
    "hrs",
    "hour",
    "hours",
    "d",
    "day",
    "days",
    "w",
    "week",
    "weeks",
    "mo",
    "mon",
    "mons",
    "month",
    "months",
    "q",
    "qtr",
    "qtrs",
    "quarter",
    "quarters",
    "y",
    "yr",
    "yrs",
    "year",
    "years",
];

/// How deeply an expression may nest: parentheses, `not`, unary minus, `^`, calls and `in`
/// lists each open a level of the parser's recursion (about 25 KB of stack per level in a debug
/// build, where one level passes through every precedence function).
pub const MAX_NESTING: usize = 20;

/// How deep an expression's tree may be: every operator adds a level (`a and b and c` is three
/// deep), though a flat chain costs the parser no recursion. Every later pass over the tree
/// (planning, printing, evaluating, dropping) recurses once per level, so this bounds their
/// stack. A query at both limits parses, plans, prints, runs and drops on a 1 MiB stack in a
/// debug build (`deepest_allowed_query_runs_on_a_small_stack`); the product parses on 2 MiB
/// or more.
pub const MAX_DEPTH: usize = 100;

/// Parse a whole query.
pub fn parse(src: &str) -> Result<Query, ParseError> {
    let mut p = Parser {
        src,
        pos: 0,
        nesting: 0,
    };
    let mut commands = Vec::new();
    if p.peek(false)?.kind == Tok::Eof {
        return Ok(Query { commands });
    }
    loop {
        commands.push(p.command()?);
        let t = p.peek(false)?;
        match t.kind {
            Tok::Eof => break,
            Tok::Pipe => {
                p.bump(false)?;
            }
            _ => return Err(p.error_at(&t, "'|' or the end of the query")),
        }
    }
    Ok(Query { commands })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident { name: String, quoted: bool },
    Int(i64),
    Float(f64),
    Period(u64, String),
    Str(String),
    Regex(String),
    Pipe,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    start: usize,
    end: usize,
    /// Whitespace or a comment came before it.
    gap: bool,
}

impl Token {
    fn keyword(&self) -> Option<String> {
        match &self.kind {
            Tok::Ident {
                name,
                quoted: false,
            } => Some(name.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(&self.kind, Tok::Ident { name, quoted: false } if name.eq_ignore_ascii_case(word))
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// How many levels of the expression grammar's recursion are open.
    nesting: usize,
}

/// An expression and the depth of its tree (a leaf is 1).
type Sub = (Expr, usize);

fn describe(src: &str, t: &Token) -> String {
    let text: String = src[t.start..t.end].chars().take(40).collect();
    match &t.kind {
        Tok::Eof => "the end of the query".into(),
        Tok::Ident {
            name,
            quoted: false,
        } if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) => {
            format!("keyword '{text}'")
        }
        Tok::Ident { .. } => format!("name '{text}'"),
        Tok::Int(_) | Tok::Float(_) => format!("number {text}"),
        Tok::Period(..) => format!("period {text}"),
        Tok::Str(_) => format!("string {text}"),
        Tok::Regex(_) => format!("regex {text}"),
        _ => format!("'{text}'"),
    }
}

impl<'a> Parser<'a> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.src[..offset.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn error_at(&self, t: &Token, expected: &str) -> ParseError {
        let (line, column) = self.position(t.start);
        ParseError {
            line,
            column,
            expected: expected.into(),
            found: describe(self.src, t),
        }
    }

    fn error_offset(&self, offset: usize, expected: &str, found: &str) -> ParseError {
        let (line, column) = self.position(offset);
        ParseError {
            line,
            column,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Skip whitespace and `#` comments; returns the offset after them.
    fn skip_trivia(&self, mut i: usize) -> usize {
        let bytes = self.src.as_bytes();
        while i < bytes.len() {
            match bytes[i] {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                _ => {
                    // Other Unicode whitespace counts too.
                    match self.src[i..].chars().next() {
                        Some(c) if c.is_whitespace() => i += c.len_utf8(),
                        _ => break,
                    }
                }
            }
        }
        i
    }

    fn peek(&self, regex_ok: bool) -> Result<Token, ParseError> {
        self.lex(self.pos, regex_ok)
    }

    fn bump(&mut self, regex_ok: bool) -> Result<Token, ParseError> {
        let t = self.lex(self.pos, regex_ok)?;
        self.pos = t.end;
        Ok(t)
    }

    fn lex(&self, from: usize, regex_ok: bool) -> Result<Token, ParseError> {
        let start = self.skip_trivia(from);
        let gap = start > from;
        let rest = &self.src[start..];
        let Some(c) = rest.chars().next() else {
            return Ok(Token {
                kind: Tok::Eof,
                start,
                end: start,
                gap,
            });
        };
        let tok = |kind: Tok, len: usize| Token {
            kind,
            start,
            end: start + len,
            gap,
        };
        let two = rest.get(..2).unwrap_or("");
        Ok(match c {
            '|' => tok(Tok::Pipe, 1),
            ',' => tok(Tok::Comma, 1),
            '(' => tok(Tok::LParen, 1),
            ')' => tok(Tok::RParen, 1),
            '[' => tok(Tok::LBracket, 1),
            ']' => tok(Tok::RBracket, 1),
            '+' => tok(Tok::Plus, 1),
            '-' => tok(Tok::Minus, 1),
            '*' => tok(Tok::Star, 1),
            '%' => tok(Tok::Percent, 1),
            '^' => tok(Tok::Caret, 1),
            '=' if two == "=~" => tok(Tok::Match, 2),
            '=' if two == "==" => tok(Tok::Eq, 2),
            '=' => tok(Tok::Eq, 1),
            '!' if two == "!=" => tok(Tok::Ne, 2),
            '<' if two == "<=" => tok(Tok::Le, 2),
            '<' if two == "<>" => tok(Tok::Ne, 2),
            '<' => tok(Tok::Lt, 1),
            '>' if two == ">=" => tok(Tok::Ge, 2),
            '>' => tok(Tok::Gt, 1),
            '/' if regex_ok => {
                let (text, len) = self.lex_regex(start)?;
                tok(Tok::Regex(text), len)
            }
            '/' => tok(Tok::Slash, 1),
            '"' | '\'' => {
                let (text, len) = self.lex_string(start, c)?;
                tok(Tok::Str(text), len)
            }
            '0'..='9' => self.lex_number(start, gap)?,
            c if c.is_ascii_alphabetic() || c == '_' || c == '@' || c == '`' => {
                let (name, quoted, len) = self.lex_name(start)?;
                tok(Tok::Ident { name, quoted }, len)
            }
            _ => {
                return Err(self.error_offset(
                    start,
                    "a command, field, value or operator",
                    &format!("'{c}'"),
                ));
            }
        })
    }

    fn lex_regex(&self, start: usize) -> Result<(String, usize), ParseError> {
        let body = &self.src[start + 1..];
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '/' => return Ok((body[..i].to_string(), i + 2)),
                _ => {}
            }
        }
        Err(self.error_offset(
            self.src.len(),
            "'/' closing the regex",
            "the end of the query",
        ))
    }

    fn lex_string(&self, start: usize, quote: char) -> Result<(String, usize), ParseError> {
        let body = &self.src[start + 1..];
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                return Ok((out, i + 2));
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, e)) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err(self.error_offset(
            self.src.len(),
            &format!("{quote} closing the string"),
            "the end of the query",
        ))
    }

    fn lex_number(&self, start: usize, gap: bool) -> Result<Token, ParseError> {
        let bytes = self.src.as_bytes();
        let mut i = start;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let mut is_float = false;
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            is_float = true;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        let digits = &self.src[start..i];
        // A period literal: digits immediately followed by a unit (`5m`, `100ms`).
        let unit_end = {
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_alphabetic() {
                j += 1;
            }
            j
        };
        if unit_end > i {
            let unit = &self.src[i..unit_end];
            if is_float {
                return Err(self.error_offset(
                    start,
                    "a whole number of time units",
                    &format!("'{}'", &self.src[start..unit_end]),
                ));
            }
            if !PERIOD_UNITS.contains(&unit.to_ascii_lowercase().as_str()) {
                return Err(self.error_offset(
                    i,
                    "a time unit (ms, s, m, h, d, w, mo, q, y)",
                    &format!("'{unit}'"),
                ));
            }
            let amount: u64 = digits.parse().map_err(|_| {
                self.error_offset(start, "a smaller period", &format!("'{digits}'"))
            })?;
            return Ok(Token {
                kind: Tok::Period(amount, unit.to_string()),
                start,
                end: unit_end,
                gap,
            });
        }
        let kind =
            if is_float {
                Tok::Float(
                    digits.parse().map_err(|_| {
                        self.error_offset(start, "a number", &format!("'{digits}'"))
                    })?,
                )
            } else {
                match digits.parse::<i64>() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => Tok::Float(digits.parse().map_err(|_| {
                        self.error_offset(start, "a number", &format!("'{digits}'"))
                    })?),
                }
            };
        Ok(Token {
            kind,
            start,
            end: i,
            gap,
        })
    }

    /// A name: plain characters and backtick-quoted parts, concatenated.
    fn lex_name(&self, start: usize) -> Result<(String, bool, usize), ParseError> {
        let mut name = String::new();
        let mut quoted = false;
        let mut i = start;
        let src = self.src;
        while let Some(c) = src[i..].chars().next() {
            if c == '`' {
                quoted = true;
                let mut j = i + 1;
                loop {
                    match src[j..].chars().next() {
                        None => {
                            return Err(self.error_offset(
                                src.len(),
                                "'`' closing the name",
                                "the end of the query",
                            ));
                        }
                        Some('`') if src[j + 1..].starts_with('`') => {
                            name.push('`');
                            j += 2;
                        }
                        Some('`') => {
                            j += 1;
                            break;
                        }
                        Some(c) => {
                            name.push(c);
                            j += c.len_utf8();
                        }
                    }
                }
                i = j;
            } else if c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.' {
                name.push(c);
                i += 1;
            } else {
                break;
            }
        }
        Ok((name, quoted, i - start))
    }

    // -----------------------------------------------------------------------------------------
    // Commands.

    fn command(&mut self) -> Result<Command, ParseError> {
        let t = self.bump(false)?;
        let Some(word) = t.keyword() else {
            return Err(self.error_at(
                &t,
                "a command (fields, display, filter, stats, sort, limit, parse, dedup)",
            ));
        };
        match word.as_str() {
            "fields" => Ok(Command::Fields(self.items(false)?)),
            "display" => Ok(Command::Display(self.names()?)),
            "filter" | "where" => Ok(Command::Filter(self.expr()?)),
            "stats" => {
                let aggregates = self.items(true)?;
                let by = if self.peek(false)?.is_keyword("by") {
                    self.bump(false)?;
                    self.items(false)?
                } else {
                    Vec::new()
                };
                Ok(Command::Stats { aggregates, by })
            }
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let expr = self.expr()?;
                    let next = self.peek(false)?;
                    let descending = if next.is_keyword("desc") {
                        self.bump(false)?;
                        true
                    } else {
                        if next.is_keyword("asc") {
                            self.bump(false)?;
                        }
                        false
                    };
                    keys.push(SortKey { expr, descending });
                    if !self.eat(&Tok::Comma)? {
                        break;
                    }
                }
                Ok(Command::Sort(keys))
            }
            "limit" => {
                let t = self.bump(false)?;
                match t.kind {
                    Tok::Int(n) if n >= 0 => Ok(Command::Limit(n.unsigned_abs())),
                    _ => Err(self.error_at(&t, "a whole number of rows")),
                }
            }
            "parse" => self.parse_command(),
            "dedup" => Ok(Command::Dedup(self.names()?)),
            w if UNSUPPORTED.contains(&w) => {
                let name = self.src[t.start..t.end].to_string();
                let args = self.raw_until_pipe()?;
                Ok(Command::Unsupported { name, args })
            }
            _ => Err(self.error_at(
                &t,
                "a command (fields, display, filter, stats, sort, limit, parse, dedup)",
            )),
        }
    }

    fn parse_command(&mut self) -> Result<Command, ParseError> {
        let next = self.peek(true)?;
        let field = match next.kind {
            Tok::Str(_) | Tok::Regex(_) => None,
            _ => Some(self.name()?),
        };
        let t = self.bump(true)?;
        let pattern = match &t.kind {
            Tok::Str(s) => ParsePattern::Glob(s.clone()),
            Tok::Regex(r) => ParsePattern::Regex(r.clone()),
            _ => {
                return Err(self.error_at(&t, "a glob pattern in quotes or a regex in slashes"));
            }
        };
        let aliases = if self.peek(false)?.is_keyword("as") {
            self.bump(false)?;
            self.names()?
        } else {
            Vec::new()
        };
        match &pattern {
            ParsePattern::Glob(g) => {
                let stars = g.matches('*').count();
                if stars == 0 || stars != aliases.len() {
                    return Err(self.error_offset(
                        t.start,
                        &format!(
                            "a glob with one '*' per alias (it has {stars} '*' and {} aliases)",
                            aliases.len()
                        ),
                        &describe(self.src, &t),
                    ));
                }
            }
            ParsePattern::Regex(_) if !aliases.is_empty() => {
                return Err(self.error_offset(
                    t.end,
                    "named groups (?<name>…) in the regex instead of 'as'",
                    "'as'",
                ));
            }
            ParsePattern::Regex(_) => {}
        }
        Ok(Command::Parse {
            field,
            pattern,
            aliases,
        })
    }

    /// The argument text of an unsupported command, up to the next `|`.
    fn raw_until_pipe(&mut self) -> Result<String, ParseError> {
        let mut out = String::new();
        let mut depth = 0usize;
        loop {
            let t = self.peek(false)?;
            match t.kind {
                Tok::Eof => break,
                Tok::Pipe if depth == 0 => break,
                Tok::LParen | Tok::LBracket => depth += 1,
                Tok::RParen | Tok::RBracket => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.bump(false)?;
            if t.gap && !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&self.src[t.start..t.end]);
        }
        Ok(out)
    }

    fn eat(&mut self, kind: &Tok) -> Result<bool, ParseError> {
        if &self.peek(false)?.kind == kind {
            self.bump(false)?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect(&mut self, kind: &Tok, what: &str) -> Result<Token, ParseError> {
        let t = self.bump(false)?;
        if &t.kind == kind {
            Ok(t)
        } else {
            Err(self.error_at(&t, what))
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        let t = self.bump(false)?;
        match &t.kind {
            Tok::Ident { name, quoted }
                if *quoted || !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) =>
            {
                if name.is_empty() {
                    return Err(self.error_at(&t, "a non-empty field name"));
                }
                Ok(name.clone())
            }
            _ => Err(self.error_at(&t, "a field name")),
        }
    }

    fn names(&mut self) -> Result<Vec<String>, ParseError> {
        let mut out = vec![self.name()?];
        while self.eat(&Tok::Comma)? {
            out.push(self.name()?);
        }
        Ok(out)
    }

    fn items(&mut self, _aggregates: bool) -> Result<Vec<Item>, ParseError> {
        let mut out = Vec::new();
        loop {
            let start = self.pos;
            let expr = self.expr()?;
            let text = self.text_between(start, self.pos)?;
            let alias = if self.peek(false)?.is_keyword("as") {
                self.bump(false)?;
                Some(self.name()?)
            } else {
                None
            };
            out.push(Item { expr, alias, text });
            if !self.eat(&Tok::Comma)? {
                break;
            }
        }
        Ok(out)
    }

    /// The source of the tokens in `[start, end)`, with whitespace and comments between
    /// tokens collapsed to one space.
    fn text_between(&self, start: usize, end: usize) -> Result<String, ParseError> {
        let mut out = String::new();
        let mut pos = start;
        let mut regex_next = false;
        while pos < end {
            let t = self.lex(pos, regex_next)?;
            if t.end > end || t.kind == Tok::Eof {
                break;
            }
            if t.gap && !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&self.src[t.start..t.end]);
            regex_next = t.is_keyword("like") || t.kind == Tok::Match;
            pos = t.end;
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // Expressions.

    pub(crate) fn expr(&mut self) -> Result<Expr, ParseError> {
        Ok(self.nested_expr()?.0)
    }

    /// One more level of the grammar's recursion (an operand in parentheses, a call's or a
    /// list's element, `not`, unary minus, an exponent), refused past [`MAX_NESTING`] at `at`.
    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.too_deep(
                at,
                &format!("an expression nested at most {MAX_NESTING} deep"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    fn too_deep(&self, at: usize, expected: &str) -> ParseError {
        let found = match self.lex(at, false) {
            Ok(t) => describe(self.src, &t),
            Err(_) => "more".into(),
        };
        self.error_offset(at, expected, &found)
    }

    /// A node over children `depth` deep, refused when that makes the tree deeper than
    /// [`MAX_DEPTH`]; `at` is the operator that built it.
    fn node(&self, expr: Expr, depth: usize, at: usize) -> Result<Sub, ParseError> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.too_deep(
                at,
                &format!("an expression at most {MAX_DEPTH} operators deep"),
            ));
        }
        Ok((expr, depth))
    }

    fn binary(&self, op: BinaryOp, lhs: Sub, rhs: Sub, at: usize) -> Result<Sub, ParseError> {
        self.node(binary(op, lhs.0, rhs.0), lhs.1.max(rhs.1), at)
    }

    /// An expression and its tree's depth.
    fn nested_expr(&mut self) -> Result<Sub, ParseError> {
        self.enter(self.skip_trivia(self.pos))?;
        let mut lhs = self.and_expr()?;
        loop {
            let t = self.peek(false)?;
            if !t.is_keyword("or") {
                break;
            }
            self.bump(false)?;
            let rhs = self.and_expr()?;
            lhs = self.binary(BinaryOp::Or, lhs, rhs, t.start)?;
        }
        self.leave();
        Ok(lhs)
    }

    fn and_expr(&mut self) -> Result<Sub, ParseError> {
        let mut lhs = self.not_expr()?;
        loop {
            let t = self.peek(false)?;
            if !t.is_keyword("and") {
                break;
            }
            self.bump(false)?;
            let rhs = self.not_expr()?;
            lhs = self.binary(BinaryOp::And, lhs, rhs, t.start)?;
        }
        Ok(lhs)
    }

    fn not_expr(&mut self) -> Result<Sub, ParseError> {
        let t = self.peek(false)?;
        if t.is_keyword("not") {
            self.bump(false)?;
            self.enter(t.start)?;
            let (e, depth) = self.not_expr()?;
            self.leave();
            return self.node(Expr::Not(Box::new(e)), depth, t.start);
        }
        self.cmp_expr()
    }

    fn cmp_expr(&mut self) -> Result<Sub, ParseError> {
        let lhs = self.add_expr()?;
        let t = self.peek(false)?;
        let op = match t.kind {
            Tok::Eq => Some(BinaryOp::Eq),
            Tok::Ne => Some(BinaryOp::Ne),
            Tok::Lt => Some(BinaryOp::Lt),
            Tok::Le => Some(BinaryOp::Le),
            Tok::Gt => Some(BinaryOp::Gt),
            Tok::Ge => Some(BinaryOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump(false)?;
            let rhs = self.add_expr()?;
            return self.binary(op, lhs, rhs, t.start);
        }
        if t.kind == Tok::Match {
            self.bump(false)?;
            let (regex, depth) = self.pattern_operand()?;
            let expr = Expr::Matches {
                expr: Box::new(lhs.0),
                regex: Box::new(regex),
            };
            return self.node(expr, lhs.1.max(depth), t.start);
        }
        let mut negated = false;
        let mut word = t.keyword();
        if word.as_deref() == Some("not") {
            // `a not like …` / `a not in […]`
            let after = self.lex(t.end, false)?;
            match after.keyword().as_deref() {
                Some("like") | Some("in") => {
                    self.bump(false)?;
                    negated = true;
                    word = after.keyword();
                }
                _ => return Ok(lhs),
            }
        }
        match word.as_deref() {
            Some("like") => {
                self.bump(false)?;
                let (pattern, depth) = self.pattern_operand()?;
                let expr = Expr::Like {
                    expr: Box::new(lhs.0),
                    pattern: Box::new(pattern),
                    negated,
                };
                self.node(expr, lhs.1.max(depth), t.start)
            }
            Some("in") => {
                self.bump(false)?;
                self.expect(&Tok::LBracket, "'[' starting the list")?;
                let mut list = Vec::new();
                let mut depth = lhs.1;
                if !self.eat(&Tok::RBracket)? {
                    loop {
                        let (e, d) = self.nested_expr()?;
                        list.push(e);
                        depth = depth.max(d);
                        if self.eat(&Tok::Comma)? {
                            continue;
                        }
                        self.expect(&Tok::RBracket, "',' or ']' ending the list")?;
                        break;
                    }
                }
                let expr = Expr::In {
                    expr: Box::new(lhs.0),
                    list,
                    negated,
                };
                self.node(expr, depth, t.start)
            }
            _ => Ok(lhs),
        }
    }

    /// The right side of `like` / `=~`: a regex, or an ordinary operand.
    fn pattern_operand(&mut self) -> Result<Sub, ParseError> {
        let t = self.peek(true)?;
        if let Tok::Regex(r) = t.kind {
            self.bump(true)?;
            return Ok((Expr::Regex(r), 1));
        }
        self.add_expr()
    }

    fn add_expr(&mut self) -> Result<Sub, ParseError> {
        let mut lhs = self.mul_expr()?;
        loop {
            let t = self.peek(false)?;
            let op = match t.kind {
                Tok::Plus => BinaryOp::Add,
                Tok::Minus => BinaryOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump(false)?;
            let rhs = self.mul_expr()?;
            lhs = self.binary(op, lhs, rhs, t.start)?;
        }
    }

    fn mul_expr(&mut self) -> Result<Sub, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let t = self.peek(false)?;
            let op = match t.kind {
                Tok::Star => BinaryOp::Mul,
                Tok::Slash => BinaryOp::Div,
                Tok::Percent => BinaryOp::Mod,
                _ => return Ok(lhs),
            };
            self.bump(false)?;
            let rhs = self.unary()?;
            lhs = self.binary(op, lhs, rhs, t.start)?;
        }
    }

    fn unary(&mut self) -> Result<Sub, ParseError> {
        let t = self.peek(false)?;
        if t.kind == Tok::Minus {
            self.bump(false)?;
            self.enter(t.start)?;
            let (e, depth) = self.unary()?;
            self.leave();
            return self.node(Expr::Neg(Box::new(e)), depth, t.start);
        }
        let base = self.primary()?;
        let t = self.peek(false)?;
        if t.kind == Tok::Caret {
            self.bump(false)?;
            self.enter(t.start)?;
            let exponent = self.unary()?;
            self.leave();
            return self.binary(BinaryOp::Pow, base, exponent, t.start);
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Sub, ParseError> {
        let t = self.bump(false)?;
        match t.kind {
            Tok::Int(n) => Ok((Expr::Int(n), 1)),
            Tok::Float(x) => Ok((Expr::Float(x), 1)),
            Tok::Period(amount, unit) => Ok((Expr::Period { amount, unit }, 1)),
            Tok::Str(s) => Ok((Expr::Str(s), 1)),
            Tok::LParen => {
                let e = self.nested_expr()?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::Ident { ref name, quoted } => {
                if !quoted && KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                    return Err(self.error_at(&t, "an expression"));
                }
                if name.is_empty() {
                    return Err(self.error_at(&t, "a non-empty field name"));
                }
                let next = self.peek(false)?;
                if !quoted && next.kind == Tok::LParen && !next.gap {
                    self.bump(false)?;
                    let (args, depth) = self.call_args()?;
                    let call = Expr::Call {
                        name: name.clone(),
                        args,
                    };
                    return self.node(call, depth, t.start);
                }
                Ok((Expr::Field(name.clone()), 1))
            }
            _ => Err(self.error_at(&t, "an expression")),
        }
    }

    /// A call's arguments and the depth of the deepest.
    fn call_args(&mut self) -> Result<(Vec<Expr>, usize), ParseError> {
        let mut args = Vec::new();
        if self.eat(&Tok::RParen)? {
            return Ok((args, 0));
        }
        let t = self.peek(false)?;
        if t.kind == Tok::Star {
            let after = self.lex(t.end, false)?;
            if after.kind == Tok::RParen {
                self.bump(false)?;
                self.bump(false)?;
                return Ok((vec![Expr::Star], 1));
            }
        }
        let mut depth = 0;
        loop {
            let (e, d) = self.nested_expr()?;
            args.push(e);
            depth = depth.max(d);
            if self.eat(&Tok::Comma)? {
                continue;
            }
            self.expect(&Tok::RParen, "',' or ')' ending the arguments")?;
            return Ok((args, depth));
        }
    }
}

fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}

// ---------------------------------------------------------------------------------------------
// Highlighting: the same lexer, classifying tokens for an editor.

/// The commands the parser runs (`command()` dispatches on exactly these, `where` being
/// `filter`'s other name); [`UNSUPPORTED`] ones parse too but do not run.
pub const COMMANDS: &[&str] = &[
    "fields", "display", "filter", "where", "stats", "sort", "limit", "parse", "dedup",
];

/// The commands the parser knows but the embedded engine cannot run.
pub fn unsupported_commands() -> &'static [&'static str] {
    UNSUPPORTED
}

/// What a stretch of query text is, for colouring it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenClass {
    /// A command word at the start of a stage (`fields`, `stats`, …).
    Command,
    /// One of [`KEYWORDS`] (`by`, `as`, `and`, …).
    Keyword,
    /// A name called with `(` (`count`, `bin`, `strlen`, …).
    Function,
    /// Any other name (a field or an alias).
    Field,
    String,
    Regex,
    /// Integers, decimals and periods (`5m`).
    Number,
    /// `#` to the end of the line.
    Comment,
    /// Operators and punctuation (`|`, `=`, `(`, …).
    Operator,
    /// Text the lexer cannot read (an unterminated string, a stray character), to the end of
    /// its line; or a word at a stage's start that is no command.
    Error,
}

impl TokenClass {
    /// Its CSS class, `tok-<name>`.
    pub fn css(self) -> &'static str {
        match self {
            TokenClass::Command => "tok-command",
            TokenClass::Keyword => "tok-keyword",
            TokenClass::Function => "tok-function",
            TokenClass::Field => "tok-field",
            TokenClass::String => "tok-string",
            TokenClass::Regex => "tok-regex",
            TokenClass::Number => "tok-number",
            TokenClass::Comment => "tok-comment",
            TokenClass::Operator => "tok-operator",
            TokenClass::Error => "tok-error",
        }
    }
}

/// One classified stretch of a query: `src[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Highlight {
    pub class: TokenClass,
    pub start: usize,
    pub end: usize,
}

/// Classify every token and comment of `src` with the parser's own lexer, in order; whitespace
/// is left out. Never fails: what cannot be read is [`TokenClass::Error`] to the end of its line,
/// and lexing goes on from the next line.
pub fn highlight(src: &str) -> Vec<Highlight> {
    let p = Parser {
        src,
        pos: 0,
        nesting: 0,
    };
    let mut out = Vec::new();
    let mut pos = 0;
    // Where a command word is expected, and whether a regex may start (after `like`, `=~`,
    // and in `parse`).
    let mut stage_start = true;
    let mut regex_ok = false;
    let mut in_parse = false;
    while pos < src.len() {
        // Comments inside the trivia before the next token.
        let after = p.skip_trivia(pos);
        let mut i = pos;
        while i < after {
            if src.as_bytes()[i] == b'#' {
                let end = src[i..after].find('\n').map_or(after, |n| i + n);
                out.push(Highlight {
                    class: TokenClass::Comment,
                    start: i,
                    end,
                });
                i = end;
            } else {
                i += src[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        let t = match p.lex(after, regex_ok || in_parse) {
            Ok(t) => t,
            Err(_) => {
                let end = src[after..].find('\n').map_or(src.len(), |n| after + n);
                out.push(Highlight {
                    class: TokenClass::Error,
                    start: after,
                    end: end.max(after + 1).min(src.len()),
                });
                pos = end.max(after + 1);
                stage_start = false;
                regex_ok = false;
                continue;
            }
        };
        if t.kind == Tok::Eof {
            break;
        }
        let class = match &t.kind {
            Tok::Ident { name, quoted } => {
                let called = !*quoted
                    && p.lex(t.end, false)
                        .is_ok_and(|n| n.kind == Tok::LParen && !n.gap);
                if stage_start && !*quoted {
                    let word = name.to_ascii_lowercase();
                    if COMMANDS.contains(&word.as_str()) || UNSUPPORTED.contains(&word.as_str()) {
                        TokenClass::Command
                    } else {
                        TokenClass::Error
                    }
                } else if called {
                    TokenClass::Function
                } else if !*quoted && KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                    TokenClass::Keyword
                } else {
                    TokenClass::Field
                }
            }
            Tok::Int(_) | Tok::Float(_) | Tok::Period(..) => TokenClass::Number,
            Tok::Str(_) => TokenClass::String,
            Tok::Regex(_) => TokenClass::Regex,
            _ => TokenClass::Operator,
        };
        in_parse = match (&t.kind, stage_start) {
            (Tok::Pipe, _) => false,
            (_, true) => t.is_keyword("parse"),
            _ => in_parse && !matches!(t.kind, Tok::Str(_) | Tok::Regex(_)),
        };
        regex_ok = t.is_keyword("like") || t.kind == Tok::Match;
        stage_start = t.kind == Tok::Pipe;
        out.push(Highlight {
            class,
            start: t.start,
            end: t.end,
        });
        pos = t.end;
    }
    out
}

#[cfg(test)]
mod highlight_tests {
    use super::*;

    fn classes(src: &str) -> Vec<(TokenClass, &str)> {
        highlight(src)
            .into_iter()
            .map(|h| (h.class, &src[h.start..h.end]))
            .collect()
    }

    #[test]
    fn every_listed_command_is_one_the_parser_accepts() {
        for c in COMMANDS {
            let err = parse(c).err().map(|e| e.expected).unwrap_or_default();
            assert!(!err.starts_with("a command"), "{c}: {err}");
        }
        let err = parse("nosuchcommand").unwrap_err();
        assert!(err.expected.starts_with("a command"));
    }

    #[test]
    fn tokens_are_classified_as_the_parser_reads_them() {
        use TokenClass::*;
        let got = classes(
            "fields @timestamp, `odd name` # note\n| filter msg like /a\\/b/ and n >= 5 \
             | stats count(*) as n, pct(latencyMs, 99) by bin(5m)\n| sort n desc | limit 10",
        );
        let want = [
            (Command, "fields"),
            (Field, "@timestamp"),
            (Operator, ","),
            (Field, "`odd name`"),
            (Comment, "# note"),
            (Operator, "|"),
            (Command, "filter"),
            (Field, "msg"),
            (Keyword, "like"),
            (Regex, "/a\\/b/"),
            (Keyword, "and"),
            (Field, "n"),
            (Operator, ">="),
            (Number, "5"),
            (Operator, "|"),
            (Command, "stats"),
            (Function, "count"),
            (Operator, "("),
            (Operator, "*"),
            (Operator, ")"),
            (Keyword, "as"),
            (Field, "n"),
            (Operator, ","),
            (Function, "pct"),
            (Operator, "("),
            (Field, "latencyMs"),
            (Operator, ","),
            (Number, "99"),
            (Operator, ")"),
            (Keyword, "by"),
            (Function, "bin"),
            (Operator, "("),
            (Number, "5m"),
            (Operator, ")"),
            (Operator, "|"),
            (Command, "sort"),
            (Field, "n"),
            (Keyword, "desc"),
            (Operator, "|"),
            (Command, "limit"),
            (Number, "10"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn broken_text_is_an_error_to_the_end_of_its_line_and_lexing_goes_on() {
        use TokenClass::*;
        let got = classes("nosuch x | parse msg \"* x *\" as a | filter a = \"open");
        assert_eq!(got[0], (Error, "nosuch"));
        assert!(got.contains(&(Command, "parse")));
        assert!(got.contains(&(String, "\"* x *\"")));
        assert_eq!(got.last(), Some(&(Error, "\"open")));
        // A stray character is an error to the end of its line; the next line lexes again.
        let got = classes("fields a § b\n| limit 5");
        assert_eq!(got[2], (Error, "§ b"));
        assert_eq!(
            &got[3..],
            [(Operator, "|"), (Command, "limit"), (Number, "5")]
        );
        assert!(highlight("").is_empty());
        // Multi-byte text and a stray character never panic.
        let _ = highlight("fields é § \u{2028} 'x");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(src: &str) -> Query {
        let q = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let printed = q.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(q, again, "{src}\n=> {printed}");
        q
    }

    #[test]
    fn parses_the_documented_shapes() {
        for src in [
            "fields @timestamp, @message | sort @timestamp desc | limit 20",
            "filter @message like /Exception/ | stats count(*) as exceptionCount by bin(1h) | sort exceptionCount desc",
            "FIELDS @timestamp, @message\n    # | filter @message like /delay/\n| SORT @timestamp DESC",
            "parse @message \"user=*, method:*, latency := *\" as @user, @method, @latency | stats avg(@latency) by @method, @user",
            "parse @message /(?<user>\\w+) did (?<what>.*)/ | display user, what",
            "stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 15",
            "filter status in [200, \"201\", 'x'] and userSub not in [\"a\"] or not ispresent(x)",
            "fields `foo-bar`, @`aws.tag.x:y`, a.b.0.c | dedup `foo-bar`",
            "stats count(*) by bin(5m) as t | stats max(t) as @t | sort @t",
            "fields 2 ^ 3 ^ 2 as p, -x ^ 2 as q, (a - b) - (c - d) as r, 10 % 3, a / b * c",
            "filter x =~ /(?i)abc\\/def/ and y not like \"z\" and z like w",
            "where latencyMs >= 100 and latencyMs <> 5",
            "pattern @message | limit 5",
            "stats avg(latencyMs), pct(latencyMs, 99) by model",
            "fields datefloor(@timestamp, 1h) as h, fromMillis(toMillis(@timestamp) + 1) as t",
            "",
        ] {
            round_trip(src);
        }
    }

    #[test]
    fn keywords_are_case_insensitive_names_are_not() {
        let a = parse("FILTER A = 1 AND B IN [1] | STATS COUNT(*) AS n BY c").unwrap();
        let b = parse("filter A = 1 and B in [1] | stats COUNT(*) as n by c").unwrap();
        assert_eq!(a, b);
        assert_ne!(parse("fields a").unwrap(), parse("fields A").unwrap());
    }

    #[test]
    fn unaliased_items_keep_their_text() {
        let q = round_trip("stats  sum(x)/1024 # kb\n , count( * ) by bin(5m)");
        let Command::Stats { aggregates, by } = &q.commands[0] else {
            panic!()
        };
        assert_eq!(aggregates[0].name(), "sum(x)/1024");
        assert_eq!(aggregates[1].name(), "count( * )");
        assert_eq!(by[0].name(), "bin(5m)");
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse("fields a\n| filter b = ").unwrap_err();
        assert_eq!((e.line, e.column), (2, 14));
        assert_eq!(e.expected, "an expression");
        assert_eq!(e.found, "the end of the query");

        let e = parse("fields a,\n  | limit 5").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));

        let e = parse("stats count(*) by bin(5x)").unwrap_err();
        assert!(e.expected.contains("time unit"), "{e}");
        assert_eq!(e.column, 24);

        let e = parse("fields a | frobnicate b").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("line 1, column 12: expected a command"),
            "{e}"
        );

        let e = parse("parse @message \"a=* b=*\" as x").unwrap_err();
        assert!(e.expected.contains("2 '*' and 1 aliases"), "{e}");

        let e = parse("filter a like /abc").unwrap_err();
        assert!(e.expected.contains("closing the regex"), "{e}");

        let e = parse("limit -1").unwrap_err();
        assert_eq!(e.expected, "a whole number of rows");

        let e = parse("fields by").unwrap_err();
        assert_eq!(e.found, "keyword 'by'");
    }

    #[test]
    fn precedence() {
        let q = parse("filter a or b and not c = 1 + 2 * 3").unwrap();
        assert_eq!(
            q.commands[0].to_string(),
            "filter a or b and not c = 1 + 2 * 3"
        );
        let q = parse("fields (a or b) and c, -(a + b), (a ^ b) ^ c").unwrap();
        assert_eq!(
            q.commands[0].to_string(),
            "fields (a or b) and c, -(a + b), (a ^ b) ^ c"
        );
    }
}

#[cfg(test)]
mod depth_tests {
    //! Hostile nesting: a parse error with line and column, never a stack overflow, on a
    //! thread whose stack is half the smallest the product parses or runs queries on.
    use super::*;
    use crate::insights::exec::Executor;
    use crate::insights::plan::plan;
    use crate::insights::value::Value;

    /// Every thread the product parses or runs queries on has at least 2 MiB (tokio's workers
    /// and blocking pool); the tests hold half that, in a debug build.
    const SMALL_STACK: usize = 1024 * 1024;

    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let worker = std::thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(f)
            .unwrap();
        worker.join().unwrap()
    }

    /// How many of [`nested`]'s forms nest through the parser's recursion; the rest are flat
    /// chains, deep only as trees.
    const NESTED: usize = 9;

    /// The query forms that nest, `n` levels deep.
    fn nested(n: usize) -> Vec<(&'static str, String)> {
        let wrap = |open: &str, inner: &str, close: &str| {
            format!("{}{inner}{}", open.repeat(n), close.repeat(n))
        };
        vec![
            ("parens", format!("filter {}", wrap("(", "a", ")"))),
            ("not", format!("filter {}a", "not ".repeat(n))),
            ("minus", format!("fields {}a", "- ".repeat(n))),
            ("minus parens", format!("fields {}", wrap("-(", "a", ")"))),
            ("calls", format!("fields {}", wrap("abs(", "a", ")"))),
            ("power", format!("fields a{}", " ^ a".repeat(n))),
            ("lists", format!("filter {}", wrap("a in [", "a", "]"))),
            ("like", format!("filter {}", wrap("(a like ", "a", ")"))),
            ("mixed", format!("fields {}", wrap("abs(not -(", "a", "))"))),
            ("and", format!("filter a{}", " and a".repeat(n))),
            ("or", format!("filter a{}", " or a".repeat(n))),
            ("plus", format!("fields a{}", " + a".repeat(n))),
            ("times", format!("fields a{}", " * a".repeat(n))),
            ("stats", format!("stats sum(a){}", " + sum(a)".repeat(n))),
        ]
    }

    #[test]
    fn nesting_ten_thousand_deep_is_a_parse_error_with_a_position() {
        let errors = on_small_stack(|| {
            nested(10_000)
                .into_iter()
                .map(|(form, src)| (form, parse(&src).map(|_| ())))
                .collect::<Vec<_>>()
        });
        for (i, (form, result)) in errors.into_iter().enumerate() {
            let e = result.expect_err(form);
            let (limit, want) = if i < NESTED {
                (MAX_NESTING, "nested at most 20 deep")
            } else {
                (MAX_DEPTH, "at most 100 operators deep")
            };
            assert!(e.expected.contains(want), "{form}: {e}");
            assert_eq!(e.line, 1, "{form}");
            assert!(e.column > limit && e.column < 10 * limit, "{form}: {e}");
        }
        // Where: the parenthesis one level too deep.
        let e = on_small_stack(|| parse(&format!("filter\n{}a", "(".repeat(10_000))));
        let e = e.unwrap_err();
        assert_eq!((e.line, e.column), (2, MAX_NESTING + 1), "{e}");
        assert_eq!(
            e.to_string(),
            "line 2, column 21: expected an expression nested at most 20 deep, found '('"
        );
    }

    #[test]
    fn deepest_allowed_query_runs_on_a_small_stack() {
        // Each form at the deepest the parser takes.
        let forms: Vec<(&str, String)> = on_small_stack(|| {
            (0..nested(1).len())
                .map(|i| {
                    (1..=MAX_DEPTH)
                        .rev()
                        .map(|n| nested(n).swap_remove(i))
                        .find(|(_, src)| parse(src).is_ok())
                        .unwrap()
                })
                .collect()
        });
        for (i, (form, src)) in forms.iter().enumerate() {
            // At the limit, not trivially shallow.
            let limit = if i < NESTED { MAX_NESTING } else { MAX_DEPTH };
            assert!(src.len() > 2 * limit - 20, "{form}: {src}");
        }
        on_small_stack(move || {
            for (form, src) in forms {
                let query = parse(&src).unwrap();
                // Print, and the print parses to the same tree.
                let printed = query.to_string();
                assert_eq!(parse(&printed).as_ref(), Ok(&query), "{form}");
                // Plan and evaluate over one event.
                let compiled = plan(&query, 10).unwrap_or_else(|e| panic!("{form}: {e}"));
                let mut exec = Executor::new(&compiled, 0);
                let mut row = exec.new_row();
                for (name, slot) in &compiled.event_fields {
                    if name == "a" {
                        row[*slot] = Value::Int(1);
                    }
                }
                exec.push(row).unwrap();
                exec.finish().unwrap();
                // Clone and drop the trees (a derived Drop recurses too).
                let copy = query.clone();
                drop(compiled);
                drop(query);
                drop(copy);
            }
        });
    }

    #[test]
    fn long_flat_lists_still_parse() {
        // Lists and argument lists are flat: long ones are not deep.
        let items = vec!["1"; 10_000].join(", ");
        parse(&format!("filter a in [{items}]")).unwrap();
        parse(&format!("fields concat({items})")).unwrap();
        let names = vec!["a"; 10_000].join(", ");
        parse(&format!("fields {names} | display {names}")).unwrap();
        let stages = vec!["filter a"; 2_000].join(" | ");
        parse(&stages).unwrap();
    }
}
