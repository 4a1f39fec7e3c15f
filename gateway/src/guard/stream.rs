//! Streaming output guard: holds back the tail of the text that a pending match could still
//! extend, releases the rest guarded.
//!
//! Each push appends to a buffer and computes a safe cut ([`hold_back_start`]): the trailing
//! run of non-whitespace characters is held (a word, number or address may still be growing),
//! extended backwards over whole tokens while the text could still be one entity:
//! - digit groups joined by short whitespace (`4111 1111 1111 1111`, `+1 (555) 123 4567`,
//!   `123 45 6789`), up to 19 held digits (no entity is longer);
//! - spelled e-mail separators (`at`, `dot`, `[at]`, `(dot)`, ...) and the words either side;
//! - the last word before trailing whitespace (it may be the local part of `john at ...`);
//! - words that start or continue a configured multi-word custom phrase;
//! - runs of tokens that start with a capital or a digit, or contain a digit (a name, an
//!   address, an IBAN or plate in groups), up to [`MAX_ENTITY_TOKENS`] tokens.
//!
//! When the guardrail has denied topics or content filters, which are classified sentence by
//! sentence (content filters on the released sentence), the cut is
//! also moved back to the last sentence boundary, so a sentence is released only once it is
//! complete and classified (a denied topic never leaks a partial sentence; the cost is
//! sentence-granular latency for such guardrails).
//!
//! The safe prefix is guarded by the same engine with up to [`CONTEXT`] bytes of already
//! released text as left context (word boundaries, the AWS secret key's cue word), ignoring hits
//! inside that context. So the concatenation of releases equals `apply(Output)` on the whole
//! text, and no fragment of a redacted value is released, whenever every entity stays inside
//! one held region. The known exception: a custom regex whose matches contain whitespace can be
//! split by a cut (a hit straddling a cut is still redacted from the cut on, never released in
//! full). A held region over [`MAX_HOLD`] bytes is guarded and released anyway.
//!
//! A BLOCK anywhere returns [`StreamStep::Blocked`] with the blocked-output message, and every
//! later push or finish returns it again.
//!
//! Work stays linear in the streamed length whatever the fragment sizes: each evaluation (the
//! hold-back walk, the sentence scan, guarding the released text with its context) costs at
//! most the buffer's length, and a push only evaluates when the guard has earned that much
//! credit ([`CREDIT_PER_BYTE`] per pushed byte, [`INITIAL_CREDIT`] to start, so short answers
//! release at once) or when the held text passed [`MAX_HOLD`] (then at most half of it stays
//! held, so the next forced evaluation is at least `MAX_HOLD / 2` bytes away). A push between
//! evaluations only appends (and releases nothing yet). The async [`StreamGuard`] runs each
//! evaluation off the runtime ([`offload`](super::offload)); a guard whose evaluation failed
//! (busy, over budget) has lost its state and refuses every later push.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

use super::engine::CompiledGuardrail;
use super::normalize::is_ignorable;
use super::offload;
use super::topic::is_terminator;
use super::{GuardError, Source, StreamGuard, StreamStep, TextAction};

/// The most text held back; a longer held region is guarded and released anyway.
pub const MAX_HOLD: usize = 4096;
/// Bytes of released text kept as left context for the next region.
pub const CONTEXT: usize = 128;
/// Most whitespace characters between two tokens that can still be one entity.
const MAX_JOIN_GAP: usize = 3;
/// Longest digit count of any detected entity (a 19-digit card).
const MAX_ENTITY_DIGITS: usize = 19;
/// Work credit (bytes of buffer an evaluation may look at) earned per pushed byte.
pub const CREDIT_PER_BYTE: usize = 4;
/// Work credit a new stream starts with.
pub const INITIAL_CREDIT: usize = 1024;
/// Most tokens the hold-back walks back over (no entity has more).
const MAX_WALK_TOKENS: usize = 64;

