//! Console accounts: local users with argon2id password hashes, roles, and sessions, kept in
//! SQLite (`<data_dir>/console.db`).
//!
//! Invariants: a password is only ever stored as an argon2id PHC string; a session token only as
//! its SHA-256; every sign-in creates a new session and ends the one the browser presented
//! (rotation); a sign-in failure says nothing about which half was wrong; a throttled key is
//! refused before any password is checked.

pub mod events;
pub mod federated;
pub mod manage;
pub mod password;
pub mod session;
pub mod throttle;

pub use federated::is_valid_name;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::{Connection, OptionalExtension, params};
use subtle::ConstantTimeEq;

use password::HashCost;
use throttle::LoginThrottle;

/// What a console user may do. The overview is open to every role; the vault needs `soc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Soc,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Soc => "soc",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "admin" => Some(Role::Admin),
            "soc" => Some(Role::Soc),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A console user (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub created_at_ms: i64,
}

/// A session just created by [`Accounts::login`]; `token` goes into the cookie and nowhere else.
#[derive(Debug)]
pub struct NewSession {
    pub token: String,
    pub user: User,
    pub expires_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("console database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Creating `console.db` owner-only, or restricting an existing one, failed.
    #[error("console database file: {0}")]
    File(#[from] std::io::Error),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("the system random generator failed")]
    Random,
    #[error("a console lock was poisoned by an earlier panic")]
    Poisoned,
    #[error("background task failed: {0}")]
    Task(String),
    #[error("invalid user: {0}")]
    InvalidUser(String),
    /// The console's audit trail on CloudWatch Logs (`backend = "aws"`) failed.
    #[error("console event log: {0}")]
    EventLog(String),
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password: deliberately one case.
    #[error("invalid credentials")]
    Invalid,
    #[error("too many failed sign-ins")]
    Throttled,
    #[error(transparent)]
    Store(#[from] AccountsError),
}

/// The longest user name accepted.
const MAX_NAME_LEN: usize = 64;
/// The longest password accepted (argon2 cost does not depend on it, but requests should be small).
const MAX_PASSWORD_LEN: usize = 1024;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'soc', 'viewer')),
    created_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_name  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions(expires_at);
";

/// The account store. Cheap to clone; all blocking work (SQLite, argon2) runs off the async
/// threads.
#[derive(Clone)]
pub struct Accounts {
    db: Arc<Mutex<Connection>>,
    throttle: Arc<Mutex<LoginThrottle>>,
    pub(crate) cost: HashCost,
    /// A hash to verify against when the user does not exist, so both cases cost the same.
    dummy_hash: Arc<OnceLock<String>>,
    /// Where the audit trail goes instead of `console.db` (CloudWatch Logs on AWS).
    event_log: Option<Arc<gateway::aws::console_events::ConsoleEventLog>>,
}

impl Accounts {
    /// Open (creating if needed) the store at `path` with the default argon2id cost.
    pub fn open(path: &Path) -> Result<Accounts, AccountsError> {
        Accounts::open_with_cost(path, HashCost::DEFAULT)
    }

    /// [`Accounts::open`] with an explicit hash cost (tests use a cheap one).
    pub fn open_with_cost(path: &Path, cost: HashCost) -> Result<Accounts, AccountsError> {
        gateway::secret_file::private_sqlite(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        manage::migrate(&conn)?;
        events::migrate(&conn)?;
        Ok(Accounts {
            db: Arc::new(Mutex::new(conn)),
            throttle: Arc::new(Mutex::new(LoginThrottle::default())),
            cost,
            dummy_hash: Arc::new(OnceLock::new()),
            event_log: None,
        })
    }

    /// On first run (no users at all) create `admin` with a random password and return that
    /// password, to be shown once. Otherwise `None`.
    pub async fn ensure_admin(&self, now_ms: i64) -> Result<Option<String>, AccountsError> {
        let this = self.clone();
        blocking(move || {
            let empty = this.with_db(|db| {
                Ok(db.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))? == 0)
            })?;
            if !empty {
                return Ok(None);
            }
            let password = password::generate()?;
            let hash = password::hash(&password, this.cost)?;
            let inserted = this.with_db(|db| {
                Ok(db.execute(
                    "INSERT INTO users (name, password_hash, role, created_at)
                     SELECT 'admin', ?1, 'admin', ?2 WHERE NOT EXISTS (SELECT 1 FROM users)",
                    params![hash, now_ms],
                )?)
            })?;
            Ok((inserted == 1).then_some(password))
        })
        .await
    }

