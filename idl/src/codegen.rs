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
    Attributes, Docs, ErrorDef, Field, Method, MethodKind, Schema, Service, Type, TypeDef, TypeKind,
};
use crate::naming;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Structs, enums and errors.
    pub types: bool,
    /// Server traits (and the callbacks client, which the server uses).
    pub server: bool,
    /// Client stubs (and the callbacks trait, which the client implements).
    pub client: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            types: true,
            server: true,
            client: true,
        }
    }
}

/// Generate the Rust code of a whole schema.
pub fn generate(schema: &Schema, options: &Options) -> TokenStream {
    let mut out = TokenStream::new();
    if options.types {
        for t in &schema.types {
            out.extend(type_def(t));
        }
    }
    for s in &schema.services {
        out.extend(service(s, options));
    }
    out
}

/// A Rust identifier for an IDL name (raw when it is a keyword).
fn ident(name: &str) -> Ident {
    if naming::is_raw_keyword(name) {
        Ident::new_raw(name, Span::call_site())
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
        TypeKind::Map(_, v) => {
            let v = rust_type(v);
            quote!(::std::collections::BTreeMap<::std::string::String, #v>)
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

fn serde_derives() -> TokenStream {
    quote! {
        #[derive(
            ::core::fmt::Debug,
            ::core::clone::Clone,
            ::core::cmp::PartialEq,
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

fn fields(fields: &[Field], public: bool) -> TokenStream {
    let items = fields.iter().map(|f| {
        let doc = docs(&f.docs, || format!(" `{}`", f.name.name));
        let dep = deprecated(&f.attrs);
        let attrs = field_attrs(f);
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

/// Variants of an enum or error: unit, or with fields.
fn variants<'a>(
    items: impl Iterator<
        Item = (
            &'a Docs,
            &'a Attributes,
            &'a crate::model::Ident,
            Option<&'a Vec<Field>>,
        ),
    >,
) -> (TokenStream, bool) {
    let mut tagged = false;
    let out: Vec<TokenStream> = items
        .map(|(d, attrs, name, fs)| {
            let doc = docs(d, || format!(" `{}`", name.name));
            let dep = deprecated(attrs);
            let rename = variant_rename(name);
            let ident = type_ident(&name.name);
            match fs {
                None => quote!(#doc #dep #rename #ident),
                Some(fs) => {
                    tagged = true;
                    let body = fields(fs, false);
                    quote!(#doc #dep #rename #ident { #body })
                }
            }
        })
        .collect();
    (quote!(#(#out),*), tagged)
}

/// A struct, enum or error declaration.
pub fn type_def(t: &TypeDef) -> TokenStream {
    let name = type_ident(&t.name().name);
    let doc = docs(t.docs(), || {
        format!(" The `{}` {} of the interface.", t.name().name, t.keyword())
    });
    let dep = deprecated(t.attrs());
    let derives = serde_derives();
    match t {
        TypeDef::Struct(s) => {
            let body = fields(&s.fields, true);
            quote! {
                #doc #dep #derives
                pub struct #name { #body }
            }
        }
        TypeDef::Enum(e) => {
            let (body, tagged) = variants(
                e.variants
                    .iter()
                    .map(|v| (&v.docs, &v.attrs, &v.name, v.fields.as_ref())),
            );
            let tag = tag_attr(tagged);
            quote! {
                #doc #dep #derives #tag
                pub enum #name { #body }
            }
        }
        TypeDef::Error(e) => error_def(e, &name, doc, dep),
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

fn error_def(e: &ErrorDef, name: &Ident, doc: TokenStream, dep: TokenStream) -> TokenStream {
    let derives = serde_derives();
    let (body, tagged) = variants(
        e.variants
            .iter()
            .map(|v| (&v.docs, &v.attrs, &v.name, v.fields.as_ref())),
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
                display.push(quote!(Self::#variant => f.write_str(#text)));
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
                display.push(quote!(Self::#variant { #(#names),* } => ::core::write!(f, #format, #(#names),*)));
                from.push(quote! {
                    #code => {
                        #[derive(::wirecall::__private::serde::Deserialize)]
                        #[serde(crate = #SERDE_DERIVE)]
                        struct Data { #(#attrs #names: #types),* }
                        let data: Data = error.data()?;
                        ::core::option::Option::Some(Self::#variant { #(#names: data.#names),* })
                    }
                });
                to.push(quote! {
                    Self::#variant { #(#names),* } => {
                        #[derive(::wirecall::__private::serde::Serialize)]
                        #[serde(crate = #SERDE_DERIVE)]
                        struct Data<'a> { #(#attrs #names: &'a #types),* }
                        ::wirecall::RpcError::new(#code, #message).with_data(Data { #(#names),* })
                    }
                });
            }
        }
    }
    let from_body = if from.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        quote! {
            match error.code {
                #(#from,)*
                _ => ::core::option::Option::None,
            }
        }
    };
    let allow_dep = quote!(#[allow(deprecated)]);
    quote! {
        #doc #dep #derives #tag
        pub enum #name { #body }

        #allow_dep
        impl ::core::fmt::Display for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self { #(#display,)* }
            }
        }

        impl ::std::error::Error for #name {}

        #allow_dep
        impl ::wirecall::ApplicationError for #name {
            fn from_rpc_error(error: &::wirecall::RpcError) -> ::core::option::Option<Self> {
                #from_body
            }
            fn to_rpc_error(&self) -> ::wirecall::RpcError {
                match self { #(#to,)* }
            }
        }
    }
}

/// Everything a service generates, as far as `options` asks.
pub fn service(s: &Service, options: &Options) -> TokenStream {
    let name = type_ident(&s.name.name);
    let [client_name, callbacks_name, callbacks_client_name] =
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
        sigs.push(quote! {
            #doc #mdep
            fn #method(&self, ctx: ::wirecall::Context, #(#params: #types),*)
                -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
        });
        let register = match m.kind {
            MethodKind::Notify => quote!(register_notify),
            MethodKind::Rpc => quote!(register_rpc),
            MethodKind::Stream => quote!(register_stream),
        };
        mounts.push(quote! {
            ::wirecall::__private::#register(
                &mut router,
                #wire,
                &[#(#names),*],
                &service,
                |__service: ::std::sync::Arc<Self>, __ctx: ::wirecall::Context, (#(#params,)*): (#(#types,)*)| async move {
                    __service.#method(__ctx, #(#params),*).await
                },
            );
        });
    }
    let into_router_doc =
        format!(" Mount this implementation's {side}-side methods on a new `wirecall::Router`.");
    quote! {
        #doc #dep
        #[allow(deprecated)]
        pub trait #name: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#sigs)*

            #[doc = #into_router_doc]
            #[allow(deprecated)]
            fn into_router(self) -> ::wirecall::Router
            where
                Self: ::core::marker::Sized,
            {
                let service = ::std::sync::Arc::new(self);
                let mut router = ::wirecall::Router::new();
                #(#mounts)*
                router
            }
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
                        ::wirecall::__private::call(&self.caller, #wire, #args, self.timeout, #idempotent).await
                    }
                }
            }
            MethodKind::Stream => {
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
