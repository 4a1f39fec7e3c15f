//! Colouring of the Insights editor, on the server (before hydration) and in the browser (as
//! the user types), by one tokenizer so both render the same markup.
//!
//! The words come from the gateway's parser, never from a list kept here: [`Vocabulary`] is
//! read on the server from `gateway::insights::parser` (its commands, keywords and period
//! units) and travels to the browser with the page. The lexical rules (strings, `#` comments,
//! numbers and periods, backtick names, regexes after `like`/`=~`/`parse`) mirror the parser's
//! lexer; a test holds this tokenizer equal to the parser's own classifier
//! (`gateway::insights::parser::highlight`).

use serde::{Deserialize, Serialize};

/// The language's words, from the gateway's parser.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Vocabulary {
    /// Command words (lower-case), runnable or not.
    pub commands: Vec<String>,
    /// Keywords (lower-case): `and`, `by`, `as`, …
    pub keywords: Vec<String>,
    /// Time units of a period literal (lower-case).
    pub period_units: Vec<String>,
}

impl Vocabulary {
    /// The parser's words (server only).
    #[cfg(feature = "ssr")]
    pub fn from_parser() -> Vocabulary {
        use gateway::insights::ast::KEYWORDS;
        use gateway::insights::parser::{COMMANDS, PERIOD_UNITS, unsupported_commands};
        let owned = |words: &[&str]| words.iter().map(|w| w.to_string()).collect();
        Vocabulary {
            commands: COMMANDS
                .iter()
                .chain(unsupported_commands())
                .map(|w| w.to_string())
                .collect(),
            keywords: owned(KEYWORDS),
            period_units: owned(PERIOD_UNITS),
        }
    }
}

/// What a stretch of the query is; `Plain` is whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Command,
    Keyword,
    Function,
    Field,
    String,
    Regex,
    Number,
    Comment,
    Operator,
    Error,
    Plain,
}

impl Class {
    /// The CSS class (the same names as the gateway's `TokenClass::css`).
    pub fn css(self) -> &'static str {
        match self {
            Class::Command => "tok-command",
            Class::Keyword => "tok-keyword",
            Class::Function => "tok-function",
            Class::Field => "tok-field",
            Class::String => "tok-string",
            Class::Regex => "tok-regex",
            Class::Number => "tok-number",
            Class::Comment => "tok-comment",
            Class::Operator => "tok-operator",
            Class::Error => "tok-error",
            Class::Plain => "",
        }
    }
}

/// Longest query coloured; past it the rest is shown plain (the editor accepts 10,000).
pub const MAX_HIGHLIGHT: usize = 20_000;

fn line_end(src: &str, from: usize) -> usize {
    src[from..].find('\n').map_or(src.len(), |n| from + n)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.'
}

