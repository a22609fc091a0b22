//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a public API).
//! Each checks its own invariants and panics when one fails, so that libFuzzer reports it.
//! The normal test suite runs them on fixed inputs too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::codec::message::{self, classify, parse_frame, Frame, Incoming};
use crate::codec::params::Params;
use crate::codec::text::Text;
use crate::config::ConnectionConfig;
use crate::error::RpcError;
use crate::session::outbound::{self, Frame as Outbound};
use crate::session::router::Router;
use crate::session::{CloseReason, Origin, Session};
use crate::transport::ws::WEBSOCKET_DOOR;
use crate::typed::ParamTuple;

mod wamp;
pub use wamp::{wamp, WampOp, WampSerializer};

/// Classify `text` as a frame; re-encode every accepted message and check that it parses
/// to the same members; decode params into several typed tuples.
pub fn codec(text: &str) {
    let Ok(frame) = parse_frame(text) else { return };
    let items = match frame {
        Frame::Single(raw) => vec![raw],
        Frame::Batch(items) => items,
    };
    for raw in items {
        let original = raw.get();
        match classify(raw) {
            Incoming::Request {
                method, params, id, ..
            } => {
                let mut out = String::new();
                out.push_str(r#"{"jsonrpc":"2.0","method":"#);
                message::write_json_string(&mut out, &method);
                if let Some(p) = params {
                    out.push_str(r#","params":"#);
                    out.push_str(p.get());
                }
                if let Some(id) = id {
                    out.push_str(r#","id":"#);
                    out.push_str(id.get());
                }
                out.push('}');
                same_members(original, &out, &["jsonrpc", "method", "params", "id"]);
                decode_params(Params::new(params));
            }
            Incoming::Response { id, outcome } => {
                let out = match outcome {
                    Ok(result) => message::wrap_result(result.get().to_string(), id.get()),
                    Err(e) => {
                        let mut out = String::new();
                        message::write_error(&mut out, &e, id.get());
                        out
                    }
                };
                same_members(original, &out, &["jsonrpc", "id", "result", "error"]);
            }
            Incoming::Invalid { .. } => {}
        }
    }
}

/// `encoded` parses, and has the same JSON as `original` for each of `members`
/// (compared as text where the codec copies it, as values where it re-writes it).
fn same_members(original: &str, encoded: &str, members: &[&str]) {
    let a = object(original);
    let b = object(encoded);
    for m in members {
        let (x, y) = (a.get(*m).map(|v| v.get()), b.get(*m).map(|v| v.get()));
        match *m {
            // Re-written from the parsed error object: its known members must agree.
            "error" => {
                if let (Some(x), Some(y)) = (x, y) {
                    let (x, y) = (object(x), object(y));
                    for k in ["code", "message"] {
                        let value = |o: &HashMap<String, Box<RawValue>>| {
                            o.get(k)
                                .map(|v| serde_json::from_str::<Value>(v.get()).ok())
                        };
                        assert_eq!(value(&x), value(&y), "error.{k}: {original} → {encoded}");
                    }
                    let data = |o: &HashMap<String, Box<RawValue>>| {
                        o.get("data").map(|v| v.get().to_string())
                    };
                    assert_eq!(data(&x), data(&y), "error.data: {original} → {encoded}");
                } else {
                    assert_eq!(x.is_some(), y.is_some(), "error: {original} → {encoded}");
                }
            }
            // Written again by the codec: same value.
            "jsonrpc" | "method" => {
                let value = |t: Option<&str>| t.map(|t| serde_json::from_str::<Value>(t).ok());
                assert_eq!(value(x), value(y), "member `{m}`: {original} → {encoded}");
            }
            // Copied as raw text (params, result, id): byte for byte.
            _ => assert_eq!(x, y, "member `{m}`: {original} → {encoded}"),
        }
    }
}

fn object(text: &str) -> HashMap<String, Box<RawValue>> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON object ({e}): {text}"))
}

fn decode_params(params: Params<'_>) {
    let _ = <(i64, i64)>::decode(params, &["a", "b"]);
    let _ = <(String,)>::decode(params, &["text"]);
    let _ = <(Option<u64>, Vec<bool>, Value)>::decode(params, &["n", "flags", "any"]);
    let _ = <()>::decode(params, &[]);
    if let Ok(mut d) = params.decoder(&["a", "b", "c"]) {
        let _ = d.next_param::<f64>();
        let _ = d.next_param::<Option<String>>();
        let _ = d.next_param::<HashMap<String, i64>>();
    }
    let _ = params.parse::<Vec<Value>>();
}

/// What the session's `panic` handler panics with (the fuzz target's panic hook lets it
/// through: the session catches it).
pub const HANDLER_PANIC: &str = "fuzz: a handler panics";

/// The methods of the session under test.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum FuzzMethod {
    /// Answers at once.
    Answer,
    /// Sleeps its `ms`, then answers.
    Sleep,
    /// Panics.
    Panic,
    /// Answers an application error.
    Fail,
    /// A stream of `count` items, one per ms.
    Stream,
    /// Not registered.
    Unknown,
}

impl FuzzMethod {
    fn name(self) -> &'static str {
        match self {
            FuzzMethod::Answer => "answer",
            FuzzMethod::Sleep => "sleep",
            FuzzMethod::Panic => "panic",
            FuzzMethod::Fail => "fail",
            FuzzMethod::Stream => "stream",
            FuzzMethod::Unknown => "unknown",
        }
    }
}

