//! P4: end-to-end latency on the local stack, from the OSS PUT to the object readable in S3.

use super::{
    BTreeMap, Context, Duration, Instant, Plan, Report, RunArgs, S3_KEYS, Stack, Value, Verdict,
    ensure, json, quantile,
};

/// When each P4 object was written to OSS and first seen in S3.
#[derive(Debug, Default)]
struct Sightings {
    put: BTreeMap<String, Instant>,
    seen: BTreeMap<String, Instant>,
    failed_puts: usize,
}

/// The p99 P4 aims for at every rate.
const P99_TARGET_MS: f64 = 500.0;

pub(super) async fn end_to_end_latency(
    args: &RunArgs,
    plan: &Plan,
    bench: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut figures = Vec::new();
    let mut missing_anywhere = Vec::new();
    for rate in plan.p4_rates {
        let (figure, missing) = latency_at(args, plan, bench, report, rate).await?;
        figures.push(figure);
        if missing > 0 {
            missing_anywhere.push(format!("{missing} at {rate}/s"));
        }
    }
    report.figures("P4", json!({ "runs": figures }));
    ensure!(
        missing_anywhere.is_empty(),
        "objects never reached S3: {}",
        missing_anywhere.join(", ")
    );
    Ok(())
}

/// One P4 run at `rate` objects/s on a fresh stack: its figures and how many objects never
/// arrived.
async fn latency_at(
    args: &RunArgs,
    plan: &Plan,
    bench: &Stack,
    report: &mut Report,
    rate: usize,
) -> anyhow::Result<(Value, usize)> {
    let binaries = devstack::Binaries {
        oss_emulator: args.bin_dir.join("oss-emulator"),
        forwarder: args.bin_dir.join("bootstrap"),
        replicator: args.bin_dir.join("replicator"),
        cli: None,
    };
    let run_dir = bench.work.join(format!("devstack-{rate}"));
    let mut config = devstack::StackConfig::new(binaries, args.python.clone(), run_dir);
    // moto's SQS serves a few hundred calls a second, fewer than the forwarder and the pollers
    // make at 200 objects/s; testkit's in-memory SQS server keeps SQS's semantics without the
    // ceiling.
    config.sqs = devstack::SqsService::InMemory;
    // Lambda's event source mapping adds concurrent batches while a backlog grows; the local
    // stack's pollers do not, so give it one execution environment per 50 objects/s (two at
    // least, the stack's default).
    config.function_instances = config.function_instances.max(rate.div_ceil(50));
    // moto's S3 takes about 290 PUTs/s at best on this machine, so at 200 objects/s it would
    // set the pace: with the benchmark's S3 server (`s3s-fs`, in the full run) the stack
    // writes there instead.
    if bench.sink_pid.is_some() {
        config.s3_endpoint = Some(bench.s3_endpoint.clone());
        S3_KEYS.0.clone_into(&mut config.aws_access_key_id);
        S3_KEYS.1.clone_into(&mut config.aws_secret_access_key);
    }
    config.dst_bucket = format!("p4-{rate}");
    let parameters = json!({
        "rate_per_s": rate,
        "seconds": plan.p4_seconds,
        "object_bytes": plan.small_size,
        "function_instances": config.function_instances,
        "sqs": format!("{:?}", config.sqs),
        "s3": if config.s3_endpoint.is_some() { bench.sink_name } else { "moto" },
        "batch_size": config.batch_size,
        "batching_window_ms": transfer::size::millis(config.batching_window),
        "stack": "tools/devstack: emulator trigger → forwarder → SQS (testkit::sqs_server) → event source mapping emulation → replicator → S3",
    });
    let stack = devstack::Stack::start(config)
        .await
        .context("start the local stack")?;
    let driven = drive_p4(&stack, plan, rate).await;
    stack.shutdown().await;
    let (sightings, poll_interval) = driven?;
    let total = rate * plan.p4_seconds;
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
            rate, plan.p4_seconds
        ),
        format!(
            "{p50:.0} / {p95:.0} / **{p99:.0}** / {max:.0} ms{}",
            if missing > 0 {
                format!(", {missing} of {total} never arrived")
            } else {
                String::new()
            }
        ),
        &format!("p99 < {P99_TARGET_MS:.0} ms"),
        if args.quick {
            Verdict::Info
        } else {
            Verdict::of(p99 < P99_TARGET_MS && missing == 0)
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
    Ok((figures, missing))
}

/// Writes `rate` objects a second for `seconds` into OSS (each PUT on its own task, so a slow
/// one does not delay the schedule) and lists S3 until every object is there (or 60 s after
/// the last PUT). Keys are grouped per second, so each listing is short.
async fn drive_p4(
    stack: &devstack::Stack,
    plan: &Plan,
    rate: usize,
) -> anyhow::Result<(Sightings, Duration)> {
    use std::sync::{Arc, Mutex, PoisonError};
    use transfer::oss::{PutBody, PutObjectOptions};

    let poll_interval = Duration::from_millis(25);
    let oss = stack.oss_client()?;
    let src_bucket = stack.config().oss_bucket.clone();
    let dst_bucket = stack.config().dst_bucket.clone();
    let s3 = stack.s3().clone();
    let body = bytes::Bytes::from(crate::env::pattern(plan.small_size, 4));
    let sightings = Arc::new(Mutex::new(Sightings::default()));
    let total = rate * plan.p4_seconds;
    let writer = {
        let sightings = Arc::clone(&sightings);
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
        // Per prefix with objects not yet seen: list from just after the last key below the
        // first unseen one, so that a listing returns the objects in flight, not the whole
        // second's (at 200/s the full listings cost moto more CPU than the pipeline).
        let listings: BTreeMap<String, Option<String>> = {
            let s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
            let mut listings = BTreeMap::new();
            for key in s.put.keys().filter(|k| !s.seen.contains_key(*k)) {
                let Some((prefix, _)) = key.rsplit_once('/') else {
                    continue;
                };
                let prefix = format!("{prefix}/");
                if listings.contains_key(&prefix) {
                    continue;
                }
                let after = s
                    .put
                    .range::<String, _>(..key.clone())
                    .next_back()
                    .map(|(k, _)| k.clone())
                    .filter(|k| k.starts_with(&prefix));
                listings.insert(prefix, after);
            }
            listings
        };
        let done = {
            let s = sightings.lock().unwrap_or_else(PoisonError::into_inner);
            writer.is_none() && s.seen.len() + s.failed_puts >= total
        };
        if done || give_up.is_some_and(|g| Instant::now() > g) {
            break;
        }
        for (prefix, after) in listings {
            let page = s3
                .list_objects_v2()
                .bucket(&dst_bucket)
                .prefix(&prefix)
                .set_start_after(after)
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
