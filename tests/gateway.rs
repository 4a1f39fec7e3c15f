//! Black-box tests of the `gateway` binary over HTTP: the whole request path on the embedded
//! default, JWT negatives, throttles, bounded bodies, an OpenAI-compatible upstream, and no
//! acknowledged record lost to SIGKILL under load.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fail loudly"
)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::{Gateway, jws_parts, now_secs, sign_with_issuer_key};
use serde_json::{Value, json};

const EMAIL: &str = "jane.doe@example.com";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn chat(gw: &Gateway, token: &str, body: Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn open_record(gw: &Gateway, request_id: &str) -> Value {
    let out = gw.cli(&[
        "vault",
        "open",
        request_id,
        "--reason",
        "e2e test investigation",
        "--actor",
        "soc-tester",
    ]);
    assert!(
        out.status.success(),
        "vault open: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn chat_redacts_pii_before_the_model_and_records_everything() {
    let gw = Gateway::start(None, &[]);
    let token = gw.token("user-42", "default");
    let prompt = format!("Please email {EMAIL} about the renewal.");
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": prompt}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["x-guardrail-action"], "INTERVENED");
    let body: Value = resp.json().await.unwrap();
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    // The development model quotes what it received: the redacted prompt.
    assert!(
        answer.contains("Please email {EMAIL} about the renewal."),
        "{answer}"
    );
    assert!(!answer.contains(EMAIL));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "dev");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        body["usage"]["total_tokens"].as_u64().unwrap(),
        body["usage"]["prompt_tokens"].as_u64().unwrap()
            + body["usage"]["completion_tokens"].as_u64().unwrap()
    );

    // The audit event: userSub, the pinned model, actions, and no prompt text anywhere.
    let db = gw.audit_db();
    let (user_sub, event_json): (String, String) = db
        .query_row(
            "SELECT user_sub, event_json FROM audit_events WHERE request_id = ?1",
            [&request_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(user_sub, "user-42");
    let event: Value = serde_json::from_str(&event_json).unwrap();
    assert_eq!(event["userSub"], "user-42");
    assert_eq!(event["feature"], "default");
    assert_eq!(event["inputAction"], "ANONYMIZED");
    assert_eq!(event["guardrailAction"], "INTERVENED");
    assert_eq!(event["status"], 200);
    assert!(
        event["policies"]
            .as_array()
            .unwrap()
            .contains(&json!("pii:EMAIL"))
    );
    assert!(
        event["promptHash"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert!(
        !event_json.contains(EMAIL) && !event_json.contains("renewal"),
        "{event_json}"
    );
    assert!(!event_json.contains(&token));

    // The vault record decrypts to the raw prompt, what the model saw, and what was delivered.
    let record = open_record(&gw, &request_id);
    assert_eq!(record["rawPrompt"][0]["content"], prompt);
    assert_eq!(
        record["modelInput"][0]["content"],
        "Please email {EMAIL} about the renewal."
    );
    assert_eq!(record["deliveredOutput"], answer);
    assert_eq!(record["userSub"], "user-42");
    // ... and the opening itself was recorded.
    let accesses: i64 = db
        .query_row(
            "SELECT count(*) FROM access_events WHERE request_id = ?1",
            [&request_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(accesses, 1);
    // Nothing on disk holds the prompt in clear.
    let vault_key = event["vaultKey"].as_str().unwrap();
    let sealed = std::fs::read_to_string(gw.data_dir.path().join("vault").join(vault_key)).unwrap();
    assert!(!sealed.contains(EMAIL) && !sealed.contains("renewal"));
}

#[tokio::test]
async fn streaming_is_sse_with_done_and_guarded() {
    let gw = Gateway::start(None, &[]);
    let token = gw.token("streamer", "default");
    let resp = chat(
        &gw,
        &token,
        json!({"stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": format!("card 4111 1111 1111 1111 and {EMAIL}")}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let mut content = String::new();
    let mut finish = None;
    let mut usage = None;
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
        if v["usage"].is_object() {
            usage = Some(v["usage"].clone());
        }
    }
    assert_eq!(finish.as_deref(), Some("stop"));
    assert!(
        content.contains("card {CREDIT_DEBIT_CARD_NUMBER} and {EMAIL}"),
        "{content}"
    );
    assert!(!text.contains("4111") && !text.contains("jane.doe"));
    assert!(usage.unwrap()["completion_tokens"].as_u64().unwrap() > 0);
    let event: String = gw
        .audit_db()
        .query_row(
            "SELECT event_json FROM audit_events WHERE request_id = ?1",
            [&request_id],
            |r| r.get(0),
        )
        .unwrap();
    let event: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["stream"], true);
    assert_eq!(event["status"], 200);
}

#[tokio::test]
async fn blocked_input_never_reaches_the_model() {
    let gw = Gateway::start(None, &[]);
    let token = gw.token("leaker", "default");
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": "my key is AKIAIOSFODNN7EXAMPLE ok"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!answer.contains("development model"), "{answer}");
    let record = open_record(&gw, &request_id);
    assert_eq!(record["inputAction"], "BLOCKED");
    assert_eq!(record["rawOutput"], "");
}

#[tokio::test]
async fn models_health_and_readiness() {
    let gw = Gateway::start(None, &[]);
    let token = gw.token("u", "default");
    let models: Value = client()
        .get(gw.url("/v1/models"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "dev");
    assert!(
        models["data"][0]["description"]
            .as_str()
            .unwrap()
            .contains("development model")
    );
    assert_eq!(
        client()
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client()
            .get(gw.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client()
            .get(gw.url("/v1/models"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let jwks: Value = client()
        .get(gw.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    // A model the feature does not allow is refused, by name, without leaking anything else.
    let resp = chat(&gw, &token, json!({"model": "arn:aws:bedrock:us-east-1::foundation-model/x", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
}

/// Every way a token can be wrong gets the same 401 body.
#[tokio::test]
async fn jwt_negatives_are_all_the_same_401() {
    let gw = Gateway::start(None, &[]);
    let good = gw.token("victim", "default");
    let (h, p, s) = jws_parts(&good);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&h).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_string();
    let now = now_secs();
    let claims = |over: Value| {
        let mut c = json!({"iss": "golden-path-local", "sub": "victim", "client_id": "default",
                               "token_use": "access", "iat": now, "exp": now + 600});
        for (k, v) in over.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let es256 = |kid: &str| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some(kid.to_string());
        h
    };
    let dir = gw.data_dir.path();
    // Sanity: a forged-but-correct token is accepted, so the negatives below test one thing each.
    let control = sign_with_issuer_key(dir, es256(&kid), &claims(json!({})));

    let mut tampered_claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p).unwrap()).unwrap();
    tampered_claims["sub"] = json!("admin");
    let tampered = format!(
        "{h}.{}.{s}",
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string())
    );

    let none_token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    // HS256 "signed" with the issuer's public key (the key-confusion attack).
    let jwks: Value = client()
        .get(gw.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0].to_string();
    let hs_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public.as_bytes()),
        hs_input.as_bytes(),
    );
    let hs256 = format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));

    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            sign_with_issuer_key(
                dir,
                es256(&kid),
                &claims(json!({"iat": now - 7200, "exp": now - 3600})),
            ),
        ),
        (
            "not yet valid",
            sign_with_issuer_key(dir, es256(&kid), &claims(json!({"nbf": now + 3600}))),
        ),
        (
            "wrong issuer",
            sign_with_issuer_key(
                dir,
                es256(&kid),
                &claims(json!({"iss": "https://evil.example"})),
            ),
        ),
        (
            "wrong audience",
            sign_with_issuer_key(dir, es256(&kid), &claims(json!({"client_id": "other-app"}))),
        ),
        (
            "id token where access expected",
            sign_with_issuer_key(dir, es256(&kid), &claims(json!({"token_use": "id"}))),
        ),
        (
            "unknown kid",
            sign_with_issuer_key(dir, es256("not-a-key"), &claims(json!({}))),
        ),
        ("alg none", none_token),
        ("HS256 with the public key", hs256),
        ("tampered payload", tampered),
        ("garbage", "not.a.jwt".to_string()),
        ("empty", String::new()),
    ];
    let ok = chat(
        &gw,
        &control,
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(ok.status(), 200, "control token must be accepted");
    let mut bodies = BTreeSet::new();
    for (name, token) in cases {
        let resp = chat(
            &gw,
            &token,
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(resp.status(), 401, "{name}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{name}");
        bodies.insert(resp.text().await.unwrap());
    }
    assert_eq!(
        bodies.len(),
        1,
        "every rejection must look the same: {bodies:?}"
    );
    let body: Value = serde_json::from_str(bodies.iter().next().unwrap()).unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after_and_records_it() {
    let gw = Gateway::start(
        None,
        &[
            ("GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__BURST", "2"),
            (
                "GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__REQUESTS_PER_MINUTE",
                "1",
            ),
        ],
    );
    let token = gw.token("busy", "default");
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat(&gw, &token, body.clone()).await.status(), 200);
    assert_eq!(chat(&gw, &token, body.clone()).await.status(), 200);
    let resp = chat(&gw, &token, body).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    let status: i64 = gw
        .audit_db()
        .query_row(
            "SELECT status FROM audit_events WHERE request_id = ?1",
            [&request_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, 429);
}

#[tokio::test]
async fn bodies_are_bounded_and_malformed_json_is_a_clear_400() {
    let gw = Gateway::start(None, &[("GOLDEN_PATH_SERVER__MAX_BODY_BYTES", "4096")]);
    let token = gw.token("u", "default");
    let big = "x".repeat(10_000);
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": big}]}),
    )
    .await;
    assert_eq!(resp.status(), 413);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "payload_too_large");

    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "malformed_body");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("line 1"),
        "{err}"
    );

    for (body, param) in [
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "n": 3}),
            "n",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 9}),
            "temperature",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "messages",
        ),
    ] {
        let resp = chat(&gw, &token, body).await;
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["param"], param, "{err}");
    }
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "wizard", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    // Unauthenticated oversized bodies are refused as unauthenticated, before the body is read.
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .body("y".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        client().get(gw.url("/nope")).send().await.unwrap().status(),
        404
    );
}

