//! Fan-out: one publisher, many subscribers on their own connections; deliveries per
//! second and publish-to-delivery latency. `bench/fanout.sh` runs it against:
//!
//! - `minimal`: the broadcaster this binary serves itself (`fanout minimal-server ADDR`):
//!   tokio-tungstenite, every frame the publisher sends written as it is to every other
//!   socket — one pre-serialized frame, the practical limit;
//! - `wirecall`: the `chat` example (`Chat.say` publishes to the `Chat.room` topic through
//!   the server's hub; subscribers subscribe to `Chat.room`), with a memory hub or Redis;
//! - `socketio`: Socket.IO 4 on Node.js (`bench/socketio/server.mjs`), `socket.broadcast.emit`,
//!   spoken to over its WebSocket transport (Engine.IO 4 / Socket.IO 5 packets).
//!
//! The publisher keeps `--window` messages ahead of the slowest subscriber. The frames the
//! minimal broadcaster sends are the same bytes wirecall sends (a JSON-RPC notification
//! with a position), so every server moves the same payload.
//!
//! ```text
//! fanout minimal-server 127.0.0.1:0
//! fanout run --kind wirecall --url ws://127.0.0.1:9001/ --subs 2000 --seconds 5
//! ```
//!
//! With `--keys K` (wirecall only; `bench/keys.sh`), the subscribers are spread over K rooms
//! (`k0`, `k1`, …; subscriber `i` in room `i % K`, on the server `(i % K) % URLS`, so each
//! server holds its share of the rooms) and the publisher says message `s` in room `s % K`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the minimal broadcaster.
    MinimalServer {
        /// Address to listen on.
        addr: String,
    },
    /// Measure a server.
    Run(Run),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Minimal,
    Wirecall,
    Socketio,
}

#[derive(Parser, Clone)]
struct Run {
    /// What the server speaks.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Server URLs: the publisher uses the first, subscribers are spread over all.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// Subscribers (one connection each).
    #[arg(long, default_value_t = 2000)]
    subs: usize,
    /// Messages the publisher may be ahead of the slowest subscriber.
    #[arg(long, default_value_t = 16)]
    window: u64,
    /// Bytes of padding in each message's text.
    #[arg(long, default_value_t = 64)]
    pad: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// A label for the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Rooms (wirecall only): subscribers spread over them, each room's on one server;
    /// publications go round the rooms. `--subs` must be a multiple.
    #[arg(long, default_value_t = 1)]
    keys: usize,
}

impl Run {
    /// The room of subscriber `i`, or of publication `seq` (`lobby` with one room).
    fn room(&self, i: u64) -> String {
        if self.keys <= 1 {
            "lobby".to_string()
        } else {
            format!("k{}", i % self.keys as u64)
        }
    }

    /// The server of subscriber `i`: with several rooms, the server of its room.
    fn url(&self, i: usize) -> &str {
        let n = self.urls.len();
        if self.keys <= 1 {
            &self.urls[i % n]
        } else {
            &self.urls[(i % self.keys) % n]
        }
    }
}

fn main() {
    match Args::parse().command {
        // The servers all run tokio's default (multi-thread) runtime, as `chat` does.
        Command::MinimalServer { addr } => tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(minimal_server(&addr)),
        Command::Run(run) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(measure(run)),
    }
}

/// Every frame a connection sends is written to every other connection, as it is.
async fn minimal_server(addr: &str) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    println!(
        "listening on ws://{}/",
        listener.local_addr().expect("addr")
    );
    type Peers = Arc<Mutex<Vec<(u64, mpsc::UnboundedSender<Message>)>>>;
    let peers: Peers = Arc::default();
    let mut next = 0u64;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        next += 1;
        let me = next;
        let peers = peers.clone();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
            peers.lock().unwrap().push((me, tx));
            let writer = tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if sink.feed(m).await.is_err() {
                        return;
                    }
                    while let Ok(m) = rx.try_recv() {
                        if sink.feed(m).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
            });
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Text(text) = m {
                    let frame = Message::Text(text);
                    for (id, tx) in peers.lock().unwrap().iter() {
                        if *id != me {
                            let _ = tx.send(frame.clone());
                        }
                    }
                }
            }
            peers.lock().unwrap().retain(|(id, _)| *id != me);
            writer.abort();
        });
    }
}

