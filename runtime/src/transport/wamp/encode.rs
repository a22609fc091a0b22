//! The way out: the adapter is its session's [`Encoder`]. Each event the session hands it
//! is looked up in the adapter's tables (which `CALL` or `SUBSCRIBE` it answers, which
//! subscription an item belongs to) and written once as a WAMP message, or as nothing
//! where WAMP has nothing to say (position notes; answers of calls the client canceled or
//! that timed out).

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::message::{CALL, EVENT, RESULT, SUBSCRIBE, SUBSCRIBED};
use super::write::Part;
use super::{random_id, Sub, Wamp};
use crate::error::{code, RpcError};
use crate::session::outbound::{Encoder, Event, Frame};
use crate::session::router::Router;

impl Encoder for Wamp {
    fn encode(&self, event: Event<'_>) -> Option<Frame> {
        match event {
            Event::Answer { id, out } => self.answer(id.parse().ok()?, out),
            Event::Item { stream, item } => {
                let state = self.state();
                let Some(Sub::Progress { call }) = state.subs.get(&stream.sub) else {
                    return None;
                };
                let request = state.calls.get(call)?.request;
                drop(state);
                self.message(&[
                    Part::Int(RESULT),
                    Part::Int(request),
                    Part::Value(json!({ "progress": true })),
                    Part::Args(Some(item)),
                ])
            }
            Event::End { stream, error } => {
                let mut state = self.state();
                match state.subs.remove(&stream.sub)? {
                    // The server ended a topic subscription (shutdown): WAMP has no word
                    // for it.
                    Sub::Topic { .. } => None,
                    Sub::Progress { call } => {
                        let ended = state.end_call(call)?;
                        drop(state);
                        match error {
                            None => self.message(&[
                                Part::Int(RESULT),
                                Part::Int(ended.request),
                                Part::Value(json!({})),
                                Part::Args(None),
                            ]),
                            Some(error) => self.call_error(ended.request, &ended.method, error),
                        }
                    }
                }
            }
            Event::Publication { stream, entry } => {
                let mut state = self.state();
                let Some(Sub::Topic { key, .. }) = state.subs.get(&stream.sub) else {
                    return None;
                };
                let key = key.clone();
                // This session's own publication, with `exclude_me`: not to itself.
                if let Some(i) = state
                    .excluded
                    .iter()
                    .position(|(k, j)| *k == key && **j == *entry.json)
                {
                    state.excluded.remove(i);
                    return None;
                }
                drop(state);
                self.message(&[
                    Part::Int(EVENT),
                    Part::Int(stream.sub),
                    Part::Int(random_id()),
                    Part::Value(json!({})),
                    Part::Args(Some(&entry.json)),
                ])
            }
            // Positions and gaps: WAMP has none. Requests to the client: WAMP's door
            // carries none (its caps say so).
            Event::Note { .. } | Event::Request { .. } => None,
        }
    }
}

impl Wamp {
    /// The session's answer to the call `id`: a `CALL`'s result or error, the start of a
    /// progressive stream, or a `SUBSCRIBE`'s answer.
    fn answer(&self, id: u64, out: Result<String, RpcError>) -> Option<Frame> {
        let mut state = self.state();
        if let Some(subscribing) = state.subscribing.remove(&id) {
            return match out {
                Ok(sub) => {
                    let sub = sub.parse::<u64>().ok()?;
                    let topic = Sub::Topic {
                        method: subscribing.method,
                        key: subscribing.key,
                    };
                    state.subs.insert(sub, topic);
                    drop(state);
                    self.message(&[
                        Part::Int(SUBSCRIBED),
                        Part::Int(subscribing.request),
                        Part::Int(sub),
                    ])
                }
                Err(e) => {
                    drop(state);
                    let (uri, args, kwargs) = wamp_error(&self.router, &subscribing.method, &e);
                    self.error_message(SUBSCRIBE, subscribing.request, &uri, args, kwargs)
                }
            };
        }
        // A call not ended yet (else canceled or timed out: its late answer is dropped).
        let call = state.calls.get_mut(&id)?;
        if call.stream == Some(None) {
            if let Ok(sub) = &out {
                // A stream called with progressive results has started: its items come.
                let sub = sub.parse::<u64>().ok()?;
                call.stream = Some(Some(sub));
                state.subs.insert(sub, Sub::Progress { call: id });
                return None;
            }
        }
        let call = state.end_call(id)?;
        drop(state);
        match out {
            Ok(result) if result == "null" => self.message(&[
                Part::Int(RESULT),
                Part::Int(call.request),
                Part::Value(json!({})),
                Part::Args(None),
            ]),
            Ok(result) => self.message(&[
                Part::Int(RESULT),
                Part::Int(call.request),
                Part::Value(json!({})),
                Part::Args(Some(&result)),
            ]),
            Err(e) => self.call_error(call.request, &call.method, &e),
        }
    }

    fn call_error(&self, request: u64, method: &str, error: &RpcError) -> Option<Frame> {
        let (uri, args, kwargs) = wamp_error(&self.router, method, error);
        self.error_message(CALL, request, &uri, args, kwargs)
    }
}

/// An error as WAMP sees it: the error URI, `args` and `kwargs`.
pub(super) fn wamp_error(
    router: &Router,
    method: &str,
    error: &RpcError,
) -> (String, Value, Value) {
    let message = error.message.to_string();
    let data: Value = error
        .data
        .as_deref()
        .map(RawValue::get)
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    let detail = match &data {
        Value::String(s) => s.clone(),
        Value::Null => message.clone(),
        other => format!("{message}: {other}"),
    };
    let protocol = |uri: &str| (uri.to_string(), json!([detail]), json!({}));
    match error.code {
        code::METHOD_NOT_FOUND => protocol("wamp.error.no_such_procedure"),
        code::INVALID_PARAMS => protocol("wamp.error.invalid_argument"),
        code::REQUEST_CANCELLED | code::DEADLINE_EXCEEDED => protocol("wamp.error.canceled"),
        code::FORBIDDEN => protocol("wamp.error.not_authorized"),
        code::RATE_LIMITED => {
            let kwargs = data
                .as_object()
                .map_or(json!({}), |d| Value::Object(d.clone()));
            (
                "wirecall.error.rate_limited".into(),
                json!([message]),
                kwargs,
            )
        }
        code::INTERNAL_ERROR => protocol("wirecall.error.internal"),
        code::SERVER_SHUTTING_DOWN => protocol("wirecall.error.shutting_down"),
        code::LIMIT_EXCEEDED => protocol("wirecall.error.limit_exceeded"),
        code::SUBSCRIPTION_LAGGED => protocol("wirecall.error.lagged"),
        code::PEER_CALL_FAILED => protocol("wirecall.error.peer_call_failed"),
        code::PUBLISH_FAILED => protocol("wirecall.error.publish_failed"),
        code::INVALID_REQUEST | code::PARSE_ERROR => protocol("wamp.error.invalid_argument"),
        c if (-32768..=-32000).contains(&c) => protocol("wirecall.error.rpc"),
        code => {
            // A typed application error: `<Error>.<Variant>`, args `[code]`, kwargs its
            // data.
            let uri = match router.error_type(method) {
                Some(error_type) => format!("{error_type}.{message}"),
                None => format!("wirecall.error.{message}"),
            };
            let kwargs = match data {
                Value::Object(map) => Value::Object(map),
                Value::Null => json!({}),
                other => json!({ "data": other }),
            };
            (uri, json!([code]), kwargs)
        }
    }
}
