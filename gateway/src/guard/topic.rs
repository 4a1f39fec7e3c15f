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
//! covers at least [`EXAMPLE_COVERAGE`] of the weight of one of the topic's examples with two
//! stems or more ("Should I buy Tesla stock?" covers `stock` and `buy` of "Which stocks should
//! I buy this year?"; "I want to buy a car this year" covers only `buy` and the weak `year`).
//!
//! No synonyms, no negation, English only: a paraphrase matches when it shares vocabulary with
//! the topic. Bedrock's classifier is the reference for the full-parity issue.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Minimum weight of a segment's matched stems for a topic match.
pub(crate) const THRESHOLD: f32 = 2.5;

const NAME_WEIGHT: f32 = 2.0;
const TERM_WEIGHT: f32 = 1.0;
const WEAK_FACTOR: f32 = 0.5;
/// Share of an example's stem weight a segment must contain (with two stems or more).
pub(crate) const EXAMPLE_COVERAGE: f32 = 0.75;

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
    let strip = |s: &str, suffix: &str, min_len: usize| -> Option<usize> {
        (s.len() >= min_len && s.ends_with(suffix)).then_some(suffix.len())
    };
    fn cut(s: &str, n: usize) -> &str {
        s.get(..s.len().saturating_sub(n)).unwrap_or(s)
    }
    let mut s = w;
    if let Some(n) = strip(s, "ies", 5) {
        s = cut(s, n);
    } else if s.ends_with("sses") {
        s = cut(s, 2);
    } else if s.len() > 3
        && s.ends_with('s')
        && !s.ends_with("ss")
        && !s.ends_with("us")
        && !s.ends_with("is")
    {
        s = cut(s, 1);
    }
    if let Some(n) = strip(s, "ing", 6)
        .or_else(|| strip(s, "ed", 5))
        .or_else(|| strip(s, "ment", 8))
        .or_else(|| strip(s, "ly", 5))
    {
        s = cut(s, n);
    }
    if s.len() > 3 && (s.ends_with('e') || s.ends_with('y')) {
        s = cut(s, 1);
    }
    s
}

fn is_stop(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// Calls `f` with every lower-cased token of two or more characters: a run of letters and
/// digits, apostrophes dropped (`what's` → `whats`). `buf` is reused scratch space.
fn for_each_token(text: &str, buf: &mut String, mut f: impl FnMut(&str)) {
    buf.clear();
    let mut chars = 0usize;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_ascii() {
                buf.push(c.to_ascii_lowercase());
            } else {
                buf.extend(c.to_lowercase());
            }
            chars += 1;
        } else if c != '\'' && c != '\u{2019}' {
            if chars >= 2 {
                f(buf);
            }
            buf.clear();
            chars = 0;
        }
    }
    if chars >= 2 {
        f(buf);
    }
}

/// Distinct content stems of `text`, sorted.
fn owned_stems(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = String::new();
    for_each_token(text, &mut buf, |t| {
        if !is_stop(t) {
            let s = stem(t);
            if !s.is_empty() {
                out.push(s.to_string());
            }
        }
    });
    out.sort_unstable();
    out.dedup();
    out
}

/// Stems of the built-in generic request words.
pub(crate) fn weak_stems() -> HashSet<String> {
    owned_stems(&WEAK_WORDS.join(" ")).into_iter().collect()
}

/// FxHash (as in rustc): the vocabulary is fixed at compile time and only probed with request
/// text, so a fast non-keyed hash is enough.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (slot, b) in word.iter_mut().zip(chunk) {
                *slot = *b;
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// One compiled denied topic, over its index's vocabulary ids.
#[derive(Debug, Clone)]
struct TopicModel {
    rule: usize,
    /// (vocabulary id, weight), sorted by id.
    weights: Vec<(u32, f32)>,
    /// Each example's distinct vocabulary ids (examples with two or more stems), and their
    /// total weight.
    examples: Vec<(Vec<u32>, f32)>,
}

impl TopicModel {
    fn weight(&self, id: u32) -> Option<f32> {
        self.weights
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .and_then(|i| self.weights.get(i))
            .map(|(_, w)| *w)
    }

