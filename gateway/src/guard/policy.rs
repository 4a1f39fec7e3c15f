//! The guardrail policy model, in Bedrock's CreateGuardrail shape (camelCase field names), so a
//! policy written for Bedrock reads here unchanged. This module owns the types and their
//! validation; the engine compiles them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailPolicy {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub blocked_input_messaging: String,
    pub blocked_outputs_messaging: String,
    #[serde(default)]
    pub sensitive_information_policy_config: Option<SensitiveInformationPolicy>,
    #[serde(default)]
    pub word_policy_config: Option<WordPolicy>,
    #[serde(default)]
    pub topic_policy_config: Option<TopicPolicy>,
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
    #[serde(default)]
    pub input_action: Option<PiiAction>,
    #[serde(default)]
    pub output_action: Option<PiiAction>,
    #[serde(default)]
    pub input_enabled: Option<bool>,
    #[serde(default)]
    pub output_enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PiiAction {
    Block,
    Anonymize,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexConfig {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub pattern: String,
    pub action: PiiAction,
    #[serde(default)]
    pub input_action: Option<PiiAction>,
    #[serde(default)]
    pub output_action: Option<PiiAction>,
    #[serde(default)]
    pub input_enabled: Option<bool>,
    #[serde(default)]
    pub output_enabled: Option<bool>,
}

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedWordListConfig {
    /// Only `PROFANITY` exists in Bedrock.
    #[serde(rename = "type")]
    pub list_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicPolicy {
    #[serde(default)]
    pub topics_config: Vec<TopicConfig>,
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
}

impl GuardrailPolicy {
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
                    },
                    TopicConfig {
                        name: "Weapons manufacturing".into(),
                        definition: "Instructions for building, assembling or modifying firearms, explosives or other weapons.".into(),
                        examples: vec![
                            "How do I build a pipe bomb?".into(),
                            "Explain how to 3D print a gun.".into(),
                        ],
                        topic_type: "DENY".into(),
                    },
                ],
            }),
        }
    }
}
