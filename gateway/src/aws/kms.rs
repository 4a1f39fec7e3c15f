//! The vault's [`KeyProvider`] on AWS KMS, with a key cache so KMS is not called per request.
//!
//! Every record still gets a fresh random 256-bit data key, and the record's encryption context
//! `{requestId, userSub, feature}` is still bound into both the key unwrap and the record's AEAD
//! (DESIGN §6). What is cached is one level up:
//!
//! - **Why not cache data keys** (as the AWS Encryption SDK's caching CMM does): that cache is
//!   partitioned by encryption context, and ours differs per record (`requestId`), so it would
//!   never hit. Dropping `requestId` from the KMS context would lose the binding instead.
//! - **What is cached**: a *key-encryption key* (KEK) from KMS `GenerateDataKey`, with the KMS
//!   encryption context `{purpose: "golden-path-vault-kek", feature}`, so KMS (and key policies
//!   conditioned on `kms:EncryptionContext:feature`) still separate features. Per record, a
//!   fresh data key is wrapped locally with AES-256-GCM under the KEK, with the canonical JSON of
//!   the full record context as AAD: a record moved to another `requestId` or `userSub` fails
//!   the local unwrap, one moved to another feature fails KMS `Decrypt` first.
//! - **Bounds**, like the caching CMM's: a KEK is used for at most `kek_max_uses` records and
//!   `kek_max_age_secs`, then KMS is asked for a new one. One KEK per feature; the cache holds at
//!   most [`MAX_CACHED_KEKS`] of them. Openings cache unwrapped KEKs under the same age bound,
//!   keyed by the KMS blob *and* the feature, so a cache hit never skips KMS's feature check.
//!   The plaintext KEKs are wiped when evicted.
//!
//! The cost of the cache: CloudTrail shows one `GenerateDataKey` per KEK, not per record, and
//! the blast radius of a leaked KEK is its uses (at most `kek_max_uses` records of one feature).
//!
//! The stored `wrappedKey` is `"GPK1" || u16 BE blob length || KMS blob || nonce (12) ||
//! AES-256-GCM(KEK, data key) (32) || tag (16)`; the envelope's `keyId` is `kms:<key ARN>`.
//!
//! **When KMS fails** (an error, throttling, or no answer within [`KMS_CALL_TIMEOUT`]), sealing
//! fails fast with [`VaultError::Keys`] for the next [`KMS_RETRY_AFTER`] instead of making every
//! request wait for its own timeout; the spool (`super::spool`) then wraps the record's data key
//! locally and re-wraps it here ([`KmsKeys::wrap_data_key`]) once KMS answers again.
//!
//! [`KmsApi`] is the narrow trait over the two KMS calls, implemented for the SDK client by
//! [`SdkKms`]; [`CountingKms`] wraps any implementation and counts calls (tests and metrics).
//!
//! [`prompt_hash_secret`] derives the deployment's `promptHash` key from an HMAC_256 KMS key
//! with `GenerateMac`, so every instance hashes alike without a secret in configuration.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroizing;

use crate::vault::local_keys::context_aad;
use crate::vault::{DataKey, EncryptionContext, KeyProvider, VaultError};

const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const MAGIC: &[u8; 4] = b"GPK1";
/// Largest KMS ciphertext blob accepted (KMS blobs for a 32-byte key are ~180 bytes).
const MAX_BLOB_LEN: usize = 4096;
/// Most KEKs held for sealing (one per feature) and for opening.
pub const MAX_CACHED_KEKS: usize = 256;
/// The `purpose` entry of every KEK's KMS encryption context.
pub const KEK_PURPOSE: &str = "golden-path-vault-kek";
/// Longest wait for one KMS `GenerateDataKey` on the request path.
pub const KMS_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for another request's pending `GenerateDataKey` before giving up on KMS.
pub const SEALING_LOCK_WAIT: Duration = Duration::from_secs(1);
/// After a failed `GenerateDataKey`, how long sealing skips KMS (fails fast) before trying again.
pub const KMS_RETRY_AFTER: Duration = Duration::from_secs(3);
/// The fixed message whose `GenerateMac` under `aws.prompt_hash_key_id` is the prompt-hash key.
pub const PROMPT_HASH_MAC_MESSAGE: &[u8] = b"golden-path/prompt-hash/v1";

