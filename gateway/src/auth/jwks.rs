//! Verification keys: where they come from ([`KeySource`]: the embedded issuer in-process, or a
//! JWKS URL via [`HttpJwks`]) and the cache in front of them ([`KeyCache`]), which turns a JWKS
//! into `kid → (key, algorithm)`, uses it for the answer's `Cache-Control: max-age` (clamped to
//! [`KEY_MAX_AGE_BOUNDS`]) before fetching again, and refreshes at most once per
//! `min_refresh_interval` when a token names an unknown `kid`.
//!
//! Only RSA keys (→ RS256) and P-256 EC keys (→ ES256) are ever loaded; every other key in a
//! JWKS (symmetric `oct`, OKP, other curves, `use: enc`, a conflicting `alg`, no `kid`) is
//! skipped, so a token can never be checked with an algorithm its key was not made for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::AuthError;

/// A JWKS document's keys, as `jsonwebtoken` parses them.
pub type JwkSet = jsonwebtoken::jwk::JwkSet;

/// Where a JWKS comes from: the embedded issuer in-process, or an HTTPS URL (Cognito).
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn fetch(&self) -> Result<JwkSet, AuthError>;

    /// The keys and how long the source says they may be cached (`Cache-Control: max-age`),
    /// if it says.
    async fn fetch_with_max_age(&self) -> Result<(JwkSet, Option<Duration>), AuthError> {
        self.fetch().await.map(|set| (set, None))
    }
}

/// How long one JWKS fetch may take, connection included.
pub const HTTP_JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS response body accepted.
pub const HTTP_JWKS_MAX_BYTES: usize = 256 * 1024;

/// Fetches a JWKS document over HTTP(S), bounded in size ([`HTTP_JWKS_MAX_BYTES`]) and time
/// ([`HTTP_JWKS_TIMEOUT`]). Redirects are not followed: configure the final URL.
pub struct HttpJwks {
    pub url: String,
}

impl HttpJwks {
    pub fn new(url: impl Into<String>) -> HttpJwks {
        HttpJwks { url: url.into() }
    }

