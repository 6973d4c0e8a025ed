//! The whole chain: objects written to the OSS emulator with the signed client reach S3 through
//! the trigger, the forwarder, SQS, the event source mapping and the replicator, verified.

mod common;

use std::time::Duration;

use devstack::demo::{self, DemoOptions};

use transfer::size::MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_written_to_oss_arrive_verified_in_s3() {
    let stack = common::start(|c| {
        // A 6 MiB object is then copied with a multipart upload on the S3 side too.
        c.function_env = vec![
            ("PART_SIZE_MIB".into(), "5".into()),
            ("MULTIPART_THRESHOLD_MIB".into(), "5".into()),
        ];
    })
    .await;
    let options = DemoOptions {
        objects: 6,
        max_size: 6 * MIB,
        timeout: Duration::from_secs(90),
        ..DemoOptions::default()
    };
    let report = demo::run(&stack, &options).await.unwrap();
    assert!(report.passed(), "{report}\n{}", stack.log_tails(25));
    assert_eq!((report.objects, report.verified), (6, 6), "{report}");
    assert_eq!(report.latencies.len(), 6);
    assert_eq!(report.dlq_depth, 0);

    // Independently of the verifier: an odd key's bytes in S3 are the bytes uploaded.
    let objects = demo::dataset(&options);
    let odd = objects
        .iter()
        .find(|o| !o.key.is_ascii())
        .expect("the data set has a Unicode key");
    assert_eq!(common::s3_bytes(&stack, &odd.key).await, Some(odd.bytes()));

    // And the verifier does notice a destination that differs from the source.
    let victim = objects.iter().find(|o| o.size > 0).unwrap();
    stack
        .s3()
        .put_object()
        .bucket(&stack.config().dst_bucket)
        .key(&victim.key)
        .body(vec![0u8; transfer::size::as_usize(victim.size)].into())
        .send()
        .await
        .unwrap();
    let uploaded = demo::Uploaded {
        object: victim.clone(),
        etag: String::new(),
        crc64: transfer::crc64::checksum(&victim.bytes()),
        completed_at: std::time::Instant::now(),
    };
    let problems = demo::verify(
        stack.s3(),
        &stack.config().dst_bucket,
        &stack.config().oss_bucket,
        &uploaded,
    )
    .await;
    assert!(
        problems.iter().any(|p| p.starts_with("CRC-64")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("oss2s3-src-etag")),
        "{problems:?}"
    );
    stack.shutdown().await;
}