/// A zero-latency OpenAI-compatible upstream that remembers what it was sent.
async fn fake_upstream(seen: Arc<Mutex<Vec<Value>>>) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |axum::Json(body): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(body.clone());
                let prompt = body["messages"][0]["content"].as_str().unwrap_or("").to_string();
                // Asked to "leak", the upstream answers with a credential the output guard blocks.
                let secret = if prompt.contains("leak") { " here is AKIAIOSFODNN7EXAMPLE for you" } else { "" };
                let text = format!("upstream saw: {prompt}{secret}");
                if body["stream"] == json!(true) {
                    let mut sse = String::new();
                    for word in text.split_inclusive(' ') {
                        sse.push_str(&format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]})));
                    }
                    sse.push_str(&format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})));
                    sse.push_str(&format!("data: {}\n\n", json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}})));
                    sse.push_str("data: [DONE]\n\n");
                    axum::response::Response::builder().header("content-type", "text/event-stream").body(axum::body::Body::from(sse)).unwrap()
                } else {
                    axum::Json(json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}))
                        .into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

/// Feature `search` on model `llama`, an OpenAI-compatible upstream at `base`; `extra` ends the
/// model's table.
fn search_feature_on(base: &str, extra: &str) -> String {
    format!(
        r#"
[features.search]
clients = ["search-app"]
models = ["llama"]
guardrail = "default"
guardrail_version = "1"
throttle = {{ requests_per_minute = 600, burst = 100, tokens_per_minute = 100000, tokens_per_day = 1000000 }}

[models.llama]
provider = "openai"
base_url = "{base}"
model = "llama3.1:8b"
{extra}"#
    )
}

