//! A wire-level fake of AWS KMS for the black-box tests (moto does not enforce key state: a
//! disabled key still works there): an axum server on 127.0.0.1 and port 0 speaking KMS's
//! awsJson1_1 protocol (`POST /`, `X-Amz-Target: TrentService.<Operation>`, JSON bodies with
//! base64 blobs, errors as HTTP 400 `{"__type": ..., "message": ...}`) for the operations the
//! gateway calls: `GenerateDataKey`, `Decrypt` and `GenerateMac` (shapes of botocore's
//! `kms/2014-11-01` model).
//!
//! It holds one symmetric key ([`KmsFake::key_arn`]) and one HMAC_256 key
//! ([`KmsFake::mac_key_arn`]). `GenerateDataKey` returns a random 32-byte plaintext and a
//! ciphertext blob that is AES-256-GCM of it under the fake's own master key, with the key ARN
//! and the canonical (sorted) encryption context as AAD, so `Decrypt` under any other context
//! answers `InvalidCiphertextException`, as KMS does. [`KmsFake::set_key_state`] switches the
//! symmetric key between `Enabled`, `Disabled` (`DisabledException`) and `PendingDeletion`
//! (`KMSInvalidStateException`), as KMS answers for those states; every call is counted per
//! operation ([`KmsFake::calls`]) and every error per code ([`KmsFake::errors`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

/// The state of the fake's symmetric key, as KMS's `KeyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

const BLOB_MAGIC: &[u8; 4] = b"FKMS";

struct Inner {
    state: KeyState,
    calls: HashMap<String, u64>,
    errors: HashMap<String, u64>,
}

struct Shared {
    inner: Mutex<Inner>,
    master: LessSafeKey,
    mac_key: hmac::Key,
    key_arn: String,
    mac_key_arn: String,
}

/// The running fake; the server stops when this is dropped.
pub struct KmsFake {
    /// `http://127.0.0.1:PORT`, for `[aws.endpoints] kms`.
    pub base: String,
    /// The symmetric encryption key's ARN (use as `aws.kms_key_id`).
    pub key_arn: String,
    /// The HMAC_256 key's ARN (use as `aws.prompt_hash_key_id`).
    pub mac_key_arn: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KmsFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).expect("random");
    b
}

fn uuid_like() -> String {
    let b: [u8; 16] = random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl KmsFake {
    /// Serve on 127.0.0.1 and a port the OS picks; the key starts `Enabled`.
    pub async fn start() -> KmsFake {
        let arn = |id: String| format!("arn:aws:kms:us-east-1:123456789012:key/{id}");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                state: KeyState::Enabled,
                calls: HashMap::new(),
                errors: HashMap::new(),
            }),
            master: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &random::<32>()).expect("aes key"),
            ),
            mac_key: hmac::Key::new(hmac::HMAC_SHA256, &random::<32>()),
            key_arn: arn(uuid_like()),
            mac_key_arn: arn(uuid_like()),
        });
        let app = axum::Router::new()
            .route("/", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind kms fake");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        KmsFake {
            base: format!("http://{addr}"),
            key_arn: shared.key_arn.clone(),
            mac_key_arn: shared.mac_key_arn.clone(),
            shared,
            task,
        }
    }

    pub fn url(&self) -> String {
        self.base.clone()
    }

    /// Switch the symmetric key's state (the HMAC key stays enabled).
    pub fn set_key_state(&self, state: KeyState) {
        self.shared.inner.lock().expect("lock").state = state;
    }

    pub fn key_state(&self) -> KeyState {
        self.shared.inner.lock().expect("lock").state
    }

    /// Calls of `operation` (e.g. `GenerateDataKey`) so far, answered or refused.
    pub fn calls(&self, operation: &str) -> u64 {
        let inner = self.shared.inner.lock().expect("lock");
        inner.calls.get(operation).copied().unwrap_or(0)
    }

    /// Errors answered with `code` (e.g. `DisabledException`) so far.
    pub fn errors(&self, code: &str) -> u64 {
        let inner = self.shared.inner.lock().expect("lock");
        inner.errors.get(code).copied().unwrap_or(0)
    }
}

