//! The fatal errors of a run and the one mapping from outcomes to exit codes.
//!
//! Bad input lines are not here: they are data, counted in the summary. These are the failures
//! that stop the pipeline; `main` prints them (with their source chain) and exits with [`Exit`].

use std::io;
use std::path::PathBuf;

/// The process exit codes, documented in the README and `--help`; BSD `sysexits.h` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Every line was read, and every valid record written.
    Ok = 0,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// More lines were rejected than `--max-rejects` allows (the output is still written).
    TooManyRejects = 65,
    /// `--from PATH`: a file being read was gone before its end was read, or there is no file.
    InputLost = 66,
    /// The NATS server stayed unavailable for longer than `--sink-timeout`.
    Unavailable = 69,
    /// A stage panicked: a bug.
    Internal = 70,
    /// The system ran out of something ingest needs: threads, memory, file descriptors.
    OsError = 71,
    /// The output or rejects file could not be opened.
    CannotCreate = 73,
    /// Reading stdin or writing the output failed.
    Io = 74,
    /// Another run holds the output's lock: try again later.
    Busy = 75,
    /// The NATS server refused the credentials, or the user may not publish there.
    NoPermission = 77,
    /// No JetStream stream takes the subject (and `--create-stream` was not given).
    Config = 78,
    /// Drained after SIGINT (128 + 2).
    Interrupted = 130,
    /// Drained after SIGTERM (128 + 15).
    Terminated = 143,
}

impl Exit {
    /// Every exit code, lowest first.
    pub const ALL: [Exit; 14] = [
        Exit::Ok,
        Exit::Usage,
        Exit::TooManyRejects,
        Exit::InputLost,
        Exit::Unavailable,
        Exit::Internal,
        Exit::OsError,
        Exit::CannotCreate,
        Exit::Io,
        Exit::Busy,
        Exit::NoPermission,
        Exit::Config,
        Exit::Interrupted,
        Exit::Terminated,
    ];

    /// True when running again as it is cannot help: a person must change the command line,
    /// the files, the credentials or the server first (a service unit's
    /// `RestartPreventExitStatus`). An unusable checkpoint ends with [`Exit::Io`], so that one is
    /// here too, though a failed write may heal by itself.
    pub const fn needs_a_person(self) -> bool {
        matches!(
            self,
            Exit::Usage
                | Exit::TooManyRejects
                | Exit::CannotCreate
                | Exit::Io
                | Exit::NoPermission
                | Exit::Config
        )
    }

