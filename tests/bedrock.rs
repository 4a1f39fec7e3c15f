//! The Bedrock model provider end to end: the real `gateway serve` configured with a
//! `provider = "bedrock"` model whose endpoint is the wire-level Converse fake
//! (`e2e::bedrock_fake`), driven over HTTP like any OpenAI client. Checks the pinned model id,
//! the guardrail-redacted prompt the fake saw, the Converse request mapping, SigV4 signing with
//! the environment's credentials, reported usage, ConverseStream through the event-stream
//! framing and the output guard, and clear errors that leak no prompt text.
//!
//! And the Bedrock guardrail backend (`gateway::guard::bedrock`) over the wire: ApplyGuardrail
//! through `aws-sdk-bedrockruntime` with SigV4 against the gateway's own Bedrock-compatible
//! service, whose outcomes must equal the embedded engine's on the same texts, whole and
//! streamed. Then the registry on Bedrock (`gateway::guard::bedrock_registry`) against the same
//! service (create, update, versions, list, get, deletes refused while pinned), a gateway on
//! `backend = "aws"` (data backends on moto) applying the Bedrock version its feature pins,
//! its start-up check of pins, and `config check` on Bedrock guardrail ids.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fail loudly"
)]

use e2e::Gateway;
use e2e::bedrock_fake::BedrockFake;
use serde_json::{Value, json};

const MODEL_ID: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";
const EMAIL: &str = "jane.doe@example.com";
const ACCESS_KEY: &str = "AKIDGOLDENPATHTEST";

fn config(fake: &BedrockFake) -> String {
    format!(
        r#"
[features.assistant]
clients = ["assistant-app"]
models = ["claude"]
guardrail = "default"
guardrail_version = "1"
throttle = {{ requests_per_minute = 600, burst = 100, tokens_per_minute = 100000, tokens_per_day = 1000000 }}

[models.claude]
provider = "bedrock"
model_id = "{MODEL_ID}"
region = "us-east-1"
endpoint_url = "{}"
timeout_secs = 30
"#,
        fake.base
    )
}

/// The environment the SDK's default chain reads: static keys, no profile files, no IMDS.
const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
    ("AWS_SECRET_ACCESS_KEY", "golden-path-test-secret"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    ),
];

