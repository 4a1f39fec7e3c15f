//! The local key hierarchy: a master key file wraps per-record data keys.
//!
//! The master key is 32 random bytes in `<data_dir>/keys/vault-master.key` (file 0600, directory
//! 0700), created on first run. Creation is atomic and never clobbers: the key is written to a
//! temporary file, fsynced, then hard-linked into place (`link` fails if the name exists, unlike
//! `rename`), so two processes starting together end up with the same key, and a reader never
//! sees a partial key file.
//!
//! Its key id is `local:<first 8 hex digits of sha256(master)>`. A data key is wrapped as
//! `nonce (12) || AES-256-GCM(master, data key) (32) || tag (16)` with the canonical JSON of the
//! encryption context (keys sorted, no whitespace) as AAD, which is what KMS's encryption
//! context does for `GenerateDataKey`/`Decrypt`.

use std::path::Path;

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{DataKey, EncryptionContext, KeyProvider, VaultError};

/// Bytes in the master key and in a data key.
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// `nonce || ciphertext || tag` of a wrapped data key.
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
/// The master key's file name under `<data_dir>/keys/`.
pub const MASTER_KEY_FILE: &str = "vault-master.key";

/// The embedded [`KeyProvider`]: one master key from the data directory.
pub struct LocalKeys {
    key_id: String,
    master: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeys")
            .field("key_id", &self.key_id)
            .field("master", &"*****")
            .finish()
    }
}

impl LocalKeys {
    /// Load `<data_dir>/keys/vault-master.key`, creating it (and the directory) on first run.
    pub fn open(data_dir: &Path) -> Result<LocalKeys, VaultError> {
        let dir = data_dir.join("keys");
        create_private_dir(&dir)?;
        let master = load_or_create(&dir.join(MASTER_KEY_FILE))?;
        LocalKeys::from_master(&master)
    }

