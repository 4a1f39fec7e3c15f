//! The embedded guardrail engine: normalisation, the 31 PII types with validation, custom
//! regexes, custom words and the managed PROFANITY list, denied topics, content filters
//! (including PROMPT_ATTACK); BLOCK, ANONYMIZE and NONE (detect-only) per direction. Results
//! have ApplyGuardrail's meaning: any BLOCK match replaces the whole text with the blocked
//! message; otherwise ANONYMIZE matches become `{TYPE}` placeholders and every byte outside
//! them is the caller's original text. [`CompiledGuardrail::assess`] returns the full
//! ApplyGuardrail-shaped assessment ([`assess`](super::assess)).
//!
//! How one text is guarded ([`CompiledGuardrail::guard`]):
//! 1. [`normalize`](super::normalize) it (NFKC, invisible characters, confusables, other
//!    scripts' digits, `[at]`/`[dot]`), keeping a map back to the original;
//! 2. the text's runs of ASCII letters and digits are found once ([`lexicon::ascii_runs`]) for
//!    the cue literals and every word-level policy; one pass over the normalized bytes collects
//!    candidate starts (`Candidates`): word starts by first byte (digit, upper case), `+`/`(`
//!    for phones, the address run before each `@`, the bytes before each `:`; the runs where a
//!    contextual detector's cue literal ("passport", "routing number", "cvv", ...) begins
//!    ([`CueIndex`]); where a custom regex's prefix literals begin ([`PrefixGate`]). Each
//!    detector's regex then runs *anchored* at its own candidates that pass a cheap shape check
//!    ([`Start`]), in order, so it finds the same leftmost matches a full scan would, without
//!    scanning the text once per detector (31 full scans measured 5x slower; a `RegexSet` over
//!    all ~45 patterns 3x slower still). A custom regex without usable prefix literals, the
//!    AWS secret key and the two gated PII patterns scan in full with their own literal
//!    prefilters. Every hit is validated.
//! 3. words: each word-starting run is looked up in a hashed
//!    [`Lexicon`] (whole words, ASCII case-insensitive, leftmost-longest, phrases across any
//!    whitespace; equal to a leftmost-longest Aho-Corasick scan, which the tests use as the
//!    reference); each leetspeak-folded run of letters mixed with digits or `@`/`$`/`!`
//!    (`sh1t`, `b@nanas`) is looked up whole — only runs holding such a byte are visited;
//! 4. sentence-level policies on `text[from..]`: denied topics ([`topic`](super::topic)) per
//!    sentence, content filters ([`content`](super::content)) on the whole, both over the
//!    same runs;
//! 5. hits map back to original spans; overlapping ANONYMIZE hits merge into one span whose
//!    placeholder is the longest hit's (config order breaks ties).
//!
//! Decisions worth knowing:
//! - A PII entity, regex, word, topic or filter whose action is `NONE` is detect-only: it
//!   appears in `policies` (as in Bedrock's assessment) but never changes the text or the
//!   action. `inputEnabled: false` / `outputEnabled: false` switch a direction off entirely.
//! - Words, topics and content filters BLOCK (Bedrock has no anonymize for them).
//! - Limits, checked at compile time with an error naming the guardrail and the field: at most
//!   30 regexes of at most 500 characters each (compiled size bounded too), 10,000 words of at
//!   most 100 characters, 30 topics, 6 content filters.
//! - Linear time on any text (the `linear` tests hold it for crafted and random adversarial
//!   inputs): an anchored attempt reads only as far as its pattern can still match, and no
//!   byte is read by more than a bounded number of attempts — EMAIL is tried once per `@` (at
//!   the first word start of the address run before it, [`Start::Email`]), the spelled form's
//!   `dot` chains are bounded, a rejected URL resumes at its end
//!   ([`pii::Detector::resume_at_end`]), the other patterns' repetitions are bounded or end at
//!   the next word; a gated custom regex searches unanchored from its next candidate
//!   (`Matcher::sweep`) rather than once per occurrence of its literal. The async
//!   [`Guardrail`] impls run all of it off the runtime ([`offload`](super::offload)).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use async_trait::async_trait;
use regex::{Regex, RegexBuilder};
use regex_automata::{Anchored, Input, meta};

use super::content::ContentClassifier;
use super::cues::{self, CueIndex, CueLiteral};
use super::lexicon::{self, Lexicon};
use super::normalize::{Normalized, Normalizer};
use super::pii::{self, PiiEntity, Start, Validator};
use super::policy::{
    BlockAction, ContentFilterType, Directions, GuardrailPolicy, PiiAction, Strength,
};
use super::prefix_gate::{self, PrefixGate};
use super::stream::EmbeddedStreamGuard;
use super::topic::{self, TopicIndex};
use super::words::{self, WordIndex};
use super::{GuardError, GuardOutcome, Guardrail, GuardrailRef, Source, StreamGuard, TextAction};

/// Custom regexes per guardrail (Bedrock's limit).
pub const MAX_REGEXES: usize = 30;
/// Characters in one custom regex pattern (Bedrock's limit).
pub const MAX_PATTERN_LEN: usize = 500;
/// Compiled size of one custom regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Custom words per guardrail, and characters per word (Bedrock's limits).
pub const MAX_WORDS: usize = 10_000;
pub const MAX_WORD_LEN: usize = 100;
/// Denied topics per guardrail (Bedrock's limit).
pub const MAX_TOPICS: usize = 30;
/// The versions every configured guardrail answers to (without a registry).
pub const VERSIONS: [&str; 2] = ["1", "DRAFT"];

/// What one match does, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Action {
    Detect,
    Anonymize,
    Block,
}

impl Action {
    fn from_policy(a: PiiAction) -> Action {
        match a {
            PiiAction::Block => Action::Block,
            PiiAction::Anonymize => Action::Anonymize,
            PiiAction::None => Action::Detect,
        }
    }

    fn from_block(a: BlockAction) -> Action {
        match a {
            BlockAction::Block => Action::Block,
            BlockAction::None => Action::Detect,
        }
    }
}

/// Effective action in one direction; `None` when the direction is disabled.
fn effective(action: PiiAction, over: Option<PiiAction>, enabled: Option<bool>) -> Option<Action> {
    if enabled == Some(false) {
        return None;
    }
    Some(Action::from_policy(over.unwrap_or(action)))
}

fn effective_block(d: &Directions, source: Source) -> Option<Action> {
    let (action, enabled) = match source {
        Source::Input => (d.input_action, d.input_enabled),
        Source::Output => (d.output_action, d.output_enabled),
    };
    if enabled == Some(false) {
        return None;
    }
    Some(Action::from_block(action.unwrap_or(BlockAction::Block)))
}

/// What a rule is, for assessments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RuleKind {
    Pii(PiiEntity),
    Regex { name: String, pattern: String },
    Word(String),
    Profanity,
    Topic(String),
    Content(ContentFilterType),
}

/// One reportable policy: its name in outcomes, its placeholder, its action per direction.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) kind: RuleKind,
    pub(crate) policy: String,
    placeholder: String,
    input: Option<Action>,
    output: Option<Action>,
    /// Content filters: the strength per direction.
    pub(crate) strength: (Strength, Strength),
}

impl Rule {
    fn new(kind: RuleKind, policy: String, input: Option<Action>, output: Option<Action>) -> Rule {
        Rule {
            kind,
            policy,
            placeholder: String::new(),
            input,
            output,
            strength: (Strength::None, Strength::None),
        }
    }

    pub(crate) fn action(&self, source: Source) -> Option<Action> {
        match source {
            Source::Input => self.input,
            Source::Output => self.output,
        }
    }
}

#[derive(Debug, Clone)]
struct Matcher {
    regex: Regex,
    /// The same pattern for anchored searches at candidate starts (PII detectors only).
    anchored_regex: Option<meta::Regex>,
    rule: usize,
    /// Capture group that is the entity (0 = whole match).
    group: usize,
    validate: Option<Validator>,
    /// The detector's anchor literals (empty: always runs).
    anchored: &'static [&'static str],
    /// Where its matches can start.
    start: Start,
    /// On a validator's rejection, resume at the match's end ([`pii::Detector`]).
    resume_at_end: bool,
    /// A gated custom regex: from each candidate not yet passed, one unanchored search (the
    /// gate's candidates hold every start a match can have, so the leftmost match at or after
    /// a candidate is the one the candidates would give one by one), instead of one anchored
    /// attempt per candidate — which, with an unbounded pattern, could each read to the end
    /// (`TKT-TKT-TKT-...`). Without a match there, none follows: the search stops.
    sweep: bool,
}

/// Candidate match starts in one normalized text, collected in one pass for every detector
/// (see [`Start`]). Positions ascend within each list.
#[derive(Debug, Default)]
struct Candidates {
    iban: Vec<usize>,
    mac: Vec<usize>,
    phone: Vec<usize>,
    email: Vec<usize>,
    colon: Vec<usize>,
    /// Per matcher: its own candidates: where its cue literals or (a custom regex) its prefix
    /// literals occur (`Start::Cue`), or the word starts whose shape its check admits
    /// (`Start::Digit`, `Upper`, `Alnum`).
    own: Vec<Vec<usize>>,
    /// Per matcher: whether one of its cue literals occurs at all (`Start::Scan` gating).
    seen: Vec<bool>,
    bufs: RunBuffers,
}

/// Buffers [`CompiledGuardrail::run`] reuses from one matcher and text to the next.
#[derive(Debug, Default)]
struct RunBuffers {
    /// The candidates that pass the matcher's check.
    passed: Vec<usize>,
    /// Capture slots of a matcher whose entity is a group.
    slots: Vec<Option<regex_automata::util::primitives::NonMaxUsize>>,
}

impl Candidates {
    /// Empty every list (keeping its capacity), with one cue list per matcher.
    fn clear(&mut self, matchers: usize) {
        for list in [
            &mut self.iban,
            &mut self.mac,
            &mut self.phone,
            &mut self.email,
            &mut self.colon,
        ] {
            list.clear();
        }
        self.own.resize_with(matchers, Vec::new);
        for list in &mut self.own {
            list.clear();
        }
        self.seen.clear();
        self.seen.resize(matchers, false);
    }
}

thread_local! {
    /// One thread's candidate lists, reused by every text it guards.
    static SCRATCH: std::cell::Cell<Candidates> = std::cell::Cell::new(Candidates::default());
    /// One thread's [`lexicon::ascii_runs`] buffer.
    static RUNS: std::cell::Cell<Vec<(usize, usize)>> = const { std::cell::Cell::new(Vec::new()) };
}

fn is_local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// Which candidate lists a guardrail's detectors use, and which word-start detectors may
/// match at a word of a given shape.
#[derive(Debug, Clone)]
struct Needs {
    digit: bool,
    upper: bool,
    alnum: bool,
    iban: bool,
    mac: bool,
    phone: bool,
    email: bool,
    colon: bool,
    /// Per [`pii::shape_key`] of a digit word start: the `Start::Digit` matchers whose check
    /// admits it.
    digit_admits: Vec<Vec<usize>>,
    /// The same for a capital word start and `Start::Upper`.
    upper_admits: Vec<Vec<usize>>,
    /// Per word length (at most 31): the `Start::Alnum` matchers that admit it.
    alnum_admits: Vec<Vec<usize>>,
}

impl Needs {
    fn of(matchers: &[Matcher]) -> Needs {
        let admits = |pick: fn(Start) -> Option<pii::Check>| -> Vec<Vec<usize>> {
            (0..=255u8)
                .map(|key| {
                    (0..matchers.len())
                        .filter(|&i| {
                            matchers
                                .get(i)
                                .and_then(|m| pick(m.start))
                                .is_some_and(|check| check.admits(key))
                        })
                        .collect()
                })
                .collect()
        };
        let mut n = Needs {
            digit: false,
            upper: false,
            alnum: false,
            iban: false,
            mac: false,
            phone: false,
            email: false,
            colon: false,
            digit_admits: admits(|s| match s {
                Start::Digit(check) => Some(check),
                _ => None,
            }),
            upper_admits: admits(|s| match s {
                Start::Upper(check) => Some(check),
                _ => None,
            }),
            alnum_admits: admits(|s| match s {
                Start::Alnum(check) => Some(check),
                _ => None,
            }),
        };
        for m in matchers {
            match m.start {
                Start::Digit(_) => n.digit = true,
                Start::Upper(_) => n.upper = true,
                Start::Alnum(_) => n.alnum = true,
                Start::Iban => n.iban = true,
                Start::Mac => n.mac = true,
                Start::Phone => n.phone = true,
                Start::Email => n.email = true,
                Start::Colon => n.colon = true,
                Start::Scan | Start::Cue => {}
            }
        }
        n
    }

    /// Whether any list is built from the word runs.
    fn word_starts(&self) -> bool {
        self.digit || self.upper || self.alnum || self.iban || self.mac || self.phone
    }

    fn any(&self) -> bool {
        self.digit
            || self.upper
            || self.alnum
            || self.iban
            || self.mac
            || self.phone
            || self.email
            || self.colon
    }
}

/// One match, in original-text offsets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) rule: usize,
    pub(crate) action: Action,
    /// Content filters: the confidence found.
    pub(crate) confidence: Strength,
}

