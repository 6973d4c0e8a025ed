//! The chaos workload: faults on both sides, uploads with overwrites, deletes, re-creations and
//! slow-vs-fast races, replicator restarts, and waiting for the queue to drain.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use testkit::s3_proxy::{S3Fault, S3FaultRule};
use transfer::oss::{
    AddressingStyle, Credentials, Endpoint, OssClient, OssConfig, PutBody, PutObjectOptions,
    RetryPolicy,
};
use transfer::size::{KIB, MIB};

use super::ChaosOptions;
use crate::demo::{Appender, DemoObject, DemoOptions, Rng, UploadKind, dataset, upload};
use crate::stack::Stack;

/// The emulator's pace for the GETs of race objects: slow, like a cross-border link.
const SLOW_BYTES_PER_SECOND: u64 = 4 * MIB;
/// Keys of race objects start with this; only their GETs are slow.
const SLOW_PREFIX: &str = "slow/";
/// New objects wait while the task queue holds more than this many messages. moto's SQS scans
/// a whole queue on every receive, so an unbounded backlog would make moto, not the
/// replicator, the thing under test.
const MAX_BACKLOG: u64 = 150;

/// What the workload did.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Objects uploaded first.
    pub uploaded: usize,
    /// Bytes of those.
    pub bytes: u64,
    /// Objects overwritten with new bytes and metadata.
    pub overwritten: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// Deleted objects written again.
    pub recreated: usize,
    /// Slow large copies raced by a fast small overwrite.
    pub races: usize,
    /// Replicator environments restarted.
    pub restarts: usize,
}

/// Faults on both sides, each side hit at about `rate`.
pub(super) async fn inject_faults(stack: &Stack, rate: f64) -> anyhow::Result<()> {
    let oss_rule = |op: &str, share: f64, fault: serde_json::Value| serde_json::json!({"op": op, "rate": rate * share, "fault": fault});
    let mut rules = vec![serde_json::json!({
        "op": "GetObject",
        "key_prefix": SLOW_PREFIX,
        "fault": {"kind": "slow_body", "bytes_per_second": SLOW_BYTES_PER_SECOND},
    })];
    for op in ["HeadObject", "GetObject"] {
        rules.push(oss_rule(
            op,
            0.3,
            serde_json::json!({"kind": "error", "status": 500, "code": "InternalError"}),
        ));
        rules.push(oss_rule(
            op,
            0.3,
            serde_json::json!({"kind": "error", "status": 503, "code": "ServerBusy", "qos_delay_ms": 200}),
        ));
        rules.push(oss_rule(op, 0.2, serde_json::json!({"kind": "reset"})));
    }
    rules.push(oss_rule(
        "GetObject",
        0.2,
        serde_json::json!({"kind": "truncate", "after_bytes": 1000}),
    ));
    stack
        .set_emulator_faults(&serde_json::Value::Array(rules))
        .await?;
    let proxy = stack
        .s3_proxy()
        .context("the chaos run needs the stack's S3 fault proxy (chaos::configure)")?;
    let status = |status, code: &str| S3Fault::Status {
        status,
        code: code.to_owned(),
    };
    for (share, fault) in [
        (0.3, status(500, "InternalError")),
        (0.3, status(503, "SlowDown")),
        (0.1, S3Fault::Reset),
        (0.1, S3Fault::LoseAnswer),
        (0.1, S3Fault::Delay(Duration::from_millis(300))),
    ] {
        proxy.inject(S3FaultRule::new(None, fault).rate(rate * share));
    }
    for op in ["GetObject", "ListParts"] {
        proxy.inject(
            S3FaultRule::new(Some(op), S3Fault::Truncate { after_bytes: 100 }).rate(rate * 0.1),
        );
    }
    Ok(())
}

