//! `devstack`: runs oss2s3's local stack (`up`), the end-to-end demo (`demo`) or the chaos
//! run (`chaos`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use devstack::chaos::{self, ChaosOptions};
use devstack::demo::{self, DemoDirection, DemoOptions};
use devstack::{Binaries, Profile, Stack, StackConfig};
use tokio::sync::watch;

/// oss2s3's whole pipeline on this machine: OSS emulator, forwarder, moto, and the replicator
/// under a Lambda Runtime API and SQS event source mapping emulation.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    stack: StackArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the stack and keep it running until Ctrl-C; prints endpoints and examples.
    Up,
    /// Start the stack, replicate a realistic data set, verify it, print a summary, stop.
    Demo(DemoArgs),
    /// Start the stack with faults on both sides, replicate under overwrites, deletes, races
    /// and restarts, then audit the replica against the source; fails on any difference.
    Chaos(ChaosArgs),
}

#[derive(Debug, Args)]
struct ChaosArgs {
    /// Objects in the data set.
    #[arg(long, default_value_t = 2000)]
    objects: usize,
    /// The largest object, in MiB.
    #[arg(long, default_value_t = 64)]
    max_size_mib: u64,
    /// The share of requests hit by a fault, on each side (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    fault_rate: f64,
    /// Slow large copies raced by fast small overwrites.
    #[arg(long, default_value_t = 6)]
    races: usize,
    /// Replicator restarts (SIGTERM) during the run.
    #[arg(long, default_value_t = 3)]
    restarts: usize,
    /// How long to wait for the queue to drain, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Seed of the data set and of every choice.
    #[arg(long, default_value_t = 20_261_201)]
    seed: u64,
}

#[derive(Debug, Args)]
struct StackArgs {
    /// Build profile of the binaries the stack runs.
    #[arg(long, global = true, value_enum, default_value = "debug")]
    profile: Profile,
    /// The project venv's python (`moto_server` is next to it); default: `scripts/pyenv`'s.
    #[arg(long, global = true, env = "OSS2S3_PYTHON")]
    python: Option<PathBuf>,
    /// Directory for the processes' logs; default `target/devstack/run-<time>`.
    #[arg(long, global = true)]
    run_dir: Option<PathBuf>,
    /// Replicator execution environments (and ESM pollers) running at once.
    #[arg(long, global = true, default_value_t = 2)]
    instances: usize,
    /// The replicator's function timeout, in seconds.
    #[arg(long, global = true, default_value_t = 60)]
    function_timeout: u64,
    /// Also replicate S3 → OSS (the S3 bucket's event notifications feed a replicator with
    /// DIRECTION=s3-to-oss), so that the stack runs in two-way mode.
    #[arg(long, global = true)]
    two_way: bool,
}

/// Which way the demo replicates.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum DirectionArg {
    /// Objects written to the OSS emulator, copied into S3 (moto).
    OssToS3,
    /// Objects written to S3 (moto), copied into the OSS emulator by the replicator with
    /// DIRECTION=s3-to-oss (the stack then runs both directions; the demo turns the OSS
    /// trigger off, so nothing comes back).
    S3ToOss,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Which way to replicate.
    #[arg(long, value_enum, default_value = "oss-to-s3")]
    direction: DirectionArg,
    /// How many objects to upload.
    #[arg(long, default_value_t = 200)]
    objects: usize,
    /// The largest object, in MiB.
    #[arg(long, default_value_t = 64)]
    max_size_mib: u64,
    /// How long to wait for replication, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Objects already in the bucket before replication starts: backfilled with
    /// `oss2s3 sync`, and both buckets audited with `oss2s3 verify` at the end (0: neither).
    #[arg(long, default_value_t = 40)]
    existing: usize,
}

