//! The golden path for one chat completion, after authentication: throttle → input guard →
//! the pinned model → output guard → audit event + vault record → reply. A request is answered
//! only after both records are accepted; a stream's final `[DONE]` is sent only after them.
//!
//! [`Exchange`] gathers what the request did as it goes, so every exit (success, block, throttle,
//! model failure, client gone) is recorded from the same facts.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::response::sse::Event;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::config::FeatureConfig;
use crate::error::ApiError;
use crate::guard::{GuardrailRef, Source, StreamStep, TextAction};
use crate::model::{ModelMessage, ModelRequest, StreamEvent, estimate_prompt_tokens};
use crate::openai::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice,
    ChunkChoice, Delta, MAX_CONTENT_PARTS, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_STOP_BYTES,
    MAX_STOP_SEQUENCES, MessageContent, Stop, Usage,
};
use crate::state::AppState;
use crate::vault::{VaultRecord, object_key};

/// Facts about the HTTP request that are not in its body.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub started: Instant,
    pub timestamp_ms: i64,
    pub source_ip: String,
    pub user_agent: String,
}

/// What the gateway answers.
pub enum ChatReply {
    Complete {
        body: ChatCompletion,
        guardrail_action: &'static str,
    },
    /// Server-sent events; the channel closes after `[DONE]` (or after an error event).
    Stream {
        events: mpsc::Receiver<Event>,
        guardrail_action: &'static str,
    },
}

/// Everything one request did, recorded at every exit.
#[derive(Debug, Clone)]
struct Exchange {
    meta: RequestMeta,
    user_sub: String,
    feature: String,
    model_alias: String,
    model_id: String,
    guardrail: GuardrailRef,
    prompt_hash: String,
    raw_prompt: Value,
    model_input: Value,
    raw_output: String,
    delivered_output: String,
    input_action: TextAction,
    output_action: TextAction,
    policies: BTreeSet<String>,
    input_tokens: u64,
    output_tokens: u64,
    model_latency_ms: u64,
    stream: bool,
    /// Set once the prompt passed validation and throttling: from then on a vault record is kept.
    keep_record: bool,
}

impl Exchange {
    fn audit_event(&self, status: u16, vault_key: Option<String>) -> AuditEvent {
        AuditEvent {
            timestamp: self.meta.timestamp_ms,
            request_id: self.meta.request_id.clone(),
            user_sub: self.user_sub.clone(),
            feature: self.feature.clone(),
            model: self.model_id.clone(),
            model_alias: self.model_alias.clone(),
            prompt_hash: self.prompt_hash.clone(),
            latency_ms: self.meta.started.elapsed().as_millis() as u64,
            model_latency_ms: self.model_latency_ms,
            guardrail_id: self.guardrail.id.clone(),
            guardrail_version: self.guardrail.version.clone(),
            guardrail_action: self.guardrail_header().to_string(),
            input_action: self.input_action.as_str().to_string(),
            output_action: self.output_action.as_str().to_string(),
            policies: self.policies.iter().cloned().collect(),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            status,
            stream: self.stream,
            vault_key,
            source_ip: self.meta.source_ip.clone(),
            user_agent: self.meta.user_agent.clone(),
        }
    }

    fn vault_record(&self) -> VaultRecord {
        VaultRecord {
            request_id: self.meta.request_id.clone(),
            timestamp: self.meta.timestamp_ms,
            user_sub: self.user_sub.clone(),
            feature: self.feature.clone(),
            model: self.model_id.clone(),
            model_alias: self.model_alias.clone(),
            raw_prompt: self.raw_prompt.clone(),
            model_input: self.model_input.clone(),
            raw_output: self.raw_output.clone(),
            delivered_output: self.delivered_output.clone(),
            input_action: self.input_action.as_str().to_string(),
            output_action: self.output_action.as_str().to_string(),
            policies: self.policies.iter().cloned().collect(),
        }
    }

    /// `INTERVENED` when either guard changed or blocked text, else `NONE`.
    fn guardrail_header(&self) -> &'static str {
        if self.input_action != TextAction::None || self.output_action != TextAction::None {
            "INTERVENED"
        } else {
            "NONE"
        }
    }
}

