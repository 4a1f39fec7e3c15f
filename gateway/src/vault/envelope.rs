//! AES-256-GCM sealing of a [`super::VaultRecord`] under a data key, with the encryption
//! context as AAD, and the sealed record's on-disk/S3 format.

use std::path::Path;
use std::sync::Arc;

use super::{Vault, VaultError, VaultRecord};

impl Vault {
    /// The embedded vault: a master key in `<data_dir>/keys/vault-master.key` (0600, created on
    /// first run) and records under `<data_dir>/vault/`.
    pub fn embedded(data_dir: &Path, retention_days: u32) -> Result<Vault, VaultError> {
        let _ = (data_dir, Arc::new(()));
        let _ = retention_days;
        todo!("records helper")
    }

    /// Seal and store one record; returns its object key. Returns only once durable.
    pub async fn put(&self, _record: &VaultRecord) -> Result<String, VaultError> {
        todo!("records helper")
    }

    /// Fetch and decrypt one record. Refuses records past retention.
    pub async fn open(&self, _object_key: &str) -> Result<VaultRecord, VaultError> {
        todo!("records helper")
    }

    /// Delete records past retention; returns how many.
    pub async fn sweep_expired(&self) -> Result<u64, VaultError> {
        todo!("records helper")
    }
}
