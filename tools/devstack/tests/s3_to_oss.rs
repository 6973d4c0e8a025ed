//! The S3 → OSS direction on the local stack: objects written to S3 (moto) reach the OSS
//! emulator through S3's own event notifications (moto delivers them to its SQS, in S3's
//! format), the event source mapping and the replicator with `DIRECTION=s3-to-oss`; and both
//! directions at once on one pair of buckets, which must converge without copying anything
//! back.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use devstack::Stack;
use transfer::message::{IncomingMessage, LegacyDefaults, parse_message};
use transfer::oss::{ObjectMeta, PutBody, PutObjectOptions};
use transfer::replicate::{MARKER_ETAG, MARKER_SOURCE, source_url};

const MIB: usize = transfer::size::as_usize(transfer::size::MIB);

/// Settings both directions share in these tests: small parts, deletes at once.
fn env() -> Vec<(String, String)> {
    [
        ("PART_SIZE_MIB", "5"),
        ("MULTIPART_THRESHOLD_MIB", "5"),
        ("REPLICATE_DELETES", "true"),
        ("DELETE_DELAY_SECONDS", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

async fn put_s3(stack: &Stack, key: &str, body: Vec<u8>) -> String {
    stack
        .s3()
        .put_object()
        .bucket(&stack.config().dst_bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("S3 PutObject {key:?}: {e:?}"))
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

/// Uploads `body` to S3 in parts of 5 MiB and returns its ETag (composite: `…-N`). With
/// `crc64_nvme` the upload asks for a full-object CRC-64/NVME, which S3 keeps for every new
/// object and moto only when asked.
async fn put_s3_in_parts(stack: &Stack, key: &str, body: &[u8], crc64_nvme: bool) -> String {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType};
    let s3 = stack.s3();
    let mut create = s3
        .create_multipart_upload()
        .bucket(&stack.config().dst_bucket)
        .key(key);
    if crc64_nvme {
        create = create
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_type(ChecksumType::FullObject);
    }
    let parts = body.chunks(5 * MIB).map(<[u8]>::to_vec);
    testkit::s3_upload::upload_in_parts(s3, create, parts)
        .await
        .unwrap_or_else(|e| panic!("S3 multipart upload of {key:?}: {e:#}"))
}

/// The OSS object's metadata and bytes, when it exists.
async fn oss_object(stack: &Stack, key: &str) -> Option<(ObjectMeta, Vec<u8>)> {
    let oss = stack.oss_client().expect("an OSS client");
    let bucket = &stack.config().oss_bucket;
    let object = oss
        .get_object(bucket, key, &transfer::oss::GetObjectOptions::default())
        .await
        .ok()?;
    let bytes = object.body.collect().await.ok()?;
    Some((object.meta, bytes.to_vec()))
}

/// The bytes of `key` in S3 and in OSS, where it exists.
async fn both_sides(stack: &Stack, key: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let in_oss = oss_object(stack, key).await.map(|(_, bytes)| bytes);
    (common::s3_bytes(stack, key).await, in_oss)
}

/// Whether the OSS object holds `body` and a marker naming the S3 object `key` with `etag`.
async fn replicated_to_oss(stack: &Stack, key: &str, body: &[u8], etag: &str) -> bool {
    let Some((meta, bytes)) = oss_object(stack, key).await else {
        return false;
    };
    let origin = source_url("s3", &stack.config().dst_bucket, key);
    bytes == body
        && meta.user_metadata.get(MARKER_SOURCE) == Some(&origin)
        && meta.user_metadata.get(MARKER_ETAG).map(String::as_str) == Some(etag)
}

/// Waits until both directions' queues are empty for two seconds in a row.
async fn wait_quiet(stack: &Stack, timeout: Duration) {
    let started = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    loop {
        let forward = stack.queue_total(stack.queue_url()).await.unwrap_or(1);
        let reverse = stack
            .queue_total(stack.reverse_queue_url().expect("the S3 → OSS direction"))
            .await
            .unwrap_or(1);
        if forward + reverse == 0 {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(2) {
                return;
            }
        } else {
            quiet_since = None;
        }
        assert!(
            started.elapsed() < timeout,
            "the queues did not drain ({forward} and {reverse} messages)\n{}",
            stack.log_tails(25)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The keys and reasons of the messages in a DLQ.
async fn dead_letters(stack: &Stack, dlq: &str) -> Vec<(String, String)> {
    let mut dead = Vec::new();
    loop {
        let received = stack
            .sqs()
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .message_attribute_names("All")
            .send()
            .await
            .expect("the DLQ");
        if received.messages().is_empty() {
            return dead;
        }
        for m in received.messages() {
            let legacy = LegacyDefaults {
                region: "",
                bucket: "",
            };
            let key = match parse_message(m.body().unwrap_or_default().as_bytes(), legacy) {
                Ok(IncomingMessage::S3Events(events)) if events.len() == 1 => events[0].key.clone(),
                Ok(IncomingMessage::Task(task)) => task.source.key,
                other => panic!("a dead letter of no single object: {other:?}"),
            };
            let reason = m
                .message_attributes()
                .and_then(|a| a.get(transfer::sqs::DLQ_ATTR_REASON))
                .and_then(|v| v.string_value())
                .unwrap_or_default()
                .to_owned();
            dead.push((key, reason));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_written_to_s3_arrive_in_oss_with_bytes_metadata_and_marker() {
    let stack = common::start(|c| {
        c.s3_to_oss = true;
        c.function_env = env();
        // moto restores at once; the retry after the restore request comes a second later.
        c.reverse_function_env = vec![("RESTORE_RETRY_DELAY_SECONDS".into(), "1".into())];
    })
    .await;
    // One direction only: OSS's trigger is off, so nothing written into OSS comes back.
    stack.set_trigger_enabled(false).await.expect("trigger off");
    let s3 = stack.s3();
    let bucket = stack.config().dst_bucket.clone();

    // Metadata and a storage class, mapped as documented (STANDARD_IA → IA).
    let described = b"described".to_vec();
    let written = s3
        .put_object()
        .bucket(&bucket)
        .key("meta/described.txt")
        .body(described.clone().into())
        .content_type("text/plain; charset=utf-8")
        .content_disposition("attachment; filename=\"d.txt\"")
        .content_language("en")
        .content_encoding("identity")
        .expires(aws_sdk_s3::primitives::DateTime::from_secs(1_893_456_000))
        .cache_control("max-age=60")
        .metadata("owner", "ops")
        .storage_class(aws_sdk_s3::types::StorageClass::StandardIa)
        .send()
        .await
        .expect("written");
    let mut want: BTreeMap<String, (Vec<u8>, String)> = BTreeMap::new();
    want.insert(
        "meta/described.txt".into(),
        (
            described,
            written
                .e_tag()
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned(),
        ),
    );
    // Sizes: empty, one byte, above the multipart threshold (a multipart copy into OSS).
    for (key, size) in [
        ("sizes/empty", 0),
        ("sizes/one", 1),
        ("sizes/100MiB", 100 * MIB),
    ] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251).to_le_bytes()[0]).collect();
        let etag = put_s3(&stack, key, body.clone()).await;
        want.insert(key.into(), (body, etag));
    }
    // An object uploaded to S3 in parts: a composite ETag ("…-2").
    let multipart_body: Vec<u8> = (0..6 * MIB).map(|i| (i % 239).to_le_bytes()[0]).collect();
    let composite = put_s3_in_parts(&stack, "sizes/multipart", &multipart_body, false).await;
    assert!(composite.ends_with("-2"), "{composite}");
    want.insert("sizes/multipart".into(), (multipart_body, composite));

    // An archived object (GLACIER) is restored, then copied, into OSS's Archive class.
    let archived = b"archived in S3".repeat(64);
    let archived_etag = s3
        .put_object()
        .bucket(&bucket)
        .key("archive/glacier.bin")
        .body(archived.clone().into())
        .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
        .send()
        .await
        .expect("written")
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned();

    // The odd-key corpus: every key S3 (moto) and OSS store arrives byte for byte; a key OSS
    // cannot store ends in the DLQ with its reason. (The keys oss2s3 refuses cannot be
    // written with the AWS SDK either: see the corpus's notes.)
    let corpus = testkit::odd_keys::corpus();
    let mut refused = Vec::new();
    for (i, k) in corpus.iter().enumerate() {
        let s3_stores = k.s3_refuses.is_none() && k.moto_refuses.is_none();
        if !s3_stores || k.oss2s3_refuses.is_some() {
            continue;
        }
        let body = format!("odd key {i}").into_bytes();
        let etag = put_s3(&stack, &k.key, body.clone()).await;
        if k.oss_refuses.is_some() {
            refused.push(k.key.clone());
        } else {
            want.insert(k.key.clone(), (body, etag));
        }
    }
    assert!(!refused.is_empty() && want.len() > 200, "{}", want.len());

    common::wait_for(
        &stack,
        "every object in OSS",
        Duration::from_mins(5),
        || async {
            for (key, (body, etag)) in &want {
                if !replicated_to_oss(&stack, key, body, etag).await {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let dlq = stack
        .reverse_dlq_url()
        .expect("the S3 → OSS DLQ")
        .to_owned();
    common::wait_for(
        &stack,
        "the refused keys in the DLQ",
        Duration::from_mins(3),
        || async { stack.queue_total(&dlq).await.unwrap_or(0) >= refused.len() as u64 },
    )
    .await;

    let oss = stack.oss_client().expect("an OSS client");
    common::wait_for(
        &stack,
        "the archived object restored and copied",
        Duration::from_mins(2),
        || async {
            let Ok(head) = oss
                .head_object(&stack.config().oss_bucket, "archive/glacier.bin")
                .await
            else {
                return false;
            };
            head.user_metadata.get(MARKER_ETAG) == Some(&archived_etag)
                && head.crc64 == Some(transfer::crc64::checksum(&archived))
                && head.storage_class == transfer::oss::StorageClass::Archive
        },
    )
    .await;

    let (meta, _) = oss_object(&stack, "meta/described.txt")
        .await
        .expect("copied");
    assert_eq!(
        meta.content.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        meta.content.content_disposition.as_deref(),
        Some("attachment; filename=\"d.txt\"")
    );
    assert_eq!(meta.content.content_language.as_deref(), Some("en"));
    assert_eq!(meta.content.cache_control.as_deref(), Some("max-age=60"));
    assert_eq!(meta.content.content_encoding.as_deref(), Some("identity"));
    assert_eq!(
        meta.content.expires.as_deref(),
        Some("Tue, 01 Jan 2030 00:00:00 GMT")
    );
    assert_eq!(
        meta.user_metadata.get("owner").map(String::as_str),
        Some("ops")
    );
    assert_eq!(
        meta.storage_class,
        transfer::oss::StorageClass::InfrequentAccess
    );
    for key in ["sizes/100MiB", "sizes/multipart"] {
        let (meta, bytes) = oss_object(&stack, key).await.expect("copied");
        assert_eq!(meta.crc64, Some(transfer::crc64::checksum(&bytes)), "{key}");
    }

    // A delete in S3 removes the replica; the test event S3 sent when the notification
    // configuration was saved went nowhere near the DLQ.
    s3.delete_object()
        .bucket(&bucket)
        .key("meta/described.txt")
        .send()
        .await
        .expect("deleted");
    common::wait_for(
        &stack,
        "the replica deleted",
        Duration::from_mins(2),
        || async { oss_object(&stack, "meta/described.txt").await.is_none() },
    )
    .await;
    let mut dead = dead_letters(&stack, &dlq).await;
    dead.sort();
    refused.sort();
    assert_eq!(
        dead.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        refused,
        "{dead:?}"
    );
    assert!(
        dead.iter().all(|(_, reason)| !reason.is_empty()),
        "{dead:?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_at_once_converge_without_copying_back() {
    let stack = common::start(|c| {
        c.s3_to_oss = true;
        c.s3_proxy = true;
        c.function_env = env();
        c.forwarder_env = vec![("FORWARD_DELETES".into(), "true".into())];
    })
    .await;
    let proxy = stack.s3_proxy().expect("the S3 proxy");
    let oss = stack.oss_client().expect("an OSS client");
    let oss_bucket = stack.config().oss_bucket.clone();
    let s3_bucket = stack.config().dst_bucket.clone();
    // moto's test event, and the stack's own setup, before counting starts.
    wait_quiet(&stack, Duration::from_mins(1)).await;
    proxy.take();
    let before = stack.emulator_stats().await.expect("stats");
    let oss_puts_before = before["requests"]["PutObject"].as_u64().unwrap_or(0);

    let mut everything: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..5 {
        let key = format!("from-oss/{i} + é.bin");
        let body = format!("written in OSS {i}").repeat(i + 1).into_bytes();
        oss.put_object(
            &oss_bucket,
            &key,
            PutBody::from(body.clone()),
            &PutObjectOptions::default(),
        )
        .await
        .expect("written in OSS");
        everything.insert(key, body);
    }
    for i in 0..5 {
        let key = format!("from-s3/{i} + é.bin");
        let body = format!("written in S3 {i}").repeat(i + 2).into_bytes();
        put_s3(&stack, &key, body.clone()).await;
        everything.insert(key, body);
    }
    common::wait_for(
        &stack,
        "every object on both sides",
        Duration::from_mins(3),
        || async {
            for (key, body) in &everything {
                let (in_s3, in_oss) = both_sides(&stack, key).await;
                if in_s3.as_ref() != Some(body) || in_oss.as_ref() != Some(body) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    wait_quiet(&stack, Duration::from_mins(2)).await;
    // Each object was copied once, the way it had to go: the OSS → S3 replicator wrote the
    // five OSS objects into S3, the S3 → OSS replicator the five S3 objects into OSS, and
    // neither copied an echo back.
    let s3_counts = proxy.take();
    assert_eq!(
        s3_counts.get("PutObject").copied().unwrap_or(0),
        5,
        "{s3_counts:?}"
    );
    let after = stack.emulator_stats().await.expect("stats");
    let oss_puts = after["requests"]["PutObject"].as_u64().unwrap_or(0) - oss_puts_before;
    assert_eq!(
        oss_puts,
        5 + 5,
        "five written by the test, five copied: {after}"
    );
    for key in everything.keys() {
        let origin_side_is_oss = key.starts_with("from-oss/");
        let (meta, _) = oss_object(&stack, key).await.expect("in OSS");
        assert_eq!(
            meta.user_metadata.contains_key(MARKER_SOURCE),
            !origin_side_is_oss,
            "{key}: only the copy carries a marker"
        );
    }

    // Deletes on either side take the other side's copy, and the echoes delete nothing more.
    let deleted = [
        "from-oss/0 + é.bin",
        "from-oss/1 + é.bin",
        "from-s3/0 + é.bin",
        "from-s3/1 + é.bin",
    ];
    for &key in &deleted[..2] {
        oss.delete_object(&oss_bucket, key)
            .await
            .expect("deleted in OSS");
        everything.remove(key);
    }
    for &key in &deleted[2..] {
        stack
            .s3()
            .delete_object()
            .bucket(&s3_bucket)
            .key(key)
            .send()
            .await
            .expect("deleted in S3");
        everything.remove(key);
    }
    common::wait_for(
        &stack,
        "the deletes on both sides",
        Duration::from_mins(2),
        || async {
            for key in deleted {
                if both_sides(&stack, key).await != (None, None) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    wait_quiet(&stack, Duration::from_mins(2)).await;
    let s3_counts = proxy.take();
    assert_eq!(
        s3_counts.get("DeleteObject").copied().unwrap_or(0),
        2,
        "{s3_counts:?}"
    );
    assert_eq!(
        s3_counts.get("PutObject").copied().unwrap_or(0),
        0,
        "{s3_counts:?}"
    );
    let last = stack.emulator_stats().await.expect("stats");
    let oss_deletes = last["requests"]["DeleteObject"].as_u64().unwrap_or(0)
        - after["requests"]["DeleteObject"].as_u64().unwrap_or(0);
    assert_eq!(oss_deletes, 2 + 2, "two by the test, two replicas: {last}");
    assert_eq!(
        last["requests"]["PutObject"].as_u64(),
        after["requests"]["PutObject"].as_u64(),
        "nothing was copied back into OSS"
    );
    for (key, body) in &everything {
        let expected = (Some(body.clone()), Some(body.clone()));
        assert!(both_sides(&stack, key).await == expected, "{key}");
    }
    for dlq in [stack.dlq_url(), stack.reverse_dlq_url().expect("the DLQ")] {
        assert_eq!(stack.queue_total(dlq).await.expect("depth"), 0, "{dlq}");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_reads_from_s3_and_corrupt_stores_in_oss_leave_nothing_wrong() {
    let stack = common::start(|c| {
        c.s3_to_oss = true;
        c.s3_proxy = true;
        c.function_env = env();
        // Retried quickly, and never given up on while the corruption lasts.
        c.visibility_timeout = Duration::from_secs(3);
        c.max_receive_count = 100;
    })
    .await;
    stack.set_trigger_enabled(false).await.expect("trigger off");
    let proxy = stack.s3_proxy().expect("the S3 proxy");
    // Every download from S3 arrives with the right length and wrong bytes.
    proxy.inject(testkit::s3_proxy::S3FaultRule::new(
        Some("GetObject"),
        testkit::s3_proxy::S3Fault::Corrupt { every: 100_000 },
    ));
    // Checked by its full-object CRC-64/NVME, copied into OSS with a multipart upload. S3
    // keeps that checksum for every new object; moto only when the upload asks for it.
    let multipart: Vec<u8> = (0..7 * MIB).map(|i| (i % 233).to_le_bytes()[0]).collect();
    put_s3_in_parts(&stack, "corrupt/multipart.bin", &multipart, true).await;
    // Checked by the MD5 its ETag is (one PUT, no SSE-KMS), copied with one PUT.
    let single = b"a small object, checked by its ETag".repeat(100);
    put_s3(&stack, "corrupt/single.bin", single.clone()).await;

    common::wait_for(
        &stack,
        "both copies refused more than once",
        Duration::from_mins(2),
        || async {
            stack
                .reverse_esm_counts()
                .is_some_and(|c| c.items_failed >= 4)
        },
    )
    .await;
    for key in ["corrupt/multipart.bin", "corrupt/single.bin"] {
        assert!(oss_object(&stack, key).await.is_none(), "{key} was written");
    }
    let mut logs = String::new();
    for log in stack.function_logs() {
        logs.push_str(&std::fs::read_to_string(log).unwrap_or_default());
    }
    assert!(
        logs.contains("CRC-64/NVME") && logs.contains("MD5"),
        "{}",
        stack.log_tails(30)
    );

    proxy.clear_faults();
    common::wait_for(
        &stack,
        "the copies once the reads are whole",
        Duration::from_mins(2),
        || async {
            oss_object(&stack, "corrupt/multipart.bin")
                .await
                .map(|(_, b)| b)
                .as_ref()
                == Some(&multipart)
                && oss_object(&stack, "corrupt/single.bin")
                    .await
                    .map(|(_, b)| b)
                    .as_ref()
                    == Some(&single)
        },
    )
    .await;
    // Every multipart upload the corrupt reads started in OSS was aborted: none is left once
    // the copies in flight (a redelivery may still be finishing its own) have settled.
    let stats = stack.emulator_stats().await.expect("stats");
    assert!(
        stats["requests"]["AbortMultipartUpload"].as_u64() >= Some(1),
        "{stats}"
    );
    let oss_bucket = stack.config().oss_bucket.clone();
    common::wait_for(
        &stack,
        "no multipart upload left in OSS",
        Duration::from_mins(1),
        || async {
            stack
                .emulator_pending_uploads(&oss_bucket)
                .await
                .expect("uploads")
                == 0
        },
    )
    .await;

    // The other leg: OSS reports a CRC-64 for a part, and then for a completed object, that is
    // not the CRC-64 of the bytes sent (as if it stored them corrupted). The part is sent
    // again, the completed object deleted again, and the copy retried until it is whole.
    stack
        .set_emulator_faults(&serde_json::json!([
            {"op": "UploadPart", "times": 1, "fault": {"kind": "crc_mismatch"}},
            {"op": "CompleteMultipartUpload", "times": 1, "fault": {"kind": "crc_mismatch"}},
        ]))
        .await
        .expect("faults set");
    let before = stack.emulator_stats().await.expect("stats");
    let stored: Vec<u8> = (0..6 * MIB).map(|i| (i % 229).to_le_bytes()[0]).collect();
    put_s3(&stack, "corrupt/stored.bin", stored.clone()).await;
    let injected = |stats: &serde_json::Value| stats["faults_injected"].as_u64().unwrap_or(0);
    common::wait_for(
        &stack,
        "both corruptions",
        Duration::from_mins(2),
        || async {
            stack
                .emulator_stats()
                .await
                .is_ok_and(|now| injected(&now) >= injected(&before) + 2)
        },
    )
    .await;
    // The object is visible for a moment between its completion and its deletion: the end
    // state is the one once the queue has drained.
    wait_quiet(&stack, Duration::from_mins(2)).await;
    let after = stack.emulator_stats().await.expect("stats");
    let delta = |op: &str| {
        after["requests"][op].as_u64().unwrap_or(0) - before["requests"][op].as_u64().unwrap_or(0)
    };
    assert!(
        delta("DeleteObject") >= 1,
        "the corrupt object was deleted: {after}"
    );
    assert!(
        delta("InitiateMultipartUpload") >= 2 && delta("CompleteMultipartUpload") >= 2,
        "the copy started over after the deletion: {before}\n{after}"
    );
    assert_eq!(
        stack
            .emulator_pending_uploads(&oss_bucket)
            .await
            .expect("uploads"),
        0
    );
    let (meta, bytes) = oss_object(&stack, "corrupt/stored.bin")
        .await
        .expect("copied");
    assert!(bytes == stored, "the copy differs");
    assert_eq!(meta.crc64, Some(transfer::crc64::checksum(&stored)));
    stack.shutdown().await;
}

/// `devstack demo --direction s3-to-oss` as a library call: a small data set written to S3
/// with the AWS SDK, backfill and audit included, arrives verified in OSS; and its verifier
/// notices an OSS object that differs from its S3 original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_replicates_from_s3_into_oss_and_verifies_every_object() {
    use devstack::demo::{self, DemoDirection, DemoOptions};

    let stack = common::start(|c| {
        c.s3_to_oss = true;
        c.function_env = env();
    })
    .await;
    let options = DemoOptions {
        direction: DemoDirection::S3ToOss,
        objects: 8,
        max_size: 6 * transfer::size::MIB,
        existing: 3,
        timeout: Duration::from_secs(90),
        ..DemoOptions::default()
    };
    let report = demo::run(&stack, &options).await.expect("the demo runs");
    assert!(report.passed(), "{report}\n{}", stack.log_tails(25));
    assert_eq!((report.objects, report.verified), (8, 8), "{report}");
    assert!(report.esm.received >= 8, "{report}");
    assert!(report.to_string().contains("demo: S3 -> OSS"), "{report}");
    let audit = report.audit.as_ref().expect("an audit");
    assert!(
        audit.stdout.contains("up_to_date     11"),
        "{}",
        audit.stdout
    );

    // Independently of the verifier: an odd key's bytes in OSS are the bytes written to S3.
    let objects = demo::dataset(&options);
    let odd = objects
        .iter()
        .find(|o| !o.key.is_ascii())
        .expect("the data set has a Unicode key");
    let (_, bytes) = oss_object(&stack, &odd.key).await.expect("in OSS");
    assert_eq!(bytes, odd.bytes());

    // The verifier notices an OSS object whose bytes and marker are not the S3 object's.
    let victim = objects
        .iter()
        .find(|o| o.size > 0)
        .expect("a non-empty object");
    let oss = stack.oss_client().expect("an OSS client");
    oss.put_object(
        &stack.config().oss_bucket,
        &victim.key,
        PutBody::from(vec![0u8; transfer::size::as_usize(victim.size)]),
        &PutObjectOptions::default(),
    )
    .await
    .expect("overwritten");
    let uploaded = demo::Uploaded {
        object: victim.clone(),
        etag: "the S3 ETag".to_owned(),
        crc64: transfer::crc64::checksum(&victim.bytes()),
        completed_at: Instant::now(),
    };
    let problems = demo::verify_in_oss(
        &oss,
        &stack.config().oss_bucket,
        &stack.config().dst_bucket,
        &uploaded,
    )
    .await;
    for wanted in ["CRC-64", "x-oss-hash-crc64ecma", "oss2s3-src-etag"] {
        assert!(
            problems.iter().any(|p| p.contains(wanted)),
            "{wanted}: {problems:?}"
        );
    }
    stack.shutdown().await;
}