    /// The body of a 2xx answer, and its `Cache-Control: max-age`.
    async fn fetch_body(&self) -> Result<(Vec<u8>, Option<Duration>), JwksFetchError> {
        let client = reqwest::Client::builder()
            .timeout(HTTP_JWKS_TIMEOUT)
            .connect_timeout(HTTP_JWKS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(JwksFetchError::Http)?;
        let mut response = client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(JwksFetchError::Http)?;
        if !response.status().is_success() {
            return Err(JwksFetchError::Status(response.status().as_u16()));
        }
        let max_age = cache_max_age(response.headers());
        if response
            .content_length()
            .is_some_and(|len| len > HTTP_JWKS_MAX_BYTES as u64)
        {
            return Err(JwksFetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(JwksFetchError::Http)? {
            if body.len() + chunk.len() > HTTP_JWKS_MAX_BYTES {
                return Err(JwksFetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

/// `max-age` of a `Cache-Control` header, in seconds; `no-cache`/`no-store` count as 0 (the
/// cache's lower bound then applies). `None` without one, or when it is malformed.
fn cache_max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            // A huge number saturates rather than failing: the upper bound applies.
            let secs = secs.trim_matches('"');
            if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            age = Some(Duration::from_secs(secs.parse::<u64>().unwrap_or(u64::MAX)));
        }
    }
    age
}

/// Why an HTTP JWKS fetch failed; logged, then reported as [`AuthError::KeysUnavailable`].
#[derive(Debug, thiserror::Error)]
enum JwksFetchError {
    #[error("request failed: {0}")]
    Http(reqwest::Error),
    #[error("unexpected status {0}")]
    Status(u16),
    #[error("response larger than {HTTP_JWKS_MAX_BYTES} bytes")]
    TooLarge,
    #[error("response is not a JWKS document: {0}")]
    NotJwks(serde_json::Error),
}

#[async_trait]
impl KeySource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        self.fetch_with_max_age().await.map(|(set, _)| set)
    }

    async fn fetch_with_max_age(&self) -> Result<(JwkSet, Option<Duration>), AuthError> {
        let parsed = match self.fetch_body().await {
            Ok((body, max_age)) => serde_json::from_slice::<JwkSet>(&body)
                .map(|set| (set, max_age))
                .map_err(JwksFetchError::NotJwks),
            Err(e) => Err(e),
        };
        parsed.map_err(|error| {
            tracing::warn!(url = %self.url, %error, "JWKS fetch failed");
            AuthError::KeysUnavailable
        })
    }
}

/// One usable key: the decoding key, its one algorithm, and a digest of its public parameters
/// (so a cached verification can tell whether the key it used is still the one published).
#[derive(Clone)]
struct Entry {
    key: DecodingKey,
    alg: Algorithm,
    digest: KeyDigest,
}

/// SHA-256 of a key's public parameters as published (`n`/`e`, or `crv`/`x`/`y`).
pub type KeyDigest = [u8; 32];

/// The usable keys of one JWKS, by `kid`.
type KeyMap = HashMap<String, Entry>;

/// The keys of the last successful fetch and how long they may be used.
struct Cached {
    map: KeyMap,
    fetched: Instant,
    max_age: Duration,
}

impl Cached {
    fn is_stale(&self) -> bool {
        self.fetched.elapsed() >= self.max_age
    }
}

/// What the cache holds for one `kid`.
enum Lookup {
    Found(Entry),
    UnknownKid,
    /// No fetch has succeeded yet.
    NoKeys,
}

/// Least time between two fetches while no fetch has ever succeeded.
const NO_KEYS_RETRY: Duration = Duration::from_secs(1);

/// How long fetched keys are used when the JWKS answer says nothing (`Cache-Control: max-age`).
pub const DEFAULT_KEY_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// The bounds a JWKS answer's `max-age` is clamped to: a provider cannot make the gateway fetch
/// more often than once a minute, nor trust a key it removed for more than an hour.
pub const KEY_MAX_AGE_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(60 * 60));

/// Caches the keys of one [`KeySource`]; re-reads them when they are older than their max age,
/// and on an unknown `kid`, both rate-limited.
///
/// The first lookup fetches. Keys are used for the `max-age` the source gave (clamped to
/// [`KEY_MAX_AGE_BOUNDS`]; [`DEFAULT_KEY_MAX_AGE`] without one); the first lookup after that
/// fetches again, so a key the provider removed is refused within that age. A lookup for an
/// unknown `kid` triggers a refresh too. Either refresh is skipped if one was attempted less
/// than `min_refresh_interval` ago; one refresh runs at a time and concurrent callers wait for
/// it rather than fetching again. A failed refresh keeps the cached keys (an outage of the
/// provider does not lock every caller out) and is retried after `min_refresh_interval`.
pub struct KeyCache {
    source: Arc<dyn KeySource>,
    min_refresh_interval: Duration,
    /// Used when the source gives no max age.
    default_max_age: Duration,
    /// A source's max age is clamped to these.
    max_age_bounds: (Duration, Duration),
    /// The keys of the last successful fetch; `None` until one succeeds.
    keys: RwLock<Option<Cached>>,
    /// When a fetch was last attempted. Held for the whole refresh, so it also serialises them.
    last_attempt: Mutex<Option<Instant>>,
}

impl KeyCache {
    pub fn new(source: Arc<dyn KeySource>, min_refresh_interval: Duration) -> KeyCache {
        KeyCache {
            source,
            min_refresh_interval,
            default_max_age: DEFAULT_KEY_MAX_AGE,
            max_age_bounds: KEY_MAX_AGE_BOUNDS,
            keys: RwLock::new(None),
            last_attempt: Mutex::new(None),
        }
    }

    /// Use keys for `default` when the source gives no max age, and clamp the source's to
    /// `bounds` (the gateway passes its `auth.jwks_max_age_secs` and [`KEY_MAX_AGE_BOUNDS`]).
    pub fn with_max_age(mut self, default: Duration, bounds: (Duration, Duration)) -> KeyCache {
        let (low, high) = bounds;
        self.max_age_bounds = (low, high.max(low));
        self.default_max_age = default.clamp(low, high.max(low));
        self
    }

    /// The decoding key and algorithm for `kid`, refreshing first (rate-limited) if the keys are
    /// past their max age or `kid` is unknown.
    pub async fn key_for(&self, kid: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
        self.entry_for(kid)
            .await
            .map(|entry| (entry.key, entry.alg))
    }

    /// [`KeyCache::key_for`] with the key's [`KeyDigest`].
    pub async fn key_with_digest(
        &self,
        kid: &str,
    ) -> Result<(DecodingKey, Algorithm, KeyDigest), AuthError> {
        self.entry_for(kid)
            .await
            .map(|entry| (entry.key, entry.alg, entry.digest))
    }

    /// Whether `kid` still names the key with `digest` (refreshing as [`KeyCache::key_for`]
    /// does): how a cached verification checks that its key was neither removed nor replaced.
    pub async fn still_published(&self, kid: &str, digest: &KeyDigest) -> Result<(), AuthError> {
        match self.entry_for(kid).await {
            Ok(entry) if entry.digest == *digest => Ok(()),
            Ok(_) => Err(AuthError::Rejected("key replaced")),
            Err(e) => Err(e),
        }
    }

    async fn entry_for(&self, kid: &str) -> Result<Entry, AuthError> {
        if let (Lookup::Found(found), false) = self.lookup(kid).await {
            return Ok(found);
        }
        self.refresh_if_due().await;
        match self.lookup(kid).await.0 {
            Lookup::Found(found) => Ok(found),
            Lookup::UnknownKid => Err(AuthError::Rejected("unknown kid")),
            Lookup::NoKeys => Err(AuthError::KeysUnavailable),
        }
    }

    /// What the cache holds for `kid`, and whether the keys are past their max age.
    async fn lookup(&self, kid: &str) -> (Lookup, bool) {
        match &*self.keys.read().await {
            None => (Lookup::NoKeys, true),
            Some(cached) => (
                cached
                    .map
                    .get(kid)
                    .cloned()
                    .map_or(Lookup::UnknownKid, Lookup::Found),
                cached.is_stale(),
            ),
        }
    }

    /// Fetch and replace the keys unless a fetch was attempted within `min_refresh_interval`
    /// (within one second while no fetch has ever succeeded, so a JWKS endpoint that was down
    /// at start-up is retried promptly). Callers arriving while a refresh runs wait for it, then
    /// find it recent and return.
    async fn refresh_if_due(&self) {
        let mut last_attempt = self.last_attempt.lock().await;
        let interval = match &*self.keys.read().await {
            None => self.min_refresh_interval.min(NO_KEYS_RETRY),
            // Keys past their age are re-read at once, unless a refresh just ran (it failed, or
            // a concurrent caller did it while this one waited for the lock).
            Some(cached) if cached.is_stale() => self
                .min_refresh_interval
                .min(cached.fetched.elapsed().saturating_sub(cached.max_age)),
            Some(_) => self.min_refresh_interval,
        };
        if last_attempt.is_some_and(|at| at.elapsed() < interval) {
            return;
        }
        *last_attempt = Some(Instant::now());
        match self.source.fetch_with_max_age().await {
            Ok((set, max_age)) => {
                let map = usable_keys(&set);
                let (low, high) = self.max_age_bounds;
                let max_age = max_age.map_or(self.default_max_age, |age| age.clamp(low, high));
                if map.is_empty() {
                    tracing::warn!("JWKS has no usable RS256/ES256 keys; keeping cached keys");
                } else {
                    *self.keys.write().await = Some(Cached {
                        map,
                        fetched: Instant::now(),
                        max_age,
                    });
                }
            }
            Err(_) => tracing::warn!("JWKS refresh failed; keeping cached keys"),
        }
    }
}

/// Every key of `set` the verifier may use, with the one algorithm it may be used with.
fn usable_keys(set: &JwkSet) -> KeyMap {
    let mut map = KeyMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.as_deref() else {
            continue;
        };
        match key_and_alg(jwk) {
            Some((key, alg)) => {
                let params = serde_json::to_vec(&jwk.algorithm).unwrap_or_default();
                let mut digest = KeyDigest::default();
                digest.copy_from_slice(
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &params).as_ref(),
                );
                map.entry(kid.to_string())
                    .or_insert(Entry { key, alg, digest });
            }
            None => tracing::debug!(kid, "skipping JWKS key not usable for RS256/ES256"),
        }
    }
    map
}

