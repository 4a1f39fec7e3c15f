//! The AWS data backends over the wire against moto (`e2e::moto`): the vault on S3 + KMS
//! (round trip, encryption-context binding, the KEK cache's bound on KMS calls, the bucket
//! check), audit events on CloudWatch Logs, DynamoDB throttle counters shared by two
//! instances, and the `gateway` binary serving a chat completion on `backend = "aws"`.
//!
//! Every test makes its own bucket, key, log group and table in the one shared moto server.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fail loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use e2e::moto;
use gateway::audit::{AccessEvent, AuditEvent, AuditStore};
use gateway::aws::cloudwatch::CloudWatchAudit;
use gateway::aws::kms::{CacheLimits, CountingKms, KmsKeys, SdkKms};
use gateway::aws::s3::{S3Store, check_bucket};
use gateway::aws::{Clients, StaticCredentials};
use gateway::config::{AwsConfig, Secret, ThrottleLimits};
use gateway::throttle::Throttle;
use gateway::throttle::dynamo::DynamoThrottle;
use gateway::vault::{EncryptionContext, KeyProvider, Vault, VaultError, VaultRecord};
use serde_json::json;

const SECRET_PROMPT: &str = "my card is 4111 1111 1111 1111";

fn aws_config(bucket: &str, key: &str, group: &str, table: &str) -> AwsConfig {
    AwsConfig {
        region: moto::REGION.into(),
        endpoint_url: Some(moto::endpoint().to_string()),
        vault_bucket: bucket.into(),
        kms_key_id: key.into(),
        log_group: group.into(),
        log_stream: "gateway".into(),
        audit_sink: "cloudwatch".into(),
        throttle_table: table.into(),
        check_bucket: true,
        kek_max_age_secs: 300,
        kek_max_uses: 10_000,
        prompt_hash_key_id: None,
        endpoints: Default::default(),
        guardrails: gateway::config::GuardrailsBackend::Embedded,
    }
}

fn credentials() -> StaticCredentials {
    StaticCredentials {
        access_key_id: moto::ACCESS_KEY_ID.into(),
        secret_access_key: Secret::new(moto::SECRET_ACCESS_KEY),
    }
}

async fn clients() -> Clients {
    let cfg = aws_config("unused", "unused", "unused", "unused");
    let sdk = gateway::aws::sdk_config(&cfg, Some(&credentials())).await;
    Clients::new(&sdk, &cfg)
}

async fn new_key(c: &Clients) -> String {
    let out = c.kms.create_key().send().await.unwrap();
    out.key_metadata().unwrap().arn().unwrap().to_string()
}

async fn new_bucket(c: &Clients) -> String {
    let bucket = moto::unique("vault");
    c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    bucket
}

/// What the deployment template sets up: public access blocked, SSE-KMS by default, and
/// `prompts/` expiring after 90 days.
async fn harden_bucket(c: &Clients, bucket: &str, key: &str) {
    c.s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    c.s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .kms_master_key_id(key)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("expire-prompts")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("prompts/").build())
                        .expiration(LifecycleExpiration::builder().days(90).build())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

fn record(request_id: &str, feature: &str) -> VaultRecord {
    VaultRecord {
        request_id: request_id.into(),
        timestamp: gateway::now_ms(),
        user_sub: "alice@example.com".into(),
        feature: feature.into(),
        model: "m".into(),
        model_alias: "dev".into(),
        raw_prompt: json!([{"role": "user", "content": SECRET_PROMPT}]),
        model_input: json!([{"role": "user", "content": "my card is {CREDIT_DEBIT_CARD_NUMBER}"}]),
        raw_output: "ok".into(),
        delivered_output: "ok".into(),
        input_action: "ANONYMIZED".into(),
        output_action: "NONE".into(),
        policies: vec!["pii:CREDIT_DEBIT_CARD_NUMBER".into()],
    }
}

fn limits(max_uses: u64) -> CacheLimits {
    CacheLimits {
        max_age: Duration::from_secs(300),
        max_uses,
    }
}

fn vault(c: &Clients, kms: Arc<CountingKms<SdkKms>>, key: &str, bucket: &str) -> Vault {
    Vault {
        keys: Arc::new(KmsKeys::new(kms, key, limits(20))),
        objects: Arc::new(S3Store::new(c.s3.clone(), bucket, key)),
        retention_days: 90,
    }
}

