//! Bedrock's guardrail control plane as the [`GuardrailRegistry`]: CreateGuardrail,
//! UpdateGuardrail, GetGuardrail, ListGuardrails, CreateGuardrailVersion and DeleteGuardrail on
//! `aws-sdk-bedrock`, so with `backend = "aws"` the console edits and versions the guardrails
//! Bedrock applies.
//!
//! Mapping: the project's [`GuardrailPolicy`] is Bedrock's CreateGuardrail request, so it maps
//! field by field onto the SDK's `*Config` types; GetGuardrail answers with the response shapes
//! (`topics` not `topicsConfig`, `filters`, `words`, `piiEntities`, `regexes`, `tier` not
//! `tierConfig`, `crossRegionDetails` not `crossRegionConfig`, `kmsKeyArn` not `kmsKeyId`) with
//! Bedrock's defaults filled in, which map back the other way. Every part Bedrock stores is
//! carried both ways — contextual grounding, automated reasoning, the cross-region profile and
//! the KMS key included — so an UpdateGuardrail from the console never drops a setting made
//! elsewhere.
//!
//! Errors: Bedrock's error code decides the [`RegistryError`] (ResourceNotFound → NotFound,
//! Validation → Validation, Conflict → Conflict, ResourceInUse → InUse, ServiceQuotaExceeded →
//! Quota); the message is Bedrock's (it names resources, never guarded text), bounded.
//! Everything else (access denied, throttling, unreachable) is Internal.

use async_trait::async_trait;
use aws_sdk_bedrock::Client;
use aws_sdk_bedrock::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrock::operation::get_guardrail::GetGuardrailOutput;
use aws_sdk_bedrock::primitives::{DateTime, DateTimeFormat};
use aws_sdk_bedrock::types as t;
use serde_json::{Value, json};

use super::bedrock::BedrockGuardrails;
use super::policy::{
    BlockAction, ContentFilterConfig, ContentFilterType, ContentPolicy, GuardrailPolicy,
    ManagedWordListConfig, PiiAction, PiiEntityConfig, RegexConfig, SensitiveInformationPolicy,
    Strength, TierConfig, TopicConfig, TopicPolicy, WordConfig, WordPolicy,
};
use super::registry::{GuardrailRecord, MAX_GUARDRAILS, MAX_VERSIONS, RegistryError};
use super::registry_api::{GuardrailRegistry, GuardrailSummary};

/// Longest Bedrock error message kept.
const MAX_MESSAGE: usize = 300;

/// Bedrock's guardrail control plane (or any service speaking its wire protocol).
#[derive(Clone, Debug)]
pub struct BedrockRegistry {
    client: Client,
}

impl BedrockRegistry {
    pub fn new(client: Client) -> BedrockRegistry {
        BedrockRegistry { client }
    }

    /// A client from a shared SDK configuration, with the Bedrock endpoint optionally
    /// overridden (a VPC endpoint's DNS name, or a test peer).
    pub fn from_sdk_config(
        sdk: &aws_config::SdkConfig,
        endpoint_url: Option<&str>,
    ) -> BedrockRegistry {
        let mut config = aws_sdk_bedrock::config::Builder::from(sdk);
        if let Some(url) = endpoint_url {
            config = config.endpoint_url(url);
        }
        BedrockRegistry::new(Client::from_conf(config.build()))
    }
}

/// The guardrail backends of `aws.guardrails = "bedrock"`: ApplyGuardrail for the request path
/// and the control plane for the console, on the shared SDK configuration
/// ([`crate::aws::sdk_config`]: region, timeouts, default credential chain) with
/// `aws.endpoints.bedrock`, else `aws.endpoint_url`, as the endpoint when set.
pub async fn from_config(
    aws: &crate::config::AwsConfig,
    credentials: Option<&crate::aws::StaticCredentials>,
) -> Result<(BedrockGuardrails, BedrockRegistry), String> {
    let sdk = crate::aws::sdk_config(aws, credentials).await;
    let endpoint = aws
        .endpoints
        .bedrock
        .as_deref()
        .or(aws.endpoint_url.as_deref());
    Ok((
        BedrockGuardrails::from_sdk_config(&sdk, endpoint)?,
        BedrockRegistry::from_sdk_config(&sdk, endpoint),
    ))
}

