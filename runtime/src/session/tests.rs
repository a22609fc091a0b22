//! The seam, without a socket: what a session hands its door, and the door's capabilities.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::outbound::{json_rpc, DoorCaps, Encoder, Event, Frame, Note};
use super::router::Router;
use super::{CloseReason, Origin, Session};
use crate::codec::params::Params;
use crate::codec::text::Text;
use crate::config::ConnectionConfig;
use crate::error::RpcError;
use crate::telemetry::Via;

const ALL: DoorCaps = DoorCaps {
    no_peer_calls: None,
    streams: true,
    ends_with_stream: false,
    process_unique_sub_ids: false,
    via: Via::WebSocket,
    door: crate::session::policy::Door::WebSocket,
};

fn router() -> Router {
    let mut r = Router::new();
    r.method("add", |_c, p: Params<'_>| {
        let sum = p
            .decoder(&["a", "b"])
            .and_then(|mut d| Ok(d.next_param::<i64>()? + d.next_param::<i64>()?));
        async move { sum }
    });
    r.subscription("count", |_c, p: Params<'_>| {
        let n = p.decoder(&["n"]).and_then(|mut d| d.next_param::<u64>());
        async move {
            let n = n?;
            Ok::<_, RpcError>(futures_util::stream::iter((0..n).map(Ok::<_, RpcError>)))
        }
    });
    r
}

fn session(door: DoorCaps, encoder: Arc<dyn Encoder>) -> (Session, mpsc::Receiver<Frame>) {
    let (tx, rx) = mpsc::channel(64);
    let config = Arc::new(ConnectionConfig::default());
    let session = Session::new(config, router(), door, Origin::default(), tx, encoder);
    (session, rx)
}

async fn feed(session: &Session, text: &str) {
    let frame = Text::from(text.to_string());
    let handled = session
        .handle_frame(&frame, &CancellationToken::new())
        .await;
    assert!(handled.is_some());
}

/// The text frames queued within a generous bound, until `n` have come.
async fn frames(rx: &mut mpsc::Receiver<Frame>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Frame::Text(text))) => out.push(text),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// An encoder that writes each event as one readable line, and counts them.
#[derive(Default)]
struct Lines {
    events: Mutex<usize>,
}

impl Encoder for Lines {
    fn encode(&self, event: Event<'_>) -> Option<Frame> {
        *self.events.lock().unwrap() += 1;
        let line = match event {
            Event::Answer { id, out: Ok(json) } => format!("answer {id} = {json}"),
            Event::Answer { id, out: Err(e) } => format!("answer {id} ! {}", e.code),
            Event::Item { stream, item } => format!("item {}#{} {item}", stream.method, stream.sub),
            Event::End { stream, error } => {
                format!(
                    "end {}#{} {:?}",
                    stream.method,
                    stream.sub,
                    error.map(|e| e.code)
                )
            }
            Event::Publication { stream, .. } => format!("publication {}", stream.header),
            Event::Note { note, offset, .. } => {
                format!("{} {offset}", if note == Note::Gap { "gap" } else { "at" })
            }
            Event::Request { method, id, .. } => format!("request {method} {id:?}"),
        };
        Some(Frame::Text(line))
    }

    fn batch(&self, parts: Vec<String>) -> String {
        format!("batch <{}>", parts.join(" | "))
    }
}

#[tokio::test]
async fn the_session_writes_through_the_doors_encoder() {
    let lines = Arc::new(Lines::default());
    let (session, mut rx) = session(ALL, lines.clone());
    feed(
        &session,
        r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}"#,
    )
    .await;
    feed(&session, r#"{"jsonrpc":"2.0","method":"nope","id":"x"}"#).await;
    feed(
        &session,
        r#"[{"jsonrpc":"2.0","method":"add","params":[2,2],"id":1},{"jsonrpc":"2.0","method":"add","params":[3,3],"id":2}]"#,
    )
    .await;
    feed(&session, "not json").await;
    assert_eq!(
        frames(&mut rx, 4).await,
        [
            "answer 7 = 3",
            r#"answer "x" ! -32601"#,
            "batch <answer 1 = 4 | answer 2 = 6>",
            "answer null ! -32700",
        ]
    );
    feed(
        &session,
        r#"{"jsonrpc":"2.0","method":"count","params":[2],"id":3}"#,
    )
    .await;
    assert_eq!(
        frames(&mut rx, 4).await,
        [
            "answer 3 = 1",
            "item count#1 0",
            "item count#1 1",
            "end count#1 None"
        ]
    );
    assert_eq!(
        *lines.events.lock().unwrap(),
        9,
        "every answer and stream frame was an event"
    );
}

