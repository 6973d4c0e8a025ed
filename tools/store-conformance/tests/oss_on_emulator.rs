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

/// An InitiateMultipartUpload whose answer is lost has still created an upload in OSS. The
/// client must not leave it behind when it tries again, nor when it gives up; a refusal (429
/// throttling) created nothing, so it costs no search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_initiate_multipart_upload_answer_leaves_no_upload_behind() {
    use transfer::store::{ObjectSink, StoreErrorKind, WriteRequest};

    let emulator = Emulator::start(
        EmulatorConfig::new()
            .region(testkit::services::OSS_REGION)
            .bucket("lost-answers")
            .credentials(Credentials::new("ak", "sk")),
    )
    .await
    .expect("the emulator starts");
    let config = testkit::services::oss_config(&emulator);
    let attempts = u64::from(config.retry.max_attempts);
    let store = OssClient::new(config, Credentials::new("ak", "sk")).expect("an OSS client");
    let request = WriteRequest::default();
    let initiate = "InitiateMultipartUpload";
    let lose = |times: Option<u64>| {
        let rule = FaultRule::new(initiate, Fault::LoseAnswer);
        vec![match times {
            Some(n) => rule.times(n),
            None => rule,
        }]
    };

    // One lost answer: the second attempt's upload is the only one left, and it works.
    emulator.set_faults(lose(Some(1)));
    emulator.reset_stats();
    let id = store
        .create_multipart_upload("lost-answers", "big object", &request)
        .await
        .expect("the second attempt creates the upload");
    assert_eq!(emulator.stats().count(initiate), 2);
    assert_eq!(
        emulator.pending_uploads("lost-answers"),
        1,
        "the upload whose answer was lost is aborted"
    );
    let listed = store
        .list_uploads_of("lost-answers", "big object")
        .await
        .expect("the uploads list");
    assert_eq!(
        listed
            .iter()
            .map(|u| u.upload_id.as_str())
            .collect::<Vec<_>>(),
        [id.as_str()]
    );
    store
        .abort_multipart_upload("lost-answers", "big object", &id)
        .await
        .expect("abort");

    // Every answer lost: a retryable error, and nothing left.
    emulator.set_faults(lose(None));
    emulator.reset_stats();
    let error = store
        .create_multipart_upload("lost-answers", "big object", &request)
        .await
        .expect_err("no attempt gets an answer");
    emulator.set_faults(Vec::new());
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    assert_eq!(emulator.stats().count(initiate), attempts);
    assert_eq!(emulator.pending_uploads("lost-answers"), 0);

    // A refusal is retried without a search.
    emulator.set_faults(vec![
        FaultRule::new(
            initiate,
            Fault::Error {
                status: 429,
                code: "QpsLimitExceeded".to_owned(),
                qos_delay_ms: None,
            },
        )
        .times(1),
    ]);
    emulator.reset_stats();
    store
        .create_multipart_upload("lost-answers", "big object", &request)
        .await
        .expect("the retry creates the upload");
    assert_eq!(emulator.stats().count(initiate), 2);
    assert_eq!(emulator.stats().count("ListMultipartUploads"), 0);
    assert_eq!(emulator.pending_uploads("lost-answers"), 1);
    emulator.shutdown().await;
}