/// The decoding key and its single allowed algorithm: RSA → RS256, EC P-256 → ES256. `None`
/// for any other key type, a non-signature key, or a declared `alg` that disagrees.
fn key_and_alg(jwk: &Jwk) -> Option<(DecodingKey, Algorithm)> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let (alg, declared_ok) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (
            Algorithm::RS256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)),
        ),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => (
            Algorithm::ES256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::ES256)),
        ),
        _ => return None,
    };
    if !declared_ok {
        return None;
    }
    DecodingKey::from_jwk(jwk).ok().map(|key| (key, alg))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn ec_jwk(kid: &str) -> serde_json::Value {
        // A valid P-256 point is not needed for key selection; decoding only base64-decodes.
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    fn set(keys: Vec<serde_json::Value>) -> JwkSet {
        serde_json::from_value(json!({ "keys": keys })).expect("jwks")
    }

    /// A [`KeySource`] that counts fetches and serves whatever set it holds (or fails).
    struct Counting {
        fetches: AtomicUsize,
        set: std::sync::Mutex<Option<JwkSet>>,
        delay: Duration,
        max_age: Option<Duration>,
    }

    impl Counting {
        fn new(set: Option<JwkSet>) -> Arc<Counting> {
            Arc::new(Counting {
                fetches: AtomicUsize::new(0),
                set: std::sync::Mutex::new(set),
                delay: Duration::ZERO,
                max_age: None,
            })
        }
        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
        fn serve(&self, set: Option<JwkSet>) {
            *self.set.lock().unwrap_or_else(|e| e.into_inner()) = set;
        }
    }

    #[async_trait]
    impl KeySource for Counting {
        async fn fetch(&self) -> Result<JwkSet, AuthError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            let set = self.set.lock().unwrap_or_else(|e| e.into_inner()).clone();
            set.ok_or(AuthError::KeysUnavailable)
        }

        async fn fetch_with_max_age(&self) -> Result<(JwkSet, Option<Duration>), AuthError> {
            self.fetch().await.map(|set| (set, self.max_age))
        }
    }

    /// Age bounds for tests: 100 ms to 300 ms.
    const TEST_AGES: (Duration, Duration) =
        (Duration::from_millis(100), Duration::from_millis(300));

    #[tokio::test]
    async fn keys_past_their_max_age_are_read_again_and_a_removed_key_is_refused() {
        let source = Counting::new(Some(set(vec![ec_jwk("a")])));
        let cache = KeyCache::new(source.clone(), Duration::from_secs(60))
            .with_max_age(Duration::from_millis(200), TEST_AGES);
        cache.key_for("a").await.expect("lookup");
        source.serve(Some(set(vec![ec_jwk("b")])));
        // Within the max age: served from the cache, no fetch.
        cache.key_for("a").await.expect("still cached");
        assert_eq!(source.fetches(), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            cache.key_for("a").await.err(),
            Some(AuthError::Rejected("unknown kid"))
        );
        assert_eq!(source.fetches(), 2);
        cache.key_for("b").await.expect("new key");
        assert_eq!(source.fetches(), 2);
    }

    #[tokio::test]
    async fn the_sources_max_age_is_clamped() {
        for (said, stale_after) in [
            (Duration::ZERO, Duration::from_millis(100)),
            (Duration::from_secs(36_000), Duration::from_millis(300)),
        ] {
            let source = Arc::new(Counting {
                fetches: AtomicUsize::new(0),
                set: std::sync::Mutex::new(Some(set(vec![ec_jwk("a")]))),
                delay: Duration::ZERO,
                max_age: Some(said),
            });
            let cache = KeyCache::new(source.clone(), Duration::from_secs(60))
                .with_max_age(Duration::from_millis(200), TEST_AGES);
            cache.key_for("a").await.expect("lookup");
            tokio::time::sleep(stale_after - Duration::from_millis(60)).await;
            cache.key_for("a").await.expect("lookup");
            assert_eq!(source.fetches(), 1, "{said:?}: still fresh");
            tokio::time::sleep(Duration::from_millis(120)).await;
            cache.key_for("a").await.expect("lookup");
            assert_eq!(source.fetches(), 2, "{said:?}: stale after {stale_after:?}");
        }
    }

    #[tokio::test]
    async fn a_failed_refresh_of_stale_keys_keeps_them_rate_limited() {
        let source = Counting::new(Some(set(vec![ec_jwk("a")])));
        let cache = KeyCache::new(source.clone(), Duration::from_millis(300))
            .with_max_age(Duration::from_millis(100), TEST_AGES);
        cache.key_for("a").await.expect("lookup");
        source.serve(None);
        tokio::time::sleep(Duration::from_millis(150)).await;
        cache.key_for("a").await.expect("stale keys kept");
        assert_eq!(source.fetches(), 2);
        cache.key_for("a").await.expect("stale keys kept");
        assert_eq!(source.fetches(), 2, "no second attempt within the interval");
        tokio::time::sleep(Duration::from_millis(350)).await;
        cache.key_for("a").await.expect("stale keys kept");
        assert_eq!(source.fetches(), 3);
    }

    #[test]
    fn cache_control_max_age_is_read() {
        let age = |value: Option<&str>| {
            let mut headers = reqwest::header::HeaderMap::new();
            if let Some(v) = value {
                headers.insert(
                    reqwest::header::CACHE_CONTROL,
                    reqwest::header::HeaderValue::from_str(v).expect("header"),
                );
            }
            cache_max_age(&headers).map(|d| d.as_secs())
        };
        assert_eq!(age(Some("max-age=120")), Some(120));
        assert_eq!(age(Some("public, Max-Age=300, must-revalidate")), Some(300));
        assert_eq!(age(Some("no-store")), Some(0));
        assert_eq!(age(Some("max-age=99999999999999999999999")), Some(u64::MAX));
        assert_eq!(age(Some("max-age=-1")), None);
        assert_eq!(age(Some("max-age=")), None);
        assert_eq!(age(Some("public")), None);
        assert_eq!(age(None), None);
    }

    #[tokio::test]
    async fn first_use_fetches_and_known_kid_is_served_from_cache() {
        let source = Counting::new(Some(set(vec![ec_jwk("a")])));
        let cache = KeyCache::new(source.clone(), Duration::from_secs(60));
        let (_, alg) = cache.key_for("a").await.expect("lookup");
        assert_eq!(alg, Algorithm::ES256);
        cache.key_for("a").await.expect("lookup");
        assert_eq!(source.fetches(), 1);
    }

    #[tokio::test]
    async fn unknown_kid_refreshes_once_per_interval() {
        let source = Counting::new(Some(set(vec![ec_jwk("a")])));
        let cache = KeyCache::new(source.clone(), Duration::from_millis(300));
        cache.key_for("a").await.expect("lookup");
        assert_eq!(source.fetches(), 1);

        // The first fetch was just now, so an unknown kid inside the interval fetches nothing.
        assert_eq!(
            cache.key_for("b").await.err(),
            Some(AuthError::Rejected("unknown kid"))
        );
        assert_eq!(source.fetches(), 1);

        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            cache.key_for("b").await.err(),
            Some(AuthError::Rejected("unknown kid"))
        );
        assert_eq!(
            source.fetches(),
            2,
            "exactly one refresh after the interval"
        );
        assert_eq!(
            cache.key_for("c").await.err(),
            Some(AuthError::Rejected("unknown kid"))
        );
        assert_eq!(
            source.fetches(),
            2,
            "a second unknown kid inside the interval"
        );
    }

    #[tokio::test]
    async fn rotated_key_becomes_usable_after_refresh() {
        let source = Counting::new(Some(set(vec![ec_jwk("old")])));
        let cache = KeyCache::new(source.clone(), Duration::ZERO);
        cache.key_for("old").await.expect("lookup");
        source.serve(Some(set(vec![ec_jwk("new")])));
        cache.key_for("new").await.expect("lookup");
        assert_eq!(source.fetches(), 2);
        // The old key is gone from the new set.
        assert_eq!(
            cache.key_for("old").await.err(),
            Some(AuthError::Rejected("unknown kid"))
        );
    }

    #[tokio::test]
    async fn failed_refresh_keeps_serving_cached_keys() {
        let source = Counting::new(Some(set(vec![ec_jwk("a")])));
        let cache = KeyCache::new(source.clone(), Duration::ZERO);
        cache.key_for("a").await.expect("lookup");
        source.serve(None);
        assert_eq!(
            cache.key_for("b").await.err(),
            Some(AuthError::Rejected("unknown kid"))
        );
        assert_eq!(source.fetches(), 2);
        cache.key_for("a").await.expect("lookup");
    }

    #[tokio::test]
    async fn no_keys_ever_is_keys_unavailable() {
        let source = Counting::new(None);
        let cache = KeyCache::new(source.clone(), Duration::from_secs(60));
        assert_eq!(
            cache.key_for("a").await.err(),
            Some(AuthError::KeysUnavailable)
        );
        assert_eq!(
            cache.key_for("a").await.err(),
            Some(AuthError::KeysUnavailable)
        );
        assert_eq!(
            source.fetches(),
            1,
            "rate limit holds while nothing is cached"
        );
    }

    #[tokio::test]
    async fn concurrent_unknown_kids_share_one_refresh() {
        let source = Arc::new(Counting {
            fetches: AtomicUsize::new(0),
            set: std::sync::Mutex::new(Some(set(vec![ec_jwk("a")]))),
            delay: Duration::from_millis(100),
            max_age: None,
        });
        let cache = Arc::new(KeyCache::new(source.clone(), Duration::from_secs(60)));
        let lookups: Vec<_> = (0..16)
            .map(|i| {
                let cache = cache.clone();
                let kid = if i % 2 == 0 { "a" } else { "zzz" };
                tokio::spawn(async move { cache.key_for(kid).await.map(|_| ()) })
            })
            .collect();
        for (i, lookup) in lookups.into_iter().enumerate() {
            let result = lookup.await.expect("join");
            if i % 2 == 0 {
                assert_eq!(result, Ok(()));
            } else {
                assert_eq!(result, Err(AuthError::Rejected("unknown kid")));
            }
        }
        assert_eq!(source.fetches(), 1);
    }

    #[test]
    fn only_rs256_and_es256_signature_keys_are_usable() {
        let rsa = json!({"kty": "RSA", "kid": "r", "n": "sXch", "e": "AQAB"});
        let mut rsa_wrong_alg = rsa.clone();
        rsa_wrong_alg["alg"] = json!("RS512");
        let mut ec_enc = ec_jwk("e");
        ec_enc["use"] = json!("enc");
        let mut ec_rs = ec_jwk("x");
        ec_rs["alg"] = json!("RS256");
        let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0", "alg": "HS256"});
        let p384 = json!({"kty": "EC", "crv": "P-384", "kid": "p",
            "x": "AAAA", "y": "AAAA"});
        let okp = json!({"kty": "OKP", "crv": "Ed25519", "kid": "o", "x": "AAAA"});

        let usable = |v: serde_json::Value| {
            let jwk: Jwk = serde_json::from_value(v).expect("jwk");
            key_and_alg(&jwk).map(|(_, alg)| alg)
        };
        assert_eq!(usable(rsa), Some(Algorithm::RS256));
        assert_eq!(usable(ec_jwk("a")), Some(Algorithm::ES256));
        assert_eq!(usable(rsa_wrong_alg), None);
        assert_eq!(usable(ec_enc), None);
        assert_eq!(usable(ec_rs), None);
        assert_eq!(usable(oct), None);
        assert_eq!(usable(p384), None);
        assert_eq!(usable(okp), None);
    }

    /// Serve one canned HTTP response on a port-0 socket; returns the URL.
    async fn serve_once(status: &str, body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            }
        });
        format!("http://{addr}/.well-known/jwks.json")
    }

    #[tokio::test]
    async fn http_jwks_fetches_a_document() {
        let body = serde_json::to_vec(&json!({ "keys": [ec_jwk("a")] })).expect("json");
        let url = serve_once("200 OK", body).await;
        let set = HttpJwks::new(url).fetch().await.expect("fetch");
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].common.key_id.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn http_jwks_refuses_oversized_non_jwks_and_error_responses() {
        let huge = vec![b' '; HTTP_JWKS_MAX_BYTES + 1];
        let cases = [
            ("200 OK", huge),
            ("200 OK", b"<html>not json</html>".to_vec()),
            ("200 OK", br#"{"not":"a jwks"}"#.to_vec()),
            ("500 Internal Server Error", br#"{"keys":[]}"#.to_vec()),
        ];
        for (status, body) in cases {
            let url = serve_once(status, body).await;
            assert_eq!(
                HttpJwks::new(url).fetch().await.err(),
                Some(AuthError::KeysUnavailable)
            );
        }
    }

    #[tokio::test]
    async fn http_jwks_unreachable_is_keys_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let source = HttpJwks::new(format!("http://{addr}/jwks"));
        assert_eq!(source.fetch().await.err(), Some(AuthError::KeysUnavailable));
    }
}
