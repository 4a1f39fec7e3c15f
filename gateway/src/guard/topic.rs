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
//! Synonym groups shipped in the crate ([`SYNONYMS`]: financial instruments, trading verbs,
//! weapons, building verbs, drugs, medicine, law, politics, gambling, violence) widen each
//! topic's vocabulary: a topic about "stocks" also knows "shares", "ETFs" and "bitcoin". No
//! negation, English only. Recall on paraphrases and the false-positive rate on text the rules
//! were not written from are measured in `tests/guard_topics.rs`.

use std::collections::{HashMap, HashSet};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
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

/// Synonym groups shipped with the classifier: a topic whose name, definition or examples use
/// one member also matches the others, at the same weight. Groups cover the subjects denied
/// topics are usually about (investing, weapons, drugs, medicine, law, politics, gambling,
/// violence) and the verbs requests about them use.
const SYNONYMS: &[&str] = &[
    "stock stocks share shares equity equities fund funds etf etfs bond bonds security securities crypto cryptocurrency cryptocurrencies bitcoin ethereum dogecoin altcoin coin coins token tokens gold options futures reit ticker portfolio holdings",
    "buy sell purchase dump trade acquire offload divest short",
    "investment investing invest investor savings retirement 401k ira capital bonus",
    "advice recommend recommendation suggest advise tip tips pick worth",
    "weapon weapons gun guns firearm firearms rifle rifles pistol pistols handgun handguns shotgun bomb bombs explosive explosives grenade grenades ied silencer suppressor ammunition ammo receiver detonator molotov napalm",
    "build building make making assemble assembling manufacture manufacturing construct print printing convert modify modifying mix craft homemade diy",
    "drug drugs cocaine heroin meth methamphetamine fentanyl mdma lsd cannabis marijuana weed opioid opioids narcotics",
    "diagnosis diagnose symptom symptoms medication medicine dosage dose prescription treatment disease illness",
    "lawyer attorney lawsuit sue legal court litigation liability",
    "election elections vote voting candidate candidates politician politicians president campaign ballot",
    "bet betting gamble gambling casino odds poker wager",
    "kill killing murder hurt attack assault stab shoot poison",
    "instructions instruction steps step guide tutorial explain teach walkthrough",
];

/// Groups of request words (verbs of trading, building, advising, instructing): alone they
/// never make a topic match; a segment needs a subject word too.
const ACTION_GROUPS: [usize; 4] = [1, 3, 5, 12];

/// Whether a stem is a request word (see [`ACTION_GROUPS`]).
fn is_action(stem_: &str) -> bool {
    synonym_groups()
        .get(stem_)
        .is_some_and(|g| g.iter().any(|i| ACTION_GROUPS.contains(i)))
}

/// Score for a subject word plus a request word ("dump my stock", "pick a fund").
const PAIR_THRESHOLD: f32 = 2.0;

/// Stem → the synonym groups it belongs to.
fn synonym_groups() -> &'static HashMap<String, Vec<usize>> {
    static GROUPS: std::sync::LazyLock<HashMap<String, Vec<usize>>> =
        std::sync::LazyLock::new(|| {
            let mut m: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, g) in SYNONYMS.iter().enumerate() {
                for w in g.split_ascii_whitespace() {
                    let e = m.entry(stem(w).to_string()).or_default();
                    if !e.contains(&i) {
                        e.push(i);
                    }
                }
            }
            m
        });
    &GROUPS
}

/// `stem` and every stem in a synonym group with it.
fn expand(stem_: &str) -> Vec<String> {
    let mut out = vec![stem_.to_string()];
    if let Some(groups) = synonym_groups().get(stem_) {
        for &g in groups {
            if let Some(list) = SYNONYMS.get(g) {
                for w in list.split_ascii_whitespace() {
                    let s = stem(w).to_string();
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
            }
        }
    }
    out
}

/// A sentence terminator (ASCII and the fullwidth/ideographic forms, before and after NFKC).
pub(crate) fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '．' | '｡')
}

