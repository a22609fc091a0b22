//! An [OpenRPC] 1.3 document for a schema: methods with JSON Schemas of their params,
//! results and errors, and the declared types under `components.schemas`.
//!
//! wirecall-specific parts use `x-` extension fields: streams carry
//! `"x-subscription": {"item": …, "unsubscribe": "Service.m.unsubscribe"}` (their result
//! is the subscription id), methods of a `client { … }` block carry
//! `"x-direction": "server-to-client"`, idempotent methods `"x-idempotent": true`, topics
//! `"x-topic": {"key": […], "since": "$since", "publishable": …}`, and object schemas list
//! their fields in declared order in `"x-order"`.
//!
//! [OpenRPC]: https://spec.open-rpc.org

use serde_json::{json, Map, Value};

use crate::model::*;

/// The OpenRPC version the documents follow.
pub const OPENRPC_VERSION: &str = "1.3.2";

/// The document of every service in `schema`; `title` names it (e.g. the file stem).
pub fn document(schema: &Schema, title: &str, version: &str) -> Value {
    let mut methods = Vec::new();
    for service in &schema.services {
        for m in &service.methods {
            methods.push(method(schema, service, m));
        }
    }
    let mut schemas = Map::new();
    for t in &schema.types {
        schemas.insert(t.name().name.clone(), type_schema(t));
    }
    let description = schema
        .services
        .iter()
        .filter(|s| !s.docs.is_empty())
        .map(|s| s.docs.text())
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut info = json!({ "title": title, "version": version });
    if !description.is_empty() {
        info["description"] = Value::String(description);
    }
    json!({
        "openrpc": OPENRPC_VERSION,
        "info": info,
        "methods": methods,
        "components": { "schemas": schemas },
    })
}

fn with_docs(mut value: Value, docs: &Docs) -> Value {
    if !docs.is_empty() {
        if let Value::Object(map) = &mut value {
            map.insert("description".into(), Value::String(docs.text()));
        }
    }
    value
}

fn method(schema: &Schema, service: &Service, m: &Method) -> Value {
    let params: Vec<Value> = m
        .params
        .iter()
        .map(|p| {
            let required = !matches!(p.ty.kind, TypeKind::Optional(_));
            with_docs(
                json!({ "name": p.name.name, "required": required, "schema": type_ref(&p.ty) }),
                &p.docs,
            )
        })
        .collect();
    let mut out = json!({
        "name": m.wire_name(service),
        "params": params,
        "paramStructure": "either",
    });
    if !m.docs.is_empty() {
        out["description"] = Value::String(m.docs.text());
    }
    let returns = m
        .returns
        .as_ref()
        .map_or(json!({ "type": "null" }), type_ref);
    match m.kind {
        MethodKind::Rpc => out["result"] = json!({ "name": "result", "schema": returns }),
        MethodKind::Notify => {}
        MethodKind::Stream | MethodKind::Topic => {
            out["result"] =
                json!({ "name": "subscription", "schema": { "type": "integer", "minimum": 1 } });
            out["x-subscription"] = json!({
                "item": returns,
                "unsubscribe": format!("{}.unsubscribe", m.wire_name(service)),
            });
            if m.kind == MethodKind::Topic {
                // Its params are the topic key; items carry positions and `$since` resumes.
                out["x-topic"] = json!({
                    "key": m.params.iter().map(|p| p.name.name.as_str()).collect::<Vec<_>>(),
                    "since": "$since",
                    "publishable": m.attrs.has(crate::model::AttributeKind::Publishable),
                });
            }
        }
    }
    if let Some(throws) = &m.throws {
        if let Some(TypeDef::Error(e)) = schema.type_def(&throws.name) {
            let errors: Vec<Value> = e
                .variants
                .iter()
                .map(|v| {
                    let mut err =
                        json!({ "code": v.code.value.unwrap_or(0), "message": v.name.name });
                    // OpenRPC error objects have no description; the error's `data`
                    // member holds the fields' schema.
                    if let Some(fields) = &v.fields {
                        err["data"] = object_schema(fields, None);
                    }
                    err
                })
                .collect();
            out["errors"] = Value::Array(errors);
        }
    }
    if m.is_idempotent() {
        out["x-idempotent"] = Value::Bool(true);
    }
    if m.direction == Direction::ToClient {
        out["x-direction"] = Value::String("server-to-client".into());
    }
    if let Some(note) = m.attrs.deprecated() {
        out["deprecated"] = Value::Bool(true);
        if !note.is_empty() {
            out["x-deprecation-note"] = Value::String(note.into());
        }
    }
    out
}

