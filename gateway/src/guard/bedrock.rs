//! Bedrock Guardrails as the [`Guardrail`] backend: ApplyGuardrail on `aws-sdk-bedrockruntime`
//! with the feature's guardrail id and pinned version, mapped to the project's own
//! [`GuardOutcome`] — the same outcome the embedded engine gives, so the request path, the
//! audit event and the console do not care which engine ran.
//!
//! Mapping: ApplyGuardrail is called with `outputScope: FULL`, so detect-only matches are listed
//! too (the embedded engine reports them in `policies` as well). Every listed match becomes a
//! policy name like the engine's: `pii:<TYPE>`, `regex:<name>`, `word:<match>`, `word:PROFANITY`,
//! `topic:<name>`, `content:<TYPE>`. The action is `BLOCKED` when any match blocked (or Bedrock
//! intervened without saying which policy masked, e.g. contextual grounding), `ANONYMIZED` when
//! matches were only masked, else `NONE`; the text is Bedrock's output (the masked text or the
//! blocked message), or the input unchanged.
//!
//! Streams ([`BedrockStreamGuard`]): Bedrock guards whole texts, and one ApplyGuardrail call
//! per model delta would cost a round trip per token. So output is held back and released by
//! complete sentences (a terminator followed by whitespace), at least [`MIN_RELEASE`] bytes per
//! call; a held region longer than [`MAX_HOLD`] with no sentence end is cut at its last
//! whitespace. Each released segment is guarded whole, so no fragment of a value Bedrock masks
//! or blocks goes out as long as the value does not straddle a sentence end (the embedded
//! engine's streaming guard makes the same per-sentence trade when topics are configured).
//! A block ends the stream; later pushes return the block again.
//!
//! Errors carry the service's error code and status, never the text or Bedrock's message.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::apply_guardrail::ApplyGuardrailOutput;
use aws_sdk_bedrockruntime::types::{
    GuardrailAction, GuardrailContentBlock, GuardrailContentPolicyAction, GuardrailContentSource,
    GuardrailOutputScope, GuardrailSensitiveInformationPolicyAction, GuardrailTextBlock,
    GuardrailTopicPolicyAction, GuardrailWordPolicyAction,
};

use super::{
    GuardError, GuardOutcome, Guardrail, GuardrailRef, Source, StreamGuard, StreamStep, TextAction,
};

/// Fewest bytes of complete sentences guarded per ApplyGuardrail call while streaming.
pub const MIN_RELEASE: usize = 200;
/// The most text held back while streaming; longer is cut at its last whitespace.
pub const MAX_HOLD: usize = 4096;
/// The largest text sent in one ApplyGuardrail call.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// ApplyGuardrail on Bedrock (or any service speaking its wire protocol).
#[derive(Clone)]
pub struct BedrockGuardrails {
    client: Client,
}

impl BedrockGuardrails {
    /// Over a configured Bedrock Runtime client.
    pub fn new(client: Client) -> BedrockGuardrails {
        BedrockGuardrails { client }
    }

    /// A client from the SDK's default credential and region chain, with optional overrides.
    pub async fn from_env(
        region: Option<&str>,
        endpoint_url: Option<&str>,
    ) -> Result<BedrockGuardrails, String> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        }
        BedrockGuardrails::from_sdk_config(&loader.load().await, endpoint_url)
    }

    /// A client from a shared SDK configuration (credentials, region, retries), with the
    /// Bedrock endpoint optionally overridden (a VPC endpoint's DNS name, or a test peer).
    pub fn from_sdk_config(
        sdk: &aws_config::SdkConfig,
        endpoint_url: Option<&str>,
    ) -> Result<BedrockGuardrails, String> {
        if sdk.region().is_none() {
            return Err("no AWS region for Bedrock guardrails: set AWS_REGION".into());
        }
        let mut config = aws_sdk_bedrockruntime::config::Builder::from(sdk);
        if let Some(url) = endpoint_url {
            config = config.endpoint_url(url);
        }
        Ok(BedrockGuardrails::new(Client::from_conf(config.build())))
    }

    async fn call(
        &self,
        guardrail: &GuardrailRef,
        source: Source,
        text: &str,
    ) -> Result<GuardOutcome, GuardError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(GuardError::Backend(format!(
                "text of {} bytes is over the {MAX_TEXT_BYTES}-byte ApplyGuardrail limit",
                text.len()
            )));
        }
        let block = GuardrailTextBlock::builder()
            .text(text)
            .build()
            .map_err(|e| GuardError::Backend(e.to_string()))?;
        let output = self
            .client
            .apply_guardrail()
            .guardrail_identifier(&guardrail.id)
            .guardrail_version(&guardrail.version)
            .source(match source {
                Source::Input => GuardrailContentSource::Input,
                Source::Output => GuardrailContentSource::Output,
            })
            .content(GuardrailContentBlock::Text(block))
            .output_scope(GuardrailOutputScope::Full)
            .send()
            .await
            .map_err(|e| error(guardrail, e))?;
        Ok(outcome(&output, text))
    }
}