/// The result of guarding `text[from..]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) blocked: bool,
    pub(crate) anonymized: bool,
    /// `text[from..]` with placeholders; empty when blocked.
    pub(crate) text: String,
    /// Sorted, deduplicated.
    pub(crate) policies: Vec<String>,
}

impl Verdict {
    pub(crate) fn action(&self) -> TextAction {
        if self.blocked {
            TextAction::Blocked
        } else if self.anonymized {
            TextAction::Anonymized
        } else {
            TextAction::None
        }
    }
}

/// State shared by every guardrail of one engine: built-in patterns compile once.
pub(crate) struct Shared {
    normalizer: Normalizer,
    weak: HashSet<String>,
    pii: HashMap<&'static str, (Regex, meta::Regex)>,
    content: ContentClassifier,
}

impl Shared {
    pub(crate) fn new() -> Result<Shared, String> {
        Ok(Shared {
            normalizer: Normalizer::new()?,
            weak: topic::weak_stems(),
            pii: HashMap::new(),
            content: ContentClassifier::new()?,
        })
    }

    fn pii_regex(
        &mut self,
        entity: PiiEntity,
        pattern: &'static str,
    ) -> Result<(Regex, meta::Regex), String> {
        if let Some(r) = self.pii.get(pattern) {
            return Ok(r.clone());
        }
        let r = RegexBuilder::new(pattern)
            .size_limit(16 << 20)
            .build()
            .map_err(|e| format!("built-in {} pattern: {e}", entity.name()))?;
        let m = meta::Regex::builder()
            .configure(meta::Config::new().nfa_size_limit(Some(16 << 20)))
            .build(pattern)
            .map_err(|e| format!("built-in {} pattern: {e}", entity.name()))?;
        self.pii.insert(pattern, (r.clone(), m.clone()));
        Ok((r, m))
    }
}

/// Leetspeak folding (same byte length, so offsets carry over).
fn leet(b: u8) -> Option<u8> {
    Some(match b {
        b'0' => b'o',
        b'1' | b'!' => b'i',
        b'3' => b'e',
        b'4' | b'@' => b'a',
        b'5' | b'$' => b's',
        b'7' => b't',
        _ => return None,
    })
}

/// Custom words and the managed list: a [`Lexicon`] over ASCII words, an alternation regex
/// over the few words with non-ASCII letters.
#[derive(Debug, Default)]
struct WordMatcher {
    lexicon: Option<Lexicon>,
    /// The ASCII words, for the reference automaton (tests) built on first use.
    ascii: Vec<String>,
    reference_ac: OnceLock<Option<AhoCorasick>>,
    /// Per lexicon pattern: its rule.
    ac_rules: Vec<usize>,
    /// Whether any pattern spans whitespace (the haystack's whitespace runs then collapse).
    phrases: bool,
    unicode: Option<Regex>,
    unicode_index: WordIndex,
}

impl WordMatcher {
    fn is_empty(&self) -> bool {
        self.lexicon.is_none() && self.unicode.is_none()
    }

    /// The leftmost-longest automaton over the ASCII words: the reference the lexicon must
    /// equal.
    fn reference_automaton(&self) -> Option<&AhoCorasick> {
        self.reference_ac
            .get_or_init(|| {
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::LeftmostLongest)
                    .start_kind(aho_corasick::StartKind::Both)
                    .build(&self.ascii)
                    .ok()
            })
            .as_ref()
    }

    /// Word hits in normalized offsets: (start, end, rule). `reference` selects the reference
    /// passes (an automaton; every run looked at for leetspeak) the fast ones must equal.
    fn find(
        &self,
        hay: &str,
        runs: &[(usize, usize)],
        reference: bool,
        out: &mut Vec<(usize, usize, usize)>,
    ) {
        if let Some(lexicon) = &self.lexicon {
            if reference && let Some(ac) = self.reference_automaton() {
                // The automaton sees whitespace runs folded to one space.
                let collapsed = if self.phrases { collapse_ws(hay) } else { None };
                let (text, jumps): (&str, &[(usize, usize)]) = match &collapsed {
                    Some((t, j)) => (t.as_str(), j.as_slice()),
                    None => (hay, &[]),
                };
                let mut push = |s: usize, e: usize, p: usize| {
                    if let Some(&rule) = self.ac_rules.get(p) {
                        let (os, oe) = uncollapse(jumps, s, e);
                        out.push((os, oe.min(hay.len()), rule));
                    }
                };
                scan(ac, text, &mut push);
                leet_scan(ac, text, &mut push);
            } else {
                // A space in a lexicon pattern matches any whitespace run itself.
                let mut push = |s: usize, e: usize, p: usize| {
                    if let Some(&rule) = self.ac_rules.get(p) {
                        out.push((s, e, rule));
                    }
                };
                lexicon.scan_runs(hay, runs, &mut push);
                leet_scan_fast(lexicon, hay, &mut push);
            }
        }
        if let Some(re) = &self.unicode {
            for m in re.find_iter(hay) {
                if let Some(rule) = self.unicode_index.rule_for(m.as_str()) {
                    out.push((m.start(), m.end(), rule));
                }
            }
        }
    }
}

/// The run `b[start..after]` (letters, digits, `@`, `$`, `!`) without its trailing `!`s, when
/// it is looked up as leetspeak: it mixes letters with leetspeak bytes, is at most 64 bytes
/// and no non-ASCII byte touches it.
fn leet_run(b: &[u8], start: usize, after: usize) -> Option<&[u8]> {
    let mut end = after;
    while end > start && b.get(end - 1) == Some(&b'!') {
        end -= 1;
    }
    let run = b.get(start..end)?;
    let letters = run.iter().any(u8::is_ascii_alphabetic);
    let leet_chars = run.iter().any(|&c| leet(c).is_some());
    let non_ascii_before = start > 0 && b.get(start - 1).is_some_and(|c| *c >= 0x80);
    let non_ascii_after = b.get(after).is_some_and(|c| *c >= 0x80);
    (letters && leet_chars && !non_ascii_before && !non_ascii_after && run.len() <= 64)
        .then_some(run)
}

/// Leetspeak: each run of ASCII letters mixed with digits or `@` `$` `!` is folded and looked
/// up as one whole word (`sh1t`, `b@nanas`).
fn leet_scan(ac: &AhoCorasick, text: &str, push: &mut impl FnMut(usize, usize, usize)) {
    let b = text.as_bytes();
    let is_run = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'@' | b'$' | b'!');
    let mut i = 0;
    while i < b.len() {
        if !b.get(i).copied().is_some_and(is_run) {
            i += 1;
            continue;
        }
        let start = i;
        while b.get(i).copied().is_some_and(is_run) {
            i += 1;
        }
        let Some(run) = leet_run(b, start, i) else {
            continue;
        };
        let end = start + run.len();
        let folded: Vec<u8> = run.iter().map(|&c| leet(c).unwrap_or(c)).collect();
        let input = aho_corasick::Input::new(&folded).anchored(aho_corasick::Anchored::Yes);
        if let Ok(Some(m)) = ac.try_find(input)
            && m.end() == folded.len()
        {
            push(start, end, m.pattern().as_usize());
        }
    }
}

/// The first leetspeak byte in `b[i..]`. Eight bytes at a time: a word none of whose bytes lies
/// in `!`..=`@` (which holds every leetspeak byte) is skipped whole.
fn next_leet(b: &[u8], mut i: usize) -> Option<usize> {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let x = u64::from_le_bytes(chunk);
        let y = x & LOW7;
        // High bit per byte: ASCII and at least 0x21, and not at least 0x41.
        let at_least_21 = y + 0x5F5F_5F5F_5F5F_5F5F;
        let at_least_41 = y + 0x3F3F_3F3F_3F3F_3F3F;
        let mut hits = at_least_21 & !at_least_41 & !x & HIGH;
        while hits != 0 {
            let k = i + (hits.trailing_zeros() / 8) as usize;
            if b.get(k).is_some_and(|&c| leet(c).is_some()) {
                return Some(k);
            }
            hits &= hits - 1;
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|&c| leet(c).is_some())
        .map(|k| i + k)
}

/// Leetspeak lookups ([`leet_scan`]'s result) visiting only the runs that contain a leetspeak
/// byte: the next such byte is found, its run is expanded both ways and handled as
/// `leet_scan` handles it; runs without one are skipped (`leet_scan` skips them too).
fn leet_scan_fast(lexicon: &Lexicon, text: &str, push: &mut impl FnMut(usize, usize, usize)) {
    let b = text.as_bytes();
    let is_run = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'@' | b'$' | b'!');
    let mut i = 0;
    while i < b.len() {
        let Some(j) = next_leet(b, i) else {
            break;
        };
        let mut start = j;
        while start > i && b.get(start - 1).copied().is_some_and(is_run) {
            start -= 1;
        }
        let mut after = j;
        while b.get(after).copied().is_some_and(is_run) {
            after += 1;
        }
        i = after;
        let Some(run) = leet_run(b, start, after) else {
            continue;
        };
        let end = start + run.len();
        let mut buf = [0u8; 64];
        for (slot, &c) in buf.iter_mut().zip(run) {
            *slot = leet(c).unwrap_or(c);
        }
        let folded = buf.get(..run.len()).unwrap_or(&[]);
        if let Some(p) = lexicon.whole(folded) {
            push(start, end, p);
        }
    }
}

/// Leftmost-longest automaton matches of `text` at word boundaries; when the longest match at
/// a position is not bounded ("secret project" in "secret projector"), shorter ones at the
/// same start are tried.
pub(crate) fn scan(ac: &AhoCorasick, text: &str, push: &mut impl FnMut(usize, usize, usize)) {
    let bounded = |s: usize, e: usize| lexicon::bounded(text, s, e);
    let mut pos = 0;
    while pos < text.len() {
        let Ok(Some(m)) = ac.try_find(aho_corasick::Input::new(text).range(pos..)) else {
            break;
        };
        let (s, mut e) = (m.start(), m.end());
        let mut pattern = m.pattern().as_usize();
        let mut tries = 0;
        while !bounded(s, e) {
            tries += 1;
            let shorter = aho_corasick::Input::new(text)
                .range(s..e.saturating_sub(1))
                .anchored(aho_corasick::Anchored::Yes);
            match ac.try_find(shorter) {
                Ok(Some(x)) if x.end() > s && tries < 16 => {
                    e = x.end();
                    pattern = x.pattern().as_usize();
                }
                _ => {
                    e = s;
                    break;
                }
            }
        }
        if e > s {
            push(s, e, pattern);
            pos = e;
        } else {
            // No word starts here: resume at the next character, so a match hidden inside
            // this one ("project" in "xsecret project") is still found.
            pos = next_char(text, s);
        }
    }
}

