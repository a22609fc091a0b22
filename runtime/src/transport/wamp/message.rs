// Over ~500 lines with its unit tests (the code is ~420): decoding one WAMP message for three
// serializers in one pass — the message visitor, options and payloads — kept together.
//! WAMP messages on the wire: each incoming message decoded once, with the connection's
//! serializer, into an [`Incoming`] (each outgoing one is written once from its parts:
//! [`super::write`]).
//!
//! JSON keeps a call's arguments as the raw text they arrived in (they become the
//! session's params without a copy); msgpack and CBOR decode them into a
//! [`serde_json::Value`] (the handlers read JSON: the one transcoding a binary
//! serializer costs). Results go the other way: JSON text spliced into a JSON message,
//! or read into a value and written with msgpack or CBOR.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub(super) const HELLO: u64 = 1;
pub(super) const WELCOME: u64 = 2;
pub(super) const ABORT: u64 = 3;
pub(super) const CHALLENGE: u64 = 4;
pub(super) const AUTHENTICATE: u64 = 5;
pub(super) const GOODBYE: u64 = 6;
pub(super) const ERROR: u64 = 8;
pub(super) const PUBLISH: u64 = 16;
pub(super) const PUBLISHED: u64 = 17;
pub(super) const SUBSCRIBE: u64 = 32;
pub(super) const SUBSCRIBED: u64 = 33;
pub(super) const UNSUBSCRIBE: u64 = 34;
pub(super) const UNSUBSCRIBED: u64 = 35;
pub(super) const EVENT: u64 = 36;
pub(super) const CALL: u64 = 48;
pub(super) const CANCEL: u64 = 49;
pub(super) const RESULT: u64 = 50;

/// A WAMP serializer: the subprotocol a client chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Serializer {
    /// `wamp.2.json`: text frames.
    Json,
    /// `wamp.2.msgpack`: binary frames.
    Msgpack,
    /// `wamp.2.cbor`: binary frames.
    Cbor,
}

impl Serializer {
    /// Every serializer this server speaks.
    pub(crate) const ALL: [Serializer; 3] =
        [Serializer::Json, Serializer::Msgpack, Serializer::Cbor];

    /// Its WebSocket subprotocol.
    pub(crate) const fn subprotocol(self) -> &'static str {
        match self {
            Serializer::Json => "wamp.2.json",
            Serializer::Msgpack => "wamp.2.msgpack",
            Serializer::Cbor => "wamp.2.cbor",
        }
    }

    /// The serializer of a subprotocol, if this server speaks it.
    pub(crate) fn from_subprotocol(protocol: &str) -> Option<Serializer> {
        Serializer::ALL
            .into_iter()
            .find(|s| s.subprotocol() == protocol)
    }
}

/// A call's or publication's `args` or `kwargs`, as it arrived.
#[derive(Debug)]
pub(crate) enum Payload<'a> {
    /// JSON text, borrowed from the frame (`wamp.2.json`).
    Raw(&'a RawValue),
    /// Decoded from msgpack or CBOR.
    Value(Value),
}

impl Payload<'_> {
    fn first_byte(raw: &RawValue) -> u8 {
        raw.get().bytes().next().unwrap_or(b' ')
    }

    pub(crate) fn is_array(&self) -> bool {
        match self {
            Payload::Raw(raw) => Self::first_byte(raw) == b'[',
            Payload::Value(v) => v.is_array(),
        }
    }

    pub(crate) fn is_object(&self) -> bool {
        match self {
            Payload::Raw(raw) => Self::first_byte(raw) == b'{',
            Payload::Value(v) => v.is_object(),
        }
    }

    /// An empty list or dictionary.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Payload::Raw(raw) => {
                let inner = raw.get().trim();
                inner.len() >= 2 && inner[1..inner.len() - 1].trim().is_empty()
            }
            Payload::Value(Value::Array(a)) => a.is_empty(),
            Payload::Value(Value::Object(o)) => o.is_empty(),
            Payload::Value(_) => false,
        }
    }

    /// As JSON, the session's params (borrowed when it arrived as JSON).
    pub(crate) fn raw(&self) -> Cow<'_, RawValue> {
        match self {
            Payload::Raw(raw) => Cow::Borrowed(raw),
            Payload::Value(v) => match serde_json::value::to_raw_value(v) {
                Ok(raw) => Cow::Owned(raw),
                Err(_) => Cow::Borrowed(RawValue::NULL),
            },
        }
    }

    /// As a value.
    pub(crate) fn into_value(self) -> Value {
        match self {
            Payload::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            Payload::Value(v) => v,
        }
    }
}

