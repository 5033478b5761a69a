//! SIGINT and SIGTERM: the first asks for a drain, the second stops the process at once.
//!
//! The binary starts a [`Watcher`] and passes its drain token to [`crate::run`]; tests pass a
//! token of their own instead, so the pipeline never touches signals itself.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::error::Exit;

/// The signals that stop a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl+C): exit 130 after the drain.
    Interrupt,
    /// SIGTERM: exit 143 after the drain.
    Terminate,
}

impl Signal {
    /// The exit code after this signal: 128 + its number, as shells report a signal death.
    pub fn exit(self) -> Exit {
        match self {
            Signal::Interrupt => Exit::Interrupted,
            Signal::Terminate => Exit::Terminated,
        }
    }
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
        }
    }

    /// Ends the process by this signal, as if it had not been caught, so that a calling shell
    /// sees an interrupted job (`$?` is 130 or 143 either way, but a script stops on it).
    pub fn reraise(self) -> ! {
        // SAFETY: restoring the default action and raising a signal touch no memory of ours; the
        // process is about to end and has nothing left to clean up.
        unsafe {
            libc::signal(self.number(), libc::SIG_DFL);
            libc::raise(self.number());
        }
        // Only reached if the signal is blocked; the exit code says the same.
        std::process::exit(self.exit() as i32)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// Listens for SIGINT and SIGTERM for the rest of the process.
#[derive(Debug)]
pub struct Watcher {
    received: Arc<OnceLock<Signal>>,
}

impl Watcher {
    /// Installs the handlers; the first signal cancels `drain`, a second exits at once.
    ///
    /// # Errors
    /// When the handlers cannot be installed.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn start(drain: CancellationToken) -> std::io::Result<Watcher> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let received = Arc::new(OnceLock::new());
        let first = Arc::clone(&received);
        tokio::spawn(async move {
            let signal = next(&mut interrupt, &mut terminate).await;
            let _ = first.set(signal);
            tracing::warn!("{signal}: finishing the lines already read (send it again to stop at once)");
            drain.cancel();
            let again = next(&mut interrupt, &mut terminate).await;
            crate::logging::print_line(&format!(
                "ingest: {again} again: stopping at once; records not yet written are lost"
            ));
            again.reraise();
        });
        Ok(Watcher { received })
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<Signal> {
        self.received.get().copied()
    }
}

async fn next(
    interrupt: &mut tokio::signal::unix::Signal,
    terminate: &mut tokio::signal::unix::Signal,
) -> Signal {
    tokio::select! {
        _ = interrupt.recv() => Signal::Interrupt,
        _ = terminate.recv() => Signal::Terminate,
    }
}
