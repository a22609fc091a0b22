//! Streams this side serves: set up by a handler, answered with a subscription id, then
//! items as notifications until the stream ends, fails, or is unsubscribed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::future::{AbortHandle, AbortRegistration, Abortable};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::dispatch::{deliver, Reply};
use super::guard::{Bounded, CatchPanic};
use super::outbound::{Event, Frame, Note, StreamRef};
use super::policy::{OpenStream, Opened};
use super::{send, Shared};
use crate::error::RpcError;
use crate::hub::{Event as HubEvent, Feed};
use crate::session::router::{ItemStream, Produce};
use crate::telemetry::Open;

/// Set up a stream: run the handler's setup, answer the subscription id, then forward
/// the items until the stream ends, fails, or is unsubscribed.
pub(super) async fn subscribe(
    shared: Arc<Shared>,
    setup: Bounded<CatchPanic<Produce>>,
    method: Arc<str>,
    call_id: Box<str>,
    reply: Reply,
    permit: OwnedSemaphorePermit,
) {
    // The setup can be cancelled like a call until it answers.
    let (abort, registration) = AbortHandle::new_pair();
    let token = shared.running().register(&call_id, abort, &reply);
    let Ok(setup) = Abortable::new(setup, registration).await else {
        return; // cancelled: the cancellation answered
    };
    if !shared.running().finish(&call_id, token) {
        return;
    }
    let items = match setup {
        Ok(items) => items,
        Err(e) => {
            deliver(&shared, &reply, &call_id, Err(e)).await;
            return;
        }
    };
    let (sub_id, registration) = match open_stream(&shared) {
        Ok(opened) => opened,
        Err(err) => {
            deliver(&shared, &reply, &call_id, Err(err)).await;
            return;
        }
    };
    // The answer goes out before the first item.
    deliver(&shared, &reply, &call_id, Ok(sub_id.to_string())).await;
    drop(permit);
    forward(shared, method, sub_id, items, registration);
}

/// A stream set up through policy layers (`answer` is their answer, which runs the setup
/// and [`open_stream`] when passed on): the answer goes out, then, if it is `Ok` and the
/// stream was opened, its items.
pub(super) async fn subscribe_layered(
    shared: Arc<Shared>,
    answer: Bounded<CatchPanic<String>>,
    opened: Arc<Opened>,
    method: Arc<str>,
    call_id: Box<str>,
    reply: Reply,
    permit: OwnedSemaphorePermit,
) {
    let (abort, registration) = AbortHandle::new_pair();
    let token = shared.running().register(&call_id, abort, &reply);
    let answered = Abortable::new(answer, registration).await;
    let stream = opened.take();
    let close = |stream: Option<OpenStream>| {
        if let Some(stream) = stream {
            shared.streams().active.remove(&stream.sub_id);
        }
    };
    let Ok(out) = answered else {
        return close(stream); // cancelled: the cancellation answered
    };
    if !shared.running().finish(&call_id, token) {
        return close(stream);
    }
    match (out, stream) {
        (Ok(answer), Some(stream)) => {
            deliver(&shared, &reply, &call_id, Ok(answer)).await;
            drop(permit);
            let OpenStream {
                sub_id,
                items,
                registration,
            } = stream;
            forward(shared, method, sub_id, items, registration);
        }
        (out, stream) => {
            // Refused (before or after the setup), or answered by a layer itself.
            close(stream);
            deliver(&shared, &reply, &call_id, out).await;
        }
    }
}

/// Take a subscription id for a stream about to start (and what stops it), or the error
/// if the connection holds as many as it may.
pub(super) fn open_stream(shared: &Shared) -> Result<(u64, AbortRegistration), RpcError> {
    let limit = shared.config.max_subscriptions;
    let (abort, registration) = AbortHandle::new_pair();
    let mut streams = shared.streams();
    if streams.ended {
        // The session ended while this stream was being set up: nobody would end it.
        return Err(RpcError::internal("the connection has ended"));
    }
    if streams.active.len() >= limit {
        return Err(RpcError::limit_exceeded(format!(
            "too many subscriptions on this connection (the limit is {limit})"
        )));
    }
    let sub_id = if shared.door.process_unique_sub_ids {
        // E.g. each SSE response is a session of its own, and a client may hold
        // several at once: their ids are unique in the process.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    } else {
        streams.next_id += 1;
        streams.next_id
    };
    streams.active.insert(sub_id, abort);
    Ok((sub_id, registration))
}

