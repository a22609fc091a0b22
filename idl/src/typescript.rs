//! The TypeScript generator behind `wirecall gen ts`: types that match the JSON mapping
//! exactly, a client class per service, an interface for `client { … }` methods, and error
//! classes. The generated module imports the runtime ([`RUNTIME`], written beside it as
//! [`RUNTIME_FILE`]) as `./wirecall.js`.
//!
//! The mapping (see `docs/IDL.md`, "TypeScript"):
//!
//! | IDL | TypeScript |
//! |---|---|
//! | `bool` | `boolean` |
//! | integers, `f32`, `f64` | `number` (JavaScript numbers are exact up to 2^53) |
//! | `string` | `string` |
//! | `bytes` | `wc.Base64` (a base64 `string`; `toBase64`/`fromBase64` convert) |
//! | `json` | `wc.JsonValue` |
//! | `list<T>` | `T[]` |
//! | `map<string, T>` | `{ [key: string]: T }` |
//! | field `f: T?` | `f?: T` (omitted when absent) |
//! | `T?` elsewhere | `T \| null` |
//! | struct | `interface` |
//! | enum of unit variants | union of string literals, plus a `const` object of the values |
//! | enum with fields | union of `{ kind: "Variant", …fields }` interfaces in a namespace |
//! | error | class extending `wc.RpcError` with a typed `variant` |
//!
//! Names: types keep their Rust names (`UpperCamelCase`); methods and parameters become
//! `lowerCamelCase`; fields and wire names stay as written in the IDL, since they are JSON.

use std::fmt::Write as _;

use heck::ToLowerCamelCase;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::load::Loaded;
use crate::model::*;
use crate::naming;

/// The runtime module every generated file imports.
pub const RUNTIME: &str = include_str!("ts/wirecall.ts");

/// The file name of [`RUNTIME`] next to the generated code.
pub const RUNTIME_FILE: &str = "wirecall.ts";

/// Words that cannot name a parameter in TypeScript (reserved words, strict mode included).
const RESERVED: &[&str] = &[
    "arguments",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Global names the generated code refers to, which a type of the same name would hide.
const GLOBALS: &[&str] = &["Promise"];

/// The TypeScript module for a loaded interface. `source` names the `.wire` file in the
/// header. Fails with diagnostics for names TypeScript cannot take. The module imports the
/// runtime from `./wirecall.js` (the copy written next to it).
pub fn generate(loaded: &Loaded, source: &str) -> Result<String, Diagnostics> {
    generate_importing(loaded, source, "./wirecall.js")
}

/// [`generate`], importing the runtime from `runtime` instead: e.g. the npm package of
/// `clients/typescript` (`@wirecall/client`).
pub fn generate_importing(
    loaded: &Loaded,
    source: &str,
    runtime: &str,
) -> Result<String, Diagnostics> {
    let items = check(&loaded.schema);
    if !items.is_empty() {
        return Err(Diagnostics {
            items,
            sources: loaded.sources.clone(),
        });
    }
    Ok(module(&loaded.schema, source, runtime))
}

/// The names the generated TypeScript cannot take (everything else was validated already).
fn check(schema: &Schema) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for t in &schema.types {
        let name = naming::type_name(&t.name().name);
        if GLOBALS.contains(&name.as_str()) {
            out.push(
                Diagnostic::error(
                    t.name().span,
                    format!("a type named `{name}` would hide TypeScript's global `{name}`"),
                )
                .with_help("rename the type"),
            );
        }
    }
    for s in &schema.services {
        for m in &s.methods {
            if method_name(&m.name.name) == "constructor" {
                out.push(
                    Diagnostic::error(
                        m.name.span,
                        "a method named `constructor` cannot be a method of a TypeScript class",
                    )
                    .with_help("rename the method (its wire name can stay, with @name(\"…\"))"),
                );
            }
        }
    }
    out
}

fn module(schema: &Schema, source: &str, runtime: &str) -> String {
    let mut body = String::new();
    for t in &schema.types {
        match t {
            TypeDef::Struct(s) => struct_def(&mut body, s),
            TypeDef::Enum(e) => enum_def(&mut body, e),
            TypeDef::Error(e) => error_def(&mut body, e),
        }
    }
    for s in &schema.services {
        service(&mut body, s);
    }
    let mut out = format!(
        "// @generated by wirecall gen ts from {source}. Do not edit: change the .wire file instead.\n\
         /* eslint-disable */\n"
    );
    if body.contains("wc.") {
        out.push_str(&format!("import * as wc from {runtime:?};\n"));
    }
    out.push_str(&body);
    out
}

