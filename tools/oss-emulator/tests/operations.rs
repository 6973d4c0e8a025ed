//! Multipart, append, restore, symlink, faults, stats, the admin API, trigger emulation and
//! data-dir persistence, over real sockets.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{BUCKET, Client, Req, error_code, header, start, xml_field};
use md5::{Digest, Md5};
use oss_emulator::{Emulator, Fault, FaultRule, NotificationTarget};

async fn initiate(client: &Client, key: &str) -> String {
    let text = client
        .send(Req::new("POST", Some(key)).q("uploads", ""))
        .await
        .text()
        .await
        .expect("body");
    xml_field(&text, "UploadId").expect("upload id")
}

async fn upload_part(
    client: &Client,
    key: &str,
    id: &str,
    n: &str,
    data: Vec<u8>,
) -> reqwest::Response {
    client
        .send(
            Req::new("PUT", Some(key))
                .q("partNumber", n)
                .q("uploadId", id)
                .body(data),
        )
        .await
}

fn complete_xml(parts: &[(u32, &str)]) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        let _ = write!(
            xml,
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        );
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

#[tokio::test]
async fn multipart_upload_assembles_parts_with_dash_n_etag_and_combined_crc() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let id = initiate(&client, "mp").await;
    let part1: Vec<u8> = (0..100 * 1024u32)
        .map(|i| (i % 251).to_le_bytes()[0])
        .collect();
    let part2 = b"tail".to_vec();
    let e1 = header(
        &upload_part(&client, "mp", &id, "1", part1.clone()).await,
        "etag",
    );
    let r2 = upload_part(&client, "mp", &id, "2", part2.clone()).await;
    assert_eq!(
        header(&r2, "x-oss-hash-crc64ecma"),
        transfer::crc64::checksum(&part2).to_string()
    );
    let e2 = header(&r2, "etag");
    let done = client
        .send(
            Req::new("POST", Some("mp"))
                .q("uploadId", &id)
                .body(complete_xml(&[(1, &e1), (2, &e2)])),
        )
        .await;
    assert_eq!(done.status(), 200);
    let whole = [part1.clone(), part2.clone()].concat();
    assert_eq!(
        header(&done, "x-oss-hash-crc64ecma"),
        transfer::crc64::checksum(&whole).to_string()
    );
    let mut md5s = Md5::new();
    md5s.update(Md5::digest(&part1));
    md5s.update(Md5::digest(&part2));
    let expected = format!("\"{}-2\"", hex::encode_upper(md5s.finalize()));
    let get = client.get("mp").await;
    assert_eq!(header(&get, "etag"), expected);
    assert_eq!(header(&get, "x-oss-object-type"), "Multipart");
    assert_eq!(get.bytes().await.expect("body").as_ref(), whole.as_slice());
    assert_eq!(emulator.pending_uploads(BUCKET), 0);
}

#[tokio::test]
async fn multipart_rules_reject_small_parts_bad_numbers_order_and_unknown_uploads() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let id = initiate(&client, "mp").await;
    for bad in ["0", "10001", "x"] {
        let response = upload_part(&client, "mp", &id, bad, b"x".to_vec()).await;
        assert_eq!(response.status(), 400, "part {bad}");
        assert_eq!(error_code(response).await, "InvalidArgument");
    }
    let e1 = header(
        &upload_part(&client, "mp", &id, "1", vec![1; 10]).await,
        "etag",
    );
    let e2 = header(
        &upload_part(&client, "mp", &id, "2", vec![2; 10]).await,
        "etag",
    );
    let complete =
        |body: String| client.send(Req::new("POST", Some("mp")).q("uploadId", &id).body(body));
    assert_eq!(
        error_code(complete(complete_xml(&[(1, &e1), (2, &e2)])).await).await,
        "EntityTooSmall"
    );
    assert_eq!(
        error_code(complete(complete_xml(&[(2, &e2), (1, &e1)])).await).await,
        "InvalidPartOrder"
    );
    assert_eq!(
        error_code(complete(complete_xml(&[(1, "\"00\"")])).await).await,
        "InvalidPart"
    );
    assert_eq!(
        error_code(complete("<CompleteMultipartUpload><Part>".into()).await).await,
        "MalformedXML"
    );
    // A single small part is allowed: it is the last one.
    assert_eq!(complete(complete_xml(&[(1, &e1)])).await.status(), 200);
    let again = upload_part(&client, "mp", &id, "3", b"x".to_vec()).await;
    assert_eq!(again.status(), 404);
    assert_eq!(error_code(again).await, "NoSuchUpload");
}

