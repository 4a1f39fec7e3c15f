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

#[cfg(test)]
mod tests {
    use super::*;

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