/// The options of `CALL`, `CANCEL` and `PUBLISH` that this router reads (others are
/// ignored, as WAMP asks).
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// `receive_progress: true`.
    pub(crate) receive_progress: bool,
    /// `timeout`, in ms, if a positive integer.
    pub(crate) timeout: Option<u64>,
    /// `mode`, if a string.
    pub(crate) mode: Option<String>,
    /// `acknowledge: true`.
    pub(crate) acknowledge: bool,
    /// `exclude_me` unless `false`.
    pub(crate) exclude_me: bool,
}

/// One message from the client.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// `HELLO`: its realm (if a string) and whether its details are a dictionary; of
    /// those, the authentication methods the client offers (the strings of
    /// `authmethods`) and its `authid` (if a string).
    Hello {
        realm: Option<String>,
        details: bool,
        authmethods: Vec<String>,
        authid: Option<String>,
    },
    /// `AUTHENTICATE`: the signature (for `ticket`, the ticket), if a string.
    Authenticate {
        signature: Option<String>,
    },
    Abort,
    Goodbye,
    Call {
        request: u64,
        options: Options,
        procedure: Cow<'a, str>,
        args: Option<Payload<'a>>,
        kwargs: Option<Payload<'a>>,
    },
    Cancel {
        request: u64,
        options: Options,
    },
    Subscribe {
        request: u64,
        topic: Cow<'a, str>,
    },
    Unsubscribe {
        request: u64,
        subscription: u64,
    },
    Publish {
        request: u64,
        options: Options,
        topic: Cow<'a, str>,
        args: Option<Payload<'a>>,
        kwargs: Option<Payload<'a>>,
    },
    /// A type this router does not take.
    Other(u64),
}

/// Why a message could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not a list (or not of the serializer at all).
    NotAList,
    /// A list that does not start with a message type.
    NoType,
    /// A message of this type without the members it needs.
    Malformed(u64),
}

/// Decode one message, in one pass: `json` for `wamp.2.json`, else the frame's bytes.
pub(crate) fn decode<'a>(
    serializer: Serializer,
    bytes: &'a [u8],
    json: Option<&'a str>,
) -> Result<Incoming<'a>, DecodeError> {
    let kind = Cell::new(None);
    let list = Cell::new(false);
    let seed = MessageSeed {
        raw: serializer == Serializer::Json,
        kind: &kind,
        list: &list,
    };
    let decoded = match (serializer, json) {
        (Serializer::Json, Some(text)) => {
            let mut de = serde_json::Deserializer::from_str(text);
            seed.deserialize(&mut de)
                .and_then(|m| de.end().map(|()| m))
                .map_err(|_| ())
        }
        (Serializer::Json, None) => Err(()),
        (Serializer::Msgpack, _) => {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            seed.deserialize(&mut de).map_err(|_| ())
        }
        // (ciborium reads only into owned types: the message into a value, then the value
        // into its members, without reading the bytes again.)
        (Serializer::Cbor, _) => match ciborium::de::from_reader::<Value, _>(bytes) {
            Ok(value) => seed.deserialize(value).map_err(|_| ()),
            Err(_) => Err(()),
        },
    };
    decoded.map_err(|()| match (list.get(), kind.get()) {
        (false, _) => DecodeError::NotAList,
        (true, None) => DecodeError::NoType,
        (true, Some(kind)) => DecodeError::Malformed(kind),
    })
}

/// Reads a message; remembers how far it got, for the error.
struct MessageSeed<'c> {
    /// Keep payloads as raw JSON text (serde_json only).
    raw: bool,
    kind: &'c Cell<Option<u64>>,
    list: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = Incoming<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

