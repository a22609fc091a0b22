//! Property test: mutated versions of valid files (tokens and bytes deleted, inserted,
//! swapped; truncation) make the parser and validator return errors or a model — never
//! panic — and every error renders with a location inside the file.

use proptest::prelude::*;
use wirecall_idl::Loader;

const FIXTURE: &str = include_str!("../../examples/idl/calculator.wire");

const EXTRA: &str = r#"
import "common.wire";
/// Shapes.
enum Shape { Circle { radius: f64 }, Rect { w: f64, h: f64 } }
enum Mode { Fast, Exact }
struct Bag { items: map<string, list<Shape?>>, raw: json, data: bytes }
error Oops { Bad = 1, Worse { why: string } = 2 }
service More {
    @name("more.x") @deprecated("old") rpc x(a: Mode) -> Bag throws Oops;
    client { notify progress(percent: u8); }
}
"#;

const TOKENS: &[&str] = &[
    "struct",
    "enum",
    "error",
    "service",
    "rpc",
    "notify",
    "stream",
    "client",
    "throws",
    "import",
    "{",
    "}",
    "(",
    ")",
    "<",
    ">",
    ",",
    ";",
    ":",
    "?",
    "->",
    "=",
    "@",
    "@name(\"x\")",
    "///",
    "//",
    "/*",
    "*/",
    "\"",
    "list",
    "map",
    "i64",
    "Stats",
    "-32000",
    "99999999999999999999",
    "\n",
    "é",
    "\u{0}",
];

#[derive(Clone, Debug)]
enum Mutation {
    DeleteBytes(usize, usize),
    InsertToken(usize, usize),
    SwapTokens(usize, usize),
    InsertByte(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..20usize).prop_map(|(a, n)| Mutation::DeleteBytes(a, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Mutation::InsertToken(a, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::InsertByte(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let len = bytes.len().max(1);
    match *m {
        Mutation::DeleteBytes(at, n) => {
            let at = at % len;
            let end = (at + n).min(bytes.len());
            bytes.drain(at.min(bytes.len())..end);
        }
        Mutation::InsertToken(at, t) => {
            let at = at % len;
            bytes.splice(at..at, TOKENS[t].bytes());
        }
        Mutation::InsertByte(at, b) => bytes.insert(at % len, b),
        Mutation::Truncate(at) => bytes.truncate(at % len),
        Mutation::SwapTokens(a, b) => {
            let words: Vec<&str> = text.split_inclusive(char::is_whitespace).collect();
            if words.len() > 1 {
                let mut words = words;
                let (a, b) = (a % words.len(), b % words.len());
                words.swap(a, b);
                return words.concat();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(text: &str) {
    let loader = Loader::new()
        .with_source("root.wire", text)
        .with_source("common.wire", "struct Common { x: i64 }");
    match loader.load("root.wire") {
        Ok(_) => {}
        Err(d) => {
            assert!(!d.items.is_empty());
            let rendered = d.render();
            assert!(rendered.contains("error:"), "{rendered}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn mutated_fixture_never_panics(ms in prop::collection::vec(mutation(), 1..6)) {
        let mut text = FIXTURE.to_string();
        for m in &ms {
            text = apply(&text, m);
        }
        check(&text);
    }

    #[test]
    fn mutated_extras_never_panic(ms in prop::collection::vec(mutation(), 1..6)) {
        let mut text = EXTRA.to_string();
        for m in &ms {
            text = apply(&text, m);
        }
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }
}

#[test]
fn the_unmutated_inputs_are_valid() {
    let loader = Loader::new()
        .with_source("root.wire", format!("{FIXTURE}\n{EXTRA}"))
        .with_source("common.wire", "struct Common { x: i64 }");
    if let Err(d) = loader.load("root.wire") {
        panic!("{d}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for text in [
        format!(
            "struct A {{ x: {}i64{} }}",
            "list<".repeat(100_000),
            ">".repeat(100_000)
        ),
        "/*".repeat(100_000),
        "{".repeat(100_000),
    ] {
        let err = Loader::new()
            .with_source("deep.wire", text)
            .load("deep.wire")
            .unwrap_err();
        assert!(
            err.render().contains("nesting deeper than 64 levels"),
            "{err}"
        );
    }
}

#[test]
fn brackets_in_comments_and_strings_do_not_count_as_nesting() {
    let line = "/// if a < b { (\n// also < { (\n";
    let text = format!(
        "{}struct A {{ x: i64 }}\nservice S {{ @name(\"<<{{{{((\") rpc a(); }}",
        line.repeat(200)
    );
    if let Err(d) = Loader::new().with_source("ok.wire", text).load("ok.wire") {
        panic!("{d}");
    }
}
