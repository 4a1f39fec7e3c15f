//! Denied topics (first cut): a small local classifier built from each topic's name,
//! definition and examples, scored sentence by sentence.
//!
//! Text is split into segments at a sentence terminator followed by whitespace, and after each
//! newline ([`segments`]; the streaming guard uses the same rule, see [`is_terminator`]). Each
//! segment becomes a set of stems: lower-cased alphanumeric tokens of two or more characters,
//! English stop words dropped, a light suffix stemmer (`investments` → `invest`,
//! `cryptocurrencies` → `cryptocurrenc`). A topic's vocabulary weighs its stems: 2.0 for a
//! name stem, 1.0 for other definition/example stems, half that for generic request words
//! ("explain", "build", "best", "year", ...). A segment matches a topic when its distinct
//! matched stems weigh at least [`THRESHOLD`] (and there are at least two of them), or when it
//! contains every stem of one of the topic's examples (two stems or more).
//!
//! No synonyms, no negation, English only: a paraphrase matches when it shares vocabulary with
//! the topic. Bedrock's classifier is the reference for the full-parity issue.

use std::collections::{HashMap, HashSet};

/// Minimum weight of a segment's matched stems for a topic match.
pub(crate) const THRESHOLD: f32 = 2.5;

const NAME_WEIGHT: f32 = 2.0;
const TERM_WEIGHT: f32 = 1.0;
const WEAK_FACTOR: f32 = 0.5;

/// Sorted (tested), searched with binary search.
const STOP_WORDS: &[&str] = &[
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "done",
    "down",
    "during",
    "each",
    "else",
    "even",
    "ever",
    "few",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "getting",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "let",
    "like",
    "may",
    "me",
    "might",
    "mine",
    "more",
    "most",
    "must",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "others",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "please",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "want",
    "was",
    "we",
    "were",
    "what",
    "whats",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "would",
    "yes",
    "you",
    "your",
    "yours",
    "yourself",
];

/// Generic request words: they say how someone asks, not what about.
const WEAK_WORDS: &[&str] = &[
    "advice",
    "anything",
    "best",
    "better",
    "build",
    "create",
    "detail",
    "details",
    "easy",
    "example",
    "explain",
    "find",
    "give",
    "good",
    "guide",
    "help",
    "idea",
    "information",
    "instruction",
    "instructions",
    "know",
    "list",
    "make",
    "making",
    "need",
    "new",
    "now",
    "people",
    "question",
    "quick",
    "recommendation",
    "recommendations",
    "right",
    "show",
    "someone",
    "something",
    "step",
    "steps",
    "tell",
    "thing",
    "think",
    "time",
    "today",
    "tutorial",
    "use",
    "using",
    "way",
    "ways",
    "work",
    "write",
    "year",
];

/// A sentence terminator (ASCII and the fullwidth/ideographic forms, before and after NFKC).
pub(crate) fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '．' | '｡')
}

/// Segment boundaries of `text`: just after a terminator that is followed by whitespace, and
/// just after every newline.
pub(crate) fn segments(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut prev_term = false;
    let mut chars = text.char_indices();
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        for (i, c) in chars.by_ref() {
            let cut = if c == '\n' {
                Some(i + 1)
            } else if prev_term && c.is_whitespace() {
                Some(i)
            } else {
                None
            };
            prev_term = is_terminator(c);
            if let Some(cut) = cut {
                let seg = text.get(start..cut).unwrap_or("");
                start = cut;
                return Some(seg);
            }
        }
        done = true;
        Some(text.get(start..).unwrap_or(""))
    })
}

/// Light suffix stemmer on a lower-cased token.
pub(crate) fn stem(w: &str) -> &str {
    let mut s = w;
    if s.len() > 4 && s.ends_with("ies") {
        s = &s[..s.len() - 3];
    } else if s.ends_with("sses") {
        s = &s[..s.len() - 2];
    } else if s.len() > 3
        && s.ends_with('s')
        && !s.ends_with("ss")
        && !s.ends_with("us")
        && !s.ends_with("is")
    {
        s = &s[..s.len() - 1];
    }
    if s.len() >= 6 && s.ends_with("ing") {
        s = &s[..s.len() - 3];
    } else if s.len() >= 5 && s.ends_with("ed") {
        s = &s[..s.len() - 2];
    } else if s.len() >= 8 && s.ends_with("ment") {
        s = &s[..s.len() - 4];
    } else if s.len() >= 5 && s.ends_with("ly") {
        s = &s[..s.len() - 2];
    }
    if s.len() > 3 && (s.ends_with('e') || s.ends_with('y')) {
        s = &s[..s.len() - 1];
    }
    s
}

