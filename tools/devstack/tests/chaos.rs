//! The quick chaos run (`./scripts/chaos` is the full one): the whole local stack with about
//! 10% of the requests on both sides hit by faults, overwrites, deletes, re-creations,
//! slow-vs-fast races and replicator restarts; then the audit must find the replica exact.

mod common;

use std::time::Duration;

use devstack::chaos::{self, ChaosOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replica_is_exact_after_a_quick_chaos_run() {
    let stack = common::start(|config| {
        config.function_instances = 2;
        config.function_timeout = Duration::from_secs(30);
        chaos::configure(config);
    })
    .await;
    let options = ChaosOptions {
        objects: 120,
        max_size: 12 * transfer::size::MIB,
        races: 2,
        restarts: 2,
        timeout: Duration::from_mins(6),
        ..ChaosOptions::default()
    };
    let report = chaos::run(&stack, &options).await.expect("the chaos run");
    let logs = stack.log_tails(40);
    stack.shutdown().await;
    println!("{report}");
    assert!(report.workload.overwritten > 0 && report.workload.deleted > 0);
    assert!(
        report.oss_faults > 0,
        "faults were injected on the OSS side"
    );
    assert_eq!(report.workload.restarts, 2);
    assert!(report.passed(), "{report}\n{logs}");
}
