//! One collector per consumer: a lease in a JetStream key-value bucket.
//!
//! Two collectors reading through one durable consumer would split its messages between two
//! files, and each would reset the consumer to its own checkpoint. The first to start holds a
//! key named after the stream and the consumer; the bucket forgets a key [`TTL`] after its last
//! renewal, so a collector that was killed blocks its successor for at most that long (and not
//! at all on the same host: a holder whose process is gone is taken over at once). Renewals are
//! compare-and-set on the key's revision, so a collector whose lease was taken notices.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind, Store, UpdateErrorKind};
use bytes::Bytes;

use crate::error::Error;
use crate::nats::Trouble;

/// How long an unrenewed lease lasts.
pub const TTL: Duration = Duration::from_secs(5);

/// How often the holder renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// The bucket every collector's lease lives in.
const BUCKET: &str = "ingest-collectors";

/// A held lease.
pub struct Lease {
    store: Store,
    key: String,
    /// `HOST pid PID`, and a nonce: who holds it.
    value: Bytes,
    revision: u64,
    consumer: String,
    renewed: Instant,
}

/// Who holds a lease: the value's `HOST pid PID` part.
fn holder(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    text.rsplit_once(' ')
        .map_or(text.to_string(), |(who, _nonce)| who.to_owned())
}

/// True when `value` names a process on this host that no longer runs.
fn holder_is_gone(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value);
    let mut words = text.split(' ');
    let (Some(host), Some("pid"), Some(pid)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    // kill(pid, 0) fails with ESRCH exactly when there is no such process.
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let gone = unsafe { libc::kill(pid, 0) } == -1
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    host == crate::os::host_name() && gone
}

/// A key-value key for `stream` and `consumer`: their bytes, any outside `[A-Za-z0-9_-]` as
/// `=XX`.
fn key(stream: &str, consumer: &str) -> String {
    let encode = |name: &str| {
        name.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
                b => format!("={b:02X}"),
            })
            .collect::<String>()
    };
    format!("{}.{}", encode(stream), encode(consumer))
}

impl Lease {
    /// Takes the lease on `stream`'s `consumer`, waiting up to [`TTL`] and a second for a
    /// killed holder's lease to lapse.
    ///
    /// # Errors
    /// [`Error::Collecting`] (as a fatal trouble) when another collector holds it; transient
    /// trouble when the server does not answer.
    pub(crate) async fn acquire(
        js: &async_nats::jetstream::Context,
        stream: &str,
        consumer: &str,
        replicas: usize,
    ) -> Result<Lease, Trouble> {
        let store = match js.get_key_value(BUCKET).await {
            Ok(store) => store,
            Err(_) => js
                .create_or_update_key_value(kv::Config {
                    bucket: BUCKET.to_owned(),
                    description: "ingest: which collector reads through which consumer".to_owned(),
                    history: 1,
                    max_age: TTL,
                    storage: async_nats::jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    Trouble::Transient(format!("cannot create the key-value bucket {BUCKET}: {e}"))
                })?,
        };
        let key = key(stream, consumer);
        let nonce = crate::checkpoint::new_source();
        let value = Bytes::from(format!(
            "{} pid {} {nonce:016x}",
            crate::os::host_name(),
            std::process::id()
        ));
        let deadline = Instant::now() + TTL + Duration::from_secs(1);
        let mut waited = false;
        let revision = loop {
            match store.create(&key, value.clone()).await {
                Ok(revision) => break revision,
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Trouble::Transient(format!(
                        "cannot take the consumer's lease: {e}"
                    )));
                }
            }
            let entry = store
                .entry(key.as_str())
                .await
                .map_err(|e| Trouble::Transient(format!("cannot read the consumer's lease: {e}")))?;
            let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                // Released or lapsed between the two requests: try again.
                continue;
            };
            let holder = holder(&entry.value);
            if holder_is_gone(&entry.value) {
                tracing::info!("consumer '{consumer}' was held by {holder}, which is gone: taking it over");
                match store.update(&key, value.clone(), entry.revision).await {
                    Ok(revision) => break revision,
                    // Someone else was quicker: look again.
                    Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                    Err(e) => {
                        return Err(Trouble::Transient(format!(
                            "cannot take the consumer's lease: {e}"
                        )));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(Trouble::Fatal(Error::Collecting {
                    consumer: consumer.to_owned(),
                    holder,
                }));
            }
            if !waited {
                tracing::info!(
                    "consumer '{consumer}' is held by {holder}; waiting up to {} s for it to be released",
                    TTL.as_secs() + 1
                );
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        Ok(Lease {
            store,
            key,
            value,
            revision,
            consumer: consumer.to_owned(),
            renewed: Instant::now(),
        })
    }

    /// True when a renewal is due.
    pub fn due(&self) -> bool {
        self.renewed.elapsed() >= RENEW_EVERY
    }

    /// Renews the lease; when it lapsed meanwhile (the server was away), takes it again.
    ///
    /// # Errors
    /// [`Error::Collecting`] when another collector took it; transient trouble when the
    /// server does not answer.
    pub(crate) async fn renew(&mut self) -> Result<(), Trouble> {
        let transient =
            |e: &dyn std::fmt::Display| Trouble::Transient(format!("cannot renew the consumer's lease: {e}"));
        let revision = match self
            .store
            .update(&self.key, self.value.clone(), self.revision)
            .await
        {
            Ok(revision) => revision,
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                match self.store.create(&self.key, self.value.clone()).await {
                    Ok(revision) => revision,
                    Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                        let holder = match self.store.entry(self.key.as_str()).await {
                            Ok(Some(entry)) => holder(&entry.value),
                            _ => "another collector".to_owned(),
                        };
                        return Err(Trouble::Fatal(Error::Collecting {
                            consumer: self.consumer.clone(),
                            holder,
                        }));
                    }
                    Err(e) => return Err(transient(&e)),
                }
            }
            Err(e) => return Err(transient(&e)),
        };
        self.revision = revision;
        self.renewed = Instant::now();
        Ok(())
    }

    /// Gives the lease up, so that the next collector need not wait.
    pub async fn release(self) {
        let _ = self
            .store
            .delete_expect_revision(&self.key, Some(self.revision))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_plain_names_and_encode_the_rest() {
        assert_eq!(key("LOGS", "central-1"), "LOGS.central-1");
        assert_eq!(key("LOGS", "a b"), "LOGS.a=20b");
    }

    #[test]
    fn a_holder_is_named_without_its_nonce() {
        assert_eq!(holder(b"web1 pid 42 00000000000000ff"), "web1 pid 42");
    }

    #[test]
    fn only_a_dead_process_on_this_host_counts_as_gone() {
        let host = crate::os::host_name();
        let me = format!("{host} pid {} 1", std::process::id());
        assert!(!holder_is_gone(me.as_bytes()), "this process runs");
        // Pid numbers wrap below 2^22 on Linux.
        let dead = format!("{host} pid 2147483646 1");
        assert!(holder_is_gone(dead.as_bytes()));
        assert!(!holder_is_gone(b"another-host pid 2147483646 1"));
    }
}