/// Write the vault record (when the request got that far), then the audit event.
async fn record(state: &AppState, ex: &Exchange, status: u16) -> Result<(), ApiError> {
    let vault_key = if ex.keep_record {
        let key = state
            .vault
            .put(&ex.vault_record())
            .await
            .map_err(|e| ApiError::Backend {
                what: "prompt vault",
                detail: e.to_string(),
            })?;
        debug_assert_eq!(key, object_key(ex.meta.timestamp_ms, &ex.meta.request_id));
        Some(key)
    } else {
        None
    };
    let event = ex.audit_event(status, vault_key);
    state
        .audit
        .record(&event)
        .await
        .map_err(|e| ApiError::Backend {
            what: "audit store",
            detail: e.to_string(),
        })?;
    tracing::info!(
        target: "audit",
        status,
        latency_ms = event.latency_ms,
        guardrail_action = %event.guardrail_action,
        policies = ?event.policies,
        prompt_hash = %event.prompt_hash,
        "request recorded"
    );
    Ok(())
}

/// Serve one chat completion for an authenticated caller.
pub async fn chat(
    state: &AppState,
    caller: &Caller,
    meta: RequestMeta,
    body: &[u8],
) -> Result<ChatReply, ApiError> {
    let Some((feature_name, feature)) = state.config.feature_for_client(&caller.client_id) else {
        return Err(ApiError::Unauthorized);
    };
    // The console's runtime overrides (pinned version, model, throttle) apply per request.
    let feature = &state.features.effective(feature_name, feature);
    let mut ex = Exchange {
        meta,
        user_sub: caller.sub.clone(),
        feature: feature_name.to_string(),
        model_alias: String::new(),
        model_id: String::new(),
        guardrail: feature.guardrail_ref(),
        prompt_hash: String::new(),
        raw_prompt: Value::Null,
        model_input: Value::Null,
        raw_output: String::new(),
        delivered_output: String::new(),
        input_action: TextAction::None,
        output_action: TextAction::None,
        policies: BTreeSet::new(),
        input_tokens: 0,
        output_tokens: 0,
        model_latency_ms: 0,
        stream: false,
        keep_record: false,
    };
    match run(state, feature, &mut ex, body).await {
        Ok(reply) => Ok(reply),
        Err(error) => {
            if let Err(record_error) = record(state, &ex, error.status().as_u16()).await {
                tracing::error!(error = %record_error, "could not record a failed request");
                return Err(record_error);
            }
            Err(error)
        }
    }
}

