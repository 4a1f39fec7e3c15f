//! AWS Signature Version 4 verification for the Bedrock-compatible routes, done here rather
//! than trusted to a library: parse the `Authorization` header, rebuild the canonical request
//! (method, URI-encoded path segments — the path as sent, encoded once more as non-S3 SDKs
//! do — sorted query, the signed headers' trimmed values, the SHA-256 of the body we
//! received), the string to sign, the signing-key chain `AWS4`+secret → date → region →
//! service → `aws4_request`, and compare signatures in constant time. `x-amz-date` must be
//! within [`MAX_SKEW_SECS`] of now and agree with the credential scope's date; the scope's
//! service must be `bedrock` (the signing name of both Bedrock and Bedrock Runtime).
//!
//! Every refusal is the same [`SigV4Error`] to the client; the reason is for the log only.
//! A [`ReplayCache`] remembers accepted signatures until they leave that window, so the
//! mutating routes can refuse a request sent twice.

use aws_lc_rs::{constant_time, digest, hmac};
use axum::http::{HeaderMap, Method, Uri};
use time::OffsetDateTime;
use time::macros::format_description;

/// Clock skew accepted between the signer and us (AWS's bound).
pub const MAX_SKEW_SECS: i64 = 15 * 60;
const MAX_AUTH_HEADER: usize = 4096;
const MAX_SIGNED_HEADERS: usize = 32;
pub const SERVICE: &str = "bedrock";

#[derive(Debug, thiserror::Error)]
pub enum SigV4Error {
    #[error("missing or malformed Authorization header")]
    Malformed,
    #[error("request time is outside the accepted skew")]
    Skew,
    #[error("unknown access key")]
    UnknownKey,
    #[error("signature does not match")]
    Mismatch,
    #[error("credential scope is not for this service")]
    Scope,
}

/// The parts of an `AWS4-HMAC-SHA256` Authorization header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    if value.len() > MAX_AUTH_HEADER {
        return Err(SigV4Error::Malformed);
    }
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or(SigV4Error::Malformed)?
        .trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(SigV4Error::Malformed)?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return Err(SigV4Error::Malformed),
        }
    }
    let credential = credential.ok_or(SigV4Error::Malformed)?;
    let mut c = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
        (c.next(), c.next(), c.next(), c.next(), c.next(), c.next())
    else {
        return Err(SigV4Error::Malformed);
    };
    let signed_headers: Vec<&str> = signed.ok_or(SigV4Error::Malformed)?.split(';').collect();
    let signature = signature.ok_or(SigV4Error::Malformed)?;
    let sorted = signed_headers
        .windows(2)
        .all(|w| matches!(w, [a, b] if a < b));
    if signed_headers.len() > MAX_SIGNED_HEADERS
        || !sorted
        || !signed_headers.contains(&"host")
        || signature.len() != 64
        || date.len() != 8
        || access_key_id.is_empty()
    {
        return Err(SigV4Error::Malformed);
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// RFC 3986 unreserved characters stay; everything else is `%XX` (upper case).
pub fn uri_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if c == b'+' { b' ' } else { c });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// The canonical request for `method uri` with `headers` and a body hashing to `payload_hash`.
pub fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &[&str],
    payload_hash: &str,
) -> Result<String, SigV4Error> {
    let mut out = String::with_capacity(512);
    out.push_str(method.as_str());
    out.push('\n');
    let path = uri.path();
    if path.is_empty() || path == "/" {
        out.push('/');
    } else {
        for seg in path.split('/').skip(1) {
            out.push('/');
            uri_encode(seg, &mut out);
        }
    }
    out.push('\n');
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(&percent_decode(k), &mut ek);
            uri_encode(&percent_decode(v), &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.push_str(&query.join("&"));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                let s = String::from_utf8_lossy(v.as_bytes());
                s.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::Mismatch);
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

fn hmac_sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, data).as_ref().to_vec()
}

