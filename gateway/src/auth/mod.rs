//! Authentication: who is calling. Verifies the caller's JWT exactly as DESIGN §2.1
//! (RS256/ES256 only; JWKS keys re-read after their `max-age` and, rate-limited, on an unknown
//! `kid`; `iss`, audience or `client_id`, `token_use`, `exp`/`nbf` with a small leeway) and hosts
//! the embedded issuer used on the embedded default.
//!
//! - [`jwks`]: where verification keys come from ([`jwks::KeySource`]: the local issuer, or a
//!   JWKS URL such as Cognito's) and the cache that refreshes them.
//! - [`verify`]: the claim checks, producing a [`Caller`].
//! - [`issuer`]: the embedded issuer: an ES256 key pair created on first run in the data dir
//!   (mode 0600), token minting for `gateway token`, and its JWKS document.

pub mod issuer;
pub mod jwks;
pub mod verify;

/// A verified caller. `sub` becomes `userSub` on every log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    /// The app client the token was issued to (`client_id` for access tokens, `aud` for ID
    /// tokens), or the value of the configured feature claim.
    pub client_id: String,
}

/// Why a token was refused. The reason goes to the internal log only; the client always gets
/// the same 401 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("token rejected: {0}")]
    Rejected(&'static str),
    #[error("verification keys unavailable")]
    KeysUnavailable,
}
