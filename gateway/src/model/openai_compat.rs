//! An OpenAI-compatible upstream (vLLM, Ollama, llama.cpp server): `POST {base_url}/chat/completions`
//! with the configured model name, whole or streamed (SSE). Responses are bounded in size and
//! validated: an error object (even with HTTP 200), an answer without a choice, text or finish
//! reason, and a stream cut short (no `[DONE]` or no finish reason) are failures.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use super::{
    Completion, EventStream, FinishReason, ModelError, ModelRequest, StreamEvent,
    estimate_prompt_tokens, estimate_tokens,
};
use crate::config::Secret;

/// Largest upstream response body accepted (whole responses, and one SSE event).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

pub struct OpenAiCompatible {
    pub model: String,
    url: String,
    api_key: Option<Secret>,
    client: reqwest::Client,
}

impl OpenAiCompatible {
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<Secret>,
        timeout_secs: u64,
    ) -> Result<OpenAiCompatible, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(timeout_secs))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(OpenAiCompatible {
            model: model.to_string(),
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
            client,
        })
    }

    fn body(&self, request: &ModelRequest, stream: bool) -> Value {
        let mut body =
            json!({ "model": self.model, "messages": request.messages, "stream": stream });
        if stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        if let Some(v) = request.max_tokens {
            body["max_tokens"] = json!(v);
        }
        if let Some(v) = request.temperature {
            body["temperature"] = json!(v);
        }
        if let Some(v) = request.top_p {
            body["top_p"] = json!(v);
        }
        if !request.stop.is_empty() {
            body["stop"] = json!(request.stop);
        }
        body
    }

    async fn send(&self, body: &Value) -> Result<reqwest::Response, ModelError> {
        let mut call = self.client.post(&self.url).json(body);
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key.expose());
        }
        let response = call
            .send()
            .await
            .map_err(|e| ModelError::Upstream(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(ModelError::Status(response.status().as_u16()));
        }
        Ok(response)
    }

    pub async fn complete(&self, request: &ModelRequest) -> Result<Completion, ModelError> {
        let response = self.send(&self.body(request, false)).await?;
        let bytes = read_bounded(response).await?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| ModelError::BadResponse(e.to_string()))?;
        let (text, finish) = answer(&v)?;
        let input_tokens = v["usage"]["prompt_tokens"]
            .as_u64()
            .unwrap_or_else(|| estimate_prompt_tokens(&request.messages));
        let output_tokens = v["usage"]["completion_tokens"]
            .as_u64()
            .unwrap_or_else(|| estimate_tokens(&text));
        Ok(Completion {
            text,
            input_tokens,
            output_tokens,
            finish_reason: finish,
        })
    }

    pub async fn stream(&self, request: &ModelRequest) -> Result<EventStream, ModelError> {
        let response = self.send(&self.body(request, true)).await?;
        let prompt_estimate = estimate_prompt_tokens(&request.messages);
        let mut bytes = response.bytes_stream();
        let events = async_stream::stream! {
            let mut buffer: Vec<u8> = Vec::new();
            let mut text_len_tokens = 0u64;
            let mut usage: Option<(u64, u64)> = None;
            let mut finish: Option<FinishReason> = None;
            let mut done = false;
            loop {
                // Complete lines first, then read more.
                if let Some(pos) = buffer.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim();
                    let Some(data) = line.strip_prefix("data:") else { continue };
                    let data = data.trim();
                    if data == "[DONE]" {
                        done = true;
                        break;
                    }
                    let v: Value = match serde_json::from_str(data) {
                        Ok(v) => v,
                        Err(e) => { yield Err(ModelError::BadResponse(e.to_string())); return; }
                    };
                    if let Some(error) = upstream_error(&v) {
                        yield Err(error);
                        return;
                    }
                    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                        usage = Some((u["prompt_tokens"].as_u64().unwrap_or(0), u["completion_tokens"].as_u64().unwrap_or(0)));
                    }
                    let choice = &v["choices"][0];
                    if let Some(reason) = choice["finish_reason"].as_str() {
                        finish = Some(finish_reason(reason));
                    }
                    if let Some(t) = choice["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
                        text_len_tokens += estimate_tokens(t);
                        yield Ok(StreamEvent::Delta(t.to_string()));
                    }
                    continue;
                }
                if buffer.len() > MAX_RESPONSE_BYTES {
                    yield Err(ModelError::BadResponse("stream event too large".into()));
                    return;
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(e)) => { yield Err(ModelError::Upstream(e.without_url().to_string())); return; }
                    None => break,
                }
            }
            // A stream cut short (closed before `[DONE]`, or without a finish reason) is a
            // failure, never a complete answer.
            let Some(finish) = finish.filter(|_| done) else {
                yield Err(ModelError::BadResponse(if done {
                    "stream ended without a finish_reason".into()
                } else {
                    "stream closed before [DONE]".into()
                }));
                return;
            };
            let (input_tokens, output_tokens) = usage.unwrap_or((prompt_estimate, text_len_tokens));
            yield Ok(StreamEvent::Done { input_tokens, output_tokens, finish_reason: finish });
        };
        Ok(events.boxed())
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Longest part of an upstream error's `type`/`code` kept for the log.
const MAX_ERROR_FIELD: usize = 64;