#[tokio::test]
async fn a_door_without_streams_refuses_them() {
    let door = DoorCaps {
        streams: false,
        ..ALL
    };
    let (session, mut rx) = session(door, json_rpc());
    feed(
        &session,
        r#"{"jsonrpc":"2.0","method":"count","params":[2],"id":1}"#,
    )
    .await;
    let answer = frames(&mut rx, 1).await;
    assert!(answer[0].contains(r#""code":-32600"#), "{answer:?}");
    assert!(answer[0].contains("is a stream"), "{answer:?}");
    assert_eq!(session.table_sizes(), (0, 0), "nothing was started");
    // The same door with streams serves it.
    let (session, mut rx) = self::session(ALL, json_rpc());
    feed(
        &session,
        r#"{"jsonrpc":"2.0","method":"count","params":[2],"id":1}"#,
    )
    .await;
    assert_eq!(
        frames(&mut rx, 1).await,
        [r#"{"jsonrpc":"2.0","result":1,"id":1}"#]
    );
}

#[tokio::test]
async fn a_door_without_peer_calls_closes_the_peer_saying_why() {
    let door = DoorCaps {
        no_peer_calls: Some("not over this door"),
        ..ALL
    };
    let (session, _rx) = session(door, json_rpc());
    let err = session.peer().call::<u64>("x", ()).await.unwrap_err();
    assert!(err.to_string().contains("not over this door"), "{err}");
    let (session, _rx) = self::session(ALL, json_rpc());
    assert!(!session.peer().is_closed());
    session.end(&CloseReason::ClosedByPeer);
}

#[tokio::test]
async fn a_door_may_end_with_its_stream_and_number_streams_in_the_process() {
    let door = DoorCaps {
        ends_with_stream: true,
        process_unique_sub_ids: true,
        ..ALL
    };
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (session, mut rx) = session(door, json_rpc());
        let ended = session.stream_ended();
        feed(
            &session,
            r#"{"jsonrpc":"2.0","method":"count","params":[1],"id":1}"#,
        )
        .await;
        let answer: serde_json::Value = serde_json::from_str(&frames(&mut rx, 1).await[0]).unwrap();
        ids.push(answer["result"].as_u64().unwrap());
        tokio::time::timeout(Duration::from_secs(10), ended.cancelled())
            .await
            .expect("the session's stream ended");
    }
    assert_ne!(ids[0], ids[1], "ids unique in the process");
    // Numbered per session otherwise, and a session does not end with its stream.
    let (session, mut rx) = session(ALL, json_rpc());
    feed(
        &session,
        r#"{"jsonrpc":"2.0","method":"count","params":[1],"id":1}"#,
    )
    .await;
    assert_eq!(
        frames(&mut rx, 1).await,
        [r#"{"jsonrpc":"2.0","result":1,"id":1}"#]
    );
    assert!(!session.stream_ended().is_cancelled());
}

/// This side's requests and notifications to the peer (calls, `notify`, and the
/// `$/cancelRequest` of a call given up) are events through the door's encoder too, not
/// JSON-RPC text the peer handle writes itself.
#[tokio::test]
async fn the_peers_requests_go_through_the_doors_encoder() {
    let lines = Arc::new(Lines::default());
    let (session, mut rx) = session(ALL, lines.clone());
    let peer = session.peer().clone();
    peer.notify_raw("hello", Some("[1]")).await.unwrap();
    let call = peer.request_raw("ask", Some("[]"), Some(Duration::from_millis(50)));
    assert!(call.await.is_err(), "nobody answers: it times out");
    assert_eq!(
        frames(&mut rx, 3).await,
        [
            "request hello None",
            "request ask Some(1)",
            "request $/cancelRequest None",
        ]
    );
    assert_eq!(*lines.events.lock().unwrap(), 3);
}

/// A door that decodes its own messages hands them to the session as structured data,
/// and is answered like a frame's.
#[tokio::test]
async fn a_decoded_message_is_dispatched_like_a_frames() {
    let lines = Arc::new(Lines::default());
    let (session, mut rx) = session(ALL, lines);
    let params = serde_json::value::RawValue::from_string("[4,5]".into()).unwrap();
    let id = serde_json::value::RawValue::from_string("12".into()).unwrap();
    let message = crate::codec::message::Incoming::Request {
        method: "add".into(),
        params: Some(&params),
        id: Some(&id),
        timeout: None,
        #[cfg(feature = "otel")]
        traceparent: None,
    };
    let handled = session
        .handle_message(message, &Text::default(), &CancellationToken::new())
        .await
        .expect("handled");
    assert!(handled.owes_answer);
    assert_eq!(frames(&mut rx, 1).await, ["answer 12 = 9"]);
}
