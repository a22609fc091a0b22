//! The JSON-RPC 2.0 codec: parsing incoming messages (borrowing from the frame, params
//! and results kept as raw JSON) and writing outgoing ones straight into a frame buffer.
//!
//! Outgoing members are written in the order of the specification's examples
//! (`jsonrpc`, `method`, `params`/`result`/`error`, `id`), without whitespace.

use std::fmt::Write as _;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::RpcError;

/// One JSON-RPC message, borrowed from the text of its frame.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// A request (`id` present, possibly `null`) or a notification (`id` absent).
    Request {
        method: std::borrow::Cow<'a, str>,
        params: Option<&'a RawValue>,
        id: Option<&'a RawValue>,
        /// The top-level `"$timeout"`: how many milliseconds the caller waits for the
        /// answer.
        timeout: Option<u64>,
        /// The top-level `"$traceparent"`, if a string (feature `otel`; not checked here).
        #[cfg(feature = "otel")]
        traceparent: Option<&'a str>,
    },
    /// A response to one of our requests.
    Response {
        id: &'a RawValue,
        outcome: Result<&'a RawValue, RpcError>,
    },
    /// Not a valid request or response; answer `-32600` with this id (`null` if unknown)
    /// and, where it helps the peer, what is wrong (the error's `data.reason`).
    Invalid {
        id: Option<&'a RawValue>,
        why: Option<&'static str>,
    },
}

impl<'a> Incoming<'a> {
    /// An invalid message, answered with `id` (`null` if none) and no reason.
    fn invalid(id: Option<&'a RawValue>) -> Self {
        Incoming::Invalid { id, why: None }
    }
}

/// The members of a message, before classification. Every member is kept raw so that
/// `"id": null` is distinguishable from no id and so types are checked by us, not serde.
#[derive(Default)]
struct Members<'a> {
    jsonrpc: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
    timeout: Option<&'a RawValue>,
    /// `"$traceparent"`: `Some(None)` if given more than once (then ignored).
    #[cfg(feature = "otel")]
    traceparent: Option<Option<&'a RawValue>>,
    duplicate: bool,
}

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut m = Members::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = match key {
                        Key::Jsonrpc => &mut m.jsonrpc,
                        Key::Method => &mut m.method,
                        Key::Params => &mut m.params,
                        Key::Id => &mut m.id,
                        Key::Result => &mut m.result,
                        Key::Error => &mut m.error,
                        Key::Timeout => &mut m.timeout,
                        #[cfg(feature = "otel")]
                        Key::Traceparent => {
                            // Twice is malformed: ignored, never an error.
                            let value: &'de RawValue = map.next_value()?;
                            m.traceparent = Some(m.traceparent.is_none().then_some(value));
                            continue;
                        }
                        Key::Other => {
                            map.next_value::<de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    let value: &'de RawValue = map.next_value()?;
                    if slot.is_some() {
                        m.duplicate = true;
                    }
                    *slot = Some(value);
                }
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

/// A member name, recognized without allocating.
enum Key {
    Jsonrpc,
    Method,
    Params,
    Id,
    Result,
    Error,
    Timeout,
    #[cfg(feature = "otel")]
    Traceparent,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "jsonrpc" => Key::Jsonrpc,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "id" => Key::Id,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    TIMEOUT_MEMBER => Key::Timeout,
                    #[cfg(feature = "otel")]
                    super::trace::TRACEPARENT_MEMBER => Key::Traceparent,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// The top-level member of a request that carries its deadline: milliseconds, relative.
pub(crate) const TIMEOUT_MEMBER: &str = "$timeout";

/// Why a request with a `"$timeout"` that is no whole number of milliseconds is invalid.
pub(crate) const TIMEOUT_INVALID: &str =
    "\"$timeout\" must be a whole number of milliseconds (0 to 2^64-1)";

/// The first non-whitespace byte of a raw JSON value.
fn first_byte(raw: &RawValue) -> u8 {
    raw.get().bytes().next().unwrap_or(b' ')
}

/// A JSON-RPC id must be a string, a number or `null`.
fn is_valid_id(raw: &RawValue) -> bool {
    matches!(first_byte(raw), b'"' | b'-' | b'0'..=b'9' | b'n')
}

/// What went wrong reading a frame as JSON.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// Not JSON: answer `-32700`.
    Parse,
    /// JSON, but not an object or array: answer `-32600`.
    NotAnObject,
}

/// A frame: one message, or a batch of raw elements.
pub(crate) enum Frame<'a> {
    Single(&'a RawValue),
    Batch(Vec<&'a RawValue>),
}

/// Split a frame's text into one message or a batch, checking that it is JSON.
pub(crate) fn parse_frame(text: &str) -> Result<Frame<'_>, FrameError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<&RawValue>>(text)
            .map(Frame::Batch)
            .map_err(|_| FrameError::Parse)
    } else {
        let raw: &RawValue = serde_json::from_str(text).map_err(|_| FrameError::Parse)?;
        if first_byte(raw) == b'{' {
            Ok(Frame::Single(raw))
        } else {
            Err(FrameError::NotAnObject)
        }
    }
}

