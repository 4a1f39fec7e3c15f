//! Word policy: custom words/phrases and the managed PROFANITY list, matched whole-word and
//! case-insensitively on normalized text. One alternation regex per list (longest first) finds
//! candidates; a word-boundary check on Unicode alphanumerics confirms them, and the matched
//! text, case-folded, names the configured word that matched.

use std::collections::HashMap;

/// The managed profanity list (first cut: a small built-in English list).
pub(crate) const PROFANITY: &[&str] = &[
    "arsehole",
    "asshole",
    "assholes",
    "bastard",
    "bastards",
    "bitch",
    "bitches",
    "bollocks",
    "bullshit",
    "cock",
    "cocksucker",
    "cunt",
    "cunts",
    "dickhead",
    "fuck",
    "fucked",
    "fucker",
    "fuckers",
    "fucking",
    "fucks",
    "motherfucker",
    "motherfuckers",
    "motherfucking",
    "prick",
    "shit",
    "shits",
    "shitty",
    "twat",
    "wanker",
];

/// Lower-case and collapse whitespace runs to one space: the key a configured word and a
/// matched span share.
pub(crate) fn fold_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, part) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for c in part.chars() {
            // Final sigma folds like sigma, as the regex's case-insensitive match does.
            out.extend(c.to_lowercase().map(|l| if l == 'ς' { 'σ' } else { l }));
        }
    }
    out
}

/// `(?i)(?:w1|w2|...)`, longest first, whitespace inside a phrase matching any whitespace run.
/// With `bounded`, an edge that is a letter or digit must sit at a word boundary (so `cat`
/// never matches inside `concat`, while `c++` still matches before a space). The unbounded form
/// is the cheap prefilter for the guardrail's regex set. `words` must already be normalized.
pub(crate) fn alternation<'a>(words: impl Iterator<Item = &'a str>, bounded: bool) -> String {
    let mut list: Vec<&str> = words.filter(|w| !w.trim().is_empty()).collect();
    list.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    list.dedup();
    let mut pattern = String::from("(?i)(?:");
    for (i, w) in list.iter().enumerate() {
        if i > 0 {
            pattern.push('|');
        }
        let w = w.trim();
        if bounded && w.chars().next().is_some_and(char::is_alphanumeric) {
            pattern.push_str(r"\b");
        }
        for (j, part) in w.split_whitespace().enumerate() {
            if j > 0 {
                pattern.push_str(r"\s+");
            }
            pattern.push_str(&regex::escape(part));
        }
        if bounded && w.chars().next_back().is_some_and(char::is_alphanumeric) {
            pattern.push_str(r"\b");
        }
    }
    pattern.push(')');
    pattern
}

/// Configured custom words by folded key → rule index.
#[derive(Debug, Clone, Default)]
pub(crate) struct WordIndex {
    pub(crate) by_key: HashMap<String, usize>,
    /// The first configured word's rule: blamed when a match's folded text names no word
    /// (a case-folding corner the key doesn't cover), so the match still blocks.
    pub(crate) fallback: Option<usize>,
}

impl WordIndex {
    pub(crate) fn insert(&mut self, key: String, rule: usize) {
        self.fallback.get_or_insert(rule);
        self.by_key.insert(key, rule);
    }

    pub(crate) fn rule_for(&self, matched: &str) -> Option<usize> {
        self.by_key
            .get(&fold_key(matched))
            .copied()
            .or(self.fallback)
    }
}

/// A sound prefilter for an ASCII-case-insensitive automaton searched anchored at one
/// position: a bit set of hashed, lower-cased 4-byte pattern prefixes (and whole patterns
/// shorter than that). `may_match` is false only where no pattern can begin; a hash collision
/// only costs the automaton search it would have done anyway. The leetspeak lookup uses it
/// before searching the word automaton.
#[derive(Debug, Clone, Default)]
pub(crate) struct PrefixFilter {
    bits: Vec<u64>,
    /// log2 of the bit count.
    log2: u32,
    /// Whether some pattern has length 1, 2, 3 (index 0..3) or at least 4 (index 3).
    lengths: [bool; 4],
}

