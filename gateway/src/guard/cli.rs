//! `gateway guard`: ApplyGuardrail from the command line.
//!
//! - `gateway guard --guardrail ID[:VERSION] --source input|output` reads one text from stdin
//!   and prints one ApplyGuardrail-shaped response (the registry in the data dir; VERSION
//!   defaults to DRAFT).
//! - `--jsonl`: one `{"text": ...}` object per input line, one response per output line, in
//!   order; a bad line yields `{"error": ...}` on its line and a non-zero exit at the end.
//! - `--policy FILE.json` instead of `--guardrail`: a CreateGuardrail-shaped document,
//!   compiled directly (nothing stored).
//! - `--full` asks for `outputScope: FULL`.
//! - `--issue-access-key` issues a SigV4 access key for the Bedrock-compatible API and prints
//!   `{"accessKeyId", "secretAccessKey"}` once (the secret is stored encrypted).
//!
//! Input is bounded: [`MAX_TEXT`] bytes for one text, [`MAX_LINE`] per JSONL line.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::engine::CompiledGuardrail;
use super::policy::GuardrailPolicy;
use super::{GuardrailRef, Source};
use crate::config::Config;

/// Largest text read from stdin (one text, not `--jsonl`).
pub const MAX_TEXT: usize = 8 << 20;
/// Largest `--jsonl` line.
pub const MAX_LINE: usize = 1 << 20;
/// Largest `--policy` file.
const MAX_POLICY: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceArg {
    Input,
    Output,
}

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// The guardrail, `ID` or `ID:VERSION` (default version DRAFT).
    #[arg(long, conflicts_with = "policy", required_unless_present_any = ["policy", "issue_access_key"])]
    pub guardrail: Option<String>,
    /// A CreateGuardrail-shaped JSON policy to apply instead of a stored guardrail.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Which side of the model the text is on.
    #[arg(long, value_enum, default_value = "input")]
    pub source: SourceArg,
    /// Read `{"text": ...}` per line; write one response per line.
    #[arg(long)]
    pub jsonl: bool,
    /// Report detect-only matches too (`outputScope: FULL`).
    #[arg(long)]
    pub full: bool,
    /// Issue an access key for the Bedrock-compatible API and print it.
    #[arg(long, conflicts_with_all = ["guardrail", "policy", "jsonl"])]
    pub issue_access_key: bool,
}

fn load_policy(path: &std::path::Path) -> anyhow::Result<GuardrailPolicy> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_POLICY {
        bail!(
            "{}: policy file larger than {MAX_POLICY} bytes",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("tags");
        o.remove("clientRequestToken");
    }
    serde_json::from_value(v)
        .with_context(|| format!("{}: not a CreateGuardrail document", path.display()))
}

/// Run the command; output goes to `out`.
pub fn run(
    config: &Config,
    args: &GuardArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if args.issue_access_key {
        crate::secret_file::private_dir(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let registry = super::registry::open_seeded(config).map_err(anyhow::Error::msg)?;
        let key = registry
            .create_access_key()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        writeln!(
            out,
            "{}",
            json!({"accessKeyId": key.access_key_id, "secretAccessKey": key.secret_access_key.as_str()})
        )?;
        return Ok(());
    }
    let compiled: Arc<CompiledGuardrail> = match (&args.policy, &args.guardrail) {
        (Some(path), _) => {
            let policy = load_policy(path)?;
            Arc::new(CompiledGuardrail::from_policy("policy", &policy).map_err(anyhow::Error::msg)?)
        }
        (None, Some(spec)) => {
            let (id, version) = spec.split_once(':').unwrap_or((spec.as_str(), "DRAFT"));
            crate::secret_file::private_dir(&config.data_dir)
                .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
            let registry = super::registry::open_seeded(config).map_err(anyhow::Error::msg)?;
            registry
                .compiled(&GuardrailRef {
                    id: id.to_string(),
                    version: version.to_string(),
                })
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
        (None, None) => bail!("give --guardrail ID[:VERSION] or --policy FILE.json"),
    };
    let source = match args.source {
        SourceArg::Input => Source::Input,
        SourceArg::Output => Source::Output,
    };
    if !args.jsonl {
        let mut buf = Vec::new();
        input.take(MAX_TEXT as u64 + 1).read_to_end(&mut buf)?;
        if buf.len() > MAX_TEXT {
            bail!("input larger than {MAX_TEXT} bytes");
        }
        let text = String::from_utf8(buf).context("input is not UTF-8")?;
        let r = compiled.assess(source, &[(text.as_str(), true)], args.full);
        writeln!(out, "{r}")?;
        return Ok(());
    }
    let mut bad = 0usize;
    let mut line = Vec::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = input
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        n += 1;
        if line.len() > MAX_LINE && !line.ends_with(b"\n") {
            // Skip the rest of the oversized line.
            let mut sink = Vec::new();
            input.read_until(b'\n', &mut sink)?;
            bad += 1;
            writeln!(
                out,
                "{}",
                json!({"error": format!("line {n}: longer than {MAX_LINE} bytes")})
            )?;
            continue;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let parsed: Result<Value, _> = serde_json::from_slice(trimmed);
        match parsed
            .ok()
            .as_ref()
            .and_then(|v| v.get("text"))
            .and_then(Value::as_str)
        {
            Some(text) => {
                let r = compiled.assess(source, &[(text, true)], args.full);
                writeln!(out, "{r}")?;
            }
            None => {
                bad += 1;
                writeln!(
                    out,
                    "{}",
                    json!({"error": format!("line {n}: expected {{\"text\": string}}")})
                )?;
            }
        }
    }
    out.flush()?;
    if bad > 0 {
        bail!("{bad} input line(s) were not {{\"text\": string}} objects");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_and_policy_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            serde_json::to_string(&GuardrailPolicy::default_policy()).unwrap(),
        )
        .unwrap();
        let config = Config::default();
        let args = GuardArgs {
            guardrail: None,
            policy: Some(path),
            source: SourceArg::Input,
            jsonl: true,
            full: false,
            issue_access_key: false,
        };
        let mut input: &[u8] = b"{\"text\": \"mail a@b.com\"}\n\nnot json\n{\"text\": \"hello\"}\n";
        let mut out = Vec::new();
        let r = run(&config, &args, &mut input, &mut out);
        assert!(r.is_err());
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["outputs"][0]["text"], "mail {EMAIL}");
        assert!(lines[1]["error"].as_str().unwrap().contains("line 3"));
        assert_eq!(lines[2]["action"], "NONE");
    }
}
