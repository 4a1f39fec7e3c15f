//! Typed, layered configuration: built-in defaults → a TOML file → `GOLDEN_PATH_*` environment
//! variables, then [`Config::validate`]. Unknown keys are rejected at every layer.
//!
//! With no file the gateway runs on the embedded default: data in `./data`, one feature
//! `default` bound to the development model and the default guardrail.
//!
//! Environment overrides name a key path with `__` between levels, after the prefix:
//! `GOLDEN_PATH_DATA_DIR=/srv/gp`, `GOLDEN_PATH_SERVER__LISTEN=0.0.0.0:8080`,
//! `GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__REQUESTS_PER_MINUTE=60`. Values are read as TOML
//! (numbers, booleans, arrays) and otherwise as strings. `GOLDEN_PATH_CONFIG` names the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::verify::TokenUse;
use crate::guard::GuardrailRef;
use crate::guard::policy::GuardrailPolicy;

/// The environment variable prefix for overrides.
pub const ENV_PREFIX: &str = "GOLDEN_PATH_";
/// The environment variable naming the config file.
pub const ENV_CONFIG_FILE: &str = "GOLDEN_PATH_CONFIG";
/// Variables under the prefix that are not config keys: the file's own name, and the console's
/// Leptos.toml location.
const ENV_NOT_KEYS: &[&str] = &[ENV_CONFIG_FILE, "GOLDEN_PATH_LEPTOS_TOML"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded backends keep their data (keys, audit.db, vault/).
    pub data_dir: PathBuf,
    /// `embedded` (SQLite and local files). `aws` arrives with the AWS backends.
    pub backend: Backend,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub vault: VaultConfig,
    /// The AWS backends (`backend = "aws"`): region, endpoint, bucket, key, log group, table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsConfig>,
    /// Features by name: who may call, which model, which guardrail, what throttles.
    pub features: BTreeMap<String, FeatureConfig>,
    /// Model aliases → providers.
    pub models: BTreeMap<String, ModelConfig>,
    /// Guardrail policies by id (Bedrock's CreateGuardrail shape).
    pub guardrails: BTreeMap<String, GuardrailPolicy>,
    /// The console's sign-in options (`[console.oidc]`: single sign-on).
    #[serde(default)]
    pub console: ConsoleConfig,
    /// On `backend = "aws"`, each instance re-reads the console's feature overrides from
    /// DynamoDB at most this often (seconds), so a console change reaches every instance
    /// within it. Unused on the embedded default (one process, changes apply at once).
    #[serde(default = "default_features_refresh_secs")]
    pub features_refresh_secs: u64,
}

fn default_features_refresh_secs() -> u64 {
    5
}

/// `[console]`: how people sign in to the console.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Single sign-on through an OpenID Connect provider (the Cognito hosted UI in AWS). Absent:
    /// local accounts only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
    /// Separation of duties: a change that grants the `soc` role's access (a new `soc`
    /// account, a role change to `soc`, re-enabling or setting the password of a `soc` account)
    /// waits until another admin approves it on the Accounts page. Off by default.
    #[serde(default)]
    pub soc_grant_requires_second_admin: bool,
}

/// `[console.oidc]`: an OpenID Connect provider for console sign-in (authorization code + PKCE).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL; its discovery document is `<issuer>/.well-known/openid-configuration`
    /// (Cognito: `https://cognito-idp.<region>.amazonaws.com/<user pool id>`).
    pub issuer: String,
    /// The app client's id (the ID token's `aud`).
    pub client_id: String,
    /// The app client's secret, for clients that have one (sent with HTTP Basic).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Where the provider sends the browser back: `https://<console>/auth/oidc/callback`,
    /// registered with the provider exactly.
    pub redirect_url: String,
    /// The ID-token claim holding the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The groups that grant each console role; the strongest role a user's groups name wins.
    #[serde(default = "default_admin_group")]
    pub admin_group: String,
    #[serde(default = "default_soc_group")]
    pub soc_group: String,
    #[serde(default = "default_viewer_group")]
    pub viewer_group: String,
}