fn prefix_key(b: &[u8]) -> u64 {
    let mut k = 0u64;
    for (i, c) in b.iter().enumerate() {
        k |= u64::from(c.to_ascii_lowercase()) << (8 * i);
    }
    k | ((b.len() as u64) << 40)
}

impl PrefixFilter {
    pub(crate) fn new<'a>(patterns: impl IntoIterator<Item = &'a [u8]>) -> PrefixFilter {
        let patterns: Vec<&[u8]> = patterns.into_iter().filter(|p| !p.is_empty()).collect();
        let log2 = (patterns.len().max(1) * 32)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(10, 20);
        let mut f = PrefixFilter {
            bits: vec![0; (1usize << log2) / 64],
            log2,
            lengths: [false; 4],
        };
        for p in patterns {
            let n = p.len().min(4);
            if let Some(l) = f.lengths.get_mut(n - 1) {
                *l = true;
            }
            let h = f.slot(prefix_key(p.get(..n).unwrap_or(p)));
            if let Some(w) = f.bits.get_mut(h / 64) {
                *w |= 1 << (h % 64);
            }
        }
        f
    }

    fn slot(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.log2).min(63)) as usize
    }

    fn test(&self, b: &[u8]) -> bool {
        let h = self.slot(prefix_key(b));
        self.bits
            .get(h / 64)
            .is_some_and(|w| w & (1 << (h % 64)) != 0)
    }

    /// Whether some pattern may match `b` anchored at `p`.
    pub(crate) fn may_match(&self, b: &[u8], p: usize) -> bool {
        let Some(rest) = b.get(p..) else {
            return false;
        };
        if self.lengths[3] && rest.len() >= 4 && self.test(&rest[..4]) {
            return true;
        }
        (1..4).any(|n| self.lengths[n - 1] && rest.len() >= n && self.test(&rest[..n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pattern passes its filter at any offset, in any ASCII case, with anything after
    /// it; most other words don't (checked to fail when `may_match` ignores a length).
    #[test]
    fn prefix_filter_is_sound() {
        let pats = [
            "x",
            "ab",
            "c++",
            "secret project",
            "bananas",
            "sh1t",
            "o'neil",
        ];
        let f = PrefixFilter::new(pats.iter().map(|p| p.as_bytes()));
        for p in pats {
            for text in [
                p.to_string(),
                format!("--{}", p.to_ascii_uppercase()),
                format!(" {p}s and more"),
            ] {
                let at = text.len() - text.trim_start_matches(['-', ' ']).len();
                assert!(f.may_match(text.as_bytes(), at), "{p} in {text:?}");
            }
        }
        let rejected = ["zebra", "quilt", "mmmm", "kk", "q"]
            .iter()
            .filter(|w| !f.may_match(w.as_bytes(), 0))
            .count();
        assert!(rejected >= 4, "{rejected}");
        assert!(!PrefixFilter::default().may_match(b"abc", 0));
    }

    #[test]
    fn alternation_is_longest_first_escaped_and_bounded() {
        let words = ["a.b", "secret  project", "x", "c++"];
        let p = alternation(words.into_iter(), false);
        assert_eq!(p, r"(?i)(?:secret\s+project|a\.b|c\+\+|x)");
        let re = regex::Regex::new(&alternation(words.into_iter(), true)).unwrap();
        assert!(re.is_match("SECRET\tProject"));
        assert!(re.is_match("I like c++ a lot"));
        assert!(!re.is_match("xylophone"));
        let re = regex::Regex::new(&alternation(["secret", "secret project"].into_iter(), true))
            .unwrap();
        assert_eq!(
            re.find("the secret projects").map(|m| m.as_str()),
            Some("secret")
        );
        assert!(!re.is_match("secrets and concatsecret"));
        assert_eq!(fold_key("  Secret \n PROJECT "), "secret project");
        assert_eq!(fold_key("ΟΔΟΣ"), fold_key("οδος"));
    }
}
