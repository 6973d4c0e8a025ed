//! The demo in the S3 → OSS direction: the same data set written to S3 (moto) with the AWS
//! SDK, as a user's application would; S3's event notifications (moto sends them to its own
//! SQS) reach the replicator with `DIRECTION=s3-to-oss`; every object is waited for and verified
//! in the OSS emulator. Objects that were in S3 before the notifications existed are backfilled
//! with `oss2s3 sync s3://… oss://…`, and `oss2s3 verify` audits both buckets at the end.

use aws_sdk_s3::primitives::{DateTime as S3DateTime, DateTimeFormat};

use super::*;

/// S3's smallest part (every part but the last).
const S3_MIN_PART: u64 = 5 * MIB;

/// Runs the demo from S3 into OSS on a stack that runs that direction.
pub(super) async fn run(stack: &Stack, options: &DemoOptions) -> anyhow::Result<DemoReport> {
    let (Some(queue_url), Some(dlq_url)) = (stack.reverse_queue_url(), stack.reverse_dlq_url())
    else {
        bail!("the S3 -> OSS demo needs a stack that runs that direction (devstack --two-way)");
    };
    // One way only: with the OSS trigger off, the copies in OSS raise no events back to S3.
    stack.set_trigger_enabled(false).await?;
    let objects = dataset(options);
    let config = stack.config();
    let (s3, s3_bucket, oss_bucket) = (stack.s3(), &config.dst_bucket, &config.oss_bucket);
    let oss = stack.oss_client()?;
    let expected: HashMap<String, u64> = objects.iter().map(|o| (o.key.clone(), o.size)).collect();
    if expected.len() != objects.len() {
        bail!("the data set has duplicate keys");
    }
    let bytes: u64 = objects.iter().map(|o| o.size).sum();
    let backfill = if options.existing > 0 {
        let existing = seed_existing(stack, options.existing, options.seed).await?;
        eprintln!(
            "demo: {} objects ({:.1} MiB) were in s3://{s3_bucket} before its event notifications; backfilling with oss2s3 sync",
            options.existing,
            existing as f64 / MIB as f64
        );
        let run = backfill::run_cli(stack, options.direction, "sync", "backfill", &[]).await?;
        eprintln!("demo: {}", run.headline());
        Some(run)
    } else {
        None
    };
    let started = Instant::now();
    let arrivals = Arrivals::default();
    let (lister, listed_bucket) = (oss.clone(), oss_bucket.clone());
    let watcher = tokio::spawn(watch_arrivals(
        move || list_oss(lister.clone(), listed_bucket.clone()),
        expected,
        arrivals.clone(),
        started + options.timeout,
    ));
    eprintln!(
        "demo: uploading {} objects ({:.1} MiB) to s3://{s3_bucket} with the AWS SDK",
        objects.len(),
        bytes as f64 / MIB as f64
    );
    let uploaded: Vec<Uploaded> = futures::stream::iter(objects.iter())
        .map(|o| upload_to_s3(s3, s3_bucket, o))
        .buffer_unordered(options.upload_concurrency.max(1))
        .try_collect()
        .await?;
    let upload_time = started.elapsed();
    eprintln!(
        "demo: uploads done in {:.1} s; waiting for OSS (timeout {:?})",
        upload_time.as_secs_f64(),
        options.timeout
    );
    let _ = watcher.await;
    let Arrived {
        total_time,
        latencies,
        missing,
        to_verify,
    } = arrived(&uploaded, &arrivals, started);
    eprintln!(
        "demo: verifying {} objects in oss://{oss_bucket}",
        to_verify.len()
    );
    let oss = &oss;
    let (verified, mismatches) =
        check_all(to_verify, |u| verify_in_oss(oss, oss_bucket, s3_bucket, u)).await;
    let audit = super::audit(stack, options).await?;
    let (dlq_visible, dlq_in_flight) = stack.queue_depth(dlq_url).await?;
    let (queue_visible, queue_in_flight) = stack.queue_depth(queue_url).await?;
    Ok(DemoReport {
        direction: options.direction,
        objects: uploaded.len(),
        verified,
        bytes,
        upload_time,
        total_time,
        latencies,
        missing,
        mismatches,
        function: function_metrics(&stack.function_logs()),
        esm: stack.reverse_esm_counts().unwrap_or_default(),
        dlq_depth: dlq_visible + dlq_in_flight,
        queue_depth: queue_visible + queue_in_flight,
        backfill,
        audit,
    })
}

