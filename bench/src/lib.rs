//! Benchmarks: three servers for the calculator's `add` and `echo` (wirecall's generated
//! server, jsonrpsee, and a minimal hand-written responder on tokio-tungstenite — the
//! practical limit), a neutral load generator, a raw WAMP load generator ([`wamp`], the
//! `wampgen` binary), and a client comparison. `bench/run.sh` runs them all and prints
//! one table; see the README's "Benchmarks".

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

pub mod wamp;

/// The servers under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Impl {
    /// wirecall's generated calculator server.
    Wirecall,
    /// jsonrpsee with the same methods.
    Jsonrpsee,
    /// A minimal JSON-RPC responder on tokio-tungstenite.
    Minimal,
    /// A minimal JSON-RPC over HTTP responder on hyper (POST only).
    MinimalHttp,
}

/// Serve `imp` on `addr` until the process ends; returns the bound address through
/// `ready` first.
pub async fn serve(imp: Impl, addr: &str, ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    match imp {
        Impl::Wirecall => {
            use wirecall_examples::calculator::Calculator;
            let mut builder = wirecall::Server::builder().max_connections(100_000);
            // The read buffer's size trades idle memory and small-message CPU (tungstenite
            // zeroes the buffer's free room before every read) against large messages (read
            // in pieces of this size): WIRECALL_BENCH_READ_BUFFER=BYTES to measure it.
            if let Some(n) = std::env::var("WIRECALL_BENCH_READ_BUFFER")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                builder = builder.connection_config(wirecall::config::ConnectionConfig {
                    read_buffer_size: n,
                    ..Default::default()
                });
            }
            // The cost of policy layers (issue #30): WIRECALL_BENCH_LAYER=noop (one layer
            // that passes every call on) or =rate (the rate-limit layer, at a rate no
            // generator reaches); unset, none (a base build without layers ignores it).
            let builder = match std::env::var("WIRECALL_BENCH_LAYER").as_deref() {
                Ok("noop") => builder.layer(wirecall::policy::from_fn(|req, next| next.run(req))),
                Ok("rate") => builder.layer(wirecall::policy::RateLimitLayer::per_second(
                    std::num::NonZeroU32::MAX,
                )),
                _ => builder,
            };
            let server = builder
                .bind(addr, wirecall_examples::CalcServer::default().into_router())
                .await?;
            ready(server.local_addr());
            server.stopped().await;
        }
        Impl::Jsonrpsee => {
            let config = jsonrpsee::server::ServerConfig::builder()
                .max_connections(100_000)
                .build();
            let server = jsonrpsee::server::Server::builder()
                .set_config(config)
                .build(addr)
                .await?;
            let mut module = jsonrpsee::RpcModule::new(());
            #[derive(Deserialize)]
            struct Add {
                a: i64,
                b: i64,
            }
            #[derive(Deserialize)]
            struct Echo {
                text: String,
            }
            module
                .register_method("Calculator.add", |p, _, _| {
                    let Add { a, b } = p.parse()?;
                    Ok::<_, jsonrpsee::types::ErrorObjectOwned>(a + b)
                })
                .map_err(std::io::Error::other)?;
            module
                .register_method("Calculator.echo", |p, _, _| {
                    let Echo { text } = p.parse()?;
                    Ok::<_, jsonrpsee::types::ErrorObjectOwned>(text)
                })
                .map_err(std::io::Error::other)?;
            ready(server.local_addr()?);
            let handle = server.start(module);
            handle.stopped().await;
        }
        Impl::Minimal => {
            let listener = TcpListener::bind(addr).await?;
            ready(listener.local_addr()?);
            loop {
                let (tcp, _) = listener.accept().await?;
                let _ = tcp.set_nodelay(true);
                tokio::spawn(minimal_connection(tcp));
            }
        }
        Impl::MinimalHttp => {
            let listener = TcpListener::bind(addr).await?;
            ready(listener.local_addr()?);
            loop {
                let (tcp, _) = listener.accept().await?;
                let _ = tcp.set_nodelay(true);
                tokio::spawn(minimal_http_connection(tcp));
            }
        }
    }
    Ok(())
}

/// The practical limit over HTTP: hyper's HTTP/1.1 server, read the body, answer.
async fn minimal_http_connection(tcp: tokio::net::TcpStream) {
    use http_body_util::{BodyExt, Full};
    let service = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async {
        let body = req.into_body().collect().await?.to_bytes();
        let mut out = String::new();
        answer(std::str::from_utf8(&body).unwrap_or(""), &mut out);
        let mut resp = hyper::Response::new(Full::new(bytes::Bytes::from(out)));
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        Ok::<_, hyper::Error>(resp)
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .await;
}

/// A JSON-RPC request, borrowed.
#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    method: &'a str,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AddParams {
    a: i64,
    b: i64,
}

#[derive(Deserialize)]
struct EchoParams<'a> {
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

/// The practical limit: parse, compute, answer; one task per connection, one flush per
/// burst of requests.
async fn minimal_connection(tcp: tokio::net::TcpStream) {
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(64 * 1024)
        .max_message_size(Some(10 << 20));
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else {
        return;
    };
    let mut out = String::new();
    while let Some(Ok(msg)) = ws.next().await {
        let mut pending = Some(msg);
        let mut wrote = false;
        while let Some(msg) = pending.take() {
            if let Message::Text(text) = msg {
                out.clear();
                answer(&text, &mut out);
                if !out.is_empty() {
                    if ws.feed(Message::text(out.clone())).await.is_err() {
                        return;
                    }
                    wrote = true;
                }
            }
            // Take whatever else is already there before flushing.
            if let Some(Some(Ok(next))) = futures_util::FutureExt::now_or_never(ws.next()) {
                pending = Some(next);
            }
        }
        if wrote && ws.flush().await.is_err() {
            return;
        }
    }
}

fn answer(text: &str, out: &mut String) {
    let Ok(req) = serde_json::from_str::<Request<'_>>(text) else {
        out.push_str(
            r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#,
        );
        return;
    };
    let Some(id) = req.id else { return };
    let params = req.params.map_or("null", |p| p.get());
    let result = match req.method {
        "Calculator.add" => serde_json::from_str::<AddParams>(params)
            .ok()
            .map(|p| (p.a + p.b).to_string()),
        "Calculator.echo" => serde_json::from_str::<EchoParams<'_>>(params)
            .ok()
            .and_then(|p| serde_json::to_string(&p.text).ok()),
        _ => None,
    };
    match result {
        Some(r) => {
            out.push_str(r#"{"jsonrpc":"2.0","result":"#);
            out.push_str(&r);
        }
        None => {
            out.push_str(r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"}"#)
        }
    }
    out.push_str(r#","id":"#);
    out.push_str(id.get());
    out.push('}');
}

/// CPU time (user + system) this process has used.
pub fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // The kernel's USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
