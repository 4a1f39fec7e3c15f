//! Federated console accounts: people who sign in through the OpenID Connect provider (the
//! server's `oidc` module checks the provider's answer; this module only stores the result).
//!
//! A federated account is keyed on the provider's `(iss, sub)`, which never changes for a
//! person; its name is only a label, chosen at the first sign-in from the provider's user name
//! (`sso.<username>`) and kept afterwards. A user who renames at the provider stays the same
//! account (a disabled one stays disabled); a user who takes another's name or e-mail as their
//! own gets an account of their own under a disambiguated name (`sso.ana.2`, …), never the
//! other one. A federated account has no password (its stored hash is [`FEDERATED_MARK`], which
//! no password verifies), takes its role from the provider at every sign-in, and never takes
//! over a local account.
//!
//! Accounts stored before `(iss, sub)` keying (no `oidc_iss`) are adopted only under a name
//! derived from an immutable claim ([`FederatedIdentity::legacy_names`]: `sub`, Cognito's
//! username); a disabled pre-keying account whose name is the new sign-in's label refuses it,
//! since nothing tells whether it is the same person.

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Accounts, AccountsError, MAX_NAME_LEN, NewSession, Role, User, blocking, session, valid_name,
};

/// The password hash of a federated account: not a PHC string, so no password matches it.
pub const FEDERATED_MARK: &str = "!federated";
/// The longest `iss` or `sub` stored.
pub const MAX_CLAIM_LEN: usize = 2048;
/// Numbered variants tried for a label taken by another account, before a hashed name.
const NUMBERED_NAMES: u32 = 9;

/// Whether `name` may be an account name (local or federated).
pub fn is_valid_name(name: &str) -> bool {
    valid_name(name)
}

/// A person the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedIdentity {
    /// The ID token's `iss`.
    pub issuer: String,
    /// The ID token's `sub`: with `issuer`, the account's key.
    pub subject: String,
    /// The console name wanted for a new account (`sso.<username>`): a label only.
    pub label: String,
    /// Names this person's account may have had before `(iss, sub)` keying, derived from
    /// claims the user cannot change (`sso.<sub>`, `sso.<cognito:username>`).
    pub legacy_names: Vec<String>,
}

/// Add the `(iss, sub)` key to a database created before it existed.
pub(crate) fn migrate(conn: &Connection) -> Result<(), AccountsError> {
    for (column, sql) in [
        ("oidc_iss", "ALTER TABLE users ADD COLUMN oidc_iss TEXT"),
        ("oidc_sub", "ALTER TABLE users ADD COLUMN oidc_sub TEXT"),
    ] {
        let has: bool = conn
            .query_row(
                "SELECT 1 FROM pragma_table_info('users') WHERE name = ?1",
                params![column],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if !has {
            conn.execute_batch(sql)?;
        }
    }
    conn.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS users_by_oidc ON users(oidc_iss, oidc_sub)
         WHERE oidc_iss IS NOT NULL",
    )?;
    Ok(())
}

/// The names a new account for `identity` may take, best first: the label, numbered variants,
/// then one derived from `(iss, sub)`.
fn candidate_names(identity: &FederatedIdentity) -> Vec<String> {
    let mut names = vec![identity.label.clone()];
    // ASCII only (a valid name), so byte truncation keeps whole characters.
    let stem = &identity.label[..identity.label.len().min(MAX_NAME_LEN - 3)];
    names.extend((2..=NUMBERED_NAMES + 1).map(|i| format!("{stem}.{i}")));
    let mut key = identity.issuer.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(identity.subject.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key);
    names.push(format!("sso.{}", &hex::encode(digest.as_ref())[..32]));
    names
}

/// What the store holds for an identity.
enum Found {
    /// Its account: name, disabled.
    Account(String, bool),
    /// No account yet.
    Nothing,
    /// A disabled pre-keying account has its label: refuse.
    Refused,
}

/// The account keyed on `identity`, adopting a pre-keying row if one is this person's.
fn find_account(tx: &Connection, identity: &FederatedIdentity) -> Result<Found, AccountsError> {
    let keyed: Option<(String, bool)> = tx
        .query_row(
            "SELECT name, disabled FROM users WHERE oidc_iss = ?1 AND oidc_sub = ?2",
            params![identity.issuer, identity.subject],
            |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)),
        )
        .optional()?;
    if let Some((name, disabled)) = keyed {
        return Ok(Found::Account(name, disabled));
    }
    let legacy = |name: &str| -> Result<Option<bool>, AccountsError> {
        Ok(tx
            .query_row(
                "SELECT disabled FROM users
                 WHERE name = ?1 AND password_hash = ?2 AND oidc_iss IS NULL",
                params![name, FEDERATED_MARK],
                |r| Ok(r.get::<_, i64>(0)? != 0),
            )
            .optional()?)
    };
    for name in &identity.legacy_names {
        if let Some(disabled) = legacy(name)? {
            tx.execute(
                "UPDATE users SET oidc_iss = ?2, oidc_sub = ?3 WHERE name = ?1",
                params![name, identity.issuer, identity.subject],
            )?;
            return Ok(Found::Account(name.clone(), disabled));
        }
    }
    if legacy(&identity.label)? == Some(true) {
        return Ok(Found::Refused);
    }
    Ok(Found::Nothing)
}

