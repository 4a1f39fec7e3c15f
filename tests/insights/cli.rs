//! `gateway logs import` and `gateway insights` as an analyst runs them: a file with good and
//! bad lines, then queries in each output format, and errors that say where.

use std::process::{Command, Output};

use serde_json::Value;

fn gateway(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(e2e::binary("gateway"))
        .args(args)
        .current_dir(dir)
        .env_remove("GOLDEN_PATH_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run gateway")
}

#[test]
fn import_then_query_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let db = db.to_str().unwrap();
    let file = dir.path().join("export.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"timestamp":1735689600000,"requestId":"r1","userSub":"alice","latencyMs":120}"#,
            "\n",
            "this line is not json and holds SECRET-CONTENT\n",
            "\n",
            r#"{"timestamp":1735689660000,"ingestionTime":1735689661000,"logStreamName":"s1","logGroup":"/aws/gw","message":"{\"requestId\":\"r2\",\"userSub\":\"bob\",\"latencyMs\":80}"}"#,
            "\n",
            r#"{"timestamp":1735689720000,"message":"plain, text"}"#,
            "\n",
        ),
    )
    .unwrap();

    let out = gateway(
        &["logs", "import", file.to_str().unwrap(), "--db", db],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a rejected line makes the import fail"
    );
    assert!(stdout.contains("imported 3 events"), "{stdout}");
    assert!(stderr.contains("line 2: not valid JSON"), "{stderr}");
    assert!(!stderr.contains("SECRET-CONTENT"), "{stderr}");

    let range = ["--start", "1735689600", "--end", "2025-01-01T00:02:00Z"];
    let q = |query: &str, format: &str| {
        let mut args = vec!["insights", "--db", db, "--query", query, "--format", format];
        args.extend(range);
        gateway(&args, dir.path())
    };
    let out = q(
        "stats count(*) as n, avg(latencyMs) as a by @log | sort @log asc",
        "json",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "Complete");
    assert_eq!(json["statistics"]["recordsScanned"], 3.0);
    assert_eq!(
        json["results"],
        serde_json::json!([
            [{"field": "@log", "value": "/aws/gw"}, {"field": "n", "value": "1"}, {"field": "a", "value": "80"}],
            [{"field": "@log", "value": "imported"}, {"field": "n", "value": "2"}, {"field": "a", "value": "120"}],
        ])
    );

    let out = q("fields requestId, userSub | sort requestId asc", "csv");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "requestId,userSub\nr1,alice\nr2,bob\n\n"
            .trim_end_matches('\n')
            .to_string()
            + "\n,\n"
    );

    let out = q(
        "fields @timestamp, @message | sort @timestamp desc | limit 1",
        "table",
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("2025-01-01 00:02:00.000 | plain, text"),
        "{table}"
    );
    assert!(table.contains("1 rows;"), "{table}");

    let out = q("fields a\n| filter b =", "table");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2, column 13: expected an expression, found the end of the query"),
        "{stderr}"
    );
    let out = q("pattern @message", "table");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not supported on the embedded backend"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Nesting 10,000 deep (parentheses, `not`, unary minus, calls) used to overflow the stack and
/// abort the process; now it is a syntax error that says where, and the command exits with an
/// error, not a signal.
#[test]
fn deeply_nested_queries_are_a_syntax_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    std::fs::write(&db, b"").unwrap();
    let db = db.to_str().unwrap();
    let n = 10_000;
    for (query, column) in [
        (format!("filter {}a{}", "(".repeat(n), ")".repeat(n)), 28),
        (format!("filter {}a", "not ".repeat(n)), 84),
        (format!("fields {}1", "- ".repeat(n)), 46),
        (format!("fields {}1{}", "abs(".repeat(n), ")".repeat(n)), 88),
    ] {
        let out = gateway(
            &[
                "insights", "--db", db, "--query", &query, "--start", "0", "--end", "1",
            ],
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "line 1, column {column}: expected an expression nested at most 20 deep"
            )),
            "{}",
            &stderr[..stderr.len().min(500)]
        );
    }
}
