//! The `.wire` front end on arbitrary text: parse, load, validate, `fmt` and every
//! generator. No panic, no hang; for every file `check` accepts, every Rust identifier made
//! of its names is an identifier (not a keyword, not a number), the Rust generator's
//! output parses with `syn`, the TypeScript and OpenRPC generators succeed, and `fmt` is
//! idempotent and keeps the generated Rust identical; `wirecall breaking` finds a file
//! compatible with itself and with its formatting. The invariants live in
//! `wirecall_idl::fuzzing`, where `cargo test -p wirecall-idl` runs them on every `.wire`
//! file of the repository.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    wirecall_idl::fuzzing::idl(text);
});