async fn run(
    state: &AppState,
    feature: &FeatureConfig,
    ex: &mut Exchange,
    body: &[u8],
) -> Result<ChatReply, ApiError> {
    let request: ChatCompletionRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    ex.stream = request.stream;
    let raw_messages = validate(state, &request)?;
    ex.raw_prompt = serde_json::to_value(&request.messages).unwrap_or(Value::Null);
    ex.prompt_hash = state
        .prompt_hasher
        .hash(ex.raw_prompt.to_string().as_bytes());

    let alias = match &request.model {
        None => feature.models.first().cloned().unwrap_or_default(),
        Some(m) if feature.models.iter().any(|a| a == m) => m.clone(),
        Some(m) => {
            let shown: String = m.chars().take(64).collect();
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "Model {shown:?} is not available to this feature; GET /v1/models lists the models you may use."
                ),
                param: Some("model"),
                code: "model_not_found",
            });
        }
    };
    let (Some(model_config), Some(provider)) =
        (state.config.models.get(&alias), state.models.get(&alias))
    else {
        return Err(ApiError::Backend {
            what: "model registry",
            detail: format!("alias {alias} has no provider"),
        });
    };
    ex.model_id = model_config.model_id(&alias);
    ex.model_alias = alias;

    let estimate = estimate_prompt_tokens(&raw_messages);
    state
        .throttle
        .admit(
            &ex.feature,
            &feature.throttle,
            estimate,
            ex.meta.timestamp_ms,
        )
        .await
        .map_err(|d| ApiError::RateLimited {
            limit: d.limit,
            retry_after_secs: d.retry_after_secs,
        })?;
    ex.keep_record = true;

    // Input guard, message by message.
    let mut guarded = Vec::with_capacity(raw_messages.len());
    let mut blocked_message = None;
    for message in &raw_messages {
        let outcome = state
            .guardrails
            .apply(&ex.guardrail, Source::Input, &message.content)
            .await
            .map_err(|e| ApiError::Backend {
                what: "guardrail",
                detail: e.to_string(),
            })?;
        ex.input_action = ex.input_action.max(outcome.action);
        ex.policies.extend(outcome.policies);
        if outcome.action == TextAction::Blocked {
            blocked_message = Some(outcome.text);
            break;
        }
        guarded.push(ModelMessage {
            role: message.role,
            content: outcome.text,
        });
    }
    let created = ex.meta.timestamp_ms / 1000;
    let completion_id = format!("chatcmpl-{}", ex.meta.request_id);

    if let Some(message) = blocked_message {
        ex.delivered_output = message.clone();
        if request.stream {
            let include_usage = request
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage);
            return Ok(blocked_stream(state, ex.clone(), message, include_usage));
        }
        record(state, ex, 200).await?;
        return Ok(ChatReply::Complete {
            body: completion(&completion_id, created, ex, message, "content_filter"),
            guardrail_action: ex.guardrail_header(),
        });
    }
    ex.model_input = serde_json::to_value(&guarded).unwrap_or(Value::Null);
    let model_request = ModelRequest {
        messages: guarded,
        max_tokens: request.max_completion_tokens.or(request.max_tokens),
        temperature: request.temperature,
        top_p: request.top_p,
        stop: request
            .stop
            .clone()
            .map(|s| s.into_vec())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
    };
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(state.config.server.request_timeout_secs);

    if request.stream {
        let include_usage = request
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        let model_started = Instant::now();
        let events = tokio::time::timeout_at(deadline, provider.stream(&model_request))
            .await
            .map_err(|_| ApiError::ModelTimeout)?
            .map_err(|e| ApiError::ModelFailed(e.to_string()))?;
        let guard =
            state
                .guardrails
                .stream(&ex.guardrail)
                .await
                .map_err(|e| ApiError::Backend {
                    what: "guardrail",
                    detail: e.to_string(),
                })?;
        let (tx, rx) = mpsc::channel(64);
        let header = ex.guardrail_header();
        let task = stream_task(
            state.clone(),
            ex.clone(),
            events,
            guard,
            tx,
            deadline,
            model_started,
            include_usage,
        );
        tokio::spawn(task.instrument(tracing::Span::current()));
        return Ok(ChatReply::Stream {
            events: rx,
            guardrail_action: header,
        });
    }

    let model_started = Instant::now();
    let completion_result = tokio::time::timeout_at(deadline, provider.complete(&model_request))
        .await
        .map_err(|_| ApiError::ModelTimeout)?;
    ex.model_latency_ms = model_started.elapsed().as_millis() as u64;
    let answer = completion_result.map_err(|e| ApiError::ModelFailed(e.to_string()))?;
    ex.input_tokens = answer.input_tokens;
    ex.output_tokens = answer.output_tokens;
    ex.raw_output = answer.text.clone();
    state
        .throttle
        .charge(
            &ex.feature,
            answer.input_tokens + answer.output_tokens,
            ex.meta.timestamp_ms,
        )
        .await;

    let outcome = state
        .guardrails
        .apply(&ex.guardrail, Source::Output, &answer.text)
        .await
        .map_err(|e| ApiError::Backend {
            what: "guardrail",
            detail: e.to_string(),
        })?;
    ex.output_action = outcome.action;
    ex.policies.extend(outcome.policies);
    ex.delivered_output = outcome.text.clone();
    let finish = if outcome.action == TextAction::Blocked {
        "content_filter"
    } else {
        answer.finish_reason.as_openai()
    };
    record(state, ex, 200).await?;
    Ok(ChatReply::Complete {
        body: completion(&completion_id, created, ex, outcome.text, finish),
        guardrail_action: ex.guardrail_header(),
    })
}

