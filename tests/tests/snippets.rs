//! Every Rust snippet of `README.md` and `docs/*.md` is compiled here: `build.rs` extracts
//! them (with the setup an HTML comment above a snippet gives, see `tests/build.rs`), so a
//! snippet that drifts from the API fails `cargo test`.

include!(concat!(env!("OUT_DIR"), "/snippets.rs"));

#[test]
fn the_documentation_snippets_compile() {
    // Compiling this file is the check; here, that the extraction found them.
    assert!(
        SNIPPETS
            .iter()
            .filter(|s| s.starts_with("README.md:"))
            .count()
            >= 7,
        "{SNIPPETS:?}"
    );
    assert!(
        SNIPPETS.iter().any(|s| s.starts_with("docs/IDL.md:")),
        "{SNIPPETS:?}"
    );
}
