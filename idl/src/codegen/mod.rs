//! The code generator: model → Rust tokens. The one generator behind both front ends
//! (`build.rs` via [`crate::build`], and the `#[wirecall::service]` macro).
//!
//! Generated code is thin: it names everything by absolute path (`::wirecall::…`,
//! `::core::…`, `::std::…`) so it compiles under `#![no_implicit_prelude]`, calls the
//! runtime's documented helpers in `::wirecall::__private`, and carries the IDL's docs, so
//! it also compiles under `#![deny(missing_docs, warnings)]`.
//!
//! For a service `S` it generates:
//! - `trait S`: the server side, one async method per `rpc`, `notify` and `stream`, taking
//!   the call's `wirecall::Context` and the typed params, returning
//!   `Result<T, wirecall::Fault<E>>` (`E` from `throws`; streams return
//!   `wirecall::Items<T, E>`); `S::into_router` mounts an implementation on a
//!   `wirecall::raw::Router`;
//! - `struct SClient<C = wirecall::Client>`: the typed client, one async method per
//!   method, returning `Result<T, wirecall::Error<E>>` (streams a
//!   `wirecall::Subscription<T, E>`);
//! - with a `client { … }` block, `trait SCallbacks` (implemented by the client
//!   application) and `struct SCallbacksClient<C = wirecall::Peer>` (the server's handle).
//!
//! One file per output, like tonic-build: `types.rs` (structs and enums), `errors.rs`
//! (error enums and their codes), the handler traits (`server.rs`), the typed clients (`client.rs`) and
//! the topic publishers (`topics.rs`); `derive.rs` decides which standard traits a type can
//! derive. This file holds the [`Options`], the entry points and the helpers they share.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use crate::model::{
    Attributes, Docs, Method, MethodKind, Schema, Service, Type, TypeDef, TypeKind,
};
use crate::naming;

mod client;
mod derive;
mod errors;
mod server;
mod topics;
mod types;

use client::client_struct;
use server::handler_trait;
use topics::topics_struct;
pub use types::type_def;
use types::{type_def_with, uses_deprecated};

/// What to generate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Structs, enums and errors.
    pub types: bool,
    /// Server traits (and the callbacks client, which the server uses).
    pub server: bool,
    /// Client stubs (and the callbacks trait, which the client implements).
    pub client: bool,
    /// Attributes added to generated types: (path, attribute). The path is a type name,
    /// or `.` for every type.
    pub type_attributes: Vec<(String, String)>,
    /// Attributes added to generated fields and variants: (path, attribute), the path
    /// `Type.field` (a struct's field), `Type.Variant` (an enum or error variant) or
    /// `Type.Variant.field` (a field of a variant).
    pub field_attributes: Vec<(String, String)>,
    /// IDL types served by existing Rust types: (IDL type name, Rust path). The type is
    /// not generated; every use of it names the path.
    pub extern_paths: Vec<(String, String)>,
    /// Derive every standard trait that is sound for each type (`Copy`, `Eq`, `Hash`,
    /// `Ord`, `Default`; see docs/IDL.md). Off for the macro front end, where the user's
    /// own `#[derive]` on the enum decides.
    pub sound_derives: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            types: true,
            server: true,
            client: true,
            type_attributes: Vec::new(),
            field_attributes: Vec::new(),
            extern_paths: Vec::new(),
            sound_derives: true,
        }
    }
}

/// Generate the Rust code of a whole schema.
pub fn generate(schema: &Schema, options: &Options) -> TokenStream {
    let extern_schema;
    let schema = if options.extern_paths.is_empty() {
        schema
    } else {
        extern_schema = with_extern_paths(schema, &options.extern_paths);
        &extern_schema
    };
    let traits = derive::analyze(schema);
    let deprecated_types: Vec<&str> = schema
        .types
        .iter()
        .filter(|t| t.attrs().deprecated().is_some())
        .map(|t| t.name().name.as_str())
        .collect();
    let mut out = TokenStream::new();
    if options.types {
        for t in &schema.types {
            let name = &t.name().name;
            let derives = match options.sound_derives {
                true => traits.get(name.as_str()).copied().unwrap_or_default(),
                false => derive::Traits::default(),
            };
            let uses = uses_deprecated(t, &deprecated_types);
            out.extend(type_def_with(t, derives, uses, options));
        }
    }
    for s in &schema.services {
        out.extend(service(s, options));
    }
    out
}

