//! The WAMP adapter fed a random sequence of messages — structurally valid ones of every
//! type, in any order, and arbitrary bytes — with each of the three serializers, plus
//! timer and disconnect events: no panic, every `CALL` ends exactly once, every message
//! out is valid in the connection's serializer, and the adapter's and the session's
//! tables are empty at the end (but for live topic subscriptions, the same in both).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{router, FuzzMethod};
use crate::config::ConnectionConfig;
use crate::hub::Hub;
use crate::session::outbound::{Encoder, Frame};
use crate::session::{CloseReason, Origin, Session};
use crate::transport::wamp::message::{decode, Incoming};
use crate::transport::wamp::{Flow, Input, Serializer, Wamp, WAMP_DOOR};

/// The serializer a fuzzed connection speaks.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum WampSerializer {
    /// `wamp.2.json`.
    Json,
    /// `wamp.2.msgpack`.
    Msgpack,
    /// `wamp.2.cbor`.
    Cbor,
}

impl WampSerializer {
    fn serializer(self) -> Serializer {
        match self {
            WampSerializer::Json => Serializer::Json,
            WampSerializer::Msgpack => Serializer::Msgpack,
            WampSerializer::Cbor => Serializer::Cbor,
        }
    }
}

/// One step of a WAMP connection's life.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum WampOp {
    /// `HELLO` (the run starts with one; another is a protocol violation).
    Hello,
    /// `CALL`: by position or by name, with `receive_progress` and a `timeout` (0: none).
    Call {
        /// Which procedure.
        method: FuzzMethod,
        /// Its request id.
        request: u8,
        /// Its `ms` argument.
        ms: u8,
        /// `receive_progress`.
        progress: bool,
        /// The `timeout` option, in ms (0: none).
        timeout: u8,
        /// Arguments by name (kwargs).
        by_name: bool,
    },
    /// `CANCEL` of a request: mode kill, killnowait, skip, or an unknown one.
    Cancel {
        /// The request id.
        request: u8,
        /// Which mode (mod 4).
        mode: u8,
    },
    /// `SUBSCRIBE` to the topic `t.<key>`.
    Subscribe {
        /// Its request id.
        request: u8,
        /// The key.
        key: u8,
    },
    /// `UNSUBSCRIBE`.
    Unsubscribe {
        /// Its request id.
        request: u8,
        /// The subscription id.
        sub: u8,
    },
    /// `PUBLISH` to `t.<key>`.
    Publish {
        /// Its request id.
        request: u8,
        /// The key.
        key: u8,
        /// The item.
        item: u8,
        /// `acknowledge`.
        acknowledge: bool,
        /// `exclude_me`.
        exclude_me: bool,
    },
    /// `GOODBYE`.
    Goodbye,
    /// Any bytes, as a frame.
    Raw(Vec<u8>),
    /// Let this many milliseconds pass.
    Advance(u8),
    /// The connection drops.
    Disconnect,
}

fn message(op: &WampOp) -> Option<Value> {
    Some(match op {
        WampOp::Hello => json!([1, "realm1", {}]),
        WampOp::Call {
            method,
            request,
            ms,
            progress,
            timeout,
            by_name,
        } => {
            let mut options = serde_json::Map::new();
            if *progress {
                options.insert("receive_progress".into(), json!(true));
            }
            if *timeout > 0 {
                options.insert("timeout".into(), json!(timeout));
            }
            if *by_name {
                json!([48, request, options, method.name(), [], { "ms": ms }])
            } else {
                json!([48, request, options, method.name(), [ms]])
            }
        }
        WampOp::Cancel { request, mode } => {
            let mode = ["kill", "killnowait", "skip", "sideways"][usize::from(*mode % 4)];
            json!([49, request, { "mode": mode }])
        }
        WampOp::Subscribe { request, key } => json!([32, request, {}, format!("t.{key}")]),
        WampOp::Unsubscribe { request, sub } => json!([34, request, sub]),
        WampOp::Publish {
            request,
            key,
            item,
            acknowledge,
            exclude_me,
        } => {
            json!([16, request, { "acknowledge": acknowledge, "exclude_me": exclude_me }, format!("t.{key}"), [item]])
        }
        WampOp::Goodbye => json!([6, {}, "wamp.close.close_realm"]),
        WampOp::Raw(_) | WampOp::Advance(_) | WampOp::Disconnect => return None,
    })
}

