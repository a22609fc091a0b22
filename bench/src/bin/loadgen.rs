//! A neutral load generator on raw tokio-tungstenite: C connections × K requests in
//! flight, pre-serialized requests, every reply matched by id and checked, latency in an
//! HDR histogram, and the generator's own CPU use so it is never the hidden bottleneck.
//!
//! ```text
//! loadgen --url ws://127.0.0.1:9000 --conns 32 --inflight 16 --method add --seconds 5
//! loadgen --url ws://127.0.0.1:9000 --idle 2000 --server-pid 1234   # idle memory
//! loadgen --url http://127.0.0.1:9000 --conns 32                     # HTTP POST, keep-alive
//! ```
//! With an `http://` URL each connection is an HTTP/1.1 keep-alive connection with one
//! POST in flight (HTTP/1.1 has no multiplexing), which is how JSON-RPC-over-HTTP clients
//! use it.
//! Prints one JSON object per run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Clone)]
struct Args {
    /// The server's URL.
    #[arg(long)]
    url: String,
    /// Connections.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// `add` or `echo`.
    #[arg(long, default_value = "add")]
    method: String,
    /// Size of the text `echo` sends, in bytes.
    #[arg(long, default_value_t = 16)]
    payload: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up seconds (not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Idle mode: open this many connections, send nothing, and report the server's memory.
    #[arg(long)]
    idle: Option<usize>,
    /// The server's process id (idle mode).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A label for the output.
    #[arg(long, default_value = "")]
    label: String,
}

/// A request with a hole for the id, and the result it must produce.
struct Template {
    prefix: String,
    expected: String,
}

impl Template {
    fn new(args: &Args) -> Template {
        match args.method.as_str() {
            "echo" => {
                let text: String = "x".repeat(args.payload);
                Template {
                    prefix: format!(
                        r#"{{"jsonrpc":"2.0","method":"Calculator.echo","params":{{"text":"{text}"}},"id":"#
                    ),
                    expected: format!(r#""{text}""#),
                }
            }
            _ => Template {
                prefix:
                    r#"{"jsonrpc":"2.0","method":"Calculator.add","params":{"a":1,"b":2},"id":"#
                        .to_string(),
                expected: "3".to_string(),
            },
        }
    }

    fn request(&self, id: u64) -> Message {
        Message::text(self.text(id))
    }

    fn text(&self, id: u64) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 24);
        s.push_str(&self.prefix);
        s.push_str(&id.to_string());
        s.push('}');
        s
    }
}

#[derive(Deserialize)]
struct Reply<'a> {
    id: u64,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
}

struct ConnStats {
    done: u64,
    errors: u64,
    hist: Histogram<u64>,
}

async fn connection(
    args: Arc<Args>,
    template: Arc<Template>,
    start: Instant,
    end: Instant,
) -> ConnStats {
    let (mut ws, _) = tokio_tungstenite::connect_async(args.url.as_str())
        .await
        .expect("connect");
    let k = args.inflight.max(1);
    let slots = (k * 4).next_power_of_two();
    let mut sent_at = vec![Instant::now(); slots];
    let mut stats = ConnStats {
        done: 0,
        errors: 0,
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    };
    let mut next_id = 0u64;
    let mut outstanding = 0usize;
    for _ in 0..k {
        sent_at[(next_id as usize) & (slots - 1)] = Instant::now();
        ws.feed(template.request(next_id)).await.expect("send");
        next_id += 1;
        outstanding += 1;
    }
    ws.flush().await.expect("flush");
    let measuring_from = start;
    while outstanding > 0 {
        let mut replies = Vec::with_capacity(k);
        match ws.next().await {
            Some(Ok(Message::Text(t))) => replies.push(t),
            Some(Ok(_)) => continue,
            _ => break,
        }
        // Everything else that is already here, without waiting.
        while replies.len() < k {
            match ws.next().now_or_never() {
                Some(Some(Ok(Message::Text(t)))) => replies.push(t),
                Some(Some(Ok(_))) => continue,
                _ => break,
            }
        }
        let now = Instant::now();
        for text in &replies {
            outstanding -= 1;
            match serde_json::from_str::<Reply<'_>>(text) {
                Ok(r) if r.result.map(|v| v.get()) == Some(template.expected.as_str()) => {
                    if now >= measuring_from && now < end {
                        stats.done += 1;
                        let sent = sent_at[(r.id as usize) & (slots - 1)];
                        let micros = now.duration_since(sent).as_micros().max(1) as u64;
                        let _ = stats.hist.record(micros);
                    }
                }
                _ => stats.errors += 1,
            }
            if now < end {
                sent_at[(next_id as usize) & (slots - 1)] = Instant::now();
                if ws.feed(template.request(next_id)).await.is_err() {
                    return stats;
                }
                next_id += 1;
                outstanding += 1;
            }
        }
        if ws.flush().await.is_err() {
            break;
        }
    }
    let _ = ws.close(None).await;
    stats
}

