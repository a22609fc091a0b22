//! `wirecall discover`: a server's OpenRPC document written back as `.wire` text — types,
//! errors, services and their methods, with their doc comments.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;

use crate::describe::{type_name, variant_tag, Description, MethodDesc};

/// The `.wire` text of a description.
pub(crate) fn wire_text(desc: &Description) -> String {
    let mut out = String::new();
    if let Some(title) = desc.document()["info"]["title"].as_str() {
        let _ = writeln!(
            out,
            "// Discovered from the server's OpenRPC document ({title})."
        );
    }
    // Error types: those the methods' `errors` lists come from, with their codes.
    let mut error_codes: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
    for m in desc.methods() {
        if let Some(ty) = desc.error_type(&m) {
            let codes = error_codes.entry(ty).or_default();
            for e in m.value["errors"].as_array().into_iter().flatten() {
                if let (Some(msg), Some(code)) = (e["message"].as_str(), e["code"].as_i64()) {
                    codes.insert(msg.to_string(), code);
                }
            }
        }
    }
    for (name, schema) in desc.schemas() {
        out.push('\n');
        docs(
            &mut out,
            schema.get("description").and_then(Value::as_str),
            0,
        );
        if schema.get("x-open").and_then(Value::as_bool) == Some(true) {
            out.push_str("@open\n");
        }
        match error_codes.get(name.as_str()) {
            Some(codes) => error_def(&mut out, name, schema, codes),
            None => type_def(&mut out, name, schema),
        }
    }
    // Services, in the order of their first method.
    let mut services: Vec<(&str, Vec<MethodDesc<'_>>)> = Vec::new();
    for m in desc.methods() {
        let Some((service, _)) = m.name().split_once('.') else {
            continue;
        };
        match services.iter_mut().find(|(s, _)| *s == service) {
            Some((_, methods)) => methods.push(m),
            None => services.push((service, vec![m])),
        }
    }
    let info = desc.document()["info"]["description"].as_str();
    for (i, (service, methods)) in services.iter().enumerate() {
        out.push('\n');
        // The document's description is the services' docs, joined.
        if services.len() == 1 {
            docs(&mut out, info, 0);
        } else if i == 0 && info.is_some() {
            let _ = writeln!(out, "// The services are described together as:");
            for line in info.unwrap_or("").lines() {
                let _ = writeln!(out, "// {line}");
            }
        }
        let _ = writeln!(out, "service {service} {{");
        let (to_client, to_server): (Vec<_>, Vec<_>) =
            methods.iter().partition(|m| m.is_to_client());
        for m in &to_server {
            method(&mut out, desc, m, service, 1);
        }
        if !to_client.is_empty() {
            out.push('\n');
            out.push_str("    client {\n");
            for m in &to_client {
                method(&mut out, desc, m, service, 2);
            }
            out.push_str("    }\n");
        }
        out.push_str("}\n");
    }
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("    ");
    }
}

fn docs(out: &mut String, text: Option<&str>, depth: usize) {
    for line in text.into_iter().flat_map(str::lines) {
        indent(out, depth);
        if line.is_empty() {
            out.push_str("///\n");
        } else {
            let _ = writeln!(out, "/// {line}");
        }
    }
}

fn fields(out: &mut String, schema: &Value, depth: usize) {
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    // Declared order (`x-order`), then any property it does not list.
    let mut names: Vec<&str> = schema["x-order"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|n| properties.contains_key(*n))
        .collect();
    for name in properties.keys() {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    for (name, field) in names
        .into_iter()
        .filter_map(|n| properties.get_key_value(n))
    {
        if name == wirecall_idl::naming::ENUM_TAG && field.get("const").is_some() {
            continue;
        }
        docs(out, field.get("description").and_then(Value::as_str), depth);
        indent(out, depth);
        let mut ty = type_name(field);
        if !required.contains(name.as_str()) && !ty.ends_with('?') {
            ty.push('?');
        }
        let _ = writeln!(out, "{name}: {ty},");
    }
}

fn type_def(out: &mut String, name: &str, schema: &Value) {
    if let Some(names) = schema.get("enum").and_then(Value::as_array) {
        let _ = writeln!(out, "enum {name} {{");
        for v in names.iter().filter_map(Value::as_str) {
            let _ = writeln!(out, "    {v},");
        }
        out.push_str("}\n");
    } else if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        let _ = writeln!(out, "enum {name} {{");
        for v in variants {
            variant(out, v, None);
        }
        out.push_str("}\n");
    } else if schema.get("properties").is_some() {
        let _ = writeln!(out, "struct {name} {{");
        fields(out, schema, 1);
        out.push_str("}\n");
    } else {
        let _ = writeln!(
            out,
            "// `{name}` has a schema this command cannot write as .wire: {schema}"
        );
    }
}