/// `value` in `serializer`, as the client would send it.
fn write(serializer: Serializer, value: &Value) -> Input {
    match serializer {
        Serializer::Json => Input::Text(value.to_string().into()),
        Serializer::Msgpack => Input::Bytes(rmp_serde::to_vec(value).expect("msgpack").into()),
        Serializer::Cbor => {
            let mut out = Vec::new();
            ciborium::ser::into_writer(value, &mut out).expect("cbor");
            Input::Bytes(out.into())
        }
    }
}

/// A message the adapter wrote, read back (it must be valid in its serializer).
fn read(serializer: Serializer, frame: Frame) -> Option<Value> {
    match (serializer, frame) {
        (Serializer::Json, Frame::Text(text)) => {
            Some(serde_json::from_str(&text).expect("a WAMP message out is JSON"))
        }
        (Serializer::Msgpack, Frame::Binary(bytes)) => {
            Some(rmp_serde::from_slice(&bytes).expect("a WAMP message out is msgpack"))
        }
        (Serializer::Cbor, Frame::Binary(bytes)) => {
            Some(ciborium::de::from_reader(&bytes[..]).expect("a WAMP message out is CBOR"))
        }
        (_, Frame::Ping | Frame::Close(_)) => None,
        (serializer, frame) => panic!("a {serializer:?} session wrote {frame:?}"),
    }
}

/// Feed `ops` to a WAMP adapter and its session on a paused clock, then let every timer
/// run out, and check the invariants (see the module's comment). Returns how many
/// `CALL`s ended (`RESULT` or `ERROR`).
pub fn wamp(serializer: WampSerializer, ops: Vec<WampOp>) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(run(serializer.serializer(), ops))
}

