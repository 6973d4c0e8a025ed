//! Migration jobs' planning and shards on real sockets: the OSS emulator (in-process) as the
//! source, moto's S3 as the destination and the report's bucket. What the shards send goes to a
//! recording queue, so the tests can see every task, its delay, and every shard handed on.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use oss_emulator::{EmulatorConfig, PutOptions};
use testkit::Services;
use transfer::job::{JobMessage, JobRequest, Shard, job_complete, listed_key, shards_prefix};
use transfer::migrate::{
    JobQueue, JobStep, ShardStores, finished_shards, plan_job, read_summaries, run_shard_hop,
};
use transfer::oss::{Credentials, OssClient};
use transfer::s3::S3Store;
use transfer::task::ReplicationTask;

const SRC: &str = "src-bucket";
const AK: &str = "jobs-ak";
const SK: &str = "jobs-secret";

/// A queue that keeps what it is sent.
#[derive(Default)]
struct Recorder {
    tasks: Mutex<Vec<(ReplicationTask, Duration)>>,
    shards: Mutex<Vec<(Shard, Duration)>>,
}

impl JobQueue for Recorder {
    async fn enqueue_tasks(&self, tasks: Vec<(ReplicationTask, Duration)>) -> Result<(), String> {
        self.tasks.lock().expect("lock").extend(tasks);
        Ok(())
    }

    async fn enqueue_shard(&self, shard: &Shard, delay: Duration) -> Result<(), String> {
        self.shards
            .lock()
            .expect("lock")
            .push((shard.clone(), delay));
        Ok(())
    }
}

impl Recorder {
    fn take_shards(&self) -> Vec<(Shard, Duration)> {
        std::mem::take(&mut *self.shards.lock().expect("lock"))
    }
}

struct Env {
    services: Services,
    stores: ShardStores<OssClient, S3Store>,
    /// The job reports' bucket, apart from the destination: report files in the destination
    /// would be listed as extra objects.
    reports: String,
}

impl Env {
    async fn start() -> Self {
        let services = Services::start(
            EmulatorConfig::new()
                .bucket(SRC)
                .credentials(Credentials::new(AK, SK)),
        )
        .await;
        let dst = services.create_bucket("dst").await;
        let reports = services.create_bucket("reports").await;
        let stores = ShardStores {
            source: services.oss_client(Credentials::new(AK, SK)),
            destination: services.s3_store(),
            destination_bucket: dst,
            src_prefix: String::new(),
            dst_prefix: String::new(),
            // Split after any hop that runs out of time.
            split_after: 1,
            deletes: true,
        };
        Self {
            services,
            stores,
            reports,
        }
    }

    async fn seed(&self, key: &str, len: usize) {
        self.services
            .emulator
            .put_object_direct(
                SRC,
                key,
                Bytes::from(vec![b'x'; len]),
                PutOptions::default(),
            )
            .await
            .expect("seeded");
    }

    fn job(&self, id: &str, shards: u32) -> JobRequest {
        let body = serde_json::json!({"job": {
            "job_id": id, "source_bucket": SRC, "shards": shards,
            "report_bucket": self.reports, "report_prefix": "jobs/",
        }});
        serde_json::from_value::<JobMessage>(body)
            .expect("a job message")
            .job
    }
}

/// Keys that all share one long prefix, as date-partitioned data does: a split on the first
/// byte would put every one in the same shard.
fn dated_keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "data/2024-{:02}-{:02}/part-{i:05}.parquet",
                1 + i % 12,
                1 + i % 28
            )
        })
        .collect()
}

