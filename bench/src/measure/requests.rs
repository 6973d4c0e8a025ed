//! P7: requests per object, counted by the emulator and the S3 proxy.

use super::{
    BTreeMap, Context, CopySettings, Function, P7_COST_LARGE, Plan, Report, RunArgs, S3Proxy,
    Stack, Verdict, ensure, event_body, human, json, p7_small_key, replicator_env, start_function,
};

/// What one batch cost: requests per object by operation, and the TCP connections the function
/// opened, for OSS and for S3.
struct Counted {
    oss: BTreeMap<String, f64>,
    s3: BTreeMap<String, f64>,
    connections: (u64, u64),
}

/// Counts one batch (delivered `again`: as the second delivery of every message).
async fn count_requests(
    stack: &Stack,
    proxy: &S3Proxy,
    function: &Function,
    (bodies, again): (&[String], bool),
    objects: usize,
) -> anyhow::Result<Counted> {
    stack.reset_oss_requests().await?;
    proxy.take();
    let s3_connections = proxy.connections();
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
    let connections = (
        stack.oss_connections().await?,
        proxy.connections() - s3_connections,
    );
    Ok(Counted {
        oss,
        s3,
        connections,
    })
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
    let first = count_requests(stack, &proxy, &function, (&small, false), plan.p7_small).await?;
    let big = "p7/multipart.bin".to_owned();
    let big_etag = stack.oss_etags(std::slice::from_ref(&big)).await?;
    let multipart = vec![event_body(&big, plan.p7_multipart, &big_etag[0])];
    let mp = count_requests(stack, &proxy, &function, (&multipart, false), 1).await?;
    // The cost model's large file, at Data Transfer Hub's size.
    let cost_etag = stack.oss_etags(&[P7_COST_LARGE.to_owned()]).await?;
    let cost_body = vec![event_body(P7_COST_LARGE, plan.p7_cost_large, &cost_etag[0])];
    let cost = count_requests(stack, &proxy, &function, (&cost_body, false), 1).await?;
    // The same batch delivered again shows what an already-replicated object costs.
    let again = count_requests(stack, &proxy, &function, (&small, true), plan.p7_small).await?;
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
        format!("{}; {}", describe(&first.oss), describe(&first.s3)),
        "floor 1; 1",
        at_floor(&first.oss, &first.s3, (1.0, 1.0)),
    );
    report.row(
        "P7",
        &format!(
            "requests for one {} object ({parts} parts): OSS; S3",
            human(plan.p7_multipart)
        ),
        format!("{}; {}", describe(&mp.oss), describe(&mp.s3)),
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
        format!("{}; {}", describe(&cost.oss), describe(&cost.s3)),
        "",
        Verdict::Info,
    );
    report.row(
        "P7",
        "requests per already-replicated object, delivered again: OSS; S3",
        format!("{}; {}", describe(&again.oss), describe(&again.s3)),
        "floor 0; 1",
        at_floor(&again.oss, &again.s3, (0.0, 1.0)),
    );
    // Connections: a pool that keeps them between invocations opens one per message in
    // flight in the first invocation and none in the last, the same objects again.
    let batches = [&first, &mp, &cost, &again];
    let opened =
        |side: fn(&Counted) -> u64| -> Vec<u64> { batches.iter().map(|c| side(c)).collect() };
    let (oss_opened, s3_opened) = (opened(|c| c.connections.0), opened(|c| c.connections.1));
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    report.row(
        "P7",
        "TCP connections opened per invocation (new small objects, multipart, the large file, the small ones again): OSS; S3",
        format!("{}; {}", list(&oss_opened), list(&s3_opened)),
        "0; 0 in the last",
        Verdict::of(first.connections.0 > 0 && again.connections == (0, 0)),
    );
    report.figures(
        "P7",
        json!({
            "small_objects": plan.p7_small,
            "small_object_bytes": plan.small_size,
            "small_per_object": { "oss": first.oss, "s3": first.s3 },
            "multipart_object_bytes": plan.p7_multipart,
            "multipart_parts": parts,
            "multipart": { "oss": mp.oss, "s3": mp.s3 },
            "cost_large": { "object_bytes": plan.p7_cost_large, "oss": cost.oss, "s3": cost.s3 },
            "already_replicated_per_object": { "oss": again.oss, "s3": again.s3 },
            "connections_opened": { "oss": oss_opened, "s3": s3_opened },
            "s3_counted_by": "a counting proxy in front of the sink",
            "tasks": "as the forwarder sends them (ETag, size, event name); the already-replicated batch as a second delivery",
        }),
    );
    Ok(())
}
