//! OSS credentials from Secrets Manager (moto): cached, refreshed once for many callers, and
//! failing with errors that name the secret but never show its value.

use std::sync::Arc;

use testkit::MotoServer;
use transfer::oss::{Credentials, CredentialsErrorKind, ProvideCredentials};
use transfer::secrets::SecretsManagerCredentials;

async fn client(moto: &MotoServer) -> aws_sdk_secretsmanager::Client {
    let sdk = moto.sdk_config().await;
    aws_sdk_secretsmanager::Client::new(&sdk)
}

async fn create(client: &aws_sdk_secretsmanager::Client, id: &str, value: &str) {
    client
        .create_secret()
        .name(id)
        .secret_string(value)
        .send()
        .await
        .expect("secret created");
}

#[tokio::test]
async fn credentials_are_cached_and_concurrent_refreshes_share_one_read() {
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap();
    let client = client(&moto).await;
    create(
        &client,
        "rotating",
        r#"{"access_key_id":"A","secret_access_key":"a","security_token":"t"}"#,
    )
    .await;
    let secret = Arc::new(SecretsManagerCredentials::new(client.clone(), "rotating"));
    let first = secret.credentials().await.expect("fetched");
    assert_eq!(*first, Credentials::new("A", "a").with_security_token("t"));

    client
        .put_secret_value()
        .secret_id("rotating")
        .secret_string(r#"{"access_key_id":"B","secret_access_key":"b"}"#)
        .send()
        .await
        .expect("rotated");
    let cached = secret.credentials().await.expect("cached");
    assert!(Arc::ptr_eq(&cached, &first), "no re-read without a refresh");

    // Eight requests see the old key rejected at once: one read serves them all.
    let tasks = (0..8).map(|_| {
        let secret = secret.clone();
        let rejected = first.clone();
        tokio::spawn(async move { secret.refresh(&rejected).await })
    });
    let refreshed: Vec<Arc<Credentials>> = futures_join(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("refreshed"))
        .collect();
    for fetched in &refreshed {
        assert_eq!(**fetched, Credentials::new("B", "b"));
        assert!(Arc::ptr_eq(fetched, &refreshed[0]), "one read for all");
    }
    let current = secret.credentials().await.unwrap();
    assert!(Arc::ptr_eq(&current, &refreshed[0]));
    // Rejecting the new credentials reads the secret again.
    let again = secret.refresh(&current).await.unwrap();
    assert!(!Arc::ptr_eq(&again, &current));
    assert_eq!(*again, Credentials::new("B", "b"));
}

#[tokio::test]
async fn missing_and_malformed_secrets_fail_permanently_naming_the_secret() {
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap();
    let client = client(&moto).await;

    let missing = SecretsManagerCredentials::new(client.clone(), "no-such-secret");
    let err = missing.credentials().await.expect_err("missing");
    assert_eq!(err.kind(), CredentialsErrorKind::NotFound);
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("no-such-secret"), "{err}");

    create(&client, "not-json", "LEAKED-VALUE-1").await;
    let err = SecretsManagerCredentials::new(client.clone(), "not-json")
        .credentials()
        .await
        .expect_err("not JSON");
    assert_eq!(err.kind(), CredentialsErrorKind::Malformed);
    let text = err.to_string();
    assert!(
        text.contains("not-json") && !text.contains("LEAKED-VALUE"),
        "{text}"
    );

    create(
        &client,
        "no-secret-key",
        r#"{"access_key_id":"LEAKED-VALUE-2"}"#,
    )
    .await;
    let err = SecretsManagerCredentials::new(client.clone(), "no-secret-key")
        .credentials()
        .await
        .expect_err("missing field");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("secret_access_key") && !text.contains("LEAKED-VALUE"),
        "{text}"
    );
}

/// Awaits every task, in order.
async fn futures_join<T>(handles: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}
