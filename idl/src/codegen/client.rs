//! The typed clients: `SClient` over a `wirecall::Client`, and `SCallbacksClient` (the
//! server's handle on a connected client) over a `wirecall::Peer`.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{clippy_allows, deprecated, docs, rust_type, throws_type, value_ident, wire_name};
use crate::model::{Method, MethodKind, Service};

/// A typed client stub over a `wirecall::Caller`.
pub(super) fn client_struct(
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