/// Check the request against what the gateway supports; returns the messages' texts.
fn validate(
    state: &AppState,
    request: &ChatCompletionRequest,
) -> Result<Vec<ModelMessage>, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages must contain at least one message.",
            Some("messages"),
        ));
    }
    if request.messages.len() > state.config.server.max_messages {
        return Err(ApiError::invalid(
            format!(
                "messages may contain at most {} messages.",
                state.config.server.max_messages
            ),
            Some("messages"),
        ));
    }
    if request.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("Only n = 1 is supported.", Some("n")));
    }
    if request.tools.is_some() || request.functions.is_some() {
        return Err(ApiError::invalid(
            "Tool and function calling are not supported by this gateway.",
            Some("tools"),
        ));
    }
    if let Some(format) = &request.response_format
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(ApiError::invalid(
            "Only response_format {\"type\": \"text\"} is supported.",
            Some("response_format"),
        ));
    }
    if request
        .temperature
        .is_some_and(|t| !(0.0..=2.0).contains(&t))
    {
        return Err(ApiError::invalid(
            "temperature must be between 0 and 2.",
            Some("temperature"),
        ));
    }
    if request.top_p.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(ApiError::invalid(
            "top_p must be between 0 and 1.",
            Some("top_p"),
        ));
    }
    if let Some(stop) = &request.stop {
        let stops: &[String] = match stop {
            Stop::One(one) => std::slice::from_ref(one),
            Stop::Many(many) => many,
        };
        if stops.len() > MAX_STOP_SEQUENCES {
            return Err(ApiError::invalid(
                format!("stop may contain at most {MAX_STOP_SEQUENCES} sequences."),
                Some("stop"),
            ));
        }
        if stops.iter().any(|s| s.len() > MAX_STOP_BYTES) {
            return Err(ApiError::invalid(
                format!("Each stop sequence may be at most {MAX_STOP_BYTES} bytes long."),
                Some("stop"),
            ));
        }
    }
    if request.max_completion_tokens.or(request.max_tokens) == Some(0) {
        return Err(ApiError::invalid(
            "max_tokens must be at least 1.",
            Some("max_tokens"),
        ));
    }
    let mut out = Vec::with_capacity(request.messages.len());
    for (i, message) in request.messages.iter().enumerate() {
        if message
            .name
            .as_ref()
            .is_some_and(|n| n.len() > MAX_NAME_BYTES)
        {
            return Err(ApiError::invalid(
                format!("messages[{i}].name is longer than {MAX_NAME_BYTES} bytes."),
                Some("messages"),
            ));
        }
        if let Some(MessageContent::Parts(parts)) = &message.content
            && parts.len() > MAX_CONTENT_PARTS
        {
            return Err(ApiError::invalid(
                format!("messages[{i}] has more than {MAX_CONTENT_PARTS} content parts."),
                Some("messages"),
            ));
        }
        let text = message
            .text()
            .map_err(|e| ApiError::invalid(format!("messages[{i}]: {e}"), Some("messages")))?;
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(ApiError::invalid(
                format!("messages[{i}] is longer than {MAX_MESSAGE_BYTES} bytes."),
                Some("messages"),
            ));
        }
        out.push(ModelMessage {
            role: message.role.as_str(),
            content: text,
        });
    }
    Ok(out)
}

fn completion(
    id: &str,
    created: i64,
    ex: &Exchange,
    content: String,
    finish_reason: &'static str,
) -> ChatCompletion {
    ChatCompletion {
        id: id.to_string(),
        object: "chat.completion",
        created,
        model: ex.model_alias.clone(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
            },
            finish_reason,
        }],
        usage: Usage::new(ex.input_tokens, ex.output_tokens),
    }
}

fn chunk(
    ex: &Exchange,
    delta: Delta,
    finish_reason: Option<&'static str>,
    usage: Option<Usage>,
) -> Event {
    let body = ChatCompletionChunk {
        id: format!("chatcmpl-{}", ex.meta.request_id),
        object: "chat.completion.chunk",
        created: ex.meta.timestamp_ms / 1000,
        model: ex.model_alias.clone(),
        choices: if usage.is_some()
            && finish_reason.is_none()
            && delta.content.is_none()
            && delta.role.is_none()
        {
            Vec::new()
        } else {
            vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
            }]
        },
        usage,
    };
    Event::default().data(serde_json::to_string(&body).unwrap_or_default())
}

fn content(text: String) -> Delta {
    Delta {
        role: None,
        content: Some(text),
    }
}

/// Close a stream: final chunk, records, usage, `[DONE]`. On a record failure the client gets
/// an error event and no `[DONE]`.
async fn finish_stream(
    state: &AppState,
    ex: &Exchange,
    tx: &mpsc::Sender<Event>,
    finish_reason: &'static str,
    status: u16,
    include_usage: bool,
) {
    let _ = tx
        .send(chunk(ex, Delta::default(), Some(finish_reason), None))
        .await;
    if let Err(e) = record(state, ex, status).await {
        tracing::error!(error = %e, "stream not recorded; withholding [DONE]");
        let _ = tx
            .send(Event::default().data(e.to_json().to_string()))
            .await;
        return;
    }
    if include_usage {
        let usage = Usage::new(ex.input_tokens, ex.output_tokens);
        let _ = tx
            .send(chunk(ex, Delta::default(), None, Some(usage)))
            .await;
    }
    let _ = tx.send(Event::default().data("[DONE]")).await;
}

fn blocked_stream(
    state: &AppState,
    ex: Exchange,
    message: String,
    include_usage: bool,
) -> ChatReply {
    let (tx, rx) = mpsc::channel(8);
    let header = ex.guardrail_header();
    let state = state.clone();
    let task = async move {
        let _ = tx
            .send(chunk(
                &ex,
                Delta {
                    role: Some("assistant"),
                    content: Some(message),
                },
                None,
                None,
            ))
            .await;
        finish_stream(&state, &ex, &tx, "content_filter", 200, include_usage).await;
    };
    tokio::spawn(task.instrument(tracing::Span::current()));
    ChatReply::Stream {
        events: rx,
        guardrail_action: header,
    }
}