fn default_groups_claim() -> String {
    "cognito:groups".into()
}
fn default_admin_group() -> String {
    "admin".into()
}
fn default_soc_group() -> String {
    "soc".into()
}
fn default_viewer_group() -> String {
    "viewer".into()
}

impl OidcConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("console.oidc.{m}")));
        for (name, value) in [
            ("issuer", &self.issuer),
            ("redirect_url", &self.redirect_url),
        ] {
            if !(value.starts_with("https://") || value.starts_with("http://"))
                || value.len() > 2048
            {
                return bad(format!(
                    "{name} must be an http(s) URL of at most 2048 characters"
                ));
            }
        }
        for (name, value) in [
            ("client_id", &self.client_id),
            ("groups_claim", &self.groups_claim),
            ("admin_group", &self.admin_group),
            ("soc_group", &self.soc_group),
            ("viewer_group", &self.viewer_group),
        ] {
            if value.trim().is_empty() || value.len() > 256 {
                return bad(format!("{name} must be set (at most 256 characters)"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Embedded,
    /// S3 + KMS vault, CloudWatch Logs audit, DynamoDB throttle counters (`[aws]`).
    Aws,
}

/// `[aws]`: where the AWS backends live. Credentials come from the default chain (environment,
/// profile, web identity, container or instance role), never from this file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// e.g. `eu-west-1`.
    pub region: String,
    /// Overrides every service endpoint (an emulator such as moto in tests). Absent: AWS.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The prompt vault's S3 bucket.
    pub vault_bucket: String,
    /// The KMS key (id, ARN or `alias/...`) that wraps vault keys and encrypts objects (SSE-KMS).
    pub kms_key_id: String,
    /// The CloudWatch Logs group and stream audit events go to.
    pub log_group: String,
    #[serde(default = "default_log_stream")]
    pub log_stream: String,
    /// `cloudwatch` (batched PutLogEvents) or `stdout` (one JSON line per event, for Lambda,
    /// whose runtime ships stdout to the function's log group).
    #[serde(default = "default_audit_sink")]
    pub audit_sink: String,
    /// The DynamoDB table holding the shared throttle counters (partition key `pk`, string).
    pub throttle_table: String,
    /// Refuse to start unless the bucket blocks public access, encrypts by default and expires
    /// `prompts/` within the vault retention.
    #[serde(default = "default_true")]
    pub check_bucket: bool,
    /// A KMS-issued key-encryption key is reused for at most this many seconds...
    #[serde(default = "default_kek_max_age")]
    pub kek_max_age_secs: u64,
    /// ...and at most this many records, then a fresh one is requested from KMS.
    #[serde(default = "default_kek_max_uses")]
    pub kek_max_uses: u64,
    /// An HMAC_256 KMS key (id, ARN or `alias/...`, key usage GENERATE_VERIFY_MAC): the
    /// `promptHash` key is derived from it once at start-up with `GenerateMac`, so every
    /// instance hashes the same prompt the same way. Absent: a random key per data dir (hashes
    /// then match only within one instance).
    #[serde(default)]
    pub prompt_hash_key_id: Option<String>,
    /// Per-service endpoint overrides (`s3`, `kms`, `logs`, `dynamodb`), taking precedence
    /// over `endpoint_url` for that service (VPC or FIPS endpoints; fault tests).
    #[serde(default)]
    pub endpoints: ServiceEndpoints,
    /// Where guardrails live: `bedrock` (the default: ApplyGuardrail and the guardrail control
    /// plane, features pin Bedrock guardrail ids, `endpoints.bedrock` overrides the endpoint) or
    /// `embedded` (the built-in registry in the data dir, as on `backend = "embedded"`).
    #[serde(default)]
    pub guardrails: GuardrailsBackend,
}

/// `aws.guardrails`: which registry and engine guard requests on `backend = "aws"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailsBackend {
    #[default]
    Bedrock,
    Embedded,
}

/// `[aws.endpoints]`: one optional endpoint URL per service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEndpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb: Option<String>,
    /// Bedrock's guardrail control plane and runtime (ApplyGuardrail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<String>,
}

