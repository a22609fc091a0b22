//! The runtime's layers hold: no file of `runtime/src` imports from a layer above its own.
//!
//! The layers, lowest first, are [`LAYERS`] (the same list is in `src/lib.rs`'s comment).
//! Each file of `src/` belongs to one by its path. Every `crate::…`, `super::…` and
//! `self::…` path in it — in `use` items, in code, in macro bodies — is resolved to the
//! file of the module it names, through the crate root's re-exports and its inline modules
//! (`crate::Client` is `pub use client::handle::Client` in lib.rs, so it names
//! `client::handle`; `crate::raw::Router` names `session::router`), and that file's layer must be the
//! file's own or a lower one. Test-only code (`#[cfg(test)]` items, and the files of
//! `#[cfg(test)] mod x;`) may use any layer; lib.rs only declares and re-exports.
//!
//! The scan works on tokens with comments, strings and char literals removed: it needs no
//! parser, sees into macro bodies, and points at exact lines. That small lexer, and the
//! tests of the check itself at the end, are why this file is longer than ~500 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first: a name, and the files of `src/` in it (a folder ends with `/`).
const LAYERS: &[(&str, &[&str])] = &[
    // Messages and params (no I/O), the JSON-RPC error object and its codes, limits,
    // metrics: what every layer names.
    (
        "codec",
        &["codec/", "error.rs", "config.rs", "telemetry.rs"],
    ),
    // Topics: positions, history, fan-out.
    ("hub", &["hub/"]),
    // One conversation with a peer, no sockets: dispatch, pending calls, subscriptions,
    // router, context, `Error`/`ConnectError`/`CloseReason`; and who the peer is (auth).
    ("session", &["session/", "auth.rs"]),
    // The doors: WebSocket, HTTP POST, server-sent events, WAMP; TLS settings.
    ("doors", &["transport/", "tls.rs"]),
    ("server/client", &["server/", "client/"]),
    // The typed API that generated code calls.
    ("typed", &["typed.rs"]),
    // Support for fuzz/ and tests.
    ("fuzzing", &["fuzzing.rs", "fuzzing/"]),
];

/// Imports from a higher layer tolerated for now: (file, module it imports, why). Each
/// entry is temporary and names the work that removes it; the list is meant to be empty.
const ALLOWED: &[(&str, &str, &str)] = &[];

#[test]
fn no_file_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_dir(&src, &src, &mut files);
    match check(&files) {
        Ok(stats) => {
            // Guards against a scan that silently sees nothing.
            assert!(stats.files >= 30, "only {} files checked", stats.files);
            assert!(
                stats.paths >= 200,
                "only {} crate paths found",
                stats.paths
            );
        }
        Err(problems) => panic!(
            "{} import(s) break the runtime's layers ({}, lowest first; see runtime/tests/layers.rs):\n{}",
            problems.len(),
            LAYERS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(" → "),
            problems.join("\n")
        ),
    }
}

fn read_dir(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_dir(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src/");
            let rel = rel.to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            out.push((rel, text));
        }
    }
}

/// What a clean check saw.
#[derive(Debug)]
struct Stats {
    files: usize,
    paths: usize,
}

