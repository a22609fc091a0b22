//! Method parameters, kept as raw JSON until the handler decodes them.
//!
//! JSON-RPC params come by name (`{"a": 1, "b": 2}`) or by position (`[1, 2]`). A
//! [`ParamDecoder`] accepts both and turns every mistake into a `-32602` error that names
//! the parameter.

use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::RpcError;

/// The params of one incoming call, borrowed from its frame.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    raw: Option<&'a RawValue>,
}

impl<'a> Params<'a> {
    /// Wrap raw params (`None` when the message had no `params` member).
    pub fn new(raw: Option<&'a RawValue>) -> Self {
        Params { raw }
    }

    /// The raw JSON text, if the message had params.
    pub fn raw(&self) -> Option<&'a RawValue> {
        self.raw
    }

    /// Decode the whole params value as `T` (e.g. `Vec<i64>` for a variadic method).
    /// Missing params decode as JSON `null`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, RpcError> {
        let text = self.raw.map_or("null", |r| r.get());
        serde_json::from_str(text)
            .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
    }

    /// A decoder for a method whose parameters are `names`, in order. Accepts params by
    /// name or by position; rejects unknown names and surplus positions.
    pub fn decoder(&self, names: &'static [&'static str]) -> Result<ParamDecoder<'a>, RpcError> {
        let shape = match self.raw {
            None => Shape::Positional(Vec::new()),
            Some(raw) if raw.get().starts_with('[') => {
                let items: Vec<&'a RawValue> = serde_json::from_str(raw.get())
                    .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))?;
                if items.len() > names.len() {
                    return Err(too_many(names.len(), items.len()));
                }
                Shape::Positional(items)
            }
            Some(raw) => {
                let named = serde_json::from_str::<Named<'a>>(raw.get())
                    .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))?;
                let mut values = vec![None; names.len()];
                for (key, value) in named.0 {
                    match names.iter().position(|n| *n == key.as_ref()) {
                        Some(i) if values[i].is_some() => return Err(duplicate(&key)),
                        Some(i) => values[i] = Some(value),
                        // A newer caller's optional parameter, left out: as if absent.
                        None if value.get() == "null" => {}
                        None => return Err(unknown(&key, names)),
                    }
                }
                Shape::Named(values)
            }
        };
        Ok(ParamDecoder {
            names,
            shape,
            next: 0,
        })
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

// The -32602 messages, shared by `ParamDecoder` and `decode_slots`.

fn invalid(name: &str, e: &impl std::fmt::Display) -> RpcError {
    RpcError::invalid_params(format!("invalid parameter `{name}`: {}", strip_position(e)))
}

fn unknown(key: &str, names: &[&str]) -> RpcError {
    let expected = if names.is_empty() {
        "the method takes no parameters".to_string()
    } else {
        format!("expected {}", list(names))
    };
    RpcError::invalid_params(format!("unknown parameter `{key}`; {expected}"))
}

fn duplicate(key: &str) -> RpcError {
    RpcError::invalid_params(format!("duplicate parameter `{key}`"))
}

fn too_many(expected: usize, got: usize) -> RpcError {
    RpcError::invalid_params(format!(
        "too many params: expected at most {expected}, got {got}"
    ))
}

enum Shape<'a> {
    Positional(Vec<&'a RawValue>),
    Named(Vec<Option<&'a RawValue>>),
}

/// Decodes parameters one by one, in declaration order; see [`Params::decoder`].
pub struct ParamDecoder<'a> {
    names: &'static [&'static str],
    shape: Shape<'a>,
    next: usize,
}

impl std::fmt::Debug for ParamDecoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParamDecoder")
            .field("names", &self.names)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl ParamDecoder<'_> {
    /// Decode the next parameter. A missing parameter decodes as `null`, so it is accepted
    /// exactly when its type is optional; otherwise the error names it.
    pub fn next_param<T: DeserializeOwned>(&mut self) -> Result<T, RpcError> {
        let i = self.next;
        self.next += 1;
        let name = self.names.get(i).copied().unwrap_or("?");
        let raw = match &self.shape {
            Shape::Positional(items) => items.get(i).copied(),
            Shape::Named(values) => values.get(i).copied().flatten(),
        };
        match raw {
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| invalid(name, &e)),
            None => missing(self.names, i),
        }
    }
}

