//! How IDL names become Rust names. Validation and the code generator share these rules, so
//! a collision in generated code is reported on the user's text before any code exists.
//!
//! - Types and variants become `UpperCamelCase`; fields, params and methods `snake_case`.
//!   Where that changes a field's or variant's name, the JSON name stays the IDL name.
//! - A name that is a Rust keyword becomes a raw identifier (`type` → `r#type`), except the
//!   few that cannot be raw (`self`, `Self`, `super`, `crate`, `_`), which are rejected —
//!   also when the case conversion makes them (`SELF` → `Self`, `self_` → `self`), and so
//!   is a name that the conversion leaves starting with a digit (`_1` → `1`).
//! - TypeScript: methods and parameters become `lowerCamelCase` ([`ts_value_name`]).
//! - Each service `S` also defines `SClient` (the client stub), `SCallbacks` (the trait a
//!   client implements for `client { … }` methods), `SCallbacksClient` (the server's
//!   handle to call them) and `STopics` (the publishers of its topics).

use heck::{ToLowerCamelCase, ToSnakeCase, ToUpperCamelCase};

/// Rust keywords that can be written as raw identifiers (`r#type`).
const RAW_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// Names that cannot be Rust identifiers at all, not even raw ones.
pub const FORBIDDEN: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Parameter names the generated code uses itself.
pub const RESERVED_PARAMS: &[&str] = &["ctx"];

/// Method names the generated code uses itself: the client stubs' `new`, `with_timeout`
/// and `caller`, and the traits' `into_router`.
pub const RESERVED_METHODS: &[&str] = &["new", "with_timeout", "caller", "into_router"];

/// The most parameters a method may have.
pub const MAX_PARAMS: usize = 16;

/// The tag key of enums with fields (`{"kind": "Circle", …}`).
pub const ENUM_TAG: &str = "kind";

/// `true` if `name` must be written `r#name` in Rust.
pub fn is_raw_keyword(name: &str) -> bool {
    RAW_KEYWORDS.contains(&name)
}

/// The Rust name of a struct, enum, error, variant or service.
pub fn type_name(name: &str) -> String {
    let converted = name.to_upper_camel_case();
    if converted.is_empty() {
        name.to_string()
    } else {
        converted
    }
}

/// The Rust name of a field, parameter or method (without `r#`).
pub fn value_name(name: &str) -> String {
    let converted = name.to_snake_case();
    if converted.is_empty() {
        name.to_string()
    } else {
        converted
    }
}

/// The Rust name of the server trait's authorization hook of topic `topic`:
/// `authorize_<topic>` (reserved: a method of that name is an error).
pub fn authorize_hook(topic: &str) -> String {
    format!("authorize_{}", value_name(topic))
}

/// Why `rust`, the Rust name an IDL name converts to, cannot be a Rust identifier (even a
/// raw one); `None` if it can.
pub fn rust_ident_problem(rust: &str) -> Option<&'static str> {
    if FORBIDDEN.contains(&rust) {
        Some("a keyword Rust does not allow as a name")
    } else if rust.starts_with(|c: char| c.is_ascii_digit()) {
        Some("which is not an identifier (it starts with a digit)")
    } else {
        None
    }
}

/// The TypeScript name of a method or parameter: `lowerCamelCase`.
pub fn ts_value_name(name: &str) -> String {
    let converted = name.to_lower_camel_case();
    if converted.is_empty() {
        name.to_string()
    } else {
        converted
    }
}

/// Method names a generated TypeScript client class cannot have: `constructor` is the
/// class's own, and a `then` method would make the client "thenable" (`await client`
/// would call it).
pub const TS_RESERVED_METHODS: &[&str] = &["constructor", "then"];

/// Global names the generated TypeScript refers to, which a type of the same name would hide.
pub const TS_GLOBALS: &[&str] = &["Promise"];

/// The Rust items a service generates besides the trait named after it.
pub fn service_items(service: &str) -> [String; 4] {
    let base = type_name(service);
    [
        format!("{base}Client"),
        format!("{base}Callbacks"),
        format!("{base}CallbacksClient"),
        format!("{base}Topics"),
    ]
}

/// The variant the generated Rust code adds to an `@open` enum for variants it does not
/// know (a newer peer's).
pub const OPEN_VARIANT: &str = "Unknown";