#[tokio::main(worker_threads = 4)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,devstack=info")),
        )
        .init();
    // Release builds abort on panic, so no destructor would run: stop the children first.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        testkit::process::kill_all();
        default_hook(info);
    }));
    let cli = Cli::parse();
    // The children run in process groups of their own, so a terminal's Ctrl-C reaches only this
    // process: it must stop them. A second Ctrl-C stops at once.
    let (interrupt, interrupted_rx) = watch::channel(false);
    tokio::spawn(async move {
        interrupted().await;
        eprintln!("devstack: stopping (Ctrl-C again to stop at once)");
        let _ = interrupt.send(true);
        interrupted().await;
        testkit::process::kill_all();
        std::process::exit(130);
    });
    let outcome = Box::pin(run(cli, interrupted_rx)).await;
    testkit::process::kill_all();
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("devstack: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves once the user has interrupted.
async fn until_interrupted(mut interrupted: watch::Receiver<bool>) {
    let _ = interrupted.wait_for(|&yes| yes).await;
}

async fn run(cli: Cli, interrupted: watch::Receiver<bool>) -> anyhow::Result<ExitCode> {
    let stopped = || until_interrupted(interrupted.clone());
    let started = async {
        let mut config = stack_config(&cli.stack).await?;
        match &cli.command {
            Command::Chaos(_) => chaos::configure(&mut config),
            Command::Demo(args) if matches!(args.direction, DirectionArg::S3ToOss) => {
                config.s3_to_oss = true;
            }
            _ => {}
        }
        eprintln!(
            "devstack: starting the stack (logs in {})",
            config.run_dir.display()
        );
        Stack::start(config).await
    };
    // Dropping a half-started stack kills whatever it had started.
    let stack = tokio::select! {
        stack = started => stack?,
        () = stopped() => return Ok(ExitCode::from(130)),
    };
    match cli.command {
        Command::Up => {
            let described = stack.run_dir().join("stack.json");
            std::fs::write(&described, describe(&stack).to_string())
                .with_context(|| format!("write {}", described.display()))?;
            print_usage(&stack);
            stopped().await;
            stack.shutdown().await;
            eprintln!("devstack: stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Chaos(args) => {
            let options = ChaosOptions {
                objects: args.objects,
                max_size: args.max_size_mib * transfer::size::MIB,
                fault_rate: args.fault_rate.clamp(0.0, 1.0),
                races: args.races,
                restarts: args.restarts,
                timeout: Duration::from_secs(args.timeout),
                seed: args.seed,
                ..ChaosOptions::default()
            };
            let run = chaos::run(&stack, &options);
            let report = until_stopped(run, stopped(), "chaos run").await;
            finish(stack, report, devstack::chaos::ChaosReport::passed).await
        }
        Command::Demo(args) => {
            let options = DemoOptions {
                direction: match args.direction {
                    DirectionArg::OssToS3 => DemoDirection::OssToS3,
                    DirectionArg::S3ToOss => DemoDirection::S3ToOss,
                },
                objects: args.objects,
                max_size: args.max_size_mib * transfer::size::MIB,
                timeout: Duration::from_secs(args.timeout),
                existing: args.existing,
                ..DemoOptions::default()
            };
            let run = demo::run(&stack, &options);
            let report = until_stopped(run, stopped(), "demo").await;
            finish(stack, report, devstack::demo::DemoReport::passed).await
        }
    }
}

/// Runs `work` unless the user interrupts first; `None` then.
async fn until_stopped<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    stopped: impl std::future::Future<Output = ()>,
    what: &str,
) -> Option<anyhow::Result<T>> {
    tokio::select! {
        result = work => Some(result),
        () = stopped => {
            eprintln!("devstack: {what} interrupted; stopping every process it started");
            None
        }
    }
}

/// Stops the stack, prints the report and turns it into the exit status (130 if interrupted).
async fn finish<R: std::fmt::Display>(
    stack: Stack,
    report: Option<anyhow::Result<R>>,
    passed: fn(&R) -> bool,
) -> anyhow::Result<ExitCode> {
    stack.shutdown().await;
    let Some(report) = report else {
        return Ok(ExitCode::from(130));
    };
    let report = report?;
    println!("{report}");
    Ok(if passed(&report) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn stack_config(args: &StackArgs) -> anyhow::Result<StackConfig> {
    let profile = args.profile;
    let binaries = tokio::task::spawn_blocking(move || Binaries::build(profile))
        .await
        .context("build task")??;
    let python = match &args.python {
        Some(python) => python.clone(),
        None => tokio::task::spawn_blocking(|| testkit::python().to_owned())
            .await
            .context("scripts/pyenv")?,
    };
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        devstack::binaries::workspace_root()
            .join("target/devstack")
            .join(format!(
                "run-{}",
                chrono::Local::now().format("%Y%m%d-%H%M%S")
            ))
    });
    let mut config = StackConfig::new(binaries, python, run_dir);
    config.function_instances = args.instances.max(1);
    config.function_timeout = Duration::from_secs(args.function_timeout.max(1));
    config.visibility_timeout = config.function_timeout * 6;
    config.s3_to_oss = args.two_way;
    Ok(config)
}

/// The running stack's endpoints, buckets, keys and queues, for scripts and tests
/// (`RUN_DIR/stack.json`, written once the stack is up).
fn describe(stack: &Stack) -> serde_json::Value {
    let c = stack.config();
    serde_json::json!({
        "oss_endpoint": stack.oss_endpoint(),
        "oss_region": c.oss_region,
        "oss_bucket": c.oss_bucket,
        "oss_access_key_id": c.oss_access_key_id,
        "oss_access_key_secret": c.oss_access_key_secret,
        "aws_endpoint": stack.aws_endpoint(),
        "aws_region": c.aws_region,
        "aws_access_key_id": c.aws_access_key_id,
        "aws_secret_access_key": c.aws_secret_access_key,
        "s3_bucket": c.dst_bucket,
        "queue_url": stack.queue_url(),
        "dlq_url": stack.dlq_url(),
        "s3_to_oss_queue_url": stack.reverse_queue_url(),
        "s3_to_oss_dlq_url": stack.reverse_dlq_url(),
    })
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn print_usage(stack: &Stack) {
    let c = stack.config();
    let oss = stack.oss_endpoint();
    let aws = stack.aws_endpoint();
    let python = c.python.display();
    println!(
        r#"
oss2s3 devstack is running. Ctrl-C stops everything. Logs: {run_dir}
(Endpoints and keys as JSON: {run_dir}/stack.json)

  OSS (emulator)     {oss}   path-style, region {oss_region}, bucket {oss_bucket}
    access key       {oss_ak} / {oss_sk}
    admin API        {oss}/_emulator/stats   (see tools/oss-emulator/README.md)
  Forwarder (FC)     {forwarder}
  AWS (moto)         {aws}   region {aws_region}, key {aws_ak} / {aws_sk}
    S3 destination   s3://{dst}
    SQS queue        {queue}
    DLQ              {dlq}   (redrive after {max_receive} receives)
    OSS secret       {secret}   (Secrets Manager)
  Replicator         {instances} execution environment(s), timeout {timeout:?}, batches of {batch}{two_way}

Upload an object with the official OSS Python SDK (in the project venv):

  {python} - <<'PY'
import alibabacloud_oss_v2 as oss
cfg = oss.config.load_default()
cfg.credentials_provider = oss.credentials.StaticCredentialsProvider("{oss_ak}", "{oss_sk}")
cfg.region, cfg.endpoint, cfg.use_path_style = "{oss_region}", "{oss}", True
client = oss.Client(cfg)
client.put_object(oss.PutObjectRequest(bucket="{oss_bucket}", key="hello/world.txt", body=b"hello from OSS"))
PY

Then look at S3 and the queues with the AWS CLI (or boto3 from the same venv):

  export AWS_ACCESS_KEY_ID={aws_ak} AWS_SECRET_ACCESS_KEY={aws_sk} AWS_DEFAULT_REGION={aws_region}
  aws --endpoint-url {aws} s3 ls --recursive s3://{dst}
  aws --endpoint-url {aws} s3api head-object --bucket {dst} --key hello/world.txt
  aws --endpoint-url {aws} sqs get-queue-attributes --queue-url {dlq} --attribute-names All
  curl -s {oss}/_emulator/stats
"#,
        run_dir = stack.run_dir().display(),
        oss_region = c.oss_region,
        oss_bucket = c.oss_bucket,
        oss_ak = c.oss_access_key_id,
        oss_sk = c.oss_access_key_secret,
        forwarder = stack.forwarder_url(),
        aws_region = c.aws_region,
        aws_ak = c.aws_access_key_id,
        aws_sk = c.aws_secret_access_key,
        dst = c.dst_bucket,
        queue = stack.queue_url(),
        dlq = stack.dlq_url(),
        max_receive = c.max_receive_count,
        secret = c.secret_name,
        instances = c.function_instances,
        timeout = c.function_timeout,
        batch = c.batch_size,
        two_way = stack
            .reverse_queue_url()
            .map_or_else(String::new, |queue| format!(
                "\n  S3 → OSS (two-way) s3://{} → oss://{}: S3 event notifications to {queue}\n    \
             (objects written to S3 appear in OSS; copies are never copied back)",
                c.dst_bucket, c.oss_bucket
            )),
    );
}
