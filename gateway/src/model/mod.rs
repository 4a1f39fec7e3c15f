//! Model providers: a closed set dispatched by `match` ([`Provider`]). The request path hands a
//! provider the guarded messages and gets text and token usage back, whole or as a stream.
//!
//! - [`development`]: the built-in deterministic development model (the embedded default).
//! - [`openai_compat`]: an OpenAI-compatible upstream (vLLM, Ollama, llama.cpp server).
//! - [`bedrock`]: Amazon Bedrock Converse / ConverseStream.
//!
//! The model id a provider calls is always the one in config, never one named by the client.

pub mod bedrock;
pub mod development;
pub mod openai_compat;

use futures::stream::BoxStream;

use crate::config::ModelConfig;

/// One message as the model sees it (after the input guardrail).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, Default)]
pub struct ModelRequest {
    pub messages: Vec<ModelMessage>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    /// The model's own provider filtered the answer (Bedrock's guardrail or content filter).
    ContentFilter,
}

impl FinishReason {
    pub fn as_openai(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub finish_reason: FinishReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Delta(String),
    Done {
        input_tokens: u64,
        output_tokens: u64,
        finish_reason: FinishReason,
    },
}

/// A provider failure. The text is internal detail for the log, never sent to the client.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("upstream request failed: {0}")]
    Upstream(String),
    #[error("upstream answered with status {0}")]
    Status(u16),
    #[error("upstream response malformed: {0}")]
    BadResponse(String),
    #[error("request not accepted by the provider: {0}")]
    Request(String),
}

pub type EventStream = BoxStream<'static, Result<StreamEvent, ModelError>>;

/// A configured model, ready to call.
pub enum Provider {
    Development(development::DevelopmentModel),
    OpenAiCompatible(openai_compat::OpenAiCompatible),
    Bedrock(bedrock::Bedrock),
}

impl Provider {
    pub async fn from_config(config: &ModelConfig) -> Result<Provider, String> {
        match config {
            ModelConfig::Development {} => Ok(Provider::Development(development::DevelopmentModel)),
            ModelConfig::Openai {
                base_url,
                model,
                api_key,
                timeout_secs,
            } => openai_compat::OpenAiCompatible::new(
                base_url,
                model,
                api_key.clone(),
                *timeout_secs,
            )
            .map(Provider::OpenAiCompatible),
            ModelConfig::Bedrock {
                model_id,
                region,
                endpoint_url,
                timeout_secs,
            } => bedrock::Bedrock::new(&bedrock::BedrockSettings {
                model_id,
                region: region.as_deref(),
                endpoint_url: endpoint_url.as_deref(),
                timeout_secs: *timeout_secs,
            })
            .await
            .map(Provider::Bedrock),
        }
    }

    pub async fn complete(&self, request: &ModelRequest) -> Result<Completion, ModelError> {
        match self {
            Provider::Development(m) => Ok(m.complete(request)),
            Provider::OpenAiCompatible(m) => m.complete(request).await,
            Provider::Bedrock(m) => m.complete(request).await,
        }
    }

    pub async fn stream(&self, request: &ModelRequest) -> Result<EventStream, ModelError> {
        match self {
            Provider::Development(m) => Ok(m.stream(request)),
            Provider::OpenAiCompatible(m) => m.stream(request).await,
            Provider::Bedrock(m) => m.stream(request).await,
        }
    }

    /// `owned_by` and description for `/v1/models`.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Provider::Development(_) => (
                "golden-path-development",
                "Built-in development model: deterministic, not a real model. It answers by \
                 quoting what it received after the input guardrail."
                    .into(),
            ),
            Provider::OpenAiCompatible(m) => (
                "golden-path",
                format!("OpenAI-compatible upstream model {}", m.model),
            ),
            Provider::Bedrock(m) => (
                "golden-path",
                format!("Amazon Bedrock model {}", m.model_id),
            ),
        }
    }
}

/// A rough token count for text (≈ 4 bytes per token, at least one per word), used where a
/// provider reports none and to estimate a prompt before the model is called.
pub fn estimate_tokens(text: &str) -> u64 {
    let words = text.split_whitespace().count() as u64;
    let by_bytes = (text.len() as u64).div_ceil(4);
    words.max(by_bytes)
}

/// Estimated prompt tokens of a request: the text plus a small overhead per message.
pub fn estimate_prompt_tokens(messages: &[ModelMessage]) -> u64 {
    messages
        .iter()
        .map(|m| estimate_tokens(&m.content) + 4)
        .sum()
}
