//! `teams-archiver`: the command line over the pipeline, export and verify. It parses
//! flags, wires the crates together, draws progress, and turns what happened into logs,
//! printed summaries and an exit code. The binary is a one-line `main` over [`main`], so
//! tests can build the same program.

#[macro_use]
mod stdout;

mod args;
mod credentials;
mod demo;
mod export_cmd;
mod ingest_cmd;
mod logging;
mod progress;
mod report;
mod schema;
mod status;
mod sync_cmd;
mod verify_cmd;

use std::process::ExitCode;

use archive::records::Outcome;
use clap::Parser;

use args::{Cli, Command};

/// The first SIGINT (Ctrl-C) or SIGTERM, by name.
async fn interrupted() -> &'static str {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

/// Runs the command line (the binary's whole `main`).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, "info");
    #[cfg(unix)]
    if let Some(mask) = cli.umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
    }
    let progress = progress::Display::new(cli.no_progress);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return report::exit_code(Outcome::Fatal);
        }
    };
    let result = runtime.block_on(async move {
        let command = async move {
            match cli.command {
                Command::Ingest(args) => ingest_cmd::run(args, progress).await,
                Command::Schema(args) => schema::run(args),
                Command::Sync(args) => sync_cmd::run(args, progress).await,
                Command::Demo(args) => demo::run(args, progress).await,
                Command::Status(args) => status::run(args).await,
                Command::Export(args) => export_cmd::run(args, progress).await,
                Command::Verify(args) => verify_cmd::run(args).await,
            }
        };
        tokio::select! {
            result = command => result,
            signal = interrupted() => {
                // Stopping at any moment is safe: checkpoints follow durable data only,
                // and the next run completes what this one was committing.
                tracing::error!("stopped by {signal}: what was committed stays; the next run goes on from the last checkpoints");
                std::process::exit(128 + if signal == "SIGTERM" { 15 } else { 2 });
            }
        }
    });
    match result {
        Ok(outcome) => report::exit_code(outcome),
        Err(error) => {
            tracing::error!("{error:#}");
            report::exit_code(Outcome::Fatal)
        }
    }
}
