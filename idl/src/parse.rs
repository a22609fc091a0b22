// One file, though over ~500 lines: pest pairs → model in one `Builder` (one method per
// grammar rule), then the syntax-error rendering that names pest's rules in words; both
// follow `wire.pest` rule by rule, so they read best beside each other.
//! Parsing one `.wire` file with the pest grammar (`wire.pest`) into the model.
//!
//! Imports are resolved by [`crate::load()`]; this module only sees one file's text.

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;

use crate::diagnostic::Diagnostic;
use crate::model::{ErrorVariant as ErrorVariantDef, *};

mod grammar {
    #![allow(missing_docs, unreachable_pub)]
    #[derive(pest_derive::Parser)]
    #[grammar = "wire.pest"]
    pub(super) struct WireParser;
}
use grammar::{Rule, WireParser};

/// One file's declarations, before imports are resolved.
#[derive(Clone, Debug, Default)]
pub struct ParsedFile {
    /// `import "…";` statements, in order.
    pub imports: Vec<Import>,
    /// Structs, enums and errors, in order.
    pub types: Vec<TypeDef>,
    /// Services, in order.
    pub services: Vec<Service>,
}

/// An `import "path";` statement.
#[derive(Clone, Debug)]
pub struct Import {
    /// The path as written (relative to the importing file).
    pub path: String,
    /// The span of the string literal.
    pub span: Span,
}

/// Parse the text of one file. A syntax error stops the parse: the result is that one
/// diagnostic, pointing at the first token the grammar could not accept.
pub fn parse_file(file: FileId, text: &str) -> Result<ParsedFile, Diagnostic> {
    check_nesting(file, text)?;
    let mut pairs = match WireParser::parse(Rule::file, text) {
        Ok(pairs) => pairs,
        Err(_) => {
            // Tracking every parse attempt costs time, so it is switched on only to explain
            // a failure: parse again with it and report the expected tokens. (The switch is
            // process-wide and stays on; that only costs speed.)
            pest::set_error_detail(true);
            let err = match WireParser::parse(Rule::file, text) {
                Err(e) => e,
                Ok(_) => return Err(Diagnostic::error(Span::file(file, 0, 0), "syntax error")),
            };
            return Err(syntax_error(file, text, err));
        }
    };
    let builder = Builder { file };
    let mut parsed = ParsedFile::default();
    let Some(root) = pairs.next() else {
        return Ok(parsed);
    };
    for item in root.into_inner() {
        match item.as_rule() {
            Rule::import => {
                if let Some(s) = item.into_inner().find(|p| p.as_rule() == Rule::string) {
                    parsed.imports.push(Import {
                        path: unescape(string_content(&s)),
                        span: builder.span(&s),
                    });
                }
            }
            Rule::struct_def => parsed.types.push(TypeDef::Struct(builder.struct_def(item))),
            Rule::enum_def => parsed.types.push(TypeDef::Enum(builder.enum_def(item))),
            Rule::error_def => parsed.types.push(TypeDef::Error(builder.error_def(item))),
            Rule::service => parsed.services.push(builder.service(item)),
            _ => {}
        }
    }
    Ok(parsed)
}

/// Builds model nodes from pest pairs. The grammar guarantees each node's shape; the
/// builder still never panics on an unexpected one (it falls back to empty parts).
struct Builder {
    file: FileId,
}

/// Doc comments, attributes and the name that start most declarations.
#[derive(Default)]
struct Head {
    docs: Docs,
    attrs: Attributes,
    name: Option<Ident>,
}

