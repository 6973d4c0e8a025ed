//! P4: end-to-end latency on the local stack, from the OSS PUT to the object readable in S3.

use super::{
    BTreeMap, Context, Duration, Instant, Plan, Report, RunArgs, Stack, Verdict, ensure, json,
    quantile,
};

/// When each P4 object was written to OSS and first seen in S3.
#[derive(Debug, Default)]
struct Sightings {
    put: BTreeMap<String, Instant>,
    seen: BTreeMap<String, Instant>,
    failed_puts: usize,
}

pub(super) async fn end_to_end_latency(
    args: &RunArgs,
    plan: &Plan,
    bench: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let binaries = devstack::Binaries {
        oss_emulator: args.bin_dir.join("oss-emulator"),
        forwarder: args.bin_dir.join("bootstrap"),
        replicator: args.bin_dir.join("replicator"),
        cli: None,
    };
    let run_dir = bench.work.join("devstack");
    let config = devstack::StackConfig::new(binaries, args.python.clone(), run_dir);
    let parameters = json!({
        "rate_per_s": plan.p4_rate,
        "seconds": plan.p4_seconds,
        "object_bytes": plan.small_size,
        "function_instances": config.function_instances,
        "batch_size": config.batch_size,
        "batching_window_ms": transfer::size::millis(config.batching_window),
        "stack": "tools/devstack: emulator trigger → forwarder → SQS (moto) → event source mapping emulation → replicator → S3 (moto)",
    });
    let stack = devstack::Stack::start(config)
        .await
        .context("start the local stack")?;
    let driven = drive_p4(&stack, plan).await;
    stack.shutdown().await;
    let (sightings, poll_interval) = driven?;
    let total = plan.p4_rate * plan.p4_seconds;
    let latencies: Vec<f64> = sightings
        .put
        .iter()
        .filter_map(|(key, put)| {
            sightings
                .seen
                .get(key)
                .map(|seen| seen.duration_since(*put).as_secs_f64() * 1000.0)
        })
        .collect();
    ensure!(
        sightings.failed_puts == 0,
        "{} OSS PUTs failed",
        sightings.failed_puts
    );
    let missing = total - latencies.len();
    let (p50, p95, p99, max) = (
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.95),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0),
    );
    report.row(
        "P4",
        &format!(
            "OSS PUT → readable in S3, {}/s for {} s (p50 / p95 / p99 / max)",
            plan.p4_rate, plan.p4_seconds
        ),
        format!(
            "{p50:.0} / {p95:.0} / **{p99:.0}** / {max:.0} ms{}",
            if missing > 0 {
                format!(", {missing} of {total} never arrived")
            } else {
                String::new()
            }
        ),
        "p99 < 1 s",
        if args.quick {
            Verdict::Info
        } else {
            Verdict::of(p99 < 1000.0 && missing == 0)
        },
    );
    let mut figures = parameters;
    figures["objects"] = json!(total);
    figures["arrived"] = json!(latencies.len());
    figures["p50_ms"] = json!(p50);
    figures["p95_ms"] = json!(p95);
    figures["p99_ms"] = json!(p99);
    figures["max_ms"] = json!(max);
    figures["poll_interval_ms"] = json!(transfer::size::millis(poll_interval));
    report.figures("P4", figures);
    ensure!(
        missing == 0,
        "{missing} of {total} objects never reached S3"
    );
    Ok(())
}

/// Writes `rate` objects a second for `seconds` into OSS (each PUT on its own task, so a slow
/// one does not delay the schedule) and lists S3 until every object is there (or 60 s after
/// the last PUT). Keys are grouped per second, so each listing is short.
async fn drive_p4(stack: &devstack::Stack, plan: &Plan) -> anyhow::Result<(Sightings, Duration)> {
    use std::sync::{Arc, Mutex, PoisonError};
    use transfer::oss::{PutBody, PutObjectOptions};

    let poll_interval = Duration::from_millis(25);
    let oss = stack.oss_client()?;
    let src_bucket = stack.config().oss_bucket.clone();
    let dst_bucket = stack.config().dst_bucket.clone();
    let s3 = stack.s3().clone();
    let body = bytes::Bytes::from(crate::env::pattern(plan.small_size, 4));
    let sightings = Arc::new(Mutex::new(Sightings::default()));
    let total = plan.p4_rate * plan.p4_seconds;
    let writer = {
        let sightings = Arc::clone(&sightings);
        let rate = plan.p4_rate;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut puts = tokio::task::JoinSet::new();
            for i in 0..total {
                ticks.tick().await;
                let key = format!("p4/{:03}/{i:05}.bin", i / rate);
                let (oss, bucket, body) = (oss.clone(), src_bucket.clone(), body.clone());
                let sightings = Arc::clone(&sightings);
                puts.spawn(async move {
                    let started = Instant::now();
                    let result = oss
                        .put_object(
                            &bucket,
                            &key,
                            PutBody::Bytes(body),
                            &PutObjectOptions::default(),
                        )
                        .await;
                    let mut s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
                    match result {
                        Ok(_) => {
                            s.put.insert(key, started);
                        }
                        Err(e) => {
                            eprintln!("bench: P4 PUT {key} failed: {e}");
                            s.failed_puts += 1;
                        }
                    }
                });
            }
            while puts.join_next().await.is_some() {}
        })
    };
    let mut writer = Some(writer);
    let mut give_up: Option<Instant> = None;
    loop {
        tokio::time::sleep(poll_interval).await;
        if writer
            .as_ref()
            .is_some_and(tokio::task::JoinHandle::is_finished)
        {
            if let Some(w) = writer.take() {
                w.await?;
            }
            give_up = Some(Instant::now() + Duration::from_mins(1));
        }
        let prefixes: std::collections::BTreeSet<String> = {
            let s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
            s.put
                .keys()
                .filter(|k| !s.seen.contains_key(*k))
                .filter_map(|k| k.rsplit_once('/').map(|(p, _)| format!("{p}/")))
                .collect()
        };
        let done = {
            let s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
            writer.is_none() && s.seen.len() + s.failed_puts >= total
        };
        if done || give_up.is_some_and(|g| Instant::now() > g) {
            break;
        }
        for prefix in prefixes {
            let page = s3
                .list_objects_v2()
                .bucket(&dst_bucket)
                .prefix(&prefix)
                .send()
                .await
                .with_context(|| format!("list s3://{dst_bucket}/{prefix}"))?;
            let now = Instant::now();
            let mut s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
            for object in page.contents() {
                if let Some(key) = object.key()
                    && s.put.contains_key(key)
                    && !s.seen.contains_key(key)
                {
                    s.seen.insert(key.to_owned(), now);
                }
            }
        }
    }
    let sightings = std::mem::take(&mut *sightings.lock().unwrap_or_else(PoisonError::into_inner));
    Ok((sightings, poll_interval))
}