/// Checks the files of a crate's `src/` (path relative to `src/`, text); on failure, one
/// line per problem: `runtime/src/FILE:LINE: …`.
fn check(files: &[(String, String)]) -> Result<Stats, Vec<String>> {
    let mut problems = Vec::new();
    // Module path (`["session", "error"]`) → file, for every file but lib.rs.
    let mut modules = BTreeMap::new();
    let mut scanned = Vec::new();
    let mut test_only = BTreeSet::new();
    let mut files: Vec<_> = files.iter().collect();
    files.sort();
    for (file, text) in files {
        let module = module_of(file);
        let scan = scan(&lex(text), &module);
        test_only.extend(scan.test_modules.iter().cloned());
        if !module.is_empty() {
            modules.insert(module.clone(), file.as_str());
        }
        scanned.push((file.as_str(), module, scan));
    }
    // The crate root's imports and re-exports (lib.rs's `use` items, in its inline modules
    // too): `crate::NAME` → the path it stands for, or `None` for another crate's item.
    let mut reexports: BTreeMap<Vec<String>, Option<Vec<String>>> = BTreeMap::new();
    for (_, module, scan) in scanned.iter().filter(|(_, m, _)| m.is_empty()) {
        for import in scan.paths.iter().filter(|p| p.is_use) {
            let Some(name) = import.alias.as_ref().or(import.written.last()) else {
                continue;
            };
            let mut key = import.scope.clone();
            key.push(name.clone());
            let top_level = import.scope.is_empty() && modules.contains_key(&import.written[..1]);
            let target = if top_level {
                Some(import.written.clone())
            } else {
                absolute(&import.written, module, &import.scope)
            };
            reexports.insert(key, target);
        }
    }

    let mut stats = Stats { files: 0, paths: 0 };
    for (file, module, scan) in &scanned {
        if module.is_empty() || test_only.iter().any(|t| module.starts_with(t)) {
            continue;
        }
        let Some(rank) = layer_of(file) else {
            problems.push(format!(
                "runtime/src/{file}: in no layer; add it to LAYERS in runtime/tests/layers.rs (and to lib.rs's layer comment)"
            ));
            continue;
        };
        stats.files += 1;
        for path in &scan.paths {
            let Some(target) = absolute(&path.written, module, &path.scope) else {
                continue; // another crate's path, or a child module's (same folder)
            };
            stats.paths += 1;
            let written = path.written.join("::");
            let Some(to) = resolve(&target, &modules, &reexports) else {
                problems.push(format!(
                    "runtime/src/{file}:{}: cannot resolve `{written}`: neither a module of src/ nor a name lib.rs imports",
                    path.line
                ));
                continue;
            };
            let Some(to) = to else { continue }; // another crate's item, re-exported
            let Some(to_rank) = layer_of(to) else {
                continue; // reported above as a file in no layer
            };
            let to_module = module_of(to).join("::");
            if to_rank <= rank || ALLOWED.iter().any(|(f, m, _)| f == file && *m == to_module) {
                continue;
            }
            let via = if target.starts_with(&module_of(to)) {
                String::new()
            } else {
                format!(" through the re-export `{written}`")
            };
            problems.push(format!(
                "runtime/src/{file}:{}: {} imports {to_module} (layer {}, above {}){via}",
                path.line, LAYERS[rank].0, LAYERS[to_rank].0, LAYERS[rank].0
            ));
        }
    }
    if problems.is_empty() {
        Ok(stats)
    } else {
        Err(problems)
    }
}

/// `session/error.rs` → `["session", "error"]`; `hub/mod.rs` → `["hub"]`; lib.rs → `[]`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The index in [`LAYERS`] of a file (path relative to `src/`).
fn layer_of(file: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, members)| {
        members.iter().any(|m| {
            if m.ends_with('/') {
                file.starts_with(m)
            } else {
                file == *m
            }
        })
    })
}

/// The path from the crate root that `written` names, in module `module` (inline modules
/// `scope` deeper); `None` if it starts with neither `crate`, `self` nor `super`.
fn absolute(written: &[String], module: &[String], scope: &[String]) -> Option<Vec<String>> {
    let mut here: Vec<String> = module.iter().chain(scope).cloned().collect();
    let rest = match written.first()?.as_str() {
        "crate" => {
            here.clear();
            &written[1..]
        }
        "self" => &written[1..],
        "super" => {
            let ups = written.iter().take_while(|s| *s == "super").count();
            for _ in 0..ups {
                here.pop()?;
            }
            &written[ups..]
        }
        _ => return None,
    };
    here.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(here)
}

/// The file that a path from the crate root goes into, following lib.rs's re-exports:
/// `None` if it cannot be resolved, `Some(None)` for another crate's item.
fn resolve<'a>(
    path: &[String],
    modules: &BTreeMap<Vec<String>, &'a str>,
    reexports: &BTreeMap<Vec<String>, Option<Vec<String>>>,
) -> Option<Option<&'a str>> {
    let mut path = path.to_vec();
    for _ in 0..16 {
        // The deepest module with a file of its own that the path goes through.
        if let Some(file) = (1..=path.len()).rev().find_map(|n| modules.get(&path[..n])) {
            return Some(Some(file));
        }
        let (n, target) = (1..=path.len())
            .rev()
            .find_map(|n| reexports.get(&path[..n]).map(|t| (n, t)))?;
        let Some(target) = target else {
            return Some(None);
        };
        path = target.iter().chain(&path[n..]).cloned().collect();
    }
    None
}

// ---- Tokens -------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    /// A string, byte or char literal (its text does not matter).
    Literal,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Rust source to tokens, without comments; `$crate` is `crate`.
