//! OSS credentials kept in AWS Secrets Manager: fetched on first use, cached for the life of the
//! process (so across Lambda invocations), and re-read on demand when OSS rejects them.
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
use serde_json::Value;
use tokio::sync::Mutex;

use crate::oss::Credentials;

/// What kind of failure a [`CredentialsError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialsErrorKind {
    /// The secret does not exist (or has no current value).
    NotFound,
    /// The function's role may not read or decrypt the secret.
    AccessDenied,
    /// The secret exists but its value is not the expected JSON.
    Malformed,
    /// Secrets Manager could not be reached, timed out or throttled; trying later may work.
    Unavailable,
}

impl CredentialsErrorKind {
    /// Whether fetching again unchanged may succeed.
    pub fn is_retryable(self) -> bool {
        self == Self::Unavailable
    }

    /// A short machine-readable name, e.g. for metric dimensions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "secret_not_found",
            Self::AccessDenied => "secret_access_denied",
            Self::Malformed => "secret_malformed",
            Self::Unavailable => "secret_unavailable",
        }
    }
}

/// The OSS credentials secret could not be used. Names the secret, never its value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("OSS credentials secret {secret_id:?}: {message}")]
pub struct CredentialsError {
    kind: CredentialsErrorKind,
    secret_id: String,
    message: String,
}

impl CredentialsError {
    fn new(kind: CredentialsErrorKind, secret_id: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            secret_id: secret_id.to_owned(),
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> CredentialsErrorKind {
        self.kind
    }

    /// The secret's name or ARN.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// Whether fetching again unchanged may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// Credentials as fetched, tagged with the fetch that produced them.
#[derive(Debug, Clone)]
pub struct FetchedCredentials {
    /// The credentials.
    pub credentials: Credentials,
    /// Counts successful fetches from 1; a larger number is a newer read of the secret.
    pub generation: u64,
}

/// Parses a secret value: `{"access_key_id", "secret_access_key"[, "security_token"]}`.
///
/// The error message (without the secret ID) never quotes the value.
pub fn parse_secret(value: &str) -> Result<Credentials, String> {
    // serde_json's type errors quote the offending value; parse to `Value` and check by hand.
    let json: Value = serde_json::from_str(value).map_err(|e| {
        format!(
            "value is not JSON (syntax error at line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(fields) = json else {
        return Err("value is JSON but not an object".to_owned());
    };
    let text = |name: &str| match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(format!("field {name:?} is not a string")),
    };
    let access_key_id = text("access_key_id")?;
    let secret_access_key = text("secret_access_key")?;
    let security_token = text("security_token")?;
    let missing: Vec<&str> = [
        ("access_key_id", access_key_id.is_none()),
        ("secret_access_key", secret_access_key.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    let (Some(access_key_id), Some(secret_access_key)) = (access_key_id, secret_access_key) else {
        return Err(format!(
            "missing or empty field(s): {}; expected {{\"access_key_id\", \"secret_access_key\"[, \"security_token\"]}}",
            missing.join(", ")
        ));
    };
    let credentials = Credentials::new(access_key_id, secret_access_key);
    Ok(match security_token {
        Some(token) => credentials.with_security_token(token),
        None => credentials,
    })
}

/// OSS credentials read from one Secrets Manager secret and cached.
///
/// Cheap to clone; clones share the cache. Refreshes are single-flight: when many messages see
/// a credential error at once, the secret is read once and every caller gets that read.
#[derive(Clone)]
pub struct SecretCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    secret_id: String,
    cached: Mutex<Option<FetchedCredentials>>,
}

impl std::fmt::Debug for SecretCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCredentials")
            .field("secret_id", &self.inner.secret_id)
            .finish_non_exhaustive()
    }
}

impl SecretCredentials {
    /// Credentials from the secret `secret_id` (name or ARN), read through `client`. Nothing is
    /// fetched until the first [`SecretCredentials::get`].
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

    /// The cached credentials, fetching them first if nothing is cached yet.
    pub async fn get(&self) -> Result<FetchedCredentials, CredentialsError> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(current) = cached.as_ref() {
            return Ok(current.clone());
        }
        let fetched = self.fetch(0).await?;
        *cached = Some(fetched.clone());
        Ok(fetched)
    }

    /// Re-reads the secret because the credentials of generation `stale` were rejected.
    ///
    /// If a newer generation is already cached (another caller refreshed meanwhile), that one is
    /// returned without a fetch.
    pub async fn refresh(&self, stale: u64) -> Result<FetchedCredentials, CredentialsError> {
        let mut cached = self.inner.cached.lock().await;
        let current_generation = cached.as_ref().map_or(0, |c| c.generation);
        if let Some(current) = cached.as_ref()
            && current.generation > stale
        {
            return Ok(current.clone());
        }
        let fetched = self.fetch(current_generation).await?;
        tracing::info!(
            secret_id = %self.inner.secret_id,
            generation = fetched.generation,
            access_key_id = %fetched.credentials.access_key_id,
            "re-read the OSS credentials secret"
        );
        *cached = Some(fetched.clone());
        Ok(fetched)
    }

    /// One GetSecretValue call, parsed; `previous` is the generation it replaces.
    async fn fetch(&self, previous: u64) -> Result<FetchedCredentials, CredentialsError> {
        let secret_id = &self.inner.secret_id;
        let output = self
            .inner
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|err| classify(secret_id, &err))?;
        let value = match (output.secret_string(), output.secret_binary()) {
            (Some(text), _) => text.to_owned(),
            (None, Some(blob)) => String::from_utf8(blob.as_ref().to_vec()).map_err(|_| {
                CredentialsError::new(
                    CredentialsErrorKind::Malformed,
                    secret_id,
                    "binary value is not UTF-8 JSON",
                )
            })?,
            (None, None) => {
                return Err(CredentialsError::new(
                    CredentialsErrorKind::Malformed,
                    secret_id,
                    "the secret has no value",
                ));
            }
        };
        let credentials = parse_secret(&value)
            .map_err(|m| CredentialsError::new(CredentialsErrorKind::Malformed, secret_id, m))?;
        Ok(FetchedCredentials {
            credentials,
            generation: previous + 1,
        })
    }
}

