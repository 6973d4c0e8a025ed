//! `oss2s3`: migration jobs between Alibaba Cloud OSS and Amazon S3.
//!
//! `diff` says what a sync would do, `sync` copies what the destination lacks or holds older
//! (with the replicator's engine, in this process), `verify` proves that the two sides agree.
//! `docs/migration.md` describes jobs, reports and throttling.
//!
//! | module | what |
//! |---|---|
//! | `app` | the command line |
//! | `doctor` | checks of a deployment, each with its fix |
//! | `location` | `oss://` and `s3://` locations |
//! | `stores` | the stores, configured from the environment as the replicator's are |
//! | `job` | one job: list, merge, decide, act, record, checkpoint |
//! | `filter` | include/exclude globs, time and size bounds |
//! | `throttle` | `--bwlimit` timetables and `--tpslimit` |
//! | `stats`, `report`, `html` | counts, the report's lists, `summary.json`, `report.html` |
//! | `progress` | a progress bar or plain lines |
//! | `queue` | the replicator's queues: DLQ list and redrive, depth |
//! | `queued` | `sync --queue`: shards for the deployed replicator, and waiting for them |
//! | `status` | where one object stands |

pub mod app;
pub mod doctor;
pub mod filter;
pub mod html;
pub mod job;
pub mod location;
pub mod progress;
pub mod queue;
pub mod queued;
pub mod report;
pub mod stats;
pub mod status;
pub mod stores;
pub mod throttle;
