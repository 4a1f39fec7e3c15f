//! The guardrail registry: guardrails with an editable `DRAFT` and immutable numbered versions
//! ("1", "2", ...) in SQLite (`guardrails.db` in the data dir), compiled on first use and
//! cached; locally issued SigV4 access keys, their secrets encrypted at rest (AES-256-GCM
//! under a key file, because SigV4 verification needs the secret itself, not a hash).
//!
//! Invariants:
//! - A numbered version is written once and never changed.
//! - A version a feature pins (from config) can't be deleted, nor its guardrail.
//! - Guardrails from config are seeded on first start: the policy becomes `DRAFT` and version
//!   "1". Later config edits don't rewrite stored versions (they are immutable); the registry
//!   is the source of truth after the first start.
//! - Bedrock's quotas: 100 guardrails, 20 numbered versions each (ServiceQuotaExceeded).
//!
//! The registry implements [`Guardrail`], so the request path resolves `id:version` here.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::engine::{CompiledGuardrail, Shared};
use super::policy::GuardrailPolicy;
use super::stream::EmbeddedStreamGuard;
use super::{GuardError, GuardOutcome, Guardrail, GuardrailRef, Source, StreamGuard};

/// Bedrock's quotas.
pub const MAX_GUARDRAILS: i64 = 100;
pub const MAX_VERSIONS: i64 = 20;
/// The region and account the registry's ARNs name.
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";
/// Compiled versions kept in memory.
const CACHE_MAX: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    Quota(String),
    #[error("registry storage failed")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Internal(e.to_string())
}

/// One stored guardrail version, as GetGuardrail reports it.
#[derive(Debug, Clone)]
pub struct GuardrailRecord {
    pub id: String,
    pub arn: String,
    pub version: String,
    pub policy: GuardrailPolicy,
    pub created_at: String,
    pub updated_at: String,
}

impl GuardrailRecord {
    /// The GetGuardrail response body.
    pub fn to_get(&self) -> Value {
        let mut m = self.policy.to_get();
        m.insert("guardrailId".into(), Value::from(self.id.clone()));
        m.insert("guardrailArn".into(), Value::from(self.arn.clone()));
        m.insert("version".into(), Value::from(self.version.clone()));
        m.insert("status".into(), Value::from("READY"));
        m.insert("createdAt".into(), Value::from(self.created_at.clone()));
        m.insert("updatedAt".into(), Value::from(self.updated_at.clone()));
        Value::Object(m)
    }

    /// A ListGuardrails summary.
    pub fn to_summary(&self) -> Value {
        let mut v = serde_json::json!({
            "id": self.id, "arn": self.arn, "status": "READY", "name": self.policy.name,
            "version": self.version, "createdAt": self.created_at, "updatedAt": self.updated_at,
        });
        if let (Some(d), Some(o)) = (&self.policy.description, v.as_object_mut()) {
            o.insert("description".into(), Value::from(d.clone()));
        }
        v
    }
}

pub fn arn(id: &str) -> String {
    format!("arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/{id}")
}

/// A guardrail identifier (id or ARN) → id.
pub fn parse_identifier(identifier: &str) -> Result<String, RegistryError> {
    let id = identifier
        .rsplit_once(":guardrail/")
        .map_or(identifier, |(_, id)| id);
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(id.to_string())
    } else {
        Err(RegistryError::Validation(
            "guardrailIdentifier: must match ([a-z0-9]+)|(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+)".into(),
        ))
    }
}

/// A version path/query parameter: "DRAFT" or 1..=99999999.
pub fn parse_version(v: &str, allow_draft: bool) -> Result<Option<i64>, RegistryError> {
    if allow_draft && v == "DRAFT" {
        return Ok(None);
    }
    let ok = !v.is_empty()
        && v.len() <= 8
        && !v.starts_with('0')
        && v.bytes().all(|b| b.is_ascii_digit());
    match v.parse::<i64>() {
        Ok(n) if ok => Ok(Some(n)),
        _ => Err(RegistryError::Validation(format!(
            "guardrailVersion: must match {}",
            if allow_draft {
                "(([1-9][0-9]{0,7})|(DRAFT))"
            } else {
                "[1-9][0-9]{0,7}"
            }
        ))),
    }
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

fn random_string(len: usize, alphabet: &[u8]) -> Result<String, RegistryError> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| internal("random"))?;
    Ok(bytes
        .iter()
        .map(|b| {
            char::from(
                alphabet
                    .get(usize::from(*b) % alphabet.len())
                    .copied()
                    .unwrap_or(b'a'),
            )
        })
        .collect())
}

