//! The invariants of the `idl` fuzz target in `fuzz/` (feature `fuzzing`; not a public
//! API). [`idl`] panics when one fails, so that libFuzzer reports it; the unit tests run it
//! on every `.wire` file of the repository.

use crate::model::{Schema, TypeDef};
use crate::{fmt, naming, Loader};

/// Parse, load, validate, `fmt` and every generator on arbitrary text. No panic, no hang;
/// for every file `check` accepts:
/// - every identifier the Rust generator makes of a name of the file is an identifier
///   (not a keyword such as `Self`, not a number such as `1`);
/// - the generated Rust parses with `syn`;
/// - the TypeScript and OpenRPC generators succeed;
/// - `fmt` is idempotent and keeps the generated Rust identical;
/// - `wirecall breaking` finds the file compatible with itself and with its formatting.
pub fn idl(text: &str) {
    let loaded = Loader::new()
        .with_source("fuzz.wire", text)
        .load("fuzz.wire");
    // `fmt` of any text that parses: it must not panic, whether or not the file validates.
    let formatted = fmt::format("fuzz.wire", text);
    let Ok(loaded) = loaded else { return };
    for (name, rust) in rust_names(&loaded.schema) {
        let written = if naming::is_raw_keyword(&rust) {
            format!("r#{rust}")
        } else {
            rust.clone()
        };
        if syn::parse_str::<syn::Ident>(&written).is_err() {
            panic!("`{name}` becomes `{written}` in Rust, which is not an identifier\n--- input ---\n{text}");
        }
    }
    let tokens = crate::codegen::generate(&loaded.schema, &Default::default());
    let rust = tokens.to_string();
    if let Err(e) = syn::parse2::<syn::File>(tokens) {
        panic!("the Rust generator's output does not parse: {e}\n--- input ---\n{text}");
    }
    let formatted = formatted.unwrap_or_else(|e| panic!("fmt refuses a valid file: {e}\n{text}"));
    let again = fmt::format("fuzz.wire", &formatted).expect("formatted text parses");
    assert_eq!(again, formatted, "fmt is not idempotent on\n{text}");
    let reloaded = Loader::new()
        .with_source("fuzz.wire", formatted.as_str())
        .load("fuzz.wire")
        .unwrap_or_else(|d| panic!("the formatted file does not load: {d}\n{formatted}"));
    let rust_after = crate::codegen::generate(&reloaded.schema, &Default::default());
    assert_eq!(
        rust,
        rust_after.to_string(),
        "fmt changed the meaning of\n{text}"
    );
    // A file is compatible with itself, and with its own formatting, by every rule set.
    let strict = crate::breaking::Options {
        rules: crate::breaking::RuleSet::Strict,
        both: true,
    };
    let same = crate::breaking::check(&loaded.schema, &loaded.schema, strict);
    assert!(same.is_empty(), "breaking(x, x) = {same:?} for\n{text}");
    let after_fmt = crate::breaking::check(&loaded.schema, &reloaded.schema, strict);
    assert!(
        after_fmt.is_empty(),
        "breaking(x, fmt(x)) = {after_fmt:?} for\n{text}"
    );
    // `check` applies the TypeScript rules too: what it accepts, TypeScript can take.
    if let Err(e) = crate::typescript::generate(&loaded, "fuzz.wire") {
        panic!("`check` accepts what TypeScript refuses: {e}\n--- input ---\n{text}");
    }
    let doc = crate::openrpc::document(&loaded.schema, "fuzz", "0.0.0");
    assert!(serde_json::to_string(&doc).is_ok());
}

/// Every name of the schema that becomes a Rust identifier, with that identifier (without
/// `r#`): types, variants, services and the items they generate, fields, methods, params.
fn rust_names(schema: &Schema) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut ty = |n: &str| (n.to_string(), naming::type_name(n));
    let value = |n: &str| (n.to_string(), naming::value_name(n));
    for t in &schema.types {
        out.push(ty(&t.name().name));
        let (variants, fields): (Vec<&str>, Vec<&str>) = match t {
            TypeDef::Struct(s) => (
                Vec::new(),
                s.fields.iter().map(|f| f.name.name.as_str()).collect(),
            ),
            TypeDef::Enum(e) => (
                e.variants.iter().map(|v| v.name.name.as_str()).collect(),
                e.variants
                    .iter()
                    .flat_map(|v| v.fields.iter().flatten())
                    .map(|f| f.name.name.as_str())
                    .collect(),
            ),
            TypeDef::Error(e) => (
                e.variants.iter().map(|v| v.name.name.as_str()).collect(),
                e.variants
                    .iter()
                    .flat_map(|v| v.fields.iter().flatten())
                    .map(|f| f.name.name.as_str())
                    .collect(),
            ),
        };
        out.extend(variants.into_iter().map(&mut ty));
        out.extend(fields.into_iter().map(value));
    }
    for s in &schema.services {
        out.push(ty(&s.name.name));
        for item in naming::service_items(&s.name.name) {
            out.push((s.name.name.clone(), item));
        }
        for m in &s.methods {
            out.push(value(&m.name.name));
            out.extend(m.params.iter().map(|p| value(&p.name.name)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Every `.wire` file under `dir`, recursively (build output and `node_modules` left out).
    fn wire_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if !matches!(name.to_str(), Some("target" | "node_modules" | ".git")) {
                    wire_files(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "wire") {
                out.push(path);
            }
        }
    }

    /// The fuzz target's invariants on its seeds: every `.wire` file of the repository (the
    /// examples, the golden files, the diagnostics and the torture corpus).
    #[test]
    fn invariants_hold_on_the_seed_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["examples", "idl/tests", "tests"] {
            wire_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 50, "{files:?}");
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            super::idl(&text);
        }
    }

    /// The cases that broke before the property was checked: each is now refused, so the
    /// invariants hold; and the names check sees what is wrong with them.
    #[test]
    fn names_that_are_not_identifiers_are_caught() {
        for (text, bad) in [
            ("struct P { SELF: u8 }", "self"),
            ("struct self_ { x: u8 }", "Self"),
            ("struct _1 { x: u8 }", "1"),
            ("service S { rpc m(Self_: u8); }", "self"),
        ] {
            super::idl(text);
            let file = crate::parse::parse_file(crate::model::FileId(0), text).unwrap();
            let schema = crate::Schema {
                types: file.types,
                services: file.services,
            };
            let names = super::rust_names(&schema);
            assert!(
                names.iter().any(|(_, rust)| rust == bad),
                "{text}: {names:?}"
            );
            assert!(syn::parse_str::<syn::Ident>(bad).is_err());
        }
    }
}
