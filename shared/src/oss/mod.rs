//! The Alibaba Cloud OSS side: Signature V4 and a REST client on reqwest.
//!
//! [`OssClient`] is the entry point; [`OssConfig`] configures it; every operation returns a typed
//! output or an [`OssError`] whose [`ErrorKind`] says whether to retry.

pub mod body;
pub mod client;
pub mod config;
pub mod error;
pub mod meta;
mod retry;
pub mod signer;
pub mod xml;

pub use body::{BoxError, ObjectBody, PutBody};
pub use client::{
    ByteRange, CompleteMultipartUploadOutput, CompletedPart, GetObjectOptions, GetObjectOutput,
    ListObjectsV2Request, OssClient, PutObjectOptions, PutObjectOutput, RestoreOutcome,
    UploadPartOutput,
};
pub use config::{AddressingStyle, Endpoint, OssConfig, RetryPolicy};
pub use error::{ErrorKind, OssError, ServiceDetails};
pub use meta::{ContentHeaders, ContentRange, ObjectMeta, ObjectType, RestoreState, StorageClass};
pub use signer::{Credentials, OssSigner};
pub use xml::{ListObjectsPage, ListedObject, RestoreTier, UploadedPart};