fn default_log_stream() -> String {
    "gateway".into()
}
fn default_audit_sink() -> String {
    "cloudwatch".into()
}
fn default_true() -> bool {
    true
}
fn default_kek_max_age() -> u64 {
    300
}
fn default_kek_max_uses() -> u64 {
    10_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the gateway listens on.
    pub listen: String,
    /// Largest request body accepted, in bytes (larger → 413).
    pub max_body_bytes: usize,
    /// Most messages in one chat request.
    pub max_messages: usize,
    /// Upper bound on one request, model call included, in seconds.
    pub request_timeout_secs: u64,
    /// A request's headers must arrive within this many seconds of the server starting to wait
    /// for them; an idle keep-alive connection is closed after it too (both listeners).
    pub header_read_timeout_secs: u64,
    /// A request's body must be read within this many seconds of its headers (only the
    /// request: a streamed answer can run longer).
    pub body_read_timeout_secs: u64,
    /// Most open connections per listener; more are accepted and closed at once.
    pub max_connections: usize,
    /// Most open connections from one address per listener (addresses in `trusted_proxies`
    /// count only towards `max_connections`).
    pub max_connections_per_addr: usize,
    /// Load balancers and proxies (CIDRs, e.g. `["10.42.1.0/24"]`) whose `X-Forwarded-For` is
    /// believed: from them, the client address is the right-most hop not in this list. Empty:
    /// the client address is the TCP peer.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The expected `iss`. On the embedded default, the local issuer's name.
    pub issuer: String,
    /// Where to fetch the JWKS. Absent: the embedded issuer's own keys.
    pub jwks_url: Option<String>,
    pub token_use: TokenUse,
    /// Clock skew allowed on `exp`/`nbf`, in seconds.
    pub leeway_secs: u64,
    /// Least time between two JWKS refreshes (on an unknown `kid`, or retrying a failed one),
    /// in seconds.
    pub jwks_min_refresh_secs: u64,
    /// How long fetched JWKS keys are used when the answer has no `Cache-Control: max-age`, in
    /// seconds (60-3600; a `max-age` is clamped to that range too). A key removed from the
    /// JWKS is refused at most this long after it was last fetched.
    pub jwks_max_age_secs: u64,
    /// A claim naming the app client instead of `client_id`/`aud`.
    pub client_claim: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Records are deleted, and refused when opened, after this many days.
    pub retention_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// App client ids whose tokens belong to this feature.
    pub clients: Vec<String>,
    /// Model aliases this feature may use; the first is used when the request names none.
    pub models: Vec<String>,
    /// The guardrail id and pinned version applied on the way in and out.
    pub guardrail: String,
    pub guardrail_version: String,
    pub throttle: ThrottleLimits,
}