#[tokio::test]
async fn abort_removes_upload_and_list_parts_reports_parts() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let id = initiate(&client, "mp").await;
    upload_part(&client, "mp", &id, "1", vec![0; 5]).await;
    upload_part(&client, "mp", &id, "3", vec![0; 7]).await;
    let parts = client
        .send(Req::new("GET", Some("mp")).q("uploadId", &id))
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(common::xml_fields(&parts, "PartNumber"), vec!["1", "3"]);
    assert_eq!(common::xml_fields(&parts, "Size"), vec!["5", "7"]);
    assert_eq!(emulator.pending_uploads(BUCKET), 1);
    assert_eq!(
        client
            .send(Req::new("DELETE", Some("mp")).q("uploadId", &id))
            .await
            .status(),
        204
    );
    assert_eq!(emulator.pending_uploads(BUCKET), 0);
}

#[tokio::test]
async fn append_checks_position_and_reports_next_position() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let append = |pos: &str, body: &'static str| {
        client.send(
            Req::new("POST", Some("log"))
                .q("append", "")
                .q("position", pos)
                .body(body),
        )
    };
    let first = append("0", "abc").await;
    assert_eq!(header(&first, "x-oss-next-append-position"), "3");
    let second = append("3", "def").await;
    assert_eq!(header(&second, "x-oss-next-append-position"), "6");
    assert_eq!(
        header(&second, "x-oss-hash-crc64ecma"),
        transfer::crc64::checksum(b"abcdef").to_string()
    );
    let wrong = append("2", "x").await;
    assert_eq!(wrong.status(), 409);
    assert_eq!(header(&wrong, "x-oss-next-append-position"), "6");
    assert_eq!(error_code(wrong).await, "PositionNotEqualToLength");
    let get = client.get("log").await;
    assert_eq!(header(&get, "x-oss-object-type"), "Appendable");
    assert_eq!(get.text().await.expect("body"), "abcdef");
    client.put("normal", "x").await;
    let not_appendable = client
        .send(
            Req::new("POST", Some("normal"))
                .q("append", "")
                .q("position", "1")
                .body("y"),
        )
        .await;
    assert_eq!(error_code(not_appendable).await, "ObjectNotAppendable");
}

#[tokio::test]
async fn archived_object_is_readable_only_after_restore_delay() {
    let emulator = Emulator::start(common::config().restore_delay(Duration::from_millis(300)))
        .await
        .expect("starts");
    let client = Client::new(&emulator);
    client
        .send(
            Req::new("PUT", Some("cold"))
                .h("x-oss-storage-class", "ColdArchive")
                .body("frozen"),
        )
        .await;
    let before = client.get("cold").await;
    assert_eq!(before.status(), 403);
    assert_eq!(error_code(before).await, "InvalidObjectState");
    let restore = || client.send(Req::new("POST", Some("cold")).q("restore", ""));
    assert_eq!(restore().await.status(), 202);
    let busy = restore().await;
    assert_eq!(busy.status(), 409);
    assert_eq!(error_code(busy).await, "RestoreAlreadyInProgress");
    let head = client.send(Req::new("HEAD", Some("cold"))).await;
    assert_eq!(header(&head, "x-oss-restore"), "ongoing-request=\"true\"");
    assert_eq!(client.get("cold").await.status(), 403);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let head = client.send(Req::new("HEAD", Some("cold"))).await;
    assert!(header(&head, "x-oss-restore").starts_with("ongoing-request=\"false\", expiry-date="));
    let after = client.get("cold").await;
    assert_eq!(after.status(), 200);
    assert_eq!(after.text().await.expect("body"), "frozen");
}

#[tokio::test]
async fn symlink_serves_target_data_with_symlink_type() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let etag = header(&client.put("target", "pointed").await, "etag");
    let put = client
        .send(
            Req::new("PUT", Some("link"))
                .q("symlink", "")
                .h("x-oss-symlink-target", "target"),
        )
        .await;
    assert_eq!(put.status(), 200);
    let get = client.get("link").await;
    assert_eq!(header(&get, "x-oss-object-type"), "Symlink");
    assert_eq!(header(&get, "etag"), etag);
    assert_eq!(get.text().await.expect("body"), "pointed");
    let read = client
        .send(Req::new("GET", Some("link")).q("symlink", ""))
        .await;
    assert_eq!(header(&read, "x-oss-symlink-target"), "target");
    client.send(Req::new("DELETE", Some("target"))).await;
    assert_eq!(
        error_code(client.get("link").await).await,
        "SymlinkTargetNotExist"
    );
}

