//! P5: the functions' start-up time against `/bin/true`.

use super::{
    Command, Function, INVOKE_TIMEOUT, Instant, OSS_KEYS, Plan, Report, RunArgs, Stack, Verdict,
    ensure, json, median, quantile, replicator_env,
};

pub(super) async fn startup_time(
    args: &RunArgs,
    plan: &Plan,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let runs = plan.init_runs;
    let mut truth = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let status = Command::new("/bin/true").status()?;
        truth.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(status.success(), "/bin/true failed");
    }
    let mut forwarder = Vec::new();
    let logs = stack.logs();
    for _ in 0..runs {
        let command = super::forwarder::forwarder_command(
            args,
            stack,
            ("http://127.0.0.1:9/000000000000/bench-tasks", None),
            testkit::free_port(),
            None,
        );
        let (process, ready) =
            super::forwarder::spawn_forwarder(command, logs.join("forwarder-init.log")).await?;
        forwarder.push(ready.as_secs_f64() * 1000.0);
        drop(process);
    }
    let mut replicator = Vec::new();
    let env = replicator_env(stack, "dst-init", None);
    let home = stack.work.join("home");
    std::fs::create_dir_all(&home)?;
    for _ in 0..runs {
        let function = Function::start(
            &args.bin_dir.join("replicator"),
            &env,
            OSS_KEYS,
            &stack.logs().join("replicator-init.log"),
            &home,
            INVOKE_TIMEOUT,
        )
        .await?;
        replicator.push(function.startup()?.as_secs_f64() * 1000.0);
    }
    let base = median(&truth);
    let fwd = median(&forwarder);
    let rep = median(&replicator);
    let target = if args.quick {
        Verdict::Info
    } else {
        Verdict::Met
    };
    let verdict = |over: f64| {
        if target == Verdict::Info {
            Verdict::Info
        } else {
            Verdict::of(over < 30.0)
        }
    };
    report.row(
        "P5",
        &format!("forwarder exec → listening (median of {runs})"),
        format!(
            "{fwd:.1} ms (+{:.1} over /bin/true {base:.1} ms; p90 {:.1})",
            fwd - base,
            quantile(&forwarder, 0.9)
        ),
        "< 30 ms over /bin/true",
        verdict(fwd - base),
    );
    report.row(
        "P5",
        &format!("replicator exec → first Runtime API poll (median of {runs})"),
        format!(
            "{rep:.1} ms (+{:.1}; p90 {:.1})",
            rep - base,
            quantile(&replicator, 0.9)
        ),
        "< 30 ms over /bin/true",
        verdict(rep - base),
    );
    report.figures(
        "P5",
        json!({
            "runs": runs,
            "bin_true_ms": truth,
            "forwarder_ms": forwarder,
            "replicator_ms": replicator,
            "bin_true_median_ms": base,
            "forwarder_median_ms": fwd,
            "replicator_median_ms": rep,
        }),
    );
    Ok(())
}
