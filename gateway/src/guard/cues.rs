//! Where literals occur in a normalized text: the contextual PII detectors' cues ("passport",
//! "routing number", "cvv", ...) for the engine's candidate pass, and the prompt-attack
//! signatures' leads ([`content`](super::content)).
//!
//! A detector whose every match begins at an ASCII word boundary (its regex starts each
//! alternative with `\b`) can only begin where a run of ASCII letters and digits begins, so its
//! literals are looked up only at the starts of the text's runs
//! ([`ascii_runs`](super::lexicon::ascii_runs), found once for every word-level policy): the
//! run's first two bytes and its length are checked in an L1-sized bit set and, when some
//! literal can begin there, those literals are compared at the run's start. The few literals that may begin
//! inside a word are found by one overlapping Aho-Corasick pass, which costs a table step per
//! byte of text; the lookups cost a few instructions per word.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Literal `(text, matcher, word_start)`: `word_start` when every occurrence that matters
/// begins a run of ASCII letters and digits (the matcher's matches begin at a word boundary,
/// or — for a gate — the literal is a whole word in every match).
pub(crate) type CueLiteral<'a> = (&'a str, usize, bool);

/// Whether every match of `pattern` begins at a word boundary (`\b`, ASCII or Unicode): then a
/// match that begins with a letter or digit begins a run of ASCII letters and digits.
pub(crate) fn begins_at_word_boundary(pattern: &str) -> bool {
    use regex_syntax::hir::Look;
    regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .is_ok_and(|hir| {
            let looks = hir.properties().look_set_prefix();
            looks.contains(Look::WordAscii) || looks.contains(Look::WordUnicode)
        })
}

/// Every cue literal of a compiled guardrail.
#[derive(Debug, Clone)]
pub(crate) struct CueIndex {
    /// One bit per [`key`] (the two first bytes and the run's length) at which some word
    /// literal can begin: most runs of prose are turned away here, in 8 KB.
    filter: Vec<u64>,
    /// Per [`pair`] hash: its word literals' range in `order`.
    table: Vec<(u32, u32)>,
    /// Word literal indices grouped by pair hash.
    order: Vec<u32>,
    /// Per word literal: its bytes, lower-cased, and the matchers it switches on.
    literals: Vec<(Vec<u8>, Vec<usize>)>,
    /// The literals that may begin inside a word: one overlapping automaton, and per pattern
    /// its matchers.
    inner: Option<(AhoCorasick, Vec<Vec<usize>>)>,
}

const PAIR_BITS: u32 = 12;
/// Run lengths are told apart up to this; longer runs share its bucket.
const MAX_LEN: usize = 15;

/// A hash of the two bytes at `b[i..]`, each with bit 5 set (ASCII letters lower-cased; other
/// bytes may collide, which only lets more through).
fn pair(b: &[u8], i: usize) -> usize {
    let at = |k: usize| u32::from(b.get(k).map_or(0, |c| c | 0x20));
    ((at(i) << 8 | at(i + 1)).wrapping_mul(0x9E37_79B1) >> (32 - PAIR_BITS)) as usize
}

/// The filter key of a run whose first two bytes have the [`pair`] hash `pair` and that is
/// `len` bytes long.
fn key(pair: usize, len: usize) -> usize {
    pair << 4 | len.min(MAX_LEN)
}

