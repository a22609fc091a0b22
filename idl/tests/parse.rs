//! One test per language construct, the fixture checked field by field, and imports.

use wirecall_idl::model::*;
use wirecall_idl::{Loaded, Loader};

fn load(text: &str) -> Loaded {
    match Loader::new()
        .with_source("test.wire", text)
        .load("test.wire")
    {
        Ok(l) => l,
        Err(d) => panic!("unexpected errors:\n{d}"),
    }
}

fn load_err(text: &str) -> String {
    match Loader::new()
        .with_source("test.wire", text)
        .load("test.wire")
    {
        Ok(_) => panic!("expected an error"),
        Err(d) => d.render(),
    }
}

fn struct_def<'a>(l: &'a Loaded, name: &str) -> &'a Struct {
    match l.schema.type_def(name) {
        Some(TypeDef::Struct(s)) => s,
        other => panic!("no struct {name}: {other:?}"),
    }
}

fn ty(text: &str) -> TypeKind {
    let l = load(&format!("struct T {{ f: {text} }}"));
    struct_def(&l, "T").fields[0].ty.kind.clone()
}

fn boxed(kind: TypeKind) -> Box<Type> {
    Box::new(Type {
        kind,
        span: Span::Synthetic,
    })
}

#[test]
fn empty_file() {
    let l = load("");
    assert!(l.schema.types.is_empty() && l.schema.services.is_empty());
}

#[test]
fn line_and_block_comments_are_ignored() {
    let l = load("// line\n/* block /* nested */ still */ struct A { /* in */ x: i64 // end\n }");
    assert_eq!(struct_def(&l, "A").fields.len(), 1);
    assert!(struct_def(&l, "A").docs.is_empty());
}

#[test]
fn doc_comments_are_kept() {
    let l = load(
        "/// First line.\n///   Indented.\n////not a doc\nstruct A {\n  /// The x.\n  x: i64,\n}",
    );
    let a = struct_def(&l, "A");
    assert_eq!(a.docs.0, ["First line.", "  Indented."]);
    assert_eq!(a.fields[0].docs.0, ["The x."]);
}

#[test]
fn primitive_types() {
    for (name, kind) in PRIMITIVES {
        assert_eq!(ty(name), kind, "{name}");
    }
}

#[test]
fn composite_types() {
    assert_eq!(ty("list<i64>"), TypeKind::List(boxed(TypeKind::I64)));
    assert_eq!(
        ty("map<string, list<f64>>"),
        TypeKind::Map(
            boxed(TypeKind::String),
            boxed(TypeKind::List(boxed(TypeKind::F64)))
        )
    );
    assert_eq!(ty("string?"), TypeKind::Optional(boxed(TypeKind::String)));
    assert_eq!(
        ty("list<u8?>?"),
        TypeKind::Optional(boxed(TypeKind::List(boxed(TypeKind::Optional(boxed(
            TypeKind::U8
        ))))))
    );
}

#[test]
fn named_types_and_keyword_prefixes() {
    // `structure` and `listing` are identifiers, not keywords followed by more text.
    let l =
        load("struct structure { x: i64 } struct B { s: structure, l: listing } struct listing {}");
    let b = struct_def(&l, "B");
    assert_eq!(b.fields[0].ty.kind, TypeKind::Named("structure".into()));
    assert_eq!(b.fields[1].ty.kind, TypeKind::Named("listing".into()));
}

#[test]
fn struct_with_trailing_comma_and_empty_struct() {
    let l = load("struct A { x: i64, y: string?, } struct E {}");
    let a = struct_def(&l, "A");
    assert_eq!(
        a.fields
            .iter()
            .map(|f| f.name.name.as_str())
            .collect::<Vec<_>>(),
        ["x", "y"]
    );
    assert!(struct_def(&l, "E").fields.is_empty());
}

#[test]
fn unit_and_struct_enums() {
    let l = load("enum Mode { Fast, Exact } enum Shape { Circle { radius: f64 }, Rect { w: f64, h: f64 }, Empty {} }");
    let Some(TypeDef::Enum(mode)) = l.schema.type_def("Mode") else {
        panic!()
    };
    assert_eq!(mode.variants.len(), 2);
    assert!(mode.variants.iter().all(|v| v.fields.is_none()));
    let Some(TypeDef::Enum(shape)) = l.schema.type_def("Shape") else {
        panic!()
    };
    assert_eq!(shape.variants[0].name, "Circle");
    assert_eq!(shape.variants[0].fields.as_ref().unwrap()[0].name, "radius");
    assert_eq!(shape.variants[1].fields.as_ref().unwrap().len(), 2);
    assert_eq!(shape.variants[2].fields.as_ref().unwrap().len(), 0);
}