/// A JSDoc comment from doc lines, plus `@deprecated` and extra tags; nothing if empty.
fn jsdoc(out: &mut String, indent: &str, docs: &Docs, attrs: &Attributes, tags: &[String]) {
    let mut lines: Vec<String> = docs.0.clone();
    if let Some(note) = attrs.deprecated() {
        lines.push(if note.is_empty() {
            "@deprecated".into()
        } else {
            format!("@deprecated {note}")
        });
    }
    lines.extend(tags.iter().cloned());
    if lines.is_empty() {
        return;
    }
    let lines: Vec<String> = lines.iter().map(|l| l.replace("*/", "*\\/")).collect();
    if lines.len() == 1 {
        let _ = writeln!(out, "{indent}/** {} */", lines[0].trim());
        return;
    }
    let _ = writeln!(out, "{indent}/**");
    for l in &lines {
        if l.trim().is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {l}");
        }
    }
    let _ = writeln!(out, "{indent} */");
}

fn no_attrs() -> Attributes {
    Attributes::default()
}

/// A JSON string literal (TypeScript string literals accept JSON's escapes).
fn string_lit(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The TypeScript type of `ty` where absence is a `null` (lists, maps, results).
fn ts_type(ty: &Type) -> String {
    match &ty.kind {
        TypeKind::Bool => "boolean".into(),
        TypeKind::I8
        | TypeKind::I16
        | TypeKind::I32
        | TypeKind::I64
        | TypeKind::U8
        | TypeKind::U16
        | TypeKind::U32
        | TypeKind::U64
        | TypeKind::F32
        | TypeKind::F64 => "number".into(),
        TypeKind::String => "string".into(),
        TypeKind::Bytes => "wc.Base64".into(),
        TypeKind::Json => "wc.JsonValue".into(),
        TypeKind::List(t) => {
            let inner = ts_type(t);
            if inner.contains(' ') {
                format!("({inner})[]")
            } else {
                format!("{inner}[]")
            }
        }
        // A unit enum's variants key it: not every variant need be there.
        TypeKind::Map(k, v) if matches!(k.kind, TypeKind::Named(_)) => {
            format!("Partial<Record<{}, {}>>", ts_type(k), ts_type(v))
        }
        TypeKind::Map(_, v) => format!("{{ [key: string]: {} }}", ts_type(v)),
        TypeKind::Optional(t) => format!("{} | null", ts_type(t)),
        TypeKind::Named(n) => naming::type_name(n),
        TypeKind::Rust(_) => "unknown".into(),
    }
}

/// An interface member for a field: optional fields are `name?: T`.
fn field_member(out: &mut String, indent: &str, f: &Field) {
    jsdoc(out, indent, &f.docs, &f.attrs, &[]);
    match &f.ty.kind {
        TypeKind::Optional(t) => {
            let _ = writeln!(out, "{indent}{}?: {};", f.name.name, ts_type(t));
        }
        _ => {
            let _ = writeln!(out, "{indent}{}: {};", f.name.name, ts_type(&f.ty));
        }
    }
}

/// An object type of fields, on one line when empty.
fn object_type(out: &mut String, indent: &str, lead: &[String], fields: &[Field]) {
    if lead.is_empty() && fields.is_empty() {
        out.push_str("{ [key: string]: never }");
        return;
    }
    out.push_str("{\n");
    let inner = format!("{indent}  ");
    for l in lead {
        let _ = writeln!(out, "{inner}{l}");
    }
    for f in fields {
        field_member(out, &inner, f);
    }
    let _ = write!(out, "{indent}}}");
}

fn struct_def(out: &mut String, s: &Struct) {
    let name = naming::type_name(&s.name.name);
    out.push('\n');
    jsdoc(out, "", &s.docs, &s.attrs, &[]);
    let _ = write!(out, "export interface {name} ");
    if s.fields.is_empty() {
        out.push_str("{}\n");
        return;
    }
    object_type(out, "", &[], &s.fields);
    out.push('\n');
}

fn enum_def(out: &mut String, e: &Enum) {
    let name = naming::type_name(&e.name.name);
    out.push('\n');
    jsdoc(out, "", &e.docs, &e.attrs, &[]);
    if e.variants.is_empty() {
        let _ = writeln!(out, "export type {name} = never;");
        return;
    }
    if e.variants.iter().all(|v| v.fields.is_none()) {
        let union: Vec<String> = e
            .variants
            .iter()
            .map(|v| string_lit(&v.name.name))
            .collect();
        // An `@open` enum may carry variants this version does not know.
        let open = if e.attrs.has(AttributeKind::Open) {
            " | (string & {})"
        } else {
            ""
        };
        let _ = writeln!(out, "export type {name} = {}{open};", union.join(" | "));
        let _ = writeln!(out, "/** The values of `{name}`. */");
        let _ = writeln!(out, "export const {name} = {{");
        for v in &e.variants {
            jsdoc(out, "  ", &v.docs, &v.attrs, &[]);
            let _ = writeln!(out, "  {}: {},", v.name.name, string_lit(&v.name.name));
        }
        let _ = writeln!(out, "}} as const;");
        return;
    }
    let members: Vec<String> = e
        .variants
        .iter()
        .map(|v| format!("{name}.{}", naming::type_name(&v.name.name)))
        .collect();
    let _ = writeln!(out, "export type {name} = {};", members.join(" | "));
    let _ = writeln!(
        out,
        "/** The variants of `{name}`, tagged by `{}`. */",
        naming::ENUM_TAG
    );
    let _ = writeln!(out, "export namespace {name} {{");
    for v in &e.variants {
        jsdoc(out, "  ", &v.docs, &v.attrs, &[]);
        let _ = write!(
            out,
            "  export interface {} ",
            naming::type_name(&v.name.name)
        );
        let tag = format!("{}: {};", naming::ENUM_TAG, string_lit(&v.name.name));
        object_type(out, "  ", &[tag], v.fields.as_deref().unwrap_or(&[]));
        out.push('\n');
    }
    let _ = writeln!(out, "}}");
}

fn error_def(out: &mut String, e: &ErrorDef) {
    let name = naming::type_name(&e.name.name);
    let variants: Vec<String> = e
        .variants
        .iter()
        .map(|v| format!("{name}.{}", naming::type_name(&v.name.name)))
        .collect();
    let union = if variants.is_empty() {
        "never".to_string()
    } else {
        variants.join(" | ")
    };
    out.push('\n');
    jsdoc(out, "", &e.docs, &e.attrs, &[]);
    let _ = writeln!(out, "export class {name} extends wc.RpcError {{");
    let _ = writeln!(out, "  /** The error codes of the variants. */");
    let _ = writeln!(out, "  static readonly codes = {{");
    for v in &e.variants {
        let _ = writeln!(out, "    {}: {},", v.name.name, v.code.value.unwrap_or(0));
    }
    let _ = writeln!(out, "  }} as const;");
    let _ = writeln!(out, "  /** Which error this is, with its fields. */");
    let _ = writeln!(out, "  readonly variant: {union};");
    out.push('\n');
    let _ = writeln!(out, "  constructor(variant: {union}) {{");
    let _ = writeln!(
        out,
        "    super({name}.codes[variant.kind], variant.kind, \"data\" in variant ? variant.data : undefined);"
    );
    let _ = writeln!(out, "    this.name = {};", string_lit(&name));
    let _ = writeln!(out, "    this.variant = variant;");
    let _ = writeln!(out, "  }}");
    out.push('\n');
    let _ = writeln!(
        out,
        "  /** The typed error of an error answer, or `undefined` if its code is not one of these. */"
    );
    let _ = writeln!(
        out,
        "  static fromRpc(this: void, error: wc.RpcError): {name} | undefined {{"
    );
    let _ = writeln!(out, "    switch (error.code) {{");
    for v in &e.variants {
        let vname = naming::type_name(&v.name.name);
        let kind = string_lit(&v.name.name);
        let _ = writeln!(out, "      case {}:", v.code.value.unwrap_or(0));
        if v.fields.is_some() {
            let _ = writeln!(
                out,
                "        return new {name}({{ kind: {kind}, data: (error.data ?? {{}}) as unknown as {name}.{vname}[\"data\"] }});"
            );
        } else {
            let _ = writeln!(out, "        return new {name}({{ kind: {kind} }});");
        }
    }
    let _ = writeln!(out, "      default:");
    let _ = writeln!(out, "        return undefined;");
    let _ = writeln!(out, "    }}");
    let _ = writeln!(out, "  }}");
    let _ = writeln!(out, "}}");
    let _ = writeln!(
        out,
        "/** The variants of `{name}`; fields travel in the error's `data`. */"
    );
    let _ = writeln!(out, "export namespace {name} {{");
    for v in &e.variants {
        let vname = naming::type_name(&v.name.name);
        let code = v.code.value.unwrap_or(0);
        jsdoc(out, "  ", &v.docs, &v.attrs, &[format!("Code {code}.")]);
        let _ = write!(out, "  export interface {vname} ");
        let mut lead = vec![format!("kind: {};", string_lit(&v.name.name))];
        match &v.fields {
            None => {
                object_type(out, "  ", &lead, &[]);
            }
            Some(fields) => {
                let mut data = String::from("data: ");
                object_type(&mut data, "    ", &[], fields);
                data.push(';');
                lead.push(data);
                object_type(out, "  ", &lead, &[]);
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "}}");
}

/// The TypeScript name of a method.
fn method_name(name: &str) -> String {
    let converted = name.to_lower_camel_case();
    if converted.is_empty() {
        name.to_string()
    } else {
        converted
    }
}

/// TypeScript parameter names of a method: `lowerCamelCase`, never a reserved word and
/// never `options` (the trailing call options).
fn param_names(params: &[Param]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in params {
        let mut name = method_name(&p.name.name);
        while RESERVED.contains(&name.as_str()) || name == "options" || names.contains(&name) {
            name.push('_');
        }
        names.push(name);
    }
    names
}

/// `(a: number, b?: string | undefined, …`: optional parameters may be left out when
/// all that follow are optional too.
fn param_list(params: &[Param], names: &[String]) -> Vec<String> {
    let mut trailing_optional = true;
    let mut out: Vec<String> = Vec::new();
    for (p, name) in params.iter().zip(names).rev() {
        let item = match &p.ty.kind {
            TypeKind::Optional(t) if trailing_optional => format!("{name}?: {}", ts_type(t)),
            TypeKind::Optional(t) => format!("{name}: {} | undefined", ts_type(t)),
            _ => {
                trailing_optional = false;
                format!("{name}: {}", ts_type(&p.ty))
            }
        };
        out.push(item);
    }
    out.reverse();
    out
}

/// `{ a, every_ms: everyMs }`: the params object, keyed by IDL names.
fn params_object(params: &[Param], names: &[String]) -> String {
    if params.is_empty() {
        return "{}".into();
    }
    let members: Vec<String> = params
        .iter()
        .zip(names)
        .map(|(p, n)| {
            if &p.name.name == n {
                n.clone()
            } else {
                format!("{}: {n}", p.name.name)
            }
        })
        .collect();
    format!("{{ {} }}", members.join(", "))
}

fn param_tags(params: &[Param], names: &[String]) -> Vec<String> {
    params
        .iter()
        .zip(names)
        .filter(|(p, _)| !p.docs.is_empty())
        .map(|(p, n)| format!("@param {n} {}", p.docs.0.join(" ")))
        .collect()
}

fn returns(m: &Method) -> String {
    m.returns.as_ref().map_or("void".into(), ts_type)
}

fn service(out: &mut String, s: &Service) {
    let name = naming::type_name(&s.name.name);
    let [client, callbacks, _, _] = naming::service_items(&s.name.name);
    out.push('\n');
    let mut docs = s.docs.clone();
    if !docs.is_empty() {
        docs.0.push(String::new());
    }
    docs.0.push(format!(
        "The typed client of `{name}`: `new {client}(wc.connect(url))`."
    ));
    jsdoc(out, "", &docs, &s.attrs, &[]);
    let _ = writeln!(out, "export class {client} {{");
    let _ = writeln!(out, "  readonly #caller: wc.Caller;");
    out.push('\n');
    let _ = writeln!(
        out,
        "  /** Calls `{name}` through `caller` (a `wc.Client` from `wc.connect`). */"
    );
    let _ = writeln!(out, "  constructor(caller: wc.Caller) {{");
    let _ = writeln!(out, "    this.#caller = caller;");
    let _ = writeln!(out, "  }}");
    for m in s.server_methods() {
        out.push('\n');
        client_method(out, s, m);
    }
    let client_methods: Vec<&Method> = s.client_methods().collect();
    if !client_methods.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "  /** The handlers of `{callbacks}` for `wc.connect(url, {{ handlers }})` or `client.handle`. */"
        );
        let _ = writeln!(out, "  static callbacks(impl: {callbacks}): wc.Handlers {{");
        let _ = writeln!(out, "    return {{");
        for m in &client_methods {
            let spec: Vec<String> = m
                .params
                .iter()
                .map(|p| {
                    let optional = matches!(p.ty.kind, TypeKind::Optional(_));
                    format!("[{}, {optional}]", string_lit(&p.name.name))
                })
                .collect();
            let args: Vec<String> = m
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let ty = match &p.ty.kind {
                        TypeKind::Optional(t) => format!("{} | undefined", ts_type(t)),
                        _ => ts_type(&p.ty),
                    };
                    format!("args[{i}] as {ty}")
                })
                .collect();
            let _ = writeln!(out, "      {}: {{", string_lit(&m.wire_name(s)));
            let _ = writeln!(out, "        params: [{}],", spec.join(", "));
            let arg_name = if m.params.is_empty() { "_args" } else { "args" };
            let _ = writeln!(
                out,
                "        run: ({arg_name}: unknown[]) => impl.{}({}),",
                method_name(&m.name.name),
                args.join(", ")
            );
            let _ = writeln!(out, "      }},");
        }
        let _ = writeln!(out, "    }};");
        let _ = writeln!(out, "  }}");
    }
    let _ = writeln!(out, "}}");

    if !client_methods.is_empty() {
        out.push('\n');
        let docs = Docs(vec![
            format!("What the `{name}` server may call on a connected client (its `client {{ … }}` block)."),
            format!("Implement it and pass `{client}.callbacks(impl)` as the client's handlers;"),
            "a method may throw the typed error it declares.".to_string(),
        ]);
        jsdoc(out, "", &docs, &no_attrs(), &[]);
        let _ = writeln!(out, "export interface {callbacks} {{");
        for m in &client_methods {
            let names = param_names(&m.params);
            jsdoc(out, "  ", &m.docs, &m.attrs, &param_tags(&m.params, &names));
            let ret = match m.kind {
                MethodKind::Notify => "void".to_string(),
                _ => returns(m),
            };
            let _ = writeln!(
                out,
                "  {}({}): {ret} | Promise<{ret}>;",
                method_name(&m.name.name),
                param_list(&m.params, &names).join(", ")
            );
        }
        let _ = writeln!(out, "}}");
    }
}

