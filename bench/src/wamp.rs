//! A raw WAMP v2 load generator on tokio-tungstenite: the caller's side of the Basic
//! Profile and nothing else. Each connection offers one serializer's subprotocol
//! (`wamp.2.json` in text frames, `wamp.2.msgpack` or `wamp.2.cbor` in binary frames), joins a realm
//! (`HELLO` → `WELCOME`), then keeps up to `inflight` `CALL`s of `Calculator.add(1, 2)` in
//! flight, matching every `RESULT` (which must carry `[3]`) or `ERROR` to its call by
//! request id and timing it in an HDR histogram, like `loadgen` does for JSON-RPC.
//!
//! Nothing here waits without a bound: a refused subprotocol fails the run at the
//! handshake ([`WampError::Refused`]), and a connection that receives nothing for
//! [`STALL`] while calls are in flight stops and counts them as errors.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The procedure called: the calculator's `add`, its arguments by position.
pub const PROCEDURE: &str = "Calculator.add";
/// The arguments of every call.
const ARGS: (i64, i64) = (1, 2);
/// What every `RESULT` must carry.
const EXPECTED: i64 = 3;

/// How long the WebSocket handshake plus `HELLO` → `WELCOME` may take.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a connection with calls in flight waits for any message before it gives up.
pub const STALL: Duration = Duration::from_secs(10);

const HELLO: u64 = 1;
const WELCOME: u64 = 2;
const ABORT: u64 = 3;
const GOODBYE: u64 = 6;
const ERROR: u64 = 8;
const CALL: u64 = 48;
const RESULT: u64 = 50;

/// A WAMP serializer, and so the subprotocol the generator offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Serializer {
    /// `wamp.2.json`, text frames.
    Json,
    /// `wamp.2.msgpack`, binary frames.
    Msgpack,
    /// `wamp.2.cbor`, binary frames.
    Cbor,
}

impl Serializer {
    /// The WebSocket subprotocol of this serializer.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Serializer::Json => "wamp.2.json",
            Serializer::Msgpack => "wamp.2.msgpack",
            Serializer::Cbor => "wamp.2.cbor",
        }
    }

    /// The name used in labels and output (`json`, `msgpack`, `cbor`).
    pub fn name(self) -> &'static str {
        match self {
            Serializer::Json => "json",
            Serializer::Msgpack => "msgpack",
            Serializer::Cbor => "cbor",
        }
    }

    fn encode<T: Serialize>(self, value: &T) -> Message {
        match self {
            Serializer::Json => {
                Message::text(serde_json::to_string(value).expect("a WAMP message serializes"))
            }
            Serializer::Msgpack => {
                Message::binary(rmp_serde::to_vec(value).expect("a WAMP message serializes"))
            }
            Serializer::Cbor => {
                let mut out = Vec::new();
                ciborium::ser::into_writer(value, &mut out).expect("a WAMP message serializes");
                Message::binary(out)
            }
        }
    }

    fn decode(self, msg: &Message) -> Result<Incoming, String> {
        match (self, msg) {
            (Serializer::Json, Message::Text(text)) => {
                serde_json::from_str(text).map_err(|e| format!("{e}: {}", quote(text)))
            }
            (Serializer::Msgpack, Message::Binary(bytes)) => {
                rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
            }
            (Serializer::Cbor, Message::Binary(bytes)) => {
                ciborium::de::from_reader(&bytes[..]).map_err(|e| e.to_string())
            }
            (_, other) => Err(format!(
                "a {} frame where {} sends {} frames",
                frame_kind(other),
                self.subprotocol(),
                match self {
                    Serializer::Json => "text",
                    Serializer::Msgpack | Serializer::Cbor => "binary",
                }
            )),
        }
    }
}

fn frame_kind(msg: &Message) -> &'static str {
    match msg {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        Message::Ping(_) => "ping",
        Message::Pong(_) => "pong",
        Message::Close(_) => "close",
        Message::Frame(_) => "raw",
    }
}

fn quote(text: &str) -> String {
    let cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// What a run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server's `ws://` URL.
    pub url: String,
    /// Connections.
    pub conns: usize,
    /// Calls in flight per connection.
    pub inflight: usize,
    /// Time before the measurement starts (calls answered then are not counted).
    pub warmup: Duration,
    /// Measured time.
    pub seconds: Duration,
    /// The serializer (and subprotocol) every connection uses.
    pub serializer: Serializer,
    /// The realm named in `HELLO`.
    pub realm: String,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
    /// Calls answered with the right `RESULT` inside the measured time.
    pub calls: u64,
    /// `ERROR`s, wrong or unmatched results, undecodable messages, and calls still in
    /// flight when a connection ended early or stalled — at any time of the run.
    pub errors: u64,
    /// The first `ERROR`'s URI or the first other failure, to say what went wrong.
    pub first_error: Option<String>,
    /// Latency of the counted calls, in µs.
    pub hist: Histogram<u64>,
}

