//! The `build.rs` API: compile `.wire` files into Rust code in `OUT_DIR`.
//!
//! Three steps, as with prost and tonic:
//!
//! 1. `Cargo.toml`:
//!
//!    ```toml
//!    [dependencies]
//!    wirecall = "0.1"
//!
//!    [build-dependencies]
//!    wirecall-idl = "0.1"
//!    ```
//!
//! 2. `build.rs`:
//!
//!    ```no_run
//!    fn main() -> Result<(), Box<dyn std::error::Error>> {
//!        wirecall_idl::configure()
//!            .client(true)
//!            .server(true)
//!            .compile(&["idl/calculator.wire"])?;
//!        Ok(())
//!    }
//!    ```
//!
//! 3. In the crate: `mod calculator { wirecall::include_idl!("calculator"); }`.
//!
//! IDL mistakes fail the build with the same `file:line:col` diagnostics as
//! `wirecall check`. The output is written only when its content changed (so unchanged
//! interfaces do not trigger rebuilds), starts with an `@generated` header, is formatted
//! with prettyplease, and every file read (imports too) is reported with
//! `cargo:rerun-if-changed`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::codegen::{self, Options};
use crate::diagnostic::Diagnostics;
use crate::load::Loader;

/// Start configuring code generation; see the [module docs](self).
pub fn configure() -> Builder {
    Builder::default()
}

/// What to generate and where.
#[derive(Clone, Debug)]
pub struct Builder {
    options: Options,
    out_dir: Option<PathBuf>,
    emit_rerun: bool,
    openrpc: bool,
    api_version: Option<String>,
    breaking_against: Option<PathBuf>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            options: Options::default(),
            out_dir: None,
            emit_rerun: true,
            openrpc: true,
            api_version: None,
            breaking_against: None,
        }
    }
}

/// Why `compile` failed.
pub enum BuildError {
    /// The interface has mistakes; rendered like `wirecall check` does.
    Invalid(Diagnostics),
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        error: std::io::Error,
    },
    /// `OUT_DIR` is not set and no output directory was configured.
    NoOutDir,
    /// The generated code did not parse (a bug in wirecall; please report it).
    Internal(String),
    /// The interface breaks the version given to [`Builder::breaking_against`]; each
    /// change rendered as `wirecall breaking` prints it.
    Breaking(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Invalid(d) => write!(f, "invalid interface:\n{d}"),
            BuildError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            BuildError::NoOutDir => {
                f.write_str("OUT_DIR is not set: run from build.rs, or call .out_dir(…)")
            }
            BuildError::Internal(e) => {
                write!(f, "internal error in wirecall's code generator: {e}")
            }
            BuildError::Breaking(changes) => write!(
                f,
                "the interface breaks the released version (docs/EVOLUTION.md):\n{changes}"
            ),
        }
    }
}

/// Debug shows the same text as Display: a `build.rs` returning `Err` prints the error
/// with `{:?}`, and the diagnostics should read the same there.
impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for BuildError {}

impl Builder {
    /// Generate client stubs (and the callbacks traits the client implements). Default on.
    pub fn client(mut self, enable: bool) -> Self {
        self.options.client = enable;
        self
    }

    /// Generate server traits (and the callbacks clients the server uses). Default on.
    pub fn server(mut self, enable: bool) -> Self {
        self.options.server = enable;
        self
    }

    /// Generate the structs, enums and errors. Default on.
    pub fn types(mut self, enable: bool) -> Self {
        self.options.types = enable;
        self
    }

