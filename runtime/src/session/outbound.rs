//! The seam's way out: what a session hands its door.
//!
//! The session never writes a wire format itself. It hands structured [`Event`]s (an
//! answer, a stream item, a stream's end, a topic publication, a gap or position note, a
//! request or notification to the peer) to the [`Encoder`] its door supplied, and queues
//! the encoded result as a [`Frame`] for the door's writer. [`JsonRpc`] is the encoder of
//! the JSON-RPC doors (WebSocket, HTTP POST, server-sent events, the HTTP client): one
//! serde_json write per frame, as before there was a seam; WAMP's is in
//! `transport/wamp/encode.rs`. What a door allows is [`DoorCaps`], plain data.

use std::sync::{Arc, LazyLock};

use crate::codec::message;
use crate::error::RpcError;
use crate::hub::Entry;
use crate::session::router::MethodResult;
use crate::telemetry::Via;

/// What a door allows in a session: data the door passes in, never a door the session
/// names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DoorCaps {
    /// `None` if the session may call the peer; else why it cannot (calls fail with
    /// [`CloseReason::NoConnection`](super::CloseReason::NoConnection) and this text).
    pub(crate) no_peer_calls: Option<&'static str>,
    /// May the peer open streams and topic subscriptions? If not, a subscribe call is
    /// refused with `-32600` and a hint (an HTTP POST answered with JSON).
    pub(crate) streams: bool,
    /// The session carries one stream and is over when it ends (an SSE response).
    pub(crate) ends_with_stream: bool,
    /// Subscription ids unique in the process rather than in the session (a client may
    /// hold several SSE responses, each a session of its own).
    pub(crate) process_unique_sub_ids: bool,
    /// The door's label in the metrics.
    pub(crate) via: Via,
    /// Which door, as policy layers see it.
    pub(crate) door: crate::session::policy::Door,
}

/// What goes to a door's writer.
#[derive(Debug)]
pub(crate) enum Frame {
    /// An encoded message.
    Text(String),
    /// An encoded message of a binary format (WAMP's msgpack or CBOR).
    Binary(Vec<u8>),
    /// A keep-alive ping (WebSocket).
    Ping,
    /// A close frame: its code and reason (WebSocket).
    Close(Option<(u16, String)>),
}

impl Frame {
    /// The encoded message's size in bytes (0 for a ping or close).
    pub(crate) fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(bytes) => bytes.len(),
            Frame::Ping | Frame::Close(_) => 0,
        }
    }
}

/// One stream this side serves, as its encoder sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamRef<'a> {
    /// The method that opened it.
    pub(crate) method: &'a str,
    /// Its subscription id.
    pub(crate) sub: u64,
    /// What [`Encoder::stream_header`] made for it, once (reused for every publication).
    pub(crate) header: &'a str,
}

/// A structured outgoing event.
#[derive(Debug)]
pub(crate) enum Event<'a> {
    /// The answer of the call `id` (its id as the peer sent it, JSON text).
    Answer { id: &'a str, out: MethodResult },
    /// A stream's item (JSON).
    Item {
        stream: StreamRef<'a>,
        item: &'a str,
    },
    /// A stream's end: done (`None`) or failed.
    End {
        stream: StreamRef<'a>,
        error: Option<&'a RpcError>,
    },
    /// A topic's publication, with its position.
    Publication {
        stream: StreamRef<'a>,
        entry: &'a Entry,
    },
    /// A topic's position note: where it starts, or a gap (lost publications up to here).
    Note {
        stream: StreamRef<'a>,
        note: Note,
        epoch: &'a str,
        offset: u64,
    },
    /// A request to the peer (`id`: this side's call id) or, without an id, a notification
    /// (this side's `$/cancelRequest` and unsubscriptions too). `params`: JSON.
    Request {
        method: &'a str,
        params: Option<&'a str>,
        id: Option<u64>,
        /// How long this side waits for the answer, in milliseconds (`"$timeout"`).
        timeout_ms: Option<u64>,
        /// The W3C trace context of the span it is sent from (`"$traceparent"`, feature
        /// `otel`).
        #[cfg(feature = "otel")]
        traceparent: Option<&'a str>,
    },
}

/// Which position note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Note {
    /// Where the subscription starts.
    Position,
    /// Publications were lost up to here.
    Gap,
}

