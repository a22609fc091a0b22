// One file, though over ~500 lines: the macro front end is one pipeline (a Rust trait or
// enum → the model → the same validation and generator as `.wire` files); the two entry
// points `expand_service` and `expand_error` share the attribute and type readers above them.
//! The second front end: a Rust trait (`#[wirecall::service]`) or enum
//! (`#[wirecall::error]`) → the model. The `wirecall-macros` crate is a thin shim over
//! this module, which keeps the logic testable with `proc_macro2`.
//!
//! ```ignore
//! #[wirecall::service]
//! pub trait Calculator {
//!     /// The sum of `a` and `b`.
//!     async fn add(a: i64, b: i64) -> i64;
//!     async fn divide(a: f64, b: f64) -> Result<f64, CalcError>;   // `throws CalcError`
//!     #[wirecall(idempotent)]
//!     async fn stats() -> Stats;
//!     #[wirecall(name = "calc_echo")]
//!     async fn echo(text: String) -> String;
//!     #[wirecall(notify)]
//!     async fn log(message: String);
//!     #[wirecall(client)]
//!     async fn confirm(question: String) -> bool;
//! }
//! ```

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::spanned::Spanned;

use crate::codegen::{self, Options};
use crate::diagnostic::Diagnostic;
use crate::model::{self, *};
use crate::validate;

/// The keys `#[wirecall(…)]` accepts on a trait method.
pub const METHOD_KEYS: &[&str] = &[
    "name",
    "idempotent",
    "notify",
    "stream",
    "topic",
    "publishable",
    "client",
];

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}

fn span(s: proc_macro2::Span) -> Span {
    Span::Rust(s)
}

fn ident(i: &syn::Ident) -> model::Ident {
    let text = i.to_string();
    let text = text.strip_prefix("r#").unwrap_or(&text).to_string();
    model::Ident::new(text, span(i.span()))
}

/// Doc comments (`///` and `#[doc = "…"]`) as model docs.
fn docs(attrs: &[syn::Attribute]) -> Docs {
    let mut lines = Vec::new();
    for a in attrs {
        if !a.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &a.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                for line in s.value().lines() {
                    lines.push(
                        line.strip_prefix(' ')
                            .unwrap_or(line)
                            .trim_end()
                            .to_string(),
                    );
                }
            }
        }
    }
    Docs(lines)
}

/// `#[deprecated]` / `#[deprecated = "…"]` / `#[deprecated(note = "…")]` as `@deprecated`.
fn deprecated(attrs: &[syn::Attribute], out: &mut Attributes) {
    for a in attrs {
        if !a.path().is_ident("deprecated") {
            continue;
        }
        let note = match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            syn::Meta::List(_) => {
                let mut note = None;
                let _ = a.parse_nested_meta(|m| {
                    if m.path.is_ident("note") {
                        note = Some(m.value()?.parse::<syn::LitStr>()?.value());
                    }
                    Ok(())
                });
                note
            }
            syn::Meta::Path(_) => None,
        };
        out.0.push(Attribute {
            name: model::Ident::new("deprecated", span(a.span())),
            arg: note.map(|n| (n, span(a.span()))),
            span: span(a.span()),
        });
    }
}

/// Map a Rust type to the model: the IDL's built-in types where they are recognized,
/// anything else kept as Rust source text.
fn rust_type(ty: &syn::Type, errors: &mut Errors) -> Type {
    let sp = span(ty.span());
    let kind = match ty {
        syn::Type::Reference(r) => {
            errors.push(syn::Error::new_spanned(
                r,
                "service parameters and results are owned values: use `String` instead of `&str`, `Vec<T>` instead of `&[T]`",
            ));
            TypeKind::Json
        }
        syn::Type::Paren(p) => return rust_type(&p.elem, errors),
        syn::Type::Path(p) if p.qself.is_none() => path_type(&p.path, errors)
            .unwrap_or_else(|| TypeKind::Rust(ty.to_token_stream().to_string())),
        _ => TypeKind::Rust(ty.to_token_stream().to_string()),
    };
    Type { kind, span: sp }
}