    /// A key provider over the given master key (tests, or a key held elsewhere).
    pub fn from_master(master: &[u8; KEY_LEN]) -> Result<LocalKeys, VaultError> {
        let hash = digest(&SHA256, master);
        let key_id = format!("local:{}", hex::encode(&hash.as_ref()[..4]));
        let unbound = UnboundKey::new(&AES_256_GCM, master)
            .map_err(|_| VaultError::Keys("master key rejected by AES-256-GCM".into()))?;
        Ok(LocalKeys {
            key_id,
            master: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// `local:<8 hex digits>`, stored with every record this key wraps.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

#[async_trait]
impl KeyProvider for LocalKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, VaultError> {
        let aad = context_aad(context)?;
        let mut plaintext = Zeroizing::new([0u8; KEY_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(plaintext.as_mut_slice())
            .and_then(|()| self.rng.fill(&mut nonce))
            .map_err(|_| VaultError::Keys("system random number generator failed".into()))?;

        // Sealed in place: the buffer holds key material until it is encrypted, so wipe it.
        let mut sealed = Zeroizing::new(*plaintext);
        let tag = self
            .master
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_slice()),
                sealed.as_mut_slice(),
            )
            .map_err(|_| VaultError::Keys("cannot wrap the data key".into()))?;

        let mut wrapped = Vec::with_capacity(WRAPPED_LEN);
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(sealed.as_slice());
        wrapped.extend_from_slice(tag.as_ref());
        Ok(DataKey {
            plaintext,
            wrapped,
            key_id: self.key_id.clone(),
        })
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        if key_id != self.key_id {
            return Err(VaultError::Keys(format!(
                "unknown key id {key_id:?} (this vault's master key is {})",
                self.key_id
            )));
        }
        if wrapped.len() != WRAPPED_LEN {
            return Err(VaultError::Decrypt);
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Decrypt)?;
        let aad = context_aad(context)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let opened = self
            .master
            .open_in_place(nonce, Aad::from(aad.as_slice()), buf.as_mut_slice())
            .map_err(|_| VaultError::Decrypt)?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if opened.len() != KEY_LEN {
            return Err(VaultError::Decrypt);
        }
        key.copy_from_slice(opened);
        Ok(key)
    }
}

/// The canonical JSON of an encryption context: `{"feature":…,"requestId":…,"userSub":…}`,
/// keys sorted, no whitespace. The AAD of both the key wrap and the record seal.
pub fn context_aad(context: &EncryptionContext) -> Result<Vec<u8>, VaultError> {
    serde_json::to_vec(&context.as_map())
        .map_err(|e| VaultError::Keys(format!("cannot encode the encryption context: {e}")))
}

/// Read the master key, or create it (0600, atomically) if there is none yet.
fn load_or_create(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    let bytes = crate::secret_file::load_or_create(path, KEY_LEN)
        .map_err(|e| VaultError::Keys(format!("master key {}: {e}", path.display())))?;
    if bytes.len() != KEY_LEN {
        return Err(VaultError::Keys(format!(
            "master key {} is malformed (expected {KEY_LEN} bytes)",
            path.display()
        )));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Create `dir` (and parents) and make it owner-only.
fn create_private_dir(dir: &Path) -> Result<(), VaultError> {
    let fail = |e: std::io::Error| {
        VaultError::Keys(format!(
            "cannot create the key directory {}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(user: &str) -> EncryptionContext {
        EncryptionContext {
            request_id: "req-1".into(),
            user_sub: user.into(),
            feature: "support-bot".into(),
        }
    }

    #[test]
    fn canonical_context_is_sorted_compact_json() {
        let aad = context_aad(&ctx("alice")).unwrap();
        assert_eq!(
            String::from_utf8(aad).unwrap(),
            r#"{"feature":"support-bot","requestId":"req-1","userSub":"alice"}"#
        );
    }

    #[tokio::test]
    async fn wrap_unwrap_round_trip_and_context_binding() {
        let dir = tempfile::tempdir().unwrap();
        let keys = LocalKeys::open(dir.path()).unwrap();
        let dk = keys.generate_data_key(&ctx("alice")).await.unwrap();
        assert_eq!(dk.wrapped.len(), WRAPPED_LEN);
        assert_eq!(dk.key_id, keys.key_id());
        assert!(dk.key_id.starts_with("local:") && dk.key_id.len() == "local:".len() + 8);

        let back = keys
            .decrypt_data_key(&dk.wrapped, &dk.key_id, &ctx("alice"))
            .await
            .unwrap();
        assert_eq!(*back, *dk.plaintext);

        let wrong = keys
            .decrypt_data_key(&dk.wrapped, &dk.key_id, &ctx("mallory"))
            .await;
        assert!(matches!(wrong, Err(VaultError::Decrypt)));

        let unknown = keys
            .decrypt_data_key(&dk.wrapped, "local:deadbeef", &ctx("alice"))
            .await;
        assert!(matches!(unknown, Err(VaultError::Keys(_))));

        let mut tampered = dk.wrapped.clone();
        tampered[NONCE_LEN] ^= 1;
        let res = keys
            .decrypt_data_key(&tampered, &dk.key_id, &ctx("alice"))
            .await;
        assert!(matches!(res, Err(VaultError::Decrypt)));

        // Two data keys are different, and so are their nonces.
        let dk2 = keys.generate_data_key(&ctx("alice")).await.unwrap();
        assert_ne!(*dk2.plaintext, *dk.plaintext);
        assert_ne!(dk2.wrapped[..NONCE_LEN], dk.wrapped[..NONCE_LEN]);
    }

    #[tokio::test]
    async fn master_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalKeys::open(dir.path()).unwrap();
        let path = dir.path().join("keys").join(MASTER_KEY_FILE);
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file_mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(file_mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(dir.path().join("keys"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        // No temporary files left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
            1
        );

        let dk = first.generate_data_key(&ctx("alice")).await.unwrap();
        let second = LocalKeys::open(dir.path()).unwrap();
        assert_eq!(second.key_id(), first.key_id());
        let back = second
            .decrypt_data_key(&dk.wrapped, &dk.key_id, &ctx("alice"))
            .await
            .unwrap();
        assert_eq!(*back, *dk.plaintext);
    }

    #[test]
    fn concurrent_first_runs_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| LocalKeys::open(dir.path()).unwrap().key_id().to_string()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    }

    #[test]
    fn malformed_master_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let path = dir.path().join("keys").join(MASTER_KEY_FILE);
        std::fs::write(&path, b"short").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            LocalKeys::open(dir.path()),
            Err(VaultError::Keys(m)) if m.contains("malformed")
        ));
    }

    #[test]
    fn debug_hides_the_master_key() {
        let keys = LocalKeys::from_master(&[7u8; KEY_LEN]).unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains("*****") && shown.contains(keys.key_id()));
    }
}
