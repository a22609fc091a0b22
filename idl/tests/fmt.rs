//! `wirecall fmt`: golden files (messy in, canonical out), idempotence, and meaning — the
//! generated Rust of a file and of its formatted form are identical — over every valid
//! `.wire` file of the repository and over a property test of generated messy files.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use wirecall_idl::codegen::{self, Options};
use wirecall_idl::fmt::format;
use wirecall_idl::Loader;

/// The generated Rust of `text` as the file `path` (its imports read from disk).
fn rust_of(path: &Path, text: &str) -> String {
    let loaded = Loader::new()
        .with_source(path, text)
        .load(path)
        .unwrap_or_else(|d| panic!("{}: {d}", path.display()));
    codegen::generate(&loaded.schema, &Options::default()).to_string()
}

fn check_meaning_and_idempotence(path: &Path, text: &str) {
    let formatted = format(&path.display().to_string(), text).unwrap();
    assert_eq!(
        format(&path.display().to_string(), &formatted).unwrap(),
        formatted,
        "{}: formatting twice changes the text of\n{text}",
        path.display()
    );
    assert_eq!(
        rust_of(path, text),
        rust_of(path, &formatted),
        "{}: formatting changed the meaning",
        path.display()
    );
}

fn repository_wire_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                // Build output, npm packages, and the files that are wrong on purpose.
                if !matches!(
                    name.as_ref(),
                    "target" | "node_modules" | ".git" | "diagnostics"
                ) {
                    dirs.push(path);
                }
            } else if name.ends_with(".wire") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_wire_file_of_the_repository_keeps_its_meaning() {
    let files = repository_wire_files();
    assert!(files.len() >= 3, "found {files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        check_meaning_and_idempotence(&path, &text);
    }
}

#[test]
fn the_repository_is_formatted() {
    for path in repository_wire_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let formatted = format(&path.display().to_string(), &text).unwrap();
        assert!(
            formatted == text,
            "{} is not in the canonical layout: run `wirecall fmt {}`",
            path.display(),
            path.display()
        );
    }
}

#[test]
fn golden_messy_in_canonical_out() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fmt");
    let messy = std::fs::read_to_string(dir.join("messy.wire.in")).unwrap();
    let want_path = dir.join("messy.formatted.wire");
    let got = format("messy.wire", &messy).unwrap();
    if std::env::var_os("WIRECALL_BLESS").is_some() {
        std::fs::write(&want_path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&want_path).unwrap();
    assert_eq!(
        got, want,
        "run with WIRECALL_BLESS=1 to update, and review the diff"
    );
    check_meaning_and_idempotence(&dir.join("messy.wire"), &messy);
}

// Messy files: the pieces of a valid file with random whitespace, comments and
// trailing commas between their tokens.

fn gap() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(" ".to_string()),
        2 => Just(String::new()),
        2 => Just("\n".to_string()),
        1 => Just("\n\n\n".to_string()),
        1 => Just("\t  ".to_string()),
        1 => Just(" // note\n".to_string()),
        1 => Just("\n// own line\n".to_string()),
        1 => Just(" /* block */ ".to_string()),
    ]
}

fn ty() -> impl Strategy<Value = Vec<String>> {
    let leaf = prop_oneof![
        Just(vec!["i64".to_string()]),
        Just(vec!["string".to_string()]),
        Just(vec!["bool".to_string()]),
        Just(vec!["Point".to_string()]),
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| {
                let mut v = vec!["list".into(), "<".into()];
                v.extend(t);
                v.push(">".into());
                v
            }),
            inner.clone().prop_map(|t| {
                let mut v = vec!["map".into(), "<".into(), "string".into(), ",".into()];
                v.extend(t);
                v.push(">".into());
                v
            }),
            inner.prop_map(|mut t| {
                if t.last().map(String::as_str) != Some("?") {
                    t.push("?".into());
                }
                t
            }),
        ]
    })
}

fn field(name: &'static str) -> impl Strategy<Value = Vec<String>> {
    (any::<bool>(), ty()).prop_map(move |(doc, t)| {
        let mut v = Vec::new();
        if doc {
            v.push(format!("/// The {name}.\n"));
        }
        v.push(name.into());
        v.push(":".into());
        v.extend(t);
        v
    })
}

fn messy_file() -> impl Strategy<Value = Vec<String>> {
    (
        prop::collection::vec(field("a"), 0..2),
        prop::collection::vec(field("b"), 0..2),
        any::<bool>(),
        any::<bool>(),
        ty(),
    )
        .prop_map(|(fa, fb, trailing, idempotent, ret)| {
            let mut v: Vec<String> = vec![
                "/// A point.\n".into(),
                "struct".into(),
                "Point".into(),
                "{".into(),
            ];
            v.extend(["x".into(), ":".into(), "i64".into(), ",".into()]);
            v.extend(["y".into(), ":".into(), "i64".into()]);
            if trailing {
                v.push(",".into());
            }
            v.push("}".into());
            v.extend([
                "enum".into(),
                "Mode".into(),
                "{".into(),
                "Fast".into(),
                ",".into(),
                "Exact".into(),
                "}".into(),
            ]);
            v.extend([
                "error".into(),
                "Oops".into(),
                "{".into(),
                "Bad".into(),
                "=".into(),
                "1".into(),
                ",".into(),
            ]);
            v.extend([
                "Worse".into(),
                "{".into(),
                "why".into(),
                ":".into(),
                "string".into(),
                "}".into(),
                "=".into(),
                "2".into(),
                "}".into(),
            ]);
            v.extend(["service".into(), "S".into(), "{".into()]);
            if idempotent {
                v.push("@idempotent\n".into());
            }
            v.extend(["rpc".into(), "f".into(), "(".into()]);
            let params: Vec<Vec<String>> = fa.into_iter().chain(fb).collect();
            for (i, p) in params.iter().enumerate() {
                if i > 0 {
                    v.push(",".into());
                }
                v.extend(p.iter().cloned());
            }
            v.push(")".into());
            v.push("->".into());
            v.extend(ret);
            v.extend(["throws".into(), "Oops".into(), ";".into()]);
            v.extend([
                "stream".into(),
                "g".into(),
                "(".into(),
                ")".into(),
                "->".into(),
                "Mode".into(),
                ";".into(),
            ]);
            v.extend([
                "client".into(),
                "{".into(),
                "notify".into(),
                "h".into(),
                "(".into(),
                "m".into(),
                ":".into(),
                "Mode".into(),
                ")".into(),
                ";".into(),
                "}".into(),
            ]);
            v.push("}".into());
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn messy_files_format_idempotently_without_changing_meaning(
        tokens in messy_file(),
        gaps in prop::collection::vec(gap(), 200),
    ) {
        let mut text = String::new();
        for (i, t) in tokens.iter().enumerate() {
            text.push_str(t);
            // A doc comment ends its own line; two words need something between them.
            if !t.ends_with('\n') {
                let gap = &gaps[i % gaps.len()];
                let word = |s: &str, last: bool| {
                    let c = if last { s.chars().last() } else { s.chars().next() };
                    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                let next = tokens.get(i + 1).map_or("", String::as_str);
                if gap.is_empty() && word(t, true) && word(next, false) {
                    text.push(' ');
                } else {
                    text.push_str(gap);
                }
            }
        }
        check_meaning_and_idempotence(Path::new("messy.wire"), &text);
    }
}
