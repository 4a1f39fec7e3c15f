//! The AWS data backends (DESIGN §7, `backend = "aws"`): the vault on S3 + KMS ([`s3`],
//! [`kms`]), audit events on CloudWatch Logs ([`cloudwatch`]), and the shared throttle counters
//! on DynamoDB (`crate::throttle::dynamo`), with a durable local [`spool`] in front of S3, KMS
//! and CloudWatch so a failing or throttling service does not lose an acknowledged record, and
//! the `promptHash` key derived from a KMS HMAC key so every instance hashes alike.
//! [`insights`] runs the SOC's Logs Insights queries on CloudWatch Logs Insights.
//!
//! This module owns the one place SDK clients are made ([`sdk_config`], [`Clients`]): the
//! configured region, an optional endpoint override (an emulator such as moto in tests),
//! bounded timeouts, and credentials from the default chain (environment, profile, web
//! identity, container or instance role) unless a caller passes static ones (tests). The rest of
//! the gateway sees only the project's own traits (`KeyProvider`, `ObjectStore`, `AuditStore`,
//! `Throttle`), never `aws_sdk_*` types.

pub mod cloudwatch;
pub mod console_events;
pub mod features;
pub mod insights;
pub mod kms;
pub mod s3;
pub mod spool;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::config::Credentials;
use aws_sdk_kms::error::ProvideErrorMetadata;

use crate::audit::AuditStore;
use crate::config::{AwsConfig, Config, Secret};
use crate::throttle::Throttle;
use crate::throttle::dynamo::DynamoThrottle;
use crate::vault::Vault;

/// An access key pair given explicitly (tests against an emulator), instead of the default chain.
#[derive(Debug, Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// One SDK configuration for every client: region, endpoint override, timeouts, credentials.
pub async fn sdk_config(aws: &AwsConfig, credentials: Option<&StaticCredentials>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(aws.region.clone()))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.expose().to_string(),
            None,
            None,
            "golden-path-static",
        ));
    }
    loader.load().await
}

/// The SDK clients of the data backends, built from one [`SdkConfig`].
#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Clients {
    /// One client per service; `[aws.endpoints]` overrides `endpoint_url` per service.
    pub fn new(sdk: &SdkConfig, aws: &AwsConfig) -> Clients {
        let e = &aws.endpoints;
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk);
        // Emulators serve buckets by path, not by virtual host.
        s3.set_force_path_style(Some(aws.endpoint_url.is_some() || e.s3.is_some()));
        if e.s3.is_some() {
            s3.set_endpoint_url(e.s3.clone());
        }
        let mut kms = aws_sdk_kms::config::Builder::from(sdk);
        if e.kms.is_some() {
            kms.set_endpoint_url(e.kms.clone());
        }
        let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(sdk);
        if e.logs.is_some() {
            logs.set_endpoint_url(e.logs.clone());
        }
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        if e.dynamodb.is_some() {
            dynamodb.set_endpoint_url(e.dynamodb.clone());
        }
        // The throttle asks DynamoDB on every request and falls back to in-process counters
        // when it cannot: an unreachable or hanging table must cost at most a couple of
        // seconds per call, not the default 30 s with backoff (and after a failure the throttle
        // leaves the table alone for a few seconds, so only one request pays it).
        dynamodb.set_timeout_config(Some(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_millis(1_000))
                .operation_timeout(Duration::from_secs(2))
                .build(),
        ));
        dynamodb.set_retry_config(Some(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(200)),
        ));
        let (s3, kms, logs, dynamodb) = (s3.build(), kms.build(), logs.build(), dynamodb.build());
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            kms: aws_sdk_kms::Client::from_conf(kms),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
        }
    }
}