/// Why a run could not start (or a connection could not join).
#[derive(Debug)]
pub enum WampError {
    /// The server did not accept the offered subprotocol.
    Refused {
        /// The subprotocol offered.
        subprotocol: &'static str,
        /// What the server said.
        detail: String,
    },
    /// The URL, TCP or the WebSocket handshake failed otherwise.
    Connect(String),
    /// The WAMP session did not open (`ABORT`, no `WELCOME`, a timeout).
    Join(String),
}

impl fmt::Display for WampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WampError::Refused {
                subprotocol,
                detail,
            } => write!(f, "server refused subprotocol {subprotocol} ({detail})"),
            WampError::Connect(e) => write!(f, "cannot connect: {e}"),
            WampError::Join(e) => write!(f, "cannot join the realm: {e}"),
        }
    }
}

impl std::error::Error for WampError {}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A message from the router, as far as a caller cares.
#[derive(Debug)]
enum Incoming {
    Welcome,
    Abort {
        reason: String,
        details: String,
    },
    Goodbye {
        reason: String,
    },
    Result {
        id: u64,
        value: Option<serde_json::Value>,
    },
    Error {
        id: u64,
        uri: String,
    },
    Other(u64),
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Incoming;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a WAMP message (an array starting with its type)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming, A::Error> {
                fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
                    seq: &mut A,
                    at: usize,
                ) -> Result<T, A::Error> {
                    seq.next_element()?
                        .ok_or_else(|| de::Error::invalid_length(at, &"a longer WAMP message"))
                }
                let ty: u64 = next(&mut seq, 0)?;
                let out = match ty {
                    WELCOME => {
                        let _session: IgnoredAny = next(&mut seq, 1)?;
                        Incoming::Welcome
                    }
                    ABORT => {
                        let details: serde_json::Value = next(&mut seq, 1)?;
                        let reason: String = next(&mut seq, 2)?;
                        Incoming::Abort {
                            reason,
                            details: details.to_string(),
                        }
                    }
                    GOODBYE => {
                        let _details: IgnoredAny = next(&mut seq, 1)?;
                        let reason: String = next(&mut seq, 2)?;
                        Incoming::Goodbye { reason }
                    }
                    RESULT => {
                        let id: u64 = next(&mut seq, 1)?;
                        let _details: IgnoredAny = next(&mut seq, 2)?;
                        let args: Option<Vec<serde_json::Value>> = seq.next_element()?;
                        Incoming::Result {
                            id,
                            value: args.and_then(|a| a.into_iter().next()),
                        }
                    }
                    ERROR => {
                        let _request_type: u64 = next(&mut seq, 1)?;
                        let id: u64 = next(&mut seq, 2)?;
                        let _details: IgnoredAny = next(&mut seq, 3)?;
                        let uri: String = next(&mut seq, 4)?;
                        Incoming::Error { id, uri }
                    }
                    other => Incoming::Other(other),
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

/// `{}` in either serializer (an empty map, where an empty struct would be an array in
/// msgpack).
fn empty() -> BTreeMap<&'static str, ()> {
    BTreeMap::new()
}

fn call(serializer: Serializer, id: u64) -> Message {
    serializer.encode(&(CALL, id, empty(), PROCEDURE, [ARGS.0, ARGS.1]))
}

fn refused(subprotocol: &'static str, e: tungstenite::Error) -> WampError {
    match e {
        tungstenite::Error::Http(resp) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default();
            let status = resp.status();
            if status.is_client_error() {
                WampError::Refused {
                    subprotocol,
                    detail: format!("HTTP {status}: {body}"),
                }
            } else {
                WampError::Connect(format!("HTTP {status}: {body}"))
            }
        }
        tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => {
            WampError::Refused {
                subprotocol,
                detail: e.to_string(),
            }
        }
        e => WampError::Connect(e.to_string()),
    }
}

