//! The console's data on the AWS stores, over the wire against moto (`e2e::moto`):
//! feature overrides on DynamoDB shared by two gateway instances (two `AppState`s in this
//! process, each with its own data dir: a change through one reaches the other within the
//! refresh interval; a stale writer gets "changed by someone else"; an instance that loses
//! DynamoDB keeps serving the last known settings and catches up when it returns), and the
//! console's audit trail on CloudWatch Logs (round trip, filters, newest first across time
//! windows).
//!
//! DynamoDB outages are played by `e2e::fault_proxy` in front of moto, named as one instance's
//! `aws.endpoints.dynamodb`. Every test makes its own bucket, key, log group and table.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fail loudly"
)]

use std::time::{Duration, Instant};

use e2e::fault_proxy::{FaultProxy, Mode};
use e2e::moto;
use gateway::aws::console_events::{ConsoleEvent, ConsoleEventLog, EventFilter, console_stream};
use gateway::aws::{Clients, StaticCredentials};
use gateway::config::{AwsConfig, Backend, Config, FeatureConfig, Secret, ThrottleLimits};
use gateway::features::{CONFLICT_MESSAGE, FeatureOverride, FeatureSettingsError};
use gateway::state::AppState;
use serde_json::json;

fn credentials() -> StaticCredentials {
    StaticCredentials {
        access_key_id: moto::ACCESS_KEY_ID.into(),
        secret_access_key: Secret::new(moto::SECRET_ACCESS_KEY),
    }
}

/// The emulator's resources one test's instances share.
struct Stores {
    bucket: String,
    key: String,
    group: String,
    table: String,
    clients: Clients,
}

async fn clients(endpoint: &str) -> Clients {
    let aws = aws_config(endpoint, "unused", "unused", "unused", "unused", None);
    let sdk = gateway::aws::sdk_config(&aws, Some(&credentials())).await;
    Clients::new(&sdk, &aws)
}

async fn stores() -> Stores {
    let c = clients(moto::endpoint()).await;
    let bucket = moto::unique("console-vault");
    c.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = c.kms.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().arn().unwrap().to_string();
    let group = moto::unique("console-audit");
    c.logs
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let table = crate::aws::throttle_table(&c.dynamodb, "console-throttle").await;
    Stores {
        bucket,
        key,
        group,
        table,
        clients: c,
    }
}

/// `[aws]` as a file would give it (so keys added with defaults later need no change here).
fn aws_config(
    endpoint: &str,
    bucket: &str,
    key: &str,
    group: &str,
    table: &str,
    dynamodb: Option<&str>,
) -> AwsConfig {
    let mut aws = json!({
        "region": moto::REGION,
        "endpoint_url": endpoint,
        "vault_bucket": bucket,
        "kms_key_id": key,
        "log_group": group,
        "log_stream": "gateway",
        "throttle_table": table,
        "check_bucket": false,
        "guardrails": "embedded",
    });
    if let Some(url) = dynamodb {
        aws["endpoints"] = json!({ "dynamodb": url });
    }
    serde_json::from_value(aws).unwrap()
}

/// A gateway instance on the shared stores, with its own data dir (its own /tmp, as a Lambda).
async fn instance(
    s: &Stores,
    dir: &std::path::Path,
    refresh_secs: u64,
    dynamodb: Option<&str>,
) -> AppState {
    let config = Config {
        data_dir: dir.to_path_buf(),
        backend: Backend::Aws,
        aws: Some(aws_config(
            moto::endpoint(),
            &s.bucket,
            &s.key,
            &s.group,
            &s.table,
            dynamodb,
        )),
        features_refresh_secs: refresh_secs,
        ..Config::default()
    };
    config.validate().unwrap();
    AppState::build_with_credentials(config, Some(&credentials()))
        .await
        .unwrap()
}

fn limits(rpm: u32) -> ThrottleLimits {
    ThrottleLimits {
        requests_per_minute: rpm,
        burst: 10,
        tokens_per_minute: 100_000,
        tokens_per_day: 1_000_000,
    }
}