/// The embedded engine's [`StreamGuard`].
#[derive(Debug)]
pub struct EmbeddedStreamGuard {
    guardrail: Arc<CompiledGuardrail>,
    /// `buf[..ctx_len]` was released (kept as context); `buf[ctx_len..]` is pending.
    buf: String,
    ctx_len: usize,
    /// Sentence boundaries (offsets in `buf`) not yet released.
    boundaries: Vec<usize>,
    /// `buf[..scanned]` has been scanned for sentence boundaries.
    scanned: usize,
    /// `buf[..checked]` has been checked for BLOCK hits while a sentence is held for topics.
    checked: usize,
    prev_terminator: bool,
    action: TextAction,
    policies: BTreeSet<String>,
    blocked: Option<String>,
    /// Bytes of buffer the next evaluations may still look at (see the module doc).
    credit: usize,
    /// An evaluation off the runtime failed: the state is gone, every later call fails.
    lost: bool,
}

impl EmbeddedStreamGuard {
    pub(crate) fn new(guardrail: Arc<CompiledGuardrail>) -> EmbeddedStreamGuard {
        EmbeddedStreamGuard {
            guardrail,
            buf: String::new(),
            ctx_len: 0,
            boundaries: Vec::new(),
            scanned: 0,
            checked: 0,
            prev_terminator: false,
            action: TextAction::None,
            policies: BTreeSet::new(),
            blocked: None,
            credit: INITIAL_CREDIT,
            lost: false,
        }
    }

    /// [`StreamGuard::push`] without the async wrapper.
    pub fn push_sync(&mut self, fragment: &str) -> StreamStep {
        match self.append(fragment) {
            Some(step) => step,
            None => self.evaluate(),
        }
    }

    /// Append a fragment: the step when no evaluation is due (blocked already, or not enough
    /// credit yet and the held text within [`MAX_HOLD`]), `None` when one is (its cost is
    /// charged here). O(fragment).
    fn append(&mut self, fragment: &str) -> Option<StreamStep> {
        if let Some(message) = &self.blocked {
            return Some(StreamStep::Blocked(message.clone()));
        }
        self.buf.push_str(fragment);
        self.credit = self
            .credit
            .saturating_add(CREDIT_PER_BYTE.saturating_mul(fragment.len()));
        let cost = self.buf.len();
        if self.held() <= MAX_HOLD && self.credit < cost {
            return Some(StreamStep::Release(String::new()));
        }
        self.credit = self.credit.saturating_sub(cost);
        None
    }

    /// Compute the safe cut and release up to it (the work [`append`](Self::append) charged).
    fn evaluate(&mut self) -> StreamStep {
        let (cut, token_cut) = self.safe_cut();
        if token_cut > cut.max(self.checked)
            && let Some(step) = self.check_held(token_cut)
        {
            return step;
        }
        self.release(cut)
    }

    /// While a sentence is held for topic classification, check the part of it no pending
    /// match can extend for BLOCK hits, so a blocked value ends the stream without waiting
    /// for the sentence to finish.
    fn check_held(&mut self, token_cut: usize) -> Option<StreamStep> {
        let from = self.checked.max(self.ctx_len);
        let start = context_start(&self.buf, from);
        let text = self.buf.get(start..token_cut)?;
        let verdict = self
            .guardrail
            .guard(Source::Output, text, from - start, false);
        self.checked = token_cut;
        if verdict.blocked {
            self.policies.extend(verdict.policies);
            return Some(self.block());
        }
        None
    }

    fn block(&mut self) -> StreamStep {
        let message = self.guardrail.blocked_message(Source::Output).to_string();
        self.action = TextAction::Blocked;
        self.blocked = Some(message.clone());
        self.buf.clear();
        self.ctx_len = 0;
        self.boundaries.clear();
        self.scanned = 0;
        self.checked = 0;
        StreamStep::Blocked(message)
    }

    /// [`StreamGuard::finish`] without the async wrapper.
    pub fn finish_sync(&mut self) -> StreamStep {
        if let Some(message) = &self.blocked {
            return StreamStep::Blocked(message.clone());
        }
        let cut = self.buf.len();
        self.release(cut)
    }

    /// How many bytes are held back right now.
    pub fn held(&self) -> usize {
        self.buf.len() - self.ctx_len
    }

    /// The safe cut, and the cut the hold-back alone would allow (before sentence holding).
    fn safe_cut(&mut self) -> (usize, usize) {
        let pending = self.buf.get(self.ctx_len..).unwrap_or("");
        let token_cut = self.ctx_len + hold_back_start(pending, &self.guardrail);
        let mut cut = token_cut;
        if self.guardrail.has_topics() {
            self.scan_boundaries();
            cut = self
                .boundaries
                .iter()
                .rev()
                .find(|&&b| b <= token_cut)
                .copied()
                .unwrap_or(self.ctx_len);
        }
        let len = self.buf.len();
        if len - cut > MAX_HOLD {
            // At most half of MAX_HOLD stays held, so forced evaluations stay far apart.
            cut = if len - token_cut <= MAX_HOLD / 2 {
                token_cut
            } else {
                len
            };
        }
        (cut.max(self.ctx_len), token_cut)
    }

