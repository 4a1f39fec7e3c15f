//! The Lambda entry without a Lambda: API Gateway event fixtures (`fixtures/apigw/`, HTTP API
//! v2 and REST v1 proxy events) through `gateway::lambda::invoke`, which is `lambda_http`'s
//! request conversion, the gateway's router and `lambda_http`'s response conversion — what the
//! runtime does with each invocation, minus the Runtime API transport. Checks the proxy
//! response shape, JWT verification from the `Authorization` header, the REST stage prefix,
//! the source IP from the request context in the audit event, and the buffered answer to a
//! streaming request. One test also runs the real `gateway-lambda` binary against a fake Lambda
//! Runtime API (`runtime_api`), as the Lambda service runs a `provided.al2023` bootstrap.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fail loudly"
)]

use gateway::auth::issuer::MintRequest;
use gateway::state::AppState;
use serde_json::{Value, json};

const EMAIL: &str = "jane.doe@example.com";

struct Lambda {
    state: AppState,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

async fn lambda() -> Lambda {
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "GOLDEN_PATH_DATA_DIR".to_string(),
        dir.path().display().to_string(),
    )];
    let config = gateway::config::Config::load_from(None, &env).unwrap();
    let state = AppState::build(config).await.unwrap();
    let app = gateway::lambda::app(state.clone());
    Lambda {
        state,
        app,
        _dir: dir,
    }
}

impl Lambda {
    fn token(&self, sub: &str) -> String {
        self.state
            .issuer
            .as_ref()
            .unwrap()
            .mint(&MintRequest {
                sub: sub.into(),
                client_id: "default".into(),
                ttl_secs: 600,
            })
            .unwrap()
    }

    /// A fixture with its `{{TOKEN}}` and `{{BODY}}` filled in, through the handler.
    async fn invoke(&self, fixture: &str, token: &str, body: &Value) -> Value {
        let path = format!("{}/fixtures/apigw/{fixture}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        // The body is a JSON string inside the event: escape it as one.
        let body = serde_json::to_string(&body.to_string()).unwrap();
        let event = text
            .replace("{{TOKEN}}", token)
            .replace("\"{{BODY}}\"", &body);
        gateway::lambda::invoke(self.app.clone(), event.as_bytes())
            .await
            .unwrap()
    }

    fn audit_event(&self, request_id: &str) -> Value {
        let event: String = e2e::open_audit_db(&self.state.config.data_dir)
            .query_row(
                "SELECT event_json FROM audit_events WHERE request_id = ?1",
                [request_id],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&event).unwrap()
    }
}

/// A header from a v2 response (`headers`) or a v1 one (`multiValueHeaders` or `headers`).
fn header(response: &Value, name: &str) -> Option<String> {
    response["headers"][name]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            response["multiValueHeaders"][name][0]
                .as_str()
                .map(str::to_string)
        })
}

fn body_json(response: &Value) -> Value {
    assert_eq!(response["isBase64Encoded"], false, "{response}");
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

fn chat(content: &str) -> Value {
    json!({"model": "dev", "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn http_api_v2_event_gets_a_guarded_answer_in_the_v2_shape() {
    let l = lambda().await;
    let token = l.token("alice@example.com");
    let response = l
        .invoke(
            "http-api-v2-chat.json",
            &token,
            &chat(&format!("Reply to {EMAIL} please")),
        )
        .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    // The v2 response shape: single-valued headers and a cookies list.
    assert!(response["cookies"].is_array(), "{response}");
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header(&response, "x-guardrail-action").as_deref(),
        Some("INTERVENED")
    );
    let body = body_json(&response);
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(answer.ends_with("Reply to {EMAIL} please"), "{answer}");
    assert!(!response.to_string().contains(EMAIL));

    let request_id = header(&response, "x-request-id").unwrap();
    let event = l.audit_event(&request_id);
    assert_eq!(event["userSub"], "alice@example.com");
    assert_eq!(
        event["sourceIp"], "198.51.100.7",
        "from requestContext.http"
    );
    assert_eq!(event["userAgent"], "OpenAI/Python 1.54.0");
    assert_eq!(event["status"], 200);
}

#[tokio::test]
async fn rest_v1_event_behind_a_stage_gets_the_v1_shape() {
    let l = lambda().await;
    let token = l.token("bob@example.com");
    let response = l
        .invoke("rest-v1-chat.json", &token, &chat("Hello from REST"))
        .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    // The v1 response shape: multi-value headers, no cookies list.
    assert!(response["multiValueHeaders"].is_object(), "{response}");
    assert!(response.get("cookies").is_none(), "{response}");
    let body = body_json(&response);
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .ends_with("Hello from REST")
    );
    let request_id = header(&response, "x-request-id").unwrap();
    assert_eq!(
        l.audit_event(&request_id)["sourceIp"],
        "203.0.113.9",
        "from requestContext.identity"
    );

    // GET with no body, `/prod/v1/models` routed as `/v1/models`.
    let response = l
        .invoke("rest-v1-models-get.json", &token, &Value::Null)
        .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body = body_json(&response);
    assert_eq!(body["data"][0]["id"], "dev", "{body}");
}

#[tokio::test]
async fn the_jwt_in_the_authorization_header_is_verified() {
    let l = lambda().await;
    let token = l.token("mallory@example.com");
    // A tampered signature, a foreign-looking token and no token at all: the same 401.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "not-a-jwt", ""] {
        for fixture in ["http-api-v2-chat.json", "rest-v1-chat.json"] {
            let response = l.invoke(fixture, bad, &chat("let me in")).await;
            assert_eq!(response["statusCode"], 401, "{fixture} {response}");
            let body = body_json(&response);
            assert!(body["error"]["code"].is_string(), "{body}");
        }
    }
    // Another issuer's key with the same claims is refused too.
    let other = lambda().await;
    let foreign = other.token("mallory@example.com");
    let response = l
        .invoke("http-api-v2-chat.json", &foreign, &chat("let me in"))
        .await;
    assert_eq!(response["statusCode"], 401, "{response}");
}

