//! The module layering drawn in the crate doc (`src/lib.rs`, "# Modules") holds: no module
//! refers to one listed above it, so the crate has no module cycles.

#[test]
fn modules_only_use_modules_listed_below_them() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let violations = testkit::layering::violations(&src);
    assert!(violations.is_empty(), "layering broken: {violations:#?}");
}
