//! The Logs Insights engine on the embedded store: ingest rate, then the three queries the SOC
//! runs most, several rounds each, medians reported.
//!
//! `cargo bench -p gateway --bench insights -- [--events 1000000] [--rounds 7] [--keep DIR]`
//!
//! Corpus: `--events` audit events over the last 30 days (200 users, 5 features, 4 models)
//! recorded through `AuditStore::record` (the gateway's own path, group commit) by 64
//! concurrent writers; `gateway logs import`'s importer is timed on 100,000 CloudWatch lines
//! into a separate database, so the queries run on exactly `--events` events.
#![expect(clippy::unwrap_used, reason = "benchmark harness")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::audit::sqlite::SqliteAuditStore;
use gateway::audit::{AuditEvent, AuditStore};
use gateway::insights::import::{ImportOptions, import_jsonl};
use gateway::insights::store::SqliteInsights;
use gateway::insights::{CancelToken, InsightsBackend, QueryRequest, QueryStatus, TimeRange};

struct Args {
    events: u64,
    rounds: usize,
    keep: Option<std::path::PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        events: 1_000_000,
        rounds: 7,
        keep: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => a.events = it.next().unwrap().parse().unwrap(),
            "--rounds" => a.rounds = it.next().unwrap().parse().unwrap(),
            "--keep" => a.keep = Some(it.next().unwrap().into()),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const DAY_MS: i64 = 86_400_000;

fn event(i: u64, now: i64, span: i64, rng: &mut Rng) -> AuditEvent {
    let features = ["support-bot", "search", "batch", "summarize", "triage"];
    let models = [
        "anthropic.claude-3-haiku",
        "anthropic.claude-3-sonnet",
        "amazon.titan-text",
        "meta.llama3-70b",
    ];
    let latency = 50 + rng.below(3000);
    let intervened = rng.below(10) == 0;
    AuditEvent {
        timestamp: now - span + (i as i64 % span),
        request_id: format!("req-{i:08}"),
        user_sub: format!("user-{:03}", rng.below(200)),
        feature: features[rng.below(5) as usize].into(),
        model: models[rng.below(4) as usize].into(),
        model_alias: "fast".into(),
        prompt_hash: format!("hmac-sha256:{:016x}{:016x}", rng.next(), rng.next()),
        latency_ms: latency,
        model_latency_ms: latency.saturating_sub(rng.below(40)),
        guardrail_id: "gr-main".into(),
        guardrail_version: "3".into(),
        guardrail_action: if intervened { "INTERVENED" } else { "NONE" }.into(),
        input_action: if intervened { "ANONYMIZED" } else { "NONE" }.into(),
        output_action: "NONE".into(),
        policies: if intervened {
            vec!["pii:EMAIL".into()]
        } else {
            Vec::new()
        },
        input_tokens: rng.below(4000),
        output_tokens: rng.below(1000),
        status: 200,
        stream: rng.below(2) == 0,
        vault_key: Some(format!("prompts/2025/01/01/00/req-{i:08}")),
        source_ip: format!("10.0.{}.{}", rng.below(256), rng.below(256)),
        user_agent: "openai-python/1.30".into(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.db");
    let store = Arc::new(SqliteAuditStore::open(&db).unwrap());
    let now = gateway::now_ms();
    let span = 30 * DAY_MS;

    let existing = store.count().await.unwrap();
    if existing < args.events {
        // Ingest through the gateway's own path: 64 concurrent writers, group commit.
        let writers = 64u64;
        let started = Instant::now();
        let per = (args.events - existing).div_ceil(writers);
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
                    for k in 0..per {
                        let i = existing + w * per + k;
                        if i >= args.events {
                            break;
                        }
                        let mut e = event(i, now, span, &mut rng);
                        e.timestamp =
                            now - span + ((i as i128 * span as i128) / args.events as i128) as i64;
                        store.record(&e).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let n = args.events - existing;
        println!(
            "ingest (AuditStore::record, 64 writers): {n} events in {secs:.1} s = {:.0} events/s ({:?})",
            n as f64 / secs,
            store.writer_stats()
        );

        // The importer (`gateway logs import`) on 100,000 CloudWatch lines.
        let mut rng = Rng(7);
        let mut text = String::new();
        for i in 0..100_000u64 {
            let e = event(10_000_000 + i, now, span, &mut rng);
            let line = serde_json::json!({
                "timestamp": now - span - DAY_MS + i as i64,
                "ingestionTime": now - span - DAY_MS + i as i64 + 500,
                "logStreamName": "2025/01/01/[$LATEST]abc",
                "logGroup": "/aws/lambda/golden-path",
                "message": serde_json::to_string(&e).unwrap(),
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
        // Into its own database, so the queries below run on exactly `--events` events.
        let import_store = SqliteAuditStore::open(&tmp.path().join("import.db")).unwrap();
        let started = Instant::now();
        let report = import_jsonl(
            &import_store,
            text.as_bytes(),
            &ImportOptions {
                log_group: "imported".into(),
                log_stream: "bench".into(),
            },
            |_| {},
        )
        .await
        .unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "ingest (logs import): {} events in {secs:.2} s = {:.0} events/s",
            report.imported,
            report.imported as f64 / secs
        );
    } else {
        println!("reusing {existing} events in {}", db.display());
    }
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!("database: {} MB", size / 1_000_000);

    let backend = SqliteInsights::new(&db);
    let last_24h = TimeRange {
        start_ms: now - DAY_MS,
        end_ms: now,
    };
    let queries = [
        (
            "every prompt by user X, last 24h (aim < 20 ms)",
            "filter userSub = \"user-042\" | fields @timestamp, requestId, feature, model, promptHash | sort @timestamp desc",
            last_24h,
        ),
        (
            "stats count(*) by bin(5m), all events (aim < 500 ms)",
            "stats count(*) by bin(5m)",
            TimeRange::all(),
        ),
        (
            "stats avg(latencyMs), pct(latencyMs, 99) by model, all events (aim < 1 s)",
            "stats avg(latencyMs), pct(latencyMs, 99) by model",
            TimeRange::all(),
        ),
        (
            "(JSON discovery) stats count(*) by policies.0, last 24h",
            "stats count(*) by policies.0",
            last_24h,
        ),
    ];
    for (name, q, range) in queries {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..args.rounds {
            let started = Instant::now();
            let res = backend
                .run(&QueryRequest::new(q, range), &CancelToken::new())
                .await
                .unwrap();
            times.push(started.elapsed());
            assert_eq!(res.status, QueryStatus::Complete);
            last = Some(res);
        }
        let res = last.unwrap();
        println!(
            "{name}: median {:.1} ms (min {:.1}, max {:.1}); {} rows, {} scanned, {} matched",
            median(times.clone()).as_secs_f64() * 1000.0,
            times.iter().min().unwrap().as_secs_f64() * 1000.0,
            times.iter().max().unwrap().as_secs_f64() * 1000.0,
            res.results.len(),
            res.statistics.records_scanned,
            res.statistics.records_matched,
        );
    }
}