/// What sending one guard step to the client came to.
struct Delivered {
    blocked: bool,
    client_gone: bool,
}

/// Send what the output guard released (or, on a block, its blocked message) and record it as
/// delivered.
async fn deliver(
    ex: &mut Exchange,
    tx: &mpsc::Sender<Event>,
    step: Result<StreamStep, crate::guard::GuardError>,
) -> Result<Delivered, ApiError> {
    let (text, blocked) = match step {
        Ok(StreamStep::Release(safe)) => (safe, false),
        Ok(StreamStep::Blocked(message)) => (format!("\n\n{message}"), true),
        Err(e) => {
            return Err(ApiError::Backend {
                what: "guardrail",
                detail: e.to_string(),
            });
        }
    };
    let mut client_gone = false;
    if !text.is_empty() {
        ex.delivered_output.push_str(&text);
        client_gone = tx.send(chunk(ex, content(text), None, None)).await.is_err();
    }
    Ok(Delivered {
        blocked,
        client_gone,
    })
}

/// Drive the model stream through the output guard to the client, then record. Runs to the
/// end even if the client goes away, so the request is recorded either way.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the parameters are the stream's parts"
)]
async fn stream_task(
    state: AppState,
    mut ex: Exchange,
    mut events: crate::model::EventStream,
    mut guard: Box<dyn crate::guard::StreamGuard>,
    tx: mpsc::Sender<Event>,
    deadline: tokio::time::Instant,
    model_started: Instant,
    include_usage: bool,
) {
    let mut client_gone = tx
        .send(chunk(
            &ex,
            Delta {
                role: Some("assistant"),
                content: None,
            },
            None,
            None,
        ))
        .await
        .is_err();
    let mut finish = "stop";
    let mut status = 200u16;
    let mut failure: Option<ApiError> = None;
    let mut blocked = false;
    // Whether the provider said the answer was complete; a stream that just ends was cut short.
    let mut model_done = false;
    loop {
        if client_gone {
            break;
        }
        let next = match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(next) => next,
            Err(_) => {
                failure = Some(ApiError::ModelTimeout);
                break;
            }
        };
        match next {
            None => {
                if !model_done {
                    failure = Some(ApiError::ModelFailed(
                        "the model stream ended without finishing".into(),
                    ));
                }
                break;
            }
            Some(Ok(StreamEvent::Delta(text))) => {
                ex.raw_output.push_str(&text);
                let step = guard.push(&text).await;
                match deliver(&mut ex, &tx, step).await {
                    Ok(d) => {
                        client_gone = d.client_gone;
                        if d.blocked {
                            blocked = true;
                            break;
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            Some(Ok(StreamEvent::Done {
                input_tokens,
                output_tokens,
                finish_reason,
            })) => {
                ex.input_tokens = input_tokens;
                ex.output_tokens = output_tokens;
                finish = finish_reason.as_openai();
                model_done = true;
            }
            Some(Err(e)) => {
                failure = Some(ApiError::ModelFailed(e.to_string()));
                break;
            }
        }
    }
    drop(events);
    ex.model_latency_ms = model_started.elapsed().as_millis() as u64;
    if !blocked && failure.is_none() && !client_gone {
        let step = guard.finish().await;
        match deliver(&mut ex, &tx, step).await {
            Ok(d) => {
                client_gone = d.client_gone;
                blocked = d.blocked;
            }
            Err(e) => failure = Some(e),
        }
    }
    let (action, policies) = guard.outcome();
    ex.output_action = action;
    ex.policies.extend(policies);
    if blocked {
        finish = "content_filter";
    }
    if ex.output_tokens == 0 && !ex.raw_output.is_empty() {
        ex.output_tokens = crate::model::estimate_tokens(&ex.raw_output);
    }
    state
        .throttle
        .charge(
            &ex.feature,
            ex.input_tokens + ex.output_tokens,
            ex.meta.timestamp_ms,
        )
        .await;
    if let Some(error) = failure {
        status = error.status().as_u16();
        tracing::warn!(error = %error, "stream failed");
        if let Err(e) = record(&state, &ex, status).await {
            tracing::error!(error = %e, "failed stream not recorded");
        }
        let _ = tx
            .send(Event::default().data(error.to_json().to_string()))
            .await;
        return;
    }
    if client_gone {
        // 499: the client closed the connection before the end (nginx's convention).
        status = 499;
        if let Err(e) = record(&state, &ex, status).await {
            tracing::error!(error = %e, "abandoned stream not recorded");
        }
        return;
    }
    finish_stream(&state, &ex, &tx, finish, status, include_usage).await;
}
