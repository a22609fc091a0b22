//! Procedural macros of wirecall: a thin shim over `wirecall_idl::rust`, where the logic
//! lives (and is unit-tested). Use them through the `wirecall` crate.

use proc_macro::TokenStream;

/// Turn a trait into a wirecall service: the same code a `.wire` file generates.
///
/// See the `wirecall` crate documentation for the full description.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    wirecall_idl::rust::expand_service(attr.into(), item.into()).into()
}

/// Turn an enum into a typed application error: each variant has
/// `#[wirecall(code = N)]`.
#[proc_macro_attribute]
pub fn error(attr: TokenStream, item: TokenStream) -> TokenStream {
    wirecall_idl::rust::expand_error(attr.into(), item.into()).into()
}
