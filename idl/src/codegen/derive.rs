//! Which standard traits a generated type can derive soundly.
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
        TypeKind::List(t) | TypeKind::Optional(t) | TypeKind::Map(_, t) => eq(schema, t, visiting),
        TypeKind::Named(n) => schema
            .type_def(n)
            .is_some_and(|t| type_def_eq(schema, t, visiting)),
        _ => true,
    }
}

fn type_def_default<'a>(schema: &'a Schema, t: &'a TypeDef, visiting: &mut Vec<&'a str>) -> bool {
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