fn is_stop(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// Distinct content stems of `text`, borrowed from `lower` (which this fills).
fn stems_into<'a>(text: &str, lower: &'a mut String) -> Vec<&'a str> {
    lower.clear();
    for c in text.chars() {
        if c.is_alphanumeric() {
            lower.extend(c.to_lowercase());
        } else if c != '\'' && c != '\u{2019}' {
            lower.push(' ');
        }
    }
    let lower: &'a String = lower;
    let mut out: Vec<&str> = lower
        .split(' ')
        .filter(|t| t.chars().nth(1).is_some() && !is_stop(t))
        .map(stem)
        .filter(|s| !s.is_empty())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn owned_stems(text: &str) -> Vec<String> {
    let mut buf = String::new();
    stems_into(text, &mut buf)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Stems of the built-in generic request words.
pub(crate) fn weak_stems() -> HashSet<String> {
    owned_stems(&WEAK_WORDS.join(" ")).into_iter().collect()
}

/// One compiled denied topic.
#[derive(Debug, Clone)]
pub(crate) struct TopicModel {
    pub(crate) rule: usize,
    weights: HashMap<String, f32>,
    examples: Vec<Vec<String>>,
}

impl TopicModel {
    pub(crate) fn new(
        rule: usize,
        name: &str,
        definition: &str,
        examples: &[String],
        weak: &HashSet<String>,
    ) -> TopicModel {
        let mut weights: HashMap<String, f32> = HashMap::new();
        let factor = |s: &str| if weak.contains(s) { WEAK_FACTOR } else { 1.0 };
        let mut add = |s: String, w: f32| {
            let e = weights.entry(s).or_insert(0.0);
            if w > *e {
                *e = w;
            }
        };
        for s in owned_stems(name) {
            let w = NAME_WEIGHT * factor(&s);
            add(s, w);
        }
        let mut example_stems = Vec::new();
        for text in std::iter::once(definition).chain(examples.iter().map(String::as_str)) {
            for s in owned_stems(text) {
                let w = TERM_WEIGHT * factor(&s);
                add(s, w);
            }
        }
        for ex in examples {
            let stems = owned_stems(ex);
            if stems.len() >= 2 {
                example_stems.push(stems);
            }
        }
        TopicModel {
            rule,
            weights,
            examples: example_stems,
        }
    }

    /// Whether one segment's distinct stems match this topic.
    fn matches(&self, stems: &[&str]) -> bool {
        let mut score = 0.0f32;
        let mut hits = 0;
        for s in stems {
            if let Some(w) = self.weights.get(*s) {
                score += w;
                hits += 1;
            }
        }
        if hits >= 2 && score >= THRESHOLD {
            return true;
        }
        self.examples
            .iter()
            .any(|ex| ex.iter().all(|e| stems.binary_search(&e.as_str()).is_ok()))
    }
}

/// Calls `hit` with the rule of every topic some segment of `text` matches (possibly more than
/// once per topic).
pub(crate) fn classify(topics: &[TopicModel], text: &str, mut hit: impl FnMut(usize)) {
    if topics.is_empty() {
        return;
    }
    let mut lower = String::new();
    let mut found = vec![false; topics.len()];
    for seg in segments(text) {
        let stems = stems_into(seg, &mut lower);
        if stems.len() < 2 {
            continue;
        }
        for (i, t) in topics.iter().enumerate() {
            if !found.get(i).copied().unwrap_or(true) && t.matches(&stems) {
                if let Some(f) = found.get_mut(i) {
                    *f = true;
                }
                hit(t.rule);
            }
        }
        if found.iter().all(|f| *f) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_sorted() {
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, STOP_WORDS);
    }

    #[test]
    fn stemming_is_consistent() {
        for (a, b) in [
            ("investing", "investments"),
            ("investment", "invest"),
            ("cryptocurrencies", "cryptocurrency"),
            ("stocks", "stock"),
            ("assembling", "assemble"),
            ("explosives", "explosive"),
            ("buying", "buy"),
            ("securities", "security"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
    }

    #[test]
    fn segments_split_on_terminator_and_whitespace() {
        let segs: Vec<&str> = segments("A b. C 3.14 d!\nE? f").collect();
        assert_eq!(segs, vec!["A b.", " C 3.14 d!\n", "E?", " f"]);
        assert_eq!(segments("").collect::<Vec<_>>(), vec![""]);
    }

    fn investing() -> TopicModel {
        TopicModel::new(
            7,
            "Investment advice",
            "Recommendations about which stocks, funds, cryptocurrencies or other securities to buy or sell.",
            &[
                "Which stocks should I buy this year?".to_string(),
                "Is bitcoin a good investment right now?".to_string(),
            ],
            &weak_stems(),
        )
    }

    fn hits(text: &str) -> Vec<usize> {
        let mut out = Vec::new();
        classify(&[investing()], text, |r| out.push(r));
        out
    }

    #[test]
    fn examples_and_paraphrases_match_benign_does_not() {
        assert_eq!(hits("Which stocks should I buy this year?"), vec![7]);
        assert_eq!(
            hits("Hello. Is Bitcoin a good investment right now?"),
            vec![7]
        );
        assert_eq!(
            hits("Would investing in cryptocurrencies be smart?"),
            vec![7]
        );
        assert!(hits("Which laptop should I buy this year?").is_empty());
        assert!(hits("Our sales team wants customers to buy and not sell.").is_empty());
        assert!(hits("What is the capital of France?").is_empty());
    }
}