/// The data backends `backend = "aws"` names, built and checked once at start-up.
pub struct DataBackends {
    pub audit: Arc<dyn AuditStore>,
    pub vault: Vault,
    pub throttle: Arc<dyn Throttle>,
    /// Where vault objects and audit events wait while S3, KMS or CloudWatch is failing.
    pub spool: Arc<spool::Spool>,
    /// The `promptHash` key derived from `aws.prompt_hash_key_id` with KMS `GenerateMac`
    /// (the same on every instance); `None` when that key is not configured.
    pub prompt_hash_secret: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl DataBackends {
    /// Build the vault (S3 + KMS), the audit store (CloudWatch Logs) and the throttle counters
    /// (DynamoDB) from `[aws]`; fails with a message naming what is missing or unreachable.
    pub async fn build(
        config: &Config,
        credentials: Option<&StaticCredentials>,
    ) -> anyhow::Result<DataBackends> {
        let aws = config
            .aws
            .as_ref()
            .context("backend = \"aws\" needs an [aws] section")?;
        let sdk = sdk_config(aws, credentials).await;
        let clients = Clients::new(&sdk, aws);
        let retention_days = config.vault.retention_days;
        if aws.check_bucket {
            s3::check_bucket(&clients.s3, &aws.vault_bucket, retention_days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let prompt_hash_secret = match &aws.prompt_hash_key_id {
            Some(id) => Some(
                kms::prompt_hash_secret(&clients.kms, id)
                    .await
                    .map_err(|e| anyhow::anyhow!("prompt hash key: {e}"))?,
            ),
            None => {
                tracing::warn!(
                    "aws.prompt_hash_key_id is not set: prompt hashes use this instance's own \
                     key and will not match across instances"
                );
                None
            }
        };
        let keys = kms::KmsKeys::new(
            kms::SdkKms(clients.kms.clone()),
            &aws.kms_key_id,
            kms::CacheLimits {
                max_age: Duration::from_secs(aws.kek_max_age_secs),
                max_uses: aws.kek_max_uses,
            },
        );
        let objects = Arc::new(s3::S3Store::new(
            clients.s3.clone(),
            &aws.vault_bucket,
            &aws.kms_key_id,
        ));
        let audit: Arc<dyn AuditStore> = match aws.audit_sink.as_str() {
            "stdout" => Arc::new(cloudwatch::CloudWatchAudit::stdout(
                clients.logs.clone(),
                &aws.log_group,
            )),
            _ => Arc::new(
                cloudwatch::CloudWatchAudit::put_log_events(
                    clients.logs.clone(),
                    &aws.log_group,
                    &aws.log_stream,
                )
                .await
                .map_err(|e| anyhow::anyhow!("audit log group {:?}: {e}", aws.log_group))?,
            ),
        };
        let spool = spool::Spool::open(&config.data_dir, objects, audit)
            .map_err(|e| anyhow::anyhow!("local spool: {e}"))?;
        if spool.backlog() > 0 {
            tracing::warn!(backlog = spool.backlog(), "replaying spooled records");
        }
        spool.start_replayer(SPOOL_REPLAY_EVERY);
        let vault = Vault {
            keys: spool.keys(Arc::new(keys)),
            objects: spool.objects(),
            retention_days,
        };
        let throttle = DynamoThrottle::new(clients.dynamodb.clone(), &aws.throttle_table);
        throttle
            .check()
            .await
            .map_err(|e| anyhow::anyhow!("throttle table {:?}: {e}", aws.throttle_table))?;
        Ok(DataBackends {
            audit: spool.audit(),
            vault,
            throttle: Arc::new(throttle),
            spool,
            prompt_hash_secret,
        })
    }
}

/// How often the spool retries delivery while it has a backlog.
const SPOOL_REPLAY_EVERY: Duration = Duration::from_secs(5);

/// Longest service error text kept in an error message.
const MAX_ERROR_TEXT: usize = 300;

/// `Operation failed: Code: message`, bounded, for errors that may reach logs. AWS error
/// messages name resources, never payloads, so they are safe to keep.
pub(crate) fn describe<E>(operation: &str, err: &aws_sdk_kms::error::SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_kms::error::SdkError;
    let detail = match err {
        SdkError::ServiceError(e) => {
            let e = e.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("unknown error"),
                e.message().unwrap_or("")
            )
        }
        SdkError::TimeoutError(_) => "timed out".to_string(),
        SdkError::DispatchFailure(_) => "could not reach the service".to_string(),
        SdkError::ResponseError(_) => "unreadable response".to_string(),
        SdkError::ConstructionFailure(_) => "request could not be built".to_string(),
        _ => "request failed".to_string(),
    };
    let mut text = format!("{operation} failed: {detail}");
    if text.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The service error code of a failed call, if the service answered.
pub(crate) fn error_code<E: ProvideErrorMetadata>(
    err: &aws_sdk_kms::error::SdkError<E>,
) -> Option<&str> {
    match err {
        aws_sdk_kms::error::SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}