fn required<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("a member is missing"))
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = Incoming<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a WAMP message (a list)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.list.set(true);
        let kind: u64 = required(&mut seq)?;
        self.kind.set(Some(kind));
        let payload = |seq: &mut A| -> Result<Option<Payload<'de>>, A::Error> {
            if self.raw {
                Ok(seq.next_element::<&'de RawValue>()?.map(Payload::Raw))
            } else {
                Ok(seq.next_element::<Value>()?.map(Payload::Value))
            }
        };
        let message = match kind {
            HELLO => {
                let realm = seq.next_element::<Value>()?;
                let details = seq.next_element::<Value>()?;
                let authmethods = details
                    .as_ref()
                    .and_then(|d| d.get("authmethods")?.as_array())
                    .map(|methods| {
                        let names = methods.iter().filter_map(Value::as_str);
                        names.map(str::to_string).collect()
                    })
                    .unwrap_or_default();
                let authid = details
                    .as_ref()
                    .and_then(|d| d.get("authid")?.as_str())
                    .map(str::to_string);
                Incoming::Hello {
                    realm: match realm {
                        Some(Value::String(realm)) => Some(realm),
                        _ => None,
                    },
                    details: details.is_some_and(|d| d.is_object()),
                    authmethods,
                    authid,
                }
            }
            AUTHENTICATE => {
                let signature = required::<Value, _>(&mut seq)?;
                Incoming::Authenticate {
                    signature: match signature {
                        Value::String(signature) => Some(signature),
                        _ => None,
                    },
                }
            }
            ABORT => Incoming::Abort,
            GOODBYE => Incoming::Goodbye,
            CALL => {
                let request = required(&mut seq)?;
                let options = required::<OptionsDict, _>(&mut seq)?.0;
                let procedure = required::<Name<'de>, _>(&mut seq)?.0;
                let args = payload(&mut seq)?;
                let kwargs = if args.is_some() {
                    payload(&mut seq)?
                } else {
                    None
                };
                Incoming::Call {
                    request,
                    options,
                    procedure,
                    args,
                    kwargs,
                }
            }
            CANCEL => Incoming::Cancel {
                request: required(&mut seq)?,
                options: required::<OptionsDict, _>(&mut seq)?.0,
            },
            SUBSCRIBE => {
                let request = required(&mut seq)?;
                required::<OptionsDict, _>(&mut seq)?;
                Incoming::Subscribe {
                    request,
                    topic: required::<Name<'de>, _>(&mut seq)?.0,
                }
            }
            UNSUBSCRIBE => Incoming::Unsubscribe {
                request: required(&mut seq)?,
                subscription: required(&mut seq)?,
            },
            PUBLISH => {
                let request = required(&mut seq)?;
                let options = required::<OptionsDict, _>(&mut seq)?.0;
                let topic = required::<Name<'de>, _>(&mut seq)?.0;
                let args = payload(&mut seq)?;
                let kwargs = if args.is_some() {
                    payload(&mut seq)?
                } else {
                    None
                };
                Incoming::Publish {
                    request,
                    options,
                    topic,
                    args,
                    kwargs,
                }
            }
            other => Incoming::Other(other),
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(message)
    }
}

/// A string, borrowed from the frame when it can be.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A dictionary of options: the known ones read, the rest skipped. Anything but a
/// dictionary is an error.
struct OptionsDict(Options);