fn generic_args(seg: &syn::PathSegment) -> Vec<&syn::Type> {
    match &seg.arguments {
        syn::PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn path_type(path: &syn::Path, errors: &mut Errors) -> Option<TypeKind> {
    let seg = path.segments.last()?;
    let name = seg.ident.to_string();
    let args = generic_args(seg);
    let qualified: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let prefix_is = |allowed: &[&str]| {
        qualified.len() == 1
            || allowed.contains(&qualified[..qualified.len() - 1].join("::").as_str())
    };
    match (name.as_str(), args.as_slice()) {
        (n, []) if qualified.len() == 1 => {
            if let Some(k) =
                TypeKind::primitive(n).filter(|_| !matches!(n, "string" | "bytes" | "json"))
            {
                return Some(k);
            }
            match n {
                "String" => Some(TypeKind::String),
                _ => None,
            }
        }
        ("String", []) if prefix_is(&["std::string", "alloc::string"]) => Some(TypeKind::String),
        ("Value", []) if prefix_is(&["wirecall", "serde_json"]) && qualified.len() > 1 => {
            Some(TypeKind::Json)
        }
        ("Bytes", []) if qualified.len() > 1 && prefix_is(&["wirecall"]) => Some(TypeKind::Bytes),
        ("Vec", [t]) if prefix_is(&["std::vec", "alloc::vec"]) => {
            Some(TypeKind::List(Box::new(rust_type(t, errors))))
        }
        ("Option", [t]) if prefix_is(&["std::option", "core::option"]) => {
            Some(TypeKind::Optional(Box::new(rust_type(t, errors))))
        }
        ("BTreeMap", [k, v]) if prefix_is(&["std::collections", "alloc::collections"]) => {
            Some(TypeKind::Map(
                Box::new(rust_type(k, errors)),
                Box::new(rust_type(v, errors)),
            ))
        }
        _ => None,
    }
}

/// Is this `Result<T, E>`? Then `(T, E)`.
fn result_parts(ty: &syn::Type) -> Option<(&syn::Type, &syn::Type)> {
    let syn::Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "Result" {
        return None;
    }
    match generic_args(seg).as_slice() {
        [t, e] => Some((t, e)),
        _ => None,
    }
}

fn is_unit(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Tuple(t) if t.elems.is_empty())
}

/// The model of a `#[wirecall::service]` trait. Errors are collected; a partial model
/// (without the methods that failed) is returned with them, for stand-in code.
pub fn service_from_trait(item: &syn::ItemTrait) -> (Service, Option<syn::Error>) {
    let mut errors = Errors::default();
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "a service trait cannot be generic",
        ));
    }
    if item.colon_token.is_some() {
        errors.push(syn::Error::new_spanned(
            &item.supertraits,
            "a service trait cannot have supertraits: the generated trait declares its own (`Send + Sync + 'static`)",
        ));
    }
    let mut attrs = Attributes::default();
    deprecated(&item.attrs, &mut attrs);
    let mut service = Service {
        docs: docs(&item.attrs),
        attrs,
        name: ident(&item.ident),
        methods: Vec::new(),
    };
    for it in &item.items {
        match it {
            syn::TraitItem::Fn(f) => {
                if let Some(m) = method(f, &mut errors) {
                    service.methods.push(m);
                }
            }
            other => errors.push(syn::Error::new_spanned(
                other,
                "a service trait holds only methods (`async fn name(param: Type) -> Result;`)",
            )),
        }
    }
    (service, errors.0)
}