/// Maps a GetSecretValue failure to a [`CredentialsError`] (the SDK's messages never carry the
/// secret value).
fn classify<E, R>(secret_id: &str, err: &SdkError<E, R>) -> CredentialsError
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
    CredentialsError::new(kind, secret_id, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_pair_without_token() {
        let creds = parse_secret(r#"{"access_key_id":"AK","secret_access_key":"SK"}"#).unwrap();
        assert_eq!(creds, Credentials::new("AK", "SK"));
    }

    #[test]
    fn parses_sts_token_and_ignores_other_fields() {
        let creds = parse_secret(
            r#"{"access_key_id":"AK","secret_access_key":"SK","security_token":"TOK","note":1}"#,
        )
        .unwrap();
        assert_eq!(
            creds,
            Credentials::new("AK", "SK").with_security_token("TOK")
        );
    }

    #[test]
    fn empty_token_means_no_token() {
        let creds =
            parse_secret(r#"{"access_key_id":"AK","secret_access_key":"SK","security_token":""}"#)
                .unwrap();
        assert_eq!(creds.security_token, None);
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse_secret(r#"{"access_key_id":"AK"}"#).unwrap_err();
        assert!(err.contains("secret_access_key"), "{err}");
        assert!(!err.contains("AK\""), "{err}");
        let err = parse_secret("{}").unwrap_err();
        assert!(err.contains("access_key_id, secret_access_key"), "{err}");
    }

    #[test]
    fn bad_json_error_does_not_quote_the_value() {
        let err = parse_secret("TOPSECRETVALUE").unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        assert!(!err.contains("TOPSECRET"), "{err}");
        let err =
            parse_secret(r#"{"access_key_id":"AK","secret_access_key":12345678}"#).unwrap_err();
        assert!(
            err.contains("secret_access_key") && !err.contains("12345678"),
            "{err}"
        );
        let err = parse_secret(r#"["TOPSECRET"]"#).unwrap_err();
        assert!(!err.contains("TOPSECRET"), "{err}");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let creds = parse_secret(
            r#"{"access_key_id":"AK","secret_access_key":"SUPERSECRET","security_token":"TOKENVALUE"}"#,
        )
        .unwrap();
        let debug = format!("{creds:?}");
        assert!(
            !debug.contains("SUPERSECRET") && !debug.contains("TOKENVALUE"),
            "{debug}"
        );
    }

    #[test]
    fn only_unavailable_is_retryable() {
        assert!(CredentialsErrorKind::Unavailable.is_retryable());
        for kind in [
            CredentialsErrorKind::NotFound,
            CredentialsErrorKind::AccessDenied,
            CredentialsErrorKind::Malformed,
        ] {
            assert!(!kind.is_retryable(), "{kind:?}");
        }
    }
}
