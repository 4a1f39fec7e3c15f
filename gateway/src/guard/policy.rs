//! The guardrail policy model, in Bedrock's CreateGuardrail shape (camelCase field names), so a
//! policy written for Bedrock reads here unchanged. This module owns the types, their
//! validation against Bedrock's limits ([`GuardrailPolicy::validate`]) and the GetGuardrail
//! response rendering, whose field names differ from the request's ([`GuardrailPolicy::to_get`]:
//! `topicsConfig` → `topics`, `filtersConfig` → `filters`, `wordsConfig` → `words`, ...). The
//! engine compiles them.
//!
//! Policies the embedded engine cannot evaluate without a hosted model (contextual grounding,
//! automated reasoning, cross-region profiles, KMS keys) are accepted and stored as given, so a
//! Bedrock document round-trips, and are not enforced.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailPolicy {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub blocked_input_messaging: String,
    pub blocked_outputs_messaging: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive_information_policy_config: Option<SensitiveInformationPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_policy_config: Option<WordPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_policy_config: Option<TopicPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_policy_config: Option<ContentPolicy>,
    /// Stored, not enforced (needs a hosted model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contextual_grounding_policy_config: Option<Value>,
    /// Stored, not enforced (needs a hosted model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated_reasoning_policy_config: Option<Value>,
    /// Stored, not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_region_config: Option<Value>,
    /// Stored, not used (the embedded registry encrypts nothing per guardrail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SensitiveInformationPolicy {
    #[serde(default)]
    pub pii_entities_config: Vec<PiiEntityConfig>,
    #[serde(default)]
    pub regexes_config: Vec<RegexConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PiiEntityConfig {
    /// Bedrock's entity type name, e.g. `EMAIL`, `PHONE`, `US_SOCIAL_SECURITY_NUMBER`.
    #[serde(rename = "type")]
    pub entity_type: String,
    pub action: PiiAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_action: Option<PiiAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_action: Option<PiiAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PiiAction {
    Block,
    Anonymize,
    None,
}

/// Action of a topic, word or content filter (`BLOCK` or `NONE`, detect-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BlockAction {
    Block,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub pattern: String,
    pub action: PiiAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_action: Option<PiiAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_action: Option<PiiAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_enabled: Option<bool>,
}

/// Per-direction switches shared by topics, words, managed lists and content filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directions {
    pub input_action: Option<BlockAction>,
    pub output_action: Option<BlockAction>,
    pub input_enabled: Option<bool>,
    pub output_enabled: Option<bool>,
}

