//! Topic keys under a flood (issue #27): what a topic key and a subscription cost the
//! server, and that the memory hub's bounds hold while a client picks as many keys as it
//! likes. Not a test (the figures want a release build and a quiet machine):
//!
//! ```text
//! cargo build --release -p wirecall-examples --bin chat -p wirecall-bench --bin topic-flood
//! target/release/topic-flood                      # 50 000 keys per door, default bounds
//! target/release/topic-flood --keys 20000 --max-keys 30000 --extra 60000
//! ```
//!
//! It starts `chat serve` (memory hub; `--max-keys` is passed on) as a child process and
//! reads its resident memory (`/proc/PID/status`) after each step:
//!
//! 0. 100 *watchers* subscribe to rooms `v0`…`v99` over JSON-RPC, note their starting
//!    position and go; one message is then published to each of those rooms.
//! 1. One WAMP session publishes a 200-byte `Message` to `Chat.room.w0`…`w{keys-1}`.
//! 2. One JSON-RPC connection `join`s and `say`s in rooms `j0`…`j{keys-1}`.
//! 3. `--conns` connections each subscribe to 1 024 fresh rooms (the per-connection cap).
//! 4. A new client connects, joins and says something: how long it waits.
//! 5. The watchers come back with `$since` their position: each must see the message,
//!    or — where the hub dropped that room's history to stay within its bound — a gap.
//!    Never neither.
//! 6. Three times `--extra` more rooms are published to over WAMP: resident memory stays
//!    within the bound (the first round adds remembered positions, bounded as well; the
//!    second may double the key map's table once, under churn; then nothing).
//!
//! Exit status 1 if a watcher saw neither its message nor a gap, a publication failed, or
//! the new client waited more than 2 s.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use wirecall::Client;
use wirecall_examples::chat::ChatClient;

#[derive(Parser)]
struct Args {
    /// Distinct rooms published to over WAMP, and again over JSON-RPC.
    #[arg(long, default_value_t = 50_000)]
    keys: usize,
    /// Connections that each subscribe to 1 024 fresh rooms.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Rooms published to after the checks, to show memory stays bounded.
    #[arg(long, default_value_t = 100_000)]
    extra: usize,
    /// Passed to `chat serve --max-keys` (default: its own default).
    #[arg(long)]
    max_keys: Option<usize>,
    /// The `chat` binary (default: next to this one).
    #[arg(long)]
    chat_bin: Option<String>,
}

const WATCHERS: usize = 100;

fn text() -> String {
    // With the room and the sender, the `Message` is about 200 bytes of JSON.
    "x".repeat(160)
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server runs");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    /// Resident memory once the server is idle.
    async fn settled_rss(&self) -> u64 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.rss()
    }
}

