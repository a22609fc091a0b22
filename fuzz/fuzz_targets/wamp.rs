//! The WAMP adapter and its session, with each serializer (JSON, msgpack, CBOR), fed a
//! random sequence of valid WAMP messages of every type, arbitrary bytes, timer and
//! disconnect events: no panic, every CALL ends exactly once, every message out is valid
//! in its serializer, and the adapter's and session's tables are empty at the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirecall::fuzzing::{WampOp, WampSerializer, HANDLER_PANIC};

fuzz_target!(
    init: {
        // libFuzzer's hook aborts on every panic, even one the session catches: the
        // handler that panics on purpose (the session answers it) must not count.
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&HANDLER_PANIC) {
                report(info);
            }
        }));
    },
    |input: (WampSerializer, Vec<WampOp>)| {
        let (serializer, ops) = input;
        wirecall::fuzzing::wamp(serializer, ops);
    }
);
