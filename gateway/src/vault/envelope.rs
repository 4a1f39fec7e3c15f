//! AES-256-GCM sealing of a [`super::VaultRecord`] under a data key, with the encryption
//! context as AAD, and the sealed record's on-disk/S3 format.
//!
//! A sealed record is one JSON document ([`Envelope`]):
//!
//! ```json
//! {"version":1,"keyId":"local:1a2b3c4d","wrappedKey":"<b64>",
//!  "encryptionContext":{"requestId":"…","userSub":"…","feature":"…"},
//!  "algorithm":"AES_256_GCM","nonce":"<b64, 12 bytes>","ciphertext":"<b64, tag appended>",
//!  "createdAt":1738314000000,"expiresAt":1746090000000}
//! ```
//!
//! The plaintext is the record's JSON. The AEAD's AAD, like the key unwrap's, is the canonical
//! JSON of the encryption context, so editing the stored context breaks both. `createdAt` is the
//! record's own timestamp (the request time, which also names its object key) and `expiresAt`
//! is that plus the retention. Neither is authenticated, so `open` checks retention against
//! them *and* against the decrypted record's timestamp, and checks that the decrypted record
//! belongs to the context and the object key it was read from.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::files::{FileStore, validate_key};
use super::local_keys::{LocalKeys, context_aad};
use super::{EncryptionContext, Vault, VaultError, VaultRecord};
use crate::audit::sqlite::Durability;

/// The only envelope version this code writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;
/// The only algorithm this code writes and reads.
pub const ALGORITHM: &str = "AES_256_GCM";
const DAY_MS: i64 = 86_400_000;

/// One sealed record, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    pub version: u32,
    /// The master key (or KMS key) that wrapped the data key.
    pub key_id: String,
    /// The data key, wrapped under `key_id` with the encryption context (base64).
    pub wrapped_key: String,
    pub encryption_context: EncryptionContext,
    pub algorithm: String,
    /// 12 bytes, base64.
    pub nonce: String,
    /// The sealed record JSON with the 16-byte tag appended, base64.
    pub ciphertext: String,
    /// The record's timestamp, ms since the epoch.
    pub created_at: i64,
    /// `created_at` plus the retention, ms since the epoch.
    pub expires_at: i64,
}

impl EncryptionContext {
    /// The context a record is sealed under.
    pub fn of(record: &VaultRecord) -> EncryptionContext {
        EncryptionContext {
            request_id: record.request_id.clone(),
            user_sub: record.user_sub.clone(),
            feature: record.feature.clone(),
        }
    }
}

impl Vault {
    /// The embedded vault: a master key in `<data_dir>/keys/vault-master.key` (0600, created on
    /// first run) and records under `<data_dir>/vault/`.
    pub fn embedded(data_dir: &Path, retention_days: u32) -> Result<Vault, VaultError> {
        Vault::embedded_with(data_dir, retention_days, Durability::Process)
    }

    /// [`Vault::embedded`] with an explicit durability for record files.
    pub fn embedded_with(
        data_dir: &Path,
        retention_days: u32,
        durability: Durability,
    ) -> Result<Vault, VaultError> {
        let keys = LocalKeys::open(data_dir)?;
        let objects = FileStore::with_durability(data_dir.join("vault"), durability);
        Ok(Vault {
            keys: Arc::new(keys),
            objects: Arc::new(objects),
            retention_days,
        })
    }

    /// The retention in milliseconds.
    pub fn retention_ms(&self) -> i64 {
        i64::from(self.retention_days).saturating_mul(DAY_MS)
    }

    /// Seal and store one record; returns its object key. Returns only once durable.
    pub async fn put(&self, record: &VaultRecord) -> Result<String, VaultError> {
        let object_key = super::object_key(record.timestamp, &record.request_id);
        validate_key(&object_key)?;
        let envelope = self.seal(record).await?;
        let bytes = serde_json::to_vec(&envelope)
            .map_err(|e| VaultError::Malformed(format!("cannot encode the envelope: {e}")))?;
        self.objects.put(&object_key, bytes).await?;
        Ok(object_key)
    }

    /// Fetch and decrypt one record. Refuses records past retention.
    pub async fn open(&self, object_key: &str) -> Result<VaultRecord, VaultError> {
        self.open_at(object_key, crate::now_ms()).await
    }