    /// Add an attribute to the generated type `path` (an IDL type name, or `.` for every
    /// type), after wirecall's own derives — e.g. `#[derive(sqlx::FromRow)]` or
    /// `#[serde(deny_unknown_fields)]`. Repeatable.
    ///
    /// ```no_run
    /// wirecall_idl::configure()
    ///     .type_attribute("Card", "#[derive(Default)]")
    ///     .type_attribute(".", "#[serde(deny_unknown_fields)]")
    ///     .field_attribute("Card.title", "#[serde(default)]")
    ///     .extern_path("Money", "crate::money::Money")
    ///     .compile(&["board.wire"])
    ///     .unwrap();
    /// ```
    pub fn type_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.options
            .type_attributes
            .push((path.into(), attribute.into()));
        self
    }

    /// Add an attribute to a generated field or variant: `path` is `Type.field` (a struct's
    /// field), `Type.Variant` (an enum or error variant) or `Type.Variant.field` (a field of
    /// a variant), with the names as the IDL spells them. Repeatable.
    pub fn field_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.options
            .field_attributes
            .push((path.into(), attribute.into()));
        self
    }

    /// Serve the IDL type `name` with an existing Rust type at `rust_path` (e.g.
    /// `crate::money::Money`): the type is still declared in the `.wire` file (for
    /// validation, TypeScript and OpenRPC) but not generated, and every use of it names the
    /// path. The Rust type must serialize to the same JSON.
    pub fn extern_path(mut self, name: impl Into<String>, rust_path: impl Into<String>) -> Self {
        self.options
            .extern_paths
            .push((name.into(), rust_path.into()));
        self
    }

    /// Whether to generate `pub const OPENRPC_DOCUMENT: &str`, the interface's OpenRPC
    /// document (see `wirecall gen openrpc`). Default on: serve it with
    /// `router.discover(OPENRPC_DOCUMENT)?`, so `wirecall call`/`subscribe` type their
    /// arguments and `wirecall discover` prints the interface.
    pub fn openrpc(mut self, enable: bool) -> Self {
        self.openrpc = enable;
        self
    }

    /// The API version written in the OpenRPC document's `info` (default: the version of
    /// the crate whose build script runs, `CARGO_PKG_VERSION`).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    /// Write to this directory instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Print `cargo:rerun-if-changed` lines (default on; off outside build scripts).
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun = enable;
        self
    }

    /// Fail the build when a compiled file breaks `old` (a released version kept in the
    /// repository), by the rules of `wirecall breaking` (docs/EVOLUTION.md: can a server
    /// built from the new file serve clients built from `old`?). It compares one file:
    /// [`Builder::compile`] with more than one file then fails (use one `configure()` per
    /// file).
    pub fn breaking_against(mut self, old: impl Into<PathBuf>) -> Self {
        self.breaking_against = Some(old.into());
        self
    }

    /// Compile each file to `OUT_DIR/<file stem>.rs`.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), BuildError> {
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildError::NoOutDir)?,
        };
        for file in files {
            let file = file.as_ref();
            let (code, read) = self.generate(file);
            if self.emit_rerun {
                for path in &read {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
            let code = code?;
            if let Some(old) = &self.breaking_against {
                if files.len() != 1 {
                    return Err(BuildError::Breaking(format!(
                        "breaking_against({}) compares one file: compile that file alone (one `configure()` per file)",
                        old.display()
                    )));
                }
                self.check_breaking(old, file)?;
            }
            let stem = file
                .file_stem()
                .map_or_else(|| "out".into(), |s| s.to_string_lossy().into_owned());
            let target = out_dir.join(format!("{stem}.rs"));
            write_if_changed(&target, &code)?;
        }
        Ok(())
    }

    fn check_breaking(&self, old: &Path, file: &Path) -> Result<(), BuildError> {
        let old = Loader::new().load(old).map_err(BuildError::Invalid)?;
        if self.emit_rerun {
            for path in old.files() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        let new = Loader::new().load(file).map_err(BuildError::Invalid)?;
        let changes = crate::breaking::check(&old.schema, &new.schema, Default::default());
        if changes.is_empty() {
            return Ok(());
        }
        let text: Vec<String> = changes
            .iter()
            .map(|c| c.render(&old.sources, &new.sources))
            .collect();
        Err(BuildError::Breaking(text.join("\n")))
    }

    /// Generate the formatted code of one file. Also returns every file read (for
    /// `rerun-if-changed`, even when the interface is invalid).
    pub fn generate(&self, file: &Path) -> (Result<String, BuildError>, Vec<PathBuf>) {
        match Loader::new().load(file) {
            Ok(loaded) => {
                let read = loaded.files().map(Path::to_path_buf).collect();
                let mut tokens = codegen::generate(&loaded.schema, &self.options);
                let name = file
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                if self.openrpc {
                    let title = file
                        .file_stem()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                    let version = self.api_version.clone().unwrap_or_else(|| {
                        std::env::var("CARGO_PKG_VERSION").unwrap_or_else(|_| "0.1.0".into())
                    });
                    let doc =
                        crate::openrpc::document(&loaded.schema, &title, &version).to_string();
                    let doc_line = format!(
                        " The OpenRPC document of `{name}` (serve it with `Router::discover`)."
                    );
                    tokens.extend(quote::quote! {
                        #[doc = #doc_line]
                        pub const OPENRPC_DOCUMENT: &str = #doc;
                    });
                }
                (format_code(&name, tokens), read)
            }
            Err(d) => {
                let read = d.sources.files().map(|(_, f)| f.path.clone()).collect();
                (Err(BuildError::Invalid(d)), read)
            }
        }
    }
}

/// Format generated tokens as a file with the `@generated` header.
pub fn format_code(
    source_name: &str,
    tokens: proc_macro2::TokenStream,
) -> Result<String, BuildError> {
    let file: syn::File = syn::parse2(tokens).map_err(|e| BuildError::Internal(e.to_string()))?;
    // One blank line between items, as people write them (prettyplease puts none).
    let items: Vec<String> = file
        .items
        .into_iter()
        .map(|item| {
            prettyplease::unparse(&syn::File {
                shebang: None,
                attrs: Vec::new(),
                items: vec![item],
            })
        })
        .collect();
    Ok(format!(
        "// @generated by wirecall-idl from {source_name}. Do not edit: change the .wire file instead.\n\n{}",
        items.join("\n")
    ))
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), BuildError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    std::fs::write(path, content).map_err(|error| BuildError::Io {
        path: path.to_path_buf(),
        error,
    })
}
