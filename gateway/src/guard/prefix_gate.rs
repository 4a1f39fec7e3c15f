//! Custom regexes gated by the literals their matches must begin with. Each pattern's prefix
//! literals come from `regex-syntax`'s extractor (a finite set such that every match starts
//! with one of them); one leftmost-first Aho-Corasick pass over all patterns' literals (SIMD
//! "Teddy" when there are few) then yields every position where one begins, and each regex runs
//! anchored there only, instead of one full scan per regex. A pattern whose literal set is
//! infinite, large or holds a short literal keeps its own full scan.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// At most this many prefix literals per pattern (more: the pattern scans on its own).
const MAX_LITERALS: usize = 16;
/// Literals shorter than this match too often to be worth a gate.
const MIN_LITERAL: usize = 3;

/// The literals one of which every match of `pattern` (with the `regex` crate's default
/// flags) begins with: the extractor's prefixes cut to the length that leaves the fewest
/// distinct ones (the longest such), when that is at most [`MAX_LITERALS`] and none is
/// shorter than [`MIN_LITERAL`]. (A match that begins with a literal begins with every
/// prefix of it, so cutting keeps the set sound.)
pub(crate) fn required_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix);
    let seq = extractor.extract(&hir);
    let literals: Vec<&[u8]> = seq.literals()?.iter().map(|l| l.as_bytes()).collect();
    let longest = literals.iter().map(|l| l.len()).max()?;
    if literals.iter().any(|l| l.len() < MIN_LITERAL) {
        return None;
    }
    let cut = |k: usize| {
        let mut cut: Vec<Vec<u8>> = literals
            .iter()
            .map(|l| l.get(..k.min(l.len())).unwrap_or(l).to_vec())
            .collect();
        cut.sort_unstable();
        cut.dedup();
        cut
    };
    (MIN_LITERAL..=longest)
        .map(cut)
        .rev()
        .min_by_key(Vec::len)
        .filter(|c| c.len() <= MAX_LITERALS)
}

/// One pass over every gated pattern's literals.
#[derive(Debug, Clone)]
pub(crate) struct PrefixGate {
    automaton: AhoCorasick,
    /// Per distinct literal: the patterns (caller's indices) to try where it occurs — its own
    /// and those of every literal that is a prefix of it or that it is a prefix of, since those
    /// begin at the same position and a leftmost-first search reports only one of them.
    targets: Vec<Vec<usize>>,
}

impl PrefixGate {
    /// A gate over `(literal, pattern index)` pairs; `None` when there are none.
    pub(crate) fn new(pairs: &[(Vec<u8>, usize)]) -> Result<Option<PrefixGate>, String> {
        let mut literals: Vec<&[u8]> = Vec::new();
        let mut own: Vec<Vec<usize>> = Vec::new();
        for (literal, pattern) in pairs {
            match literals.iter().position(|l| *l == literal.as_slice()) {
                Some(k) => own.get_mut(k).into_iter().for_each(|t| t.push(*pattern)),
                None => {
                    literals.push(literal);
                    own.push(vec![*pattern]);
                }
            }
        }
        if literals.is_empty() {
            return Ok(None);
        }
        let targets = literals
            .iter()
            .map(|a| {
                let mut t: Vec<usize> = literals
                    .iter()
                    .zip(&own)
                    .filter(|(b, _)| a.starts_with(b) || b.starts_with(a))
                    .flat_map(|(_, t)| t.iter().copied())
                    .collect();
                t.sort_unstable();
                t.dedup();
                t
            })
            .collect();
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&literals)
            .map_err(|e| format!("regex prefix literals: {e}"))?;
        Ok(Some(PrefixGate { automaton, targets }))
    }

    /// Calls `push(position, pattern)` for every position of `hay` where a literal of
    /// `pattern` may begin, positions ascending.
    pub(crate) fn positions(&self, hay: &str, push: &mut impl FnMut(usize, usize)) {
        let mut from = 0;
        // A leftmost search reports the earliest start at or after `from`; resuming one byte
        // later visits every start.
        while let Some(m) = self.automaton.find(Input::new(hay).span(from..hay.len())) {
            for &t in self
                .targets
                .get(m.pattern().as_usize())
                .into_iter()
                .flatten()
            {
                push(m.start(), t);
            }
            from = m.start() + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_typical_patterns() {
        let p = |s: &str| {
            required_prefixes(s).map(|v| {
                v.into_iter()
                    .map(|l| String::from_utf8(l).unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(p(r"\bEMP07-[0-9]{4,8}\b"), Some(vec!["EMP07-".into()]));
        assert_eq!(
            p(r"(?:ssn |pass )[0-9]+"),
            Some(vec!["pass".into(), "ssn ".into()])
        );
        assert_eq!(p(r"x?abc"), Some(vec!["abc".into(), "xabc".into()]));
        let either = p(r"(?:ACME|BETA)-\d+").unwrap();
        assert!(either.iter().any(|l| l.starts_with("ACME")), "{either:?}");
        assert!(either.iter().any(|l| l.starts_with("BETA")), "{either:?}");
        // Case-insensitive: every case variant, or no gate.
        if let Some(ci) = p(r"(?i)key-\d") {
            assert!(ci.iter().any(|l| l.starts_with("KEY")), "{ci:?}");
            assert!(ci.iter().any(|l| l.starts_with("key")), "{ci:?}");
        }
        // No usable prefix: anything may start a match, or a literal is too short.
        assert_eq!(p(r"\d{3}-\d{4}"), None);
        assert_eq!(p(r"[a-z]+@corp"), None);
        assert_eq!(p(r"ab\d"), None);
        assert_eq!(p(r"(?:abc)*"), None);
    }

    #[test]
    fn positions_are_every_literal_start() {
        let pairs: Vec<(Vec<u8>, usize)> = [("abc", 0), ("abcd", 1), ("bcd", 2), ("xyz", 0)]
            .iter()
            .map(|(l, p)| (l.as_bytes().to_vec(), *p))
            .collect();
        let gate = PrefixGate::new(&pairs).unwrap().unwrap();
        let hay = "zabcdxyzabcbcd abcabc";
        let mut got = Vec::new();
        gate.positions(hay, &mut |p, t| got.push((p, t)));
        // Every (position, pattern) where a literal of the pattern begins must be reported.
        for (l, t) in &pairs {
            for p in 0..hay.len() {
                if hay.as_bytes()[p..].starts_with(l) {
                    assert!(got.contains(&(p, *t)), "{p} {t} missing from {got:?}");
                }
            }
        }
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "{got:?}");
    }
}
