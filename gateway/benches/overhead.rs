//! What the gateway adds: the same load sent straight to a zero-latency OpenAI-compatible
//! upstream and through the `gateway` binary (JWT, throttle, guard in and out, audit event,
//! vault record), side by side, several rounds, medians reported.
//!
//! `cargo bench -p gateway --bench overhead -- [--rounds 5] [--secs 5] [--concurrency 16] [--rate 2000]`
//!
//! Two modes per round: closed loop at fixed concurrency (throughput) and open loop at a fixed
//! rate (latency at that rate, measured from each request's scheduled start so a stall is not
//! hidden).
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;

struct Args {
    rounds: usize,
    secs: u64,
    concurrency: usize,
    rate: u64,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 5,
        secs: 5,
        concurrency: 16,
        rate: 2000,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = || argv.get(i + 1).and_then(|v| v.parse().ok());
        match argv[i].as_str() {
            "--rounds" => a.rounds = next().unwrap_or(a.rounds as u64) as usize,
            "--secs" => a.secs = next().unwrap_or(a.secs),
            "--concurrency" => a.concurrency = next().unwrap_or(a.concurrency as u64) as usize,
            "--rate" => a.rate = next().unwrap_or(a.rate),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

const PROMPT: &str = "You are helping the support team. Summarise the customer's issue below in two sentences and \
propose a next step. Customer: Hello, I ordered a replacement router last week (order 88412-B) and it still has \
not arrived. Please write back to jane.doe@example.com or call me; my account was opened in 2019 and I have \
been a loyal customer. The tracking page says it left the warehouse on Monday but nothing since then.";

async fn upstream() -> String {
    use axum::routing::post;
    let body = json!({"id": "u", "object": "chat.completion", "created": 0, "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content":
            "The customer's replacement router has not arrived a week after ordering; tracking stopped after it left \
             the warehouse on Monday. Next step: open a carrier trace and reply to the customer with an update."},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 45, "total_tokens": 165}});
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

struct Target {
    url: String,
    token: Option<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn send(client: &reqwest::Client, t: &Target, body: &Value) -> bool {
    let mut req = client.post(&t.url).json(body);
    if let Some(tok) = &t.token {
        req = req.bearer_auth(tok);
    }
    match req.send().await {
        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

/// Closed loop: `concurrency` workers for `secs`; returns requests/s and errors.
async fn closed_loop(
    t: Arc<Target>,
    body: Arc<Value>,
    concurrency: usize,
    secs: u64,
) -> (f64, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (c, t, b) = (client.clone(), t.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut err) = (0u64, 0u64);
            while Instant::now() < end {
                if send(&c, &t, &b).await {
                    ok += 1
                } else {
                    err += 1
                }
            }
            (ok, err)
        }));
    }
    let (mut ok, mut err) = (0, 0);
    for task in tasks {
        let (o, e) = task.await.unwrap();
        ok += o;
        err += e;
    }
    (ok as f64 / started.elapsed().as_secs_f64(), err)
}

