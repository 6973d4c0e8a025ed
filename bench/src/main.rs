//! `oss2s3-bench`: oss2s3's benchmark (`./scripts/bench`, `--quick` for the smoke run).
//!
//! Starts every server as its own process on free loopback ports (the OSS emulator, the S3 sink
//! `s3s-fs` or moto, the `replicator` and `oss-forwarder` binaries), measures P1–P9 as
//! `docs/bench.md` describes, prints a Markdown table and writes every figure with its
//! parameters as JSON. Figures are ratios taken in the same run wherever possible, because
//! absolute times on shared machines are noise.

mod cost;
mod env;
mod lambda;
mod measure;
mod raw_pipe;
mod report;
mod sigv4;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// oss2s3's benchmark.
#[derive(Debug, Parser)]
#[command(name = "oss2s3-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the benchmark.
    Run(RunArgs),
    /// The raw pipe (P1's ceiling), run as its own process by `run`.
    RawPipe(raw_pipe::RawPipeArgs),
    /// The cost model (docs/cost.md) from a run's results and the price table.
    Cost(cost::CostArgs),
}

/// Options of `run`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// A small smoke run (seconds, small objects): checks that everything works, times nothing.
    #[arg(long)]
    quick: bool,
    /// Where `oss-emulator`, `replicator` and `bootstrap` (the forwarder) are.
    #[arg(long)]
    bin_dir: PathBuf,
    /// The project venv's python (`alibabacloud_oss_v2`, boto3, moto).
    #[arg(long)]
    python: PathBuf,
    /// The `s3s-fs` binary; without it the S3 sink is moto (only sensible with `--quick`).
    #[arg(long)]
    s3s_fs: Option<PathBuf>,
    /// Only these measurements (comma-separated: p1,p2,p1r,p2r,p3,p4,p5,p6,p7,p8,p9; P1R and P2R
    /// are P1 and P2 from S3 into OSS).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Scratch space for objects and logs.
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Where the JSON goes (default `bench/results/latest.json`, `latest-quick.json` with
    /// `--quick`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs the replicator of P1's engine copies, and the forwarder of P6, under this command (e.g.
    /// `valgrind --tool=callgrind --callgrind-out-file=target/bench-work/callgrind.out`).
    #[arg(long)]
    profile_with: Option<String>,
    /// Keep the seeded source objects for the next run (they are deleted by default).
    #[arg(long)]
    keep_data: bool,
}

impl RunArgs {
    /// Whether measurement `id` (e.g. `p1`) is selected.
    pub(crate) fn wants(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o.eq_ignore_ascii_case(id))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("oss2s3-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => measure::run(args).await,
            Command::RawPipe(args) => raw_pipe::run(args).await,
            Command::Cost(args) => cost::run(&args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oss2s3-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