fn holders(shards: &[Shard], keys: &[String]) -> Vec<usize> {
    shards
        .iter()
        .map(|s| {
            keys.iter()
                .filter(|k| {
                    s.start.as_deref().is_none_or(|a| k.as_str() > a)
                        && s.until.as_deref().is_none_or(|u| k.as_str() <= u)
                })
                .count()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_planned_where_its_keys_are() {
    let numbered: Vec<String> = (0..400).map(|i| format!("{:06}", i * 37)).collect();
    let odd: Vec<String> = (0..300)
        .map(|i| {
            let start = ["a b", "a+b", "a%20b", "é", "文件", "😀", "~", "Z", "0"][i % 9];
            format!("{start}/{i:04} ü")
        })
        .collect();
    for keys in [dated_keys(480), numbered, odd] {
        let env = Env::start().await;
        for key in &keys {
            env.seed(key, 1).await;
        }
        let before = env.services.emulator.stats().total_requests();
        let shards = plan_job(&env.job("plan", 8), &env.stores.source)
            .await
            .expect("planned");
        let probes = env.services.emulator.stats().total_requests() - before;
        eprintln!(
            "planning 8 shards over {} keys: {probes} one-key listings",
            keys.len()
        );
        // The keys are never listed in full: a few dozen one-key listings per shard.
        assert!(probes <= 8 * 40, "{probes} listings");
        let counts = holders(&shards, &keys);
        assert_eq!(counts.iter().sum::<usize>(), keys.len(), "{counts:?}");
        assert!(shards.len() >= 6, "{counts:?}");
        assert!(
            counts.iter().all(|&c| c > 0 && c <= keys.len() / 2),
            "every shard holds some keys, none most of them: {counts:?}"
        );
    }
    // One key, or none: one shard.
    let env = Env::start().await;
    assert_eq!(
        plan_job(&env.job("empty", 8), &env.stores.source)
            .await
            .expect("planned")
            .len(),
        1
    );
    env.seed("only", 1).await;
    assert_eq!(
        plan_job(&env.job("one", 8), &env.stores.source)
            .await
            .expect("planned")
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shard_that_runs_out_of_time_splits_and_its_pieces_cover_it_once() {
    let env = Env::start().await;
    let keys = dated_keys(90);
    let mut sizes = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        env.seed(key, i).await;
        sizes.insert(key.clone(), i as u64);
    }
    let queue = Recorder::default();
    let step = transfer::migrate::run_job(&env.job("split", 1), &env.stores, &queue)
        .await
        .expect("planned");
    assert_eq!(step, JobStep::Planned(1));
    let mut pending = queue.take_shards();
    let mut hops = 0;
    let mut finished = 0;
    let mut listed_seen = false;
    while let Some((shard, _)) = pending.pop() {
        hops += 1;
        // Every hop runs out of time after its first object.
        match run_shard_hop(&shard, &env.stores, Instant::now(), &queue)
            .await
            .expect("a hop")
        {
            JobStep::Continued { .. } => pending.extend(queue.take_shards()),
            JobStep::Finished { job_listed, .. } => {
                finished += 1;
                assert!(!listed_seen, "listed.json came before the last shard");
                listed_seen = job_listed;
            }
            other @ JobStep::Planned(_) => panic!("unexpected {other:?}"),
        }
        assert!(hops < 1_000, "the hops do not end");
    }
    assert!(listed_seen, "the last shard saw the key space covered");
    assert!(finished > 8, "the shard split: {finished} pieces");
    // Each object got exactly one copy task, with its listed size.
    let tasks = queue.tasks.lock().expect("lock").clone();
    let copied: BTreeMap<String, u64> = tasks
        .iter()
        .map(|(t, _)| (t.source.key.clone(), t.source.size.expect("a size")))
        .collect();
    assert_eq!(tasks.len(), keys.len());
    assert_eq!(copied, sizes);
    assert!(tasks.iter().all(|(_, delay)| delay.is_zero()));
    // The summaries in S3 name every piece, and listed.json sums them.
    let names = finished_shards(
        &env.stores.destination,
        &env.reports,
        &shards_prefix("jobs/", "split"),
    )
    .await
    .expect("the summaries' names");
    assert_eq!(names.len(), finished);
    assert!(job_complete(1, &names));
    assert!(!job_complete(1, &names[1..]));
    let summaries = read_summaries(
        &env.stores.destination,
        &env.reports,
        &shards_prefix("jobs/", "split"),
    )
    .await
    .expect("the summaries");
    assert_eq!(summaries.len(), finished);
    assert!(summaries.iter().any(|s| s.part.contains('.')));
    let listed = transfer::store::read_all(
        &env.stores.destination,
        &env.reports,
        &listed_key("jobs/", "split"),
    )
    .await
    .expect("listed.json");
    let listed: serde_json::Value = serde_json::from_slice(&listed).expect("JSON");
    assert_eq!(listed["counts"]["listed"], keys.len());
    assert_eq!(listed["counts"]["to_copy"], keys.len());
    assert_eq!(listed["shards"], finished);
    // The task lists, read piece by piece in key order, give every task once, in key order,
    // though the pieces ran out of order.
    let listed: Vec<(String, u64)> = transfer::migrate::enqueued_tasks(
        env.stores.destination.clone(),
        env.reports.clone(),
        "jobs/".to_owned(),
        "split".to_owned(),
        transfer::job::pieces_in_key_order(&summaries),
    )
    .map_ok(|t| (t.key, t.size.expect("a size")))
    .try_collect()
    .await
    .expect("the task lists");
    assert_eq!(listed, sizes.into_iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_shard_spaces_its_copies_and_hands_on_what_sqs_cannot_delay() {
    let env = Env::start().await;
    for i in 0..10 {
        env.seed(&format!("k{i}"), 1_000).await;
    }
    let mut job = env.job("paced", 1);
    // 4 B/s: each 1,000-byte object takes 250 s of the budget.
    job.bytes_per_second = Some(4);
    let queue = Recorder::default();
    transfer::migrate::run_job(&job, &env.stores, &queue)
        .await
        .expect("planned");
    let (shard, _) = queue.take_shards().pop().expect("one shard");
    let far = Instant::now() + Duration::from_mins(5);
    let step = run_shard_hop(&shard, &env.stores, far, &queue)
        .await
        .expect("a hop");
    assert_eq!(
        step,
        JobStep::Continued {
            pieces: 1,
            listed: 4
        }
    );
    let delays: Vec<u64> = queue
        .tasks
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, d)| d.as_secs())
        .collect();
    // 0, 250, 500 and 750 s; the fifth would wait 1,000 s, past SQS's 15 minutes.
    for (delay, want) in delays.iter().zip([0, 250, 500, 750]) {
        assert!(delay.abs_diff(want) <= 2, "{delays:?}");
    }
    assert_eq!(delays.len(), 4);
    let (next, delay) = queue.take_shards().pop().expect("the rest of the shard");
    assert_eq!(next.after.as_deref(), Some("k3"));
    assert_eq!(next.name(), shard.name(), "a paced shard does not split");
    // It comes back five minutes before its next copy is due (1,000 s from the start).
    assert!(delay.as_secs().abs_diff(700) <= 2, "{delay:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_asking_for_deletes_is_refused_by_a_replicator_that_makes_none() {
    let mut env = Env::start().await;
    env.seed("k", 1).await;
    env.stores.deletes = false;
    let mut job = env.job("deleting", 2);
    job.delete = true;
    let queue = Recorder::default();
    let refused = transfer::migrate::run_job(&job, &env.stores, &queue)
        .await
        .expect_err("refused");
    assert!(refused.contains("ReplicateDeletes=true"), "{refused}");
    assert!(queue.take_shards().is_empty(), "no shard sent");
    // A shard of such a job (sent by a CLI) is refused too, before listing anything.
    let shard = job.shards_over(&[]).pop().expect("a shard");
    let refused = run_shard_hop(&shard, &env.stores, Instant::now(), &queue)
        .await
        .expect_err("refused");
    assert!(refused.contains("REPLICATE_DELETES"), "{refused}");
    assert!(queue.tasks.lock().expect("lock").is_empty());
    // Without --delete, the same job runs.
    job.delete = false;
    assert_eq!(
        transfer::migrate::run_job(&job, &env.stores, &queue)
            .await
            .expect("planned"),
        JobStep::Planned(1)
    );
}