#[test]
fn errors_with_codes_and_fields() {
    let l = load("error CalcError { DivideByZero = 1001, Overflow { limit: i64 } = -7, }");
    let Some(TypeDef::Error(e)) = l.schema.type_def("CalcError") else {
        panic!()
    };
    assert_eq!(e.variants[0].name, "DivideByZero");
    assert_eq!(e.variants[0].code.value, Some(1001));
    assert!(e.variants[0].fields.is_none());
    assert_eq!(e.variants[1].code.value, Some(-7));
    assert_eq!(
        e.variants[1].fields.as_ref().unwrap()[0].ty.kind,
        TypeKind::I64
    );
}

#[test]
fn method_kinds_returns_and_throws() {
    let l = load(
        "error E { Bad = 1 }
         service S {
             rpc a(x: i64, y: string?) -> i64 throws E;
             rpc b();
             notify c(m: string);
             stream d(n: u32) -> u64 throws E;
         }",
    );
    let s = l.schema.service("S").unwrap();
    let kinds: Vec<_> = s.methods.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            MethodKind::Rpc,
            MethodKind::Rpc,
            MethodKind::Notify,
            MethodKind::Stream
        ]
    );
    let a = &s.methods[0];
    assert_eq!(a.params.len(), 2);
    assert_eq!(
        a.params[1].ty.kind,
        TypeKind::Optional(boxed(TypeKind::String))
    );
    assert_eq!(a.returns.as_ref().unwrap().kind, TypeKind::I64);
    assert_eq!(a.throws.as_ref().unwrap().name, "E");
    assert!(s.methods[1].returns.is_none() && s.methods[1].throws.is_none());
    assert_eq!(s.methods[3].returns.as_ref().unwrap().kind, TypeKind::U64);
}

#[test]
fn client_block_methods_are_to_client() {
    let l = load("service S { rpc a(); client { rpc confirm(q: string) -> bool; notify progress(p: u8); } rpc b(); }");
    let s = l.schema.service("S").unwrap();
    let server: Vec<_> = s.server_methods().map(|m| m.name.name.as_str()).collect();
    let client: Vec<_> = s.client_methods().map(|m| m.name.name.as_str()).collect();
    assert_eq!(server, ["a", "b"]);
    assert_eq!(client, ["confirm", "progress"]);
    assert_eq!(s.methods[1].wire_name(s), "S.confirm");
}

#[test]
fn attributes() {
    let l = load(
        r#"@deprecated("use B") struct A {}
           service S {
               @idempotent rpc stats() -> u64;
               @name("calc_echo") @deprecated rpc echo(text: string) -> string;
               @name("with\"quotes\"") notify n();
           }"#,
    );
    assert_eq!(
        l.schema.type_def("A").unwrap().attrs().deprecated(),
        Some("use B")
    );
    let s = l.schema.service("S").unwrap();
    assert!(s.methods[0].is_idempotent());
    assert!(!s.methods[1].is_idempotent());
    assert_eq!(s.methods[0].wire_name(s), "S.stats");
    assert_eq!(s.methods[1].wire_name(s), "calc_echo");
    assert_eq!(s.methods[1].attrs.deprecated(), Some(""));
    assert_eq!(s.methods[2].wire_name(s), "with\"quotes\"");
}

#[test]
fn spans_point_at_the_source() {
    let l = load("struct A {\n    x: i64,\n}\n");
    let a = struct_def(&l, "A");
    assert_eq!(l.sources.location(a.name.span).unwrap(), "test.wire:1:8");
    assert_eq!(
        l.sources.location(a.fields[0].name.span).unwrap(),
        "test.wire:2:5"
    );
    assert_eq!(
        l.sources.location(a.fields[0].ty.span).unwrap(),
        "test.wire:2:8"
    );
}

