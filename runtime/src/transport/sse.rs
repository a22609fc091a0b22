//! Server-sent events: the body of a response that carries one stream. Each event's data
//! is one JSON-RPC message exactly as a WebSocket would carry it: the answer with the
//! subscription id, each item notification, then the end or the failure. The body ends
//! after the stream's last message; dropping it (the client went away) ends the session,
//! which stops the stream's producer. When the request's identity expires, the stream is
//! stopped and the body ends with one last event, `event: expired`, whose data is the
//! notification `{"jsonrpc":"2.0","method":"$/expired","params":{…}}` (the WebSocket's
//! close 4401, for a response).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::codec::message::{classify_text, Incoming};
use crate::session::outbound::Frame as Outbound;
use crate::session::{CloseReason, Session};
use crate::telemetry;

/// The events of one SSE response.
pub(crate) struct EventBody {
    session: Session,
    rx: mpsc::Receiver<Outbound>,
    stream_ended: Pin<Box<WaitForCancellationFutureOwned>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    keepalive: Option<tokio::time::Interval>,
    /// When the request's identity expires.
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The subscription id the first message gave (JSON text), for the expiry's event.
    sub: Option<Box<str>>,
    /// The first message (the answer to the subscribe call) has gone out.
    answered: bool,
    /// Nothing follows what is queued now: end once it is sent.
    last_queued: bool,
    finished: bool,
    /// Held until the response ends: graceful shutdown waits for it, and the gauge of open
    /// event streams counts it.
    _hold: Box<dyn Send + Sync>,
}

impl EventBody {
    pub(crate) fn new(
        session: Session,
        rx: mpsc::Receiver<Outbound>,
        shutdown: CancellationToken,
        expires: Option<std::time::Duration>,
        hold: Box<dyn Send + Sync>,
    ) -> Self {
        // Comments keep proxies from closing a quiet stream, at the keep-alive interval.
        let keepalive = session.config().ping_interval.map(|every| {
            let start = tokio::time::Instant::now() + every;
            let mut i = tokio::time::interval_at(start, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        EventBody {
            stream_ended: Box::pin(session.stream_ended().cancelled_owned()),
            session,
            rx,
            shutdown: Box::pin(shutdown.cancelled_owned()),
            keepalive,
            expiry: expires.map(|left| Box::pin(tokio::time::sleep(left))),
            sub: None,
            answered: false,
            last_queued: false,
            finished: false,
            _hold: hold,
        }
    }

    pub(crate) fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            // Expired: nothing more of the stream, one event that says why, the end.
            if let Some(expiry) = &mut this.expiry {
                if expiry.as_mut().poll(cx).is_ready() {
                    this.expiry = None;
                    this.finished = true;
                    tracing::debug!("ending an event stream: the authentication expired");
                    this.session.end(&CloseReason::Expired);
                    let text = expired_notification(this.sub.as_deref());
                    telemetry::sent(telemetry::Via::Events, text.len());
                    let mut out = String::from("event: expired\n");
                    out.push_str(std::str::from_utf8(&event(&text)).unwrap_or_default());
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(msg)) => {
                    let Outbound::Text(text) = &msg else { continue };
                    if !this.answered {
                        this.answered = true;
                        match classify_text(text) {
                            // A failed subscribe call is the whole story.
                            Ok(Incoming::Response {
                                outcome: Err(_), ..
                            }) => this.last_queued = true,
                            Ok(Incoming::Response {
                                outcome: Ok(sub), ..
                            }) => this.sub = Some(sub.get().into()),
                            _ => {}
                        }
                    }
                    telemetry::sent(telemetry::Via::Events, text.len());
                    return Poll::Ready(Some(Ok(Frame::data(event(text)))));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    continue;
                }
                Poll::Pending => {}
            }
            // The queue is empty now.
            if this.last_queued {
                this.finished = true;
                continue;
            }
            if this.stream_ended.as_mut().poll(cx).is_ready() {
                // The stream's last message was queued before this fired: read the queue
                // once more, then end.
                this.last_queued = true;
                continue;
            }
            if this.shutdown.as_mut().poll(cx).is_ready() {
                this.finished = true;
                continue;
            }
            if let Some(keepalive) = &mut this.keepalive {
                if keepalive.poll_tick(cx).is_ready() {
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                        b": keep-alive\n\n",
                    )))));
                }
            }
            return Poll::Pending;
        }
    }
}

impl Drop for EventBody {
    fn drop(&mut self) {
        // Finished, or the client closed the response: either way, stop producing.
        self.session.end(&CloseReason::ClosedByPeer);
    }
}

/// The method of the last event of a stream whose identity expired.
pub(crate) const EXPIRED_METHOD: &str = "$/expired";

/// The notification that ends an event stream at its identity's expiry: the reason, and the
/// subscription (`sub`, JSON text) when it was answered.
fn expired_notification(sub: Option<&str>) -> String {
    let sub = sub.map_or(String::new(), |sub| format!(r#""subscription":{sub},"#));
    format!(
        r#"{{"jsonrpc":"2.0","method":"{EXPIRED_METHOD}","params":{{{sub}"reason":"authentication expired"}}}}"#
    )
}

/// One SSE event whose data is `text` (a line of its own per line of text).
fn event(text: &str) -> Bytes {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::event;

    #[test]
    fn the_expiry_notification_is_json_rpc() {
        for sub in [Some("17"), None] {
            let text = super::expired_notification(sub);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["method"], "$/expired", "{text}");
            assert_eq!(v["params"]["reason"], "authentication expired");
            assert_eq!(v["params"].get("subscription").is_some(), sub.is_some());
        }
    }

    #[test]
    fn events_have_one_data_line_per_line() {
        assert_eq!(&event(r#"{"a":1}"#)[..], b"data: {\"a\":1}\n\n");
        assert_eq!(
            &event("{\n\"a\":1\r\n}")[..],
            b"data: {\ndata: \"a\":1\ndata: }\n\n"
        );
    }
}
