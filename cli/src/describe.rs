//! A server's description: its OpenRPC document (from `rpc.discover`, or made from a
//! `.wire` file with `--idl`), read back as methods, parameters and types in `.wire` terms.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

/// An OpenRPC document, as `wirecall_idl::openrpc` writes them.
pub(crate) struct Description {
    doc: Value,
}

/// One method of the description.
pub(crate) struct MethodDesc<'a> {
    pub(crate) value: &'a Value,
}

/// One parameter of a method.
pub(crate) struct ParamDesc<'a> {
    pub(crate) name: &'a str,
    pub(crate) required: bool,
    pub(crate) schema: &'a Value,
    pub(crate) description: Option<&'a str>,
}

static EMPTY: Value = Value::Null;

impl Description {
    pub(crate) fn new(doc: Value) -> Result<Self, String> {
        if !doc.get("methods").is_some_and(Value::is_array) {
            return Err("the description is not an OpenRPC document (no `methods` list)".into());
        }
        Ok(Description { doc })
    }

    /// The description of a `.wire` file: the OpenRPC document its server would answer.
    pub(crate) fn from_idl(path: &Path) -> Result<Self, String> {
        let loaded = wirecall_idl::load(path).map_err(|d| d.to_string())?;
        let title = path
            .file_stem()
            .map_or_else(|| "api".into(), |s| s.to_string_lossy().into_owned());
        Description::new(wirecall_idl::openrpc::document(
            &loaded.schema,
            &title,
            "0.1.0",
        ))
    }

    pub(crate) fn document(&self) -> &Value {
        &self.doc
    }

    pub(crate) fn methods(&self) -> impl Iterator<Item = MethodDesc<'_>> {
        self.doc["methods"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|value| MethodDesc { value })
    }

    pub(crate) fn method(&self, name: &str) -> Option<MethodDesc<'_>> {
        self.methods().find(|m| m.name() == name)
    }

    /// The declared types, by name.
    pub(crate) fn schemas(&self) -> &Map<String, Value> {
        static NONE: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.doc["components"]["schemas"]
            .as_object()
            .unwrap_or_else(|| NONE.get_or_init(Map::new))
    }

    /// `schema` with a `$ref` followed to its declared type.
    pub(crate) fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => self
                .schemas()
                .get(r.rsplit('/').next().unwrap_or(r))
                .unwrap_or(&EMPTY),
            None => schema,
        }
    }

    /// The error type a method's `errors` list comes from: the declared type whose variants
    /// are exactly those errors' messages.
    pub(crate) fn error_type(&self, method: &MethodDesc<'_>) -> Option<&str> {
        let errors = method.value.get("errors")?.as_array()?;
        let wanted: BTreeSet<&str> = errors
            .iter()
            .filter_map(|e| e.get("message")?.as_str())
            .collect();
        if wanted.is_empty() {
            return None;
        }
        self.schemas()
            .iter()
            .find(|(_, schema)| variant_names(schema) == wanted)
            .map(|(name, _)| name.as_str())
    }

    /// `Error.Variant` for an error `code` a method declares, if it does.
    pub(crate) fn error_name(&self, method: &MethodDesc<'_>, code: i64) -> Option<String> {
        let variant = method
            .value
            .get("errors")?
            .as_array()?
            .iter()
            .find(|e| e.get("code").and_then(Value::as_i64) == Some(code))?
            .get("message")?
            .as_str()?;
        Some(match self.error_type(method) {
            Some(ty) => format!("{ty}.{variant}"),
            None => variant.to_string(),
        })
    }
}

/// The variant names of an enum or error schema (unit: a string enum; tagged: `oneOf`
/// objects with a constant `kind`).
pub(crate) fn variant_names(schema: &Value) -> BTreeSet<&str> {
    if let Some(names) = schema.get("enum").and_then(Value::as_array) {
        return names.iter().filter_map(Value::as_str).collect();
    }
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(variant_tag)
        .collect()
}

/// The tag of one variant of a tagged enum's `oneOf`.
pub(crate) fn variant_tag(schema: &Value) -> Option<&str> {
    schema
        .get("properties")?
        .get(wirecall_idl::naming::ENUM_TAG)?
        .get("const")?
        .as_str()
}

impl<'a> MethodDesc<'a> {
    pub(crate) fn name(&self) -> &'a str {
        self.value["name"].as_str().unwrap_or("")
    }

    pub(crate) fn params(&self) -> Vec<ParamDesc<'a>> {
        self.value["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| ParamDesc {
                name: p["name"].as_str().unwrap_or(""),
                required: p["required"].as_bool().unwrap_or(false),
                schema: p.get("schema").unwrap_or(&EMPTY),
                description: p.get("description").and_then(Value::as_str),
            })
            .collect()
    }

    /// A stream: the schema of its items.
    pub(crate) fn stream_item(&self) -> Option<&'a Value> {
        self.value.get("x-subscription")?.get("item")
    }

    /// A notification: no result.
    pub(crate) fn is_notification(&self) -> bool {
        self.value.get("result").is_none()
    }

    /// Called by the server on its clients (a `client { … }` method).
    pub(crate) fn is_to_client(&self) -> bool {
        self.value.get("x-direction").and_then(Value::as_str) == Some("server-to-client")
    }

    pub(crate) fn description(&self) -> Option<&'a str> {
        self.value.get("description").and_then(Value::as_str)
    }

    /// `a: i64, b: i64`, for messages.
    pub(crate) fn signature(&self) -> String {
        self.params()
            .iter()
            .map(|p| format!("{}: {}", p.name, type_name(p.schema)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The `.wire` spelling of a JSON Schema (as `wirecall_idl::openrpc` writes them).
pub(crate) fn type_name(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    if let Some([inner, null]) = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        if null.get("type").and_then(Value::as_str) == Some("null") {
            return format!("{}?", type_name(inner));
        }
    }
    let int = |key: &str| schema.get(key).and_then(Value::as_i64);
    match schema.get("type").and_then(Value::as_str) {
        Some("boolean") => "bool".into(),
        Some("integer") => match schema.get("format").and_then(Value::as_str) {
            Some("int32") => "i32".into(),
            Some("int64") => "i64".into(),
            Some("uint32") => "u32".into(),
            Some("uint64") => "u64".into(),
            _ => match (int("minimum"), int("maximum")) {
                (Some(-128), Some(127)) => "i8".into(),
                (Some(-32768), Some(32767)) => "i16".into(),
                (Some(0), Some(255)) => "u8".into(),
                (Some(0), Some(65535)) => "u16".into(),
                _ => "i64".into(),
            },
        },
        Some("number") => match schema.get("format").and_then(Value::as_str) {
            Some("float") => "f32".into(),
            _ => "f64".into(),
        },
        Some("string") if schema.get("contentEncoding").is_some() => "bytes".into(),
        Some("string") => "string".into(),
        Some("array") => format!("list<{}>", type_name(schema.get("items").unwrap_or(&EMPTY))),
        Some("object") => match schema.get("additionalProperties") {
            Some(v) if v.is_object() => {
                let key = schema
                    .get("propertyNames")
                    .map_or_else(|| "string".to_string(), type_name);
                format!("map<{key}, {}>", type_name(v))
            }
            _ => "json".into(),
        },
        _ => "json".into(),
    }
}