/// Turns every fault off (before the audit reads both sides).
pub(super) async fn clear_faults(stack: &Stack) -> anyhow::Result<()> {
    stack.set_emulator_faults(&serde_json::json!([])).await?;
    if let Some(proxy) = stack.s3_proxy() {
        proxy.clear_faults();
    }
    Ok(())
}

/// What happens to one object after its first upload.
#[derive(Debug, Clone)]
enum Fate {
    /// Nothing more.
    Keep,
    /// Overwritten with this new version after the pause.
    Overwrite(DemoObject, Duration),
    /// Deleted after the pause; then, if given, written again after the second pause.
    Delete(Duration, Option<(DemoObject, Duration)>),
    /// A race: the overwrite comes while the slow copy of the first version is running.
    Race(DemoObject),
}

/// The data set with a fate for each object, plus the race objects and the longest keys.
fn plan(options: &ChaosOptions) -> Vec<(DemoObject, Fate)> {
    let mut objects = dataset(&DemoOptions {
        objects: options.objects,
        max_size: options.max_size,
        seed: options.seed,
        ..DemoOptions::default()
    });
    let long = |key: String, seed| DemoObject {
        key,
        size: 1000,
        seed,
        kind: UploadKind::Put,
        content: transfer::store::ContentHeaders::default(),
        user_metadata: std::collections::BTreeMap::new(),
    };
    // The longest keys S3 accepts: 1,023 bytes of Unicode and of ASCII.
    objects.push(long(format!("long/x{}", "文".repeat(339)), 1));
    objects.push(long(format!("long/{}", "k".repeat(1018)), 2));
    let mut rng = Rng(options.seed);
    let newer = |object: &DemoObject, rng: &mut Rng| {
        let mut next = object.clone();
        next.seed = rng.next();
        next.size = rng.below(64 * KIB).max(1);
        next.kind = UploadKind::Put;
        next.user_metadata.insert("version".into(), "2".into());
        next
    };
    let mut planned: Vec<(DemoObject, Fate)> = objects
        .into_iter()
        .map(|object| {
            let pause = Duration::from_millis(rng.below(3000));
            let fate = match (rng.below(100), &object.kind) {
                // Appendable objects cannot be overwritten by PutObject; they stay.
                (_, UploadKind::Append { .. }) => Fate::Keep,
                (0..10, _) => Fate::Overwrite(newer(&object, &mut rng), pause),
                (10..15, _) => {
                    let again = (rng.below(2) == 0).then(|| {
                        (
                            newer(&object, &mut rng),
                            Duration::from_millis(rng.below(3000)),
                        )
                    });
                    Fate::Delete(pause, again)
                }
                _ => Fate::Keep,
            };
            (object, fate)
        })
        .collect();
    let race_size = (options.max_size / 2).clamp(9 * MIB, 24 * MIB);
    for i in 0..options.races {
        let first = DemoObject {
            key: format!("{SLOW_PREFIX}race {i:02}.bin"),
            size: race_size,
            seed: rng.next(),
            kind: UploadKind::Put,
            content: transfer::store::ContentHeaders::default(),
            user_metadata: std::collections::BTreeMap::new(),
        };
        let second = newer(&first, &mut rng);
        planned.push((first, Fate::Race(second)));
    }
    planned
}

/// Writes `object` as a plain PutObject (new versions, re-creations).
async fn put(oss: &OssClient, bucket: &str, object: &DemoObject) -> anyhow::Result<()> {
    let data = object.bytes();
    let options = PutObjectOptions {
        content: object.content.clone(),
        user_metadata: object.user_metadata.clone(),
        storage_class: None,
        forbid_overwrite: false,
    };
    oss.put_object(bucket, &object.key, PutBody::from(data), &options)
        .await
        .with_context(|| format!("PutObject {}", object.key))?;
    Ok(())
}

