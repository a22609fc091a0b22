//! `wirecall breaking`'s rules on a corpus: each folder of `tests/breaking/` holds an
//! `old.wire`, a `new.wire` (and the files they import), optionally `options` (`--both`,
//! `--rules strict`), and `expected`: the rendered verdict. Regenerate with
//! `WIRECALL_BLESS=1 cargo test -p wirecall-idl --test breaking` and review the diff.

use std::path::Path;

use wirecall_idl::breaking::{check, Options, RuleSet};

fn verdict(dir: &Path) -> String {
    let old = wirecall_idl::load(dir.join("old.wire")).unwrap_or_else(|d| panic!("{d}"));
    let new = wirecall_idl::load(dir.join("new.wire")).unwrap_or_else(|d| panic!("{d}"));
    let flags = std::fs::read_to_string(dir.join("options")).unwrap_or_default();
    let options = Options {
        rules: if flags.contains("--rules strict") {
            RuleSet::Strict
        } else {
            RuleSet::WireJson
        },
        both: flags.contains("--both"),
    };
    let changes = check(&old.schema, &new.schema, options);
    let mut out = String::new();
    for c in &changes {
        out.push_str(&c.render(&old.sources, &new.sources));
        out.push('\n');
    }
    out.push_str(&match changes.len() {
        0 => "compatible\n".to_string(),
        n => format!("{n} breaking\n"),
    });
    out
}

#[test]
fn the_corpus_verdicts() {
    let mut dirs: Vec<_> = std::fs::read_dir("tests/breaking")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 40, "{} cases", dirs.len());
    let mut failed = Vec::new();
    for dir in &dirs {
        let actual = verdict(dir);
        let path = dir.join("expected");
        if std::env::var_os("WIRECALL_BLESS").is_some() {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            failed.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                dir.display()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn every_file_is_compatible_with_itself_and_its_formatting() {
    for file in [
        "../examples/idl/calculator.wire",
        "../examples/idl/chat.wire",
        "tests/golden/everything.wire",
        "../tests/board/board.wire",
    ] {
        let loaded = wirecall_idl::load(file).unwrap();
        for both in [false, true] {
            let options = Options {
                rules: RuleSet::Strict,
                both,
            };
            let changes = check(&loaded.schema, &loaded.schema, options);
            assert!(changes.is_empty(), "{file}: {:?}", changes);
        }
        let text = std::fs::read_to_string(file).unwrap();
        let formatted = wirecall_idl::fmt::format(file, &text).unwrap();
        let reloaded = wirecall_idl::Loader::new()
            .with_source(file, formatted)
            .load(file)
            .unwrap();
        let changes = check(&loaded.schema, &reloaded.schema, Options::default());
        assert!(changes.is_empty(), "{file} after fmt: {changes:?}");
    }
}

#[test]
fn build_rs_fails_on_a_breaking_change() {
    let dir = std::env::temp_dir().join(format!("wirecall-breaking-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let build = |old: &str, new: &str| {
        wirecall_idl::configure()
            .out_dir(&dir)
            .emit_rerun_if_changed(false)
            .breaking_against(format!("tests/breaking/{old}/old.wire"))
            .compile(&[format!("tests/breaking/{new}/new.wire")])
    };
    build("param_optional_added_last", "param_optional_added_last").unwrap();
    let err = build("param_required_added", "param_required_added")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[PARAM_REQUIRED_ADDED]"), "{err}");
    assert!(err.contains("param_required_added/new.wire:38:22"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
