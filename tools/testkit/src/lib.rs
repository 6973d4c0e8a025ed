//! Test support for oss2s3: the one home of the local stand-ins for the platform, used by the
//! integration tests, the local stack (`devstack`) and the benchmark.
//!
//! Everything here is a real server on a free loopback port or a real process; nothing is
//! mocked in-process.
//!
//! - [`python`]: the repository root, the project-local Python environment, free ports;
//! - [`moto`]: moto's server (S3, SQS, Secrets Manager);
//! - [`services`]: the OSS emulator and moto together, with buckets, queues and secrets;
//! - [`process`]: child processes that log to a file and die with their handle;
//! - [`runtime_api`] and [`lambda`]: the Lambda Runtime API and an execution environment that
//!   runs a function binary under it;
//! - [`sqs_event`]: the SQS events Lambda's event source mapping delivers;
//! - [`aws_stub`]: a minimal AWS JSON-protocol endpoint (a fixed Secrets Manager secret and a
//!   counting SQS sink);
//! - [`sqs_server`]: an in-memory SQS server (standard queues, visibility, redrive, long polls)
//!   for rates moto cannot sustain;
//! - [`s3_proxy`]: a proxy in front of an S3 server that counts requests by operation and
//!   injects faults;
//! - [`discard_s3`]: an S3 endpoint that verifies what it receives and keeps none of it;
//! - [`layering`]: a check that a crate's modules have no cycles;
//! - [`odd_keys`]: the odd-key corpus of `events/odd-keys.txt`.

// Test support fails the test that called it by panicking, so its panics are its contract.
#![expect(
    clippy::missing_panics_doc,
    reason = "test support panics to fail the calling test"
)]

pub mod aws_stub;
pub mod discard_s3;
pub mod lambda;
pub mod layering;
pub mod moto;
pub mod odd_keys;
pub mod process;
pub mod python;
pub mod runtime_api;
pub mod s3_proxy;
pub mod s3_upload;
pub mod services;
pub mod sqs_event;
pub mod sqs_server;

pub use moto::MotoServer;
pub use python::{free_port, python, repo_root};
pub use services::Services;
