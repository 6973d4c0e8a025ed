//! Authentication, addressing, object reads and writes, listings and bad requests, over real
//! sockets with V4-signed requests.

mod common;

use common::{BUCKET, Client, Req, error_code, header, start, xml_field, xml_fields};
use md5::{Digest, Md5};
use transfer::oss::Credentials;

#[tokio::test]
async fn accepts_signed_put_and_serves_it_back_with_oss_headers() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let body = b"hello, oss".to_vec();
    let put = client.put("dir/a b+c.txt", body.clone()).await;
    assert_eq!(put.status(), 200);
    let expected_etag = format!("\"{}\"", hex::encode_upper(Md5::digest(&body)));
    assert_eq!(header(&put, "etag"), expected_etag);
    assert_eq!(
        header(&put, "x-oss-hash-crc64ecma"),
        transfer::crc64::checksum(&body).to_string()
    );
    assert!(!header(&put, "x-oss-request-id").is_empty());

    let get = client.get("dir/a b+c.txt").await;
    assert_eq!(get.status(), 200);
    assert_eq!(header(&get, "etag"), expected_etag);
    assert_eq!(header(&get, "x-oss-object-type"), "Normal");
    assert_eq!(header(&get, "x-oss-storage-class"), "Standard");
    assert!(!header(&get, "last-modified").is_empty());
    assert_eq!(get.bytes().await.expect("body").as_ref(), body.as_slice());
    assert_eq!(emulator.stats().count("PutObject"), 1);
    assert_eq!(emulator.stats().count("GetObject"), 1);
}

#[tokio::test]
async fn rejects_request_signed_with_wrong_secret() {
    let emulator = start().await;
    let client = Client::with(&emulator, Credentials::new(common::AK, "wrong"));
    let response = client.put("k", "x").await;
    assert_eq!(response.status(), 403);
    assert!(!header(&response, "x-oss-ec").is_empty());
    let text = response.text().await.expect("body");
    assert_eq!(
        xml_field(&text, "Code").as_deref(),
        Some("SignatureDoesNotMatch")
    );
    for field in ["Message", "RequestId", "HostId", "EC"] {
        assert!(
            xml_field(&text, field).is_some(),
            "{field} missing in {text}"
        );
    }
}

#[tokio::test]
async fn rejects_unknown_access_key() {
    let emulator = start().await;
    let client = Client::with(&emulator, Credentials::new("nobody", common::SK));
    let response = client.get("k").await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "InvalidAccessKeyId");
}

#[tokio::test]
async fn rejects_anonymous_request() {
    let emulator = start().await;
    let response = reqwest::get(format!("{}/{BUCKET}/k", emulator.endpoint()))
        .await
        .expect("answered");
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "AccessDenied");
}

#[tokio::test]
async fn rejects_tampered_query_after_signing() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let req = Req::new("GET", None).q("list-type", "2").q("prefix", "a");
    let headers = client.signed_headers(&req);
    let url = format!("{}/{BUCKET}/?list-type=2&prefix=b", emulator.endpoint());
    let response = client
        .http
        .get(url)
        .headers(headers)
        .send()
        .await
        .expect("answered");
    assert_eq!(error_code(response).await, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn sts_credentials_require_their_token() {
    let emulator = oss_emulator::Emulator::start(
        common::config()
            .credentials(Credentials::new("sts-ak", "sts-sk").with_security_token("tok")),
    )
    .await
    .expect("starts");
    let good = Client::with(
        &emulator,
        Credentials::new("sts-ak", "sts-sk").with_security_token("tok"),
    );
    assert_eq!(good.put("k", "v").await.status(), 200);
    let missing = Client::with(&emulator, Credentials::new("sts-ak", "sts-sk"));
    assert_eq!(
        error_code(missing.get("k").await).await,
        "InvalidSecurityToken"
    );
    let wrong = Client::with(
        &emulator,
        Credentials::new("sts-ak", "sts-sk").with_security_token("other"),
    );
    assert_eq!(
        error_code(wrong.get("k").await).await,
        "InvalidSecurityToken"
    );
}

#[tokio::test]
async fn rotated_credentials_replace_the_old_ones() {
    let emulator = start().await;
    emulator.set_credentials(vec![Credentials::new("new-ak", "new-sk")]);
    assert_eq!(
        error_code(Client::new(&emulator).get("k").await).await,
        "InvalidAccessKeyId"
    );
    let rotated = Client::with(&emulator, Credentials::new("new-ak", "new-sk"));
    assert_eq!(rotated.put("k", "v").await.status(), 200);
}

#[tokio::test]
async fn serves_virtual_hosted_addressing() {
    let emulator = start().await;
    let client = Client::virtual_hosted(&emulator);
    assert_eq!(client.put("vh/key.txt", "virtual").await.status(), 200);
    let get = Client::new(&emulator).get("vh/key.txt").await;
    assert_eq!(get.text().await.expect("body"), "virtual");
    let list = client.send(Req::new("GET", None).q("list-type", "2")).await;
    assert_eq!(
        xml_fields(&list.text().await.expect("body"), "Key"),
        vec!["vh/key.txt"]
    );
}

#[tokio::test]
async fn range_requests_return_206_and_unsatisfiable_ones_416() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    client.put("r", body.clone()).await;
    let partial = client
        .send(Req::new("GET", Some("r")).h("range", "bytes=10-19"))
        .await;
    assert_eq!(partial.status(), 206);
    assert_eq!(header(&partial, "content-range"), "bytes 10-19/1000");
    assert_eq!(partial.bytes().await.expect("body").as_ref(), &body[10..20]);
    let suffix = client
        .send(Req::new("GET", Some("r")).h("range", "bytes=-5"))
        .await;
    assert_eq!(suffix.bytes().await.expect("body").as_ref(), &body[995..]);
    let beyond = client
        .send(Req::new("GET", Some("r")).h("range", "bytes=1000-"))
        .await;
    assert_eq!(beyond.status(), 416);
    assert_eq!(error_code(beyond).await, "InvalidRange");
}

