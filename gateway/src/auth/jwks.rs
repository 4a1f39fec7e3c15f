//! Verification keys: where they come from ([`KeySource`]) and the cache in front of them
//! ([`KeyCache`]), which refreshes at most once per `min_refresh_interval` when a token names an
//! unknown `kid`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::AuthError;

/// A JWKS document's keys, as `jsonwebtoken` parses them.
pub type JwkSet = jsonwebtoken::jwk::JwkSet;

/// Where a JWKS comes from: the embedded issuer in-process, or an HTTPS URL (Cognito).
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn fetch(&self) -> Result<JwkSet, AuthError>;
}

/// Fetches a JWKS document over HTTP(S), bounded in size and time.
pub struct HttpJwks {
    pub url: String,
}

#[async_trait]
impl KeySource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        todo!("auth helper")
    }
}

/// Caches the keys of one [`KeySource`]; refreshes on unknown `kid`, rate-limited.
pub struct KeyCache {
    _source: Arc<dyn KeySource>,
    _min_refresh_interval: Duration,
}

impl KeyCache {
    pub fn new(source: Arc<dyn KeySource>, min_refresh_interval: Duration) -> KeyCache {
        KeyCache {
            _source: source,
            _min_refresh_interval: min_refresh_interval,
        }
    }

    /// The decoding key and algorithm for `kid`, refreshing once (rate-limited) if unknown.
    pub async fn key_for(
        &self,
        _kid: &str,
    ) -> Result<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm), AuthError> {
        todo!("auth helper")
    }
}
