//! Conformance: `reference.py` writes a seeded corpus (audit events recorded through the
//! audit store, CloudWatch events imported as an analyst would) and ≥ 40 queries with their
//! expected rows, computed in Python without the engine; every query must give those rows.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

use gateway::audit::sqlite::SqliteAuditStore;
use gateway::audit::{AuditEvent, AuditStore};
use gateway::insights::import::{ImportOptions, import_jsonl};
use gateway::insights::store::SqliteInsights;
use gateway::insights::{CancelToken, InsightsBackend, QueryRequest, QueryStatus, TimeRange};
use serde_json::Value;

/// The venv's Python if `scripts/setup.sh` made one, else `python3` (stdlib only is needed).
pub fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-test/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Run the reference into `dir`.
pub fn generate(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("insights/reference.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(dir)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Load the corpus: audit events through `AuditStore::record`, CloudWatch events through
/// the importer.
pub async fn load(dir: &Path) -> PathBuf {
    let db = dir.join("audit.db");
    let store = SqliteAuditStore::open(&db).unwrap();
    let file = std::fs::File::open(dir.join("audit.jsonl")).unwrap();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.unwrap();
        let event: AuditEvent = serde_json::from_str(&line).unwrap();
        // `@message` of a recorded event is its JSON as the store writes it: the reference
        // must have written the very same text.
        assert_eq!(serde_json::to_string(&event).unwrap(), line);
        store.record(&event).await.unwrap();
    }
    let file = std::fs::File::open(dir.join("cloudwatch.jsonl")).unwrap();
    let report = import_jsonl(
        &store,
        std::io::BufReader::new(file),
        &ImportOptions {
            log_group: "imported".into(),
            log_stream: "cloudwatch.jsonl".into(),
        },
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.rejected, 0, "{:?}", report.reasons);
    db
}

fn row_map(row: &Value) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = row
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["value"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(f, _)| f != "@ptr")
        .collect();
    fields.sort();
    fields
}

fn same_value(field: &str, approx: &[String], want: &str, got: &str) -> bool {
    if want == got {
        return true;
    }
    if approx.iter().any(|a| a == field)
        && let (Ok(w), Ok(g)) = (want.parse::<f64>(), got.parse::<f64>())
    {
        return (w - g).abs() <= 1e-9 * w.abs().max(1.0);
    }
    false
}

fn same_row(approx: &[String], want: &[(String, String)], got: &[(String, String)]) -> bool {
    want.len() == got.len()
        && want
            .iter()
            .zip(got)
            .all(|((wf, wv), (gf, gv))| wf == gf && same_value(wf, approx, wv, gv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_matches_the_reference_on_every_case() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let db = load(dir.path()).await;
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cases.json")).unwrap())
            .unwrap();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let backend = SqliteInsights::new(&db);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let query = case["query"].as_str().unwrap();
        let range = match (case["start"].as_i64(), case["end"].as_i64()) {
            (Some(s), Some(e)) => TimeRange::from_secs(s, e),
            _ => TimeRange::all(),
        };
        let approx: Vec<String> = case["approx"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let result = match backend
            .run(&QueryRequest::new(query, range), &CancelToken::new())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: {query}\n  error: {e}"));
                continue;
            }
        };
        assert_eq!(result.status, QueryStatus::Complete);
        let got: Vec<Vec<(String, String)>> = result
            .results
            .iter()
            .map(|r| row_map(&serde_json::to_value(r).unwrap()))
            .collect();
        let want: Vec<Vec<(String, String)>> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(row_map)
            .collect();
        let ok = if case["ordered"].as_bool().unwrap() {
            want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| same_row(&approx, w, g))
        } else {
            let mut remaining = got.clone();
            want.len() == got.len()
                && want.iter().all(|w| {
                    match remaining.iter().position(|g| same_row(&approx, w, g)) {
                        Some(i) => {
                            remaining.swap_remove(i);
                            true
                        }
                        None => false,
                    }
                })
        };
        if !ok {
            let show = |rows: &[Vec<(String, String)>]| {
                rows.iter()
                    .take(6)
                    .map(|r| format!("    {r:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            failures.push(format!(
                "{name}: {query}\n  want {} rows:\n{}\n  got {} rows:\n{}",
                want.len(),
                show(&want),
                got.len(),
                show(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
