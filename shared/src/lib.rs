//! `transfer`: the one library oss2s3's functions and tools are built on.
//!
//! The core, always built, is protocol-free: the [`store`] seam (traits and neutral types), the
//! [`task`] message format, native OSS trigger events ([`trigger`]), the messages the replicator
//! reads ([`message`]), CRC-64/XZ ([`crc64`]), one [`retry`] policy and configuration from the
//! environment ([`env`]).
//! Everything that talks to a service is behind a cargo feature, so each binary compiles only
//! what it uses:
//!
//! | feature | module | what |
//! |---|---|---|
//! | `signer` | [`oss::signer`](oss) | OSS Signature V4, signing and verifying |
//! | `oss` | [`oss`] | the OSS REST client on reqwest; an object store |
//! | `s3` | `s3` | Amazon S3 on aws-sdk-s3; an object store |
//! | `sqs` | `sqs` | sending tasks to SQS with SendMessageBatch |
//! | `secrets` | `secrets` | OSS credentials from AWS Secrets Manager |
//! | `engine` | `replicate`, `migrate` | the copy engine; whole-bucket listing and comparison |
//! | `memory` | `store::memory` | the in-memory reference store, with fault hooks |
//! | `logging` | `logging` | log settings and the tracing subscriber |
//!
//! `docs/architecture.md` shows how the crates and modules fit together.
//!
//! # Modules
//!
//! Listed from the top down; each module uses only modules listed below it, so there are no
//! cycles (`tests/layering.rs` checks this list against the code).
//!
//! ```text
//! migrate    whole-bucket listing, merge and comparison (feature engine)
//! replicate  the copy engine (feature engine)
//! secrets    OSS credentials from Secrets Manager (feature secrets)
//! logging    log variables and the tracing subscriber (feature logging)
//! env        environment variables, and the OSS client's settings from them
//! message    the message shapes the replicator reads
//! trigger    native OSS trigger events and the forwarding filter
//! sqs        sending tasks to SQS (feature sqs)
//! s3         S3Store (feature s3)
//! oss        Signature V4 (feature signer) and the OSS client (feature oss)
//! job        migration jobs' shard messages
//! task       the replication task message
//! store      the seam: traits, neutral types, MemoryStore (feature memory)
//! retry      the one retry policy
//! encoding   the one percent-encoding
//! crc64      CRC-64/XZ
//! size       byte units
//! ```

pub mod crc64;
pub mod encoding;
pub mod env;
pub mod job;
pub mod message;
pub mod retry;
pub mod size;
pub mod store;
pub mod task;
pub mod trigger;

#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "engine")]
pub mod migrate;
#[cfg(feature = "signer")]
pub mod oss;
#[cfg(feature = "engine")]
pub mod replicate;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "secrets")]
pub mod secrets;
#[cfg(feature = "sqs")]
pub mod sqs;
