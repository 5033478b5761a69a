//! The `ingest` binary: parse the command line, build the runtime, run, map the outcome to an
//! exit code. Everything else lives in the library.

use std::error::Error as _;
use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use ingest::cli::Args;
use ingest::signal::Watcher;
use ingest::{Error, Exit};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(args.log_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let config = match args.into_config() {
        Ok(config) => config,
        Err(message) => Args::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.get() + 4)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}"), Exit::Internal),
    };
    // Our own descriptor for stdin: plain `read(2)` calls, no library buffer in between.
    let stdin = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => File::from(fd),
        Err(e) => return fail(&format!("cannot read standard input: {e}"), Exit::Io),
    };

    let outcome = runtime.block_on(async {
        let drain = CancellationToken::new();
        let signals = Watcher::start(drain.clone());
        let summary = ingest::run(&config, ingest::Input::File(stdin), drain).await;
        (summary, signals.map(|s| s.received()))
    });
    // Everything that had to finish has; a write that is still blocked (a drain that timed out)
    // must not hold the process.
    runtime.shutdown_background();
    match outcome {
        (Ok(summary), Ok(signal)) => {
            tracing::info!("{summary}");
            let exit = summary.exit(config.max_rejects, signal);
            if exit == Exit::TooManyRejects {
                eprintln!(
                    "ingest: {} lines rejected, more than --max-rejects {}",
                    summary.rejected(),
                    config.max_rejects.unwrap_or_default()
                );
            }
            exit.into()
        }
        (Err(error), _) => report(&error),
        (Ok(_), Err(e)) => fail(&format!("cannot listen for signals: {e}"), Exit::Internal),
    }
}

/// Prints the error with its chain of causes, and a hint; returns its exit code.
fn report(error: &Error) -> ExitCode {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(hint) = error.hint() {
        message.push_str("\nhint: ");
        message.push_str(hint);
    }
    fail(&message, error.exit())
}

fn fail(message: &str, exit: Exit) -> ExitCode {
    eprintln!("ingest: error: {message}");
    exit.into()
}
