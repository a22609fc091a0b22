// One file, though over ~500 lines: the formatter is one tokenizer and one `Formatter` that
// writes the canonical layout in a single pass (and its unit tests at the end); the layout
// rules are listed in the module doc and each is a method of `Formatter`.
//! `wirecall fmt`: one canonical layout for `.wire` files.
//!
//! - 4-space indentation, one member per line (fields, variants, methods), a trailing
//!   comma after every field, variant and multi-line parameter;
//! - parameters on the method's line, unless one has a doc comment, an attribute or a
//!   comment: then one per line;
//! - `a: T`, `-> T`, `list<T>`, `map<K, V>`, `T?`, `Variant = 1001`; nothing aligned;
//! - exactly one blank line between top-level items (consecutive imports stay together);
//!   inside a block, a blank line where the source had one or more, never right after `{`;
//! - comments and doc comments kept where they are: a comment on its own line stays on its
//!   own line, one after code on the same line stays after that line's code; one in the
//!   middle of a line's code (`rpc f() /* here */ -> T;`) moves to the end of that line.
//!
//! Formatting never changes meaning: only whitespace and commas move (the formatting test
//! checks that the generated code of every file is the same before and after).

use crate::diagnostic::SourceMap;
use crate::parse::parse_file;

/// Format the `.wire` text `text` (named `path` in diagnostics). A file that does not
/// parse is left alone: the error is the rendered diagnostic.
pub fn format(path: &str, text: &str) -> Result<String, String> {
    let mut sources = SourceMap::new();
    let file = sources.add(path, text);
    if let Err(d) = parse_file(file, text) {
        return Err(d.render(&sources));
    }
    let tokens = tokenize(text);
    let mut f = Formatter {
        tokens,
        pos: 0,
        out: Out::default(),
    };
    f.file();
    Ok(f.out.finish())
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// `// …` or `/* … */` (not a doc comment).
    Comment { line: bool },
    /// `/// …`.
    Doc,
    /// An identifier, keyword or integer.
    Word,
    /// A string literal, quotes included.
    Str,
    /// `->`, or one of `{}()<>,;:=?@`.
    Punct,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    text: String,
    /// Line breaks between the previous token and this one.
    breaks: usize,
}

fn tokenize(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut breaks = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let c = bytes[i];
        let (kind, len) = if c == b'\n' {
            breaks += 1;
            i += 1;
            continue;
        } else if c.is_ascii_whitespace() || rest.starts_with('\u{FEFF}') {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        } else if rest.starts_with("///") && !rest.starts_with("////") {
            (Kind::Doc, rest.find('\n').unwrap_or(rest.len()))
        } else if rest.starts_with("//") {
            (
                Kind::Comment { line: true },
                rest.find('\n').unwrap_or(rest.len()),
            )
        } else if rest.starts_with("/*") {
            (Kind::Comment { line: false }, block_comment_len(rest))
        } else if c == b'"' {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => {
                        j += 1;
                        break;
                    }
                    _ => j += 1,
                }
            }
            (Kind::Str, j.min(rest.len()))
        } else if rest.starts_with("->") {
            (Kind::Punct, 2)
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' {
            let len = rest
                .char_indices()
                .skip(1)
                .find(|(_, ch)| !(ch.is_ascii_alphanumeric() || *ch == '_'))
                .map_or(rest.len(), |(k, _)| k);
            (Kind::Word, len)
        } else {
            (Kind::Punct, rest.chars().next().map_or(1, char::len_utf8))
        };
        let raw = &rest[..len];
        let text = match kind {
            Kind::Doc | Kind::Comment { line: true } => raw.trim_end().to_string(),
            _ => raw.to_string(),
        };
        tokens.push(Token { kind, text, breaks });
        breaks = 0;
        i += len;
    }
    tokens
}

/// The length of the (nested) block comment at the start of `s`.
fn block_comment_len(s: &str) -> usize {
    let mut depth = 0;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with("/*") {
            depth += 1;
            i += 2;
        } else if rest.starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    s.len()
}

/// The output, line by line.
#[derive(Default)]
struct Out {
    lines: Vec<String>,
    /// The line being built (without its indentation).
    current: String,
    /// Comments met in the middle of the line being built: they go after its code.
    pending: Vec<String>,
    depth: usize,
}

