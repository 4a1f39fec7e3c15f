//! Token verification: signature (RS256/ES256 only), `exp`/`nbf` with leeway, `iss`, audience
//! (`aud` for ID tokens, `client_id` for access tokens) and `token_use`.

use std::collections::BTreeSet;

use super::jwks::KeyCache;
use super::{AuthError, Caller};

/// Which Cognito token kinds the gateway accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    Access,
    Id,
    Any,
}

/// What a valid token must say.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    /// App client ids the gateway serves (the union of every feature's clients).
    pub clients: BTreeSet<String>,
    pub token_use: TokenUse,
    pub leeway_secs: u64,
    /// A claim that names the client instead of `client_id`/`aud`, when configured.
    pub client_claim: Option<String>,
}

pub struct Verifier {
    _keys: KeyCache,
    _expect: Expectations,
}

impl Verifier {
    pub fn new(keys: KeyCache, expect: Expectations) -> Verifier {
        Verifier {
            _keys: keys,
            _expect: expect,
        }
    }

    /// Verify a compact JWS and return the caller, or why it was refused.
    pub async fn verify(&self, _token: &str) -> Result<Caller, AuthError> {
        todo!("auth helper")
    }
}