#[test]
fn the_calculator_fixture_field_by_field() {
    let l = wirecall_idl::load("../examples/idl/calculator.wire").unwrap();
    let schema = &l.schema;

    let Some(TypeDef::Error(calc_error)) = schema.type_def("CalcError") else {
        panic!()
    };
    assert_eq!(calc_error.variants.len(), 1);
    assert_eq!(calc_error.variants[0].name, "DivideByZero");
    assert_eq!(calc_error.variants[0].code.value, Some(1001));

    let stats = struct_def(&l, "Stats");
    assert_eq!(stats.fields.len(), 3);
    assert_eq!(stats.fields[0].name, "calls");
    assert_eq!(stats.fields[0].ty.kind, TypeKind::U64);
    assert_eq!(stats.fields[1].name, "last_message");
    assert_eq!(
        stats.fields[1].ty.kind,
        TypeKind::Optional(boxed(TypeKind::String))
    );
    assert_eq!(stats.fields[2].name, "caller");
    assert_eq!(
        stats.fields[2].ty.kind,
        TypeKind::Optional(boxed(TypeKind::String))
    );

    let calc = schema.service("Calculator").unwrap();
    /// name, kind, direction, params, result, throws, idempotent
    type Expected<'a> = (
        &'a str,
        MethodKind,
        Direction,
        &'a [(&'a str, TypeKind)],
        Option<TypeKind>,
        Option<&'a str>,
        bool,
    );
    let expect: [Expected<'_>; 10] = [
        (
            "add",
            MethodKind::Rpc,
            Direction::ToServer,
            &[("a", TypeKind::I64), ("b", TypeKind::I64)],
            Some(TypeKind::I64),
            None,
            false,
        ),
        (
            "subtract",
            MethodKind::Rpc,
            Direction::ToServer,
            &[("minuend", TypeKind::I64), ("subtrahend", TypeKind::I64)],
            Some(TypeKind::I64),
            None,
            false,
        ),
        (
            "divide",
            MethodKind::Rpc,
            Direction::ToServer,
            &[("a", TypeKind::F64), ("b", TypeKind::F64)],
            Some(TypeKind::F64),
            Some("CalcError"),
            false,
        ),
        (
            "echo",
            MethodKind::Rpc,
            Direction::ToServer,
            &[("text", TypeKind::String)],
            Some(TypeKind::String),
            None,
            false,
        ),
        (
            "sleep",
            MethodKind::Rpc,
            Direction::ToServer,
            &[("ms", TypeKind::U64)],
            Some(TypeKind::U64),
            None,
            false,
        ),
        (
            "ask",
            MethodKind::Rpc,
            Direction::ToServer,
            &[("question", TypeKind::String)],
            Some(TypeKind::Bool),
            None,
            false,
        ),
        (
            "stats",
            MethodKind::Rpc,
            Direction::ToServer,
            &[],
            Some(TypeKind::Named("Stats".into())),
            None,
            true,
        ),
        (
            "log",
            MethodKind::Notify,
            Direction::ToServer,
            &[("message", TypeKind::String)],
            None,
            None,
            false,
        ),
        (
            "ticks",
            MethodKind::Stream,
            Direction::ToServer,
            &[("count", TypeKind::U32), ("every_ms", TypeKind::U32)],
            Some(TypeKind::U64),
            None,
            false,
        ),
        (
            "confirm",
            MethodKind::Rpc,
            Direction::ToClient,
            &[("question", TypeKind::String)],
            Some(TypeKind::Bool),
            None,
            false,
        ),
    ];
    assert_eq!(calc.methods.len(), expect.len());
    for (m, (name, kind, direction, params, returns, throws, idempotent)) in
        calc.methods.iter().zip(expect)
    {
        assert_eq!(m.name, name);
        assert_eq!(m.kind, kind, "{name}");
        assert_eq!(m.direction, direction, "{name}");
        let got: Vec<(&str, TypeKind)> = m
            .params
            .iter()
            .map(|p| (p.name.name.as_str(), p.ty.kind.clone()))
            .collect();
        assert_eq!(got, params.to_vec(), "{name}");
        assert_eq!(
            m.returns.as_ref().map(|t| t.kind.clone()),
            returns,
            "{name}"
        );
        assert_eq!(m.throws.as_ref().map(|t| t.name.as_str()), throws, "{name}");
        assert_eq!(m.is_idempotent(), idempotent, "{name}");
        assert_eq!(m.wire_name(calc), format!("Calculator.{name}"));
        assert!(!m.docs.is_empty(), "{name} has docs");
    }
}