fn client_method(out: &mut String, s: &Service, m: &Method) {
    let names = param_names(&m.params);
    let mut tags = param_tags(&m.params, &names);
    match m.kind {
        MethodKind::Rpc => {
            if let Some(e) = &m.throws {
                tags.push(format!(
                    "@throws {{{}}} the method's typed error",
                    naming::type_name(&e.name)
                ));
            }
        }
        MethodKind::Notify => tags.push("A notification: the server never answers it.".into()),
        MethodKind::Stream => tags.push(
            "A stream: iterate it with `for await`; breaking out (or `options.signal`) unsubscribes.".into(),
        ),
        MethodKind::Topic => tags.push(
            "A topic: iterate it with `for await`; after a reconnect it resumes where it was (`$since`), and a gap is thrown as `wc.GapError` (or given to `options.onGap`).".into(),
        ),
    }
    jsdoc(out, "  ", &m.docs, &m.attrs, &tags);
    let mut list = param_list(&m.params, &names);
    list.push(
        match m.kind {
            MethodKind::Rpc | MethodKind::Notify => "options?: wc.CallOptions",
            MethodKind::Stream => "options?: wc.StreamOptions",
            MethodKind::Topic => "options?: wc.TopicOptions",
        }
        .into(),
    );
    let wire = string_lit(&m.wire_name(s));
    let params = params_object(&m.params, &names);
    let mut extra = Vec::new();
    if m.is_idempotent() {
        extra.push("idempotent: true".to_string());
    }
    if let Some(e) = &m.throws {
        extra.push(format!("mapError: {}.fromRpc", naming::type_name(&e.name)));
    }
    if m.kind == MethodKind::Topic {
        // `ready` waits for the topic's start position.
        extra.push("topic: true".to_string());
    }
    let opts = if extra.is_empty() {
        "options".to_string()
    } else {
        format!("{{ ...options, {} }}", extra.join(", "))
    };
    let name = method_name(&m.name.name);
    match m.kind {
        MethodKind::Rpc => {
            let ret = returns(m);
            let _ = writeln!(out, "  {name}({}): Promise<{ret}> {{", list.join(", "));
            let _ = writeln!(
                out,
                "    return this.#caller.call<{ret}>({wire}, {params}, {opts});"
            );
        }
        MethodKind::Notify => {
            let _ = writeln!(out, "  {name}({}): Promise<void> {{", list.join(", "));
            let _ = writeln!(
                out,
                "    return this.#caller.notify({wire}, {params}, options);"
            );
        }
        MethodKind::Stream | MethodKind::Topic => {
            let ret = returns(m);
            let _ = writeln!(
                out,
                "  {name}({}): wc.Subscription<{ret}> {{",
                list.join(", ")
            );
            let _ = writeln!(
                out,
                "    return this.#caller.subscribe<{ret}>({wire}, {params}, {opts});"
            );
        }
    }
    let _ = writeln!(out, "  }}");
}
