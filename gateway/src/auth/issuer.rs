//! The embedded issuer: an ES256 key pair created on first run in the data dir (0600), used to
//! mint tokens for `gateway token` and served as a JWKS document.

use std::path::Path;

use async_trait::async_trait;

use super::AuthError;
use super::jwks::{JwkSet, KeySource};

pub struct LocalIssuer {
    pub issuer: String,
}

/// What to put in a minted token.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub sub: String,
    pub client_id: String,
    pub ttl_secs: u64,
}

impl LocalIssuer {
    /// Load the key pair from `<data_dir>/keys/issuer-es256.pem`, creating it (0600) if absent.
    pub fn load_or_create(_data_dir: &Path, issuer: &str) -> anyhow::Result<LocalIssuer> {
        Ok(LocalIssuer {
            issuer: issuer.to_string(),
        })
    }

    /// A signed access token (`token_use: access`, `client_id`, `iss`, `sub`, `iat`, `exp`, `jti`).
    pub fn mint(&self, _req: &MintRequest) -> anyhow::Result<String> {
        todo!("auth helper")
    }

    /// The public JWKS document.
    pub fn jwks(&self) -> JwkSet {
        todo!("auth helper")
    }
}

#[async_trait]
impl KeySource for LocalIssuer {
    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        Ok(self.jwks())
    }
}