fn variant(out: &mut String, v: &Value, code: Option<i64>) {
    let Some(tag) = variant_tag(v) else { return };
    docs(out, v.get("description").and_then(Value::as_str), 1);
    let has_fields = v["properties"].as_object().is_some_and(|p| p.len() > 1);
    let code = code.map(|c| format!(" = {c}")).unwrap_or_default();
    if has_fields {
        let _ = writeln!(out, "    {tag} {{");
        fields(out, v, 2);
        let _ = writeln!(out, "    }}{code},");
    } else {
        let _ = writeln!(out, "    {tag}{code},");
    }
}

fn error_def(out: &mut String, name: &str, schema: &Value, codes: &BTreeMap<String, i64>) {
    let _ = writeln!(out, "error {name} {{");
    if let Some(names) = schema.get("enum").and_then(Value::as_array) {
        for v in names.iter().filter_map(Value::as_str) {
            let code = codes.get(v).copied().unwrap_or(0);
            let _ = writeln!(out, "    {v} = {code},");
        }
    } else {
        for v in schema["oneOf"].as_array().into_iter().flatten() {
            let code = variant_tag(v)
                .and_then(|t| codes.get(t))
                .copied()
                .unwrap_or(0);
            variant(out, v, Some(code));
        }
    }
    out.push_str("}\n");
}

fn method(out: &mut String, desc: &Description, m: &MethodDesc<'_>, service: &str, depth: usize) {
    docs(out, m.description(), depth);
    if m.value.get("x-idempotent").and_then(Value::as_bool) == Some(true) {
        indent(out, depth);
        out.push_str("@idempotent\n");
    }
    if m.value.get("deprecated").and_then(Value::as_bool) == Some(true) {
        indent(out, depth);
        match m.value.get("x-deprecation-note").and_then(Value::as_str) {
            Some(note) => {
                let note = note.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(out, "@deprecated(\"{note}\")");
            }
            None => out.push_str("@deprecated\n"),
        }
    }
    let topic = m.value.get("x-topic");
    if topic.and_then(|t| t["publishable"].as_bool()) == Some(true) {
        indent(out, depth);
        out.push_str("@publishable\n");
    }
    indent(out, depth);
    let name = m
        .name()
        .strip_prefix(&format!("{service}."))
        .unwrap_or(m.name());
    let params = m.params();
    let documented = params.iter().any(|p| p.description.is_some());
    let kind = if topic.is_some() {
        "topic"
    } else if m.stream_item().is_some() {
        "stream"
    } else if m.is_notification() {
        "notify"
    } else {
        "rpc"
    };
    let _ = write!(out, "{kind} {name}(");
    if documented {
        out.push('\n');
        for p in &params {
            docs(out, p.description, depth + 1);
            indent(out, depth + 1);
            let _ = writeln!(out, "{}: {},", p.name, param_type(p.schema, p.required));
        }
        indent(out, depth);
    } else {
        let list: Vec<String> = params
            .iter()
            .map(|p| format!("{}: {}", p.name, param_type(p.schema, p.required)))
            .collect();
        out.push_str(&list.join(", "));
    }
    out.push(')');
    let returns = match m.stream_item() {
        Some(item) => Some(item),
        None => m.value.get("result").map(|r| &r["schema"]),
    };
    if let Some(schema) = returns {
        if schema.get("type").and_then(Value::as_str) != Some("null") {
            let _ = write!(out, " -> {}", type_name(schema));
        }
    }
    if let Some(error) = desc.error_type(m) {
        let _ = write!(out, " throws {error}");
    }
    out.push_str(";\n");
}

fn param_type(schema: &Value, required: bool) -> String {
    let mut ty = type_name(schema);
    if !required && !ty.ends_with('?') {
        ty.push('?');
    }
    ty
}
