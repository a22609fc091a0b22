//! Procedural macros of wirecall. Use them through the `wirecall` crate.