impl Builder {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::file(self.file, s.start(), s.end())
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident::new(pair.as_str(), self.span(pair))
    }

    /// Feed a child pair to the common head; returns it back if it is something else.
    fn head<'i>(&self, head: &mut Head, pair: Pair<'i, Rule>) -> Option<Pair<'i, Rule>> {
        match pair.as_rule() {
            Rule::doc => {
                let line = pair.as_str().trim_start_matches("///");
                let line = line.strip_prefix(' ').unwrap_or(line).trim_end();
                head.docs.0.push(line.to_string());
                None
            }
            Rule::attribute => {
                let span = self.span(&pair);
                let mut inner = pair.into_inner();
                let name = inner.next().map(|p| self.ident(&p));
                let arg = inner
                    .next()
                    .map(|s| (unescape(string_content(&s)), self.span(&s)));
                if let Some(name) = name {
                    head.attrs.0.push(Attribute { name, arg, span });
                }
                None
            }
            Rule::ident if head.name.is_none() => {
                head.name = Some(self.ident(&pair));
                None
            }
            _ => Some(pair),
        }
    }

    fn name(&self, head: &mut Head, span: Span) -> Ident {
        head.name.take().unwrap_or_else(|| Ident::new("", span))
    }

    fn struct_def(&self, pair: Pair<'_, Rule>) -> Struct {
        let span = self.span(&pair);
        let mut head = Head::default();
        let mut fields = Vec::new();
        for p in pair.into_inner() {
            if let Some(p) = self.head(&mut head, p) {
                if p.as_rule() == Rule::fields {
                    fields = self.fields(p);
                }
            }
        }
        Struct {
            name: self.name(&mut head, span),
            docs: head.docs,
            attrs: head.attrs,
            fields,
        }
    }

    fn fields(&self, pair: Pair<'_, Rule>) -> Vec<Field> {
        pair.into_inner().map(|p| self.field(p)).collect()
    }

    fn field(&self, pair: Pair<'_, Rule>) -> Field {
        let span = self.span(&pair);
        let mut head = Head::default();
        let mut ty = None;
        for p in pair.into_inner() {
            if let Some(p) = self.head(&mut head, p) {
                if p.as_rule() == Rule::type_ref {
                    ty = Some(self.type_ref(p));
                }
            }
        }
        Field {
            name: self.name(&mut head, span),
            docs: head.docs,
            attrs: head.attrs,
            ty: ty.unwrap_or(Type {
                kind: TypeKind::Json,
                span,
            }),
        }
    }

    fn enum_def(&self, pair: Pair<'_, Rule>) -> Enum {
        let span = self.span(&pair);
        let mut head = Head::default();
        let mut variants = Vec::new();
        for p in pair.into_inner() {
            if let Some(p) = self.head(&mut head, p) {
                if p.as_rule() == Rule::variant {
                    variants.push(self.variant(p));
                }
            }
        }
        Enum {
            name: self.name(&mut head, span),
            docs: head.docs,
            attrs: head.attrs,
            variants,
        }
    }

    fn variant(&self, pair: Pair<'_, Rule>) -> Variant {
        let span = self.span(&pair);
        let mut head = Head::default();
        let mut fields = None;
        for p in pair.into_inner() {
            if let Some(p) = self.head(&mut head, p) {
                if p.as_rule() == Rule::fields {
                    fields = Some(self.fields(p));
                }
            }
        }
        Variant {
            name: self.name(&mut head, span),
            docs: head.docs,
            attrs: head.attrs,
            fields,
        }
    }

    fn error_def(&self, pair: Pair<'_, Rule>) -> ErrorDef {
        let span = self.span(&pair);
        let mut head = Head::default();
        let mut variants = Vec::new();
        for p in pair.into_inner() {
            if let Some(p) = self.head(&mut head, p) {
                if p.as_rule() == Rule::error_variant {
                    variants.push(self.error_variant(p));
                }
            }
        }
        ErrorDef {
            name: self.name(&mut head, span),
            docs: head.docs,
            attrs: head.attrs,
            variants,
        }
    }

    fn error_variant(&self, pair: Pair<'_, Rule>) -> ErrorVariantDef {
        let span = self.span(&pair);
        let mut head = Head::default();
        let mut fields = None;
        let mut code = ErrorCode { value: None, span };
        for p in pair.into_inner() {
            if let Some(p) = self.head(&mut head, p) {
                match p.as_rule() {
                    Rule::fields => fields = Some(self.fields(p)),
                    Rule::integer => {
                        code = ErrorCode {
                            value: p.as_str().parse().ok(),
                            span: self.span(&p),
                        }
                    }
                    _ => {}
                }
            }
        }
        ErrorVariantDef {
            name: self.name(&mut head, span),
            docs: head.docs,
            attrs: head.attrs,
            fields,
            code,
        }
    }

    fn service(&self, pair: Pair<'_, Rule>) -> Service {
        let span = self.span(&pair);
        let mut head = Head::default();
        let mut methods = Vec::new();
        for p in pair.into_inner() {
            if let Some(p) = self.head(&mut head, p) {
                match p.as_rule() {
                    Rule::method => methods.push(self.method(p, Direction::ToServer)),
                    Rule::client_block => methods.extend(
                        p.into_inner()
                            .filter(|m| m.as_rule() == Rule::method)
                            .map(|m| self.method(m, Direction::ToClient)),
                    ),
                    _ => {}
                }
            }
        }
        Service {
            name: self.name(&mut head, span),
            docs: head.docs,
            attrs: head.attrs,
            methods,
        }
    }

    fn method(&self, pair: Pair<'_, Rule>, direction: Direction) -> Method {
        let span = self.span(&pair);
        let mut head = Head::default();
        let mut kind = MethodKind::Rpc;
        let mut params = Vec::new();
        let mut returns = None;
        let mut throws = None;
        for p in pair.into_inner() {
            if let Some(p) = self.head(&mut head, p) {
                match p.as_rule() {
                    Rule::rpc => kind = MethodKind::Rpc,
                    Rule::notify => kind = MethodKind::Notify,
                    Rule::stream => kind = MethodKind::Stream,
                    Rule::topic => kind = MethodKind::Topic,
                    Rule::params => params = p.into_inner().map(|p| self.param(p)).collect(),
                    Rule::returns => returns = p.into_inner().next().map(|t| self.type_ref(t)),
                    Rule::throws => {
                        throws = p
                            .into_inner()
                            .find(|i| i.as_rule() == Rule::ident)
                            .map(|i| self.ident(&i))
                    }
                    _ => {}
                }
            }
        }
        Method {
            name: self.name(&mut head, span),
            docs: head.docs,
            attrs: head.attrs,
            kind,
            direction,
            params,
            returns,
            throws,
            span,
        }
    }

    fn param(&self, pair: Pair<'_, Rule>) -> Param {
        let f = self.field(pair);
        Param {
            docs: f.docs,
            attrs: f.attrs,
            name: f.name,
            ty: f.ty,
        }
    }

    fn type_ref(&self, pair: Pair<'_, Rule>) -> Type {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let base = match inner.next() {
            Some(p) => self.base_type(p),
            None => Type {
                kind: TypeKind::Json,
                span,
            },
        };
        if inner.next().is_some() {
            Type {
                kind: TypeKind::Optional(Box::new(base)),
                span,
            }
        } else {
            base
        }
    }

    fn base_type(&self, pair: Pair<'_, Rule>) -> Type {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut args = pair
            .clone()
            .into_inner()
            .filter(|p| p.as_rule() == Rule::type_ref)
            .map(|p| Box::new(self.type_ref(p)));
        let kind = match rule {
            Rule::list_type => args.next().map(TypeKind::List),
            Rule::map_type => match (args.next(), args.next()) {
                (Some(k), Some(v)) => Some(TypeKind::Map(k, v)),
                _ => None,
            },
            _ => {
                let name = pair.as_str().trim();
                Some(TypeKind::primitive(name).unwrap_or_else(|| TypeKind::Named(name.into())))
            }
        };
        Type {
            kind: kind.unwrap_or(TypeKind::Json),
            span,
        }
    }
}