/// One step of a session's life.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum SessionOp {
    /// A request (`id` present) or notification.
    Call {
        /// Which method.
        method: FuzzMethod,
        /// Its id, if a request.
        id: Option<u8>,
        /// Its `ms` param.
        ms: u8,
    },
    /// A batch of calls.
    Batch(Vec<(FuzzMethod, Option<u8>, u8)>),
    /// `$/cancelRequest` for this id.
    Cancel(u8),
    /// `stream.unsubscribe` for this subscription id.
    Unsubscribe(u8),
    /// Any text.
    Raw(String),
    /// Let this many milliseconds pass.
    Advance(u8),
    /// The connection drops.
    Disconnect,
}

fn router() -> Router {
    let mut r = Router::new();
    let ms = |params: Params<'_>| {
        params
            .decoder(&["ms"])
            .and_then(|mut p| p.next_param::<u64>())
    };
    r.method("answer", |_c, _p| async { Ok::<_, RpcError>(1) });
    r.method("sleep", move |_c, p| {
        let ms = ms(p);
        async move {
            let ms = ms?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, RpcError>(ms)
        }
    });
    r.method("panic", |_c, _p| async {
        if true {
            std::panic::panic_any(HANDLER_PANIC);
        }
        Ok::<_, RpcError>(())
    });
    r.method("fail", |_c, _p| async {
        Err::<(), _>(RpcError::new(4001, "Fail"))
    });
    r.subscription("stream", move |_c, p| {
        let ms = ms(p);
        async move {
            let n = ms?;
            let items = futures_util::stream::unfold(0u64, move |i| async move {
                if i >= n {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                Some((Ok::<_, RpcError>(i), i + 1))
            });
            Ok::<_, RpcError>(items)
        }
    });
    r
}