/// `kSigning` for a secret, date (`YYYYMMDD`), region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_sign(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sign(&k_date, region.as_bytes());
    let k_service = hmac_sign(&k_region, service.as_bytes());
    hmac_sign(&k_service, b"aws4_request")
}

/// The hex signature of a canonical request.
pub fn signature(
    secret: &str,
    amz_date: &str,
    auth: &Authorization<'_>,
    canonical: &str,
) -> String {
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(secret, auth.date, auth.region, auth.service);
    hex(&hmac_sign(&key, to_sign.as_bytes()))
}

/// What a verified request was signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    /// The signature, decoded: identifies this exact signed request.
    pub signature: [u8; 32],
    /// `x-amz-date`, in Unix seconds.
    pub signed_at: i64,
}

/// Verify a request. `secret_for` looks an access key's secret up (`None` = unknown);
/// returns the access key id, signature and signing time on success.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: OffsetDateTime,
    secret_for: impl FnOnce(&str) -> Option<zeroize::Zeroizing<String>>,
) -> Result<Verified, SigV4Error> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(SigV4Error::Malformed)?;
    let auth = parse_authorization(value)?;
    if auth.service != SERVICE {
        return Err(SigV4Error::Scope);
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(SigV4Error::Malformed)?;
    if !auth.signed_headers.contains(&"x-amz-date") {
        return Err(SigV4Error::Malformed);
    }
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let when = time::PrimitiveDateTime::parse(amz_date, &format)
        .map_err(|_| SigV4Error::Malformed)?
        .assume_utc();
    if (now - when).whole_seconds().abs() > MAX_SKEW_SECS {
        return Err(SigV4Error::Skew);
    }
    if amz_date.get(..8) != Some(auth.date) {
        return Err(SigV4Error::Scope);
    }
    let payload_hash = sha256_hex(body);
    if let Some(claimed) = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        && claimed != payload_hash
    {
        return Err(SigV4Error::Mismatch);
    }
    let canonical = canonical_request(method, uri, headers, &auth.signed_headers, &payload_hash)?;
    let secret = secret_for(auth.access_key_id).ok_or(SigV4Error::UnknownKey)?;
    let expected = signature(&secret, amz_date, &auth, &canonical);
    constant_time::verify_slices_are_equal(expected.as_bytes(), auth.signature.as_bytes())
        .map_err(|_| SigV4Error::Mismatch)?;
    let mut signature = [0u8; 32];
    hex::decode_to_slice(auth.signature, &mut signature).map_err(|_| SigV4Error::Malformed)?;
    Ok(Verified {
        access_key_id: auth.access_key_id.to_string(),
        signature,
        signed_at: when.unix_timestamp(),
    })
}

/// Most signatures a [`ReplayCache`] holds: a signature is kept until its signing time leaves
/// the skew window (at most 30 minutes after it was seen), so this allows ~70 mutating
/// requests a second, sustained, in ~20 MB at most.
pub const MAX_REMEMBERED_SIGNATURES: usize = 128 * 1024;

/// What [`ReplayCache::admit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Not seen before; now remembered.
    Fresh,
    /// The same signed request was already accepted within its window.
    Repeated,
    /// The cache is full of signatures still inside their window: refuse rather than forget.
    Full,
}

/// Signatures of accepted requests, each kept until its `x-amz-date` is more than
/// [`MAX_SKEW_SECS`] in the past (after which [`verify`] refuses it anyway), so a captured
/// request cannot be sent again. Bounded: at most `cap` signatures; beyond that new requests
/// are refused ([`Replay::Full`]) until old ones expire. Per process (each Lambda sandbox has
/// its own).
#[derive(Debug)]
pub struct ReplayCache {
    cap: usize,
    inner: std::sync::Mutex<ReplayInner>,
}

#[derive(Debug, Default)]
struct ReplayInner {
    /// Signature → (expiry, generation).
    seen: std::collections::HashMap<[u8; 32], (i64, u64)>,
    /// Expiries, oldest first; an entry whose generation no longer matches is stale.
    expiries: std::collections::BinaryHeap<std::cmp::Reverse<(i64, u64, [u8; 32])>>,
    generation: u64,
}