/// An `{"error": {...}}` object (some servers answer one with HTTP 200, or as a stream event)
/// as a [`ModelError`]. Only its `type` and `code`, bounded, are kept for the log: its
/// message may quote the prompt.
fn upstream_error(v: &Value) -> Option<ModelError> {
    let error = v.get("error").filter(|e| !e.is_null())?;
    let field = |name: &str| -> String {
        match &error[name] {
            Value::String(s) => s.chars().take(MAX_ERROR_FIELD).collect(),
            Value::Number(n) => n.to_string(),
            _ => "-".into(),
        }
    };
    Some(ModelError::Upstream(format!(
        "upstream answered with an error object (type {}, code {})",
        field("type"),
        field("code")
    )))
}

/// The text and finish reason of a whole completion. An error object, no choice, a choice
/// without a message or without text content, or no finish reason is a failure: never an
/// empty successful answer. (A tool call is refused too: the gateway asks for none and could
/// not relay one.)
fn answer(v: &Value) -> Result<(String, FinishReason), ModelError> {
    if let Some(error) = upstream_error(v) {
        return Err(error);
    }
    let choice = v["choices"]
        .get(0)
        .ok_or_else(|| ModelError::BadResponse("no choices in the answer".into()))?;
    let message = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| ModelError::BadResponse("the choice has no message".into()))?;
    let text = match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        _ if message.get("tool_calls").is_some_and(|t| !t.is_null()) => {
            return Err(ModelError::BadResponse(
                "the answer is a tool call, which this gateway does not relay".into(),
            ));
        }
        _ => {
            return Err(ModelError::BadResponse(
                "the message has no text content".into(),
            ));
        }
    };
    let finish = choice["finish_reason"]
        .as_str()
        .ok_or_else(|| ModelError::BadResponse("the choice has no finish_reason".into()))?;
    Ok((text, finish_reason(finish)))
}

async fn read_bounded(response: reqwest::Response) -> Result<Vec<u8>, ModelError> {
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ModelError::Upstream(e.without_url().to_string()))?;
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ModelError::BadResponse("response too large".into()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_choice_with_text_and_a_finish_reason_is_an_answer() {
        let ok = json!({"choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "length"}]});
        assert_eq!(answer(&ok).unwrap(), ("hi".into(), FinishReason::Length));
        let refused = [
            json!({"error": {"message": "secret prompt words", "type": "server_error", "code": 500}}),
            json!({"choices": []}),
            json!({}),
            json!({"choices": [{"finish_reason": "stop"}]}),
            json!({"choices": [{"message": {"role": "assistant"}, "finish_reason": "stop"}]}),
            json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [{}]}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [{"message": {"role": "assistant", "content": "hi"}}]}),
        ];
        for v in refused {
            let e = answer(&v).unwrap_err();
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