/// Segment boundaries of `text`: just after a terminator that is followed by whitespace, and
/// just after every newline. One regex pass finds the cuts (it skips ahead with a byte-set
/// prefilter), so plain text is not decoded character by character.
pub(crate) fn segments(text: &str) -> impl Iterator<Item = &str> {
    static CUTS: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\n|[.!?。！？．｡]\s").ok());
    let mut matches = CUTS.as_ref().map(|re| re.find_iter(text));
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        if let Some(it) = matches.as_mut() {
            for m in it.by_ref() {
                let s = m.as_str();
                let cut = if s.ends_with('\n') {
                    m.end()
                } else {
                    // Before the whitespace that follows the terminator.
                    m.end() - s.chars().next_back().map_or(0, char::len_utf8)
                };
                if cut > start || s == "\n" {
                    let seg = text.get(start..cut).unwrap_or("");
                    start = cut;
                    return Some(seg);
                }
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
    /// Ids of request words (sorted): a match needs at least one id that is not one.
    actions: Vec<u32>,
}

impl TopicModel {
    fn weight(&self, id: u32) -> Option<f32> {
        self.weights
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .and_then(|i| self.weights.get(i))
            .map(|(_, w)| *w)
    }

    /// Whether one segment's distinct, sorted vocabulary ids match this topic: at least one
    /// subject word, and enough weight (or one request word with it, or most of an example).
    fn matches(&self, ids: &[u32]) -> bool {
        let mut score = 0.0f32;
        let mut hits = 0;
        let mut subjects = 0;
        let mut actions = 0;
        for &id in ids {
            if let Some(w) = self.weight(id) {
                score += w;
                hits += 1;
                if self.actions.binary_search(&id).is_ok() {
                    actions += 1;
                } else {
                    subjects += 1;
                }
            }
        }
        if subjects == 0 {
            return false;
        }
        if hits >= 2 && score >= THRESHOLD {
            return true;
        }
        if actions >= 1 && score >= PAIR_THRESHOLD {
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
    /// One automaton over the (ASCII) vocabulary: a segment's tokens are looked at only where
    /// a vocabulary stem starts a word (a stem is always a prefix of its token). `None` when
    /// the vocabulary has non-ASCII stems: every token is then looked up.
    prefilter: Option<AhoCorasick>,
    /// The subject (non-request) stems only: a text without one can't match any topic.
    subjects: Option<AhoCorasick>,
    /// With an ASCII vocabulary of stems of two or more bytes: one bit per lower-cased
    /// two-byte stem prefix (65,536 bits). A token whose first two bytes are not one has no
    /// stem in the vocabulary, and is not stemmed.
    bigrams: Option<Vec<u64>>,
    /// With `bigrams`: one bit per hashed lower-cased three-byte prefix of the stems of three
    /// or more bytes (65,536 bits), asked for the runs whose stem is that long
    /// ([`stem_is_long`]): most common words are turned away here before being stemmed.
    trigrams: Vec<u64>,
}

/// Whether [`stem`] keeps at least three bytes of the (ASCII, lower-cased) word `w`: only the
/// plural rules cut below three, and only words ending in `s` of five bytes or fewer.
fn stem_is_long(w: &[u8]) -> bool {
    w.len() >= 6 || (w.len() >= 3 && w.last().is_some_and(|c| c | 0x20 != b's'))
}

/// The filter bit of the lower-cased three bytes `b[..3]`.
fn trigram(b: &[u8]) -> usize {
    let at = |k: usize| u32::from(b.get(k).map_or(0, |c| c | 0x20));
    ((at(0) | at(1) << 8 | at(2) << 16).wrapping_mul(0x9E37_79B1) >> 16) as usize
}

/// Whether `gap` (text between two runs of letters and digits; `after` is the text after it)
/// holds a [`segments`] cut: a newline, or a terminator followed by whitespace.
fn gap_has_cut(gap: &str, after: &str) -> bool {
    if gap
        .bytes()
        .all(|c| c.is_ascii() && !matches!(c, b'\n' | b'.' | b'!' | b'?'))
    {
        return false;
    }
    let mut chars = gap.chars().chain(after.chars().take(1)).peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || (is_terminator(c) && chars.peek().is_some_and(|n| n.is_whitespace())) {
            return true;
        }
    }
    false
}

fn bigram(a: u8, b: u8) -> usize {
    (usize::from(a | 0x20) << 8) | usize::from(b | 0x20)
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
            for x in expand(&s) {
                add(self.id(x), w);
            }
        }
        for text in std::iter::once(definition).chain(examples.iter().map(String::as_str)) {
            for s in owned_stems(text) {
                let w = TERM_WEIGHT * factor(&s);
                for x in expand(&s) {
                    add(self.id(x), w);
                }
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
        let mut actions: Vec<u32> = self
            .vocab
            .iter()
            .filter(|(stem_, _)| is_action(stem_))
            .map(|(_, id)| *id)
            .collect();
        actions.sort_unstable();
        self.topics.push(TopicModel {
            rule,
            weights,
            examples,
            actions,
        });
    }

    /// Build the vocabulary prefilters; call after the last [`add`](Self::add).
    pub(crate) fn finish(&mut self) {
        let stems: Vec<&String> = self.vocab.keys().collect();
        let build = |list: &[&String]| {
            AhoCorasickBuilder::new()
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(list)
                .ok()
        };
        self.bigrams = None;
        if !stems.is_empty() && stems.iter().all(|s| s.is_ascii() && s.len() >= 2) {
            let mut bits = vec![0u64; 1 << 10];
            for s in &stems {
                if let [a, b, ..] = s.as_bytes() {
                    let k = bigram(*a, *b);
                    if let Some(w) = bits.get_mut(k / 64) {
                        *w |= 1 << (k % 64);
                    }
                }
            }
            self.bigrams = Some(bits);
            let mut tri = vec![0u64; 1 << 10];
            for s in stems.iter().filter(|s| s.len() >= 3) {
                let k = trigram(s.as_bytes());
                if let Some(w) = tri.get_mut(k / 64) {
                    *w |= 1 << (k % 64);
                }
            }
            self.trigrams = tri;
        }
        if !stems.is_empty() && stems.iter().all(|s| s.is_ascii()) {
            let subjects: Vec<&String> = stems.iter().copied().filter(|s| !is_action(s)).collect();
            self.prefilter = build(&stems);
            self.subjects = if subjects.is_empty() {
                None
            } else {
                build(&subjects)
            };
        } else {
            self.prefilter = None;
            self.subjects = None;
        }
    }

    /// The vocabulary ids of `seg`'s tokens (not necessarily distinct).
    fn segment_ids(&self, seg: &str, buf: &mut String, ids: &mut Vec<u32>) {
        let Some(ac) = &self.prefilter else {
            for_each_token(seg, buf, |t| {
                if let Some(&id) = self.vocab.get(stem(t))
                    && !is_stop(t)
                {
                    ids.push(id);
                }
            });
            return;
        };
        let bytes = seg.as_bytes();
        for m in ac.find_iter(seg) {
            let start = m.start();
            let word_start = start == 0
                || !bytes
                    .get(start - 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b >= 0x80 || *b == b'\'');
            if !word_start {
                continue;
            }
            let mut end = m.end();
            while bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) {
                end += 1;
            }
            if bytes.get(end).is_some_and(|b| *b >= 0x80 || *b == b'\'') {
                // Non-ASCII letters or an apostrophe: tokenise this word the slow way.
                let mut e = end;
                while let Some(c) = seg.get(e..).and_then(|r| r.chars().next()) {
                    if c.is_alphanumeric() || c == '\'' || c == '\u{2019}' {
                        e += c.len_utf8();
                    } else {
                        break;
                    }
                }
                if let Some(word) = seg.get(start..e) {
                    for_each_token(word, buf, |t| {
                        if let Some(&id) = self.vocab.get(stem(t))
                            && !is_stop(t)
                        {
                            ids.push(id);
                        }
                    });
                }
                continue;
            }
            let Some(word) = seg.get(start..end) else {
                continue;
            };
            if word.len() < 2 {
                continue;
            }
            buf.clear();
            buf.push_str(word);
            buf.make_ascii_lowercase();
            if let Some(&id) = self.vocab.get(stem(buf))
                && !is_stop(buf)
            {
                ids.push(id);
            }
        }
    }

    /// [`classify`](Self::classify), given `text`'s [`ascii_runs`](super::lexicon::ascii_runs):
    /// a segment's tokens are its runs (looked up when their first two bytes begin some stem),
    /// no automaton pass. Equal to `classify` (the tests compare them).
    pub(crate) fn classify_runs(
        &self,
        text: &str,
        runs: &[(usize, usize)],
        mut hit: impl FnMut(usize),
    ) {
        let Some(bigrams) = &self.bigrams else {
            self.classify(text, hit);
            return;
        };
        if self.topics.is_empty() || self.subjects.is_none() {
            return;
        }
        let b = text.as_bytes();
        let mut buf = String::new();
        let mut ids: Vec<u32> = Vec::new();
        let mut found = vec![false; self.topics.len()];
        // Segments are not cut out: a run is in a new segment when the gap before it holds a
        // cut ([`segments`]: a newline, or a terminator followed by whitespace).
        let mut gap_start = 0;
        for &(s, e) in runs {
            let gap = text.get(gap_start..s).unwrap_or("");
            gap_start = e;
            if gap_has_cut(gap, text.get(s..).unwrap_or("")) {
                if self.match_segment(&mut ids, &mut found, &mut hit) {
                    return;
                }
                ids.clear();
            }
            if s > 0 && b.get(s - 1).is_some_and(|&p| p >= 0x80 || p == b'\'') {
                continue;
            }
            if b.get(e).is_some_and(|&c| c >= 0x80 || c == b'\'') {
                // Non-ASCII letters or an apostrophe follow: looked at, as `classify` does,
                // when some stem begins the word.
                let run = b.get(s..e).unwrap_or(&[]);
                let begins = (1..=run.len()).any(|k| {
                    buf.clear();
                    buf.extend(
                        run.iter()
                            .take(k)
                            .map(|c| char::from(c.to_ascii_lowercase())),
                    );
                    self.vocab.contains_key(buf.as_str())
                });
                if begins {
                    let mut end = e;
                    while let Some(c) = text.get(end..).and_then(|t| t.chars().next()) {
                        if c.is_alphanumeric() || c == '\'' || c == '\u{2019}' {
                            end += c.len_utf8();
                        } else {
                            break;
                        }
                    }
                    let word = text.get(s..end).unwrap_or("");
                    for_each_token(word, &mut buf, |t| {
                        if let Some(&id) = self.vocab.get(stem(t))
                            && !is_stop(t)
                        {
                            ids.push(id);
                        }
                    });
                }
                continue;
            }
            let (Some(&x), Some(&y)) = (b.get(s), b.get(s + 1)) else {
                continue;
            };
            let k = bigram(x, y);
            if e - s < 2 || bigrams.get(k / 64).is_none_or(|w| w & (1 << (k % 64)) == 0) {
                continue;
            }
            let run = b.get(s..e).unwrap_or(&[]);
            if stem_is_long(run) {
                let t = trigram(run);
                if self
                    .trigrams
                    .get(t / 64)
                    .is_none_or(|w| w & (1 << (t % 64)) == 0)
                {
                    continue;
                }
            }
            buf.clear();
            buf.push_str(text.get(s..e).unwrap_or(""));
            buf.make_ascii_lowercase();
            if let Some(&id) = self.vocab.get(stem(&buf))
                && !is_stop(&buf)
            {
                ids.push(id);
            }
        }
        self.match_segment(&mut ids, &mut found, &mut hit);
    }

    /// Reports every not yet `found` topic that one segment's vocabulary `ids` match; whether
    /// all are found now.
    fn match_segment(
        &self,
        ids: &mut Vec<u32>,
        found: &mut [bool],
        hit: &mut impl FnMut(usize),
    ) -> bool {
        if ids.len() < 2 {
            return false;
        }
        ids.sort_unstable();
        ids.dedup();
        for (t, done) in self.topics.iter().zip(found.iter_mut()) {
            if !*done && t.matches(ids) {
                *done = true;
                hit(t.rule);
            }
        }
        found.iter().all(|f| *f)
    }

    /// Calls `hit` once with the rule of every topic some segment of `text` matches.
    pub(crate) fn classify(&self, text: &str, mut hit: impl FnMut(usize)) {
        if self.topics.is_empty() {
            return;
        }
        let mut buf = String::new();
        let mut ids: Vec<u32> = Vec::new();
        let mut found = vec![false; self.topics.len()];
        if let Some(ac) = &self.subjects
            && !ac.is_match(text)
        {
            return;
        }
        if self.prefilter.is_some() && self.subjects.is_none() {
            // Only request words: no segment can have a subject.
            return;
        }
        for seg in segments(text) {
            ids.clear();
            self.segment_ids(seg, &mut buf, &mut ids);
            if self.match_segment(&mut ids, &mut found, &mut hit) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trigram filter's premise: a word [`stem_is_long`] says so of keeps three bytes.
    #[test]
    fn long_stems_keep_three_bytes() {
        let suffixes = [
            "", "s", "es", "ies", "sses", "ss", "us", "is", "ing", "ed", "ment", "ly", "e", "y",
            "ings", "ments",
        ];
        let mut seed = 0x51_7cc1_b727_220a_u64;
        let mut checked = 0;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let stem_len = (seed % 6) as usize;
            let head: String = (0..stem_len)
                .map(|k| char::from(b'a' + ((seed >> (8 + 5 * k)) % 26) as u8))
                .collect();
            let w = format!("{head}{}", suffixes[(seed >> 40) as usize % suffixes.len()]);
            if w.len() >= 2 && stem_is_long(w.as_bytes()) {
                checked += 1;
                assert!(stem(&w).len() >= 3, "{w:?} -> {:?}", stem(&w));
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

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
    fn segments_match_the_char_by_char_definition() {
        fn reference(text: &str) -> Vec<&str> {
            let mut out = Vec::new();
            let mut start = 0;
            let mut prev_term = false;
            for (i, c) in text.char_indices() {
                let cut = if c == '\n' {
                    Some(i + 1)
                } else if prev_term && c.is_whitespace() {
                    Some(i)
                } else {
                    None
                };
                prev_term = is_terminator(c);
                if let Some(cut) = cut {
                    out.push(&text[start..cut]);
                    start = cut;
                }
            }
            out.push(&text[start..]);
            out
        }
        const A: &[&str] = &[
            "a", " ", ".", "!", "?", "\n", "。", "\u{3000}", "\t", "3", "！", "x.",
        ];
        let mut state = 7u64;
        for _ in 0..5000 {
            let mut t = String::new();
            for _ in 0..(state % 23) {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                t.push_str(A[(state >> 33) as usize % A.len()]);
            }
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            assert_eq!(segments(&t).collect::<Vec<_>>(), reference(&t), "{t:?}");
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
        index.finish();
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
