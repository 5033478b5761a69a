//! The `ingest` binary: parse the command line, build the runtime, run, map the outcome to an
//! exit code. Everything else lives in the library.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{CommandFactory, Parser};
use ingest::cli::Args;
use ingest::metrics::Metrics;
use ingest::signal::Watcher;
use ingest::{Error, Exit, Input};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: ingest::os::ExitOnOutOfMemory = ingest::os::ExitOnOutOfMemory;

fn main() -> ExitCode {
    let started = Instant::now();
    let args = Args::parse();
    if let Some(kind) = args.generate {
        return match ingest::generate::write(kind, Args::command(), &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("cannot write to standard output: {e}"), Exit::Io),
        };
    }
    ingest::logging::init(args.log_filter());
    let config = match args.into_config() {
        Ok(config) => config,
        Err(message) => Args::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };

    if let Err(message) = ingest::os::prepare() {
        return fail(&message, Exit::OsError);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.get() + 4)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}"), Exit::OsError),
    };
    // Our own descriptor for stdin: plain `read(2)` calls, no library buffer in between.
    let stdin = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => File::from(fd),
        Err(e) => return fail(&format!("cannot read standard input: {e}"), Exit::Io),
    };
    if let Ok(metadata) = stdin.metadata()
        && let Err(message) = ingest::cli::refuse_input_as_output(&config, &metadata)
    {
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit();
    }

    let metrics = Arc::new(Metrics::default());
    let (result, signal) = runtime.block_on(async {
        let drain = CancellationToken::new();
        let signals = match Watcher::start(drain.clone()) {
            Ok(signals) => signals,
            Err(e) => return (Err(e), None),
        };
        let result = ingest::run(&config, Input::File(stdin), metrics.clone(), drain).await;
        (Ok(result), signals.received())
    });
    // Everything that had to finish has; a write that is still blocked (a drain that timed out)
    // must not hold the process.
    runtime.shutdown_background();
    let result = match result {
        Ok(result) => result,
        Err(e) => return fail(&format!("cannot listen for signals: {e}"), Exit::OsError),
    };

    let summary = match &result {
        Ok(summary) => summary.clone(),
        Err(_) => metrics.snapshot(started.elapsed()),
    };
    let exit = match &result {
        Ok(summary) => summary.exit(config.max_rejects, signal),
        Err(error) => error.exit(),
    };
    if result.is_ok() || summary.lines > 0 {
        tracing::info!("{summary}");
        tracing::debug!("{}", summary.waits());
    }
    // A run refused because another holds the lock must not overwrite that run's reports.
    if exit != Exit::Busy {
        summary.write_reports(
            config.stats_json.as_deref(),
            config.metrics_textfile.as_deref(),
            exit,
        );
    }
    match result {
        Err(error) => report(&error),
        Ok(_) if exit == Exit::TooManyRejects => fail(
            &format!(
                "{} lines rejected, more than --max-rejects {}",
                summary.rejected(),
                config.max_rejects.unwrap_or_default()
            ),
            exit,
        ),
        Ok(_) => match signal {
            // Drained: die by the same signal, so a calling shell script stops too.
            Some(signal) if exit == signal.exit() => signal.reraise(),
            _ => exit.into(),
        },
    }
}

/// Prints the error with its chain of causes, and a hint; returns its exit code.
fn report(error: &Error) -> ExitCode {
    fail(&error.describe(), error.exit())
}

fn fail(message: &str, exit: Exit) -> ExitCode {
    ingest::logging::print_line(&format!("ingest: error: {message}"));
    exit.into()
}
