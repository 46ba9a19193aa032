//! Every misuse of the attributes is a compile error that says what to do,
//! and what is allowed compiles. The expected messages are in
//! `ui/*.stderr`; after changing a message, regenerate them with
//! `TRYBUILD=overwrite` and read them again.

#[test]
fn misuse_is_a_clear_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
