//! WAMP v2 on the WebSocket door: a client that offers the subprotocol `wamp.2.json` speaks
//! WAMP (Basic Profile, JSON serialization) to the same services. The server is the
//! router (dealer and broker) and the callee of its own procedures.
//!
//! It is a translator in front of an ordinary [`Session`]: WAMP messages in become
//! JSON-RPC frames for the session (`CALL` → a request, `SUBSCRIBE` → a topic
//! subscription, `CANCEL` → `$/cancelRequest`), and the session's frames out become WAMP
//! messages (`RESULT`, `ERROR`, progressive results, `EVENT`). Internal request ids say
//! which WAMP request a JSON-RPC answer belongs to: `"c7.3"` for `CALL` 7 (the third call
//! of the session: a request id may be used again), `"k7.3"` for a stream called with
//! progressive results, `"s7"` for `SUBSCRIBE` 7, `"u7"` for
//! `UNSUBSCRIBE` 7. The mapping is in `docs/PROTOCOL.md` ("WAMP").

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::codec::params::Params;
use crate::codec::text::Text;
use crate::error::code;
use crate::hub::topic_key;
use crate::session::outbound::{DoorCaps, Frame};
use crate::session::router::{Route, Router, TopicRoute};
use crate::session::Session;

/// Why a WAMP session cannot call its client.
pub(crate) const WAMP_PEER: &str =
    "server→client calls are not part of WAMP's model for a single peer; this call came over WAMP";

/// A WebSocket speaking WAMP: calls, streams and topics; no server→client calls.
pub(crate) const WAMP_DOOR: DoorCaps = DoorCaps {
    no_peer_calls: Some(WAMP_PEER),
    streams: true,
    ends_with_stream: false,
    process_unique_sub_ids: false,
    via: crate::telemetry::Via::WebSocket,
    door: crate::session::policy::Door::Wamp,
};

/// The WAMP subprotocol wirecall speaks.
pub const WAMP_SUBPROTOCOL: &str = "wamp.2.json";

/// WAMP's other serializers, refused with a clear answer.
pub(crate) fn is_other_wamp(protocol: &str) -> bool {
    protocol.starts_with("wamp.2.") && protocol != WAMP_SUBPROTOCOL
}

const HELLO: u64 = 1;
const WELCOME: u64 = 2;
const ABORT: u64 = 3;
const GOODBYE: u64 = 6;
const ERROR: u64 = 8;
const PUBLISH: u64 = 16;
const PUBLISHED: u64 = 17;
const SUBSCRIBE: u64 = 32;
const SUBSCRIBED: u64 = 33;
const UNSUBSCRIBE: u64 = 34;
const UNSUBSCRIBED: u64 = 35;
const EVENT: u64 = 36;
const CALL: u64 = 48;
const CANCEL: u64 = 49;
const RESULT: u64 = 50;

/// This session's own publications remembered for `exclude_me` at most (the oldest go).
const MAX_EXCLUDED: usize = 1024;

/// WAMP ids are integers in [1, 2^53].
const MAX_ID: u64 = 1 << 53;

/// The longest `CALL` option `timeout` honoured, in ms (a day): a longer one is cut to it.
pub(crate) const MAX_CALL_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// How much of a malformed message an `ABORT` (and the debug log) quotes.
const QUOTED: usize = 120;

/// One WAMP connection's translator. Shared by the reader (messages in) and the task that
/// turns the session's frames into WAMP messages.
pub(crate) struct Wamp {
    router: Router,
    realm: Option<Arc<str>>,
    hub: crate::hub::Hub,
    /// To the socket's writer.
    out: mpsc::Sender<Frame>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    welcomed: bool,
    /// `CALL`s not answered yet, by request id.
    calls: HashMap<u64, Call>,
    /// The last [`Call::token`] given.
    last_call: u64,
    /// `SUBSCRIBE`s not answered yet: request id → the topic key.
    subscribing: HashMap<u64, (Arc<str>, Arc<str>)>,
    /// Live subscriptions by id (the session's subscription id).
    subs: HashMap<u64, Sub>,
    /// This session's own publications (`exclude_me`): topic key and item, until their
    /// event comes by.
    excluded: VecDeque<(Arc<str>, Value)>,
}

