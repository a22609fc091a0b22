//! The way in: one WAMP message from the client, decoded once, becomes what the session
//! takes (a request or notification, as structured data) plus an entry in the adapter's
//! tables; `HELLO`, `GOODBYE`, `ABORT` and `CANCEL` are the adapter's own.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::message::{
    decode, DecodeError, Incoming, Options, Payload, Serializer, AUTHENTICATE, CALL, CANCEL,
    CHALLENGE, GOODBYE, HELLO, WELCOME,
};
use super::write::Part;
use super::{quote, random_id, Call, Flow, Wamp, MAX_CALL_TIMEOUT_MS};
use crate::auth::Identity;
use crate::codec::message::Incoming as Message;
use crate::codec::text::Text;
use crate::session::peer::CANCEL_METHOD;
use crate::session::router::Route;
use crate::session::Session;
use crate::telemetry;

/// One frame as the WebSocket door read it.
pub(crate) enum Input {
    /// A text frame (or a binary one that is UTF-8, for `wamp.2.json`).
    Text(Text),
    /// A binary frame.
    Bytes(bytes::Bytes),
}

impl Input {
    fn bytes(&self) -> &[u8] {
        match self {
            Input::Text(text) => text.as_bytes(),
            Input::Bytes(bytes) => bytes,
        }
    }
}

/// Hand the session a request (`id`: a call id of the adapter) or notification. `frame`:
/// the text `params` borrows from, if any.
pub(super) async fn feed(
    session: &Session,
    method: &str,
    params: Option<&RawValue>,
    id: Option<u64>,
    timeout: Option<u64>,
    frame: &Text,
    close: &CancellationToken,
) {
    let id = id.and_then(|id| RawValue::from_string(id.to_string()).ok());
    let message = Message::Request {
        method: Cow::Borrowed(method),
        params,
        id: id.as_deref(),
        timeout,
        // (WAMP carries no trace context: docs/PROTOCOL.md, "Trace context".)
        #[cfg(feature = "otel")]
        traceparent: None,
    };
    let _ = session.handle_message(message, frame, close).await;
}

/// `params` as JSON text.
fn raw(json: String) -> Option<Box<RawValue>> {
    RawValue::from_string(json).ok()
}

