//! Fault tests of the AWS backends: the real `gateway` binary on `backend = "aws"` against moto,
//! with every service reached through its own fault-injecting proxy (`e2e::fault_proxy`, named
//! per service in `[aws.endpoints]`). Under a concurrent load the tests stop the peers (the
//! proxy refuses and resets connections), hang them (accept, never answer), throttle them
//! (503 ThrottlingException), take KMS away alone while S3 and CloudWatch stay up, take DynamoDB
//! away alone, restore everything, and kill -9 the gateway with a non-empty spool and restart
//! it on the same data dir. Then every acknowledged (200) request must have exactly one audit
//! event in CloudWatch Logs and exactly one vault object in S3 that decrypts (KMS, with the
//! record's encryption context) to that request's prompt, and no request may have two events.
//!
//! Why a proxy and not stopping moto: moto keeps its state in memory, so killing it would wipe
//! the buckets, keys and log groups under test; and moto does not enforce KMS key state
//! (DisableKey has no effect), so a disabled key cannot stand in for a KMS outage. The proxy
//! removes the peer from the network instead, which is what the gateway sees of an outage.
//!
//! `cargo test -p e2e --test e2e aws_faults -- --nocapture` prints the measurements.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fail loudly"
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::fault_proxy::{FaultProxy, Mode};
use e2e::moto;
use gateway::audit::AuditEvent;
use gateway::aws::kms::{CacheLimits, KmsKeys, SdkKms};
use gateway::aws::s3::S3Store;
use gateway::aws::{Clients, StaticCredentials};
use gateway::config::{AwsConfig, Secret};
use gateway::vault::Vault;
use serde_json::json;

fn credentials() -> StaticCredentials {
    StaticCredentials {
        access_key_id: moto::ACCESS_KEY_ID.into(),
        secret_access_key: Secret::new(moto::SECRET_ACCESS_KEY),
    }
}

/// SDK clients straight to moto (no proxy): the test's own view of AWS.
async fn clients() -> Clients {
    // Through serde, so fields this test does not care about keep their defaults.
    let cfg: AwsConfig = serde_json::from_value(json!({
        "region": moto::REGION,
        "endpoint_url": moto::endpoint(),
        "vault_bucket": "unused",
        "kms_key_id": "unused",
        "log_group": "unused",
        "throttle_table": "unused",
    }))
    .unwrap();
    let sdk = gateway::aws::sdk_config(&cfg, Some(&credentials())).await;
    Clients::new(&sdk, &cfg)
}

/// The four services, each behind its own proxy to moto.
struct Peers {
    s3: FaultProxy,
    kms: FaultProxy,
    logs: FaultProxy,
    dynamodb: FaultProxy,
}

impl Peers {
    fn start() -> Peers {
        let m = moto::endpoint();
        Peers {
            s3: FaultProxy::start(m),
            kms: FaultProxy::start(m),
            logs: FaultProxy::start(m),
            dynamodb: FaultProxy::start(m),
        }
    }
    fn all(&self, mode: Mode) {
        for p in [&self.s3, &self.kms, &self.logs, &self.dynamodb] {
            p.set(mode);
        }
    }
}

/// What one test deploys into moto.
struct Deployment {
    c: Clients,
    bucket: String,
    key: String,
    hmac_key: String,
    group: String,
    table: String,
}

impl Deployment {
    async fn new() -> Deployment {
        let c = clients().await;
        let key = c.kms.create_key().send().await.unwrap();
        let key = key.key_metadata().unwrap().arn().unwrap().to_string();
        let hmac_key = hmac_key(&c).await;
        let bucket = moto::unique("faults");
        c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let table = crate::aws::throttle_table(&c.dynamodb, "faults").await;
        Deployment {
            c,
            bucket,
            key,
            hmac_key,
            group: moto::unique("/golden-path/faults"),
            table,
        }
    }

