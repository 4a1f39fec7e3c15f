//! The vault's [`ObjectStore`] on S3, and the start-up check of the vault bucket.
//!
//! - `put` is PutObject with SSE-KMS under the configured key and `If-None-Match: *`, so a
//!   record is never overwritten (S3 answers 412 if the key exists). A 412 is taken as success:
//!   object keys end in the gateway's own fresh request id, so an existing object can only be an
//!   earlier attempt of the same write whose answer was lost (an SDK retry or a spool replay).
//! - `get` is GetObject, bounded to [`MAX_OBJECT_BYTES`].
//! - `delete_older_than` lists `prompts/` and deletes what is past retention; in AWS the
//!   bucket's lifecycle rule does this too (moto stores lifecycle rules but never runs them).
//! - [`check_bucket`] refuses a bucket that does not block public access, encrypt by default
//!   with KMS and expire `prompts/` within the retention, naming everything that is missing.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ExpirationStatus, ServerSideEncryption};

use super::{describe, error_code};
use crate::vault::{ObjectStore, VaultError};

/// Largest vault object read back.
pub const MAX_OBJECT_BYTES: i64 = 64 * 1024 * 1024;
/// Most list pages one sweep walks (1,000 keys each).
const MAX_SWEEP_PAGES: usize = 1000;
/// The prefix every vault object lives under.
pub const PREFIX: &str = "prompts/";

/// Vault objects in one S3 bucket, encrypted at rest with SSE-KMS.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, kms_key_id: &str) -> S3Store {
        S3Store {
            client,
            bucket: bucket.to_string(),
            kms_key_id: kms_key_id.to_string(),
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), VaultError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_id)
            .if_none_match("*")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("PreconditionFailed") => {
                tracing::debug!(key, "vault object already exists; not overwritten");
                Ok(())
            }
            Err(e) => Err(VaultError::Storage(describe("S3 PutObject", &e))),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if error_code(&e) == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(VaultError::Storage(describe("S3 GetObject", &e))),
        };
        if out.content_length().unwrap_or(0) > MAX_OBJECT_BYTES {
            return Err(VaultError::Malformed("vault object too large".into()));
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|_| VaultError::Storage("S3 GetObject: body interrupted".into()))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn delete_older_than(&self, before_ms: i64) -> Result<u64, VaultError> {
        let mut deleted = 0u64;
        let mut token: Option<String> = None;
        for _ in 0..MAX_SWEEP_PAGES {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(PREFIX)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| VaultError::Storage(describe("S3 ListObjectsV2", &e)))?;
            for object in page.contents() {
                let (Some(key), Some(modified)) = (object.key(), object.last_modified()) else {
                    continue;
                };
                if modified.to_millis().unwrap_or(i64::MAX) >= before_ms {
                    continue;
                }
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| VaultError::Storage(describe("S3 DeleteObject", &e)))?;
                deleted += 1;
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(deleted)
    }
}

/// Check that `bucket` blocks public access, encrypts by default with KMS, and has an enabled
/// lifecycle rule expiring `prompts/` within `retention_days`. The error names every gap.
pub async fn check_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    retention_days: u32,
) -> Result<(), VaultError> {
    let mut missing: Vec<String> = Vec::new();

    match client.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => {
            let c = out.public_access_block_configuration();
            let off: Vec<&str> = [
                ("BlockPublicAcls", c.and_then(|c| c.block_public_acls())),
                ("IgnorePublicAcls", c.and_then(|c| c.ignore_public_acls())),
                ("BlockPublicPolicy", c.and_then(|c| c.block_public_policy())),
                (
                    "RestrictPublicBuckets",
                    c.and_then(|c| c.restrict_public_buckets()),
                ),
            ]
            .into_iter()
            .filter(|(_, on)| *on != Some(true))
            .map(|(name, _)| name)
            .collect();
            if !off.is_empty() {
                missing.push(format!("public access block is off for {}", off.join(", ")));
            }
        }
        Err(e) if error_code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => {
            missing.push("no public access block".into());
        }
        Err(e) => return Err(VaultError::Storage(describe("S3 GetPublicAccessBlock", &e))),
    }

    match client.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => {
            let kms = out
                .server_side_encryption_configuration()
                .map(|c| c.rules())
                .unwrap_or_default()
                .iter()
                .filter_map(|r| r.apply_server_side_encryption_by_default())
                .any(|d| {
                    matches!(
                        d.sse_algorithm(),
                        ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse
                    )
                });
            if !kms {
                missing.push("default encryption is not SSE-KMS".into());
            }
        }
        Err(e) if error_code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            missing.push("no default encryption (SSE-KMS)".into());
        }
        Err(e) => return Err(VaultError::Storage(describe("S3 GetBucketEncryption", &e))),
    }

    match client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => {
            let expires = out.rules().iter().any(|rule| {
                #[expect(deprecated, reason = "old rules put the prefix outside the filter")]
                let prefix = rule
                    .filter()
                    .and_then(|f| f.prefix())
                    .or(rule.prefix())
                    .unwrap_or("");
                let days = rule.expiration().and_then(|e| e.days()).unwrap_or(0);
                *rule.status() == ExpirationStatus::Enabled
                    && PREFIX.starts_with(prefix)
                    && days >= 1
                    && u32::try_from(days).is_ok_and(|d| d <= retention_days)
                    && rule
                        .filter()
                        .is_none_or(|f| f.tag().is_none() && f.and().is_none())
            });
            if !expires {
                missing.push(format!(
                    "no enabled lifecycle rule expiring {PREFIX} within {retention_days} days"
                ));
            }
        }
        Err(e) if error_code(&e) == Some("NoSuchLifecycleConfiguration") => {
            missing.push(format!(
                "no lifecycle rule (one must expire {PREFIX} within {retention_days} days)"
            ));
        }
        Err(e) => {
            return Err(VaultError::Storage(describe(
                "S3 GetBucketLifecycleConfiguration",
                &e,
            )));
        }
    }

    if missing.is_empty() {
        Ok(())
    } else {
        Err(VaultError::Storage(format!(
            "vault bucket {bucket:?} is not safe to store prompts in: {}",
            missing.join("; ")
        )))
    }
}