/// Uploads every object, plays its fate, and restarts replicator environments meanwhile.
pub(super) async fn run(stack: &Stack, options: &ChaosOptions) -> anyhow::Result<Counts> {
    let config = stack.config();
    let bucket = config.oss_bucket.clone();
    // The emulator's faults hit this client too: it retries patiently.
    let oss = OssClient::new(
        OssConfig::new(&config.oss_region)
            .with_endpoint(Endpoint::Custom(stack.oss_endpoint().to_owned()))
            .with_addressing(AddressingStyle::PathStyle)
            .with_retry(RetryPolicy::new(
                12,
                Duration::from_millis(50),
                Duration::from_secs(1),
            )),
        Credentials::new(&config.oss_access_key_id, &config.oss_access_key_secret),
    )?;
    let appender = Appender::new(
        stack.oss_endpoint(),
        &config.oss_region,
        Credentials::new(&config.oss_access_key_id, &config.oss_access_key_secret),
    );
    let planned = plan(options);
    let total = planned.len();
    let done = AtomicUsize::new(0);
    let mut counts = Counts {
        uploaded: total,
        bytes: planned.iter().map(|(o, _)| o.size).sum(),
        ..Counts::default()
    };
    for (_, fate) in &planned {
        match fate {
            Fate::Keep => {}
            Fate::Overwrite(..) => counts.overwritten += 1,
            Fate::Delete(_, again) => {
                counts.deleted += 1;
                counts.recreated += usize::from(again.is_some());
            }
            Fate::Race(_) => counts.races += 1,
        }
    }
    eprintln!(
        "chaos: {total} objects ({:.1} MiB), {} overwrites, {} deletes, {} re-creations, {} races",
        counts.bytes as f64 / MIB as f64,
        counts.overwritten,
        counts.deleted,
        counts.recreated,
        counts.races
    );
    let scripts = futures::stream::iter(planned)
        .map(|(object, fate)| {
            let (oss, appender, bucket, done) = (&oss, &appender, &bucket, &done);
            async move {
                while stack.queue_total(stack.queue_url()).await? > MAX_BACKLOG {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                upload(oss, appender, bucket, &object).await?;
                match fate {
                    Fate::Keep => {}
                    Fate::Overwrite(next, pause) => {
                        tokio::time::sleep(pause).await;
                        put(oss, bucket, &next).await?;
                    }
                    Fate::Delete(pause, again) => {
                        tokio::time::sleep(pause).await;
                        oss.delete_object(bucket, &object.key)
                            .await
                            .with_context(|| format!("DeleteObject {}", object.key))?;
                        if let Some((next, pause)) = again {
                            tokio::time::sleep(pause).await;
                            put(oss, bucket, &next).await?;
                        }
                    }
                    Fate::Race(next) => {
                        // The slow copy of the big first version is under way by now.
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        put(oss, bucket, &next).await?;
                    }
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 250 == 0 {
                    eprintln!("chaos: {n}/{total} objects written");
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect::<Vec<_>>();
    let restarts = async {
        let mut restarted = 0;
        for i in 0..options.restarts {
            // Spread the restarts over the busy part of the run.
            tokio::time::sleep(Duration::from_secs(4)).await;
            if stack.restart_function(i % stack.function_count().max(1)) {
                eprintln!(
                    "chaos: restarted replicator environment {}",
                    i % stack.function_count().max(1)
                );
                restarted += 1;
            }
        }
        restarted
    };
    let (results, restarted) = tokio::join!(scripts, restarts);
    for result in results {
        result?;
    }
    counts.restarts = restarted;
    Ok(counts)
}

/// Waits until the task queue has been empty (nothing visible, in flight or delayed) for a few
/// seconds in a row; `false` if that did not happen within `timeout`.
pub(super) async fn drain(stack: &Stack, timeout: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut quiet = 0;
    while Instant::now() < deadline {
        if stack.queue_total(stack.queue_url()).await? == 0 {
            quiet += 1;
            if quiet >= 4 {
                return Ok(true);
            }
        } else {
            quiet = 0;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(false)
}