#[tokio::test]
async fn a_streaming_request_gets_the_whole_sse_answer_marked_buffered() {
    let l = lambda().await;
    let token = l.token("carol@example.com");
    let mut request = chat(&format!("Stream to {EMAIL}"));
    request["stream"] = json!(true);
    let response = l.invoke("http-api-v2-chat.json", &token, &request).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(
        header(&response, gateway::lambda::STREAMING_HEADER).as_deref(),
        Some("buffered")
    );
    assert_eq!(response["isBase64Encoded"], false);
    let body = response["body"].as_str().unwrap();
    let events: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{body}");
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(text.ends_with("Stream to {EMAIL}"), "{text}");
    // Recorded before the buffered answer was returned.
    let request_id = header(&response, "x-request-id").unwrap();
    assert_eq!(l.audit_event(&request_id)["stream"], true);
}

#[tokio::test]
async fn a_malformed_event_is_a_clear_error() {
    let l = lambda().await;
    let err = gateway::lambda::invoke(l.app.clone(), b"{\"hello\": 1}")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not an API Gateway proxy event"),
        "{err}"
    );
}

/// A fake Lambda Runtime API (`/2018-06-01/runtime/...`): hands out queued events and
/// collects the function's responses, as the Lambda service does for a `provided.al2023`
/// function's `bootstrap`.
mod runtime_api {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Arc;

    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use tokio::sync::{Mutex, Notify};

    #[derive(Default)]
    pub struct Runtime {
        events: Mutex<VecDeque<(String, String)>>,
        pub responses: Mutex<HashMap<String, (bool, String)>>,
        ready: Notify,
        answered: Notify,
    }

    impl Runtime {
        pub async fn push(&self, id: &str, event: String) {
            self.events.lock().await.push_back((id.to_string(), event));
            self.ready.notify_one();
        }

        /// The function's answer to `id`: (is an error, body).
        pub async fn answer(&self, id: &str) -> (bool, String) {
            loop {
                let answered = self.answered.notified();
                if let Some(a) = self.responses.lock().await.get(id) {
                    return a.clone();
                }
                answered.await;
            }
        }
    }

    async fn next(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
        loop {
            let ready = rt.ready.notified();
            if let Some((id, event)) = rt.events.lock().await.pop_front() {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 30_000;
                let mut headers = HeaderMap::new();
                headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
                headers.insert(
                    "lambda-runtime-deadline-ms",
                    deadline.to_string().parse().unwrap(),
                );
                headers.insert(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:eu-west-1:123456789012:function:golden-path-gateway"
                        .parse()
                        .unwrap(),
                );
                headers.insert("content-type", "application/json".parse().unwrap());
                return (headers, event);
            }
            ready.await;
        }
    }

    async fn respond(
        State(rt): State<Arc<Runtime>>,
        Path(id): Path<String>,
        body: String,
    ) -> StatusCode {
        rt.responses.lock().await.insert(id, (false, body));
        rt.answered.notify_waiters();
        StatusCode::ACCEPTED
    }

    async fn error(
        State(rt): State<Arc<Runtime>>,
        Path(id): Path<String>,
        body: String,
    ) -> StatusCode {
        rt.responses.lock().await.insert(id, (true, body));
        rt.answered.notify_waiters();
        StatusCode::ACCEPTED
    }

    /// Serve on 127.0.0.1, port 0; returns `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub async fn start(rt: Arc<Runtime>) -> String {
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .with_state(rt);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr.to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_lambda_binary_serves_invocations_from_the_runtime_api() {
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    // The embedded issuer's key is created by the first command that needs it.
    let out = Command::new(e2e::binary("gateway"))
        .args(["token", "--sub", "dave@example.com", "--feature", "default"])
        .env("GOLDEN_PATH_DATA_DIR", &data_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let rt = std::sync::Arc::new(runtime_api::Runtime::default());
    let api = runtime_api::start(rt.clone()).await;
    let mut child = Command::new(e2e::binary("gateway-lambda"))
        .env("GOLDEN_PATH_DATA_DIR", &data_dir)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "golden-path-gateway")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/golden-path-gateway",
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let path = format!(
        "{}/fixtures/apigw/rest-v1-chat.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = serde_json::to_string(&chat(&format!("Lambda, mail {EMAIL}")).to_string()).unwrap();
    let event = std::fs::read_to_string(path)
        .unwrap()
        .replace("{{TOKEN}}", &token)
        .replace("\"{{BODY}}\"", &body);
    rt.push("invocation-1", event.clone()).await;
    rt.push("invocation-2", event.replace(&token, "forged-token"))
        .await;
    let first = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        rt.answer("invocation-1"),
    )
    .await;
    let second = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        rt.answer("invocation-2"),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (is_error, first) = first.expect("the function answered invocation-1");
    assert!(!is_error, "{first}");
    let response: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    let answer = body_json(&response);
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .ends_with("Lambda, mail {EMAIL}"),
        "{answer}"
    );
    let (is_error, second) = second.expect("the function answered invocation-2");
    assert!(!is_error, "{second}");
    let response: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(response["statusCode"], 401, "{response}");
}
