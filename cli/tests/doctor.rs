//! `oss2s3 doctor` on a deployment that is wrong in every checked way, then on one that is right.

mod common;

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus,
    ExpirationStatus, LifecycleRule, LifecycleRuleFilter, VersioningConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use common::Stack;

fn findings(output: &std::process::Output) -> Vec<serde_json::Value> {
    serde_json::from_slice(&output.stdout).expect("JSON findings")
}

/// A replicator function on moto (its code is an empty zip: moto does not run it) and an event
/// source mapping from `queue_arn` to it: enabled with partial batch responses and a
/// concurrency cap when `right`, disabled without either otherwise.
async fn map_replicator(services: &testkit::Services, queue_arn: &str, right: bool) {
    // moto's Lambda wants the role to exist in its IAM; IAM is a query API, which moto routes
    // by the credential scope of the (unchecked) Authorization header.
    let role = testkit::Services::unique("replicator-role");
    let created = reqwest::Client::new()
        .post(format!("{}/", services.moto.endpoint()))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument=%7B%7D"
        ))
        .send()
        .await
        .expect("IAM answers");
    assert!(created.status().is_success(), "{:?}", created.text().await);
    let lambda = aws_sdk_lambda::Client::new(&services.sdk);
    let name = testkit::Services::unique("replicator");
    // The smallest zip: an end-of-central-directory record and nothing else.
    let mut zip = b"PK\x05\x06".to_vec();
    zip.resize(22, 0);
    lambda
        .create_function()
        .function_name(&name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(format!("arn:aws:iam::123456789012:role/{role}"))
        .timeout(900)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip))
                .build(),
        )
        .send()
        .await
        .expect("a function");
    let mut mapping = lambda
        .create_event_source_mapping()
        .function_name(&name)
        .event_source_arn(queue_arn)
        .batch_size(10)
        .enabled(right);
    if right {
        mapping = mapping
            .function_response_types(
                aws_sdk_lambda::types::FunctionResponseType::ReportBatchItemFailures,
            )
            .scaling_config(
                aws_sdk_lambda::types::ScalingConfig::builder()
                    .maximum_concurrency(5)
                    .build(),
            );
    }
    mapping.send().await.expect("a mapping");
}

fn level(findings: &[serde_json::Value], check: &str) -> String {
    let found = findings.iter().find(|f| f["check"] == check);
    let found = found.unwrap_or_else(|| panic!("no finding {check}: {findings:#?}"));
    found["level"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_finds_what_is_wrong_says_how_to_fix_it_and_passes_a_good_deployment() {
    let stack = Stack::start().await;
    let services = &stack.services;
    let (bad_queue, bad_arn) = services
        .create_queue(
            "doctor-bad",
            &[(QueueAttributeName::VisibilityTimeout, "30".to_owned())],
        )
        .await;
    map_replicator(services, &bad_arn, false).await;
    let bad_secret = services
        .secrets
        .create_secret()
        .name(testkit::Services::unique("doctor-bad"))
        .secret_string("{\"user\":\"x\"}")
        .send()
        .await
        .expect("a secret")
        .name()
        .expect("named")
        .to_owned();
    let source = format!("oss://{}/", common::SRC);
    let destination = stack.dst_url();
    let bad = stack
        .run(&[
            "doctor",
            "--queue",
            &bad_queue,
            "--secret",
            &bad_secret,
            "--source",
            &source,
            "--destination",
            &destination,
            "--json",
        ])
        .await;
    assert_eq!(bad.status.code(), Some(1));
    let f = findings(&bad);
    // 30 s against the mapped function's 900 s, found without --function-timeout.
    assert_eq!(level(&f, "visibility timeout"), "fail");
    assert_eq!(level(&f, "redrive policy"), "fail");
    assert_eq!(level(&f, "event source mapping"), "fail");
    assert_eq!(level(&f, "partial batch responses"), "fail");
    assert_eq!(level(&f, "maximum concurrency"), "warn");
    // moto reports every queue's MaximumMessageSize as 1 MiB, whatever was set.
    assert_eq!(level(&f, "OSS secret"), "fail");
    assert_eq!(level(&f, "versioning"), "warn");
    assert_eq!(level(&f, "abandoned uploads"), "warn");
    assert!(
        f.iter()
            .filter(|x| x["level"] != "ok")
            .all(|x| x["fix"].is_string()),
        "every problem says how to fix it: {f:#?}"
    );

    // The deployment done right.
    let (_, dlq_arn) = services
        .create_queue(
            "doctor-dlq",
            &[(
                QueueAttributeName::MessageRetentionPeriod,
                "1209600".to_owned(),
            )],
        )
        .await;
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5});
    let (good_queue, good_arn) = services
        .create_queue(
            "doctor-good",
            &[
                (QueueAttributeName::VisibilityTimeout, "5400".to_owned()),
                (QueueAttributeName::MaximumMessageSize, "1048576".to_owned()),
                (QueueAttributeName::RedrivePolicy, policy.to_string()),
            ],
        )
        .await;
    map_replicator(services, &good_arn, true).await;
    let good_secret = services
        .create_secret(
            "doctor-good",
            &transfer::oss::Credentials::new(common::AK, common::SK),
        )
        .await;
    services
        .s3
        .put_bucket_versioning()
        .bucket(&stack.dst)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning on");
    let rule = LifecycleRule::builder()
        .id("abort")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(7)
                .build(),
        )
        .build()
        .expect("a rule");
    services
        .s3
        .put_bucket_lifecycle_configuration()
        .bucket(&stack.dst)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .expect("a configuration"),
        )
        .send()
        .await
        .expect("lifecycle set");
    let good = stack
        .run(&[
            "doctor",
            "--queue",
            &good_queue,
            "--secret",
            &good_secret,
            "--source",
            &source,
            "--destination",
            &destination,
            "--json",
        ])
        .await;
    let f = findings(&good);
    assert_eq!(good.status.code(), Some(0), "{f:#?}");
    // moto (5.2) answers GetBucketVersioning with a <GetBucketVersioningResponse> root, which
    // the SDK cannot parse; the doctor then says it could not tell (a warning), as it would
    // for any unreadable answer.
    let versioning = f
        .iter()
        .find(|x| x["check"] == "versioning")
        .expect("checked");
    assert!(
        versioning["level"] == "ok"
            || versioning["detail"]
                .as_str()
                .is_some_and(|d| d.contains("GetBucketVersioningResponse")),
        "{versioning:#?}"
    );
    assert!(
        f.iter()
            .filter(|x| x["check"] != "versioning")
            .all(|x| x["level"] == "ok"),
        "{f:#?}"
    );
    assert_eq!(level(&f, "OSS access"), "ok");
    assert_eq!(level(&f, "DLQ retention"), "ok");
    assert_eq!(level(&f, "visibility timeout"), "ok");
    assert_eq!(level(&f, "partial batch responses"), "ok");
    assert_eq!(level(&f, "maximum concurrency"), "ok");

    // A queue no function reads.
    let (lonely, _) = services.create_queue("doctor-unread", &[]).await;
    let unread = stack.run(&["doctor", "--queue", &lonely, "--json"]).await;
    assert_eq!(unread.status.code(), Some(1));
    let f = findings(&unread);
    let mapping = f
        .iter()
        .find(|x| x["check"] == "event source mapping")
        .expect("checked");
    assert_eq!(mapping["level"], "fail");
    assert!(
        mapping["fix"]
            .as_str()
            .is_some_and(|fix| fix.contains("ReportBatchItemFailures")),
        "{mapping:#?}"
    );
}