async fn chat(gw: &Gateway, token: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The `data:` payloads of an SSE body.
fn sse_events(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

fn streamed_text(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

fn audit_event(gw: &Gateway, request_id: &str) -> Value {
    let event: String = gw
        .audit_db()
        .query_row(
            "SELECT event_json FROM audit_events WHERE request_id = ?1",
            [request_id],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&event).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converse_gets_the_pinned_model_and_the_redacted_prompt() {
    let fake = BedrockFake::start().await;
    let gw = Gateway::start(Some(&config(&fake)), AWS_ENV);
    let token = gw.token("alice@example.com", "assistant");

    // The client names an id the feature does not allow: refused before Bedrock is called.
    let resp = chat(
        &gw,
        &token,
        json!({"model": "anthropic.claude-3-opus", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(fake.calls().is_empty());

    let prompt = format!("Reply to {EMAIL} about her order");
    let resp = chat(
        &gw,
        &token,
        json!({
            "model": "claude",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi, how can I help?"},
                {"role": "user", "content": prompt},
            ],
            "max_tokens": 64,
            "temperature": 0.25,
            "top_p": 0.5,
            "stop": ["END"],
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["x-guardrail-action"], "INTERVENED");
    let body: Value = resp.json().await.unwrap();
    let expected = BedrockFake::answer_for("Reply to {EMAIL} about her order");
    assert_eq!(body["choices"][0]["message"]["content"], expected.as_str());
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // Usage is what Bedrock reported (1000 + 3 turns), not an estimate.
    let words = expected.split_inclusive(' ').count() as u64;
    assert_eq!(body["usage"]["prompt_tokens"], 1003);
    assert_eq!(body["usage"]["completion_tokens"], words);

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        call.model_id, MODEL_ID,
        "Bedrock is called with the pinned id"
    );
    assert!(!call.stream);
    let sent = &call.body;
    assert!(!sent.to_string().contains(EMAIL), "{sent}");
    assert_eq!(sent["system"], json!([{"text": "Be brief."}]));
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"text": "Hello"}]},
            {"role": "assistant", "content": [{"text": "Hi, how can I help?"}]},
            {"role": "user", "content": [{"text": "Reply to {EMAIL} about her order"}]},
        ])
    );
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 64);
    assert_eq!(sent["inferenceConfig"]["temperature"], 0.25);
    assert_eq!(sent["inferenceConfig"]["topP"], 0.5);
    assert_eq!(sent["inferenceConfig"]["stopSequences"], json!(["END"]));
    let auth = call.authorization.as_deref().unwrap_or("");
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"))
            && auth.contains("/us-east-1/bedrock/aws4_request"),
        "SigV4 with the environment's credentials: {auth}"
    );

    let event = audit_event(&gw, &request_id);
    assert_eq!(event["model"], format!("bedrock:{MODEL_ID}"));
    assert_eq!(event["inputAction"], "ANONYMIZED");
    assert_eq!(event["inputTokens"], 1003);
    assert_eq!(event["outputTokens"], words);

    // max_tokens reached: Bedrock's max_tokens stop reason is OpenAI's "length".
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": "one two three four"}], "max_tokens": 2}),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["choices"][0]["message"]["content"], "bedrock fake ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converse_stream_flows_through_the_event_stream_and_the_output_guard() {
    let fake = BedrockFake::start().await;
    let gw = Gateway::start(Some(&config(&fake)), AWS_ENV);
    let token = gw.token("bob@example.com", "assistant");

    let prompt = format!("Stream a reply to {EMAIL} now");
    let resp = chat(
        &gw,
        &token,
        json!({
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": prompt}],
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    let expected = BedrockFake::answer_for("Stream a reply to {EMAIL} now");
    assert_eq!(streamed_text(&events), expected);
    let usage = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .find(|v| v["usage"].is_object())
        .unwrap();
    let words = expected.split_inclusive(' ').count() as u64;
    assert_eq!(usage["usage"]["prompt_tokens"], 1001);
    assert_eq!(usage["usage"]["completion_tokens"], words);

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].model_id, MODEL_ID);
    assert!(calls[0].stream, "ConverseStream was called");
    assert!(!calls[0].body.to_string().contains(EMAIL));
    assert!(
        calls[0]
            .body
            .to_string()
            .contains("Stream a reply to {EMAIL} now")
    );
    let event = audit_event(&gw, &request_id);
    assert_eq!(event["stream"], true);
    assert_eq!(event["outputTokens"], words);

    // The model streams an email address: the output guard anonymizes it, and no fragment of
    // it reaches the client.
    let resp = chat(
        &gw,
        &token,
        json!({"stream": true, "messages": [{"role": "user", "content": "LEAK_EMAIL please"}]}),
    )
    .await;
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    let events = sse_events(&text);
    let delivered = streamed_text(&events);
    assert!(!text.contains("ops.lead"), "{text}");
    assert_eq!(delivered, "bedrock fake leaks {EMAIL} today");
    assert_eq!(audit_event(&gw, &request_id)["outputAction"], "ANONYMIZED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_failures_are_clear_errors_without_prompt_text() {
    let fake = BedrockFake::start().await;
    let gw = Gateway::start(Some(&config(&fake)), AWS_ENV);
    let token = gw.token("carol@example.com", "assistant");

    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": "FAIL_THROTTLE secret-prompt-words"}]}),
    )
    .await;
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.unwrap();
    assert!(!body.contains("secret-prompt-words"), "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]["code"].is_string(), "{body}");

    // An exception event in the middle of ConverseStream ends the stream with an error event.
    let resp = chat(
        &gw,
        &token,
        json!({"stream": true, "messages": [{"role": "user", "content": "FAIL_MIDSTREAM secret-prompt-words"}]}),
    )
    .await;
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    assert!(!text.contains("data: [DONE]"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
    assert!(!text.contains("secret-prompt-words"), "{text}");
    assert_eq!(audit_event(&gw, &request_id)["status"], 502);

    // A ConverseStream that ends without `messageStop` was cut short: an error event, no
    // `[DONE]`, and the audit event says 502.
    let resp = chat(
        &gw,
        &token,
        json!({"stream": true, "messages": [{"role": "user", "content": "FAIL_NOSTOP secret-prompt-words"}]}),
    )
    .await;
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    assert!(!text.contains("data: [DONE]"), "{text}");
    assert!(!text.contains("\"finish_reason\":\"stop\""), "{text}");
    let last: Value = serde_json::from_str(sse_events(&text).last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "model_error", "{text}");
    assert_eq!(audit_event(&gw, &request_id)["status"], 502);

    // A conversation Bedrock cannot take (no user turn) is refused without calling it.
    let before = fake.calls().len();
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "system", "content": "only a system prompt"}]}),
    )
    .await;
    assert!(!resp.status().is_success());
    assert_eq!(fake.calls().len(), before);
}

