//! A sign-in in progress, kept by the browser that started it: `state`, `nonce`, the PKCE
//! verifier and an expiry, sealed with AES-256-GCM into the `HttpOnly` state cookie.
//!
//! The server keeps nothing between `/auth/oidc/login` and the callback, so anonymous sign-in
//! starts cannot fill a table and lock single sign-on, and any console task holding the key can
//! finish a sign-in another one started (no sticky sessions). The cookie can't be read or
//! altered by the browser, and one sealed under another key (another deployment, an old key
//! file) or past its expiry does not open. It is cleared by the callback, success or not; a
//! replay of a copy within its lifetime still needs a fresh authorization code for its own PKCE
//! verifier, and the provider redeems each code once.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The largest cookie value [`PendingSeal::open`] looks at (a sealed sign-in is ~300 bytes).
pub const MAX_SEALED_LEN: usize = 1024;
/// Bound into every seal, so a value sealed for another purpose under the same key won't open.
const AAD: &[u8] = b"golden-path oidc pending sign-in v1";

/// One pending sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "v")]
    pub verifier: String,
    /// Unix milliseconds after which the sign-in is refused.
    #[serde(rename = "e")]
    pub expires_at_ms: i64,
}

/// Seals and opens [`Pending`] cookies under one 256-bit key.
pub struct PendingSeal {
    key: LessSafeKey,
}

impl std::fmt::Debug for PendingSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingSeal(*****)")
    }
}

impl PendingSeal {
    pub fn new(key: &[u8; 32]) -> anyhow::Result<PendingSeal> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| anyhow::anyhow!("OIDC state key rejected"))?;
        Ok(PendingSeal {
            key: LessSafeKey::new(key),
        })
    }

    /// The cookie value for `pending`: base64url of a random nonce and the sealed JSON.
    pub fn seal(&self, pending: &Pending) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut sealed = serde_json::to_vec(pending).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut sealed,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// The pending sign-in in `cookie`, if it was sealed under this key, is intact and has not
    /// expired at `now_ms`.
    pub fn open(&self, cookie: &str, now_ms: i64) -> Option<Pending> {
        if cookie.is_empty() || cookie.len() > MAX_SEALED_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut sealed)
            .ok()?;
        let pending: Pending = serde_json::from_slice(plain).ok()?;
        (now_ms < pending.expires_at_ms).then_some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(expires_at_ms: i64) -> Pending {
        Pending {
            state: "state-1".into(),
            nonce: "nonce-1".into(),
            verifier: "verifier-1".into(),
            expires_at_ms,
        }
    }

    #[test]
    fn a_sealed_sign_in_opens_under_its_key_until_it_expires() {
        let seal = PendingSeal::new(&[7; 32]).unwrap();
        let cookie = seal.seal(&pending(1_000)).unwrap();
        assert!(cookie.len() < 400, "{}", cookie.len());
        assert!(!cookie.contains("verifier") && !cookie.contains("state"));
        assert_eq!(seal.open(&cookie, 999), Some(pending(1_000)));
        // Expired.
        assert_eq!(seal.open(&cookie, 1_000), None);
        // Two seals of the same sign-in differ (fresh nonce).
        assert_ne!(seal.seal(&pending(1_000)).unwrap(), cookie);
    }

    #[test]
    fn tampered_foreign_and_garbage_cookies_do_not_open() {
        let seal = PendingSeal::new(&[7; 32]).unwrap();
        let cookie = seal.seal(&pending(1_000)).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&cookie).unwrap();
        for i in [0, NONCE_LEN, bytes.len() / 2, bytes.len() - 1] {
            bytes[i] ^= 1;
            assert_eq!(seal.open(&URL_SAFE_NO_PAD.encode(&bytes), 0), None, "{i}");
            bytes[i] ^= 1;
        }
        // Sealed under another key: another deployment, or a key file that was replaced.
        let other = PendingSeal::new(&[8; 32]).unwrap();
        assert_eq!(other.open(&cookie, 0), None);
        for junk in [
            "",
            "x",
            "!!!not base64!!!",
            &"A".repeat(MAX_SEALED_LEN + 4),
            &URL_SAFE_NO_PAD.encode([0u8; NONCE_LEN]),
        ] {
            assert_eq!(seal.open(junk, 0), None);
        }
    }
}
