//! P8: the replicator's peak memory as the object grows from 1 GiB to 1 TiB, against its
//! memory budget. The source is a synthetic emulator object (generated as it is read), the sink
//! an S3 endpoint that verifies every part's CRC-64/NVME and keeps none of the bytes. Each size
//! gets a fresh function and one invocation with a short deadline: it copies parts until the
//! deadline nears and hands the rest on to a continuation, which the AWS stub records.

use std::time::Duration;

use testkit::discard_s3::DiscardS3;

use super::{
    Context, OSS_KEYS, Report, RunArgs, Stack, Value, Verdict, human, json, mib, replicator_env,
    task_body,
};
use crate::lambda::Function;
use transfer::size::{GIB, MIB, TIB};

/// The budget the replicator runs with here: small, so that large parts press against it.
const BUDGET: u64 = 256 * MIB;
/// What the process needs besides object data: the runtime, clients, buffers.
const OVERHEAD: u64 = 96 * MIB;

/// The part size the engine picks for `size` with its defaults on S3.
fn part_size(size: u64) -> u64 {
    (16 * MIB).max(size.div_ceil(10_000))
}

pub(super) async fn memory_over_object_size(
    args: &RunArgs,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let sizes: Vec<u64> = if args.quick {
        vec![GIB, 200 * GIB]
    } else {
        vec![GIB, 16 * GIB, 256 * GIB, TIB]
    };
    let timeout = if args.quick {
        Duration::from_secs(25)
    } else {
        Duration::from_mins(1)
    };
    let mut runs: Vec<Value> = Vec::new();
    let mut peaks = Vec::new();
    let mut within = true;
    for &size in &sizes {
        let key = format!("synthetic/{}.bin", human(size).replace(' ', ""));
        stack.put_synthetic(&key, size).await?;
        let sink = DiscardS3::start().await?;
        let mut env = replicator_env(stack, "discard", Some(sink.url()));
        env.extra = vec![
            ("MEMORY_BUDGET_MIB".into(), (BUDGET / MIB).to_string()),
            ("DEADLINE_MARGIN_SECONDS".into(), "1".into()),
        ];
        let home = stack.work.join("home");
        std::fs::create_dir_all(&home)?;
        let function = Function::start(
            &args.bin_dir.join("replicator"),
            &env,
            OSS_KEYS,
            &stack
                .logs()
                .join(format!("replicator-p8-{}.log", size / GIB)),
            &home,
            timeout,
        )
        .await?;
        let continued = function
            .invoke_allowing_continuations(&[task_body(&key, size)])
            .await
            .with_context(|| format!("copying the synthetic {}", human(size)))?;
        let (_, peak) = function.usage()?;
        let moved = sink.bytes_received();
        let part = part_size(size);
        let in_flight = (BUDGET / part).clamp(1, 8);
        let bound = BUDGET.max(part) + OVERHEAD;
        within &= peak <= bound;
        peaks.push(peak);
        eprintln!(
            "bench: P8 {}: {:.0} MiB peak, {:.1} GiB moved, parts of {:.0} MiB × {in_flight}",
            human(size),
            mib(peak),
            moved as f64 / GIB as f64,
            mib(part)
        );
        runs.push(json!({
            "object_bytes": size,
            "part_bytes": part,
            "parts_in_flight": in_flight,
            "peak_rss_bytes": peak,
            "bytes_moved": moved,
            "continued": continued > 0,
            "bound_bytes": bound,
        }));
    }
    let (min, max) = (
        peaks.iter().copied().min().unwrap_or(0),
        peaks.iter().copied().max().unwrap_or(0),
    );
    report.row(
        "P8",
        &format!(
            "peak RSS, {} to {} objects (budget {:.0} MiB)",
            human(sizes[0]),
            human(*sizes.last().unwrap_or(&0)),
            mib(BUDGET)
        ),
        format!(
            "{:.0} to {:.0} MiB ({:.2}× the smallest)",
            mib(min),
            mib(max),
            max as f64 / min.max(1) as f64
        ),
        &format!("≤ budget (or one part) + {:.0} MiB", mib(OVERHEAD)),
        Verdict::of(within),
    );
    report.figures("P8", json!({ "budget_bytes": BUDGET, "runs": runs }));
    Ok(())
}
