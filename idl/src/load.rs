//! Loading a root `.wire` file and everything it imports, each file once.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceMap};
use crate::model::{FileId, Schema, Span};
use crate::parse::{parse_file, ParsedFile};
use crate::validate::validate;

/// A parsed and validated interface, with the files it was read from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The declarations of the root file and of everything it imports.
    pub schema: Schema,
    /// Every file read, root first; used to render diagnostics.
    pub sources: SourceMap,
}

impl Loaded {
    /// The paths of every file read (the root and its imports), for
    /// `cargo:rerun-if-changed`.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.sources.files().map(|(_, f)| f.path.as_path())
    }
}

/// Reads `.wire` files from disk, or from in-memory sources registered with
/// [`Loader::with_source`] (which take precedence; useful in tests and tools).
#[derive(Clone, Debug, Default)]
pub struct Loader {
    overrides: HashMap<PathBuf, String>,
    /// Read nothing from disk: a file without an override does not exist.
    overrides_only: bool,
}

impl Loader {
    /// A loader that reads from disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve `text` for `path` instead of reading the file system.
    pub fn with_source(mut self, path: impl AsRef<Path>, text: impl Into<String>) -> Self {
        self.overrides.insert(normalize(path.as_ref()), text.into());
        self
    }

    /// Read only the sources given with [`Loader::with_source`], never the file system
    /// (e.g. the files of another git revision: an import missing there is an error).
    pub fn sources_only(mut self) -> Self {
        self.overrides_only = true;
        self
    }

    /// Load, parse and validate `root` and every file it imports. All errors are collected:
    /// every file that can be read is parsed, then the whole schema is validated.
    pub fn load(&self, root: impl AsRef<Path>) -> Result<Loaded, Diagnostics> {
        let mut state = LoadState {
            loader: self,
            sources: SourceMap::new(),
            parsed: HashMap::new(),
            order: Vec::new(),
            diags: Vec::new(),
            by_path: HashMap::new(),
        };
        let root = normalize(root.as_ref());
        match self.read(&root) {
            Ok(text) => {
                let id = state.sources.add(root.clone(), text);
                state.by_path.insert(self.identity(&root), id);
                state.visit(id, &mut Vec::new());
            }
            Err(e) => state.diags.push(Diagnostic::error(
                Span::Synthetic,
                format!("cannot read `{}`: {e}", root.display()),
            )),
        }

        let mut schema = Schema::default();
        for id in &state.order {
            if let Some(file) = state.parsed.remove(id) {
                schema.types.extend(file.types);
                schema.services.extend(file.services);
            }
        }
        let mut diags = state.diags;
        if diags.is_empty() {
            diags = validate(&schema);
        }
        if diags.is_empty() {
            Ok(Loaded {
                schema,
                sources: state.sources,
            })
        } else {
            Err(Diagnostics {
                items: diags,
                sources: state.sources,
            })
        }
    }

    /// What makes two paths the same file: the canonical path on disk (so `a/../b.wire`,
    /// `./b.wire` and symbolic links to it are one file), the path itself for in-memory
    /// sources and files that do not exist.
    fn identity(&self, path: &Path) -> PathBuf {
        if self.overrides_only || self.overrides.contains_key(path) {
            return path.to_path_buf();
        }
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        match self.overrides.get(path) {
            Some(text) => Ok(text.clone()),
            None if self.overrides_only => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file in that revision",
            )),
            None => std::fs::read_to_string(path),
        }
    }
}

/// Load, parse and validate a `.wire` file and its imports from disk.
pub fn load(root: impl AsRef<Path>) -> Result<Loaded, Diagnostics> {
    Loader::new().load(root)
}

struct LoadState<'a> {
    loader: &'a Loader,
    sources: SourceMap,
    /// Files read so far, by identity (see [`Loader::identity`]).
    by_path: HashMap<PathBuf, FileId>,
    parsed: HashMap<FileId, ParsedFile>,
    /// Files in dependency order: imports before importers.
    order: Vec<FileId>,
    diags: Vec<Diagnostic>,
}

impl LoadState<'_> {
    /// Parse `id` and, depth first, its imports. `stack` holds the chain of importers.
    fn visit(&mut self, id: FileId, stack: &mut Vec<FileId>) {
        let text = self.sources.get(id).text.clone();
        let parsed = match parse_file(id, &text) {
            Ok(p) => p,
            Err(d) => {
                self.diags.push(d);
                self.order.push(id);
                return;
            }
        };
        stack.push(id);
        let dir = self
            .sources
            .get(id)
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for import in &parsed.imports {
            let path = normalize(&dir.join(&import.path));
            let identity = self.loader.identity(&path);
            if let Some(&target) = self.by_path.get(&identity) {
                if let Some(pos) = stack.iter().position(|&f| f == target) {
                    let chain: Vec<String> = stack[pos..]
                        .iter()
                        .chain(std::iter::once(&target))
                        .map(|f| self.sources.get(*f).path.display().to_string())
                        .collect();
                    self.diags.push(
                        Diagnostic::error(import.span, "import cycle")
                            .with_note(format!("import chain: {}", chain.join(" → "))),
                    );
                }
                // Otherwise already loaded through another import: parsed once.
                continue;
            }
            match self.loader.read(&path) {
                Ok(text) => {
                    let target = self.sources.add(path, text);
                    self.by_path.insert(identity, target);
                    self.visit(target, stack);
                }
                Err(e) => {
                    let reason = match e.kind() {
                        std::io::ErrorKind::NotFound => "no such file".to_string(),
                        _ => e.to_string(),
                    };
                    self.diags.push(
                        Diagnostic::error(
                            import.span,
                            format!("import not found: `{}`", import.path),
                        )
                        .with_note(format!("looked for `{}`: {reason}", path.display())),
                    );
                }
            }
        }
        stack.pop();
        self.parsed.insert(id, parsed);
        self.order.push(id);
    }
}

/// Lexically normalize a path: drop `.` components and fold `dir/..`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}
