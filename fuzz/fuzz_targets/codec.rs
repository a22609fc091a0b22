//! The JSON-RPC codec on arbitrary bytes: message classification and params decoding (by
//! name and by position, into several typed tuples). No panic; every message the codec
//! accepts re-encodes to JSON that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    wirecall::fuzzing::codec(text);
});