/// Counts per message (a ring), for the publisher's window.
struct Progress {
    received: Vec<AtomicU32>,
    subs: u32,
    advanced: Notify,
    measuring: AtomicBool,
    deliveries: AtomicU64,
}

const RING: usize = 1 << 16;

impl Progress {
    fn delivered(&self, seq: u64) {
        let slot = &self.received[seq as usize % RING];
        if slot.fetch_add(1, Ordering::AcqRel) + 1 == self.subs {
            self.advanced.notify_one();
        }
        if self.measuring.load(Ordering::Relaxed) {
            self.deliveries.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn complete(&self, seq: u64) -> bool {
        self.received[seq as usize % RING].load(Ordering::Acquire) >= self.subs
    }
}

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// `s=SEQ t=MICROS` somewhere in a frame.
fn stamp(frame: &str) -> Option<(u64, u64)> {
    let s = frame.find("s=")? + 2;
    let seq_end = s + frame[s..].find(' ')?;
    let t = frame[seq_end..].find("t=")? + seq_end + 2;
    let t_end = t + frame[t..].find(|c: char| !c.is_ascii_digit())?;
    Some((
        frame[s..seq_end].parse().ok()?,
        frame[t..t_end].parse().ok()?,
    ))
}

async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    ws
}

fn socketio_url(url: &str) -> String {
    format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        url.trim_end_matches('/')
    )
}

/// Open a connection of `kind` and do what makes it a subscriber (or a publisher).
async fn open(kind: Kind, url: &str, publisher: bool, room: &str) -> Ws {
    match kind {
        Kind::Minimal => connect(url).await,
        Kind::Wirecall => {
            let mut ws = connect(url).await;
            let setup = if publisher {
                r#"{"jsonrpc":"2.0","id":0,"method":"Chat.join","params":{"room":"lobby","name":"publisher"}}"#.to_string()
            } else {
                format!(
                    r#"{{"jsonrpc":"2.0","id":0,"method":"Chat.room","params":{{"room":"{room}"}}}}"#
                )
            };
            ws.send(Message::text(setup)).await.expect("send");
            loop {
                let Some(Ok(Message::Text(t))) = ws.next().await else {
                    panic!("no answer to the setup call")
                };
                if t.contains(r#""id":0"#) {
                    assert!(t.contains("result"), "setup failed: {t}");
                    break;
                }
            }
            ws
        }
        Kind::Socketio => {
            let mut ws = connect(&socketio_url(url)).await;
            // Engine.IO open packet, then the Socket.IO connect to the default namespace.
            let Some(Ok(Message::Text(open))) = ws.next().await else {
                panic!("no Engine.IO open packet")
            };
            assert!(open.starts_with('0'), "{open}");
            ws.send(Message::text("40")).await.expect("send");
            loop {
                let Some(Ok(Message::Text(t))) = ws.next().await else {
                    panic!("no Socket.IO connect answer")
                };
                if t.starts_with("40") {
                    break;
                }
            }
            ws
        }
    }
}