    /// What the code tells a script, in one sentence (the man page's EXIT STATUS).
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => {
                "every line was read and every valid record written (rejected lines included, within --max-rejects)"
            }
            Exit::Usage => {
                "bad command line: an unknown flag, a bad value, or flags that contradict each other"
            }
            Exit::TooManyRejects => {
                "more lines were rejected than --max-rejects allows (the valid records are still written)"
            }
            Exit::InputLost => {
                "input was lost: a file being read was rotated away or deleted before its end was read (or, without --from, the checkpoint's input was rotated with its end unread), or --from PATH is not there"
            }
            Exit::Unavailable => "the NATS server stayed unavailable for longer than --sink-timeout",
            Exit::Internal => "internal error: a stage panicked (a bug; please report it)",
            Exit::OsError => "out of file descriptors, memory or threads",
            Exit::CannotCreate => "OUTPUT or the rejects file cannot be opened for appending",
            Exit::Io => {
                "reading the input or writing the output failed, a drain outlasted --shutdown-timeout, or the checkpoint is unusable"
            }
            Exit::Busy => {
                "OUTPUT or the rejects file is in use by another run, or (--from) the consumer by another collector: try again later"
            }
            Exit::NoPermission => {
                "the NATS server refused the credentials, or they may not publish or consume there"
            }
            Exit::Config => "no JetStream stream takes the subject (--from: no such stream)",
            Exit::Interrupted => "drained after SIGINT: everything read was written",
            Exit::Terminated => "drained after SIGTERM: everything read was written",
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

/// What went wrong with a run, fatally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output or rejects file could not be opened for appending.
    #[error("cannot open '{}' for appending", path.display())]
    Open {
        /// The path as given on the command line.
        path: PathBuf,
        /// Why the OS refused.
        source: io::Error,
    },
    /// Another process holds the output's lock.
    #[error("'{}' is being written by another ingest run", path.display())]
    Locked {
        /// The output path.
        path: PathBuf,
    },
    /// The checkpoint file cannot be read, written, or trusted.
    #[error("checkpoint '{}'", path.display())]
    Checkpoint {
        /// The checkpoint's path.
        path: PathBuf,
        /// What went wrong with it.
        source: io::Error,
    },
    /// Reading standard input failed.
    #[error("cannot read standard input")]
    Read(#[source] io::Error),
    /// A file of `--from PATH` could not be read.
    #[error("cannot read '{}'", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `--from GLOB`: no log matches.
    #[error("no log matches --from {globs}")]
    NoLogs {
        /// The globs, quoted.
        globs: String,
    },
    /// `--from PATH`: neither PATH nor any rotated file beside it is there.
    #[error("no file '{}' to read, nor any rotated file of it beside it", path.display())]
    NoInput {
        /// PATH as given.
        path: PathBuf,
    },
    /// Compressed standard input is damaged or cut short: the whole lines before the damage
    /// were processed.
    #[error(
        "{input} ({format}) is damaged or cut short at or before byte {offset} of the compressed data: the whole lines before it were processed{}; check the file with `{check} FILE`",
        if *dropped > 0 { format!(", a partial line of {dropped} bytes was dropped") } else { String::new() }
    )]
    Damaged {
        /// `standard input`, or the file's path in quotes.
        input: String,
        /// `gzip` or `zstd`.
        format: &'static str,
        /// Compressed bytes read when the damage was found.
        offset: u64,
        /// Decompressed bytes of a line cut short by the damage.
        dropped: u64,
        /// The command that checks such a file.
        check: &'static str,
        /// The decoder's error.
        source: io::Error,
    },
    /// Writing failed for good: a permanent error, or a transient one after every retry.
    #[error("cannot write to {target} (gave up after {attempts} attempt{})", if *attempts == 1 { "" } else { "s" })]
    Write {
        /// `'path'` or `standard output`.
        target: String,
        /// How many times the failing write was tried.
        attempts: u32,
        /// The last error.
        source: io::Error,
    },
    /// After a signal, the drain did not finish within `--shutdown-timeout`.
    #[error(
        "the drain did not finish within {} s: {written} records written, {in_flight} lines still in flight and lost",
        after.as_secs_f64()
    )]
    DrainTimedOut {
        /// The timeout.
        after: std::time::Duration,
        /// Records written before giving up.
        written: u64,
        /// Lines read but not settled (written, rejected or dropped) when the time ran out.
        in_flight: u64,
    },
    /// The NATS server could not be reached, or stopped answering, for longer than
    /// `--sink-timeout`.
    #[error("{target} unavailable for {} s: {last_error}", after.as_secs())]
    Unavailable {
        /// The address, password redacted.
        target: String,
        /// How long it had been unavailable.
        after: std::time::Duration,
        /// The last failure seen.
        last_error: String,
    },
    /// The NATS server refused who we are, or what we asked.
    #[error("{target} refused: {reason}")]
    NotPermitted {
        /// The address, password redacted.
        target: String,
        /// The server's words.
        reason: String,
    },
    /// No JetStream stream takes the subject.
    #[error(
        "no JetStream stream on {target} takes subject '{subject}': an operator creates one (`nats stream add LOGS --subjects '{subject}' --storage file`), or pass --create-stream NAME"
    )]
    NoStream {
        /// The address, password redacted.
        target: String,
        /// The subject records would be published on.
        subject: String,
    },
    /// `--from` names a stream the server does not have.
    #[error("no JetStream stream '{stream}' on {target}: check the name (`nats stream ls`)")]
    NoSuchStream {
        /// The address, password redacted.
        target: String,
        /// The stream asked for.
        stream: String,
    },
    /// Another collector reads through the same consumer.
    #[error("consumer '{consumer}' is being read by another collector ({holder})")]
    Collecting {
        /// The consumer's name.
        consumer: String,
        /// Who holds it: host and process.
        holder: String,
    },
    /// The NATS server answered with an error that retrying cannot fix.
    #[error("{target}: {what}")]
    Nats {
        /// The address, password redacted.
        target: String,
        /// What failed, in the server's or client's words.
        what: String,
    },
    /// A stage's task panicked; the message is in the panic output above.
    #[error("internal error: the {stage} stage panicked")]
    Panic {
        /// Which stage: reader (or fetcher and acker), parser, validator or writer.
        stage: &'static str,
    },
}

