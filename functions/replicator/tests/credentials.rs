//! OSS credentials from Secrets Manager (moto): cached, refreshed once for many callers, and
//! failing with errors that name the secret but never show its value.

use std::sync::Arc;

use testkit::MotoServer;
use transfer::credentials::{CredentialsErrorKind, SecretCredentials};
use transfer::oss::Credentials;

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
    let secret = Arc::new(SecretCredentials::new(client.clone(), "rotating"));
    let first = secret.get().await.expect("fetched");
    assert_eq!(
        first.credentials,
        Credentials::new("A", "a").with_security_token("t")
    );
    assert_eq!(first.generation, 1);

    client
        .put_secret_value()
        .secret_id("rotating")
        .secret_string(r#"{"access_key_id":"B","secret_access_key":"b"}"#)
        .send()
        .await
        .expect("rotated");
    let cached = secret.get().await.expect("cached");
    assert_eq!(
        cached.credentials.access_key_id, "A",
        "no re-read without a refresh"
    );

    // Eight messages see the old key rejected at once: one read serves them all.
    let refreshes = (0..8).map(|_| {
        let secret = secret.clone();
        tokio::spawn(async move { secret.refresh(1).await })
    });
    for refresh in futures_join(refreshes).await {
        let fetched = refresh.expect("refreshed");
        assert_eq!(fetched.generation, 2);
        assert_eq!(fetched.credentials, Credentials::new("B", "b"));
    }
    assert_eq!(secret.get().await.unwrap().generation, 2);
    assert_eq!(secret.refresh(2).await.unwrap().generation, 3);
}

#[tokio::test]
async fn missing_and_malformed_secrets_fail_permanently_naming_the_secret() {
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap();
    let client = client(&moto).await;

    let missing = SecretCredentials::new(client.clone(), "no-such-secret");
    let err = missing.get().await.expect_err("missing");
    assert_eq!(err.kind(), CredentialsErrorKind::NotFound);
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("no-such-secret"), "{err}");

    create(&client, "not-json", "LEAKED-VALUE-1").await;
    let err = SecretCredentials::new(client.clone(), "not-json")
        .get()
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
    let err = SecretCredentials::new(client.clone(), "no-secret-key")
        .get()
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
