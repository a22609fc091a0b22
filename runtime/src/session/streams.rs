//! Streams this side serves: set up by a handler, answered with a subscription id, then
//! items as notifications until the stream ends, fails, or is unsubscribed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::future::{AbortHandle, Abortable};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::dispatch::{deliver, Reply};
use super::guard::{CatchPanic, Setup};
use super::outbound::{Event, Frame, Note, StreamRef};
use super::{send, Shared};
use crate::error::RpcError;
use crate::hub::{Event as HubEvent, Feed};
use crate::session::router::{ItemStream, Produce};
use crate::telemetry::Open;

/// Set up a stream: run the handler's setup, answer the subscription id, then forward
/// the items until the stream ends, fails, or is unsubscribed.
pub(super) async fn subscribe(
    shared: Arc<Shared>,
    setup: Setup,
    method: Arc<str>,
    call_id: Box<str>,
    reply: Reply,
    permit: OwnedSemaphorePermit,
) {
    // The setup can be cancelled like a call until it answers.
    let (abort, registration) = AbortHandle::new_pair();
    let token = shared.running().register(&call_id, abort, &reply);
    let Ok(setup) = Abortable::new(CatchPanic(setup), registration).await else {
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
    let limit = shared.config.max_subscriptions;
    let (abort, registration) = AbortHandle::new_pair();
    let sub_id = {
        let mut streams = shared.streams();
        if streams.ended {
            return; // the session ended while this stream was being set up
        }
        if streams.active.len() >= limit {
            None
        } else {
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
            Some(sub_id)
        }
    };
    let Some(sub_id) = sub_id else {
        let err = RpcError::limit_exceeded(format!(
            "too many subscriptions on this connection (the limit is {limit})"
        ));
        deliver(&shared, &reply, &call_id, Err(err)).await;
        return;
    };
    // The answer goes out before the first item.
    deliver(&shared, &reply, &call_id, Ok(sub_id.to_string())).await;
    drop(permit);
    tracing::debug!(sub_id, "subscription started");
    // The items are forwarded by a task of their own: this one, sized for the setup and
    // the answer, ends here, and what a subscription holds while it waits for items is
    // only what forwarding needs (a server may hold many thousands of them).
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
