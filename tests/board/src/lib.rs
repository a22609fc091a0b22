//! A user's crate built from `board.wire` with `wirecall_idl::configure()` options:
//! `type_attribute`, `field_attribute` and `extern_path`. It compiles under
//! `deny(warnings, missing_docs)`; `tests/board.rs` uses what the options add.

#![deny(warnings, missing_docs)]

/// The application's own money type, shared with the rest of the application; the IDL's
/// `Money` is generated as this (`extern_path`).
pub mod money {
    use serde::{Deserialize, Serialize};

    /// An amount of money.
    #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub struct Money {
        /// In cents.
        pub cents: i64,
        /// ISO 4217.
        pub currency: String,
    }

    impl Money {
        /// `cents` euro cents.
        pub fn eur(cents: i64) -> Money {
            Money {
                cents,
                currency: "EUR".into(),
            }
        }
    }
}

/// The code generated from `board.wire`.
pub mod board {
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}