#[tokio::test]
async fn error_fault_hits_next_n_requests_then_is_spent() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    client.put("k", "v").await;
    emulator.set_faults(vec![
        FaultRule::new(
            "GetObject",
            Fault::Error {
                status: 503,
                code: "ServerBusy".into(),
                qos_delay_ms: Some(25),
            },
        )
        .times(2),
    ]);
    for _ in 0..2 {
        let failed = client.get("k").await;
        assert_eq!(failed.status(), 503);
        assert_eq!(header(&failed, "x-oss-qos-delay-time"), "25");
        assert_eq!(error_code(failed).await, "ServerBusy");
    }
    assert_eq!(client.get("k").await.status(), 200);
    assert_eq!(emulator.stats().faults_injected, 2);
    assert!(emulator.faults().is_empty());
}

#[tokio::test]
async fn truncate_fault_closes_connection_mid_body() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    client.put("big", vec![7u8; 200_000]).await;
    emulator.set_faults(vec![
        FaultRule::new("GetObject", Fault::Truncate { after_bytes: 1000 }).times(1),
    ]);
    let response = client.get("big").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "200000");
    assert!(response.bytes().await.is_err(), "body must end early");
    assert_eq!(
        client
            .get("big")
            .await
            .bytes()
            .await
            .expect("whole body")
            .len(),
        200_000
    );
}

#[tokio::test]
async fn reset_fault_drops_connection_without_answer() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    client.put("k", "v").await;
    emulator.set_faults(vec![
        FaultRule::new("*", Fault::Reset).key_prefix("k").times(1),
    ]);
    assert!(client.try_send(Req::new("GET", Some("k"))).await.is_err());
    assert_eq!(client.get("k").await.status(), 200);
}

#[tokio::test]
async fn lose_answer_fault_serves_the_request_but_drops_the_answer() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    emulator.set_faults(vec![
        FaultRule::new("PutObject", Fault::LoseAnswer).times(1),
    ]);
    let put = Req::new("PUT", Some("k")).body("written");
    assert!(client.try_send(put).await.is_err(), "no answer arrives");
    let get = client.get("k").await;
    assert_eq!(get.status(), 200, "the PUT took effect");
    assert_eq!(get.bytes().await.expect("body").as_ref(), b"written");
}

#[tokio::test]
async fn replace_fault_changes_etag_so_if_match_fails() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let etag = header(&client.put("k", "original").await, "etag");
    emulator.set_faults(vec![FaultRule::new("HeadObject", Fault::Replace).times(1)]);
    let head = client.send(Req::new("HEAD", Some("k"))).await;
    assert_eq!(header(&head, "etag"), etag);
    let pinned = client
        .send(Req::new("GET", Some("k")).h("if-match", &etag))
        .await;
    assert_eq!(pinned.status(), 412);
    let now = client.get("k").await;
    assert_ne!(header(&now, "etag"), etag);
    assert_eq!(now.bytes().await.expect("body").len(), "original".len());
}

#[tokio::test]
async fn crc_mismatch_fault_serves_wrong_checksum() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let good = header(&client.put("k", "data").await, "x-oss-hash-crc64ecma");
    emulator.set_faults(vec![
        FaultRule::new("GetObject", Fault::CrcMismatch).times(1),
    ]);
    assert_ne!(header(&client.get("k").await, "x-oss-hash-crc64ecma"), good);
    assert_eq!(header(&client.get("k").await, "x-oss-hash-crc64ecma"), good);
}

