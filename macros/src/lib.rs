//! Procedural macros of wirecall. Use them through the `wirecall` crate.

use proc_macro::TokenStream;

/// Turn a trait into a service; see the `wirecall` crate docs.
#[proc_macro_attribute]
pub fn service(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
