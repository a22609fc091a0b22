// One file, though over ~500 lines: the model is data only (the types of the IR and their
// small accessors), kept together so the whole IR reads in one place, as pest_meta's
// `ast.rs` does.
//! The model (IR) of a wirecall interface.
//!
//! Both front ends produce it: the `.wire` parser ([`crate::parse`]) and the
//! `#[wirecall::service]` trait macro. Validation ([`crate::validate`]) and the code generator
//! consume it. It holds no parser types; every node remembers where it came from in a
//! [`Span`], so any later stage can point at the user's text.

use std::fmt;

/// Index of a source file in a [`crate::SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// Where a model node came from.
#[derive(Clone, Copy, Debug)]
pub enum Span {
    /// A byte range in a `.wire` file.
    File {
        /// The file.
        file: FileId,
        /// Byte offset of the first byte.
        start: usize,
        /// Byte offset one past the last byte.
        end: usize,
    },
    /// A span of Rust tokens (the trait macro front end).
    Rust(proc_macro2::Span),
    /// Built by code, with no source text (tests, hand-made models).
    Synthetic,
}

impl Span {
    /// A byte range in a `.wire` file.
    pub fn file(file: FileId, start: usize, end: usize) -> Self {
        Span::File { file, start, end }
    }
}

/// An identifier as written by the user.
#[derive(Clone, Debug)]
pub struct Ident {
    /// The identifier's text.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

impl Ident {
    /// An identifier with the given text and span.
    pub fn new(name: impl Into<String>, span: Span) -> Self {
        Ident {
            name: name.into(),
            span,
        }
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq<str> for Ident {
    fn eq(&self, other: &str) -> bool {
        self.name == other
    }
}

impl PartialEq<&str> for Ident {
    fn eq(&self, other: &&str) -> bool {
        self.name == *other
    }
}

/// Doc comment lines (`///` stripped, plus one leading space if present).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Docs(pub Vec<String>);

impl Docs {
    /// `true` when there are no doc lines.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The lines joined by `\n`.
    pub fn text(&self) -> String {
        self.0.join("\n")
    }
}

/// An attribute such as `@idempotent` or `@name("calc_echo")`, as written.
///
/// Which attributes exist and where they may appear is checked by validation; see
/// [`AttributeKind`].
#[derive(Clone, Debug)]
pub struct Attribute {
    /// The attribute's name, without `@`.
    pub name: Ident,
    /// The string argument, if any, with its span.
    pub arg: Option<(String, Span)>,
    /// The whole attribute.
    pub span: Span,
}

/// The attributes wirecall knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeKind {
    /// `@name("…")`: the method's name on the wire.
    Name,
    /// `@idempotent`: safe to send again after a reconnect.
    Idempotent,
    /// `@deprecated` or `@deprecated("…")`.
    Deprecated,
    /// `@publishable`: clients may publish to this topic (WAMP `PUBLISH`).
    Publishable,
    /// `@open`: an enum that may grow; receivers accept variants they do not know.
    Open,
}

impl AttributeKind {
    /// Every known attribute, in the order they are listed in messages.
    pub const ALL: [AttributeKind; 5] = [
        AttributeKind::Name,
        AttributeKind::Idempotent,
        AttributeKind::Deprecated,
        AttributeKind::Publishable,
        AttributeKind::Open,
    ];

    /// The attribute's name as written after `@`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeKind::Name => "name",
            AttributeKind::Idempotent => "idempotent",
            AttributeKind::Deprecated => "deprecated",
            AttributeKind::Publishable => "publishable",
            AttributeKind::Open => "open",
        }
    }

    /// Look an attribute up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The attributes of one node, with typed accessors.
#[derive(Clone, Debug, Default)]
pub struct Attributes(pub Vec<Attribute>);

impl Attributes {
    /// The first attribute of the given kind.
    pub fn get(&self, kind: AttributeKind) -> Option<&Attribute> {
        self.0.iter().find(|a| a.name.name == kind.as_str())
    }

    /// `true` if an attribute of this kind is present.
    pub fn has(&self, kind: AttributeKind) -> bool {
        self.get(kind).is_some()
    }

    /// The `@deprecated` note: `Some("")` for a bare `@deprecated`.
    pub fn deprecated(&self) -> Option<&str> {
        self.get(AttributeKind::Deprecated)
            .map(|a| a.arg.as_ref().map_or("", |(s, _)| s.as_str()))
    }
}

/// One parsed interface: every declaration of a root file and of the files it imports.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// Type declarations (structs, enums, errors), imported files first, in source order.
    pub types: Vec<TypeDef>,
    /// Services, imported files first, in source order.
    pub services: Vec<Service>,
}

impl Schema {
    /// The type declaration with this name.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name().name == name)
    }

    /// The service with this name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name.name == name)
    }
}