impl Wamp {
    /// A message from the client.
    pub(crate) async fn incoming(
        self: &Arc<Self>,
        input: Input,
        session: &Session,
        close: &CancellationToken,
    ) -> Flow {
        let bytes = input.bytes();
        telemetry::received(telemetry::Via::WebSocket, bytes.len());
        let text = match (&input, self.serializer) {
            (Input::Text(text), Serializer::Json) => Some(text.as_str()),
            (Input::Bytes(bytes), Serializer::Json) => std::str::from_utf8(bytes).ok(),
            _ => None,
        };
        let shown = || match text {
            Some(text) => quote(text),
            None => format!("({} bytes)", bytes.len()),
        };
        let message = match decode(self.serializer, bytes, text) {
            Ok(message) => message,
            Err(e) => {
                let why = match e {
                    DecodeError::NotAList => "a WAMP message is a list".to_string(),
                    DecodeError::NoType => "a WAMP message starts with its type".to_string(),
                    DecodeError::Malformed(kind) => {
                        let welcomed = self.state().welcomed;
                        if !welcomed && kind != HELLO && kind != AUTHENTICATE {
                            format!("message type {kind} before the session was established (send HELLO first)")
                        } else {
                            format!("malformed {} message: {}", name(kind), shown())
                        }
                    }
                };
                return self.abort("wamp.error.protocol_violation", why).await;
            }
        };
        // For JSON, the text the arguments borrow from.
        let frame = match (&input, text) {
            (Input::Text(text), Some(_)) => text.clone(),
            (Input::Bytes(_), Some(text)) => Text::from(text.to_string()),
            _ => Text::default(),
        };
        let welcomed = self.state().welcomed;
        if !welcomed {
            return match message {
                Incoming::Hello {
                    realm,
                    details,
                    authmethods,
                    authid,
                } => {
                    let hello = Hello {
                        realm,
                        details,
                        authmethods,
                        authid,
                    };
                    self.hello(hello, session).await
                }
                Incoming::Authenticate { signature } => self.authenticate(signature, session).await,
                Incoming::Abort => Flow::Close,
                other => {
                    let kind = kind(&other);
                    self.abort(
                        "wamp.error.protocol_violation",
                        format!("message type {kind} before the session was established (send HELLO first)"),
                    )
                    .await
                }
            };
        }
        match message {
            Incoming::Hello { .. } => {
                self.abort("wamp.error.protocol_violation", "HELLO in an established session")
                    .await
            }
            Incoming::Authenticate { .. } => {
                self.abort(
                    "wamp.error.protocol_violation",
                    "AUTHENTICATE in an established session",
                )
                .await
            }
            Incoming::Goodbye => {
                let empty = Value::Object(Default::default());
                self.send(&[
                    Part::Int(GOODBYE),
                    Part::Value(empty),
                    Part::Str("wamp.close.goodbye_and_out"),
                ])
                .await;
                Flow::Close
            }
            Incoming::Abort => Flow::Close,
            Incoming::Call {
                request,
                options,
                procedure,
                args,
                kwargs,
            } => {
                let call = Calling {
                    request,
                    options,
                    procedure: &procedure,
                    args,
                    kwargs,
                };
                self.call(call, &frame, session, close).await;
                Flow::Continue
            }
            Incoming::Cancel { request, options } => {
                self.cancel(request, &options, session, close).await;
                Flow::Continue
            }
            Incoming::Subscribe { request, topic } => {
                self.subscribe(request, &topic, session, close).await;
                Flow::Continue
            }
            Incoming::Unsubscribe {
                request,
                subscription,
            } => {
                self.unsubscribe(request, subscription, session, close)
                    .await;
                Flow::Continue
            }
            Incoming::Publish {
                request,
                options,
                topic,
                args,
                kwargs,
            } => {
                self.publish(request, &options, &topic, args, kwargs, session)
                    .await;
                Flow::Continue
            }
            Incoming::Other(other) => {
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

    async fn hello(&self, hello: Hello, session: &Session) -> Flow {
        let Hello {
            realm,
            details,
            authmethods,
            authid,
        } = hello;
        if self.state().challenged.is_some() {
            return self
                .abort(
                    "wamp.error.protocol_violation",
                    "HELLO after CHALLENGE (send AUTHENTICATE)",
                )
                .await;
        }
        let Some(realm) = realm else {
            return self
                .abort("wamp.error.protocol_violation", "HELLO needs a realm")
                .await;
        };
        if !details {
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
        if let Some(ticket) = &self.ticket {
            // No credentials at the upgrade: the client authenticates now, with `ticket`.
            if !authmethods.iter().any(|m| m == "ticket") {
                let uri = match authmethods.is_empty() {
                    true => "wamp.error.authentication_required",
                    false => "wamp.error.no_matching_auth_method",
                };
                telemetry::handshake_refused("unauthorized");
                let m = format!(
                    "{}: authenticate with authmethods [\"ticket\"] (the bearer token as the ticket), or with a bearer token at the WebSocket handshake",
                    ticket.refused
                );
                return self.abort(uri, m).await;
            }
            self.state().challenged = Some((realm, authid));
            let extra = Value::Object(Default::default());
            self.send(&[
                Part::Int(CHALLENGE),
                Part::Str("ticket"),
                Part::Value(extra),
            ])
            .await;
            return Flow::Continue;
        }
        let identity = session.context().identity_info();
        self.welcome(&realm, identity, None).await
    }

    /// `AUTHENTICATE` after the `ticket` `CHALLENGE`: the server's hook decides, with the
    /// ticket as the bearer token; `WELCOME`, or `ABORT wamp.error.authentication_denied`.
    async fn authenticate(&self, signature: Option<String>, session: &Session) -> Flow {
        let challenged = self.state().challenged.take();
        let (Some((realm, authid)), Some(ticket)) = (challenged, &self.ticket) else {
            return self
                .abort(
                    "wamp.error.protocol_violation",
                    "AUTHENTICATE without a CHALLENGE",
                )
                .await;
        };
        let Some(signature) = signature else {
            return self
                .abort(
                    "wamp.error.protocol_violation",
                    "AUTHENTICATE needs the ticket as a string",
                )
                .await;
        };
        let handshake = ticket.handshake(signature, authid.clone());
        let identity = match (ticket.authenticate)(handshake).await {
            Ok(identity) => identity,
            Err(refusal) => {
                telemetry::handshake_refused(match refusal.status.as_u16() {
                    401 => "unauthorized",
                    403 => "forbidden",
                    _ => "refused",
                });
                return self
                    .abort("wamp.error.authentication_denied", refusal.reason)
                    .await;
            }
        };
        let left = identity.time_left();
        if left == Some(Duration::ZERO) {
            telemetry::handshake_refused("unauthorized");
            return self
                .abort(
                    "wamp.error.authentication_denied",
                    "the credentials have expired",
                )
                .await;
        }
        session.context().authenticate(identity);
        {
            let mut state = self.state();
            state.expiry = Some(left);
            state.waiting = None;
        }
        let identity = session.context().identity_info();
        self.welcome(&realm, identity, Some("ticket")).await
    }

    /// `WELCOME`: the session is established. With an identity, its `authid` (if it has
    /// one; never the one the client claimed) and `authrole` (`"user"` unless the
    /// identity has one).
    async fn welcome(
        &self,
        realm: &str,
        identity: Option<&Identity>,
        authmethod: Option<&str>,
    ) -> Flow {
        self.state().welcomed = true;
        let mut details = json!({
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
        });
        if let (Some(identity), Value::Object(details)) = (identity, &mut details) {
            // Only what the server vouches for: never the `authid` the client claimed.
            if let Some(authid) = identity.authid() {
                details.insert("authid".into(), Value::String(authid.into()));
            }
            let role = identity.authrole().unwrap_or("user");
            details.insert("authrole".into(), Value::String(role.into()));
            if let Some(method) = authmethod {
                details.insert("authmethod".into(), Value::String(method.into()));
                details.insert("authprovider".into(), Value::String("wirecall".into()));
            }
        }
        self.send(&[
            Part::Int(WELCOME),
            Part::Int(random_id()),
            Part::Value(details),
        ])
        .await;
        Flow::Continue
    }

    async fn call(
        self: &Arc<Self>,
        call: Calling<'_, '_>,
        frame: &Text,
        session: &Session,
        close: &CancellationToken,
    ) {
        let Calling {
            request,
            options,
            procedure,
            args,
            kwargs,
        } = call;
        let args = args.filter(Payload::is_array);
        let kwargs = kwargs.filter(Payload::is_object);
        let params: Cow<'_, RawValue> = match (&args, &kwargs) {
            (Some(a), Some(k)) if !a.is_empty() && !k.is_empty() => {
                let m = "give the arguments by position (args) or by name (kwargs), not both";
                self.fail(CALL, request, "wamp.error.invalid_argument", m)
                    .await;
                return;
            }
            (_, Some(k)) if !k.is_empty() => k.raw(),
            (Some(a), _) => a.raw(),
            // (Parsing a constant: it cannot fail.)
            _ => Cow::Borrowed(serde_json::from_str("[]").unwrap_or(RawValue::NULL)),
        };
        let stream = match self.router.get(procedure) {
            Some(Route::Subscribe(_)) if options.receive_progress => true,
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
        let id = {
            let mut state = self.state();
            if state.requests.contains_key(&request) {
                None
            } else {
                let id = state.next_id();
                let call = Call {
                    request,
                    method: procedure.into(),
                    stream: stream.then_some(None),
                    timer: None,
                };
                state.calls.insert(id, call);
                state.requests.insert(request, id);
                Some(id)
            }
        };
        let Some(id) = id else {
            let m = format!("request id {request} is already in use");
            self.fail(CALL, request, "wamp.error.invalid_argument", m)
                .await;
            return;
        };
        let timeout = options
            .timeout
            .filter(|ms| *ms > 0)
            .map(|ms| ms.min(MAX_CALL_TIMEOUT_MS));
        if let Some(ms) = timeout {
            self.time_out(id, ms, session, close);
        }
        // The call's deadline, as a JSON-RPC caller's `"$timeout"` (the handler's
        // `ctx.deadline()`, inherited by the calls it makes).
        feed(
            session,
            procedure,
            Some(&params),
            Some(id),
            timeout,
            frame,
            close,
        )
        .await;
    }

    /// End the call `id` after `ms` unless it ends first: the timer is kept with the call,
    /// which aborts it when it goes.
    fn time_out(self: &Arc<Self>, id: u64, ms: u64, session: &Session, close: &CancellationToken) {
        // (A weak reference: the timer does not keep the adapter alive.)
        let wamp = Arc::downgrade(self);
        let session = session.clone();
        let close = close.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let Some(wamp) = wamp.upgrade() else { return };
            let ended = wamp.state().end_call(id);
            if let Some(mut call) = ended {
                // This task is the timer: dropping the call must not abort it.
                call.timer = None;
                wamp.stop(id, call.stream, &call.method, &session, &close)
                    .await;
                let m = format!("no result within the call's timeout of {ms} ms");
                wamp.error(
                    CALL,
                    call.request,
                    "wamp.error.canceled",
                    json!([m]),
                    json!({}),
                )
                .await;
            }
        });
        let mut state = self.state();
        match state.calls.get_mut(&id) {
            Some(call) => call.timer = Some(timer.abort_handle()),
            // Answered already (or gone with the session).
            None => timer.abort(),
        }
    }

    /// Stop what a call started in the session: cancel the handler (its answer, if it
    /// still comes, finds no call here), or end the stream.
    async fn stop(
        &self,
        id: u64,
        stream: Option<Option<u64>>,
        method: &str,
        session: &Session,
        close: &CancellationToken,
    ) {
        let none = Text::default();
        match stream {
            Some(Some(sub)) => {
                let method = format!("{method}.unsubscribe");
                let params = raw(format!("[{sub}]"));
                feed(
                    session,
                    &method,
                    params.as_deref(),
                    None,
                    None,
                    &none,
                    close,
                )
                .await;
            }
            _ => {
                let params = raw(format!(r#"{{"id":{id}}}"#));
                feed(
                    session,
                    CANCEL_METHOD,
                    params.as_deref(),
                    None,
                    None,
                    &none,
                    close,
                )
                .await;
            }
        }
    }

    async fn cancel(
        &self,
        request: u64,
        options: &Options,
        session: &Session,
        close: &CancellationToken,
    ) {
        let mode = options.mode.as_deref().unwrap_or("kill");
        let canceled = |m: &str| (json!([format!("the call was canceled ({m})")]), json!({}));
        let id = self.state().requests.get(&request).copied();
        match mode {
            // Stop the handler; its -32800 answer becomes the ERROR.
            "kill" => {
                let Some(id) = id else { return };
                let target = self
                    .state()
                    .calls
                    .get(&id)
                    .map(|c| (c.stream, c.method.clone()));
                match target {
                    // A stream ends without an answer: answer here.
                    Some((Some(_), _)) => {
                        let ended = self.state().end_call(id);
                        if let Some(call) = ended {
                            self.stop(id, call.stream, &call.method, session, close)
                                .await;
                            let (args, kwargs) = canceled(mode);
                            self.error(CALL, request, "wamp.error.canceled", args, kwargs)
                                .await;
                        }
                    }
                    Some((None, method)) => self.stop(id, None, &method, session, close).await,
                    None => {}
                }
            }
            "killnowait" | "skip" => {
                let Some(id) = id else { return };
                let ended = self.state().end_call(id);
                if let Some(call) = ended {
                    if mode == "killnowait" || call.stream.is_some() {
                        self.stop(id, call.stream, &call.method, session, close)
                            .await;
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
}

/// A `HELLO`'s members.
struct Hello {
    realm: Option<String>,
    details: bool,
    authmethods: Vec<String>,
    authid: Option<String>,
}

/// A `CALL`'s members.
struct Calling<'p, 'a> {
    request: u64,
    options: Options,
    procedure: &'p str,
    args: Option<Payload<'a>>,
    kwargs: Option<Payload<'a>>,
}

/// The name of a message type, for an error.
fn name(kind: u64) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        HELLO => "HELLO",
        AUTHENTICATE => "AUTHENTICATE",
        CALL => "CALL",
        CANCEL => "CANCEL",
        super::message::SUBSCRIBE => "SUBSCRIBE",
        super::message::UNSUBSCRIBE => "UNSUBSCRIBE",
        super::message::PUBLISH => "PUBLISH",
        other => return Cow::Owned(format!("type {other}")),
    })
}

/// A decoded message's type.
fn kind(message: &Incoming<'_>) -> u64 {
    match message {
        Incoming::Hello { .. } => HELLO,
        Incoming::Authenticate { .. } => AUTHENTICATE,
        Incoming::Abort => super::message::ABORT,
        Incoming::Goodbye => GOODBYE,
        Incoming::Call { .. } => CALL,
        Incoming::Cancel { .. } => CANCEL,
        Incoming::Subscribe { .. } => super::message::SUBSCRIBE,
        Incoming::Unsubscribe { .. } => super::message::UNSUBSCRIBE,
        Incoming::Publish { .. } => super::message::PUBLISH,
        Incoming::Other(kind) => *kind,
    }
}