/// The start-up check: every pinned `(id, version)` (configuration and console overrides)
/// exists in `registry` (GetGuardrail), so a typo fails start-up instead of every request.
pub async fn check_pins(
    registry: &dyn GuardrailRegistry,
    pins: &[(String, String)],
) -> Result<(), String> {
    for (id, version) in pins {
        let number = version.parse::<i64>().ok();
        match registry.get(id, number).await {
            Ok(_) => {}
            Err(RegistryError::NotFound(_)) => {
                return Err(format!(
                    "guardrail {id} version {version} is pinned by a feature but does not exist \
                     in {} (GetGuardrail: not found); create it or pin an existing version",
                    registry.kind()
                ));
            }
            Err(e) => {
                let detail = match &e {
                    RegistryError::Internal(d) => format!(" ({d})"),
                    _ => String::new(),
                };
                return Err(format!(
                    "guardrail {id} version {version}: GetGuardrail failed: {e}{detail}"
                ));
            }
        }
    }
    Ok(())
}

fn error<E: ProvideErrorMetadata, R>(operation: &str, e: SdkError<E, R>) -> RegistryError {
    let bounded = |m: &str| -> String { m.chars().take(MAX_MESSAGE).collect() };
    match &e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("UnknownError");
            let message = bounded(s.err().message().unwrap_or(code));
            match code {
                "ResourceNotFoundException" => RegistryError::NotFound(message),
                "ValidationException" => RegistryError::Validation(message),
                "ConflictException" => RegistryError::Conflict(message),
                "ResourceInUseException" => RegistryError::InUse(message),
                "ServiceQuotaExceededException" => RegistryError::Quota(message),
                _ => RegistryError::Internal(format!("bedrock {operation}: {code}: {message}")),
            }
        }
        SdkError::TimeoutError(_) => {
            RegistryError::Internal(format!("bedrock {operation}: timed out"))
        }
        SdkError::DispatchFailure(_) => {
            RegistryError::Internal(format!("bedrock {operation}: unreachable"))
        }
        SdkError::ResponseError(_) => {
            RegistryError::Internal(format!("bedrock {operation}: unreadable response"))
        }
        _ => RegistryError::Internal(format!("bedrock {operation}: request failed")),
    }
}

fn build_err(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Validation(format!("guardrail policy: {e}"))
}

fn time(d: &DateTime) -> String {
    d.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| d.secs().to_string())
}

fn block(a: Option<BlockAction>) -> Option<&'static str> {
    a.map(|a| match a {
        BlockAction::Block => "BLOCK",
        BlockAction::None => "NONE",
    })
}

fn pii(a: PiiAction) -> &'static str {
    match a {
        PiiAction::Block => "BLOCK",
        PiiAction::Anonymize => "ANONYMIZE",
        PiiAction::None => "NONE",
    }
}

fn pii_from(s: &str) -> PiiAction {
    match s {
        "BLOCK" => PiiAction::Block,
        "ANONYMIZE" => PiiAction::Anonymize,
        _ => PiiAction::None,
    }
}

fn block_from(s: Option<&str>) -> Option<BlockAction> {
    s.map(|s| match s {
        "NONE" => BlockAction::None,
        _ => BlockAction::Block,
    })
}

fn strength_from(s: &str) -> Strength {
    match s {
        "LOW" => Strength::Low,
        "MEDIUM" => Strength::Medium,
        "HIGH" => Strength::High,
        _ => Strength::None,
    }
}

/// The request-side configs of one policy, shared by CreateGuardrail and UpdateGuardrail.
struct Configs {
    topics: Option<t::GuardrailTopicPolicyConfig>,
    content: Option<t::GuardrailContentPolicyConfig>,
    words: Option<t::GuardrailWordPolicyConfig>,
    sensitive: Option<t::GuardrailSensitiveInformationPolicyConfig>,
    grounding: Option<t::GuardrailContextualGroundingPolicyConfig>,
    reasoning: Option<t::GuardrailAutomatedReasoningPolicyConfig>,
    cross_region: Option<t::GuardrailCrossRegionConfig>,
}