/// Open loop at `rate` requests/s for `secs`; latencies in ms from each scheduled start.
async fn open_loop(t: Arc<Target>, body: Arc<Value>, rate: u64, secs: u64) -> (Vec<f64>, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let total = rate * secs;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let limit = Arc::new(Semaphore::new(1024));
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(at).await;
        let permit = limit.clone().acquire_owned().await.unwrap();
        let (c, t, b) = (client.clone(), t.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let ok = send(&c, &t, &b).await;
            drop(permit);
            (at.elapsed().as_secs_f64() * 1000.0, ok)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for task in tasks {
        let (ms, ok) = task.await.unwrap();
        if ok { lat.push(ms) } else { errors += 1 }
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (lat, errors)
}

/// CPU seconds (user + system) the process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: indices 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let upstream_base = upstream().await;
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("bench.toml");
        std::fs::write(&config, format!(r#"
[features.bench]
clients = ["bench"]
models = ["up"]
guardrail = "default"
guardrail_version = "1"
throttle = {{ requests_per_minute = 100000000, burst = 100000000, tokens_per_minute = 100000000000, tokens_per_day = 100000000000 }}

[models.up]
provider = "openai"
base_url = "{upstream_base}"
model = "bench"
"#)).unwrap();
        let gateway = env!("CARGO_BIN_EXE_gateway");
        let env = [("GOLDEN_PATH_DATA_DIR", data.path().display().to_string()), ("GOLDEN_PATH_SERVER__LISTEN", "127.0.0.1:0".into()), ("RUST_LOG", "warn".into())];
        let token_out = Command::new(gateway).args(["token", "--sub", "bench-user", "--feature", "bench", "--ttl", "1d", "--config"]).arg(&config).envs(env.clone()).output().unwrap();
        assert!(token_out.status.success(), "{}", String::from_utf8_lossy(&token_out.stderr));
        let token = String::from_utf8(token_out.stdout).unwrap().trim().to_string();
        let mut child = Command::new(gateway).args(["serve", "--config"]).arg(&config).envs(env).stdout(Stdio::piped()).spawn().unwrap();
        let gateway_pid = child.id();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let gw_base = line.trim().strip_prefix("gateway listening on ").expect("announcement").to_string();

        let body = Arc::new(json!({"model": "up", "messages": [{"role": "user", "content": PROMPT}]}));
        let direct = Arc::new(Target { url: format!("{upstream_base}/chat/completions"), token: None });
        let through = Arc::new(Target { url: format!("{gw_base}/v1/chat/completions"), token: Some(token) });
        // Warm up both paths.
        closed_loop(direct.clone(), body.clone(), a.concurrency, 1).await;
        closed_loop(through.clone(), body.clone(), a.concurrency, 1).await;

        println!("gateway overhead: {} rounds × {} s, concurrency {}, open-loop rate {}/s", a.rounds, a.secs, a.concurrency, a.rate);
        println!("{:>5} | {:>10} {:>10} | {:>9} {:>9} {:>9} {:>9} | {:>6} | {:>10}", "round", "direct r/s", "gw r/s", "dir P50", "gw P50", "dir P99", "gw P99", "errors", "gw CPU/req");
        let (mut d_rps, mut g_rps, mut add50, mut add99, mut d99s, mut g99s, mut g50s, mut d50s) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let mut cpus = Vec::new();
        for round in 1..=a.rounds {
            let (dr, de) = closed_loop(direct.clone(), body.clone(), a.concurrency, a.secs).await;
            let cpu_before = cpu_seconds(gateway_pid);
            let (gr, ge) = closed_loop(through.clone(), body.clone(), a.concurrency, a.secs).await;
            let cpu_per_request_us = (cpu_seconds(gateway_pid) - cpu_before) / (gr * a.secs as f64) * 1e6;
            let (dl, dle) = open_loop(direct.clone(), body.clone(), a.rate, a.secs).await;
            let (gl, gle) = open_loop(through.clone(), body.clone(), a.rate, a.secs).await;
            let (d50, d99, g50, g99) = (percentile(&dl, 0.5), percentile(&dl, 0.99), percentile(&gl, 0.5), percentile(&gl, 0.99));
            println!("{round:>5} | {dr:>10.0} {gr:>10.0} | {d50:>7.3}ms {g50:>7.3}ms {d99:>7.3}ms {g99:>7.3}ms | {:>6} | {cpu_per_request_us:>6.0}µs", de + ge + dle + gle);
            cpus.push(cpu_per_request_us);
            d_rps.push(dr); g_rps.push(gr); add50.push(g50 - d50); add99.push(g99 - d99);
            d99s.push(d99); g99s.push(g99); d50s.push(d50); g50s.push(g50);
        }
        let (dr, gr) = (median(d_rps), median(g_rps));
        let cpu = median(cpus);
        println!("\nmedians over {} rounds:", a.rounds);
        println!("  throughput at concurrency {}: direct {dr:.0} req/s, through the gateway {gr:.0} req/s (ratio {:.2})", a.concurrency, gr / dr);
        println!("  at {} req/s: P50 direct {:.3} ms, gateway {:.3} ms; P99 direct {:.3} ms, gateway {:.3} ms",
            a.rate, median(d50s), median(g50s), median(d99s), median(g99s));
        println!("  gateway CPU per request (user + system, closed loop): {cpu:.0} µs");
        println!("  added latency at {} req/s: P50 +{:.3} ms, P99 +{:.3} ms", a.rate, median(add50), median(add99));
        let _ = child.kill();
        let _ = child.wait();
    });
}
