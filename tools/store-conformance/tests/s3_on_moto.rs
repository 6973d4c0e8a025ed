//! `S3Store` meets the contract on moto's S3, with moto's documented gaps declared.

use std::sync::Arc;
use std::time::Duration;

use store_conformance::{Behaviour, Gap, InjectFaults, InjectedFault, SuiteOptions, run};
use testkit::Services;
use testkit::s3_proxy::{S3Fault, S3FaultRule, S3Proxy};
use transfer::s3::{S3Compat, S3Store};

/// What moto 5.2.5's S3 does not do that S3 does (checked against its source).
const MOTO_GAPS: &[Gap] = &[
    Gap {
        behaviour: Behaviour::ChecksumVerification,
        reason: "moto 5.2.5 stores x-amz-checksum-* values but does not verify bodies against them",
    },
    Gap {
        behaviour: Behaviour::MetadataLimit,
        reason: "moto 5.2.5 does not enforce S3's 2 KB user metadata limit",
    },
    Gap {
        behaviour: Behaviour::KeyLengthLimit,
        reason: "moto 5.2.5 does not enforce S3's 1,024-byte key limit",
    },
    Gap {
        behaviour: Behaviour::UnknownUploadWrites,
        reason: "moto 5.2.5 answers UploadPart and CompleteMultipartUpload of an unknown upload \
                 with HTTP 500 (an unhandled error), not 404 NoSuchUpload",
    },
];

/// A proxy in front of moto that answers as S3 does when it misbehaves.
struct ProxyFaults(Arc<S3Proxy>);

impl InjectFaults for ProxyFaults {
    fn inject(&self, fault: InjectedFault) {
        let status = |status: u16, code: &str| S3Fault::Status {
            status,
            code: code.to_owned(),
        };
        let fault = match fault {
            InjectedFault::Throttle => status(503, "SlowDown"),
            InjectedFault::ServerError => status(500, "InternalError"),
            InjectedFault::RejectCredentials => status(403, "InvalidAccessKeyId"),
            InjectedFault::DenyAccess => status(403, "AccessDenied"),
            InjectedFault::TruncateBody => S3Fault::Truncate { after_bytes: 1000 },
        };
        self.0.inject(S3FaultRule::new(Some("GetObject"), fault));
    }

    fn clear(&self) {
        self.0.clear_faults();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_meets_the_contract_on_moto() {
    let services = Services::start(oss_emulator::EmulatorConfig::new()).await;
    let bucket = services.create_bucket("conformance").await;
    // Through a proxy, so that the suite can make "S3" misbehave; quick SDK retries.
    let proxy = Arc::new(
        S3Proxy::start(&services.moto.endpoint())
            .await
            .expect("the proxy starts"),
    );
    let sdk = services
        .sdk
        .to_builder()
        .endpoint_url(proxy.url())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build();
    let store = S3Store::from_sdk_config(&sdk).with_compat(S3Compat::Moto);
    let options = SuiteOptions {
        unimplementable: &["symlink_target", "put_symlink"],
        gaps: MOTO_GAPS,
        restore_timeout: Duration::from_secs(10),
        faults: Some(Arc::new(ProxyFaults(Arc::clone(&proxy)))),
        ..SuiteOptions::default()
    };
    let report = run(&store, &bucket, &options).await;
    println!("{report}");
    report.assert_passed();
}

/// The upload IDs moto holds for `key`, asked of moto directly (not through the proxy).
async fn uploads_of(services: &Services, bucket: &str, key: &str) -> Vec<String> {
    let page = services
        .s3
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .expect("the uploads list");
    page.uploads()
        .iter()
        .filter(|u| u.key() == Some(key))
        .filter_map(|u| u.upload_id().map(str::to_owned))
        .collect()
}

/// A CreateMultipartUpload whose answer is lost has still created an upload in S3. The store
/// must not leave it behind when it tries again, nor when it gives up; a refusal (503
/// `SlowDown`) created nothing, so it costs no search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_multipart_upload_answer_leaves_no_upload_behind() {
    use transfer::store::{ObjectSink, StoreErrorKind, WriteRequest};

    let services = Services::start(oss_emulator::EmulatorConfig::new()).await;
    let bucket = services.create_bucket("lost-answers").await;
    let proxy = S3Proxy::start(&services.moto.endpoint())
        .await
        .expect("the proxy starts");
    let sdk = services
        .sdk
        .to_builder()
        .endpoint_url(proxy.url())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build();
    let store = S3Store::from_sdk_config(&sdk).with_compat(S3Compat::Moto);
    let request = WriteRequest::default();
    let lose = |times: Option<u32>| S3FaultRule {
        times,
        ..S3FaultRule::new(Some("CreateMultipartUpload"), S3Fault::LoseAnswer)
    };

    // One lost answer: the second attempt's upload is the only one left.
    proxy.inject(lose(Some(1)));
    let id = store
        .create_multipart_upload(&bucket, "big object", &request)
        .await
        .expect("the second attempt creates the upload");
    let counts = proxy.take();
    assert_eq!(counts.get("CreateMultipartUpload"), Some(&2), "{counts:?}");
    assert_eq!(
        uploads_of(&services, &bucket, "big object").await,
        vec![id.clone()],
        "the upload whose answer was lost is aborted"
    );
    store
        .abort_multipart_upload(&bucket, "big object", &id)
        .await
        .expect("abort");

    // Every answer lost: the store gives up with a retryable error and leaves nothing.
    proxy.inject(lose(None));
    let error = store
        .create_multipart_upload(&bucket, "big object", &request)
        .await
        .expect_err("no attempt gets an answer");
    proxy.clear_faults();
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    let counts = proxy.take();
    assert_eq!(counts.get("CreateMultipartUpload"), Some(&3), "{counts:?}");
    assert!(
        uploads_of(&services, &bucket, "big object")
            .await
            .is_empty(),
        "every upload the lost answers created is aborted"
    );

    // A refusal is retried without a search.
    proxy.inject(S3FaultRule {
        times: Some(1),
        ..S3FaultRule::new(
            Some("CreateMultipartUpload"),
            S3Fault::Status {
                status: 503,
                code: "SlowDown".to_owned(),
            },
        )
    });
    let id = store
        .create_multipart_upload(&bucket, "big object", &request)
        .await
        .expect("the retry creates the upload");
    let counts = proxy.take();
    assert_eq!(counts.get("CreateMultipartUpload"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("ListMultipartUploads"), None, "{counts:?}");
    assert_eq!(uploads_of(&services, &bucket, "big object").await, vec![id]);
}