    /// Add a user. Names are 1–64 characters of letters, digits, `.`, `_`, `-` and `@`.
    pub async fn create_user(
        &self,
        name: &str,
        password: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<(), AccountsError> {
        if !valid_name(name) {
            return Err(AccountsError::InvalidUser(format!(
                "{name:?} is not a valid user name"
            )));
        }
        if password.chars().count() < 12 || password.len() > MAX_PASSWORD_LEN {
            return Err(AccountsError::InvalidUser(
                "passwords are 12 to 1024 characters".into(),
            ));
        }
        let (this, name, password) = (self.clone(), name.to_string(), password.to_string());
        blocking(move || {
            let hash = password::hash(&password, this.cost)?;
            this.with_db(|db| {
                db.execute(
                    "INSERT INTO users (name, password_hash, role, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![name, hash, role.as_str(), now_ms],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Check `name`/`password` for a sign-in from `client` (an address) and, on success, start
    /// a session, ending `previous_token`'s session if the browser presented one.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        client: &str,
        previous_token: Option<&str>,
        now_ms: i64,
    ) -> Result<NewSession, LoginError> {
        let keys = vec![format!("user:{name}"), format!("ip:{client}")];
        if self.with_throttle(|t| t.is_blocked(&keys, now_ms))? {
            return Err(LoginError::Throttled);
        }
        let this = self.clone();
        let (name, password) = (name.to_string(), password.to_string());
        let previous_hash = previous_token.and_then(session::token_hash);
        let outcome = blocking(move || {
            let row = if name.is_empty() || name.len() > MAX_NAME_LEN {
                None
            } else {
                this.with_db(|db| {
                    Ok(db
                        .query_row(
                            "SELECT password_hash, role, created_at FROM users
                             WHERE name = ?1 AND disabled = 0",
                            params![name],
                            |r| {
                                Ok((
                                    r.get::<_, String>(0)?,
                                    r.get::<_, String>(1)?,
                                    r.get::<_, i64>(2)?,
                                ))
                            },
                        )
                        .optional()?)
                })?
            };
            let password_ok = password.len() <= MAX_PASSWORD_LEN;
            let user = match row {
                Some((hash, role, created_at_ms)) => {
                    let matches = password::verify(&password, &hash);
                    match (matches && password_ok, Role::parse(&role)) {
                        (true, Some(role)) => Some(User {
                            name: name.clone(),
                            role,
                            created_at_ms,
                        }),
                        _ => None,
                    }
                }
                None => {
                    // Same work as for a real user, so timing does not tell names apart.
                    let _ = password::verify(&password, this.dummy_hash()?);
                    None
                }
            };
            let Some(user) = user else {
                return Ok(None);
            };
            let (token, expires_at_ms) = this.with_db(|db| {
                let tx = db.unchecked_transaction()?;
                let stored = session::store_new(&tx, &user.name, previous_hash.as_deref(), now_ms)?;
                tx.commit()?;
                Ok(stored)
            })?;
            Ok(Some(NewSession {
                token,
                user,
                expires_at_ms,
            }))
        })
        .await?;
        match outcome {
            Some(session) => {
                self.with_throttle(|t| t.clear(&keys[0]))?;
                Ok(session)
            }
            None => {
                self.with_throttle(|t| t.record_failure(&keys, now_ms))?;
                Err(LoginError::Invalid)
            }
        }
    }

    /// The user a session token belongs to, if the session exists and has not expired.
    pub async fn session_user(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<User>, AccountsError> {
        let Some(hash) = session::token_hash(token) else {
            return Ok(None);
        };
        let this = self.clone();
        blocking(move || {
            let row = this.with_db(|db| {
                Ok(db
                    .query_row(
                        "SELECT s.token_hash, s.expires_at, u.name, u.role, u.created_at
                         FROM sessions s JOIN users u ON u.name = s.user_name
                         WHERE s.token_hash = ?1 AND u.disabled = 0",
                        params![hash],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, i64>(4)?,
                            ))
                        },
                    )
                    .optional()?)
            })?;
            Ok(
                row.and_then(|(stored, expires_at, name, role, created_at_ms)| {
                    let same: bool = stored.as_bytes().ct_eq(hash.as_bytes()).into();
                    (same && expires_at > now_ms).then_some(())?;
                    Some(User {
                        name,
                        role: Role::parse(&role)?,
                        created_at_ms,
                    })
                }),
            )
        })
        .await
    }

    /// End the session of `token` (no error if there is none).
    pub async fn logout(&self, token: &str) -> Result<(), AccountsError> {
        let Some(hash) = session::token_hash(token) else {
            return Ok(());
        };
        let this = self.clone();
        blocking(move || {
            this.with_db(|db| {
                db.execute("DELETE FROM sessions WHERE token_hash = ?1", params![hash])?;
                Ok(())
            })
        })
        .await
    }

    pub(crate) fn with_db<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AccountsError>,
    ) -> Result<T, AccountsError> {
        let db = self.db.lock().map_err(|_| AccountsError::Poisoned)?;
        f(&db)
    }

    fn with_throttle<T>(&self, f: impl FnOnce(&mut LoginThrottle) -> T) -> Result<T, LoginError> {
        let mut t = self.throttle.lock().map_err(|_| AccountsError::Poisoned)?;
        Ok(f(&mut t))
    }

    fn dummy_hash(&self) -> Result<&str, AccountsError> {
        if let Some(hash) = self.dummy_hash.get() {
            return Ok(hash);
        }
        let hash = password::hash("golden-path-dummy-password", self.cost)?;
        Ok(self.dummy_hash.get_or_init(|| hash))
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AccountsError> + Send + 'static,
) -> Result<T, AccountsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AccountsError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn store() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP).unwrap();
        (dir, accounts)
    }

    #[tokio::test]
    async fn first_run_creates_admin_once_and_it_can_sign_in() {
        let (dir, accounts) = store();
        let password = accounts.ensure_admin(1).await.unwrap().unwrap();
        assert_eq!(password.len(), password::GENERATED_LEN);
        assert_eq!(accounts.ensure_admin(2).await.unwrap(), None);
        // Reopening does not create it again either.
        let again = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP).unwrap();
        assert_eq!(again.ensure_admin(3).await.unwrap(), None);

        let s = accounts
            .login("admin", &password, "127.0.0.1", None, 10)
            .await
            .unwrap();
        assert_eq!(s.user.role, Role::Admin);
        assert_eq!(s.expires_at_ms, 10 + session::SESSION_TTL_MS);
        let user = accounts.session_user(&s.token, 11).await.unwrap().unwrap();
        assert_eq!(user.name, "admin");
    }

