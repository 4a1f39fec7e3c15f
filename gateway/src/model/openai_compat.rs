//! An OpenAI-compatible upstream (vLLM, Ollama, llama.cpp server): `POST {base_url}/chat/completions`
//! with the configured model name, whole or streamed (SSE). Responses are bounded in size.

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
        let choice = &v["choices"][0];
        let text = choice["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
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
            finish_reason: finish_reason(&choice["finish_reason"]),
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
            let mut finish = FinishReason::Stop;
            loop {
                // Complete lines first, then read more.
                if let Some(pos) = buffer.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim();
                    let Some(data) = line.strip_prefix("data:") else { continue };
                    let data = data.trim();
                    if data == "[DONE]" {
                        break;
                    }
                    let v: Value = match serde_json::from_str(data) {
                        Ok(v) => v,
                        Err(e) => { yield Err(ModelError::BadResponse(e.to_string())); return; }
                    };
                    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                        usage = Some((u["prompt_tokens"].as_u64().unwrap_or(0), u["completion_tokens"].as_u64().unwrap_or(0)));
                    }
                    let choice = &v["choices"][0];
                    if !choice["finish_reason"].is_null() {
                        finish = finish_reason(&choice["finish_reason"]);
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
            let (input_tokens, output_tokens) = usage.unwrap_or((prompt_estimate, text_len_tokens));
            yield Ok(StreamEvent::Done { input_tokens, output_tokens, finish_reason: finish });
        };
        Ok(events.boxed())
    }
}

fn finish_reason(v: &Value) -> FinishReason {
    match v.as_str() {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
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
