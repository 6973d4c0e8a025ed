//! The Alibaba Cloud OSS side: Signature V4 (feature `signer`) and a REST client on reqwest
//! (feature `oss`).
//!
//! [`OssClient`] is the entry point; [`OssConfig`] configures it; a [`ProvideCredentials`]
//! supplies its keys; every operation returns a typed output or an [`OssError`] whose
//! [`ErrorKind`] says whether to retry. `OssClient` is also an object store of the seam (source
//! and sink), in `store`.

pub mod signer;
pub use signer::{Credentials, OssSigner};

#[cfg(feature = "oss")]
pub mod body;
#[cfg(feature = "oss")]
mod client;
#[cfg(feature = "oss")]
pub mod config;
#[cfg(feature = "oss")]
mod credentials;
#[cfg(feature = "oss")]
pub mod error;
#[cfg(feature = "oss")]
pub mod meta;
#[cfg(feature = "oss")]
mod multipart;
#[cfg(feature = "oss")]
mod objects;
#[cfg(feature = "oss")]
mod request;
#[cfg(feature = "oss")]
mod retry;
#[cfg(feature = "oss")]
pub mod store;
#[cfg(feature = "oss")]
pub mod xml;

#[cfg(feature = "oss")]
pub use body::{ObjectBody, PutBody};
#[cfg(feature = "oss")]
pub use client::OssClient;
#[cfg(feature = "oss")]
pub use config::{AddressingStyle, Endpoint, OssConfig, RetryPolicy};
#[cfg(feature = "oss")]
pub use credentials::{
    CredentialsError, CredentialsErrorKind, ProvideCredentials, StaticCredentials,
    parse_credentials_json,
};
#[cfg(feature = "oss")]
pub use error::{ErrorKind, OssError, ServiceDetails};
#[cfg(feature = "oss")]
pub use meta::{ContentRange, ObjectMeta, ObjectType, RestoreState, StorageClass};
#[cfg(feature = "oss")]
pub use request::{
    ByteRange, CompleteMultipartUploadOutput, CompleteOptions, CompletedPart, GetObjectOptions,
    GetObjectOutput, ListObjectsV2Request, PutObjectOptions, PutObjectOutput, RestoreOutcome,
    UploadPartOutput,
};
#[cfg(feature = "oss")]
pub use xml::{ListObjectsPage, ListedObject, PendingUpload, RestoreTier, UploadedPart};