fn lex(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let push = |out: &mut Vec<Token>, tok, line| out.push(Token { tok, line });
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = line;
            i = skip_string(&c, i, &mut line);
            push(&mut out, Tok::Literal, start);
        } else if ch == '\'' {
            match char_literal_end(&c, i) {
                Some(end) => {
                    push(&mut out, Tok::Literal, line);
                    i = end;
                }
                None => i += 1, // a lifetime or a label: its name lexes as a word
            }
        } else if ch == ':' && next == Some(':') {
            push(&mut out, Tok::PathSep, line);
            i += 2;
        } else if ch == '$'
            && c[i + 1..].starts_with(&['c', 'r', 'a', 't', 'e'])
            && !c
                .get(i + 6)
                .is_some_and(|&n| n.is_alphanumeric() || n == '_')
        {
            push(&mut out, Tok::Ident("crate".into()), line);
            i += 6;
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let after = c.get(i).copied();
            let hashes = c[i..].iter().take_while(|&&h| h == '#').count();
            if matches!(word.as_str(), "r" | "br" | "cr") && c.get(i + hashes) == Some(&'"') {
                // A raw string: ends at `"` and as many `#`.
                let start = line;
                i += hashes + 1;
                while i < c.len()
                    && !(c[i] == '"'
                        && c[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == '#')
                            .count()
                            == hashes)
                {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
                i += 1 + hashes;
                push(&mut out, Tok::Literal, start);
            } else if word == "r" && after == Some('#') {
                i += 1; // a raw identifier: `r#type` is the word `type`
            } else if matches!(word.as_str(), "b" | "c") && after == Some('"') {
                let start = line;
                i = skip_string(&c, i, &mut line);
                push(&mut out, Tok::Literal, start);
            } else if word == "b" && after == Some('\'') {
                i = char_literal_end(&c, i).unwrap_or(i + 1);
                push(&mut out, Tok::Literal, line);
            } else {
                push(&mut out, Tok::Ident(word), line);
            }
        } else {
            push(&mut out, Tok::Punct(ch), line);
            i += 1;
        }
    }
    out
}

/// `c[i]` is `"`: the index after the closing `"`.
fn skip_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    i += 1;
    while i < c.len() {
        match c[i] {
            '\\' => {
                *line += usize::from(c.get(i + 1) == Some(&'\n'));
                i += 2;
            }
            '"' => return i + 1,
            ch => {
                *line += usize::from(ch == '\n');
                i += 1;
            }
        }
    }
    i
}

/// `c[i]` is `'`: the index after the char literal that starts there, or `None` for a
/// lifetime or label (`'a`, `'static`).
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    if c.get(i + 1) == Some(&'\\') {
        let close = c[i + 3..].iter().position(|&ch| ch == '\'')?;
        Some(i + 3 + close + 1)
    } else if c.get(i + 2) == Some(&'\'') {
        Some(i + 3)
    } else {
        None
    }
}

// ---- Paths --------------------------------------------------------------------------

/// One path in a file, as written: a leaf of a `use` item, or a path in code.
#[derive(Debug)]
struct Written {
    line: usize,
    /// Inline modules (`mod x { … }`) it is in, inside its file's module.
    scope: Vec<String>,
    written: Vec<String>,
    alias: Option<String>,
    is_use: bool,
}

#[derive(Debug, Default)]
struct Scan {
    paths: Vec<Written>,
    /// Modules declared `#[cfg(test)] mod x;` (their files are test code).
    test_modules: Vec<Vec<String>>,
}

fn word(t: &[Token], i: usize) -> Option<&str> {
    match t.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(w)) => Some(w),
        _ => None,
    }
}

fn is(t: &[Token], i: usize, tok: Tok) -> bool {
    t.get(i).is_some_and(|t| t.tok == tok)
}