/// The two KMS operations the vault needs.
#[async_trait]
pub trait KmsApi: Send + Sync {
    /// `GenerateDataKey` (AES_256): the plaintext key, its ciphertext blob, and the key's ARN.
    async fn generate_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>, String), VaultError>;
    /// `Decrypt` of a blob made by [`KmsApi::generate_data_key`] under `context`.
    async fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError>;
}

/// [`KmsApi`] on the SDK client.
#[derive(Debug, Clone)]
pub struct SdkKms(pub aws_sdk_kms::Client);

#[async_trait]
impl KmsApi for SdkKms {
    async fn generate_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>, String), VaultError> {
        let out = self
            .0
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| VaultError::Keys(super::describe("KMS GenerateDataKey", &e)))?;
        let plaintext = out
            .plaintext()
            .ok_or_else(|| VaultError::Keys("KMS GenerateDataKey returned no plaintext".into()))?;
        let key = to_key(plaintext.as_ref())?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| VaultError::Keys("KMS GenerateDataKey returned no ciphertext".into()))?
            .as_ref()
            .to_vec();
        let arn = out.key_id().unwrap_or(key_id).to_string();
        Ok((key, blob, arn))
    }

    async fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        let out = self
            .0
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(blob))
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| match super::error_code(&e) {
                // Wrong context, wrong key or a damaged blob: all the same to the caller.
                Some("InvalidCiphertextException" | "IncorrectKeyException") => VaultError::Decrypt,
                _ => VaultError::Keys(super::describe("KMS Decrypt", &e)),
            })?;
        let plaintext = out
            .plaintext()
            .ok_or_else(|| VaultError::Keys("KMS Decrypt returned no plaintext".into()))?;
        to_key(plaintext.as_ref())
    }
}

fn to_key(bytes: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(VaultError::Keys(format!(
            "KMS returned a {}-byte key, expected {KEY_LEN}",
            bytes.len()
        )));
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

/// Counts the calls that reach the wrapped [`KmsApi`].
#[derive(Debug, Default)]
pub struct CountingKms<K> {
    pub inner: K,
    generate: AtomicU64,
    decrypt: AtomicU64,
}

impl<K> CountingKms<K> {
    pub fn new(inner: K) -> CountingKms<K> {
        CountingKms {
            inner,
            generate: AtomicU64::new(0),
            decrypt: AtomicU64::new(0),
        }
    }
    /// `GenerateDataKey` calls so far.
    pub fn generate_calls(&self) -> u64 {
        self.generate.load(Ordering::Relaxed)
    }
    /// `Decrypt` calls so far.
    pub fn decrypt_calls(&self) -> u64 {
        self.decrypt.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl<K: KmsApi> KmsApi for CountingKms<K> {
    async fn generate_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>, String), VaultError> {
        self.generate.fetch_add(1, Ordering::Relaxed);
        self.inner.generate_data_key(key_id, context).await
    }
    async fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        self.decrypt.fetch_add(1, Ordering::Relaxed);
        self.inner.decrypt(key_id, blob, context).await
    }
}

#[async_trait]
impl<K: KmsApi + ?Sized> KmsApi for std::sync::Arc<K> {
    async fn generate_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>, String), VaultError> {
        (**self).generate_data_key(key_id, context).await
    }
    async fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        (**self).decrypt(key_id, blob, context).await
    }
}

/// How long and how often one KEK may be used.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    pub max_age: Duration,
    pub max_uses: u64,
}

