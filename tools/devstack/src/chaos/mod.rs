//! The chaos run: the whole local stack under load and faults, then an audit that the replica
//! is exactly the source.
//!
//! It uploads a data set of every shape (0 B to the maximum, odd keys, 1,023-byte keys,
//! multipart and appended objects) while faults hit about `fault_rate` of the requests on both
//! sides (the emulator: 500s, throttling with `x-oss-qos-delay-time`, resets, truncated bodies;
//! the proxy in front of S3: 500 `InternalError`, 503 `SlowDown`, resets, answers lost after the
//! write took effect, truncated bodies, latency). Meanwhile it overwrites, deletes and
//! re-creates keys, races slow large copies (their GETs paced by the emulator) against fast
//! small overwrites, and restarts replicator environments mid-copy. When the queue is empty it
//! turns the faults off and audits (see [`check`]).

mod check;
mod workload;

use std::fmt;
use std::time::{Duration, Instant};

use crate::stack::{Stack, StackConfig};

pub use check::Audit;

/// What the chaos run does.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// Objects in the data set (the full run uses at least 2,000).
    pub objects: usize,
    /// The largest object, in bytes.
    pub max_size: u64,
    /// The share of requests hit by a fault, on each side.
    pub fault_rate: f64,
    /// Slow large copies raced by fast small overwrites.
    pub races: usize,
    /// Replicator restarts (SIGTERM) during the run.
    pub restarts: usize,
    /// How long to wait for the queue to drain after the workload.
    pub timeout: Duration,
    /// Uploads and mutations in flight at once.
    pub concurrency: usize,
    /// Seed of the data set and of every choice.
    pub seed: u64,
}

impl Default for ChaosOptions {
    /// The full run: 2,000 objects up to 64 MiB, 10% faults, 6 races, 3 restarts.
    fn default() -> Self {
        Self {
            objects: 2000,
            max_size: 64 * transfer::size::MIB,
            fault_rate: 0.1,
            races: 6,
            restarts: 3,
            timeout: Duration::from_mins(30),
            concurrency: 8,
            seed: 20_261_201,
        }
    }
}

/// Configures `config` for a chaos run: deletes replicated at once, a fault proxy in front of
/// S3, small parts (so that many objects are multipart), and a visibility timeout of two
/// function timeouts, so that redeliveries come soon.
pub fn configure(config: &mut StackConfig) {
    config.s3_proxy = true;
    config.sqs = crate::stack::SqsService::SeparateMoto;
    config.max_receive_count = 8;
    config.visibility_timeout = config.function_timeout * 2;
    config.forwarder_env = vec![("FORWARD_DELETES".into(), "true".into())];
    for (name, value) in [
        ("REPLICATE_DELETES", "true"),
        ("DELETE_DELAY_SECONDS", "0"),
        ("PART_SIZE_MIB", "5"),
        ("MULTIPART_THRESHOLD_MIB", "8"),
    ] {
        config.function_env.push((name.into(), value.into()));
    }
}

/// What happened and what the audit found.
#[derive(Debug)]
pub struct ChaosReport {
    /// The workload's counts.
    pub workload: workload::Counts,
    /// Requests the emulator answered with an injected fault.
    pub oss_faults: u64,
    /// Requests that went through the S3 fault proxy, by operation.
    pub s3_requests: u64,
    /// Whether the queue drained before the timeout.
    pub drained: bool,
    /// The audit.
    pub audit: Audit,
    /// The whole run.
    pub elapsed: Duration,
}

impl ChaosReport {
    /// Whether the replica is exactly the source: nothing wrong, lost, orphaned or left behind.
    pub fn passed(&self) -> bool {
        self.drained && self.audit.clean()
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.workload;
        writeln!(f, "chaos run: {:.0} s", self.elapsed.as_secs_f64())?;
        writeln!(
            f,
            "  workload: {} objects ({:.1} MiB) uploaded, {} overwritten, {} deleted, {} re-created, {} slow-vs-fast races, {} replicator restarts",
            w.uploaded,
            w.bytes as f64 / transfer::size::MIB as f64,
            w.overwritten,
            w.deleted,
            w.recreated,
            w.races,
            w.restarts
        )?;
        writeln!(
            f,
            "  faults: {} injected by the OSS emulator; {} S3 requests through the fault proxy",
            self.oss_faults, self.s3_requests
        )?;
        if !self.drained {
            writeln!(f, "  FAILED: the queue did not drain in time")?;
        }
        write!(f, "{}", self.audit)?;
        writeln!(
            f,
            "{}",
            if self.passed() {
                "PASSED: the replica is exactly the source"
            } else {
                "FAILED"
            }
        )
    }
}

/// Audits the replica in `stack` against its source (every fault must be off).
pub async fn audit(stack: &Stack) -> anyhow::Result<Audit> {
    check::audit(stack).await
}

/// Runs the chaos workload against `stack` (configured with [`configure`]) and audits it.
pub async fn run(stack: &Stack, options: &ChaosOptions) -> anyhow::Result<ChaosReport> {
    let started = Instant::now();
    workload::inject_faults(stack, options.fault_rate).await?;
    let counts = workload::run(stack, options).await?;
    eprintln!(
        "chaos: workload done in {:.0} s; waiting for the queue to drain",
        started.elapsed().as_secs_f64()
    );
    let drained = workload::drain(stack, options.timeout).await?;
    let oss_faults = stack.emulator_stats().await?["faults_injected"]
        .as_u64()
        .unwrap_or(0);
    let s3_requests = stack
        .s3_proxy()
        .map_or(0, |p| p.take().values().sum::<u64>());
    workload::clear_faults(stack).await?;
    eprintln!("chaos: auditing the replica");
    let audit = check::audit(stack).await?;
    Ok(ChaosReport {
        workload: counts,
        oss_faults,
        s3_requests,
        drained,
        audit,
        elapsed: started.elapsed(),
    })
}