impl FeatureConfig {
    pub fn guardrail_ref(&self) -> GuardrailRef {
        GuardrailRef {
            id: self.guardrail.clone(),
            version: self.guardrail_version.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleLimits {
    /// Sustained request rate.
    pub requests_per_minute: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
    /// Model tokens (input + output) per rolling minute.
    pub tokens_per_minute: u64,
    /// Model tokens (input + output) per UTC day.
    pub tokens_per_day: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelConfig {
    /// The built-in deterministic development model.
    Development {},
    /// An OpenAI-compatible upstream (vLLM, Ollama, llama.cpp server).
    Openai {
        /// e.g. `http://127.0.0.1:11434/v1`
        base_url: String,
        /// The upstream's model name.
        model: String,
        #[serde(default)]
        api_key: Option<Secret>,
        #[serde(default = "default_upstream_timeout")]
        timeout_secs: u64,
    },
    /// Amazon Bedrock (Converse / ConverseStream), credentials from the AWS default chain.
    Bedrock {
        /// The model id or inference-profile ARN called, e.g.
        /// `anthropic.claude-3-5-haiku-20241022-v1:0`.
        model_id: String,
        /// Overrides the SDK's region (`AWS_REGION`).
        #[serde(default)]
        region: Option<String>,
        /// Overrides the endpoint (a VPC endpoint's DNS name, or a test peer).
        #[serde(default)]
        endpoint_url: Option<String>,
        #[serde(default = "default_upstream_timeout")]
        timeout_secs: u64,
    },
}

fn default_upstream_timeout() -> u64 {
    120
}

impl ModelConfig {
    /// The pinned model id recorded in audit events.
    pub fn model_id(&self, alias: &str) -> String {
        match self {
            ModelConfig::Development {} => format!("golden-path/development:{alias}"),
            ModelConfig::Openai {
                base_url, model, ..
            } => format!("openai-compatible:{base_url}#{model}"),
            ModelConfig::Bedrock { model_id, .. } => format!("bedrock:{model_id}"),
        }
    }
}

/// A secret string: never printed by `Debug` or `Serialize`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("*****")
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./data"),
            backend: Backend::Embedded,
            server: ServerConfig {
                listen: "127.0.0.1:8080".into(),
                max_body_bytes: 1024 * 1024,
                max_messages: 256,
                request_timeout_secs: 300,
                header_read_timeout_secs: 20,
                body_read_timeout_secs: 60,
                max_connections: 4096,
                max_connections_per_addr: 256,
                trusted_proxies: Vec::new(),
            },
            auth: AuthConfig {
                issuer: "golden-path-local".into(),
                jwks_url: None,
                token_use: TokenUse::Access,
                leeway_secs: 30,
                jwks_min_refresh_secs: 30,
                jwks_max_age_secs: 600,
                client_claim: None,
            },
            vault: VaultConfig { retention_days: 90 },
            aws: None,
            console: ConsoleConfig::default(),
            features_refresh_secs: default_features_refresh_secs(),
            features: BTreeMap::from([(
                "default".to_string(),
                FeatureConfig {
                    clients: vec!["default".into()],
                    models: vec!["dev".into()],
                    guardrail: "default".into(),
                    guardrail_version: "1".into(),
                    throttle: ThrottleLimits {
                        requests_per_minute: 600,
                        burst: 100,
                        tokens_per_minute: 200_000,
                        tokens_per_day: 5_000_000,
                    },
                },
            )]),
            models: BTreeMap::from([("dev".to_string(), ModelConfig::Development {})]),
            guardrails: BTreeMap::from([(
                "default".to_string(),
                GuardrailPolicy::default_policy(),
            )]),
        }
    }
}

impl AwsConfig {
    fn validate(&self, retention_days: u32) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("aws.{m}")));
        for (name, value) in [
            ("region", &self.region),
            ("vault_bucket", &self.vault_bucket),
            ("kms_key_id", &self.kms_key_id),
            ("log_group", &self.log_group),
            ("log_stream", &self.log_stream),
            ("throttle_table", &self.throttle_table),
        ] {
            if value.trim().is_empty() || value.len() > 2048 {
                return bad(format!("{name} must be set (at most 2048 characters)"));
            }
        }
        if !self
            .region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad(format!("region {:?} is not a region name", self.region));
        }
        let endpoints = [
            ("endpoint_url", &self.endpoint_url),
            ("endpoints.s3", &self.endpoints.s3),
            ("endpoints.kms", &self.endpoints.kms),
            ("endpoints.logs", &self.endpoints.logs),
            ("endpoints.dynamodb", &self.endpoints.dynamodb),
            ("endpoints.bedrock", &self.endpoints.bedrock),
        ];
        for (name, url) in endpoints {
            if let Some(url) = url
                && (!(url.starts_with("http://") || url.starts_with("https://"))
                    || url.len() > 2048)
            {
                return bad(format!(
                    "{name} must start with http:// or https:// (at most 2048 characters)"
                ));
            }
        }
        if let Some(id) = &self.prompt_hash_key_id
            && (id.trim().is_empty() || id.len() > 2048)
        {
            return bad(
                "prompt_hash_key_id, when set, must name a KMS key (at most 2048 characters)"
                    .into(),
            );
        }
        if !matches!(self.audit_sink.as_str(), "cloudwatch" | "stdout") {
            return bad(format!(
                "audit_sink must be \"cloudwatch\" or \"stdout\", not {:?}",
                self.audit_sink
            ));
        }
        if self.kek_max_age_secs == 0 || self.kek_max_age_secs > 86_400 {
            return bad("kek_max_age_secs must be between 1 and 86400".into());
        }
        if self.kek_max_uses == 0 || self.kek_max_uses > 1 << 32 {
            return bad("kek_max_uses must be between 1 and 2^32".into());
        }
        if retention_days > 90 {
            return bad(format!(
                "vault.retention_days is {retention_days}, but the bucket's lifecycle rule \
                 expires prompts/ after at most 90 days"
            ));
        }
        Ok(())
    }
}

