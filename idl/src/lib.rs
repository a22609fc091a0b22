//! The wirecall interface language (`.wire` files): parser, model, validation and
//! diagnostics.
//!
//! Most users never call this crate directly: `wirecall check` (the CLI) and the build.rs
//! API use it. Tools that want the model of an interface load it like this:
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
//! (imports), [`validate`] (checks), [`diagnostic`] (rendering). The language is described
//! in `docs/IDL.md`.

pub mod build;
pub mod codegen;
pub mod diagnostic;
pub mod fmt;
pub mod load;
pub mod model;
pub mod naming;
pub mod openrpc;
pub mod parse;
pub mod rust;
pub mod typescript;
pub mod validate;

pub use build::{configure, BuildError, Builder};
pub use diagnostic::{Diagnostic, Diagnostics, SourceMap};
pub use load::{load, Loaded, Loader};
pub use model::Schema;