fn configs(p: &GuardrailPolicy) -> Result<Configs, RegistryError> {
    let topics = match &p.topic_policy_config {
        None => None,
        Some(tp) => {
            let mut b = t::GuardrailTopicPolicyConfig::builder();
            for c in &tp.topics_config {
                b = b.topics_config(
                    t::GuardrailTopicConfig::builder()
                        .name(&c.name)
                        .definition(&c.definition)
                        .set_examples(Some(c.examples.clone()))
                        .r#type(t::GuardrailTopicType::from(c.topic_type.as_str()))
                        .set_input_action(block(c.input_action).map(t::GuardrailTopicAction::from))
                        .set_output_action(
                            block(c.output_action).map(t::GuardrailTopicAction::from),
                        )
                        .set_input_enabled(c.input_enabled)
                        .set_output_enabled(c.output_enabled)
                        .build()
                        .map_err(build_err)?,
                );
            }
            if let Some(tier) = &tp.tier_config {
                b = b.tier_config(
                    t::GuardrailTopicsTierConfig::builder()
                        .tier_name(t::GuardrailTopicsTierName::from(tier.tier_name.as_str()))
                        .build()
                        .map_err(build_err)?,
                );
            }
            Some(b.build().map_err(build_err)?)
        }
    };
    let modalities = |m: &Option<Vec<String>>| {
        m.as_ref().map(|m| {
            m.iter()
                .map(|s| t::GuardrailModality::from(s.as_str()))
                .collect::<Vec<_>>()
        })
    };
    let content = match &p.content_policy_config {
        None => None,
        Some(cp) => {
            let mut b = t::GuardrailContentPolicyConfig::builder();
            for f in &cp.filters_config {
                b = b.filters_config(
                    t::GuardrailContentFilterConfig::builder()
                        .r#type(t::GuardrailContentFilterType::from(f.filter_type.as_str()))
                        .input_strength(t::GuardrailFilterStrength::from(f.input_strength.as_str()))
                        .output_strength(t::GuardrailFilterStrength::from(
                            f.output_strength.as_str(),
                        ))
                        .set_input_modalities(modalities(&f.input_modalities))
                        .set_output_modalities(modalities(&f.output_modalities))
                        .set_input_action(
                            block(f.input_action).map(t::GuardrailContentFilterAction::from),
                        )
                        .set_output_action(
                            block(f.output_action).map(t::GuardrailContentFilterAction::from),
                        )
                        .set_input_enabled(f.input_enabled)
                        .set_output_enabled(f.output_enabled)
                        .build()
                        .map_err(build_err)?,
                );
            }
            if let Some(tier) = &cp.tier_config {
                b = b.tier_config(
                    t::GuardrailContentFiltersTierConfig::builder()
                        .tier_name(t::GuardrailContentFiltersTierName::from(
                            tier.tier_name.as_str(),
                        ))
                        .build()
                        .map_err(build_err)?,
                );
            }
            Some(b.build().map_err(build_err)?)
        }
    };
    let words = match &p.word_policy_config {
        None => None,
        Some(wp) => {
            let mut b = t::GuardrailWordPolicyConfig::builder();
            for w in &wp.words_config {
                b = b.words_config(
                    t::GuardrailWordConfig::builder()
                        .text(&w.text)
                        .set_input_action(block(w.input_action).map(t::GuardrailWordAction::from))
                        .set_output_action(block(w.output_action).map(t::GuardrailWordAction::from))
                        .set_input_enabled(w.input_enabled)
                        .set_output_enabled(w.output_enabled)
                        .build()
                        .map_err(build_err)?,
                );
            }
            for m in &wp.managed_word_lists_config {
                b = b.managed_word_lists_config(
                    t::GuardrailManagedWordsConfig::builder()
                        .r#type(t::GuardrailManagedWordsType::from(m.list_type.as_str()))
                        .set_input_action(block(m.input_action).map(t::GuardrailWordAction::from))
                        .set_output_action(block(m.output_action).map(t::GuardrailWordAction::from))
                        .set_input_enabled(m.input_enabled)
                        .set_output_enabled(m.output_enabled)
                        .build()
                        .map_err(build_err)?,
                );
            }
            Some(b.build())
        }
    };
    let action =
        |a: Option<PiiAction>| a.map(|a| t::GuardrailSensitiveInformationAction::from(pii(a)));
    let sensitive = match &p.sensitive_information_policy_config {
        None => None,
        Some(sp) => {
            let mut b = t::GuardrailSensitiveInformationPolicyConfig::builder();
            for e in &sp.pii_entities_config {
                b = b.pii_entities_config(
                    t::GuardrailPiiEntityConfig::builder()
                        .r#type(t::GuardrailPiiEntityType::from(e.entity_type.as_str()))
                        .action(t::GuardrailSensitiveInformationAction::from(pii(e.action)))
                        .set_input_action(action(e.input_action))
                        .set_output_action(action(e.output_action))
                        .set_input_enabled(e.input_enabled)
                        .set_output_enabled(e.output_enabled)
                        .build()
                        .map_err(build_err)?,
                );
            }
            for r in &sp.regexes_config {
                b = b.regexes_config(
                    t::GuardrailRegexConfig::builder()
                        .name(&r.name)
                        .set_description(r.description.clone())
                        .pattern(&r.pattern)
                        .action(t::GuardrailSensitiveInformationAction::from(pii(r.action)))
                        .set_input_action(action(r.input_action))
                        .set_output_action(action(r.output_action))
                        .set_input_enabled(r.input_enabled)
                        .set_output_enabled(r.output_enabled)
                        .build()
                        .map_err(build_err)?,
                );
            }
            Some(b.build())
        }
    };
    let grounding = match &p.contextual_grounding_policy_config {
        None => None,
        Some(g) => {
            let mut b = t::GuardrailContextualGroundingPolicyConfig::builder();
            let filters = g["filtersConfig"].as_array().cloned().unwrap_or_default();
            for f in &filters {
                b = b.filters_config(
                    t::GuardrailContextualGroundingFilterConfig::builder()
                        .r#type(t::GuardrailContextualGroundingFilterType::from(
                            f["type"].as_str().unwrap_or(""),
                        ))
                        .threshold(f["threshold"].as_f64().unwrap_or(0.0))
                        .set_action(
                            f["action"]
                                .as_str()
                                .map(t::GuardrailContextualGroundingAction::from),
                        )
                        .set_enabled(f["enabled"].as_bool())
                        .build()
                        .map_err(build_err)?,
                );
            }
            if let Some(name) = g["tierConfig"]["tierName"].as_str() {
                b = b.tier_config(
                    t::GuardrailContextualGroundingTierConfig::builder()
                        .tier_name(t::GuardrailContextualGroundingTierName::from(name))
                        .build()
                        .map_err(build_err)?,
                );
            }
            Some(b.build().map_err(build_err)?)
        }
    };
    let reasoning = match &p.automated_reasoning_policy_config {
        None => None,
        Some(a) => Some(
            t::GuardrailAutomatedReasoningPolicyConfig::builder()
                .set_policies(Some(
                    a["policies"]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .filter_map(|s| s.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                ))
                .set_confidence_threshold(a["confidenceThreshold"].as_f64())
                .build()
                .map_err(build_err)?,
        ),
    };
    let cross_region = match &p.cross_region_config {
        None => None,
        Some(c) => Some(
            t::GuardrailCrossRegionConfig::builder()
                .guardrail_profile_identifier(
                    c["guardrailProfileIdentifier"].as_str().unwrap_or(""),
                )
                .build()
                .map_err(build_err)?,
        ),
    };
    Ok(Configs {
        topics,
        content,
        words,
        sensitive,
        grounding,
        reasoning,
        cross_region,
    })
}

