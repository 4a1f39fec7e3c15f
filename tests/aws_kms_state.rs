//! KMS key-state tests of the AWS backends: the real `gateway` binary on `backend = "aws"` with
//! S3, CloudWatch Logs and DynamoDB on moto and KMS on a wire-level fake (`e2e::kms_fake`,
//! named in `[aws.endpoints] kms`), because moto does not enforce key state (a disabled key
//! still works there). The fake answers as KMS does for a disabled key (`DisabledException`)
//! and one pending deletion (`KMSInvalidStateException`), and refuses a `Decrypt` under another
//! encryption context (`InvalidCiphertextException`).
//!
//! Checked: while the key is disabled or pending deletion, chat requests are still acknowledged
//! and their records spooled (`/readyz` `spooledRecords`), nothing of theirs reaches S3, and
//! opening an earlier record fails with an error naming the key state and not the prompt;
//! once the key is enabled again the spool drains, the audit events arrive in request order,
//! and every acknowledged request has exactly one S3 object, wrapped by KMS (`kms:<arn>`), with
//! its own encryption context, that opens to its prompt.
//!
//! `cargo test -p e2e --test e2e aws_kms_state -- --nocapture`
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fail loudly"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::kms_fake::{KeyState, KmsFake};
use e2e::moto;
use gateway::audit::AuditEvent;
use gateway::aws::kms::{CacheLimits, KmsKeys, SdkKms};
use gateway::aws::s3::S3Store;
use gateway::aws::{Clients, StaticCredentials};
use gateway::config::{AwsConfig, Secret};
use gateway::vault::envelope::Envelope;
use gateway::vault::{EncryptionContext, KeyProvider, Vault, VaultError};
use serde_json::json;

fn credentials() -> StaticCredentials {
    StaticCredentials {
        access_key_id: moto::ACCESS_KEY_ID.into(),
        secret_access_key: Secret::new(moto::SECRET_ACCESS_KEY),
    }
}

/// SDK clients: S3, Logs and DynamoDB on moto, KMS on the fake.
async fn clients(kms: &KmsFake) -> Clients {
    let cfg: AwsConfig = serde_json::from_value(json!({
        "region": moto::REGION,
        "endpoint_url": moto::endpoint(),
        "vault_bucket": "unused",
        "kms_key_id": "unused",
        "log_group": "unused",
        "throttle_table": "unused",
        "endpoints": {"kms": kms.url()},
    }))
    .unwrap();
    let sdk = gateway::aws::sdk_config(&cfg, Some(&credentials())).await;
    Clients::new(&sdk, &cfg)
}

struct Deployment {
    kms: KmsFake,
    c: Clients,
    bucket: String,
    group: String,
    table: String,
}

impl Deployment {
    async fn new() -> Deployment {
        let kms = KmsFake::start().await;
        let c = clients(&kms).await;
        let bucket = moto::unique("kmsstate");
        c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let table = crate::aws::throttle_table(&c.dynamodb, "kmsstate").await;
        Deployment {
            kms,
            c,
            bucket,
            group: moto::unique("/golden-path/kmsstate"),
            table,
        }
    }

    /// KEKs renewed every second, so a key-state change is felt at once.
    fn config(&self) -> String {
        format!(
            r#"
backend = "aws"

[aws]
region = "{region}"
endpoint_url = "{moto}"
vault_bucket = "{bucket}"
kms_key_id = "{key}"
prompt_hash_key_id = "{hmac}"
log_group = "{group}"
throttle_table = "{table}"
check_bucket = false
kek_max_age_secs = 1
guardrails = "embedded"

[aws.endpoints]
kms = "{kms}"
"#,
            region = moto::REGION,
            moto = moto::endpoint(),
            bucket = self.bucket,
            key = self.kms.key_arn,
            hmac = self.kms.mac_key_arn,
            group = self.group,
            table = self.table,
            kms = self.kms.url(),
        )
    }

