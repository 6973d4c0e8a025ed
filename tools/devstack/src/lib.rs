//! `devstack`: oss2s3's whole pipeline on one machine, with no cloud account.
//!
//! The real binaries speak the real protocols, wired as in the cloud: the OSS emulator's trigger
//! posts to the forwarder (an FC custom runtime), which enqueues tasks on SQS (moto); an event
//! source mapping emulation ([`esm`]) feeds them to the replicator's unchanged `bootstrap` through
//! a Lambda Runtime API server of its own (`testkit::runtime_api`, `testkit::lambda`); the
//! replicator reads OSS keys from Secrets Manager (moto) and writes into S3 (moto). [`stack`]
//! starts and stops it all; [`demo`] drives a realistic data set through it and verifies every
//! object.

#![warn(missing_docs, unreachable_pub)]

pub mod binaries;
pub mod chaos;
pub mod demo;
pub mod esm;
pub mod stack;

pub use binaries::{Binaries, Profile};
pub use stack::{SqsService, Stack, StackConfig};
