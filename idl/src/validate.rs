// One file, though over ~500 lines: the checks are methods of one `Validator` that walks the
// schema once and shares its state (the type table, the `Seen` namespaces, the collected
// diagnostics); the module doc below lists every check, and each check is one method, so a
// reader finds a rule by its name here. Split it by concern (names, types, methods,
// attributes) when a new group of checks arrives; the TypeScript-only checks at the end
// are the first candidate.
//! Validation of a [`Schema`]: every check of the language reference, all errors collected.
//!
//! Both front ends run it, so a `.wire` file and a `#[wirecall::service]` trait are held to
//! the same rules. Checks:
//! unknown type (with a "did you mean"), duplicate name, duplicate error code, reserved or
//! out-of-range code, unknown or misplaced attribute, a name that collides in generated
//! Rust or TypeScript code or that the case conversion turns into something Rust cannot
//! take (`SELF` → `Self`, `_1` → `1`), a wire name used twice (also across services: one
//! router may serve them all), an `error` without variants, a field named like the `kind`
//! tag, `throws` that names no `error`, `notify` with a result or `throws`, `stream`
//! without an item type, `map` keys other than `string` or a unit-only enum, and types of infinite size.

use std::collections::{HashMap, HashSet};

use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::naming;

/// Which checks apply: the `.wire` front end checks everything; the Rust front end leaves
/// named types to the Rust compiler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rules {
    /// Types and `throws` may name Rust types the schema does not declare.
    pub external_types: bool,
    /// Messages show attributes in Rust syntax (`#[wirecall(name = "…")]`) instead of
    /// IDL syntax (`@name("…")`).
    pub rust_syntax: bool,
    /// Only Rust is generated (the macro front ends): names need not work in TypeScript.
    pub rust_only: bool,
}

impl Rules {
    /// The rules of `#[wirecall::service]` and `#[wirecall::error]`.
    pub fn rust() -> Self {
        Rules {
            external_types: true,
            rust_syntax: true,
            rust_only: true,
        }
    }
}

/// Check a schema; returns every problem found, in source order where possible.
pub fn validate(schema: &Schema) -> Vec<Diagnostic> {
    validate_with(schema, &Rules::default())
}

/// [`validate`] with explicit [`Rules`].
pub fn validate_with(schema: &Schema, rules: &Rules) -> Vec<Diagnostic> {
    let mut v = Validator {
        rules: *rules,
        schema,
        types: HashMap::new(),
        diags: Vec::new(),
    };
    for t in &schema.types {
        v.types.entry(t.name().name.as_str()).or_insert(t);
    }
    v.names();
    for t in &schema.types {
        v.type_def(t);
    }
    for s in &schema.services {
        v.service(s);
    }
    v.wire_names();
    if !rules.rust_only {
        v.diags.extend(typescript(schema));
    }
    v.recursion();
    v.diags
}

/// Where an attribute appears, to check which attributes are allowed there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Type,
    Field,
    Variant,
    Service,
    Method(MethodKind),
    Param,
}

struct Validator<'a> {
    rules: Rules,
    schema: &'a Schema,
    /// Types by name (the first definition wins; duplicates are reported).
    types: HashMap<&'a str, &'a TypeDef>,
    diags: Vec<Diagnostic>,
}

/// A name seen in some namespace, to report duplicates with the first occurrence.
struct Seen<'a> {
    what: &'static str,
    first: HashMap<String, &'a Ident>,
}

impl<'a> Seen<'a> {
    fn new(what: &'static str) -> Self {
        Seen {
            what,
            first: HashMap::new(),
        }
    }

    /// Record `key` for `ident`; on a repeat, return a diagnostic pointing at `ident`.
    fn insert(
        &mut self,
        key: String,
        ident: &'a Ident,
        message: impl FnOnce(&Ident) -> String,
    ) -> Option<Diagnostic> {
        match self.first.get(&key) {
            Some(first) => Some(
                Diagnostic::error(ident.span, message(first))
                    .with_related(first.span, format!("the first {} is here", self.what)),
            ),
            None => {
                self.first.insert(key, ident);
                None
            }
        }
    }
}

