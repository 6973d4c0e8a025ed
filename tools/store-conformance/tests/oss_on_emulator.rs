//! `OssClient` meets the contract on the OSS emulator, with the emulator's gaps declared.

use std::sync::Arc;
use std::time::Duration;

use oss_emulator::{Emulator, EmulatorConfig, Fault, FaultRule};
use store_conformance::{Behaviour, Gap, InjectFaults, InjectedFault, SuiteOptions, run};
use transfer::oss::{Credentials, OssClient};

const EMULATOR_GAPS: &[Gap] = &[Gap {
    behaviour: Behaviour::MetadataLimit,
    reason: "the emulator does not enforce OSS's 8 KB user metadata limit",
}];

/// The emulator's fault rules, answering as OSS does.
struct EmulatorFaults(Arc<Emulator>);

impl InjectFaults for EmulatorFaults {
    fn inject(&self, fault: InjectedFault) {
        let error = |status: u16, code: &str| Fault::Error {
            status,
            code: code.to_owned(),
            qos_delay_ms: None,
        };
        let fault = match fault {
            InjectedFault::Throttle => error(503, "SlowDown"),
            InjectedFault::ServerError => error(500, "InternalError"),
            InjectedFault::RejectCredentials => error(403, "InvalidAccessKeyId"),
            InjectedFault::DenyAccess => error(403, "AccessDenied"),
            InjectedFault::TruncateBody => Fault::Truncate { after_bytes: 1000 },
        };
        self.0.set_faults(vec![FaultRule::new("GetObject", fault)]);
    }

    fn clear(&self) {
        self.0.set_faults(Vec::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_client_meets_the_contract_on_the_emulator() {
    let emulator = Arc::new(
        Emulator::start(
            EmulatorConfig::new()
                .region(testkit::services::OSS_REGION)
                .bucket("conformance")
                .credentials(Credentials::new("ak", "sk"))
                .restore_delay(Duration::from_millis(200)),
        )
        .await
        .expect("the emulator starts"),
    );
    let store = OssClient::new(
        testkit::services::oss_config(&emulator),
        Credentials::new("ak", "sk"),
    )
    .expect("an OSS client");
    let options = SuiteOptions {
        gaps: EMULATOR_GAPS,
        faults: Some(Arc::new(EmulatorFaults(Arc::clone(&emulator)))),
        ..SuiteOptions::default()
    };
    let report = run(&store, "conformance", &options).await;
    println!("{report}");
    report.assert_passed();
}