/// Open a WebSocket offering the serializer's subprotocol and join `realm` as a caller.
async fn join(url: &str, serializer: Serializer, realm: &str) -> Result<Ws, WampError> {
    let subprotocol = serializer.subprotocol();
    let opened = async {
        let mut req = url
            .into_client_request()
            .map_err(|e| WampError::Connect(format!("{url}: {e}")))?;
        req.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(subprotocol),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| refused(subprotocol, e))?;
        let hello = (
            HELLO,
            realm,
            BTreeMap::from([("roles", BTreeMap::from([("caller", empty())]))]),
        );
        ws.send(serializer.encode(&hello))
            .await
            .map_err(|e| WampError::Join(format!("sending HELLO: {e}")))?;
        loop {
            let msg = match ws.next().await {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => return Err(WampError::Join(format!("waiting for WELCOME: {e}"))),
                None => {
                    return Err(WampError::Join(
                        "the connection closed before WELCOME".into(),
                    ))
                }
            };
            if matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                continue;
            }
            if let Message::Close(frame) = &msg {
                return Err(WampError::Join(format!(
                    "the server closed before WELCOME ({frame:?})"
                )));
            }
            return match serializer.decode(&msg) {
                Ok(Incoming::Welcome) => Ok(ws),
                Ok(Incoming::Abort { reason, details }) => {
                    Err(WampError::Join(format!("ABORT {reason} {details}")))
                }
                Ok(other) => Err(WampError::Join(format!(
                    "expected WELCOME, received {other:?}"
                ))),
                Err(e) => Err(WampError::Join(format!(
                    "expected WELCOME, received an undecodable message: {e}"
                ))),
            };
        }
    };
    match tokio::time::timeout(HANDSHAKE, opened).await {
        Ok(r) => r,
        Err(_) => Err(WampError::Join(format!(
            "no WELCOME within {HANDSHAKE:?} of connecting"
        ))),
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

struct Stats {
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Histogram<u64>,
}

impl Stats {
    fn error(&mut self, n: u64, why: impl FnOnce() -> String) {
        if n > 0 {
            self.errors += n;
            if self.first_error.is_none() {
                self.first_error = Some(why());
            }
        }
    }
}

/// Queue the next call (flushed later), noting in its slot when it went out.
async fn send(
    ws: &mut Ws,
    serializer: Serializer,
    sent: &mut [Option<(u64, Instant)>],
    next_id: &mut u64,
) -> Result<(), tungstenite::Error> {
    let id = *next_id;
    *next_id += 1;
    let slot = (id as usize) & (sent.len() - 1);
    sent[slot] = Some((id, Instant::now()));
    ws.feed(call(serializer, id)).await
}

/// One connection: join, keep `inflight` calls in flight until `end`, then wait for the
/// last answers.
async fn connection(opts: &Options, start: Instant, end: Instant) -> Result<Stats, WampError> {
    let serializer = opts.serializer;
    let mut ws = join(&opts.url, serializer, &opts.realm).await?;
    let k = opts.inflight.max(1);
    let slots = (k * 4).next_power_of_two();
    // The call each slot waits for, and when it was sent (ids are 1, 2, 3, …).
    let mut sent: Vec<Option<(u64, Instant)>> = vec![None; slots];
    let mut stats = Stats {
        calls: 0,
        errors: 0,
        first_error: None,
        hist: histogram(),
    };
    let mut next_id = 1u64;
    let mut outstanding = 0u64;
    for _ in 0..k {
        if send(&mut ws, serializer, &mut sent, &mut next_id)
            .await
            .is_err()
        {
            stats.error(k as u64, || "the connection failed while sending".into());
            return Ok(stats);
        }
        outstanding += 1;
    }
    if ws.flush().await.is_err() {
        stats.error(outstanding, || "the connection failed while sending".into());
        return Ok(stats);
    }
    let mut batch = Vec::with_capacity(k);
    'run: while outstanding > 0 {
        batch.clear();
        match tokio::time::timeout(STALL, ws.next()).await {
            Ok(Some(Ok(msg))) => batch.push(msg),
            Ok(Some(Err(e))) => {
                stats.error(outstanding, || format!("connection failed: {e}"));
                break;
            }
            Ok(None) => {
                stats.error(outstanding, || "the server closed the connection".into());
                break;
            }
            Err(_) => {
                stats.error(outstanding, || {
                    format!("no answer for {STALL:?} with {outstanding} calls in flight")
                });
                break;
            }
        }
        // Everything else that is already here, without waiting.
        while batch.len() < k {
            match ws.next().now_or_never() {
                Some(Some(Ok(msg))) => batch.push(msg),
                _ => break,
            }
        }
        let now = Instant::now();
        for msg in batch.drain(..) {
            match msg {
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Close(frame) => {
                    stats.error(outstanding, || format!("the server closed: {frame:?}"));
                    break 'run;
                }
                _ => {}
            }
            match serializer.decode(&msg) {
                Ok(Incoming::Result { id, value }) => {
                    outstanding = outstanding.saturating_sub(1);
                    let slot = &mut sent[(id as usize) & (slots - 1)];
                    match slot.take() {
                        Some((sent_id, at)) if sent_id == id => {
                            let right = value.as_ref().and_then(serde_json::Value::as_i64)
                                == Some(EXPECTED);
                            if !right {
                                stats.error(1, || {
                                    format!("RESULT {value:?} where {EXPECTED} was expected")
                                });
                            } else if now >= start && now < end {
                                stats.calls += 1;
                                let micros = now.duration_since(at).as_micros().max(1) as u64;
                                let _ = stats.hist.record(micros);
                            }
                        }
                        other => {
                            *slot = other;
                            stats.error(1, || format!("RESULT for unknown request {id}"));
                        }
                    }
                }
                Ok(Incoming::Error { id, uri }) => {
                    outstanding = outstanding.saturating_sub(1);
                    let slot = &mut sent[(id as usize) & (slots - 1)];
                    if matches!(slot, Some((sent_id, _)) if *sent_id == id) {
                        *slot = None;
                    }
                    stats.error(1, || format!("ERROR {uri}"));
                }
                Ok(Incoming::Abort { reason, details }) => {
                    stats.error(outstanding, || format!("ABORT {reason} {details}"));
                    break 'run;
                }
                Ok(Incoming::Goodbye { reason }) => {
                    stats.error(outstanding, || format!("GOODBYE {reason}"));
                    break 'run;
                }
                Ok(Incoming::Welcome) => {
                    stats.error(1, || "a second WELCOME".into());
                    continue;
                }
                Ok(Incoming::Other(ty)) => {
                    stats.error(1, || format!("unexpected message type {ty}"));
                    continue;
                }
                Err(e) => {
                    // Only answers are expected: take it as one, so the run goes on.
                    outstanding = outstanding.saturating_sub(1);
                    stats.error(1, || format!("undecodable message: {e}"));
                }
            }
            if now < end {
                if send(&mut ws, serializer, &mut sent, &mut next_id)
                    .await
                    .is_err()
                {
                    stats.error(outstanding, || "the connection failed while sending".into());
                    break 'run;
                }
                outstanding += 1;
            }
        }
        if ws.flush().await.is_err() {
            stats.error(outstanding, || "the connection failed while sending".into());
            break;
        }
    }
    // Leave as WAMP says: GOODBYE, then close (not waiting long for the router's reply).
    let goodbye = (GOODBYE, empty(), "wamp.close.close_realm");
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = ws.send(serializer.encode(&goodbye)).await;
        let _ = ws.close(None).await;
    })
    .await;
    Ok(stats)
}