impl<'a> Validator<'a> {
    /// How the user writes an attribute, in the syntax of their front end.
    fn attr_syntax(&self, kind: AttributeKind, arg: Option<&str>) -> String {
        let name = kind.as_str();
        match (self.rules.rust_syntax, arg) {
            (false, None) => format!("`@{name}`"),
            (false, Some(a)) => format!("`@{name}(\"{a}\")`"),
            (true, None) => format!("`#[wirecall({name})]`"),
            (true, Some(a)) => format!("`#[wirecall({name} = \"{a}\")]`"),
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Global names: types and services share one namespace, which also holds the items
    /// each service generates.
    fn names(&mut self) {
        let schema = self.schema;
        let mut seen: Seen<'a> = Seen::new("definition");
        let mut exact: HashSet<&str> = HashSet::new();
        let mut declared = Vec::new();
        for t in &schema.types {
            declared.push((t.name(), t.keyword()));
        }
        for s in &schema.services {
            declared.push((&s.name, "service"));
        }
        for (ident, keyword) in declared {
            let rust = naming::type_name(&ident.name);
            if self.check_ident(ident, &rust, keyword) {
                continue;
            }
            if TypeKind::primitive(&ident.name).is_some()
                || RESERVED_TYPE_NAMES.contains(&ident.name.as_str())
            {
                self.error(Diagnostic::error(
                    ident.span,
                    format!(
                        "`{}` is a built-in type name and cannot name a {keyword}",
                        ident.name
                    ),
                ));
                continue;
            }
            let first_exact = exact.insert(ident.name.as_str());
            if let Some(d) = seen.insert(rust.clone(), ident, |first| {
                if !first_exact || first.name == ident.name {
                    format!("duplicate name `{}`", ident.name)
                } else {
                    format!(
                        "`{}` and `{}` both become `{rust}` in generated Rust code",
                        first.name, ident.name
                    )
                }
            }) {
                self.error(d);
            }
        }
        // Items generated for services must not collide with declared names.
        for s in &schema.services {
            for item in naming::service_items(&s.name.name) {
                if let Some(first) = seen.first.get(&item) {
                    let d = Diagnostic::error(
                        first.span,
                        format!(
                            "`{}` collides with the `{item}` that service `{}` generates",
                            first.name, s.name.name
                        ),
                    )
                    .with_help(format!(
                        "rename `{}` or service `{}`",
                        first.name, s.name.name
                    ));
                    self.error(d);
                }
            }
        }
    }

    /// A name that Rust cannot express at all, or one reserved for generated code, also
    /// once converted to `rust` (its Rust spelling). Returns `true` if it reported one.
    fn check_ident(&mut self, ident: &Ident, rust: &str, what: &str) -> bool {
        let before = self.diags.len();
        if naming::FORBIDDEN.contains(&ident.name.as_str()) {
            self.error(Diagnostic::error(
                ident.span,
                format!(
                    "`{}` cannot be used as a {what} name: it is reserved in Rust",
                    ident.name
                ),
            ));
        } else if ident.name.starts_with("__") {
            self.error(Diagnostic::error(
                ident.span,
                format!(
                    "`{}`: names starting with `__` are reserved for generated code",
                    ident.name
                ),
            ));
        } else if let Some(why) = naming::rust_ident_problem(rust) {
            self.error(
                Diagnostic::error(
                    ident.span,
                    format!(
                        "the {what} name `{}` becomes `{rust}` in generated Rust code, {why}",
                        ident.name
                    ),
                )
                .with_help(format!("rename the {what}")),
            );
        }
        self.diags.len() > before
    }

    fn type_def(&mut self, t: &'a TypeDef) {
        self.attributes(t.attrs(), Place::Type);
        if let Some(open) = t.attrs().get(AttributeKind::Open) {
            match t {
                TypeDef::Enum(e) => {
                    if let Some(v) = e.variants.iter().find(|v| v.name.name == naming::OPEN_VARIANT) {
                        self.error(
                            Diagnostic::error(
                                v.name.span,
                                format!("an `@open` enum cannot declare a variant named `{}`", naming::OPEN_VARIANT),
                            )
                            .with_help("the generated code adds that variant for the values this version does not know; rename this one"),
                        );
                    }
                }
                other => self.error(
                    Diagnostic::error(
                        open.span,
                        format!("`@open` is not allowed on a {}", other.keyword()),
                    )
                    .with_help("`@open` says an enum may grow (receivers accept unknown variants); structs take new optional fields and errors new variants without it"),
                ),
            }
        }
        match t {
            TypeDef::Struct(s) => self.fields(&s.fields, "field", None),
            TypeDef::Enum(e) => {
                let mut seen = Seen::new("variant");
                for v in &e.variants {
                    self.variant_name(&mut seen, &v.name);
                    self.attributes(&v.attrs, Place::Variant);
                    if let Some(fields) = &v.fields {
                        self.fields(fields, "field", Some("enum"));
                    }
                }
            }
            TypeDef::Error(e) => {
                if e.variants.is_empty() {
                    let example = if self.rules.rust_syntax {
                        "a variant `#[wirecall(code = 1001)] Failed`".to_string()
                    } else {
                        format!("`error {} {{ Failed = 1001 }}`", e.name.name)
                    };
                    self.error(
                        Diagnostic::error(
                            e.name.span,
                            format!("error `{}` has no variants", e.name.name),
                        )
                        .with_help(format!(
                            "an error declares the failures a method may answer with, each with its code: {example}"
                        )),
                    );
                }
                let mut seen = Seen::new("variant");
                let mut codes: HashMap<i64, &ErrorVariant> = HashMap::new();
                for v in &e.variants {
                    self.variant_name(&mut seen, &v.name);
                    self.attributes(&v.attrs, Place::Variant);
                    if let Some(fields) = &v.fields {
                        self.fields(fields, "field", Some("error"));
                    }
                    self.error_code(v, &mut codes);
                }
            }
        }
    }

    fn variant_name(&mut self, seen: &mut Seen<'a>, name: &'a Ident) {
        let rust = naming::type_name(&name.name);
        if self.check_ident(name, &rust, "variant") {
            return;
        }
        if let Some(d) = seen.insert(rust.clone(), name, |first| {
            collision("variant", first, name, &rust)
        }) {
            self.error(d);
        }
    }

    fn error_code(&mut self, v: &'a ErrorVariant, codes: &mut HashMap<i64, &'a ErrorVariant>) {
        let span = v.code.span;
        let Some(code) = v.code.value.filter(|c| i32::try_from(*c).is_ok()) else {
            self.error(
                Diagnostic::error(span, "error code out of range")
                    .with_help("JSON-RPC error codes are 32-bit integers"),
            );
            return;
        };
        if (-32768..=-32000).contains(&code) {
            self.error(
                Diagnostic::error(
                    span,
                    format!("error code {code} is reserved by JSON-RPC 2.0"),
                )
                .with_help("application error codes must lie outside -32768..=-32000"),
            );
            return;
        }
        match codes.get(&code) {
            Some(first) => {
                let d = Diagnostic::error(span, format!("duplicate error code {code}"))
                    .with_related(
                        first.code.span,
                        format!("`{}` uses it here", first.name.name),
                    );
                self.error(d);
            }
            None => {
                codes.insert(code, v);
            }
        }
    }

    /// Fields of a struct or variant: unique names (also after Rust renaming), known types.
    /// `tagged` names the owner (`enum` or `error`) of a variant's fields: they live next to
    /// its `kind` tag.
    fn fields(&mut self, fields: &'a [Field], what: &'static str, tagged: Option<&str>) {
        let mut seen = Seen::new(what);
        for f in fields {
            self.value_ident(&mut seen, &f.name, what);
            if let Some(owner) = tagged.filter(|_| f.name.name == naming::ENUM_TAG) {
                let help = match owner {
                    "enum" => format!(
                        "enum variants with fields are tagged `{{\"{}\": \"Variant\", …}}` in JSON; rename the field",
                        naming::ENUM_TAG
                    ),
                    _ => format!(
                        "the generated error type serializes (with serde) as `{{\"{}\": \"Variant\", …fields}}`; rename the field",
                        naming::ENUM_TAG
                    ),
                };
                self.error(
                    Diagnostic::error(
                        f.name.span,
                        format!(
                            "a field named `{}` collides with the {owner}'s tag",
                            f.name.name
                        ),
                    )
                    .with_help(help),
                );
            }
            self.attributes(&f.attrs, Place::Field);
            self.type_ref(&f.ty);
        }
    }

    /// A field, param or method name: unique, also once converted to `snake_case`.
    fn value_ident(&mut self, seen: &mut Seen<'a>, ident: &'a Ident, what: &'static str) {
        let rust = naming::value_name(&ident.name);
        if self.check_ident(ident, &rust, what) {
            return;
        }
        if let Some(d) = seen.insert(rust.clone(), ident, |first| {
            collision(what, first, ident, &rust)
        }) {
            self.error(d);
        }
    }

    fn service(&mut self, s: &'a Service) {
        self.attributes(&s.attrs, Place::Service);
        // Rust names are unique per direction (server trait / callbacks trait).
        for direction in [Direction::ToServer, Direction::ToClient] {
            let mut names = Seen::new("method");
            for m in s.methods.iter().filter(|m| m.direction == direction) {
                self.value_ident(&mut names, &m.name, "method");
            }
        }
        self.hook_names(s);
        for m in &s.methods {
            self.method(m);
        }
    }

    /// Each topic gives the server trait an `authorize_<topic>` hook: a method of the same
    /// Rust name would be a second item of that name in the trait.
    fn hook_names(&mut self, s: &'a Service) {
        let server = || {
            s.methods
                .iter()
                .filter(|m| m.direction == Direction::ToServer)
        };
        for topic in server().filter(|m| m.kind == MethodKind::Topic) {
            let hook = naming::authorize_hook(&topic.name.name);
            for m in server().filter(|m| m.kind != MethodKind::Topic) {
                if naming::value_name(&m.name.name) != hook {
                    continue;
                }
                let d = Diagnostic::error(
                    m.name.span,
                    format!(
                        "method `{}` collides with `{hook}`, the authorization hook that topic `{}` generates in the server trait",
                        m.name.name, topic.name.name
                    ),
                )
                .with_related(topic.name.span, "the topic is here")
                .with_help(format!(
                    "names `authorize_<topic>` are reserved for the topics' hooks; rename the method and keep its wire name with {}",
                    self.attr_syntax(AttributeKind::Name, Some("…"))
                ));
                self.error(d);
            }
        }
    }

    /// Wire names are unique per direction across all services: one router may serve
    /// every service of the file (`Router::merge`), and each side routes its own methods.
    fn wire_names(&mut self) {
        let schema = self.schema;
        for direction in [Direction::ToServer, Direction::ToClient] {
            let mut wire: HashMap<String, (&Service, &Method)> = HashMap::new();
            for s in &schema.services {
                for m in s.methods.iter().filter(|m| m.direction == direction) {
                    let mut wire_names = vec![m.wire_name(s)];
                    if m.kind.is_subscription() {
                        wire_names.push(format!("{}.unsubscribe", wire_names[0]));
                    }
                    for w in wire_names {
                        match wire.get(&w) {
                            // The same method twice is a duplicate name, reported as such.
                            Some((fs, first))
                                if fs.name.name == s.name.name
                                    && first.name.name == m.name.name => {}
                            Some((fs, first)) => {
                                let message = if fs.name.name == s.name.name {
                                    format!(
                                        "method `{}` has the wire name `{w}`, which method `{}` already uses",
                                        m.name.name, first.name.name
                                    )
                                } else {
                                    format!(
                                        "method `{}` of service `{}` has the wire name `{w}`, which method `{}` of service `{}` already uses",
                                        m.name.name, s.name.name, first.name.name, fs.name.name
                                    )
                                };
                                let mut d = Diagnostic::error(m.name.span, message)
                                    .with_related(first.name.span, "the other method is here");
                                if fs.name.name != s.name.name {
                                    d = d.with_note("wire names must be unique across services: one router may serve them all (`Router::merge` refuses a name twice)");
                                }
                                self.error(d);
                            }
                            None => {
                                wire.insert(w, (s, m));
                            }
                        }
                    }
                }
            }
        }
    }

    fn method(&mut self, m: &'a Method) {
        self.attributes(&m.attrs, Place::Method(m.kind));
        if let Some(attr) = m.attrs.get(AttributeKind::Name) {
            if let Some((wire, span)) = &attr.arg {
                if wire.is_empty() || wire.chars().any(char::is_whitespace) {
                    self.error(Diagnostic::error(
                        *span,
                        "a wire name must be non-empty and contain no whitespace",
                    ));
                } else if wire.starts_with("rpc.") || wire.starts_with("$/") {
                    self.error(
                        Diagnostic::error(*span, format!("the wire name `{wire}` is reserved"))
                            .with_note("JSON-RPC 2.0 reserves names starting with `rpc.`; wirecall reserves `$/`"),
                    );
                }
            }
        }
        if naming::RESERVED_METHODS.contains(&naming::value_name(&m.name.name).as_str()) {
            self.error(
                Diagnostic::error(
                    m.name.span,
                    format!("the method name `{}` is reserved", m.name.name),
                )
                .with_help(format!(
                    "generated code uses {}; rename the method and keep its wire name with {}",
                    naming::RESERVED_METHODS
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.attr_syntax(AttributeKind::Name, Some("…")),
                )),
            );
        }
        if m.params.len() > naming::MAX_PARAMS {
            self.error(
                Diagnostic::error(
                    m.name.span,
                    format!(
                        "method `{}` has {} parameters; at most {} are supported",
                        m.name.name,
                        m.params.len(),
                        naming::MAX_PARAMS
                    ),
                )
                .with_help("group parameters in a struct"),
            );
        }
        let mut seen = Seen::new("parameter");
        for p in &m.params {
            self.value_ident(&mut seen, &p.name, "parameter");
            let rust = naming::value_name(&p.name.name);
            if naming::RESERVED_PARAMS.contains(&rust.as_str()) {
                let message = if rust == p.name.name {
                    format!("the parameter name `{}` is reserved", p.name.name)
                } else {
                    format!(
                        "the parameter name `{}` becomes `{rust}` in generated Rust code, which is reserved",
                        p.name.name
                    )
                };
                self.error(
                    Diagnostic::error(p.name.span, message)
                    .with_help("generated handlers take the call context under this name; rename the parameter"),
                );
            }
            self.attributes(&p.attrs, Place::Param);
            self.type_ref(&p.ty);
        }
        if let Some(ret) = &m.returns {
            self.type_ref(ret);
        }
        match m.kind {
            MethodKind::Notify => {
                if let Some(ret) = &m.returns {
                    self.error(
                        Diagnostic::error(ret.span, "a `notify` method cannot return a value")
                            .with_help(
                                "notifications are never answered; use `rpc` to get a result",
                            ),
                    );
                }
                if let Some(t) = &m.throws {
                    self.error(
                        Diagnostic::error(t.span, "a `notify` method cannot throw")
                            .with_help("notifications are never answered, so an error cannot reach the caller; use `rpc`"),
                    );
                }
            }
            MethodKind::Stream => {
                if m.direction == Direction::ToClient {
                    self.error(
                        Diagnostic::error(m.name.span, "a `client { … }` block cannot declare a `stream`")
                            .with_help("streams flow from the server to the client; declare it in the service body"),
                    );
                }
                if m.returns.is_none() {
                    self.error(
                        Diagnostic::error(
                            m.name.span,
                            format!("stream `{}` has no item type", m.name.name),
                        )
                        .with_help(format!(
                            "declare the items it yields: `stream {}(…) -> T;`",
                            m.name.name
                        )),
                    );
                }
            }
            MethodKind::Topic => self.topic(m),
            MethodKind::Rpc => {}
        }
        if let Some(t) = &m.throws {
            self.throws(t);
        }
    }

    /// A topic: served by the hub, so no `client` block, an item type, no `throws`, and
    /// key params whose JSON form is one exact value.
    fn topic(&mut self, m: &'a Method) {
        if m.direction == Direction::ToClient {
            self.error(
                Diagnostic::error(m.name.span, "a `client { … }` block cannot declare a `topic`")
                    .with_help("publications flow from the server's hub to its clients; declare it in the service body"),
            );
        }
        if m.returns.is_none() {
            self.error(
                Diagnostic::error(
                    m.name.span,
                    format!("topic `{}` has no item type", m.name.name),
                )
                .with_help(format!(
                    "declare the items it carries: `topic {}(…) -> T;`",
                    m.name.name
                )),
            );
        }
        if let Some(t) = &m.throws {
            self.error(
                Diagnostic::error(t.span, "a `topic` cannot throw")
                    .with_help("a topic's items are publications, not a handler's results; put failures in the item type, or use a `stream`"),
            );
        }
        for p in &m.params {
            if let Some(why) = self.not_a_key(&p.ty) {
                self.error(
                    Diagnostic::error(
                        p.ty.span,
                        format!("topic key parameter `{}` cannot be of type `{}`", p.name.name, p.ty),
                    )
                    .with_help(format!(
                        "a topic's parameters name the key publications go to, so each must have one exact JSON form: bool, an integer, string, or an enum without fields; {why}"
                    )),
                );
            }
        }
    }

    /// Why `ty` cannot be part of a topic key (`None` if it can).
    fn not_a_key(&self, ty: &Type) -> Option<&'static str> {
        match &ty.kind {
            TypeKind::Bool
            | TypeKind::I8
            | TypeKind::I16
            | TypeKind::I32
            | TypeKind::I64
            | TypeKind::U8
            | TypeKind::U16
            | TypeKind::U32
            | TypeKind::U64
            | TypeKind::String => None,
            TypeKind::F32 | TypeKind::F64 => {
                Some("floating-point numbers compare inexactly (`1` and `1.0` would be different keys)")
            }
            TypeKind::Optional(_) => Some("an absent value has no one JSON form"),
            TypeKind::Named(name) => match self.types.get(name.as_str()) {
                Some(TypeDef::Enum(e)) if e.variants.iter().all(|v| v.fields.is_none()) => None,
                Some(_) => Some("a struct, an error or an enum with fields is an object, and objects with the same members in another order would be different keys"),
                None => None, // unknown types are reported on their own
            },
            TypeKind::Rust(_) => {
                Some("the macro cannot tell what JSON another Rust type makes; use `bool`, an integer type or `String`")
            }
            _ => Some("lists, maps, bytes and `json` values have many equal JSON forms"),
        }
    }

    fn throws(&mut self, t: &Ident) {
        if self.rules.external_types {
            return;
        }
        match self.types.get(t.name.as_str()) {
            Some(TypeDef::Error(_)) => {}
            Some(other) => {
                self.error(
                    Diagnostic::error(
                        t.span,
                        format!("`{}` is a {}, not an error", t.name, other.keyword()),
                    )
                    .with_help(
                        "`throws` names an `error` declaration: `error Name { Variant = 1001 }`",
                    ),
                );
            }
            None => {
                let candidates: Vec<&str> = self
                    .schema
                    .types
                    .iter()
                    .filter(|t| matches!(t, TypeDef::Error(_)))
                    .map(|t| t.name().name.as_str())
                    .collect();
                let mut d = Diagnostic::error(t.span, format!("unknown error type `{}`", t.name));
                if let Some(s) = suggest(&t.name, candidates) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.error(d);
            }
        }
    }

    fn type_ref(&mut self, ty: &Type) {
        match &ty.kind {
            TypeKind::List(t) | TypeKind::Optional(t) => self.type_ref(t),
            TypeKind::Map(k, v) => {
                let unit_enum = |name: &str| matches!(self.types.get(name), Some(TypeDef::Enum(e)) if e.variants.iter().all(|v| v.fields.is_none()));
                let open = |name: &str| {
                    self.types
                        .get(name)
                        .is_some_and(|t| t.attrs().has(AttributeKind::Open))
                };
                match &k.kind {
                    TypeKind::String => {}
                    TypeKind::Named(name) if unit_enum(name) && open(name) => self.error(
                        Diagnostic::error(
                            k.span,
                            format!("an `@open` enum cannot key a map: `{name}`"),
                        )
                        .with_help("keys a receiver does not know would all become `Unknown`, one entry for many; key the map by `string`"),
                    ),
                    TypeKind::Named(name) if unit_enum(name) => {}
                    // An unknown name is reported on its own.
                    TypeKind::Named(name) if !self.types.contains_key(name.as_str()) => {
                        self.type_ref(k)
                    }
                    _ => self.error(
                        Diagnostic::error(
                            k.span,
                            format!(
                                "map keys must be `string` or an enum without fields, found `{k}`"
                            ),
                        )
                        .with_help(
                            "JSON object keys are strings: a `string`, or a unit variant's name",
                        ),
                    ),
                }
                self.type_ref(v);
            }
            TypeKind::Named(name)
                if !self.rules.external_types && !self.types.contains_key(name.as_str()) =>
            {
                let candidates = self
                    .schema
                    .types
                    .iter()
                    .map(|t| t.name().name.as_str())
                    .chain(PRIMITIVES.iter().map(|(n, _)| *n));
                let mut d = Diagnostic::error(ty.span, format!("unknown type `{name}`"));
                if let Some(s) = suggest(name, candidates) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else if self.schema.service(name).is_some() {
                    d = d.with_help(format!(
                        "`{name}` is a service; only structs, enums and errors are types"
                    ));
                }
                self.error(d);
            }
            _ => {}
        }
    }

    fn attributes(&mut self, attrs: &Attributes, place: Place) {
        let mut seen: HashSet<&str> = HashSet::new();
        for a in &attrs.0 {
            let name = a.name.name.as_str();
            let Some(kind) = AttributeKind::from_name(name) else {
                let allowed: Vec<String> = AttributeKind::ALL
                    .iter()
                    .map(|k| format!("`@{}`", k.as_str()))
                    .collect();
                let mut d = Diagnostic::error(a.name.span, format!("unknown attribute `@{name}`"));
                d = match suggest(name, AttributeKind::ALL.iter().map(|k| k.as_str())) {
                    Some(s) => d.with_help(format!("did you mean `@{s}`?")),
                    None => d.with_help(format!("expected one of: {}", allowed.join(", "))),
                };
                self.error(d);
                continue;
            };
            if !seen.insert(name) {
                self.error(Diagnostic::error(
                    a.span,
                    format!("duplicate attribute `@{name}`"),
                ));
                continue;
            }
            let allowed_here = match kind {
                AttributeKind::Deprecated => true,
                AttributeKind::Name => matches!(place, Place::Method(_)),
                AttributeKind::Idempotent => place == Place::Method(MethodKind::Rpc),
                AttributeKind::Publishable => place == Place::Method(MethodKind::Topic),
                // Checked again by the type: enums only.
                AttributeKind::Open => place == Place::Type,
            };
            if !allowed_here {
                let help = match kind {
                    AttributeKind::Name => format!(
                        "{} sets a method's wire name; it goes on `rpc`, `notify`, `stream` and `topic` methods",
                        self.attr_syntax(kind, Some("…"))
                    ),
                    AttributeKind::Publishable => format!(
                        "{} lets clients publish to a `topic` (over WAMP); it goes on topics only",
                        self.attr_syntax(kind, None)
                    ),
                    AttributeKind::Open => format!(
                        "{} says an enum may grow; it goes on `enum` declarations only",
                        self.attr_syntax(kind, None)
                    ),
                    _ => format!(
                        "{} marks an `rpc` as safe to send again after a reconnect; streams resubscribe by themselves and notifications are never retried",
                        self.attr_syntax(kind, None)
                    ),
                };
                self.error(
                    Diagnostic::error(
                        a.span,
                        format!("{} is not allowed here", self.attr_syntax(kind, None)),
                    )
                    .with_help(help),
                );
                continue;
            }
            match (kind, &a.arg) {
                (AttributeKind::Name, None) => self.error(
                    Diagnostic::error(a.span, "`@name` needs the wire name").with_help(format!(
                        "write {}",
                        self.attr_syntax(kind, Some("wire_name"))
                    )),
                ),
                (
                    AttributeKind::Idempotent | AttributeKind::Publishable | AttributeKind::Open,
                    Some((_, span)),
                ) => {
                    let name = kind.as_str();
                    self.error(
                        Diagnostic::error(*span, format!("`@{name}` takes no argument"))
                            .with_help(format!("write `@{name}`")),
                    )
                }
                _ => {}
            }
        }
    }

    /// Structs and enums that contain themselves without a `list` or `map` in between
    /// would have infinite size. An iterative depth-first search over "contains directly"
    /// edges finds each cycle once, in time linear in the schema.
    fn recursion(&mut self) {
        let schema = self.schema;
        let index: HashMap<&str, usize> = schema
            .types
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name().name.as_str(), i))
            .collect();
        // edges[i]: (target, span of the field type) for each direct containment.
        let edges: Vec<Vec<(usize, Span)>> = schema
            .types
            .iter()
            .map(|t| {
                direct_fields(t)
                    .filter_map(|f| {
                        let mut ty = &f.ty;
                        while let TypeKind::Optional(inner) = &ty.kind {
                            ty = inner;
                        }
                        match &ty.kind {
                            TypeKind::Named(n) => index.get(n.as_str()).map(|&j| (j, f.ty.span)),
                            _ => None,
                        }
                    })
                    .collect()
            })
            .collect();
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnStack,
            Done,
        }
        let mut mark = vec![Mark::New; edges.len()];
        for root in 0..edges.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // Stack of (node, next edge to follow).
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            mark[root] = Mark::OnStack;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let Some(&(target, _)) = edges[node].get(*next) else {
                    mark[node] = Mark::Done;
                    stack.pop();
                    continue;
                };
                *next += 1;
                match mark[target] {
                    Mark::New => {
                        mark[target] = Mark::OnStack;
                        stack.push((target, 0));
                    }
                    Mark::OnStack => {
                        let from = stack.iter().position(|&(n, _)| n == target).unwrap_or(0);
                        let cycle: Vec<&str> = stack[from..]
                            .iter()
                            .map(|&(n, _)| schema.types[n].name().name.as_str())
                            .chain(std::iter::once(schema.types[target].name().name.as_str()))
                            .collect();
                        let (first, taken) = stack[from];
                        let span = edges[first][taken - 1].1;
                        let name = cycle[0];
                        self.error(
                            Diagnostic::error(
                                span,
                                format!("recursive type `{name}` has infinite size"),
                            )
                            .with_note(format!("cycle: {}", cycle.join(" → ")))
                            .with_help("put the recursion inside `list<…>` or `map<string, …>`"),
                        );
                    }
                    Mark::Done => {}
                }
            }
        }
    }
}