fn method(f: &syn::TraitItemFn, errors: &mut Errors) -> Option<Method> {
    let sig = &f.sig;
    let mut local = Errors::default();
    if sig.asyncness.is_none() {
        local.push(syn::Error::new(
            sig.fn_token.span(),
            "service methods are declared `async fn`",
        ));
    }
    if let Some(body) = &f.default {
        local.push(syn::Error::new(
            body.span(),
            "service methods have no body here: implement them on the generated trait",
        ));
    }
    if !sig.generics.params.is_empty() {
        local.push(syn::Error::new_spanned(
            &sig.generics,
            "service methods cannot be generic",
        ));
    }
    if let Some(v) = &sig.variadic {
        local.push(syn::Error::new(
            v.span(),
            "service methods cannot be variadic",
        ));
    }
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => local.push(syn::Error::new_spanned(
                r,
                "service methods take no `self`: the generated trait adds `&self` and the call context",
            )),
            syn::FnArg::Typed(pt) => match &*pt.pat {
                syn::Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => params.push(Param {
                    docs: Docs::default(),
                    attrs: Attributes::default(),
                    name: ident(&pi.ident),
                    ty: rust_type(&pt.ty, &mut local),
                }),
                other => local.push(syn::Error::new_spanned(other, "parameters are plain names: `name: Type`")),
            },
        }
    }

    let mut attrs = Attributes::default();
    deprecated(&f.attrs, &mut attrs);
    let mut kind = MethodKind::Rpc;
    let mut direction = Direction::ToServer;
    for a in f.attrs.iter().filter(|a| a.path().is_ident("wirecall")) {
        let parsed = a.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let key_span = span(meta.path.span());
            match key.as_str() {
                "name" => {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    attrs.0.push(Attribute {
                        name: model::Ident::new("name", key_span),
                        arg: Some((lit.value(), span(lit.span()))),
                        span: key_span,
                    });
                }
                "idempotent" | "publishable" => attrs.0.push(Attribute {
                    name: model::Ident::new(key.as_str(), key_span),
                    arg: None,
                    span: key_span,
                }),
                "notify" | "stream" | "topic" => {
                    if kind != MethodKind::Rpc {
                        return Err(meta.error(
                            "a method is one of `notify`, `stream` or `topic`, not several",
                        ));
                    }
                    kind = match key.as_str() {
                        "notify" => MethodKind::Notify,
                        "stream" => MethodKind::Stream,
                        _ => MethodKind::Topic,
                    };
                }
                "client" => direction = Direction::ToClient,
                _ => {
                    return Err(meta.error(format!(
                        "unknown argument `{}`, expected one of: {}",
                        meta.path.to_token_stream(),
                        METHOD_KEYS
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
            Ok(())
        });
        if let Err(e) = parsed {
            local.push(e);
        }
    }

    let (returns, throws) = match &sig.output {
        syn::ReturnType::Default => (None, None),
        syn::ReturnType::Type(_, ty) => match result_parts(ty) {
            Some((t, e)) => (
                (!is_unit(t)).then(|| rust_type(t, &mut local)),
                Some(model::Ident::new(
                    e.to_token_stream().to_string().replace(' ', ""),
                    span(e.span()),
                )),
            ),
            None if is_unit(ty) => (None, None),
            None => (Some(rust_type(ty, &mut local)), None),
        },
    };
    let failed = local.0.is_some();
    if let Some(e) = local.0 {
        errors.push(e);
    }
    (!failed).then(|| Method {
        docs: docs(&f.attrs),
        attrs,
        kind,
        direction,
        name: ident(&sig.ident),
        params,
        returns,
        throws,
        span: span(sig.span()),
    })
}

/// The model of a `#[wirecall::error]` enum: each variant carries
/// `#[wirecall(code = N)]`.
pub fn error_from_enum(item: &syn::ItemEnum) -> (ErrorDef, Option<syn::Error>) {
    let mut errors = Errors::default();
    if !item.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "an error enum cannot be generic",
        ));
    }
    let mut attrs = Attributes::default();
    deprecated(&item.attrs, &mut attrs);
    let mut def = ErrorDef {
        docs: docs(&item.attrs),
        attrs,
        name: ident(&item.ident),
        variants: Vec::new(),
    };
    for v in &item.variants {
        let mut code = None;
        for a in v.attrs.iter().filter(|a| a.path().is_ident("wirecall")) {
            let parsed = a.parse_nested_meta(|meta| {
                if meta.path.is_ident("code") {
                    let lit: syn::LitInt = meta.value()?.parse()?;
                    code = Some(ErrorCode {
                        value: lit.base10_parse::<i64>().ok(),
                        span: span(lit.span()),
                    });
                    Ok(())
                } else {
                    Err(meta.error(format!(
                        "unknown argument `{}`, expected `code`",
                        meta.path.to_token_stream()
                    )))
                }
            });
            if let Err(e) = parsed {
                errors.push(e);
            }
        }
        let Some(code) = code else {
            errors.push(syn::Error::new(
                v.ident.span(),
                format!(
                    "variant `{}` needs an error code: `#[wirecall(code = 1001)]`",
                    v.ident
                ),
            ));
            continue;
        };
        if let Some((_, d)) = &v.discriminant {
            errors.push(syn::Error::new(
                d.span(),
                "give the error code with `#[wirecall(code = …)]`, not a discriminant",
            ));
        }
        let fields = match &v.fields {
            syn::Fields::Unit => None,
            syn::Fields::Named(n) => Some(
                n.named
                    .iter()
                    .map(|f| {
                        let mut fattrs = Attributes::default();
                        deprecated(&f.attrs, &mut fattrs);
                        Field {
                            docs: docs(&f.attrs),
                            attrs: fattrs,
                            name: ident(f.ident.as_ref().unwrap_or(&v.ident)),
                            ty: rust_type(&f.ty, &mut errors),
                        }
                    })
                    .collect(),
            ),
            syn::Fields::Unnamed(u) => {
                errors.push(syn::Error::new(
                    u.span(),
                    "error variants have named fields (`Overflow { limit: i64 }`) or none",
                ));
                continue;
            }
        };
        let mut vattrs = Attributes::default();
        deprecated(&v.attrs, &mut vattrs);
        def.variants.push(model::ErrorVariant {
            docs: docs(&v.attrs),
            attrs: vattrs,
            name: ident(&v.ident),
            fields,
            code,
        });
    }
    (def, errors.0)
}

