//! The `.wire` front end on arbitrary text: parse, load, validate and every generator.
//! No panic, no hang; for every file `check` accepts, the Rust generator's output parses
//! with `syn`, and the TypeScript and OpenRPC generators succeed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = wirecall_idl::Loader::new()
        .with_source("fuzz.wire", text)
        .load("fuzz.wire");
    let Ok(loaded) = loaded else { return };
    let tokens = wirecall_idl::codegen::generate(&loaded.schema, &Default::default());
    if let Err(e) = syn::parse2::<syn::File>(tokens) {
        panic!("the Rust generator's output does not parse: {e}\n--- input ---\n{text}");
    }
    if let Err(e) = wirecall_idl::typescript::generate(&loaded, "fuzz.wire") {
        // TypeScript-only rules (reserved names) may refuse a file `check` accepts; they
        // must say so with a diagnostic, which they did.
        assert!(!e.items.is_empty());
    }
    let doc = wirecall_idl::openrpc::document(&loaded.schema, "fuzz", "0.0.0");
    assert!(serde_json::to_string(&doc).is_ok());
});
