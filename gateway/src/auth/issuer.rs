//! The embedded issuer: an ES256 key pair created on first run in the data dir
//! (`keys/issuer-es256.pem`, PKCS#8 PEM, mode 0600 in a 0700 directory, written atomically so two
//! processes starting at once agree on one key), used to mint access tokens for `gateway token`
//! and served as a JWKS document. The `kid` is derived from the public key, so it is stable
//! across restarts for as long as the key file is.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use zeroize::Zeroizing;

use super::AuthError;
use super::jwks::{JwkSet, KeySource};
use super::verify::MAX_SUB_BYTES;

/// The key file, relative to the data dir.
pub const KEY_FILE: &str = "keys/issuer-es256.pem";
/// The longest lifetime a minted token may have: 30 days.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 60 * 60;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

pub struct LocalIssuer {
    pub issuer: String,
    kid: String,
    /// The public point's coordinates, base64url.
    x: String,
    y: String,
    signing_key: EncodingKey,
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What to put in a minted token.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub sub: String,
    pub client_id: String,
    pub ttl_secs: u64,
}

/// The claims of a minted access token, shaped like a Cognito access token.
#[derive(serde::Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    token_use: &'static str,
    iat: u64,
    exp: u64,
    jti: String,
}

impl LocalIssuer {
    /// Load the key pair from `<data_dir>/keys/issuer-es256.pem`, creating it (0600) if absent.
    pub fn load_or_create(data_dir: &Path, issuer: &str) -> anyhow::Result<LocalIssuer> {
        let path = data_dir.join(KEY_FILE);
        let pem = crate::secret_file::load_or_create_with(&path, new_key_pem)
            .with_context(|| format!("issuer key {}", path.display()))?;
        let der = pem_to_der(&pem).with_context(|| format!("issuer key {}", path.display()))?;
        LocalIssuer::from_pkcs8(&der, issuer)
            .with_context(|| format!("issuer key {}", path.display()))
    }

    fn from_pkcs8(der: &[u8], issuer: &str) -> anyhow::Result<LocalIssuer> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| anyhow::anyhow!("not a PKCS#8 P-256 private key"))?;
        let point = pair.public_key().as_ref();
        let (x, y) = point_coordinates(point)?;
        Ok(LocalIssuer {
            issuer: issuer.to_string(),
            kid: kid_for(point),
            x: URL_SAFE_NO_PAD.encode(x),
            y: URL_SAFE_NO_PAD.encode(y),
            signing_key: EncodingKey::from_ec_der(der),
        })
    }

    /// The key id every minted token names: base64url of the first 16 bytes of SHA-256 of the
    /// uncompressed public point.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A signed access token (`token_use: access`, `client_id`, `iss`, `sub`, `iat`, `exp`, `jti`).
    pub fn mint(&self, req: &MintRequest) -> anyhow::Result<String> {
        check_mint_request(req)?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("system clock is before 1970")?
            .as_secs();
        let claims = AccessClaims {
            iss: &self.issuer,
            sub: &req.sub,
            client_id: &req.client_id,
            token_use: "access",
            iat,
            exp: iat.saturating_add(req.ttl_secs),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing_key).context("signing token")
    }

    /// The public JWKS document.
    pub fn jwks(&self) -> JwkSet {
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::ES256),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: self.x.clone(),
                y: self.y.clone(),
            }),
        };
        JwkSet { keys: vec![jwk] }
    }

    /// The public JWKS document as JSON, ready to serve at `/.well-known/jwks.json`.
    pub fn jwks_json(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "EC",
                "crv": "P-256",
                "x": self.x,
                "y": self.y,
                "kid": self.kid,
                "alg": "ES256",
                "use": "sig",
            }]
        })
    }
}

#[async_trait]
impl KeySource for LocalIssuer {
    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        Ok(self.jwks())
    }
}

fn check_mint_request(req: &MintRequest) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_TTL_SECS).contains(&req.ttl_secs),
        "token lifetime must be between 1 second and 30 days"
    );
    anyhow::ensure!(
        !req.sub.is_empty() && req.sub.len() <= MAX_SUB_BYTES,
        "sub must be 1 to {MAX_SUB_BYTES} bytes"
    );
    anyhow::ensure!(
        !req.client_id.is_empty() && req.client_id.len() <= MAX_SUB_BYTES,
        "client_id must be 1 to {MAX_SUB_BYTES} bytes"
    );
    Ok(())
}

/// A fresh P-256 key pair as PKCS#8 PEM.
fn new_key_pem() -> std::io::Result<Zeroizing<Vec<u8>>> {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| std::io::Error::other("P-256 key generation failed"))?;
    Ok(der_to_pem(pkcs8.as_ref()))
}

fn der_to_pem(der: &[u8]) -> Zeroizing<Vec<u8>> {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut pem = Zeroizing::new(String::with_capacity(b64.len() + 128));
    pem.push_str(PEM_BEGIN);
    pem.push('\n');
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    Zeroizing::new(pem.as_bytes().to_vec())
}