impl Error {
    /// The message with its chain of causes joined by `: `, and a hint on a line of its own.
    pub fn describe(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        if let Some(hint) = self.hint() {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        message
    }

    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Open { .. } => Exit::CannotCreate,
            Error::Locked { .. } | Error::Collecting { .. } => Exit::Busy,
            Error::NoInput { .. } | Error::NoLogs { .. } => Exit::InputLost,
            Error::Read(_)
            | Error::Input { .. }
            | Error::Damaged { .. }
            | Error::Write { .. }
            | Error::DrainTimedOut { .. }
            | Error::Checkpoint { .. } => Exit::Io,
            Error::Panic { .. } => Exit::Internal,
            Error::Unavailable { .. } => Exit::Unavailable,
            Error::NotPermitted { .. } => Exit::NoPermission,
            Error::NoStream { .. } | Error::NoSuchStream { .. } => Exit::Config,
            Error::Nats { .. } => Exit::Io,
        }
    }

    /// A hint on what to do, printed under the error.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Open { source, .. } => Some(match source.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE) => "too many open files: raise the limit (ulimit -n)",
                Some(libc::ENOSPC | libc::EDQUOT) => "the disk is full",
                _ if source.kind() == io::ErrorKind::PermissionDenied => "check that you may write there",
                _ => "check that the directory exists and that you may write to it",
            }),
            Error::Write { .. } => Some(
                "records written before the failure are complete; rerun once the disk or device is fixed",
            ),
            Error::Panic { .. } => {
                Some("this is a bug in ingest; please report it with the input that caused it")
            }
            Error::Locked { .. } => {
                Some("wait for that run to finish (each run holds the lock until it exits)")
            }
            Error::DrainTimedOut { .. } => {
                Some("the output stopped taking records; --shutdown-timeout SECS waits longer")
            }
            Error::Unavailable { .. } => Some(
                "start the server or check the address; what was acknowledged is counted (and committed with --checkpoint); --sink-timeout SECS waits longer",
            ),
            Error::NotPermitted { .. } => Some(
                "check --nats-creds, or NATS_USER and NATS_PASSWORD, or NATS_TOKEN, and that the user may publish to the subject",
            ),
            Error::Collecting { .. } => Some(
                "one collector per consumer: wait for that one to stop, or give this one its own --consumer (a killed collector's claim lapses within seconds)",
            ),
            Error::NoInput { .. } => {
                Some("check the path; a log that is not written yet is there once its program starts")
            }
            Error::NoLogs { .. } => {
                Some("check the globs (quoted, so that the shell leaves them to ingest) and --exclude")
            }
            Error::Read(_)
            | Error::Input { .. }
            | Error::Damaged { .. }
            | Error::Checkpoint { .. }
            | Error::Nats { .. }
            | Error::NoStream { .. }
            | Error::NoSuchStream { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_documented_exit_code() {
        let io = || io::Error::other("x");
        let cases = [
            (
                Error::Open {
                    path: "o".into(),
                    source: io(),
                },
                73,
            ),
            (Error::Read(io()), 74),
            (
                Error::Damaged {
                    input: "standard input".to_owned(),
                    format: "gzip",
                    offset: 7,
                    dropped: 3,
                    check: "gzip -t",
                    source: io(),
                },
                74,
            ),
            (
                Error::Write {
                    target: "'o'".into(),
                    attempts: 4,
                    source: io(),
                },
                74,
            ),
            (Error::Panic { stage: "parser" }, 70),
            (Error::Locked { path: "o".into() }, 75),
            (
                Error::Unavailable {
                    target: "nats://h/s".into(),
                    after: std::time::Duration::from_secs(1),
                    last_error: "x".into(),
                },
                69,
            ),
            (
                Error::NotPermitted {
                    target: "nats://h/s".into(),
                    reason: "x".into(),
                },
                77,
            ),
            (
                Error::NoStream {
                    target: "nats://h/s".into(),
                    subject: "s".into(),
                },
                78,
            ),
            (
                Error::NoSuchStream {
                    target: "nats://h/S".into(),
                    stream: "S".into(),
                },
                78,
            ),
            (
                Error::Collecting {
                    consumer: "c".into(),
                    holder: "h pid 1".into(),
                },
                75,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit() as u8, code, "{error}");
        }
    }

    #[test]
    fn the_hint_for_an_output_that_cannot_be_opened_fits_the_reason() {
        let hint = |source: io::Error| {
            Error::Open {
                path: "o".into(),
                source,
            }
            .hint()
            .unwrap()
        };
        assert!(hint(io::Error::from_raw_os_error(libc::EMFILE)).contains("ulimit -n"));
        assert!(hint(io::Error::from_raw_os_error(libc::ENOENT)).contains("directory exists"));
        assert!(hint(io::Error::from_raw_os_error(libc::EACCES)).contains("may write"));
    }

    #[test]
    fn messages_name_the_path_and_do_not_repeat_their_source() {
        let error = Error::Open {
            path: "logs/out.log".into(),
            source: io::Error::other("denied"),
        };
        assert_eq!(error.to_string(), "cannot open 'logs/out.log' for appending");
    }
}
