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