/// `hay` with every whitespace run folded to one space, and where the folding shifted the
/// offsets: `(output offset, input offset)` of the first byte after each run of two or more;
/// `None` when there is nothing to fold.
pub(crate) fn collapse_ws(hay: &str) -> Option<(String, Vec<(usize, usize)>)> {
    let b = hay.as_bytes();
    // Two whitespace bytes in a row, or one that is not a space (one pass).
    let mut prev_ws = false;
    let needs = b.iter().any(|&c| {
        let ws = c.is_ascii_whitespace();
        let fold = ws && (prev_ws || c != b' ');
        prev_ws = ws;
        fold
    });
    if !needs {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut jumps = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_whitespace() {
            out.push(b' ');
            let run = i;
            while b.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            if i - run > 1 {
                jumps.push((out.len(), i));
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(|s| (s, jumps))
}

/// A span `[s, e)` of [`collapse_ws`]'s output, in its input's offsets.
pub(crate) fn uncollapse(jumps: &[(usize, usize)], s: usize, e: usize) -> (usize, usize) {
    let back = |i: usize| {
        let k = jumps.partition_point(|&(o, _)| o <= i);
        match k.checked_sub(1).and_then(|k| jumps.get(k)) {
            Some(&(o, input)) => i - o + input,
            None => i,
        }
    };
    (back(s), if e == 0 { 0 } else { back(e - 1) + 1 })
}

/// Hits and content confidences for one text.
#[derive(Debug, Default)]
pub(crate) struct Evaluation {
    pub(crate) hits: Vec<Hit>,
}

/// One guardrail policy, compiled.
#[derive(Debug)]
pub struct CompiledGuardrail {
    pub(crate) rules: Vec<Rule>,
    matchers: Vec<Matcher>,
    needs: Needs,
    /// Tests: scan every detector's regex in full (the reference the candidate scan must equal).
    full_scan: bool,
    /// Tests: the reference leetspeak pass (every run of the text looked at), which the fast
    /// pass must equal.
    reference: bool,
    /// Where every anchored detector's literals occur.
    cues: Option<CueIndex>,
    /// Where the gated custom regexes' prefix literals begin (their `Start::Cue` lists).
    regex_gate: Option<PrefixGate>,
    words: WordMatcher,
    topics: TopicIndex,
    /// Content filter rules, by category.
    content_rules: Vec<(ContentFilterType, usize)>,
    content: Option<ContentClassifier>,
    /// Lower-cased words that sit before the last word of a multi-word custom phrase: the
    /// streaming hold-back keeps them until the phrase can no longer complete.
    phrase_words: HashSet<String>,
    blocked_input: String,
    blocked_output: String,
    normalizer: Normalizer,
    pub(crate) policy: GuardrailPolicy,
}

impl CompiledGuardrail {
    pub(crate) fn compile(
        id: &str,
        policy: &GuardrailPolicy,
        shared: &mut Shared,
    ) -> Result<CompiledGuardrail, String> {
        let err = |field: &str, msg: String| format!("guardrail '{id}': {field}: {msg}");
        let mut rules: Vec<Rule> = Vec::new();
        // (prefix literal, matcher) for the custom regexes gated by a [`PrefixGate`].
        let mut gate_pairs: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut matchers: Vec<Matcher> = Vec::new();

        if let Some(sip) = &policy.sensitive_information_policy_config {
            let mut seen = HashSet::new();
            for (i, cfg) in sip.pii_entities_config.iter().enumerate() {
                let field = format!("sensitiveInformationPolicyConfig.piiEntitiesConfig[{i}].type");
                let entity = PiiEntity::from_name(&cfg.entity_type).ok_or_else(|| {
                    err(
                        &field,
                        format!(
                            "unknown PII entity type '{}' (expected a Bedrock type such as EMAIL, PHONE, NAME)",
                            cfg.entity_type
                        ),
                    )
                })?;
                if !seen.insert(entity) {
                    return Err(err(
                        &field,
                        format!("PII entity type '{}' is configured twice", entity.name()),
                    ));
                }
                let rule = rules.len();
                let mut r = Rule::new(
                    RuleKind::Pii(entity),
                    format!("pii:{}", entity.name()),
                    effective(cfg.action, cfg.input_action, cfg.input_enabled),
                    effective(cfg.action, cfg.output_action, cfg.output_enabled),
                );
                r.placeholder = format!("{{{}}}", entity.name());
                rules.push(r);
                for det in entity.detectors() {
                    let (regex, anchored_regex) = shared
                        .pii_regex(entity, det.pattern)
                        .map_err(|e| err(&field, e))?;
                    matchers.push(Matcher {
                        regex,
                        anchored_regex: Some(anchored_regex),
                        rule,
                        group: det.group,
                        validate: det.validate,
                        anchored: det.anchors,
                        start: det.start,
                        resume_at_end: det.resume_at_end,
                        sweep: false,
                    });
                }
            }

            if sip.regexes_config.len() > MAX_REGEXES {
                return Err(err(
                    "sensitiveInformationPolicyConfig.regexesConfig",
                    format!(
                        "{} regexes configured, at most {MAX_REGEXES} are allowed",
                        sip.regexes_config.len()
                    ),
                ));
            }
            let mut names = HashSet::new();
            for (i, cfg) in sip.regexes_config.iter().enumerate() {
                let field = format!("sensitiveInformationPolicyConfig.regexesConfig[{i}]");
                let name = cfg.name.trim();
                if name.is_empty() || name.contains(['{', '}']) {
                    return Err(err(
                        &format!("{field}.name"),
                        "must be non-empty and contain no braces".to_string(),
                    ));
                }
                if !names.insert(name) {
                    return Err(err(
                        &format!("{field}.name"),
                        format!("regex name '{name}' is used twice"),
                    ));
                }
                let pfield = format!("{field}.pattern ('{name}')");
                let chars = cfg.pattern.chars().count();
                if chars == 0 || chars > MAX_PATTERN_LEN {
                    return Err(err(
                        &pfield,
                        format!("pattern must be 1 to {MAX_PATTERN_LEN} characters, got {chars}"),
                    ));
                }
                let regex = RegexBuilder::new(&cfg.pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| err(&pfield, format!("invalid regex: {e}")))?;
                let rule = rules.len();
                let mut r = Rule::new(
                    RuleKind::Regex {
                        name: name.to_string(),
                        pattern: cfg.pattern.clone(),
                    },
                    format!("regex:{name}"),
                    effective(cfg.action, cfg.input_action, cfg.input_enabled),
                    effective(cfg.action, cfg.output_action, cfg.output_enabled),
                );
                r.placeholder = format!("{{{name}}}");
                rules.push(r);
                // Gated by its prefix literals when it has usable ones: it then runs anchored
                // where one begins ([`PrefixGate`]); otherwise it scans in full.
                let gated = prefix_gate::required_prefixes(&cfg.pattern).and_then(|literals| {
                    let anchored = meta::Regex::builder()
                        .configure(meta::Config::new().nfa_size_limit(Some(REGEX_SIZE_LIMIT)))
                        .build(&cfg.pattern)
                        .ok()?;
                    Some((literals, anchored))
                });
                let (anchored_regex, start) = match gated {
                    Some((literals, anchored)) => {
                        let index = matchers.len();
                        gate_pairs.extend(literals.into_iter().map(|l| (l, index)));
                        (Some(anchored), Start::Cue)
                    }
                    None => (None, Start::Scan),
                };
                let sweep = matches!(start, Start::Cue);
                matchers.push(Matcher {
                    regex,
                    anchored_regex,
                    rule,
                    group: 0,
                    validate: None,
                    anchored: &[],
                    start,
                    resume_at_end: false,
                    sweep,
                });
            }
        }

        let mut word_matcher = WordMatcher::default();
        let mut phrase_words = HashSet::new();
        if let Some(wp) = &policy.word_policy_config {
            let mut unicode: Vec<String> = Vec::new();
            for (i, list) in wp.managed_word_lists_config.iter().enumerate() {
                if list.list_type != "PROFANITY" {
                    return Err(err(
                        &format!("wordPolicyConfig.managedWordListsConfig[{i}].type"),
                        format!(
                            "unsupported managed word list '{}' (only PROFANITY)",
                            list.list_type
                        ),
                    ));
                }
            }
            if let Some(list) = wp.managed_word_lists_config.first() {
                let d = list.directions();
                let rule = rules.len();
                rules.push(Rule::new(
                    RuleKind::Profanity,
                    "word:PROFANITY".to_string(),
                    effective_block(&d, Source::Input),
                    effective_block(&d, Source::Output),
                ));
                for w in words::PROFANITY {
                    word_matcher.ascii.push((*w).to_string());
                    word_matcher.ac_rules.push(rule);
                }
            }

            if wp.words_config.len() > MAX_WORDS {
                return Err(err(
                    "wordPolicyConfig.wordsConfig",
                    format!(
                        "{} words configured, at most {MAX_WORDS} are allowed",
                        wp.words_config.len()
                    ),
                ));
            }
            let mut keys = HashSet::new();
            for (i, w) in wp.words_config.iter().enumerate() {
                let field = format!("wordPolicyConfig.wordsConfig[{i}].text");
                let text = w.text.trim();
                let chars = text.chars().count();
                if chars == 0 || chars > MAX_WORD_LEN {
                    return Err(err(
                        &field,
                        format!("word must be 1 to {MAX_WORD_LEN} characters, got {chars}"),
                    ));
                }
                let normalized = shared.normalizer.normalize(text).as_str().to_string();
                let key = words::fold_key(&normalized);
                if key.is_empty() {
                    return Err(err(&field, "word has no visible characters".to_string()));
                }
                if !keys.insert(key.clone()) {
                    continue;
                }
                let parts: Vec<&str> = key.split(' ').collect();
                if let Some((_, init)) = parts.split_last() {
                    phrase_words.extend(init.iter().map(|p| p.to_string()));
                }
                let d = w.directions();
                let rule = rules.len();
                rules.push(Rule::new(
                    RuleKind::Word(text.to_string()),
                    format!("word:{text}"),
                    effective_block(&d, Source::Input),
                    effective_block(&d, Source::Output),
                ));
                if key.is_ascii() {
                    word_matcher.ascii.push(key);
                    word_matcher.ac_rules.push(rule);
                } else {
                    word_matcher.unicode_index.insert(key, rule);
                    unicode.push(normalized);
                }
            }
            if !word_matcher.ascii.is_empty() {
                word_matcher.phrases = word_matcher.ascii.iter().any(|w| w.contains(' '));
                word_matcher.lexicon =
                    Some(Lexicon::new(word_matcher.ascii.iter().map(String::as_str)));
            }
            if !unicode.is_empty() {
                let bounded = words::alternation(unicode.iter().map(String::as_str), true);
                word_matcher.unicode = Some(
                    RegexBuilder::new(&bounded)
                        .size_limit(64 << 20)
                        .build()
                        .map_err(|e| err("wordPolicyConfig.wordsConfig", e.to_string()))?,
                );
            }
        }

        let mut topics = TopicIndex::default();
        if let Some(tp) = &policy.topic_policy_config {
            if tp.topics_config.len() > MAX_TOPICS {
                return Err(err(
                    "topicPolicyConfig.topicsConfig",
                    format!(
                        "{} topics configured, at most {MAX_TOPICS} are allowed",
                        tp.topics_config.len()
                    ),
                ));
            }
            let mut names = HashSet::new();
            for (i, t) in tp.topics_config.iter().enumerate() {
                let field = format!("topicPolicyConfig.topicsConfig[{i}]");
                if t.topic_type != "DENY" {
                    return Err(err(
                        &format!("{field}.type"),
                        format!("unsupported topic type '{}' (only DENY)", t.topic_type),
                    ));
                }
                let name = t.name.trim();
                if name.is_empty() || !names.insert(name) {
                    return Err(err(
                        &format!("{field}.name"),
                        format!("topic name '{name}' is empty or used twice"),
                    ));
                }
                if t.definition.trim().is_empty() {
                    return Err(err(
                        &format!("{field}.definition"),
                        "must not be empty".to_string(),
                    ));
                }
                let d = t.directions();
                let rule = rules.len();
                rules.push(Rule::new(
                    RuleKind::Topic(name.to_string()),
                    format!("topic:{name}"),
                    effective_block(&d, Source::Input),
                    effective_block(&d, Source::Output),
                ));
                let normalize = |s: &str| shared.normalizer.normalize(s).as_str().to_string();
                let examples: Vec<String> = t.examples.iter().map(|e| normalize(e)).collect();
                topics.add(
                    rule,
                    &normalize(name),
                    &normalize(&t.definition),
                    &examples,
                    &shared.weak,
                );
            }
        }

        topics.finish();

        let mut content_rules = Vec::new();
        if let Some(cp) = &policy.content_policy_config {
            for f in &cp.filters_config {
                if content_rules.iter().any(|(t, _)| *t == f.filter_type) {
                    return Err(err(
                        "contentPolicyConfig.filtersConfig",
                        format!("{} is configured twice", f.filter_type.as_str()),
                    ));
                }
                let d = f.directions();
                let on = |s: Strength, src: Source| {
                    if s == Strength::None {
                        None
                    } else {
                        effective_block(&d, src)
                    }
                };
                let rule = rules.len();
                let mut r = Rule::new(
                    RuleKind::Content(f.filter_type),
                    format!("content:{}", f.filter_type.as_str()),
                    on(f.input_strength, Source::Input),
                    on(f.output_strength, Source::Output),
                );
                r.strength = (f.input_strength, f.output_strength);
                rules.push(r);
                content_rules.push((f.filter_type, rule));
            }
        }

        // Cue literals: a cue detector's are where its matches begin (word literals when its
        // regex begins at a word boundary); a gated scan's are whole words in each of its
        // matches (`pii::gated`).
        let cue_literals: Vec<CueLiteral<'_>> = matchers
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                let word_start = match m.start {
                    Start::Cue => cues::begins_at_word_boundary(m.regex.as_str()),
                    _ => true,
                };
                m.anchored.iter().map(move |a| (*a, i, word_start))
            })
            .collect();
        let cues =
            CueIndex::new(&cue_literals).map_err(|e| err("sensitiveInformationPolicyConfig", e))?;
        policy.validate().map_err(|e| err("policy", e))?;

        let regex_gate = PrefixGate::new(&gate_pairs)
            .map_err(|e| err("sensitiveInformationPolicyConfig.regexesConfig", e))?;
        let needs = Needs::of(&matchers);
        Ok(CompiledGuardrail {
            rules,
            matchers,
            needs,
            full_scan: false,
            reference: false,
            cues,
            regex_gate,
            words: word_matcher,
            topics,
            content: (!content_rules.is_empty()).then(|| shared.content.clone()),
            content_rules,
            phrase_words,
            blocked_input: policy.blocked_input_messaging.clone(),
            blocked_output: policy.blocked_outputs_messaging.clone(),
            normalizer: shared.normalizer.clone(),
            policy: policy.clone(),
        })
    }

    /// Compile one policy on its own (the CLI's `--policy FILE`, the registry).
    pub fn from_policy(id: &str, policy: &GuardrailPolicy) -> Result<CompiledGuardrail, String> {
        let mut shared = Shared::new()?;
        CompiledGuardrail::compile(id, policy, &mut shared)
    }

    /// The guardrail's blocked message for a direction.
    pub fn blocked_message(&self, source: Source) -> &str {
        match source {
            Source::Input => &self.blocked_input,
            Source::Output => &self.blocked_output,
        }
    }

    /// Whether sentence-level policies (denied topics, content filters) are configured: the
    /// stream guard then releases text per sentence.
    pub(crate) fn has_topics(&self) -> bool {
        !self.topics.is_empty() || !self.content_rules.is_empty()
    }

    /// Whether `token` (raw text) is a word that starts or continues a multi-word custom phrase.
    pub(crate) fn is_phrase_word(&self, token: &str) -> bool {
        if self.phrase_words.is_empty() {
            return false;
        }
        let norm = self.normalizer.normalize(token);
        self.phrase_words.contains(&words::fold_key(norm.as_str()))
    }

    pub(crate) fn has_phrases(&self) -> bool {
        !self.phrase_words.is_empty()
    }

    /// Guard one whole text.
    pub fn apply(&self, source: Source, text: &str) -> GuardOutcome {
        let v = self.guard(source, text, 0, true);
        GuardOutcome {
            action: v.action(),
            text: if v.blocked {
                self.blocked_message(source).to_string()
            } else {
                v.text
            },
            policies: v.policies,
        }
    }

    /// [`apply`](Self::apply) on a blocking thread ([`offload`](super::offload)): what the
    /// async [`Guardrail`] impls call, so guard work never runs on a runtime worker.
    pub async fn apply_offloaded(
        self: Arc<Self>,
        source: Source,
        text: &str,
    ) -> Result<GuardOutcome, GuardError> {
        let text = text.to_owned();
        super::offload::run(move || self.apply(source, &text)).await
    }

    /// Every hit in `text[from..]` (see [`guard`](Self::guard)).
    pub(crate) fn evaluate(
        &self,
        source: Source,
        text: &str,
        from: usize,
        sentence: bool,
    ) -> Evaluation {
        let from = if text.is_char_boundary(from) { from } else { 0 };
        let norm = self.normalizer.normalize(text);
        let hay = norm.as_str();
        // Room for a PII-dense prompt's hits without regrowing.
        let mut hits: Vec<Hit> = Vec::with_capacity(16);
        // The text's runs of ASCII letters and digits, found once for the cue literals and
        // every word-level policy.
        let mut runs = RUNS.take();
        runs.clear();
        if self.needs.word_starts()
            || self.cues.is_some()
            || !self.words.is_empty()
            || (sentence && self.has_topics())
        {
            lexicon::ascii_runs(hay.as_bytes(), &mut runs);
        }
        if !self.matchers.is_empty() {
            // The candidate lists keep their capacity from one text to the next.
            let mut cands = SCRATCH.take();
            cands.clear(self.matchers.len());
            if self.needs.any() || self.cues.is_some() || self.regex_gate.is_some() {
                self.candidates(hay, &runs, &mut cands);
            }
            let mut bufs = std::mem::take(&mut cands.bufs);
            for (i, m) in self.matchers.iter().enumerate() {
                self.run(m, i, &cands, &mut bufs, source, hay, &norm, from, &mut hits);
            }
            cands.bufs = bufs;
            SCRATCH.set(cands);
        }
        self.drop_generic_inside_specific(&mut hits);
        if !self.words.is_empty() {
            let mut found = Vec::new();
            self.words.find(hay, &runs, self.reference, &mut found);
            for (s, e, rule) in found {
                if let Some(action) = self.rules.get(rule).and_then(|r| r.action(source)) {
                    let (os, oe) = norm.to_original(s, e);
                    if oe > from {
                        hits.push(Hit {
                            start: os.max(from),
                            end: oe,
                            rule,
                            action,
                            confidence: Strength::None,
                        });
                    }
                }
            }
        }
        if sentence && self.has_topics() {
            let nfrom = norm.normalized_offset(from);
            let rest = hay.get(nfrom..).unwrap_or("");
            if nfrom > 0 {
                lexicon::ascii_runs(rest.as_bytes(), &mut runs);
            }
            let mut topic_hit = |rule: usize| {
                if let Some(action) = self.rules.get(rule).and_then(|r| r.action(source)) {
                    hits.push(Hit {
                        start: from,
                        end: from,
                        rule,
                        action,
                        confidence: Strength::None,
                    });
                }
            };
            if self.reference {
                self.topics.classify(rest, topic_hit);
            } else {
                self.topics.classify_runs(rest, &runs, &mut topic_hit);
            }
            if let Some(classifier) = &self.content {
                let scores = classifier.classify_runs(rest, &runs, text.get(from..).unwrap_or(""));
                for (t, rule) in &self.content_rules {
                    let Some(r) = self.rules.get(*rule) else {
                        continue;
                    };
                    let strength = match source {
                        Source::Input => r.strength.0,
                        Source::Output => r.strength.1,
                    };
                    let i = ContentFilterType::ALL
                        .iter()
                        .position(|c| c == t)
                        .unwrap_or(0);
                    let confidence = scores.get(i).copied().unwrap_or_default();
                    if let Some(action) = r.action(source)
                        && strength.filters(confidence)
                    {
                        hits.push(Hit {
                            start: from,
                            end: from,
                            rule: *rule,
                            action,
                            confidence,
                        });
                    }
                }
            }
        }
        RUNS.set(runs);
        Evaluation { hits }
    }

    /// Every matcher's candidate starts in `hay`. Word starts come from the runs of letters and
    /// digits (`runs`, [`lexicon::ascii_runs`]): a run's first byte starts a word unless a `_`
    /// precedes it. The few punctuation bytes that start or mark a candidate (`+ ( @ :`) are
    /// found with `memchr`; the cue literals at the runs (see [`cues`](super::cues)).
    fn candidates(&self, hay: &str, runs: &[(usize, usize)], c: &mut Candidates) {
        let b = hay.as_bytes();
        let needs = &self.needs;
        let at = |i: usize| pii::at(b, i);
        let word_cues = self.cues.as_ref().filter(|cues| cues.has_word_literals());
        if needs.word_starts() || word_cues.is_some() {
            // Phone numbers may also begin at `+` or `(`: merged in order with the digit word
            // starts. (A `1` inside a word may begin a match of the pattern, but the validator
            // rejects a number that follows a letter, digit or `_`.)
            let mut phone_marks = needs
                .phone
                .then(|| memchr::memchr2_iter(b'+', b'(', b).peekable());
            for &(s, e) in runs {
                if let Some(cues) = word_cues {
                    cues.at_run(b, s, e, &mut |p, t| {
                        if let Some(seen) = c.seen.get_mut(t) {
                            *seen = true;
                        }
                        if let Some(list) = c.own.get_mut(t) {
                            list.push(p);
                        }
                    });
                }
                if s > 0 && at(s - 1) == b'_' {
                    continue;
                }
                let x = at(s);
                // Each word-start detector gets the starts whose shape its check admits.
                let mut admit = |table: &[Vec<usize>], key: usize| {
                    for &m in table.get(key).map_or(&[][..], Vec::as_slice) {
                        if let Some(list) = c.own.get_mut(m) {
                            list.push(s);
                        }
                    }
                };
                if x.is_ascii_digit() {
                    if needs.digit {
                        admit(&needs.digit_admits, usize::from(pii::shape_key(b, s, true)));
                    }
                    if needs.alnum {
                        admit(&needs.alnum_admits, (e - s).min(31));
                    }
                    if let Some(marks) = phone_marks.as_mut() {
                        while let Some(p) = marks.next_if(|&p| p <= s) {
                            if p < s {
                                c.phone.push(p);
                            }
                        }
                        c.phone.push(s);
                    }
                } else if x.is_ascii_uppercase() {
                    if needs.upper {
                        admit(
                            &needs.upper_admits,
                            usize::from(pii::shape_key(b, s, false)),
                        );
                    }
                    if needs.alnum {
                        admit(&needs.alnum_admits, (e - s).min(31));
                    }
                }
                // `\b[A-Za-z]{2}[0-9]{2}`.
                if needs.iban
                    && e - s >= 3
                    && x.is_ascii_alphabetic()
                    && at(s + 1).is_ascii_alphabetic()
                    && at(s + 2).is_ascii_digit()
                {
                    c.iban.push(s);
                }
                // `\b[hex]{2}[:-]` or `\b[hex]{4}\.`.
                if needs.mac
                    && ((e - s == 2 && matches!(at(e), b':' | b'-'))
                        || (e - s == 4 && at(e) == b'.'))
                    && b.get(s..e)
                        .is_some_and(|r| r.iter().all(u8::is_ascii_hexdigit))
                {
                    c.mac.push(s);
                }
            }
            if let Some(marks) = phone_marks {
                c.phone.extend(marks);
            }
        }
        if needs.email {
            // One candidate per `@`: the first word start in the run of address bytes before
            // it (see `Start::Email`). The runs before two `@`s are disjoint (an `@` ends one).
            for a in memchr::memchr_iter(b'@', b) {
                let mut k = a;
                while k > 0 && b.get(k - 1).copied().is_some_and(is_local_byte) {
                    k -= 1;
                }
                let first = (k..a).find(|&p| {
                    b.get(p).is_some_and(u8::is_ascii_alphanumeric)
                        && (p == 0 || !b.get(p - 1).copied().is_some_and(pii::is_word_byte))
                });
                if let Some(p) = first
                    && c.email.last().is_none_or(|&l| l < p)
                {
                    c.email.push(p);
                }
            }
        }
        if needs.colon {
            for k in memchr::memchr_iter(b':', b) {
                for p in k.saturating_sub(4)..=k {
                    if c.colon.last().is_none_or(|&l| l < p) {
                        c.colon.push(p);
                    }
                }
            }
        }
        if let Some(cues) = &self.cues {
            // The word literals were looked up with the runs above.
            cues.inner_positions(hay, &mut |p, t| {
                if let Some(s) = c.seen.get_mut(t) {
                    *s = true;
                }
                if let Some(list) = c.own.get_mut(t) {
                    list.push(p);
                }
            });
            // Inner literals come after the word ones, by end: a list may be out of order.
            for list in &mut c.own {
                if !list.is_sorted() {
                    list.sort_unstable();
                }
                list.dedup();
            }
        }
        if let Some(gate) = &self.regex_gate {
            gate.positions(hay, &mut |p, t| {
                if let Some(list) = c.own.get_mut(t) {
                    list.push(p);
                }
            });
        }
    }

    /// A generic PII hit (PHONE, PIN, ...) inside a specific one's span is the same value seen
    /// twice: keep the specific one only.
    fn drop_generic_inside_specific(&self, hits: &mut Vec<Hit>) {
        let generic = |h: &Hit| matches!(self.rules.get(h.rule).map(|r| &r.kind), Some(RuleKind::Pii(e)) if e.is_generic());
        if !hits.iter().any(generic) {
            return;
        }
        let mut specific: Vec<(usize, usize)> = hits
            .iter()
            .filter(|h| {
                !generic(h)
                    && matches!(
                        self.rules.get(h.rule).map(|r| &r.kind),
                        Some(RuleKind::Pii(_))
                    )
            })
            .map(|h| (h.start, h.end))
            .collect();
        if specific.is_empty() {
            return;
        }
        specific.sort_unstable();
        hits.retain(|h| {
            if !generic(h) {
                return true;
            }
            let i = specific.partition_point(|&(s, _)| s <= h.start);
            !specific
                .get(..i)
                .unwrap_or(&[])
                .iter()
                .rev()
                .take(8)
                .any(|&(s, e)| s <= h.start && h.end <= e)
        });
    }

    /// Guard `text[from..]`, with `text[..from]` as already-handled left context: hits that end
    /// inside the context are ignored, a hit that straddles `from` is clipped to it. Sentence
    /// policies (topics, content filters), when asked for, classify `text[from..]` only.
    pub(crate) fn guard(&self, source: Source, text: &str, from: usize, topics: bool) -> Verdict {
        let from = if text.is_char_boundary(from) { from } else { 0 };
        let Evaluation { hits } = self.evaluate(source, text, from, topics);
        self.verdict(text, from, &hits)
    }

    pub(crate) fn verdict(&self, text: &str, from: usize, hits: &[Hit]) -> Verdict {
        let mut rule_ids: Vec<usize> = hits.iter().map(|h| h.rule).collect();
        rule_ids.sort_unstable();
        rule_ids.dedup();
        let mut policies: Vec<String> = rule_ids
            .iter()
            .filter_map(|&r| self.rules.get(r).map(|r| r.policy.clone()))
            .collect();
        policies.sort_unstable();
        policies.dedup();

        let blocked = hits.iter().any(|h| h.action == Action::Block);
        if blocked {
            return Verdict {
                blocked,
                anonymized: false,
                text: String::new(),
                policies,
            };
        }
        let mut anon: Vec<Hit> = hits
            .iter()
            .filter(|h| h.action == Action::Anonymize && h.end > h.start)
            .copied()
            .collect();
        let anonymized = !anon.is_empty();
        let text = self.render(text, from, &mut anon);
        Verdict {
            blocked,
            anonymized,
            text,
            policies,
        }
    }

    /// All hits of one matcher, validated and mapped to original offsets.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, all borrowed state"
    )]
    fn run(
        &self,
        m: &Matcher,
        index: usize,
        cands: &Candidates,
        bufs: &mut RunBuffers,
        source: Source,
        hay: &str,
        norm: &Normalized<'_>,
        from: usize,
        hits: &mut Vec<Hit>,
    ) {
        let Some(action) = self.rules.get(m.rule).and_then(|r| r.action(source)) else {
            return;
        };
        let mut push = |vs: usize, ve: usize| {
            let (os, oe) = norm.to_original(vs, ve);
            if oe > from {
                hits.push(Hit {
                    start: os.max(from),
                    end: oe,
                    rule: m.rule,
                    action,
                    confidence: Strength::None,
                });
            }
        };
        let b = hay.as_bytes();
        let (list, check): (&[usize], Option<pii::Check>) = match m.start {
            Start::Scan => {
                let gated =
                    !m.anchored.is_empty() && !cands.seen.get(index).copied().unwrap_or(true);
                if !gated {
                    scan_all(m, hay, &mut push);
                }
                return;
            }
            _ if self.full_scan => {
                scan_all(m, hay, &mut push);
                return;
            }
            Start::Cue => (cands.own.get(index).map_or(&[][..], Vec::as_slice), None),
            Start::Digit(f) | Start::Upper(f) | Start::Alnum(f) => {
                (cands.own.get(index).map_or(&[][..], Vec::as_slice), Some(f))
            }
            Start::Iban => (&cands.iban, Some(pii::Check::Iban)),
            Start::Mac => (&cands.mac, Some(pii::Check::Mac)),
            Start::Phone => (&cands.phone, Some(pii::Check::Phone)),
            Start::Email => (&cands.email, None),
            Start::Colon => (&cands.colon, None),
        };
        let Some(re) = &m.anchored_regex else {
            scan_all(m, hay, &mut push);
            return;
        };
        let list = match check {
            Some(check) if !list.is_empty() => {
                bufs.passed.clear();
                check.keep(b, list, &mut bufs.passed);
                &bufs.passed[..]
            }
            _ => list,
        };
        if list.is_empty() {
            return;
        }
        let slots = &mut bufs.slots;
        slots.clear();
        if m.group > 0 {
            slots.resize(2 * (m.group + 1), None);
        }
        let anchored = if m.sweep { Anchored::No } else { Anchored::Yes };
        let mut pos = 0;
        for &c in list {
            if c < pos {
                continue;
            }
            let input = Input::new(hay).span(c..hay.len()).anchored(anchored);
            let found = if m.group == 0 {
                re.search(&input)
                    .map(|x| (x.start(), x.end(), x.start(), x.end()))
            } else {
                re.search_slots(&input, slots).and_then(|_| {
                    let whole = slots.first().copied().flatten()?.get();
                    let whole_end = slots.get(1).copied().flatten()?.get();
                    let gs = slots.get(2 * m.group).copied().flatten()?.get();
                    let ge = slots.get(2 * m.group + 1).copied().flatten()?.get();
                    Some((whole, whole_end, gs, ge))
                })
            };
            let Some((whole_start, whole_end, gs, ge)) = found else {
                if m.sweep {
                    break;
                }
                continue;
            };
            match validated(m, hay, (whole_start, whole_end), gs, ge) {
                (Some((vs, ve)), retry) => {
                    push(vs, ve);
                    pos = ve.max(retry);
                }
                (None, retry) => pos = retry,
            }
        }
    }

    /// `text[from..]` with every merged ANONYMIZE span replaced by its winner's placeholder.
    fn render(&self, text: &str, from: usize, hits: &mut [Hit]) -> String {
        hits.sort_unstable_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut out = String::with_capacity(text.len().saturating_sub(from) + 16);
        let mut cursor = from;
        let mut i = 0;
        while let Some(first) = hits.get(i) {
            let start = first.start;
            let mut end = first.end;
            let mut winner = *first;
            let mut j = i + 1;
            while let Some(h) = hits.get(j) {
                if h.start >= end {
                    break;
                }
                end = end.max(h.end);
                let longer = (h.end - h.start) > (winner.end - winner.start);
                let tie = (h.end - h.start) == (winner.end - winner.start) && h.rule < winner.rule;
                if longer || tie {
                    winner = *h;
                }
                j += 1;
            }
            out.push_str(text.get(cursor..start.max(cursor)).unwrap_or(""));
            if let Some(rule) = self.rules.get(winner.rule) {
                out.push_str(&rule.placeholder);
            }
            cursor = cursor.max(end);
            i = j;
        }
        out.push_str(text.get(cursor..).unwrap_or(""));
        out
    }
}