impl Note {
    fn name(self) -> &'static str {
        match self {
            Note::Position => "position",
            Note::Gap => "gap",
        }
    }
}

/// Turns a session's events into the door's wire format.
pub(crate) trait Encoder: Send + Sync + 'static {
    /// One event as one message ([`Frame::Text`] or [`Frame::Binary`]); `None` if the
    /// door's protocol has nothing to say for it (WAMP has no position notes, and ends
    /// some calls itself).
    fn encode(&self, event: Event<'_>) -> Option<Frame>;

    /// The answers of one batch (each from [`Encoder::encode`]) as one message. Only
    /// JSON-RPC has batches: a door that never feeds one keeps this default.
    fn batch(&self, parts: Vec<String>) -> String {
        let _ = parts;
        String::new()
    }

    /// Made once per stream and handed back in every [`StreamRef`]: what its messages
    /// share (JSON-RPC: the notification's start, up to the subscription id).
    fn stream_header(&self, method: &str, sub: u64) -> String {
        let _ = (method, sub);
        String::new()
    }
}

/// The JSON-RPC 2.0 encoder.
#[derive(Debug)]
pub(crate) struct JsonRpc;

/// The JSON-RPC encoder, shared (handing it to a session allocates nothing).
pub(crate) fn json_rpc() -> Arc<dyn Encoder> {
    static JSON_RPC: LazyLock<Arc<dyn Encoder>> = LazyLock::new(|| Arc::new(JsonRpc));
    JSON_RPC.clone()
}

impl Encoder for JsonRpc {
    fn encode(&self, event: Event<'_>) -> Option<Frame> {
        Some(Frame::Text(self.text(event)))
    }

    fn batch(&self, parts: Vec<String>) -> String {
        let mut frame = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>() + 2);
        frame.push('[');
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                frame.push(',');
            }
            frame.push_str(part);
        }
        frame.push(']');
        frame
    }

    fn stream_header(&self, method: &str, sub: u64) -> String {
        message::subscription_prefix(method, sub)
    }
}

impl JsonRpc {
    /// An event as JSON-RPC text.
    pub(crate) fn text(&self, event: Event<'_>) -> String {
        match event {
            Event::Answer { id, out } => response_json(id, out),
            Event::Item { stream, item } => {
                message::subscription_frame(stream.method, stream.sub, Some(item), None)
            }
            Event::End { stream, error } => {
                message::subscription_frame(stream.method, stream.sub, None, error)
            }
            Event::Publication { stream, entry } => {
                let suffix = entry.notification_suffix();
                let mut frame = String::with_capacity(stream.header.len() + suffix.len());
                frame.push_str(stream.header);
                frame.push_str(suffix);
                frame
            }
            Event::Note {
                stream,
                note,
                epoch,
                offset,
            } => message::topic_note_frame(stream.method, stream.sub, note.name(), epoch, offset),
            Event::Request {
                method,
                params,
                id,
                timeout_ms,
                #[cfg(feature = "otel")]
                traceparent,
            } => {
                let mut frame =
                    String::with_capacity(64 + method.len() + params.map_or(0, str::len));
                match (id, timeout_ms) {
                    (Some(id), Some(ms)) => {
                        message::write_timed_request(&mut frame, method, params, id, ms)
                    }
                    _ => message::write_request(&mut frame, method, params, id),
                }
                #[cfg(feature = "otel")]
                if let Some(traceparent) = traceparent {
                    message::add_traceparent(&mut frame, traceparent);
                }
                frame
            }
        }
    }
}

/// A JSON-RPC response.
fn response_json(id: &str, out: MethodResult) -> String {
    match out {
        // The result's own buffer becomes the frame: serialization left it room (serde_json
        // starts at 128 bytes and doubles), so a small result needs no allocation and a
        // large one no second copy.
        Ok(result) => message::wrap_result(result, id),
        Err(e) => {
            let mut s = String::new();
            message::write_error(&mut s, &e, id);
            s
        }
    }
}

/// A JSON-RPC response frame carrying `e` (for doors answering before any session).
pub(crate) fn error_frame(e: &RpcError, id: &str) -> String {
    let mut s = String::new();
    message::write_error(&mut s, e, id);
    s
}
