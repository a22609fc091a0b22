//! `wirecall check` end to end: exit codes and output.

use std::process::Command;

fn wirecall(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wirecall"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_fixture_is_valid() {
    let (code, stdout, stderr) = wirecall(&["check", "examples/idl/calculator.wire"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "ok: examples/idl/calculator.wire (1 service, 2 types)\n"
    );
    assert_eq!(stderr, "");
}

#[test]
fn quiet_prints_nothing_on_success() {
    let (code, stdout, _) = wirecall(&["check", "-q", "examples/idl/calculator.wire"]);
    assert_eq!((code, stdout.as_str()), (0, ""));
}

#[test]
fn errors_go_to_stderr_with_exit_1() {
    let (code, stdout, stderr) = wirecall(&[
        "check",
        "examples/idl/calculator.wire",
        "idl/tests/diagnostics/three_mistakes.wire",
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("ok: examples/idl/calculator.wire"));
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../idl/tests/diagnostics/three_mistakes.stderr"
    ))
    .unwrap();
    assert_eq!(
        stderr,
        expected.replace("tests/diagnostics/", "idl/tests/diagnostics/")
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let (code, _, stderr) = wirecall(&["check", "nope.wire"]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: cannot read `nope.wire`: No such file"),
        "{stderr}"
    );
}

#[test]
fn no_files_is_a_usage_error() {
    let (code, _, stderr) = wirecall(&["check"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("<FILE>..."), "{stderr}");
}

#[test]
fn gen_rust_writes_the_same_code_as_build_rs() {
    let (code, stdout, stderr) = wirecall(&["gen", "rust", "examples/idl/calculator.wire"]);
    assert_eq!(code, 0, "{stderr}");
    let golden = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../idl/tests/golden/calculator.rs"
    ))
    .unwrap();
    assert_eq!(stdout, golden);
    let out = std::env::temp_dir().join(format!("wirecall-gen-{}.rs", std::process::id()));
    let (code, stdout, _) = wirecall(&[
        "gen",
        "rust",
        "examples/idl/calculator.wire",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!((code, stdout.as_str()), (0, ""));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), golden);
    std::fs::remove_file(out).unwrap();
}

#[test]
fn gen_openrpc_prints_a_document() {
    let (code, stdout, stderr) = wirecall(&[
        "gen",
        "openrpc",
        "examples/idl/calculator.wire",
        "--api-version",
        "2.0.0",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["openrpc"], "1.3.2");
    assert_eq!(doc["info"]["title"], "calculator");
    assert_eq!(doc["info"]["version"], "2.0.0");
    assert_eq!(doc["methods"].as_array().unwrap().len(), 10);
}

#[test]
fn gen_on_an_invalid_file_prints_the_diagnostics() {
    let (code, stdout, stderr) =
        wirecall(&["gen", "rust", "idl/tests/diagnostics/three_mistakes.wire"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(
        stderr.contains("three_mistakes.wire:3:12: error: unknown type `u46`"),
        "{stderr}"
    );
}
