//! Amazon Bedrock as a model provider: Converse and ConverseStream on `aws-sdk-bedrockruntime`,
//! always with the model id pinned in config (never one named by the client).
//!
//! The OpenAI-shaped request maps onto Converse: `system`/`developer` messages become `system`
//! blocks, `user`/`tool` messages `user` turns and `assistant` messages `assistant` turns, with
//! consecutive turns of one role merged (Converse wants them alternating); `max_tokens`,
//! `temperature`, `top_p` and `stop` go into `inferenceConfig`. Back: the text blocks of the
//! answer, the usage Bedrock reports (estimated only when it reports none), and a finish
//! reason (`max_tokens` → `length`, Bedrock's own filters → `content_filter`).
//!
//! Errors carry the service's error code and HTTP status, never its message (which may quote
//! the prompt). An answer without a message or text, and a stream that ends before
//! `messageStop`, are failures, never empty answers. Streamed output is bounded like the
//! OpenAI-compatible provider's.
//!
//! Credentials and region come from the SDK's default chain (the Lambda's role in AWS); the
//! SDK config is built here per model until the shared AWS client construction exists.

use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseOutput, ConverseStreamOutput,
    InferenceConfiguration, Message, StopReason, SystemContentBlock, TokenUsage,
};
use futures::StreamExt;

use super::{
    Completion, EventStream, FinishReason, ModelError, ModelMessage, ModelRequest, StreamEvent,
    estimate_prompt_tokens, estimate_tokens,
};

/// Largest answer accepted, in bytes of text (whole, or summed over a stream's deltas).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A Bedrock model reached through the Converse API.
pub struct Bedrock {
    /// The pinned model id (or inference-profile ARN) every call names.
    pub model_id: String,
    client: Client,
}

/// Where and how to reach Bedrock, from `[models.<alias>]`.
#[derive(Debug, Clone, Default)]
pub struct BedrockSettings<'a> {
    pub model_id: &'a str,
    /// Overrides the SDK's region (`AWS_REGION`, the profile).
    pub region: Option<&'a str>,
    /// Overrides the endpoint (a VPC endpoint's private DNS name, or a test peer).
    pub endpoint_url: Option<&'a str>,
    pub timeout_secs: u64,
}

impl Bedrock {
    /// Build the client from the SDK's default credential and region chain.
    pub async fn new(settings: &BedrockSettings<'_>) -> Result<Bedrock, String> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = settings.region {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        }
        Bedrock::from_sdk_config(&loader.load().await, settings)
    }

    /// Build the client from a shared SDK configuration (credentials, region, retries).
    pub fn from_sdk_config(
        sdk: &aws_config::SdkConfig,
        settings: &BedrockSettings<'_>,
    ) -> Result<Bedrock, String> {
        if sdk.region().is_none() {
            return Err("no AWS region: set the model's region or AWS_REGION".into());
        }
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(settings.timeout_secs.max(1)))
            .build();
        let mut config =
            aws_sdk_bedrockruntime::config::Builder::from(sdk).timeout_config(timeouts);
        if let Some(url) = settings.endpoint_url {
            config = config.endpoint_url(url);
        }
        Ok(Bedrock {
            model_id: settings.model_id.to_string(),
            client: Client::from_conf(config.build()),
        })
    }

    pub async fn complete(&self, request: &ModelRequest) -> Result<Completion, ModelError> {
        let (system, messages) = conversation(&request.messages)?;
        let output = self
            .client
            .converse()
            .model_id(&self.model_id)
            .set_system((!system.is_empty()).then_some(system))
            .set_messages(Some(messages))
            .inference_config(inference_config(request))
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(ConverseOutput::Message(message)) = output.output() else {
            return Err(ModelError::BadResponse("the answer has no message".into()));
        };
        let mut text = String::new();
        let mut text_blocks = 0usize;
        for block in message.content() {
            if let ContentBlock::Text(t) = block {
                if text.len() + t.len() > MAX_RESPONSE_BYTES {
                    return Err(ModelError::BadResponse("response too large".into()));
                }
                text.push_str(t);
                text_blocks += 1;
            }
        }
        let finish = finish_reason(output.stop_reason());
        // No text at all (a tool use, say) is a failure, not an empty answer; Bedrock's own
        // filters may answer with nothing.
        if text_blocks == 0 && finish != FinishReason::ContentFilter {
            return Err(ModelError::BadResponse("the answer has no text".into()));
        }
        let (input_tokens, output_tokens) = usage(output.usage(), request, &text);
        Ok(Completion {
            input_tokens,
            output_tokens,
            finish_reason: finish,
            text,
        })
    }

    pub async fn stream(&self, request: &ModelRequest) -> Result<EventStream, ModelError> {
        let (system, messages) = conversation(&request.messages)?;
        let output = self
            .client
            .converse_stream()
            .model_id(&self.model_id)
            .set_system((!system.is_empty()).then_some(system))
            .set_messages(Some(messages))
            .inference_config(inference_config(request))
            .send()
            .await
            .map_err(sdk_error)?;
        let prompt_estimate = estimate_prompt_tokens(&request.messages);
        let mut receiver = output.stream;
        let events = async_stream::stream! {
            let mut received = 0usize;
            let mut estimated_output = 0u64;
            let mut reported: Option<(u64, u64)> = None;
            let mut finish: Option<FinishReason> = None;
            loop {
                match receiver.recv().await {
                    Ok(Some(ConverseStreamOutput::ContentBlockDelta(event))) => {
                        if let Some(ContentBlockDelta::Text(t)) = event.delta()
                            && !t.is_empty()
                        {
                            received += t.len();
                            if received > MAX_RESPONSE_BYTES {
                                yield Err(ModelError::BadResponse("stream too large".into()));
                                return;
                            }
                            estimated_output += estimate_tokens(t);
                            yield Ok(StreamEvent::Delta(t.clone()));
                        }
                    }
                    Ok(Some(ConverseStreamOutput::MessageStop(event))) => {
                        finish = Some(finish_reason(event.stop_reason()));
                    }
                    Ok(Some(ConverseStreamOutput::Metadata(event))) => {
                        if let Some(u) = event.usage() {
                            reported = Some((token_count(u.input_tokens()), token_count(u.output_tokens())));
                        }
                    }
                    // Message and block starts and stops, and event types newer than this SDK.
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        yield Err(stream_error(e));
                        return;
                    }
                }
            }
            // A stream that ends before `messageStop` was cut short: a failure, not an answer.
            let Some(finish) = finish else {
                yield Err(ModelError::BadResponse("ConverseStream ended without messageStop".into()));
                return;
            };
            let (input_tokens, output_tokens) =
                reported.unwrap_or((prompt_estimate, estimated_output));
            yield Ok(StreamEvent::Done { input_tokens, output_tokens, finish_reason: finish });
        };
        Ok(events.boxed())
    }
}