/// A KEK in the sealing cache.
struct SealingKek {
    key: LessSafeKey,
    blob: Vec<u8>,
    arn: String,
    created: Instant,
    uses: u64,
}

/// A KEK in the opening cache.
struct OpeningKek {
    key: Zeroizing<[u8; KEY_LEN]>,
    created: Instant,
}

/// The KMS-backed [`KeyProvider`] with the KEK cache described in the module doc.
pub struct KmsKeys {
    kms: Box<dyn KmsApi>,
    key_id: String,
    limits: CacheLimits,
    sealing: tokio::sync::Mutex<HashMap<String, SealingKek>>,
    opening: Mutex<HashMap<(Vec<u8>, String), OpeningKek>>,
    rng: SystemRandom,
    /// Until when sealing skips KMS after a failure.
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for KmsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsKeys")
            .field("key_id", &self.key_id)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The KMS encryption context of one feature's KEK.
pub fn kek_context(feature: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("feature".to_string(), feature.to_string()),
        ("purpose".to_string(), KEK_PURPOSE.to_string()),
    ])
}

impl KmsKeys {
    /// Wrap data keys under KEKs from `key_id` (id, ARN or alias).
    pub fn new(kms: impl KmsApi + 'static, key_id: &str, limits: CacheLimits) -> KmsKeys {
        KmsKeys {
            kms: Box::new(kms),
            key_id: key_id.to_string(),
            limits: CacheLimits {
                max_age: limits.max_age,
                max_uses: limits.max_uses.max(1),
            },
            sealing: tokio::sync::Mutex::new(HashMap::new()),
            opening: Mutex::new(HashMap::new()),
            rng: SystemRandom::new(),
            paused_until: Mutex::new(None),
        }
    }

    /// Wrap an existing data key for `context` under a KMS-issued KEK (the spool's re-wrap of
    /// a record sealed while KMS was unavailable). Returns (wrapped key, key id).
    pub async fn wrap_data_key(
        &self,
        context: &EncryptionContext,
        data_key: &[u8; KEY_LEN],
    ) -> Result<(Vec<u8>, String), VaultError> {
        // Not on a request path: wait out another caller's pending KMS call.
        self.wrap_under_kek(context, data_key, KMS_CALL_TIMEOUT + SEALING_LOCK_WAIT)
            .await
    }

    /// Whether a recent KMS failure makes sealing skip KMS for now.
    pub fn paused(&self) -> bool {
        lock(&self.paused_until).is_some_and(|until| Instant::now() < until)
    }

