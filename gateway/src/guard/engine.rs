//! The embedded guardrail engine (first cut): normalisation, PII detection with validation
//! (EMAIL, PHONE, US SSN, card numbers with Luhn, IP, AWS access and secret keys), custom
//! regexes, custom words, the managed PROFANITY list, denied topics; BLOCK and ANONYMIZE per
//! direction. Results have ApplyGuardrail's meaning: any BLOCK match replaces the whole text
//! with the blocked message; otherwise ANONYMIZE matches become `{TYPE}` placeholders and every
//! byte outside them is the caller's original text.
//!
//! How one text is guarded ([`CompiledGuardrail::guard`]):
//! 1. [`normalize`](super::normalize) it (NFKC, invisible characters, `[at]`/`[dot]`), keeping
//!    a map back to the original;
//! 2. one pass of the guardrail's [`RegexSet`] (every PII detector, custom regex and word list)
//!    says which matchers can match at all; only those run, each with its validator;
//! 3. denied topics classify the text sentence by sentence ([`topic`](super::topic));
//! 4. hits map back to original spans; overlapping ANONYMIZE hits merge into one span whose
//!    placeholder is the longest hit's (config order breaks ties).
//!
//! Decisions worth knowing:
//! - Every Bedrock PII type name is accepted; the types [`PiiEntity::is_detected`] reports as
//!   not yet detected (NAME, ADDRESS, AGE, URL, USERNAME, PASSWORD, ... 24 of the 31) load
//!   silently and never match, until the full-parity issue adds their detectors.
//! - A PII entity or regex with action `NONE` is detect-only: it appears in `policies` (as in
//!   Bedrock's assessment) but never changes the text or the action. `inputEnabled: false` /
//!   `outputEnabled: false` switch a direction off entirely (not evaluated, not reported).
//! - Custom words and PROFANITY always BLOCK (Bedrock's word policy has no anonymize), matched
//!   whole-word and case-insensitively; denied topics always BLOCK.
//! - Every configured guardrail answers to versions "1" and "DRAFT" until the registry lands.
//! - Limits, checked at compile time with an error naming the guardrail and the field: at most
//!   30 regexes of at most 500 characters each (compiled size bounded too), 10,000 words of at
//!   most 100 characters, 30 topics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::normalize::{Normalized, Normalizer};
use super::pii::{PiiEntity, Validator};
use super::policy::{GuardrailPolicy, PiiAction};
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
/// The versions every configured guardrail answers to.
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
}

/// Effective action in one direction; `None` when the direction is disabled.
fn effective(action: PiiAction, over: Option<PiiAction>, enabled: Option<bool>) -> Option<Action> {
    if enabled == Some(false) {
        return None;
    }
    Some(Action::from_policy(over.unwrap_or(action)))
}

/// One reportable policy: its name in outcomes, its placeholder, its action per direction.
#[derive(Debug, Clone)]
struct Rule {
    policy: String,
    placeholder: String,
    input: Option<Action>,
    output: Option<Action>,
}

impl Rule {
    fn blocking(policy: String) -> Rule {
        Rule {
            policy,
            placeholder: String::new(),
            input: Some(Action::Block),
            output: Some(Action::Block),
        }
    }

    fn action(&self, source: Source) -> Option<Action> {
        match source {
            Source::Input => self.input,
            Source::Output => self.output,
        }
    }
}

/// Which rule a matcher's hits belong to.
#[derive(Debug, Clone, Copy)]
enum Target {
    Rule(usize),
    /// A custom word: the rule is looked up from the matched text.
    Words,
}

