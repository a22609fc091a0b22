//! The `.wire` front end on arbitrary text: parse, load, validate, `fmt` and every
//! generator. No panic, no hang; for every file `check` accepts, the Rust generator's
//! output parses with `syn`, the TypeScript and OpenRPC generators succeed, and `fmt` is
//! idempotent and keeps the generated Rust identical; `wirecall breaking` finds a file
//! compatible with itself and with its formatting.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = wirecall_idl::Loader::new()
        .with_source("fuzz.wire", text)
        .load("fuzz.wire");
    // `fmt` of any text that parses: it must not panic, whether or not the file validates.
    let formatted = wirecall_idl::fmt::format("fuzz.wire", text);
    let Ok(loaded) = loaded else { return };
    let tokens = wirecall_idl::codegen::generate(&loaded.schema, &Default::default());
    let rust = tokens.to_string();
    if let Err(e) = syn::parse2::<syn::File>(tokens) {
        panic!("the Rust generator's output does not parse: {e}\n--- input ---\n{text}");
    }
    let formatted = formatted.unwrap_or_else(|e| panic!("fmt refuses a valid file: {e}\n{text}"));
    let again = wirecall_idl::fmt::format("fuzz.wire", &formatted).expect("formatted text parses");
    assert_eq!(again, formatted, "fmt is not idempotent on\n{text}");
    let reloaded = wirecall_idl::Loader::new()
        .with_source("fuzz.wire", formatted.as_str())
        .load("fuzz.wire")
        .unwrap_or_else(|d| panic!("the formatted file does not load: {d}\n{formatted}"));
    let rust_after = wirecall_idl::codegen::generate(&reloaded.schema, &Default::default());
    assert_eq!(rust, rust_after.to_string(), "fmt changed the meaning of\n{text}");
    // A file is compatible with itself, and with its own formatting, by every rule set.
    let strict = wirecall_idl::breaking::Options {
        rules: wirecall_idl::breaking::RuleSet::Strict,
        both: true,
    };
    let same = wirecall_idl::breaking::check(&loaded.schema, &loaded.schema, strict);
    assert!(same.is_empty(), "breaking(x, x) = {same:?} for\n{text}");
    let after_fmt = wirecall_idl::breaking::check(&loaded.schema, &reloaded.schema, strict);
    assert!(after_fmt.is_empty(), "breaking(x, fmt(x)) = {after_fmt:?} for\n{text}");
    if let Err(e) = wirecall_idl::typescript::generate(&loaded, "fuzz.wire") {
        // TypeScript-only rules (reserved names) may refuse a file `check` accepts; they
        // must say so with a diagnostic, which they did.
        assert!(!e.items.is_empty());
    }
    let doc = wirecall_idl::openrpc::document(&loaded.schema, "fuzz", "0.0.0");
    assert!(serde_json::to_string(&doc).is_ok());
});
