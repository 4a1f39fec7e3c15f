//! The guardrail registry edge: [`GuardrailRegistry`], what the console and the gateway need
//! from wherever guardrails are stored — create, update, get (a version's policy), list,
//! create a version, delete. Two implementations: the embedded SQLite [`Registry`] (through
//! `Arc<Registry>`, its blocking work moved off the async threads) and Bedrock's control plane
//! ([`BedrockRegistry`](super::bedrock_registry::BedrockRegistry)).
//!
//! It also owns the pin rule both share ([`check_unpinned`]): a guardrail, or one of its
//! numbered versions, that a feature pins — in the configuration file or through a console
//! override — can't be deleted. Callers gather the pins (`FeatureSettings::pins`) and call
//! [`GuardrailRegistry::delete_unpinned`].

use std::sync::Arc;

use async_trait::async_trait;

use super::policy::GuardrailPolicy;
use super::registry::{GuardrailRecord, MAX_GUARDRAILS, Registry, RegistryError};

/// One guardrail as ListGuardrails reports it (no policy: Bedrock's summaries carry none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailSummary {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    /// `DRAFT` for a guardrail's own row.
    pub version: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&GuardrailRecord> for GuardrailSummary {
    fn from(r: &GuardrailRecord) -> GuardrailSummary {
        GuardrailSummary {
            id: r.id.clone(),
            arn: r.arn.clone(),
            name: r.policy.name.clone(),
            description: r.policy.description.clone(),
            version: r.version.clone(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

/// Where guardrails are stored and versioned. Errors are [`RegistryError`]s whose messages are
/// safe to show (they name guardrails and fields, never guarded text).
#[async_trait]
pub trait GuardrailRegistry: Send + Sync {
    /// `embedded` or `bedrock`, for the console and logs.
    fn kind(&self) -> &'static str;

    /// CreateGuardrail: a new guardrail whose DRAFT is `policy`.
    async fn create(&self, policy: &GuardrailPolicy) -> Result<GuardrailRecord, RegistryError>;

    /// UpdateGuardrail: replace the DRAFT (numbered versions never change).
    async fn update(
        &self,
        id: &str,
        policy: &GuardrailPolicy,
    ) -> Result<GuardrailRecord, RegistryError>;

    /// GetGuardrail: the DRAFT (`None`) or a numbered version, with its policy.
    async fn get(&self, id: &str, version: Option<i64>) -> Result<GuardrailRecord, RegistryError>;

    /// ListGuardrails: every guardrail (its DRAFT row), at most [`MAX_GUARDRAILS`].
    async fn list(&self) -> Result<Vec<GuardrailSummary>, RegistryError>;

    /// A guardrail's numbered versions, oldest first.
    async fn versions(&self, id: &str) -> Result<Vec<String>, RegistryError>;

    /// CreateGuardrailVersion: snapshot the DRAFT as the next number; returns it.
    async fn create_version(
        &self,
        id: &str,
        description: Option<&str>,
    ) -> Result<String, RegistryError>;

    /// The same registry, for synchronous lookups of one version (`FeatureSettings::apply`).
    fn as_lookup(&self) -> &dyn VersionLookup;

    /// DeleteGuardrail: one numbered version, or (`None`) the guardrail and all its versions.
    /// Does not look at pins: call [`GuardrailRegistry::delete_unpinned`].
    async fn delete(&self, id: &str, version: Option<i64>) -> Result<(), RegistryError>;

    /// [`GuardrailRegistry::delete`], refused while any of `pins` (`(id, version)`, from the
    /// configuration and console overrides) names what would go.
    async fn delete_unpinned(
        &self,
        id: &str,
        version: Option<i64>,
        pins: &[(String, String)],
    ) -> Result<(), RegistryError> {
        check_unpinned(id, version, pins)?;
        self.delete(id, version).await
    }
}

/// GetGuardrail, synchronously: what `FeatureSettings::apply` (which runs off the async threads,
/// in `spawn_blocking`) needs to check that a pinned version exists. The Bedrock implementation
/// blocks on the current Tokio runtime, so it must not be called on an async worker thread.
pub trait VersionLookup: Send + Sync {
    fn get(&self, id: &str, version: Option<i64>) -> Result<GuardrailRecord, RegistryError>;
}

impl VersionLookup for Registry {
    fn get(&self, id: &str, version: Option<i64>) -> Result<GuardrailRecord, RegistryError> {
        Registry::get(self, id, version)
    }
}

impl VersionLookup for Arc<Registry> {
    fn get(&self, id: &str, version: Option<i64>) -> Result<GuardrailRecord, RegistryError> {
        Registry::get(self, id, version)
    }
}

impl VersionLookup for super::bedrock_registry::BedrockRegistry {
    fn get(&self, id: &str, version: Option<i64>) -> Result<GuardrailRecord, RegistryError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| RegistryError::Internal("no Tokio runtime for GetGuardrail".into()))?;
        handle.block_on(GuardrailRegistry::get(self, id, version))
    }
}

/// Refuse deleting `id` (every version, with `None`) or `id:version` while a feature pins it.
pub fn check_unpinned(
    id: &str,
    version: Option<i64>,
    pins: &[(String, String)],
) -> Result<(), RegistryError> {
    let mut pinned: Vec<&str> = pins
        .iter()
        .filter(|(i, v)| i == id && version.is_none_or(|n| *v == n.to_string()))
        .map(|(_, v)| v.as_str())
        .collect();
    pinned.sort_unstable();
    pinned.dedup();
    if pinned.is_empty() {
        return Ok(());
    }
    Err(RegistryError::InUse(match version {
        Some(v) => {
            format!("guardrail {id} version {v} is pinned by a feature; pin another version first")
        }
        None => format!(
            "guardrail {id} is pinned by a feature (version {}); pin another guardrail first",
            pinned.join(", ")
        ),
    }))
}

/// Run registry work that blocks (SQLite, compiling a policy) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Internal(format!("registry task failed: {e}")))?
}

#[async_trait]
impl GuardrailRegistry for Arc<Registry> {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn create(&self, policy: &GuardrailPolicy) -> Result<GuardrailRecord, RegistryError> {
        let (r, p) = (Arc::clone(self), policy.clone());
        blocking(move || Registry::create(&r, &p, None)).await
    }

    async fn update(
        &self,
        id: &str,
        policy: &GuardrailPolicy,
    ) -> Result<GuardrailRecord, RegistryError> {
        let (r, id, p) = (Arc::clone(self), id.to_string(), policy.clone());
        blocking(move || Registry::update(&r, &id, &p)).await
    }

    async fn get(&self, id: &str, version: Option<i64>) -> Result<GuardrailRecord, RegistryError> {
        let (r, id) = (Arc::clone(self), id.to_string());
        blocking(move || Registry::get(&r, &id, version)).await
    }

    async fn list(&self) -> Result<Vec<GuardrailSummary>, RegistryError> {
        let r = Arc::clone(self);
        let max = usize::try_from(MAX_GUARDRAILS).unwrap_or(100);
        let (records, _) = blocking(move || Registry::list(&r, None, 0, max)).await?;
        Ok(records.iter().map(GuardrailSummary::from).collect())
    }

    async fn versions(&self, id: &str) -> Result<Vec<String>, RegistryError> {
        let (r, id) = (Arc::clone(self), id.to_string());
        // DRAFT + at most MAX_VERSIONS numbered versions.
        let max = usize::try_from(super::registry::MAX_VERSIONS).unwrap_or(20) + 1;
        let (records, _) = blocking(move || Registry::list(&r, Some(&id), 0, max)).await?;
        Ok(records
            .into_iter()
            .map(|r| r.version)
            .filter(|v| v != "DRAFT")
            .collect())
    }

    async fn create_version(
        &self,
        id: &str,
        description: Option<&str>,
    ) -> Result<String, RegistryError> {
        let (r, id) = (Arc::clone(self), id.to_string());
        let description = description.map(str::to_string);
        blocking(move || Registry::create_version(&r, &id, description.as_deref(), None)).await
    }

    fn as_lookup(&self) -> &dyn VersionLookup {
        self
    }

    async fn delete(&self, id: &str, version: Option<i64>) -> Result<(), RegistryError> {
        let (r, id) = (Arc::clone(self), id.to_string());
        blocking(move || Registry::delete(&r, &id, version)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn pinned_versions_and_their_guardrails_are_refused() {
        let p = pins(&[("abc", "2"), ("abc", "3"), ("other", "1")]);
        assert!(check_unpinned("abc", Some(1), &p).is_ok());
        assert!(check_unpinned("zzz", None, &p).is_ok());
        let e = check_unpinned("abc", Some(2), &p).unwrap_err().to_string();
        assert!(e.contains("version 2 is pinned"), "{e}");
        let e = check_unpinned("abc", None, &p).unwrap_err().to_string();
        assert!(e.contains("version 2, 3"), "{e}");
    }

    #[tokio::test]
    async fn the_embedded_registry_behind_the_trait_refuses_pinned_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let reg: Arc<dyn GuardrailRegistry> = Arc::new(Arc::new(
            Registry::open(dir.path(), Default::default()).unwrap(),
        ));
        let mut p = GuardrailPolicy::default_policy();
        p.name = "trait-test".into();
        let rec = reg.create(&p).await.unwrap();
        assert_eq!(rec.version, "DRAFT");
        assert_eq!(reg.create_version(&rec.id, Some("one")).await.unwrap(), "1");
        assert_eq!(reg.create_version(&rec.id, None).await.unwrap(), "2");
        assert_eq!(reg.versions(&rec.id).await.unwrap(), ["1", "2"]);
        let list = reg.list().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "trait-test");
        // A console override pins version 2: neither it nor the guardrail can go.
        let overrides = vec![(rec.id.clone(), "2".to_string())];
        assert!(matches!(
            reg.delete_unpinned(&rec.id, Some(2), &overrides).await,
            Err(RegistryError::InUse(_))
        ));
        assert!(matches!(
            reg.delete_unpinned(&rec.id, None, &overrides).await,
            Err(RegistryError::InUse(_))
        ));
        reg.delete_unpinned(&rec.id, Some(1), &overrides)
            .await
            .unwrap();
        assert_eq!(reg.versions(&rec.id).await.unwrap(), ["2"]);
        assert_eq!(reg.get(&rec.id, Some(2)).await.unwrap().version, "2");
        reg.delete_unpinned(&rec.id, None, &[]).await.unwrap();
        assert!(matches!(
            reg.get(&rec.id, None).await,
            Err(RegistryError::NotFound(_))
        ));
    }
}
