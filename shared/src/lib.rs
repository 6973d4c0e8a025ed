//! `transfer`: the library both oss2s3 functions are built on.
//!
//! It holds the OSS client (reqwest, Signature V4), the S3 side, the replication task message
//! format and the copy engine. The functions themselves are thin adapters around it.

pub mod batch;
pub mod crc64;
pub mod credentials;
pub mod forward;
pub mod metrics;
pub mod oss;
pub mod replicate;
pub mod sqs;
pub mod store;
pub mod task;
pub mod trigger;