/// serde_json's messages end with "at line 1 column 7", which means nothing to a caller
/// who sent the whole request; keep the reason only.
fn strip_position(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The parameters of a generated handler while they are decoded: a tuple of `Option`s,
/// one per parameter, filled in one pass over the params (see [`decode_slots`]).
pub(crate) trait Slots: Sized {
    /// The decoded parameters.
    type Output;
    /// How many parameters there are.
    const LEN: usize;
    /// No parameter decoded yet.
    fn empty() -> Self;
    /// Decode the value of parameter `i` from `map`.
    fn fill_named<'de, M: MapAccess<'de>>(&mut self, i: usize, map: &mut M)
        -> Result<(), M::Error>;
    /// Decode parameter `i` from the next element of `seq`; `false` when there is none.
    fn fill_positional<'de, Q: SeqAccess<'de>>(
        &mut self,
        i: usize,
        seq: &mut Q,
    ) -> Result<bool, Q::Error>;
    /// Whether parameter `i` was given.
    fn is_set(&self, i: usize) -> bool;
    /// The parameters; a missing one is `null` if its type allows it, else an error.
    fn finish(self, names: &'static [&'static str]) -> Result<Self::Output, RpcError>;
}

/// A parameter that was not given: `null` if its type takes it (an `Option`), else an
/// error that names it.
pub(crate) fn missing<T: DeserializeOwned>(names: &[&str], i: usize) -> Result<T, RpcError> {
    serde_json::from_str("null").map_err(|_| {
        RpcError::invalid_params(format!(
            "missing parameter `{}`",
            names.get(i).copied().unwrap_or("?")
        ))
    })
}

/// Decode the params of a method whose parameters are `names` straight into their types,
/// by name or by position, in one pass over the JSON (no intermediate raw values); every
/// mistake is a `-32602` that names the parameter, as with [`ParamDecoder`].
pub(crate) fn decode_slots<S: Slots>(
    params: Params<'_>,
    names: &'static [&'static str],
) -> Result<S::Output, RpcError> {
    let mut slots = S::empty();
    if let Some(raw) = params.raw() {
        let mut failure = None;
        let fill = Fill {
            names,
            slots: &mut slots,
            failure: &mut failure,
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        if let Err(e) = serde::de::DeserializeSeed::deserialize(fill, &mut de) {
            return Err(failure.unwrap_or_else(|| {
                RpcError::invalid_params(format!("invalid params: {}", strip_position(&e)))
            }));
        }
    }
    slots.finish(names)
}

struct Fill<'s, S> {
    names: &'static [&'static str],
    slots: &'s mut S,
    failure: &'s mut Option<RpcError>,
}

impl<S> Fill<'_, S> {
    /// Remember the precise error, and stop the parse.
    fn fail<E: serde::de::Error>(&mut self, error: RpcError) -> E {
        *self.failure = Some(error);
        E::custom("invalid params")
    }

    fn name(&self, i: usize) -> &'static str {
        self.names.get(i).copied().unwrap_or("?")
    }
}

impl<'de, S: Slots> serde::de::DeserializeSeed<'de> for Fill<'_, S> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: Slots> Visitor<'de> for Fill<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object or an array of params")
    }

    fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let Some(i) = self.names[..S::LEN.min(self.names.len())]
                .iter()
                .position(|n| *n == key.0.as_ref())
            else {
                // A newer caller's optional parameter, left out (`null`): as if absent.
                if map.next_value::<Option<serde::de::IgnoredAny>>()?.is_none() {
                    continue;
                }
                return Err(self.fail(unknown(&key.0, self.names)));
            };
            if self.slots.is_set(i) {
                return Err(self.fail(duplicate(&key.0)));
            }
            if let Err(e) = self.slots.fill_named(i, &mut map) {
                *self.failure = Some(invalid(self.name(i), &e));
                return Err(e);
            }
        }
        Ok(())
    }

    fn visit_seq<Q: SeqAccess<'de>>(mut self, mut seq: Q) -> Result<(), Q::Error> {
        for i in 0..S::LEN {
            match self.slots.fill_positional(i, &mut seq) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => {
                    *self.failure = Some(invalid(self.name(i), &e));
                    return Err(e);
                }
            }
        }
        let mut extra = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            extra += 1;
        }
        if extra > 0 {
            return Err(self.fail(too_many(S::LEN, S::LEN + extra)));
        }
        Ok(())
    }
}

/// The members of a JSON object, borrowed from its text.
pub(crate) fn object_members(
    text: &str,
) -> Result<Vec<(std::borrow::Cow<'_, str>, &RawValue)>, serde_json::Error> {
    serde_json::from_str::<Named<'_>>(text).map(|n| n.0)
}

