//! SIGINT and SIGTERM: the first asks for a drain, the second stops the process at once.
//!
//! The binary starts a [`Watcher`] and passes its drain token to [`crate::run()`]; tests pass a
//! token of their own instead, so the pipeline never touches signals itself.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

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
    /// The first signal's number, 0 before any: set in the signal handler itself.
    received: Arc<AtomicI32>,
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
        // The task below learns of a signal only once the runtime polls it; a run whose input
        // closes right after a signal can end before that. Recording the signal in the handler
        // itself means such a run still reports it (130/143, not 0).
        let received = Arc::new(AtomicI32::new(0));
        for number in [libc::SIGINT, libc::SIGTERM] {
            let first = Arc::clone(&received);
            // SAFETY: the action only does an atomic compare-and-swap, which is
            // async-signal-safe: no allocation, no lock, no I/O.
            unsafe {
                signal_hook_registry::register(number, move || {
                    let _ = first.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
                })
            }?;
        }
        tokio::spawn(async move {
            let signal = next(&mut interrupt, &mut terminate).await;
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
        match self.received.load(Ordering::SeqCst) {
            libc::SIGINT => Some(Signal::Interrupt),
            libc::SIGTERM => Some(Signal::Terminate),
            _ => None,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_known_from_its_delivery_on_not_only_once_the_watching_task_runs() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let drain = CancellationToken::new();
            let watcher = Watcher::start(drain.clone()).unwrap();
            assert_eq!(watcher.received(), None);
            // SAFETY: raising a signal whose handler is installed just above; it runs on this
            // thread before `raise` returns. The watching task cannot have run: nothing has
            // yielded to the runtime since (a run that ends now must still see the signal).
            unsafe { libc::raise(libc::SIGTERM) };
            assert_eq!(watcher.received(), Some(Signal::Terminate));
            assert!(!drain.is_cancelled());
        });
    }
}