/// Writes `object` to S3 as an application would: one PutObject, or (for the data set's
/// multipart objects) a multipart upload in parts of at least S3's 5 MiB. S3 has no appends, so
/// appended objects are PUT. Returns what S3 then reports for it.
async fn upload_to_s3(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    object: &DemoObject,
) -> anyhow::Result<Uploaded> {
    let (data, crc64) = generated(object).await?;
    let key = &object.key;
    let c = &object.content;
    let expires = c
        .expires
        .as_deref()
        .map(|e| S3DateTime::from_str(e, DateTimeFormat::HttpDate))
        .transpose()
        .with_context(|| format!("the Expires of {key}"))?;
    let metadata = object
        .user_metadata
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect();
    // The same headers on a PutObject or a CreateMultipartUpload builder.
    macro_rules! with_headers {
        ($call:expr) => {
            $call
                .bucket(bucket)
                .key(key)
                .set_content_type(c.content_type.clone())
                .set_content_encoding(c.content_encoding.clone())
                .set_content_disposition(c.content_disposition.clone())
                .set_content_language(c.content_language.clone())
                .set_cache_control(c.cache_control.clone())
                .set_expires(expires)
                .set_metadata(Some(metadata))
        };
    }
    match object.kind {
        UploadKind::Multipart { part_size } => {
            let part_size = transfer::size::as_usize(part_size.max(S3_MIN_PART));
            let parts = data.chunks(part_size).map(<[u8]>::to_vec);
            testkit::s3_upload::upload_in_parts(
                s3,
                with_headers!(s3.create_multipart_upload()),
                parts,
            )
            .await?;
        }
        UploadKind::Put | UploadKind::Append { .. } => {
            with_headers!(s3.put_object())
                .body(data.into())
                .send()
                .await
                .with_context(|| format!("PutObject {key}"))?;
        }
    }
    let completed_at = Instant::now();
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("HeadObject {key}"))?;
    if head.content_length() != i64::try_from(object.size).ok() {
        bail!("S3 holds another size for {key} than was uploaded");
    }
    Ok(Uploaded {
        object: object.clone(),
        etag: head
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned(),
        crc64,
        completed_at,
    })
}

/// Writes `count` objects under `existing/` to S3 while the bucket sends no event
/// notifications (they are put back afterwards): data that was there before replication
/// started. Returns their total size.
async fn seed_existing(stack: &Stack, count: usize, seed: u64) -> anyhow::Result<u64> {
    use aws_sdk_s3::types::NotificationConfiguration;

    let (s3, bucket) = (stack.s3(), &stack.config().dst_bucket);
    let notifications = s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .context("GetBucketNotificationConfiguration")?;
    let set = |queues| {
        s3.put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(queues)
                    .build(),
            )
            .send()
    };
    set(None)
        .await
        .context("turn the bucket's event notifications off")?;
    let mut bytes = 0;
    let mut written = Ok(());
    for i in 0..count {
        let size = dataset::existing_size(i);
        let object = DemoObject {
            key: format!("existing/{i:03} before the notifications.bin"),
            size,
            seed: seed + i as u64,
            kind: UploadKind::Put,
            content: ContentHeaders::default(),
            user_metadata: BTreeMap::new(),
        };
        if let Err(e) = upload_to_s3(s3, bucket, &object).await {
            written = Err(e);
            break;
        }
        bytes += size;
    }
    set(Some(notifications.queue_configurations().to_vec()))
        .await
        .context("turn the bucket's event notifications back on")?;
    written.map(|()| bytes)
}