#[tokio::test]
async fn conditional_reads_answer_412_and_304() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let etag = header(&client.put("c", "data").await, "etag");
    let ok = client
        .send(Req::new("GET", Some("c")).h("if-match", &etag))
        .await;
    assert_eq!(ok.status(), 200);
    let failed = client
        .send(Req::new("GET", Some("c")).h("if-match", "\"0000\""))
        .await;
    assert_eq!(failed.status(), 412);
    assert_eq!(error_code(failed).await, "PreconditionFailed");
    let unchanged = client
        .send(Req::new("GET", Some("c")).h("if-none-match", &etag))
        .await;
    assert_eq!(unchanged.status(), 304);
}

#[tokio::test]
async fn content_headers_user_meta_and_storage_class_round_trip() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let put = client
        .send(
            Req::new("PUT", Some("m"))
                .h("content-type", "text/csv")
                .h("content-encoding", "gzip")
                .h("content-disposition", "inline")
                .h("content-language", "en")
                .h("cache-control", "no-cache")
                .h("expires", "Thu, 01 Jan 2037 00:00:00 GMT")
                .h("x-oss-meta-color", "blue")
                .h("x-oss-storage-class", "IA")
                .body("a,b"),
        )
        .await;
    assert_eq!(put.status(), 200);
    let head = client.send(Req::new("HEAD", Some("m"))).await;
    for (name, value) in [
        ("content-type", "text/csv"),
        ("content-encoding", "gzip"),
        ("content-disposition", "inline"),
        ("content-language", "en"),
        ("cache-control", "no-cache"),
        ("expires", "Thu, 01 Jan 2037 00:00:00 GMT"),
        ("x-oss-meta-color", "blue"),
        ("x-oss-storage-class", "IA"),
        ("content-length", "3"),
    ] {
        assert_eq!(header(&head, name), value, "{name}");
    }
}

#[tokio::test]
async fn bad_requests_get_oss_error_codes() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let long_key = "k".repeat(1024);
    assert_eq!(
        error_code(client.put(&long_key, "x").await).await,
        "KeyTooLong"
    );
    assert_eq!(client.put(&"k".repeat(1023), "x").await.status(), 200);
    assert_eq!(error_code(client.get("absent").await).await, "NoSuchKey");
    let malformed = client
        .send(
            Req::new("POST", None)
                .q("delete", "")
                .body("<Delete><Object>"),
        )
        .await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(error_code(malformed).await, "MalformedXML");
    let bad_class = client
        .send(
            Req::new("PUT", Some("x"))
                .h("x-oss-storage-class", "Glacier")
                .body("x"),
        )
        .await;
    assert_eq!(error_code(bad_class).await, "InvalidArgument");

    // Invalid UTF-8 in the path and a missing Content-Length need a hand-built request.
    let req = Req::new("GET", Some("x"));
    let headers = client.signed_headers(&req);
    let raw = client
        .http
        .get(format!("{}/{BUCKET}/%FF%FE", emulator.endpoint()))
        .headers(headers)
        .send()
        .await
        .expect("answered");
    assert_eq!(raw.status(), 400);
    assert_eq!(error_code(raw).await, "InvalidObjectName");

    let req = Req::new("PUT", Some("chunked"));
    let headers = client.signed_headers(&req);
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"abc",
    ))]);
    let chunked = client
        .http
        .put(client.url(Some("chunked"), &[]))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("answered");
    assert_eq!(chunked.status(), 411);
    assert_eq!(error_code(chunked).await, "MissingContentLength");

    let other = reqwest::Client::new()
        .get(format!("{}/no-such-bucket/k", emulator.endpoint()))
        .headers(client.signed_headers(&Req::new("GET", Some("k"))))
        .send()
        .await
        .expect("answered");
    assert_eq!(other.status(), 403, "signature covers the bucket name");
}

