//! What the JetStream sink and the collector share: connecting to a NATS server (credentials,
//! TLS, reconnects, permission errors) here, and ingest's message format with its headers in
//! [`message`].

pub mod message;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{ConnectErrorKind, ServerAddr};

use crate::config::NatsServer;
use crate::error::Error;

/// Why an attempt failed: worth retrying, or not.
pub(crate) enum Trouble {
    /// Try again (the breaker decides when).
    Transient(String),
    /// Retrying cannot help.
    Fatal(Error),
}

/// A permission error the server reported (in an asynchronous event, after the request that
/// caused it), which no retry fixes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Denied(Arc<Mutex<Option<String>>>);

impl Denied {
    fn record(&self, reason: String) {
        if let Ok(mut denied) = self.0.lock() {
            denied.get_or_insert(reason);
        }
    }

    /// [`Error::NotPermitted`] once the server has denied something.
    pub(crate) fn check(&self, target: &str) -> Result<(), Error> {
        match self.0.lock().ok().and_then(|d| d.clone()) {
            Some(reason) => Err(Error::NotPermitted {
                target: target.to_owned(),
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// What the client does when an established connection drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reconnect {
    /// Stay down: the JetStream sink connects afresh itself. The client would send what it
    /// still holds for the old connection over the new one, behind the messages lost with the
    /// old one; the sink reads back first.
    Never,
    /// Reconnect, as the client does by default: the collector's pulls and acks are safe to
    /// repeat.
    Always,
}

/// Connects to the first server that answers, as the target says.
pub(crate) async fn connect(
    target: &NatsServer,
    reconnect: Reconnect,
    lost: Arc<AtomicBool>,
    denied: Denied,
) -> Result<async_nats::Client, Trouble> {
    let fatal = |what: String| {
        Trouble::Fatal(Error::Nats {
            target: target.shown.clone(),
            what,
        })
    };
    let scheme = if target.tls { "tls" } else { "nats" };
    let servers: Vec<ServerAddr> = target
        .servers
        .iter()
        .map(|s| format!("{scheme}://{s}").parse())
        .collect::<Result<_, _>>()
        .map_err(|e| fatal(format!("bad server address: {e}")))?;
    let established = Arc::new(AtomicBool::new(false));
    let once_connected = established.clone();
    let mut options = async_nats::ConnectOptions::new()
        .name("ingest")
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(move |attempts| {
            match reconnect {
                Reconnect::Never if once_connected.load(Ordering::Relaxed) => Duration::from_secs(86_400),
                Reconnect::Never => Duration::ZERO,
                // At once (this is also the first connection's delay), then 250 ms more each time
                // up to 4 s apart.
                Reconnect::Always => {
                    Duration::from_millis((attempts as u64).saturating_sub(1).saturating_mul(250).min(4_000))
                }
            }
        })
        .event_callback(move |event| {
            let (lost, denied) = (lost.clone(), denied.clone());
            async move {
                match event {
                    async_nats::Event::Disconnected | async_nats::Event::Closed => {
                        lost.store(true, Ordering::Relaxed);
                    }
                    async_nats::Event::Connected => lost.store(false, Ordering::Relaxed),
                    async_nats::Event::ServerError(async_nats::ServerError::Other(e))
                        if e.to_ascii_lowercase().contains("permissions violation") =>
                    {
                        denied.record(e);
                    }
                    _ => {}
                }
            }
        });
    if let Some(path) = &target.creds {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| fatal(format!("cannot use --nats-creds '{}': {e}", path.display())))?;
    }
    if let Some((user, password)) = &target.user {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &target.token {
        options = options.token(token.clone());
    }
    if target.tls {
        options = options.require_tls(true);
    }
    if let Some(ca) = &target.tls_ca {
        options = options.add_root_certificates(ca.clone());
    }
    match options.connect(servers).await {
        Ok(client) => {
            established.store(true, Ordering::Relaxed);
            Ok(client)
        }
        Err(e) => match e.kind() {
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                Err(Trouble::Fatal(Error::NotPermitted {
                    target: target.shown.clone(),
                    reason: e.to_string(),
                }))
            }
            ConnectErrorKind::ServerParse => Err(fatal(e.to_string())),
            // A certificate that cannot be trusted stays so: no retry. (The client reports a
            // rejected certificate as an I/O error; its words are all there is to go by.)
            ConnectErrorKind::Tls | ConnectErrorKind::Io if e.to_string().contains("certificate") => {
                Err(fatal(format!(
                    "TLS failed: {e} (a server with a private CA needs --nats-tls-ca FILE)"
                )))
            }
            _ => Err(Trouble::Transient(format!("cannot connect: {e}"))),
        },
    }
}

/// Now, in milliseconds since the Unix epoch (at least 1, so that 0 can mean "never").
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
        .max(1)
}