    /// The gateway's config: every service through its proxy, KEKs renewed every second so a
    /// KMS outage is felt at once, limits high enough that the load is never throttled.
    fn config(&self, peers: &Peers) -> String {
        format!(
            r#"
backend = "aws"

[aws]
region = "{region}"
endpoint_url = "{moto}"
vault_bucket = "{bucket}"
kms_key_id = "{key}"
prompt_hash_key_id = "{hmac}"
log_group = "{group}"
throttle_table = "{table}"
check_bucket = false
kek_max_age_secs = 1
guardrails = "embedded"

[aws.endpoints]
s3 = "{s3}"
kms = "{kms}"
logs = "{logs}"
dynamodb = "{dynamodb}"
"#,
            region = moto::REGION,
            moto = moto::endpoint(),
            bucket = self.bucket,
            key = self.key,
            hmac = self.hmac_key,
            group = self.group,
            table = self.table,
            s3 = peers.s3.url(),
            kms = peers.kms.url(),
            logs = peers.logs.url(),
            dynamodb = peers.dynamodb.url(),
        )
    }
}

async fn hmac_key(c: &Clients) -> String {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let out = c
        .kms
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .key_usage(KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap();
    out.key_metadata().unwrap().arn().unwrap().to_string()
}

const ENV: [(&str, &str); 7] = [
    ("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID),
    ("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    (
        "GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__REQUESTS_PER_MINUTE",
        "1000000",
    ),
    ("GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__BURST", "100000"),
    (
        "GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__TOKENS_PER_MINUTE",
        "1000000000",
    ),
    (
        "GOLDEN_PATH_FEATURES__DEFAULT__THROTTLE__TOKENS_PER_DAY",
        "100000000000",
    ),
];

/// Acknowledged requests: request id → prompt.
type Acked = Arc<Mutex<BTreeMap<String, String>>>;

/// A concurrent load against one gateway base URL; the URL can be swapped (restarts).
struct Load {
    stop: Arc<AtomicBool>,
    acked: Acked,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    base: Arc<Mutex<(String, String)>>,
    /// Latency of every answered request, in completion order.
    latencies: Arc<Mutex<Vec<Duration>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, token: &str, workers: usize, tag: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Acked = Arc::default();
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let base = Arc::new(Mutex::new((base.to_string(), token.to_string())));
        let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let workers = (0..workers)
            .map(|w| {
                let (stop, acked, sent, failed, base, http, latencies) = (
                    stop.clone(),
                    acked.clone(),
                    sent.clone(),
                    failed.clone(),
                    base.clone(),
                    http.clone(),
                    latencies.clone(),
                );
                let tag = tag.to_string();
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let prompt =
                            format!("{tag} worker {w} prompt {i} {}", uuid::Uuid::new_v4());
                        let (url, token) = base.lock().unwrap().clone();
                        sent.fetch_add(1, Ordering::Relaxed);
                        let started = Instant::now();
                        let resp = http
                            .post(format!("{url}/v1/chat/completions"))
                            .bearer_auth(&token)
                            .json(&json!({"messages": [{"role": "user", "content": prompt}]}))
                            .send()
                            .await;
                        match resp {
                            Ok(r) if r.status() == 200 => {
                                let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
                                // Acknowledged only once the whole body has arrived.
                                if r.bytes().await.is_ok() {
                                    latencies.lock().unwrap().push(started.elapsed());
                                    acked.lock().unwrap().insert(id, prompt);
                                } else {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            acked,
            sent,
            failed,
            base,
            latencies,
            workers,
        }
    }

    /// (answered, median, max) latency of the requests answered since the last call.
    fn latency_since(&self, from: &mut usize) -> (usize, Duration, Duration) {
        let all = self.latencies.lock().unwrap();
        let mut window: Vec<Duration> = all[(*from).min(all.len())..].to_vec();
        *from = all.len();
        window.sort();
        let median = window.get(window.len() / 2).copied().unwrap_or_default();
        let max = window.last().copied().unwrap_or_default();
        (window.len(), median, max)
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn retarget(&self, base: &str, token: &str) {
        *self.base.lock().unwrap() = (base.to_string(), token.to_string());
    }

    async fn stop(self) -> (BTreeMap<String, String>, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        (
            acked,
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// `/readyz`'s `spooledRecords`, or `None` when the gateway does not answer.
async fn spooled(http: &reqwest::Client, base: &str) -> Option<u64> {
    let r = http.get(format!("{base}/readyz")).send().await.ok()?;
    let body: serde_json::Value = r.json().await.ok()?;
    body["spooledRecords"].as_u64()
}

/// Samples the backlog in the background; `peak()` is the largest value seen.
struct BacklogWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl BacklogWatch {
    fn start(base: Arc<Mutex<(String, String)>>) -> BacklogWatch {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            while !s.load(Ordering::Relaxed) {
                let url = base.lock().unwrap().0.clone();
                if let Some(n) = spooled(&http, &url).await {
                    p.fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        BacklogWatch { peak, stop, task }
    }
    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Wait until `/readyz` reports an empty spool; returns how long that took.
async fn drained(base: &str, within: Duration) -> Duration {
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let n = spooled(&http, base).await;
        if n == Some(0) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the spool did not drain within {within:?} (backlog {n:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every audit event in the group's `gateway` stream.
async fn audit_events(d: &Deployment) -> Vec<AuditEvent> {
    gateway_stream_events(&d.c.logs, &d.group).await
}

/// Every audit event in `group`'s `gateway` stream, oldest first.
pub(crate) async fn gateway_stream_events(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name("gateway")
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        if page.events().is_empty() {
            return out;
        }
        for e in page.events() {
            out.push(serde_json::from_str(e.message().unwrap()).unwrap());
        }
        token = page.next_forward_token().map(str::to_string);
    }
}

/// Every object key in the vault bucket.
async fn vault_keys(d: &Deployment) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page =
            d.c.s3
                .list_objects_v2()
                .bucket(&d.bucket)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return out,
        }
    }
}

/// Every acknowledged request has exactly one audit event and one vault object that opens
/// (KMS, its own encryption context) to its prompt; no request has two events.
async fn assert_exactly_once(d: &Deployment, acked: &BTreeMap<String, String>) {
    let events = audit_events(d).await;
    let mut per_request: HashMap<&str, Vec<&AuditEvent>> = HashMap::new();
    for e in &events {
        per_request.entry(&e.request_id).or_default().push(e);
    }
    let doubled: Vec<_> = per_request.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "{} requests have more than one audit event, e.g. {:?}",
        doubled.len(),
        doubled.first().map(|(id, _)| id)
    );
    let keys = vault_keys(d).await;
    let mut objects: HashMap<&str, usize> = HashMap::new();
    for k in &keys {
        *objects.entry(k.rsplit('/').next().unwrap()).or_default() += 1;
    }
    let vault = Vault {
        keys: Arc::new(KmsKeys::new(
            SdkKms(d.c.kms.clone()),
            &d.key,
            CacheLimits {
                max_age: Duration::from_secs(300),
                max_uses: 10_000,
            },
        )),
        objects: Arc::new(S3Store::new(d.c.s3.clone(), &d.bucket, &d.key)),
        retention_days: 90,
    };
    // A bounded number of openings at a time: thousands at once only time out against moto.
    use futures::StreamExt;
    let opens = futures::stream::iter(acked.iter().map(|(id, prompt)| {
        let vault = &vault;
        let per_request = &per_request;
        let objects = &objects;
        async move {
            let events = per_request
                .get(id.as_str())
                .unwrap_or_else(|| panic!("acknowledged request {id} has no audit event"));
            let event = events[0];
            assert_eq!(event.status, 200, "{id}");
            assert_eq!(objects.get(id.as_str()), Some(&1), "{id}: vault objects");
            let key = event.vault_key.as_deref().expect("vault key");
            let record = vault
                .open(key)
                .await
                .unwrap_or_else(|e| panic!("{id}: vault record does not open: {e}"));
            assert_eq!(record.request_id, *id);
            assert!(
                record.raw_prompt.to_string().contains(prompt.as_str()),
                "{id}"
            );
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<()>>();
    opens.await;
    // No audit event carries prompt text.
    let any_prompt = acked.values().next().unwrap();
    let raw = serde_json::to_string(&events).unwrap();
    assert!(!raw.contains(any_prompt.as_str()));
}

fn phase(name: &str, load: &Load, watch: &BacklogWatch, since: Instant, mark: &mut usize) {
    let (n, median, max) = load.latency_since(mark);
    println!(
        "aws_faults: {:>6.1}s {name:<32} {n:>4} acknowledged in the phase (median {:>5} ms, \
         max {:>5} ms), {:>5} so far, backlog peak so far {}",
        since.elapsed().as_secs_f64(),
        median.as_millis(),
        max.as_millis(),
        load.acked(),
        watch.peak()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_hang_and_restore_the_peers_mid_load_loses_and_doubles_nothing() {
    let d = Deployment::new().await;
    let peers = Peers::start();
    let gw = e2e::Gateway::start(Some(&d.config(&peers)), &ENV);
    let token = gw.token("alice@example.com", "default");
    let load = Load::start(&gw.base, &token, 8, "faults");
    let watch = BacklogWatch::start(load.base.clone());
    let t0 = Instant::now();
    let mut mark = 0;
    let pause = |s: f64| tokio::time::sleep(Duration::from_secs_f64(s));

    pause(1.5).await;
    phase("all peers up", &load, &watch, t0, &mut mark);
    let before_outage = load.acked();
    peers.all(Mode::Refuse);
    pause(3.0).await;
    phase("all peers stopped (refused)", &load, &watch, t0, &mut mark);
    peers.all(Mode::Hang);
    pause(3.0).await;
    phase("all peers hanging", &load, &watch, t0, &mut mark);
    peers.all(Mode::Throttle);
    pause(2.0).await;
    phase("all peers throttling (503)", &load, &watch, t0, &mut mark);
    let during_outage = load.acked() - before_outage;
    let outage_secs = t0.elapsed().as_secs_f64() - 1.5;
    peers.all(Mode::Pass);
    let outage_peak = watch.peak();
    // Under the same load, the spool drains.
    let restore_drain = drained(&gw.base, Duration::from_secs(120)).await;
    phase(
        "all peers restored, spool drained",
        &load,
        &watch,
        t0,
        &mut mark,
    );

    // KMS alone: S3 and CloudWatch stay up.
    let before_kms = load.acked();
    peers.kms.set(Mode::Refuse);
    pause(3.0).await;
    phase("KMS stopped, S3 + Logs up", &load, &watch, t0, &mut mark);
    let during_kms = load.acked() - before_kms;
    peers.kms.set(Mode::Pass);
    let kms_drain = drained(&gw.base, Duration::from_secs(120)).await;
    phase("KMS restored, spool drained", &load, &watch, t0, &mut mark);

    // DynamoDB alone: the throttle falls back to in-process counters.
    let before_ddb = load.acked();
    peers.dynamodb.set(Mode::Refuse);
    pause(3.0).await;
    phase("DynamoDB stopped", &load, &watch, t0, &mut mark);
    peers.dynamodb.set(Mode::Hang);
    pause(3.0).await;
    phase("DynamoDB hanging", &load, &watch, t0, &mut mark);
    let during_ddb = load.acked() - before_ddb;
    peers.dynamodb.set(Mode::Pass);
    pause(1.0).await;

    let (acked, sent, failed) = load.stop().await;
    let drain = drained(&gw.base, Duration::from_secs(120)).await;
    let peak = watch.finish().await;
    println!(
        "aws_faults: {} requests sent, {} acknowledged, {} not acknowledged",
        sent,
        acked.len(),
        failed
    );
    println!(
        "aws_faults: all peers down {outage_secs:.1}s (refuse 3s, hang 3s, throttle 2s): \
         {during_outage} requests acknowledged during the outage"
    );
    println!(
        "aws_faults: KMS alone down 3s: {during_kms} acknowledged; DynamoDB alone down 6s (refuse 3s, hang 3s): {during_ddb} acknowledged"
    );
    println!(
        "aws_faults: spool backlog peak {outage_peak} during the all-peers outage, {peak} overall"
    );
    println!(
        "aws_faults: spool empty {:.1}s after all peers were restored, {:.1}s after KMS was \
         restored (under the same load), {:.1}s after the load stopped",
        restore_drain.as_secs_f64(),
        kms_drain.as_secs_f64(),
        drain.as_secs_f64(),
    );
    assert!(
        during_outage > 0,
        "nothing was acknowledged while the peers were down"
    );
    assert!(
        during_kms > 0,
        "nothing was acknowledged while KMS was down"
    );
    assert!(
        during_ddb > 0,
        "nothing was acknowledged while DynamoDB was down"
    );
    assert!(peak > 0, "the spool never held anything");
    assert_exactly_once(&d, &acked).await;
    drop(gw);
}

/// `/readyz`'s `deadLetterRecords`.
async fn dead_letters(http: &reqwest::Client, base: &str) -> Option<u64> {
    let r = http.get(format!("{base}/readyz")).send().await.ok()?;
    let body: serde_json::Value = r.json().await.ok()?;
    body["deadLetterRecords"].as_u64()
}

/// S3 refuses some objects for good (as it refuses one too large): those requests are still
/// acknowledged, their objects are set aside in `spool/dead/` and reported on `/readyz`, and
/// delivery goes on: the audit events behind them and every later record reach AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_s3_refuses_for_good_is_dead_lettered_and_delivery_goes_on() {
    let d = Deployment::new().await;
    let peers = Peers::start();
    let gw = e2e::Gateway::start(Some(&d.config(&peers)), &ENV);
    let token = gw.token("alice@example.com", "default");
    let http = reqwest::Client::new();
    let send = |prompt: String| {
        let (http, url, token) = (http.clone(), gw.url("/v1/chat/completions"), token.clone());
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"messages": [{"role": "user", "content": prompt}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.headers()["x-request-id"].to_str().unwrap().to_string()
        }
    };
    peers.s3.set(Mode::Reject);
    let mut refused = Vec::new();
    for i in 0..3 {
        refused.push(send(format!("refused {i} {}", uuid::Uuid::new_v4())).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (dead, waiting) = (
            dead_letters(&http, &gw.base).await,
            spooled(&http, &gw.base).await,
        );
        if dead == Some(3) && waiting == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not dead-lettered: dead {dead:?}, waiting {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead_dir = gw.data_dir.path().join("spool").join("dead");
    let reasons: Vec<String> = std::fs::read_dir(&dead_dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            path.to_string_lossy()
                .ends_with(".reason")
                .then(|| std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    assert_eq!(reasons.len(), 3);
    assert!(
        reasons.iter().all(|r| r.contains("EntityTooLarge")),
        "{reasons:?}"
    );

    peers.s3.set(Mode::Pass);
    let mut later = Vec::new();
    for i in 0..3 {
        later.push(send(format!("later {i} {}", uuid::Uuid::new_v4())).await);
    }
    drained(&gw.base, Duration::from_secs(60)).await;
    let keys = vault_keys(&d).await;
    for id in &later {
        assert!(
            keys.iter().any(|k| k.ends_with(id.as_str())),
            "{id} not in S3: {keys:?}"
        );
    }
    for id in &refused {
        assert!(!keys.iter().any(|k| k.ends_with(id.as_str())), "{id} in S3");
    }
    let events = audit_events(&d).await;
    for id in refused.iter().chain(&later) {
        assert_eq!(
            events.iter().filter(|e| &e.request_id == id).count(),
            1,
            "{id}: one audit event"
        );
    }
    assert_eq!(dead_letters(&http, &gw.base).await, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_with_a_full_spool_replays_it_after_restart() {
    let d = Deployment::new().await;
    let peers = Peers::start();
    let gw = e2e::Gateway::start(Some(&d.config(&peers)), &ENV);
    let token = gw.token("alice@example.com", "default");
    let load = Load::start(&gw.base, &token, 6, "kill9");
    let watch = BacklogWatch::start(load.base.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;

    // S3, KMS and CloudWatch away: records pile up in the spool, KMS-less ones wrapped locally.
    peers.s3.set(Mode::Refuse);
    peers.kms.set(Mode::Refuse);
    peers.logs.set(Mode::Refuse);
    let deadline = Instant::now() + Duration::from_secs(60);
    while watch.peak() < 40 {
        assert!(Instant::now() < deadline, "the spool never filled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (dir, config) = gw.kill9();
    let spool_files = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
    println!(
        "aws_faults: killed -9 with {spool_files} spool files, {} acknowledged",
        load.acked()
    );
    assert!(spool_files > 0);

    // Peers back, gateway restarted on the same data dir: replay resumes.
    peers.all(Mode::Pass);
    let gw = e2e::Gateway::start_in(dir, config, &ENV);
    let restarted = Instant::now();
    let token = gw.token("alice@example.com", "default");
    load.retarget(&gw.base, &token);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (acked, sent, failed) = load.stop().await;
    drained(&gw.base, Duration::from_secs(120)).await;
    let since_restart = restarted.elapsed();
    let peak = watch.finish().await;
    println!(
        "aws_faults: kill -9: {sent} sent, {} acknowledged, {failed} not; backlog peak {peak}; \
         spool empty {:.1}s after the restart",
        acked.len(),
        since_restart.as_secs_f64()
    );
    assert_exactly_once(&d, &acked).await;
}

#[tokio::test]
async fn the_prompt_hash_key_comes_from_kms_and_is_the_same_on_every_instance() {
    let d = Deployment::new().await;
    let peers = Peers::start();
    let config = d.config(&peers);
    let a = e2e::Gateway::start(Some(&config), &ENV);
    let b = e2e::Gateway::start(Some(&config), &ENV);
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for gw in [&a, &b] {
        let token = gw.token("alice@example.com", "default");
        let r = http
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&token)
            .json(&json!({"messages": [{"role": "user", "content": "the same prompt twice"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(r.headers()["x-request-id"].to_str().unwrap().to_string());
    }
    drained(&a.base, Duration::from_secs(30)).await;
    let events = audit_events(&d).await;
    let hashes: Vec<&str> = ids
        .iter()
        .map(|id| {
            events
                .iter()
                .find(|e| &e.request_id == id)
                .map(|e| e.prompt_hash.as_str())
                .unwrap()
        })
        .collect();
    assert!(hashes[0].starts_with("hmac-sha256:"));
    assert_eq!(
        hashes[0], hashes[1],
        "two instances hash one prompt differently"
    );
    // No local key file was made: the key is KMS's.
    assert!(!a.data_dir.path().join("keys/prompt-hash.key").exists());

    // A key that is not an HMAC key, and one that does not exist: clear start-up errors.
    let refuse = |config: String, expect: &'static str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(e2e::binary("gateway"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env("GOLDEN_PATH_DATA_DIR", dir.path())
            .env("GOLDEN_PATH_SERVER__LISTEN", "127.0.0.1:0")
            .envs(ENV)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{err}");
    };
    refuse(
        config.replace(&d.hmac_key, &d.key),
        "is not an HMAC_256 KMS key",
    );
    refuse(
        config.replace(&d.hmac_key, "alias/no-such-hmac-key"),
        "no such KMS key",
    );
}

#[tokio::test]
async fn the_fault_proxy_refuses_hangs_throttles_and_restores_on_the_same_port() {
    use e2e::fault_proxy::accepts;
    let proxy = FaultProxy::start(moto::endpoint());
    // No pooled connections: each request sees the proxy's current mode.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // Generous while the peer answers (moto's state dump grows with the suite), short where a
    // hang is expected.
    let get_within = |timeout: Duration| {
        http.get(format!("{}/moto-api/data.json", proxy.url()))
            .timeout(timeout)
            .send()
    };
    let get = || get_within(Duration::from_secs(20));
    assert_eq!(get().await.unwrap().status(), 200);

    proxy.set(Mode::Refuse);
    assert!(
        !accepts(&proxy.url()),
        "a stopped peer still accepts connections"
    );
    assert!(get().await.is_err());

    proxy.set(Mode::Hang);
    assert!(accepts(&proxy.url()));
    assert!(
        get_within(Duration::from_millis(800))
            .await
            .unwrap_err()
            .is_timeout()
    );

    proxy.set(Mode::Throttle);
    let r = get().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("ThrottlingException"));

    proxy.set(Mode::Pass);
    assert_eq!(proxy.mode(), Mode::Pass);
    assert_eq!(get().await.unwrap().status(), 200);
}
