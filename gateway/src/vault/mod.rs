//! The prompt vault (DESIGN §6): one envelope-encrypted record per request with the raw
//! prompt, what the model saw, the raw model output and what was delivered.
//!
//! Two traits at the edges, one [`Vault`] in the middle:
//! - [`KeyProvider`] makes and unwraps per-record data keys, bound to the encryption context
//!   (`{requestId, userSub, feature}`): [`local_keys`] on the embedded default (a master key
//!   file in the data dir), KMS in AWS.
//! - [`ObjectStore`] stores sealed records under S3-style keys
//!   (`prompts/YYYY/MM/DD/HH/<requestId>`): [`files`] on the embedded default, S3 in AWS.
//! - [`envelope`]: AES-256-GCM sealing with the encryption context as AAD, and the on-disk format.

pub mod envelope;
pub mod files;
pub mod local_keys;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The full record of one request. Only ever stored encrypted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VaultRecord {
    pub request_id: String,
    pub timestamp: i64,
    pub user_sub: String,
    pub feature: String,
    pub model: String,
    pub model_alias: String,
    /// The messages exactly as the caller sent them.
    pub raw_prompt: serde_json::Value,
    /// The messages after the input guardrail: what the model saw (empty when blocked).
    pub model_input: serde_json::Value,
    /// The model's output before the output guardrail (empty when the model was not called).
    pub raw_output: String,
    /// What the caller received.
    pub delivered_output: String,
    pub input_action: String,
    pub output_action: String,
    pub policies: Vec<String>,
}

/// `{requestId, userSub, feature}`, bound into both the key unwrap and the AEAD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionContext {
    pub request_id: String,
    pub user_sub: String,
    pub feature: String,
}

impl EncryptionContext {
    /// The context as KMS takes it (a string map), sorted by key.
    pub fn as_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("feature".to_string(), self.feature.clone()),
            ("requestId".to_string(), self.request_id.clone()),
            ("userSub".to_string(), self.user_sub.clone()),
        ])
    }
}

/// A fresh data key: the plaintext (wiped on drop) and its wrapped form.
pub struct DataKey {
    pub plaintext: Zeroizing<[u8; 32]>,
    pub wrapped: Vec<u8>,
    /// Which master key wrapped it.
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault record not found")]
    NotFound,
    #[error("vault record expired")]
    Expired,
    #[error("vault record could not be decrypted (wrong key or context, or tampered)")]
    Decrypt,
    #[error("vault key service failed: {0}")]
    Keys(String),
    #[error("vault storage failed: {0}")]
    Storage(String),
    #[error("vault record malformed: {0}")]
    Malformed(String),
}

/// Makes and unwraps data keys (the local key hierarchy, or KMS).
#[async_trait]
pub trait KeyProvider: Send + Sync {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, VaultError>;
    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; 32]>, VaultError>;
}

/// Stores sealed records by object key (files in the data dir, or S3).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Store durably; returns only once the object would survive the process being killed.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), VaultError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, VaultError>;
    /// Delete every object last written before `before_ms`; returns how many were deleted.
    async fn delete_older_than(&self, before_ms: i64) -> Result<u64, VaultError>;
}

/// The vault: seals records with fresh data keys and stores them; opens them again.
#[derive(Clone)]
pub struct Vault {
    pub keys: Arc<dyn KeyProvider>,
    pub objects: Arc<dyn ObjectStore>,
    pub retention_days: u32,
}

/// `prompts/YYYY/MM/DD/HH/<requestId>` for a record written at `timestamp_ms` (UTC).
pub fn object_key(timestamp_ms: i64, request_id: &str) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "prompts/{:04}/{:02}/{:02}/{:02}/{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        request_id
    )
}