/// Turn validation diagnostics into one `syn::Error` on their spans.
pub fn to_syn_error(diags: &[Diagnostic]) -> Option<syn::Error> {
    let mut errors = Errors::default();
    for d in diags {
        let at = match d.span {
            Span::Rust(s) => s,
            _ => proc_macro2::Span::call_site(),
        };
        let mut message = d.message.clone();
        if let Some(help) = &d.help {
            message.push_str(&format!("\n  = help: {help}"));
        }
        errors.push(syn::Error::new(at, message));
    }
    errors.0
}

/// The whole `#[wirecall::service]` expansion: the generated code, or the errors plus
/// stand-in items (so that a mistake does not flood the user with follow-on errors).
pub fn expand_service(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "`#[wirecall::service]` takes no arguments",
        ));
    }
    let item: syn::ItemTrait = match syn::parse2(item) {
        Ok(i) => i,
        Err(e) => {
            return syn::Error::new(e.span(), "`#[wirecall::service]` goes on a trait")
                .to_compile_error();
        }
    };
    let (service, front_errors) = service_from_trait(&item);
    if let Some(e) = front_errors {
        errors.push(e);
    }
    let schema = Schema {
        types: Vec::new(),
        services: vec![service],
    };
    let diags = validate::validate_with(&schema, &validate::Rules::rust());
    if let Some(e) = to_syn_error(&diags) {
        errors.push(e);
    }
    let vis = &item.vis;
    let mut schema = schema;
    if errors.0.is_some() {
        // Stand-ins: keep the methods whose names are unique (not a topic's
        // `authorize_<topic>` hook either), so the generated items exist and uses of them
        // do not fail a second time.
        let mut seen = std::collections::HashSet::new();
        for s in &mut schema.services {
            let hooks: std::collections::HashSet<String> = s
                .methods
                .iter()
                .filter(|m| m.kind == MethodKind::Topic && m.direction == Direction::ToServer)
                .map(|m| crate::naming::authorize_hook(&m.name.name))
                .collect();
            s.methods.retain(|m| {
                let name = crate::naming::value_name(&m.name.name);
                let hook = m.kind != MethodKind::Topic
                    && m.direction == Direction::ToServer
                    && hooks.contains(&name);
                !crate::naming::RESERVED_METHODS.contains(&name.as_str())
                    && !hook
                    && seen.insert((m.direction, name))
            });
        }
    }
    let code = adopt(
        codegen::generate(&schema, &Options::default()),
        &item.ident,
        vis,
        &item.attrs,
    );
    let errors = errors.0.map(|e| e.to_compile_error());
    quote!(#errors #code)
}

