//! `wirecall breaking`: exit codes, the printed verdict, `--json`, and `--against` a git
//! revision (imports resolved at that revision too).

use std::path::Path;
use std::process::Command;

fn wirecall(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wirecall"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn corpus(case: &str, file: &str) -> String {
    format!("idl/tests/breaking/{case}/{file}")
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn exit_codes_and_output() {
    let (code, out, err) = wirecall(
        root(),
        &[
            "breaking",
            &corpus("param_optional_added_last", "old.wire"),
            &corpus("param_optional_added_last", "new.wire"),
        ],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "compatible: no breaking changes\n"),
        "{err}"
    );
    let (code, out, _) = wirecall(
        root(),
        &[
            "breaking",
            &corpus("param_required_added", "old.wire"),
            &corpus("param_required_added", "new.wire"),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "param_required_added/new.wire:38:22: breaking: [PARAM_REQUIRED_ADDED] (client→server)"
        ),
        "{out}"
    );
    assert!(
        out.contains("38 |     rpc get(id: u64, revision: u32)"),
        "{out}"
    );
    assert!(
        out.ends_with("1 breaking change (rules: docs/EVOLUTION.md)\n"),
        "{out}"
    );
    // --json for bots.
    let (code, out, _) = wirecall(
        root(),
        &[
            "breaking",
            &corpus("method_added_both", "old.wire"),
            &corpus("method_added_both", "new.wire"),
            "--both",
            "--json",
        ],
    );
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["compatible"], false);
    assert_eq!(doc["changes"][0]["rule"], "METHOD_ADDED");
    assert_eq!(doc["changes"][0]["breaks"], "old-servers");
    assert_eq!(doc["changes"][0]["location"]["line"], 48);
    // Usage and parse errors: 2.
    let (code, _, err) = wirecall(root(), &["breaking", &corpus("identical", "old.wire")]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = wirecall(
        root(),
        &["breaking", "nope.wire", &corpus("identical", "new.wire")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("nope.wire"), "{err}");
    let (code, _, err) = wirecall(
        root(),
        &[
            "breaking",
            &corpus("identical", "old.wire"),
            &corpus("identical", "new.wire"),
            "--rules",
            "loose",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown rule set `loose`"), "{err}");
}

#[test]
fn against_a_git_revision() {
    let dir = std::env::temp_dir().join(format!("wirecall-breaking-git-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("idl")).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "t@example.com"]);
    git(&["config", "user.name", "t"]);
    // Version 1: the service imports its types.
    std::fs::write(
        dir.join("idl/types.wire"),
        "struct Card {\n    title: string,\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("idl/board.wire"),
        "import \"types.wire\";\n\nservice Board {\n    rpc put(card: Card) -> u64;\n}\n",
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);
    // Version 2 in the working tree: a required field in the imported type.
    std::fs::write(
        dir.join("idl/types.wire"),
        "struct Card {\n    title: string,\n    due: u64,\n}\n",
    )
    .unwrap();
    let (code, out, err) = wirecall(&dir, &["breaking", "idl/board.wire", "--against", "HEAD"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("idl/types.wire:3:5: breaking: [FIELD_REQUIRED_ADDED]"),
        "{out}"
    );
    // From a subdirectory, the same.
    let (code, out, err) = wirecall(
        &dir.join("idl"),
        &["breaking", "board.wire", "--against", "HEAD"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("types.wire:3:5"), "{out}");
    // An absolute path names the same file.
    let absolute = dir.join("idl/board.wire");
    let (code, out, err) = wirecall(
        &dir,
        &["breaking", absolute.to_str().unwrap(), "--against", "HEAD"],
    );
    assert_eq!(code, 1, "{out}{err}");
    // Made optional: compatible.
    std::fs::write(
        dir.join("idl/types.wire"),
        "struct Card {\n    title: string,\n    due: u64?,\n}\n",
    )
    .unwrap();
    let (code, out, err) = wirecall(&dir, &["breaking", "idl/board.wire", "--against", "HEAD"]);
    assert_eq!(code, 0, "{out}{err}");
    // A file the revision does not have, and a revision that does not exist: 2.
    std::fs::write(dir.join("idl/new.wire"), "struct X {\n    a: u8,\n}\n").unwrap();
    let (code, _, err) = wirecall(&dir, &["breaking", "idl/new.wire", "--against", "HEAD"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`idl/new.wire` does not exist at HEAD"),
        "{err}"
    );
    let outside =
        std::env::temp_dir().join(format!("wirecall-outside-{}.wire", std::process::id()));
    std::fs::write(&outside, "struct X {\n    a: u8,\n}\n").unwrap();
    let (code, _, err) = wirecall(
        &dir,
        &["breaking", outside.to_str().unwrap(), "--against", "HEAD"],
    );
    let _ = std::fs::remove_file(&outside);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("outside the git repository"), "{err}");
    let (code, _, err) = wirecall(&dir, &["breaking", "idl/board.wire", "--against", "nope"]);
    assert_eq!(code, 2, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
