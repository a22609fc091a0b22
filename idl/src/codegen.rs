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
//!   `wirecall::Router`;
//! - `struct SClient<C = wirecall::Client>`: the typed client, one async method per
//!   method, returning `Result<T, wirecall::Error<E>>` (streams a
//!   `wirecall::Subscription<T, E>`);
//! - with a `client { … }` block, `trait SCallbacks` (implemented by the client
//!   application) and `struct SCallbacksClient<C = wirecall::Peer>` (the server's handle).

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use crate::model::{
    AttributeKind, Attributes, Docs, ErrorDef, Field, Method, MethodKind, Schema, Service, Type,
    TypeDef, TypeKind,
};
use crate::naming;

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

/// Does the declaration of `t` use something deprecated: itself (in its derives), a
/// deprecated field or variant, or a field of a type in `deprecated`?
fn uses_deprecated(t: &TypeDef, deprecated: &[&str]) -> bool {
    fn mentions(ty: &Type, deprecated: &[&str]) -> bool {
        match &ty.kind {
            TypeKind::Named(n) => deprecated.contains(&n.as_str()),
            TypeKind::List(t) | TypeKind::Optional(t) | TypeKind::Map(_, t) => {
                mentions(t, deprecated)
            }
            _ => false,
        }
    }
    let field = |f: &Field| f.attrs.deprecated().is_some() || mentions(&f.ty, deprecated);
    t.attrs().deprecated().is_some()
        || match t {
            TypeDef::Struct(s) => s.fields.iter().any(field),
            TypeDef::Enum(e) => e
                .variants
                .iter()
                .any(|v| v.attrs.deprecated().is_some() || v.fields.iter().flatten().any(field)),
            TypeDef::Error(e) => e
                .variants
                .iter()
                .any(|v| v.attrs.deprecated().is_some() || v.fields.iter().flatten().any(field)),
        }
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

/// Which standard traits a generated type can derive soundly.
mod derive {
    use std::collections::HashMap;

    use crate::model::{Schema, Type, TypeDef, TypeKind};

    /// What a type derives beyond `Debug, Clone, PartialEq` (and serde's).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(super) struct Traits {
        /// `Eq` and `Hash`: no float and no `json` anywhere inside.
        pub(super) eq_hash: bool,
        /// `Default`: a struct whose every field has a default.
        pub(super) default: bool,
        /// `Copy`, `PartialOrd`, `Ord`: an enum of unit variants only.
        pub(super) unit_enum: bool,
    }

    pub(super) fn analyze(schema: &Schema) -> HashMap<&str, Traits> {
        let mut out = HashMap::new();
        for t in &schema.types {
            let name = t.name().name.as_str();
            let mut visiting = Vec::new();
            let traits = Traits {
                eq_hash: type_def_eq(schema, t, &mut visiting),
                default: matches!(t, TypeDef::Struct(_))
                    && type_def_default(schema, t, &mut Vec::new()),
                unit_enum: matches!(t, TypeDef::Enum(e) if !e.variants.is_empty() && e.variants.iter().all(|v| v.fields.is_none())),
            };
            out.insert(name, traits);
        }
        out
    }

    fn fields_of(t: &TypeDef) -> Vec<&Type> {
        match t {
            TypeDef::Struct(s) => s.fields.iter().map(|f| &f.ty).collect(),
            TypeDef::Enum(e) => e
                .variants
                .iter()
                .flat_map(|v| v.fields.iter().flatten())
                .map(|f| &f.ty)
                .collect(),
            TypeDef::Error(e) => e
                .variants
                .iter()
                .flat_map(|v| v.fields.iter().flatten())
                .map(|f| &f.ty)
                .collect(),
        }
    }

    fn type_def_eq<'a>(schema: &'a Schema, t: &'a TypeDef, visiting: &mut Vec<&'a str>) -> bool {
        let name = t.name().name.as_str();
        if visiting.contains(&name) {
            return true; // a cycle: decided by the rest of the types on it
        }
        visiting.push(name);
        let ok = fields_of(t).into_iter().all(|ty| eq(schema, ty, visiting));
        visiting.pop();
        ok
    }

    fn eq<'a>(schema: &'a Schema, ty: &'a Type, visiting: &mut Vec<&'a str>) -> bool {
        match &ty.kind {
            TypeKind::F32 | TypeKind::F64 | TypeKind::Json | TypeKind::Rust(_) => false,
            TypeKind::List(t) | TypeKind::Optional(t) | TypeKind::Map(_, t) => {
                eq(schema, t, visiting)
            }
            TypeKind::Named(n) => schema
                .type_def(n)
                .is_some_and(|t| type_def_eq(schema, t, visiting)),
            _ => true,
        }
    }

    fn type_def_default<'a>(
        schema: &'a Schema,
        t: &'a TypeDef,
        visiting: &mut Vec<&'a str>,
    ) -> bool {
        let TypeDef::Struct(s) = t else { return false };
        let name = t.name().name.as_str();
        if visiting.contains(&name) {
            return false; // a struct that contains itself needs a box anyway
        }
        visiting.push(name);
        let ok = s.fields.iter().all(|f| default(schema, &f.ty, visiting));
        visiting.pop();
        ok
    }

    fn default<'a>(schema: &'a Schema, ty: &'a Type, visiting: &mut Vec<&'a str>) -> bool {
        match &ty.kind {
            TypeKind::Rust(_) => false,
            TypeKind::Named(n) => schema
                .type_def(n)
                .is_some_and(|t| type_def_default(schema, t, visiting)),
            _ => true,
        }
    }
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

