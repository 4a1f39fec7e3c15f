//! Token verification: signature (RS256/ES256 only, the algorithm fixed by the key's type),
//! `exp`/`nbf` with leeway, `iss`, the client (`aud` for ID tokens, `client_id` for access
//! tokens, or a configured claim) and `token_use`, producing a [`Caller`].
//!
//! Rejection reasons are static strings for the internal log; nothing from the token is ever
//! put in them.

use std::collections::BTreeSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};

use super::jwks::{KeyCache, KeyDigest};
use super::{AuthError, Caller};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The longest `sub` accepted (it is written on every log line).
pub const MAX_SUB_BYTES: usize = 256;
/// Leeway is clamped to this, so a mistyped setting cannot make every token valid forever.
const MAX_LEEWAY_SECS: u64 = 24 * 60 * 60;

type Claims = Map<String, Value>;

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

/// The kind a verified token turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Id,
}

/// Most verified tokens remembered; the cache is emptied when it would grow past this.
const MAX_CACHED_TOKENS: usize = 10_000;

/// A token already verified: who it names, the window in which it is valid, and the key that
/// verified it (`kid` and the key's digest).
#[derive(Clone)]
struct Verified {
    caller: Caller,
    exp: i64,
    nbf: Option<i64>,
    kid: String,
    key: KeyDigest,
}

pub struct Verifier {
    keys: KeyCache,
    expect: Expectations,
    /// Verified tokens by SHA-256 of the whole compact token, so a client that reuses its token
    /// (as every client does for its lifetime) pays for the signature check once. On a hit the
    /// time checks are repeated and the key that verified it must still be published (the key
    /// cache re-reads the JWKS when its keys pass their max age): a token is never trusted past
    /// its `exp`, nor after its key was removed from the JWKS.
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], Verified>>,
}

impl Verifier {
    pub fn new(keys: KeyCache, expect: Expectations) -> Verifier {
        Verifier {
            keys,
            expect,
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Verify a compact JWS and return the caller, or why it was refused.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Rejected("token too large"));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(digest.as_ref());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let leeway = self.expect.leeway_secs.min(MAX_LEEWAY_SECS) as i64;
        let cached = self.cache().get(&fingerprint).cloned();
        if let Some(v) = cached {
            if now > v.exp + leeway {
                return Err(AuthError::Rejected("expired"));
            }
            if v.nbf.is_some_and(|nbf| now + leeway < nbf) {
                return Err(AuthError::Rejected("not yet valid"));
            }
            if let Err(e) = self.keys.still_published(&v.kid, &v.key).await {
                if matches!(e, AuthError::Rejected(_)) {
                    self.cache().remove(&fingerprint);
                }
                return Err(e);
            }
            return Ok(v.caller);
        }
        let (caller, verified) = self.verify_uncached(token).await?;
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(fingerprint, verified);
        Ok(caller)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], Verified>> {
        match self.verified.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The full check: header, key, signature, claims. Returns the caller and what to cache.
    async fn verify_uncached(&self, token: &str) -> Result<(Caller, Verified), AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Rejected("malformed or unsupported header"))?;
        let kid = check_header(&header)?;
        let (key, key_alg, digest) = self.keys.key_with_digest(kid).await?;
        if header.alg != key_alg {
            return Err(AuthError::Rejected("algorithm does not match key"));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(key_alg))
            .map_err(|e| AuthError::Rejected(reason(e.kind())))?
            .claims;
        let caller = self.check_claims(&claims)?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(AuthError::Rejected("exp not an integer"))?;
        let nbf = claims.get("nbf").and_then(Value::as_i64);
        let verified = Verified {
            caller: caller.clone(),
            exp,
            nbf,
            kid: kid.to_string(),
            key: digest,
        };
        Ok((caller, verified))
    }

    /// Signature with exactly `alg`; `exp`, `iss` and `sub` required; `exp` and `nbf` checked
    /// with leeway; `iss` matched. Audience is checked by [`Verifier::client`], per token kind.
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.expect.leeway_secs.min(MAX_LEEWAY_SECS);
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        v.set_issuer(&[&self.expect.issuer]);
        v
    }

    fn check_claims(&self, claims: &Claims) -> Result<Caller, AuthError> {
        if str_claim(claims, "iss") != Some(self.expect.issuer.as_str()) {
            return Err(AuthError::Rejected("wrong issuer"));
        }
        let sub = match str_claim(claims, "sub") {
            Some(sub) if !sub.is_empty() && sub.len() <= MAX_SUB_BYTES => sub,
            _ => return Err(AuthError::Rejected("missing, empty or oversized sub")),
        };
        let kind = token_kind(self.expect.token_use, str_claim(claims, "token_use"))?;
        let client_id = self.client(claims, kind)?;
        Ok(Caller {
            sub: sub.to_string(),
            client_id: client_id.to_string(),
        })
    }

    /// The app client the token was issued to, which must be one the gateway serves.
    fn client<'c>(&self, claims: &'c Claims, kind: Kind) -> Result<&'c str, AuthError> {
        let served = |c: &&str| self.expect.clients.contains(*c);
        let client = match (&self.expect.client_claim, kind) {
            (Some(name), _) => str_claim(claims, name).filter(served),
            (None, Kind::Access) => str_claim(claims, "client_id").filter(served),
            (None, Kind::Id) => audiences(claims)?.into_iter().find(served),
        };
        client.ok_or(AuthError::Rejected("client not allowed"))
    }
}