    /// `GenerateDataKey` for a feature's KEK, bounded in time, failing fast while paused.
    async fn new_kek(
        &self,
        feature: &str,
    ) -> Result<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>, String), VaultError> {
        if self.paused() {
            return Err(VaultError::Keys(
                "KMS unavailable (recent failure); not retried yet".into(),
            ));
        }
        let context = kek_context(feature);
        let call = self.kms.generate_data_key(&self.key_id, &context);
        let result = match tokio::time::timeout(KMS_CALL_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(VaultError::Keys("KMS GenerateDataKey timed out".into())),
        };
        *lock(&self.paused_until) = match &result {
            Ok(_) => None,
            Err(_) => Some(Instant::now() + KMS_RETRY_AFTER),
        };
        result
    }

    fn fresh(&self, created: Instant, uses: u64) -> bool {
        created.elapsed() < self.limits.max_age && uses < self.limits.max_uses
    }

    /// The KEK to wrap `context`'s data key under, from the cache or KMS; counts one use.
    /// Returns (wrapped data key, key id) after wrapping `data_key`.
    async fn wrap_under_kek(
        &self,
        context: &EncryptionContext,
        data_key: &[u8; KEY_LEN],
        lock_wait: Duration,
    ) -> Result<(Vec<u8>, String), VaultError> {
        // Held across the KMS call on purpose: concurrent requests of one feature wait for one
        // GenerateDataKey instead of each making their own; but not for longer than
        // SEALING_LOCK_WAIT on the request path, so a hanging KMS call stalls one request, not
        // all of them.
        let mut cache = tokio::time::timeout(lock_wait, self.sealing.lock())
            .await
            .map_err(|_| VaultError::Keys("KMS slow: a key request is still pending".into()))?;
        let usable = cache
            .get(&context.feature)
            .is_some_and(|k| self.fresh(k.created, k.uses));
        if !usable {
            let (plain, blob, arn) = self.new_kek(&context.feature).await?;
            if blob.len() > MAX_BLOB_LEN {
                return Err(VaultError::Keys("KMS ciphertext blob too large".into()));
            }
            let key = aead_key(&plain)?;
            if cache.len() >= MAX_CACHED_KEKS && !cache.contains_key(&context.feature) {
                evict_oldest(&mut cache, |k| k.created);
            }
            cache.insert(
                context.feature.clone(),
                SealingKek {
                    key,
                    blob,
                    arn,
                    created: Instant::now(),
                    uses: 0,
                },
            );
        }
        let kek = cache
            .get_mut(&context.feature)
            .ok_or_else(|| VaultError::Keys("key cache lost its entry".into()))?;
        kek.uses += 1;

        let aad = context_aad(context)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| VaultError::Keys("system random number generator failed".into()))?;
        let mut sealed = Zeroizing::new(*data_key);
        let tag = kek
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_slice()),
                sealed.as_mut_slice(),
            )
            .map_err(|_| VaultError::Keys("cannot wrap the data key".into()))?;
        let blob_len = u16::try_from(kek.blob.len())
            .map_err(|_| VaultError::Keys("KMS ciphertext blob too large".into()))?;
        let mut wrapped =
            Vec::with_capacity(MAGIC.len() + 2 + kek.blob.len() + NONCE_LEN + KEY_LEN + TAG_LEN);
        wrapped.extend_from_slice(MAGIC);
        wrapped.extend_from_slice(&blob_len.to_be_bytes());
        wrapped.extend_from_slice(&kek.blob);
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(sealed.as_slice());
        wrapped.extend_from_slice(tag.as_ref());
        Ok((wrapped, format!("kms:{}", kek.arn)))
    }

    /// The plaintext KEK of `blob` for `feature`, from the opening cache or KMS `Decrypt`.
    async fn opening_kek(
        &self,
        arn: &str,
        blob: &[u8],
        feature: &str,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        let cache_key = (digest(&SHA256, blob).as_ref().to_vec(), feature.to_string());
        {
            let cache = lock(&self.opening);
            if let Some(k) = cache.get(&cache_key)
                && k.created.elapsed() < self.limits.max_age
            {
                return Ok(k.key.clone());
            }
        }
        let key = self.kms.decrypt(arn, blob, &kek_context(feature)).await?;
        let mut cache = lock(&self.opening);
        cache.retain(|_, k| k.created.elapsed() < self.limits.max_age);
        if cache.len() >= MAX_CACHED_KEKS {
            evict_oldest(&mut cache, |k| k.created);
        }
        cache.insert(
            cache_key,
            OpeningKek {
                key: key.clone(),
                created: Instant::now(),
            },
        );
        Ok(key)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn evict_oldest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    created: impl Fn(&V) -> Instant,
) {
    if let Some(oldest) = map
        .iter()
        .min_by_key(|(_, v)| created(v))
        .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

fn aead_key(key: &[u8; KEY_LEN]) -> Result<LessSafeKey, VaultError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| VaultError::Keys("key rejected by AES-256-GCM".into()))
}

/// The parts of a stored `wrappedKey`.
struct Wrapped<'a> {
    blob: &'a [u8],
    nonce: [u8; NONCE_LEN],
    sealed: &'a [u8],
}