fn pem_to_der(pem: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(pem).context("key file is not PEM text")?;
    let body = text
        .split_once(PEM_BEGIN)
        .and_then(|(_, rest)| rest.split_once(PEM_END))
        .map(|(body, _)| body)
        .context("key file has no PKCS#8 PRIVATE KEY block")?;
    let b64: Zeroizing<String> = Zeroizing::new(body.split_whitespace().collect());
    Ok(Zeroizing::new(
        STANDARD
            .decode(b64.as_bytes())
            .context("key file PEM is not base64")?,
    ))
}

/// The (x, y) coordinates of an uncompressed P-256 point (`04 || x || y`).
fn point_coordinates(point: &[u8]) -> anyhow::Result<(&[u8], &[u8])> {
    match point.split_first() {
        Some((4, xy)) if xy.len() == 64 => Ok(xy.split_at(32)),
        _ => anyhow::bail!("unexpected P-256 public key encoding"),
    }
}

fn kid_for(point: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, point);
    let prefix = digest.as_ref().get(..16).unwrap_or(digest.as_ref());
    URL_SAFE_NO_PAD.encode(prefix)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = LocalIssuer::load_or_create(dir.path(), "https://issuer").expect("create");
        let path = dir.path().join(KEY_FILE);
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("keys")), 0o700);
        let pem = std::fs::read_to_string(&path).expect("read");
        assert!(pem.starts_with(PEM_BEGIN), "PKCS#8 PEM");

        let second = LocalIssuer::load_or_create(dir.path(), "https://issuer").expect("load");
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.jwks(), second.jwks());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), pem);
    }

    #[test]
    fn concurrent_first_runs_agree_on_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        LocalIssuer::load_or_create(dir.path(), "i").map(|i| i.kid().to_string())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join").expect("load"))
                .collect()
        });
        assert!(kids.windows(2).all(|w| w[0] == w[1]), "{kids:?}");
        let leftovers = std::fs::read_dir(dir.path().join("keys"))
            .expect("read_dir")
            .count();
        assert_eq!(leftovers, 1, "no temp files left behind");
    }

    #[test]
    fn corrupt_key_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        LocalIssuer::load_or_create(dir.path(), "i").expect("create");
        std::fs::write(dir.path().join(KEY_FILE), b"garbage").expect("write");
        assert!(LocalIssuer::load_or_create(dir.path(), "i").is_err());
    }

    #[test]
    fn jwks_document_has_the_documented_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = LocalIssuer::load_or_create(dir.path(), "i").expect("create");
        let json = issuer.jwks_json();
        let key = &json["keys"][0];
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["alg"], "ES256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], issuer.kid());
        assert_eq!(URL_SAFE_NO_PAD.decode(issuer.kid()).expect("b64").len(), 16);
        for coord in ["x", "y"] {
            let raw = key[coord].as_str().expect("string");
            assert_eq!(URL_SAFE_NO_PAD.decode(raw).expect("b64").len(), 32);
        }
        // The typed set and the JSON document are the same thing.
        let typed = serde_json::to_value(issuer.jwks()).expect("serialize");
        assert_eq!(typed, json);
    }

    #[test]
    fn minted_token_has_the_documented_header_and_claims() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = LocalIssuer::load_or_create(dir.path(), "https://gp").expect("create");
        let token = issuer
            .mint(&MintRequest {
                sub: "alice".into(),
                client_id: "app".into(),
                ttl_secs: 600,
            })
            .expect("mint");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(issuer.kid()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));

        let payload = token.split('.').nth(1).expect("payload");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        assert_eq!(claims["iss"], "https://gp");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["client_id"], "app");
        assert_eq!(claims["token_use"], "access");
        let iat = claims["iat"].as_u64().expect("iat");
        assert_eq!(claims["exp"].as_u64(), Some(iat + 600));
        let jti = claims["jti"].as_str().expect("jti");
        assert_eq!(
            uuid::Uuid::parse_str(jti).expect("uuid").get_version_num(),
            4
        );
        assert!(claims.get("nbf").is_none() && claims.get("scope").is_none());
    }

    #[test]
    fn mint_bounds_ttl_and_identifiers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = LocalIssuer::load_or_create(dir.path(), "i").expect("create");
        let req = |sub: &str, ttl_secs| MintRequest {
            sub: sub.into(),
            client_id: "app".into(),
            ttl_secs,
        };
        assert!(issuer.mint(&req("a", 0)).is_err());
        assert!(issuer.mint(&req("a", MAX_TTL_SECS + 1)).is_err());
        assert!(issuer.mint(&req("a", 1)).is_ok());
        assert!(issuer.mint(&req("a", MAX_TTL_SECS)).is_ok());
        assert!(issuer.mint(&req("", 60)).is_err());
        assert!(
            issuer
                .mint(&req(&"s".repeat(MAX_SUB_BYTES + 1), 60))
                .is_err()
        );
    }

    #[test]
    fn debug_does_not_print_key_material() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = LocalIssuer::load_or_create(dir.path(), "i").expect("create");
        let shown = format!("{issuer:?}");
        assert!(shown.contains(issuer.kid()));
        assert!(!shown.contains("signing_key"));
    }
}