impl CueIndex {
    /// The index over `cues`; `None` when there are none.
    pub(crate) fn new(cues: &[CueLiteral<'_>]) -> Result<Option<CueIndex>, String> {
        let mut words: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
        let mut inner: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
        for &(text, matcher, word_start) in cues {
            let lower = text.to_ascii_lowercase().into_bytes();
            // A word literal begins with a letter or digit and has a second byte for its key.
            let word = word_start
                && lower.len() >= 2
                && lower.first().is_some_and(u8::is_ascii_alphanumeric);
            let list = if word { &mut words } else { &mut inner };
            match list.iter_mut().find(|(l, _)| *l == lower) {
                Some((_, targets)) => targets.push(matcher),
                None => list.push((lower, vec![matcher])),
            }
        }
        if words.is_empty() && inner.is_empty() {
            return Ok(None);
        }
        let mut filter = vec![0u64; (1 << (PAIR_BITS + 4)) / 64];
        let mut by_pair: Vec<(usize, u32)> = Vec::new();
        for (i, (literal, _)) in words.iter().enumerate() {
            let p = pair(literal, 0);
            by_pair.push((p, i as u32));
            // The run it begins is its leading letters and digits: exactly those when the
            // literal goes on with another byte, at least those when it is all letters/digits.
            let lead = literal
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            let lengths = if lead == literal.len() {
                lead..=MAX_LEN.max(lead)
            } else {
                lead..=lead
            };
            for len in lengths {
                let k = key(p, len);
                if let Some(w) = filter.get_mut(k / 64) {
                    *w |= 1 << (k % 64);
                }
            }
        }
        by_pair.sort_unstable();
        let mut table = vec![(0u32, 0u32); 1 << PAIR_BITS];
        for (pos, &(p, _)) in by_pair.iter().enumerate() {
            if let Some(slot) = table.get_mut(p) {
                if slot.1 == 0 {
                    slot.0 = pos as u32;
                }
                slot.1 = pos as u32 + 1;
            }
        }
        let order = by_pair.iter().map(|&(_, i)| i).collect();
        let inner = if inner.is_empty() {
            None
        } else {
            let automaton = AhoCorasickBuilder::new()
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(inner.iter().map(|(l, _)| l))
                .map_err(|e| format!("cue literals: {e}"))?;
            Some((automaton, inner.into_iter().map(|(_, t)| t).collect()))
        };
        Ok(Some(CueIndex {
            filter,
            table,
            order,
            literals: words,
            inner,
        }))
    }

    /// Calls `push(position, matcher)` for every position of `hay` where a cue literal of
    /// `matcher` begins (for a word literal: at the start of one of `runs`, `hay`'s
    /// [`ascii_runs`](super::lexicon::ascii_runs)). Word literals come in ascending order,
    /// then the inner ones in automaton order.
    pub(crate) fn positions(
        &self,
        hay: &str,
        runs: &[(usize, usize)],
        push: &mut impl FnMut(usize, usize),
    ) {
        let b = hay.as_bytes();
        if !self.literals.is_empty() {
            for &(s, e) in runs {
                self.at_run(b, s, e, push);
            }
        }
        self.inner_positions(hay, push);
    }

    /// Whether some literal is looked up at word starts ([`at_run`](Self::at_run)).
    pub(crate) fn has_word_literals(&self) -> bool {
        !self.literals.is_empty()
    }

    /// [`positions`](Self::positions) for the word literals at the run `b[s..e]` only.
    #[inline]
    pub(crate) fn at_run(&self, b: &[u8], s: usize, e: usize, push: &mut impl FnMut(usize, usize)) {
        let p = pair(b, s);
        let k = key(p, e - s);
        if self
            .filter
            .get(k / 64)
            .is_none_or(|w| w & (1 << (k % 64)) == 0)
        {
            return;
        }
        let Some(&(from, to)) = self.table.get(p) else {
            return;
        };
        for &i in self.order.get(from as usize..to as usize).unwrap_or(&[]) {
            let Some((literal, targets)) = self.literals.get(i as usize) else {
                continue;
            };
            let here = b
                .get(s..s + literal.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(literal));
            if here {
                for &t in targets {
                    push(s, t);
                }
            }
        }
    }

    /// [`positions`](Self::positions) for the inner literals only (the automaton pass).
    pub(crate) fn inner_positions(&self, hay: &str, push: &mut impl FnMut(usize, usize)) {
        if let Some((automaton, targets)) = &self.inner {
            let mut state = aho_corasick::automaton::OverlappingState::start();
            let input = aho_corasick::Input::new(hay);
            while automaton
                .try_find_overlapping(input.clone(), &mut state)
                .is_ok()
            {
                let Some(m) = state.get_match() else {
                    break;
                };
                for &t in targets.get(m.pattern().as_usize()).into_iter().flatten() {
                    push(m.start(), t);
                }
            }
        }
    }

    /// Whether some literal needs the automaton pass.
    #[cfg(test)]
    pub(crate) fn has_inner(&self) -> bool {
        self.inner.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_boundary_prefixes() {
        assert!(begins_at_word_boundary(
            r"(?i-u:\bpin|\bpass(?:word)?)[ ]+x"
        ));
        assert!(begins_at_word_boundary(r"\b(?:a|b)c"));
        assert!(!begins_at_word_boundary(r"(?i-u:\bpin|card number)[ ]+x"));
        assert!(!begins_at_word_boundary(r"(?i:secret)x"));
        assert!(!begins_at_word_boundary(r"x?\bpin"));
    }

    /// Every occurrence (word literals: at a run start) is reported, with nothing else.
    #[test]
    fn positions_equal_a_brute_force_search() {
        let cues: Vec<CueLiteral<'_>> = vec![
            ("pass", 0, true),
            ("passport", 1, true),
            ("bank account", 2, true),
            ("a/c", 2, true),
            ("to:", 3, true),
            ("tag number", 4, true),
            ("secret", 5, false),
            ("x", 6, true),
            ("x", 8, false),
            ("abcdefghijklmnopqrs", 9, true),
            ("abcdefghijklmnopq-rs", 10, true),
            ("#pin", 7, true),
        ];
        let index = CueIndex::new(&cues).unwrap().unwrap();
        let fragments = [
            "pass",
            "PASSport",
            "bank",
            " account",
            "a/c",
            "A/C",
            "to:",
            "To",
            "tag",
            " number",
            "secret",
            "SeCrEt",
            "x",
            "#pin",
            "_",
            " ",
            "é",
            "9",
            "-",
            "mysecret",
            "bypass",
            "abcdefghijklmnopq",
            "rs",
            "xyz",
        ];
        let mut seed = 0x1234_5678_9abc_def1_u64;
        let mut found = 0;
        for _ in 0..5_000 {
            let mut t = String::new();
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                t.push_str(fragments[(seed % fragments.len() as u64) as usize]);
            }
            let mut runs = Vec::new();
            crate::guard::lexicon::ascii_runs(t.as_bytes(), &mut runs);
            let mut got = Vec::new();
            index.positions(&t, &runs, &mut |p, m| got.push((p, m)));
            got.sort_unstable();
            let b = t.as_bytes();
            let mut expected = Vec::new();
            for &(literal, matcher, word_start) in &cues {
                let l = literal.as_bytes();
                let word = word_start && l.len() >= 2 && l[0].is_ascii_alphanumeric();
                for p in 0..b.len() {
                    let run_start = p == 0 || !b[p - 1].is_ascii_alphanumeric();
                    if b[p..].len() >= l.len()
                        && b[p..p + l.len()].eq_ignore_ascii_case(l)
                        && (!word || run_start)
                    {
                        expected.push((p, matcher));
                    }
                }
            }
            expected.sort_unstable();
            found += expected.len();
            assert_eq!(got, expected, "{t:?}");
        }
        assert!(found > 10_000, "{found}");
    }
}