/// A match (whole span, entity span) validated: the span to report, and where the search
/// resumes on a rejection (one character after the match's start, or at its end for a
/// detector whose rejections hold no accepted match, [`pii::Detector::resume_at_end`]).
fn validated(
    m: &Matcher,
    hay: &str,
    (whole_start, whole_end): (usize, usize),
    gs: usize,
    ge: usize,
) -> (Option<(usize, usize)>, usize) {
    let retry = if m.resume_at_end && whole_end > whole_start {
        whole_end
    } else {
        next_char(hay, whole_start)
    };
    let span = if ge > gs {
        match m.validate {
            Some(v) => v(hay, gs, ge),
            None => Some((gs, ge)),
        }
    } else {
        None
    };
    (span.filter(|(s, e)| e > s), retry)
}

/// One matcher's regex over the whole text: the leftmost match from the last position on,
/// validated, repeatedly.
fn scan_all(m: &Matcher, hay: &str, push: &mut impl FnMut(usize, usize)) {
    let mut pos = 0;
    while pos <= hay.len() {
        let (whole, gs, ge) = if m.group == 0 {
            match m.regex.find_at(hay, pos) {
                Some(x) => ((x.start(), x.end()), x.start(), x.end()),
                None => break,
            }
        } else {
            match m.regex.captures_at(hay, pos) {
                Some(c) => match (c.get(0), c.get(m.group)) {
                    (Some(w), Some(g)) => ((w.start(), w.end()), g.start(), g.end()),
                    _ => break,
                },
                None => break,
            }
        };
        match validated(m, hay, whole, gs, ge) {
            (Some((vs, ve)), retry) => {
                push(vs, ve);
                pos = ve.max(retry);
            }
            (None, retry) => pos = retry,
        }
    }
}