/// A named type declaration.
#[derive(Clone, Debug)]
pub enum TypeDef {
    /// `struct Name { … }`
    Struct(Struct),
    /// `enum Name { … }`
    Enum(Enum),
    /// `error Name { … }`
    Error(ErrorDef),
}

impl TypeDef {
    /// The declared name.
    pub fn name(&self) -> &Ident {
        match self {
            TypeDef::Struct(s) => &s.name,
            TypeDef::Enum(e) => &e.name,
            TypeDef::Error(e) => &e.name,
        }
    }

    /// The doc comment.
    pub fn docs(&self) -> &Docs {
        match self {
            TypeDef::Struct(s) => &s.docs,
            TypeDef::Enum(e) => &e.docs,
            TypeDef::Error(e) => &e.docs,
        }
    }

    /// The attributes.
    pub fn attrs(&self) -> &Attributes {
        match self {
            TypeDef::Struct(s) => &s.attrs,
            TypeDef::Enum(e) => &e.attrs,
            TypeDef::Error(e) => &e.attrs,
        }
    }

    /// `struct`, `enum` or `error`: the keyword, for messages.
    pub fn keyword(&self) -> &'static str {
        match self {
            TypeDef::Struct(_) => "struct",
            TypeDef::Enum(_) => "enum",
            TypeDef::Error(_) => "error",
        }
    }
}

/// `struct Name { field: Type, … }`
#[derive(Clone, Debug)]
pub struct Struct {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes.
    pub attrs: Attributes,
    /// The struct's name.
    pub name: Ident,
    /// The fields, in order.
    pub fields: Vec<Field>,
}

/// A named, typed field of a struct, an enum variant or an error variant.
#[derive(Clone, Debug)]
pub struct Field {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes.
    pub attrs: Attributes,
    /// The field's name; also its JSON key.
    pub name: Ident,
    /// The field's type.
    pub ty: Type,
}

/// `enum Name { A, B { x: T } }`: unit variants are JSON strings; variants with fields are
/// internally tagged objects (`{"kind": "B", "x": …}`).
#[derive(Clone, Debug)]
pub struct Enum {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes.
    pub attrs: Attributes,
    /// The enum's name.
    pub name: Ident,
    /// The variants, in order.
    pub variants: Vec<Variant>,
}

/// A variant of an [`Enum`].
#[derive(Clone, Debug)]
pub struct Variant {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes.
    pub attrs: Attributes,
    /// The variant's name; also its JSON tag.
    pub name: Ident,
    /// `None` for a unit variant, `Some` (possibly empty) for `Name { … }`.
    pub fields: Option<Vec<Field>>,
}

/// `error Name { Variant = code, Other { field: T } = code }`: typed application errors.
#[derive(Clone, Debug)]
pub struct ErrorDef {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes.
    pub attrs: Attributes,
    /// The error type's name.
    pub name: Ident,
    /// The variants, in order.
    pub variants: Vec<ErrorVariant>,
}

/// A variant of an [`ErrorDef`]: travels as a JSON-RPC error with its own code, its name as
/// `message`, and its fields as `data`.
#[derive(Clone, Debug)]
pub struct ErrorVariant {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes.
    pub attrs: Attributes,
    /// The variant's name.
    pub name: Ident,
    /// `None` for a unit variant.
    pub fields: Option<Vec<Field>>,
    /// The JSON-RPC error code.
    pub code: ErrorCode,
}

/// An error code as written.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode {
    /// The value; `None` if the literal does not fit in an `i64` (validation reports it).
    pub value: Option<i64>,
    /// Where the literal was written.
    pub span: Span,
}

/// `service Name { … }`
#[derive(Clone, Debug)]
pub struct Service {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes.
    pub attrs: Attributes,
    /// The service's name: the prefix of its methods' wire names.
    pub name: Ident,
    /// Every method, both directions, in source order.
    pub methods: Vec<Method>,
}

impl Service {
    /// Methods the client calls on the server.
    pub fn server_methods(&self) -> impl Iterator<Item = &Method> {
        self.methods
            .iter()
            .filter(|m| m.direction == Direction::ToServer)
    }

    /// Methods of the `client { … }` block: the server calls them on a connected client.
    pub fn client_methods(&self) -> impl Iterator<Item = &Method> {
        self.methods
            .iter()
            .filter(|m| m.direction == Direction::ToClient)
    }
}

/// What a method does on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// `rpc`: a request with exactly one response.
    Rpc,
    /// `notify`: a notification, never answered.
    Notify,
    /// `stream`: a subscription; the callee pushes items until done.
    Stream,
    /// `topic`: a subscription to publications (through a hub) of the key its params
    /// name; no handler.
    Topic,
}

