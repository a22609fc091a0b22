//! The wirecall interface language (`.wire` files): parser, model, validation,
//! diagnostics, the formatter, and the generators (Rust, TypeScript, OpenRPC).
//!
//! Most users meet this crate through [`configure`] in their build.rs (Rust code from a
//! `.wire` file, with derives, attributes and extern paths of their own) and through the
//! `wirecall` command (`check`, `fmt`, `gen rust|ts|openrpc`), which uses it. Tools that
//! want the model of an interface load it like this:
//!
//! ```no_run
//! let loaded = match wirecall_idl::load("idl/calculator.wire") {
//!     Ok(loaded) => loaded,
//!     Err(diagnostics) => {
//!         // `path:line:col: error: …` with the source line and a caret, for every error.
//!         eprint!("{diagnostics}");
//!         std::process::exit(1);
//!     }
//! };
//! for service in &loaded.schema.services {
//!     for method in &service.methods {
//!         println!("{}", method.wire_name(service));
//!     }
//! }
//! ```
//!
//! The pipeline has one stage per module: [`parse`] (pest grammar → [`model`]), [`load`](mod@load)
//! (imports), [`validate`] (checks), [`diagnostic`] (rendering); then [`codegen`] (Rust,
//! behind [`build`] and the `#[wirecall::service]` macro), [`typescript`], [`openrpc`] and
//! [`fmt`]. The language is described in `docs/IDL.md`.

//! Cargo feature `files` (default): everything that reads `.wire` files — [`parse`],
//! [`load`](mod@load), [`fmt`], [`build`], [`typescript`], [`openrpc`]. Without it, only what
//! the `#[wirecall::service]` macro needs (the model, validation and the Rust generator),
//! so a crate that uses the macro alone does not build the pest parser or prettyplease.

pub mod breaking;
#[cfg(feature = "files")]
pub mod build;
pub mod codegen;
pub mod diagnostic;
#[cfg(feature = "files")]
pub mod fmt;
#[cfg(all(feature = "files", any(test, feature = "fuzzing")))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "files")]
pub mod load;
pub mod model;
pub mod naming;
#[cfg(feature = "files")]
pub mod openrpc;
#[cfg(feature = "files")]
pub mod parse;
pub mod rust;
#[cfg(feature = "files")]
pub mod typescript;
pub mod validate;

#[cfg(feature = "files")]
pub use build::{configure, BuildError, Builder};
pub use diagnostic::{Diagnostic, Diagnostics, SourceMap};
#[cfg(feature = "files")]
pub use load::{load, Loaded, Loader};
pub use model::Schema;
