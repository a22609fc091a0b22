//! Command-line arguments to JSON-RPC params: `name=value` pairs, positional values, or one
//! JSON value, typed and checked against the method's description when there is one.

use serde_json::{Map, Value};

use crate::describe::{type_name, variant_names, variant_tag, Description, MethodDesc};

/// The params of a call: checked against `method`'s parameters when described, else each
/// value is JSON where it parses and a string otherwise. An error names the parameter and
/// the type it expects.
pub(crate) fn params(
    described: Option<(&Description, &MethodDesc<'_>)>,
    args: &[String],
) -> Result<Value, String> {
    let whole = match args {
        [one] if one.trim_start().starts_with(['{', '[']) => Some(
            serde_json::from_str::<Value>(one)
                .map_err(|e| format!("the params `{one}` are not valid JSON: {e}"))?,
        ),
        _ => None,
    };
    let named = !args.is_empty() && args.iter().all(|a| is_pair(a));
    let Some((desc, method)) = described else {
        return Ok(match whole {
            Some(v) => v,
            None if named => Value::Object(
                args.iter()
                    .filter_map(|a| a.split_once('='))
                    .map(|(k, v)| (k.to_string(), untyped(v)))
                    .collect(),
            ),
            None => Value::Array(args.iter().map(|a| untyped(a)).collect()),
        });
    };
    let params = method.params();
    let signature = || format!("`{}` takes ({})", method.name(), method.signature());
    let mut out = Map::new();
    match whole {
        Some(Value::Object(given)) => {
            for (name, value) in given {
                let Some(p) = params.iter().find(|p| p.name == name) else {
                    return Err(format!("unknown parameter `{name}`: {}", signature()));
                };
                check(desc, p.schema, &value).map_err(|e| mistyped(p.name, p.schema, &e))?;
                out.insert(name, value);
            }
        }
        Some(Value::Array(given)) => {
            if given.len() > params.len() {
                return Err(format!("{} values given: {}", given.len(), signature()));
            }
            for (p, value) in params.iter().zip(given) {
                check(desc, p.schema, &value).map_err(|e| mistyped(p.name, p.schema, &e))?;
                out.insert(p.name.to_string(), value);
            }
        }
        Some(other) => {
            return Err(format!(
                "the params must be a JSON object or array, not `{other}`: {}",
                signature()
            ))
        }
        None if named => {
            for arg in args {
                let (name, text) = arg.split_once('=').unwrap_or((arg, ""));
                let Some(p) = params.iter().find(|p| p.name == name) else {
                    return Err(format!("unknown parameter `{name}`: {}", signature()));
                };
                if out.contains_key(name) {
                    return Err(format!("parameter `{name}` given twice"));
                }
                out.insert(name.to_string(), typed(desc, p.name, p.schema, text)?);
            }
        }
        None => {
            if args.len() > params.len() {
                return Err(format!("{} values given: {}", args.len(), signature()));
            }
            for (p, text) in params.iter().zip(args) {
                out.insert(p.name.to_string(), typed(desc, p.name, p.schema, text)?);
            }
        }
    }
    for p in &params {
        if p.required && !out.contains_key(p.name) {
            return Err(format!(
                "missing parameter `{}` ({}): {}",
                p.name,
                type_name(p.schema),
                signature()
            ));
        }
    }
    Ok(Value::Object(out))
}

/// `name=value`, where `name` looks like a parameter name.
fn is_pair(arg: &str) -> bool {
    arg.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Without a description: JSON where it parses, else a string.
fn untyped(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn mistyped(name: &str, schema: &Value, why: &str) -> String {
    format!("parameter `{name}` expects {}: {why}", type_name(schema))
}

/// The value of `text` for a parameter of `schema`: a string parameter takes the text as
/// it is (`text=1` is `"1"`; a JSON string literal is read as one), others parse it as JSON.
fn typed(desc: &Description, name: &str, schema: &Value, text: &str) -> Result<Value, String> {
    let target = desc.resolve(optional_inner(schema).unwrap_or(schema));
    let is_string = target.get("type").and_then(Value::as_str) == Some("string");
    let value = if text == "null" && optional_inner(schema).is_some() {
        Value::Null
    } else if is_string && !text.starts_with('"') {
        Value::String(text.to_string())
    } else {
        serde_json::from_str(text).map_err(|_| mistyped(name, schema, &format!("got `{text}`")))?
    };
    check(desc, schema, &value).map_err(|e| mistyped(name, schema, &e))?;
    Ok(value)
}

/// `T` of an optional `T?` schema.
fn optional_inner(schema: &Value) -> Option<&Value> {
    match schema.get("oneOf")?.as_array()?.as_slice() {
        [inner, null] if null.get("type").and_then(Value::as_str) == Some("null") => Some(inner),
        _ => None,
    }
}

/// Does `value` fit `schema`? The reason it does not, if not.
fn check(desc: &Description, schema: &Value, value: &Value) -> Result<(), String> {
    let schema = desc.resolve(schema);
    let got = || format!("got `{value}`");
    if let Some(inner) = optional_inner(schema) {
        return if value.is_null() {
            Ok(())
        } else {
            check(desc, inner, value)
        };
    }
    if let Some(names) = schema.get("enum").and_then(Value::as_array) {
        return if names.contains(value) {
            Ok(())
        } else {
            Err(format!("{} (one of {})", got(), join(names)))
        };
    }
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        let tag = value
            .get(wirecall_idl::naming::ENUM_TAG)
            .and_then(Value::as_str);
        return match variants.iter().find(|v| variant_tag(v) == tag) {
            Some(variant) => check(desc, variant, value),
            None => Err(format!(
                "{} (an object whose `{}` is one of {})",
                got(),
                wirecall_idl::naming::ENUM_TAG,
                join(
                    &variant_names(schema)
                        .into_iter()
                        .map(|n| Value::String(n.into()))
                        .collect::<Vec<_>>()
                )
            )),
        };
    }
    if let Some(tag) = schema.get("const") {
        return if tag == value { Ok(()) } else { Err(got()) };
    }
    let int = |key: &str| schema.get(key).and_then(Value::as_i64);
    match schema.get("type").and_then(Value::as_str) {
        Some("boolean") if !value.is_boolean() => Err(got()),
        Some("integer") => {
            let fits = match schema.get("format").and_then(Value::as_str) {
                Some("int32") => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                Some("uint32") => value.as_u64().is_some_and(|n| u32::try_from(n).is_ok()),
                Some("uint64") => value.as_u64().is_some(),
                _ => value.as_i64().is_some_and(|n| {
                    int("minimum").is_none_or(|min| n >= min)
                        && int("maximum").is_none_or(|max| n <= max)
                }),
            };
            if fits {
                Ok(())
            } else {
                Err(format!("{} (out of range, or not an integer)", got()))
            }
        }
        Some("number") if !value.is_number() => Err(got()),
        Some("string") if !value.is_string() => Err(got()),
        Some("array") => {
            let items = value.as_array().ok_or_else(got)?;
            let item = schema.get("items").unwrap_or(&Value::Null);
            for (i, v) in items.iter().enumerate() {
                check(desc, item, v).map_err(|e| format!("item {i}: {e}"))?;
            }
            Ok(())
        }
        Some("object") => {
            let fields = value.as_object().ok_or_else(got)?;
            if let Some(each) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                for (k, v) in fields {
                    check(desc, each, v).map_err(|e| format!("`{k}`: {e}"))?;
                }
                return Ok(());
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(properties) = properties {
                for (k, v) in fields {
                    let Some(field) = properties.get(k) else {
                        return Err(format!("unknown field `{k}`"));
                    };
                    check(desc, field, v)
                        .map_err(|e| format!("field `{k}` ({}): {e}", type_name(field)))?;
                }
                for required in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !fields.contains_key(required) {
                        return Err(format!("missing field `{required}`"));
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn join(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