#[tokio::test]
async fn latency_fault_delays_the_answer() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    client.put("k", "v").await;
    emulator.set_faults(vec![
        FaultRule::new("GetObject", Fault::Latency { ms: 300 }).times(1),
    ]);
    let started = std::time::Instant::now();
    assert_eq!(client.get("k").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn slow_body_fault_paces_the_download() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    let body = "x".repeat(256 * 1024);
    client.put("slow/k", body.as_str()).await;
    emulator.set_faults(vec![
        FaultRule::new(
            "GetObject",
            Fault::SlowBody {
                bytes_per_second: 512 * 1024,
            },
        )
        .key_prefix("slow/"),
    ]);
    let started = std::time::Instant::now();
    let response = client.get("slow/k").await;
    assert_eq!(response.status(), 200);
    let got = response.bytes().await.expect("the whole body");
    assert_eq!(got.len(), body.len(), "slow, not short");
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "256 KiB at 512 KiB/s took only {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn admin_api_reports_stats_sets_faults_and_resets() {
    let emulator = start().await;
    let client = Client::new(&emulator);
    client.put("k", "hello").await;
    client.get("k").await;
    let admin = reqwest::Client::new();
    let base = format!("{}/_emulator", emulator.endpoint());
    let stats = admin
        .get(format!("{base}/stats"))
        .send()
        .await
        .expect("stats")
        .text()
        .await
        .expect("body");
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("json");
    assert_eq!(stats["requests"]["PutObject"], 1);
    let uploads = format!("{base}/uploads/{BUCKET}");
    let pending = || async {
        let body = admin.get(&uploads).send().await.expect("uploads");
        let text = body.text().await.expect("body");
        let answer: serde_json::Value = serde_json::from_str(&text).expect("json");
        answer["pending"].clone()
    };
    assert_eq!(pending().await, 0);
    initiate(&client, "in-progress").await;
    assert_eq!(pending().await, 1);
    let missing = admin
        .get(format!("{base}/uploads/no-such-bucket"))
        .send()
        .await
        .expect("answered");
    assert_eq!(missing.status(), 404);
    assert_eq!(stats["requests"]["GetObject"], 1);
    assert_eq!(stats["bytes_in"], 5);
    let rules = r#"[{"op":"PutObject","times":1,"fault":{"kind":"error","status":500,"code":"InternalError"}}]"#;
    assert_eq!(
        admin
            .put(format!("{base}/faults"))
            .body(rules)
            .send()
            .await
            .expect("faults")
            .status(),
        200
    );
    let failed = client.put("k2", "x").await;
    assert_eq!(failed.status(), 500);
    assert_eq!(error_code(failed).await, "InternalError");
    let bad = admin
        .put(format!("{base}/faults"))
        .body("{not json")
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status(), 400);
    admin
        .post(format!("{base}/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(emulator.stats().total_requests(), 0);
    assert_eq!(client.get("k").await.status(), 404);
    let creds = r#"[{"access_key_id":"ak2","access_key_secret":"sk2"}]"#;
    admin
        .put(format!("{base}/credentials"))
        .body(creds)
        .send()
        .await
        .expect("creds");
    assert_eq!(
        error_code(client.get("k").await).await,
        "InvalidAccessKeyId"
    );
}

/// A trigger receiver that fails the first `failures` deliveries the way FC reports errors.
async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<(serde_json::Value, String)>>>) {
    let seen: Arc<Mutex<Vec<(serde_json::Value, String)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/invoke",
        axum::routing::post(move |headers: http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let mut seen = record.lock().expect("lock");
                let id = headers
                    .get("x-fc-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                seen.push((serde_json::from_str(&body).expect("json"), id));
                if seen.len() <= failures {
                    (http::StatusCode::NOT_FOUND, [("x-fc-status", "404")])
                } else {
                    (http::StatusCode::OK, [("x-fc-status", "200")])
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/invoke", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached in time");
}

#[tokio::test]
async fn trigger_is_retried_until_the_function_accepts_it() {
    let (url, seen) = receiver(2).await;
    let emulator = Emulator::start(
        common::config()
            .notification(NotificationTarget::new(url).events(["oss:ObjectCreated:PutObject"]))
            .trigger_retry_backoff(Duration::from_millis(10)),
    )
    .await
    .expect("starts");
    let client = Client::new(&emulator);
    let body = b"event me";
    client.put("dir/a b.txt", body.to_vec()).await;
    wait_for(|| emulator.stats().notifications_delivered == 1).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3);
    assert!(!seen[0].1.is_empty(), "x-fc-request-id is set");
    let event = &seen[2].0["events"][0];
    assert_eq!(event["eventName"], "ObjectCreated:PutObject");
    assert_eq!(event["eventSource"], "acs:oss");
    assert_eq!(event["oss"]["bucket"]["name"], BUCKET);
    assert!(event["oss"]["bucket"]["ownerIdentity"].is_string());
    assert_eq!(event["oss"]["object"]["key"], "dir/a b.txt");
    assert_eq!(event["oss"]["object"]["size"], body.len());
    assert_eq!(
        event["oss"]["object"]["eTag"],
        hex::encode_upper(Md5::digest(body))
    );
    assert_eq!(event["region"], "cn-hangzhou");
    let time = event["eventTime"].as_str().expect("time");
    assert!(time.ends_with('Z') && time.contains('.'), "{time}");
}

#[tokio::test]
async fn trigger_filters_by_event_prefix_and_suffix() {
    let (url, seen) = receiver(0).await;
    let emulator = Emulator::start(
        common::config().notification(
            NotificationTarget::new(url)
                .events(["oss:ObjectRemoved:DeleteObject", "oss:ObjectCreated:*"])
                .prefix("in/")
                .suffix(".jpg"),
        ),
    )
    .await
    .expect("starts");
    let client = Client::new(&emulator);
    client.put("out/a.jpg", "x").await;
    client.put("in/a.png", "x").await;
    client.put("in/a.jpg", "x").await;
    client.send(Req::new("DELETE", Some("in/a.jpg"))).await;
    wait_for(|| {
        let events: usize = seen
            .lock()
            .expect("lock")
            .iter()
            .map(|(v, _)| v["events"].as_array().map_or(0, Vec::len))
            .sum();
        events >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let names: Vec<String> = seen
        .lock()
        .expect("lock")
        .iter()
        .flat_map(|(v, _)| v["events"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            format!(
                "{} {}",
                e["eventName"].as_str().unwrap_or(""),
                e["oss"]["object"]["key"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "ObjectCreated:PutObject in/a.jpg",
            "ObjectRemoved:DeleteObject in/a.jpg"
        ]
    );
}

#[tokio::test]
async fn data_dir_keeps_objects_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let etag;
    {
        let emulator = Emulator::start(common::config().data_dir(dir.path()))
            .await
            .expect("starts");
        let client = Client::new(&emulator);
        etag = header(
            &client
                .send(
                    Req::new("PUT", Some("persist/ü.bin"))
                        .h("x-oss-meta-k", "v")
                        .body(body.clone()),
                )
                .await,
            "etag",
        );
        client.put("gone", "x").await;
        client.send(Req::new("DELETE", Some("gone"))).await;
        client.put("small", "tiny body").await;
        emulator.shutdown().await;
    }
    let emulator = Emulator::start(common::config().data_dir(dir.path()))
        .await
        .expect("restarts");
    let client = Client::new(&emulator);
    let get = client
        .send(Req::new("GET", Some("persist/ü.bin")).h("range", "bytes=1000-1999"))
        .await;
    assert_eq!(get.status(), 206);
    assert_eq!(header(&get, "etag"), etag);
    assert_eq!(header(&get, "x-oss-meta-k"), "v");
    assert_eq!(get.bytes().await.expect("body").as_ref(), &body[1000..2000]);
    // Whole objects from disk: read in one step when small, streamed when large.
    let whole = client.get("persist/ü.bin").await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.expect("body").as_ref(), &body[..]);
    let small = client.get("small").await;
    assert_eq!(small.bytes().await.expect("body").as_ref(), b"tiny body");
    assert_eq!(client.get("gone").await.status(), 404);
    assert_eq!(
        emulator.list_keys_direct(BUCKET),
        vec!["persist/ü.bin", "small"]
    );
}

#[tokio::test]
async fn direct_helpers_bypass_http() {
    let emulator = start().await;
    let info = emulator
        .put_object_direct(
            BUCKET,
            "seeded",
            b"seed".to_vec(),
            oss_emulator::PutOptions {
                storage_class: Some("Archive".into()),
                content_type: Some("text/plain".into()),
                user_meta: vec![("Who".into(), "me".into())],
                ..Default::default()
            },
        )
        .await
        .expect("put");
    assert_eq!(
        info.etag,
        format!("\"{}\"", hex::encode_upper(Md5::digest(b"seed")))
    );
    let client = Client::new(&emulator);
    let head = client.send(Req::new("HEAD", Some("seeded"))).await;
    assert_eq!(header(&head, "x-oss-storage-class"), "Archive");
    assert_eq!(header(&head, "x-oss-meta-who"), "me");
    let (data, _) = emulator
        .get_object_direct(BUCKET, "seeded")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(data.as_ref(), b"seed");
    assert_eq!(emulator.stats().total_requests(), 1);
}

#[tokio::test]
async fn stats_count_connections_apart_from_requests() {
    let emulator = start().await;
    let mut client = Client::new(&emulator);
    // One keep-alive client: every request after the first reuses its connection.
    for i in 0..5 {
        client.put(&format!("k{i}"), "x").await;
    }
    let stats = emulator.stats();
    assert_eq!(stats.count("PutObject"), 5);
    assert_eq!(stats.connections, 1);
    // A client that keeps no idle connection opens one per request.
    client.http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    for i in 0..3 {
        client.get(&format!("k{i}")).await;
    }
    let stats = emulator.stats();
    assert_eq!(stats.count("GetObject"), 3);
    assert_eq!(stats.connections, 4);
    emulator.reset_stats();
    assert_eq!(emulator.stats().connections, 0);
}