#[derive(Debug, Clone)]
struct Matcher {
    regex: Regex,
    target: Target,
    /// Capture group that is the entity (0 = whole match).
    group: usize,
    validate: Option<Validator>,
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    rule: usize,
    action: Action,
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
struct Shared {
    normalizer: Normalizer,
    weak: HashSet<String>,
    pii: HashMap<PiiEntity, Regex>,
}

impl Shared {
    fn pii_regex(&mut self, entity: PiiEntity, pattern: &str) -> Result<Regex, String> {
        if let Some(r) = self.pii.get(&entity) {
            return Ok(r.clone());
        }
        let r =
            Regex::new(pattern).map_err(|e| format!("built-in {} pattern: {e}", entity.name()))?;
        self.pii.insert(entity, r.clone());
        Ok(r)
    }
}

/// One guardrail policy, compiled.
#[derive(Debug)]
pub struct CompiledGuardrail {
    rules: Vec<Rule>,
    matchers: Vec<Matcher>,
    set: Option<RegexSet>,
    words: WordIndex,
    topics: TopicIndex,
    /// Lower-cased words that sit before the last word of a multi-word custom phrase: the
    /// streaming hold-back keeps them until the phrase can no longer complete.
    phrase_words: HashSet<String>,
    blocked_input: String,
    blocked_output: String,
    normalizer: Normalizer,
}

impl CompiledGuardrail {
    fn compile(
        id: &str,
        policy: &GuardrailPolicy,
        shared: &mut Shared,
    ) -> Result<CompiledGuardrail, String> {
        let err = |field: &str, msg: String| format!("guardrail '{id}': {field}: {msg}");
        let mut rules: Vec<Rule> = Vec::new();
        let mut matchers: Vec<Matcher> = Vec::new();
        let mut set_patterns: Vec<String> = Vec::new();

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
                rules.push(Rule {
                    policy: format!("pii:{}", entity.name()),
                    placeholder: format!("{{{}}}", entity.name()),
                    input: effective(cfg.action, cfg.input_action, cfg.input_enabled),
                    output: effective(cfg.action, cfg.output_action, cfg.output_enabled),
                });
                if let Some(det) = entity.detector() {
                    let regex = shared
                        .pii_regex(entity, det.pattern)
                        .map_err(|e| err(&field, e))?;
                    matchers.push(Matcher {
                        regex,
                        target: Target::Rule(rule),
                        group: det.group,
                        validate: det.validate,
                    });
                    set_patterns.push(det.pattern.to_string());
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
                rules.push(Rule {
                    policy: format!("regex:{name}"),
                    placeholder: format!("{{{name}}}"),
                    input: effective(cfg.action, cfg.input_action, cfg.input_enabled),
                    output: effective(cfg.action, cfg.output_action, cfg.output_enabled),
                });
                matchers.push(Matcher {
                    regex,
                    target: Target::Rule(rule),
                    group: 0,
                    validate: None,
                });
                set_patterns.push(cfg.pattern.clone());
            }
        }

        let mut word_index = WordIndex::default();
        let mut phrase_words = HashSet::new();
        if let Some(wp) = &policy.word_policy_config {
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
            if !wp.managed_word_lists_config.is_empty() {
                let rule = rules.len();
                rules.push(Rule::blocking("word:PROFANITY".to_string()));
                let pattern = words::alternation(words::PROFANITY.iter().copied(), true);
                let regex = Regex::new(&pattern)
                    .map_err(|e| err("wordPolicyConfig.managedWordListsConfig", e.to_string()))?;
                matchers.push(Matcher {
                    regex,
                    target: Target::Rule(rule),
                    group: 0,
                    validate: None,
                });
                set_patterns.push(words::alternation(words::PROFANITY.iter().copied(), false));
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
            let mut normalized_words: Vec<String> = Vec::new();
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
                if word_index.by_key.contains_key(&key) {
                    continue;
                }
                let parts: Vec<&str> = key.split(' ').collect();
                if let Some((_, init)) = parts.split_last() {
                    phrase_words.extend(init.iter().map(|p| p.to_string()));
                }
                word_index.insert(key, rules.len());
                rules.push(Rule::blocking(format!("word:{text}")));
                normalized_words.push(normalized);
            }
            if !normalized_words.is_empty() {
                let bounded = words::alternation(normalized_words.iter().map(String::as_str), true);
                let regex = RegexBuilder::new(&bounded)
                    .size_limit(64 << 20)
                    .build()
                    .map_err(|e| err("wordPolicyConfig.wordsConfig", e.to_string()))?;
                matchers.push(Matcher {
                    regex,
                    target: Target::Words,
                    group: 0,
                    validate: None,
                });
                set_patterns.push(words::alternation(
                    normalized_words.iter().map(String::as_str),
                    false,
                ));
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
                let rule = rules.len();
                rules.push(Rule::blocking(format!("topic:{name}")));
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

        let set = if set_patterns.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(&set_patterns)
                    .size_limit(64 << 20)
                    .build()
                    .map_err(|e| err("sensitiveInformationPolicyConfig", e.to_string()))?,
            )
        };

