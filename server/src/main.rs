//! The `server` binary: the console and, on the embedded default, the gateway in one process.
//! A thin shell over [`server::run`].

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = server::Args::parse();
    server::init_tracing();
    match server::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
