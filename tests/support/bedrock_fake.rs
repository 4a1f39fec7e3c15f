//! A wire-level fake of Bedrock Runtime's Converse API for the black-box tests: an axum server
//! on 127.0.0.1 and port 0 answering `POST /model/{modelId}/converse` (JSON) and
//! `POST /model/{modelId}/converse-stream` (the AWS event-stream binary framing: prelude,
//! headers `:message-type`/`:event-type`/`:content-type`, CRCs, written by
//! `aws-smithy-eventstream`). It remembers every call (model id from the path, JSON body,
//! `Authorization` header) so tests can check what the gateway sent.
//!
//! The answer quotes the last user text: `bedrock fake saw: <text>`, one delta per word when
//! streamed, with fixed usage (`inputTokens` 1000 + number of messages, `outputTokens` the word
//! count) so tests can tell reported usage from an estimate. A last user text containing
//! `FAIL_THROTTLE` gets a `ThrottlingException` (HTTP 429); `FAIL_MIDSTREAM` gets one delta and
//! then a `modelStreamErrorException` event; `FAIL_NOSTOP` gets one delta and then the end of the
//! stream without `messageStop`; `LEAK_EMAIL` gets an answer holding an email address.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct FakeCall {
    /// The model id, percent-decoded from the path.
    pub model_id: String,
    pub stream: bool,
    pub body: Value,
    pub authorization: Option<String>,
}

type Calls = Arc<Mutex<Vec<FakeCall>>>;

/// The running fake; the server stops when this is dropped.
pub struct BedrockFake {
    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub base: String,
    calls: Calls,
    task: tokio::task::JoinHandle<()>,
}

impl BedrockFake {
    pub async fn start() -> BedrockFake {
        let calls: Calls = Arc::default();
        let app = axum::Router::new()
            .route("/model/{id}/converse", post(converse))
            .route("/model/{id}/converse-stream", post(converse_stream))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind bedrock fake");
        let addr = listener.local_addr().expect("fake address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        BedrockFake {
            base: format!("http://{addr}"),
            calls,
            task,
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.calls.lock().expect("calls lock").clone()
    }

    /// The answer the fake gives to `last_user_text`.
    pub fn answer_for(last_user_text: &str) -> String {
        if last_user_text.contains("LEAK_EMAIL") {
            return "bedrock fake leaks ops.lead@example.com today".into();
        }
        format!("bedrock fake saw: {last_user_text}")
    }
}

impl Drop for BedrockFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn remember(calls: &Calls, model_id: String, stream: bool, headers: &HeaderMap, body: &Value) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    calls.lock().expect("calls lock").push(FakeCall {
        model_id,
        stream,
        body: body.clone(),
        authorization,
    });
}

/// The text of the last user turn's text blocks.
fn last_user_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_array())
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The answer's words (each with its trailing space), cut at `inferenceConfig.maxTokens`.
fn words(body: &Value) -> (Vec<String>, &'static str) {
    let text = BedrockFake::answer_for(&last_user_text(body));
    let mut words: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
    let mut stop = "end_turn";
    if let Some(max) = body["inferenceConfig"]["maxTokens"].as_u64()
        && words.len() as u64 > max
    {
        words.truncate(max as usize);
        stop = "max_tokens";
    }
    (words, stop)
}

fn usage(body: &Value, output_words: usize) -> Value {
    let messages = body["messages"].as_array().map_or(0, Vec::len);
    let input = 1000 + messages;
    json!({"inputTokens": input, "outputTokens": output_words, "totalTokens": input + output_words})
}

fn throttled() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            ("content-type", "application/json"),
            ("x-amzn-errortype", "ThrottlingException"),
        ],
        json!({"message": "Too many requests, please wait before trying again."}).to_string(),
    )
        .into_response()
}

async fn converse(
    State(calls): State<Calls>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    remember(&calls, model_id, false, &headers, &body);
    if last_user_text(&body).contains("FAIL_THROTTLE") {
        return throttled();
    }
    let (words, stop) = words(&body);
    let answer = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": words.concat()}]}},
        "stopReason": stop,
        "usage": usage(&body, words.len()),
        "metrics": {"latencyMs": 1},
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// One event-stream frame.
fn frame(message_type: &'static str, kind: &'static str, payload: Value) -> Bytes {
    let type_header = if message_type == "exception" {
        ":exception-type"
    } else {
        ":event-type"
    };
    let message = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String(message_type.into()),
        ))
        .add_header(Header::new(type_header, HeaderValue::String(kind.into())))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out)
        .expect("write event-stream frame");
    Bytes::from(out)
}

async fn converse_stream(
    State(calls): State<Calls>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    remember(&calls, model_id, true, &headers, &body);
    let prompt = last_user_text(&body);
    if prompt.contains("FAIL_THROTTLE") {
        return throttled();
    }
    let (words, stop) = words(&body);
    let mut frames = vec![frame("event", "messageStart", json!({"role": "assistant"}))];
    if prompt.contains("FAIL_MIDSTREAM") {
        frames.push(frame(
            "event",
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "partial "}}),
        ));
        frames.push(frame(
            "exception",
            "modelStreamErrorException",
            json!({"message": "the model stopped", "originalStatusCode": 500}),
        ));
    } else if prompt.contains("FAIL_NOSTOP") {
        // Cut short: a delta, and the stream ends without `messageStop`.
        frames.push(frame(
            "event",
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "partial "}}),
        ));
    } else {
        for word in &words {
            frames.push(frame(
                "event",
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": word}}),
            ));
        }
        frames.push(frame(
            "event",
            "contentBlockStop",
            json!({"contentBlockIndex": 0}),
        ));
        frames.push(frame("event", "messageStop", json!({"stopReason": stop})));
        frames.push(frame(
            "event",
            "metadata",
            json!({"usage": usage(&body, words.len()), "metrics": {"latencyMs": 1}}),
        ));
    }
    // One frame per chunk, with a pause between them, as a real stream arrives.
    let stream = async_stream_frames(frames);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/vnd.amazon.eventstream")
        .body(Body::from_stream(stream))
        .expect("response")
}

fn async_stream_frames(
    frames: Vec<Bytes>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
    futures::stream::unfold(frames.into_iter(), |mut frames| async move {
        let next = frames.next()?;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        Some((Ok(next), frames))
    })
}