#[tokio::test]
async fn a_vault_record_round_trips_through_s3_and_kms_and_is_write_once() {
    let c = clients().await;
    let key = new_key(&c).await;
    let bucket = new_bucket(&c).await;
    let kms = Arc::new(CountingKms::new(SdkKms(c.kms.clone())));
    let v = vault(&c, kms.clone(), &key, &bucket);

    let r = record("req-roundtrip", "search");
    let object_key = v.put(&r).await.unwrap();
    assert!(object_key.starts_with("prompts/") && object_key.ends_with("/req-roundtrip"));
    assert_eq!(v.open(&object_key).await.unwrap(), r);

    // Stored with SSE-KMS under the vault's key, and sealed: no plaintext in the object.
    let head =
        c.s3.head_object()
            .bucket(&bucket)
            .key(&object_key)
            .send()
            .await
            .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    let stored =
        c.s3.get_object()
            .bucket(&bucket)
            .key(&object_key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .to_vec();
    let text = String::from_utf8(stored.clone()).unwrap();
    assert!(!text.contains("4111"), "plaintext leaked into the object");
    assert!(text.contains(&format!("\"keyId\":\"kms:{key}\"")), "{text}");

    // Write-once: a second put of the same key leaves the first object as it was.
    let mut other = r.clone();
    other.delivered_output = "overwritten".into();
    v.put(&other).await.unwrap();
    let again =
        c.s3.get_object()
            .bucket(&bucket)
            .key(&object_key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .to_vec();
    assert_eq!(again, stored);
    assert_eq!(v.open(&object_key).await.unwrap(), r);
}

#[tokio::test]
async fn the_wrong_encryption_context_does_not_decrypt() {
    let c = clients().await;
    let key = new_key(&c).await;
    let kms = Arc::new(CountingKms::new(SdkKms(c.kms.clone())));
    let sealer = KmsKeys::new(kms.clone(), &key, limits(100));
    let context = EncryptionContext {
        request_id: "req-1".into(),
        user_sub: "alice".into(),
        feature: "search".into(),
    };
    let data_key = sealer.generate_data_key(&context).await.unwrap();

    // A fresh provider (nothing cached): every path goes to KMS.
    let opener = KmsKeys::new(kms.clone(), &key, limits(100));
    let good = opener
        .decrypt_data_key(&data_key.wrapped, &data_key.key_id, &context)
        .await
        .unwrap();
    assert_eq!(*good, *data_key.plaintext);

    for (what, wrong) in [
        (
            "requestId",
            EncryptionContext {
                request_id: "req-2".into(),
                ..context.clone()
            },
        ),
        (
            "userSub",
            EncryptionContext {
                user_sub: "mallory".into(),
                ..context.clone()
            },
        ),
        (
            "feature",
            EncryptionContext {
                feature: "billing".into(),
                ..context.clone()
            },
        ),
    ] {
        let result = KmsKeys::new(kms.clone(), &key, limits(100))
            .decrypt_data_key(&data_key.wrapped, &data_key.key_id, &wrong)
            .await;
        assert!(
            matches!(result, Err(VaultError::Decrypt)),
            "{what}: {:?}",
            result.map(|_| ())
        );
    }
    // The feature is in KMS's own encryption context: that refusal came from KMS.
    assert_eq!(kms.decrypt_calls(), 4);

    // The same through the whole vault: a record whose stored context was edited is refused.
    let bucket = new_bucket(&c).await;
    let v = vault(&c, kms.clone(), &key, &bucket);
    let r = record("req-tampered", "search");
    let object_key = v.put(&r).await.unwrap();
    let mut envelope: serde_json::Value = serde_json::from_slice(
        &c.s3
            .get_object()
            .bucket(&bucket)
            .key(&object_key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    envelope["encryptionContext"]["userSub"] = json!("mallory");
    c.s3.put_object()
        .bucket(&bucket)
        .key(&object_key)
        .body(serde_json::to_vec(&envelope).unwrap().into())
        .send()
        .await
        .unwrap();
    assert!(matches!(
        v.open(&object_key).await,
        Err(VaultError::Decrypt)
    ));
}

#[tokio::test]
async fn the_key_cache_bounds_kms_calls_by_uses() {
    let c = clients().await;
    let key = new_key(&c).await;
    let bucket = new_bucket(&c).await;
    let kms = Arc::new(CountingKms::new(SdkKms(c.kms.clone())));
    // At most 20 records per KEK.
    let v = vault(&c, kms.clone(), &key, &bucket);
    let mut keys = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..50 {
        keys.push(
            v.put(&record(&format!("req-cache-{i}"), "search"))
                .await
                .unwrap(),
        );
    }
    eprintln!(
        "vault: 50 sequential records sealed and stored in {:?}, {} KMS GenerateDataKey calls",
        started.elapsed(),
        kms.generate_calls()
    );
    assert_eq!(kms.generate_calls(), 3, "50 records at 20 per KEK");
    assert_eq!(kms.decrypt_calls(), 0);
    // Another feature has its own KEK.
    v.put(&record("req-cache-other", "billing")).await.unwrap();
    assert_eq!(kms.generate_calls(), 4);

    // Opening all 50 from a fresh vault unwraps each of the 3 KEKs once.
    let opener = vault(&c, kms.clone(), &key, &bucket);
    for k in &keys {
        opener.open(k).await.unwrap();
    }
    assert_eq!(kms.decrypt_calls(), 3);

    // Without a cache (one use per KEK) KMS is called per record.
    let uncached = Vault {
        keys: Arc::new(KmsKeys::new(kms.clone(), &key, limits(1))),
        objects: Arc::new(S3Store::new(c.s3.clone(), &bucket, &key)),
        retention_days: 90,
    };
    let started = std::time::Instant::now();
    for i in 0..5 {
        uncached
            .put(&record(&format!("req-nocache-{i}"), "search"))
            .await
            .unwrap();
    }
    eprintln!(
        "vault: 5 records without the cache in {:?}",
        started.elapsed()
    );
    assert_eq!(kms.generate_calls(), 9);
}

#[tokio::test]
async fn the_bucket_check_names_what_is_missing_and_passes_when_hardened() {
    let c = clients().await;
    let key = new_key(&c).await;
    let bucket = new_bucket(&c).await;
    let err = check_bucket(&c.s3, &bucket, 90)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&bucket), "{err}");
    assert!(err.contains("no public access block"), "{err}");
    assert!(err.contains("no default encryption"), "{err}");
    assert!(err.contains("lifecycle"), "{err}");

    harden_bucket(&c, &bucket, &key).await;
    check_bucket(&c.s3, &bucket, 90).await.unwrap();
    // A retention shorter than the bucket's expiry is not enforced by the bucket.
    let err = check_bucket(&c.s3, &bucket, 30)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("within 30 days"), "{err}");
    assert!(!err.contains("public access"), "{err}");
}

fn audit_event(request_id: &str, timestamp: i64, intervened: bool) -> AuditEvent {
    AuditEvent {
        timestamp,
        request_id: request_id.into(),
        user_sub: "alice@example.com".into(),
        feature: "search".into(),
        model: "m".into(),
        model_alias: "dev".into(),
        prompt_hash: "hmac-sha256:00".into(),
        guardrail_action: if intervened { "INTERVENED" } else { "NONE" }.into(),
        input_action: "NONE".into(),
        output_action: "NONE".into(),
        status: 200,
        ..AuditEvent::default()
    }
}

#[tokio::test]
async fn audit_events_are_batched_into_cloudwatch_logs_in_order() {
    let c = clients().await;
    let group = moto::unique("/golden-path/audit");
    let store = Arc::new(
        CloudWatchAudit::put_log_events(c.logs.clone(), &group, "gateway")
            .await
            .unwrap(),
    );
    // 300 concurrent requests, out of timestamp order, acknowledged only once written.
    let base = gateway::now_ms() - 60_000;
    let ids: Arc<Vec<String>> =
        Arc::new((0..300).map(|_| uuid::Uuid::now_v7().to_string()).collect());
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..300i64 {
        let store = store.clone();
        let ids = ids.clone();
        let ts = base + (i * 7919) % 300 * 100;
        tasks.push(tokio::spawn(async move {
            store
                .record(&audit_event(&ids[i as usize], ts, i % 3 == 0))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    eprintln!(
        "cloudwatch: 300 concurrent audit events acknowledged in {:?}",
        started.elapsed()
    );

    let mut messages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .logs
            .get_log_events()
            .log_group_name(&group)
            .log_stream_name("gateway")
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        if page.events().is_empty() {
            break;
        }
        messages.extend(
            page.events()
                .iter()
                .map(|e| (e.timestamp().unwrap(), e.message().unwrap().to_string())),
        );
        token = page.next_forward_token().map(str::to_string);
    }
    assert_eq!(messages.len(), 300);
    let events: Vec<AuditEvent> = messages
        .iter()
        .map(|(_, m)| serde_json::from_str(m).unwrap())
        .collect();
    for (i, ((ts, _), e)) in messages.iter().zip(&events).enumerate() {
        assert_eq!(*ts, e.timestamp, "event {i}");
    }
    let mut seen: Vec<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 300);

    let found = store.find(&ids[42]).await.unwrap().unwrap();
    assert_eq!(
        found,
        events
            .iter()
            .find(|e| e.request_id == ids[42])
            .unwrap()
            .clone()
    );
    assert!(
        store
            .find(&uuid::Uuid::now_v7().to_string())
            .await
            .unwrap()
            .is_none()
    );

    let access = AccessEvent {
        timestamp: gateway::now_ms(),
        actor: "soc-tester".into(),
        request_id: ids[42].clone(),
        vault_key: format!("prompts/x/{}", ids[42]),
        reason: "ticket SEC-1".into(),
        origin: "cli".into(),
    };
    store.record_access(&access).await.unwrap();
    assert_eq!(store.accesses(&ids[42]).await.unwrap(), vec![access]);
    assert!(store.accesses(&ids[41]).await.unwrap().is_empty());

    let minutes = store
        .requests_per_minute(base - 60_000, base + 120_000)
        .await
        .unwrap();
    assert_eq!(minutes.iter().map(|m| m.requests).sum::<u64>(), 300);
    assert_eq!(minutes.iter().map(|m| m.interventions).sum::<u64>(), 100);
    store.flush().await;
}

async fn new_table(c: &Clients) -> String {
    throttle_table(&c.dynamodb, "throttle").await
}

/// A table shaped like the throttle table (string partition key `pk`), on moto; its name.
pub(crate) async fn throttle_table(dynamodb: &aws_sdk_dynamodb::Client, prefix: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let table = moto::unique(prefix);
    dynamodb
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    table
}

#[tokio::test]
async fn throttle_limits_hold_across_two_instances_sharing_a_table() {
    let c = clients().await;
    let table = new_table(&c).await;
    let a = Arc::new(DynamoThrottle::new(c.dynamodb.clone(), &table));
    let b = Arc::new(DynamoThrottle::new(c.dynamodb.clone(), &table));
    a.check().await.unwrap();
    let limits = ThrottleLimits {
        requests_per_minute: 1,
        burst: 5,
        tokens_per_minute: 1_000,
        tokens_per_day: 1_500,
    };
    // A fixed instant an hour into a UTC day (the table is this test's own).
    let now = 20_000 * 86_400_000 + 3_600_000;
    // 24 concurrent admissions, half on each instance, against a burst of 5.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let t = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            t.admit("search", &limits, 10, now).await
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(d) => {
                assert_eq!(d.limit, "requests_per_minute");
                assert!(d.retry_after_secs >= 1);
            }
        }
    }
    assert_eq!(admitted, 5, "the burst is shared, not per instance");
    // Another feature has its own bucket.
    a.admit("billing", &limits, 10, now).await.unwrap();

    // Tokens charged on one instance count on the other.
    let later = now + 5 * 60_000;
    a.charge("search", 1_200, later).await;
    assert_eq!(b.usage("search", later).await, (1_200, 1_200));
    let denied = b
        .admit("search", &limits, 10, later + 1_000)
        .await
        .unwrap_err();
    assert_eq!(denied.limit, "tokens_per_minute");
    // Two minutes on, the minute window is clear but the day is nearly spent.
    b.charge("search", 200, later + 1_000).await;
    let denied = a
        .admit("search", &limits, 200, later + 3 * 60_000)
        .await
        .unwrap_err();
    assert_eq!(denied.limit, "tokens_per_day");
}

/// Every message in one log stream, oldest first.
async fn log_messages(c: &Clients, group: &str, stream: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        if page.events().is_empty() {
            return out;
        }
        out.extend(
            page.events()
                .iter()
                .map(|e| e.message().unwrap().to_string()),
        );
        token = page.next_forward_token().map(str::to_string);
    }
}

