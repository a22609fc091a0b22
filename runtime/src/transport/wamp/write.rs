//! Each outgoing WAMP message written once, from its parts, in the connection's
//! serializer: JSON text with results spliced in as they are, or msgpack / CBOR from
//! values.

use std::fmt::Write as _;

use serde_json::Value;

use super::message::Serializer;
use crate::codec::message::write_json_string;
use crate::session::outbound::Frame;

/// One member of an outgoing message.
pub(crate) enum Part<'a> {
    Int(u64),
    Str(&'a str),
    /// A dictionary or list, built here.
    Value(Value),
    /// `[]`, or a list of one value given as JSON text.
    Args(Option<&'a str>),
}

/// Write one message with `serializer`: `None` only if a binary serializer refused it
/// (it does not happen with values read from JSON).
pub(crate) fn encode(serializer: Serializer, parts: &[Part<'_>]) -> Option<Frame> {
    if serializer == Serializer::Json {
        let mut out = String::with_capacity(32 + parts.iter().map(size_hint).sum::<usize>());
        out.push('[');
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match part {
                Part::Int(n) => {
                    let _ = write!(out, "{n}");
                }
                Part::Str(s) => write_json_string(&mut out, s),
                Part::Value(v) => {
                    let _ = write!(out, "{v}");
                }
                Part::Args(None) => out.push_str("[]"),
                Part::Args(Some(json)) => {
                    out.push('[');
                    out.push_str(json);
                    out.push(']');
                }
            }
        }
        out.push(']');
        return Some(Frame::Text(out));
    }
    let values: Vec<Value> = parts
        .iter()
        .map(|part| match part {
            Part::Int(n) => Value::from(*n),
            Part::Str(s) => Value::from(*s),
            Part::Value(v) => v.clone(),
            Part::Args(None) => Value::Array(Vec::new()),
            Part::Args(Some(json)) => {
                Value::Array(vec![serde_json::from_str(json).unwrap_or(Value::Null)])
            }
        })
        .collect();
    let bytes = match serializer {
        Serializer::Msgpack => rmp_serde::to_vec(&values).ok(),
        Serializer::Cbor => {
            let mut out = Vec::new();
            ciborium::ser::into_writer(&values, &mut out)
                .ok()
                .map(|()| out)
        }
        Serializer::Json => unreachable!("written above"),
    };
    if bytes.is_none() {
        tracing::warn!(?serializer, "a WAMP message could not be serialized");
    }
    bytes.map(Frame::Binary)
}

fn size_hint(part: &Part<'_>) -> usize {
    match part {
        Part::Str(s) => s.len() + 2,
        Part::Args(Some(json)) => json.len() + 2,
        _ => 8,
    }
}