/// Top-level tables that a file replaces whole instead of merging into the defaults: a file
/// that names its own features does not also get the built-in `default` feature.
const REPLACED_WHOLE: &[&str] = &["features", "models", "guardrails"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Load defaults → `file` (if any) → environment overrides, then validate.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::load_from(file, &env)
    }

    /// [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut merged = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(format!("defaults do not serialise: {e}")))?;
        let origin = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("<defaults>"));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let value: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            merge(&mut merged, value, 0);
        }
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if ENV_NOT_KEYS.contains(&name.as_str()) {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if path.iter().any(String::is_empty) {
                return Err(ConfigError::Env {
                    name: name.clone(),
                    message: "empty key segment".into(),
                });
            }
            set_path(&mut merged, &path, parse_env_value(raw)).map_err(|message| {
                ConfigError::Env {
                    name: name.clone(),
                    message,
                }
            })?;
        }
        let config: Config =
            merged
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: origin,
                    message: e.to_string(),
                })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks serde can't express: references between sections, ranges, and uniqueness.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.features.is_empty() {
            return bad("at least one feature is required".into());
        }
        if self.server.max_body_bytes < 1024 || self.server.max_body_bytes > 64 * 1024 * 1024 {
            return bad("server.max_body_bytes must be between 1 KiB and 64 MiB".into());
        }
        if self.server.max_messages == 0 {
            return bad("server.max_messages must be at least 1".into());
        }
        if !(1..=300).contains(&self.server.header_read_timeout_secs) {
            return bad("server.header_read_timeout_secs must be between 1 and 300".into());
        }
        if !(1..=3600).contains(&self.server.body_read_timeout_secs) {
            return bad("server.body_read_timeout_secs must be between 1 and 3600".into());
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            return bad("server.max_connections must be between 1 and 1000000".into());
        }
        if !(1..=self.server.max_connections).contains(&self.server.max_connections_per_addr) {
            return bad(
                "server.max_connections_per_addr must be between 1 and server.max_connections"
                    .into(),
            );
        }
        if let Err(e) = crate::net::TrustedProxies::parse(&self.server.trusted_proxies) {
            return bad(format!("server.trusted_proxies: {e}"));
        }
        if !(60..=3600).contains(&self.auth.jwks_max_age_secs) {
            return bad("auth.jwks_max_age_secs must be between 60 and 3600".into());
        }
        if self.vault.retention_days == 0 {
            return bad("vault.retention_days must be at least 1".into());
        }
        if self.auth.issuer.trim().is_empty() {
            return bad("auth.issuer must not be empty".into());
        }
        let mut seen_clients: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, feature) in &self.features {
            if feature.clients.is_empty() {
                return bad(format!(
                    "feature {name:?}: clients must name at least one app client"
                ));
            }
            for client in &feature.clients {
                if let Some(other) = seen_clients.insert(client, name) {
                    return bad(format!(
                        "app client {client:?} is bound to both features {other:?} and {name:?}"
                    ));
                }
            }
            if feature.models.is_empty() {
                return bad(format!(
                    "feature {name:?}: models must name at least one model alias"
                ));
            }
            for alias in &feature.models {
                if !self.models.contains_key(alias) {
                    return bad(format!(
                        "feature {name:?}: model alias {alias:?} is not defined under [models]"
                    ));
                }
            }
            if self.bedrock_guardrails() {
                check_bedrock_pin(name, feature)?;
            } else if !self.guardrails.contains_key(&feature.guardrail) {
                return bad(format!(
                    "feature {name:?}: guardrail {:?} is not defined under [guardrails]",
                    feature.guardrail
                ));
            }
            if feature.guardrail_version == "DRAFT" {
                return bad(format!(
                    "feature {name:?}: pin a numbered guardrail version, not DRAFT"
                ));
            }
            let t = feature.throttle;
            if t.requests_per_minute == 0
                || t.burst == 0
                || t.tokens_per_minute == 0
                || t.tokens_per_day == 0
            {
                return bad(format!(
                    "feature {name:?}: every throttle limit must be at least 1"
                ));
            }
        }
        if let Some(oidc) = &self.console.oidc {
            oidc.validate()?;
        }
        if self.features_refresh_secs == 0 || self.features_refresh_secs > 3600 {
            return bad("features_refresh_secs must be between 1 and 3600".into());
        }
        match (self.backend, &self.aws) {
            (Backend::Aws, None) => {
                return bad("backend = \"aws\" needs an [aws] section".into());
            }
            (Backend::Aws, Some(aws)) => aws.validate(self.vault.retention_days)?,
            (Backend::Embedded, _) => {}
        }
        for (alias, model) in &self.models {
            if let ModelConfig::Openai {
                base_url,
                timeout_secs,
                ..
            } = model
            {
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    return bad(format!(
                        "model {alias:?}: base_url must start with http:// or https://"
                    ));
                }
                if *timeout_secs == 0 {
                    return bad(format!("model {alias:?}: timeout_secs must be at least 1"));
                }
            }
            if let ModelConfig::Bedrock {
                model_id,
                region,
                endpoint_url,
                timeout_secs,
            } = model
            {
                if model_id.trim().is_empty()
                    || model_id.len() > 2048
                    || model_id.chars().any(char::is_whitespace)
                {
                    return bad(format!(
                        "model {alias:?}: model_id must be a Bedrock model id or ARN"
                    ));
                }
                if region.as_ref().is_some_and(|r| {
                    r.is_empty()
                        || !r
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                }) {
                    return bad(format!("model {alias:?}: region is not a region name"));
                }
                if endpoint_url
                    .as_ref()
                    .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
                {
                    return bad(format!(
                        "model {alias:?}: endpoint_url must start with http:// or https://"
                    ));
                }
                if *timeout_secs == 0 {
                    return bad(format!("model {alias:?}: timeout_secs must be at least 1"));
                }
            }
        }
        Ok(())
    }

    /// Whether guardrails are Bedrock's (`backend = "aws"` with `aws.guardrails = "bedrock"`).
    pub fn bedrock_guardrails(&self) -> bool {
        self.backend == Backend::Aws
            && self
                .aws
                .as_ref()
                .is_some_and(|a| a.guardrails == GuardrailsBackend::Bedrock)
    }

    /// Every app client id any feature accepts.
    pub fn all_clients(&self) -> BTreeSet<String> {
        self.features
            .values()
            .flat_map(|f| f.clients.iter().cloned())
            .collect()
    }

    /// The feature an app client belongs to.
    pub fn feature_for_client(&self, client_id: &str) -> Option<(&str, &FeatureConfig)> {
        self.features
            .iter()
            .find(|(_, f)| f.clients.iter().any(|c| c == client_id))
            .map(|(n, f)| (n.as_str(), f))
    }
}

