//! Where the OSS client's keys come from: a [`ProvideCredentials`] that the client asks before
//! signing and tells when OSS rejects what it gave.
//!
//! [`StaticCredentials`] holds fixed keys (tests, the CLI with keys in the environment). The
//! replicator uses `SecretsManagerCredentials` (feature `secrets`), which reads a Secrets
//! Manager secret once, caches it for the life of the process and re-reads it when OSS rejects
//! it, so rotating the secret needs no redeploy.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::signer::Credentials;

/// What kind of failure a [`CredentialsError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialsErrorKind {
    /// The credentials' source (a secret) does not exist, or has no current value.
    NotFound,
    /// This process may not read the credentials' source.
    AccessDenied,
    /// The source exists, but its value is not usable credentials.
    Malformed,
    /// The source could not be reached, timed out or throttled; trying later may work.
    Unavailable,
}

impl CredentialsErrorKind {
    /// Whether loading again unchanged may succeed.
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

/// The credentials could not be loaded. Names their source, never their value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("OSS credentials from {source_name}: {message}")]
pub struct CredentialsError {
    kind: CredentialsErrorKind,
    source_name: String,
    message: String,
}

impl CredentialsError {
    /// An error of `kind` loading from `source_name` (such as `secret "oss2s3/oss"`).
    pub fn new(
        kind: CredentialsErrorKind,
        source_name: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            source_name: source_name.into(),
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> CredentialsErrorKind {
        self.kind
    }

    /// Where the credentials were to come from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Whether loading again unchanged may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// A source of OSS credentials for [`OssClient`](super::OssClient).
///
/// The client calls [`credentials`](Self::credentials) before signing each request; it should
/// be cheap (cached). When OSS rejects a signature made with credentials `c`, the client calls
/// [`refresh`](Self::refresh) with `c` once and, if it gets different credentials, sends the
/// request again. Implementations make refreshes single-flight: when many requests fail at once,
/// the source is read once.
pub trait ProvideCredentials: Send + Sync + fmt::Debug {
    /// The credentials to sign with now.
    fn credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>>;

    /// OSS rejected `rejected`: fresh credentials, or `rejected` itself when there are none
    /// newer.
    fn refresh<'a>(
        &'a self,
        rejected: &'a Arc<Credentials>,
    ) -> BoxFuture<'a, Result<Arc<Credentials>, CredentialsError>>;
}

/// Fixed credentials; a refresh yields the same ones.
#[derive(Debug, Clone)]
pub struct StaticCredentials(Arc<Credentials>);

impl StaticCredentials {
    /// Always `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        Self(Arc::new(credentials))
    }
}

impl ProvideCredentials for StaticCredentials {
    fn credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, CredentialsError>> {
        let credentials = Arc::clone(&self.0);
        Box::pin(async move { Ok(credentials) })
    }

    fn refresh<'a>(
        &'a self,
        _rejected: &'a Arc<Credentials>,
    ) -> BoxFuture<'a, Result<Arc<Credentials>, CredentialsError>> {
        self.credentials()
    }
}

/// Parses the JSON credentials format oss2s3 keeps in secrets:
/// `{"access_key_id": "...", "secret_access_key": "..."[, "security_token": "..."]}`.
///
/// Other fields are ignored. The error message never quotes the value.
pub fn parse_credentials_json(value: &str) -> Result<Credentials, String> {
    use serde_json::Value;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_credentials_refresh_to_themselves() {
        let provider = StaticCredentials::new(Credentials::new("AK", "SK"));
        let first = provider.credentials().await.expect("static");
        let again = provider.refresh(&first).await.expect("static");
        assert!(Arc::ptr_eq(&first, &again));
    }

    #[test]
    fn parses_key_pair_without_token() {
        let creds =
            parse_credentials_json(r#"{"access_key_id":"AK","secret_access_key":"SK"}"#).unwrap();
        assert_eq!(creds, Credentials::new("AK", "SK"));
    }

    #[test]
    fn parses_sts_token_and_ignores_other_fields() {
        let creds = parse_credentials_json(
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
        let creds = parse_credentials_json(
            r#"{"access_key_id":"AK","secret_access_key":"SK","security_token":""}"#,
        )
        .unwrap();
        assert_eq!(creds.security_token, None);
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse_credentials_json(r#"{"access_key_id":"AK"}"#).unwrap_err();
        assert!(err.contains("secret_access_key"), "{err}");
        assert!(!err.contains("AK\""), "{err}");
        let err = parse_credentials_json("{}").unwrap_err();
        assert!(err.contains("access_key_id, secret_access_key"), "{err}");
    }

    #[test]
    fn bad_json_error_does_not_quote_the_value() {
        let err = parse_credentials_json("TOPSECRETVALUE").unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        assert!(!err.contains("TOPSECRET"), "{err}");
        let err = parse_credentials_json(r#"{"access_key_id":"AK","secret_access_key":12345678}"#)
            .unwrap_err();
        assert!(
            err.contains("secret_access_key") && !err.contains("12345678"),
            "{err}"
        );
        let err = parse_credentials_json(r#"["TOPSECRET"]"#).unwrap_err();
        assert!(!err.contains("TOPSECRET"), "{err}");
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
