//! The `gateway` command line: `serve`, `token`, `config check`, `vault open`, `insights`,
//! `logs import`, `guard`. Every command exits non-zero with a one-line message on bad input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::audit::AccessEvent;
use crate::auth::issuer::{LocalIssuer, MintRequest};
use crate::config::{Config, ENV_CONFIG_FILE};
use crate::state::AppState;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "Golden Path: the one sanctioned way to call a foundation model"
)]
struct Cli {
    /// Configuration file (TOML). Without one, the embedded default runs with data in ./data.
    #[arg(long, global = true, env = ENV_CONFIG_FILE)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway (POST /v1/chat/completions, GET /v1/models, /healthz, /readyz).
    Serve,
    /// Mint a token from the embedded issuer, for local use.
    Token(TokenArgs),
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Prompt vault commands.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Run a Logs Insights query over the audit store.
    Insights(crate::insights::command::InsightsArgs),
    /// Log commands (`logs import FILE.jsonl`).
    #[command(subcommand)]
    Logs(crate::insights::command::LogsCommand),
    /// Apply a guardrail to stdin (ApplyGuardrail-shaped output), or issue an API access key.
    Guard(crate::guard::cli::GuardArgs),
}

#[derive(Args)]
struct TokenArgs {
    /// The user the token is for (becomes `userSub`).
    #[arg(long)]
    sub: String,
    /// The feature whose app client the token is issued to.
    #[arg(long, default_value = "default")]
    feature: String,
    /// Lifetime: seconds, or with a unit: 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load and validate the configuration; print a summary.
    Check,
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Decrypt one request's record, recording who opened it and why.
    Open {
        request_id: String,
        /// Why you are opening it (recorded before the record is shown).
        #[arg(long)]
        reason: String,
        /// Who is opening it (default: cli:<login user>).
        #[arg(long)]
        actor: Option<String>,
    },
}

/// Parse `90`, `90s`, `15m`, `1h`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 15m, 1h or 7d"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("{text:?} is not a duration like 90s, 15m, 1h or 7d"))?;
    Ok(Duration::from_secs(secs))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// JSON logs to stderr, level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Token(args) => token(&config, &args),
        Command::Config(ConfigCommand::Check) => {
            println!("{}", summary(&config));
            Ok(())
        }
        Command::Vault(VaultCommand::Open {
            request_id,
            reason,
            actor,
        }) => vault_open(config, &request_id, &reason, actor).await,
        Command::Insights(args) => crate::insights::command::insights(&config, &args).await,
        Command::Logs(cmd) => crate::insights::command::logs(&config, &cmd).await,
        Command::Guard(args) => {
            let stdin = std::io::stdin();
            crate::guard::cli::run(
                &config,
                &args,
                &mut stdin.lock(),
                &mut std::io::stdout().lock(),
            )
        }
    }
}

fn summary(config: &Config) -> String {
    let mut out = format!(
        "configuration OK\n  backend: {:?}\n  data_dir: {}\n  listen: {}\n  issuer: {}{}\n",
        config.backend,
        config.data_dir.display(),
        config.server.listen,
        config.auth.issuer,
        if config.auth.jwks_url.is_none() {
            " (embedded)"
        } else {
            ""
        },
    );
    for (name, f) in &config.features {
        out.push_str(&format!(
            "  feature {name}: clients {:?}, models {:?}, guardrail {}:{}, {} req/min (burst {}), {} tokens/min, {} tokens/day\n",
            f.clients,
            f.models,
            f.guardrail,
            f.guardrail_version,
            f.throttle.requests_per_minute,
            f.throttle.burst,
            f.throttle.tokens_per_minute,
            f.throttle.tokens_per_day
        ));
    }
    out.trim_end().to_string()
}

/// Start the gateway: bind, announce the address on stdout, serve until SIGTERM/ctrl-c.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen.clone();
    let state = AppState::build(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    spawn_background_tasks(&state);
    println!("gateway listening on http://{addr}");
    crate::router::serve_with_shutdown(state, listener, shutdown_signal()).await
}

/// What every process serving the gateway runs beside its listeners: `gateway serve` and the
/// `server` binary (console + gateway) both call this once the state is built. Today that is
/// the vault retention sweep.
pub fn spawn_background_tasks(state: &AppState) {
    spawn_vault_sweeper(state);
}

/// Delete vault records past retention now and every hour. Deleting late is harmless (opening
/// an expired record is refused regardless), so this may run in the background.
fn spawn_vault_sweeper(state: &AppState) {
    let vault = state.vault.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match vault.sweep_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "vault records past retention deleted"),
                Err(e) => tracing::error!(error = %e, "vault retention sweep failed"),
            }
        }
    });
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn token(config: &Config, args: &TokenArgs) -> anyhow::Result<()> {
    if config.auth.jwks_url.is_some() {
        anyhow::bail!("auth.jwks_url is set: tokens come from that issuer, not the embedded one");
    }
    if args.sub.trim().is_empty() || args.sub.len() > 256 {
        anyhow::bail!("--sub must be 1 to 256 characters");
    }
    let feature = config.features.get(&args.feature).with_context(|| {
        let known: Vec<&String> = config.features.keys().collect();
        format!(
            "no feature {:?}; configured features: {known:?}",
            args.feature
        )
    })?;
    let client_id = feature
        .clients
        .first()
        .context("feature has no app client")?;
    let issuer = LocalIssuer::load_or_create(&config.data_dir, &config.auth.issuer)?;
    let token = issuer.mint(&MintRequest {
        sub: args.sub.clone(),
        client_id: client_id.clone(),
        ttl_secs: args.ttl.as_secs(),
    })?;
    println!("{token}");
    Ok(())
}

async fn vault_open(
    config: Config,
    request_id: &str,
    reason: &str,
    actor: Option<String>,
) -> anyhow::Result<()> {
    let reason = reason.trim();
    if reason.len() < 4 || reason.len() > 1000 {
        anyhow::bail!("--reason must say why, in 4 to 1000 characters");
    }
    let actor = actor.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let state = AppState::build(config).await?;
    let event = state
        .audit
        .find(request_id)
        .await?
        .with_context(|| format!("no request {request_id:?} in the audit store"))?;
    let vault_key = event
        .vault_key
        .with_context(|| format!("request {request_id:?} has no vault record (it was refused before the prompt was processed)"))?;
    state
        .audit
        .record_access(&AccessEvent {
            timestamp: crate::now_ms(),
            actor,
            request_id: request_id.to_string(),
            vault_key: vault_key.clone(),
            reason: reason.to_string(),
            origin: "cli".into(),
        })
        .await?;
    let record = state.vault.open(&vault_key).await?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