/// A GetGuardrail answer (response shapes, defaults filled in) as the project's policy.
fn policy_from(o: &GetGuardrailOutput) -> GuardrailPolicy {
    let topic_policy_config = o.topic_policy().map(|tp| TopicPolicy {
        topics_config: tp
            .topics()
            .iter()
            .map(|c| TopicConfig {
                name: c.name().to_string(),
                definition: c.definition().to_string(),
                examples: c.examples().to_vec(),
                topic_type: c.r#type().map_or("DENY", |t| t.as_str()).to_string(),
                input_action: block_from(c.input_action().map(|a| a.as_str())),
                output_action: block_from(c.output_action().map(|a| a.as_str())),
                input_enabled: c.input_enabled(),
                output_enabled: c.output_enabled(),
            })
            .collect(),
        tier_config: tp.tier().map(|t| TierConfig {
            tier_name: t.tier_name().as_str().to_string(),
        }),
    });
    let modalities = |m: &[t::GuardrailModality]| {
        (!m.is_empty()).then(|| m.iter().map(|x| x.as_str().to_string()).collect())
    };
    let content_policy_config = o.content_policy().map(|cp| ContentPolicy {
        filters_config: cp
            .filters()
            .iter()
            .filter_map(|f| {
                let kind = ContentFilterType::ALL
                    .into_iter()
                    .find(|k| k.as_str() == f.r#type().as_str())?;
                Some(ContentFilterConfig {
                    filter_type: kind,
                    input_strength: strength_from(f.input_strength().as_str()),
                    output_strength: strength_from(f.output_strength().as_str()),
                    input_modalities: modalities(f.input_modalities()),
                    output_modalities: modalities(f.output_modalities()),
                    input_action: block_from(f.input_action().map(|a| a.as_str())),
                    output_action: block_from(f.output_action().map(|a| a.as_str())),
                    input_enabled: f.input_enabled(),
                    output_enabled: f.output_enabled(),
                })
            })
            .collect(),
        tier_config: cp.tier().map(|t| TierConfig {
            tier_name: t.tier_name().as_str().to_string(),
        }),
    });
    let word_policy_config = o.word_policy().map(|wp| WordPolicy {
        words_config: wp
            .words()
            .iter()
            .map(|w| WordConfig {
                text: w.text().to_string(),
                input_action: block_from(w.input_action().map(|a| a.as_str())),
                output_action: block_from(w.output_action().map(|a| a.as_str())),
                input_enabled: w.input_enabled(),
                output_enabled: w.output_enabled(),
            })
            .collect(),
        managed_word_lists_config: wp
            .managed_word_lists()
            .iter()
            .map(|m| ManagedWordListConfig {
                list_type: m.r#type().as_str().to_string(),
                input_action: block_from(m.input_action().map(|a| a.as_str())),
                output_action: block_from(m.output_action().map(|a| a.as_str())),
                input_enabled: m.input_enabled(),
                output_enabled: m.output_enabled(),
            })
            .collect(),
    });
    let sensitive_information_policy_config =
        o.sensitive_information_policy()
            .map(|sp| SensitiveInformationPolicy {
                pii_entities_config: sp
                    .pii_entities()
                    .iter()
                    .map(|e| PiiEntityConfig {
                        entity_type: e.r#type().as_str().to_string(),
                        action: pii_from(e.action().as_str()),
                        input_action: e.input_action().map(|a| pii_from(a.as_str())),
                        output_action: e.output_action().map(|a| pii_from(a.as_str())),
                        input_enabled: e.input_enabled(),
                        output_enabled: e.output_enabled(),
                    })
                    .collect(),
                regexes_config: sp
                    .regexes()
                    .iter()
                    .map(|r| RegexConfig {
                        name: r.name().to_string(),
                        description: r.description().map(str::to_string),
                        pattern: r.pattern().to_string(),
                        action: pii_from(r.action().as_str()),
                        input_action: r.input_action().map(|a| pii_from(a.as_str())),
                        output_action: r.output_action().map(|a| pii_from(a.as_str())),
                        input_enabled: r.input_enabled(),
                        output_enabled: r.output_enabled(),
                    })
                    .collect(),
            });
    let contextual_grounding_policy_config = o.contextual_grounding_policy().map(|g| {
        let filters: Vec<Value> = g
            .filters()
            .iter()
            .map(|f| {
                let mut v = json!({"type": f.r#type().as_str(), "threshold": f.threshold()});
                if let Some(o) = v.as_object_mut() {
                    if let Some(a) = f.action() {
                        o.insert("action".into(), json!(a.as_str()));
                    }
                    if let Some(e) = f.enabled() {
                        o.insert("enabled".into(), json!(e));
                    }
                }
                v
            })
            .collect();
        let mut v = json!({ "filtersConfig": filters });
        if let (Some(tier), Some(o)) = (g.tier(), v.as_object_mut()) {
            o.insert(
                "tierConfig".into(),
                json!({"tierName": tier.tier_name().as_str()}),
            );
        }
        v
    });
    let automated_reasoning_policy_config = o.automated_reasoning_policy().map(|a| {
        let mut v = json!({ "policies": a.policies() });
        if let (Some(c), Some(o)) = (a.confidence_threshold(), v.as_object_mut()) {
            o.insert("confidenceThreshold".into(), json!(c));
        }
        v
    });
    let cross_region_config = o
        .cross_region_details()
        .and_then(|d| d.guardrail_profile_arn().or(d.guardrail_profile_id()))
        .map(|p| json!({ "guardrailProfileIdentifier": p }));
    GuardrailPolicy {
        name: o.name().to_string(),
        description: o.description().map(str::to_string),
        blocked_input_messaging: o.blocked_input_messaging().to_string(),
        blocked_outputs_messaging: o.blocked_outputs_messaging().to_string(),
        sensitive_information_policy_config,
        word_policy_config,
        topic_policy_config,
        content_policy_config,
        contextual_grounding_policy_config,
        automated_reasoning_policy_config,
        cross_region_config,
        kms_key_id: o.kms_key_arn().map(str::to_string),
    }
}

#[async_trait]
impl GuardrailRegistry for BedrockRegistry {
    fn kind(&self) -> &'static str {
        "bedrock"
    }

    async fn create(&self, policy: &GuardrailPolicy) -> Result<GuardrailRecord, RegistryError> {
        policy.validate().map_err(RegistryError::Validation)?;
        let c = configs(policy)?;
        let out = self
            .client
            .create_guardrail()
            .name(&policy.name)
            .set_description(policy.description.clone())
            .blocked_input_messaging(&policy.blocked_input_messaging)
            .blocked_outputs_messaging(&policy.blocked_outputs_messaging)
            .set_topic_policy_config(c.topics)
            .set_content_policy_config(c.content)
            .set_word_policy_config(c.words)
            .set_sensitive_information_policy_config(c.sensitive)
            .set_contextual_grounding_policy_config(c.grounding)
            .set_automated_reasoning_policy_config(c.reasoning)
            .set_cross_region_config(c.cross_region)
            .set_kms_key_id(policy.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| error("CreateGuardrail", e))?;
        self.get(out.guardrail_id(), None).await
    }

    async fn update(
        &self,
        id: &str,
        policy: &GuardrailPolicy,
    ) -> Result<GuardrailRecord, RegistryError> {
        policy.validate().map_err(RegistryError::Validation)?;
        let c = configs(policy)?;
        self.client
            .update_guardrail()
            .guardrail_identifier(id)
            .name(&policy.name)
            .set_description(policy.description.clone())
            .blocked_input_messaging(&policy.blocked_input_messaging)
            .blocked_outputs_messaging(&policy.blocked_outputs_messaging)
            .set_topic_policy_config(c.topics)
            .set_content_policy_config(c.content)
            .set_word_policy_config(c.words)
            .set_sensitive_information_policy_config(c.sensitive)
            .set_contextual_grounding_policy_config(c.grounding)
            .set_automated_reasoning_policy_config(c.reasoning)
            .set_cross_region_config(c.cross_region)
            .set_kms_key_id(policy.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| error("UpdateGuardrail", e))?;
        self.get(id, None).await
    }

    async fn get(&self, id: &str, version: Option<i64>) -> Result<GuardrailRecord, RegistryError> {
        let version = version.map_or_else(|| "DRAFT".to_string(), |v| v.to_string());
        let o = self
            .client
            .get_guardrail()
            .guardrail_identifier(id)
            .guardrail_version(&version)
            .send()
            .await
            .map_err(|e| error("GetGuardrail", e))?;
        Ok(GuardrailRecord {
            id: o.guardrail_id().to_string(),
            arn: o.guardrail_arn().to_string(),
            version: o.version().to_string(),
            policy: policy_from(&o),
            created_at: time(o.created_at()),
            updated_at: time(o.updated_at()),
        })
    }

    async fn list(&self) -> Result<Vec<GuardrailSummary>, RegistryError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let max = usize::try_from(MAX_GUARDRAILS).unwrap_or(100);
        loop {
            let page = self
                .client
                .list_guardrails()
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| error("ListGuardrails", e))?;
            out.extend(page.guardrails().iter().map(|g| GuardrailSummary {
                id: g.id().to_string(),
                arn: g.arn().to_string(),
                name: g.name().to_string(),
                description: g.description().map(str::to_string),
                version: g.version().to_string(),
                created_at: time(g.created_at()),
                updated_at: time(g.updated_at()),
            }));
            match page.next_token() {
                Some(next) if out.len() < max => token = Some(next.to_string()),
                _ => break,
            }
        }
        out.truncate(max);
        Ok(out)
    }

    async fn versions(&self, id: &str) -> Result<Vec<String>, RegistryError> {
        let mut numbers: Vec<i64> = Vec::new();
        let mut token: Option<String> = None;
        // DRAFT + MAX_VERSIONS numbered versions; a few pages at most.
        for _ in 0..=MAX_VERSIONS {
            let page = self
                .client
                .list_guardrails()
                .guardrail_identifier(id)
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| error("ListGuardrails", e))?;
            numbers.extend(
                page.guardrails()
                    .iter()
                    .filter_map(|g| g.version().parse::<i64>().ok()),
            );
            match page.next_token() {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
        numbers.sort_unstable();
        numbers.dedup();
        Ok(numbers.into_iter().map(|n| n.to_string()).collect())
    }

    async fn create_version(
        &self,
        id: &str,
        description: Option<&str>,
    ) -> Result<String, RegistryError> {
        let out = self
            .client
            .create_guardrail_version()
            .guardrail_identifier(id)
            .set_description(description.map(str::to_string))
            .send()
            .await
            .map_err(|e| error("CreateGuardrailVersion", e))?;
        Ok(out.version().to_string())
    }

    fn as_lookup(&self) -> &dyn super::registry_api::VersionLookup {
        self
    }

    async fn delete(&self, id: &str, version: Option<i64>) -> Result<(), RegistryError> {
        self.client
            .delete_guardrail()
            .guardrail_identifier(id)
            .set_guardrail_version(version.map(|v| v.to_string()))
            .send()
            .await
            .map_err(|e| error("DeleteGuardrail", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_a_policy_maps_to_the_request_shapes() {
        let mut p = GuardrailPolicy::default_policy();
        p.word_policy_config = Some(WordPolicy {
            words_config: vec![WordConfig {
                text: "bluebird".into(),
                input_action: Some(BlockAction::None),
                output_action: None,
                input_enabled: None,
                output_enabled: Some(false),
            }],
            managed_word_lists_config: vec![],
        });
        p.contextual_grounding_policy_config = Some(json!({
            "filtersConfig": [{"type": "GROUNDING", "threshold": 0.7}]
        }));
        p.cross_region_config = Some(json!({"guardrailProfileIdentifier": "us.guardrail.v1:0"}));
        let c = configs(&p).unwrap();
        let words = c.words.unwrap();
        let w = &words.words_config()[0];
        assert_eq!(w.text(), "bluebird");
        assert_eq!(w.input_action(), Some(&t::GuardrailWordAction::None));
        assert_eq!(w.output_enabled(), Some(false));
        let topics = c.topics.unwrap();
        assert_eq!(
            topics.topics_config().len(),
            p.topic_policy_config.as_ref().unwrap().topics_config.len()
        );
        let pii = c.sensitive.unwrap();
        assert!(
            pii.pii_entities_config()
                .iter()
                .any(|e| e.r#type() == &t::GuardrailPiiEntityType::Email
                    && e.action() == &t::GuardrailSensitiveInformationAction::Anonymize)
        );
        assert_eq!(c.grounding.unwrap().filters_config()[0].threshold(), 0.7);
        assert_eq!(
            c.cross_region.unwrap().guardrail_profile_identifier(),
            "us.guardrail.v1:0"
        );
    }
}
