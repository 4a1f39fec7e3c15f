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

pub mod console;
pub mod site;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use app::accounts::Accounts;
use app::context::Console;
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

/// Run until asked to stop.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let options = site::load()?;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let console_db = config.data_dir.join("console.db");
    let accounts = Accounts::open(&console_db)
        .with_context(|| format!("console accounts in {}", console_db.display()))?;
    if let Some(password) = accounts.ensure_admin(gateway::now_ms()).await? {
        println!("console admin password (shown once): {password}");
    }

    // On the embedded default the gateway runs in this process. A backend that deploys the
    // gateway elsewhere (Lambda) has to decide here: the match is exhaustive on purpose.
    match config.backend {
        Backend::Embedded => {}
    }
    let gateway_addr = config.server.listen.clone();
    let state = AppState::build(config).await?;
    let console = Console {
        accounts,
        audit: state.audit.clone(),
    };

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

    let router = console::router(options, console);
    let console_server = axum::serve(
        console_listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()));
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