async fn start(args: &Args) -> Server {
    let bin = args.chat_bin.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap();
        me.with_file_name("chat").to_string_lossy().into_owned()
    });
    let mut command = Command::new(&bin);
    command.args(["serve", "127.0.0.1:0"]);
    if let Some(n) = args.max_keys {
        command.args(["--max-keys", &n.to_string()]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {bin} (build it first): {e}"));
    let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next_line().await.unwrap().expect("chat said nothing");
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    Server { child, url }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn json_rpc(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await.expect("the server closed").unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Subscribe to rooms `v{i}` (from `since[i]` if given); what each subscription's first
/// notification says, by room (`null` if nothing came within 10 s).
async fn watch(url: &str, since: Option<&[Value]>) -> Vec<Value> {
    let mut ws = json_rpc(url).await;
    for i in 0..WATCHERS {
        let mut params = json!({"room": format!("v{i}")});
        if let Some(since) = since {
            params["$since"] = since[i].clone();
        }
        let request = json!({"jsonrpc": "2.0", "id": i, "method": "Chat.room", "params": params});
        ws.send(Message::text(request.to_string())).await.unwrap();
    }
    let mut rooms = HashMap::new();
    let mut first: HashMap<usize, Value> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.len() < WATCHERS {
        let Ok(frame) = tokio::time::timeout_at(deadline.into(), next_json(&mut ws)).await else {
            break;
        };
        if let Some(id) = frame["id"].as_u64() {
            let sub = frame["result"]
                .as_u64()
                .unwrap_or_else(|| panic!("{frame}"));
            rooms.insert(sub, id as usize);
        } else {
            let params = &frame["params"];
            let room = rooms[&params["subscription"].as_u64().unwrap()];
            first.entry(room).or_insert_with(|| params.clone());
        }
    }
    let _ = ws.close(None).await;
    (0..WATCHERS)
        .map(|i| first.remove(&i).unwrap_or(Value::Null))
        .collect()
}

/// Publish a `Message` to rooms `{prefix}{from..to}` over one WAMP session; the failures.
async fn wamp_publish(url: &str, prefix: &str, range: std::ops::Range<usize>) -> u64 {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wamp.2.json".parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let hello = json!([1, "realm1", {"roles": {"publisher": {}}}]);
    tx.send(Message::text(hello.to_string())).await.unwrap();
    let welcome = rx.next().await.unwrap().unwrap();
    assert!(welcome.to_text().unwrap().starts_with("[2,"), "{welcome}");
    let total = range.len() as u64;
    let window = Arc::new(tokio::sync::Semaphore::new(512));
    let failed = Arc::new(AtomicU64::new(0));
    let reader = {
        let (window, failed) = (window.clone(), failed.clone());
        tokio::spawn(async move {
            let mut done = 0;
            while done < total {
                let Some(Ok(Message::Text(t))) = rx.next().await else {
                    panic!("the WAMP session ended after {done} of {total}");
                };
                let v: Value = serde_json::from_str(&t).unwrap();
                match v[0].as_u64() {
                    Some(17) => {}
                    Some(8) => {
                        if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("a WAMP publication failed: {v}");
                        }
                    }
                    _ => continue,
                }
                done += 1;
                window.add_permits(1);
            }
        })
    };
    let text = text();
    for i in range {
        window.acquire().await.unwrap().forget();
        let room = format!("{prefix}{i}");
        let publish = json!([16, i + 1, {"acknowledge": true}, format!("Chat.room.{room}"),
            [{"room": room, "from": "flood", "text": text}]]);
        tx.send(Message::text(publish.to_string())).await.unwrap();
    }
    reader.await.unwrap();
    failed.load(Ordering::Relaxed)
}

/// `join` and `say` in rooms `j0`…: the failures.
async fn json_rpc_publish(url: &str, keys: usize) -> u64 {
    let chat = ChatClient::new(Client::connect(url).await.unwrap());
    let text = text();
    let failed = AtomicU64::new(0);
    futures_util::stream::iter(0..keys)
        .for_each_concurrent(256, |i| {
            let (chat, text, failed) = (&chat, &text, &failed);
            async move {
                let room = format!("j{i}");
                let said = match chat.join(room.clone(), "flood".into()).await {
                    Ok(_) => chat
                        .say(room, text.clone())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = said {
                    if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("a JSON-RPC publication failed: {e}");
                    }
                }
            }
        })
        .await;
    failed.load(Ordering::Relaxed)
}

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let server = start(&args).await;
    let url = server.url.clone();
    let mut ok = true;
    println!("chat serve at {url} (pid {})", server.child.id());
    let base = server.settled_rss().await;
    println!("| step | resident | growth | per key / subscription |");
    println!("|---|---|---|---|");
    println!("| started | {} | | |", mb(base as i64));

    // 0. Watchers note where rooms v* start, then one message each.
    let starts: Vec<Value> = watch(&url, None)
        .await
        .into_iter()
        .map(|first| first["position"].clone())
        .collect();
    assert!(starts.iter().all(|p| p["offset"] == 0), "{starts:?}");
    let failed = wamp_publish(&url, "v", 0..WATCHERS).await;

    // 1. WAMP.
    let before = server.settled_rss().await;
    let t = Instant::now();
    let failed = failed + wamp_publish(&url, "w", 0..args.keys).await;
    let after_wamp = server.settled_rss().await;
    let growth = after_wamp as i64 - before as i64;
    println!(
        "| {} rooms published to over WAMP ({:.1} s) | {} | {} | {} B |",
        args.keys,
        t.elapsed().as_secs_f64(),
        mb(after_wamp as i64),
        mb(growth),
        growth / args.keys as i64
    );

    // 2. JSON-RPC.
    let t = Instant::now();
    let failed = failed + json_rpc_publish(&url, args.keys).await;
    let after_rpc = server.settled_rss().await;
    let growth = after_rpc as i64 - after_wamp as i64;
    println!(
        "| {} rooms joined and said in over JSON-RPC ({:.1} s) | {} | {} | {} B (the example's room and member too) |",
        args.keys,
        t.elapsed().as_secs_f64(),
        mb(after_rpc as i64),
        mb(growth),
        growth / args.keys as i64
    );
    if failed > 0 {
        println!("FAILED: {failed} publications failed");
        ok = false;
    }

    // 3. Subscriptions to fresh rooms.
    let t = Instant::now();
    let mut held = Vec::new();
    for c in 0..args.conns {
        let chat = ChatClient::new(Client::connect(&url).await.unwrap());
        let subs = futures_util::stream::iter(0..1024)
            .map(|i| {
                let chat = chat.clone();
                async move { chat.room(format!("s{c}-{i}")).await.unwrap() }
            })
            .buffer_unordered(128)
            .collect::<Vec<_>>()
            .await;
        held.push((chat, subs));
    }
    let after_subs = server.settled_rss().await;
    let growth = after_subs as i64 - after_rpc as i64;
    let n = (args.conns * 1024) as i64;
    println!(
        "| {n} subscriptions to fresh rooms on {} connections ({:.1} s) | {} | {} | {} B |",
        args.conns,
        t.elapsed().as_secs_f64(),
        mb(after_subs as i64),
        mb(growth),
        growth / n
    );

    // 4. A real client, now.
    let t = Instant::now();
    let chat = ChatClient::new(Client::connect(&url).await.unwrap());
    chat.join("real".into(), "me".into()).await.unwrap();
    let at = chat.say("real".into(), "hello".into()).await.unwrap();
    let waited = t.elapsed();
    println!(
        "| a new client connects, joins, says (offset {at}) | | | answered in {:.1} ms |",
        waited.as_secs_f64() * 1e3
    );
    if waited > Duration::from_secs(2) {
        println!("FAILED: the new client waited {waited:?}");
        ok = false;
    }

    // 5. The watchers come back.
    let back = watch(&url, Some(&starts)).await;
    let (mut items, mut gaps, mut neither) = (0, 0, 0);
    for first in &back {
        if first.get("gap").is_some() {
            gaps += 1;
        } else if first["offset"] == 1 {
            items += 1;
        } else {
            neither += 1;
            if neither == 1 {
                eprintln!("a watcher saw neither its message nor a gap: {first}");
            }
        }
    }
    println!(
        "| {WATCHERS} watchers resume from their start | | | {items} got their message, {gaps} a gap (history evicted), {neither} neither |"
    );
    if neither > 0 {
        ok = false;
    }

    // 6. More rooms: memory stays bounded.
    let mut before = after_subs;
    for round in ["x", "y", "z"].into_iter().filter(|_| args.extra > 0) {
        let t = Instant::now();
        let failed = wamp_publish(&url, round, 0..args.extra).await;
        let after_extra = server.settled_rss().await;
        let growth = after_extra as i64 - before as i64;
        before = after_extra;
        println!(
            "| {} more rooms over WAMP ({:.1} s) | {} | {} | {} B |",
            args.extra,
            t.elapsed().as_secs_f64(),
            mb(after_extra as i64),
            mb(growth),
            growth / args.extra as i64
        );
        if failed > 0 {
            println!("FAILED: {failed} publications failed");
            ok = false;
        }
        let t = Instant::now();
        let at = chat.say("real".into(), "still here".into()).await.unwrap();
        println!(
            "| the client says again (offset {at}) | | | answered in {:.1} ms |",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    drop(held);
    if !ok {
        std::process::exit(1);
    }
}
