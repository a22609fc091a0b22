//! Macro errors point at the offending span, one mistake per file
//! (`tests/ui/fail/<topic>/*.rs`, expected output beside each as `.stderr`); the `pass`
//! cases compile and run. Regenerate expected output with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*/*.rs");
}
