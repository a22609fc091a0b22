//! Errors: an IDL `error` becomes an enum with `Display`, `std::error::Error` and
//! `wirecall::ApplicationError` (its variants' codes and data both ways).

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use super::derive;
use super::types::{field_attrs, serde_derives, tag_attr, variants, SERDE_DERIVE};
use super::{rust_type, type_ident, value_ident, Options};
use crate::model::ErrorDef;

pub(super) fn error_def(
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