impl<'de> Deserialize<'de> for OptionsDict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptionsDict;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a dictionary")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut o = Options {
                    exclude_me: true,
                    ..Options::default()
                };
                while let Some(key) = map.next_key::<Name<'de>>()? {
                    match &*key.0 {
                        "receive_progress" => {
                            o.receive_progress = map.next_value::<Value>()? == Value::Bool(true)
                        }
                        "timeout" => o.timeout = map.next_value::<Value>()?.as_u64(),
                        "mode" => {
                            o.mode = match map.next_value::<Value>()? {
                                Value::String(mode) => Some(mode),
                                _ => None,
                            }
                        }
                        "acknowledge" => {
                            o.acknowledge = map.next_value::<Value>()? == Value::Bool(true)
                        }
                        "exclude_me" => {
                            o.exclude_me = map.next_value::<Value>()? != Value::Bool(false)
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(OptionsDict(o))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::super::write::{encode, Part};
    use super::*;
    use crate::session::outbound::Frame;

    fn json(text: &str) -> Result<Incoming<'_>, DecodeError> {
        decode(Serializer::Json, text.as_bytes(), Some(text))
    }

    #[test]
    fn a_call_keeps_its_json_arguments_as_they_arrived() {
        let text = r#"[48, 7, {"receive_progress": true, "x": [1]}, "Calc.add", [1, 2], {}]"#;
        let Ok(Incoming::Call {
            request,
            options,
            procedure,
            args: Some(args),
            kwargs: Some(kwargs),
        }) = json(text)
        else {
            panic!("{:?}", json(text));
        };
        assert_eq!((request, &*procedure), (7, "Calc.add"));
        assert!(options.receive_progress && options.exclude_me);
        assert_eq!(args.raw().get(), "[1, 2]");
        assert!(matches!(procedure, Cow::Borrowed(_)), "no copy of the name");
        assert!(args.is_array() && kwargs.is_object() && kwargs.is_empty());
    }

    #[test]
    fn errors_say_how_far_the_message_got() {
        assert_eq!(json(r#"{"a":1}"#).unwrap_err(), DecodeError::NotAList);
        assert_eq!(json("not json").unwrap_err(), DecodeError::NotAList);
        assert_eq!(json(r#"["x"]"#).unwrap_err(), DecodeError::NoType);
        assert_eq!(json("[]").unwrap_err(), DecodeError::NoType);
        assert_eq!(
            json(r#"[48,"one",{},"Calculator.add"]"#).unwrap_err(),
            DecodeError::Malformed(48)
        );
        assert_eq!(
            json(r#"[48,1,[],"x"]"#).unwrap_err(),
            DecodeError::Malformed(48)
        );
        assert_eq!(
            json("[48,1,{},\"x\"] x").unwrap_err(),
            DecodeError::Malformed(48)
        );
        assert!(matches!(json("[99,1,2]"), Ok(Incoming::Other(99))));
    }

    #[test]
    fn the_binary_serializers_read_the_same_messages() {
        let message = serde_json::json!([48, 3, {"timeout": 50}, "Calc.add", [], {"a": 1}]);
        let packed = rmp_serde::to_vec(&message).unwrap();
        let mut cbor = Vec::new();
        ciborium::ser::into_writer(&message, &mut cbor).unwrap();
        for (serializer, bytes) in [(Serializer::Msgpack, packed), (Serializer::Cbor, cbor)] {
            let Ok(Incoming::Call {
                request: 3,
                options,
                kwargs: Some(kwargs),
                ..
            }) = decode(serializer, &bytes, None)
            else {
                panic!("{serializer:?}");
            };
            assert_eq!(options.timeout, Some(50));
            assert_eq!(kwargs.raw().get(), r#"{"a":1}"#);
            let parts = [
                Part::Int(50),
                Part::Int(3),
                Part::Value(serde_json::json!({})),
                Part::Args(Some("0.25")),
            ];
            let Some(Frame::Binary(out)) = encode(serializer, &parts) else {
                panic!("binary")
            };
            let back: Value = match serializer {
                Serializer::Msgpack => rmp_serde::from_slice(&out).unwrap(),
                _ => ciborium::de::from_reader(&out[..]).unwrap(),
            };
            assert_eq!(back, serde_json::json!([50, 3, {}, [0.25]]));
            assert_eq!(
                decode(serializer, b"\xff\x00", None).unwrap_err(),
                DecodeError::NotAList
            );
        }
        let Some(Frame::Text(text)) = encode(
            Serializer::Json,
            &[
                Part::Int(50),
                Part::Int(3),
                Part::Value(serde_json::json!({})),
                Part::Args(Some("[1]")),
            ],
        ) else {
            panic!("text")
        };
        assert_eq!(text, "[50,3,{},[[1]]]");
    }
}
