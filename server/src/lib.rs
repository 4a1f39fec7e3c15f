//! The console server: loads the gateway configuration and the console's site settings, builds
//! the gateway state once, and serves both the gateway (on `server.listen`) and the console (on
//! the site address) from one process until SIGTERM or ctrl-c.
//!
//! - [`site`] finds and reads `Leptos.toml` (site root, address, output name).
//! - [`console`] is the console's axum router: Leptos pages, server functions, static files,
//!   the session gate and the security headers.
//!
//! Stdout carries only the lines scripts parse: the one-time admin password (first run) and the
//! two `… listening on http://ADDR` lines. Logs go to stderr.

// The console's page types nest deeply (Leptos views are types); the default limit of 128 is
// not enough for the Insights page.
#![recursion_limit = "256"]

pub mod console;
pub mod oidc;
pub mod site;

use std::path::PathBuf;

use anyhow::Context;
use app::accounts::Accounts;
use app::context::Console;
use app::soc::Soc;
use gateway::config::{Backend, Config, ENV_CONFIG_FILE};
use gateway::state::AppState;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Command line of the `server` binary.
#[derive(Debug, clap::Parser)]
#[command(
    name = "server",
    version,
    about = "Golden Path console, with the gateway in the same process"
)]
pub struct Args {
    /// Gateway configuration file (TOML). Without one, the embedded default runs with data in
    /// ./data. The console's site settings come from Leptos.toml (see GOLDEN_PATH_LEPTOS_TOML).
    #[arg(long, env = ENV_CONFIG_FILE)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the `server` binary does instead of serving.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a console admin (or make an existing user an enabled admin) with a generated
    /// password, printed once on stdout; the user's sessions are ended.
    CreateAdmin {
        /// The user name: 1-64 letters, digits, '.', '_', '-', '@'.
        #[arg(long)]
        name: String,
    },
}

/// `server create-admin --name N`: prints `console admin password for N (shown once): …`.
pub async fn create_admin(config: Option<&std::path::Path>, name: &str) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    gateway::secret_file::private_dir(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let accounts = open_accounts(&config).await?;
    let password = accounts
        .create_admin(name, gateway::now_ms())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let event = app::accounts::events::ConsoleEvent {
        at_ms: gateway::now_ms(),
        actor: "cli:create-admin".into(),
        kind: "account.create".into(),
        target: name.to_string(),
        detail: "made an enabled admin with a new password (server create-admin)".into(),
        client: "local".into(),
    };
    accounts
        .record_event(event)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("console admin password for {name} (shown once): {password}");
    Ok(())
}

/// The console's accounts (`<data_dir>/console.db`). On `backend = "aws"` the console's audit
/// trail goes to CloudWatch Logs (the audit log group, stream `<log_stream>-console`) so it
/// outlives the container; users and sessions stay in `console.db` (sign-in there is OIDC).
async fn open_accounts(config: &Config) -> anyhow::Result<Accounts> {
    let console_db = config.data_dir.join("console.db");
    let accounts = Accounts::open(&console_db)
        .with_context(|| format!("console accounts in {}", console_db.display()))?
        .with_soc_grant_approval(config.console.soc_grant_requires_second_admin);
    Ok(match config.backend {
        Backend::Embedded => accounts,
        Backend::Aws => {
            let log = gateway::aws::console_events::ConsoleEventLog::open(config, None).await?;
            accounts.with_event_log(std::sync::Arc::new(log))
        }
    })
}

/// Log to stderr, `info` unless `RUST_LOG` says otherwise.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The console's backends over the gateway's state (shared by `run` and the router tests).
pub fn console_for(accounts: Accounts, state: &AppState) -> Console {
    // The SOC pages query the embedded audit store, or CloudWatch Logs Insights on AWS.
    let insights =
        gateway::aws::insights::backend_for(&state.config, &state.config.data_dir.join("audit.db"));
    Console {
        accounts,
        audit: state.audit.clone(),
        soc: Some(Soc::new(insights, state.vault.clone())),
    }
}

/// Run until asked to stop.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::CreateAdmin { name }) = &args.command {
        return create_admin(args.config.as_deref(), name).await;
    }
    let config = Config::load(args.config.as_deref())?;
    let options = site::load()?;

    gateway::secret_file::private_dir(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let accounts = open_accounts(&config).await?;
    if let Some(password) = accounts.ensure_admin(gateway::now_ms()).await? {
        println!("console admin password (shown once): {password}");
    }

    // On the embedded default the gateway runs in this process. A backend that deploys the
    // gateway elsewhere (Lambda) has to decide here: the match is exhaustive on purpose.
    match config.backend {
        Backend::Embedded => {}
        // The console's own process can also serve the gateway on the AWS backends (a container
        // deployment); the Lambda deployment runs the gateway without the console.
        Backend::Aws => {}
    }
    let gateway_addr = config.server.listen.clone();
    let oidc = match &config.console.oidc {
        Some(settings) => Some(std::sync::Arc::new(oidc::Oidc::new(
            settings.clone(),
            accounts.clone(),
            options.css_path(),
            &config.data_dir,
        )?)),
        None => None,
    };
    let state = AppState::build(config).await?;
    gateway::cli::spawn_background_tasks(&state);
    let console = console_for(accounts, &state);

    let gateway_listener = TcpListener::bind(&gateway_addr)
        .await
        .with_context(|| format!("gateway cannot listen on {gateway_addr}"))?;
    let console_listener = TcpListener::bind(options.site_addr)
        .await
        .with_context(|| format!("console cannot listen on {}", options.site_addr))?;
    println!(
        "gateway listening on http://{}",
        gateway_listener.local_addr()?
    );
    println!(
        "console listening on http://{}",
        console_listener.local_addr()?
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let mut router = console::router_with_gateway(options, console, Some(state.clone()));
    if let Some(oidc) = oidc {
        router = router.merge(oidc.routes());
    }
    // Both listeners share the edge: timeouts, connection caps and the client address
    // behind trusted proxies, from `[server]`.
    let edge = gateway::net::Edge::from_config(&state.config.server)?;
    let console_server =
        gateway::net::serve(router, console_listener, edge, stopped(stop_rx.clone()));
    let gateway_server =
        gateway::router::serve_with_shutdown(state, gateway_listener, stopped(stop_rx));
    let (console_result, gateway_result) = tokio::join!(
        async { console_server.await.context("console server") },
        async { gateway_server.await.context("gateway server") },
    );
    console_result?;
    gateway_result?;
    Ok(())
}

/// Resolves once the stop flag is raised.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
