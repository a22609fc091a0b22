//! The session core fed a random sequence of inbound frames and of timer, cancel and
//! disconnect events: no panic, every call ends exactly once, and the tables of running
//! calls and streams do not grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirecall::fuzzing::{SessionOp, HANDLER_PANIC};

fuzz_target!(
    init: {
        // libFuzzer's hook aborts on every panic, even one the session catches: the
        // handler that panics on purpose (the session answers it -32603) must not count.
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&HANDLER_PANIC) {
                report(info);
            }
        }));
    },
    |ops: Vec<SessionOp>| {
        wirecall::fuzzing::session(ops);
    }
);