    /// Record sentence boundaries in the newly pushed text, by the same rule as
    /// [`topic::segments`](super::topic::segments).
    fn scan_boundaries(&mut self) {
        let start = self.scanned;
        if let Some(tail) = self.buf.get(start..) {
            for (i, c) in tail.char_indices() {
                let at = start + i;
                if c == '\n' {
                    self.boundaries.push(at + 1);
                } else if self.prev_terminator && c.is_whitespace() {
                    self.boundaries.push(at);
                }
                self.prev_terminator = is_terminator(c);
            }
        }
        self.scanned = self.buf.len();
    }

    fn release(&mut self, cut: usize) -> StreamStep {
        if cut <= self.ctx_len {
            return StreamStep::Release(String::new());
        }
        let text = self.buf.get(..cut).unwrap_or("");
        let verdict = self.guardrail.guard(
            Source::Output,
            text,
            self.ctx_len,
            self.guardrail.has_topics(),
        );
        self.action = self.action.max(verdict.action());
        self.policies.extend(verdict.policies);
        if verdict.blocked {
            return self.block();
        }
        let keep = context_start(&self.buf, cut);
        self.buf.drain(..keep);
        self.ctx_len = cut - keep;
        self.scanned -= keep.min(self.scanned);
        self.checked = self.checked.saturating_sub(keep).max(self.ctx_len);
        self.boundaries.retain(|&b| b > cut);
        for b in &mut self.boundaries {
            *b -= keep;
        }
        StreamStep::Release(verdict.text)
    }
}

/// Where the context kept before `cut` starts: at most [`CONTEXT`] bytes back, moved forward
/// to the start of a token.
fn context_start(buf: &str, cut: usize) -> usize {
    let mut s = cut.saturating_sub(CONTEXT);
    if s == 0 {
        return 0;
    }
    while s < cut && !buf.is_char_boundary(s) {
        s += 1;
    }
    if let Some(window) = buf.get(s..cut)
        && let Some((i, c)) = window.char_indices().find(|(_, c)| c.is_whitespace())
    {
        s += i + c.len_utf8();
    }
    s
}

fn is_bracket(c: char) -> bool {
    matches!(
        c,
        '[' | ']' | '(' | ')' | '{' | '}' | '［' | '］' | '（' | '）'
    )
}

/// `at`, `dot`, `[at]`, `(dot)`, ... or a lone bracket: an e-mail separator spelled out.
fn is_spelled(token: &str) -> bool {
    let core = token.trim_matches(is_bracket);
    if core.is_empty() {
        return !token.is_empty();
    }
    core.eq_ignore_ascii_case("at") || core.eq_ignore_ascii_case("dot")
}

/// An incomplete trailing token that may still grow into a spelled separator (`a`, `[d`, ...).
fn may_become_spelled(token: &str) -> bool {
    let lead = token.trim_start_matches(is_bracket);
    if lead.is_empty() {
        return !token.is_empty();
    }
    if lead.ends_with(is_bracket) {
        return is_spelled(token);
    }
    let prefix_of = |word: &str| {
        lead.len() <= word.len()
            && word
                .get(..lead.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(lead))
    };
    prefix_of("at") || prefix_of("dot")
}

/// Digits and number punctuation only, with a digit (or the `+`/`(` a number can start with).
fn is_numeric(token: &str) -> bool {
    !token.is_empty()
        && !token.chars().any(char::is_alphabetic)
        && token
            .chars()
            .any(|c| c.is_numeric() || c == '+' || c == '(')
}

/// Could be the local part of an e-mail address.
fn is_local_part(token: &str) -> bool {
    !token.is_empty()
        && token.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-') || is_ignorable(c)
        })
}

/// Could be part of a multi-word entity (a name, an address, an IBAN or plate group): starts
/// with an upper-case letter or a digit, or contains a digit.
fn may_continue_entity(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_uppercase() || c.is_numeric())
        || token.chars().any(char::is_numeric)
}

