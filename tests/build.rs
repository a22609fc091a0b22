//! Generates code from the fixtures for the tests: the calculator, and an interface with
//! every construct of the language (compiled under `no_implicit_prelude` and
//! `deny(missing_docs, warnings)` in `src/lib.rs`).

fn main() -> Result<(), wirecall_idl::BuildError> {
    wirecall_idl::configure().compile(&[
        "../examples/idl/calculator.wire",
        "../idl/tests/golden/everything.wire",
    ])
}