fn scan(t: &[Token], module: &[String]) -> Scan {
    let mut out = Scan::default();
    // A file that is test code as a whole: `#![cfg(test)]` first.
    if cfg_test_attribute(t, 0).is_some() {
        return out;
    }
    let mut scope: Vec<(String, usize)> = Vec::new(); // inline modules, with their brace depth
    let mut depth = 0;
    let mut i = 0;
    while i < t.len() {
        if let Some(end) = cfg_test_attribute(t, i) {
            // Skip the item: its other attributes, then up to its `;` or its `{ … }`.
            let mut j = end;
            while is(t, j, Tok::Punct('#')) {
                j = group_end(t, j + 1);
            }
            let start = j;
            while j < t.len() && !is(t, j, Tok::Punct(';')) && !is(t, j, Tok::Punct('{')) {
                j = if matches!(t[j].tok, Tok::Punct('(' | '[')) {
                    group_end(t, j)
                } else {
                    j + 1
                };
            }
            if is(t, j, Tok::Punct(';')) {
                if let Some(k) = (start..j).find(|&k| word(t, k) == Some("mod")) {
                    if let Some(name) = word(t, k + 1) {
                        let mut m: Vec<String> = module.to_vec();
                        m.extend(scope.iter().map(|(s, _)| s.clone()));
                        m.push(name.to_string());
                        out.test_modules.push(m);
                    }
                }
                i = j + 1;
            } else {
                i = group_end(t, j);
            }
            continue;
        }
        let here: Vec<String> = scope.iter().map(|(s, _)| s.clone()).collect();
        match &t[i].tok {
            Tok::Ident(w) if w == "use" => {
                let mut leaves = Vec::new();
                i = use_tree(t, i + 1, Vec::new(), &mut leaves);
                for (line, written, alias) in leaves {
                    out.paths.push(Written {
                        line,
                        scope: here.clone(),
                        written,
                        alias,
                        is_use: true,
                    });
                }
            }
            Tok::Ident(w)
                if w == "mod" && word(t, i + 1).is_some() && is(t, i + 2, Tok::Punct('{')) =>
            {
                scope.push((word(t, i + 1).unwrap_or_default().to_string(), depth + 1));
                i += 2;
            }
            Tok::Ident(w)
                if matches!(w.as_str(), "crate" | "self" | "super")
                    && is(t, i + 1, Tok::PathSep)
                    && !(i > 0 && is(t, i - 1, Tok::PathSep)) =>
            {
                let line = t[i].line;
                let mut written = vec![w.clone()];
                i += 1;
                while is(t, i, Tok::PathSep) {
                    let Some(next) = word(t, i + 1) else { break };
                    written.push(next.to_string());
                    i += 2;
                }
                out.paths.push(Written {
                    line,
                    scope: here,
                    written,
                    alias: None,
                    is_use: false,
                });
            }
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if scope.last().is_some_and(|(_, d)| *d == depth) {
                    scope.pop();
                }
                depth -= 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// If `#[cfg(test)]` (or `#![cfg(test)]`) starts at `i`: the index after it.
fn cfg_test_attribute(t: &[Token], i: usize) -> Option<usize> {
    let mut j = i;
    if !is(t, j, Tok::Punct('#')) {
        return None;
    }
    j += 1;
    if is(t, j, Tok::Punct('!')) {
        j += 1;
    }
    let expected = [
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    for tok in expected {
        if !is(t, j, tok) {
            return None;
        }
        j += 1;
    }
    Some(j)
}

/// `t[i]` opens a group (`(`, `[`, `{`): the index after the token that closes it.
fn group_end(t: &[Token], i: usize) -> usize {
    let mut depth = 0i32;
    for (j, token) in t.iter().enumerate().skip(i) {
        match token.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth <= 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    t.len()
}

/// Parses the use tree at `i`, pushes its leaves (line, full path, alias) and returns the
/// index after it.
fn use_tree(
    t: &[Token],
    mut i: usize,
    mut path: Vec<String>,
    leaves: &mut Vec<(usize, Vec<String>, Option<String>)>,
) -> usize {
    loop {
        match t.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(w)) => {
                path.push(w.clone());
                i += 1;
            }
            Some(Tok::PathSep) if path.is_empty() => {
                path.push("::".into()); // `use ::name`: another crate
                i += 1;
                continue;
            }
            Some(Tok::Punct('*')) => {
                leaves.push((t[i].line, path, None));
                return i + 1;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                while i < t.len() {
                    match t[i].tok {
                        Tok::Punct('}') => return i + 1,
                        Tok::Punct(',') => i += 1,
                        _ => {
                            let j = use_tree(t, i, path.clone(), leaves);
                            i = if j == i { i + 1 } else { j };
                        }
                    }
                }
                return i;
            }
            _ => return i,
        }
        if !is(t, i, Tok::PathSep) {
            break;
        }
        i += 1;
    }
    let line = t[i - 1].line; // the leaf's last word
    let mut alias = None;
    if word(t, i) == Some("as") {
        alias = word(t, i + 1).map(String::from);
        i += 2;
    }
    leaves.push((line, path, alias));
    i
}

// ---- The check checked ----------------------------------------------------------------

fn crate_of(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

const LIB: &str = "mod codec; mod hub; mod session; mod transport;
pub use session::Thing;
pub use hub::{Gap as Lost, Hub};
pub use wirecall_macros::error;
pub mod erased { pub use crate::session::router::Method; }";

#[test]
fn an_import_from_a_higher_layer_fails_with_file_line_and_layers() {
    let files = crate_of(&[
        ("lib.rs", LIB),
        ("codec/mod.rs", "pub struct Frame;\n"),
        ("hub/mod.rs", "pub struct Hub;\npub struct Gap;\n"),
        (
            "session/mod.rs",
            "use crate::transport::ws::Socket;\npub struct Thing;\n",
        ),
        ("session/router.rs", "pub struct Method;\n"),
        (
            "transport/ws.rs",
            "use crate::session::Thing;\npub struct Socket;\n",
        ),
    ]);
    let problems = check(&files).unwrap_err();
    assert_eq!(
        problems,
        ["runtime/src/session/mod.rs:1: session imports transport::ws (layer doors, above session)"]
    );
}

#[test]
fn paths_through_root_reexports_groups_super_and_macros_count() {
    let codec = "use crate::{error::X, hub::{self, Hub}};
fn f() -> crate::Thing { todo!() }
fn g() { json!({\"m\": crate::Lost}); let _ = $crate::erased::Method; }
mod inner { use super::super::session::router; }
";
    let files = crate_of(&[
        ("lib.rs", LIB),
        ("error.rs", "pub struct X;\n"),
        ("codec/mod.rs", codec),
        ("hub/mod.rs", "pub struct Hub;\npub struct Gap;\n"),
        ("session/mod.rs", "pub struct Thing;\n"),
        ("session/router.rs", "pub struct Method;\n"),
    ]);
    let problems = check(&files).unwrap_err();
    assert_eq!(
        problems,
        [
            "runtime/src/codec/mod.rs:1: codec imports hub (layer hub, above codec)",
            "runtime/src/codec/mod.rs:1: codec imports hub (layer hub, above codec)",
            "runtime/src/codec/mod.rs:2: codec imports session (layer session, above codec) through the re-export `crate::Thing`",
            "runtime/src/codec/mod.rs:3: codec imports hub (layer hub, above codec) through the re-export `crate::Lost`",
            "runtime/src/codec/mod.rs:3: codec imports session::router (layer session, above codec) through the re-export `crate::erased::Method`",
            "runtime/src/codec/mod.rs:4: codec imports session::router (layer session, above codec)",
        ]
    );
}

#[test]
fn comments_strings_test_code_and_other_crates_do_not_count() {
    let codec = r####"// use crate::session::Thing;
/* crate::session::Thing /* nested */ crate::session::Thing */
const A: &str = "crate::session::Thing \" crate::session::Thing";
const B: &str = r#"crate::session::Thing " crate::session::Thing"#;
const C: char = '"'; const D: u8 = b'\''; fn e<'a>(x: &'a str) -> &'a str { x }
use serde::Serialize; use ::std::fmt; use crate::error::X;
fn f() -> crate::__private::serde::Value { todo!() }
#[cfg(test)]
mod tests { use crate::session::Thing; }
#[cfg(test)]
#[allow(unused)]
use crate::session::Thing;
#[cfg(test)]
mod bounds;
"####;
    let files = crate_of(&[
        ("lib.rs", "pub mod __private { pub use serde; }"),
        ("error.rs", "pub struct X;\n"),
        ("codec/mod.rs", codec),
        ("codec/bounds.rs", "use crate::session::Thing;\n"),
        (
            "codec/tested.rs",
            "#![cfg(test)]\nuse crate::session::Thing;\n",
        ),
        ("session/mod.rs", "pub struct Thing;\n"),
    ]);
    let stats = check(&files).unwrap();
    // error.rs's and codec's own `crate::error::X` and `crate::__private::serde::Value`.
    assert_eq!(stats.paths, 2, "{stats:?}");
}

#[test]
fn a_file_in_no_layer_and_an_unknown_path_are_reported() {
    let files = crate_of(&[
        ("lib.rs", ""),
        ("gadget.rs", "pub struct G;\n"),
        ("codec/mod.rs", "fn f() { crate::nowhere::f() }\n"),
    ]);
    let problems = check(&files).unwrap_err();
    assert_eq!(
        problems,
        [
            "runtime/src/codec/mod.rs:1: cannot resolve `crate::nowhere::f`: neither a module of src/ nor a name lib.rs imports",
            "runtime/src/gadget.rs: in no layer; add it to LAYERS in runtime/tests/layers.rs (and to lib.rs's layer comment)",
        ]
    );
}
