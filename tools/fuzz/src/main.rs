//! `oss2s3-fuzz`: runs the fuzz targets on stable Rust (see the crate's docs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use oss2s3_fuzz::runner::{Budget, run};
use oss2s3_fuzz::{seeds, targets};

/// Runs oss2s3's fuzz targets: every seed, then mutations, until --runs or --seconds. A panic
/// stops the target, saves its input under --crashes and fails the command.
#[derive(Debug, Parser)]
#[command(name = "oss2s3-fuzz", version)]
struct Args {
    /// Targets to run (default: all; --list names them).
    targets: Vec<String>,
    /// Inputs per target, seeds included.
    #[arg(long, default_value_t = 1_000_000)]
    runs: u64,
    /// At most this many seconds per target (default: no time limit).
    #[arg(long)]
    seconds: Option<u64>,
    /// The mutation RNG's seed (default: from the clock; printed, so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Where crashing inputs are written.
    #[arg(long, default_value = "target/fuzz-crashes")]
    crashes: PathBuf,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
    /// Write each target's seeds to DIR/TARGET/ (a corpus for cargo-fuzz) and exit.
    #[arg(long, value_name = "DIR")]
    write_seeds: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for name in targets::NAMES {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    let names: Vec<String> = if args.targets.is_empty() {
        targets::NAMES.iter().map(|n| (*n).to_owned()).collect()
    } else {
        args.targets.clone()
    };
    if let Some(unknown) = names.iter().find(|n| !targets::NAMES.contains(&n.as_str())) {
        eprintln!("oss2s3-fuzz: no target {unknown:?} (--list names them)");
        return ExitCode::from(2);
    }
    if let Some(dir) = &args.write_seeds {
        for name in &names {
            let dir = dir.join(name);
            let written = std::fs::create_dir_all(&dir).and_then(|()| {
                for (i, seed) in seeds::for_target(name).iter().enumerate() {
                    std::fs::write(dir.join(format!("seed-{i:04}")), seed)?;
                }
                Ok(())
            });
            if let Err(e) = written {
                eprintln!("oss2s3-fuzz: writing seeds to {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let budget = Budget {
        runs: Some(args.runs),
        time: args.seconds.map(Duration::from_secs),
    };
    let mut failed = false;
    for name in &names {
        let Some(mut target) = targets::by_name(name) else {
            continue;
        };
        let seeds = seeds::for_target(name);
        match run(target.as_mut(), &seeds, budget, seed, Some(&args.crashes)) {
            Ok(outcome) => println!(
                "{name}: {} runs ({} seeds) in {:.1} s, {:.0} runs/s, no panic (--seed {seed})",
                outcome.runs,
                outcome.seeds,
                outcome.elapsed.as_secs_f64(),
                outcome.runs as f64 / outcome.elapsed.as_secs_f64().max(1e-9)
            ),
            Err(crash) => {
                println!("{name}: CRASH {crash} (--seed {seed})");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