/// The names generated TypeScript cannot take, where Rust can: a type that hides a global
/// the generated code uses, a method named `constructor` or `then`, and methods whose
/// `lowerCamelCase` names collide (`get_v2`, `get_v_2` → `getV2`). Parameters need no
/// check: the generator renames them where they would collide.
pub fn typescript(schema: &Schema) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for t in &schema.types {
        let name = naming::type_name(&t.name().name);
        if naming::TS_GLOBALS.contains(&name.as_str()) {
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
        for direction in [Direction::ToServer, Direction::ToClient] {
            let mut seen: HashMap<String, &Method> = HashMap::new();
            for m in s.methods.iter().filter(|m| m.direction == direction) {
                let ts = naming::ts_value_name(&m.name.name);
                if naming::TS_RESERVED_METHODS.contains(&ts.as_str()) {
                    let why = if ts == "then" {
                        "a `then` method would make the generated TypeScript client \"thenable\": `await client` would call it"
                    } else {
                        "it would be the generated TypeScript class's constructor"
                    };
                    out.push(
                        Diagnostic::error(
                            m.name.span,
                            format!("a method cannot be named `{ts}` in TypeScript: {why}"),
                        )
                        .with_help(
                            "rename the method; its wire name can stay, with `@name(\"…\")`",
                        ),
                    );
                    continue;
                }
                match seen.get(&ts) {
                    // The same Rust name is a duplicate, reported as such.
                    Some(first)
                        if naming::value_name(&first.name.name)
                            == naming::value_name(&m.name.name) => {}
                    Some(first) => out.push(
                        Diagnostic::error(
                            m.name.span,
                            format!(
                                "methods `{}` and `{}` both become `{ts}` in generated TypeScript code",
                                first.name.name, m.name.name
                            ),
                        )
                        .with_related(first.name.span, "the first method is here")
                        .with_help("rename one of them; a wire name can stay, with `@name(\"…\")`"),
                    ),
                    None => {
                        seen.insert(ts, m);
                    }
                }
            }
        }
    }
    out
}