#[tokio::test]
async fn the_gateway_serves_a_chat_completion_on_the_aws_backends() {
    let c = clients().await;
    let key = new_key(&c).await;
    let bucket = new_bucket(&c).await;
    harden_bucket(&c, &bucket, &key).await;
    let table = new_table(&c).await;
    let group = moto::unique("/golden-path/gateway");
    let config = format!(
        r#"
backend = "aws"

[aws]
region = "{region}"
endpoint_url = "{endpoint}"
vault_bucket = "{bucket}"
kms_key_id = "{key}"
log_group = "{group}"
throttle_table = "{table}"
guardrails = "embedded"
"#,
        region = moto::REGION,
        endpoint = moto::endpoint(),
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let gw = e2e::Gateway::start(Some(&config), &env);
    let token = gw.token("alice@example.com", "default");
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&json!({"messages": [{"role": "user", "content": "Reply to jane.doe@example.com please"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["choices"][0]["message"]["content"].is_string(),
        "{body}"
    );

    // The audit event is in CloudWatch Logs, without the prompt.
    let messages = log_messages(&c, &group, "gateway").await;
    let line = messages
        .iter()
        .find(|m| m.contains(&request_id))
        .unwrap_or_else(|| panic!("no audit event for {request_id} in {messages:?}"));
    assert!(!line.contains("jane.doe"), "{line}");
    let event: AuditEvent = serde_json::from_str(line).unwrap();
    assert_eq!(event.user_sub, "alice@example.com");
    assert_eq!(event.status, 200);
    let vault_key = event.vault_key.clone().unwrap();
    assert!(vault_key.ends_with(&request_id));

    // The vault record is in S3 under SSE-KMS and decrypts with KMS to the raw prompt.
    let head =
        c.s3.head_object()
            .bucket(&bucket)
            .key(&vault_key)
            .send()
            .await
            .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    let kms = Arc::new(CountingKms::new(SdkKms(c.kms.clone())));
    let record = vault(&c, kms, &key, &bucket)
        .open(&vault_key)
        .await
        .unwrap();
    assert_eq!(record.request_id, request_id);
    assert!(
        record
            .raw_prompt
            .to_string()
            .contains("jane.doe@example.com")
    );
    assert!(
        !record
            .model_input
            .to_string()
            .contains("jane.doe@example.com")
    );

    // The SOC's `vault open` works on the same backends, and is itself recorded.
    let out = gw.cli(&[
        "vault",
        "open",
        &request_id,
        "--reason",
        "ticket SEC-9 aws e2e",
        "--actor",
        "soc-tester",
    ]);
    assert!(
        out.status.success(),
        "vault open: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("jane.doe@example.com"));
    let access = log_messages(&c, &group, "gateway-access").await;
    assert!(
        access
            .iter()
            .any(|m| m.contains(&request_id) && m.contains("ticket SEC-9 aws e2e")),
        "{access:?}"
    );
}

#[tokio::test]
async fn the_gateway_refuses_to_start_on_an_unhardened_bucket() {
    let c = clients().await;
    let key = new_key(&c).await;
    let bucket = new_bucket(&c).await;
    let table = new_table(&c).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "backend = \"aws\"\n[aws]\nregion = \"{}\"\nendpoint_url = \"{}\"\nvault_bucket = \"{bucket}\"\n\
             kms_key_id = \"{key}\"\nlog_group = \"g\"\nthrottle_table = \"{table}\"\nguardrails = \"embedded\"\n",
            moto::REGION,
            moto::endpoint()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(e2e::binary("gateway"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("GOLDEN_PATH_DATA_DIR", dir.path())
        .env("GOLDEN_PATH_SERVER__LISTEN", "127.0.0.1:0")
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not safe to store prompts") && err.contains("no public access block"),
        "{err}"
    );

    // `config check` validates [aws] without contacting AWS.
    std::fs::write(&path, "backend = \"aws\"\n").unwrap();
    let out = std::process::Command::new(e2e::binary("gateway"))
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs an [aws] section"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn records_spool_locally_while_aws_fails_and_replay_in_order() {
    use gateway::aws::spool::Spool;
    use gateway::vault::ObjectStore;

    let c = clients().await;
    let key = new_key(&c).await;
    // A bucket that does not exist yet, and a log group deleted after start-up: both fail.
    let bucket = moto::unique("spooled");
    let group = moto::unique("/golden-path/spool");
    let cw = CloudWatchAudit::put_log_events(c.logs.clone(), &group, "gateway")
        .await
        .unwrap();
    c.logs
        .delete_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let spool = Spool::open(
        data.path(),
        Arc::new(S3Store::new(c.s3.clone(), &bucket, &key)),
        Arc::new(cw),
    )
    .unwrap();
    let objects = spool.objects();
    let audit = spool.audit();

    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for (i, id) in ids.iter().enumerate() {
        objects
            .put(
                &format!("prompts/2026/01/01/00/{id}"),
                format!("sealed-{i}").into_bytes(),
            )
            .await
            .unwrap();
        audit
            .record(&audit_event(id, gateway::now_ms(), false))
            .await
            .unwrap();
    }
    assert_eq!(spool.backlog(), 6);
    // Encrypted at rest: no spool file names a request.
    for entry in std::fs::read_dir(data.path().join("spool")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(&ids[0]));
    }

    // Still failing: nothing is delivered, nothing is lost.
    assert!(spool.replay().await.is_err());
    assert_eq!(spool.backlog(), 6);
    // The backlog is on disk, for a restart to find (the spool unit tests restart on it; a
    // second spool here would not own the directory while this one holds it).
    drop((objects, audit));
    let on_disk = std::fs::read_dir(data.path().join("spool"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".rec") && !name.to_string_lossy().starts_with('.')
        })
        .count();
    assert_eq!(on_disk, 6);

    // AWS recovers: the spool drains, in order, into S3 and CloudWatch Logs.
    c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    c.logs
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    c.logs
        .create_log_stream()
        .log_group_name(&group)
        .log_stream_name("gateway")
        .send()
        .await
        .unwrap();
    assert_eq!(spool.replay().await.unwrap(), 6);
    assert_eq!(spool.backlog(), 0);
    let store = S3Store::new(c.s3.clone(), &bucket, &key);
    for (i, id) in ids.iter().enumerate() {
        let got = store
            .get(&format!("prompts/2026/01/01/00/{id}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, format!("sealed-{i}").into_bytes());
    }
    let logged: Vec<String> = log_messages(&c, &group, "gateway")
        .await
        .iter()
        .map(|m| serde_json::from_str::<AuditEvent>(m).unwrap().request_id)
        .collect();
    assert_eq!(logged, ids);
}

#[tokio::test]
async fn on_lambda_audit_events_can_go_to_stdout_as_json_lines() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let c = clients().await;
    let key = new_key(&c).await;
    let bucket = new_bucket(&c).await;
    harden_bucket(&c, &bucket, &key).await;
    let table = new_table(&c).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "backend = \"aws\"\n[aws]\nregion = \"{}\"\nendpoint_url = \"{}\"\nvault_bucket = \"{bucket}\"\n\
             kms_key_id = \"{key}\"\nlog_group = \"g\"\nthrottle_table = \"{table}\"\naudit_sink = \"stdout\"\nguardrails = \"embedded\"\n",
            moto::REGION,
            moto::endpoint()
        ),
    )
    .unwrap();
    let mut child = Command::new(e2e::binary("gateway"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("GOLDEN_PATH_DATA_DIR", dir.path())
        .env("GOLDEN_PATH_SERVER__LISTEN", "127.0.0.1:0")
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let base = loop {
        if let Some(addr) = next_line().strip_prefix("gateway listening on ") {
            break addr.trim().to_string();
        }
    };
    let out = Command::new(e2e::binary("gateway"))
        .args([
            "token",
            "--sub",
            "bob@example.com",
            "--feature",
            "default",
            "--config",
        ])
        .arg(&path)
        .env("GOLDEN_PATH_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&json!({"messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let event = loop {
        let line = next_line();
        if let Ok(e) = serde_json::from_str::<AuditEvent>(&line)
            && e.request_id == request_id
        {
            assert!(!line.contains("hello there"), "{line}");
            break e;
        }
    };
    assert_eq!(event.user_sub, "bob@example.com");
    let _ = child.kill();
    let _ = child.wait();
}

/// A Cognito user pool with one app client and one user; returns (pool id, client id).
async fn cognito_pool(c: &aws_sdk_cognitoidentityprovider::Client, user: &str) -> (String, String) {
    use aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType;
    let pool = c
        .create_user_pool()
        .pool_name(moto::unique("pool"))
        .send()
        .await
        .unwrap()
        .user_pool()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let client = c
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("search-app")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .send()
        .await
        .unwrap()
        .user_pool_client()
        .unwrap()
        .client_id()
        .unwrap()
        .to_string();
    c.admin_create_user()
        .user_pool_id(&pool)
        .username(user)
        .temporary_password("Temp-Pass-123!")
        .send()
        .await
        .unwrap();
    c.admin_set_user_password()
        .user_pool_id(&pool)
        .username(user)
        .password("Real-Pass-123!")
        .permanent(true)
        .send()
        .await
        .unwrap();
    (pool, client)
}

async fn cognito_sign_in(
    c: &aws_sdk_cognitoidentityprovider::Client,
    client_id: &str,
    user: &str,
) -> String {
    use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
    c.initiate_auth()
        .client_id(client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", user)
        .auth_parameters("PASSWORD", "Real-Pass-123!")
        .send()
        .await
        .unwrap()
        .authentication_result()
        .unwrap()
        .access_token()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_cognito_access_token_calls_the_gateway_on_aws() {
    let c = clients().await;
    let cfg = aws_config("unused", "unused", "unused", "unused");
    let sdk = gateway::aws::sdk_config(&cfg, Some(&credentials())).await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let (pool, client_id) = cognito_pool(&cognito, "alice").await;
    // A second pool: moto signs every pool with the same key ("dummy"), so only the issuer
    // check tells its tokens apart.
    let (_, other_client) = cognito_pool(&cognito, "mallory").await;

    let key = new_key(&c).await;
    let bucket = new_bucket(&c).await;
    harden_bucket(&c, &bucket, &key).await;
    let table = new_table(&c).await;
    let group = moto::unique("/golden-path/cognito");
    let endpoint = moto::endpoint();
    let config = format!(
        r#"
backend = "aws"

[auth]
issuer = "https://cognito-idp.{region}.amazonaws.com/{pool}"
jwks_url = "{endpoint}/{pool}/.well-known/jwks.json"
token_use = "access"

[aws]
region = "{region}"
endpoint_url = "{endpoint}"
vault_bucket = "{bucket}"
kms_key_id = "{key}"
log_group = "{group}"
throttle_table = "{table}"
guardrails = "embedded"

[features.search]
clients = ["{client_id}", "{other_client}"]
models = ["dev"]
guardrail = "default"
guardrail_version = "1"
throttle = {{ requests_per_minute = 600, burst = 100, tokens_per_minute = 200000, tokens_per_day = 5000000 }}
"#,
        region = moto::REGION,
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let gw = e2e::Gateway::start(Some(&config), &env);
    let chat = |token: String| {
        let url = gw.url("/v1/chat/completions");
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
        }
    };

    let token = cognito_sign_in(&cognito, &client_id, "alice").await;
    let resp = chat(token.clone()).await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let messages = log_messages(&c, &group, "gateway").await;
    let event: AuditEvent =
        serde_json::from_str(messages.iter().find(|m| m.contains(&request_id)).unwrap()).unwrap();
    assert_eq!(event.feature, "search");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(event.user_sub, claims["sub"].as_str().unwrap());

    // Signed by the same key, but issued by another pool: refused.
    let foreign = cognito_sign_in(&cognito, &other_client, "mallory").await;
    assert_eq!(chat(foreign).await.status(), 401);
}