    /// Whether one segment's distinct, sorted vocabulary ids match this topic.
    fn matches(&self, ids: &[u32]) -> bool {
        let mut score = 0.0f32;
        let mut hits = 0;
        for &id in ids {
            if let Some(w) = self.weight(id) {
                score += w;
                hits += 1;
            }
        }
        if hits >= 2 && score >= THRESHOLD {
            return true;
        }
        self.examples.iter().any(|(ex, total)| {
            let mut covered = 0.0f32;
            let mut count = 0;
            for e in ex {
                if ids.binary_search(e).is_ok() {
                    covered += self.weight(*e).unwrap_or(0.0);
                    count += 1;
                }
            }
            count >= 2 && covered >= EXAMPLE_COVERAGE * total
        })
    }
}

/// Every denied topic of one guardrail, over one shared stem vocabulary: a request's tokens
/// are stemmed and looked up once, whatever the number of topics.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicIndex {
    vocab: HashMap<String, u32, FxBuild>,
    topics: Vec<TopicModel>,
}

impl TopicIndex {
    pub(crate) fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    fn id(&mut self, stem: String) -> u32 {
        let next = u32::try_from(self.vocab.len()).unwrap_or(u32::MAX);
        *self.vocab.entry(stem).or_insert(next)
    }

    /// Compile one topic (name, definition and examples already normalized); its matches
    /// report `rule`.
    pub(crate) fn add(
        &mut self,
        rule: usize,
        name: &str,
        definition: &str,
        examples: &[String],
        weak: &HashSet<String>,
    ) {
        let mut weights: HashMap<u32, f32> = HashMap::new();
        let factor = |s: &str| if weak.contains(s) { WEAK_FACTOR } else { 1.0 };
        let mut add = |id: u32, w: f32| {
            let e = weights.entry(id).or_insert(0.0);
            if w > *e {
                *e = w;
            }
        };
        for s in owned_stems(name) {
            let w = NAME_WEIGHT * factor(&s);
            add(self.id(s), w);
        }
        for text in std::iter::once(definition).chain(examples.iter().map(String::as_str)) {
            for s in owned_stems(text) {
                let w = TERM_WEIGHT * factor(&s);
                add(self.id(s), w);
            }
        }
        let mut example_ids = Vec::new();
        for ex in examples {
            let mut ids: Vec<u32> = owned_stems(ex).into_iter().map(|s| self.id(s)).collect();
            ids.sort_unstable();
            if ids.len() >= 2 {
                example_ids.push(ids);
            }
        }
        let examples = example_ids
            .into_iter()
            .map(|ids| {
                let total = ids.iter().filter_map(|id| weights.get(id)).sum();
                (ids, total)
            })
            .collect();
        let mut weights: Vec<(u32, f32)> = weights.into_iter().collect();
        weights.sort_unstable_by_key(|(id, _)| *id);
        self.topics.push(TopicModel {
            rule,
            weights,
            examples,
        });
    }

    /// Calls `hit` once with the rule of every topic some segment of `text` matches.
    pub(crate) fn classify(&self, text: &str, mut hit: impl FnMut(usize)) {
        if self.topics.is_empty() {
            return;
        }
        let mut buf = String::new();
        let mut ids: Vec<u32> = Vec::new();
        let mut found = vec![false; self.topics.len()];
        for seg in segments(text) {
            ids.clear();
            for_each_token(seg, &mut buf, |t| {
                if let Some(&id) = self.vocab.get(stem(t))
                    && !is_stop(t)
                {
                    ids.push(id);
                }
            });
            if ids.len() < 2 {
                continue;
            }
            ids.sort_unstable();
            ids.dedup();
            for (t, done) in self.topics.iter().zip(found.iter_mut()) {
                if !*done && t.matches(&ids) {
                    *done = true;
                    hit(t.rule);
                }
            }
            if found.iter().all(|f| *f) {
                break;
            }
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

    fn investing() -> TopicIndex {
        let mut index = TopicIndex::default();
        index.add(
            7,
            "Investment advice",
            "Recommendations about which stocks, funds, cryptocurrencies or other securities to buy or sell.",
            &[
                "Which stocks should I buy this year?".to_string(),
                "Is bitcoin a good investment right now?".to_string(),
            ],
            &weak_stems(),
        );
        index
    }

    fn hits(text: &str) -> Vec<usize> {
        let mut out = Vec::new();
        investing().classify(text, |r| out.push(r));
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
        assert_eq!(hits("Should I buy Tesla stock?"), vec![7]);
        assert!(hits("Which laptop should I buy this year?").is_empty());
        assert!(hits("I want to buy a car this year.").is_empty());
        assert!(hits("Our sales team wants customers to buy and not sell.").is_empty());
        assert!(hits("What is the capital of France?").is_empty());
    }
}