fn parse_wrapped(bytes: &[u8]) -> Result<Wrapped<'_>, VaultError> {
    let bad = || VaultError::Malformed("wrappedKey is not a KMS-wrapped key".into());
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(bad)?;
    let (len, rest) = rest.split_at_checked(2).ok_or_else(bad)?;
    let blob_len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if blob_len == 0 || blob_len > MAX_BLOB_LEN {
        return Err(bad());
    }
    let (blob, rest) = rest.split_at_checked(blob_len).ok_or_else(bad)?;
    let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or_else(bad)?;
    if sealed.len() != KEY_LEN + TAG_LEN {
        return Err(bad());
    }
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    Ok(Wrapped {
        blob,
        nonce: n,
        sealed,
    })
}

#[async_trait]
impl KeyProvider for KmsKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, VaultError> {
        let mut plaintext = Zeroizing::new([0u8; KEY_LEN]);
        self.rng
            .fill(plaintext.as_mut_slice())
            .map_err(|_| VaultError::Keys("system random number generator failed".into()))?;
        let (wrapped, key_id) = self
            .wrap_under_kek(context, &plaintext, SEALING_LOCK_WAIT)
            .await?;
        Ok(DataKey {
            plaintext,
            wrapped,
            key_id,
        })
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        let arn = key_id.strip_prefix("kms:").ok_or_else(|| {
            VaultError::Keys(format!("key id {key_id:?} is not a KMS key of this vault"))
        })?;
        let parts = parse_wrapped(wrapped)?;
        let kek = self.opening_kek(arn, parts.blob, &context.feature).await?;
        let aad = context_aad(context)?;
        let mut buf = Zeroizing::new(parts.sealed.to_vec());
        let opened = aead_key(&kek)?
            .open_in_place(
                Nonce::assume_unique_for_key(parts.nonce),
                Aad::from(aad.as_slice()),
                buf.as_mut_slice(),
            )
            .map_err(|_| VaultError::Decrypt)?;
        to_key(opened)
    }
}

