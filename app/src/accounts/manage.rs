//! Account management for admins and the command line: list users, create one with a role,
//! change a role, disable or re-enable, reset a password, and create an admin from the CLI
//! with a generated password shown once.
//!
//! Invariants: there is always at least one enabled admin (the last one cannot be disabled or
//! demoted); disabling a user or resetting their password ends all their sessions; passwords
//! follow [`Accounts::create_user`]'s rules.
//!
//! Separation of duties ([`Accounts::with_soc_grant_approval`], config
//! `console.soc_grant_requires_second_admin`): then every change that gives someone the `soc`
//! role's access — creating a `soc` account, changing a role to `soc`, re-enabling a disabled
//! `soc` account, setting a `soc` account's password (its setter could sign in as it) — is
//! refused with [`AccountsError::NeedsApproval`] (checked under the store's lock, with the
//! change), and goes through [`Accounts::request_soc_grant`] instead: it waits in
//! `pending_grants` until an enabled admin other than the requester and the target approves it
//! ([`Accounts::approve_soc_grant`]).

use rusqlite::{Connection, OptionalExtension, params};

use super::{Accounts, AccountsError, MAX_PASSWORD_LEN, Role, blocking, password, valid_name};

/// One row of the accounts table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at_ms: i64,
    /// Live sessions right now.
    pub sessions: u64,
}

/// The most changes that may wait for approval at once.
pub const MAX_PENDING_GRANTS: i64 = 100;

/// A change that grants the `soc` role's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocGrant {
    /// Create an account with the `soc` role.
    Create,
    /// Change an account's role to `soc`.
    Role,
    /// Re-enable a disabled `soc` account.
    Enable,
    /// Set a new password for a `soc` account.
    Password,
}

impl SocGrant {
    pub fn as_str(self) -> &'static str {
        match self {
            SocGrant::Create => "create",
            SocGrant::Role => "role",
            SocGrant::Enable => "enable",
            SocGrant::Password => "password",
        }
    }

    fn parse(value: &str) -> Option<SocGrant> {
        match value {
            "create" => Some(SocGrant::Create),
            "role" => Some(SocGrant::Role),
            "enable" => Some(SocGrant::Enable),
            "password" => Some(SocGrant::Password),
            _ => None,
        }
    }

    /// What the change does, for the accounts page and the audit trail.
    pub fn describe(self) -> &'static str {
        match self {
            SocGrant::Create => "new account with the soc role",
            SocGrant::Role => "role changed to soc",
            SocGrant::Enable => "soc account re-enabled",
            SocGrant::Password => "new password for a soc account",
        }
    }
}

/// A [`SocGrant`] waiting for a second admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingGrant {
    pub id: i64,
    pub grant: SocGrant,
    pub target: String,
    pub requested_by: String,
    pub requested_at_ms: i64,
}

/// Add the `disabled` column to a database created before it existed, and the table of changes
/// waiting for approval.
pub(crate) fn migrate(conn: &Connection) -> Result<(), AccountsError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS pending_grants (
             id            INTEGER PRIMARY KEY AUTOINCREMENT,
             kind          TEXT NOT NULL,
             target        TEXT NOT NULL,
             password_hash TEXT,
             requested_by  TEXT NOT NULL,
             requested_at  INTEGER NOT NULL)",
    )?;
    let has: bool = conn
        .query_row(
            "SELECT 1 FROM pragma_table_info('users') WHERE name = 'disabled'",
            [],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if !has {
        conn.execute_batch("ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), AccountsError> {
    if password.chars().count() < 12 || password.len() > MAX_PASSWORD_LEN {
        return Err(AccountsError::InvalidUser(
            "passwords are 12 to 1024 characters".into(),
        ));
    }
    Ok(())
}

fn enabled_admins_other_than(db: &Connection, name: &str) -> Result<i64, AccountsError> {
    Ok(db.query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND name != ?1",
        params![name],
        |r| r.get(0),
    )?)
}

fn exists(db: &Connection, name: &str) -> Result<Option<(String, bool)>, AccountsError> {
    Ok(db
        .query_row(
            "SELECT role, disabled FROM users WHERE name = ?1",
            params![name],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0)),
        )
        .optional()?)
}

fn no_such_user() -> AccountsError {
    AccountsError::InvalidUser("there is no such user".into())
}

