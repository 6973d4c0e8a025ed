//! P7: requests per object, counted by the emulator and the S3 proxy.

use super::{
    BTreeMap, Context, CopySettings, Function, P7_COST_LARGE, Plan, Report, RunArgs, S3Proxy,
    Stack, Verdict, ensure, event_body, human, json, p7_small_key, replicator_env, start_function,
};

/// Request counts per object, by operation, for one batch (delivered `again`: as the second
/// delivery of every message).
async fn count_requests(
    stack: &Stack,
    proxy: &S3Proxy,
    function: &Function,
    (bodies, again): (&[String], bool),
    objects: usize,
) -> anyhow::Result<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
    stack.reset_oss_requests().await?;
    proxy.take();
    let invoked = if again {
        function.replicate_again(bodies).await
    } else {
        function.replicate(bodies).await
    };
    invoked.context("P7 batch")?;
    let per = |n: f64| n / objects as f64;
    let oss = stack
        .oss_requests()
        .await?
        .into_iter()
        .filter_map(|(op, n)| n.as_f64().filter(|n| *n > 0.0).map(|n| (op, per(n))))
        .collect();
    let s3 = proxy
        .take()
        .into_iter()
        .map(|(op, n)| (op, per(n as f64)))
        .collect();
    Ok((oss, s3))
}

fn describe(counts: &BTreeMap<String, f64>) -> String {
    if counts.is_empty() {
        return "0".to_owned();
    }
    let total: f64 = counts.values().sum();
    let parts: Vec<String> = counts
        .iter()
        .map(|(op, n)| format!("{op} {}", trim(*n)))
        .collect();
    format!("{} ({})", trim(total), parts.join(", "))
}

fn trim(n: f64) -> String {
    if (n - n.round()).abs() < 1e-9 {
        format!("{}", n.round())
    } else {
        format!("{n:.2}")
    }
}

pub(super) async fn requests_per_object(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    stack.create_bucket("dst-p7").await?;
    let proxy = S3Proxy::start(&stack.s3_endpoint).await?;
    let env = replicator_env(stack, "dst-p7", Some(proxy.url()));
    let function = start_function(args, stack, &env, "replicator-p7.log").await?;
    // The tasks the forwarder sends: each names its object's ETag and size.
    let keys: Vec<String> = (0..plan.p7_small).map(p7_small_key).collect();
    let etags = stack.oss_etags(&keys).await?;
    let small: Vec<String> = keys
        .iter()
        .zip(&etags)
        .map(|(key, etag)| event_body(key, plan.small_size, etag))
        .collect();
    let (small_oss, small_s3) =
        count_requests(stack, &proxy, &function, (&small, false), plan.p7_small).await?;
    let big = "p7/multipart.bin".to_owned();
    let big_etag = stack.oss_etags(std::slice::from_ref(&big)).await?;
    let multipart = vec![event_body(&big, plan.p7_multipart, &big_etag[0])];
    let (mp_oss, mp_s3) = count_requests(stack, &proxy, &function, (&multipart, false), 1).await?;
    // The cost model's large file, at Data Transfer Hub's size.
    let cost_etag = stack.oss_etags(&[P7_COST_LARGE.to_owned()]).await?;
    let cost_body = vec![event_body(P7_COST_LARGE, plan.p7_cost_large, &cost_etag[0])];
    let (cost_oss, cost_s3) =
        count_requests(stack, &proxy, &function, (&cost_body, false), 1).await?;
    // The same batch delivered again shows what an already-replicated object costs.
    let (again_oss, again_s3) =
        count_requests(stack, &proxy, &function, (&small, true), plan.p7_small).await?;
    drop(function);
    let (copied, _) = stack.count_objects("dst-p7").await?;
    ensure!(
        copied == plan.p7_small + 2,
        "dst-p7 holds {copied} objects, expected {}",
        plan.p7_small + 2
    );
    let parts = plan.p7_multipart.div_ceil(CopySettings::DEFAULT_PART_SIZE);
    let total = |counts: &BTreeMap<String, f64>| counts.values().sum::<f64>();
    let at_floor = |oss: &BTreeMap<String, f64>, s3: &BTreeMap<String, f64>, floor: (f64, f64)| {
        Verdict::of(total(oss) <= floor.0 + 1e-9 && total(s3) <= floor.1 + 1e-9)
    };
    // The floors: a new small object must be read once and written once; an already
    // replicated one needs one look at the destination; a multipart object one GET per part,
    // and create + parts + complete (its two HEADs are reported, not judged).
    report.row(
        "P7",
        &format!(
            "requests per new {} KiB object, first delivery: OSS; S3",
            plan.small_size / 1024
        ),
        format!("{}; {}", describe(&small_oss), describe(&small_s3)),
        "floor 1; 1",
        at_floor(&small_oss, &small_s3, (1.0, 1.0)),
    );
    report.row(
        "P7",
        &format!(
            "requests for one {} object ({parts} parts): OSS; S3",
            human(plan.p7_multipart)
        ),
        format!("{}; {}", describe(&mp_oss), describe(&mp_s3)),
        &format!("floor {parts}; {}", parts + 2),
        Verdict::Info,
    );
    report.row(
        "P7",
        &format!(
            "requests for one {} MB object ({} parts, the cost model's large file): OSS; S3",
            plan.p7_cost_large / 1_000_000,
            plan.p7_cost_large.div_ceil(CopySettings::DEFAULT_PART_SIZE)
        ),
        format!("{}; {}", describe(&cost_oss), describe(&cost_s3)),
        "",
        Verdict::Info,
    );
    report.row(
        "P7",
        "requests per already-replicated object, delivered again: OSS; S3",
        format!("{}; {}", describe(&again_oss), describe(&again_s3)),
        "floor 0; 1",
        at_floor(&again_oss, &again_s3, (0.0, 1.0)),
    );
    report.figures(
        "P7",
        json!({
            "small_objects": plan.p7_small,
            "small_object_bytes": plan.small_size,
            "small_per_object": { "oss": small_oss, "s3": small_s3 },
            "multipart_object_bytes": plan.p7_multipart,
            "multipart_parts": parts,
            "multipart": { "oss": mp_oss, "s3": mp_s3 },
            "cost_large": { "object_bytes": plan.p7_cost_large, "oss": cost_oss, "s3": cost_s3 },
            "already_replicated_per_object": { "oss": again_oss, "s3": again_s3 },
            "s3_counted_by": "a counting proxy in front of the sink",
            "tasks": "as the forwarder sends them (ETag, size, event name); the already-replicated batch as a second delivery",
        }),
    );
    Ok(())
}