/// A feature's pin on Bedrock: the id as botocore's `GuardrailIdentifier` (`[a-z0-9]+`, at most
/// 64 characters, or a guardrail ARN) and the version as `GuardrailVersion`
/// (`[1-9][0-9]{0,7}`; DRAFT is refused by the caller: features pin immutable versions).
fn check_bedrock_pin(name: &str, feature: &FeatureConfig) -> Result<(), ConfigError> {
    let id = &feature.guardrail;
    let (arn_ok, tail) = match id.rsplit_once(":guardrail/") {
        None => (true, id.as_str()),
        Some((head, tail)) => {
            let parts: Vec<&str> = head.split(':').collect();
            let ok = parts.len() == 5
                && parts[0] == "arn"
                && (parts[1] == "aws" || parts[1].starts_with("aws-"))
                && parts[2] == "bedrock"
                && (1..=20).contains(&parts[3].len())
                && parts[3]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && parts[4].len() == 12
                && parts[4].bytes().all(|b| b.is_ascii_digit());
            (ok, tail)
        }
    };
    let id_ok = arn_ok
        && id.len() <= 2048
        && !tail.is_empty()
        && tail.len() <= 64
        && tail
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !id_ok {
        return Err(ConfigError::Invalid(format!(
            "feature {name:?}: guardrail {id:?} is not a Bedrock guardrail id \
             ([a-z0-9]+ of at most 64 characters, or arn:aws:bedrock:REGION:ACCOUNT:guardrail/ID)"
        )));
    }
    let v = &feature.guardrail_version;
    let version_ok = v == "DRAFT"
        || (!v.is_empty()
            && v.len() <= 8
            && !v.starts_with('0')
            && v.bytes().all(|b| b.is_ascii_digit()));
    if !version_ok {
        return Err(ConfigError::Invalid(format!(
            "feature {name:?}: guardrail_version {v:?} is not a Bedrock guardrail version \
             (a number from 1 to 99999999)"
        )));
    }
    Ok(())
}

