//! Diagnostics: errors with a location, rendered as
//!
//! ```text
//! calculator.wire:3:12: error: unknown type `u65`
//!   |
//! 3 |     calls: u65,
//!   |            ^^^
//!   = help: did you mean `u64`?
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::{FileId, Span};

/// The text of every file read, so diagnostics can show lines and carets.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

/// One source file: its path (as shown in messages) and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as it is shown in diagnostics.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl SourceFile {
    fn new(path: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let col = self.text[self.line_starts[line]..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

impl SourceMap {
    /// An empty source map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a file and return its id.
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile::new(path.into(), text.into()));
        id
    }

    /// The file with this id.
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// Every file, in the order it was added.
    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    /// The id of a file already added under this path.
    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.path == path)
            .map(|i| FileId(i as u32))
    }

    /// `path:line:col` of a span, if it points into a file.
    pub fn location(&self, span: Span) -> Option<String> {
        match span {
            Span::File { file, start, .. } => {
                let f = self.get(file);
                let (line, col) = f.line_col(start);
                Some(format!("{}:{line}:{col}", f.path.display()))
            }
            _ => None,
        }
    }
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The input is rejected.
    Error,
}

/// One message about the user's input, with its location.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// Where the problem is.
    pub span: Span,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it, where that is obvious.
    pub help: Option<String>,
    /// Further context.
    pub notes: Vec<String>,
    /// Other places that explain the error (e.g. where a duplicate was first defined),
    /// each with a label.
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            help: None,
            notes: Vec::new(),
            related: Vec::new(),
        }
    }

    /// Point at another place that explains the error.
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    /// Add a `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Add a `note:` line.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Render with the source line and a caret under the offending text.
    pub fn render(&self, sources: &SourceMap) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
        };
        self.render_as(severity, sources)
    }

    /// [`Diagnostic::render`] with another label than the severity's (`breaking: …`).
    pub fn render_as(&self, severity: &str, sources: &SourceMap) -> String {
        let mut out = String::new();
        match self.span {
            Span::File { file, start, end } => {
                let f = sources.get(file);
                let (line, col) = f.line_col(start);
                out.push_str(&format!(
                    "{}:{line}:{col}: {severity}: {}\n",
                    f.path.display(),
                    self.message
                ));
                let text = f.line_text(line);
                let gutter = line.to_string().len();
                let pad = " ".repeat(gutter);
                // Carets cover the span on its first line, at least one character.
                let (end_line, end_col) = f.line_col(end);
                let line_chars = text.chars().count();
                let caret_end = if end_line == line {
                    end_col.max(col + 1)
                } else {
                    line_chars + 1
                };
                let width = caret_end.saturating_sub(col).max(1);
                // Keep tabs so the caret lines up with the source line.
                let lead: String = text
                    .chars()
                    .take(col - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                out.push_str(&format!("{pad} |\n"));
                out.push_str(&format!("{line} | {text}\n"));
                out.push_str(&format!("{pad} | {lead}{}\n", "^".repeat(width)));
                for note in &self.notes {
                    out.push_str(&format!("{pad} = note: {note}\n"));
                }
                for (span, label) in &self.related {
                    if let Some(loc) = sources.location(*span) {
                        out.push_str(&format!("{pad} = note: {label}: {loc}\n"));
                    }
                }
                if let Some(help) = &self.help {
                    out.push_str(&format!("{pad} = help: {help}\n"));
                }
            }
            _ => {
                out.push_str(&format!("{severity}: {}\n", self.message));
                for note in &self.notes {
                    out.push_str(&format!("  = note: {note}\n"));
                }
                if let Some(help) = &self.help {
                    out.push_str(&format!("  = help: {help}\n"));
                }
            }
        }
        out
    }
}

/// Every diagnostic of a failed parse or validation, with the sources to render them.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    /// The diagnostics, in the order they were found.
    pub items: Vec<Diagnostic>,
    /// The files they point into.
    pub sources: SourceMap,
}

impl Diagnostics {
    /// Render all diagnostics, separated by blank lines, with a summary line at the end.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.items {
            out.push_str(&d.render(&self.sources));
            out.push('\n');
        }
        let n = self.items.len();
        out.push_str(&format!(
            "error: aborting due to {n} previous error{}\n",
            if n == 1 { "" } else { "s" }
        ));
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}
