//! The gateway's shared state: configuration and the backends it names, built once at start-up
//! ([`AppState::build`]) and shared by every request (and by the console in the same process).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::audit::AuditStore;
use crate::audit::prompt_hash::PromptHasher;
use crate::audit::sqlite::SqliteAuditStore;
use crate::auth::issuer::LocalIssuer;
use crate::auth::jwks::{HttpJwks, KeyCache, KeySource};
use crate::auth::verify::{Expectations, Verifier};
use crate::config::{Backend, Config};
use crate::features::FeatureSettings;
use crate::guard::Guardrail;
use crate::guard::registry::Registry;
use crate::guard::registry_api::GuardrailRegistry;
use crate::model::Provider;
use crate::throttle::Throttle;
use crate::throttle::local::LocalThrottle;
use crate::vault::Vault;

/// The backends that differ between `embedded` and `aws`.
type DataBackends = (
    Arc<dyn AuditStore>,
    Vault,
    Arc<dyn Throttle>,
    Option<Arc<crate::aws::spool::Spool>>,
    Option<PromptHasher>,
);

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub verifier: Arc<Verifier>,
    /// The embedded issuer, when no external JWKS is configured.
    pub issuer: Option<Arc<LocalIssuer>>,
    pub throttle: Arc<dyn Throttle>,
    pub guardrails: Arc<dyn Guardrail>,
    /// The embedded guardrail registry: the Bedrock-compatible API's store and its access keys
    /// (and, unless guardrails are Bedrock's, what `guardrails` and `guardrail_registry` are).
    pub registry: Arc<Registry>,
    /// Where the console edits guardrails: the embedded registry, or Bedrock's control plane
    /// with `backend = "aws"` (`aws.guardrails = "bedrock"`).
    pub guardrail_registry: Arc<dyn GuardrailRegistry>,
    /// Providers by model alias.
    pub models: Arc<BTreeMap<String, Provider>>,
    pub audit: Arc<dyn AuditStore>,
    pub vault: Vault,
    pub prompt_hasher: Arc<PromptHasher>,
    /// On `backend = "aws"`: records waiting locally for S3/CloudWatch (`backlog()` for /readyz).
    pub spool: Option<Arc<crate::aws::spool::Spool>>,
    /// Runtime overrides of the configuration's features (console edits, no restart).
    pub features: Arc<FeatureSettings>,
}

impl AppState {
    /// Build every backend the configuration names; fails with a clear message otherwise.
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        AppState::build_with_credentials(config, None).await
    }

    /// [`AppState::build`] with an explicit AWS access key pair instead of the default chain
    /// (in-process tests against an emulator, where two instances share one process).
    pub async fn build_with_credentials(
        config: Config,
        credentials: Option<&crate::aws::StaticCredentials>,
    ) -> anyhow::Result<AppState> {
        match config.backend {
            Backend::Embedded => {}
            Backend::Aws => {}
        }
        let data_dir = config.data_dir.clone();
        crate::secret_file::private_dir(&data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;

        let issuer = match &config.auth.jwks_url {
            Some(_) => None,
            None => Some(Arc::new(
                LocalIssuer::load_or_create(&data_dir, &config.auth.issuer)
                    .context("embedded token issuer")?,
            )),
        };
        let key_source: Arc<dyn KeySource> = match (&config.auth.jwks_url, &issuer) {
            (Some(url), _) => Arc::new(HttpJwks { url: url.clone() }),
            (None, Some(issuer)) => issuer.clone(),
            (None, None) => anyhow::bail!("no JWKS source: set auth.jwks_url"),
        };
        let keys = KeyCache::new(
            key_source,
            Duration::from_secs(config.auth.jwks_min_refresh_secs),
        )
        .with_max_age(
            Duration::from_secs(config.auth.jwks_max_age_secs),
            crate::auth::jwks::KEY_MAX_AGE_BOUNDS,
        );
        let verifier = Verifier::new(
            keys,
            Expectations {
                issuer: config.auth.issuer.clone(),
                clients: config.all_clients(),
                token_use: config.auth.token_use,
                leeway_secs: config.auth.leeway_secs,
                client_claim: config.auth.client_claim.clone(),
            },
        );

        let registry = Arc::new(
            crate::guard::registry::open_seeded(&config)
                .map_err(|e| anyhow::anyhow!("guardrail registry: {e}"))?,
        );
        let mut models = BTreeMap::new();
        for (alias, model) in &config.models {
            let provider = Provider::from_config(model)
                .await
                .map_err(|e| anyhow::anyhow!("model {alias:?}: {e}"))?;
            models.insert(alias.clone(), provider);
        }
        let (audit, vault, throttle, spool, kms_hasher): DataBackends = match config.backend {
            Backend::Embedded => (
                Arc::new(
                    SqliteAuditStore::open(&data_dir.join("audit.db")).context("audit store")?,
                ),
                Vault::embedded(&data_dir, config.vault.retention_days).context("prompt vault")?,
                Arc::new(LocalThrottle::new()),
                None,
                None,
            ),
            Backend::Aws => {
                let b = crate::aws::DataBackends::build(&config, credentials).await?;
                let hasher = b
                    .prompt_hash_secret
                    .as_deref()
                    .map(|secret| PromptHasher::from_secret(secret));
                (b.audit, b.vault, b.throttle, Some(b.spool), hasher)
            }
        };
        // On AWS with `aws.prompt_hash_key_id`, the key every instance shares (KMS GenerateMac);
        // otherwise this data dir's own key.
        let prompt_hasher = match kms_hasher {
            Some(h) => h,
            None => PromptHasher::load_or_create(&data_dir).context("prompt hash key")?,
        };
        let features = match config.backend {
            Backend::Embedded => FeatureSettings::open(&data_dir).context("feature settings")?,
            // Shared by every instance: DynamoDB, refreshed every `features_refresh_secs`.
            Backend::Aws => crate::aws::features::settings(&config, credentials).await?,
        };
        // Guardrails: the embedded registry, or Bedrock (every pin checked once at start-up).
        let (guardrails, guardrail_registry): (Arc<dyn Guardrail>, Arc<dyn GuardrailRegistry>) =
            match (&config.aws, config.bedrock_guardrails()) {
                (Some(aws), true) => {
                    let (apply, control) =
                        crate::guard::bedrock_registry::from_config(aws, credentials)
                            .await
                            .map_err(|e| anyhow::anyhow!("bedrock guardrails: {e}"))?;
                    crate::guard::bedrock_registry::check_pins(&control, &features.pins(&config))
                        .await
                        .map_err(|e| anyhow::anyhow!("bedrock guardrails: {e}"))?;
                    (Arc::new(apply), Arc::new(control))
                }
                _ => (registry.clone(), Arc::new(registry.clone())),
            };

        Ok(AppState {
            config: Arc::new(config),
            verifier: Arc::new(verifier),
            issuer,
            throttle,
            guardrails,
            guardrail_registry,
            registry,
            models: Arc::new(models),
            audit,
            vault,
            prompt_hasher: Arc::new(prompt_hasher),
            spool,
            features: Arc::new(features),
        })
    }
}
