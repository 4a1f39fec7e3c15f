//! Federated console accounts: people who sign in through the OpenID Connect provider (the
//! server's `oidc` module checks the provider's answer; this module only stores the result).
//!
//! A federated account has no password (its stored hash is [`FEDERATED_MARK`], which no
//! password verifies), takes its role from the provider at every sign-in, and never takes over a
//! local account of the same name. A disabled account stays disabled whatever the provider says.

use rusqlite::{OptionalExtension, params};

use super::{Accounts, AccountsError, NewSession, Role, User, blocking, session, valid_name};

/// The password hash of a federated account: not a PHC string, so no password matches it.
pub const FEDERATED_MARK: &str = "!federated";

/// Whether `name` may be an account name (local or federated).
pub fn is_valid_name(name: &str) -> bool {
    valid_name(name)
}

impl Accounts {
    /// Start a session for the federated user `name` with `role` (creating the account, or
    /// updating its role), ending `previous_token`'s session. `None` when the name belongs to a
    /// local account or the account is disabled.
    pub async fn federated_login(
        &self,
        name: &str,
        role: Role,
        previous_token: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<NewSession>, AccountsError> {
        if !valid_name(name) {
            return Ok(None);
        }
        let this = self.clone();
        let name = name.to_string();
        let previous_hash = previous_token.and_then(session::token_hash);
        blocking(move || {
            this.with_db(|db| {
                let tx = db.unchecked_transaction()?;
                let has_disabled: bool = tx
                    .query_row(
                        "SELECT COUNT(*) FROM pragma_table_info('users') WHERE name = 'disabled'",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                    .map(|n| n > 0)?;
                let existing: Option<(String, bool)> = tx
                    .query_row(
                        if has_disabled {
                            "SELECT password_hash, disabled FROM users WHERE name = ?1"
                        } else {
                            "SELECT password_hash, 0 FROM users WHERE name = ?1"
                        },
                        params![name],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0)),
                    )
                    .optional()?;
                let created_at_ms = match existing {
                    Some((hash, _)) if hash != FEDERATED_MARK => return Ok(None),
                    Some((_, true)) => return Ok(None),
                    Some(_) => {
                        tx.execute(
                            "UPDATE users SET role = ?2 WHERE name = ?1",
                            params![name, role.as_str()],
                        )?;
                        tx.query_row(
                            "SELECT created_at FROM users WHERE name = ?1",
                            params![name],
                            |r| r.get::<_, i64>(0),
                        )?
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO users (name, password_hash, role, created_at)
                             VALUES (?1, ?2, ?3, ?4)",
                            params![name, FEDERATED_MARK, role.as_str(), now_ms],
                        )?;
                        now_ms
                    }
                };
                let (token, expires_at_ms) =
                    session::store_new(&tx, &name, previous_hash.as_deref(), now_ms)?;
                tx.commit()?;
                Ok(Some(NewSession {
                    token,
                    user: User {
                        name,
                        role,
                        created_at_ms,
                    },
                    expires_at_ms,
                }))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::password::HashCost;

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn federated_user_gets_a_session_and_the_latest_role() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open_with_cost(&dir.path().join("c.db"), CHEAP).unwrap();
        let first = accounts
            .federated_login("sso.ana", Role::Viewer, None, 1_000)
            .await
            .unwrap()
            .unwrap();
        let user = accounts
            .session_user(&first.token, 2_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.role, Role::Viewer);
        // The provider now puts ana in the soc group; the old session is rotated out.
        let second = accounts
            .federated_login("sso.ana", Role::Soc, Some(&first.token), 3_000)
            .await
            .unwrap()
            .unwrap();
        assert!(
            accounts
                .session_user(&first.token, 4_000)
                .await
                .unwrap()
                .is_none()
        );
        let user = accounts
            .session_user(&second.token, 4_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((user.role, user.created_at_ms), (Role::Soc, 1_000));
        // No password signs in as a federated account.
        assert!(
            accounts
                .login("sso.ana", FEDERATED_MARK, "127.0.0.1", None, 5_000)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn federated_sign_in_never_takes_over_a_local_account() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open_with_cost(&dir.path().join("c.db"), CHEAP).unwrap();
        accounts
            .create_user("sso.bob", "a long local password", Role::Viewer, 1_000)
            .await
            .unwrap();
        let outcome = accounts
            .federated_login("sso.bob", Role::Admin, None, 2_000)
            .await
            .unwrap();
        assert!(outcome.is_none());
    }
}
