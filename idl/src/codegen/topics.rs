//! The topic publishers: `STopics`, one typed `wirecall::hub::Topic` per `topic` of a service.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{clippy_allows, deprecated, docs, rust_type, value_ident, wire_name};
use crate::model::{Method, Service};

/// The publishers of a service's topics, over a `wirecall::hub::Hub`.
pub(super) fn topics_struct(
    s: &Service,
    name: &Ident,
    dep: &TokenStream,
    topics: &[&Method],
) -> TokenStream {
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
            pub fn #method(&self, #(#params: impl ::core::convert::Into<#types>),*) -> ::wirecall::hub::Topic<#item> {
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
            hub: ::wirecall::hub::Hub,
        }

        #[allow(deprecated)]
        impl #name {
            /// The publishers of this service's topics, through `hub`.
            pub fn new(hub: &::wirecall::hub::Hub) -> Self {
                Self { hub: ::core::clone::Clone::clone(hub) }
            }

            #(#fns)*
        }
    }
}
