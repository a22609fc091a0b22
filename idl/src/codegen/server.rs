//! The handler traits: `trait S` that the server implements, and `trait SCallbacks` that a
//! client application implements for the `client { … }` methods (the same shape: a handler
//! side, with `into_router`).

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::{clippy_allows, deprecated, docs, rust_type, throws_type, value_ident, wire_name};
use crate::model::{AttributeKind, Method, MethodKind, Service};
use crate::naming;

/// The trait a handler side implements, with `into_router`.
pub(super) fn handler_trait(
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
            let params: Vec<Ident> = m.params.iter().map(|p| value_ident(&p.name.name)).collect();
            let authorize = format_ident!("{}", naming::authorize_hook(&m.name.name));
            let what = if publishable {
                "subscribe to, or publish to,"
            } else {
                "subscribe to"
            };
            let doc = format!(
                " Whether the connection of `ctx` may {what} the key of `{}` given by the \
                 arguments. Consulted on every subscription (JSON-RPC, server-sent events, \
                 WAMP `SUBSCRIBE`){}; a refusal answers `-32003` (WAMP \
                 `wamp.error.not_authorized`). Allows everything unless implemented.",
                m.wire_name(s),
                if publishable {
                    " and every WAMP `PUBLISH`"
                } else {
                    ""
                },
            );
            sigs.push(quote! {
                #[doc = #doc]
                fn #authorize(&self, ctx: ::wirecall::Context, #(#params: #types),*)
                    -> impl ::core::future::Future<Output = ::core::result::Result<(), ::wirecall::auth::Refusal>> + ::core::marker::Send
                {
                    let _ = (ctx, #(#params),*);
                    async { ::core::result::Result::Ok(()) }
                }
            });
            mounts.push(quote! {
                ::wirecall::__private::register_topic::<(#(#types,)*), #item, Self, _, _>(
                    &mut router,
                    #wire,
                    &[#(#names),*],
                    #publishable,
                    &service,
                    |__service: ::std::sync::Arc<Self>, __ctx: ::wirecall::Context, (#(#params,)*): (#(#types,)*)| async move {
                        <Self as #name>::#authorize(&*__service, __ctx, #(#params),*).await
                    },
                );
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
    let into_router_doc = format!(
        " Mount this implementation's {side}-side methods on a new `wirecall::raw::Router`."
    );
    // (Topics need the service too: their `authorize_…` hooks.)
    let service_arc = quote!(let service = ::std::sync::Arc::new(self););
    let body = if mounts.is_empty() {
        quote!(::wirecall::raw::Router::new())
    } else {
        quote! {
            #service_arc
            let mut router = ::wirecall::raw::Router::new();
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
            fn into_router(self) -> ::wirecall::raw::Router
            where
                Self: ::core::marker::Sized,
            {
                #body
            }
        }
    }
}