/// One HTTP/1.1 keep-alive connection: POST, wait for the answer, check it, repeat. The
/// requests are written as bytes and the answers parsed by hand (status line,
/// `content-length`), so the generator costs little next to the server it measures.
async fn http_connection(
    args: Arc<Args>,
    template: Arc<Template>,
    start: Instant,
    end: Instant,
) -> ConnStats {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = args.url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut tcp = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let _ = tcp.set_nodelay(true);
    let mut stats = ConnStats {
        done: 0,
        errors: 0,
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut req: Vec<u8> = Vec::with_capacity(512);
    let mut id = 0u64;
    'requests: loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let body = template.text(id);
        id += 1;
        req.clear();
        req.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(body.as_bytes());
        if tcp.write_all(&req).await.is_err() {
            stats.errors += 1;
            break;
        }
        buf.clear();
        let (head_end, body_len) = loop {
            if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..head_end]).unwrap_or("");
                let ok = head.starts_with("HTTP/1.1 200");
                let len = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                });
                match (ok, len) {
                    (true, Some(len)) => break (head_end + 4, len),
                    _ => {
                        stats.errors += 1;
                        break 'requests;
                    }
                }
            }
            match tcp.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    stats.errors += 1;
                    break 'requests;
                }
                Ok(_) => {}
            }
        };
        while buf.len() < head_end + body_len {
            match tcp.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    stats.errors += 1;
                    break 'requests;
                }
                Ok(_) => {}
            }
        }
        let now = Instant::now();
        match serde_json::from_slice::<Reply<'_>>(&buf[head_end..head_end + body_len]) {
            Ok(r) if r.result.map(|v| v.get()) == Some(template.expected.as_str()) => {
                if now >= start && now < end {
                    stats.done += 1;
                    let micros = now.duration_since(sent).as_micros().max(1) as u64;
                    let _ = stats.hist.record(micros);
                }
            }
            _ => stats.errors += 1,
        }
    }
    stats
}

async fn idle(args: &Args, n: usize) {
    let pid = args
        .server_pid
        .expect("--server-pid is required with --idle");
    let before = wirecall_bench::rss_kib(pid).unwrap_or(0);
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let (ws, _) = tokio_tungstenite::connect_async(args.url.as_str())
            .await
            .expect("connect");
        conns.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = wirecall_bench::rss_kib(pid).unwrap_or(0);
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        r#"{{"label":"{}","idle_connections":{n},"rss_before_kib":{before},"rss_after_kib":{after},"bytes_per_connection":{per_conn:.0}}}"#,
        args.label
    );
    drop(conns);
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if let Some(n) = args.idle {
            idle(&args, n).await;
            return;
        }
        let template = Arc::new(Template::new(&args));
        let args = Arc::new(args);
        let begin = Instant::now();
        let start = begin + Duration::from_secs_f64(args.warmup);
        let end = start + Duration::from_secs_f64(args.seconds);
        let cpu_start = wirecall_bench::cpu_time();
        let http = args.url.starts_with("http://");
        let tasks: Vec<_> = (0..args.conns)
            .map(|_| {
                let (args, template) = (args.clone(), template.clone());
                if http {
                    tokio::spawn(http_connection(args, template, start, end).boxed())
                } else {
                    tokio::spawn(connection(args, template, start, end).boxed())
                }
            })
            .collect();
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        let (mut done, mut errors) = (0, 0);
        for t in tasks {
            let s = t.await.expect("connection task");
            done += s.done;
            errors += s.errors;
            hist.add(&s.hist).expect("merge");
        }
        let wall = begin.elapsed().as_secs_f64();
        let cpu = (wirecall_bench::cpu_time() - cpu_start).as_secs_f64();
        println!(
            r#"{{"label":"{}","conns":{},"inflight":{},"method":"{}","rps":{:.0},"p50_us":{},"p99_us":{},"errors":{},"generator_cpu":{:.2}}}"#,
            args.label,
            args.conns,
            args.inflight,
            args.method,
            done as f64 / args.seconds,
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            errors,
            cpu / wall
        );
    });
}