#[async_trait]
impl Guardrail for BedrockGuardrails {
    async fn apply(
        &self,
        guardrail: &GuardrailRef,
        source: Source,
        text: &str,
    ) -> Result<GuardOutcome, GuardError> {
        self.call(guardrail, source, text).await
    }

    async fn stream(&self, guardrail: &GuardrailRef) -> Result<Box<dyn StreamGuard>, GuardError> {
        Ok(Box::new(BedrockStreamGuard {
            guardrails: self.clone(),
            guardrail: guardrail.clone(),
            held: String::new(),
            action: TextAction::None,
            policies: BTreeSet::new(),
            blocked: None,
        }))
    }
}

/// ApplyGuardrail's answer as the project's outcome (see the module docs).
fn outcome(output: &ApplyGuardrailOutput, input: &str) -> GuardOutcome {
    let mut policies = BTreeSet::new();
    let mut blocked = false;
    let mut anonymized = false;
    for a in output.assessments() {
        if let Some(p) = a.topic_policy() {
            for t in p.topics() {
                policies.insert(format!("topic:{}", t.name()));
                blocked |= *t.action() == GuardrailTopicPolicyAction::Blocked;
            }
        }
        if let Some(p) = a.content_policy() {
            for f in p.filters() {
                policies.insert(format!("content:{}", f.r#type().as_str()));
                blocked |= *f.action() == GuardrailContentPolicyAction::Blocked;
            }
        }
        if let Some(p) = a.word_policy() {
            for w in p.custom_words() {
                policies.insert(format!("word:{}", w.r#match()));
                blocked |= *w.action() == GuardrailWordPolicyAction::Blocked;
            }
            for w in p.managed_word_lists() {
                policies.insert(format!("word:{}", w.r#type().as_str()));
                blocked |= *w.action() == GuardrailWordPolicyAction::Blocked;
            }
        }
        if let Some(p) = a.sensitive_information_policy() {
            let mut note = |action: &GuardrailSensitiveInformationPolicyAction| match action {
                GuardrailSensitiveInformationPolicyAction::Blocked => blocked = true,
                GuardrailSensitiveInformationPolicyAction::Anonymized => anonymized = true,
                _ => {}
            };
            for e in p.pii_entities() {
                policies.insert(format!("pii:{}", e.r#type().as_str()));
                note(e.action());
            }
            for r in p.regexes() {
                policies.insert(format!("regex:{}", r.name().unwrap_or("unnamed")));
                note(r.action());
            }
        }
    }
    let intervened = *output.action() == GuardrailAction::GuardrailIntervened;
    let action = if !intervened {
        TextAction::None
    } else if blocked || !anonymized {
        TextAction::Blocked
    } else {
        TextAction::Anonymized
    };
    let text = match action {
        TextAction::None => input.to_string(),
        TextAction::Anonymized | TextAction::Blocked => output
            .outputs()
            .iter()
            .filter_map(|o| o.text())
            .collect::<Vec<_>>()
            .concat(),
    };
    GuardOutcome {
        action,
        text,
        policies: policies.into_iter().collect(),
    }
}

fn error<E: ProvideErrorMetadata, R>(guardrail: &GuardrailRef, e: SdkError<E, R>) -> GuardError {
    match &e {
        SdkError::ServiceError(service) => match service.err().code() {
            Some("ResourceNotFoundException") => {
                GuardError::NotFound(format!("{}:{}", guardrail.id, guardrail.version))
            }
            code => GuardError::Backend(format!(
                "bedrock ApplyGuardrail {}",
                code.unwrap_or("unknown error")
            )),
        },
        SdkError::TimeoutError(_) => GuardError::Backend("bedrock ApplyGuardrail timed out".into()),
        SdkError::DispatchFailure(_) => {
            GuardError::Backend("bedrock ApplyGuardrail unreachable".into())
        }
        _ => GuardError::Backend("bedrock ApplyGuardrail failed".into()),
    }
}

/// Streams guarded by Bedrock, sentence by sentence (see the module docs).
pub struct BedrockStreamGuard {
    guardrails: BedrockGuardrails,
    guardrail: GuardrailRef,
    held: String,
    action: TextAction,
    policies: BTreeSet<String>,
    blocked: Option<String>,
}

impl BedrockStreamGuard {
    async fn release(&mut self, cut: usize) -> Result<StreamStep, GuardError> {
        if cut == 0 {
            return Ok(StreamStep::Release(String::new()));
        }
        let segment: String = self.held.drain(..cut).collect();
        let outcome = self
            .guardrails
            .call(&self.guardrail, Source::Output, &segment)
            .await?;
        self.action = self.action.max(outcome.action);
        self.policies.extend(outcome.policies);
        if outcome.action == TextAction::Blocked {
            self.held.clear();
            self.blocked = Some(outcome.text.clone());
            return Ok(StreamStep::Blocked(outcome.text));
        }
        Ok(StreamStep::Release(outcome.text))
    }
}

#[async_trait]
impl StreamGuard for BedrockStreamGuard {
    async fn push(&mut self, fragment: &str) -> Result<StreamStep, GuardError> {
        if let Some(message) = &self.blocked {
            return Ok(StreamStep::Blocked(message.clone()));
        }
        self.held.push_str(fragment);
        let cut = release_cut(&self.held);
        self.release(cut).await
    }

    async fn finish(&mut self) -> Result<StreamStep, GuardError> {
        if let Some(message) = &self.blocked {
            return Ok(StreamStep::Blocked(message.clone()));
        }
        let cut = self.held.len();
        self.release(cut).await
    }

    fn outcome(&self) -> (TextAction, Vec<String>) {
        (self.action, self.policies.iter().cloned().collect())
    }
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '\n' | '。' | '！' | '？')
}

/// How much of `held` to guard and release now: up to the end of the last complete sentence
/// (its terminator and the whitespace after it) once that is at least [`MIN_RELEASE`] bytes;
/// past [`MAX_HOLD`] without one, up to the last whitespace (or everything). 0: keep holding.
fn release_cut(held: &str) -> usize {
    let mut sentence_end = 0;
    let mut prev_terminator = false;
    let mut in_gap = false;
    for (i, c) in held.char_indices() {
        if c.is_whitespace() && (prev_terminator || in_gap) {
            in_gap = true;
            sentence_end = i + c.len_utf8();
        } else {
            in_gap = false;
        }
        prev_terminator = is_terminator(c);
        if c == '\n' {
            sentence_end = i + 1;
            in_gap = true;
        }
    }
    if sentence_end >= MIN_RELEASE {
        return sentence_end;
    }
    if held.len() > MAX_HOLD {
        return held
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(held.len());
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_waits_for_whole_sentences_of_a_minimum_size() {
        assert_eq!(release_cut("Hello there. How are"), 0, "too short");
        let long = format!("{}. Then jane", "a".repeat(MIN_RELEASE));
        assert_eq!(release_cut(&long), MIN_RELEASE + 2);
        assert_eq!(
            &long[..release_cut(&long)],
            format!("{}. ", "a".repeat(MIN_RELEASE))
        );
        // A dot inside a word (an address, a number) is no sentence end.
        let dotted = format!("{} mail jane.doe@example.com", "a".repeat(MIN_RELEASE));
        assert_eq!(release_cut(&dotted), 0);
        let newline = format!("{}\nnext", "b".repeat(MIN_RELEASE));
        assert_eq!(release_cut(&newline), MIN_RELEASE + 1);
        let gap = format!("{}!  \n  Next", "c".repeat(MIN_RELEASE));
        assert_eq!(&gap[release_cut(&gap)..], "Next");
    }

    #[test]
    fn a_long_run_without_sentence_end_is_cut_at_whitespace() {
        let text = format!("{} tail", "word ".repeat(MAX_HOLD / 5 + 1));
        let cut = release_cut(&text);
        assert_eq!(&text[cut..], "tail");
        let one = "x".repeat(MAX_HOLD + 1);
        assert_eq!(release_cut(&one), one.len());
    }
}