/// Split `src` into classified stretches covering all of it, in order.
pub fn spans(src: &str, vocab: &Vocabulary) -> Vec<(Class, String)> {
    let (src, rest) = if src.len() > MAX_HIGHLIGHT {
        let mut cut = MAX_HIGHLIGHT;
        while !src.is_char_boundary(cut) {
            cut -= 1;
        }
        src.split_at(cut)
    } else {
        (src, "")
    };
    let bytes = src.as_bytes();
    let mut out: Vec<(Class, String)> = Vec::new();
    let mut push = |class: Class, text: &str| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some((c, t)) if *c == class && class == Class::Plain => t.push_str(text),
            _ => out.push((class, text.to_string())),
        }
    };
    let mut i = 0;
    let mut stage_start = true;
    let mut regex_ok = false;
    let mut in_parse = false;
    while i < src.len() {
        let Some(c) = src[i..].chars().next() else {
            break;
        };
        if c.is_whitespace() {
            let end = src[i..]
                .char_indices()
                .find(|(_, c)| !c.is_whitespace())
                .map_or(src.len(), |(n, _)| i + n);
            push(Class::Plain, &src[i..end]);
            i = end;
            continue;
        }
        if c == '#' {
            let end = line_end(src, i);
            push(Class::Comment, &src[i..end]);
            i = end;
            continue;
        }
        let two = src.get(i..i + 2).unwrap_or("");
        let (class, end, token_kind) = match c {
            '|' => (Class::Operator, i + 1, Kind::Pipe),
            ',' | '(' | ')' | '[' | ']' | '+' | '-' | '*' | '%' | '^' => {
                (Class::Operator, i + 1, Kind::Other)
            }
            '=' if two == "=~" => (Class::Operator, i + 2, Kind::Match),
            '=' if two == "==" => (Class::Operator, i + 2, Kind::Other),
            '!' if two == "!=" => (Class::Operator, i + 2, Kind::Other),
            '<' if two == "<=" || two == "<>" => (Class::Operator, i + 2, Kind::Other),
            '>' if two == ">=" => (Class::Operator, i + 2, Kind::Other),
            '=' | '<' | '>' => (Class::Operator, i + 1, Kind::Other),
            '/' if regex_ok || in_parse => match closing(src, i + 1, '/') {
                Some(end) => (Class::Regex, end, Kind::Pattern),
                None => (Class::Error, line_end(src, i).max(i + 1), Kind::Broken),
            },
            '/' => (Class::Operator, i + 1, Kind::Other),
            '"' | '\'' => match closing(src, i + 1, c) {
                Some(end) => (Class::String, end, Kind::Pattern),
                None => (Class::Error, line_end(src, i).max(i + 1), Kind::Broken),
            },
            '0'..='9' => number(src, i, vocab),
            c if c.is_ascii_alphabetic() || c == '_' || c == '@' || c == '`' => {
                match name(src, i) {
                    None => (Class::Error, line_end(src, i).max(i + 1), Kind::Broken),
                    Some((end, quoted)) => {
                        let word = src[i..end].to_ascii_lowercase();
                        let called = !quoted && bytes.get(end) == Some(&b'(');
                        let class = if stage_start && !quoted {
                            if vocab.commands.contains(&word) {
                                Class::Command
                            } else {
                                Class::Error
                            }
                        } else if called {
                            Class::Function
                        } else if !quoted && vocab.keywords.contains(&word) {
                            Class::Keyword
                        } else {
                            Class::Field
                        };
                        let kind = if quoted {
                            Kind::Other
                        } else {
                            Kind::Word(word)
                        };
                        (class, end, kind)
                    }
                }
            }
            _ => (
                Class::Error,
                line_end(src, i).max(i + c.len_utf8()),
                Kind::Broken,
            ),
        };
        let end = end.min(src.len());
        push(class, &src[i..end]);
        in_parse = match (&token_kind, stage_start) {
            (Kind::Pipe, _) => false,
            (Kind::Word(w), true) => w == "parse",
            (_, true) => false,
            (Kind::Pattern, false) => false,
            _ => in_parse,
        };
        regex_ok = matches!(&token_kind, Kind::Match)
            || matches!(&token_kind, Kind::Word(w) if w == "like");
        stage_start = matches!(token_kind, Kind::Pipe);
        i = end;
    }
    if !rest.is_empty() {
        push(Class::Plain, rest);
    }
    out
}

/// What a token means for the next one.
enum Kind {
    Pipe,
    Match,
    Pattern,
    Word(String),
    Broken,
    Other,
}

/// The end (after the closing `quote`) of a string or regex whose body starts at `from`;
/// backslash escapes anything.
fn closing(src: &str, from: usize, quote: char) -> Option<usize> {
    let mut chars = src[from..].char_indices();
    while let Some((n, c)) = chars.next() {
        if c == quote {
            return Some(from + n + c.len_utf8());
        }
        if c == '\\' {
            chars.next()?;
        }
    }
    None
}