impl ReplayInner {
    fn purge(&mut self, now: i64) {
        while let Some(std::cmp::Reverse((expiry, generation, signature))) =
            self.expiries.peek().copied()
        {
            if expiry >= now {
                break;
            }
            self.expiries.pop();
            if self
                .seen
                .get(&signature)
                .is_some_and(|(_, g)| *g == generation)
            {
                self.seen.remove(&signature);
            }
        }
    }
}

impl ReplayCache {
    pub fn new(cap: usize) -> ReplayCache {
        ReplayCache {
            cap,
            inner: std::sync::Mutex::new(ReplayInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayInner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Remember a verified request's signature, or say it was seen already (or that there is
    /// no room). `now` in Unix seconds.
    pub fn admit(&self, verified: &Verified, now: i64) -> Replay {
        let mut inner = self.lock();
        inner.purge(now);
        if inner.seen.contains_key(&verified.signature) {
            return Replay::Repeated;
        }
        if inner.seen.len() >= self.cap {
            return Replay::Full;
        }
        // Stale heap entries (from `forget`) are bounded too: rebuild when they pile up.
        if inner.expiries.len() >= self.cap.saturating_mul(2) {
            let rebuilt = inner
                .seen
                .iter()
                .map(|(sig, (expiry, generation))| std::cmp::Reverse((*expiry, *generation, *sig)))
                .collect();
            inner.expiries = rebuilt;
        }
        inner.generation += 1;
        let generation = inner.generation;
        let expiry = verified.signed_at.saturating_add(MAX_SKEW_SECS);
        inner.seen.insert(verified.signature, (expiry, generation));
        inner
            .expiries
            .push(std::cmp::Reverse((expiry, generation, verified.signature)));
        Replay::Fresh
    }

    /// Forget a signature whose request failed on our side (5xx, throttled), so the client's
    /// retry of the same signed request is not taken for a replay.
    pub fn forget(&self, signature: &[u8; 32]) {
        self.lock().seen.remove(signature);
    }

    /// Signatures remembered now.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The decoded signature of an `Authorization` header, if it parses.
pub fn signature_of(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let auth = parse_authorization(value).ok()?;
    let mut signature = [0u8; 32];
    hex::decode_to_slice(auth.signature, &mut signature).ok()?;
    Some(signature)
}

/// Sign a request (tests and the CLI's self-checks): returns the headers to add.
pub fn sign(
    method: &Method,
    uri: &Uri,
    host: &str,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    now: OffsetDateTime,
) -> Result<Vec<(String, String)>, SigV4Error> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let amz_date = now.format(&format).map_err(|_| SigV4Error::Malformed)?;
    let date = amz_date.get(..8).ok_or(SigV4Error::Malformed)?.to_string();
    let mut headers = HeaderMap::new();
    headers.insert("host", host.parse().map_err(|_| SigV4Error::Malformed)?);
    headers.insert(
        "x-amz-date",
        amz_date.parse().map_err(|_| SigV4Error::Malformed)?,
    );
    let signed = ["host", "x-amz-date"];
    let payload = sha256_hex(body);
    let canonical = canonical_request(method, uri, &headers, &signed, &payload)?;
    let auth = Authorization {
        access_key_id,
        date: &date,
        region: super::registry::REGION,
        service: SERVICE,
        signed_headers: signed.to_vec(),
        signature: "",
    };
    let sig = signature(secret, &amz_date, &auth, &canonical);
    Ok(vec![
        ("x-amz-date".into(), amz_date),
        (
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key_id}/{date}/{}/{SERVICE}/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}",
                super::registry::REGION
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published SigV4 test suite vector "get-vanilla-query-order-key-case".
    #[test]
    fn aws_test_vector() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let uri: Uri = "/?Param2=value2&Param1=value1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let canonical = canonical_request(
            &Method::GET,
            &uri,
            &headers,
            &["host", "x-amz-date"],
            &sha256_hex(b""),
        )
        .unwrap();
        assert_eq!(
            canonical,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let auth = Authorization {
            access_key_id: "AKIDEXAMPLE",
            date: "20150830",
            region: "us-east-1",
            service: "service",
            signed_headers: vec!["host", "x-amz-date"],
            signature: "",
        };
        assert_eq!(
            signature(secret, "20150830T123600Z", &auth, &canonical),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn sign_then_verify_and_refusals() {
        let now = OffsetDateTime::now_utc();
        let uri: Uri = "/guardrail/abc/version/1/apply".parse().unwrap();
        let body = br#"{"source":"INPUT"}"#;
        let signed = sign(
            &Method::POST,
            &uri,
            "127.0.0.1:9",
            body,
            "GPLKTEST",
            "s3cret",
            now,
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:9".parse().unwrap());
        for (k, v) in &signed {
            headers.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let secret =
            |id: &str| (id == "GPLKTEST").then(|| zeroize::Zeroizing::new("s3cret".to_string()));
        let verified = verify(&Method::POST, &uri, &headers, body, now, secret).unwrap();
        assert_eq!(verified.access_key_id, "GPLKTEST");
        assert_eq!(signature_of(&headers), Some(verified.signature));
        assert!(matches!(
            verify(&Method::POST, &uri, &headers, b"{}", now, secret),
            Err(SigV4Error::Mismatch)
        ));
        assert!(matches!(
            verify(
                &Method::POST,
                &uri,
                &headers,
                body,
                now + time::Duration::minutes(16),
                secret
            ),
            Err(SigV4Error::Skew)
        ));
        assert!(matches!(
            verify(&Method::POST, &uri, &headers, body, now, |_| None),
            Err(SigV4Error::UnknownKey)
        ));
        let other: Uri = "/guardrail/abc/version/2/apply".parse().unwrap();
        assert!(matches!(
            verify(&Method::POST, &other, &headers, body, now, secret),
            Err(SigV4Error::Mismatch)
        ));
        headers.remove("authorization");
        assert!(matches!(
            verify(&Method::POST, &uri, &headers, body, now, secret),
            Err(SigV4Error::Malformed)
        ));
    }

    fn verified(byte: u8, signed_at: i64) -> Verified {
        Verified {
            access_key_id: "K".into(),
            signature: [byte; 32],
            signed_at,
        }
    }

    #[test]
    fn a_signature_is_accepted_once_within_its_window_and_memory_is_bounded() {
        let cache = ReplayCache::new(3);
        let now = 1_000_000;
        assert_eq!(cache.admit(&verified(1, now), now), Replay::Fresh);
        assert_eq!(cache.admit(&verified(1, now), now + 1), Replay::Repeated);
        assert_eq!(
            cache.admit(&verified(1, now), now + MAX_SKEW_SECS),
            Replay::Repeated
        );
        assert_eq!(cache.admit(&verified(2, now), now), Replay::Fresh);
        assert_eq!(cache.admit(&verified(3, now + 60), now), Replay::Fresh);
        // Full of live signatures: refuse new ones rather than forget a live one.
        assert_eq!(cache.admit(&verified(4, now), now), Replay::Full);
        assert_eq!(cache.admit(&verified(1, now), now), Replay::Repeated);
        // Once their window has passed (verify refuses them anyway), they make room.
        let later = now + MAX_SKEW_SECS + 1;
        assert_eq!(cache.admit(&verified(4, later), later), Replay::Fresh);
        assert_eq!(cache.len(), 2);
        // A request that failed on our side is forgotten: the client may retry it.
        cache.forget(&[4; 32]);
        assert_eq!(cache.admit(&verified(4, later), later), Replay::Fresh);
        // Forget/admit churn leaves stale heap entries; they stay bounded.
        for _ in 0..100 {
            cache.forget(&[4; 32]);
            assert_eq!(cache.admit(&verified(4, later), later), Replay::Fresh);
        }
        assert!(cache.lock().expiries.len() <= 6);
        assert_eq!(cache.admit(&verified(3, now + 60), later), Replay::Repeated);
    }
}