/// Deeper nesting than any real interface needs.
const MAX_NESTING: usize = 64;

/// Reject absurdly deep nesting (`list<list<…` or `/* /* …`) before the recursive descent
/// parser sees it, so hostile input gets an error instead of exhausting the stack.
fn check_nesting(file: FileId, text: &str) -> Result<(), Diagnostic> {
    let bytes = text.as_bytes();
    let mut depth = 0usize; // brackets outside comments
    let mut comments = 0usize; // open block comments
    let mut outermost = 0usize; // where the outermost open block comment starts
    let mut i = 0;
    while i < bytes.len() {
        let next = bytes.get(i + 1).copied();
        let mut opened = false;
        match (bytes[i], next) {
            (b'/', Some(b'*')) => {
                if comments == 0 {
                    outermost = i;
                }
                comments += 1;
                opened = true;
                i += 1;
            }
            (b'*', Some(b'/')) if comments > 0 => {
                comments -= 1;
                i += 1;
            }
            _ if comments > 0 => {}
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            (b'"', _) => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            (b'<' | b'{' | b'(', _) => {
                depth += 1;
                opened = true;
            }
            (b'>' | b'}' | b')', _) => depth = depth.saturating_sub(1),
            _ => {}
        }
        if opened && depth + comments > MAX_NESTING {
            let start = if bytes[i] == b'*' { i - 1 } else { i };
            return Err(Diagnostic::error(
                Span::file(file, start, i + 1),
                format!("nesting deeper than {MAX_NESTING} levels"),
            ));
        }
        i += 1;
    }
    // Caught here, not left to the grammar: a block comment that never ends makes the
    // parser scan to the end of the file from every place a comment may start, once more
    // for each comment nested in it — exponential time on a few hundred bytes (found by
    // fuzzing).
    if comments > 0 {
        return Err(Diagnostic::error(
            Span::file(file, outermost, outermost + 2),
            "unterminated block comment",
        )
        .with_help("block comments nest: every `/*` needs its own `*/`"));
    }
    Ok(())
}