#[test]
fn imports_share_types_and_are_parsed_once() {
    let loader = Loader::new()
        .with_source("dir/root.wire", r#"import "common.wire"; import "sub/other.wire"; service S { rpc a() -> Common; rpc b() -> Other; }"#)
        .with_source("dir/common.wire", "struct Common { x: i64 }")
        .with_source("dir/sub/other.wire", r#"import "../common.wire"; struct Other { c: Common }"#);
    let l = loader.load("dir/root.wire").unwrap();
    let names: Vec<_> = l
        .schema
        .types
        .iter()
        .map(|t| t.name().name.as_str())
        .collect();
    assert_eq!(names, ["Common", "Other"]);
    let files: Vec<_> = l.files().map(|p| p.display().to_string()).collect();
    assert_eq!(
        files,
        ["dir/root.wire", "dir/common.wire", "dir/sub/other.wire"]
    );
}

#[test]
fn import_cycle_names_the_chain() {
    let loader = Loader::new()
        .with_source("a.wire", r#"import "b.wire";"#)
        .with_source("b.wire", r#"import "c.wire";"#)
        .with_source("c.wire", r#"import "a.wire";"#);
    let err = loader.load("a.wire").unwrap_err().render();
    assert!(
        err.starts_with("c.wire:1:8: error: import cycle\n"),
        "{err}"
    );
    assert!(
        err.contains("import chain: a.wire → b.wire → c.wire → a.wire"),
        "{err}"
    );
}

#[test]
fn errors_in_several_files_are_all_reported() {
    let loader = Loader::new()
        .with_source("a.wire", "import \"b.wire\"; struct A { x: Missing }")
        .with_source("b.wire", "struct B { y: Gone }");
    let err = loader.load("a.wire").unwrap_err();
    assert_eq!(err.items.len(), 2);
    let rendered = err.render();
    assert!(
        rendered.contains("b.wire:1:15: error: unknown type `Gone`"),
        "{rendered}"
    );
    assert!(
        rendered.contains("a.wire:1:32: error: unknown type `Missing`"),
        "{rendered}"
    );
}

#[test]
fn unreadable_root_is_a_clear_error() {
    let err = wirecall_idl::load("does/not/exist.wire")
        .unwrap_err()
        .render();
    assert!(
        err.starts_with("error: cannot read `does/not/exist.wire`:"),
        "{err}"
    );
}

#[test]
fn syntax_error_renders_expected_tokens() {
    let err = load_err("service S {\n    rpc add(a: i64) -> i64\n}\n");
    assert!(
        err.starts_with("test.wire:3:1: error: expected `;`, `?` or `throws`, found `}`\n"),
        "{err}"
    );
}

#[test]
fn tabs_keep_the_caret_aligned() {
    let err = load_err("struct A {\n\tx: nope,\n}");
    assert!(err.contains("2 | \tx: nope,\n  | \t   ^^^^\n"), "{err}");
}

#[test]
fn mutual_recursion_is_reported_once_with_its_cycle() {
    let err = load_err("struct A { b: B? } struct B { c: C } struct C { a: A, ok: list<A> }");
    assert_eq!(err.matches("infinite size").count(), 1, "{err}");
    assert!(err.contains("cycle: A → B → C → A"), "{err}");
}

#[test]
fn recursion_through_list_or_map_is_fine() {
    load("struct Tree { children: list<Tree>, by_name: map<string, Tree>, parent: json? }");
}

#[test]
fn a_file_reached_by_two_paths_is_read_once() {
    let dir = std::env::temp_dir().join(format!("wirecall-imports-{}", std::process::id()));
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(dir.join("common.wire"), "struct Common { x: i64 }").unwrap();
    std::fs::write(
        sub.join("other.wire"),
        r#"import "../common.wire"; struct Other { c: Common }"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("root.wire"),
        r#"import "./common.wire"; import "sub/../common.wire"; import "sub/other.wire"; struct Root { c: Common, o: Other }"#,
    )
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("common.wire"), dir.join("alias.wire")).unwrap();
    #[cfg(unix)]
    std::fs::write(
        dir.join("root2.wire"),
        r#"import "common.wire"; import "alias.wire"; struct R { c: Common }"#,
    )
    .unwrap();

    let l = wirecall_idl::load(dir.join("root.wire")).unwrap();
    let names: Vec<_> = l
        .schema
        .types
        .iter()
        .map(|t| t.name().name.as_str())
        .collect();
    assert_eq!(
        names,
        ["Common", "Other", "Root"],
        "common.wire parsed once"
    );
    #[cfg(unix)]
    {
        let l = wirecall_idl::load(dir.join("root2.wire")).unwrap();
        assert_eq!(l.schema.types.len(), 2, "a symbolic link is the same file");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
