//! Structs and enums: the declaration of each IDL type, its derives (serde's and the
//! standard traits `derive.rs` finds sound), its docs and attributes.

use proc_macro2::TokenStream;
use quote::quote;

use super::derive;
use super::errors::error_def;
use super::{
    deprecated, docs, extra_attrs, is_optional, rust_type, type_ident, value_ident, Options,
};
use crate::model::{AttributeKind, Attributes, Docs, Field, Schema, Type, TypeDef, TypeKind};
use crate::naming;

/// Does the declaration of `t` use something deprecated: itself (in its derives), a
/// deprecated field or variant, or a field of a type in `deprecated`?
pub(super) fn uses_deprecated(t: &TypeDef, deprecated: &[&str]) -> bool {
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

pub(super) const SERDE_DERIVE: &str = "::wirecall::__private::serde";

pub(super) fn serde_derives(traits: derive::Traits) -> TokenStream {
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
pub(super) fn field_attrs(f: &Field) -> TokenStream {
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
pub(super) fn variants<'a>(
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

pub(super) fn type_def_with(
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

pub(super) fn tag_attr(tagged: bool) -> TokenStream {
    if tagged {
        let tag = naming::ENUM_TAG;
        quote!(#[serde(tag = #tag)])
    } else {
        quote!()
    }
}
