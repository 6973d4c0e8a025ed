//! OSS credentials kept in AWS Secrets Manager, as a [`ProvideCredentials`] for the OSS client:
//! fetched on first use, cached for the life of the process (so across Lambda invocations), and
//! re-read when OSS rejects them.
//!
//! # Secret format
//! The secret's `SecretString` is a JSON object, the format users already store:
//! ```json
//! {"access_key_id": "LTAI...", "secret_access_key": "...", "security_token": "..."}
//! ```
//! `security_token` is optional (STS credentials only); other fields are ignored.
//!
//! # Never logged
//! Neither the secret value nor any error derived from it carries the key secret or the token:
//! JSON errors report only the position and the names of the missing fields, and
//! [`Credentials`]' `Debug` redacts.

use std::sync::Arc;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use futures::future::BoxFuture;
use tokio::sync::Mutex;

use crate::oss::{
    Credentials, CredentialsError, CredentialsErrorKind, ProvideCredentials, parse_credentials_json,
};

/// OSS credentials read from one Secrets Manager secret and cached.
///
/// Cheap to clone; clones share the cache. Refreshes are single-flight: when many requests see
/// a credential error at once, the secret is read once and every caller gets that read.
#[derive(Clone)]
pub struct SecretsManagerCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    secret_id: String,
    cached: Mutex<Option<Arc<Credentials>>>,
}

impl std::fmt::Debug for SecretsManagerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerCredentials")
            .field("secret_id", &self.inner.secret_id)
            .finish_non_exhaustive()
    }
}

impl SecretsManagerCredentials {
    /// Credentials from the secret `secret_id` (name or ARN), read through `client`. Nothing is
    /// fetched until the first request needs them.
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                secret_id: secret_id.into(),
                cached: Mutex::new(None),
            }),
        }
    }

    /// The secret's name or ARN.
    pub fn secret_id(&self) -> &str {
        &self.inner.secret_id
    }

    fn source_name(&self) -> String {
        format!("secret {:?}", self.inner.secret_id)
    }

    async fn get(&self) -> Result<Arc<Credentials>, CredentialsError> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(current) = cached.as_ref() {
            return Ok(Arc::clone(current));
        }
        let fetched = Arc::new(self.fetch().await?);
        *cached = Some(Arc::clone(&fetched));
        Ok(fetched)
    }

    async fn reload(
        &self,
        rejected: &Arc<Credentials>,
    ) -> Result<Arc<Credentials>, CredentialsError> {
        let mut cached = self.inner.cached.lock().await;
        // Another request refreshed meanwhile: use its read.
        if let Some(current) = cached.as_ref()
            && !Arc::ptr_eq(current, rejected)
        {
            return Ok(Arc::clone(current));
        }
        let fetched = Arc::new(self.fetch().await?);
        tracing::info!(
            secret_id = %self.inner.secret_id,
            access_key_id = %fetched.access_key_id,
            changed = *fetched != **rejected,
            "re-read the OSS credentials secret"
        );
        *cached = Some(Arc::clone(&fetched));
        Ok(fetched)
    }

    /// One GetSecretValue call, parsed.
    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        let source = self.source_name();
        let output = self
            .inner
            .client
            .get_secret_value()
            .secret_id(&self.inner.secret_id)
            .send()
            .await
            .map_err(|err| classify(&source, &err))?;
        let value = match (output.secret_string(), output.secret_binary()) {
            (Some(text), _) => text.to_owned(),
            (None, Some(blob)) => String::from_utf8(blob.as_ref().to_vec()).map_err(|_| {
                CredentialsError::new(
                    CredentialsErrorKind::Malformed,
                    &source,
                    "binary value is not UTF-8 JSON",
                )
            })?,
            (None, None) => {
                return Err(CredentialsError::new(
                    CredentialsErrorKind::Malformed,
                    &source,
                    "the secret has no value",
                ));
            }
        };
        parse_credentials_json(&value)
            .map_err(|m| CredentialsError::new(CredentialsErrorKind::Malformed, &source, m))
    }
}

impl ProvideCredentials for SecretsManagerCredentials {
    fn credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>> {
        Box::pin(self.get())
    }

    fn refresh<'a>(
        &'a self,
        rejected: &'a Arc<Credentials>,
    ) -> BoxFuture<'a, Result<Arc<Credentials>, CredentialsError>> {
        Box::pin(self.reload(rejected))
    }
}

/// Maps a GetSecretValue failure to a [`CredentialsError`] (the SDK's messages never carry the
/// secret value).
fn classify<E, R>(source: &str, err: &SdkError<E, R>) -> CredentialsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = DisplayErrorContext(err).to_string();
    let kind = match err {
        SdkError::ServiceError(service) => match service.err().code() {
            Some("ResourceNotFoundException") => CredentialsErrorKind::NotFound,
            Some("AccessDeniedException" | "DecryptionFailure") => {
                CredentialsErrorKind::AccessDenied
            }
            Some("InvalidRequestException" | "InvalidParameterException") => {
                // e.g. the secret is scheduled for deletion: no operator action within a retry.
                CredentialsErrorKind::NotFound
            }
            _ => CredentialsErrorKind::Unavailable,
        },
        _ => CredentialsErrorKind::Unavailable,
    };
    let message = match kind {
        CredentialsErrorKind::NotFound => format!("not found or not usable: {message}"),
        CredentialsErrorKind::AccessDenied => format!("cannot be read: {message}"),
        _ => format!("GetSecretValue failed: {message}"),
    };
    CredentialsError::new(kind, source, message)
}