fn throttle(rpm: u32) -> FeatureOverride {
    FeatureOverride {
        throttle: Some(limits(rpm)),
        ..FeatureOverride::default()
    }
}

/// What `state`'s request path uses for the `default` feature right now.
fn effective(state: &AppState) -> FeatureConfig {
    state
        .features
        .effective("default", &state.config.features["default"])
}

fn apply(state: &AppState, change: FeatureOverride) -> Result<FeatureConfig, FeatureSettingsError> {
    state.features.apply(
        &state.config,
        &state.registry,
        "default",
        change,
        "admin",
        gateway::now_ms(),
    )
}

/// Read `state`'s effective settings every 50 ms until `rpm` shows; how long that took.
async fn until_rpm(state: &AppState, rpm: u32, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if effective(state).throttle.requests_per_minute == rpm {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{rpm}/min did not arrive within {within:?}; still {:?}",
            effective(state).throttle
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_change_reaches_another_instance_within_the_refresh_interval() {
    let s = stores().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = instance(&s, da.path(), 1, None).await;
    let b = instance(&s, db.path(), 1, None).await;
    let base = a.config.features["default"].throttle;
    assert_eq!(effective(&b).throttle, base);

    let after = apply(&a, throttle(7)).unwrap();
    assert_eq!(after.throttle, limits(7));
    // The writer sees its own write at once.
    assert_eq!(effective(&a).throttle, limits(7));
    // The other instance within the interval (1 s), plus one BatchGetItem.
    let took = until_rpm(&b, 7, Duration::from_millis(2500)).await;
    println!("change reached the other instance after {took:?} (refresh every 1 s)");
    assert_eq!(b.features.get("default"), Some(throttle(7)));

    // The item sits in the throttle table as `feature#default`, with a version.
    let item = s
        .clients
        .dynamodb
        .get_item()
        .table_name(&s.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("feature#default".into()),
        )
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert_eq!(
        item.get("version").unwrap().as_n().unwrap(),
        "1",
        "{item:?}"
    );
    assert_eq!(item.get("updatedBy").unwrap().as_s().unwrap(), "admin");

    // A model pin and a guardrail version travel the same way; validation is unchanged.
    let pin = FeatureOverride {
        model: Some("dev".into()),
        guardrail_version: Some("1".into()),
        throttle: Some(limits(9)),
    };
    apply(&b, pin.clone()).unwrap();
    until_rpm(&a, 9, Duration::from_millis(2500)).await;
    assert_eq!(a.features.get("default"), Some(pin));
    let bad = FeatureOverride {
        guardrail_version: Some("99".into()),
        ..FeatureOverride::default()
    };
    assert!(
        matches!(apply(&a, bad), Err(FeatureSettingsError::Invalid(m)) if m.contains("no version"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_with_a_stale_copy_is_told_to_reload_instead_of_overwriting() {
    let s = stores().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A long interval: neither instance refreshes on its own during the test.
    let a = instance(&s, da.path(), 3600, None).await;
    let b = instance(&s, db.path(), 3600, None).await;

    apply(&a, throttle(11)).unwrap();
    // B never saw A's write: its save must not silently replace it.
    match apply(&b, throttle(22)) {
        Err(FeatureSettingsError::Invalid(m)) => {
            assert_eq!(m, CONFLICT_MESSAGE);
            assert!(m.contains("changed by someone else"), "{m}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The refusal loaded A's change, so a reload shows it and a second save goes through.
    assert_eq!(effective(&b).throttle, limits(11));
    apply(&b, throttle(22)).unwrap();
    // Now A is the stale one.
    let err = apply(&a, throttle(33)).unwrap_err();
    assert!(err.to_string().contains("changed by someone else"), "{err}");
    assert_eq!(effective(&a).throttle, limits(22));
    apply(&a, throttle(33)).unwrap();
    assert_eq!(a.features.version("default"), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_loses_dynamodb_keeps_the_last_known_settings() {
    let s = stores().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let proxy = FaultProxy::start(moto::endpoint());
    let a = instance(&s, da.path(), 1, None).await;
    let b = instance(&s, db.path(), 1, Some(&proxy.url())).await;
    apply(&a, throttle(5)).unwrap();
    until_rpm(&b, 5, Duration::from_millis(2500)).await;

    // A hanging table first (B was healthy: one read waits, bounded), then a refusing one.
    for (mode, rpm) in [(Mode::Hang, 6), (Mode::Refuse, 8)] {
        proxy.set(mode);
        apply(&a, throttle(rpm)).unwrap();
        // For three intervals B answers from what it knew, and never waits long for it.
        let start = Instant::now();
        let (mut slowest, mut slow_reads, mut reads) = (Duration::ZERO, 0, 0);
        while start.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            let f = effective(&b);
            let took = t.elapsed();
            slowest = slowest.max(took);
            reads += 1;
            if took > Duration::from_millis(100) {
                slow_reads += 1;
            }
            assert_eq!(
                f.throttle,
                limits(5),
                "{mode:?}: B lost its last known settings"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "{mode:?}: {reads} reads on the instance without DynamoDB, {slow_reads} over 100 ms, \
             slowest {slowest:?}"
        );
        assert!(
            slowest <= gateway::features::REFRESH_WAIT + Duration::from_millis(300),
            "{mode:?}: a read waited {slowest:?}"
        );
        // Only the read that found the store gone waited; the retries keep nobody waiting.
        let allowed = if mode == Mode::Hang { 1 } else { 0 };
        assert!(slow_reads <= allowed, "{mode:?}: {slow_reads} slow reads");
    }
    // DynamoDB comes back: B catches up within the interval.
    proxy.set(Mode::Pass);
    let took = until_rpm(&b, 8, Duration::from_secs(8)).await;
    println!("caught up {took:?} after DynamoDB returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_without_dynamodb_serves_the_configuration_then_catches_up() {
    let s = stores().await;
    let da = tempfile::tempdir().unwrap();
    let a = instance(&s, da.path(), 1, None).await;
    apply(&a, throttle(12)).unwrap();

    let proxy = FaultProxy::start(moto::endpoint());
    proxy.set(Mode::Refuse);
    let config = Config {
        backend: Backend::Aws,
        aws: Some(aws_config(
            moto::endpoint(),
            &s.bucket,
            &s.key,
            &s.group,
            &s.table,
            Some(&proxy.url()),
        )),
        features_refresh_secs: 1,
        ..Config::default()
    };
    let started = Instant::now();
    let features = gateway::aws::features::settings(&config, Some(&credentials()))
        .await
        .unwrap();
    println!("started without DynamoDB in {:?}", started.elapsed());
    let base = &config.features["default"];
    assert_eq!(features.effective("default", base).throttle, base.throttle);
    proxy.set(Mode::Pass);
    let start = Instant::now();
    while features.effective("default", base).throttle != limits(12) {
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "the stored override never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "stored override arrived {:?} after DynamoDB answered",
        start.elapsed()
    );
}

fn console_event(at_ms: i64, actor: &str, kind: &str, n: usize) -> ConsoleEvent {
    ConsoleEvent {
        at_ms,
        actor: actor.into(),
        kind: kind.into(),
        target: format!("target-{n}"),
        detail: format!("change {n}"),
        client: "10.0.0.7".into(),
    }
}

#[tokio::test]
async fn console_events_round_trip_through_cloudwatch_filtered_and_newest_first() {
    let s = stores().await;
    let config = Config {
        backend: Backend::Aws,
        aws: Some(aws_config(
            moto::endpoint(),
            &s.bucket,
            &s.key,
            &s.group,
            &s.table,
            None,
        )),
        ..Config::default()
    };
    let log = ConsoleEventLog::open(&config, Some(&credentials()))
        .await
        .unwrap();
    // The stream was created beside the audit stream.
    let streams = s
        .clients
        .logs
        .describe_log_streams()
        .log_group_name(&s.group)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = streams
        .log_streams()
        .iter()
        .filter_map(|l| l.log_stream_name())
        .collect();
    assert!(
        names.contains(&console_stream("gateway").as_str()),
        "{names:?}"
    );
    // Opening again finds it.
    ConsoleEventLog::open(&config, Some(&credentials()))
        .await
        .unwrap();

    let now = gateway::now_ms();
    let min = 60_000;
    // Spread over three days so a read walks several windows (1 h, 4 h, 16 h, 64 h).
    let written = [
        (now - 3 * 24 * 60 * min, "admin", "account.create"),
        (now - 30 * 60 * min, "ana", "login"),
        (now - 5 * 60 * min, "admin", "feature.throttle"),
        (now - 2 * 60 * min, "admin", "account.role"),
        (now - 30 * min, "ana", "login.failed"),
        (now - 10 * min, "admin", "login"),
        (now - 10 * min, "admin", "logout"),
        (now - min, "bo", "account.disable"),
    ];
    // Written out of order: CloudWatch orders by timestamp, the reader by newest.
    for &i in &[3usize, 0, 7, 1, 5, 6, 2, 4] {
        let (at, actor, kind) = written[i];
        log.record(&console_event(at, actor, kind, i))
            .await
            .unwrap();
    }
    // A line in the stream that is not a console event is never returned.
    log.put(now - 3 * min, r#"{"requestId":"x"}"#.into())
        .await
        .unwrap();

    let read = |f: EventFilter| {
        let log = log.clone();
        async move { log.events(&f).await.unwrap() }
    };
    let all = read(EventFilter {
        limit: 100,
        ..EventFilter::default()
    })
    .await;
    // Newest first; the two at the same millisecond: the later written first.
    let order: Vec<String> = all.iter().map(|e| e.target.clone()).collect();
    assert_eq!(
        order,
        [
            "target-7", "target-6", "target-5", "target-4", "target-3", "target-2", "target-1",
            "target-0"
        ],
    );
    assert_eq!(
        all[0],
        console_event(written[7].0, "bo", "account.disable", 7)
    );

    let f = |actor: Option<&str>, kind: Option<&str>, since: Option<i64>, limit| EventFilter {
        actor: actor.map(str::to_string),
        kind: kind.map(str::to_string),
        since_ms: since,
        until_ms: None,
        limit,
    };
    let targets = |events: Vec<ConsoleEvent>| -> Vec<String> {
        events.into_iter().map(|e| e.target).collect()
    };
    assert_eq!(
        targets(read(f(Some("ana"), None, None, 100)).await),
        ["target-4", "target-1"]
    );
    assert_eq!(
        targets(read(f(None, Some("account."), None, 100)).await),
        ["target-7", "target-3", "target-0"]
    );
    assert_eq!(
        targets(read(f(None, Some("login"), None, 100)).await),
        ["target-5", "target-1"]
    );
    assert_eq!(
        targets(read(f(Some("admin"), None, Some(now - 6 * 60 * min), 100)).await),
        ["target-6", "target-5", "target-3", "target-2"]
    );
    // A limit keeps the newest.
    assert_eq!(
        targets(read(f(None, None, None, 3)).await),
        ["target-7", "target-6", "target-5"]
    );
    // A window in the past.
    let old = read(EventFilter {
        since_ms: Some(now - 4 * 24 * 60 * min),
        until_ms: Some(now - 24 * 60 * min),
        limit: 100,
        ..EventFilter::default()
    })
    .await;
    assert_eq!(targets(old), ["target-1", "target-0"]);
    // Hostile filter values are filtered in code, never spliced into the pattern.
    assert!(
        read(f(Some(r#"admin" || $.x = "y"#), None, None, 100))
            .await
            .is_empty()
    );
}