impl Out {
    fn push(&mut self, text: &str) {
        self.current.push_str(text);
    }

    fn end_line(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let mut line = format!("{}{}", "    ".repeat(self.depth), self.current);
        for comment in self.pending.drain(..) {
            line.push(' ');
            line.push_str(&comment);
        }
        self.lines.push(line);
        self.current.clear();
    }

    fn line(&mut self, text: &str) {
        self.end_line();
        self.current.push_str(text);
        self.end_line();
    }

    fn blank(&mut self) {
        self.end_line();
        if self.lines.last().is_some_and(|l| !l.is_empty()) {
            self.lines.push(String::new());
        }
    }

    /// A comment: after the code of the line it was on, or on a line of its own.
    fn comment(&mut self, token: &Token) {
        if !matches!(token.kind, Kind::Comment { .. }) {
            return;
        }
        if !self.current.is_empty() {
            // In the middle of a line's code (`rpc f() /* here */ -> T;`): after that code.
            self.pending.push(token.text.clone());
            return;
        }
        if token.breaks == 0 {
            if let Some(last) = self.lines.last_mut().filter(|l| !l.is_empty()) {
                last.push(' ');
                last.push_str(&token.text);
                return;
            }
        }
        self.line(&token.text);
    }

    fn finish(mut self) -> String {
        self.end_line();
        while self.lines.last().is_some_and(String::is_empty) {
            self.lines.pop();
        }
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}

struct Formatter {
    tokens: Vec<Token>,
    pos: usize,
    out: Out,
}

impl Formatter {
    /// The next token that is not a comment, without taking it (comments before it are
    /// written out).
    fn peek(&mut self) -> Option<&Token> {
        while let Some(t) = self.tokens.get(self.pos) {
            if !matches!(t.kind, Kind::Comment { .. }) {
                break;
            }
            let t = t.clone();
            self.out.comment(&t);
            self.pos += 1;
        }
        self.tokens.get(self.pos)
    }

    fn peek_text(&mut self) -> &str {
        self.peek().map_or("", |t| t.text.as_str())
    }

    fn take(&mut self) -> Token {
        self.peek();
        let t = self.tokens.get(self.pos).cloned().unwrap_or(Token {
            kind: Kind::Punct,
            text: String::new(),
            breaks: 0,
        });
        self.pos += 1;
        t
    }

