//! The reference store passes the whole contract, with both capabilities and no gaps.

use std::sync::Arc;

use store_conformance::{InjectFaults, InjectedFault, SuiteOptions, run};
use transfer::store::memory::{Fault, FaultRule};
use transfer::store::{MemoryStore, StoreErrorKind};

/// The memory store's own fault hooks, as the suite asks for them.
struct MemoryFaults(MemoryStore);

impl InjectFaults for MemoryFaults {
    fn inject(&self, fault: InjectedFault) {
        let fault = match fault {
            InjectedFault::Throttle => Fault::Fail(StoreErrorKind::Throttled),
            InjectedFault::ServerError => Fault::Fail(StoreErrorKind::Unavailable),
            InjectedFault::RejectCredentials => Fault::Fail(StoreErrorKind::InvalidCredentials),
            InjectedFault::DenyAccess => Fault::Fail(StoreErrorKind::AccessDenied),
            InjectedFault::TruncateBody => Fault::Truncate { bytes: 1000 },
        };
        self.0.inject(FaultRule::on("GetObject", fault));
    }

    fn clear(&self) {
        self.0.clear_faults();
    }
}

#[tokio::test]
async fn memory_store_meets_the_contract() {
    let store = MemoryStore::default().with_bucket("conformance");
    let options = SuiteOptions {
        faults: Some(Arc::new(MemoryFaults(store.clone()))),
        ..SuiteOptions::default()
    };
    let report = run(&store, "conformance", &options).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.failed().len(), 0);
    assert_eq!(
        report.passed().len(),
        report.cases.len(),
        "the reference store skips nothing"
    );
}

#[tokio::test]
async fn memory_store_without_capabilities_meets_the_contract_with_them_declared() {
    let store = MemoryStore::new(transfer::store::memory::MemoryConfig {
        restore: false,
        symlinks: false,
        ..Default::default()
    })
    .with_bucket("conformance");
    let options = SuiteOptions {
        unimplementable: &["restore_object", "symlink_target", "put_symlink"],
        ..SuiteOptions::default()
    };
    let report = run(&store, "conformance", &options).await;
    println!("{report}");
    report.assert_passed();
}