/// Run the load: `conns` connections (each on its own task), warm-up, measured time.
/// Fails if any connection cannot join (a refused subprotocol first of all); errors after
/// joining are counted in the report.
pub async fn run(opts: &Options) -> Result<Report, WampError> {
    let begin = Instant::now();
    let start = begin + opts.warmup;
    let end = start + opts.seconds;
    let tasks: Vec<_> = (0..opts.conns.max(1))
        .map(|_| {
            let opts = opts.clone();
            tokio::spawn(async move { connection(&opts, start, end).await })
        })
        .collect();
    let mut report = Report {
        calls: 0,
        errors: 0,
        first_error: None,
        hist: histogram(),
    };
    let mut failed = None;
    for t in tasks {
        match t.await.expect("connection task") {
            Ok(s) => {
                report.calls += s.calls;
                report.errors += s.errors;
                report.first_error = report.first_error.or(s.first_error);
                report.hist.add(&s.hist).expect("histogram merge");
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Join, make one call and check its result: whether the server speaks this serializer.
pub async fn probe(url: &str, serializer: Serializer, realm: &str) -> Result<(), WampError> {
    let mut ws = join(url, serializer, realm).await?;
    let answer = async {
        ws.send(call(serializer, 1))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(msg)) => return serializer.decode(&msg),
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the server closed the connection".into()),
            }
        }
    };
    let outcome = match tokio::time::timeout(STALL, answer).await {
        Ok(Ok(Incoming::Result { id: 1, value }))
            if value.as_ref().and_then(serde_json::Value::as_i64) == Some(EXPECTED) =>
        {
            Ok(())
        }
        Ok(Ok(other)) => Err(format!("{PROCEDURE}(1, 2) answered {other:?}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {STALL:?}")),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    outcome.map_err(WampError::Join)
}
