//! Console page time and bundle size: fills an audit store with N events (default 1,000,000,
//! a direct SQLite bulk insert into the gateway's own schema), then measures every console
//! page's server-rendered time to first byte through the real router (no socket: the time is
//! the server's own), as medians over rounds, and the wasm bundle's size raw, gzip'd and
//! zstd'd (target/site/pkg after `scripts/build-site.sh [--release]`; the bench names the file
//! and the profile it was built with, and stops at once when there is none). It also prints
//! SQLite's plans for the overview's rollup reads. Every page must answer 200.
//!
//! `cargo bench -p server --bench pages -- [--events 1000000] [--rounds 15]`
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "bench"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Request, StatusCode};
use gateway::audit::sqlite::SqliteAuditStore;
use gateway::insights::store::SqliteInsights;
use gateway::vault::Vault;
use http_body_util::BodyExt;
use leptos_config::LeptosOptions;
use tower::ServiceExt;

use app::accounts::password::HashCost;
use app::accounts::{Accounts, Role};
use app::context::Console;
use app::soc::Soc;

const CHEAP: HashCost = HashCost {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// Bulk insert `n` events over the last 7 days into `audit.db` (schema from the store).
fn seed(path: &Path, n: u64, now: i64) -> Duration {
    let started = Instant::now();
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO audit_events (timestamp, request_id, user_sub, feature, model,
                 model_alias, prompt_hash, latency_ms, model_latency_ms, guardrail_id,
                 guardrail_version, guardrail_action, input_action, output_action, policies,
                 input_tokens, output_tokens, status, stream, vault_key, source_ip, user_agent,
                 event_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'default', '1', ?10, ?11, 'NONE',
                 ?12, ?13, ?14, 200, 0, NULL, '10.0.0.1', 'bench', ?15)",
            )
            .unwrap();
        let span = 7 * 86_400_000i64;
        for i in 0..n {
            let i = i as i64;
            let ts = now - span + i * span / n as i64;
            let user = format!("user-{}@example.com", i % 1000);
            let feature = ["default", "search", "support"][(i % 3) as usize];
            let model = ["dev", "llama"][(i % 2) as usize];
            let intervened = i % 10 == 0;
            let action = if intervened { "INTERVENED" } else { "NONE" };
            let input = if intervened { "ANONYMIZED" } else { "NONE" };
            let policies = if intervened { r#"["pii:EMAIL"]"# } else { "[]" };
            let rid = format!("req-{i:08}");
            let latency = 20 + i % 400;
            let json = format!(
                r#"{{"timestamp":{ts},"requestId":"{rid}","userSub":"{user}","feature":"{feature}","model":"{model}","latencyMs":{latency},"guardrailAction":"{action}","status":200}}"#
            );
            stmt.execute(rusqlite::params![
                ts,
                rid,
                user,
                feature,
                model,
                model,
                "hmac-sha256:00",
                latency,
                latency / 2,
                action,
                input,
                policies,
                100 + i % 50,
                200 + i % 80,
                json
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("ANALYZE").unwrap();
    started.elapsed()
}

fn explain_overview(path: &Path, now: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let minute = now.div_euclid(60_000);
    let queries = [
        (
            "per-minute rollup (minutes, features, latency histogram)",
            format!(
                "SELECT * FROM audit_minutes WHERE minute >= {} AND minute < {}",
                minute - 1440,
                minute
            ),
        ),
        (
            "top policies",
            format!(
                "SELECT policy, SUM(hits) AS n FROM audit_minute_policies WHERE minute >= {}
                 AND minute < {} GROUP BY policy ORDER BY n DESC LIMIT 8",
                minute - 1440,
                minute
            ),
        ),
    ];
    for (what, sql) in queries {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        println!("overview {what}: plan");
        for r in rows {
            println!("  {}", r.unwrap());
        }
    }
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_minutes WHERE minute >= ?1",
            [minute - 1440],
            |r| r.get(0),
        )
        .unwrap();
    println!("overview 24h reads {rows} rollup rows (minute x feature)");
}

async fn sign_in(router: &Router, name: &str, password: &str) -> String {
    let req = Request::post("/api/login")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "text/html")
        .body(Body::from(format!("name={name}&password={password}")))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "sign-in as {name}");
    let cookie = res.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// Time to the first body byte of `GET path`, and the status.
async fn ttfb(router: &Router, path: &str, cookie: Option<&str>) -> (Duration, StatusCode) {
    let mut req = Request::get(path).header(ACCEPT, "text/html");
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    let req = req.body(Body::empty()).unwrap();
    let started = Instant::now();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let mut body = res.into_body();
    let _ = body.frame().await;
    let t = started.elapsed();
    while body.frame().await.is_some() {}
    (t, status)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn compressed(file: &Path, cmd: &str, args: &[&str]) -> Option<u64> {
    let out = Command::new(cmd).args(args).arg(file).output().ok()?;
    out.status.success().then_some(out.stdout.len() as u64)
}

/// The console's wasm bundle as the server would serve it, and what built it.
struct Bundle {
    path: PathBuf,
    raw: u64,
    /// `wasm-release` or `debug`: the profile whose `app.wasm` was built last before the bundle.
    profile: String,
}

/// Find the bundle in `target/site/pkg` or stop the bench with a clear message: its size is
/// half of what this bench reports.
fn bundle(root: &Path) -> Bundle {
    let path = root.join("target/site/pkg/console_bg.wasm");
    let Ok(meta) = std::fs::metadata(&path) else {
        eprintln!(
            "pages bench: no wasm bundle at {} — build it first: scripts/build-site.sh --release",
            path.display()
        );
        std::process::exit(2);
    };
    let built = meta.modified().ok();
    // The newest profile's app.wasm that is not newer than the bundle built from it.
    let profile = ["wasm-release", "debug"]
        .into_iter()
        .filter_map(|p| {
            let m =
                std::fs::metadata(root.join(format!("target/wasm32-unknown-unknown/{p}/app.wasm")))
                    .ok()?
                    .modified()
                    .ok()?;
            (built.is_none_or(|b| m <= b)).then_some((m, p))
        })
        .max()
        .map_or_else(|| "unknown".to_string(), |(_, p)| p.to_string());
    Bundle {
        path,
        raw: meta.len(),
        profile,
    }
}

fn wasm_sizes(bundle: &Bundle) {
    let kb = |n: u64| format!("{:.0} KB", n as f64 / 1000.0);
    let gz = compressed(&bundle.path, "gzip", &["-9", "-c"]);
    let zst = compressed(&bundle.path, "zstd", &["-19", "-c", "-q"]);
    println!(
        "wasm bundle {} (profile {}): raw {}, gzip -9 {}, zstd -19 {} (aim: compressed < 1 MB)",
        bundle.path.display(),
        bundle.profile,
        kb(bundle.raw),
        gz.map_or("n/a".into(), kb),
        zst.map_or("n/a".into(), kb),
    );
    if bundle.profile != "wasm-release" {
        println!(
            "  (not a release bundle: scripts/build-site.sh --release builds the shipped one)"
        );
    }
}

#[tokio::main]
async fn main() {
    let events = arg("--events", 1_000_000);
    let rounds = arg("--rounds", 15) as usize;
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Checked first: no point seeding a million events to then find no bundle to measure.
    let bundle = bundle(&root);
    println!(
        "wasm bundle to measure: {} (profile {})",
        bundle.path.display(),
        bundle.profile
    );
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.db");
    let audit = Arc::new(SqliteAuditStore::open(&audit_path).unwrap());
    let now = gateway::now_ms();
    let took = seed(&audit_path, events, now);
    println!(
        "seeded {events} events in {:.1} s ({:.0} events/s)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    explain_overview(&audit_path, now);

    let accounts = Accounts::open_with_cost(&dir.path().join("console.db"), CHEAP).unwrap();
    let admin_password = accounts.ensure_admin(now).await.unwrap().unwrap();
    accounts
        .create_user("analyst", "analyst-password-1", Role::Soc, now)
        .await
        .unwrap();
    let options = LeptosOptions::builder()
        .output_name("console")
        .site_root(root.join("target/site").to_string_lossy().into_owned())
        .build();
    let vault = Vault::embedded(dir.path(), 90).unwrap();
    let router = server::console::router(
        options,
        Console {
            accounts,
            audit,
            soc: Some(Soc::new(Arc::new(SqliteInsights::new(&audit_path)), vault)),
        },
    );
    let admin = sign_in(&router, "admin", &admin_password).await;
    let soc = sign_in(&router, "analyst", "analyst-password-1").await;

    // A finished "every prompt by user" run to render.
    let start = Request::post("/api/insights_start")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "text/html")
        .header(COOKIE, &soc)
        .body(Body::from(
            "preset=prompts-by-user&user=user-7%40example.com&range=24h",
        ))
        .unwrap();
    let res = router.clone().oneshot(start).await.unwrap();
    let run_url = res
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .expect("insights_start redirects");
    let user = "user-7%40example.com";
    let pages: Vec<(&str, String, Option<&str>)> = vec![
        ("login", "/login".into(), None),
        ("overview 1h", "/".into(), Some(&admin)),
        ("overview 24h", "/?range=24h".into(), Some(&admin)),
        ("insights (empty)", "/insights".into(), Some(&soc)),
        (
            "insights (syntax error)",
            "/insights?query=fields%20a%0A%7C%20filter%20(&range=1h".into(),
            Some(&soc),
        ),
        ("insights (finished run)", run_url, Some(&soc)),
        (
            "investigate 24h",
            format!("/investigate?user={user}&range=24h"),
            Some(&soc),
        ),
        (
            "investigate 7d",
            format!("/investigate?user={user}&range=7d"),
            Some(&soc),
        ),
        ("guardrails", "/guardrails".into(), Some(&admin)),
        ("features", "/features".into(), Some(&admin)),
        ("accounts", "/admin/accounts".into(), Some(&admin)),
        ("audit", "/audit".into(), Some(&admin)),
    ];
    println!("\npage TTFB with {events} audit events, median of {rounds} rounds (2 warm-up):");
    println!(
        "{:<28} {:>6} {:>10} {:>10}",
        "page", "status", "median", "max"
    );
    for (label, path, cookie) in &pages {
        let mut times = Vec::new();
        let mut status = StatusCode::OK;
        for round in 0..rounds + 2 {
            let (t, s) = ttfb(&router, path, *cookie).await;
            status = s;
            if round >= 2 {
                times.push(t);
            }
        }
        assert_eq!(status, StatusCode::OK, "{label} ({path}) answered {status}");
        let max = times.iter().max().copied().unwrap_or_default();
        let med = median(times);
        let flag = if med > Duration::from_millis(50) {
            "  > 50 ms"
        } else {
            ""
        };
        println!(
            "{label:<28} {:>6} {:>8.1}ms {:>8.1}ms{flag}",
            status.as_u16(),
            med.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        );
    }
    println!();
    wasm_sizes(&bundle);
}
