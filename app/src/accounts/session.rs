//! Session tokens and the `gp_session` cookie.
//!
//! A token is 256 random bits, base64url in the cookie; the store keeps only its SHA-256, so a
//! copy of `console.db` does not hold usable sessions.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::AccountsError;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "gp_session";

/// How long a session lives after sign-in, in milliseconds (12 h, not extended by use).
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// Length of an encoded token: 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = 43;

/// A fresh random session token (what goes into the cookie).
pub fn new_token() -> Result<String, AccountsError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AccountsError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token: hex SHA-256. `None` for anything that is not a well-formed
/// token, so junk cookies never reach the database.
pub fn token_hash(token: &str) -> Option<String> {
    if token.len() != TOKEN_LEN
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    Some(hex::encode(digest.as_ref()))
}

/// The session token in a `Cookie` header value, if one is there.
pub fn token_from_cookie_header(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE_NAME).then_some(value.trim())
    })
}

/// `Set-Cookie` value that stores `token`. `secure` when the console is served over https.
pub fn set_cookie(token: &str, secure: bool) -> String {
    let max_age = SESSION_TTL_MS / 1000;
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
}

/// Store a new session for `user_name` in `tx` and return its token and expiry: ends the
/// session whose hash is `previous_hash` (rotation) and sweeps expired ones.
pub(crate) fn store_new(
    tx: &rusqlite::Transaction<'_>,
    user_name: &str,
    previous_hash: Option<&str>,
    now_ms: i64,
) -> Result<(String, i64), AccountsError> {
    let token = new_token()?;
    let hash = token_hash(&token)
        .ok_or_else(|| AccountsError::Task("fresh token failed to hash".into()))?;
    let expires_at_ms = now_ms + SESSION_TTL_MS;
    if let Some(previous) = previous_hash {
        tx.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            rusqlite::params![previous],
        )?;
    }
    tx.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1",
        rusqlite::params![now_ms],
    )?;
    tx.execute(
        "INSERT INTO sessions (token_hash, user_name, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![hash, user_name, now_ms, expires_at_ms],
    )?;
    Ok((token, expires_at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_hash_to_hex() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), TOKEN_LEN);
        assert_ne!(t, new_token().unwrap());
        let h = token_hash(&t).unwrap();
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&t));
        assert_eq!(token_hash("short"), None);
        assert_eq!(token_hash(&"!".repeat(TOKEN_LEN)), None);
    }

    #[test]
    fn cookie_header_parsing_finds_only_our_cookie() {
        assert_eq!(
            token_from_cookie_header("a=1; gp_session=abc ; b=2"),
            Some("abc")
        );
        assert_eq!(token_from_cookie_header("xgp_session=abc"), None);
        assert_eq!(token_from_cookie_header(""), None);
    }

    #[test]
    fn cookies_carry_the_required_attributes() {
        let c = set_cookie("tok", false);
        assert_eq!(
            c,
            "gp_session=tok; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie("tok", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