/// A locally issued access key.
#[derive(Debug)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

pub struct Registry {
    conn: Mutex<Connection>,
    shared: Mutex<Shared>,
    cache: RwLock<HashMap<(String, String), Arc<CompiledGuardrail>>>,
    pins: HashSet<(String, String)>,
    key: LessSafeKey,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("pins", &self.pins)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Open (or create) the registry in `data_dir`; `pins` are the `(id, version)` pairs
    /// features use.
    pub fn open(
        data_dir: &Path,
        pins: HashSet<(String, String)>,
    ) -> Result<Registry, RegistryError> {
        let path = data_dir.join("guardrails.db");
        crate::secret_file::private_sqlite(&path).map_err(internal)?;
        let conn = Connection::open(path).map_err(internal)?;
        Registry::with_connection(
            conn,
            &data_dir.join("keys").join("guard-access-keys.key"),
            pins,
        )
    }

    /// An in-memory registry (tests, `gateway guard --policy`).
    pub fn in_memory(key_dir: &Path) -> Result<Registry, RegistryError> {
        let conn = Connection::open_in_memory().map_err(internal)?;
        Registry::with_connection(conn, &key_dir.join("guard-access-keys.key"), HashSet::new())
    }

    fn with_connection(
        conn: Connection,
        key_path: &Path,
        pins: HashSet<(String, String)>,
    ) -> Result<Registry, RegistryError> {
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS guardrails (
                 id TEXT PRIMARY KEY, draft TEXT NOT NULL,
                 created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                 next_version INTEGER NOT NULL DEFAULT 1);
             CREATE TABLE IF NOT EXISTS versions (
                 id TEXT NOT NULL, version INTEGER NOT NULL, policy TEXT NOT NULL,
                 description TEXT, created_at TEXT NOT NULL, PRIMARY KEY (id, version));
             CREATE TABLE IF NOT EXISTS idempotency (
                 token TEXT PRIMARY KEY, result TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS access_keys (
                 access_key_id TEXT PRIMARY KEY, secret BLOB NOT NULL, created_at TEXT NOT NULL);",
        )
        .map_err(internal)?;
        let raw = crate::secret_file::load_or_create(key_path, 32).map_err(internal)?;
        let key =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| internal("key"))?);
        Ok(Registry {
            conn: Mutex::new(conn),
            shared: Mutex::new(Shared::new().map_err(RegistryError::Internal)?),
            cache: RwLock::new(HashMap::new()),
            pins,
            key,
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, RegistryError> {
        self.conn
            .lock()
            .map_err(|_| internal("registry lock poisoned"))
    }

    fn check(&self, id: &str, policy: &GuardrailPolicy) -> Result<(), RegistryError> {
        policy.validate().map_err(RegistryError::Validation)?;
        let mut shared = self.shared.lock().map_err(|_| internal("lock"))?;
        CompiledGuardrail::compile(id, policy, &mut shared).map_err(RegistryError::Validation)?;
        Ok(())
    }

    /// Seed a configured guardrail: if `id` is absent, store `policy` as DRAFT and version 1.
    pub fn seed(&self, id: &str, policy: &GuardrailPolicy) -> Result<(), RegistryError> {
        let conn = self.conn()?;
        let exists: bool = conn
            .query_row("SELECT 1 FROM guardrails WHERE id = ?1", [id], |_| Ok(true))
            .optional()
            .map_err(internal)?
            .unwrap_or(false);
        if exists {
            return Ok(());
        }
        drop(conn);
        self.check(id, policy)?;
        let json = serde_json::to_string(policy).map_err(internal)?;
        let t = now();
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(internal)?;
        tx.execute(
            "INSERT INTO guardrails (id, draft, created_at, updated_at, next_version) VALUES (?1, ?2, ?3, ?3, 2)",
            params![id, json, t],
        )
        .map_err(internal)?;
        tx.execute(
            "INSERT INTO versions (id, version, policy, description, created_at) VALUES (?1, 1, ?2, NULL, ?3)",
            params![id, json, t],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)
    }

    /// CreateGuardrail: returns the stored DRAFT.
    pub fn create(
        &self,
        policy: &GuardrailPolicy,
        client_token: Option<&str>,
    ) -> Result<GuardrailRecord, RegistryError> {
        if let Some(t) = client_token
            && let Some(id) = self.idempotent(&format!("create:{t}"))?
        {
            return self.get(&id, None);
        }
        let id = random_string(12, b"abcdefghijklmnopqrstuvwxyz0123456789")?;
        self.check(&id, policy)?;
        let json = serde_json::to_string(policy).map_err(internal)?;
        let t = now();
        {
            let conn = self.conn()?;
            let count: i64 = conn
                .query_row("SELECT COUNT(*) FROM guardrails", [], |r| r.get(0))
                .map_err(internal)?;
            if count >= MAX_GUARDRAILS {
                return Err(RegistryError::Quota(format!(
                    "at most {MAX_GUARDRAILS} guardrails per account"
                )));
            }
            let dup: bool = conn
                .query_row(
                    "SELECT 1 FROM guardrails WHERE json_extract(draft, '$.name') = ?1",
                    [&policy.name],
                    |_| Ok(true),
                )
                .optional()
                .map_err(internal)?
                .unwrap_or(false);
            if dup {
                return Err(RegistryError::Conflict(
                    "a guardrail with this name already exists".into(),
                ));
            }
            conn.execute(
                "INSERT INTO guardrails (id, draft, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                params![id, json, t],
            )
            .map_err(internal)?;
            if let Some(tok) = client_token {
                conn.execute(
                    "INSERT OR IGNORE INTO idempotency (token, result) VALUES (?1, ?2)",
                    params![format!("create:{tok}"), id],
                )
                .map_err(internal)?;
            }
        }
        self.get(&id, None)
    }

    fn idempotent(&self, key: &str) -> Result<Option<String>, RegistryError> {
        self.conn()?
            .query_row(
                "SELECT result FROM idempotency WHERE token = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)
    }

    /// UpdateGuardrail: replaces the DRAFT.
    pub fn update(
        &self,
        id: &str,
        policy: &GuardrailPolicy,
    ) -> Result<GuardrailRecord, RegistryError> {
        self.check(id, policy)?;
        let json = serde_json::to_string(policy).map_err(internal)?;
        let n = self
            .conn()?
            .execute(
                "UPDATE guardrails SET draft = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, json, now()],
            )
            .map_err(internal)?;
        if n == 0 {
            return Err(not_found(id));
        }
        if let Ok(mut c) = self.cache.write() {
            c.remove(&(id.to_string(), "DRAFT".to_string()));
        }
        self.get(id, None)
    }

    /// GetGuardrail: DRAFT when `version` is `None`.
    pub fn get(&self, id: &str, version: Option<i64>) -> Result<GuardrailRecord, RegistryError> {
        let conn = self.conn()?;
        let row: Option<(String, String, String)> = conn
            .query_row(
                "SELECT draft, created_at, updated_at FROM guardrails WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(internal)?;
        let (draft, created, updated) = row.ok_or_else(|| not_found(id))?;
        let (json, version_name, created, updated) = match version {
            None => (draft, "DRAFT".to_string(), created, updated),
            Some(v) => {
                let row: Option<(String, Option<String>, String)> = conn
                    .query_row(
                        "SELECT policy, description, created_at FROM versions WHERE id = ?1 AND version = ?2",
                        params![id, v],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(internal)?;
                let (policy, description, at) = row.ok_or_else(|| {
                    RegistryError::NotFound(format!("guardrail {id} has no version {v}"))
                })?;
                let json = match description {
                    Some(d) => {
                        let mut p: Value = serde_json::from_str(&policy).map_err(internal)?;
                        if let Some(o) = p.as_object_mut() {
                            o.insert("description".into(), Value::from(d));
                        }
                        p.to_string()
                    }
                    None => policy,
                };
                (json, v.to_string(), at.clone(), at)
            }
        };
        let policy: GuardrailPolicy = serde_json::from_str(&json).map_err(internal)?;
        Ok(GuardrailRecord {
            id: id.to_string(),
            arn: arn(id),
            version: version_name,
            policy,
            created_at: created,
            updated_at: updated,
        })
    }

    /// ListGuardrails: every guardrail's DRAFT, or (with `id`) that guardrail's DRAFT and
    /// versions; `offset`-based pages.
    pub fn list(
        &self,
        id: Option<&str>,
        offset: usize,
        max: usize,
    ) -> Result<(Vec<GuardrailRecord>, Option<usize>), RegistryError> {
        let keys: Vec<(String, Option<i64>)> = {
            let conn = self.conn()?;
            match id {
                None => {
                    let mut st = conn
                        .prepare("SELECT id FROM guardrails ORDER BY created_at, id")
                        .map_err(internal)?;
                    let rows = st
                        .query_map([], |r| r.get::<_, String>(0))
                        .map_err(internal)?;
                    rows.filter_map(Result::ok).map(|i| (i, None)).collect()
                }
                Some(id) => {
                    let exists: bool = conn
                        .query_row("SELECT 1 FROM guardrails WHERE id = ?1", [id], |_| Ok(true))
                        .optional()
                        .map_err(internal)?
                        .unwrap_or(false);
                    if !exists {
                        return Err(not_found(id));
                    }
                    let mut st = conn
                        .prepare("SELECT version FROM versions WHERE id = ?1 ORDER BY version")
                        .map_err(internal)?;
                    let rows = st
                        .query_map([id], |r| r.get::<_, i64>(0))
                        .map_err(internal)?;
                    std::iter::once((id.to_string(), None))
                        .chain(
                            rows.filter_map(Result::ok)
                                .map(|v| (id.to_string(), Some(v))),
                        )
                        .collect()
                }
            }
        };
        let total = keys.len();
        let page: Vec<GuardrailRecord> = keys
            .into_iter()
            .skip(offset)
            .take(max)
            .map(|(i, v)| self.get(&i, v))
            .collect::<Result<_, _>>()?;
        let next = (offset + max < total).then_some(offset + max);
        Ok((page, next))
    }

    /// CreateGuardrailVersion: snapshot the DRAFT as the next number.
    pub fn create_version(
        &self,
        id: &str,
        description: Option<&str>,
        client_token: Option<&str>,
    ) -> Result<String, RegistryError> {
        let key = client_token.map(|t| format!("version:{id}:{t}"));
        if let Some(k) = &key
            && let Some(v) = self.idempotent(k)?
        {
            return Ok(v);
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(internal)?;
        let row: Option<(String, i64)> = tx
            .query_row(
                "SELECT draft, next_version FROM guardrails WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(internal)?;
        let (draft, next) = row.ok_or_else(|| not_found(id))?;
        let count: i64 = tx
            .query_row("SELECT COUNT(*) FROM versions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .map_err(internal)?;
        if count >= MAX_VERSIONS {
            return Err(RegistryError::Quota(format!(
                "at most {MAX_VERSIONS} versions per guardrail"
            )));
        }
        tx.execute(
            "INSERT INTO versions (id, version, policy, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, next, draft, description, now()],
        )
        .map_err(internal)?;
        tx.execute(
            "UPDATE guardrails SET next_version = ?2 WHERE id = ?1",
            params![id, next + 1],
        )
        .map_err(internal)?;
        if let Some(k) = &key {
            tx.execute(
                "INSERT OR IGNORE INTO idempotency (token, result) VALUES (?1, ?2)",
                params![k, next.to_string()],
            )
            .map_err(internal)?;
        }
        tx.commit().map_err(internal)?;
        Ok(next.to_string())
    }

    /// DeleteGuardrail: one numbered version, or (with `None`) the guardrail and every version.
    /// Refused while a feature pins what would go.
    pub fn delete(&self, id: &str, version: Option<i64>) -> Result<(), RegistryError> {
        let pinned: Vec<&String> = self
            .pins
            .iter()
            .filter(|(i, v)| i == id && version.is_none_or(|n| *v == n.to_string()))
            .map(|(_, v)| v)
            .collect();
        if !pinned.is_empty() {
            return Err(RegistryError::InUse(format!(
                "guardrail {id} version {} is in use by a feature",
                pinned.first().map_or("", |v| v.as_str())
            )));
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(internal)?;
        let n = match version {
            Some(v) => tx
                .execute(
                    "DELETE FROM versions WHERE id = ?1 AND version = ?2",
                    params![id, v],
                )
                .map_err(internal)?,
            None => {
                tx.execute("DELETE FROM versions WHERE id = ?1", [id])
                    .map_err(internal)?;
                tx.execute("DELETE FROM guardrails WHERE id = ?1", [id])
                    .map_err(internal)?
            }
        };
        if n == 0 {
            return Err(match version {
                Some(v) => RegistryError::NotFound(format!("guardrail {id} has no version {v}")),
                None => not_found(id),
            });
        }
        tx.commit().map_err(internal)?;
        if let Ok(mut c) = self.cache.write() {
            c.retain(|(i, v), _| !(i == id && version.is_none_or(|n| *v == n.to_string())));
        }
        Ok(())
    }

    /// The compiled guardrail for `id:version` (cached; DRAFT recompiles after an update).
    pub fn compiled(&self, r: &GuardrailRef) -> Result<Arc<CompiledGuardrail>, GuardError> {
        let key = (r.id.clone(), r.version.clone());
        if let Some(g) = self.cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(g);
        }
        let not_found = || GuardError::NotFound(format!("{}:{}", r.id, r.version));
        let version = parse_version(&r.version, true).map_err(|_| not_found())?;
        let record = match self.get(&r.id, version) {
            Ok(rec) => rec,
            Err(RegistryError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(GuardError::Backend(e.to_string())),
        };
        let compiled = {
            let mut shared = self
                .shared
                .lock()
                .map_err(|_| GuardError::Backend("registry lock poisoned".into()))?;
            CompiledGuardrail::compile(&r.id, &record.policy, &mut shared)
                .map_err(GuardError::Backend)?
        };
        let compiled = Arc::new(compiled);
        if let Ok(mut c) = self.cache.write() {
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(key, Arc::clone(&compiled));
        }
        Ok(compiled)
    }

    /// Issue a new access key; the secret is returned once and stored encrypted.
    pub fn create_access_key(&self) -> Result<AccessKey, RegistryError> {
        let id = format!(
            "GPLK{}",
            random_string(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")?
        );
        let secret = Zeroizing::new(random_string(
            40,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        )?);
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| internal("random"))?;
        let mut sealed = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| internal("seal"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        self.conn()?
            .execute(
                "INSERT INTO access_keys (access_key_id, secret, created_at) VALUES (?1, ?2, ?3)",
                params![id, blob, now()],
            )
            .map_err(internal)?;
        Ok(AccessKey {
            access_key_id: id,
            secret_access_key: secret,
        })
    }

    /// The secret of an access key, decrypted; `None` for an unknown key.
    pub fn secret_for(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Zeroizing<String>>, RegistryError> {
        if access_key_id.len() > 128 {
            return Ok(None);
        }
        let blob: Option<Vec<u8>> = self
            .conn()?
            .query_row(
                "SELECT secret FROM access_keys WHERE access_key_id = ?1",
                [access_key_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?;
        let Some(blob) = blob else {
            return Ok(None);
        };
        let (nonce, sealed) = blob
            .split_at_checked(NONCE_LEN)
            .ok_or_else(|| internal("short secret"))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| internal("nonce"))?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(access_key_id.as_bytes()), &mut buf)
            .map_err(|_| internal("stored secret does not decrypt"))?;
        let s = std::str::from_utf8(plain).map_err(internal)?;
        Ok(Some(Zeroizing::new(s.to_string())))
    }
}

/// The registry in the config's data dir, pinned by the config's features and seeded with its
/// guardrails (each compiled first, so a bad policy fails start-up naming the guardrail).
pub fn open_seeded(config: &crate::config::Config) -> Result<Registry, String> {
    let pins = config
        .features
        .values()
        .map(|f| (f.guardrail.clone(), f.guardrail_version.clone()))
        .collect();
    super::engine::EmbeddedGuardrails::new(&config.guardrails)?;
    let registry = Registry::open(&config.data_dir, pins).map_err(|e| match e {
        RegistryError::Internal(d) => format!("cannot open guardrails.db: {d}"),
        other => other.to_string(),
    })?;
    for (id, policy) in &config.guardrails {
        registry
            .seed(id, policy)
            .map_err(|e| format!("guardrail '{id}': {e}"))?;
    }
    Ok(registry)
}

fn not_found(id: &str) -> RegistryError {
    RegistryError::NotFound(format!("guardrail {id} not found"))
}

#[async_trait]
impl Guardrail for Registry {
    async fn apply(
        &self,
        guardrail: &GuardrailRef,
        source: Source,
        text: &str,
    ) -> Result<GuardOutcome, GuardError> {
        self.compiled(guardrail)?
            .apply_offloaded(source, text)
            .await
    }

    async fn stream(&self, guardrail: &GuardrailRef) -> Result<Box<dyn StreamGuard>, GuardError> {
        Ok(Box::new(EmbeddedStreamGuard::new(
            self.compiled(guardrail)?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(pins: &[(&str, &str)]) -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let pins = pins
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let r = Registry::open(dir.path(), pins).unwrap();
        (dir, r)
    }

    #[test]
    fn draft_versions_pins_and_keys() {
        let (_d, r) = reg(&[("default", "1")]);
        r.seed("default", &GuardrailPolicy::default_policy())
            .unwrap();
        r.seed("default", &GuardrailPolicy::default_policy())
            .unwrap();
        assert_eq!(r.get("default", Some(1)).unwrap().version, "1");
        assert!(matches!(
            r.delete("default", Some(1)),
            Err(RegistryError::InUse(_))
        ));
        assert!(matches!(
            r.delete("default", None),
            Err(RegistryError::InUse(_))
        ));

        let mut p = GuardrailPolicy::default_policy();
        p.name = "second".into();
        let rec = r.create(&p, Some("tok1")).unwrap();
        assert_eq!(rec.version, "DRAFT");
        assert_eq!(r.create(&p, Some("tok1")).unwrap().id, rec.id);
        assert!(matches!(
            r.create(&p, None),
            Err(RegistryError::Conflict(_))
        ));
        assert_eq!(r.create_version(&rec.id, Some("first"), None).unwrap(), "1");
        p.blocked_input_messaging = "changed".into();
        r.update(&rec.id, &p).unwrap();
        assert_eq!(r.create_version(&rec.id, None, None).unwrap(), "2");
        // Version 1 is unchanged by the update.
        let v1 = r.get(&rec.id, Some(1)).unwrap();
        assert_ne!(v1.policy.blocked_input_messaging, "changed");
        assert_eq!(v1.policy.description.as_deref(), Some("first"));
        let g = r
            .compiled(&GuardrailRef {
                id: rec.id.clone(),
                version: "2".into(),
            })
            .unwrap();
        assert_eq!(g.blocked_message(Source::Input), "changed");
        let (all, next) = r.list(None, 0, 1).unwrap();
        assert_eq!((all.len(), next), (1, Some(1)));
        let (versions, _) = r.list(Some(&rec.id), 0, 10).unwrap();
        assert_eq!(versions.len(), 3);
        r.delete(&rec.id, Some(1)).unwrap();
        assert!(matches!(
            r.get(&rec.id, Some(1)),
            Err(RegistryError::NotFound(_))
        ));
        r.delete(&rec.id, None).unwrap();
        assert!(matches!(
            r.get(&rec.id, None),
            Err(RegistryError::NotFound(_))
        ));

        let mut bad = GuardrailPolicy::default_policy();
        bad.name = "bad".into();
        bad.sensitive_information_policy_config =
            Some(super::super::policy::SensitiveInformationPolicy {
                pii_entities_config: vec![],
                regexes_config: vec![super::super::policy::RegexConfig {
                    name: "x".into(),
                    description: None,
                    pattern: "(".into(),
                    action: super::super::policy::PiiAction::Block,
                    input_action: None,
                    output_action: None,
                    input_enabled: None,
                    output_enabled: None,
                }],
            });
        assert!(
            matches!(r.create(&bad, None), Err(RegistryError::Validation(m)) if m.contains("invalid regex"))
        );

        let k = r.create_access_key().unwrap();
        let s = r.secret_for(&k.access_key_id).unwrap().unwrap();
        assert_eq!(s.as_str(), k.secret_access_key.as_str());
        assert!(r.secret_for("GPLKNOPE").unwrap().is_none());
        assert_eq!(parse_identifier(&arn("abc123")).unwrap(), "abc123");
        assert!(parse_identifier("Bad!").is_err());
        assert!(parse_version("0", false).is_err());
        assert_eq!(parse_version("DRAFT", true).unwrap(), None);
    }
}