/// Split the guarded messages into Converse's `system` blocks and alternating turns.
fn conversation(
    messages: &[ModelMessage],
) -> Result<(Vec<SystemContentBlock>, Vec<Message>), ModelError> {
    let mut system = Vec::new();
    let mut turns: Vec<(ConversationRole, Vec<ContentBlock>)> = Vec::new();
    for m in messages {
        let role = match m.role {
            "system" | "developer" => {
                system.push(SystemContentBlock::Text(m.content.clone()));
                continue;
            }
            "assistant" => ConversationRole::Assistant,
            // `user`, and `tool` results, which Converse only takes from the user's side.
            _ => ConversationRole::User,
        };
        // Converse rejects empty text blocks; an empty message adds nothing.
        if m.content.is_empty() {
            continue;
        }
        let block = ContentBlock::Text(m.content.clone());
        match turns.last_mut() {
            Some((last, blocks)) if *last == role => blocks.push(block),
            _ => turns.push((role, vec![block])),
        }
    }
    match turns.first() {
        None => {
            return Err(ModelError::Request(
                "the conversation has no user message".into(),
            ));
        }
        Some((ConversationRole::User, _)) => {}
        Some(_) => {
            return Err(ModelError::Request(
                "Bedrock needs the conversation to start with a user message".into(),
            ));
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, blocks)| {
            Message::builder()
                .role(role)
                .set_content(Some(blocks))
                .build()
                .map_err(|e| ModelError::Request(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((system, messages))
}

fn inference_config(request: &ModelRequest) -> InferenceConfiguration {
    InferenceConfiguration::builder()
        .set_max_tokens(
            request
                .max_tokens
                .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
        )
        .set_temperature(request.temperature.map(|v| v as f32))
        .set_top_p(request.top_p.map(|v| v as f32))
        .set_stop_sequences((!request.stop.is_empty()).then(|| request.stop.clone()))
        .build()
}

fn finish_reason(reason: &StopReason) -> FinishReason {
    match reason {
        StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => FinishReason::Length,
        StopReason::GuardrailIntervened | StopReason::ContentFiltered => {
            FinishReason::ContentFilter
        }
        _ => FinishReason::Stop,
    }
}

fn token_count(v: i32) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Bedrock's reported usage, or an estimate when it reports none.
fn usage(reported: Option<&TokenUsage>, request: &ModelRequest, text: &str) -> (u64, u64) {
    match reported {
        Some(u) => (
            token_count(u.input_tokens()),
            token_count(u.output_tokens()),
        ),
        None => (
            estimate_prompt_tokens(&request.messages),
            estimate_tokens(text),
        ),
    }
}

/// An SDK error as a [`ModelError`]: the service's error code and status, or the kind of
/// transport failure; never the service's message text.
fn sdk_error<E: ProvideErrorMetadata, R: 'static>(error: SdkError<E, R>) -> ModelError {
    match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown error");
            match http_status(&error) {
                Some(status) => ModelError::Upstream(format!("bedrock {code} (status {status})")),
                None => ModelError::Upstream(format!("bedrock {code} in the stream")),
            }
        }
        SdkError::TimeoutError(_) => ModelError::Upstream("bedrock call timed out".into()),
        SdkError::DispatchFailure(f) => ModelError::Upstream(format!(
            "bedrock unreachable ({})",
            if f.is_timeout() {
                "timeout"
            } else if f.is_io() {
                "connection failed"
            } else {
                "dispatch failed"
            }
        )),
        SdkError::ResponseError(_) => {
            ModelError::BadResponse("bedrock response could not be read".into())
        }
        SdkError::ConstructionFailure(_) => {
            ModelError::Request("bedrock request could not be built".into())
        }
        _ => ModelError::Upstream("bedrock call failed".into()),
    }
}

/// The HTTP status of a failed operation; `None` for an exception event inside a stream.
fn http_status<E, R: 'static>(error: &SdkError<E, R>) -> Option<u16> {
    let raw: &dyn std::any::Any = error.raw_response()?;
    raw.downcast_ref::<aws_sdk_bedrockruntime::config::http::HttpResponse>()
        .map(|r| r.status().as_u16())
}