/// Set `name`'s role (the last enabled admin keeps the admin role); its previous role.
fn apply_role(db: &Connection, name: &str, role: Role) -> Result<Role, AccountsError> {
    let (old, disabled) = exists(db, name)?.ok_or_else(no_such_user)?;
    if old == "admin"
        && role != Role::Admin
        && !disabled
        && enabled_admins_other_than(db, name)? == 0
    {
        return Err(AccountsError::InvalidUser(
            "the last admin cannot lose the admin role".into(),
        ));
    }
    db.execute(
        "UPDATE users SET role = ?2 WHERE name = ?1",
        params![name, role.as_str()],
    )?;
    Role::parse(&old).ok_or_else(|| AccountsError::InvalidUser("unknown stored role".into()))
}

fn pending_grant(r: &rusqlite::Row<'_>) -> rusqlite::Result<(PendingGrant, Option<String>)> {
    let kind: String = r.get(1)?;
    let grant = SocGrant::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            "unknown pending change".into(),
        )
    })?;
    Ok((
        PendingGrant {
            id: r.get(0)?,
            grant,
            target: r.get(2)?,
            requested_by: r.get(3)?,
            requested_at_ms: r.get(4)?,
        },
        r.get(5)?,
    ))
}

/// The pending change `id` and its password hash, or "no such pending change".
fn pending_by_id(
    db: &Connection,
    id: i64,
) -> Result<(PendingGrant, Option<String>), AccountsError> {
    db.query_row(
        "SELECT id, kind, target, requested_by, requested_at, password_hash
         FROM pending_grants WHERE id = ?1",
        params![id],
        pending_grant,
    )
    .optional()?
    .ok_or_else(|| AccountsError::InvalidUser("there is no such pending change".into()))
}