/// Only RS256/ES256, no critical extensions, and a `kid` to choose the key by.
fn check_header(header: &Header) -> Result<&str, AuthError> {
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(AuthError::Rejected("algorithm not allowed"));
    }
    if header.crit.is_some() {
        return Err(AuthError::Rejected(
            "critical header extensions not supported",
        ));
    }
    match header.kid.as_deref() {
        Some(kid) if !kid.is_empty() => Ok(kid),
        _ => Err(AuthError::Rejected("missing kid")),
    }
}

/// Which rule applies to the token, given what the gateway accepts and the token's `token_use`.
fn token_kind(accepted: TokenUse, token_use: Option<&str>) -> Result<Kind, AuthError> {
    match (accepted, token_use) {
        (TokenUse::Access | TokenUse::Any, Some("access")) => Ok(Kind::Access),
        (TokenUse::Id | TokenUse::Any, Some("id")) => Ok(Kind::Id),
        _ => Err(AuthError::Rejected("token_use mismatch")),
    }
}

/// The `aud` claim as a list: a string or an array of strings.
fn audiences(claims: &Claims) -> Result<Vec<&str>, AuthError> {
    const MALFORMED: AuthError = AuthError::Rejected("malformed aud");
    match claims.get("aud") {
        Some(Value::String(aud)) => Ok(vec![aud.as_str()]),
        Some(Value::Array(auds)) => auds.iter().map(|a| a.as_str().ok_or(MALFORMED)).collect(),
        Some(_) => Err(MALFORMED),
        None => Err(AuthError::Rejected("missing aud")),
    }
}

fn str_claim<'c>(claims: &'c Claims, name: &str) -> Option<&'c str> {
    claims.get(name).and_then(Value::as_str)
}

