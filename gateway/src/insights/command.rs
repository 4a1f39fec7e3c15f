//! The `gateway insights` and `gateway logs import` commands: arguments and what they do.
//! `cli.rs` only routes to them.

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::import::{ImportOptions, import_jsonl};
use super::output::{Format, render};
use super::{CancelToken, QueryRequest, QueryStatus, TimeRange};
use crate::audit::sqlite::SqliteAuditStore;
use crate::config::{Backend, Config};

#[derive(Args, Debug)]
pub struct InsightsArgs {
    /// The Logs Insights query, e.g. 'filter userSub = "alice" | stats count(*) by bin(1h)'.
    #[arg(long)]
    pub query: String,
    /// Events of the last period: 90s, 15m, 24h, 7d (default 24h).
    #[arg(long, value_parser = crate::cli::parse_duration, conflicts_with_all = ["start", "end"])]
    pub since: Option<Duration>,
    /// Range start, inclusive: epoch seconds or RFC 3339 (2025-01-31T12:00:00Z).
    #[arg(long, requires = "end")]
    pub start: Option<String>,
    /// Range end, inclusive: epoch seconds (the whole second) or RFC 3339.
    #[arg(long, requires = "start")]
    pub end: Option<String>,
    /// table, json (GetQueryResults' shape) or csv.
    #[arg(long, default_value = "table", value_parser = parse_format)]
    pub format: Format,
    /// Rows to return at most (default 10000, at most 100000).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Give up after this long (default 15m).
    #[arg(long, value_parser = crate::cli::parse_duration)]
    pub timeout: Option<Duration>,
    /// The audit database (default: <data_dir>/audit.db). With backend = "aws" queries run on
    /// CloudWatch Logs Insights over [aws] log_group instead.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Print the events scanned so far on stderr while the query runs (default: when stderr
    /// is a terminal).
    #[arg(long)]
    pub progress: bool,
}

#[derive(Subcommand, Debug)]
pub enum LogsCommand {
    /// Import a JSON-lines export (audit events, or CloudWatch GetLogEvents/FilterLogEvents
    /// events) for offline investigation with `gateway insights`.
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file, one JSON object per line.
    pub file: PathBuf,
    /// `@log` for lines that name no logGroup.
    #[arg(long, default_value = "imported")]
    pub log_group: String,
    /// `@logStream` for lines that name no stream (default: the file name).
    #[arg(long)]
    pub log_stream: Option<String>,
    /// The audit database (default: <data_dir>/audit.db).
    #[arg(long)]
    pub db: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn db_path(config: &Config, db: Option<&Path>) -> PathBuf {
    db.map_or_else(|| config.data_dir.join("audit.db"), Path::to_path_buf)
}

/// Epoch seconds or RFC 3339 to ms; `end` covers a whole second given in epoch seconds.
fn parse_instant(text: &str, end: bool) -> anyhow::Result<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = text.parse().context("time out of range")?;
        let ms = secs.saturating_mul(1000);
        return Ok(if end { ms.saturating_add(999) } else { ms });
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!("{text:?} is not epoch seconds or an RFC 3339 time like 2025-01-31T12:00:00Z")
        })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// `gateway insights`.
pub async fn insights(config: &Config, args: &InsightsArgs) -> anyhow::Result<()> {
    let range = match (&args.start, &args.end) {
        (Some(s), Some(e)) => TimeRange {
            start_ms: parse_instant(s, false)?,
            end_ms: parse_instant(e, true)?,
        },
        _ => {
            let since = args.since.unwrap_or(Duration::from_secs(86_400));
            let now = crate::now_ms();
            TimeRange {
                start_ms: now.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX)),
                end_ms: now,
            }
        }
    };
    let path = db_path(config, args.db.as_deref());
    match config.backend {
        Backend::Aws if args.db.is_some() => anyhow::bail!(
            "--db names an embedded audit database; with backend = \"aws\" queries run on \
             CloudWatch Logs Insights"
        ),
        Backend::Aws => {}
        Backend::Embedded if !path.exists() => {
            anyhow::bail!("no audit database at {}", path.display())
        }
        Backend::Embedded => {}
    }
    let backend = crate::aws::insights::backend_for(config, &path);
    let request = QueryRequest {
        query: args.query.clone(),
        range,
        limit: args.limit,
        timeout: args.timeout,
    };
    let cancel = CancelToken::new();
    let run = backend.run(&request, &cancel);
    tokio::pin!(run);
    let show_progress = args.progress || std::io::stderr().is_terminal();
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let mut shown = 0;
    let results = loop {
        tokio::select! {
            r = &mut run => break r?,
            _ = tokio::signal::ctrl_c(), if !cancel.is_cancelled() => cancel.cancel(),
            _ = ticker.tick(), if show_progress => {
                let scanned = cancel.scanned();
                if scanned != shown {
                    eprintln!("insights: {scanned} events scanned so far");
                    shown = scanned;
                }
            }
        }
    };
    match results.status {
        QueryStatus::Complete => {
            let mut out = std::io::stdout().lock();
            out.write_all(render(&results, args.format).as_bytes())?;
            out.flush()?;
            Ok(())
        }
        status => anyhow::bail!(
            "query ended with status {status:?} after scanning {} events",
            results.statistics.records_scanned
        ),
    }
}

/// `gateway logs …`.
pub async fn logs(config: &Config, command: &LogsCommand) -> anyhow::Result<()> {
    let LogsCommand::Import(args) = command;
    let path = db_path(config, args.db.as_deref());
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let store = SqliteAuditStore::open(&path).context("audit store")?;
    let opts = ImportOptions {
        log_group: args.log_group.clone(),
        log_stream: args.log_stream.clone().unwrap_or_else(|| {
            args.file
                .file_name()
                .map_or_else(|| "imported".into(), |n| n.to_string_lossy().into_owned())
        }),
    };
    let started = std::time::Instant::now();
    let show_progress = total > 8 * 1024 * 1024 || std::io::stderr().is_terminal();
    let report = import_jsonl(
        &store,
        BufReader::with_capacity(1 << 20, file),
        &opts,
        |p| {
            if show_progress {
                let pct = (p.bytes * 100).checked_div(total).unwrap_or(100);
                eprintln!(
                    "import: {} lines read ({pct}%), {} events imported",
                    p.lines, p.imported
                );
            }
        },
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} events from {} into {} in {secs:.1} s ({} lines, {} blank, {} rejected)",
        report.imported,
        args.file.display(),
        path.display(),
        report.lines,
        report.blank,
        report.rejected
    );
    if report.rejected > 0 {
        for (line, reason) in report.reasons.iter().take(50) {
            eprintln!("line {line}: {reason}");
        }
        let shown = report.reasons.len().min(50) as u64;
        if report.rejected > shown {
            eprintln!("… and {} more rejected lines", report.rejected - shown);
        }
        anyhow::bail!(
            "{} of {} lines were rejected (the others were imported)",
            report.rejected,
            report.lines
        );
    }
    Ok(())
}