    #[tokio::test]
    async fn stored_secrets_are_hashes() {
        let (dir, accounts) = store();
        let password = accounts.ensure_admin(1).await.unwrap().unwrap();
        let s = accounts
            .login("admin", &password, "ip", None, 10)
            .await
            .unwrap();
        let db = Connection::open(dir.path().join("console.db")).unwrap();
        let hash: String = db
            .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains(&password));
        let token_hash: String = db
            .query_row("SELECT token_hash FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_ne!(token_hash, s.token);
        assert_eq!(Some(token_hash), session::token_hash(&s.token));
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_user_fail_alike() {
        let (_dir, accounts) = store();
        accounts
            .create_user("ana", "a long enough password", Role::Soc, 1)
            .await
            .unwrap();
        let wrong = accounts.login("ana", "nope", "a", None, 5).await;
        let unknown = accounts.login("nobody", "nope", "b", None, 5).await;
        assert!(matches!(wrong, Err(LoginError::Invalid)), "{wrong:?}");
        assert!(matches!(unknown, Err(LoginError::Invalid)), "{unknown:?}");
        let ok = accounts
            .login("ana", "a long enough password", "a", None, 5)
            .await
            .unwrap();
        assert_eq!(ok.user.role, Role::Soc);
    }

    #[tokio::test]
    async fn sign_in_rotates_the_presented_session_and_sessions_expire() {
        let (_dir, accounts) = store();
        accounts
            .create_user("ana", "a long enough password", Role::Viewer, 1)
            .await
            .unwrap();
        let first = accounts
            .login("ana", "a long enough password", "a", None, 100)
            .await
            .unwrap();
        let second = accounts
            .login(
                "ana",
                "a long enough password",
                "a",
                Some(&first.token),
                200,
            )
            .await
            .unwrap();
        assert_ne!(first.token, second.token);
        assert_eq!(
            accounts.session_user(&first.token, 201).await.unwrap(),
            None
        );
        assert!(
            accounts
                .session_user(&second.token, 201)
                .await
                .unwrap()
                .is_some()
        );
        let expiry = second.expires_at_ms;
        assert_eq!(
            accounts.session_user(&second.token, expiry).await.unwrap(),
            None
        );

        accounts.logout(&second.token).await.unwrap();
        assert_eq!(
            accounts.session_user(&second.token, 300).await.unwrap(),
            None
        );
        assert_eq!(accounts.session_user("garbage", 300).await.unwrap(), None);
    }

    #[tokio::test]
    async fn repeated_failures_throttle_even_the_right_password() {
        let (_dir, accounts) = store();
        let password = accounts.ensure_admin(1).await.unwrap().unwrap();
        for _ in 0..throttle::MAX_FAILURES {
            let r = accounts
                .login("admin", "wrong", "10.0.0.9", None, 1_000)
                .await;
            assert!(matches!(r, Err(LoginError::Invalid)));
        }
        let r = accounts
            .login("admin", &password, "10.0.0.8", None, 1_001)
            .await;
        assert!(matches!(r, Err(LoginError::Throttled)), "{r:?}");
        let later = 1_000 + throttle::WINDOW_MS + 1;
        assert!(
            accounts
                .login("admin", &password, "10.0.0.8", None, later)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn user_names_and_passwords_are_validated() {
        let (_dir, accounts) = store();
        let bad = accounts
            .create_user("bad name", "a long enough password", Role::Viewer, 1)
            .await;
        assert!(matches!(bad, Err(AccountsError::InvalidUser(_))));
        let short = accounts.create_user("ok", "short", Role::Viewer, 1).await;
        assert!(matches!(short, Err(AccountsError::InvalidUser(_))));
    }
}