impl MethodKind {
    /// The keyword: `rpc`, `notify` or `stream`.
    pub fn keyword(self) -> &'static str {
        match self {
            MethodKind::Rpc => "rpc",
            MethodKind::Notify => "notify",
            MethodKind::Stream => "stream",
            MethodKind::Topic => "topic",
        }
    }

    /// `true` for `stream` and `topic`: the call answers a subscription, then items follow.
    pub fn is_subscription(self) -> bool {
        matches!(self, MethodKind::Stream | MethodKind::Topic)
    }
}

/// Which peer serves a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Declared in the service body: the server serves it.
    ToServer,
    /// Declared in a `client { … }` block: a connected client serves it.
    ToClient,
}

/// A method of a service.
#[derive(Clone, Debug)]
pub struct Method {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes (`@name`, `@idempotent`, `@deprecated`).
    pub attrs: Attributes,
    /// `rpc`, `notify`, `stream` or `topic`.
    pub kind: MethodKind,
    /// Which side serves it.
    pub direction: Direction,
    /// The method's name.
    pub name: Ident,
    /// Parameters, in order (the order of positional params on the wire).
    pub params: Vec<Param>,
    /// `-> T`: the result (for streams, the item type). `None` returns JSON `null`.
    pub returns: Option<Type>,
    /// `throws E`: the error type of typed application errors.
    pub throws: Option<Ident>,
    /// The whole declaration.
    pub span: Span,
}

impl Method {
    /// The method's name on the wire: `@name("…")` if given, else `Service.method`. For a
    /// topic, the topic's name (its key's values follow it in the hub).
    pub fn wire_name(&self, service: &Service) -> String {
        match self
            .attrs
            .get(AttributeKind::Name)
            .and_then(|a| a.arg.as_ref())
        {
            Some((name, _)) => name.clone(),
            None => format!("{}.{}", service.name.name, self.name.name),
        }
    }

    /// `@idempotent`: safe to send again after a reconnect.
    pub fn is_idempotent(&self) -> bool {
        self.attrs.has(AttributeKind::Idempotent)
    }
}

/// A method parameter.
#[derive(Clone, Debug)]
pub struct Param {
    /// Doc comment.
    pub docs: Docs,
    /// Attributes.
    pub attrs: Attributes,
    /// The parameter's name: its key in by-name params.
    pub name: Ident,
    /// Its type; an optional type (`T?`) may be omitted by the caller.
    pub ty: Type,
}

/// A type as written, with its span. Two types are equal when their shapes are; spans are
/// not compared.
#[derive(Clone, Debug)]
pub struct Type {
    /// What the type is.
    pub kind: TypeKind,
    /// Where it was written.
    pub span: Span,
}

impl PartialEq for Type {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Eq for Type {}

/// The shapes of types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// `bool`
    Bool,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `string`
    String,
    /// `bytes`: base64 in JSON.
    Bytes,
    /// `json`: any JSON value.
    Json,
    /// `list<T>`
    List(Box<Type>),
    /// `map<K, V>`; validation requires `K` to be `string`.
    Map(Box<Type>, Box<Type>),
    /// `T?`: may be absent (`null` or an omitted key).
    Optional(Box<Type>),
    /// A struct, enum or error declared in the schema.
    Named(String),
    /// A Rust type written in a `#[wirecall::service]` trait, kept as its source text
    /// (the macro front end only; Rust checks it).
    Rust(String),
}

/// The names of the built-in types, as written in `.wire` files.
pub const PRIMITIVES: [(&str, TypeKind); 14] = [
    ("bool", TypeKind::Bool),
    ("i8", TypeKind::I8),
    ("i16", TypeKind::I16),
    ("i32", TypeKind::I32),
    ("i64", TypeKind::I64),
    ("u8", TypeKind::U8),
    ("u16", TypeKind::U16),
    ("u32", TypeKind::U32),
    ("u64", TypeKind::U64),
    ("f32", TypeKind::F32),
    ("f64", TypeKind::F64),
    ("string", TypeKind::String),
    ("bytes", TypeKind::Bytes),
    ("json", TypeKind::Json),
];

/// Names that have a meaning of their own in a type position.
pub const RESERVED_TYPE_NAMES: [&str; 2] = ["list", "map"];

impl TypeKind {
    /// The built-in type with this name.
    pub fn primitive(name: &str) -> Option<TypeKind> {
        PRIMITIVES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| k.clone())
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TypeKind::List(t) => write!(f, "list<{t}>"),
            TypeKind::Map(k, v) => write!(f, "map<{k}, {v}>"),
            TypeKind::Optional(t) => write!(f, "{t}?"),
            TypeKind::Named(n) | TypeKind::Rust(n) => f.write_str(n),
            other => {
                let name = PRIMITIVES
                    .iter()
                    .find(|(_, k)| k == other)
                    .map_or("?", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}