/// The `promptHash` key: `GenerateMac(HMAC_SHA_256, PROMPT_HASH_MAC_MESSAGE)` under `key_id`,
/// an HMAC_256 KMS key. The same on every instance; fails with a message naming the problem
/// (missing key, wrong key type, no permission) and never the MAC.
pub async fn prompt_hash_secret(
    client: &aws_sdk_kms::Client,
    key_id: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    use aws_sdk_kms::types::MacAlgorithmSpec;
    let what = format!("aws.prompt_hash_key_id {key_id:?}");
    let out = client
        .generate_mac()
        .key_id(key_id)
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .message(Blob::new(PROMPT_HASH_MAC_MESSAGE))
        .send()
        .await
        .map_err(|e| match super::error_code(&e) {
            Some("NotFoundException") => format!("{what}: no such KMS key"),
            Some("InvalidKeyUsageException" | "UnsupportedOperationException") => format!(
                "{what} is not an HMAC_256 KMS key with key usage GENERATE_VERIFY_MAC \
                 (create it with KeySpec HMAC_256)"
            ),
            Some("DisabledException" | "KMSInvalidStateException") => {
                format!("{what}: the KMS key is disabled or pending deletion")
            }
            Some("AccessDeniedException") => {
                format!("{what}: the gateway's role lacks kms:GenerateMac on this key")
            }
            _ => format!("{what}: {}", super::describe("KMS GenerateMac", &e)),
        })?;
    let mac = out
        .mac()
        .ok_or_else(|| format!("{what}: KMS GenerateMac returned no MAC"))?
        .as_ref();
    if mac.len() != 32 {
        return Err(format!(
            "{what}: KMS GenerateMac returned {} bytes, expected the 32 of HMAC_SHA_256",
            mac.len()
        ));
    }
    Ok(Zeroizing::new(mac.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A [`KmsApi`] that is really a local AES key: enough to test the cache's arithmetic
    /// without a network (the over-the-wire tests against moto are in `tests/aws.rs`).
    struct LocalKms(LessSafeKey);

    #[async_trait]
    impl KmsApi for LocalKms {
        async fn generate_data_key(
            &self,
            _key_id: &str,
            context: &BTreeMap<String, String>,
        ) -> Result<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>, String), VaultError> {
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            SystemRandom::new().fill(key.as_mut_slice()).unwrap();
            let aad = serde_json::to_vec(context).unwrap();
            let mut sealed = key.to_vec();
            self.0
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::from(aad.as_slice()),
                    &mut sealed,
                )
                .unwrap();
            Ok((key, sealed, "arn:local".into()))
        }
        async fn decrypt(
            &self,
            _key_id: &str,
            blob: &[u8],
            context: &BTreeMap<String, String>,
        ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
            let aad = serde_json::to_vec(context).unwrap();
            let mut buf = blob.to_vec();
            let plain = self
                .0
                .open_in_place(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::from(aad.as_slice()),
                    &mut buf,
                )
                .map_err(|_| VaultError::Decrypt)?;
            to_key(plain)
        }
    }

    fn keys(max_uses: u64) -> (std::sync::Arc<CountingKms<LocalKms>>, KmsKeys) {
        let kms = std::sync::Arc::new(CountingKms::new(LocalKms(
            aead_key(&[7u8; KEY_LEN]).unwrap(),
        )));
        let limits = CacheLimits {
            max_age: Duration::from_secs(60),
            max_uses,
        };
        (kms.clone(), KmsKeys::new(kms, "k", limits))
    }

    fn ctx(request_id: &str, feature: &str) -> EncryptionContext {
        EncryptionContext {
            request_id: request_id.into(),
            user_sub: "alice".into(),
            feature: feature.into(),
        }
    }

    #[tokio::test]
    async fn uses_bound_the_cache_and_contexts_bind_the_key() {
        let (kms, keys) = keys(3);
        let mut made = Vec::new();
        for i in 0..7 {
            let c = ctx(&format!("r{i}"), "f");
            made.push((c.clone(), keys.generate_data_key(&c).await.unwrap()));
        }
        // 7 records, 3 per KEK: 3 KEKs.
        assert_eq!(kms.generate_calls(), 3);
        for (c, k) in &made {
            let key = keys
                .decrypt_data_key(&k.wrapped, &k.key_id, c)
                .await
                .unwrap();
            assert_eq!(*key, *k.plaintext);
        }
        // Three distinct KEK blobs, each unwrapped once.
        assert_eq!(kms.decrypt_calls(), 3);
        let (c, k) = &made[0];
        let moved = ctx("other", &c.feature);
        assert!(matches!(
            keys.decrypt_data_key(&k.wrapped, &k.key_id, &moved).await,
            Err(VaultError::Decrypt)
        ));
        let other_feature = ctx(&c.request_id, "g");
        assert!(matches!(
            keys.decrypt_data_key(&k.wrapped, &k.key_id, &other_feature)
                .await,
            Err(VaultError::Decrypt)
        ));
        // A new feature gets its own KEK.
        keys.generate_data_key(&ctx("x", "g")).await.unwrap();
        assert_eq!(kms.generate_calls(), 4);
    }

    #[tokio::test]
    async fn truncated_or_foreign_wrapped_keys_are_malformed_not_panics() {
        let (_, keys) = keys(10);
        let k = keys.generate_data_key(&ctx("r", "f")).await.unwrap();
        for cut in [0, 3, 5, 10, k.wrapped.len() - 1] {
            let r = keys
                .decrypt_data_key(&k.wrapped[..cut], &k.key_id, &ctx("r", "f"))
                .await;
            assert!(matches!(r, Err(VaultError::Malformed(_))), "cut {cut}");
        }
        assert!(matches!(
            keys.decrypt_data_key(&k.wrapped, "local:1234", &ctx("r", "f"))
                .await,
            Err(VaultError::Keys(_))
        ));
    }
}