fn string_content<'i>(pair: &Pair<'i, Rule>) -> &'i str {
    let s = pair.as_str();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How a grammar rule is named in "expected …" messages; `None` hides it.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::ident | Rule::named_type => "an identifier",
        Rule::string | Rule::string_raw => "a string literal",
        Rule::integer => "an integer",
        Rule::doc => "a doc comment",
        Rule::attribute => "an attribute",
        Rule::import | Rule::kw_import => "`import`",
        Rule::kw_struct => "`struct`",
        Rule::kw_enum => "`enum`",
        Rule::kw_error => "`error`",
        Rule::kw_service => "`service`",
        Rule::kw_client => "`client`",
        Rule::kw_throws => "`throws`",
        Rule::struct_def => "`struct`",
        Rule::enum_def => "`enum`",
        Rule::error_def => "`error`",
        Rule::service => "`service`",
        Rule::client_block => "`client`",
        Rule::method | Rule::rpc => "a method (`rpc`, `notify`, `stream` or `topic`)",
        Rule::notify => "`notify`",
        Rule::stream => "`stream`",
        Rule::topic => "`topic`",
        Rule::field | Rule::fields => "a field",
        Rule::variant => "a variant",
        Rule::error_variant => "an error variant",
        Rule::params | Rule::param => "a parameter",
        Rule::returns => "`->`",
        Rule::throws => "`throws`",
        Rule::type_ref | Rule::list_type | Rule::map_type => "a type",
        Rule::optional => "`?`",
        Rule::EOI => "end of file",
        _ => return None,
    })
}

/// Turn a pest error into a diagnostic: "expected `;` or `throws`, found `}`".
fn syntax_error(file: FileId, text: &str, err: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !expected.contains(&s) {
            expected.push(s);
        }
    };
    let mut pos = pos;
    if let Some(attempts) = err.parse_attempts() {
        pos = attempts.max_position.max(pos);
        for tok in attempts.expected_tokens() {
            let token = tok.to_string();
            let t = token.trim();
            // Tokens that start a larger construct are named by it.
            let named = match t {
                "@" => Some("an attribute"),
                "///" => Some("a doc comment"),
                "_" => Some("an identifier"),
                _ => None,
            };
            if let Some(named) = named {
                push(named.to_string());
                continue;
            }
            // Whitespace, comment openers and character classes are accepted in many places;
            // they say nothing useful.
            if t.is_empty()
                || t.starts_with("//")
                || t == "/*"
                || t == "\u{FEFF}"
                || t == "BUILTIN_RULE"
                || (t.contains("..") && t.chars().count() <= 4)
            {
                continue;
            }
            push(format!("`{t}`"));
        }
        for stack in attempts.call_stacks() {
            if let Some(d) = stack.deepest.get_rule().copied().and_then(describe) {
                push(d.to_string());
            }
        }
    }
    if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
        for r in positives {
            if let Some(d) = describe(*r) {
                push(d.to_string());
            }
        }
    }
    if text[pos..].starts_with('?') && text[..pos].trim_end().ends_with('?') {
        return Diagnostic::error(
            Span::file(file, pos, pos + 1),
            "a type can be optional only once: `T??` is not supported",
        )
        .with_help("`T?` already means that the value may be absent or `null`; write one `?`");
    }
    let found = found_token(text, pos);
    let message = match expected.len() {
        0 => format!("unexpected {found}"),
        1 => format!("expected {}, found {found}", expected[0]),
        n => format!(
            "expected {} or {}, found {found}",
            expected[..n - 1].join(", "),
            expected[n - 1]
        ),
    };
    let end = pos + text[pos..].chars().next().map_or(0, char::len_utf8);
    let mut end = end;
    if text[pos..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        end = pos
            + text[pos..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(text.len() - pos);
    }
    Diagnostic::error(Span::file(file, pos, end), message)
}

fn found_token(text: &str, pos: usize) -> String {
    let rest = &text[pos.min(text.len())..];
    match rest.chars().next() {
        None => "end of file".to_string(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            format!("`{word}`")
        }
        Some('\n') | Some('\r') => "end of line".to_string(),
        Some(c) => format!("`{c}`"),
    }
}