/// The JSON Schema of a type reference.
pub fn type_ref(ty: &Type) -> Value {
    match &ty.kind {
        TypeKind::Bool => json!({ "type": "boolean" }),
        TypeKind::I8 => int(-128, 127),
        TypeKind::I16 => int(-32768, 32767),
        TypeKind::I32 => json!({ "type": "integer", "format": "int32" }),
        TypeKind::I64 => json!({ "type": "integer", "format": "int64" }),
        TypeKind::U8 => int(0, 255),
        TypeKind::U16 => int(0, 65535),
        TypeKind::U32 => json!({ "type": "integer", "format": "uint32", "minimum": 0 }),
        TypeKind::U64 => json!({ "type": "integer", "format": "uint64", "minimum": 0 }),
        TypeKind::F32 => json!({ "type": "number", "format": "float" }),
        TypeKind::F64 => json!({ "type": "number", "format": "double" }),
        TypeKind::String => json!({ "type": "string" }),
        TypeKind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        TypeKind::Json => json!({}),
        TypeKind::List(t) => json!({ "type": "array", "items": type_ref(t) }),
        TypeKind::Map(k, v) if matches!(k.kind, TypeKind::Named(_)) => json!({
            "type": "object",
            "propertyNames": type_ref(k),
            "additionalProperties": type_ref(v),
        }),
        TypeKind::Map(_, v) => json!({ "type": "object", "additionalProperties": type_ref(v) }),
        TypeKind::Optional(t) => json!({ "oneOf": [type_ref(t), { "type": "null" }] }),
        TypeKind::Named(n) | TypeKind::Rust(n) => {
            json!({ "$ref": format!("#/components/schemas/{n}") })
        }
    }
}

fn int(min: i64, max: i64) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max })
}

/// An object with these fields (optional ones not required), and possibly the enum tag.
fn object_schema(fields: &[Field], tag: Option<&str>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    if let Some(tag) = tag {
        properties.insert(crate::naming::ENUM_TAG.into(), json!({ "const": tag }));
        required.push(Value::String(crate::naming::ENUM_TAG.into()));
    }
    for f in fields {
        let mut field = with_docs(type_ref(&f.ty), &f.docs);
        if f.attrs.deprecated().is_some() {
            field["deprecated"] = Value::Bool(true);
        }
        properties.insert(f.name.name.clone(), field);
        if !matches!(f.ty.kind, TypeKind::Optional(_)) {
            required.push(Value::String(f.name.name.clone()));
        }
    }
    // JSON objects have no order (and many JSON libraries sort keys), so the declared order
    // of the fields travels explicitly: `wirecall discover` writes them back in it.
    let order: Vec<&str> = fields.iter().map(|f| f.name.name.as_str()).collect();
    json!({ "type": "object", "properties": properties, "required": required, "x-order": order })
}

/// The JSON Schema of a declared type.
pub fn type_schema(t: &TypeDef) -> Value {
    let mut schema = declared_schema(t);
    if t.attrs().deprecated().is_some() {
        // JSON Schema's own keyword (2019-09 and later).
        schema["deprecated"] = Value::Bool(true);
    }
    if t.attrs().has(AttributeKind::Open) {
        // Receivers of an `@open` enum accept variants they do not know.
        schema["x-open"] = Value::Bool(true);
    }
    schema
}

fn declared_schema(t: &TypeDef) -> Value {
    let schema = match t {
        TypeDef::Struct(s) => object_schema(&s.fields, None),
        TypeDef::Enum(e) => variants_schema(
            e.variants
                .iter()
                .map(|v| (&v.name, v.fields.as_deref(), &v.docs)),
        ),
        TypeDef::Error(e) => variants_schema(
            e.variants
                .iter()
                .map(|v| (&v.name, v.fields.as_deref(), &v.docs)),
        ),
    };
    with_docs(schema, t.docs())
}

fn variants_schema<'a>(
    variants: impl Iterator<Item = (&'a Ident, Option<&'a [Field]>, &'a Docs)> + Clone,
) -> Value {
    let tagged = variants.clone().any(|(_, fields, _)| fields.is_some());
    if !tagged {
        let names: Vec<Value> = variants
            .map(|(n, _, _)| Value::String(n.name.clone()))
            .collect();
        return json!({ "type": "string", "enum": names });
    }
    let one_of: Vec<Value> = variants
        .map(|(n, fields, docs)| {
            with_docs(object_schema(fields.unwrap_or(&[]), Some(&n.name)), docs)
        })
        .collect();
    json!({ "oneOf": one_of })
}