/// The fields stored inline in a type's value (all variants' fields for enums and errors).
fn direct_fields(t: &TypeDef) -> Box<dyn Iterator<Item = &Field> + '_> {
    match t {
        TypeDef::Struct(s) => Box::new(s.fields.iter()),
        TypeDef::Enum(e) => Box::new(e.variants.iter().flat_map(|v| v.fields.iter().flatten())),
        TypeDef::Error(e) => Box::new(e.variants.iter().flat_map(|v| v.fields.iter().flatten())),
    }
}

fn collision(what: &str, first: &Ident, second: &Ident, rust: &str) -> String {
    if first.name == second.name {
        format!("duplicate {what} `{}`", second.name)
    } else {
        format!(
            "{what}s `{}` and `{}` both become `{rust}` in generated Rust code",
            first.name, second.name
        )
    }
}

/// The closest candidate to a misspelled name, if one is close enough.
fn suggest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let other = c.to_lowercase();
            let distance = strsim::damerau_levenshtein(&lower, &other);
            (distance, !same_letters(&lower, &other), c)
        })
        .filter(|(distance, _, _)| *distance <= limit)
        // Fewest edits first; among equals, a swap of letters beats a different letter.
        .min_by_key(|(distance, swapped, _)| (*distance, *swapped))
        .map(|(_, _, c)| c)
}

fn same_letters(a: &str, b: &str) -> bool {
    let mut a: Vec<char> = a.chars().collect();
    let mut b: Vec<char> = b.chars().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}
