//! The oss-forwarder function's library: everything but the process start-up, so it is tested
//! without a server.
//!
//! - [`forward`]: one trigger body → filtered, deduplicated tasks on SQS, with a report;
//! - [`fc`]: the Function Compute custom-runtime adapter (routes, `x-fc-status`, log lines);
//! - [`config`]: the environment, read once.

pub mod config;
pub mod fc;
pub mod forward;