/// A stream's exception event as an SDK error whose code names the exception (the payload
/// of an exception event carries only a message, so the metadata has no code).
fn stream_error<R: 'static>(error: SdkError<ConverseStreamOutputError, R>) -> ModelError {
    if let SdkError::ServiceError(service) = &error
        && service.err().code().is_none()
    {
        let name = match service.err() {
            ConverseStreamOutputError::InternalServerException(_) => "InternalServerException",
            ConverseStreamOutputError::ModelStreamErrorException(_) => "ModelStreamErrorException",
            ConverseStreamOutputError::ServiceUnavailableException(_) => {
                "ServiceUnavailableException"
            }
            ConverseStreamOutputError::ThrottlingException(_) => "ThrottlingException",
            ConverseStreamOutputError::ValidationException(_) => "ValidationException",
            _ => "an exception",
        };
        return ModelError::Upstream(format!("bedrock {name} in the stream"));
    }
    sdk_error(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &'static str, content: &str) -> ModelMessage {
        ModelMessage {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn system_is_split_out_and_same_role_turns_merge() {
        let (system, turns) = conversation(&[
            msg("system", "be brief"),
            msg("user", "one"),
            msg("user", "two"),
            msg("assistant", "ok"),
            msg("developer", "and polite"),
            msg("tool", "result"),
            msg("user", "three"),
        ])
        .unwrap();
        assert_eq!(
            system,
            vec![
                SystemContentBlock::Text("be brief".into()),
                SystemContentBlock::Text("and polite".into())
            ]
        );
        let shape: Vec<(ConversationRole, Vec<&str>)> = turns
            .iter()
            .map(|m| {
                (
                    m.role().clone(),
                    m.content()
                        .iter()
                        .map(|c| c.as_text().map(String::as_str).unwrap_or("?"))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (ConversationRole::User, vec!["one", "two"]),
                (ConversationRole::Assistant, vec!["ok"]),
                (ConversationRole::User, vec!["result", "three"]),
            ]
        );
    }

    #[test]
    fn a_conversation_must_start_with_the_user() {
        assert!(matches!(
            conversation(&[msg("assistant", "hi"), msg("user", "x")]),
            Err(ModelError::Request(_))
        ));
        assert!(matches!(
            conversation(&[msg("system", "only")]),
            Err(ModelError::Request(_))
        ));
    }

    #[test]
    fn inference_config_carries_the_request_limits() {
        let config = inference_config(&ModelRequest {
            max_tokens: Some(u32::MAX),
            temperature: Some(0.5),
            top_p: Some(0.25),
            stop: vec!["END".into()],
            ..ModelRequest::default()
        });
        assert_eq!(config.max_tokens(), Some(i32::MAX));
        assert_eq!(config.temperature(), Some(0.5));
        assert_eq!(config.top_p(), Some(0.25));
        assert_eq!(config.stop_sequences(), ["END".to_string()]);
        let empty = inference_config(&ModelRequest::default());
        assert_eq!(empty.max_tokens(), None);
        assert!(empty.stop_sequences().is_empty());
    }

    #[test]
    fn stop_reasons_map_to_openai_finish_reasons() {
        assert_eq!(finish_reason(&StopReason::EndTurn), FinishReason::Stop);
        assert_eq!(finish_reason(&StopReason::StopSequence), FinishReason::Stop);
        assert_eq!(finish_reason(&StopReason::MaxTokens), FinishReason::Length);
        assert_eq!(
            finish_reason(&StopReason::GuardrailIntervened),
            FinishReason::ContentFilter
        );
        assert_eq!(
            finish_reason(&StopReason::from("something_new")),
            FinishReason::Stop
        );
    }
}
