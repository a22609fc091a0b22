//! Generated code names everything by absolute path and documents everything: it compiles
//! under `no_implicit_prelude` and `deny(missing_docs, warnings)`.
#![deny(missing_docs, warnings)]

/// The service lives in a module without the prelude.
pub mod api {
    #![no_implicit_prelude]

    /// Fails.
    #[::wirecall::error]
    pub enum Oops {
        /// Bad.
        #[wirecall(code = 7)]
        Bad {
            /// Why.
            why: ::std::string::String,
        },
    }

    /// A service.
    #[::wirecall::service]
    pub trait Svc {
        /// Method.
        async fn go(x: ::std::vec::Vec<u8>, y: ::std::option::Option<bool>) -> ::std::string::String;
        /// Throws.
        async fn fail() -> ::std::result::Result<(), Oops>;
        /// Notify.
        #[wirecall(notify)]
        async fn tell(n: u32);
    }
}

fn main() {}
