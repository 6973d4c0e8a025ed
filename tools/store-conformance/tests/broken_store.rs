//! The suite can fail: run against stores that break the contract, it reports the cases that
//! catch each breakage, and no others.

use store_conformance::{CaseOutcome, SuiteOptions, run};
use transfer::store::MemoryStore;
use transfer::store::memory::{Fault, FaultRule, MemoryConfig};

#[tokio::test]
async fn a_store_that_drops_user_metadata_fails_the_metadata_cases() {
    let store = MemoryStore::default().with_bucket("broken");
    store.inject(FaultRule::always(Fault::DropMetadata));
    let report = run(&store, "broken", &SuiteOptions::default()).await;
    println!("{report}");
    let failed = report.failed();
    assert!(
        failed.contains(&"user_metadata_round_trips_with_lower_case_names"),
        "{report}"
    );
    assert!(
        failed.contains(&"multipart_upload_assembles_the_parts_in_order"),
        "{report}"
    );
    assert!(
        failed.contains(&"put_replaces_an_existing_object") || failed.len() >= 2,
        "{report}"
    );
    assert!(
        report
            .passed()
            .contains(&"ranged_get_returns_exactly_the_range"),
        "unrelated cases still pass: {report}"
    );
}

#[tokio::test]
async fn a_store_that_corrupts_reads_fails_the_read_cases() {
    let store = MemoryStore::default().with_bucket("broken");
    store.inject(FaultRule::on("GetObject", Fault::Corrupt));
    let report = run(&store, "broken", &SuiteOptions::default()).await;
    let failed = report.failed();
    for case in [
        "get_returns_the_whole_body_and_its_attributes",
        "ranged_get_returns_exactly_the_range",
        "odd_keys_round_trip_byte_exact",
    ] {
        assert!(failed.contains(&case), "{case} did not catch it: {report}");
    }
    assert!(
        report
            .passed()
            .contains(&"listing_an_unused_prefix_is_empty")
    );
}

#[tokio::test]
async fn a_capability_that_is_missing_but_not_declared_fails() {
    let store = MemoryStore::new(MemoryConfig {
        symlinks: false,
        ..MemoryConfig::default()
    })
    .with_bucket("broken");
    let report = run(&store, "broken", &SuiteOptions::default()).await;
    let outcome = report
        .cases
        .iter()
        .find(|(name, _)| *name == "capabilities_match_the_declared_gaps")
        .map(|(_, o)| o.clone());
    assert!(
        matches!(&outcome, Some(CaseOutcome::Failed(why)) if why.contains("symlinks are missing")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_capability_declared_missing_but_present_fails() {
    let store = MemoryStore::default().with_bucket("broken");
    let options = SuiteOptions {
        unimplementable: &["restore_object"],
        ..SuiteOptions::default()
    };
    let report = run(&store, "broken", &options).await;
    assert_eq!(
        report.failed(),
        ["capabilities_match_the_declared_gaps"],
        "{report}"
    );
}