impl Accounts {
    /// Start a session for the federated user `identity` with `role` (creating the account, or
    /// updating its role), ending `previous_token`'s session. `None` when the account is
    /// disabled (or may be a disabled pre-keying account, see the module docs).
    pub async fn federated_login(
        &self,
        identity: &FederatedIdentity,
        role: Role,
        previous_token: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<NewSession>, AccountsError> {
        let usable = |v: &str| !v.is_empty() && v.len() <= MAX_CLAIM_LEN;
        if !usable(&identity.issuer) || !usable(&identity.subject) || !valid_name(&identity.label) {
            return Ok(None);
        }
        let this = self.clone();
        let identity = identity.clone();
        let previous_hash = previous_token.and_then(session::token_hash);
        blocking(move || {
            this.with_db(|db| {
                let tx = db.unchecked_transaction()?;
                let (name, created_at_ms) = match find_account(&tx, &identity)? {
                    Found::Refused | Found::Account(_, true) => return Ok(None),
                    Found::Account(name, false) => {
                        tx.execute(
                            "UPDATE users SET role = ?2 WHERE name = ?1",
                            params![name, role.as_str()],
                        )?;
                        let created = tx.query_row(
                            "SELECT created_at FROM users WHERE name = ?1",
                            params![name],
                            |r| r.get::<_, i64>(0),
                        )?;
                        (name, created)
                    }
                    Found::Nothing => {
                        let mut chosen = None;
                        for name in candidate_names(&identity) {
                            let inserted = tx.execute(
                                "INSERT INTO users
                                     (name, password_hash, role, created_at, oidc_iss, oidc_sub)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO NOTHING",
                                params![
                                    name,
                                    FEDERATED_MARK,
                                    role.as_str(),
                                    now_ms,
                                    identity.issuer,
                                    identity.subject
                                ],
                            )?;
                            if inserted == 1 {
                                chosen = Some(name);
                                break;
                            }
                        }
                        let name = chosen.ok_or_else(|| {
                            AccountsError::InvalidUser("no free name for this account".into())
                        })?;
                        (name, now_ms)
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
    const ISS: &str = "https://idp.example";

    fn store() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open_with_cost(&dir.path().join("c.db"), CHEAP).unwrap();
        (dir, accounts)
    }

    fn who(sub: &str, username: &str) -> FederatedIdentity {
        FederatedIdentity {
            issuer: ISS.into(),
            subject: sub.into(),
            label: format!("sso.{username}"),
            legacy_names: vec![format!("sso.{sub}")],
        }
    }

    async fn sign_in(a: &Accounts, id: &FederatedIdentity, role: Role, at: i64) -> Option<User> {
        a.federated_login(id, role, None, at)
            .await
            .unwrap()
            .map(|s| s.user)
    }

    #[tokio::test]
    async fn federated_user_gets_a_session_and_the_latest_role() {
        let (_dir, accounts) = store();
        let ana = who("0001", "ana");
        let first = accounts
            .federated_login(&ana, Role::Viewer, None, 1_000)
            .await
            .unwrap()
            .unwrap();
        let user = accounts
            .session_user(&first.token, 2_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((user.name.as_str(), user.role), ("sso.ana", Role::Viewer));
        // The provider now puts ana in the soc group; the old session is rotated out.
        let second = accounts
            .federated_login(&ana, Role::Soc, Some(&first.token), 3_000)
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
        let (_dir, accounts) = store();
        accounts
            .create_user("sso.bob", "a long local password", Role::Viewer, 1_000)
            .await
            .unwrap();
        let user = sign_in(&accounts, &who("0002", "bob"), Role::Admin, 2_000)
            .await
            .unwrap();
        assert_ne!(user.name, "sso.bob");
        let list = accounts.accounts(3_000).await.unwrap();
        let local = list.iter().find(|a| a.name == "sso.bob").unwrap();
        assert_eq!(local.role, Role::Viewer);
    }

    /// Finding: a disabled user who renamed at the provider came back as a new account.
    #[tokio::test]
    async fn a_disabled_user_stays_disabled_whatever_they_rename_to() {
        let (_dir, accounts) = store();
        let bob = sign_in(&accounts, &who("0003", "bob"), Role::Soc, 1_000)
            .await
            .unwrap();
        accounts.set_disabled(&bob.name, true).await.unwrap();
        for new_name in ["bob", "bobby", "robert@example.com"] {
            let renamed = who("0003", new_name);
            assert_eq!(
                sign_in(&accounts, &renamed, Role::Soc, 2_000).await,
                None,
                "{new_name}"
            );
        }
        assert_eq!(accounts.accounts(3_000).await.unwrap().len(), 1);
        // Re-enabled, the renamed user is the same account, under its first name.
        accounts.set_disabled(&bob.name, false).await.unwrap();
        let back = sign_in(&accounts, &who("0003", "bobby"), Role::Viewer, 4_000)
            .await
            .unwrap();
        assert_eq!((back.name.as_str(), back.created_at_ms), ("sso.bob", 1_000));
    }

    /// Finding: a user who set another's name (or e-mail) as their own landed in that account.
    #[tokio::test]
    async fn taking_another_users_name_gets_an_account_of_ones_own() {
        let (_dir, accounts) = store();
        let ana = sign_in(&accounts, &who("0004", "ana"), Role::Soc, 1_000)
            .await
            .unwrap();
        let mut names = vec![ana.name.clone()];
        // Eleven impostors with the same label: numbered names, then a hashed one, all distinct.
        for i in 0..11 {
            let impostor = who(&format!("9{i:03}"), "ana");
            let user = sign_in(&accounts, &impostor, Role::Viewer, 2_000)
                .await
                .unwrap();
            assert!(!names.contains(&user.name), "{} reused", user.name);
            assert_eq!(user.role, Role::Viewer);
            names.push(user.name);
        }
        assert_eq!(names[1], "sso.ana.2");
        assert!(
            names[11].starts_with("sso.") && names[11].len() == 36,
            "{}",
            names[11]
        );
        // Ana is untouched: still soc, and her next sign-in is still hers.
        let again = sign_in(&accounts, &who("0004", "ana"), Role::Soc, 3_000)
            .await
            .unwrap();
        assert_eq!((again.name, again.role), (ana.name, Role::Soc));
        // The same subject at another issuer is another person.
        let other = FederatedIdentity {
            issuer: "https://other.example".into(),
            ..who("0004", "ana")
        };
        let user = sign_in(&accounts, &other, Role::Viewer, 4_000)
            .await
            .unwrap();
        assert!(!names.contains(&user.name));
    }

    #[tokio::test]
    async fn pre_keying_accounts_are_adopted_only_by_an_immutable_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        {
            // A console.db from before (iss, sub) keying, with federated rows.
            let db = Connection::open(&path).unwrap();
            db.execute_batch(
                "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, password_hash TEXT NOT NULL,
                     role TEXT NOT NULL CHECK (role IN ('admin', 'soc', 'viewer')),
                     created_at INTEGER NOT NULL,
                     disabled INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO users VALUES ('sso.u-1', '!federated', 'soc', 5, 0);
                 INSERT INTO users VALUES ('sso.carol', '!federated', 'soc', 6, 0);
                 INSERT INTO users VALUES ('sso.dave', '!federated', 'soc', 7, 1);",
            )
            .unwrap();
        }
        let accounts = Accounts::open_with_cost(&path, CHEAP).unwrap();
        // Named after the subject: adopted, and keyed from now on.
        let u1 = sign_in(&accounts, &who("u-1", "someone"), Role::Viewer, 10)
            .await
            .unwrap();
        assert_eq!((u1.name.as_str(), u1.created_at_ms), ("sso.u-1", 5));
        // Named after a mutable claim: not adopted (it may be someone else's).
        let carol = sign_in(&accounts, &who("u-2", "carol"), Role::Viewer, 11)
            .await
            .unwrap();
        assert_eq!(carol.name, "sso.carol.2");
        // A disabled pre-keying account with the label refuses the sign-in.
        assert_eq!(
            sign_in(&accounts, &who("u-3", "dave"), Role::Soc, 12).await,
            None
        );
        // Reopening an up-to-date database is fine.
        drop(accounts);
        let again = Accounts::open_with_cost(&path, CHEAP).unwrap();
        let u1 = sign_in(&again, &who("u-1", "renamed"), Role::Viewer, 13)
            .await
            .unwrap();
        assert_eq!(u1.name, "sso.u-1");
    }

    #[tokio::test]
    async fn unusable_identities_are_refused() {
        let (_dir, accounts) = store();
        let mut id = who("", "ana");
        assert_eq!(sign_in(&accounts, &id, Role::Viewer, 1).await, None);
        id.subject = "x".repeat(MAX_CLAIM_LEN + 1);
        assert_eq!(sign_in(&accounts, &id, Role::Viewer, 1).await, None);
        id = who("1", "bad name!");
        assert_eq!(sign_in(&accounts, &id, Role::Viewer, 1).await, None);
    }
}