#[tokio::test]
async fn openai_compatible_upstream_gets_the_pinned_model_and_guarded_text() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = fake_upstream(seen.clone()).await;
    let config = search_feature_on(&base, "api_key = \"sk-upstream-secret\"\n");
    let gw = Gateway::start(Some(&config), &[]);
    let token = gw.token("dev-1", "search");
    let resp = chat(&gw, &token, json!({"model": "llama", "messages": [{"role": "user", "content": format!("write to {EMAIL}")}]})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "upstream saw: write to {EMAIL}"
    );
    assert_eq!(body["usage"]["total_tokens"], 12);
    let resp = chat(
        &gw,
        &token,
        json!({"stream": true, "messages": [{"role": "user", "content": "stream please"}]}),
    )
    .await;
    let text = resp.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    // A credential in the model's streamed answer ends the stream as content_filter, and no
    // fragment of it reaches the client.
    let resp = chat(
        &gw,
        &token,
        json!({"stream": true, "messages": [{"role": "user", "content": "please leak"}]}),
    )
    .await;
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("\"finish_reason\":\"content_filter\""),
        "{text}"
    );
    assert!(
        !text.contains("AKIA") && !text.contains("EXAMPLE"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"));
    let event: String = gw
        .audit_db()
        .query_row(
            "SELECT event_json FROM audit_events WHERE request_id = ?1",
            [&request_id],
            |r| r.get(0),
        )
        .unwrap();
    let event: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["outputAction"], "BLOCKED");
    assert_eq!(event["guardrailAction"], "INTERVENED");
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    for s in &sent {
        assert_eq!(
            s["model"], "llama3.1:8b",
            "the upstream gets the pinned model, never the client's"
        );
        assert!(!s.to_string().contains(EMAIL));
    }
    // The default feature was replaced by the file's features.
    let out = gw.cli(&["token", "--sub", "x", "--feature", "default"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("search"));
}

#[tokio::test]
async fn stop_sequences_and_names_are_bounded_like_openai() {
    let gw = Gateway::start(None, &[]);
    let token = gw.token("user-stop", "default");
    let prompt = "x ".repeat(50_000);
    let many: Vec<String> = (0..2000).map(|i| format!("zz{i}")).collect();
    for (stop, what) in [
        (json!(many), "2,000 sequences"),
        (json!(["a", "b", "c", "d", "e"]), "5 sequences"),
        (json!("s".repeat(257)), "one sequence of 257 bytes"),
        (
            json!(["ok", "s".repeat(257)]),
            "a list with one of 257 bytes",
        ),
    ] {
        let started = std::time::Instant::now();
        let resp = chat(
            &gw,
            &token,
            json!({"messages": [{"role": "user", "content": prompt}], "stop": stop}),
        )
        .await;
        assert_eq!(resp.status(), 400, "{what}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["param"], "stop", "{what}: {v}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{what}"
        );
    }
    let resp = chat(&gw, &token, json!({"messages": [{"role": "user", "content": "one two END three"}], "stop": ["END", "QQQ", "ZZZ", "s".repeat(256)]})).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(answer.ends_with("one two "), "{answer}");
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": "hi", "name": "n".repeat(257)}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let parts: Vec<Value> = (0..257)
        .map(|_| json!({"type": "text", "text": "a"}))
        .collect();
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": parts}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
}

/// An OpenAI-compatible upstream that answers badly, by the prompt: `ERROR200` an error object
/// with HTTP 200 (its message quoting the prompt), `EMPTY` no choices, `NOFINISH` a choice
/// without a finish reason; streamed, `CUT` closes after one delta (no finish, no `[DONE]`),
/// `NODONE` sends a finish reason but closes before `[DONE]`, `NOFINISH` sends `[DONE]` without
/// a finish reason, and `ERROREVENT` sends an error object as an event.
async fn bad_upstream() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|axum::Json(body): axum::Json<Value>| async move {
            let prompt = body["messages"][0]["content"].as_str().unwrap_or("").to_string();
            let error = json!({"error": {"message": format!("upstream echo: {prompt}"), "type": "server_error", "code": null}});
            if body["stream"] == json!(true) {
                let delta = |t: &str, finish: Option<&str>| {
                    format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": finish}]}))
                };
                let mut sse = delta("partial ", None);
                if prompt.contains("NODONE") {
                    sse.push_str(&delta("", Some("stop")));
                } else if prompt.contains("NOFINISH") {
                    sse.push_str("data: [DONE]\n\n");
                } else if prompt.contains("ERROREVENT") {
                    sse.push_str(&format!("data: {error}\n\n"));
                }
                // `CUT`: nothing more; the body ends and the connection closes.
                axum::response::Response::builder().header("content-type", "text/event-stream").body(axum::body::Body::from(sse)).unwrap()
            } else if prompt.contains("ERROR200") {
                axum::Json(error).into_response()
            } else if prompt.contains("EMPTY") {
                axum::Json(json!({"id": "x", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}})).into_response()
            } else {
                axum::Json(json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}}]})).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn audit_status(gw: &Gateway, request_id: &str) -> Value {
    let event: String = gw
        .audit_db()
        .query_row(
            "SELECT event_json FROM audit_events WHERE request_id = ?1",
            [request_id],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str::<Value>(&event).unwrap()["status"].clone()
}

#[tokio::test]
async fn upstream_errors_and_cut_streams_are_model_errors_never_answers() {
    let base = bad_upstream().await;
    let config = search_feature_on(&base, "");
    let gw = Gateway::start(Some(&config), &[]);
    let token = gw.token("dev-1", "search");
    for mode in ["ERROR200", "EMPTY", "NOFINISH"] {
        let resp = chat(&gw, &token, json!({"messages": [{"role": "user", "content": format!("{mode} secret-prompt-words")}]})).await;
        assert_eq!(resp.status(), 502, "{mode}");
        let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let body = resp.text().await.unwrap();
        assert!(
            !body.contains("secret-prompt-words") && !body.contains("upstream echo"),
            "{mode}: {body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "model_error", "{mode}: {body}");
        assert_eq!(audit_status(&gw, &request_id), 502, "{mode}");
    }
    for mode in ["CUT", "NODONE", "NOFINISH", "ERROREVENT"] {
        let resp = chat(&gw, &token, json!({"stream": true, "messages": [{"role": "user", "content": format!("{mode} secret-prompt-words")}]})).await;
        let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let text = resp.text().await.unwrap();
        assert!(!text.contains("[DONE]"), "{mode}: {text}");
        assert!(
            !text.contains("\"finish_reason\":\"stop\""),
            "{mode}: {text}"
        );
        assert!(
            !text.contains("secret-prompt-words") && !text.contains("upstream echo"),
            "{mode}: {text}"
        );
        let last = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .next_back()
            .unwrap();
        let v: Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["error"]["code"], "model_error", "{mode}: {text}");
        assert_eq!(audit_status(&gw, &request_id), 502, "{mode}");
    }
}

/// Kill the gateway with SIGKILL in the middle of a load: every request it acknowledged has
/// its audit event and a vault record that still decrypts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_record() {
    let gw = Gateway::start(
        None,
        &[
            ("GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__BURST", "100000"),
            (
                "GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__REQUESTS_PER_MINUTE",
                "1000000",
            ),
        ],
    );
    let token = gw.token("load", "default");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let url = gw.url("/v1/chat/completions");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..16 {
        let (acked, url, token, stop) = (acked.clone(), url.clone(), token.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 5000 {
                i += 1;
                let body = json!({"stream": i % 3 == 0, "messages": [{"role": "user", "content": format!("worker {w} request {i} mail {EMAIL}")}]});
                let Ok(resp) = c.post(&url).bearer_auth(&token).json(&body).send().await else { break };
                if resp.status() != 200 {
                    continue;
                }
                let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
                let Ok(text) = resp.text().await else { continue };
                // A stream is acknowledged by its final [DONE]; a whole response by its body.
                if body["stream"] == json!(true) && !text.contains("data: [DONE]") {
                    continue;
                }
                acked.lock().unwrap().push(id);
            }
        }));
    }
    // Kill once the load is well under way: a fixed delay would mean nothing on a busy machine
    // (the other black-box tests run in parallel in this binary).
    let started = std::time::Instant::now();
    while acked.lock().unwrap().len() < 200
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (data_dir, config) = gw.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "too little load to mean anything: {}",
        acked.len()
    );
    let db = e2e::open_audit_db(data_dir.path());
    let mut missing = Vec::new();
    let mut keys = Vec::new();
    for id in &acked {
        let key: Result<Option<String>, _> = db.query_row(
            "SELECT vault_key FROM audit_events WHERE request_id = ?1",
            [id],
            |r| r.get(0),
        );
        match key {
            Ok(Some(k)) if data_dir.path().join("vault").join(&k).exists() => keys.push(id.clone()),
            _ => missing.push(id.clone()),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged requests lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    // Restart on the same data dir; records written before the kill still decrypt.
    let gw = Gateway::start_in(data_dir, config, &[]);
    for id in keys.iter().step_by((keys.len() / 5).max(1)) {
        let record = open_record(&gw, id);
        assert!(
            record["rawPrompt"][0]["content"]
                .as_str()
                .unwrap()
                .contains(EMAIL)
        );
    }
}

/// The README's OpenAI Python client example, run against a real gateway.
#[tokio::test]
async fn openai_python_client_works_unmodified() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let python = root.join(".venv-test/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh --test",
        python.display()
    );
    let gw = Gateway::start(None, &[]);
    let token = gw.token("python-user", "default");
    let out = tokio::process::Command::new(python)
        .arg(root.join("tests/python/openai_client.py"))
        .arg(gw.url("/v1"))
        .arg(&token)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `gateway config check` accepts the defaults and names the offending key of a bad file.
#[test]
fn config_check_names_unknown_keys_and_bad_references() {
    let dir = tempfile::tempdir().unwrap();
    let run = |file: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(e2e::binary("gateway"));
        cmd.args(["config", "check"])
            .env("GOLDEN_PATH_DATA_DIR", dir.path());
        if let Some(f) = file {
            cmd.arg("--config").arg(f);
        }
        cmd.output().unwrap()
    };
    let ok = run(None);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("feature default"));

    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "[server]\nlisten = \"127.0.0.1:9\"\nmax_body_byte = 10\n",
    )
    .unwrap();
    let out = run(Some(&typo));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_body_byte"), "{err}");

    let missing = run(Some(&dir.path().join("nope.toml")));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read config file"));
}