fn request(method: FuzzMethod, id: Option<u8>, ms: u8) -> String {
    let id = id.map_or(String::new(), |id| format!(r#","id":{id}"#));
    format!(
        r#"{{"jsonrpc":"2.0","method":"{}","params":{{"ms":{ms}}}{id}}}"#,
        method.name()
    )
}

/// Feed `ops` to a session on a paused clock, then let every timer run out, and check:
/// no id is answered more often than it was asked (and, without a disconnect, exactly as
/// often); each batch with something to answer gets one array; the tables of running
/// calls and streams end empty.
pub fn session(ops: Vec<SessionOp>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(run_session(ops));
}

async fn run_session(ops: Vec<SessionOp>) {
    let config = ConnectionConfig {
        max_in_flight: 64,
        max_subscriptions: 8,
        max_batch_len: 16,
        ..ConnectionConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(1 << 16);
    let session = Session::new(
        Arc::new(config),
        router(),
        WEBSOCKET_DOOR,
        Origin::default(),
        tx,
        outbound::json_rpc(),
    );
    let close = CancellationToken::new();
    // Answers owed, by id (as JSON text: ids are echoed byte for byte).
    let mut asked: HashMap<String, usize> = HashMap::new();
    let mut arrays_owed = 0usize;
    let mut disconnected = false;
    for op in ops {
        if disconnected {
            break;
        }
        let text = match op {
            SessionOp::Call { method, id, ms } => request(method, id, ms),
            SessionOp::Batch(calls) => {
                let parts: Vec<String> = calls
                    .into_iter()
                    .take(20)
                    .map(|(m, id, ms)| request(m, id, ms))
                    .collect();
                format!("[{}]", parts.join(","))
            }
            SessionOp::Cancel(id) => {
                format!(r#"{{"jsonrpc":"2.0","method":"$/cancelRequest","params":{{"id":{id}}}}}"#)
            }
            SessionOp::Unsubscribe(sub) => {
                format!(r#"{{"jsonrpc":"2.0","method":"stream.unsubscribe","params":[{sub}]}}"#)
            }
            SessionOp::Raw(text) => text,
            SessionOp::Advance(ms) => {
                tokio::time::advance(Duration::from_millis(ms.into())).await;
                continue;
            }
            SessionOp::Disconnect => {
                session.end(&CloseReason::ClosedByPeer);
                disconnected = true;
                continue;
            }
        };
        let (ids, array) = owed(&text, 16);
        for id in ids {
            *asked.entry(id).or_default() += 1;
        }
        arrays_owed += usize::from(array);
        let frame = Text::from(text);
        let handled = tokio::time::timeout(
            Duration::from_secs(60),
            session.handle_frame(&frame, &close),
        )
        .await
        .expect("a frame is handled without waiting forever");
        assert!(handled.is_some(), "the session was not closed");
    }
    // Let every sleep and stream run out: the paused clock jumps to each next timer
    // whenever nothing else can run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut answered: HashMap<String, usize> = HashMap::new();
    let mut arrays = 0usize;
    while let Ok(msg) = rx.try_recv() {
        let Outbound::Text(text) = msg else { continue };
        let items = match parse_frame(&text).expect("every frame sent is JSON") {
            Frame::Single(raw) => vec![raw],
            Frame::Batch(items) => {
                arrays += 1;
                assert!(!items.is_empty(), "an empty batch answer");
                items
            }
        };
        for raw in items {
            match classify(raw) {
                Incoming::Response { id, .. } if id.get() != "null" => {
                    *answered.entry(id.get().to_string()).or_default() += 1;
                }
                Incoming::Response { .. } => {}
                // Stream items and ends are notifications, not answers.
                Incoming::Request { id: None, .. } => {}
                other => panic!("the session sent {other:?}: {text}"),
            }
        }
    }
    for (id, n) in &answered {
        let owed = asked.get(id).copied().unwrap_or(0);
        assert!(*n <= owed, "id {id} answered {n} times, asked {owed}");
    }
    assert!(
        arrays <= arrays_owed,
        "{arrays} arrays for {arrays_owed} batches"
    );
    if !disconnected {
        for (id, owed) in &asked {
            let n = answered.get(id).copied().unwrap_or(0);
            assert_eq!(n, *owed, "id {id} answered {n} times, asked {owed}");
        }
        assert_eq!(arrays, arrays_owed, "one array per batch with answers");
    }
    let sizes = session.table_sizes();
    assert_eq!(sizes, (0, 0), "running calls and streams left at the end");
}

/// What a frame is owed, by the codec's reading: the ids of its requests (and of invalid
/// messages with a usable id), and whether the answer is a batch array. A batch over
/// `max_batch` or empty is owed one error with id null, not counted here.
fn owed(text: &str, max_batch: usize) -> (Vec<String>, bool) {
    let one = |raw: &RawValue| match classify(raw) {
        Incoming::Request { id: Some(id), .. } | Incoming::Invalid { id: Some(id), .. } => {
            (id.get() != "null").then(|| id.get().to_string())
        }
        _ => None,
    };
    let expects = |raw: &RawValue| {
        matches!(
            classify(raw),
            Incoming::Request { id: Some(_), .. } | Incoming::Invalid { .. }
        )
    };
    match parse_frame(text) {
        Ok(Frame::Single(raw)) => (one(raw).into_iter().collect(), false),
        Ok(Frame::Batch(items)) if !items.is_empty() && items.len() <= max_batch => {
            let array = items.iter().any(|r| expects(r));
            (items.into_iter().filter_map(one).collect(), array)
        }
        _ => (Vec::new(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FuzzMethod::*;

    #[test]
    fn codec_seeds() {
        for text in [
            r#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#,
            r#"{"jsonrpc":"2.0","method":"a","params":{"a":1,"b":"x"},"id":"s"}"#,
            r#"[{"jsonrpc":"2.0","result":7,"id":1},{"jsonrpc":"2.0","error":{"code":-1,"message":"m","data":[1]},"id":2}]"#,
            r#"{"jsonrpc":"2.0","method":"x","id":null}"#,
            "[1,2,{}]",
            "{",
            // Found by the fuzzer: an id no f64 can hold is still an id, echoed as text.
            r#"{"jsonrpc":"2.0","methodatad":"Calculator.add","params":{"a":1,"b":4},"id":33333333333333333333333333333e333337}"#,
        ] {
            codec(text);
        }
    }

    #[test]
    fn session_seeds() {
        session(vec![
            SessionOp::Call {
                method: Sleep,
                id: Some(1),
                ms: 50,
            },
            SessionOp::Batch(vec![
                (Answer, Some(2), 0),
                (Sleep, Some(3), 20),
                (Panic, None, 0),
            ]),
            SessionOp::Cancel(3),
            SessionOp::Call {
                method: Stream,
                id: Some(4),
                ms: 5,
            },
            SessionOp::Unsubscribe(1),
            SessionOp::Advance(10),
            SessionOp::Call {
                method: Fail,
                id: Some(5),
                ms: 0,
            },
            SessionOp::Batch(vec![]),
            SessionOp::Call {
                method: Unknown,
                id: Some(6),
                ms: 0,
            },
        ]);
        // The batch-cancel defect: the batch must still come, with -32800 inside.
        session(vec![
            SessionOp::Batch(vec![(Answer, Some(1), 0), (Sleep, Some(2), 200)]),
            SessionOp::Advance(5),
            SessionOp::Cancel(2),
        ]);
        // Same ids twice, a stream cancelled in setup, then a disconnect.
        session(vec![
            SessionOp::Call {
                method: Sleep,
                id: Some(9),
                ms: 100,
            },
            SessionOp::Call {
                method: Sleep,
                id: Some(9),
                ms: 100,
            },
            SessionOp::Cancel(9),
            SessionOp::Call {
                method: Stream,
                id: Some(8),
                ms: 100,
            },
            SessionOp::Disconnect,
        ]);
    }
}