        Ok(CompiledGuardrail {
            rules,
            matchers,
            set,
            words: word_index,
            topics,
            phrase_words,
            blocked_input: policy.blocked_input_messaging.clone(),
            blocked_output: policy.blocked_outputs_messaging.clone(),
            normalizer: shared.normalizer.clone(),
        })
    }

    /// The guardrail's blocked message for a direction.
    pub fn blocked_message(&self, source: Source) -> &str {
        match source {
            Source::Input => &self.blocked_input,
            Source::Output => &self.blocked_output,
        }
    }

    pub(crate) fn has_topics(&self) -> bool {
        !self.topics.is_empty()
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

    /// Guard `text[from..]`, with `text[..from]` as already-handled left context: hits that end
    /// inside the context are ignored, a hit that straddles `from` is clipped to it. Topics, when
    /// asked for, classify `text[from..]` only.
    pub(crate) fn guard(&self, source: Source, text: &str, from: usize, topics: bool) -> Verdict {
        let from = if text.is_char_boundary(from) { from } else { 0 };
        let norm = self.normalizer.normalize(text);
        let hay = norm.as_str();
        let mut hits: Vec<Hit> = Vec::new();
        if let Some(set) = &self.set {
            for idx in set.matches(hay).iter() {
                if let Some(m) = self.matchers.get(idx) {
                    self.run(m, source, hay, &norm, from, &mut hits);
                }
            }
        }
        if topics && !self.topics.is_empty() {
            let nfrom = norm.normalized_offset(from);
            let rest = hay.get(nfrom..).unwrap_or("");
            self.topics.classify(rest, |rule| {
                if let Some(action) = self.rules.get(rule).and_then(|r| r.action(source)) {
                    hits.push(Hit {
                        start: from,
                        end: from,
                        rule,
                        action,
                    });
                }
            });
        }

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
        hits.retain(|h| h.action == Action::Anonymize && h.end > h.start);
        let anonymized = !hits.is_empty();
        let text = self.render(text, from, &mut hits);
        Verdict {
            blocked,
            anonymized,
            text,
            policies,
        }
    }

    /// All hits of one matcher, validated and mapped to original offsets.
    fn run(
        &self,
        m: &Matcher,
        source: Source,
        hay: &str,
        norm: &Normalized<'_>,
        from: usize,
        hits: &mut Vec<Hit>,
    ) {
        if let Target::Rule(r) = m.target
            && self.rules.get(r).and_then(|r| r.action(source)).is_none()
        {
            return;
        }
        let mut pos = 0;
        while pos <= hay.len() {
            let (whole_start, gs, ge) = if m.group == 0 {
                match m.regex.find_at(hay, pos) {
                    Some(x) => (x.start(), x.start(), x.end()),
                    None => break,
                }
            } else {
                match m.regex.captures_at(hay, pos) {
                    Some(c) => match (c.get(0), c.get(m.group)) {
                        (Some(w), Some(g)) => (w.start(), g.start(), g.end()),
                        _ => break,
                    },
                    None => break,
                }
            };
            let retry = next_char(hay, whole_start);
            let span = if ge > gs {
                match m.validate {
                    Some(v) => v(hay, gs, ge),
                    None => Some((gs, ge)),
                }
            } else {
                None
            };
            let Some((vs, ve)) = span.filter(|(s, e)| e > s) else {
                pos = retry;
                continue;
            };
            let rule = match m.target {
                Target::Rule(r) => Some(r),
                Target::Words => hay.get(vs..ve).and_then(|s| self.words.rule_for(s)),
            };
            if let Some(rule) = rule
                && let Some(action) = self.rules.get(rule).and_then(|r| r.action(source))
            {
                let (os, oe) = norm.to_original(vs, ve);
                if oe > from {
                    hits.push(Hit {
                        start: os.max(from),
                        end: oe,
                        rule,
                        action,
                    });
                }
            }
            pos = ve.max(retry);
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

fn next_char(hay: &str, i: usize) -> usize {
    i + hay
        .get(i..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// Compiled guardrails, by id. The embedded default's policies come from config; every
/// configured guardrail answers to version "1" and "DRAFT" until the registry lands.
#[derive(Debug)]
pub struct EmbeddedGuardrails {
    guardrails: BTreeMap<String, Arc<CompiledGuardrail>>,
}

impl EmbeddedGuardrails {
    /// Compile every policy; a policy that can't compile (bad regex, unknown entity type) is
    /// an error naming the guardrail and the field.
    pub fn new(policies: &BTreeMap<String, GuardrailPolicy>) -> Result<EmbeddedGuardrails, String> {
        let mut shared = Shared {
            normalizer: Normalizer::new()?,
            weak: topic::weak_stems(),
            pii: HashMap::new(),
        };
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

    /// [`Guardrail::apply`] without the async wrapper (the engine never waits).
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
        self.apply_sync(guardrail, source, text)
    }

    async fn stream(&self, guardrail: &GuardrailRef) -> Result<Box<dyn StreamGuard>, GuardError> {
        Ok(Box::new(self.stream_sync(guardrail)?))
    }
}

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

    pub(crate) fn base() -> GuardrailPolicy {
        GuardrailPolicy {
            name: "t".into(),
            description: None,
            blocked_input_messaging: "IN-BLOCKED".into(),
            blocked_outputs_messaging: "OUT-BLOCKED".into(),
            sensitive_information_policy_config: None,
            word_policy_config: None,
            topic_policy_config: None,
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
        sip.regexes_config.push(RegexConfig {
            name: "employee-id".into(),
            description: None,
            pattern: r"\bEMP-[0-9]{6}\b".into(),
            action: PiiAction::Anonymize,
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        });
        p.word_policy_config = Some(WordPolicy {
            words_config: vec![
                WordConfig {
                    text: "Project Falcon".into(),
                },
                WordConfig {
                    text: "bananas".into(),
                },
            ],
            managed_word_lists_config: vec![ManagedWordListConfig {
                list_type: "PROFANITY".into(),
            }],
        });
        p
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
            "mac 00:1A:2B:3C:4D:5E",
            "dead::beef",
        ] {
            untouched(&e, t);
        }
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
            regexes_config: vec![RegexConfig {
                name: "domain".into(),
                description: None,
                pattern: r"example\.com".into(),
                action: PiiAction::Anonymize,
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            }],
        });
        let e = engine_with(p);
        let o = out(&e, "to a@example.com and example.com");
        assert_eq!(o.text, "to {EMAIL} and {domain}");
        assert_eq!(o.policies, vec!["pii:EMAIL", "regex:domain"]);
    }

    #[test]
    fn compile_errors_name_guardrail_and_field() {
        let regex = |pattern: &str| RegexConfig {
            name: "bad-one".into(),
            description: None,
            pattern: pattern.into(),
            action: PiiAction::Block,
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        };
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
        // Bedrock types not detected yet still load.
        let e = anonymize_all();
        untouched(&e, "Alice lives at 1 Main Street, she is 42.");
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
        time("set", &|| {
            std::hint::black_box(g.set.as_ref().map(|s| s.matches(&text)));
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