    /// Delete records past retention; returns how many.
    pub async fn sweep_expired(&self) -> Result<u64, VaultError> {
        let before = crate::now_ms().saturating_sub(self.retention_ms());
        self.objects.delete_older_than(before).await
    }

    /// Seal `record` under a fresh data key bound to its encryption context.
    pub async fn seal(&self, record: &VaultRecord) -> Result<Envelope, VaultError> {
        let context = EncryptionContext::of(record);
        let aad = context_aad(&context)?;
        let data_key = self.keys.generate_data_key(&context).await?;

        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| VaultError::Keys("system random number generator failed".into()))?;
        let mut buf = Zeroizing::new(
            serde_json::to_vec(record)
                .map_err(|_| VaultError::Malformed("cannot encode the record".into()))?,
        );
        let tag = aead_key(&data_key.plaintext)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_slice()),
                buf.as_mut_slice(),
            )
            .map_err(|_| VaultError::Keys("cannot seal the record".into()))?;
        // `buf` is ciphertext now.
        let mut ciphertext = Vec::with_capacity(buf.len() + tag.as_ref().len());
        ciphertext.extend_from_slice(buf.as_slice());
        ciphertext.extend_from_slice(tag.as_ref());

        Ok(Envelope {
            version: ENVELOPE_VERSION,
            key_id: data_key.key_id.clone(),
            wrapped_key: B64.encode(&data_key.wrapped),
            encryption_context: context,
            algorithm: ALGORITHM.to_string(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(&ciphertext),
            created_at: record.timestamp,
            expires_at: record.timestamp.saturating_add(self.retention_ms()),
        })
    }

    /// [`Vault::open`] as of `now_ms`.
    async fn open_at(&self, object_key: &str, now_ms: i64) -> Result<VaultRecord, VaultError> {
        validate_key(object_key)?;
        let bytes = self
            .objects
            .get(object_key)
            .await?
            .ok_or(VaultError::NotFound)?;
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| {
            VaultError::Malformed(format!(
                "not a sealed record ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(VaultError::Malformed(format!(
                "unsupported envelope version {}",
                envelope.version
            )));
        }
        if envelope.algorithm != ALGORITHM {
            return Err(VaultError::Malformed("unsupported algorithm".into()));
        }
        if now_ms > envelope.expires_at || self.is_past_retention(envelope.created_at, now_ms) {
            return Err(VaultError::Expired);
        }

        let decode = |field: &str, value: &str| {
            B64.decode(value)
                .map_err(|_| VaultError::Malformed(format!("{field} is not valid base64")))
        };
        let wrapped = decode("wrappedKey", &envelope.wrapped_key)?;
        let nonce = decode("nonce", &envelope.nonce)?;
        let nonce = Nonce::try_assume_unique_for_key(&nonce)
            .map_err(|_| VaultError::Malformed("nonce is not 12 bytes".into()))?;
        let mut buf = Zeroizing::new(decode("ciphertext", &envelope.ciphertext)?);

        let context = &envelope.encryption_context;
        let data_key = self
            .keys
            .decrypt_data_key(&wrapped, &envelope.key_id, context)
            .await?;
        let aad = context_aad(context)?;
        let plaintext = aead_key(&data_key)?
            .open_in_place(nonce, Aad::from(aad.as_slice()), buf.as_mut_slice())
            .map_err(|_| VaultError::Decrypt)?;
        // Never echo the parse error: it may quote plaintext.
        let record: VaultRecord = serde_json::from_slice(plaintext)
            .map_err(|_| VaultError::Malformed("decrypted record is not a vault record".into()))?;

        // Defence in depth: the sealed record must be the one its context and key name.
        if record.request_id != context.request_id
            || record.user_sub != context.user_sub
            || record.feature != context.feature
            || super::object_key(record.timestamp, &record.request_id) != object_key
        {
            return Err(VaultError::Decrypt);
        }
        if self.is_past_retention(record.timestamp, now_ms) {
            return Err(VaultError::Expired);
        }
        Ok(record)
    }

    fn is_past_retention(&self, created_ms: i64, now_ms: i64) -> bool {
        created_ms.saturating_add(self.retention_ms()) < now_ms
    }
}

fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, VaultError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| VaultError::Keys("data key rejected by AES-256-GCM".into()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "my card is 4111 1111 1111 1111";

    fn record(request_id: &str, timestamp: i64) -> VaultRecord {
        VaultRecord {
            request_id: request_id.into(),
            timestamp,
            user_sub: "alice".into(),
            feature: "support-bot".into(),
            model: "anthropic.claude-3-haiku".into(),
            model_alias: "fast".into(),
            raw_prompt: json!([{"role": "user", "content": SECRET}]),
            model_input: json!([{"role": "user", "content": "my card is {CREDIT_DEBIT_CARD_NUMBER}"}]),
            raw_output: "noted".into(),
            delivered_output: "noted".into(),
            input_action: "ANONYMIZED".into(),
            output_action: "NONE".into(),
            policies: vec!["pii:CREDIT_DEBIT_CARD_NUMBER".into()],
        }
    }

    fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::embedded(dir.path(), 90).unwrap();
        (dir, vault)
    }

    fn file_of(dir: &tempfile::TempDir, key: &str) -> std::path::PathBuf {
        dir.path().join("vault").join(key)
    }

    /// Rewrite a stored envelope (bypassing the write-once store, as an attacker with disk
    /// access would).
    fn edit(dir: &tempfile::TempDir, key: &str, f: impl FnOnce(&mut serde_json::Value)) {
        let path = file_of(dir, key);
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut doc);
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    }

    #[tokio::test]
    async fn put_then_open_round_trips() {
        let (_dir, vault) = vault();
        let rec = record("req-1", crate::now_ms());
        let key = vault.put(&rec).await.unwrap();
        assert_eq!(key, super::super::object_key(rec.timestamp, "req-1"));
        assert_eq!(vault.open(&key).await.unwrap(), rec);
    }

    #[tokio::test]
    async fn stored_record_is_complete_sealed_json_without_plaintext() {
        let (dir, vault) = vault();
        let rec = record("req-1", crate::now_ms());
        let key = vault.put(&rec).await.unwrap();

        // Read straight from disk the moment `put` returns.
        let bytes = std::fs::read(file_of(&dir, &key)).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("4111"), "plaintext leaked into the object");
        let env: Envelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(env.version, 1);
        assert_eq!(env.algorithm, "AES_256_GCM");
        assert!(env.key_id.starts_with("local:"));
        assert_eq!(env.encryption_context, EncryptionContext::of(&rec));
        assert_eq!(env.created_at, rec.timestamp);
        assert_eq!(env.expires_at, rec.timestamp + 90 * DAY_MS);
        assert_eq!(B64.decode(&env.nonce).unwrap().len(), NONCE_LEN);
        assert_eq!(
            B64.decode(&env.ciphertext).unwrap().len(),
            serde_json::to_vec(&rec).unwrap().len() + 16
        );
        // The documented field names, nothing else.
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let mut fields: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "algorithm",
                "ciphertext",
                "createdAt",
                "encryptionContext",
                "expiresAt",
                "keyId",
                "nonce",
                "version",
                "wrappedKey"
            ]
        );
    }

    #[tokio::test]
    async fn a_record_is_written_once() {
        let (_dir, vault) = vault();
        let rec = record("req-1", crate::now_ms());
        vault.put(&rec).await.unwrap();
        assert!(matches!(vault.put(&rec).await, Err(VaultError::Storage(_))));
    }

    #[tokio::test]
    async fn tampered_ciphertext_does_not_decrypt() {
        let (dir, vault) = vault();
        let key = vault.put(&record("req-1", crate::now_ms())).await.unwrap();
        edit(&dir, &key, |doc| {
            let mut ct = B64.decode(doc["ciphertext"].as_str().unwrap()).unwrap();
            ct[3] ^= 0x01;
            doc["ciphertext"] = json!(B64.encode(ct));
        });
        let err = vault.open(&key).await.unwrap_err();
        assert!(matches!(err, VaultError::Decrypt), "{err:?}");
        assert!(!err.to_string().contains("4111"));
    }

    #[tokio::test]
    async fn swapped_context_does_not_decrypt() {
        let (dir, vault) = vault();
        let key = vault.put(&record("req-1", crate::now_ms())).await.unwrap();
        edit(&dir, &key, |doc| {
            doc["encryptionContext"]["userSub"] = json!("mallory");
        });
        assert!(matches!(vault.open(&key).await, Err(VaultError::Decrypt)));
    }

    #[tokio::test]
    async fn a_record_moved_to_another_key_is_refused() {
        let (dir, vault) = vault();
        let now = crate::now_ms();
        let a = vault.put(&record("req-a", now)).await.unwrap();
        let b = vault.put(&record("req-b", now)).await.unwrap();
        std::fs::copy(file_of(&dir, &a), file_of(&dir, &b)).unwrap();
        assert!(matches!(vault.open(&b).await, Err(VaultError::Decrypt)));
    }

    #[tokio::test]
    async fn expired_record_is_refused_then_swept() {
        let (dir, vault) = vault();
        let old = record("req-old", crate::now_ms() - 91 * DAY_MS);
        let fresh = record("req-new", crate::now_ms());
        let old_key = vault.put(&old).await.unwrap();
        let fresh_key = vault.put(&fresh).await.unwrap();

        assert!(matches!(
            vault.open(&old_key).await,
            Err(VaultError::Expired)
        ));

        // Pushing the unauthenticated dates forward does not revive it: the sealed record's
        // own timestamp is checked too.
        edit(&dir, &old_key, |doc| {
            doc["createdAt"] = json!(crate::now_ms());
            doc["expiresAt"] = json!(i64::MAX);
        });
        assert!(matches!(
            vault.open(&old_key).await,
            Err(VaultError::Expired)
        ));

        assert_eq!(vault.sweep_expired().await.unwrap(), 1);
        assert!(!file_of(&dir, &old_key).exists());
        assert!(matches!(
            vault.open(&old_key).await,
            Err(VaultError::NotFound)
        ));
        assert_eq!(vault.open(&fresh_key).await.unwrap(), fresh);
        assert_eq!(vault.sweep_expired().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn open_refuses_at_the_expiry_instant() {
        let (_dir, vault) = vault();
        let rec = record("req-1", crate::now_ms());
        let key = vault.put(&rec).await.unwrap();
        let expires = rec.timestamp + vault.retention_ms();
        assert!(vault.open_at(&key, expires).await.is_ok());
        assert!(matches!(
            vault.open_at(&key, expires + 1).await,
            Err(VaultError::Expired)
        ));
    }

    #[tokio::test]
    async fn malformed_missing_and_foreign_records() {
        let (dir, vault) = vault();
        let key = vault.put(&record("req-1", crate::now_ms())).await.unwrap();

        assert!(matches!(
            vault.open("prompts/2025/01/01/00/nothing").await,
            Err(VaultError::NotFound)
        ));
        assert!(matches!(
            vault.open("../keys/vault-master.key").await,
            Err(VaultError::Storage(_))
        ));

        // Sealed by another data dir's master key: unknown key id.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Vault::embedded(other_dir.path(), 90).unwrap();
        let other_key = other.put(&record("req-2", crate::now_ms())).await.unwrap();
        std::fs::create_dir_all(file_of(&dir, &other_key).parent().unwrap()).unwrap();
        std::fs::copy(
            other_dir.path().join("vault").join(&other_key),
            file_of(&dir, &other_key),
        )
        .unwrap();
        assert!(matches!(
            vault.open(&other_key).await,
            Err(VaultError::Keys(_))
        ));

        edit(&dir, &key, |doc| doc["version"] = json!(2));
        assert!(matches!(
            vault.open(&key).await,
            Err(VaultError::Malformed(_))
        ));
        std::fs::write(file_of(&dir, &key), b"{\"version\":1,").unwrap();
        assert!(matches!(
            vault.open(&key).await,
            Err(VaultError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn a_request_id_that_would_escape_is_refused() {
        let (dir, vault) = vault();
        let res = vault.put(&record("../../keys/x", crate::now_ms())).await;
        assert!(matches!(res, Err(VaultError::Storage(_))));
        assert!(!dir.path().join("keys/x").exists());
    }

    #[tokio::test]
    async fn reopened_vault_reads_earlier_records() {
        let dir = tempfile::tempdir().unwrap();
        let rec = record("req-1", crate::now_ms());
        let key = Vault::embedded(dir.path(), 90)
            .unwrap()
            .put(&rec)
            .await
            .unwrap();
        let again = Vault::embedded_with(dir.path(), 90, Durability::PowerLoss).unwrap();
        assert_eq!(again.open(&key).await.unwrap(), rec);
    }
}