impl Accounts {
    /// Every account, by name.
    pub async fn accounts(&self, now_ms: i64) -> Result<Vec<Account>, AccountsError> {
        let this = self.clone();
        blocking(move || {
            this.with_db(|db| {
                let mut st = db.prepare(
                    "SELECT u.name, u.role, u.disabled, u.created_at,
                            (SELECT COUNT(*) FROM sessions s
                             WHERE s.user_name = u.name AND s.expires_at > ?1)
                     FROM users u ORDER BY u.name LIMIT 10000",
                )?;
                let rows = st.query_map(params![now_ms], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (name, role, disabled, created_at_ms, sessions) = row?;
                    let Some(role) = Role::parse(&role) else {
                        continue;
                    };
                    out.push(Account {
                        name,
                        role,
                        disabled: disabled != 0,
                        created_at_ms,
                        sessions: sessions.max(0) as u64,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// Require a second admin for changes that grant `soc` (see the module docs).
    pub fn with_soc_grant_approval(mut self, required: bool) -> Accounts {
        self.soc_grant_approval = required;
        self
    }

    /// Whether changes that grant `soc` wait for a second admin.
    pub fn soc_grant_approval(&self) -> bool {
        self.soc_grant_approval
    }

    /// [`AccountsError::NeedsApproval`] when `grants_soc` and approval is required.
    pub(crate) fn check_soc_grant(&self, grants_soc: bool) -> Result<(), AccountsError> {
        if grants_soc && self.soc_grant_approval {
            return Err(AccountsError::NeedsApproval);
        }
        Ok(())
    }

    /// Change `name`'s role; its previous role. The last enabled admin keeps the admin role.
    pub async fn set_role(&self, name: &str, role: Role) -> Result<Role, AccountsError> {
        let (this, name) = (self.clone(), name.to_string());
        blocking(move || {
            this.with_db(|db| {
                let (old, _) = exists(db, &name)?.ok_or_else(no_such_user)?;
                this.check_soc_grant(role == Role::Soc && old != "soc")?;
                apply_role(db, &name, role)
            })
        })
        .await
    }

    /// Disable (ending every session) or re-enable `name`. The last enabled admin stays enabled.
    /// Whether this re-enabled a `soc` account.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, AccountsError> {
        let (this, name) = (self.clone(), name.to_string());
        blocking(move || {
            this.with_db(|db| {
                let (role, was_disabled) = exists(db, &name)?.ok_or_else(no_such_user)?;
                let enables_soc = !disabled && was_disabled && role == "soc";
                this.check_soc_grant(enables_soc)?;
                if disabled && role == "admin" && enabled_admins_other_than(db, &name)? == 0 {
                    return Err(AccountsError::InvalidUser(
                        "the last enabled admin cannot be disabled".into(),
                    ));
                }
                let tx = db.unchecked_transaction()?;
                tx.execute(
                    "UPDATE users SET disabled = ?2 WHERE name = ?1",
                    params![name, i64::from(disabled)],
                )?;
                if disabled {
                    tx.execute("DELETE FROM sessions WHERE user_name = ?1", params![name])?;
                }
                tx.commit()?;
                Ok(enables_soc)
            })
        })
        .await
    }

    /// Set a new password for `name` and end their sessions. Whether `name` is a `soc` account
    /// (whoever set the password can now sign in as it).
    pub async fn reset_password(
        &self,
        name: &str,
        new_password: &str,
    ) -> Result<bool, AccountsError> {
        check_password(new_password)?;
        let (this, name, pw) = (self.clone(), name.to_string(), new_password.to_string());
        blocking(move || {
            let hash = password::hash(&pw, this.cost)?;
            this.with_db(|db| {
                let (role, _) = exists(db, &name)?.ok_or_else(no_such_user)?;
                this.check_soc_grant(role == "soc")?;
                let tx = db.unchecked_transaction()?;
                let n = tx.execute(
                    "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                    params![name, hash],
                )?;
                if n == 0 {
                    return Err(no_such_user());
                }
                tx.execute("DELETE FROM sessions WHERE user_name = ?1", params![name])?;
                tx.commit()?;
                Ok(role == "soc")
            })
        })
        .await
    }

    /// Ask for `grant` on `target` (with the new password for [`SocGrant::Create`] and
    /// [`SocGrant::Password`]), to be approved by another admin; the request's id. Checked now
    /// as far as it can be (and again on approval).
    pub async fn request_soc_grant(
        &self,
        grant: SocGrant,
        target: &str,
        new_password: Option<&str>,
        requested_by: &str,
        now_ms: i64,
    ) -> Result<i64, AccountsError> {
        let needs_password = matches!(grant, SocGrant::Create | SocGrant::Password);
        let new_password = match (needs_password, new_password) {
            (true, Some(pw)) => {
                check_password(pw)?;
                Some(pw.to_string())
            }
            (true, None) => return Err(AccountsError::InvalidUser("a password is needed".into())),
            (false, _) => None,
        };
        if !valid_name(target) {
            return Err(AccountsError::InvalidUser(format!(
                "{target:?} is not a valid user name"
            )));
        }
        let (this, target, requested_by) =
            (self.clone(), target.to_string(), requested_by.to_string());
        blocking(move || {
            let hash = new_password
                .map(|pw| password::hash(&pw, this.cost))
                .transpose()?;
            this.with_db(|db| {
                let current = exists(db, &target)?;
                let refused = |m: &str| Err(AccountsError::InvalidUser(m.into()));
                match (grant, current.as_ref().map(|(r, d)| (r.as_str(), *d))) {
                    (SocGrant::Create, Some(_)) => {
                        return refused("a user with this name already exists");
                    }
                    (SocGrant::Create, None) => {}
                    (_, None) => return Err(no_such_user()),
                    (SocGrant::Role, Some(("soc", _))) => {
                        return refused("this account already has the soc role");
                    }
                    (SocGrant::Enable, Some((role, disabled))) if role != "soc" || !disabled => {
                        return refused("this is not a disabled soc account");
                    }
                    (SocGrant::Password, Some((role, _))) if role != "soc" => {
                        return refused("this is not a soc account");
                    }
                    _ => {}
                }
                let waiting: i64 =
                    db.query_row("SELECT COUNT(*) FROM pending_grants", [], |r| r.get(0))?;
                if waiting >= MAX_PENDING_GRANTS {
                    return refused("too many changes are waiting for approval");
                }
                db.execute(
                    "INSERT INTO pending_grants
                         (kind, target, password_hash, requested_by, requested_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![grant.as_str(), target, hash, requested_by, now_ms],
                )?;
                Ok(db.last_insert_rowid())
            })
        })
        .await
    }

    /// Changes waiting for approval, oldest first.
    pub async fn pending_soc_grants(&self) -> Result<Vec<PendingGrant>, AccountsError> {
        let this = self.clone();
        blocking(move || {
            this.with_db(|db| {
                let mut st = db.prepare(
                    "SELECT id, kind, target, requested_by, requested_at, NULL
                     FROM pending_grants ORDER BY id LIMIT ?1",
                )?;
                let rows = st.query_map(params![MAX_PENDING_GRANTS], pending_grant)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(row?.0);
                }
                Ok(out)
            })
        })
        .await
    }

    /// Apply the pending change `id` as approved by `approver`, who must be an enabled admin
    /// other than the requester and the target. The change as it was requested.
    pub async fn approve_soc_grant(
        &self,
        id: i64,
        approver: &str,
        now_ms: i64,
    ) -> Result<PendingGrant, AccountsError> {
        let (this, approver) = (self.clone(), approver.to_string());
        blocking(move || {
            this.with_db(|db| {
                let tx = db.unchecked_transaction()?;
                let (pending, hash) = pending_by_id(&tx, id)?;
                if pending.requested_by == approver {
                    return Err(AccountsError::InvalidUser(
                        "a change you asked for needs another admin's approval".into(),
                    ));
                }
                if pending.target == approver {
                    return Err(AccountsError::InvalidUser(
                        "a change to your own account needs another admin's approval".into(),
                    ));
                }
                if exists(&tx, &approver)? != Some(("admin".into(), false)) {
                    return Err(AccountsError::InvalidUser(
                        "only an enabled admin can approve".into(),
                    ));
                }
                let target = pending.target.as_str();
                let stored_hash = || {
                    hash.clone()
                        .ok_or_else(|| AccountsError::InvalidUser("no password stored".into()))
                };
                match pending.grant {
                    SocGrant::Create => {
                        if exists(&tx, target)?.is_some() {
                            return Err(AccountsError::InvalidUser(
                                "a user with this name already exists".into(),
                            ));
                        }
                        tx.execute(
                            "INSERT INTO users (name, password_hash, role, created_at)
                             VALUES (?1, ?2, 'soc', ?3)",
                            params![target, stored_hash()?, now_ms],
                        )?;
                    }
                    SocGrant::Role => {
                        apply_role(&tx, target, Role::Soc)?;
                    }
                    SocGrant::Enable => {
                        exists(&tx, target)?.ok_or_else(no_such_user)?;
                        tx.execute(
                            "UPDATE users SET disabled = 0 WHERE name = ?1",
                            params![target],
                        )?;
                    }
                    SocGrant::Password => {
                        exists(&tx, target)?.ok_or_else(no_such_user)?;
                        tx.execute(
                            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                            params![target, stored_hash()?],
                        )?;
                        tx.execute("DELETE FROM sessions WHERE user_name = ?1", params![target])?;
                    }
                }
                tx.execute("DELETE FROM pending_grants WHERE id = ?1", params![id])?;
                tx.commit()?;
                Ok(pending)
            })
        })
        .await
    }

    /// Drop the pending change `id` (any admin may, the requester included).
    pub async fn reject_soc_grant(&self, id: i64) -> Result<PendingGrant, AccountsError> {
        let this = self.clone();
        blocking(move || {
            this.with_db(|db| {
                let tx = db.unchecked_transaction()?;
                let (pending, _) = pending_by_id(&tx, id)?;
                tx.execute("DELETE FROM pending_grants WHERE id = ?1", params![id])?;
                tx.commit()?;
                Ok(pending)
            })
        })
        .await
    }

    /// The command line's `create-admin`: make `name` an enabled admin with a fresh generated
    /// password (creating the user, or promoting and resetting an existing one) and return the
    /// password, to be shown once.
    pub async fn create_admin(&self, name: &str, now_ms: i64) -> Result<String, AccountsError> {
        if !valid_name(name) {
            return Err(AccountsError::InvalidUser(format!(
                "{:?} is not a valid user name (1-64 letters, digits, . _ - @)",
                crate::log_safe::LogSafe(name)
            )));
        }
        let (this, name) = (self.clone(), name.to_string());
        blocking(move || {
            let password = password::generate()?;
            let hash = password::hash(&password, this.cost)?;
            this.with_db(|db| {
                let tx = db.unchecked_transaction()?;
                tx.execute(
                    "INSERT INTO users (name, password_hash, role, created_at, disabled)
                     VALUES (?1, ?2, 'admin', ?3, 0)
                     ON CONFLICT(name) DO UPDATE
                     SET password_hash = ?2, role = 'admin', disabled = 0",
                    params![name, hash, now_ms],
                )?;
                tx.execute("DELETE FROM sessions WHERE user_name = ?1", params![name])?;
                tx.commit()?;
                Ok(())
            })?;
            Ok(password)
        })
        .await
    }
}

#[cfg(test)]
mod tests {

    use super::super::password::HashCost;
    use super::*;

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    const PW: &str = "a long enough password";

    fn store() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP).unwrap();
        (dir, accounts)
    }

    #[tokio::test]
    async fn disabling_ends_sessions_and_refuses_sign_in() {
        let (_dir, a) = store();
        a.create_user("ana", PW, Role::Soc, 1).await.unwrap();
        let s = a.login("ana", PW, "ip", None, 5).await.unwrap();
        a.set_disabled("ana", true).await.unwrap();
        assert_eq!(a.session_user(&s.token, 6).await.unwrap(), None);
        assert!(a.login("ana", PW, "ip2", None, 7).await.is_err());
        a.set_disabled("ana", false).await.unwrap();
        assert!(a.login("ana", PW, "ip3", None, 8).await.is_ok());
        let list = a.accounts(9).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].sessions, 1);
    }

    #[tokio::test]
    async fn the_last_admin_is_kept() {
        let (_dir, a) = store();
        a.ensure_admin(1).await.unwrap().unwrap();
        assert!(a.set_role("admin", Role::Viewer).await.is_err());
        assert!(a.set_disabled("admin", true).await.is_err());
        a.create_user("second", PW, Role::Admin, 1).await.unwrap();
        a.set_role("admin", Role::Viewer).await.unwrap();
        assert!(a.set_disabled("second", true).await.is_err());
        assert!(a.set_role("nobody", Role::Viewer).await.is_err());
    }

    fn needs_approval<T: std::fmt::Debug>(r: Result<T, AccountsError>) {
        assert!(matches!(r, Err(AccountsError::NeedsApproval)), "{r:?}");
    }

    /// Finding: an admin could create a SOC account (or make one) and open vault records
    /// through it. With the switch on, every way to it waits for a second admin.
    #[tokio::test]
    async fn soc_grants_wait_for_a_second_admin_and_not_the_requester() {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP)
            .unwrap()
            .with_soc_grant_approval(true);
        for name in ["ada", "bea"] {
            a.create_user(name, PW, Role::Admin, 1).await.unwrap();
        }
        a.create_user("vic", PW, Role::Viewer, 1).await.unwrap();

        // Create with soc: refused outright, filed instead.
        needs_approval(a.create_user("sam", PW, Role::Soc, 2).await);
        assert!(a.login("sam", PW, "ip", None, 3).await.is_err());
        let create = a
            .request_soc_grant(SocGrant::Create, "sam", Some(PW), "ada", 3)
            .await
            .unwrap();
        // Role change to soc.
        needs_approval(a.set_role("vic", Role::Soc).await);
        let role = a
            .request_soc_grant(SocGrant::Role, "vic", None, "ada", 4)
            .await
            .unwrap();
        let pending = a.pending_soc_grants().await.unwrap();
        assert_eq!(
            pending
                .iter()
                .map(|p| (p.grant, p.target.as_str(), p.requested_by.as_str()))
                .collect::<Vec<_>>(),
            [
                (SocGrant::Create, "sam", "ada"),
                (SocGrant::Role, "vic", "ada")
            ]
        );

        // The requester cannot approve their own request; nor can the target, nor a non-admin.
        let own = a.approve_soc_grant(create, "ada", 5).await;
        assert!(matches!(own, Err(AccountsError::InvalidUser(_))), "{own:?}");
        let target = a.approve_soc_grant(role, "vic", 5).await;
        assert!(
            matches!(target, Err(AccountsError::InvalidUser(_))),
            "{target:?}"
        );
        assert_eq!(a.pending_soc_grants().await.unwrap().len(), 2);
        assert!(a.login("sam", PW, "ip", None, 5).await.is_err());

        // Another admin approves: applied as requested.
        let approved = a.approve_soc_grant(create, "bea", 6).await.unwrap();
        assert_eq!(
            (approved.grant, approved.target.as_str()),
            (SocGrant::Create, "sam")
        );
        assert_eq!(
            a.login("sam", PW, "ip", None, 7).await.unwrap().user.role,
            Role::Soc
        );
        a.approve_soc_grant(role, "bea", 8).await.unwrap();
        assert_eq!(
            a.login("vic", PW, "ip", None, 9).await.unwrap().user.role,
            Role::Soc
        );
        assert!(a.pending_soc_grants().await.unwrap().is_empty());
        // Used once.
        assert!(a.approve_soc_grant(create, "bea", 10).await.is_err());

        // Re-enabling a soc account, and setting its password, wait too.
        a.set_disabled("sam", true).await.unwrap();
        needs_approval(a.set_disabled("sam", false).await);
        needs_approval(a.reset_password("sam", "admin knows this one").await);
        let enable = a
            .request_soc_grant(SocGrant::Enable, "sam", None, "bea", 11)
            .await
            .unwrap();
        a.approve_soc_grant(enable, "ada", 12).await.unwrap();
        let password = a
            .request_soc_grant(
                SocGrant::Password,
                "sam",
                Some("admin knows this one"),
                "bea",
                13,
            )
            .await
            .unwrap();
        assert!(a.approve_soc_grant(password, "bea", 14).await.is_err());
        a.reject_soc_grant(password).await.unwrap();
        assert!(
            a.login("sam", "admin knows this one", "ip", None, 15)
                .await
                .is_err()
        );

        // Nonsense requests are refused when filed.
        for (grant, target) in [
            (SocGrant::Create, "sam"),
            (SocGrant::Role, "sam"),
            (SocGrant::Enable, "sam"),
            (SocGrant::Password, "vic2"),
            (SocGrant::Role, "nobody"),
        ] {
            let r = a
                .request_soc_grant(grant, target, Some(PW), "ada", 16)
                .await;
            assert!(r.is_err(), "{grant:?} {target}");
        }
        // Changes that grant nothing stay direct.
        a.set_role("vic", Role::Viewer).await.unwrap();
        a.create_user("val", PW, Role::Viewer, 17).await.unwrap();
        a.set_role("sam", Role::Soc).await.unwrap();
    }

    #[tokio::test]
    async fn without_the_switch_soc_grants_apply_and_say_so() {
        let (_dir, a) = store();
        a.create_user("ana", PW, Role::Soc, 1).await.unwrap();
        a.create_user("vic", PW, Role::Viewer, 1).await.unwrap();
        assert_eq!(a.set_role("vic", Role::Soc).await.unwrap(), Role::Viewer);
        a.set_disabled("ana", true).await.unwrap();
        assert!(
            a.set_disabled("ana", false).await.unwrap(),
            "re-enabled a soc account"
        );
        assert!(
            !a.set_disabled("ana", false).await.unwrap(),
            "already enabled"
        );
        assert!(
            a.reset_password("ana", "another long password")
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn reset_and_cli_admin_passwords_work_once_set() {
        let (_dir, a) = store();
        a.create_user("ana", PW, Role::Viewer, 1).await.unwrap();
        let s = a.login("ana", PW, "ip", None, 5).await.unwrap();
        assert!(a.reset_password("ana", "short").await.is_err());
        a.reset_password("ana", "another long password")
            .await
            .unwrap();
        assert_eq!(a.session_user(&s.token, 6).await.unwrap(), None);
        assert!(
            a.login("ana", "another long password", "ip", None, 7)
                .await
                .is_ok()
        );

        let pw = a.create_admin("ops", 10).await.unwrap();
        assert_eq!(pw.len(), password::GENERATED_LEN);
        let s = a.login("ops", &pw, "ip", None, 11).await.unwrap();
        assert_eq!(s.user.role, Role::Admin);
        // Again on an existing user: promoted and given a new password.
        let pw2 = a.create_admin("ana", 12).await.unwrap();
        assert_eq!(
            a.login("ana", &pw2, "ip", None, 13)
                .await
                .unwrap()
                .user
                .role,
            Role::Admin
        );
        assert!(a.create_admin("bad name", 14).await.is_err());
    }
}