fn merge(base: &mut toml::Value, over: toml::Value, depth: usize) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (key, value) in over {
                let replace = depth == 0 && REPLACED_WHOLE.contains(&key.as_str());
                match base.get_mut(&key) {
                    Some(existing) if !replace => merge(existing, value, depth + 1),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

fn set_path(root: &mut toml::Value, path: &[String], value: toml::Value) -> Result<(), String> {
    let mut node = root;
    for (i, key) in path.iter().enumerate() {
        let toml::Value::Table(table) = node else {
            return Err(format!("{} is not a table", path[..i].join(".")));
        };
        if i + 1 == path.len() {
            table.insert(key.clone(), value);
            return Ok(());
        }
        node = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::map::Map::new()));
    }
    Err("empty key".into())
}

fn parse_env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::load_from(None, &[]).unwrap();
        assert_eq!(c.backend, Backend::Embedded);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.features.contains_key("default"));
        assert_eq!(c.features["default"].guardrail, "default");
    }

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let c = Config::load_from(
            None,
            &env(&[
                ("GOLDEN_PATH_SERVER__LISTEN", "127.0.0.1:0"),
                ("GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__BURST", "7"),
                ("GOLDEN_PATH_CONFIG", "ignored.toml"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:0");
        assert_eq!(c.features["default"].throttle.burst, 7);
    }

    #[test]
    fn unknown_keys_are_rejected_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"typo\"\n",
        )
        .unwrap();
        let err = Config::load_from(Some(&file), &[]).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        let err = Config::load_from(None, &env(&[("GOLDEN_PATH_SERVR__LISTEN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("servr"), "{err}");
    }

    #[test]
    fn file_replaces_named_collections_and_validation_catches_dangling_refs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            r#"
[features.search]
clients = ["search-app"]
models = ["missing"]
guardrail = "default"
guardrail_version = "1"
throttle = { requests_per_minute = 1, burst = 1, tokens_per_minute = 1, tokens_per_day = 1 }
"#,
        )
        .unwrap();
        let err = Config::load_from(Some(&file), &[]).unwrap_err().to_string();
        assert!(err.contains("\"missing\" is not defined"), "{err}");
    }

    #[test]
    fn the_aws_backend_needs_a_complete_aws_section_and_rejects_typos() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load_from(Some(&file), &[]).map_err(|e| e.to_string())
        };
        let err = load("backend = \"aws\"\n").unwrap_err();
        assert!(err.contains("needs an [aws] section"), "{err}");
        let good = "backend = \"aws\"\n[aws]\nregion = \"eu-west-1\"\nvault_bucket = \"b\"\n\
                    kms_key_id = \"alias/gp\"\nlog_group = \"/gp\"\nthrottle_table = \"t\"\n";
        let c = load(good).unwrap();
        let aws = c.aws.unwrap();
        assert_eq!(
            (aws.log_stream.as_str(), aws.kek_max_uses),
            ("gateway", 10_000)
        );
        let err = load(&format!("{good}bukket = \"x\"\n")).unwrap_err();
        assert!(err.contains("bukket"), "{err}");
        let err = load(&format!("{good}endpoint_url = \"localhost:4566\"\n")).unwrap_err();
        assert!(err.contains("aws.endpoint_url"), "{err}");
        let err = load(&good.replace("region = \"eu-west-1\"", "region = \"\"")).unwrap_err();
        assert!(err.contains("aws.region"), "{err}");
        let c = load(&format!(
            "{good}prompt_hash_key_id = \"alias/gp-hash\"\n[aws.endpoints]\nkms = \"http://127.0.0.1:1\"\n"
        ))
        .unwrap();
        let aws = c.aws.unwrap();
        assert_eq!(aws.prompt_hash_key_id.as_deref(), Some("alias/gp-hash"));
        assert_eq!(aws.endpoints.kms.as_deref(), Some("http://127.0.0.1:1"));
        let err = load(&format!("{good}[aws.endpoints]\nkms = \"127.0.0.1:1\"\n")).unwrap_err();
        assert!(err.contains("aws.endpoints.kms"), "{err}");
        let err = load(&format!("{good}[aws.endpoints]\nsqs = \"http://x\"\n")).unwrap_err();
        assert!(err.contains("sqs"), "{err}");
    }

    #[test]
    fn bedrock_guardrail_pins_must_look_like_bedrock_ids() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let load = |guardrail: &str, version: &str, extra: &str| {
            std::fs::write(
                &file,
                format!(
                    "backend = \"aws\"\n[aws]\nregion = \"eu-west-1\"\nvault_bucket = \"b\"\n\
                     kms_key_id = \"k\"\nlog_group = \"/gp\"\nthrottle_table = \"t\"\n{extra}\n\
                     [features.f]\nclients = [\"c\"]\nmodels = [\"dev\"]\nguardrail = \"{guardrail}\"\n\
                     guardrail_version = \"{version}\"\nthrottle = {{ requests_per_minute = 1, \
                     burst = 1, tokens_per_minute = 1, tokens_per_day = 1 }}\n"
                ),
            )
            .unwrap();
            Config::load_from(Some(&file), &[]).map_err(|e| e.to_string())
        };
        // On Bedrock the id need not be under [guardrails]; it must be Bedrock's shape.
        let c = load("gr7x2k9q1abc", "3", "").unwrap();
        assert!(c.bedrock_guardrails());
        load(
            "arn:aws:bedrock:eu-west-1:123456789012:guardrail/gr7x2k9q1abc",
            "12",
            "",
        )
        .unwrap();
        for bad in [
            "Upper",
            "has-dash",
            "",
            "arn:aws:s3:eu-west-1:123456789012:guardrail/abc",
            "arn:aws:bedrock:eu-west-1:1234:guardrail/abc",
        ] {
            let err = load(bad, "1", "").unwrap_err();
            assert!(
                err.contains("is not a Bedrock guardrail id"),
                "{bad}: {err}"
            );
        }
        for bad in ["0", "01", "v1", "123456789", ""] {
            let err = load("abc", bad, "").unwrap_err();
            assert!(
                err.contains("is not a Bedrock guardrail version"),
                "{bad}: {err}"
            );
        }
        let err = load("abc", "DRAFT", "").unwrap_err();
        assert!(err.contains("not DRAFT"), "{err}");
        // With the embedded registry on aws, the id must be a configured guardrail again.
        let err = load("gr7x2k9q1abc", "1", "guardrails = \"embedded\"").unwrap_err();
        assert!(err.contains("not defined under [guardrails]"), "{err}");
        let err = load("abc", "1", "[aws.endpoints]\nbedrock = \"localhost:1\"").unwrap_err();
        assert!(err.contains("aws.endpoints.bedrock"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?}"), "*****");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"*****\"");
    }
}
