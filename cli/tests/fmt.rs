//! `wirecall fmt` end to end: `--check` names the files that would change and exits 1,
//! a rewrite makes them pass, a file that does not parse is reported and left alone.

mod common;

use common::wirecall;

#[test]
fn check_then_rewrite() {
    let dir = std::env::temp_dir().join(format!("wirecall-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let messy = dir.join("messy.wire");
    let tidy = dir.join("tidy.wire");
    let broken = dir.join("broken.wire");
    std::fs::write(&messy, "struct  P{x:i64}").unwrap();
    std::fs::write(&tidy, "struct P {\n    x: i64,\n}\n").unwrap();
    std::fs::write(&broken, "struct P {\n    x: i64\n").unwrap();
    let (m, t, b) = (
        messy.to_str().unwrap(),
        tidy.to_str().unwrap(),
        broken.to_str().unwrap(),
    );

    let (code, out, err) = wirecall(&["fmt", "--check", m, t]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, format!("would reformat: {m}\n"));
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "struct  P{x:i64}",
        "--check writes nothing"
    );

    let (code, _, err) = wirecall(&["fmt", m, t]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "struct P {\n    x: i64,\n}\n"
    );
    let (code, out, _) = wirecall(&["fmt", "--check", m, t]);
    assert_eq!((code, out.as_str()), (0, ""));

    let (code, _, err) = wirecall(&["fmt", b]);
    assert_eq!(code, 1);
    assert!(err.contains("broken.wire:3:1"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&broken).unwrap(),
        "struct P {\n    x: i64\n",
        "left alone"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