struct KmsError(&'static str, String);

fn error(code: &'static str, message: impl Into<String>) -> KmsError {
    KmsError(code, message.into())
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let operation = target
        .strip_prefix("TrentService.")
        .unwrap_or(target)
        .to_string();
    shared
        .inner
        .lock()
        .expect("lock")
        .calls
        .entry(operation.clone())
        .and_modify(|n| *n += 1)
        .or_insert(1);
    let result = match serde_json::from_slice::<Value>(&body) {
        Err(_) => Err(error("SerializationException", "the body is not JSON")),
        Ok(req) => match operation.as_str() {
            "GenerateDataKey" => generate_data_key(&shared, &req),
            "Decrypt" => decrypt(&shared, &req),
            "GenerateMac" => generate_mac(&shared, &req),
            _ => Err(error(
                "UnknownOperationException",
                format!("the fake does not implement {target:?}"),
            )),
        },
    };
    match result {
        Ok(v) => (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            v.to_string(),
        )
            .into_response(),
        Err(KmsError(code, message)) => {
            shared
                .inner
                .lock()
                .expect("lock")
                .errors
                .entry(code.to_string())
                .and_modify(|n| *n += 1)
                .or_insert(1);
            (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.1")],
                json!({"__type": code, "message": message}).to_string(),
            )
                .into_response()
        }
    }
}

/// The symmetric key, if `key_id` names it (id, ARN) and its state allows cryptography.
fn usable_key(shared: &Shared, key_id: Option<&str>) -> Result<(), KmsError> {
    let arn = &shared.key_arn;
    let id = arn.rsplit('/').next().unwrap_or("");
    match key_id {
        None => return Err(error("ValidationException", "KeyId is required")),
        Some(k) if k == arn || k == id => {}
        Some(k) if k == shared.mac_key_arn => {
            return Err(error(
                "InvalidKeyUsageException",
                format!("{k} key usage is GENERATE_VERIFY_MAC"),
            ));
        }
        Some(k) => {
            return Err(error(
                "NotFoundException",
                format!("Key '{k}' does not exist"),
            ));
        }
    }
    match shared.inner.lock().expect("lock").state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(error("DisabledException", format!("{arn} is disabled."))),
        KeyState::PendingDeletion => Err(error(
            "KMSInvalidStateException",
            format!("{arn} is pending deletion."),
        )),
    }
}

/// The request's `EncryptionContext` as a sorted map (absent: empty).
fn context(req: &Value) -> Result<BTreeMap<String, String>, KmsError> {
    match req.get("EncryptionContext") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            error(
                "ValidationException",
                "EncryptionContext must map strings to strings",
            )
        }),
    }
}

fn aad(arn: &str, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = arn.as_bytes().to_vec();
    aad.push(0);
    aad.extend_from_slice(&serde_json::to_vec(context).expect("context json"));
    aad
}

fn generate_data_key(shared: &Shared, req: &Value) -> Result<Value, KmsError> {
    usable_key(shared, req["KeyId"].as_str())?;
    let len = match (req["KeySpec"].as_str(), req["NumberOfBytes"].as_u64()) {
        (Some("AES_256"), None) => 32,
        (Some("AES_128"), None) => 16,
        (None, Some(n @ 1..=1024)) => n as usize,
        _ => {
            return Err(error(
                "ValidationException",
                "exactly one of KeySpec (AES_256 or AES_128) and NumberOfBytes is required",
            ));
        }
    };
    let context = context(req)?;
    let mut plaintext = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut plaintext)
        .expect("random plaintext");
    let nonce: [u8; NONCE_LEN] = random();
    let mut sealed = plaintext.clone();
    shared
        .master
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(&shared.key_arn, &context).as_slice()),
            &mut sealed,
        )
        .expect("seal");
    let mut blob = BLOB_MAGIC.to_vec();
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    Ok(json!({
        "CiphertextBlob": B64.encode(&blob),
        "Plaintext": B64.encode(&plaintext),
        "KeyId": shared.key_arn,
    }))
}

fn decrypt(shared: &Shared, req: &Value) -> Result<Value, KmsError> {
    let invalid = || error("InvalidCiphertextException", "");
    let blob = req["CiphertextBlob"]
        .as_str()
        .and_then(|b| B64.decode(b).ok())
        .ok_or_else(|| error("ValidationException", "CiphertextBlob is required"))?;
    // Without a KeyId, KMS takes the key from the blob's own metadata.
    usable_key(
        shared,
        Some(req["KeyId"].as_str().unwrap_or(&shared.key_arn)),
    )?;
    let context = context(req)?;
    let rest = blob
        .strip_prefix(BLOB_MAGIC.as_slice())
        .ok_or_else(invalid)?;
    let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or_else(invalid)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| invalid())?;
    let mut buf = sealed.to_vec();
    let plain = shared
        .master
        .open_in_place(
            nonce,
            Aad::from(aad(&shared.key_arn, &context).as_slice()),
            &mut buf,
        )
        .map_err(|_| invalid())?;
    Ok(json!({
        "Plaintext": B64.encode(plain),
        "KeyId": shared.key_arn,
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

fn generate_mac(shared: &Shared, req: &Value) -> Result<Value, KmsError> {
    match req["KeyId"].as_str() {
        Some(k) if k == shared.mac_key_arn => {}
        Some(k) if k == shared.key_arn => {
            return Err(error(
                "InvalidKeyUsageException",
                format!("{k} key usage is ENCRYPT_DECRYPT"),
            ));
        }
        Some(k) => {
            return Err(error(
                "NotFoundException",
                format!("Key '{k}' does not exist"),
            ));
        }
        None => return Err(error("ValidationException", "KeyId is required")),
    }
    if req["MacAlgorithm"].as_str() != Some("HMAC_SHA_256") {
        return Err(error(
            "InvalidKeyUsageException",
            "the key's MacAlgorithm is HMAC_SHA_256",
        ));
    }
    let message = req["Message"]
        .as_str()
        .and_then(|m| B64.decode(m).ok())
        .ok_or_else(|| error("ValidationException", "Message is required"))?;
    let mac = hmac::sign(&shared.mac_key, &message);
    Ok(json!({
        "Mac": B64.encode(mac.as_ref()),
        "MacAlgorithm": "HMAC_SHA_256",
        "KeyId": shared.mac_key_arn,
    }))
}