/// A number, decimal or period (`5m`) at `start`.
fn number(src: &str, start: usize, vocab: &Vocabulary) -> (Class, usize, Kind) {
    let bytes = src.as_bytes();
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(start);
    let mut float = false;
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        float = true;
        i = digits(i + 1);
    }
    let mut unit_end = i;
    while unit_end < bytes.len() && bytes[unit_end].is_ascii_alphabetic() {
        unit_end += 1;
    }
    if unit_end > i {
        let unit = src[i..unit_end].to_ascii_lowercase();
        if float || !vocab.period_units.contains(&unit) {
            let end = line_end(src, start).max(start + 1);
            return (Class::Error, end, Kind::Broken);
        }
        return (Class::Number, unit_end, Kind::Other);
    }
    (Class::Number, i, Kind::Other)
}

/// A name at `start` (plain characters and backtick-quoted parts): its end and whether any part
/// was quoted; `None` for an unclosed backtick.
fn name(src: &str, start: usize) -> Option<(usize, bool)> {
    let mut i = start;
    let mut quoted = false;
    while let Some(c) = src[i..].chars().next() {
        if c == '`' {
            quoted = true;
            let mut j = i + 1;
            loop {
                match src[j..].chars().next() {
                    None => return None,
                    Some('`') if src[j + 1..].starts_with('`') => j += 2,
                    Some('`') => {
                        j += 1;
                        break;
                    }
                    Some(c) => j += c.len_utf8(),
                }
            }
            i = j;
        } else if is_name_char(c) {
            i += 1;
        } else {
            break;
        }
    }
    Some((i, quoted))
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use gateway::insights::parser::{TokenClass, highlight};

    fn ours(src: &str) -> Vec<(Class, String)> {
        spans(src, &Vocabulary::from_parser())
            .into_iter()
            .filter(|(c, _)| *c != Class::Plain)
            .collect()
    }

    fn theirs(src: &str) -> Vec<(Class, String)> {
        highlight(src)
            .into_iter()
            .map(|h| {
                let class = match h.class {
                    TokenClass::Command => Class::Command,
                    TokenClass::Keyword => Class::Keyword,
                    TokenClass::Function => Class::Function,
                    TokenClass::Field => Class::Field,
                    TokenClass::String => Class::String,
                    TokenClass::Regex => Class::Regex,
                    TokenClass::Number => Class::Number,
                    TokenClass::Comment => Class::Comment,
                    TokenClass::Operator => Class::Operator,
                    TokenClass::Error => Class::Error,
                };
                assert_eq!(class.css(), h.class.css());
                (class, src[h.start..h.end].to_string())
            })
            .collect()
    }

    /// The browser's tokenizer colours exactly as the gateway's parser reads.
    #[test]
    fn agrees_with_the_parsers_own_classifier() {
        let mut corpus: Vec<String> = crate::soc::api::PRESETS
            .iter()
            .map(|p| p.query.replace("{user}", "\"alice@example.com\""))
            .collect();
        corpus.extend(
            [
                "fields @timestamp, `odd ``name```, a.b # comment\n| filter msg like /x\\/y/",
                "filter status >= 400 and not (feature in [\"a\", 'b']) or x =~ /re/",
                "stats avg(latencyMs) as avg, pct(latencyMs, 95) by bin(5m), feature",
                "parse @message \"user=* id=*\" as user, id | parse msg /(?<x>\\d+)/",
                "fields 1.5, 10ms, 3 qtr, 5xyz, 2.5m",
                "sort x desc | limit 20 | dedup a, b | display a | where b != 'c'",
                "pattern @message | unmask x | nosuch y",
                "filter a = \"unterminated\n| limit 5",
                "fields a § b\n| limit 5 ~ x",
                "fields `open",
                "",
                "   \n\t# only a comment",
                "fields é, ü | filter x <> 1 and y == 2 or z <= 3 ^ 2 % 4",
            ]
            .map(str::to_string),
        );
        for src in &corpus {
            assert_eq!(ours(src), theirs(src), "{src}");
            let joined: String = spans(src, &Vocabulary::from_parser())
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            assert_eq!(&joined, src, "spans cover the text exactly");
        }
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let src = "é".repeat(MAX_HIGHLIGHT);
        let joined: String = spans(&src, &Vocabulary::from_parser())
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(joined, src);
    }
}