/// Forward a started stream's items (its answer went out).
fn forward(
    shared: Arc<Shared>,
    method: Arc<str>,
    sub_id: u64,
    items: Produce,
    registration: AbortRegistration,
) {
    tracing::debug!(sub_id, "subscription started");
    // The items are forwarded by a task of their own: the one that set the stream up,
    // sized for the setup and the answer, ends, and what a subscription holds while it
    // waits for items is only what forwarding needs (a server may hold many thousands of
    // them).
    let forward = async move {
        let _counted = Open::subscription();
        let produced = match items {
            Produce::Items(items) => {
                Abortable::new(produce(&shared, &method, sub_id, items), registration).await
            }
            Produce::Topic(feed) => {
                Abortable::new(relay(&shared, &method, sub_id, feed), registration).await
            }
        };
        shared.streams().active.remove(&sub_id);
        if let Some(ended) = &shared.stream_ended {
            ended.cancel();
        }
        if produced.is_err() {
            tracing::debug!(sub_id, "subscription stopped by unsubscribe or disconnect");
        }
    };
    tokio::spawn(forward.in_current_span());
}

/// Forward items as notifications; then announce the end (`"error": null`) or the failure.
async fn produce(shared: &Shared, method: &str, sub_id: u64, mut items: ItemStream) {
    let limit = shared.config.max_message_size;
    let stream = StreamRef {
        method,
        sub: sub_id,
        header: "",
    };
    loop {
        let (frame, end) = match items.next().await {
            Some(Ok(item)) => (
                shared.encode(Event::Item {
                    stream,
                    item: &item,
                }),
                false,
            ),
            Some(Err(e)) => (
                shared.encode(Event::End {
                    stream,
                    error: Some(&e),
                }),
                true,
            ),
            None => (
                shared.encode(Event::End {
                    stream,
                    error: None,
                }),
                true,
            ),
        };
        let size = frame.as_ref().map_or(0, Frame::len);
        if size > limit {
            let err = RpcError::internal(format!(
                "a stream item of {size} bytes exceeds the limit of {limit} bytes"
            ));
            let frame = shared.encode(Event::End {
                stream,
                error: Some(&err),
            });
            send(shared, frame).await;
            return;
        }
        send(shared, frame).await;
        if end {
            return;
        }
    }
}

/// Forward a topic key's publications, with their positions, and any gap.
async fn relay(shared: &Shared, method: &str, sub_id: u64, mut feed: Box<Feed>) {
    let limit = shared.config.max_message_size;
    // What every frame of this stream shares, made once.
    let header = shared.encoder.stream_header(method, sub_id);
    let stream = StreamRef {
        method,
        sub: sub_id,
        header: &header,
    };
    let note = |note, epoch: &str, offset| {
        shared.encode(Event::Note {
            stream,
            note,
            epoch,
            offset,
        })
    };
    while let Some(event) = feed.next().await {
        let frame = match event {
            HubEvent::Item(entry) => {
                let frame = shared.encode(Event::Publication {
                    stream,
                    entry: &entry,
                });
                let size = frame.as_ref().map_or(0, Frame::len);
                if size > limit {
                    // Skipping it silently would break the sequence: the subscriber is
                    // told it lost this one.
                    tracing::warn!(
                        sub_id,
                        bytes = size,
                        limit,
                        "a publication over the message size limit was not sent"
                    );
                    note(Note::Gap, &entry.epoch, entry.offset)
                } else {
                    frame
                }
            }
            HubEvent::Gap(to) => note(Note::Gap, &to.epoch, to.offset),
            HubEvent::Start(at) => note(Note::Position, &at.epoch, at.offset),
        };
        send(shared, frame).await;
    }
    let end = shared.encode(Event::End {
        stream,
        error: None,
    });
    send(shared, end).await;
}

/// `Stream.unsubscribe` with `[ID]` (or `{"subscription": ID}`): stop that stream.
pub(super) fn unsubscribe(shared: &Shared, params: Option<&RawValue>) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum UnsubscribeParams {
        Positional((u64,)),
        Named { subscription: u64 },
    }
    let sub_id = match params.map(|p| serde_json::from_str::<UnsubscribeParams>(p.get())) {
        Some(Ok(UnsubscribeParams::Positional((id,))))
        | Some(Ok(UnsubscribeParams::Named { subscription: id })) => id,
        _ => return false,
    };
    let entry = shared.streams().active.remove(&sub_id);
    match entry {
        Some(abort) => {
            abort.abort();
            true
        }
        None => false,
    }
}