macro_rules! directions {
    ($($t:ty),*) => {$(
        impl $t {
            /// The per-direction fields.
            pub fn directions(&self) -> Directions {
                Directions {
                    input_action: self.input_action,
                    output_action: self.output_action,
                    input_enabled: self.input_enabled,
                    output_enabled: self.output_enabled,
                }
            }
        }
    )*};
}
directions!(
    WordConfig,
    ManagedWordListConfig,
    TopicConfig,
    ContentFilterConfig
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WordPolicy {
    #[serde(default)]
    pub words_config: Vec<WordConfig>,
    #[serde(default)]
    pub managed_word_lists_config: Vec<ManagedWordListConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WordConfig {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_action: Option<BlockAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_action: Option<BlockAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedWordListConfig {
    /// Only `PROFANITY` exists in Bedrock.
    #[serde(rename = "type")]
    pub list_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_action: Option<BlockAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_action: Option<BlockAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierConfig {
    /// `CLASSIC` or `STANDARD` (stored; the embedded engine has one tier).
    pub tier_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicPolicy {
    #[serde(default)]
    pub topics_config: Vec<TopicConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_config: Option<TierConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicConfig {
    pub name: String,
    pub definition: String,
    #[serde(default)]
    pub examples: Vec<String>,
    /// Only `DENY` exists in Bedrock.
    #[serde(rename = "type")]
    pub topic_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_action: Option<BlockAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_action: Option<BlockAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContentPolicy {
    #[serde(default)]
    pub filters_config: Vec<ContentFilterConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_config: Option<TierConfig>,
}

/// Content filter categories (Bedrock's `GuardrailContentFilterType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContentFilterType {
    Sexual,
    Violence,
    Hate,
    Insults,
    Misconduct,
    PromptAttack,
}

impl ContentFilterType {
    pub const ALL: [ContentFilterType; 6] = [
        ContentFilterType::Sexual,
        ContentFilterType::Violence,
        ContentFilterType::Hate,
        ContentFilterType::Insults,
        ContentFilterType::Misconduct,
        ContentFilterType::PromptAttack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContentFilterType::Sexual => "SEXUAL",
            ContentFilterType::Violence => "VIOLENCE",
            ContentFilterType::Hate => "HATE",
            ContentFilterType::Insults => "INSULTS",
            ContentFilterType::Misconduct => "MISCONDUCT",
            ContentFilterType::PromptAttack => "PROMPT_ATTACK",
        }
    }
}

/// Filter strength, and (the same scale) a detection's confidence.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Strength {
    #[default]
    None,
    Low,
    Medium,
    High,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::None => "NONE",
            Strength::Low => "LOW",
            Strength::Medium => "MEDIUM",
            Strength::High => "HIGH",
        }
    }

    /// Whether a detection of `confidence` is filtered at this strength (Bedrock: HIGH filters
    /// LOW, MEDIUM and HIGH confidence; MEDIUM filters MEDIUM and HIGH; LOW filters HIGH only).
    pub fn filters(self, confidence: Strength) -> bool {
        match self {
            Strength::None => false,
            Strength::Low => confidence == Strength::High,
            Strength::Medium => confidence >= Strength::Medium,
            Strength::High => confidence >= Strength::Low,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContentFilterConfig {
    #[serde(rename = "type")]
    pub filter_type: ContentFilterType,
    pub input_strength: Strength,
    pub output_strength: Strength,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_modalities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_modalities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_action: Option<BlockAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_action: Option<BlockAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_enabled: Option<bool>,
}

/// Bedrock's limits (botocore `bedrock` 2023-04-20 service model).
pub mod limits {
    pub const NAME_MAX: usize = 50;
    pub const DESCRIPTION_MAX: usize = 200;
    pub const MESSAGING_MAX: usize = 500;
    pub const TOPICS_MAX: usize = 30;
    pub const TOPIC_NAME_MAX: usize = 100;
    pub const TOPIC_DEFINITION_MAX: usize = 200;
    pub const TOPIC_EXAMPLES_MAX: usize = 5;
    pub const TOPIC_EXAMPLE_MAX: usize = 100;
    pub const FILTERS_MAX: usize = 6;
    pub const WORDS_MAX: usize = 10_000;
    pub const WORD_MAX: usize = 100;
    pub const REGEXES_MAX: usize = 30;
    pub const REGEX_NAME_MAX: usize = 100;
    pub const REGEX_DESCRIPTION_MAX: usize = 1000;
    pub const REGEX_PATTERN_MAX: usize = 500;
    pub const KMS_KEY_MAX: usize = 2048;
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n == 0 || n > max {
        return Err(format!(
            "{field}: length must be between 1 and {max} characters (got {n})"
        ));
    }
    Ok(())
}

/// A list's length within `min..=max`; `what` names its items ("topics").
fn check_count(field: &str, n: usize, min: usize, max: usize, what: &str) -> Result<(), String> {
    if n < min || n > max {
        return Err(if min == 0 {
            format!("{field}: at most {max} {what} (got {n})")
        } else {
            format!("{field}: must have {min} to {max} {what} (got {n})")
        });
    }
    Ok(())
}

fn check_chars(
    field: &str,
    value: &str,
    ok: impl Fn(char) -> bool,
    what: &str,
) -> Result<(), String> {
    if value.chars().all(ok) {
        Ok(())
    } else {
        Err(format!("{field}: must match {what}"))
    }
}

fn action_name(a: PiiAction) -> &'static str {
    match a {
        PiiAction::Block => "BLOCK",
        PiiAction::Anonymize => "ANONYMIZE",
        PiiAction::None => "NONE",
    }
}

fn block_name(a: BlockAction) -> &'static str {
    match a {
        BlockAction::Block => "BLOCK",
        BlockAction::None => "NONE",
    }
}

/// The four per-direction fields with Bedrock's defaults filled in, for GetGuardrail.
fn directions_json(d: &Directions) -> Value {
    json!({
        "inputAction": block_name(d.input_action.unwrap_or(BlockAction::Block)),
        "outputAction": block_name(d.output_action.unwrap_or(BlockAction::Block)),
        "inputEnabled": d.input_enabled.unwrap_or(true),
        "outputEnabled": d.output_enabled.unwrap_or(true),
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

impl GuardrailPolicy {
    /// Check every field against Bedrock's limits and enumerations; the error names the field
    /// (as Bedrock's ValidationException does). Engine-level checks (regex compilation, the 31
    /// entity names) happen when the policy compiles.
    pub fn validate(&self) -> Result<(), String> {
        use limits::*;
        check_len("name", &self.name, NAME_MAX)?;
        check_chars(
            "name",
            &self.name,
            |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
            "[0-9a-zA-Z-_]+",
        )?;
        if let Some(d) = &self.description {
            check_len("description", d, DESCRIPTION_MAX)?;
        }
        check_len(
            "blockedInputMessaging",
            &self.blocked_input_messaging,
            MESSAGING_MAX,
        )?;
        check_len(
            "blockedOutputsMessaging",
            &self.blocked_outputs_messaging,
            MESSAGING_MAX,
        )?;
        if let Some(k) = &self.kms_key_id {
            check_len("kmsKeyId", k, KMS_KEY_MAX)?;
        }
        if let Some(tp) = &self.topic_policy_config {
            check_count(
                "topicPolicyConfig.topicsConfig",
                tp.topics_config.len(),
                1,
                TOPICS_MAX,
                "topics",
            )?;
            for (i, t) in tp.topics_config.iter().enumerate() {
                let f = format!("topicPolicyConfig.topicsConfig[{i}]");
                check_len(&format!("{f}.name"), &t.name, TOPIC_NAME_MAX)?;
                check_chars(
                    &format!("{f}.name"),
                    &t.name,
                    |c| c.is_ascii_alphanumeric() || "-_ !?.".contains(c),
                    "[0-9a-zA-Z-_ !?.]+",
                )?;
                check_len(
                    &format!("{f}.definition"),
                    &t.definition,
                    TOPIC_DEFINITION_MAX,
                )?;
                check_count(
                    &format!("{f}.examples"),
                    t.examples.len(),
                    0,
                    TOPIC_EXAMPLES_MAX,
                    "examples",
                )?;
                for (j, e) in t.examples.iter().enumerate() {
                    check_len(&format!("{f}.examples[{j}]"), e, TOPIC_EXAMPLE_MAX)?;
                }
                if t.topic_type != "DENY" {
                    return Err(format!("{f}.type: must be DENY"));
                }
            }
        }
        if let Some(cp) = &self.content_policy_config {
            check_count(
                "contentPolicyConfig.filtersConfig",
                cp.filters_config.len(),
                1,
                FILTERS_MAX,
                "filters",
            )?;
            let mut seen = Vec::new();
            for (i, f) in cp.filters_config.iter().enumerate() {
                if seen.contains(&f.filter_type) {
                    return Err(format!(
                        "contentPolicyConfig.filtersConfig[{i}].type: {} is configured twice",
                        f.filter_type.as_str()
                    ));
                }
                seen.push(f.filter_type);
                if f.filter_type == ContentFilterType::PromptAttack
                    && f.output_strength != Strength::None
                {
                    return Err(format!(
                        "contentPolicyConfig.filtersConfig[{i}].outputStrength: PROMPT_ATTACK applies to input only; outputStrength must be NONE"
                    ));
                }
            }
        }
        if let Some(wp) = &self.word_policy_config {
            check_count(
                "wordPolicyConfig.wordsConfig",
                wp.words_config.len(),
                0,
                WORDS_MAX,
                "words",
            )?;
            for (i, w) in wp.words_config.iter().enumerate() {
                check_len(
                    &format!("wordPolicyConfig.wordsConfig[{i}].text"),
                    &w.text,
                    WORD_MAX,
                )?;
            }
            for (i, m) in wp.managed_word_lists_config.iter().enumerate() {
                if m.list_type != "PROFANITY" {
                    return Err(format!(
                        "wordPolicyConfig.managedWordListsConfig[{i}].type: must be PROFANITY"
                    ));
                }
            }
        }
        if let Some(sp) = &self.sensitive_information_policy_config {
            check_count(
                "sensitiveInformationPolicyConfig.regexesConfig",
                sp.regexes_config.len(),
                0,
                REGEXES_MAX,
                "regexes",
            )?;
            for (i, r) in sp.regexes_config.iter().enumerate() {
                let f = format!("sensitiveInformationPolicyConfig.regexesConfig[{i}]");
                check_len(&format!("{f}.name"), &r.name, REGEX_NAME_MAX)?;
                check_len(&format!("{f}.pattern"), &r.pattern, REGEX_PATTERN_MAX)?;
                if let Some(d) = &r.description {
                    check_len(&format!("{f}.description"), d, REGEX_DESCRIPTION_MAX)?;
                }
            }
        }
        Ok(())
    }

    /// The policy part of a GetGuardrail response, with the response's field names and
    /// Bedrock's defaults for omitted per-direction fields.
    pub fn to_get(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        m.insert(
            "blockedInputMessaging".into(),
            json!(self.blocked_input_messaging),
        );
        m.insert(
            "blockedOutputsMessaging".into(),
            json!(self.blocked_outputs_messaging),
        );
        if let Some(tp) = &self.topic_policy_config {
            let topics: Vec<Value> = tp
                .topics_config
                .iter()
                .map(|t| {
                    merge(
                        json!({"name": t.name, "definition": t.definition,
                               "examples": t.examples, "type": t.topic_type}),
                        directions_json(&t.directions()),
                    )
                })
                .collect();
            let mut p = json!({ "topics": topics });
            if let Some(t) = &tp.tier_config {
                p = merge(p, json!({"tier": {"tierName": t.tier_name}}));
            }
            m.insert("topicPolicy".into(), p);
        }
        if let Some(cp) = &self.content_policy_config {
            let filters: Vec<Value> = cp
                .filters_config
                .iter()
                .map(|f| {
                    let mut v = merge(
                        json!({"type": f.filter_type.as_str(),
                               "inputStrength": f.input_strength.as_str(),
                               "outputStrength": f.output_strength.as_str(),
                               "inputModalities": f.input_modalities.clone().unwrap_or_else(|| vec!["TEXT".into()]),
                               "outputModalities": f.output_modalities.clone().unwrap_or_else(|| vec!["TEXT".into()])}),
                        directions_json(&f.directions()),
                    );
                    if let Some(o) = v.as_object_mut() {
                        o.entry("inputAction").or_insert(json!("BLOCK"));
                    }
                    v
                })
                .collect();
            let mut p = json!({ "filters": filters });
            if let Some(t) = &cp.tier_config {
                p = merge(p, json!({"tier": {"tierName": t.tier_name}}));
            }
            m.insert("contentPolicy".into(), p);
        }
        if let Some(wp) = &self.word_policy_config {
            let mut p = serde_json::Map::new();
            if !wp.words_config.is_empty() {
                let words: Vec<Value> = wp
                    .words_config
                    .iter()
                    .map(|w| merge(json!({"text": w.text}), directions_json(&w.directions())))
                    .collect();
                p.insert("words".into(), json!(words));
            }
            let lists: Vec<Value> = wp
                .managed_word_lists_config
                .iter()
                .map(|l| {
                    merge(
                        json!({"type": l.list_type}),
                        directions_json(&l.directions()),
                    )
                })
                .collect();
            p.insert("managedWordLists".into(), json!(lists));
            m.insert("wordPolicy".into(), Value::Object(p));
        }
        if let Some(sp) = &self.sensitive_information_policy_config {
            let mut p = serde_json::Map::new();
            if !sp.pii_entities_config.is_empty() {
                let pii: Vec<Value> = sp
                    .pii_entities_config
                    .iter()
                    .map(|e| {
                        json!({"type": e.entity_type, "action": action_name(e.action),
                               "inputAction": action_name(e.input_action.unwrap_or(e.action)),
                               "outputAction": action_name(e.output_action.unwrap_or(e.action)),
                               "inputEnabled": e.input_enabled.unwrap_or(true),
                               "outputEnabled": e.output_enabled.unwrap_or(true)})
                    })
                    .collect();
                p.insert("piiEntities".into(), json!(pii));
            }
            let regexes: Vec<Value> = sp
                .regexes_config
                .iter()
                .map(|r| {
                    let mut v = json!({"name": r.name, "pattern": r.pattern,
                           "action": action_name(r.action),
                           "inputAction": action_name(r.input_action.unwrap_or(r.action)),
                           "outputAction": action_name(r.output_action.unwrap_or(r.action)),
                           "inputEnabled": r.input_enabled.unwrap_or(true),
                           "outputEnabled": r.output_enabled.unwrap_or(true)});
                    if let (Some(d), Some(o)) = (&r.description, v.as_object_mut()) {
                        o.insert("description".into(), json!(d));
                    }
                    v
                })
                .collect();
            p.insert("regexes".into(), json!(regexes));
            m.insert("sensitiveInformationPolicy".into(), Value::Object(p));
        }
        if let Some(g) = &self.contextual_grounding_policy_config {
            let mut g = g.clone();
            if let Some(o) = g.as_object_mut() {
                if let Some(f) = o.remove("filtersConfig") {
                    o.insert("filters".into(), f);
                }
                if let Some(t) = o.remove("tierConfig") {
                    o.insert("tier".into(), t);
                }
            }
            m.insert("contextualGroundingPolicy".into(), g);
        }
        if let Some(a) = &self.automated_reasoning_policy_config {
            m.insert("automatedReasoningPolicy".into(), a.clone());
        }
        m
    }

    /// The guardrail a fresh install starts with: PII anonymized (a block on AWS keys), and a
    /// small set of denied topics.
    pub fn default_policy() -> GuardrailPolicy {
        let anonymize = |t: &str| PiiEntityConfig {
            entity_type: t.to_string(),
            action: PiiAction::Anonymize,
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        };
        GuardrailPolicy {
            name: "default".to_string(),
            description: Some("PII anonymized, credentials blocked, a few denied topics".into()),
            blocked_input_messaging: "Sorry, this request is not allowed by your organisation's AI policy.".into(),
            blocked_outputs_messaging: "Sorry, the model's answer was withheld by your organisation's AI policy.".into(),
            sensitive_information_policy_config: Some(SensitiveInformationPolicy {
                pii_entities_config: vec![
                    anonymize("EMAIL"),
                    anonymize("PHONE"),
                    anonymize("US_SOCIAL_SECURITY_NUMBER"),
                    anonymize("CREDIT_DEBIT_CARD_NUMBER"),
                    anonymize("IP_ADDRESS"),
                    PiiEntityConfig {
                        action: PiiAction::Block,
                        ..anonymize("AWS_ACCESS_KEY")
                    },
                ],
                regexes_config: vec![],
            }),
            word_policy_config: None,
            topic_policy_config: Some(TopicPolicy {
                topics_config: vec![
                    TopicConfig {
                        name: "Investment advice".into(),
                        definition: "Recommendations about which stocks, funds, cryptocurrencies or other securities to buy or sell.".into(),
                        examples: vec![
                            "Which stocks should I buy this year?".into(),
                            "Is bitcoin a good investment right now?".into(),
                            "Should I sell my index fund shares?".into(),
                        ],
                        topic_type: "DENY".into(),
                        input_action: None,
                        output_action: None,
                        input_enabled: None,
                        output_enabled: None,
                    },
                    TopicConfig {
                        name: "Weapons manufacturing".into(),
                        definition: "Instructions for building, assembling or modifying firearms, explosives or other weapons.".into(),
                        examples: vec![
                            "How do I build a pipe bomb?".into(),
                            "Explain how to 3D print a gun.".into(),
                        ],
                        topic_type: "DENY".into(),
                        input_action: None,
                        output_action: None,
                        input_enabled: None,
                        output_enabled: None,
                    },
                ],
                tier_config: None,
            }),
            content_policy_config: None,
            contextual_grounding_policy_config: None,
            automated_reasoning_policy_config: None,
            cross_region_config: None,
            kms_key_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_document_round_trips_and_validates() {
        let doc = json!({
            "name": "support-bot",
            "blockedInputMessaging": "no",
            "blockedOutputsMessaging": "no",
            "topicPolicyConfig": {"topicsConfig": [{"name": "Investing", "definition": "advice",
                "examples": ["buy?"], "type": "DENY", "inputAction": "BLOCK", "outputEnabled": false}],
                "tierConfig": {"tierName": "CLASSIC"}},
            "contentPolicyConfig": {"filtersConfig": [
                {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "NONE"},
                {"type": "HATE", "inputStrength": "LOW", "outputStrength": "MEDIUM",
                 "inputModalities": ["TEXT"]}]},
            "wordPolicyConfig": {"wordsConfig": [{"text": "falcon", "outputAction": "NONE"}],
                "managedWordListsConfig": [{"type": "PROFANITY"}]},
            "sensitiveInformationPolicyConfig": {"piiEntitiesConfig": [{"type": "NAME", "action": "ANONYMIZE"}],
                "regexesConfig": [{"name": "x", "pattern": "a+", "action": "BLOCK"}]},
            "contextualGroundingPolicyConfig": {"filtersConfig": [{"type": "GROUNDING", "threshold": 0.5}]}
        });
        let p: GuardrailPolicy = serde_json::from_value(doc).unwrap();
        p.validate().unwrap();
        let get = Value::Object(p.to_get());
        assert_eq!(get["topicPolicy"]["topics"][0]["outputEnabled"], false);
        assert_eq!(get["topicPolicy"]["tier"]["tierName"], "CLASSIC");
        assert_eq!(
            get["contentPolicy"]["filters"][1]["outputStrength"],
            "MEDIUM"
        );
        assert_eq!(get["wordPolicy"]["words"][0]["outputAction"], "NONE");
        assert_eq!(
            get["wordPolicy"]["managedWordLists"][0]["type"],
            "PROFANITY"
        );
        assert_eq!(
            get["sensitiveInformationPolicy"]["piiEntities"][0]["inputAction"],
            "ANONYMIZE"
        );
        assert_eq!(
            get["contextualGroundingPolicy"]["filters"][0]["type"],
            "GROUNDING"
        );
        let back: GuardrailPolicy =
            serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn limits_are_bedrocks() {
        let mut p = GuardrailPolicy::default_policy();
        p.validate().unwrap();
        p.name = "has space".into();
        assert!(p.validate().unwrap_err().contains("name"));
        p.name = "a".repeat(51);
        assert!(p.validate().unwrap_err().contains("between 1 and 50"));
        let mut p = GuardrailPolicy::default_policy();
        p.content_policy_config = Some(ContentPolicy {
            filters_config: vec![ContentFilterConfig {
                filter_type: ContentFilterType::PromptAttack,
                input_strength: Strength::High,
                output_strength: Strength::High,
                input_modalities: None,
                output_modalities: None,
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            }],
            tier_config: None,
        });
        assert!(p.validate().unwrap_err().contains("PROMPT_ATTACK"));
        let bad: Result<GuardrailPolicy, _> = serde_json::from_value(json!({
            "name": "x", "blockedInputMessaging": "a", "blockedOutputsMessaging": "b", "bogus": 1}));
        assert!(bad.is_err());
        assert!(Strength::High.filters(Strength::Low));
        assert!(!Strength::Low.filters(Strength::Medium));
        assert!(Strength::Medium.filters(Strength::High));
    }
}