/// A log-safe reason for a `jsonwebtoken` failure.
fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not yet valid",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::MissingRequiredClaim(_) => "missing required claim",
        ErrorKind::InvalidClaimFormat(_) => "malformed claim",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "algorithm not allowed",
        ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => "malformed token",
        _ => "invalid token",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use async_trait::async_trait;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256,
        RsaPublicKeyComponents,
    };
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;
    use crate::auth::issuer::{LocalIssuer, MintRequest};
    use crate::auth::jwks::{HttpJwks, JwkSet, KeySource};

    const ISS: &str = "https://cognito-idp.eu-west-1.amazonaws.com/pool";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn b64_json(v: &Value) -> String {
        b64(&serde_json::to_vec(v).expect("json"))
    }

    fn expectations(token_use: TokenUse) -> Expectations {
        Expectations {
            issuer: ISS.to_string(),
            clients: ["app-1", "app-2"].map(String::from).into(),
            token_use,
            leeway_secs: 60,
            client_claim: None,
        }
    }

    /// Serves a fixed JWKS and counts fetches.
    struct Fixed {
        set: JwkSet,
        fetches: AtomicUsize,
    }

    #[async_trait]
    impl KeySource for Fixed {
        async fn fetch(&self) -> Result<JwkSet, AuthError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(self.set.clone())
        }
    }

    /// Signs hand-built tokens with an ES256 key (kid "ec") and an RS256 key (kid "rsa").
    struct Keys {
        ec: EcdsaKeyPair,
        rsa: aws_lc_rs::rsa::KeyPair,
        source: Arc<Fixed>,
    }

    impl Keys {
        fn new() -> Keys {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("ec keygen");
            let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .expect("ec key");
            let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .expect("rsa keygen");
            let point = ec.public_key().as_ref();
            let rsa_pub = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
            let set = serde_json::from_value(json!({ "keys": [
                {"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256", "use": "sig",
                 "x": b64(&point[1..33]), "y": b64(&point[33..])},
                {"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig",
                 "n": b64(&rsa_pub.n), "e": b64(&rsa_pub.e)},
            ]}))
            .expect("jwks");
            let source = Arc::new(Fixed {
                set,
                fetches: AtomicUsize::new(0),
            });
            Keys { ec, rsa, source }
        }

        fn verifier(&self, expect: Expectations) -> Verifier {
            Verifier::new(
                KeyCache::new(self.source.clone(), Duration::from_secs(60)),
                expect,
            )
        }

        fn es256(&self, claims: &Value) -> String {
            let header = json!({"alg": "ES256", "kid": "ec", "typ": "JWT"});
            self.sign_es256(&header, claims)
        }

        fn sign_es256(&self, header: &Value, claims: &Value) -> String {
            let input = format!("{}.{}", b64_json(header), b64_json(claims));
            let sig = self
                .ec
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("sign");
            format!("{input}.{}", b64(sig.as_ref()))
        }

        fn rs256(&self, claims: &Value) -> String {
            let header = json!({"alg": "RS256", "kid": "rsa", "typ": "JWT"});
            let input = format!("{}.{}", b64_json(&header), b64_json(claims));
            let mut sig = vec![0; self.rsa.public_modulus_len()];
            self.rsa
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut sig,
                )
                .expect("sign");
            format!("{input}.{}", b64(&sig))
        }
    }

    fn access_claims() -> Value {
        json!({"iss": ISS, "sub": "user-1", "client_id": "app-1", "token_use": "access",
               "iat": now(), "exp": now() + 600})
    }

    fn id_claims(aud: Value) -> Value {
        json!({"iss": ISS, "sub": "user-1", "aud": aud, "token_use": "id",
               "iat": now(), "exp": now() + 600})
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        if let Some(map) = claims.as_object_mut() {
            map.remove(name);
        }
        claims
    }

    fn caller(sub: &str, client_id: &str) -> Caller {
        Caller {
            sub: sub.into(),
            client_id: client_id.into(),
        }
    }

    fn rejected(reason: &'static str) -> Result<Caller, AuthError> {
        Err(AuthError::Rejected(reason))
    }

    #[tokio::test]
    async fn local_issuer_token_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = Arc::new(LocalIssuer::load_or_create(dir.path(), ISS).expect("issuer"));
        let token = issuer
            .mint(&MintRequest {
                sub: "alice".into(),
                client_id: "app-2".into(),
                ttl_secs: 300,
            })
            .expect("mint");
        let verifier = Verifier::new(
            KeyCache::new(issuer, Duration::from_secs(60)),
            expectations(TokenUse::Access),
        );
        assert_eq!(verifier.verify(&token).await, Ok(caller("alice", "app-2")));
    }

    #[tokio::test]
    async fn rs256_token_verifies_against_rsa_jwk() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        let token = keys.rs256(&access_claims());
        assert_eq!(v.verify(&token).await, Ok(caller("user-1", "app-1")));
    }

    #[tokio::test]
    async fn expiry_is_checked_with_leeway() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        let within = keys.es256(&with(access_claims(), "exp", json!(now() - 30)));
        assert!(v.verify(&within).await.is_ok());
        let beyond = keys.es256(&with(access_claims(), "exp", json!(now() - 120)));
        assert_eq!(v.verify(&beyond).await, rejected("expired"));
        let missing = keys.es256(&without(access_claims(), "exp"));
        assert_eq!(v.verify(&missing).await, rejected("missing required claim"));
    }

    #[tokio::test]
    async fn not_before_is_checked_with_leeway() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        let future = keys.es256(&with(access_claims(), "nbf", json!(now() + 600)));
        assert_eq!(v.verify(&future).await, rejected("not yet valid"));
        let within = keys.es256(&with(access_claims(), "nbf", json!(now() + 30)));
        assert!(v.verify(&within).await.is_ok());
    }

    #[tokio::test]
    async fn issuer_must_match_exactly() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        for iss in [
            json!("https://evil"),
            json!(format!("{ISS}/")),
            json!([ISS]),
        ] {
            let token = keys.es256(&with(access_claims(), "iss", iss));
            assert!(matches!(
                v.verify(&token).await,
                Err(AuthError::Rejected(_))
            ));
        }
        let missing = keys.es256(&without(access_claims(), "iss"));
        assert_eq!(v.verify(&missing).await, rejected("missing required claim"));
    }

    #[tokio::test]
    async fn client_must_be_served() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        let other = keys.es256(&with(access_claims(), "client_id", json!("app-9")));
        assert_eq!(v.verify(&other).await, rejected("client not allowed"));
        let missing = keys.es256(&without(access_claims(), "client_id"));
        assert_eq!(v.verify(&missing).await, rejected("client not allowed"));
        // An access token's `aud` does not stand in for `client_id`.
        let aud_only = keys.es256(&with(
            without(access_claims(), "client_id"),
            "aud",
            json!("app-1"),
        ));
        assert_eq!(v.verify(&aud_only).await, rejected("client not allowed"));
    }

    #[tokio::test]
    async fn id_token_client_is_aud_string_or_array() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Id));
        let single = keys.es256(&id_claims(json!("app-2")));
        assert_eq!(v.verify(&single).await, Ok(caller("user-1", "app-2")));
        let array = keys.es256(&id_claims(json!(["other", "app-1"])));
        assert_eq!(v.verify(&array).await, Ok(caller("user-1", "app-1")));
        let none_served = keys.es256(&id_claims(json!(["other", "more"])));
        assert_eq!(v.verify(&none_served).await, rejected("client not allowed"));
        let malformed = keys.es256(&id_claims(json!(["app-1", 7])));
        assert_eq!(v.verify(&malformed).await, rejected("malformed aud"));
        let missing = keys.es256(&without(id_claims(json!("app-1")), "aud"));
        assert_eq!(v.verify(&missing).await, rejected("missing aud"));
    }

    #[tokio::test]
    async fn token_use_must_match() {
        let keys = Keys::new();
        let access = keys.es256(&access_claims());
        let id = keys.es256(&id_claims(json!("app-2")));
        let mismatch = rejected("token_use mismatch");

        let access_only = keys.verifier(expectations(TokenUse::Access));
        assert_eq!(access_only.verify(&id).await, mismatch);
        let id_only = keys.verifier(expectations(TokenUse::Id));
        assert_eq!(id_only.verify(&access).await, mismatch);

        let any = keys.verifier(expectations(TokenUse::Any));
        assert_eq!(any.verify(&access).await, Ok(caller("user-1", "app-1")));
        assert_eq!(any.verify(&id).await, Ok(caller("user-1", "app-2")));
        for token_use in [json!("refresh"), json!(null), json!(["access"])] {
            let odd = keys.es256(&with(access_claims(), "token_use", token_use));
            assert_eq!(any.verify(&odd).await, mismatch);
        }
        let missing = keys.es256(&without(access_claims(), "token_use"));
        assert_eq!(any.verify(&missing).await, mismatch);
    }

    #[tokio::test]
    async fn configured_client_claim_names_the_client() {
        let keys = Keys::new();
        let mut expect = expectations(TokenUse::Access);
        expect.client_claim = Some("custom:feature_client".into());
        let v = keys.verifier(expect);
        let claims = with(access_claims(), "custom:feature_client", json!("app-2"));
        let token = keys.es256(&with(claims, "client_id", json!("not-served")));
        assert_eq!(v.verify(&token).await, Ok(caller("user-1", "app-2")));
        let missing = keys.es256(&access_claims());
        assert_eq!(v.verify(&missing).await, rejected("client not allowed"));
    }

    #[tokio::test]
    async fn sub_is_required_non_empty_and_bounded() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        let bad_sub = rejected("missing, empty or oversized sub");
        let empty = keys.es256(&with(access_claims(), "sub", json!("")));
        assert_eq!(v.verify(&empty).await, bad_sub);
        let long = keys.es256(&with(access_claims(), "sub", json!("s".repeat(257))));
        assert_eq!(v.verify(&long).await, bad_sub);
        let number = keys.es256(&with(access_claims(), "sub", json!(42)));
        assert!(matches!(
            v.verify(&number).await,
            Err(AuthError::Rejected(_))
        ));
        let max = keys.es256(&with(access_claims(), "sub", json!("s".repeat(256))));
        assert!(v.verify(&max).await.is_ok());
        let missing = keys.es256(&without(access_claims(), "sub"));
        assert_eq!(v.verify(&missing).await, rejected("missing required claim"));
    }

    #[tokio::test]
    async fn alg_none_is_rejected() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        for alg in ["none", "None", "NONE"] {
            let header = json!({"alg": alg, "kid": "ec", "typ": "JWT"});
            let unsigned = format!("{}.{}.", b64_json(&header), b64_json(&access_claims()));
            assert_eq!(
                v.verify(&unsigned).await,
                rejected("malformed or unsupported header")
            );
        }
    }

    #[tokio::test]
    async fn hs256_signed_with_the_public_key_is_rejected() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        let jwk_json = serde_json::to_vec(&keys.source.set.keys[0]).expect("jwk");
        let public_keys: [&[u8]; 2] = [keys.ec.public_key().as_ref(), &jwk_json];
        for secret in public_keys {
            let header = json!({"alg": "HS256", "kid": "ec", "typ": "JWT"});
            let input = format!("{}.{}", b64_json(&header), b64_json(&access_claims()));
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
            let forged = format!("{input}.{}", b64(tag.as_ref()));
            assert_eq!(v.verify(&forged).await, rejected("algorithm not allowed"));
        }
        assert_eq!(keys.source.fetches.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn other_algorithms_and_mismatched_keys_are_rejected() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        for alg in ["ES384", "RS512", "PS256", "EdDSA", "HS512"] {
            let header = json!({"alg": alg, "kid": "ec"});
            let token = keys.sign_es256(&header, &access_claims());
            assert_eq!(v.verify(&token).await, rejected("algorithm not allowed"));
        }
        // An EC-signed token claiming RS256 against the EC key, and ES256 against the RSA key.
        let rs_on_ec = keys.sign_es256(&json!({"alg": "RS256", "kid": "ec"}), &access_claims());
        assert_eq!(
            v.verify(&rs_on_ec).await,
            rejected("algorithm does not match key")
        );
        let es_on_rsa = keys.sign_es256(&json!({"alg": "ES256", "kid": "rsa"}), &access_claims());
        assert_eq!(
            v.verify(&es_on_rsa).await,
            rejected("algorithm does not match key")
        );
    }

    #[tokio::test]
    async fn header_needs_a_known_kid_and_no_crit() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        let no_kid = keys.sign_es256(&json!({"alg": "ES256"}), &access_claims());
        assert_eq!(v.verify(&no_kid).await, rejected("missing kid"));
        let unknown = keys.sign_es256(&json!({"alg": "ES256", "kid": "nope"}), &access_claims());
        assert_eq!(v.verify(&unknown).await, rejected("unknown kid"));
        let crit = keys.sign_es256(
            &json!({"alg": "ES256", "kid": "ec", "crit": ["b64"], "b64": false}),
            &access_claims(),
        );
        assert_eq!(
            v.verify(&crit).await,
            rejected("critical header extensions not supported")
        );
    }

    #[tokio::test]
    async fn tampered_payload_is_rejected() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        for token in [keys.es256(&access_claims()), keys.rs256(&access_claims())] {
            let parts: Vec<&str> = token.split('.').collect();
            let forged_claims = with(access_claims(), "sub", json!("mallory"));
            let forged = format!("{}.{}.{}", parts[0], b64_json(&forged_claims), parts[2]);
            assert_eq!(v.verify(&forged).await, rejected("bad signature"));
        }
    }

    #[tokio::test]
    async fn garbage_is_rejected() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        for token in ["", "a", "a.b", "a.b.c", "a.b.c.d", "...."] {
            assert!(matches!(v.verify(token).await, Err(AuthError::Rejected(_))));
        }
    }

    #[tokio::test]
    async fn oversized_token_is_rejected_before_parsing() {
        let keys = Keys::new();
        let v = keys.verifier(expectations(TokenUse::Access));
        let padding = "x".repeat(MAX_TOKEN_BYTES);
        let token = keys.es256(&with(access_claims(), "pad", json!(padding)));
        assert!(token.len() > MAX_TOKEN_BYTES);
        assert_eq!(v.verify(&token).await, rejected("token too large"));
        assert_eq!(keys.source.fetches.load(Ordering::SeqCst), 0);
    }

    /// A JWKS endpoint on a port-0 socket serving whatever `doc` holds, with `max-age=1`.
    async fn jwks_server(doc: Arc<std::sync::Mutex<JwkSet>>) -> String {
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move {
                    let set = doc.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    (
                        [(axum::http::header::CACHE_CONTROL, "max-age=1")],
                        axum::Json(set),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/jwks")
    }

    #[tokio::test]
    async fn a_key_removed_from_the_jwks_is_refused_within_its_max_age_cached_tokens_too() {
        let keys = Keys::new();
        let doc = Arc::new(std::sync::Mutex::new(keys.source.set.clone()));
        let url = jwks_server(doc.clone()).await;
        // The server says max-age=1; the test lets the cache go down to 100 ms.
        let cache = KeyCache::new(Arc::new(HttpJwks::new(url)), Duration::from_secs(60))
            .with_max_age(
                Duration::from_secs(600),
                (Duration::from_millis(100), Duration::from_secs(3600)),
            );
        let v = Verifier::new(cache, expectations(TokenUse::Access));
        let cached = keys.es256(&access_claims());
        assert_eq!(v.verify(&cached).await, Ok(caller("user-1", "app-1")));

        // The provider rotates the EC key out.
        doc.lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .retain(|k| k.common.key_id.as_deref() != Some("ec"));
        // Within the max age the cached keys (and the verified token) are still used...
        assert_eq!(v.verify(&cached).await, Ok(caller("user-1", "app-1")));
        // ...after it, neither the cached token nor a fresh one signed with the removed key is.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(v.verify(&cached).await, rejected("unknown kid"));
        let fresh = keys.es256(&with(access_claims(), "jti", json!("another")));
        assert_eq!(v.verify(&fresh).await, rejected("unknown kid"));
        // The key still published keeps working.
        let rsa = keys.rs256(&access_claims());
        assert_eq!(v.verify(&rsa).await, Ok(caller("user-1", "app-1")));
    }

    #[tokio::test]
    async fn a_cached_token_is_refused_when_its_kid_names_another_key() {
        let keys = Keys::new();
        let other = Keys::new();
        let doc = Arc::new(std::sync::Mutex::new(keys.source.set.clone()));
        let url = jwks_server(doc.clone()).await;
        let cache = KeyCache::new(Arc::new(HttpJwks::new(url)), Duration::from_secs(60))
            .with_max_age(
                Duration::from_secs(600),
                (Duration::from_millis(100), Duration::from_secs(3600)),
            );
        let v = Verifier::new(cache, expectations(TokenUse::Access));
        let token = keys.es256(&access_claims());
        assert!(v.verify(&token).await.is_ok());
        // Same kid, new key material.
        *doc.lock().unwrap_or_else(|e| e.into_inner()) = other.source.set.clone();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(v.verify(&token).await, rejected("key replaced"));
        // Once dropped from the cache, the full check refuses it too.
        assert_eq!(v.verify(&token).await, rejected("bad signature"));
        assert!(v.verify(&other.es256(&access_claims())).await.is_ok());
    }

    #[tokio::test]
    async fn a_cached_token_still_expires() {
        let keys = Keys::new();
        let mut expect = expectations(TokenUse::Access);
        expect.leeway_secs = 0;
        let v = keys.verifier(expect);
        let mut claims = access_claims();
        claims["exp"] = json!(now() + 1);
        let token = keys.es256(&claims);
        assert_eq!(v.verify(&token).await.expect("fresh").sub, "user-1");
        // The second call is served from the cache...
        assert_eq!(v.verify(&token).await.expect("cached").sub, "user-1");
        // ...until the token's own exp.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            v.verify(&token).await.expect_err("expired"),
            AuthError::Rejected("expired")
        );
        // A tampered copy is a different cache key, so it gets the full check.
        let (head, rest) = token.split_at(token.len() - 4);
        let tampered = format!("{head}{}", if rest == "AAAA" { "BBBB" } else { "AAAA" });
        assert!(v.verify(&tampered).await.is_err());
    }
}