/// The frame the publisher sends for message `seq`.
fn publication(kind: Kind, seq: u64, t: u64, pad: &str, room: &str) -> String {
    let text = format!("s={seq} t={t} {pad}");
    match kind {
        // The bytes wirecall's subscribers receive for the same message.
        Kind::Minimal => format!(
            r#"{{"jsonrpc":"2.0","method":"Chat.room","params":{{"subscription":1,"result":{{"room":"lobby","from":"publisher","text":"{text}"}},"epoch":"0123456789abcdef","offset":{seq}}}}}"#
        ),
        Kind::Wirecall => format!(
            r#"{{"jsonrpc":"2.0","id":{seq},"method":"Chat.say","params":{{"room":"{room}","text":"{text}"}}}}"#
        ),
        Kind::Socketio => {
            format!(r#"42["pub",{{"room":"lobby","from":"publisher","text":"{text}"}}]"#)
        }
    }
}

async fn measure(run: Run) {
    assert!(
        run.keys >= 1 && run.subs.is_multiple_of(run.keys),
        "--subs must be a multiple of --keys"
    );
    assert!(
        run.keys == 1 || run.kind == Kind::Wirecall,
        "--keys is for --kind wirecall"
    );
    let progress = Arc::new(Progress {
        received: (0..RING).map(|_| AtomicU32::new(0)).collect(),
        // Each publication reaches the subscribers of its room.
        subs: (run.subs / run.keys) as u32,
        advanced: Notify::new(),
        measuring: AtomicBool::new(false),
        deliveries: AtomicU64::new(0),
    });
    let start = Instant::now();
    let histograms: Arc<Mutex<Histogram<u64>>> = Arc::new(Mutex::new(
        Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
    ));

    // Subscribers, connected a few hundred at a time.
    let mut readers = Vec::new();
    for chunk in (0..run.subs).collect::<Vec<_>>().chunks(200) {
        let opened = futures_util::future::join_all(chunk.iter().map(|&i| {
            let room = run.room(i as u64);
            let run = &run;
            async move { open(run.kind, run.url(i), false, &room).await }
        }))
        .await;
        for ws in opened {
            let progress = progress.clone();
            let histograms = histograms.clone();
            let kind = run.kind;
            readers.push(tokio::spawn(async move {
                let (mut sink, mut stream) = ws.split();
                while let Some(Ok(m)) = stream.next().await {
                    let Message::Text(text) = m else { continue };
                    if kind == Kind::Socketio && &*text == "2" {
                        let _ = sink.send(Message::text("3")).await;
                        continue;
                    }
                    if let Some((seq, t)) = stamp(&text) {
                        if progress.measuring.load(Ordering::Relaxed) {
                            // One thread: the lock is never contended.
                            let latency = micros(start).saturating_sub(t).max(1);
                            let _ = histograms.lock().unwrap().record(latency);
                        }
                        progress.delivered(seq);
                    }
                }
            }));
        }
    }

    let mut publisher = open(run.kind, &run.urls[0], true, "lobby").await;
    if run.keys > 1 {
        // `Chat.say` needs a member of the room: join them all first.
        for k in 0..run.keys as u64 {
            let join = format!(
                r#"{{"jsonrpc":"2.0","id":"j{k}","method":"Chat.join","params":{{"room":"{}","name":"publisher"}}}}"#,
                run.room(k)
            );
            publisher.send(Message::text(join)).await.expect("send");
        }
        let mut joined = 0;
        while joined < run.keys {
            let Some(Ok(Message::Text(t))) = publisher.next().await else {
                panic!("no answer to a join")
            };
            if t.contains(r#""id":"j"#) {
                assert!(t.contains("result"), "join failed: {t}");
                joined += 1;
            }
        }
    }
    let (mut sink, mut stream) = publisher.split();
    // Answers to the publisher (wirecall's `say` results, Socket.IO pings) are read and
    // dropped.
    tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    let pad = "x".repeat(run.pad);
    let warm_until = Duration::from_secs_f64(run.warmup);
    let end = Duration::from_secs_f64(run.warmup + run.seconds);
    let mut seq = 0u64;
    let mut measured_from = None;
    loop {
        let now = start.elapsed();
        if measured_from.is_none() && now >= warm_until {
            progress.deliveries.store(0, Ordering::Relaxed);
            progress.measuring.store(true, Ordering::Relaxed);
            measured_from = Some((Instant::now(), seq));
        }
        if now >= end {
            break;
        }
        // Keep at most `window` messages ahead of the slowest subscriber.
        while seq >= run.window && !progress.complete(seq - run.window + 1) {
            let _ = tokio::time::timeout(Duration::from_millis(100), progress.advanced.notified())
                .await;
        }
        seq += 1;
        progress.received[seq as usize % RING].store(0, Ordering::Release);
        let frame = publication(run.kind, seq, micros(start), &pad, &run.room(seq));
        sink.send(Message::Text(Utf8Bytes::from(frame)))
            .await
            .expect("publish");
    }
    progress.measuring.store(false, Ordering::Relaxed);
    let (from, first_seq) = measured_from.expect("measured");
    let elapsed = from.elapsed().as_secs_f64();
    let deliveries = progress.deliveries.load(Ordering::Relaxed);
    for r in &readers {
        r.abort();
    }
    let hist = histograms.lock().unwrap().clone();
    println!(
        "{}",
        serde_json::json!({
            "label": run.label,
            "kind": format!("{:?}", run.kind).to_lowercase(),
            "subs": run.subs,
            "seconds": elapsed,
            "messages": seq - first_seq,
            "deliveries_per_s": deliveries as f64 / elapsed,
            "p50_us": hist.value_at_quantile(0.5),
            "p99_us": hist.value_at_quantile(0.99),
            "max_us": hist.max(),
            "samples": hist.len(),
        })
    );
}