/// `schema` with the types of `paths` taken out and every use of them naming the Rust path.
fn with_extern_paths(schema: &Schema, paths: &[(String, String)]) -> Schema {
    fn replace(ty: &mut Type, paths: &[(String, String)]) {
        match &mut ty.kind {
            TypeKind::Named(n) => {
                if let Some((_, path)) = paths.iter().find(|(name, _)| name == n) {
                    ty.kind = TypeKind::Rust(path.clone());
                }
            }
            TypeKind::List(t) | TypeKind::Optional(t) | TypeKind::Map(_, t) => replace(t, paths),
            _ => {}
        }
    }
    let mut schema = schema.clone();
    schema
        .types
        .retain(|t| !paths.iter().any(|(name, _)| *name == t.name().name));
    for t in &mut schema.types {
        match t {
            TypeDef::Struct(s) => s.fields.iter_mut().for_each(|f| replace(&mut f.ty, paths)),
            TypeDef::Enum(e) => e
                .variants
                .iter_mut()
                .flat_map(|v| v.fields.iter_mut().flatten())
                .for_each(|f| replace(&mut f.ty, paths)),
            TypeDef::Error(e) => e
                .variants
                .iter_mut()
                .flat_map(|v| v.fields.iter_mut().flatten())
                .for_each(|f| replace(&mut f.ty, paths)),
        }
    }
    for s in &mut schema.services {
        for m in &mut s.methods {
            m.params.iter_mut().for_each(|p| replace(&mut p.ty, paths));
            if let Some(r) = &mut m.returns {
                replace(r, paths);
            }
        }
    }
    schema
}

