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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_odd_key_arrives_byte_exact_or_is_refused_with_its_reason() {
    // The odd-key corpus (events/odd-keys.txt) through the whole chain: every key OSS stores
    // and oss2s3 carries is written with the signed client, announced by the trigger, and must
    // arrive in S3 byte for byte; a task for a key oss2s3 refuses (a "." or ".." segment) ends
    // in the DLQ with the reason, and nothing else does.
    let stack = common::start(|_| {}).await;
    let oss = stack.oss_client().expect("an OSS client");
    let bucket = stack.config().oss_bucket.clone();
    let corpus = testkit::odd_keys::corpus();
    let mut want = std::collections::BTreeMap::new();
    for (i, k) in corpus.iter().enumerate() {
        if !k.on_moto() {
            continue;
        }
        let body = format!("odd key {i}").into_bytes();
        oss.put_object(
            &bucket,
            &k.key,
            transfer::oss::PutBody::from(body.clone()),
            &transfer::oss::PutObjectOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{:?}: {e}", k.key));
        want.insert(k.key.clone(), body);
    }
    let refused: Vec<&str> = corpus
        .iter()
        .filter(|k| {
            k.oss_refuses.is_none() && k.oss2s3_refuses.is_some() && k.moto_refuses.is_none()
        })
        .map(|k| k.key.as_str())
        .collect();
    assert!(!refused.is_empty());
    for key in &refused {
        // Written when the OSS client can write it (a key of only spaces), and then the trigger
        // announces it; a key with a "." segment cannot be written, so its task is sent here.
        let written = oss
            .put_object(
                &bucket,
                key,
                transfer::oss::PutBody::from(b"refused".to_vec()),
                &transfer::oss::PutObjectOptions::default(),
            )
            .await;
        if written.is_ok() {
            continue;
        }
        let task = transfer::task::ReplicationTask::put(transfer::task::SourceObject {
            region: stack.config().oss_region.clone(),
            bucket: bucket.clone(),
            key: (*key).to_owned(),
            size: Some(1),
            etag: Some("E".to_owned()),
        });
        stack
            .sqs()
            .send_message()
            .queue_url(stack.queue_url())
            .message_body(serde_json::to_string(&task).expect("JSON"))
            .send()
            .await
            .expect("sent");
    }
    common::wait_for(
        &stack,
        "every odd key in S3",
        Duration::from_mins(4),
        || async {
            for (key, body) in &want {
                if common::s3_bytes(&stack, key).await.as_ref() != Some(body) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    common::wait_for(
        &stack,
        "the refused keys in the DLQ",
        Duration::from_mins(4),
        || async { stack.queue_total(stack.dlq_url()).await.unwrap_or(0) >= refused.len() as u64 },
    )
    .await;
    let letters = stack
        .sqs()
        .receive_message()
        .queue_url(stack.dlq_url())
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .expect("the DLQ");
    let mut dead = Vec::new();
    for m in letters.messages() {
        let task: transfer::task::ReplicationTask =
            serde_json::from_str(m.body().unwrap_or_default()).expect("a task");
        let reason = m
            .message_attributes()
            .and_then(|a| a.get(transfer::sqs::DLQ_ATTR_REASON))
            .and_then(|v| v.string_value())
            .unwrap_or_default()
            .to_owned();
        dead.push((task.source.key, reason));
    }
    dead.sort();
    let mut expected: Vec<String> = refused.iter().map(|k| (*k).to_owned()).collect();
    expected.sort();
    assert_eq!(
        dead.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        expected,
        "{dead:?}"
    );
    assert!(dead.iter().all(|(_, r)| !r.is_empty()), "{dead:?}");
    stack.shutdown().await;
}
