//! Golden tests of rendered diagnostics: every `tests/diagnostics/NAME.wire` must render
//! exactly as `NAME.stderr` beside it, with a location. One mistake per file (except
//! `three_mistakes`); some show the same mistake in several places. With the torture corpus
//! (`tests/torture`, every file of which is accepted and compiles: see `wirecall-tests`),
//! these are the edge cases of the generators: each is refused here or compiles there.
//!
//! Regenerate after an intended change with `WIRECALL_BLESS=1 cargo test -p wirecall-idl
//! --test diagnostics` and review the diff.

use std::fs;
use std::path::Path;

#[test]
fn diagnostics_match_golden_files() {
    let dir = Path::new("tests/diagnostics");
    let bless = std::env::var_os("WIRECALL_BLESS").is_some();
    let mut failures = Vec::new();
    let mut count = 0;
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("wire") {
            continue;
        }
        count += 1;
        let rendered = match wirecall_idl::load(&path) {
            Ok(_) => format!("{} unexpectedly passed validation\n", path.display()),
            Err(d) => d.render(),
        };
        // Every refusal points at the user's text (in this file or one it imports); none is
        // the generator's failure.
        let located = rendered.starts_with("tests/diagnostics/")
            && rendered
                .lines()
                .next()
                .is_some_and(|l| l.contains(".wire:"));
        if !located || rendered.contains("internal error") {
            failures.push(format!(
                "{} is not a located diagnostic:\n{rendered}",
                path.display()
            ));
        }
        let golden = path.with_extension("stderr");
        if bless {
            fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&golden).unwrap_or_default();
        if expected != rendered {
            failures.push(format!(
                "--- {} (expected)\n{expected}+++ actual\n{rendered}",
                golden.display()
            ));
        }
    }
    assert!(count >= 30, "expected the golden cases, found {count}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn three_unrelated_mistakes_give_three_diagnostics() {
    let err = wirecall_idl::load("tests/diagnostics/three_mistakes.wire").unwrap_err();
    let locations: Vec<String> = err
        .items
        .iter()
        .map(|d| err.sources.location(d.span).unwrap())
        .collect();
    assert_eq!(
        locations,
        [
            "tests/diagnostics/three_mistakes.wire:3:12",
            "tests/diagnostics/three_mistakes.wire:6:34",
            "tests/diagnostics/three_mistakes.wire:9:6",
        ]
    );
}