/// The `#[wirecall::error]` expansion.
pub fn expand_error(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "`#[wirecall::error]` takes no arguments",
        ));
    }
    let item: syn::ItemEnum = match syn::parse2(item) {
        Ok(i) => i,
        Err(e) => {
            return syn::Error::new(e.span(), "`#[wirecall::error]` goes on an enum")
                .to_compile_error()
        }
    };
    let (def, front_errors) = error_from_enum(&item);
    // Variants the front end refused are missing from the model: do not report it as an
    // error without variants as well.
    let partial = front_errors.is_some() && def.variants.is_empty();
    if let Some(e) = front_errors {
        errors.push(e);
    }
    let schema = Schema {
        types: vec![TypeDef::Error(def)],
        services: Vec::new(),
    };
    if !partial {
        let diags = validate::validate_with(&schema, &validate::Rules::rust());
        if let Some(e) = to_syn_error(&diags) {
            errors.push(e);
        }
    }
    match errors.0 {
        None => adopt(
            // The user's own `#[derive]`s on the enum stay theirs.
            codegen::generate(
                &schema,
                &Options {
                    sound_derives: false,
                    ..Options::default()
                },
            ),
            &item.ident,
            &item.vis,
            &item.attrs,
        ),
        Some(e) => {
            let e = e.to_compile_error();
            let stand_in = error_stand_in(item);
            quote!(#e #stand_in)
        }
    }
}

/// After a mistake in a `#[wirecall::error]` enum: the enum as written (without the
/// `#[wirecall]` attributes) and trait impls that compile, so that uses of it do not fail
/// a second time.
fn error_stand_in(mut item: syn::ItemEnum) -> TokenStream {
    item.attrs.retain(|a| !a.path().is_ident("wirecall"));
    for v in &mut item.variants {
        v.attrs.retain(|a| !a.path().is_ident("wirecall"));
    }
    let name = &item.ident;
    quote! {
        #item
        impl ::core::fmt::Display for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(::core::stringify!(#name))
            }
        }
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(::core::stringify!(#name))
            }
        }
        impl ::std::error::Error for #name {}
        impl ::wirecall::ApplicationError for #name {
            fn from_rpc_error(_: &::wirecall::RpcError) -> ::core::option::Option<Self> {
                ::core::option::Option::None
            }
            fn to_rpc_error(&self) -> ::wirecall::RpcError {
                ::wirecall::RpcError::internal(::core::stringify!(#name))
            }
        }
    }
}

/// Generated items are `pub`; give them the visibility the user's item had instead, and
/// keep the user's other attributes (`#[derive(…)]`, `#[cfg(…)]`, lints) on the item that
/// replaces theirs.
fn adopt(
    code: TokenStream,
    name: &syn::Ident,
    vis: &syn::Visibility,
    attrs: &[syn::Attribute],
) -> TokenStream {
    let Ok(mut file) = syn::parse2::<syn::File>(code.clone()) else {
        return code;
    };
    let extra: Vec<syn::Attribute> = attrs
        .iter()
        .filter(|a| {
            !["doc", "deprecated", "wirecall"]
                .iter()
                .any(|n| a.path().is_ident(n))
        })
        .cloned()
        .collect();
    for item in &mut file.items {
        let (item_vis, item_attrs, ident) = match item {
            syn::Item::Struct(s) => (&mut s.vis, &mut s.attrs, &s.ident),
            syn::Item::Enum(e) => (&mut e.vis, &mut e.attrs, &e.ident),
            syn::Item::Trait(t) => (&mut t.vis, &mut t.attrs, &t.ident),
            _ => continue,
        };
        *item_vis = vis.clone();
        if ident == name {
            item_attrs.extend(extra.iter().cloned());
        }
    }
    file.into_token_stream()
}
