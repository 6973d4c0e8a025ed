//! The Alibaba Cloud OSS side: Signature V4 and a REST client on reqwest.

pub mod signer;

pub use signer::{Credentials, OssSigner};