    /// A vault opening with a fresh KMS key provider (no cached KEKs), as `vault open` does.
    fn vault(&self) -> Vault {
        Vault {
            keys: Arc::new(KmsKeys::new(
                SdkKms(self.c.kms.clone()),
                &self.kms.key_arn,
                CacheLimits {
                    max_age: Duration::from_secs(300),
                    max_uses: 10_000,
                },
            )),
            objects: Arc::new(S3Store::new(
                self.c.s3.clone(),
                &self.bucket,
                &self.kms.key_arn,
            )),
            retention_days: 90,
        }
    }
}

const ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID),
    ("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// One chat request; returns (status, request id, prompt).
async fn chat(gw: &e2e::Gateway, token: &str, tag: &str) -> (u16, String, String) {
    let prompt = format!("secret-prompt {tag} {}", uuid::Uuid::new_v4());
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&json!({"messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let id = r
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    r.bytes().await.unwrap();
    (status, id, prompt)
}

async fn spooled(base: &str) -> u64 {
    let body: serde_json::Value = reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["spooledRecords"]
        .as_u64()
        .unwrap_or_else(|| panic!("/readyz has no spooledRecords: {body}"))
}

async fn drained(base: &str, within: Duration) {
    let started = Instant::now();
    loop {
        let n = spooled(base).await;
        if n == 0 {
            return;
        }
        assert!(
            started.elapsed() < within,
            "the spool did not drain within {within:?} (backlog {n})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn audit_events(d: &Deployment) -> Vec<AuditEvent> {
    crate::aws_faults::gateway_stream_events(&d.c.logs, &d.group).await
}

async fn vault_keys(d: &Deployment) -> Vec<String> {
    let page =
        d.c.s3
            .list_objects_v2()
            .bucket(&d.bucket)
            .send()
            .await
            .unwrap();
    page.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// The vault key of `request_id` from its audit event in CloudWatch Logs.
async fn vault_key_of(d: &Deployment, request_id: &str) -> String {
    audit_events(d)
        .await
        .into_iter()
        .find(|e| e.request_id == request_id)
        .unwrap_or_else(|| panic!("no audit event for {request_id}"))
        .vault_key
        .expect("vault key")
}

/// Every request in `acked` (in the order sent) has one audit event, in that order, and one
/// S3 object, KMS-wrapped under its own context, that opens to its prompt.
async fn assert_delivered_in_order(d: &Deployment, acked: &[(String, String)]) {
    let events = audit_events(d).await;
    let positions: Vec<usize> = acked
        .iter()
        .map(|(id, _)| {
            let at: Vec<usize> = events
                .iter()
                .enumerate()
                .filter(|(_, e)| &e.request_id == id)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(at.len(), 1, "{id}: audit events");
            at[0]
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "audit events out of request order: {positions:?}"
    );
    let keys = vault_keys(d).await;
    let mut objects: HashMap<&str, usize> = HashMap::new();
    for k in &keys {
        *objects.entry(k.rsplit('/').next().unwrap()).or_default() += 1;
    }
    let vault = d.vault();
    for (id, prompt) in acked {
        assert_eq!(objects.get(id.as_str()), Some(&1), "{id}: vault objects");
        let event = events.iter().find(|e| &e.request_id == id).unwrap();
        let key = event.vault_key.as_deref().expect("vault key");
        let raw =
            d.c.s3
                .get_object()
                .bucket(&d.bucket)
                .key(key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
        let envelope: Envelope = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            envelope.key_id,
            format!("kms:{}", d.kms.key_arn),
            "{id}: not re-wrapped by KMS"
        );
        assert_eq!(
            envelope.encryption_context,
            EncryptionContext {
                request_id: id.clone(),
                user_sub: "alice@example.com".into(),
                feature: "default".into(),
            }
        );
        let record = vault
            .open(key)
            .await
            .unwrap_or_else(|e| panic!("{id}: vault record does not open: {e}"));
        assert_eq!(record.request_id, *id);
        assert!(
            record.raw_prompt.to_string().contains(prompt.as_str()),
            "{id}"
        );
    }
}

/// The key leaves `Enabled` for `state`: requests are acknowledged and spooled, replay cannot
/// deliver them, an earlier record cannot be opened (with `expect` in the error, no prompt),
/// and once the key is enabled again everything drains in order and opens.
async fn key_state_outage(state: KeyState, expect: &[&str]) {
    let d = Deployment::new().await;
    let gw = e2e::Gateway::start(Some(&d.config()), &ENV);
    let token = gw.token("alice@example.com", "default");
    assert_eq!(d.kms.calls("GenerateMac"), 1, "prompt-hash key at start-up");

    // Before: one record delivered to S3 under KMS.
    let (status, before_id, before_prompt) = chat(&gw, &token, "before").await;
    assert_eq!(status, 200);
    drained(&gw.base, Duration::from_secs(30)).await;
    let before_key = vault_key_of(&d, &before_id).await;
    assert_eq!(vault_keys(&d).await.len(), 1);

    d.kms.set_key_state(state);
    // Past the KEK's one-second life: the next record needs KMS.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let refused_before = d.kms.errors(expect[0]);
    let mut acked = vec![(before_id.clone(), before_prompt.clone())];
    for i in 0..5 {
        let (status, id, prompt) = chat(&gw, &token, &format!("during {i}")).await;
        assert_eq!(
            status, 200,
            "request {i} not acknowledged with the key {state:?}"
        );
        acked.push((id, prompt));
    }
    assert!(
        d.kms.errors(expect[0]) > refused_before,
        "the fake never refused a call with {}",
        expect[0]
    );
    let backlog = spooled(&gw.base).await;
    assert!(
        backlog >= 5,
        "spooledRecords {backlog} with the key {state:?}"
    );
    // A replay pass (every 5 s) cannot re-wrap them: nothing reaches S3.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert!(
        spooled(&gw.base).await >= 5,
        "the spool drained with the key {state:?}"
    );
    assert_eq!(
        vault_keys(&d).await.len(),
        1,
        "objects reached S3 with the key {state:?}"
    );
    // Spooled records stay local: the spool files hold no prompt text either.
    for f in std::fs::read_dir(gw.data_dir.path().join("spool")).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("secret-prompt"),
            "prompt text in a spool file"
        );
    }

    // Opening the earlier record fails with the key state in the error, never the prompt.
    let decrypts = d.kms.calls("Decrypt");
    let err = d
        .vault()
        .open(&before_key)
        .await
        .expect_err("a record opened with the key not enabled");
    assert!(
        d.kms.calls("Decrypt") > decrypts,
        "KMS Decrypt was not asked"
    );
    let text = err.to_string();
    println!("aws_kms_state: opening with the key {state:?}: {text}");
    assert!(matches!(err, VaultError::Keys(_)), "{err:?}");
    for e in expect {
        assert!(text.contains(e), "{text:?} does not say {e:?}");
    }
    assert!(!text.contains("secret-prompt"), "{text}");
    assert!(!text.contains(before_prompt.as_str()), "{text}");

    // Enabled again: the spool drains, in order, and every record opens.
    d.kms.set_key_state(KeyState::Enabled);
    let generated = d.kms.calls("GenerateDataKey");
    let started = Instant::now();
    drained(&gw.base, Duration::from_secs(30)).await;
    println!(
        "aws_kms_state: key {state:?} -> Enabled: spool of {backlog} drained in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        d.kms.calls("GenerateDataKey") > generated,
        "replay did not re-wrap with KMS"
    );
    assert_eq!(vault_keys(&d).await.len(), acked.len());
    assert_delivered_in_order(&d, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_key_spools_acknowledged_records_and_re_enabling_drains_them() {
    key_state_outage(KeyState::Disabled, &["DisabledException", "is disabled"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_pending_deletion_behaves_like_a_disabled_one_with_its_own_message() {
    key_state_outage(
        KeyState::PendingDeletion,
        &["KMSInvalidStateException", "pending deletion"],
    )
    .await;
}

#[tokio::test]
async fn a_decrypt_under_another_encryption_context_is_refused() {
    let kms = KmsFake::start().await;
    let c = clients(&kms).await;
    let ctx = |request_id: &str, feature: &str| EncryptionContext {
        request_id: request_id.into(),
        user_sub: "alice@example.com".into(),
        feature: feature.into(),
    };

    // On the wire: the context is bound into the blob.
    let out = c
        .kms
        .generate_data_key()
        .key_id(&kms.key_arn)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("feature", "a")
        .send()
        .await
        .unwrap();
    let blob = out.ciphertext_blob().unwrap().clone();
    let plain = out.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let same = c
        .kms
        .decrypt()
        .key_id(&kms.key_arn)
        .ciphertext_blob(blob.clone())
        .encryption_context("feature", "a")
        .send()
        .await
        .unwrap();
    assert_eq!(same.plaintext().unwrap().as_ref(), plain.as_slice());
    let other = c
        .kms
        .decrypt()
        .key_id(&kms.key_arn)
        .ciphertext_blob(blob)
        .encryption_context("feature", "b")
        .send()
        .await
        .unwrap_err();
    use aws_sdk_kms::error::ProvideErrorMetadata;
    assert_eq!(
        other.as_service_error().and_then(|e| e.code()),
        Some("InvalidCiphertextException")
    );

    // Through the vault's key provider: a record's key moved to another feature is refused by
    // KMS (Decrypt was asked and said no), one moved to another request by the local unwrap.
    let keys = KmsKeys::new(
        SdkKms(c.kms.clone()),
        &kms.key_arn,
        CacheLimits {
            max_age: Duration::from_secs(300),
            max_uses: 100,
        },
    );
    let key = keys.generate_data_key(&ctx("r1", "default")).await.unwrap();
    let opened = keys
        .decrypt_data_key(&key.wrapped, &key.key_id, &ctx("r1", "default"))
        .await
        .unwrap();
    assert_eq!(*opened, *key.plaintext);
    let decrypts = kms.calls("Decrypt");
    let refused = kms.errors("InvalidCiphertextException");
    let moved = keys
        .decrypt_data_key(&key.wrapped, &key.key_id, &ctx("r1", "other-feature"))
        .await;
    assert!(matches!(moved, Err(VaultError::Decrypt)), "{moved:?}");
    assert_eq!(kms.calls("Decrypt"), decrypts + 1);
    assert_eq!(kms.errors("InvalidCiphertextException"), refused + 1);
    let moved = keys
        .decrypt_data_key(&key.wrapped, &key.key_id, &ctx("r2", "default"))
        .await;
    assert!(matches!(moved, Err(VaultError::Decrypt)), "{moved:?}");
    assert_eq!(kms.calls("GenerateDataKey"), 2);
}

// Multi-threaded: the blocking `output()` below must not stall the fake's own server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refuses_to_start_when_the_prompt_hash_key_is_refused() {
    // GenerateMac against a key that is not an HMAC key: a clear start-up error.
    let d = Deployment::new().await;
    let config = d.config().replace(&d.kms.mac_key_arn, &d.kms.key_arn);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = std::process::Command::new(e2e::binary("gateway"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("GOLDEN_PATH_DATA_DIR", dir.path())
        .env("GOLDEN_PATH_SERVER__LISTEN", "127.0.0.1:0")
        .envs(ENV)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a gateway that accepts the key would serve forever.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway started on a prompt-hash key that is not an HMAC key");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an HMAC_256 KMS key"), "{err}");
    assert_eq!(d.kms.calls("GenerateMac"), 1);
}