/// A gateway whose one guardrail is stricter than the default (custom words, a custom regex,
/// the managed profanity list, PII with every action, a denied topic).
const GUARDRAILS_CONFIG: &str = r#"
[features.strict]
clients = ["strict-app"]
models = ["dev"]
guardrail = "strict"
guardrail_version = "1"
throttle = { requests_per_minute = 600, burst = 100, tokens_per_minute = 100000, tokens_per_day = 1000000 }

[guardrails.strict]
name = "strict"
blockedInputMessaging = "strict: request blocked"
blockedOutputsMessaging = "strict: answer withheld"
[guardrails.strict.wordPolicyConfig]
wordsConfig = [{ text = "project bluebird" }]
managedWordListsConfig = [{ type = "PROFANITY" }]
[guardrails.strict.sensitiveInformationPolicyConfig]
piiEntitiesConfig = [
  { type = "EMAIL", action = "ANONYMIZE" },
  { type = "PHONE", action = "ANONYMIZE" },
  { type = "US_SOCIAL_SECURITY_NUMBER", action = "BLOCK" },
  { type = "NAME", action = "NONE" },
]
regexesConfig = [{ name = "employee-id", pattern = "EMP-[0-9]{6}", action = "ANONYMIZE" }]
[[guardrails.strict.topicPolicyConfig.topicsConfig]]
name = "Investment advice"
definition = "Recommendations about which stocks, funds or other securities to buy or sell."
examples = ["Which stocks should I buy this year?", "Should I sell my index fund shares?"]
type = "DENY"
"#;

/// Texts with a known outcome on either guardrail: nothing, masks, blocks, detect-only.
const GUARD_TEXTS: &[&str] = &[
    "Nothing to see here, just a normal sentence.",
    "Please email jane.doe@example.com and call +1 (555) 123-4567 today.",
    "My access key is AKIAIOSFODNN7EXAMPLE, keep it safe.",
    "Employee EMP-123456 asked about project bluebird yesterday.",
    "Employee EMP-654321 asked for the holiday calendar.",
    "Which stocks should I buy this year?",
    "My SSN is 123-45-6789 for the form.",
    "Maria Garcia wrote to jane.doe@example.com about the invoice.",
];

fn issue_key(gw: &Gateway) -> (String, String) {
    let out = gw.cli(&["guard", "--issue-access-key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["accessKeyId"].as_str().unwrap().to_string(),
        v["secretAccessKey"].as_str().unwrap().to_string(),
    )
}

/// `aws-sdk-bedrockruntime` pointed at the gateway's own Bedrock-compatible service.
fn runtime_client(gw: &Gateway) -> aws_sdk_bedrockruntime::Client {
    use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region};
    let (key, secret) = issue_key(gw);
    let creds = aws_credential_types::Credentials::new(key, secret, None, None, "test");
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(&gw.base)
        .build();
    aws_sdk_bedrockruntime::Client::from_conf(config)
}

