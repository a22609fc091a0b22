//! The session core fed a random sequence of inbound frames and of timer, cancel and
//! disconnect events: no panic, every call ends exactly once, and the tables of running
//! calls and streams do not grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirecall::fuzzing::SessionOp;

fuzz_target!(|ops: Vec<SessionOp>| {
    wirecall::fuzzing::session(ops);
});