const SERDE_DERIVE: &str = "::wirecall::__private::serde";

fn serde_derives(traits: derive::Traits) -> TokenStream {
    let mut std = vec![quote!(::core::fmt::Debug), quote!(::core::clone::Clone)];
    if traits.unit_enum {
        std.push(quote!(::core::marker::Copy));
    }
    if traits.default {
        std.push(quote!(::core::default::Default));
    }
    std.push(quote!(::core::cmp::PartialEq));
    if traits.eq_hash {
        std.push(quote!(::core::cmp::Eq));
        std.push(quote!(::core::hash::Hash));
    }
    if traits.unit_enum {
        std.push(quote!(::core::cmp::PartialOrd));
        std.push(quote!(::core::cmp::Ord));
    }
    quote! {
        #[derive(
            #(#std,)*
            ::wirecall::__private::serde::Serialize,
            ::wirecall::__private::serde::Deserialize,
        )]
        #[serde(crate = #SERDE_DERIVE)]
    }
}

/// Serde attributes of a field: its JSON name, and "omit when absent" for optionals.
fn field_attrs(f: &Field) -> TokenStream {
    let mut out = TokenStream::new();
    let rust = naming::value_name(&f.name.name);
    if rust != f.name.name {
        let json = &f.name.name;
        out.extend(quote!(#[serde(rename = #json)]));
    }
    if is_optional(&f.ty) {
        out.extend(
            quote!(#[serde(default, skip_serializing_if = "::core::option::Option::is_none")]),
        );
    }
    out
}

/// The fields of a struct (`public`) or of a variant; `path` names their owner for
/// `field_attributes` (`Type` or `Type.Variant`).
fn fields(fields: &[Field], public: bool, path: &str, options: &Options) -> TokenStream {
    let items = fields.iter().map(|f| {
        let doc = field_docs(&f.docs);
        let dep = deprecated(&f.attrs);
        let mut attrs = field_attrs(f);
        let full = format!("{path}.{}", f.name.name);
        attrs.extend(extra_attrs(&options.field_attributes, |p| p == full));
        let name = value_ident(&f.name.name);
        let ty = rust_type(&f.ty);
        let vis = if public { quote!(pub) } else { quote!() };
        quote!(#doc #dep #attrs #vis #name: #ty)
    });
    quote!(#(#items),*)
}

fn variant_rename(name: &crate::model::Ident) -> TokenStream {
    let rust = naming::type_name(&name.name);
    if rust == name.name {
        quote!()
    } else {
        let json = &name.name;
        quote!(#[serde(rename = #json)])
    }
}

/// Field docs: the IDL's, or none (a doc that only repeats the name says nothing).
fn field_docs(d: &Docs) -> TokenStream {
    if d.is_empty() {
        return quote!();
    }
    docs(d, String::new)
}

/// Variants of an enum or error: unit, or with fields. `owner` is the type's name.
fn variants<'a>(
    items: impl Iterator<
        Item = (
            &'a Docs,
            &'a Attributes,
            &'a crate::model::Ident,
            Option<&'a Vec<Field>>,
        ),
    >,
    owner: &str,
    options: &Options,
) -> (TokenStream, bool) {
    let mut tagged = false;
    let out: Vec<TokenStream> = items
        .map(|(d, attrs, name, fs)| {
            let doc = field_docs(d);
            let mut dep = deprecated(attrs);
            let path = format!("{owner}.{}", name.name);
            dep.extend(extra_attrs(&options.field_attributes, |p| p == path));
            let rename = variant_rename(name);
            let ident = type_ident(&name.name);
            match fs {
                None => quote!(#doc #dep #rename #ident),
                Some(fs) => {
                    tagged = true;
                    let body = fields(fs, false, &path, options);
                    quote!(#doc #dep #rename #ident { #body })
                }
            }
        })
        .collect();
    (quote!(#(#out),*), tagged)
}

/// A struct, enum or error declaration, on its own (derives decided without the rest of
/// its schema: named types inside count as neither `Eq` nor `Default`).
pub fn type_def(t: &TypeDef) -> TokenStream {
    let schema = Schema {
        types: vec![t.clone()],
        ..Schema::default()
    };
    let traits = derive::analyze(&schema)
        .get(t.name().name.as_str())
        .copied()
        .unwrap_or_default();
    type_def_with(t, traits, uses_deprecated(t, &[]), &Options::default())
}

/// Does a field or variant of `t` lack docs?
fn undocumented(t: &TypeDef) -> bool {
    let fields_bare = |fs: &[Field]| fs.iter().any(|f| f.docs.is_empty());
    match t {
        TypeDef::Struct(s) => fields_bare(&s.fields),
        TypeDef::Enum(e) => e
            .variants
            .iter()
            .any(|v| v.docs.is_empty() || v.fields.as_deref().is_some_and(fields_bare)),
        TypeDef::Error(e) => e
            .variants
            .iter()
            .any(|v| v.docs.is_empty() || v.fields.as_deref().is_some_and(fields_bare)),
    }
}

fn type_def_with(
    t: &TypeDef,
    traits: derive::Traits,
    uses_deprecated: bool,
    options: &Options,
) -> TokenStream {
    let type_name = &t.name().name;
    let name = type_ident(type_name);
    let doc = docs(t.docs(), || {
        format!(" The `{}` {} of the interface.", t.name().name, t.keyword())
    });
    let mut dep = deprecated(t.attrs());
    // A field of a `@deprecated` type is a use of it, and so are the derives of a
    // deprecated type or field: the interface's own uses are not the user's, so they do
    // not warn under `deny(warnings)` (the user's uses still do).
    if uses_deprecated {
        dep.extend(quote!(#[allow(deprecated)]));
    }
    // Fields and variants without docs get none (rather than one repeating the name), so
    // that the type still compiles under `deny(missing_docs)`.
    if undocumented(t) {
        dep.extend(quote!(#[allow(missing_docs)]));
    }
    dep.extend(extra_attrs(&options.type_attributes, |p| {
        p == "." || p == type_name
    }));
    let derives = serde_derives(traits);
    match t {
        TypeDef::Struct(s) => {
            let body = fields(&s.fields, true, type_name, options);
            quote! {
                #doc #derives #dep
                pub struct #name { #body }
            }
        }
        TypeDef::Enum(e) => {
            let (body, tagged) = variants(
                e.variants
                    .iter()
                    .map(|v| (&v.docs, &v.attrs, &v.name, v.fields.as_ref())),
                type_name,
                options,
            );
            let tag = tag_attr(tagged);
            let open = if e.attrs.has(AttributeKind::Open) {
                let unknown = type_ident(naming::OPEN_VARIANT);
                let comma = if e.variants.is_empty() {
                    quote!()
                } else {
                    quote!(,)
                };
                quote! {
                    #comma
                    /// A variant this version does not know, sent by a newer peer (the enum
                    /// is `@open`). It cannot be sent back: serializing it is an error.
                    #[serde(other, skip_serializing)]
                    #unknown
                }
            } else {
                quote!()
            };
            quote! {
                #doc #derives #tag #dep
                pub enum #name { #body #open }
            }
        }
        TypeDef::Error(e) => error_def(e, &name, doc, dep, traits, options),
    }
}

fn tag_attr(tagged: bool) -> TokenStream {
    if tagged {
        let tag = naming::ENUM_TAG;
        quote!(#[serde(tag = #tag)])
    } else {
        quote!()
    }
}

fn error_def(
    e: &ErrorDef,
    name: &Ident,
    doc: TokenStream,
    dep: TokenStream,
    traits: derive::Traits,
    options: &Options,
) -> TokenStream {
    let derives = serde_derives(traits);
    let (body, tagged) = variants(
        e.variants
            .iter()
            .map(|v| (&v.docs, &v.attrs, &v.name, v.fields.as_ref())),
        &e.name.name,
        options,
    );
    let tag = tag_attr(tagged);
    let mut display = Vec::new();
    let mut from = Vec::new();
    let mut to = Vec::new();
    for v in &e.variants {
        let variant = type_ident(&v.name.name);
        let code = Literal::i32_unsuffixed(
            v.code
                .value
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(0),
        );
        let message = &v.name.name;
        match &v.fields {
            None => {
                let text = format!("{message} (code {code})");
                display.push(quote!(Self::#variant => __f.write_str(#text)));
                from.push(quote!(#code => ::core::option::Option::Some(Self::#variant)));
                to.push(quote!(Self::#variant => ::wirecall::RpcError::new(#code, #message)));
            }
            Some(fs) => {
                let names: Vec<Ident> = fs.iter().map(|f| value_ident(&f.name.name)).collect();
                let types: Vec<TokenStream> = fs.iter().map(|f| rust_type(&f.ty)).collect();
                let attrs: Vec<TokenStream> = fs.iter().map(field_attrs).collect();
                let format = format!(
                    "{message} (code {code}): {}",
                    fs.iter()
                        .map(|f| format!("{} = {{:?}}", f.name.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                // Generated names start with `__`, which IDL names cannot: a field `f` or a
                // type `Data` of the user's hides none of them.
                display.push(quote!(Self::#variant { #(#names),* } => ::core::write!(__f, #format, #(#names),*)));
                from.push(quote! {
                    #code => {
                        #[derive(::wirecall::__private::serde::Deserialize)]
                        #[serde(crate = #SERDE_DERIVE)]
                        struct __Data { #(#attrs #names: #types),* }
                        let __data: __Data = __error.data()?;
                        ::core::option::Option::Some(Self::#variant { #(#names: __data.#names),* })
                    }
                });
                to.push(quote! {
                    Self::#variant { #(#names),* } => {
                        #[derive(::wirecall::__private::serde::Serialize)]
                        #[serde(crate = #SERDE_DERIVE)]
                        struct __Data<'__a> { #(#attrs #names: &'__a #types),* }
                        ::wirecall::RpcError::new(#code, #message).with_data(__Data { #(#names),* })
                    }
                });
            }
        }
    }
    let from_body = if from.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        quote! {
            match __error.code {
                #(#from,)*
                _ => ::core::option::Option::None,
            }
        }
    };
    let type_name = e.name.name.as_str();
    let allow_dep = quote!(#[allow(deprecated)]);
    quote! {
        #doc #derives #tag #dep
        pub enum #name { #body }

        #allow_dep
        impl ::core::fmt::Display for #name {
            fn fmt(&self, __f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self { #(#display,)* }
            }
        }

        #allow_dep
        impl ::std::error::Error for #name {}

        #allow_dep
        impl ::wirecall::ApplicationError for #name {
            fn from_rpc_error(__error: &::wirecall::RpcError) -> ::core::option::Option<Self> {
                #from_body
            }
            fn to_rpc_error(&self) -> ::wirecall::RpcError {
                match self { #(#to,)* }
            }
            fn type_name() -> ::core::option::Option<&'static str> {
                ::core::option::Option::Some(#type_name)
            }
        }
    }
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

/// The trait a handler side implements, with `into_router`.
fn handler_trait(
    s: &Service,
    name: &Ident,
    doc: &TokenStream,
    dep: &TokenStream,
    methods: &[&Method],
    side: &str,
) -> TokenStream {
    let mut sigs = Vec::new();
    let mut mounts = Vec::new();
    for m in methods {
        if m.kind == MethodKind::Topic {
            // No handler: subscribers get the hub's publications of the key.
            let types: Vec<TokenStream> = m.params.iter().map(|p| rust_type(&p.ty)).collect();
            let names: Vec<&str> = m.params.iter().map(|p| p.name.name.as_str()).collect();
            let wire = wire_name(s, m);
            let item = m.returns.as_ref().map_or(quote!(()), rust_type);
            let publishable = m.attrs.has(AttributeKind::Publishable);
            mounts.push(quote! {
                ::wirecall::__private::register_topic::<(#(#types,)*), #item>(&mut router, #wire, &[#(#names),*], #publishable);
            });
            continue;
        }
        let method = value_ident(&m.name.name);
        let doc = docs(&m.docs, || format!(" Handles `{}`.", m.wire_name(s)));
        let mdep = deprecated(&m.attrs);
        let params: Vec<Ident> = m.params.iter().map(|p| value_ident(&p.name.name)).collect();
        let types: Vec<TokenStream> = m.params.iter().map(|p| rust_type(&p.ty)).collect();
        let names: Vec<&str> = m.params.iter().map(|p| p.name.name.as_str()).collect();
        let wire = wire_name(s, m);
        let ret = m.returns.as_ref().map_or(quote!(()), rust_type);
        let throws = throws_type(m);
        let fault = match &throws {
            Some(e) => quote!(::wirecall::Fault<#e>),
            None => quote!(::wirecall::Fault),
        };
        let output = match m.kind {
            MethodKind::Topic => unreachable!("topics have no handler"),
            MethodKind::Notify => quote!(()),
            MethodKind::Rpc => quote!(::core::result::Result<#ret, #fault>),
            MethodKind::Stream => {
                let items = match &throws {
                    Some(e) => quote!(::wirecall::Items<#ret, #e>),
                    None => quote!(::wirecall::Items<#ret>),
                };
                quote!(::core::result::Result<#items, #fault>)
            }
        };
        let allows = clippy_allows(m, 2);
        sigs.push(quote! {
            #doc #mdep #allows
            fn #method(&self, ctx: ::wirecall::Context, #(#params: #types),*)
                -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
        });
        let register = match m.kind {
            MethodKind::Notify => quote!(register_notify),
            MethodKind::Rpc => quote!(register_rpc),
            MethodKind::Stream => quote!(register_stream),
            MethodKind::Topic => unreachable!("topics have no handler"),
        };
        mounts.push(quote! {
            ::wirecall::__private::#register(
                &mut router,
                #wire,
                &[#(#names),*],
                &service,
                |__service: ::std::sync::Arc<Self>, __ctx: ::wirecall::Context, (#(#params,)*): (#(#types,)*)| async move {
                    // By path: a method named like one of `Arc`'s or a std trait's
                    // (`clone`, `into`, `as_ref`) must still call this trait's.
                    <Self as #name>::#method(&*__service, __ctx, #(#params),*).await
                },
            );
        });
    }
    let into_router_doc =
        format!(" Mount this implementation's {side}-side methods on a new `wirecall::Router`.");
    // Only what is used, so that a service without methods (or with topics only) compiles
    // under `deny(warnings)` too.
    let service_arc = if methods.iter().any(|m| m.kind != MethodKind::Topic) {
        quote!(let service = ::std::sync::Arc::new(self);)
    } else {
        quote!(let _ = self;)
    };
    let body = if mounts.is_empty() {
        quote!(::wirecall::Router::new())
    } else {
        quote! {
            #service_arc
            let mut router = ::wirecall::Router::new();
            #(#mounts)*
            router
        }
    };
    let example = methods
        .iter()
        .find(|m| m.kind != MethodKind::Topic)
        .map_or_else(String::new, |m| {
            format!(
                " (e.g. `async fn {}(&self, ctx: Context, …)`)",
                naming::value_name(&m.name.name)
            )
        });
    let how = [
        String::new(),
        " # Implementing".to_string(),
        String::new(),
        " Write each method as an `async fn`".to_string() + &example + ". The methods are",
        " declared as returning `impl Future + Send` so that handlers can run on a".to_string(),
        " multi-threaded runtime: keep the future `Send` (hold no `Rc` or `MutexGuard` across"
            .to_string(),
        " an `.await`).".to_string(),
    ];
    quote! {
        #doc
        #(#[doc = #how])*
        #dep
        #[allow(deprecated)]
        pub trait #name: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#sigs)*

            #[doc = #into_router_doc]
            #[allow(deprecated, clippy::type_complexity)]
            fn into_router(self) -> ::wirecall::Router
            where
                Self: ::core::marker::Sized,
            {
                #body
            }
        }
    }
}

/// The publishers of a service's topics, over a `wirecall::Hub`.
fn topics_struct(s: &Service, name: &Ident, dep: &TokenStream, topics: &[&Method]) -> TokenStream {
    let fns = topics.iter().map(|m| {
        let method = value_ident(&m.name.name);
        let wire_text = m.wire_name(s);
        let doc = docs(&m.docs, || format!(" The topic `{wire_text}`."));
        let publish = format!(
            " The key of `{wire_text}` to publish to: `.publish(&item).await` reaches every subscriber of it."
        );
        let mdep = deprecated(&m.attrs);
        let params: Vec<Ident> = m.params.iter().map(|p| value_ident(&p.name.name)).collect();
        let types: Vec<TokenStream> = m.params.iter().map(|p| rust_type(&p.ty)).collect();
        let item = m.returns.as_ref().map_or(quote!(()), rust_type);
        let wire = wire_name(s, m);
        let allows = clippy_allows(m, 1);
        quote! {
            #doc
            #[doc = ""]
            #[doc = #publish]
            #mdep #allows
            pub fn #method(&self, #(#params: impl ::core::convert::Into<#types>),*) -> ::wirecall::Topic<#item> {
                ::wirecall::__private::topic(&self.hub, #wire, &(#(::core::convert::Into::<#types>::into(#params),)*))
            }
        }
    });
    let doc = format!(
        " Publishers of the `{}` service's topics: `{name}::new(ctx.hub())` in a handler, or with the hub given to the server.",
        s.name.name
    );
    quote! {
        #[doc = #doc]
        #dep
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        pub struct #name {
            hub: ::wirecall::Hub,
        }

        #[allow(deprecated)]
        impl #name {
            /// The publishers of this service's topics, through `hub`.
            pub fn new(hub: &::wirecall::Hub) -> Self {
                Self { hub: ::core::clone::Clone::clone(hub) }
            }

            #(#fns)*
        }
    }
}

/// A typed client stub over a `wirecall::Caller`.
fn client_struct(
    s: &Service,
    name: &Ident,
    doc: &str,
    dep: &TokenStream,
    methods: &[&Method],
    default_caller: TokenStream,
) -> TokenStream {
    let fns = methods.iter().map(|m| {
        let method = value_ident(&m.name.name);
        let wire_text = m.wire_name(s);
        let doc = docs(&m.docs, || format!(" Calls `{wire_text}`."));
        let mdep = deprecated(&m.attrs);
        let params: Vec<Ident> = m.params.iter().map(|p| value_ident(&p.name.name)).collect();
        let types: Vec<TokenStream> = m.params.iter().map(|p| rust_type(&p.ty)).collect();
        let names: Vec<&str> = m.params.iter().map(|p| p.name.name.as_str()).collect();
        let wire = wire_name(s, m);
        let args = quote!(&::wirecall::__private::NamedParams(&[#(#names),*], (#(&#params,)*)));
        let allows = clippy_allows(m, 1);
        let mdep = quote!(#mdep #allows);
        match m.kind {
            MethodKind::Notify => quote! {
                #doc #mdep
                pub async fn #method(&self, #(#params: #types),*) -> ::core::result::Result<(), ::wirecall::Error> {
                    ::wirecall::__private::notify(&self.caller, #wire, #args).await
                }
            },
            MethodKind::Rpc => {
                let ret = m.returns.as_ref().map_or(quote!(()), rust_type);
                let idempotent = m.is_idempotent();
                let err = match throws_type(m) {
                    Some(e) => quote!(::wirecall::Error<#e>),
                    None => quote!(::wirecall::Error),
                };
                quote! {
                    #doc #mdep
                    pub async fn #method(&self, #(#params: #types),*) -> ::core::result::Result<#ret, #err> {
                        ::wirecall::__private::call(
                            &self.caller,
                            #wire,
                            #args,
                            ::wirecall::CallOptions { timeout: self.timeout, idempotent: #idempotent },
                        ).await
                    }
                }
            }
            MethodKind::Stream | MethodKind::Topic => {
                let item = m.returns.as_ref().map_or(quote!(()), rust_type);
                let (sub, err) = match throws_type(m) {
                    Some(e) => (quote!(::wirecall::Subscription<#item, #e>), quote!(::wirecall::Error<#e>)),
                    None => (quote!(::wirecall::Subscription<#item>), quote!(::wirecall::Error)),
                };
                quote! {
                    #doc #mdep
                    pub async fn #method(&self, #(#params: #types),*) -> ::core::result::Result<#sub, #err> {
                        ::wirecall::__private::subscribe(&self.caller, #wire, #args, self.timeout).await
                    }
                }
            }
        }
    });
    // Notifications take no timeout: a client of notifications only never reads it.
    let timeout_attr = if methods.iter().all(|m| m.kind == MethodKind::Notify) {
        quote!(#[allow(dead_code)])
    } else {
        quote!()
    };
    let doc_caller = format!(
        " The caller's default is `{}`.",
        default_caller.to_string().replace(' ', "")
    );
    quote! {
        #[doc = #doc]
        #[doc = ""]
        #[doc = #doc_caller]
        #dep
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        pub struct #name<C = #default_caller> {
            caller: C,
            #timeout_attr
            timeout: ::core::option::Option<::core::time::Duration>,
        }

        #[allow(deprecated)]
        impl<C: ::wirecall::Caller> #name<C> {
            /// A client that calls through `caller`: a `wirecall::Client`, or a `wirecall::Peer`.
            pub fn new(caller: C) -> Self {
                Self { caller, timeout: ::core::option::Option::None }
            }

            /// A copy whose calls time out after `timeout` instead of the caller's default.
            pub fn with_timeout(&self, timeout: ::core::time::Duration) -> Self {
                Self { caller: ::core::clone::Clone::clone(&self.caller), timeout: ::core::option::Option::Some(timeout) }
            }

            /// The caller this client sends through.
            pub fn caller(&self) -> &C {
                &self.caller
            }

            #(#fns)*
        }
    }
}
