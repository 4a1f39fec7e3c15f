//! Logs Insights on AWS over the wire, against the CloudWatch Logs Insights fake
//! (`e2e::insights_fake`, which runs queries with the project's own engine; moto does not):
//! the `gateway insights` binary on `backend = "aws"` end to end (the request it sends, the
//! time range in seconds, result mapping, progress on stderr, ctrl-c → StopQuery, refused and
//! rejected queries, the concurrency quota), and `CloudWatchInsights` in-process for what is
//! awkward through a process: statuses, its own deadline, paging, an abandoned query.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fail loudly"
)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use e2e::insights_fake::{FakeEvent, FakeOptions, InsightsFake};
use gateway::audit::AuditEvent;
use gateway::aws::insights::{CloudWatchInsights, PollLimits};
use gateway::aws::{Clients, StaticCredentials};
use gateway::config::{AwsConfig, Secret};
use gateway::insights::{
    CancelToken, InsightsBackend, InsightsError, QueryRequest, QueryStatus, TimeRange,
};
use serde_json::{Value, json};

const GROUP: &str = "/golden-path/gateway";
const OTHER: &str = "/golden-path/other";
/// 2023-11-14T22:13:20Z.
const BASE: i64 = 1_700_000_000;
/// Text only the events hold; no error message may carry it.
const SECRET: &str = "s3cr3t-prompt-fragment";

/// Audit events every 10 s from BASE: `req-i`, user `user-(i % 3)`, chat on even i; plus one
/// event 1 ms before BASE and one in another group.
fn events(n: i64) -> Vec<FakeEvent> {
    let mut out: Vec<FakeEvent> = (0..n)
        .map(|i| {
            FakeEvent::audit(
                GROUP,
                &AuditEvent {
                    timestamp: (BASE + i * 10) * 1000,
                    request_id: format!("req-{i}"),
                    user_sub: format!("user-{}", i % 3),
                    feature: if i % 2 == 0 { "chat" } else { "search" }.into(),
                    model_alias: SECRET.into(),
                    status: 200,
                    ..AuditEvent::default()
                },
            )
        })
        .collect();
    out.push(FakeEvent::audit(
        GROUP,
        &AuditEvent {
            timestamp: BASE * 1000 - 1,
            request_id: "req-early".into(),
            user_sub: "user-0".into(),
            feature: "chat".into(),
            ..AuditEvent::default()
        },
    ));
    out.push(FakeEvent::audit(
        OTHER,
        &AuditEvent {
            timestamp: BASE * 1000,
            request_id: "req-other-group".into(),
            feature: "chat".into(),
            ..AuditEvent::default()
        },
    ));
    out
}

fn aws_config(fake: &InsightsFake, group: &str) -> AwsConfig {
    serde_json::from_value(json!({
        "region": "us-east-1",
        "endpoint_url": fake.base,
        "vault_bucket": "unused",
        "kms_key_id": "unused",
        "log_group": group,
        "throttle_table": "unused",
    }))
    .unwrap()
}

/// `CloudWatchInsights` on the fake, polling every few ms.
async fn backend(fake: &InsightsFake, group: &str) -> CloudWatchInsights {
    let aws = aws_config(fake, group);
    let credentials = StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: Secret::new("testing"),
    };
    let sdk = gateway::aws::sdk_config(&aws, Some(&credentials)).await;
    CloudWatchInsights::new(Clients::new(&sdk, &aws).logs, vec![group.into()]).with_limits(
        PollLimits {
            first_poll: Duration::from_millis(5),
            max_poll: Duration::from_millis(20),
            ..PollLimits::default()
        },
    )
}

/// A data dir with a `backend = "aws"` config whose endpoint is the fake.
fn cli_dir(fake: &InsightsFake) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.toml"),
        format!(
            r#"
backend = "aws"

[aws]
region = "us-east-1"
endpoint_url = "{}"
vault_bucket = "unused"
kms_key_id = "unused"
log_group = "{GROUP}"
throttle_table = "unused"
"#,
            fake.base
        ),
    )
    .unwrap();
    dir
}