/// Tokens joined into one held-back entity candidate at most (bounds the hold for long runs of
/// capitalised words).
pub const MAX_ENTITY_TOKENS: usize = 24;

fn count_digits(s: &str) -> usize {
    s.chars().filter(|c| c.is_numeric()).count()
}

/// Where the held-back tail of `pending` starts: everything before it can be guarded and
/// released, because no match can extend from before it into text not yet received.
pub(crate) fn hold_back_start(pending: &str, guardrail: &CompiledGuardrail) -> usize {
    let is_ws = char::is_whitespace;
    let mut start = pending.len();
    for (i, c) in pending.char_indices().rev() {
        if is_ws(c) {
            break;
        }
        start = i;
    }
    let mut digits = count_digits(pending.get(start..).unwrap_or(""));
    for joined in 0..MAX_WALK_TOKENS {
        let before = pending.get(..start).unwrap_or("");
        let trimmed = before.trim_end_matches(is_ws);
        if trimmed.is_empty() {
            return start;
        }
        let gap = before.get(trimmed.len()..).unwrap_or("");
        let t_start = trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| is_ws(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let token = trimmed.get(t_start..).unwrap_or("");
        let rest = pending.get(start..).unwrap_or("");
        let first = rest.split(is_ws).next().unwrap_or("");
        let first_complete = rest.len() > first.len();
        let spelled = is_spelled(token)
            || if first_complete {
                is_spelled(first)
            } else {
                may_become_spelled(first)
            };
        if gap.contains('\n') || (gap.chars().count() > MAX_JOIN_GAP && !spelled) {
            return start;
        }
        let join = spelled
            || (digits < MAX_ENTITY_DIGITS
                && is_numeric(token)
                && (first.is_empty() || is_numeric(first)))
            || (rest.is_empty() && is_local_part(token))
            || (guardrail.has_phrases() && guardrail.is_phrase_word(token))
            || (joined < MAX_ENTITY_TOKENS
                && may_continue_entity(token)
                && (first.is_empty() || may_continue_entity(first)));
        if !join {
            return start;
        }
        digits += count_digits(token);
        start = t_start;
    }
    start
}

impl EmbeddedStreamGuard {
    /// Run `work` on the guard's state off the runtime; on failure the state is lost.
    async fn offloaded(
        &mut self,
        work: fn(&mut EmbeddedStreamGuard) -> StreamStep,
    ) -> Result<StreamStep, GuardError> {
        let placeholder = EmbeddedStreamGuard {
            lost: true,
            ..EmbeddedStreamGuard::new(Arc::clone(&self.guardrail))
        };
        let mut state = std::mem::replace(self, placeholder);
        let (state, step) = offload::run(move || {
            let step = work(&mut state);
            (state, step)
        })
        .await?;
        *self = state;
        Ok(step)
    }

    fn refuse_if_lost(&self) -> Result<(), GuardError> {
        if self.lost {
            return Err(GuardError::Backend(
                "stream guard lost its state after a failed evaluation".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl StreamGuard for EmbeddedStreamGuard {
    async fn push(&mut self, fragment: &str) -> Result<StreamStep, GuardError> {
        self.refuse_if_lost()?;
        match self.append(fragment) {
            Some(step) => Ok(step),
            None => self.offloaded(EmbeddedStreamGuard::evaluate).await,
        }
    }

    async fn finish(&mut self) -> Result<StreamStep, GuardError> {
        self.refuse_if_lost()?;
        self.offloaded(EmbeddedStreamGuard::finish_sync).await
    }

    fn outcome(&self) -> (TextAction, Vec<String>) {
        (self.action, self.policies.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::engine::EmbeddedGuardrails;
    use crate::guard::engine::tests::{base, engine_with, full_policy, gref, pii};
    use crate::guard::policy::{GuardrailPolicy, PiiAction, SensitiveInformationPolicy};
    use crate::guard::{Guardrail, GuardrailRef};

    /// A tiny deterministic generator (no extra dependencies).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    /// Split `text` into fragments at char boundaries, sizes 1..=max_len chars.
    fn random_split(text: &str, rng: &mut Lcg, max_len: usize) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let n = 1 + rng.next(max_len);
            let end = (i + n).min(chars.len());
            out.push(chars[i..end].iter().collect());
            i = end;
        }
        out
    }

    /// Every 4-char substring of `secret`: released text must contain none of them (so no
    /// substring of 4+ chars either).
    fn fragments_of(secret: &str) -> Vec<String> {
        let chars: Vec<char> = secret.chars().collect();
        chars.windows(4).map(|w| w.iter().collect()).collect()
    }

    struct Run {
        released: String,
        blocked: Option<String>,
        outcome: (TextAction, Vec<String>),
    }

    fn run(e: &EmbeddedGuardrails, parts: &[String], secrets: &[&str]) -> Run {
        let forbidden: Vec<String> = secrets.iter().flat_map(|s| fragments_of(s)).collect();
        let mut g = e.stream_sync(&gref()).unwrap();
        let mut released = String::new();
        let mut blocked = None;
        // Only the text released since the last check (plus 3 chars before it) can hold a
        // new 4-char fragment.
        let mut checked = 0;
        let mut check = |released: &str| {
            let mut from = checked;
            for _ in 0..3 {
                from = released[..from]
                    .char_indices()
                    .next_back()
                    .map_or(0, |(i, _)| i);
            }
            let window = &released[from..];
            for f in &forbidden {
                assert!(
                    !window.contains(f.as_str()),
                    "released {released:?} contains {f:?}"
                );
            }
            checked = released.len();
        };
        for p in parts {
            match g.push_sync(p) {
                StreamStep::Release(t) => released.push_str(&t),
                StreamStep::Blocked(m) => {
                    blocked = Some(m);
                    break;
                }
            }
            check(&released);
            assert!(g.held() <= MAX_HOLD + p.len());
        }
        if blocked.is_none() {
            match g.finish_sync() {
                StreamStep::Release(t) => released.push_str(&t),
                StreamStep::Blocked(m) => blocked = Some(m),
            }
        }
        check(&released);
        Run {
            released,
            blocked,
            outcome: g.outcome(),
        }
    }

    fn char_by_char(text: &str) -> Vec<String> {
        text.chars().map(String::from).collect()
    }

    const SECRETS_TEXT: &str = "Hi team, reach Jane via jane.roe@example.org or \
        john [at] corp-mail [dot] net. Card: 4111 1111 1111 1111, backup 5555-5555-5555-4444. \
        Call +1 (415) 555-0199 or 212 555 0147. SSN 219-45-6789. Host 10.20.30.40 \
        and 2001:db8::ff00:42:8329. Zero\u{200B}width: mar\u{200B}y@exa\u{200C}mple.com \
        ticket EMP-654321; fullwidth ５１０５ １０５１ ０５１０ ５１００ done.\n\
        Spelled: bob at example dot com ok. Also: mike dot ross at law dot com. aws_secret_access_key = \
        wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end.";

    const SECRETS: &[&str] = &[
        "jane.roe@example.org",
        "john [at] corp",
        "corp-mail [dot] net",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "(415) 555-0199",
        "212 555 0147",
        "219-45-6789",
        "10.20.30.40",
        "2001:db8::ff00:42:8329",
        "mar\u{200B}y@exa\u{200C}mple.com",
        "EMP-654321",
        "５１０５ １０５１ ０５１０ ５１００",
        "bob at example dot com",
        "mike dot ross at law dot com",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ];

    fn no_block_policy(topics: bool) -> GuardrailPolicy {
        let mut p = full_policy();
        let sip = p.sensitive_information_policy_config.as_mut().unwrap();
        for c in &mut sip.pii_entities_config {
            c.action = PiiAction::Anonymize;
        }
        if !topics {
            p.topic_policy_config = None;
        }
        p
    }

    #[test]
    fn char_by_char_and_random_splits_match_apply_and_never_leak() {
        for topics in [false, true] {
            let e = engine_with(no_block_policy(topics));
            let whole = e.apply_sync(&gref(), Source::Output, SECRETS_TEXT).unwrap();
            assert_eq!(whole.action, TextAction::Anonymized);
            for s in SECRETS {
                assert!(!whole.text.contains(s), "apply leaked {s}: {}", whole.text);
            }
            let r = run(&e, &char_by_char(SECRETS_TEXT), SECRETS);
            assert_eq!(r.blocked, None);
            assert_eq!(r.released, whole.text, "char by char, topics={topics}");
            assert_eq!(r.outcome.0, TextAction::Anonymized);
            assert_eq!(r.outcome.1, whole.policies);
            let mut rng = Lcg(0x5eed + u64::from(topics));
            for round in 0..200 {
                let parts = random_split(SECRETS_TEXT, &mut rng, 1 + round % 17);
                let r = run(&e, &parts, SECRETS);
                assert_eq!(r.released, whole.text, "round {round}: {parts:?}");
                assert_eq!(r.outcome.1, whole.policies);
            }
        }
    }

    #[test]
    fn contextual_and_multi_word_entities_never_leak_across_splits() {
        let mut p = base();
        p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
            pii_entities_config: crate::guard::pii::PiiEntity::all()
                .map(|e| pii(e.name(), PiiAction::Anonymize))
                .collect(),
            regexes_config: vec![],
        });
        let e = engine_with(p);
        let text = "Thanks. Please call Maria Gonzalez at 742 Evergreen Terrace, Springfield, \
                    IL 62704. Wire it to IBAN GB82 WEST 1234 5698 7654 32 today; my password \
                    is Tr0ub4dor&3 and the VIN 1M8GDM9AXKP042788 is on file. Done.";
        let whole = e.apply_sync(&gref(), Source::Output, text).unwrap();
        let secrets = [
            "Gonzalez",
            "Evergreen",
            "WEST 1234",
            "Tr0ub4dor",
            "1M8GDM9AXKP",
        ];
        for s in secrets {
            assert!(!whole.text.contains(s), "apply leaked {s}: {}", whole.text);
        }
        let r = run(&e, &char_by_char(text), &secrets);
        assert_eq!(r.released, whole.text);
        let mut rng = Lcg(0xACE);
        for round in 0..100 {
            let parts = random_split(text, &mut rng, 1 + round % 13);
            let r = run(&e, &parts, &secrets);
            assert_eq!(r.released, whole.text, "round {round}: {parts:?}");
        }
    }

    #[test]
    fn words_and_phrases_are_held_until_complete() {
        let e = engine_with(full_policy());
        let text = "The plan for Project Falcon is secret.";
        let r = run(&e, &char_by_char(text), &["Project Falcon"]);
        assert_eq!(
            r.blocked.as_deref(),
            Some(full_policy().blocked_outputs_messaging.as_str())
        );
        assert_eq!(r.outcome.0, TextAction::Blocked);
        assert_eq!(r.outcome.1, vec!["word:Project Falcon"]);
        assert!(!r.released.contains("Proj"));
    }

    #[test]
    fn block_mid_stream_refuses_the_rest() {
        let e = engine_with(full_policy());
        let mut g = e.stream_sync(&gref()).unwrap();
        let mut released = String::new();
        let text = "Sure. Your email is a@b.com. The key is AKIAIOSFODNN7EXAMPLE and more text.";
        let mut blocked_at = None;
        for (i, c) in text.chars().enumerate() {
            match g.push_sync(&c.to_string()) {
                StreamStep::Release(t) => released.push_str(&t),
                StreamStep::Blocked(m) => {
                    assert_eq!(m, full_policy().blocked_outputs_messaging);
                    blocked_at = Some(i);
                    break;
                }
            }
        }
        assert!(blocked_at.is_some());
        assert!(!released.contains("AKIA"), "{released}");
        assert!(!released.contains("a@b"), "{released}");
        assert!(released.starts_with("Sure."), "{released}");
        assert!(matches!(g.push_sync("more"), StreamStep::Blocked(_)));
        assert!(matches!(g.finish_sync(), StreamStep::Blocked(_)));
        let (action, policies) = g.outcome();
        assert_eq!(action, TextAction::Blocked);
        assert_eq!(policies, vec!["pii:AWS_ACCESS_KEY", "pii:EMAIL"]);
    }

    #[test]
    fn block_in_random_splits_never_leaks() {
        for topics in [false, true] {
            let mut p = full_policy();
            if !topics {
                p.topic_policy_config = None;
            }
            let e = engine_with(p);
            let text = "Notes: ping a@b.com.\nThe key is AKIAIOSFODNN7EXAMPLE; rotate it. Done.";
            let mut rng = Lcg(42);
            for round in 0..100 {
                let parts = random_split(text, &mut rng, 1 + round % 9);
                let r = run(&e, &parts, &["AKIAIOSFODNN7EXAMPLE", "a@b.com"]);
                assert_eq!(
                    r.blocked.as_deref(),
                    Some(
                        "Sorry, the model's answer was withheld by your organisation's AI policy."
                    )
                );
                assert!(r.released.starts_with("Notes: "), "{}", r.released);
                assert_eq!(r.outcome.0, TextAction::Blocked);
                assert!(r.outcome.1.contains(&"pii:AWS_ACCESS_KEY".to_string()));
            }
        }
    }

    #[test]
    fn hold_back_covers_entities_that_may_grow() {
        let e = engine_with(full_policy());
        let g = e.get(&gref()).unwrap();
        for (pending, held) in [
            ("hello wor", "wor"),
            ("hello world ", "world "),
            ("pay 4111 1111 11", "4111 1111 11"),
            ("pay 4111 1111 ", "4111 1111 "),
            ("call +1 (415) 555", "+1 (415) 555"),
            ("mail john [a", "john [a"),
            ("mail john at example d", "john at example d"),
            ("see Project Fal", "Project Fal"),
            ("line one\n4111", "4111"),
            ("a, b", "b"),
            ("   ", ""),
            ("call Maria Gon", "Maria Gon"),
            ("at 742 Evergreen Ter", "at 742 Evergreen Ter"),
            ("iban GB82 WEST 1234 56", "GB82 WEST 1234 56"),
            ("the end of it", "it"),
        ] {
            let start = hold_back_start(pending, g);
            assert_eq!(&pending[start..], held, "{pending:?}");
        }
    }

    #[test]
    fn denied_topic_blocks_before_the_sentence_is_released() {
        let e = engine_with(full_policy());
        let text = "Happy to help. Which stocks should I buy this year? Apple.";
        let r = run(&e, &char_by_char(text), &["stocks should"]);
        assert!(r.blocked.is_some());
        assert_eq!(r.released, "Happy to help.");
        assert_eq!(r.outcome.1, vec!["topic:Investment advice"]);
    }

    #[test]
    fn releases_promptly_without_topics() {
        let mut p = base();
        p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
            pii_entities_config: vec![pii("EMAIL", PiiAction::Anonymize)],
            regexes_config: vec![],
        });
        let e = engine_with(p);
        let mut g = e.stream_sync(&gref()).unwrap();
        assert_eq!(
            g.push_sync("Hello there "),
            StreamStep::Release("Hello ".into())
        );
        assert_eq!(g.push_sync("friend"), StreamStep::Release("there ".into()));
        assert_eq!(
            g.push_sync(" x@y.com"),
            StreamStep::Release("friend ".into())
        );
        assert_eq!(g.push_sync(" bye"), StreamStep::Release("{EMAIL} ".into()));
        assert_eq!(g.finish_sync(), StreamStep::Release("bye".into()));
        assert_eq!(
            g.outcome(),
            (TextAction::Anonymized, vec!["pii:EMAIL".to_string()])
        );
    }

    #[test]
    fn long_runs_are_bounded() {
        let e = engine_with(no_block_policy(false));
        let mut g = e.stream_sync(&gref()).unwrap();
        let mut released = String::new();
        let long = "x".repeat(3 * MAX_HOLD);
        for chunk in long.as_bytes().chunks(100) {
            if let StreamStep::Release(t) = g.push_sync(std::str::from_utf8(chunk).unwrap()) {
                released.push_str(&t);
            }
            assert!(g.held() <= MAX_HOLD);
        }
        if let StreamStep::Release(t) = g.finish_sync() {
            released.push_str(&t);
        }
        assert_eq!(released, long);
    }

    #[tokio::test]
    async fn trait_objects_work() {
        let e = engine_with(no_block_policy(false));
        let mut g = e.stream(&gref()).await.unwrap();
        let mut out = String::new();
        for p in ["mail me: a", "@b.c", "om now"] {
            if let Ok(StreamStep::Release(t)) = g.push(p).await {
                out.push_str(&t);
            }
        }
        if let Ok(StreamStep::Release(t)) = g.finish().await {
            out.push_str(&t);
        }
        assert_eq!(out, "mail me: {EMAIL} now");
        let missing = GuardrailRef {
            id: "g".into(),
            version: "7".into(),
        };
        assert!(e.stream(&missing).await.is_err());
    }
}