async fn run(serializer: Serializer, ops: Vec<WampOp>) -> usize {
    let config = ConnectionConfig {
        max_in_flight: 64,
        max_subscriptions: 8,
        ..ConnectionConfig::default()
    };
    let mut router = router();
    crate::typed::register_topic::<(u8,), u64, (), _, _>(
        &mut router,
        "t",
        &["k"],
        true,
        &std::sync::Arc::new(()),
        |_, _, _| std::future::ready(Ok(())),
    );
    let hub = Hub::memory();
    let mut origin = Origin::default();
    origin.extensions.insert(hub.clone());
    let (tx, mut rx) = mpsc::channel(1 << 16);
    let adapter = Wamp::new(
        router.clone(),
        crate::transport::wamp::WampSetup {
            realm: None,
            hub,
            serializer,
            ticket: None,
            waiting: None,
        },
        tx.clone(),
    );
    let encoder: Arc<dyn Encoder> = adapter.clone();
    let session = Session::new(Arc::new(config), router, WAMP_DOOR, origin, tx, encoder);
    let close = CancellationToken::new();
    // CALLs the adapter took while welcomed, by request id.
    let mut asked: HashMap<u64, usize> = HashMap::new();
    let mut ended = false;
    for op in std::iter::once(WampOp::Hello).chain(ops).take(256) {
        let input = match &op {
            WampOp::Raw(bytes) => Input::Bytes(bytes.clone().into()),
            WampOp::Advance(ms) => {
                tokio::time::advance(Duration::from_millis((*ms).into())).await;
                continue;
            }
            WampOp::Disconnect => {
                ended = true;
                break;
            }
            other => write(serializer, &message(other).expect("a message")),
        };
        let bytes = match &input {
            Input::Text(text) => text.as_bytes().to_vec(),
            Input::Bytes(bytes) => bytes.to_vec(),
        };
        let text = match serializer {
            Serializer::Json => std::str::from_utf8(&bytes).ok(),
            _ => None,
        };
        if adapter.welcomed() {
            if let Ok(Incoming::Call { request, .. }) = decode(serializer, &bytes, text) {
                *asked.entry(request).or_default() += 1;
            }
        }
        let flow = tokio::time::timeout(
            Duration::from_secs(60),
            adapter.incoming(input, &session, &close),
        )
        .await
        .expect("a message is handled without waiting forever");
        if matches!(flow, Flow::Close) {
            ended = true;
            break;
        }
    }
    if ended {
        // As the WebSocket door ends a connection.
        session.end(&CloseReason::ClosedByPeer);
        adapter.end();
    }
    // Let every sleep, stream and timer run out: the paused clock jumps to each next
    // timer whenever nothing else can run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut answered: HashMap<u64, usize> = HashMap::new();
    while let Ok(frame) = rx.try_recv() {
        let Some(message) = read(serializer, frame) else {
            continue;
        };
        let m = message.as_array().expect("a WAMP message is a list");
        let terminal = match (m[0].as_u64(), m.get(1).and_then(Value::as_u64)) {
            (Some(50), Some(request)) => {
                let progress = m[2].get("progress") == Some(&Value::Bool(true));
                (!progress).then_some(request)
            }
            (Some(8), Some(48)) => m[2].as_u64(),
            _ => None,
        };
        if let Some(request) = terminal {
            *answered.entry(request).or_default() += 1;
        }
    }
    for (request, n) in &answered {
        let owed = asked.get(request).copied().unwrap_or(0);
        assert!(*n <= owed, "CALL {request} ended {n} times, made {owed}");
    }
    let (calls, requests, subscribing, subs) = adapter.table_sizes();
    let (running, streams) = session.table_sizes();
    if !ended {
        for (request, owed) in &asked {
            let n = answered.get(request).copied().unwrap_or(0);
            assert_eq!(n, *owed, "CALL {request} ended {n} times, made {owed}");
        }
        assert_eq!(
            (calls, requests, subscribing, running),
            (0, 0, 0, 0),
            "calls left in the adapter or the session"
        );
        assert_eq!(
            subs, streams,
            "live subscriptions: adapter and session differ"
        );
    } else {
        assert_eq!(
            (calls, requests, subscribing, subs, running, streams),
            (0, 0, 0, 0, 0, 0),
            "tables left after the connection ended"
        );
    }
    answered.values().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use FuzzMethod::*;

    fn call(method: FuzzMethod, request: u8, ms: u8) -> WampOp {
        WampOp::Call {
            method,
            request,
            ms,
            progress: false,
            timeout: 0,
            by_name: false,
        }
    }

    #[test]
    fn wamp_seeds() {
        let serializers = [
            WampSerializer::Json,
            WampSerializer::Msgpack,
            WampSerializer::Cbor,
        ];
        for serializer in serializers {
            // Calls of every kind, a cancel of each mode, a stream as progressive results,
            // a timeout, a request id used twice, topics.
            let ended = wamp(
                serializer,
                vec![
                    call(Answer, 1, 0),
                    call(Sleep, 2, 50),
                    call(Sleep, 3, 50),
                    call(Sleep, 4, 50),
                    WampOp::Cancel {
                        request: 2,
                        mode: 0,
                    },
                    WampOp::Cancel {
                        request: 3,
                        mode: 1,
                    },
                    WampOp::Cancel {
                        request: 4,
                        mode: 2,
                    },
                    WampOp::Cancel {
                        request: 4,
                        mode: 3,
                    },
                    call(Panic, 5, 0),
                    call(Fail, 6, 0),
                    call(Unknown, 7, 0),
                    WampOp::Call {
                        method: Stream,
                        request: 8,
                        ms: 5,
                        progress: true,
                        timeout: 0,
                        by_name: true,
                    },
                    call(Stream, 9, 5),
                    WampOp::Call {
                        method: Sleep,
                        request: 10,
                        ms: 200,
                        progress: false,
                        timeout: 20,
                        by_name: false,
                    },
                    call(Sleep, 11, 30),
                    call(Sleep, 11, 30),
                    WampOp::Subscribe {
                        request: 12,
                        key: 1,
                    },
                    WampOp::Publish {
                        request: 13,
                        key: 1,
                        item: 9,
                        acknowledge: true,
                        exclude_me: false,
                    },
                    WampOp::Advance(5),
                    WampOp::Unsubscribe {
                        request: 14,
                        sub: 1,
                    },
                    WampOp::Subscribe {
                        request: 15,
                        key: 2,
                    },
                ],
            );
            assert_eq!(ended, 12, "{serializer:?}: every CALL ended once");
            // A stream canceled in its setup and one killed while it streams; then a
            // disconnect with calls and a subscription open.
            wamp(
                serializer,
                vec![
                    WampOp::Call {
                        method: Stream,
                        request: 1,
                        ms: 50,
                        progress: true,
                        timeout: 0,
                        by_name: false,
                    },
                    WampOp::Cancel {
                        request: 1,
                        mode: 0,
                    },
                    WampOp::Call {
                        method: Stream,
                        request: 2,
                        ms: 50,
                        progress: true,
                        timeout: 5,
                        by_name: false,
                    },
                    WampOp::Advance(10),
                    call(Sleep, 3, 100),
                    WampOp::Subscribe { request: 4, key: 3 },
                    WampOp::Disconnect,
                ],
            );
            // Garbage, a second HELLO, GOODBYE: each ends the session.
            for last in [
                WampOp::Raw(b"\xff\xfe not a message".to_vec()),
                WampOp::Raw(Vec::new()),
                WampOp::Hello,
                WampOp::Goodbye,
            ] {
                wamp(
                    serializer,
                    vec![call(Sleep, 1, 100), last, call(Answer, 2, 0)],
                );
            }
        }
    }
}