/// The attributes `rules` give `path`, parsed (an attribute that does not parse is
/// reported as a compile error in the generated code).
fn extra_attrs(rules: &[(String, String)], matches: impl Fn(&str) -> bool) -> TokenStream {
    let mut out = TokenStream::new();
    for (path, attr) in rules {
        if matches(path) {
            match attr.parse::<TokenStream>() {
                Ok(tokens) => out.extend(tokens),
                Err(e) => {
                    let message = format!(
                        "wirecall: the attribute `{attr}` for `{path}` does not parse: {e}"
                    );
                    out.extend(quote!(::core::compile_error!(#message);));
                }
            }
        }
    }
    out
}

/// A Rust identifier for an IDL name (raw when it is a keyword). Validation refuses names
/// that cannot be identifiers at all; for a schema that skipped it, such a name gets a
/// leading `_` rather than a panic.
fn ident(name: &str) -> Ident {
    if naming::is_raw_keyword(name) {
        Ident::new_raw(name, Span::call_site())
    } else if naming::rust_ident_problem(name).is_some() {
        Ident::new(&format!("_{name}"), Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

fn type_ident(name: &str) -> Ident {
    ident(&naming::type_name(name))
}

fn value_ident(name: &str) -> Ident {
    ident(&naming::value_name(name))
}

/// `#[doc = "…"]` per doc line, or `fallback` when there are none.
fn docs(docs: &Docs, fallback: impl FnOnce() -> String) -> TokenStream {
    if docs.is_empty() {
        let text = fallback();
        return quote!(#[doc = #text]);
    }
    let lines = docs.0.iter().map(|l| format!(" {l}"));
    quote!(#(#[doc = #lines])*)
}

fn deprecated(attrs: &Attributes) -> TokenStream {
    match attrs.deprecated() {
        None => TokenStream::new(),
        Some("") => quote!(#[deprecated]),
        Some(note) => quote!(#[deprecated(note = #note)]),
    }
}

/// The Rust type of an IDL type.
pub fn rust_type(ty: &Type) -> TokenStream {
    match &ty.kind {
        TypeKind::Bool => quote!(bool),
        TypeKind::I8 => quote!(i8),
        TypeKind::I16 => quote!(i16),
        TypeKind::I32 => quote!(i32),
        TypeKind::I64 => quote!(i64),
        TypeKind::U8 => quote!(u8),
        TypeKind::U16 => quote!(u16),
        TypeKind::U32 => quote!(u32),
        TypeKind::U64 => quote!(u64),
        TypeKind::F32 => quote!(f32),
        TypeKind::F64 => quote!(f64),
        TypeKind::String => quote!(::std::string::String),
        TypeKind::Bytes => quote!(::wirecall::Bytes),
        TypeKind::Json => quote!(::wirecall::Value),
        TypeKind::List(t) => {
            let t = rust_type(t);
            quote!(::std::vec::Vec<#t>)
        }
        TypeKind::Map(k, v) => {
            let (k, v) = (rust_type(k), rust_type(v));
            quote!(::std::collections::BTreeMap<#k, #v>)
        }
        TypeKind::Optional(t) => {
            let t = rust_type(t);
            quote!(::core::option::Option<#t>)
        }
        TypeKind::Named(name) => {
            let i = type_ident(name);
            quote!(#i)
        }
        TypeKind::Rust(text) => text.parse().unwrap_or_else(|_| quote!(::wirecall::Value)),
    }
}

fn is_optional(ty: &Type) -> bool {
    matches!(ty.kind, TypeKind::Optional(_))
}

/// The Rust type of a method's `throws` error, if it has one. The macro front end keeps
/// Rust paths (`errors::CalcError`) verbatim.
fn throws_type(m: &Method) -> Option<TokenStream> {
    m.throws.as_ref().map(|t| {
        if t.name.contains("::") || t.name.contains('<') {
            t.name
                .parse()
                .unwrap_or_else(|_| quote!(::wirecall::NoAppError))
        } else {
            let i = type_ident(&t.name);
            quote!(#i)
        }
    })
}

/// Everything a service generates, as far as `options` asks.
pub fn service(s: &Service, options: &Options) -> TokenStream {
    let name = type_ident(&s.name.name);
    let [client_name, callbacks_name, callbacks_client_name, topics_name] =
        naming::service_items(&s.name.name).map(|n| ident(&n));
    let server_methods: Vec<&Method> = s.server_methods().collect();
    let client_methods: Vec<&Method> = s.client_methods().collect();
    let service_doc = docs(&s.docs, || format!(" The `{}` service.", s.name.name));
    let dep = deprecated(&s.attrs);
    let mut out = TokenStream::new();
    if options.server {
        out.extend(handler_trait(
            s,
            &name,
            &service_doc,
            &dep,
            &server_methods,
            "server",
        ));
    }
    if options.client {
        let doc = format!(" A typed client of the `{}` service.", s.name.name);
        out.extend(client_struct(
            s,
            &client_name,
            &doc,
            &dep,
            &server_methods,
            quote!(::wirecall::Client),
        ));
    }
    let topics: Vec<&Method> = server_methods
        .iter()
        .copied()
        .filter(|m| m.kind == MethodKind::Topic)
        .collect();
    if options.server && !topics.is_empty() {
        out.extend(topics_struct(s, &topics_name, &dep, &topics));
    }
    if !client_methods.is_empty() {
        if options.client {
            let first = format!(
                " The `client {{ … }}` methods of `{}`: a client application implements them, and the",
                s.name.name
            );
            let second = format!(
                " server calls them through `{callbacks_client_name}`. Register with `ClientBuilder::router(impl.into_router())`."
            );
            let doc = quote!(#[doc = #first] #[doc = #second]);
            out.extend(handler_trait(
                s,
                &callbacks_name,
                &doc,
                &dep,
                &client_methods,
                "client",
            ));
        }
        if options.server {
            let doc = format!(
                " The server's handle to call the `client {{ … }}` methods of `{}` on a connected client (from `ctx.peer()`).",
                s.name.name
            );
            out.extend(client_struct(
                s,
                &callbacks_client_name,
                &doc,
                &dep,
                &client_methods,
                quote!(::wirecall::Peer),
            ));
        }
    }
    out
}

/// Clippy lints a generated method may trip through no fault of the user's (who may write
/// 16 parameters, or call a method `into_items`): allowed on that method. `receivers`
/// counts the arguments before the params (`&self`, and `ctx` for handlers).
fn clippy_allows(m: &Method, receivers: usize) -> TokenStream {
    let mut lints = Vec::new();
    if m.params.len() + receivers > 7 {
        lints.push(quote!(clippy::too_many_arguments));
    }
    let name = naming::value_name(&m.name.name);
    if name.starts_with("into_")
        || name.starts_with("from_")
        || (name.starts_with("to_") && name.ends_with("_mut"))
    {
        lints.push(quote!(clippy::wrong_self_convention));
    }
    if lints.is_empty() {
        quote!()
    } else {
        quote!(#[allow(#(#lints),*)])
    }
}

fn wire_name(s: &Service, m: &Method) -> Literal {
    Literal::string(&m.wire_name(s))
}