struct Call {
    /// The method, for a stream's unsubscribe.
    method: Arc<str>,
    /// A stream called with progressive results: its subscription id once answered.
    stream: Option<Option<u64>>,
    /// Which `CALL` this is (a request id may be used again once answered): a timer
    /// ends only the call it was started for.
    token: u64,
    /// The task that ends the call at its `timeout`: it goes with the call (aborted when
    /// the call is answered, canceled, or the session ends).
    timer: Option<tokio::task::AbortHandle>,
}

impl Call {
    /// What `stop` needs of a call, without its timer.
    fn target(&self) -> Call {
        Call {
            method: self.method.clone(),
            stream: self.stream,
            token: self.token,
            timer: None,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

enum Sub {
    /// A topic: events.
    Topic { method: Arc<str>, key: Arc<str> },
    /// A stream called with `receive_progress`: progressive results of that call.
    Progress { call: u64 },
}

/// A topic URI resolved.
struct Resolved {
    route: Arc<TopicRoute>,
    /// The topic's wire name.
    name: Arc<str>,
    /// The key as by-name params the route accepts.
    params: Value,
    /// The hub's name of the key.
    key: Arc<str>,
    /// The key's values (a JSON array).
    values: String,
}

/// What the reader does after a message.
pub(crate) enum Flow {
    Continue,
    /// Close the connection (after `ABORT` or `GOODBYE`).
    Close,
}

/// A session or publication id: random over [1, 2^53], as the WAMP specification asks of
/// ids in the global scope (a counter would tell one client how many others there are).
fn random_id() -> u64 {
    fastrand::u64(1..=MAX_ID)
}

/// `text` cut to its first [`QUOTED`] characters, for an error message or the log.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text.to_string(),
    }
}

fn text(value: &Value) -> String {
    value.to_string()
}

/// Hand the session a JSON-RPC frame made from a WAMP message.
async fn feed(session: &Session, frame: &Value, close: &CancellationToken) {
    let frame = Text::from(text(frame));
    let _ = session.handle_frame(&frame, close).await;
}

/// A JSON-RPC error object as WAMP sees it: the error URI, `args` and `kwargs`.
fn wamp_error(router: &Router, method: &str, error: &Value) -> (String, Value, Value) {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let data = error.get("data").cloned().unwrap_or(Value::Null);
    let detail = match &data {
        Value::String(s) => s.clone(),
        Value::Null => message.clone(),
        other => format!("{message}: {other}"),
    };
    let protocol = |uri: &str| (uri.to_string(), json!([detail]), json!({}));
    match i32::try_from(code).unwrap_or(0) {
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
        _ => {
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

impl Wamp {
    pub(crate) fn new(
        router: Router,
        realm: Option<Arc<str>>,
        hub: crate::hub::Hub,
        out: mpsc::Sender<Frame>,
    ) -> Arc<Wamp> {
        Arc::new(Wamp {
            router,
            realm,
            hub,
            out,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn send(&self, message: Value) {
        let _ = self.out.send(Frame::Text(text(&message))).await;
    }

    async fn abort(&self, reason: &str, message: impl Into<String>) -> Flow {
        let message = message.into();
        tracing::debug!(reason, %message, "WAMP session aborted");
        self.send(json!([ABORT, { "message": message }, reason]))
            .await;
        Flow::Close
    }

    async fn error(&self, request_type: u64, request: u64, uri: &str, args: Value, kwargs: Value) {
        self.send(json!([ERROR, request_type, request, {}, uri, args, kwargs]))
            .await;
    }

    /// `ERROR` for a request, with one message in `args`.
    async fn fail(&self, request_type: u64, request: u64, uri: &str, message: impl Into<String>) {
        let message: String = message.into();
        self.error(request_type, request, uri, json!([message]), json!({}))
            .await;
    }

    /// A message from the client.
    pub(crate) async fn incoming(
        self: &Arc<Self>,
        frame: &str,
        session: &Session,
        close: &CancellationToken,
    ) -> Flow {
        let Ok(Value::Array(message)) = serde_json::from_str::<Value>(frame) else {
            return self
                .abort(
                    "wamp.error.protocol_violation",
                    "a WAMP message is a JSON array",
                )
                .await;
        };
        let Some(kind) = message.first().and_then(Value::as_u64) else {
            return self
                .abort(
                    "wamp.error.protocol_violation",
                    "a WAMP message starts with its type",
                )
                .await;
        };
        let welcomed = self.state().welcomed;
        if !welcomed {
            return match kind {
                HELLO => self.hello(&message).await,
                ABORT => Flow::Close,
                _ => {
                    self.abort(
                        "wamp.error.protocol_violation",
                        format!("message type {kind} before the session was established (send HELLO first)"),
                    )
                    .await
                }
            };
        }
        let malformed = |what: &str| format!("malformed {what} message: {}", quote(frame));
        match kind {
            HELLO => {
                self.abort("wamp.error.protocol_violation", "HELLO in an established session")
                    .await
            }
            GOODBYE => {
                self.send(json!([GOODBYE, {}, "wamp.close.goodbye_and_out"]))
                    .await;
                Flow::Close
            }
            ABORT => Flow::Close,
            CALL => match (
                message.get(1).and_then(Value::as_u64),
                message.get(2).and_then(Value::as_object),
                message.get(3).and_then(Value::as_str),
            ) {
                (Some(request), Some(options), Some(procedure)) => {
                    self.call(request, options, procedure, &message[4..], session, close)
                        .await;
                    Flow::Continue
                }
                _ => self.abort("wamp.error.protocol_violation", malformed("CALL")).await,
            },
            CANCEL => match (
                message.get(1).and_then(Value::as_u64),
                message.get(2).and_then(Value::as_object),
            ) {
                (Some(request), Some(options)) => {
                    self.cancel(request, options, session, close).await;
                    Flow::Continue
                }
                _ => self.abort("wamp.error.protocol_violation", malformed("CANCEL")).await,
            },
            SUBSCRIBE => match (
                message.get(1).and_then(Value::as_u64),
                message.get(2).and_then(Value::as_object),
                message.get(3).and_then(Value::as_str),
            ) {
                (Some(request), Some(_), Some(topic)) => {
                    self.subscribe(request, topic, session, close).await;
                    Flow::Continue
                }
                _ => self.abort("wamp.error.protocol_violation", malformed("SUBSCRIBE")).await,
            },
            UNSUBSCRIBE => match (
                message.get(1).and_then(Value::as_u64),
                message.get(2).and_then(Value::as_u64),
            ) {
                (Some(request), Some(subscription)) => {
                    self.unsubscribe(request, subscription, session, close).await;
                    Flow::Continue
                }
                _ => self.abort("wamp.error.protocol_violation", malformed("UNSUBSCRIBE")).await,
            },
            PUBLISH => match (
                message.get(1).and_then(Value::as_u64),
                message.get(2).and_then(Value::as_object),
                message.get(3).and_then(Value::as_str),
            ) {
                (Some(request), Some(options), Some(topic)) => {
                    self.publish(request, options, topic, &message[4..], session)
                        .await;
                    Flow::Continue
                }
                _ => self.abort("wamp.error.protocol_violation", malformed("PUBLISH")).await,
            },
            other => {
                self.abort(
                    "wamp.error.protocol_violation",
                    format!(
                        "message type {other} is not supported: this router serves its own procedures and topics (Basic Profile: CALL, CANCEL, SUBSCRIBE, UNSUBSCRIBE, PUBLISH, GOODBYE)"
                    ),
                )
                .await
            }
        }
    }

    async fn hello(&self, message: &[Value]) -> Flow {
        let Some(realm) = message.get(1).and_then(Value::as_str) else {
            return self
                .abort("wamp.error.protocol_violation", "HELLO needs a realm")
                .await;
        };
        if message.get(2).and_then(Value::as_object).is_none() {
            return self
                .abort(
                    "wamp.error.protocol_violation",
                    "HELLO needs a details object",
                )
                .await;
        }
        if let Some(only) = &self.realm {
            if **only != *realm {
                return self
                    .abort(
                        "wamp.error.no_such_realm",
                        format!("this router serves the realm `{only}`"),
                    )
                    .await;
            }
        }
        self.state().welcomed = true;
        let welcome = json!([WELCOME, random_id(), {
            "realm": realm,
            "agent": concat!("wirecall/", env!("CARGO_PKG_VERSION")),
            "roles": {
                "dealer": { "features": {
                    "progressive_call_results": true,
                    "call_canceling": true,
                    "call_timeout": true,
                }},
                "broker": { "features": { "publisher_exclusion": true } },
            },
        }]);
        self.send(welcome).await;
        Flow::Continue
    }

    async fn call(
        self: &Arc<Self>,
        request: u64,
        options: &Map<String, Value>,
        procedure: &str,
        payload: &[Value],
        session: &Session,
        close: &CancellationToken,
    ) {
        let args = payload.first().and_then(Value::as_array);
        let kwargs = payload.get(1).and_then(Value::as_object);
        let params = match (args, kwargs) {
            (Some(a), Some(k)) if !a.is_empty() && !k.is_empty() => {
                let m = "give the arguments by position (args) or by name (kwargs), not both";
                self.fail(CALL, request, "wamp.error.invalid_argument", m)
                    .await;
                return;
            }
            (_, Some(k)) if !k.is_empty() => Value::Object(k.clone()),
            (Some(a), _) => Value::Array(a.clone()),
            _ => Value::Array(Vec::new()),
        };
        let progress = options.get("receive_progress") == Some(&Value::Bool(true));
        let stream = match self.router.get(procedure) {
            Some(Route::Subscribe(_)) if progress => true,
            Some(Route::Subscribe(_)) => {
                let m = format!(
                    "`{procedure}` is a stream: call it with the option receive_progress, and its items come as progressive results"
                );
                self.fail(CALL, request, "wamp.error.invalid_argument", m)
                    .await;
                return;
            }
            Some(Route::Topic(_)) => {
                let m = format!("`{procedure}` is a topic: SUBSCRIBE to it");
                self.fail(CALL, request, "wamp.error.invalid_argument", m)
                    .await;
                return;
            }
            Some(Route::Unsubscribe) => {
                let m = format!("no procedure `{procedure}`");
                self.fail(CALL, request, "wamp.error.no_such_procedure", m)
                    .await;
                return;
            }
            _ => false,
        };
        let token = {
            let mut state = self.state();
            if state.calls.contains_key(&request) {
                None
            } else {
                state.last_call += 1;
                let token = state.last_call;
                let call = Call {
                    method: procedure.into(),
                    stream: stream.then_some(None),
                    token,
                    timer: None,
                };
                state.calls.insert(request, call);
                Some(token)
            }
        };
        let Some(token) = token else {
            let m = format!("request id {request} is already in use");
            self.fail(CALL, request, "wamp.error.invalid_argument", m)
                .await;
            return;
        };
        // The token in the id: the answer of an earlier call that used the same request id
        // (skipped by CANCEL, still running) is told apart from this one's.
        let id = format!("{}{request}.{token}", if stream { 'k' } else { 'c' });
        let mut frame = json!({"jsonrpc": "2.0", "id": id, "method": procedure, "params": params});
        if let Some(ms) = options
            .get("timeout")
            .and_then(Value::as_u64)
            .filter(|ms| *ms > 0)
        {
            // The call's deadline, as a JSON-RPC caller's `"$timeout"` (the handler's
            // `ctx.deadline()`, inherited by the calls it makes).
            frame["$timeout"] = json!(ms.min(MAX_CALL_TIMEOUT_MS));
            self.time_out(request, token, ms.min(MAX_CALL_TIMEOUT_MS), session, close);
        }
        feed(session, &frame, close).await;
    }

    /// End the call `request` (the one of `token`) after `ms` unless it is answered first:
    /// the timer is kept with the call, which aborts it when it goes.
    fn time_out(
        self: &Arc<Self>,
        request: u64,
        token: u64,
        ms: u64,
        session: &Session,
        close: &CancellationToken,
    ) {
        // (A weak reference: the timer does not keep the translator alive.)
        let wamp = Arc::downgrade(self);
        let session = session.clone();
        let close = close.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let Some(wamp) = wamp.upgrade() else { return };
            let pending = {
                let mut state = wamp.state();
                match state.calls.get(&request) {
                    Some(call) if call.token == token => state.calls.remove(&request),
                    _ => None,
                }
            };
            if let Some(mut call) = pending {
                // This task is the timer: dropping the call must not abort it.
                call.timer = None;
                wamp.stop(request, &call, &session, &close).await;
                let m = format!("no result within the call's timeout of {ms} ms");
                wamp.error(CALL, request, "wamp.error.canceled", json!([m]), json!({}))
                    .await;
            }
        });
        let mut state = self.state();
        match state.calls.get_mut(&request) {
            Some(call) if call.token == token => call.timer = Some(timer.abort_handle()),
            // Answered already (or gone with the session).
            _ => timer.abort(),
        }
    }

    /// The session ended: drop what is left of its calls (and their timers).
    pub(crate) fn end(&self) {
        let calls = std::mem::take(&mut self.state().calls);
        drop(calls);
    }

    /// Stop what a call started on the session: cancel the handler, or end the stream.
    async fn stop(&self, request: u64, call: &Call, session: &Session, close: &CancellationToken) {
        let frame = match call.stream {
            Some(Some(sub)) => {
                self.state().subs.remove(&sub);
                json!({"jsonrpc": "2.0", "method": format!("{}.unsubscribe", call.method), "params": [sub]})
            }
            Some(None) => {
                json!({"jsonrpc": "2.0", "method": crate::session::peer::CANCEL_METHOD, "params": {"id": format!("k{request}.{}", call.token)}})
            }
            None => {
                json!({"jsonrpc": "2.0", "method": crate::session::peer::CANCEL_METHOD, "params": {"id": format!("c{request}.{}", call.token)}})
            }
        };
        feed(session, &frame, close).await;
    }

    async fn cancel(
        &self,
        request: u64,
        options: &Map<String, Value>,
        session: &Session,
        close: &CancellationToken,
    ) {
        let mode = options
            .get("mode")
            .and_then(Value::as_str)
            .unwrap_or("kill");
        let canceled = |m: &str| (json!([format!("the call was canceled ({m})")]), json!({}));
        match mode {
            // Stop the handler; its -32800 answer becomes the ERROR.
            "kill" => {
                let call = self.state().calls.get(&request).map(Call::target);
                if let Some(call) = call {
                    if call.stream.is_some() {
                        // A stream ends without an answer: answer here.
                        self.state().calls.remove(&request);
                        self.stop(request, &call, session, close).await;
                        let (args, kwargs) = canceled(mode);
                        self.error(CALL, request, "wamp.error.canceled", args, kwargs)
                            .await;
                    } else {
                        self.stop(request, &call, session, close).await;
                    }
                }
            }
            "killnowait" | "skip" => {
                let call = self.state().calls.remove(&request);
                if let Some(call) = call {
                    if mode == "killnowait" || call.stream.is_some() {
                        self.stop(request, &call, session, close).await;
                    }
                    let (args, kwargs) = canceled(mode);
                    self.error(CALL, request, "wamp.error.canceled", args, kwargs)
                        .await;
                }
            }
            other => {
                let m = format!("unknown cancel mode `{other}` (kill, killnowait or skip)");
                self.fail(CANCEL, request, "wamp.error.invalid_argument", m)
                    .await;
            }
        }
    }

    /// The topic key a URI names (`Chat.room.lobby`), or the WAMP error why none.
    fn resolve(&self, uri: &str) -> Result<Resolved, (&'static str, String)> {
        let mut best: Option<(&str, &Arc<TopicRoute>)> = None;
        for name in self.router.names() {
            if let Some(Route::Topic(route)) = self.router.get(name) {
                let matches = uri == name
                    || (uri.starts_with(name) && uri.as_bytes().get(name.len()) == Some(&b'.'));
                if matches && best.is_none_or(|(b, _)| name.len() > b.len()) {
                    best = Some((name, route));
                }
            }
        }
        let Some((name, route)) = best else {
            return Err((
                "wamp.error.invalid_uri",
                format!("no topic of this server matches `{uri}`"),
            ));
        };
        let rest = uri.get(name.len() + 1..).unwrap_or("");
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('.').collect()
        };
        let names = &route.names;
        if parts.len() != names.len() {
            let pattern: Vec<String> = names.iter().map(|n| format!(".<{n}>")).collect();
            return Err((
                "wamp.error.invalid_uri",
                format!(
                    "`{name}` takes {} key value(s): {name}{}",
                    names.len(),
                    pattern.concat()
                ),
            ));
        }
        // Key values are URI components: strings, unless the key wants numbers or bools.
        let as_strings: Map<String, Value> = names
            .iter()
            .zip(&parts)
            .map(|(n, p)| (n.to_string(), Value::String(p.to_string())))
            .collect();
        let typed: Map<String, Value> = names
            .iter()
            .zip(&parts)
            .map(|(n, p)| {
                let v = serde_json::from_str::<Value>(p)
                    .ok()
                    .filter(|v| v.is_number() || v.is_boolean())
                    .unwrap_or_else(|| Value::String(p.to_string()));
                (n.to_string(), v)
            })
            .collect();
        let mut last = String::new();
        for candidate in [as_strings, typed] {
            let params = Value::Object(candidate);
            let Ok(raw) = RawValue::from_string(params.to_string()) else {
                continue;
            };
            match (route.key)(Params::new(Some(&raw))) {
                Ok(values) => {
                    return Ok(Resolved {
                        route: route.clone(),
                        key: topic_key(name, &values).into(),
                        name: name.into(),
                        params,
                        values,
                    })
                }
                Err(e) => last = e.message.to_string(),
            }
        }
        Err(("wamp.error.invalid_argument", last))
    }

    async fn subscribe(
        &self,
        request: u64,
        uri: &str,
        session: &Session,
        close: &CancellationToken,
    ) {
        let Resolved {
            name, params, key, ..
        } = match self.resolve(uri) {
            Ok(found) => found,
            Err((error, m)) => {
                self.fail(SUBSCRIBE, request, error, m).await;
                return;
            }
        };
        self.state()
            .subscribing
            .insert(request, (name.clone(), key));
        let frame = json!({"jsonrpc": "2.0", "id": format!("s{request}"), "method": &*name, "params": params});
        feed(session, &frame, close).await;
    }

    async fn unsubscribe(
        &self,
        request: u64,
        subscription: u64,
        session: &Session,
        close: &CancellationToken,
    ) {
        let removed = {
            let mut state = self.state();
            match state.subs.get(&subscription) {
                Some(Sub::Topic { method, .. }) => {
                    let method = method.clone();
                    state.subs.remove(&subscription);
                    Some(method)
                }
                _ => None,
            }
        };
        let Some(method) = removed else {
            let m = format!("no subscription {subscription}");
            self.fail(UNSUBSCRIBE, request, "wamp.error.no_such_subscription", m)
                .await;
            return;
        };
        let frame = json!({"jsonrpc": "2.0", "id": format!("u{request}"), "method": format!("{method}.unsubscribe"), "params": [subscription]});
        feed(session, &frame, close).await;
    }

    async fn publish(
        &self,
        request: u64,
        options: &Map<String, Value>,
        uri: &str,
        payload: &[Value],
        session: &Session,
    ) {
        let acknowledge = options.get("acknowledge") == Some(&Value::Bool(true));
        let exclude_me = options.get("exclude_me") != Some(&Value::Bool(false));
        let refuse = |error: &'static str, m: String| async move {
            if acknowledge {
                self.fail(PUBLISH, request, error, m).await;
            } else {
                tracing::debug!(%m, "WAMP publication refused");
            }
        };
        let Resolved {
            route,
            name,
            key,
            values,
            ..
        } = match self.resolve(uri) {
            Ok(found) => found,
            Err((error, m)) => return refuse(error, m).await,
        };
        let Some(check) = &route.publish else {
            let m = format!("`{name}` does not take publications from clients (its .wire declaration would say @publishable)");
            return refuse("wamp.error.not_authorized", m).await;
        };
        // The service's `authorize_<topic>` hook, as for a subscription.
        if let Some(authorized) =
            route.authorize(session.context(), &values, "publishing to", &name)
        {
            if let Err(e) = authorized.await {
                return refuse("wamp.error.not_authorized", e.message.into_owned()).await;
            }
        }
        let args = payload.first().and_then(Value::as_array);
        let kwargs = payload.get(1).and_then(Value::as_object);
        let item = match (args.map(Vec::as_slice), kwargs) {
            (Some([item]), None) => item.clone(),
            (Some([item]), Some(k)) if k.is_empty() => item.clone(),
            (None | Some([]), Some(k)) if !k.is_empty() => Value::Object(k.clone()),
            _ => {
                let m =
                    "publish the item as the one positional argument (or as kwargs)".to_string();
                return refuse("wamp.error.invalid_argument", m).await;
            }
        };
        let json = match check(&item.to_string()) {
            Ok(json) => json,
            Err(e) => return refuse("wamp.error.invalid_argument", e).await,
        };
        // As the event will carry it: the item in the topic's own type.
        let published: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
        // Remembered only while this session is subscribed to the key (else no event
        // would ever take it off the list), and a bounded number of them.
        let exclude_me = exclude_me && {
            let mut state = self.state();
            let subscribed = state
                .subs
                .values()
                .any(|s| matches!(s, Sub::Topic { key: k, .. } if *k == key));
            if subscribed {
                if state.excluded.len() >= MAX_EXCLUDED {
                    state.excluded.pop_front();
                }
                state.excluded.push_back((key.clone(), published.clone()));
            }
            subscribed
        };
        match self
            .hub
            .publish_json(key.clone(), json.clone().into())
            .await
        {
            Ok(_) => {
                if acknowledge {
                    self.send(json!([PUBLISHED, request, random_id()])).await;
                }
            }
            Err(e) => {
                if exclude_me {
                    let mut state = self.state();
                    if let Some(i) = state
                        .excluded
                        .iter()
                        .position(|(k, j)| *k == key && *j == published)
                    {
                        state.excluded.remove(i);
                    }
                }
                let uri = match e {
                    crate::hub::PublishError::LimitExceeded(_) => "wirecall.error.limit_exceeded",
                    _ => "wirecall.error.hub_unavailable",
                };
                refuse(uri, e.to_string()).await;
            }
        }
    }

    /// Turn the session's frames into WAMP messages until the session ends.
    pub(crate) async fn translate(self: Arc<Self>, mut from_session: mpsc::Receiver<Frame>) {
        while let Some(message) = from_session.recv().await {
            let Frame::Text(frame) = message else {
                // A graceful shutdown says goodbye the WAMP way first.
                if let Frame::Close(Some((code, _))) = &message {
                    if CloseCode::from(*code) == CloseCode::Away {
                        let goodbye = json!([GOODBYE, {}, "wamp.close.system_shutdown"]);
                        let _ = self.out.send(Frame::Text(text(&goodbye))).await;
                    }
                }
                // Pings and the close frame go out as they are.
                if self.out.send(message).await.is_err() {
                    return;
                }
                continue;
            };
            for wamp in self.outgoing(&frame) {
                if self.out.send(Frame::Text(text(&wamp))).await.is_err() {
                    return;
                }
            }
        }
    }

    /// The WAMP messages for one JSON-RPC frame of the session.
    fn outgoing(&self, frame: &str) -> Vec<Value> {
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(frame) else {
            return Vec::new();
        };
        match (frame.get("id"), frame.get("method")) {
            (Some(Value::String(id)), None) => self.answer(id, &frame),
            (None, Some(Value::String(_))) => self.notification(&frame),
            _ => Vec::new(),
        }
    }

    fn answer(&self, id: &str, frame: &Map<String, Value>) -> Vec<Value> {
        let (tag, rest) = id.split_at(id.len().min(1));
        let (number, token) = match rest.split_once('.') {
            Some((number, token)) => (number, token.parse::<u64>().ok()),
            None => (rest, None),
        };
        let Ok(request) = number.parse::<u64>() else {
            return Vec::new();
        };
        let result = frame.get("result");
        let error = frame.get("error");
        let mut state = self.state();
        // A call's answer, if the call is still the one it answers (not canceled or timed
        // out, its request id not reused since).
        let current = |state: &State| {
            state
                .calls
                .get(&request)
                .is_some_and(|c| Some(c.token) == token)
        };
        match tag {
            "c" => {
                if !current(&state) {
                    return Vec::new(); // canceled (skip, killnowait) or timed out
                }
                let Some(call) = state.calls.remove(&request) else {
                    return Vec::new();
                };
                drop(state);
                match (result, error) {
                    (Some(Value::Null), _) => vec![json!([RESULT, request, {}, []])],
                    (Some(value), _) => vec![json!([RESULT, request, {}, [value]])],
                    (None, Some(error)) => {
                        let (uri, args, kwargs) = wamp_error(&self.router, &call.method, error);
                        vec![json!([ERROR, CALL, request, {}, uri, args, kwargs])]
                    }
                    _ => Vec::new(),
                }
            }
            "k" if !current(&state) => Vec::new(), // canceled, or timed out
            "k" => match (result.and_then(Value::as_u64), error) {
                (Some(sub), _) => match state.calls.get_mut(&request) {
                    Some(call) => {
                        call.stream = Some(Some(sub));
                        state.subs.insert(sub, Sub::Progress { call: request });
                        Vec::new()
                    }
                    None => Vec::new(), // canceled before it started; the stream ends with the session
                },
                (None, Some(error)) => match state.calls.remove(&request) {
                    Some(call) => {
                        drop(state);
                        let (uri, args, kwargs) = wamp_error(&self.router, &call.method, error);
                        vec![json!([ERROR, CALL, request, {}, uri, args, kwargs])]
                    }
                    None => Vec::new(),
                },
                _ => Vec::new(),
            },
            "s" => {
                let Some((method, key)) = state.subscribing.remove(&request) else {
                    return Vec::new();
                };
                match (result.and_then(Value::as_u64), error) {
                    (Some(sub), _) => {
                        state.subs.insert(sub, Sub::Topic { method, key });
                        vec![json!([SUBSCRIBED, request, sub])]
                    }
                    (None, Some(error)) => {
                        drop(state);
                        let (uri, args, kwargs) = wamp_error(&self.router, &method, error);
                        vec![json!([ERROR, SUBSCRIBE, request, {}, uri, args, kwargs])]
                    }
                    _ => Vec::new(),
                }
            }
            "u" => vec![json!([UNSUBSCRIBED, request])],
            _ => Vec::new(),
        }
    }

    fn notification(&self, frame: &Map<String, Value>) -> Vec<Value> {
        let Some(params) = frame.get("params").and_then(Value::as_object) else {
            return Vec::new();
        };
        let Some(sub) = params.get("subscription").and_then(Value::as_u64) else {
            return Vec::new();
        };
        let mut state = self.state();
        match state.subs.get(&sub) {
            Some(Sub::Topic { key, .. }) => {
                let Some(item) = params.get("result") else {
                    if params.contains_key("error") {
                        state.subs.remove(&sub); // the server ended it (shutdown)
                    }
                    return Vec::new(); // a position or gap note: WAMP has none
                };
                if let Some(i) = state
                    .excluded
                    .iter()
                    .position(|(k, j)| *k == *key && j == item)
                {
                    state.excluded.remove(i);
                    return Vec::new();
                }
                vec![json!([EVENT, sub, random_id(), {}, [item]])]
            }
            Some(Sub::Progress { call }) => {
                let call = *call;
                if let Some(item) = params.get("result") {
                    return vec![json!([RESULT, call, { "progress": true }, [item]])];
                }
                state.subs.remove(&sub);
                let Some(ended) = state.calls.remove(&call) else {
                    return Vec::new();
                };
                drop(state);
                match params.get("error") {
                    Some(Value::Null) | None => vec![json!([RESULT, call, {}, []])],
                    Some(error) => {
                        let (uri, args, kwargs) = wamp_error(&self.router, &ended.method, error);
                        vec![json!([ERROR, CALL, call, {}, uri, args, kwargs])]
                    }
                }
            }
            None => Vec::new(),
        }
    }
}