#[tokio::test]
async fn unknown_bucket_is_no_such_bucket() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let mut req = Req::new("GET", Some("k"));
    req.method = "GET";
    let mut headers = http::HeaderMap::new();
    transfer::oss::OssSigner::new("cn-hangzhou").sign(
        &Credentials::new(common::AK, common::SK),
        transfer::oss::signer::SignableRequest {
            method: "GET",
            bucket: Some("other-bucket"),
            key: Some("k"),
            query: &[],
            headers: &http::HeaderMap::new(),
        },
        &mut headers,
        &[],
        chrono::Utc::now(),
    );
    let response = client
        .http
        .get(format!("{}/other-bucket/k", emulator.endpoint()))
        .headers(headers)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "NoSuchBucket");
}

#[tokio::test]
async fn list_v2_paginates_with_continuation_tokens() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let keys: Vec<String> = (0..25).map(|i| format!("p/{i:02}")).collect();
    for key in &keys {
        client.put(key, "x").await;
    }
    client.put("q/outside", "x").await;
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = Req::new("GET", None)
            .q("list-type", "2")
            .q("prefix", "p/")
            .q("max-keys", "10");
        if let Some(t) = &token {
            req = req.q("continuation-token", t);
        }
        let text = client.send(req).await.text().await.expect("body");
        pages += 1;
        listed.extend(xml_fields(&text, "Key"));
        assert_eq!(
            xml_fields(&text, "Size").len(),
            xml_fields(&text, "Key").len()
        );
        if xml_field(&text, "IsTruncated").as_deref() == Some("true") {
            token = xml_field(&text, "NextContinuationToken");
        } else {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(listed, keys);

    let after = client
        .send(
            Req::new("GET", None)
                .q("list-type", "2")
                .q("start-after", "p/22"),
        )
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(xml_fields(&after, "Key"), vec!["p/23", "p/24", "q/outside"]);
}

#[tokio::test]
async fn list_v2_url_encodes_keys_when_asked() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let odd = ["a b", "plus+", "pct%41", "ü/x", "amp&<"];
    for key in odd {
        assert_eq!(client.put(key, "x").await.status(), 200);
    }
    let text = client
        .send(
            Req::new("GET", None)
                .q("list-type", "2")
                .q("encoding-type", "url"),
        )
        .await
        .text()
        .await
        .expect("body");
    let keys = xml_fields(&text, "Key");
    assert!(keys.contains(&"a%20b".to_owned()), "{keys:?}");
    assert!(keys.contains(&"plus%2B".to_owned()), "{keys:?}");
    assert!(keys.contains(&"pct%2541".to_owned()), "{keys:?}");
    assert!(keys.contains(&"%C3%BC/x".to_owned()), "{keys:?}");
    let decoded: Vec<String> = keys
        .iter()
        .map(|k| {
            percent_encoding::percent_decode_str(k)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let mut expected: Vec<String> = odd.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(decoded, expected);
}

#[tokio::test]
async fn list_with_delimiter_groups_common_prefixes_across_pages() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    for key in ["a/1", "a/2", "a/3", "b/1", "c", "d/1"] {
        client.put(key, "x").await;
    }
    let first = client
        .send(
            Req::new("GET", None)
                .q("list-type", "2")
                .q("delimiter", "/")
                .q("max-keys", "2"),
        )
        .await
        .text()
        .await
        .expect("body");
    let prefixes = |t: &str| {
        t.split("<CommonPrefixes>")
            .skip(1)
            .filter_map(|s| xml_field(s, "Prefix"))
            .collect::<Vec<_>>()
    };
    assert_eq!(prefixes(&first), vec!["a/", "b/"]);
    let token = xml_field(&first, "NextContinuationToken").expect("truncated");
    let second = client
        .send(
            Req::new("GET", None)
                .q("list-type", "2")
                .q("delimiter", "/")
                .q("max-keys", "2")
                .q("continuation-token", &token),
        )
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(xml_fields(&second, "Key"), vec!["c"]);
    assert_eq!(prefixes(&second), vec!["d/"]);
}

#[tokio::test]
async fn delete_removes_objects() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    client.put("x", "1").await;
    assert_eq!(
        client.send(Req::new("DELETE", Some("x"))).await.status(),
        204
    );
    assert_eq!(client.get("x").await.status(), 404);
    assert_eq!(
        client.send(Req::new("DELETE", Some("x"))).await.status(),
        204
    );
}