/// Parse and classify one message that starts with `{`, in a single pass over the text.
pub(crate) fn classify_text(text: &str) -> Result<Incoming<'_>, FrameError> {
    match serde_json::from_str::<Members<'_>>(text) {
        Ok(m) => Ok(classify_members(m)),
        Err(e) if e.is_syntax() || e.is_eof() => Err(FrameError::Parse),
        Err(_) => Ok(Incoming::invalid(None)),
    }
}

/// Classify one (already syntactically valid) message.
pub(crate) fn classify(raw: &RawValue) -> Incoming<'_> {
    if first_byte(raw) != b'{' {
        return Incoming::invalid(None);
    }
    let Ok(m) = serde_json::from_str::<Members<'_>>(raw.get()) else {
        return Incoming::invalid(None);
    };
    classify_members(m)
}

fn classify_members(m: Members<'_>) -> Incoming<'_> {
    let id = m.id.filter(|id| is_valid_id(id));
    let version_ok = m.jsonrpc.is_some_and(|v| v.get() == "\"2.0\"");
    if m.duplicate || !version_ok || (m.id.is_some() && id.is_none()) {
        return Incoming::invalid(id);
    }
    if let Some(method) = m.method {
        // Borrow the name unless it contains escapes.
        let method = match serde_json::from_str::<&str>(method.get()) {
            Ok(m) => std::borrow::Cow::Borrowed(m),
            Err(_) => match serde_json::from_str::<String>(method.get()) {
                Ok(m) => std::borrow::Cow::Owned(m),
                Err(_) => return Incoming::invalid(id),
            },
        };
        let params_ok = m
            .params
            .is_none_or(|p| matches!(first_byte(p), b'[' | b'{'));
        if !params_ok || m.result.is_some() || m.error.is_some() {
            return Incoming::invalid(id);
        }
        // A deadline is a non-negative integer of milliseconds.
        let timeout = match m.timeout {
            None => None,
            Some(ms) => match ms.get().parse::<u64>() {
                Ok(ms) => Some(ms),
                Err(_) => {
                    return Incoming::Invalid {
                        id,
                        why: Some(TIMEOUT_INVALID),
                    }
                }
            },
        };
        return Incoming::Request {
            method,
            params: m.params,
            id,
            timeout,
            // (A string with escapes is no W3C traceparent: ignored as well.)
            #[cfg(feature = "otel")]
            traceparent: m
                .traceparent
                .flatten()
                .and_then(|raw| serde_json::from_str::<&str>(raw.get()).ok()),
        };
    }
    match (id, m.result, m.error) {
        (Some(id), Some(result), None) => Incoming::Response {
            id,
            outcome: Ok(result),
        },
        (Some(id), None, Some(error)) => match serde_json::from_str::<RpcError>(error.get()) {
            Ok(e) => Incoming::Response {
                id,
                outcome: Err(e),
            },
            Err(_) => Incoming::invalid(None),
        },
        _ => Incoming::invalid(None),
    }
}

/// Turn a result's JSON into its response frame, in the result's own buffer.
pub(crate) fn wrap_result(mut result: String, id: &str) -> String {
    const PREFIX: &str = r#"{"jsonrpc":"2.0","result":"#;
    result.reserve(PREFIX.len() + 7 + id.len());
    result.insert_str(0, PREFIX);
    result.push_str(r#","id":"#);
    result.push_str(id);
    result.push('}');
    result
}

/// Write an error response: `{"jsonrpc":"2.0","error":{…},"id":…}`.
pub(crate) fn write_error(out: &mut String, error: &RpcError, id: &str) {
    out.push_str(r#"{"jsonrpc":"2.0","error":"#);
    write_error_object(out, error);
    out.push_str(r#","id":"#);
    out.push_str(id);
    out.push('}');
}

/// Append an error object: `{"code":…,"message":…,"data":…}`.
fn write_error_object(out: &mut String, error: &RpcError) {
    let _ = write!(out, r#"{{"code":{},"message":"#, error.code);
    write_json_string(out, &error.message);
    if let Some(data) = &error.data {
        out.push_str(r#","data":"#);
        out.push_str(data.get());
    }
    out.push('}');
}

/// Add the caller's W3C trace context to a request or notification written above:
/// `,"$traceparent":"00-…"` before its closing brace.
#[cfg(feature = "otel")]
pub(crate) fn add_traceparent(out: &mut String, traceparent: &str) {
    if out.ends_with('}') {
        out.pop();
        let _ = write!(out, r#","{}":"#, super::trace::TRACEPARENT_MEMBER);
        write_json_string(out, traceparent);
        out.push('}');
    }
}

/// Write a request or notification. `params` must already be JSON (an object or array).
pub(crate) fn write_request(out: &mut String, method: &str, params: Option<&str>, id: Option<u64>) {
    write_request_members(out, method, params, id);
    out.push('}');
}

/// Write a request that tells the peer how long the caller waits for its answer
/// (`"$timeout"`, in milliseconds).
pub(crate) fn write_timed_request(
    out: &mut String,
    method: &str,
    params: Option<&str>,
    id: u64,
    timeout_ms: u64,
) {
    write_request_members(out, method, params, Some(id));
    let _ = write!(out, r#","{TIMEOUT_MEMBER}":{timeout_ms}}}"#);
}

fn write_request_members(out: &mut String, method: &str, params: Option<&str>, id: Option<u64>) {
    out.push_str(r#"{"jsonrpc":"2.0","method":"#);
    write_json_string(out, method);
    if let Some(p) = params {
        out.push_str(r#","params":"#);
        out.push_str(p);
    }
    if let Some(id) = id {
        let _ = write!(out, r#","id":{id}"#);
    }
}

/// A stream notification: an item (`"result"`), or the end (`"error": null`), or the
/// failure (`"error": {…}`).
pub(crate) fn subscription_frame(
    method: &str,
    sub_id: u64,
    item: Option<&str>,
    error: Option<&RpcError>,
) -> String {
    let mut out = String::with_capacity(64 + method.len() + item.map_or(0, str::len));
    out.push_str(r#"{"jsonrpc":"2.0","method":"#);
    write_json_string(&mut out, method);
    let _ = write!(out, r#","params":{{"subscription":{sub_id},"#);
    match (item, error) {
        (Some(item), _) => {
            out.push_str(r#""result":"#);
            out.push_str(item);
        }
        (None, Some(e)) => {
            out.push_str(r#""error":"#);
            write_error_object(&mut out, e);
        }
        (None, None) => out.push_str(r#""error":null"#),
    }
    out.push_str("}}");
    out
}

/// The start of every notification of one subscription, up to its id:
/// `{"jsonrpc":"2.0","method":M,"params":{"subscription":ID`.
pub(crate) fn subscription_prefix(method: &str, sub_id: u64) -> String {
    let mut out = String::with_capacity(64 + method.len());
    out.push_str(r#"{"jsonrpc":"2.0","method":"#);
    write_json_string(&mut out, method);
    let _ = write!(out, r#","params":{{"subscription":{sub_id}"#);
    out
}

/// The rest of a topic item's notification, the same for every subscriber of the key:
/// `,"result":ITEM,"epoch":"E","offset":N}}`.
pub(crate) fn topic_item_suffix(item: &str, epoch: &str, offset: u64) -> String {
    let mut out = String::with_capacity(48 + item.len() + epoch.len());
    out.push_str(r#","result":"#);
    out.push_str(item);
    out.push_str(r#","epoch":"#);
    write_json_string(&mut out, epoch);
    let _ = write!(out, r#","offset":{offset}}}}}"#);
    out
}

/// A topic's position note (`"position"` at the start, `"gap"` after lost publications):
/// `{"subscription":ID,"gap":{"epoch":"E","offset":N}}`.
pub(crate) fn topic_note_frame(
    method: &str,
    sub_id: u64,
    note: &str,
    epoch: &str,
    offset: u64,
) -> String {
    let mut out = String::with_capacity(96 + method.len() + epoch.len());
    out.push_str(r#"{"jsonrpc":"2.0","method":"#);
    write_json_string(&mut out, method);
    let _ = write!(out, r#","params":{{"subscription":{sub_id},"#);
    write_json_string(&mut out, note);
    out.push_str(r#":{"epoch":"#);
    write_json_string(&mut out, epoch);
    let _ = write!(out, r#","offset":{offset}}}}}}}"#);
    out
}

/// Append `s` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut String, s: &str) {
    // Serializing a `str` into a `String`-backed writer cannot fail.
    let mut buf = std::mem::take(out).into_bytes();
    let _ = serde_json::to_writer(&mut buf, s);
    *out = String::from_utf8(buf).unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> String {
        match parse_frame(text) {
            Err(e) => format!("{e:?}"),
            Ok(Frame::Batch(items)) => format!("batch of {}", items.len()),
            Ok(Frame::Single(raw)) => match classify(raw) {
                Incoming::Request {
                    method, params, id, ..
                } => format!(
                    "request {method} params={} id={}",
                    params.map_or("-", |p| p.get()),
                    id.map_or("-", |i| i.get())
                ),
                Incoming::Response { id, outcome } => format!(
                    "response id={} {}",
                    id.get(),
                    match outcome {
                        Ok(r) => format!("ok {}", r.get()),
                        Err(e) => format!("err {}", e.code),
                    }
                ),
                Incoming::Invalid { id, .. } => {
                    format!("invalid id={}", id.map_or("-", |i| i.get()))
                }
            },
        }
    }

    #[test]
    fn classifies_messages() {
        let cases = [
            (
                r#"{"jsonrpc":"2.0","method":"a","params":[1],"id":1}"#,
                "request a params=[1] id=1",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"a"}"#,
                "request a params=- id=-",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"a","id":null}"#,
                "request a params=- id=null",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"a","id":"x","extra":{}}"#,
                r#"request a params=- id="x""#,
            ),
            (
                r#"{"jsonrpc":"2.0","result":{"x":1},"id":7}"#,
                r#"response id=7 ok {"x":1}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","error":{"code":-1,"message":"m"},"id":7}"#,
                "response id=7 err -1",
            ),
            (r#"{"jsonrpc":"1.0","method":"a","id":1}"#, "invalid id=1"),
            (r#"{"method":"a","id":1}"#, "invalid id=1"),
            (
                r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#,
                "invalid id=-",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"a","params":"bar","id":2}"#,
                "invalid id=2",
            ),
            (r#"{"jsonrpc":"2.0","method":"a","id":{}}"#, "invalid id=-"),
            (
                r#"{"jsonrpc":"2.0","method":"a","method":"b","id":3}"#,
                "invalid id=3",
            ),
            (
                r#"{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":""},"id":1}"#,
                "invalid id=-",
            ),
            (
                r#"{"jsonrpc":"2.0","error":{"code":"x"},"id":1}"#,
                "invalid id=-",
            ),
            (
                r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
                "Parse",
            ),
            ("1", "NotAnObject"),
            ("[1,2]", "batch of 2"),
            ("[1,", "Parse"),
        ];
        for (text, expect) in cases {
            assert_eq!(kind(text), expect, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,120}") {
            let _ = kind(&text);
            if text.trim_start().starts_with('{') {
                let _ = classify_text(&text);
            }
        }

        #[test]
        fn parsing_near_json_never_panics(text in r#"[\[\]{}",:0-9a-z. \\-]{0,80}"#) {
            let _ = kind(&text);
            let _ = classify_text(&text);
        }
    }

    #[cfg(feature = "otel")]
    #[test]
    fn reads_a_traceparent_member_and_ignores_a_malformed_one() {
        let traceparent = |text: &str| match classify_text(text) {
            Ok(Incoming::Request { traceparent, .. }) => traceparent.map(str::to_string),
            _ => panic!("not a request: {text}"),
        };
        let request = |member: &str| format!(r#"{{"jsonrpc":"2.0","method":"a","id":1{member}}}"#);
        assert_eq!(traceparent(&request("")), None);
        assert_eq!(
            traceparent(&request(r#","$traceparent":"00-ab""#)).as_deref(),
            Some("00-ab")
        );
        // Not a string, escaped, or twice: ignored, and the request stays valid.
        for member in [
            r#","$traceparent":5"#,
            r#","$traceparent":{"a":1}"#,
            r#","$traceparent":"00\u002dab""#,
            r#","$traceparent":"00-ab","$traceparent":"00-cd""#,
        ] {
            assert_eq!(traceparent(&request(member)), None, "{member}");
        }
        let mut s = String::new();
        write_timed_request(&mut s, "Calc.add", Some("[1]"), 9, 50);
        add_traceparent(&mut s, "00-ab");
        assert_eq!(
            s,
            r#"{"jsonrpc":"2.0","method":"Calc.add","params":[1],"id":9,"$timeout":50,"$traceparent":"00-ab"}"#
        );
    }

    #[test]
    fn writes_spec_shaped_messages() {
        assert_eq!(
            wrap_result("19".into(), "1"),
            r#"{"jsonrpc":"2.0","result":19,"id":1}"#
        );
        let mut s = String::new();
        write_error(&mut s, &RpcError::method_not_found(), r#""1""#);
        assert_eq!(
            s,
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"1"}"#
        );
        s.clear();
        write_error(&mut s, &RpcError::new(5, "a \"q\"").with_data([1]), "null");
        assert_eq!(
            s,
            r#"{"jsonrpc":"2.0","error":{"code":5,"message":"a \"q\"","data":[1]},"id":null}"#
        );
        s.clear();
        write_request(&mut s, "Calc.add", Some(r#"{"a":1}"#), Some(9));
        assert_eq!(
            s,
            r#"{"jsonrpc":"2.0","method":"Calc.add","params":{"a":1},"id":9}"#
        );
    }
}