fn cli(dir: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new(e2e::binary("gateway"));
    cmd.arg("insights")
        .args(args)
        .arg("--config")
        .arg(dir.path().join("gateway.toml"))
        .env("GOLDEN_PATH_DATA_DIR", dir.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn run_cli(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    let mut cmd = cli(dir, args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn column(results: &Value, field: &str) -> Vec<String> {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .find(|c| c["field"] == field)
                .map(|c| c["value"].as_str().unwrap().to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn the_cli_runs_a_query_on_cloudwatch_and_prints_the_mapped_rows() {
    let fake = InsightsFake::start(
        events(12),
        FakeOptions {
            running_polls: 3,
            ..FakeOptions::default()
        },
    )
    .await;
    let dir = cli_dir(&fake);
    let query = "fields @timestamp, requestId, userSub\n| filter feature = \"chat\"\n| sort @timestamp desc";
    let out = run_cli(
        &dir,
        &[
            "--query",
            query,
            "--start",
            &BASE.to_string(),
            "--end",
            &(BASE + 60).to_string(),
            "--limit",
            "50",
            "--format",
            "json",
            "--progress",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));

    // What went over the wire: the text as is, the configured group, inclusive seconds.
    let starts = fake.bodies("StartQuery");
    assert_eq!(starts.len(), 1);
    let start = &starts[0];
    assert_eq!(start["queryString"], query);
    assert_eq!(start["logGroupNames"], json!([GROUP]));
    assert!(start.get("logGroupName").is_none(), "{start}");
    assert_eq!(start["startTime"], BASE);
    assert_eq!(start["endTime"], BASE + 60);
    assert_eq!(start["limit"], 50);
    // Polled until Complete (1 Scheduled + 3 Running + Complete), never stopped.
    assert_eq!(fake.bodies("GetQueryResults").len(), 5);
    assert!(fake.bodies("StopQuery").is_empty());

    // The rows: the group's chat events in [BASE, BASE + 60], newest first; the event 1 ms
    // before the range and the other group's event are not there; no @ptr.
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results["status"], "Complete");
    assert_eq!(
        column(&results, "requestId"),
        ["req-6", "req-4", "req-2", "req-0"]
    );
    assert_eq!(
        column(&results, "userSub"),
        ["user-0", "user-1", "user-2", "user-0"]
    );
    assert_eq!(
        column(&results, "@timestamp")[0],
        "2023-11-14 22:14:20.000",
        "{results}"
    );
    let text = results.to_string();
    assert!(!text.contains("@ptr"), "{text}");
    assert!(results["statistics"]["recordsScanned"].as_f64().unwrap() > 0.0);

    // Progress while it ran.
    assert!(
        stderr(&out).contains("events scanned so far"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn cli_time_ranges_become_inclusive_epoch_seconds() {
    let fake = InsightsFake::start(
        events(3),
        FakeOptions {
            scheduled_polls: 0,
            running_polls: 0,
            ..FakeOptions::default()
        },
    )
    .await;
    let dir = cli_dir(&fake);
    // RFC 3339 with milliseconds: widened to the whole seconds.
    let out = run_cli(
        &dir,
        &[
            "--query",
            "stats count(*) as n",
            "--start",
            "2023-11-14T22:13:20.500Z",
            "--end",
            "2023-11-14T22:14:20.250Z",
            "--format",
            "csv",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let start = &fake.bodies("StartQuery")[0];
    assert_eq!(
        (&start["startTime"], &start["endTime"]),
        (&json!(BASE), &json!(BASE + 60))
    );
    assert_eq!(start["limit"], 10_000, "the default limit");
    // CSV of the one stats row: the three events at BASE, BASE+10 and BASE+20.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n3\n");

    // --since: the last 10 minutes, ending now.
    let before = e2e::now_secs() as i64;
    let out = run_cli(&dir, &["--query", "fields @message", "--since", "10m"]).await;
    let after = e2e::now_secs() as i64;
    assert!(out.status.success(), "{}", stderr(&out));
    let start = &fake.bodies("StartQuery")[1];
    let (s, e) = (
        start["startTime"].as_i64().unwrap(),
        start["endTime"].as_i64().unwrap(),
    );
    assert!(
        (before..=after).contains(&e),
        "{e} not in {before}..={after}"
    );
    assert_eq!(e - s, 600);
}

#[tokio::test]
async fn ctrl_c_stops_the_query_on_cloudwatch() {
    let fake = InsightsFake::start(
        events(5),
        FakeOptions {
            running_polls: 1_000_000,
            ..FakeOptions::default()
        },
    )
    .await;
    let dir = cli_dir(&fake);
    let child = cli(&dir, &["--query", "fields requestId", "--since", "7d"])
        .spawn()
        .unwrap();
    fake.wait_for("GetQueryResults", 2, Duration::from_secs(30))
        .await;
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("status Cancelled"),
        "{}",
        stderr(&out)
    );
    let polled = fake.bodies("GetQueryResults");
    let stops = fake.bodies("StopQuery");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["queryId"], polled[0]["queryId"]);
    assert_eq!(
        fake.status(polled[0]["queryId"].as_str().unwrap()),
        Some("Cancelled")
    );
}

#[tokio::test]
async fn malformed_queries_are_refused_with_where_and_why() {
    let fake = InsightsFake::start(events(3), FakeOptions::default()).await;
    let dir = cli_dir(&fake);
    // A syntax error is found before any call: line and column, no StartQuery.
    let out = run_cli(&dir, &["--query", "fields a\n| filter (", "--since", "1h"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 2, column 11"),
        "{}",
        stderr(&out)
    );
    assert!(fake.bodies("StartQuery").is_empty());

    // One CloudWatch rejects (MalformedQueryException): its message, plainly.
    let out = run_cli(
        &dir,
        &[
            "--query",
            "fields nosuchfunction(requestId)",
            "--since",
            "1h",
        ],
    )
    .await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("CloudWatch Logs Insights rejected the query")
            && err.contains("nosuchfunction"),
        "{err}"
    );
    assert_eq!(fake.bodies("StartQuery").len(), 1);
    assert!(fake.bodies("GetQueryResults").is_empty());
}

#[tokio::test]
async fn the_concurrent_query_quota_is_a_clear_error() {
    let fake = InsightsFake::start(
        events(3),
        FakeOptions {
            max_concurrent: 1,
            running_polls: 1_000_000,
            ..FakeOptions::default()
        },
    )
    .await;
    // Someone else's query holds the account's only slot.
    let other = backend(&fake, GROUP).await;
    let hold = tokio::spawn(async move {
        other
            .run(
                &QueryRequest::new("fields requestId", TimeRange::all()),
                &CancelToken::new(),
            )
            .await
    });
    fake.wait_for("GetQueryResults", 1, Duration::from_secs(10))
        .await;

    let dir = cli_dir(&fake);
    let out = run_cli(&dir, &["--query", "fields requestId", "--since", "1h"]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("LimitExceededException") && err.contains("at once"),
        "{err}"
    );
    // The SDK retries LimitExceededException (a throttling error) with backoff before giving
    // up; every attempt was refused and none was polled.
    let starts = fake.bodies("StartQuery").len();
    assert!((2..=4).contains(&starts), "{starts}");
    let polled: std::collections::BTreeSet<String> = fake
        .bodies("GetQueryResults")
        .iter()
        .map(|b| b["queryId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(polled.len(), 1, "only the held query was polled");
    hold.abort();
}

#[tokio::test]
async fn query_statuses_map_to_results_or_errors_without_event_text() {
    // Failed: an error that says so.
    let fake = InsightsFake::start(
        events(3),
        FakeOptions {
            final_status: Some("Failed"),
            ..FakeOptions::default()
        },
    )
    .await;
    let b = backend(&fake, GROUP).await;
    let request = QueryRequest::new("fields requestId, modelAlias", TimeRange::all());
    let err = b.run(&request, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(err, InsightsError::Plan(_)), "{err}");
    assert!(err.to_string().contains("status Failed"), "{err}");
    assert!(!err.to_string().contains(SECRET));

    // Timeout on CloudWatch's side: a result with that status and no rows.
    let fake = InsightsFake::start(
        events(3),
        FakeOptions {
            final_status: Some("Timeout"),
            ..FakeOptions::default()
        },
    )
    .await;
    let b = backend(&fake, GROUP).await;
    let r = b.run(&request, &CancelToken::new()).await.unwrap();
    assert_eq!(r.status, QueryStatus::Timeout);
    assert!(r.results.is_empty());

    // Our own deadline: stopped on CloudWatch, status Timeout.
    let fake = InsightsFake::start(
        events(3),
        FakeOptions {
            running_polls: 1_000_000,
            ..FakeOptions::default()
        },
    )
    .await;
    let b = backend(&fake, GROUP).await;
    let mut short = request.clone();
    short.timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let r = b.run(&short, &CancelToken::new()).await.unwrap();
    assert_eq!(r.status, QueryStatus::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fake.bodies("StopQuery").len(), 1);

    // A log group that does not exist: a store error naming it, no event text.
    let b = backend(&fake, "/golden-path/missing").await;
    let err = b.run(&request, &CancelToken::new()).await.unwrap_err();
    assert!(matches!(err, InsightsError::Store(_)), "{err}");
    assert!(err.to_string().contains("/golden-path/missing"), "{err}");

    // A range wholly before 1970 asks nothing.
    let before = fake.bodies("StartQuery").len();
    let r = b
        .run(
            &QueryRequest::new(
                "fields requestId",
                TimeRange {
                    start_ms: -5_000,
                    end_ms: -1,
                },
            ),
            &CancelToken::new(),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.results.len()), (QueryStatus::Complete, 0));
    assert_eq!(fake.bodies("StartQuery").len(), before);
}

#[tokio::test]
async fn progress_is_reported_and_pages_are_read_up_to_the_limit() {
    let fake = InsightsFake::start(
        events(30),
        FakeOptions {
            running_polls: 6,
            page_rows: 7,
            ..FakeOptions::default()
        },
    )
    .await;
    let b = backend(&fake, GROUP).await;
    let mut request = QueryRequest::new(
        "fields requestId | filter ispresent(userSub) | sort @timestamp asc",
        TimeRange::from_secs(BASE, BASE + 1000),
    );
    request.limit = Some(25);
    let cancel = CancelToken::new();
    let run = {
        let (b, request, cancel) = (b.clone(), request.clone(), cancel.clone());
        tokio::spawn(async move { b.run(&request, &cancel).await })
    };
    let mut seen = Vec::new();
    while !run.is_finished() {
        seen.push(cancel.scanned());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let r = run.await.unwrap().unwrap();
    assert_eq!(r.status, QueryStatus::Complete);
    let ids: Vec<String> = r
        .results
        .iter()
        .map(|row| {
            assert!(row.iter().all(|f| f.field != "@ptr"), "{row:?}");
            row.iter()
                .find(|f| f.field == "requestId")
                .unwrap()
                .value
                .clone()
        })
        .collect();
    let want: Vec<String> = (0..25).map(|i| format!("req-{i}")).collect();
    assert_eq!(ids, want);
    // Read in pages of 7 linked by nextToken: 7 + 7 + 7 + 4.
    let pages: Vec<Value> = fake
        .bodies("GetQueryResults")
        .into_iter()
        .filter(|b| b.get("nextToken").is_some())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(
        pages
            .iter()
            .map(|p| p["maxItems"].clone())
            .collect::<Vec<_>>(),
        [json!(18), json!(11), json!(4)]
    );
    // Progress grew while it ran, below the final count.
    let total = r.statistics.records_scanned as u64;
    let partial: Vec<u64> = seen
        .into_iter()
        .filter(|n| (1..total).contains(n))
        .collect();
    assert!(partial.len() >= 2, "no progress seen before the end");
    assert!(partial.windows(2).all(|w| w[0] <= w[1]), "{partial:?}");
}

#[tokio::test]
async fn an_abandoned_query_is_stopped_on_cloudwatch() {
    let fake = InsightsFake::start(
        events(3),
        FakeOptions {
            running_polls: 1_000_000,
            ..FakeOptions::default()
        },
    )
    .await;
    let b = backend(&fake, GROUP).await;
    let request = QueryRequest::new("fields requestId", TimeRange::all());
    let cancel = CancelToken::new();
    // Dropped while polling (a caller that gave up without cancelling).
    let mut run = Box::pin(b.run(&request, &cancel));
    tokio::select! {
        r = &mut run => panic!("it ended: {r:?}"),
        () = fake.wait_for("GetQueryResults", 1, Duration::from_secs(10)) => {}
    }
    drop(run);
    fake.wait_for("StopQuery", 1, Duration::from_secs(10)).await;
    assert_eq!(fake.bodies("StartQuery").len(), 1);
    let stopped = &fake.bodies("StopQuery")[0]["queryId"];
    assert_eq!(fake.status(stopped.as_str().unwrap()), Some("Cancelled"));
}
