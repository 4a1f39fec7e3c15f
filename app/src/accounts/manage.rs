//! Account management for admins and the command line: list users, create one with a role,
//! change a role, disable or re-enable, reset a password, and create an admin from the CLI
//! with a generated password shown once.
//!
//! Invariants: there is always at least one enabled admin (the last one cannot be disabled or
//! demoted); disabling a user or resetting their password ends all their sessions; passwords
//! follow [`Accounts::create_user`]'s rules.

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

/// Add the `disabled` column to a database created before it existed.
pub(crate) fn migrate(conn: &Connection) -> Result<(), AccountsError> {
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

    /// Change `name`'s role. The last enabled admin keeps the admin role.
    pub async fn set_role(&self, name: &str, role: Role) -> Result<(), AccountsError> {
        let (this, name) = (self.clone(), name.to_string());
        blocking(move || {
            this.with_db(|db| {
                let (old, disabled) = exists(db, &name)?.ok_or_else(no_such_user)?;
                if old == "admin"
                    && role != Role::Admin
                    && !disabled
                    && enabled_admins_other_than(db, &name)? == 0
                {
                    return Err(AccountsError::InvalidUser(
                        "the last admin cannot lose the admin role".into(),
                    ));
                }
                db.execute(
                    "UPDATE users SET role = ?2 WHERE name = ?1",
                    params![name, role.as_str()],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Disable (ending every session) or re-enable `name`. The last enabled admin stays enabled.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), AccountsError> {
        let (this, name) = (self.clone(), name.to_string());
        blocking(move || {
            this.with_db(|db| {
                let (role, _) = exists(db, &name)?.ok_or_else(no_such_user)?;
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
                Ok(())
            })
        })
        .await
    }

    /// Set a new password for `name` and end their sessions.
    pub async fn reset_password(
        &self,
        name: &str,
        new_password: &str,
    ) -> Result<(), AccountsError> {
        check_password(new_password)?;
        let (this, name, pw) = (self.clone(), name.to_string(), new_password.to_string());
        blocking(move || {
            let hash = password::hash(&pw, this.cost)?;
            this.with_db(|db| {
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
                Ok(())
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