/// A JSON object's members, borrowed.
struct Named<'a>(Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Named<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Named<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object or an array of params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Named<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    out.push((key.0, map.next_value()?));
                }
                Ok(Named(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A member name: borrowed when it has no escapes.
struct Key<'a>(std::borrow::Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a parameter name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typed::ParamTuple;

    type Decoded = Result<(i64, Option<String>), String>;

    /// Hand-written handlers' `ParamDecoder`.
    fn by_decoder(raw: Option<&str>) -> Decoded {
        let raw: Option<&RawValue> = raw.map(|r| serde_json::from_str(r).unwrap());
        let mut d = Params::new(raw)
            .decoder(&["a", "b"])
            .map_err(|e| e.message.to_string())?;
        let a = d.next_param().map_err(|e| e.message.to_string())?;
        let b = d.next_param().map_err(|e| e.message.to_string())?;
        Ok((a, b))
    }

    /// Generated handlers' one-pass decode (`decode_slots`).
    fn by_tuple(raw: Option<&str>) -> Decoded {
        let raw: Option<&RawValue> = raw.map(|r| serde_json::from_str(r).unwrap());
        <(i64, Option<String>)>::decode(Params::new(raw), &["a", "b"])
            .map_err(|e| e.message.to_string())
    }

    /// Both decoders give the same outcome, mistakes included.
    fn check(raw: Option<&str>, expected: Decoded) {
        assert_eq!(by_decoder(raw), expected, "ParamDecoder, params {raw:?}");
        assert_eq!(by_tuple(raw), expected, "decode_slots, params {raw:?}");
    }

    #[test]
    fn by_name_and_by_position() {
        check(Some(r#"{"a": 1, "b": "x"}"#), Ok((1, Some("x".into()))));
        check(Some(r#"{"b": "x", "a": 1}"#), Ok((1, Some("x".into()))));
        check(Some(r#"[1, "x"]"#), Ok((1, Some("x".into()))));
        check(Some(r#"[1]"#), Ok((1, None)));
        check(Some(r#"[1, null]"#), Ok((1, None)));
        check(Some(r#"{"a": 1}"#), Ok((1, None)));
        check(Some(r#"{"a": 1, "b": null}"#), Ok((1, None)));
        check(Some(r#"{"\u0061": 1}"#), Ok((1, None)));
        check(
            Some(r#"{"a": 1, "b": "\u00e9\n"}"#),
            Ok((1, Some("é\n".into()))),
        );
    }

    #[test]
    fn mistakes_name_the_parameter() {
        check(None, Err("missing parameter `a`".into()));
        check(Some("{}"), Err("missing parameter `a`".into()));
        check(Some("[]"), Err("missing parameter `a`".into()));
        check(Some(r#"{"b": "x"}"#), Err("missing parameter `a`".into()));
        check(
            Some(r#"{"a": "one"}"#),
            Err(r#"invalid parameter `a`: invalid type: string "one", expected i64"#.into()),
        );
        check(
            Some(r#"[1, 2]"#),
            Err("invalid parameter `b`: invalid type: integer `2`, expected a string".into()),
        );
        // An unknown parameter that is null is a newer caller's optional one, left out.
        check(Some(r#"{"a": 1, "c": null}"#), Ok((1, None)));
        check(
            Some(r#"{"a": 1, "c": 2}"#),
            Err("unknown parameter `c`; expected `a`, `b`".into()),
        );
        check(
            Some(r#"[1, "x", 3]"#),
            Err("too many params: expected at most 2, got 3".into()),
        );
        check(
            Some(r#"[1, "x", 3, [4]]"#),
            Err("too many params: expected at most 2, got 4".into()),
        );
        check(
            Some(r#"{"a": 1, "a": 2}"#),
            Err("duplicate parameter `a`".into()),
        );
    }

    #[test]
    fn one_pass_decode_rejects_what_is_not_params() {
        assert_eq!(
            by_tuple(Some("5")),
            Err("invalid params: invalid type: integer `5`, expected an object or an array of params".into())
        );
        let none: Result<(), _> = <()>::decode(
            Params::new(Some(serde_json::from_str(r#"{"x": 1}"#).unwrap())),
            &[],
        );
        assert_eq!(
            none.unwrap_err().message,
            "unknown parameter `x`; the method takes no parameters"
        );
    }
}