fn next_char(hay: &str, i: usize) -> usize {
    i + hay
        .get(i..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// Compiled guardrails, by id, from configuration only (every one answers to version "1" and
/// "DRAFT"); the [`registry`](super::registry) is the versioned store the gateway uses.
#[derive(Debug)]
pub struct EmbeddedGuardrails {
    guardrails: BTreeMap<String, Arc<CompiledGuardrail>>,
}

impl EmbeddedGuardrails {
    /// Compile every policy; a policy that can't compile (bad regex, unknown entity type) is
    /// an error naming the guardrail and the field.
    pub fn new(policies: &BTreeMap<String, GuardrailPolicy>) -> Result<EmbeddedGuardrails, String> {
        let mut shared = Shared::new()?;
        let mut guardrails = BTreeMap::new();
        for (id, policy) in policies {
            let compiled = CompiledGuardrail::compile(id, policy, &mut shared)?;
            guardrails.insert(id.clone(), Arc::new(compiled));
        }
        Ok(EmbeddedGuardrails { guardrails })
    }

    /// The compiled guardrail for an id and version ("1" or "DRAFT").
    pub fn get(&self, guardrail: &GuardrailRef) -> Result<&Arc<CompiledGuardrail>, GuardError> {
        let not_found = || GuardError::NotFound(format!("{}:{}", guardrail.id, guardrail.version));
        if !VERSIONS.contains(&guardrail.version.as_str()) {
            return Err(not_found());
        }
        self.guardrails.get(&guardrail.id).ok_or_else(not_found)
    }

    /// [`Guardrail::apply`] on the calling thread (tests, the CLI; async callers use the trait,
    /// which runs the work off the runtime).
    pub fn apply_sync(
        &self,
        guardrail: &GuardrailRef,
        source: Source,
        text: &str,
    ) -> Result<GuardOutcome, GuardError> {
        Ok(self.get(guardrail)?.apply(source, text))
    }

    /// [`Guardrail::stream`] without the async wrapper, as the concrete type.
    pub fn stream_sync(&self, guardrail: &GuardrailRef) -> Result<EmbeddedStreamGuard, GuardError> {
        Ok(EmbeddedStreamGuard::new(Arc::clone(self.get(guardrail)?)))
    }
}

#[async_trait]
impl Guardrail for EmbeddedGuardrails {
    async fn apply(
        &self,
        guardrail: &GuardrailRef,
        source: Source,
        text: &str,
    ) -> Result<GuardOutcome, GuardError> {
        let compiled = Arc::clone(self.get(guardrail)?);
        compiled.apply_offloaded(source, text).await
    }

    async fn stream(&self, guardrail: &GuardrailRef) -> Result<Box<dyn StreamGuard>, GuardError> {
        Ok(Box::new(self.stream_sync(guardrail)?))
    }
}

/// The fixed-seed evaluation corpus the black-box tests and the benchmark use.
#[cfg(test)]
#[path = "../../../tests/guard/corpus.rs"]
mod test_corpus;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::guard::policy::{
        ManagedWordListConfig, PiiEntityConfig, RegexConfig, SensitiveInformationPolicy,
        WordConfig, WordPolicy,
    };

    pub(crate) fn pii(t: &str, action: PiiAction) -> PiiEntityConfig {
        PiiEntityConfig {
            entity_type: t.to_string(),
            action,
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        }
    }

    pub(crate) fn custom_regex(name: &str, pattern: &str, action: PiiAction) -> RegexConfig {
        RegexConfig {
            name: name.to_string(),
            description: None,
            pattern: pattern.to_string(),
            action,
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        }
    }

    pub(crate) fn base() -> GuardrailPolicy {
        GuardrailPolicy {
            name: "t".into(),
            description: None,
            blocked_input_messaging: "IN-BLOCKED".into(),
            blocked_outputs_messaging: "OUT-BLOCKED".into(),
            sensitive_information_policy_config: None,
            word_policy_config: None,
            topic_policy_config: None,
            content_policy_config: None,
            contextual_grounding_policy_config: None,
            automated_reasoning_policy_config: None,
            cross_region_config: None,
            kms_key_id: None,
        }
    }

    /// Every detected type anonymized, AWS access keys blocked, a regex, words, profanity and
    /// the default policy's topics.
    pub(crate) fn full_policy() -> GuardrailPolicy {
        let mut p = GuardrailPolicy::default_policy();
        let sip = p
            .sensitive_information_policy_config
            .get_or_insert_with(SensitiveInformationPolicy::default);
        sip.pii_entities_config
            .push(pii("AWS_SECRET_KEY", PiiAction::Anonymize));
        sip.pii_entities_config
            .push(pii("NAME", PiiAction::Anonymize));
        sip.regexes_config.push(custom_regex(
            "employee-id",
            r"\bEMP-[0-9]{6}\b",
            PiiAction::Anonymize,
        ));
        p.word_policy_config = Some(WordPolicy {
            words_config: vec![
                WordConfig {
                    text: "Project Falcon".into(),
                    input_action: None,
                    output_action: None,
                    input_enabled: None,
                    output_enabled: None,
                },
                WordConfig {
                    text: "bananas".into(),
                    input_action: None,
                    output_action: None,
                    input_enabled: None,
                    output_enabled: None,
                },
            ],
            managed_word_lists_config: vec![ManagedWordListConfig {
                list_type: "PROFANITY".into(),
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            }],
        });
        p
    }

    use super::test_corpus as corpus;

    fn hits_of(g: &CompiledGuardrail, text: &str) -> Vec<(usize, usize, usize)> {
        let mut h: Vec<(usize, usize, usize)> = g
            .evaluate(Source::Input, text, 0, false)
            .hits
            .iter()
            .map(|h| (h.start, h.end, h.rule))
            .collect();
        h.sort_unstable();
        h
    }

    /// The candidate scan finds exactly what a full scan of every detector's regex finds
    /// (same leftmost matches, same validation), on the evaluation corpus, every obfuscation
    /// of it, benign look-alikes, and random text dense in digits, separators and cues.
    #[test]
    fn candidate_scan_equals_full_scan() {
        let mut policy = base();
        policy.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
            pii_entities_config: PiiEntity::all()
                .map(|e| pii(e.name(), PiiAction::Anonymize))
                .collect(),
            // Custom regexes gated by their prefix literals (overlapping literals, word
            // boundaries, case-insensitive, alternatives) and one that scans in full.
            regexes_config: [
                r"\bEMP0[0-9]-[0-9]{2,4}\b",
                r"EMP[0-9]+",
                r"(?i)\bak[a-z]a[0-9a-z]{2}",
                r"(?:GB|FR)-[0-9]{2}\b",
                r"(?:ssn |pass )[0-9]+",
                r"s [0-9]{2}\b",
                r"1-?2-?4",
                r"\d{2}:\d{2}",
            ]
            .iter()
            .enumerate()
            .map(|(i, pattern)| custom_regex(&format!("custom-{i}"), pattern, PiiAction::Anonymize))
            .collect(),
        });
        let fast = CompiledGuardrail::from_policy("fast", &policy).unwrap();
        let gated = fast
            .matchers
            .iter()
            .filter(|m| m.anchored.is_empty() && matches!(m.start, Start::Cue))
            .count();
        assert_eq!(gated, 6, "custom regexes gated by prefix literals");
        // Every built-in cue detector begins at a word boundary: no automaton pass.
        assert!(fast.cues.as_ref().is_some_and(|c| !c.has_inner()));
        let mut full = CompiledGuardrail::from_policy("full", &policy).unwrap();
        full.full_scan = true;

        let mut texts: Vec<String> = Vec::new();
        let mut rng = corpus::Rng::new(11);
        for s in corpus::samples(0x5EED_2026, 40) {
            for kind in corpus::OBFUSCATIONS {
                if let Some(o) = corpus::obfuscate(kind, s.entity, &s.value, &mut rng) {
                    texts.push(s.text.replace(&s.value, &o));
                }
            }
            texts.push(s.text);
        }
        texts.extend(corpus::benign(0xBE9, 1000));
        // Starts that are not word starts: a country code inside a word, `+` and `(` after
        // letters, an `_` before a number.
        texts.extend(
            [
                "ref a1-555-123-4567 ok",
                "tel x1 (555) 123-4567",
                "id_555-12-3456 and_4111 1111 1111 1111",
                "call+1 555 123 4567 or(555) 123-4567",
                "mac_00:1a:2b:3c:4d:5e 00-1A-2B-3C-4D-5E 001a.2b3c.4d5e",
                // Shapes next to the ones each check admits.
                "aged 25yo, 7-year-old, 30 y/o, 41 Years old and 1234 years",
                "plates AB12CDE AB12 CDE and NINO AB 12 34 56 C, QQ123456C",
                "SWIFT DEUTDEFF500 DEUTDEFF and VIN 1HGCM82633A004352, 1HGCM82633A0043521",
                "Ann Lee met Bob O'Neil at 12B Baker Street and 7 Elm St. then 4th Ave",
                "Lynn Smith and Dylan Young live at 12y Baker Street, 9Y Elm Road",
                "card 4111_1111_1111_1111 and 411111111111111 and 4111111111111111x",
                // Three separator bytes between digits.
                "card 4111 - 1111 - 1111 - 1111 and +44 (20)-(79) 460958",
            ]
            .map(str::to_string),
        );
        let mixed = corpus::mixed(0x5EED_2026, 1 << 18);
        texts.extend(mixed.split('\n').map(str::to_string));
        const ALPHABET: &[&str] = &[
            "0",
            "1",
            "2",
            "4",
            "5",
            "7",
            "9",
            " ",
            "-",
            ".",
            ":",
            "@",
            "+",
            "(",
            ")",
            "/",
            "_",
            "a",
            "F",
            "K",
            "AKIA",
            "akIa",
            "EMP0",
            "EMP",
            "GB",
            "FR-",
            "Mr ",
            "John ",
            "Smith",
            "ssn ",
            "cvv ",
            "exp ",
            "age ",
            "pin ",
            "passport ",
            "dl ",
            "plate ",
            "www.",
            "http://",
            "user ",
            "pass ",
            "health ",
            "account ",
            "routing ",
            "nhs ",
            "utr ",
            "sin ",
            "secret ",
            " dot ",
            " at ",
            "years old",
            "Street",
            "\u{00e9}",
            "\n",
        ];
        for _ in 0..20_000 {
            let n = 1 + rng.below(40);
            texts.push((0..n).map(|_| *rng.pick(ALPHABET)).collect());
        }
        let mut differing = 0;
        for t in &texts {
            let (a, b) = (hits_of(&fast, t), hits_of(&full, t));
            if a != b {
                differing += 1;
                if differing <= 5 {
                    eprintln!("differs on {t:?}:\n candidates {a:?}\n full scan  {b:?}");
                }
            }
        }
        assert_eq!(differing, 0, "of {} texts", texts.len());
    }

    /// Every hit (with content confidences) of `text[from..]`, sentence policies included.
    fn all_hits(g: &CompiledGuardrail, text: &str, from: usize) -> Vec<String> {
        let mut h: Vec<String> = g
            .evaluate(Source::Input, text, from, true)
            .hits
            .iter()
            .map(|h| format!("{}..{} r{} {:?}", h.start, h.end, h.rule, h.confidence))
            .collect();
        h.sort_unstable();
        h
    }

    /// The fast leetspeak pass (only runs holding a leetspeak byte, prefix-filtered lookups)
    /// finds exactly what the reference pass (every run) finds, and the whole evaluation
    /// (words, content filters, topics) agrees: on the evaluation corpus, obfuscations, benign
    /// text, and random text dense in configured words, leetspeak, phrases across whitespace
    /// runs, odd-edged words (`c++`, `.net`), short words, apostrophes, non-ASCII letters and
    /// sentence breaks; whole texts and suffixes (`from`).
    #[test]
    fn next_leet_finds_the_first_leetspeak_byte() {
        let text = "héllo, wörld: 7 sh1t b@d $ ! ~ `xyz 0".as_bytes();
        for i in 0..=text.len() {
            let expected = text
                .get(i..)
                .and_then(|r| r.iter().position(|&c| leet(c).is_some()))
                .map(|k| i + k);
            assert_eq!(next_leet(text, i), expected, "{i}");
        }
        for c in 0..=255u8 {
            let mut t = [b'a'; 19];
            t[11] = c;
            assert_eq!(next_leet(&t, 0), leet(c).map(|_| 11), "{c}");
        }
    }

    #[test]
    fn fast_paths_equal_reference_paths() {
        use crate::guard::policy::{
            ContentFilterConfig, ContentPolicy, Strength as S, TopicConfig,
        };
        let mut rng = corpus::Rng::new(23);
        let mut policy = GuardrailPolicy::default_policy();
        let mut words: Vec<String> = [
            "Project Falcon",
            "bananas",
            "c++",
            ".net",
            "-rf",
            "x",
            "ab",
            "abc",
            "José",
            "secret  project",
            "secret",
            "big red button",
            "o'neil",
            "a.b",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        for i in 0..2000 {
            let len = 3 + rng.below(6);
            let w: String = (0..len)
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect();
            words.push(if i % 10 == 0 { format!("{w} stock") } else { w });
        }
        policy.word_policy_config = Some(WordPolicy {
            words_config: words
                .iter()
                .map(|w| WordConfig {
                    text: w.clone(),
                    input_action: None,
                    output_action: None,
                    input_enabled: None,
                    output_enabled: None,
                })
                .collect(),
            managed_word_lists_config: vec![ManagedWordListConfig {
                list_type: "PROFANITY".into(),
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            }],
        });
        policy.content_policy_config = Some(ContentPolicy {
            filters_config: ContentFilterType::ALL
                .iter()
                .map(|t| ContentFilterConfig {
                    filter_type: *t,
                    input_strength: S::Low,
                    output_strength: if *t == ContentFilterType::PromptAttack {
                        S::None
                    } else {
                        S::Low
                    },
                    input_modalities: None,
                    output_modalities: None,
                    input_action: None,
                    output_action: None,
                    input_enabled: None,
                    output_enabled: None,
                })
                .collect(),
            tier_config: None,
        });
        if let Some(tp) = policy.topic_policy_config.as_mut() {
            tp.topics_config.push(TopicConfig {
                name: "Gambling tips".into(),
                definition: "Advice on betting, casino odds, poker or wagers.".into(),
                examples: vec!["What's the best poker strategy?".into()],
                topic_type: "DENY".into(),
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            });
        }
        let fast = CompiledGuardrail::from_policy("fast", &policy).unwrap();
        let mut reference = CompiledGuardrail::from_policy("ref", &policy).unwrap();
        reference.reference = true;

        let mut texts: Vec<String> = Vec::new();
        for s in corpus::samples(0x5EED_2026, 10) {
            for kind in corpus::OBFUSCATIONS {
                if let Some(o) = corpus::obfuscate(kind, s.entity, &s.value, &mut rng) {
                    texts.push(s.text.replace(&s.value, &o));
                }
            }
            texts.push(s.text);
        }
        texts.extend(corpus::benign(0xBE9, 500));
        let mixed = corpus::mixed(0x5EED_2026, 1 << 17);
        texts.extend(mixed.split('\n').map(str::to_string));
        let mut alphabet: Vec<String> = [
            " ",
            "  ",
            "\t",
            "\n",
            ". ",
            "! ",
            "? ",
            "'",
            "\u{2019}",
            "-",
            "_",
            ".",
            "+",
            "@",
            "$",
            "!",
            "0",
            "1",
            "3",
            "4",
            "5",
            "7",
            "9",
            "sh1t",
            "b@nanas",
            "fu",
            "ck",
            "ing",
            "Project",
            "falcon",
            "c++",
            ".net",
            "-rf",
            "x",
            "ab",
            "abc",
            "José",
            "é",
            "\u{0430}",
            "secret",
            "project",
            "big",
            "red",
            "button",
            "o'neil",
            "a.b",
            "stock",
            "stocks",
            "buy",
            "should I",
            "bitcoin",
            "invest",
            "gun",
            "build",
            "3D print",
            "bomb",
            "poker",
            "odds",
            "casino",
            "kill",
            "killer",
            "skills",
            "idiot",
            "you idiot",
            "launder money",
            "ignore all previous instructions",
            "decode",
            "base64",
            "porn",
            "the",
            "what's",
            "\u{200B}",
            "\u{E0041}",
            "Ｆuck",
            "ﬁ",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        alphabet.extend(words.iter().take(60).cloned());
        for _ in 0..20_000 {
            let n = 1 + rng.below(30);
            texts.push((0..n).map(|_| rng.pick(&alphabet).as_str()).collect());
        }
        let mut differing = 0;
        let mut with_hits = 0;
        for t in &texts {
            let mut froms = vec![0];
            let mut k = t.len() / 3;
            while k > 0 && !t.is_char_boundary(k) {
                k -= 1;
            }
            froms.push(k);
            for from in froms {
                let (a, b) = (all_hits(&fast, t, from), all_hits(&reference, t, from));
                if !a.is_empty() {
                    with_hits += 1;
                }
                if a != b {
                    differing += 1;
                    if differing <= 5 {
                        eprintln!(
                            "differs on {t:?} from {from}:\n fast      {a:?}\n reference {b:?}"
                        );
                    }
                }
            }
        }
        assert!(
            with_hits > texts.len() / 4,
            "{with_hits} of {}",
            texts.len()
        );
        assert_eq!(differing, 0, "of {} texts", texts.len());
    }

    pub(crate) fn engine_with(p: GuardrailPolicy) -> EmbeddedGuardrails {
        let mut map = BTreeMap::new();
        map.insert("g".to_string(), p);
        EmbeddedGuardrails::new(&map).unwrap()
    }

    pub(crate) fn gref() -> GuardrailRef {
        GuardrailRef {
            id: "g".into(),
            version: "1".into(),
        }
    }

    fn out(e: &EmbeddedGuardrails, text: &str) -> GuardOutcome {
        e.apply_sync(&gref(), Source::Input, text).unwrap()
    }

    fn redacts(e: &EmbeddedGuardrails, text: &str, expected: &str, policy: &str) {
        let o = out(e, text);
        assert_eq!(o.text, expected, "input: {text:?}");
        assert_eq!(o.action, TextAction::Anonymized, "input: {text:?}");
        assert!(o.policies.iter().any(|p| p == policy), "{:?}", o.policies);
    }

    fn untouched(e: &EmbeddedGuardrails, text: &str) {
        let o = out(e, text);
        assert_eq!(o.action, TextAction::None, "input: {text:?} -> {o:?}");
        assert_eq!(o.text, text);
        assert!(o.policies.is_empty(), "input: {text:?} -> {:?}", o.policies);
    }

    fn anonymize_all() -> EmbeddedGuardrails {
        let mut p = base();
        p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
            pii_entities_config: PiiEntity::all()
                .map(|e| pii(e.name(), PiiAction::Anonymize))
                .collect(),
            regexes_config: vec![],
        });
        engine_with(p)
    }

    #[test]
    fn versions_and_unknown_ids() {
        let e = engine_with(base());
        for v in ["1", "DRAFT"] {
            let r = GuardrailRef {
                id: "g".into(),
                version: v.into(),
            };
            assert!(e.apply_sync(&r, Source::Input, "hi").is_ok());
        }
        let bad = GuardrailRef {
            id: "g".into(),
            version: "2".into(),
        };
        match e.apply_sync(&bad, Source::Input, "hi") {
            Err(GuardError::NotFound(s)) => assert_eq!(s, "g:2"),
            other => panic!("{other:?}"),
        }
        let missing = GuardrailRef {
            id: "nope".into(),
            version: "1".into(),
        };
        assert!(matches!(
            e.apply_sync(&missing, Source::Input, "hi"),
            Err(GuardError::NotFound(_))
        ));
    }

    #[test]
    fn default_policy_compiles() {
        let mut map = BTreeMap::new();
        map.insert("default".to_string(), GuardrailPolicy::default_policy());
        map.insert("full".to_string(), full_policy());
        assert!(EmbeddedGuardrails::new(&map).is_ok());
    }

    #[test]
    fn email() {
        let e = anonymize_all();
        redacts(
            &e,
            "mail john.doe+x@example.co.uk now",
            "mail {EMAIL} now",
            "pii:EMAIL",
        );
        redacts(&e, "Email: a@b.io.", "Email: {EMAIL}.", "pii:EMAIL");
        untouched(&e, "look at example.com or @handle or a@b");
    }

    #[test]
    fn email_obfuscations_keep_the_rest_byte_for_byte() {
        let e = anonymize_all();
        redacts(
            &e,
            "write to jo\u{200B}hn@exa\u{200D}mple.com, thanks ",
            "write to {EMAIL}, thanks ",
            "pii:EMAIL",
        );
        redacts(
            &e,
            "ping john [at] example [dot] com!",
            "ping {EMAIL}!",
            "pii:EMAIL",
        );
        redacts(
            &e,
            "ping john(AT)example(dot)com",
            "ping {EMAIL}",
            "pii:EMAIL",
        );
        redacts(
            &e,
            "ping john at example dot com today",
            "ping {EMAIL} today",
            "pii:EMAIL",
        );
        redacts(
            &e,
            "mail me at john dot doe at gmail dot com.",
            "mail me at {EMAIL}.",
            "pii:EMAIL",
        );
        redacts(
            &e,
            "Ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ ok",
            "{EMAIL} ok",
            "pii:EMAIL",
        );
    }

    #[test]
    fn phone() {
        let e = anonymize_all();
        for (t, x) in [
            ("call +1 (555) 123-4567 now", "call {PHONE} now"),
            ("call +44 20 7946 0958.", "call {PHONE}."),
            ("call +4915112345678", "call {PHONE}"),
            ("call (415) 555-0100", "call {PHONE}"),
            (
                "call 415-555-0100 or 415.555.0101",
                "call {PHONE} or {PHONE}",
            ),
        ] {
            redacts(&e, t, x, "pii:PHONE");
        }
        for t in [
            "order 123456789012 shipped",
            "on 2024-01-15 at 10:30",
            "version 1.2.3 and 10.4.22",
            "call 5551234567",
            "ref 123-456-7890",
            "part 12-415-555-0100",
            "+12 is a score",
        ] {
            untouched(&e, t);
        }
    }

    #[test]
    fn ssn() {
        let e = anonymize_all();
        redacts(
            &e,
            "ssn 123-45-6789.",
            "ssn {US_SOCIAL_SECURITY_NUMBER}.",
            "pii:US_SOCIAL_SECURITY_NUMBER",
        );
        redacts(
            &e,
            "ssn 123 45 6789",
            "ssn {US_SOCIAL_SECURITY_NUMBER}",
            "pii:US_SOCIAL_SECURITY_NUMBER",
        );
        for t in [
            "ssn 000-12-3456",
            "ssn 666-12-3456",
            "ssn 912-12-3456",
            "ssn 123-00-3456",
            "ssn 123-45-0000",
            "id 123456789",
            "code 1123-45-6789",
            "ref 123-45-6789-1",
        ] {
            untouched(&e, t);
        }
    }

    #[test]
    fn cards() {
        let e = anonymize_all();
        for t in [
            "card 4111 1111 1111 1111 ok",
            "card 4111-1111-1111-1111 ok",
            "card 4111111111111111 ok",
            "card 5555 5555 5555 4444 ok",
            "card 3782 822463 10005 ok",
            "card 6011111111111117 ok",
        ] {
            redacts(
                &e,
                t,
                "card {CREDIT_DEBIT_CARD_NUMBER} ok",
                "pii:CREDIT_DEBIT_CARD_NUMBER",
            );
        }
        redacts(
            &e,
            "card ４１１１ １１１１ １１１１ １１１１ ok",
            "card {CREDIT_DEBIT_CARD_NUMBER} ok",
            "pii:CREDIT_DEBIT_CARD_NUMBER",
        );
        redacts(
            &e,
            "cards 4111 1111 1111 1111 2024",
            "cards {CREDIT_DEBIT_CARD_NUMBER} 2024",
            "pii:CREDIT_DEBIT_CARD_NUMBER",
        );
        for t in [
            "card 4111 1111 1111 1112",
            "order 1234567890123456",
            "tracking 9400111899223100012345",
            "num 1234 5678 9012 3456",
        ] {
            untouched(&e, t);
        }
    }

    #[test]
    fn ip_addresses() {
        let e = anonymize_all();
        redacts(
            &e,
            "host 192.168.1.20.",
            "host {IP_ADDRESS}.",
            "pii:IP_ADDRESS",
        );
        redacts(
            &e,
            "host 2001:db8::ff00:42:8329 up",
            "host {IP_ADDRESS} up",
            "pii:IP_ADDRESS",
        );
        redacts(
            &e,
            "host fe80::1 up",
            "host {IP_ADDRESS} up",
            "pii:IP_ADDRESS",
        );
        // A dotted quad is an address even when it was meant as a version.
        redacts(&e, "1.2.3.4", "{IP_ADDRESS}", "pii:IP_ADDRESS");
        for t in [
            "version 1.2.3",
            "build v1.2.3.4",
            "oid 1.2.3.4.5",
            "host 256.1.1.1",
            "at 12:30:45",
            "use std::io::Read",
            "dead::beef",
        ] {
            untouched(&e, t);
        }
        redacts(
            &e,
            "mac 00:1A:2B:3C:4D:5E",
            "mac {MAC_ADDRESS}",
            "pii:MAC_ADDRESS",
        );
    }

    #[test]
    fn aws_keys() {
        let e = anonymize_all();
        redacts(
            &e,
            "key AKIAIOSFODNN7EXAMPLE.",
            "key {AWS_ACCESS_KEY}.",
            "pii:AWS_ACCESS_KEY",
        );
        redacts(
            &e,
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
            "aws_secret_access_key = {AWS_SECRET_KEY}\n",
            "pii:AWS_SECRET_KEY",
        );
        redacts(
            &e,
            "my secret key is \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
            "my secret key is \"{AWS_SECRET_KEY}\"",
            "pii:AWS_SECRET_KEY",
        );
        for t in [
            "AKIAIOSFODNN7EXAMPL",
            "XAKIAIOSFODNN7EXAMPLE",
            "commit da39a3ee5e6b4b0d3255bfef95601890afd80709 is fine",
            "token wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY without a cue",
        ] {
            untouched(&e, t);
        }
    }

    #[test]
    fn anonymize_block_none_and_directions() {
        let mut p = base();
        let mut email = pii("EMAIL", PiiAction::Anonymize);
        email.output_action = Some(PiiAction::Block);
        let mut phone = pii("PHONE", PiiAction::Block);
        phone.input_enabled = Some(false);
        let ip = pii("IP_ADDRESS", PiiAction::None);
        p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
            pii_entities_config: vec![email, phone, ip],
            regexes_config: vec![],
        });
        let e = engine_with(p);
        let text = "a@b.com 10.0.0.1 +1 415 555 0100";
        let i = e.apply_sync(&gref(), Source::Input, text).unwrap();
        assert_eq!(i.action, TextAction::Anonymized);
        assert_eq!(i.text, "{EMAIL} 10.0.0.1 +1 415 555 0100");
        assert_eq!(i.policies, vec!["pii:EMAIL", "pii:IP_ADDRESS"]);
        let o = e.apply_sync(&gref(), Source::Output, text).unwrap();
        assert_eq!(o.action, TextAction::Blocked);
        assert_eq!(o.text, "OUT-BLOCKED");
        assert_eq!(o.policies, vec!["pii:EMAIL", "pii:IP_ADDRESS", "pii:PHONE"]);
        let b = e
            .apply_sync(&gref(), Source::Input, "only 10.0.0.1 here")
            .unwrap();
        assert_eq!(b.action, TextAction::None);
        assert_eq!(b.text, "only 10.0.0.1 here");
        assert_eq!(b.policies, vec!["pii:IP_ADDRESS"]);
        let blocked_in = e
            .apply_sync(&gref(), Source::Output, "hi +1 415 555 0100")
            .unwrap();
        assert_eq!(blocked_in.text, "OUT-BLOCKED");
    }

    #[test]
    fn blocked_input_uses_input_message() {
        let e = engine_with(full_policy());
        let o = e
            .apply_sync(
                &gref(),
                Source::Input,
                "my key AKIAIOSFODNN7EXAMPLE and a@b.com",
            )
            .unwrap();
        assert_eq!(o.action, TextAction::Blocked);
        assert_eq!(
            o.text,
            GuardrailPolicy::default_policy().blocked_input_messaging
        );
        assert_eq!(o.policies, vec!["pii:AWS_ACCESS_KEY", "pii:EMAIL"]);
    }

    #[test]
    fn custom_regex_and_overlaps() {
        let e = engine_with(full_policy());
        let o = out(&e, "ticket EMP-123456 for a@b.com, EMP-1234567 is not one");
        assert_eq!(
            o.text,
            "ticket {employee-id} for {EMAIL}, EMP-1234567 is not one"
        );
        assert_eq!(o.policies, vec!["pii:EMAIL", "regex:employee-id"]);

        // Overlapping hits merge; the longest wins.
        let mut p = base();
        p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
            pii_entities_config: vec![pii("EMAIL", PiiAction::Anonymize)],
            regexes_config: vec![custom_regex(
                "domain",
                r"example\.com",
                PiiAction::Anonymize,
            )],
        });
        let e = engine_with(p);
        let o = out(&e, "to a@example.com and example.com");
        assert_eq!(o.text, "to {EMAIL} and {domain}");
        assert_eq!(o.policies, vec!["pii:EMAIL", "regex:domain"]);
    }

    #[test]
    fn compile_errors_name_guardrail_and_field() {
        let regex = |pattern: &str| custom_regex("bad-one", pattern, PiiAction::Block);
        let with = |sip: SensitiveInformationPolicy| {
            let mut p = base();
            p.sensitive_information_policy_config = Some(sip);
            let mut map = BTreeMap::new();
            map.insert("gr-1".to_string(), p);
            EmbeddedGuardrails::new(&map).unwrap_err()
        };
        let e = with(SensitiveInformationPolicy {
            pii_entities_config: vec![],
            regexes_config: vec![regex("([a-z]+")],
        });
        assert!(e.contains("gr-1"), "{e}");
        assert!(e.contains("regexesConfig[0].pattern ('bad-one')"), "{e}");
        assert!(e.contains("invalid regex"), "{e}");
        let e = with(SensitiveInformationPolicy {
            pii_entities_config: vec![],
            regexes_config: vec![regex("(?<=x)y")],
        });
        assert!(e.contains("look-around"), "{e}");
        let e = with(SensitiveInformationPolicy {
            pii_entities_config: vec![],
            regexes_config: vec![regex(&"a".repeat(501))],
        });
        assert!(e.contains("1 to 500"), "{e}");
        let e = with(SensitiveInformationPolicy {
            pii_entities_config: vec![],
            regexes_config: vec![regex(r"\w{1000}\w{1000}")],
        });
        assert!(e.contains("bad-one"), "{e}");
        let e = with(SensitiveInformationPolicy {
            pii_entities_config: vec![],
            regexes_config: (0..31).map(|_| regex("x")).collect(),
        });
        assert!(e.contains("at most 30"), "{e}");
        let e = with(SensitiveInformationPolicy {
            pii_entities_config: vec![pii("SOCIAL", PiiAction::Block)],
            regexes_config: vec![],
        });
        assert!(
            e.contains("piiEntitiesConfig[0].type") && e.contains("'SOCIAL'"),
            "{e}"
        );
        // Every Bedrock type loads and detects.
        let e = anonymize_all();
        redacts(
            &e,
            "Alice lives at 1 Main Street, she is 42.",
            "Alice lives at {ADDRESS}, she is 42.",
            "pii:ADDRESS",
        );
    }

    #[test]
    fn words_whole_word_case_insensitive() {
        let e = engine_with(full_policy());
        for t in [
            "we ship PROJECT  FALCON tomorrow",
            "Bananas!",
            "this is bullshit",
        ] {
            let o = out(&e, t);
            assert_eq!(o.action, TextAction::Blocked, "{t}");
            assert_eq!(
                o.text,
                GuardrailPolicy::default_policy().blocked_input_messaging
            );
        }
        assert_eq!(out(&e, "Bananas!").policies, vec!["word:bananas"]);
        assert_eq!(
            out(&e, "project falcon").policies,
            vec!["word:Project Falcon"]
        );
        assert_eq!(out(&e, "oh SHIT").policies, vec!["word:PROFANITY"]);
        for t in ["bananasplit", "the falcon project", "Scunthorpe", "shitake"] {
            untouched(&e, t);
        }
    }

    #[test]
    fn topics_block_examples_and_paraphrases() {
        let mut p = base();
        p.topic_policy_config = GuardrailPolicy::default_policy().topic_policy_config;
        let e = engine_with(p);
        for t in [
            "Which stocks should I buy this year?",
            "Thanks! Should I sell my index fund shares?",
            "Would investing in cryptocurrencies be smart right now?",
            "What is the easiest way to assemble a pipe bomb?",
        ] {
            let o = out(&e, t);
            assert_eq!(o.action, TextAction::Blocked, "{t}");
            assert_eq!(o.text, "IN-BLOCKED");
            assert_eq!(o.policies.len(), 1, "{t}");
            assert!(o.policies[0].starts_with("topic:"), "{t}");
        }
        for t in [
            "Summarise this meeting transcript in three bullet points.",
            "Which laptop should I buy this year?",
            "The plumber fixed a leaking pipe in the kitchen.",
            "Please build the Docker image and deploy it.",
        ] {
            untouched(&e, t);
        }
    }

    #[test]
    fn context_is_not_rescanned() {
        let e = engine_with(full_policy());
        let g = e.get(&gref()).unwrap();
        let text = "mail a@b.com then c@d.com";
        let from = text.find("then").unwrap();
        let v = g.guard(Source::Output, text, from, false);
        assert_eq!(v.text, "then {EMAIL}");
        assert_eq!(v.policies, vec!["pii:EMAIL"]);
        let v = g.guard(Source::Output, text, 9, false);
        assert_eq!(
            v.text, "{EMAIL} then {EMAIL}",
            "a straddling hit is clipped"
        );
    }

    /// One positive example per type: the text, and the value that must be replaced.
    pub(crate) const EXAMPLES: &[(&str, &str, &str)] = &[
        (
            "ADDRESS",
            "Ship it to 742 Evergreen Terrace, Springfield, IL 62704 please.",
            "742 Evergreen Terrace, Springfield, IL 62704",
        ),
        ("AGE", "The patient is 47 years old.", "47"),
        (
            "AWS_ACCESS_KEY",
            "key AKIAIOSFODNN7EXAMPLE here",
            "AKIAIOSFODNN7EXAMPLE",
        ),
        (
            "AWS_SECRET_KEY",
            "secret key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "CA_HEALTH_NUMBER",
            "My OHIP number is 1234-567-890 AB.",
            "1234-567-890 AB",
        ),
        (
            "CA_SOCIAL_INSURANCE_NUMBER",
            "SIN 130 692 544 on file",
            "130 692 544",
        ),
        (
            "CREDIT_DEBIT_CARD_CVV",
            "card 4111 1111 1111 1111 CVV: 123",
            "123",
        ),
        (
            "CREDIT_DEBIT_CARD_EXPIRY",
            "expires 09/27 on the front",
            "09/27",
        ),
        (
            "CREDIT_DEBIT_CARD_NUMBER",
            "pay with 5555-5555-5555-4444 today",
            "5555-5555-5555-4444",
        ),
        (
            "DRIVER_ID",
            "driver's license number D1234567 from CA",
            "D1234567",
        ),
        ("EMAIL", "mail jane@example.org now", "jane@example.org"),
        (
            "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
            "IBAN GB82 WEST 1234 5698 7654 32 for wires",
            "GB82 WEST 1234 5698 7654 32",
        ),
        ("IP_ADDRESS", "host 10.20.30.40 is down", "10.20.30.40"),
        ("LICENSE_PLATE", "license plate 7ABC123 was seen", "7ABC123"),
        (
            "MAC_ADDRESS",
            "nic 3c:22:fb:11:aa:09 up",
            "3c:22:fb:11:aa:09",
        ),
        (
            "NAME",
            "Please call Maria Gonzalez tomorrow.",
            "Maria Gonzalez",
        ),
        ("PASSWORD", "my password is Tr0ub4dor&3 ok", "Tr0ub4dor&3"),
        ("PHONE", "call (415) 555-0100 now", "(415) 555-0100"),
        ("PIN", "my PIN is 4921 so", "4921"),
        (
            "SWIFT_CODE",
            "SWIFT code DEUTDEFF for the transfer",
            "DEUTDEFF",
        ),
        (
            "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
            "NHS number 943 476 5919 registered",
            "943 476 5919",
        ),
        (
            "UK_NATIONAL_INSURANCE_NUMBER",
            "NI number AB 12 34 56 C today",
            "AB 12 34 56 C",
        ),
        (
            "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
            "my UTR is 1955839661 thanks",
            "1955839661",
        ),
        (
            "URL",
            "see https://intranet.example.com/users/42?x=1. Thanks",
            "https://intranet.example.com/users/42?x=1",
        ),
        ("USERNAME", "username: jdoe_1987 and more", "jdoe_1987"),
        (
            "US_BANK_ACCOUNT_NUMBER",
            "checking account number 000123456789 at",
            "000123456789",
        ),
        (
            "US_BANK_ROUTING_NUMBER",
            "routing number 021000021 for",
            "021000021",
        ),
        (
            "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
            "ITIN 912-78-1234 filed",
            "912-78-1234",
        ),
        (
            "US_PASSPORT_NUMBER",
            "passport number 123456789 expires",
            "123456789",
        ),
        (
            "US_SOCIAL_SECURITY_NUMBER",
            "SSN 123-45-6789 on file",
            "123-45-6789",
        ),
        (
            "VEHICLE_IDENTIFICATION_NUMBER",
            "VIN 1M8GDM9AXKP042788 registered",
            "1M8GDM9AXKP042788",
        ),
    ];

    #[test]
    fn every_type_detects_its_example() {
        assert_eq!(EXAMPLES.len(), 31);
        let e = anonymize_all();
        let mut failures = Vec::new();
        for (t, text, value) in EXAMPLES {
            let o = out(&e, text);
            let (head, tail) = text.split_once(value).unwrap();
            let ok = o.text.contains(&format!("{{{t}}}"))
                && !o.text.contains(value)
                && o.text.ends_with(tail)
                && o.policies.contains(&format!("pii:{t}"));
            let _ = head;
            if !ok {
                failures.push(format!("{t}: {text:?} -> {:?}", o.text));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn look_alikes_are_not_pii() {
        let e = anonymize_all();
        for t in [
            "Order 1234567890 shipped on 2024-03-05 at 10:30.",
            "Version 2.14.3 fixes bug #45123; see ticket 998877665.",
            "The meeting is in room 402 on floor 3.",
            "Invoice INV-2024-000123 totals $1,234.56.",
            "Tracking 1Z999AA10123456784 arrives Friday.",
            "We shipped 47 units; the password reset link is below.",
            "The Mark Twain novel and the Grace period ended in March.",
            "Account settings are under the profile menu.",
            "BUSINESS UPDATE: revenue grew.",
            "Our routing table has 9 entries.",
            "The sin of pride is an old theme.",
        ] {
            untouched(&e, t);
        }
    }

    #[test]
    fn obfuscations_are_seen_through() {
        let e = anonymize_all();
        for (t, x) in [
            (
                "card 4111\u{200B}1111\u{200B}1111\u{200B}1111 ok",
                "card {CREDIT_DEBIT_CARD_NUMBER} ok",
            ),
            (
                "card 4111.1111.1111.1111 ok",
                "card {CREDIT_DEBIT_CARD_NUMBER} ok",
            ),
            (
                "ssn \u{0661}\u{0662}\u{0663}-45-6789 ok",
                "ssn {US_SOCIAL_SECURITY_NUMBER} ok",
            ),
            ("mail j\u{043E}hn@ex\u{0430}mple.com ok", "mail {EMAIL} ok"),
            (
                "ssn 123\u{2013}45\u{2013}6789 ok",
                "ssn {US_SOCIAL_SECURITY_NUMBER} ok",
            ),
        ] {
            let o = out(&e, t);
            assert_eq!(o.text, x, "{t:?}");
        }
    }

    /// Deterministic fuzzing of the normaliser and the engine: random strings over an alphabet
    /// of the characters obfuscation uses (invisibles, bidi, tags, combining marks, fullwidth,
    /// confusables, other scripts' digits, brackets, separators). Never a panic; every hit and
    /// every normalised span maps back to char boundaries of the original; output bounded.
    #[test]
    fn fuzz_normaliser_and_engine() {
        const ALPHABET: &[&str] = &[
            "a",
            "Z",
            "0",
            "7",
            "9",
            " ",
            "  ",
            "\n",
            "\t",
            ".",
            "-",
            "@",
            "(",
            ")",
            "[at]",
            "(dot)",
            "{",
            "}",
            "/",
            ":",
            "+",
            "$",
            "!",
            "'",
            "\u{200B}",
            "\u{200D}",
            "\u{202E}",
            "\u{2066}",
            "\u{00AD}",
            "\u{E0041}",
            "\u{E0069}",
            "\u{0301}",
            "\u{0308}",
            "\u{FF14}",
            "\u{FF41}",
            "\u{0430}",
            "\u{03BF}",
            "\u{0661}",
            "\u{0967}",
            "\u{2013}",
            "\u{00A0}",
            "\u{3000}",
            "\u{FDFA}",
            "\u{1F600}",
            "\u{4E2D}",
            "\u{0627}",
            "ß",
            "İ",
            "ﬁ",
            "AKIA",
            "4111 ",
            "ssn ",
            "password: ",
            "Maria ",
            "Smith",
            " Street",
            "https://",
            "www.",
            "ignore ",
            "instructions",
            "\u{2019}",
            "\u{FF0E}",
        ];
        let mut p = full_policy();
        p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
            pii_entities_config: PiiEntity::all()
                .map(|e| pii(e.name(), PiiAction::Anonymize))
                .collect(),
            regexes_config: vec![],
        });
        p.content_policy_config = Some(crate::guard::policy::ContentPolicy {
            filters_config: vec![crate::guard::policy::ContentFilterConfig {
                filter_type: ContentFilterType::PromptAttack,
                input_strength: Strength::Low,
                output_strength: Strength::None,
                input_modalities: None,
                output_modalities: None,
                input_action: Some(BlockAction::None),
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            }],
            tier_config: None,
        });
        let e = engine_with(p);
        let g = e.get(&gref()).unwrap();
        let norm = Normalizer::new().unwrap();
        let mut state: u64 = 0x00C0_FFEE;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % n
        };
        for _ in 0..3000 {
            let len = next(120);
            let text: String = (0..len).map(|_| ALPHABET[next(ALPHABET.len())]).collect();
            let n = norm.normalize(&text);
            let h = n.as_str();
            assert!(h.len() <= text.len() * 18 + 4, "normalised too long");
            for (i, _) in h.char_indices() {
                let (s, e2) = n.to_original(i, h.len());
                assert!(
                    text.is_char_boundary(s)
                        && text.is_char_boundary(e2)
                        && s <= e2
                        && e2 <= text.len()
                );
            }
            for source in [Source::Input, Source::Output] {
                let eval = g.evaluate(source, &text, 0, true);
                for hit in &eval.hits {
                    assert!(hit.start <= hit.end && hit.end <= text.len(), "{text:?}");
                    assert!(
                        text.is_char_boundary(hit.start) && text.is_char_boundary(hit.end),
                        "{text:?}"
                    );
                }
                let o = g.apply(source, &text);
                assert!(
                    o.text.len() <= text.len() * 16 + 512,
                    "output unbounded for {text:?}"
                );
                let r = g.assess(source, &[(text.as_str(), true)], true);
                assert!(r["action"].is_string());
            }
            let from = next(text.len() + 1);
            if text.is_char_boundary(from) {
                let v = g.guard(Source::Output, &text, from, false);
                assert!(v.blocked || v.text.len() <= text.len() * 16 + 512);
            }
        }
    }

    /// A ~1 KB prompt: prose, one e-mail, one phone number, one card.
    pub(crate) fn typical_prompt() -> String {
        let mut t = String::new();
        t.push_str("Hi! Please summarise the following customer ticket for the support team. ");
        t.push_str("The customer, reachable at jane.roe@example.org or +1 (415) 555-0199, says ");
        t.push_str("their order arrived late and the invoice was charged twice to card ");
        t.push_str("4111 1111 1111 1111. ");
        while t.len() < 1000 {
            t.push_str("They would like a refund for the duplicate charge and an apology, and ");
            t.push_str("they mention that the delivery driver left the parcel in the rain. ");
        }
        t
    }

    #[test]
    #[ignore = "timing: cargo test --release -p gateway --lib perf -- --ignored --nocapture"]
    fn perf_typical_prompt() {
        let text = typical_prompt();
        for (name, policy) in [
            ("default", GuardrailPolicy::default_policy()),
            ("full", full_policy()),
        ] {
            let e = engine_with(policy);
            let g = e.get(&gref()).unwrap();
            let mut times = Vec::new();
            for _ in 0..20_000 {
                let t = std::time::Instant::now();
                let o = g.apply(Source::Input, &text);
                times.push(t.elapsed());
                assert_eq!(o.action, TextAction::Anonymized);
            }
            times.sort();
            println!(
                "{name}: {} bytes, p50 {:?}, p99 {:?}, max {:?}",
                text.len(),
                times[times.len() / 2],
                times[times.len() * 99 / 100],
                times[times.len() - 1]
            );
        }
        let e = engine_with(full_policy());
        let g = e.get(&gref()).unwrap();
        let time = |label: &str, f: &dyn Fn()| {
            let t = std::time::Instant::now();
            for _ in 0..20_000 {
                f();
            }
            println!("{label}: {:?}/call", t.elapsed() / 20_000);
        };
        time("no topics", &|| {
            g.guard(Source::Input, &text, 0, false);
        });
        time("normalize", &|| {
            std::hint::black_box(g.normalizer.normalize(&text));
        });
        time("candidates", &|| {
            let mut c = Candidates::default();
            c.clear(g.matchers.len());
            let mut runs = Vec::new();
            lexicon::ascii_runs(text.as_bytes(), &mut runs);
            g.candidates(&text, &runs, &mut c);
            std::hint::black_box(c);
        });
        time("stream, 4-char fragments", &|| {
            let mut s = e.stream_sync(&gref()).unwrap();
            let chars: Vec<char> = text.chars().collect();
            for chunk in chars.chunks(4) {
                let part: String = chunk.iter().collect();
                std::hint::black_box(s.push_sync(&part));
            }
            std::hint::black_box(s.finish_sync());
        });
        time("topics", &|| {
            g.topics.classify(&text, |r| {
                std::hint::black_box(r);
            });
        });
        println!(
            "{}",
            e.apply_sync(&gref(), Source::Input, &text).unwrap().text
        );
    }
}