    fn take_if(&mut self, text: &str) -> bool {
        if self.peek_text() == text {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Line breaks before the next token, once the comments that end the line before
    /// (those with no break before them) are written out.
    fn breaks_ahead(&mut self) -> usize {
        while let Some(t) = self.tokens.get(self.pos) {
            if !matches!(t.kind, Kind::Comment { .. }) || t.breaks > 0 {
                return t.breaks;
            }
            let t = t.clone();
            self.out.comment(&t);
            self.pos += 1;
        }
        0
    }

    fn file(&mut self) {
        #[derive(PartialEq)]
        enum Prev {
            Start,
            Comment,
            Import,
            Item,
        }
        let mut prev = Prev::Start;
        while self.pos < self.tokens.len() {
            let t = &self.tokens[self.pos];
            let breaks = t.breaks;
            if let Kind::Comment { .. } = t.kind {
                let t = t.clone();
                // A comment after code on its line stays there; one on a line of its own
                // after an item starts a new paragraph.
                if prev != Prev::Start && (breaks >= 2 || (breaks >= 1 && prev != Prev::Comment)) {
                    self.out.blank();
                }
                self.out.comment(&t);
                self.pos += 1;
                if breaks > 0 || prev == Prev::Start {
                    prev = Prev::Comment;
                }
                continue;
            }
            let is_import = t.text == "import";
            let blank = match prev {
                Prev::Start => false,
                Prev::Comment => breaks >= 2,
                Prev::Import if is_import => breaks >= 2,
                Prev::Import | Prev::Item => true,
            };
            if blank {
                self.out.blank();
            }
            self.item();
            prev = if is_import { Prev::Import } else { Prev::Item };
        }
    }

    /// Doc comments and attributes, each on its own line.
    fn meta(&mut self) {
        loop {
            let Some(t) = self.peek() else { return };
            match t.kind {
                Kind::Doc => {
                    let t = self.take();
                    self.out.line(&t.text);
                }
                _ if t.text == "@" => {
                    self.take();
                    let mut attr = format!("@{}", self.take().text);
                    if self.take_if("(") {
                        attr.push('(');
                        attr.push_str(&self.take().text);
                        self.take_if(")");
                        attr.push(')');
                    }
                    self.out.line(&attr);
                }
                _ => return,
            }
        }
    }

    fn item(&mut self) {
        self.meta();
        // Each piece is written as soon as it is taken, so that a comment in the middle of
        // a line's code finds that line started.
        let keyword = self.take().text;
        self.out.push(&keyword);
        match keyword.as_str() {
            "import" => {
                let path = self.take().text;
                self.out.push(&format!(" {path}"));
                self.take_if(";");
                self.out.push(";");
                self.out.end_line();
            }
            "struct" | "enum" | "error" | "service" => {
                let name = self.take().text;
                self.out.push(&format!(" {name} {{"));
                self.take_if("{");
                self.block(&keyword);
                self.take_if("}");
                self.out.push("}");
                self.out.end_line();
            }
            _ => self.out.end_line(),
        }
    }

    /// The members of a block up to its `}` (not taken); `{` is on the current line.
    fn block(&mut self, kind: &str) {
        let opened = self.out.lines.len();
        self.out.end_line();
        self.out.depth += 1;
        let mut first = true;
        loop {
            // Comments and blank lines between members.
            let breaks = self.breaks_ahead();
            if !first && breaks >= 2 {
                self.out.blank();
            }
            if self.peek_text() == "}" || self.pos >= self.tokens.len() {
                break;
            }
            first = false;
            match kind {
                "struct" => self.field(),
                "enum" | "error" => self.variant(),
                _ => self.member(),
            }
        }
        self.out.end_line();
        self.out.depth -= 1;
        // `struct X {}`: nothing was written inside.
        let bare = self.out.lines.last().is_some_and(|l| l.ends_with('{'));
        if bare && self.out.lines.len() == opened + 1 && self.out.current.is_empty() {
            if let Some(line) = self.out.lines.pop() {
                self.out.current = line.trim_start().to_string();
            }
        }
    }

    fn field(&mut self) {
        self.meta();
        self.typed_name();
        self.out.push(",");
        self.take_if(",");
        self.out.end_line();
    }

    /// `name: type` of a field or parameter.
    fn typed_name(&mut self) {
        let name = self.take().text;
        self.out.push(&name);
        self.take_if(":");
        self.out.push(": ");
        let ty = self.type_ref();
        self.out.push(&ty);
    }

    fn variant(&mut self) {
        self.meta();
        let name = self.take().text;
        self.out.push(&name);
        if self.take_if("{") {
            self.out.push(" {");
            self.block("struct");
            self.take_if("}");
            self.out.push("}");
        }
        if self.take_if("=") {
            let code = self.take().text;
            self.out.push(&format!(" = {code}"));
        }
        self.out.push(",");
        self.take_if(",");
        self.out.end_line();
    }

    /// A method, or a `client { … }` block.
    fn member(&mut self) {
        self.meta();
        if self.peek_text() == "client" {
            self.take();
            self.out.push("client {");
            self.take_if("{");
            self.block("client");
            self.take_if("}");
            self.out.push("}");
            self.out.end_line();
            return;
        }
        let kind = self.take().text;
        self.out.push(&kind);
        let name = self.take().text;
        self.out.push(&format!(" {name}("));
        self.take_if("(");
        self.params();
        self.take_if(")");
        self.out.push(")");
        if self.take_if("->") {
            let ty = self.type_ref();
            self.out.push(&format!(" -> {ty}"));
        }
        if self.take_if("throws") {
            let error = self.take().text;
            self.out.push(&format!(" throws {error}"));
        }
        self.take_if(";");
        self.out.push(";");
        self.out.end_line();
    }

    /// Parameters up to `)` (not taken): on the current line, or one per line when any
    /// has a doc comment, an attribute or a comment.
    fn params(&mut self) {
        let end = self.closing_paren();
        let multi_line = self.tokens[self.pos..end]
            .iter()
            .any(|t| matches!(t.kind, Kind::Doc | Kind::Comment { .. }) || t.text == "@");
        if !multi_line {
            let mut list = Vec::new();
            while self.peek_text() != ")" && self.pos < end {
                let name = self.take().text;
                self.take_if(":");
                list.push(format!("{name}: {}", self.type_ref()));
                self.take_if(",");
            }
            self.out.push(&list.join(", "));
            return;
        }
        self.out.end_line();
        self.out.depth += 1;
        let mut first = true;
        loop {
            if !first && self.breaks_ahead() >= 2 {
                self.out.blank();
            }
            if self.peek_text() == ")" || self.pos >= self.tokens.len() {
                break;
            }
            first = false;
            self.meta();
            self.typed_name();
            self.out.push(",");
            self.take_if(",");
            self.out.end_line();
        }
        self.out.end_line();
        self.out.depth -= 1;
    }

    /// The index of the `)` that closes the parameter list starting here.
    fn closing_paren(&self) -> usize {
        let mut depth = 0usize;
        for (i, t) in self.tokens.iter().enumerate().skip(self.pos) {
            match t.text.as_str() {
                "(" if t.kind == Kind::Punct => depth += 1,
                ")" if t.kind == Kind::Punct => {
                    if depth == 0 {
                        return i;
                    }
                    depth -= 1;
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    fn type_ref(&mut self) -> String {
        let name = self.take().text;
        let mut ty = match name.as_str() {
            "list" if self.peek_text() == "<" => {
                self.take();
                let inner = self.type_ref();
                self.take_if(">");
                format!("list<{inner}>")
            }
            "map" if self.peek_text() == "<" => {
                self.take();
                let key = self.type_ref();
                self.take_if(",");
                let value = self.type_ref();
                self.take_if(">");
                format!("map<{key}, {value}>")
            }
            _ => name,
        };
        if self.take_if("?") {
            ty.push('?');
        }
        ty
    }
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn a_messy_file_gets_the_canonical_layout() {
        let messy = "import \"a.wire\";import \"b.wire\";\n\n\n\n/// Doc.\nstruct   S{a:i64,b : list< map<string,i32 > >?}\nservice Svc{rpc f( x:i64 ,y:string, )->S throws E;\n\n\n notify g();}\n";
        let want = "import \"a.wire\";\nimport \"b.wire\";\n\n/// Doc.\nstruct S {\n    a: i64,\n    b: list<map<string, i32>>?,\n}\n\nservice Svc {\n    rpc f(x: i64, y: string) -> S throws E;\n\n    notify g();\n}\n";
        assert_eq!(format("t.wire", messy).unwrap(), want);
        assert_eq!(format("t.wire", want).unwrap(), want, "idempotent");
    }

    #[test]
    fn comments_stay_where_they_are() {
        let text = "// head\n\n/// S.\nstruct S { // after brace\n    // own line\n    a: i64, // trailing\n    /* block */ b: i64,\n}\nenum E {}\nerror X { A = 1, /// B.\n B { c: u8 } = 2 }\n";
        let want = "// head\n\n/// S.\nstruct S { // after brace\n    // own line\n    a: i64, // trailing\n    /* block */\n    b: i64,\n}\n\nenum E {}\n\nerror X {\n    A = 1,\n    /// B.\n    B {\n        c: u8,\n    } = 2,\n}\n";
        let got = format("t.wire", text).unwrap();
        assert_eq!(got, want);
        assert_eq!(format("t.wire", &got).unwrap(), got, "idempotent");
    }

    #[test]
    fn documented_params_go_one_per_line() {
        let text = "service S { rpc f(/// The x.\n x: i64, @deprecated(\"no\") y: i64) -> i64; client { rpc c(); } }";
        let want = "service S {\n    rpc f(\n        /// The x.\n        x: i64,\n        @deprecated(\"no\")\n        y: i64,\n    ) -> i64;\n    client {\n        rpc c();\n    }\n}\n";
        let got = format("t.wire", text).unwrap();
        assert_eq!(got, want);
        assert_eq!(format("t.wire", &got).unwrap(), got);
    }

    #[test]
    fn a_file_that_does_not_parse_is_an_error() {
        let err = format("bad.wire", "struct {").unwrap_err();
        assert!(err.contains("bad.wire:1:8"), "{err}");
    }
}