/// The embedded engine compiled from the same configuration the gateway loaded.
fn embedded(gw: &Gateway) -> gateway::guard::engine::EmbeddedGuardrails {
    let config = gateway::config::Config::load_from(gw.config.as_deref(), &[]).unwrap();
    gateway::guard::engine::EmbeddedGuardrails::new(&config.guardrails).unwrap()
}

fn gref(id: &str) -> gateway::guard::GuardrailRef {
    gateway::guard::GuardrailRef {
        id: id.into(),
        version: "1".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_guardrails_over_the_wire_equal_the_embedded_engine() {
    use gateway::guard::bedrock::BedrockGuardrails;
    use gateway::guard::{Guardrail, Source, TextAction};

    let mut actions = std::collections::BTreeSet::new();
    for (config, id) in [(None, "default"), (Some(GUARDRAILS_CONFIG), "strict")] {
        let gw = Gateway::start(config, &[]);
        let bedrock = BedrockGuardrails::new(runtime_client(&gw));
        let engine = embedded(&gw);
        for source in [Source::Input, Source::Output] {
            for text in GUARD_TEXTS {
                let over_wire = bedrock.apply(&gref(id), source, text).await.unwrap();
                let local = engine.apply_sync(&gref(id), source, text).unwrap();
                assert_eq!(over_wire, local, "{id} {source:?} {text:?}");
                actions.insert(format!("{:?}", local.action));
            }
        }
    }
    // The texts exercise every outcome, so equality is not vacuous.
    assert_eq!(actions.len(), 3, "{actions:?}");
    let gw = Gateway::start(Some(GUARDRAILS_CONFIG), &[]);
    let bedrock = BedrockGuardrails::new(runtime_client(&gw));
    let strict = bedrock
        .apply(&gref("strict"), Source::Input, GUARD_TEXTS[3])
        .await
        .unwrap();
    assert_eq!(strict.action, TextAction::Blocked);
    assert_eq!(strict.text, "strict: request blocked");
    assert!(
        strict
            .policies
            .contains(&"word:project bluebird".to_string())
    );
    assert!(strict.policies.contains(&"regex:employee-id".to_string()));

    // An unknown guardrail or version is NotFound, not a backend failure.
    let missing = bedrock
        .apply(&gref("nosuchguardrail1"), Source::Input, "hi")
        .await;
    assert!(
        matches!(missing, Err(gateway::guard::GuardError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_stream_guard_releases_what_the_engine_releases() {
    use gateway::guard::bedrock::BedrockGuardrails;
    use gateway::guard::{Guardrail, Source, StreamStep, TextAction};

    let gw = Gateway::start(Some(GUARDRAILS_CONFIG), &[]);
    let bedrock = BedrockGuardrails::new(runtime_client(&gw));
    let engine = embedded(&gw);

    // A multi-sentence answer with masks in several sentences, streamed word by word.
    let answer = format!(
        "{} Please email jane.doe@example.com today. Employee EMP-123456 is on leave. {} \
         Call +1 (555) 123-4567 if needed. Thanks.",
        "This sentence only pads the answer so that releases happen mid-stream.".repeat(3),
        "Another padding sentence keeps the stream going for a while longer.".repeat(3),
    );
    let mut guard = bedrock.stream(&gref("strict")).await.unwrap();
    let mut released = String::new();
    let mut releases_before_end = 0;
    for word in answer.split_inclusive(' ') {
        match guard.push(word).await.unwrap() {
            StreamStep::Release(t) => {
                if !t.is_empty() {
                    releases_before_end += 1;
                }
                // Never a fragment of a value the guardrail masks.
                assert!(!t.contains("jane") && !t.contains("EMP-") && !t.contains("555"));
                released.push_str(&t);
            }
            StreamStep::Blocked(m) => panic!("unexpected block: {m}"),
        }
    }
    match guard.finish().await.unwrap() {
        StreamStep::Release(t) => released.push_str(&t),
        StreamStep::Blocked(m) => panic!("unexpected block: {m}"),
    }
    let whole = engine
        .apply_sync(&gref("strict"), Source::Output, &answer)
        .unwrap();
    assert_eq!(released, whole.text);
    assert!(
        releases_before_end >= 2,
        "released mid-stream, not only at the end"
    );
    let (action, policies) = guard.outcome();
    assert_eq!(action, TextAction::Anonymized);
    assert_eq!(policies, whole.policies);

    // A blocked value ends the stream with the blocked message, and it stays ended.
    let mut guard = bedrock.stream(&gref("strict")).await.unwrap();
    let mut blocked = None;
    for word in "Sure. The plan for project bluebird is ready to share now.".split_inclusive(' ') {
        if let StreamStep::Blocked(m) = guard.push(word).await.unwrap() {
            blocked = Some(m);
            break;
        }
    }
    let blocked = match blocked {
        Some(m) => m,
        None => match guard.finish().await.unwrap() {
            StreamStep::Blocked(m) => m,
            StreamStep::Release(t) => panic!("released {t:?}"),
        },
    };
    assert_eq!(blocked, "strict: answer withheld");
    assert_eq!(
        guard.push("more").await.unwrap(),
        StreamStep::Blocked(blocked)
    );
    assert_eq!(guard.outcome().0, TextAction::Blocked);
}

// ---------------------------------------------------------------------------------------------
// The guardrail registry on Bedrock (`gateway::guard::bedrock_registry`) over the wire, and a
// gateway on `backend = "aws"` guarding with the Bedrock version its feature pins.

/// `aws-sdk-bedrock` pointed at the gateway's own Bedrock-compatible service, with `key`.
fn control_client(gw: &Gateway, (key, secret): &(String, String)) -> aws_sdk_bedrock::Client {
    use aws_sdk_bedrock::config::{BehaviorVersion, Region};
    let creds = aws_credential_types::Credentials::new(key, secret, None, None, "test");
    let config = aws_sdk_bedrock::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(&gw.base)
        .build();
    aws_sdk_bedrock::Client::from_conf(config)
}

/// The strict guardrail of [`GUARDRAILS_CONFIG`] under another name.
fn strict_policy(name: &str) -> gateway::guard::policy::GuardrailPolicy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strict.toml");
    std::fs::write(&path, GUARDRAILS_CONFIG).unwrap();
    let config = gateway::config::Config::load_from(Some(&path), &[]).unwrap();
    let mut p = config.guardrails["strict"].clone();
    p.name = name.into();
    p.description = Some("created through BedrockRegistry".into());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_registry_drives_the_bedrock_compatible_service() {
    use gateway::guard::bedrock_registry::BedrockRegistry;
    use gateway::guard::registry::RegistryError;
    use gateway::guard::registry_api::GuardrailRegistry;

    let gw = Gateway::start(None, &[]);
    let registry = BedrockRegistry::new(control_client(&gw, &issue_key(&gw)));
    assert_eq!(registry.kind(), "bedrock");

    // Create: every part of the policy survives the trip through Bedrock's request and
    // response shapes (GetGuardrail's names differ from CreateGuardrail's).
    let policy = strict_policy("wire-strict");
    let created = registry.create(&policy).await.unwrap();
    assert_eq!(created.version, "DRAFT");
    assert!(created.arn.ends_with(&format!(":guardrail/{}", created.id)));
    assert_eq!(
        Value::Object(created.policy.to_get()),
        Value::Object(policy.to_get())
    );
    let id = created.id.clone();

    // Version 1, then an update of the DRAFT, then version 2: version 1 is unchanged.
    assert_eq!(
        registry.create_version(&id, Some("first")).await.unwrap(),
        "1"
    );
    let mut changed = policy.clone();
    changed.blocked_input_messaging = "strict v2: request blocked".into();
    let updated = registry.update(&id, &changed).await.unwrap();
    assert_eq!(
        updated.policy.blocked_input_messaging,
        "strict v2: request blocked"
    );
    assert_eq!(registry.create_version(&id, None).await.unwrap(), "2");
    assert_eq!(registry.versions(&id).await.unwrap(), ["1", "2"]);
    let v1 = registry.get(&id, Some(1)).await.unwrap();
    assert_eq!(v1.version, "1");
    assert_eq!(v1.policy.blocked_input_messaging, "strict: request blocked");
    assert_eq!(v1.policy.description.as_deref(), Some("first"));
    assert_eq!(
        registry
            .get(&id, Some(2))
            .await
            .unwrap()
            .policy
            .blocked_input_messaging,
        "strict v2: request blocked"
    );

    // List: the configured default and the new one, by name.
    let list = registry.list().await.unwrap();
    let names: Vec<&str> = list.iter().map(|g| g.name.as_str()).collect();
    assert!(
        names.contains(&"default") && names.contains(&"wire-strict"),
        "{names:?}"
    );

    // Errors keep their kind over the wire.
    let mut bad = policy.clone();
    bad.name = "bad name!".into();
    assert!(matches!(
        registry.create(&bad).await,
        Err(RegistryError::Validation(_))
    ));
    assert!(matches!(
        registry.create(&policy).await,
        Err(RegistryError::Conflict(_))
    ));
    assert!(matches!(
        registry.get(&id, Some(9)).await,
        Err(RegistryError::NotFound(_))
    ));

    // The configured feature pins default:1: the service refuses to delete it or its
    // guardrail; the pin rule also refuses what a caller's own pins name, before any call.
    for version in [Some(1), None] {
        let refused = registry.delete("default", version).await;
        assert!(
            matches!(&refused, Err(RegistryError::InUse(m)) if m.contains("pinned")),
            "{refused:?}"
        );
    }
    let pins = vec![(id.clone(), "2".to_string())];
    assert!(matches!(
        registry.delete_unpinned(&id, None, &pins).await,
        Err(RegistryError::InUse(_))
    ));
    registry.delete_unpinned(&id, Some(1), &pins).await.unwrap();
    assert_eq!(registry.versions(&id).await.unwrap(), ["2"]);
    registry.delete_unpinned(&id, None, &[]).await.unwrap();
    assert!(matches!(
        registry.get(&id, None).await,
        Err(RegistryError::NotFound(_))
    ));
}

/// A KMS key, a bucket and a throttle table in the shared moto server.
async fn moto_resources() -> (String, String, String) {
    let creds = aws_credential_types::Credentials::new(
        e2e::moto::ACCESS_KEY_ID,
        e2e::moto::SECRET_ACCESS_KEY,
        None,
        None,
        "moto",
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(e2e::moto::REGION))
        .endpoint_url(e2e::moto::endpoint())
        .credentials_provider(creds)
        .load()
        .await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().arn().unwrap().to_string();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = e2e::moto::unique("guard-vault");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let table =
        crate::aws::throttle_table(&aws_sdk_dynamodb::Client::new(&sdk), "guard-throttle").await;
    (key, bucket, table)
}

fn aws_gateway_config(bedrock: &Gateway, guardrail: &str, version: &str) -> String {
    format!(
        r#"
backend = "aws"

[aws]
region = "{region}"
endpoint_url = "{moto}"
vault_bucket = "{{bucket}}"
kms_key_id = "{{key}}"
log_group = "{group}"
throttle_table = "{{table}}"
check_bucket = false

[aws.endpoints]
bedrock = "{bedrock}"

[features.pinned]
clients = ["pinned-app"]
models = ["dev"]
guardrail = "{guardrail}"
guardrail_version = "{version}"
throttle = {{ requests_per_minute = 600, burst = 100, tokens_per_minute = 100000, tokens_per_day = 1000000 }}

[models.dev]
provider = "development"
"#,
        region = e2e::moto::REGION,
        moto = e2e::moto::endpoint(),
        group = e2e::moto::unique("/golden-path/guard"),
        bedrock = bedrock.base,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_aws_applies_the_bedrock_version_its_feature_pins() {
    use gateway::guard::bedrock_registry::BedrockRegistry;
    use gateway::guard::registry_api::GuardrailRegistry;

    // The Bedrock side: the project's own Bedrock-compatible service.
    let bedrock = Gateway::start(None, &[]);
    let key = issue_key(&bedrock);
    let registry = BedrockRegistry::new(control_client(&bedrock, &key));
    let mut policy = strict_policy("aws-pinned");
    policy.blocked_input_messaging = "pinned v1: request blocked".into();
    let id = registry.create(&policy).await.unwrap().id;
    assert_eq!(registry.create_version(&id, None).await.unwrap(), "1");
    // The DRAFT moves on (no custom words, another message): the pin, not the DRAFT, applies.
    policy.word_policy_config = None;
    policy.blocked_input_messaging = "draft: request blocked".into();
    registry.update(&id, &policy).await.unwrap();

    let (kms_key, bucket, table) = moto_resources().await;
    let config = aws_gateway_config(&bedrock, &id, "1")
        .replace("{bucket}", &bucket)
        .replace("{key}", &kms_key)
        .replace("{table}", &table);
    // One credential pair for both peers: moto takes any, the Bedrock service its own key.
    let env = [
        ("AWS_ACCESS_KEY_ID", key.0.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key.1.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
    ];
    let gw = Gateway::start(Some(&config), &env);
    let token = gw.token("alice@example.com", "pinned");
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": "What is the plan for project bluebird?"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-guardrail-action"], "INTERVENED");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "pinned v1: request blocked"
    );
    let resp = chat(
        &gw,
        &token,
        json!({"messages": [{"role": "user", "content": "Mail jane.doe@example.com the agenda"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!answer.contains("jane.doe"), "{answer}");

    // The gateway's own Bedrock-compatible routes stay silent: its guardrails are Bedrock's.
    let own = reqwest::get(gw.url("/guardrails")).await.unwrap();
    assert_eq!(own.status(), 404);

    // Start-up refuses a pin Bedrock does not have, naming it.
    let missing = aws_gateway_config(&bedrock, &id, "7")
        .replace("{bucket}", &bucket)
        .replace("{key}", &kms_key)
        .replace("{table}", &table);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, missing).unwrap();
    let out = std::process::Command::new(e2e::binary("gateway"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("GOLDEN_PATH_DATA_DIR", dir.path())
        .env("GOLDEN_PATH_SERVER__LISTEN", "127.0.0.1:0")
        .envs(env)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("guardrail {id} version 7")) && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn config_check_names_guardrail_pins_that_are_not_bedrock_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let base = "backend = \"aws\"\n[aws]\nregion = \"us-east-1\"\nvault_bucket = \"b\"\n\
                kms_key_id = \"k\"\nlog_group = \"/g\"\nthrottle_table = \"t\"\n\
                [features.f]\nclients = [\"c\"]\nmodels = [\"dev\"]\n\
                throttle = { requests_per_minute = 1, burst = 1, tokens_per_minute = 1, tokens_per_day = 1 }\n";
    let check = |pin: &str| {
        std::fs::write(&path, format!("{base}{pin}")).unwrap();
        let out = std::process::Command::new(e2e::binary("gateway"))
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, err) = check("guardrail = \"gr1abc\"\nguardrail_version = \"3\"\n");
    assert!(ok, "{err}");
    let (ok, err) = check("guardrail = \"My_Guardrail\"\nguardrail_version = \"3\"\n");
    assert!(
        !ok && err.contains("\"My_Guardrail\" is not a Bedrock guardrail id"),
        "{err}"
    );
    let (ok, err) = check("guardrail = \"gr1abc\"\nguardrail_version = \"v3\"\n");
    assert!(
        !ok && err.contains("is not a Bedrock guardrail version"),
        "{err}"
    );
}
