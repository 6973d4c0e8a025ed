//! The stable runner: every seed once, then mutations of seeds and of the last input, each run
//! under `catch_unwind`, until a number of runs or a time is reached. A panic stops the run
//! and its input is saved, to become a regression seed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::mutate::mutate;
use crate::targets::Target;

/// How long a run goes on: whichever limit comes first.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// At most this many inputs (seeds included).
    pub runs: Option<u64>,
    /// At most this long.
    pub time: Option<Duration>,
}

/// A run that found nothing.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Inputs run.
    pub runs: u64,
    /// Seeds among them.
    pub seeds: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// A run that found a panic.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The target.
    pub target: &'static str,
    /// The input.
    pub input: Vec<u8>,
    /// The panic's message.
    pub message: String,
    /// Where the input was saved.
    pub saved: Option<PathBuf>,
    /// The run it was found in (1 is the first seed).
    pub run: u64,
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} panicked on run {}: {}; input ({} bytes): {:?}",
            self.target,
            self.run,
            self.message,
            self.input.len(),
            String::from_utf8_lossy(&self.input[..self.input.len().min(512)])
        )?;
        if let Some(path) = &self.saved {
            write!(f, "; saved to {}", path.display())?;
        }
        Ok(())
    }
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A short, stable name for an input.
fn digest(input: &[u8]) -> String {
    // FNV-1a: enough to name files apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Runs `target` on `seeds`, then on mutations, within `budget`, with the RNG seeded from
/// `rng_seed`. A crash's input is written to `crashes/TARGET-DIGEST` when `crashes` is given.
pub fn run(
    target: &mut dyn Target,
    seeds: &[Vec<u8>],
    budget: Budget,
    rng_seed: u64,
    crashes: Option<&Path>,
) -> Result<Outcome, Box<Crash>> {
    let started = Instant::now();
    let dictionary = target.dictionary();
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let mut runs = 0u64;
    let mut last: Vec<u8> = Vec::new();
    let done = |runs: u64| {
        budget.runs.is_some_and(|n| runs >= n)
            || budget.time.is_some_and(|t| started.elapsed() >= t)
    };
    let mut pending = seeds.iter();
    loop {
        let input = if let Some(seed) = pending.next() {
            seed.clone()
        } else {
            if done(runs) {
                break;
            }
            let mut input = if last.is_empty() || rng.random_bool(0.5) {
                seeds[rng.random_range(0..seeds.len())].clone()
            } else {
                last.clone()
            };
            mutate(&mut input, &dictionary, seeds, &mut rng);
            input
        };
        runs += 1;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| target.run(&input))) {
            let saved = crashes.and_then(|dir| {
                std::fs::create_dir_all(dir).ok()?;
                let path = dir.join(format!("{}-{}", target.name(), digest(&input)));
                std::fs::write(&path, &input).ok()?;
                Some(path)
            });
            return Err(Box::new(Crash {
                target: target.name(),
                input,
                message: message(payload.as_ref()),
                saved,
                run: runs,
            }));
        }
        last = input;
    }
    Ok(Outcome {
        runs,
        seeds: seeds.len(),
        elapsed: started.elapsed(),
    })
}
