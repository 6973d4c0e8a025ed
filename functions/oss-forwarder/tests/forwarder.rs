//! End-to-end tests of the real `bootstrap` binary: real sockets, moto's server as SQS, the
//! fixtures in `events/` as request bodies.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use testkit::MotoServer;
use testkit::process::{ManagedProcess, ReadyLine};
use transfer::message::{IncomingMessage, LegacyDefaults, parse_message};
use transfer::task::{ReplicationTask, TaskOp};

/// The AWS secret key the forwarder gets; moto does not check it, the tests check it is never logged.
const SECRET: &str = "aws-secret-must-not-be-logged";

/// A running `bootstrap` process (testkit's process manager: logged to a file, stopped on
/// drop).
struct Forwarder {
    process: ManagedProcess,
    base: String,
    _logs: tempfile::TempDir,
}

impl Forwarder {
    /// Starts the binary on port 0 with only `vars` (plus test credentials) in its environment.
    fn start(vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
        command
            .env_clear()
            .env("FC_CUSTOM_LISTEN_PORT", "0")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("LOG_LEVEL", "debug")
            .envs(vars.iter().copied());
        let logs = tempfile::tempdir().expect("a log directory");
        let (process, ready) = ManagedProcess::spawn_until(
            "bootstrap",
            command,
            &logs.path().join("bootstrap.log"),
            ReadyLine {
                prefix: "oss-forwarder listening on",
                timeout: Duration::from_secs(30),
            },
        )
        .unwrap_or_else(|e| panic!("bootstrap did not start: {e:#}"));
        let port = ready.rest.rsplit(':').next().expect("port").to_owned();
        Self {
            process,
            base: format!("http://127.0.0.1:{port}"),
            _logs: logs,
        }
    }

    /// Everything the process wrote so far (stdout and stderr lines).
    fn logs(&self) -> String {
        self.process.log_text()
    }

    /// The first log line containing all of `needles`, waiting up to 10 s for it to arrive.
    fn wait_for_line(&self, needles: &[&str]) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .logs()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_owned);
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POSTs `body` to `/invoke` as FC would; returns (status, x-fc-status, JSON body).
    async fn invoke(&self, request_id: &str, body: Vec<u8>) -> (u16, String, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/invoke", self.base))
            .header("x-fc-request-id", request_id)
            .header("x-fc-access-key-secret", "fc-secret-must-not-be-logged")
            .header("content-type", "application/octet-stream")
            .body(body)
            .timeout(Duration::from_mins(2))
            .send()
            .await
            .expect("invoke answers");
        let status = response.status().as_u16();
        let fc_status = response
            .headers()
            .get("x-fc-status")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("JSON response ({e}): {}", String::from_utf8_lossy(&bytes)));
        (status, fc_status, json)
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(testkit::repo_root().join("events").join(name))
        .unwrap_or_else(|e| panic!("read events/{name}: {e}"))
}

/// The keys of the events in a fixture, in order.
fn fixture_keys(name: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    value["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["oss"]["object"]["key"].as_str().unwrap().to_owned())
        .collect()
}

async fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&config)
}

/// moto plus a queue on it.
struct Queue {
    moto: MotoServer,
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    async fn create(name: &str) -> Self {
        let moto = MotoServer::start();
        let client = sqs_client(&moto.endpoint()).await;
        let mut request = client.create_queue().queue_name(name);
        if std::path::Path::new(name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("fifo"))
        {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let url = request
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        Self { moto, client, url }
    }

    /// Environment for a forwarder that sends to this queue.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SQS_QUEUE_URL", self.url.clone()),
            ("AWS_ENDPOINT_URL_SQS", self.moto.endpoint()),
        ]
    }

    fn forwarder(&self, extra: &[(&str, &str)]) -> Forwarder {
        let env = self.env();
        let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        vars.extend_from_slice(extra);
        Forwarder::start(&vars)
    }

    /// Drains the queue: every message body, with its system attributes.
    async fn drain(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// Drains the queue and parses each body as a versioned task.
    async fn tasks(&self) -> Vec<ReplicationTask> {
        self.drain()
            .await
            .iter()
            .map(|m| parse_task(m.body().unwrap()))
            .collect()
    }
}

fn parse_task(body: &str) -> ReplicationTask {
    let legacy = LegacyDefaults {
        region: "unused",
        bucket: "unused",
    };
    match parse_message(body.as_bytes(), legacy) {
        Ok(IncomingMessage::Task(task)) => task,
        other => panic!("not a versioned task: {other:?}: {body}"),
    }
}

fn keys(tasks: &[ReplicationTask]) -> BTreeSet<String> {
    tasks.iter().map(|t| t.source.key.clone()).collect()
}

fn assert_ok(response: &(u16, String, serde_json::Value)) {
    assert_eq!(response.0, 200, "{}", response.2);
    assert_eq!(response.1, "200", "x-fc-status");
    assert_eq!(response.2["status"], "ok", "{}", response.2);
}

fn assert_fc_error(response: &(u16, String, serde_json::Value), kind: &str) {
    assert_eq!(response.0, 404, "{}", response.2);
    assert_eq!(response.1, "404", "x-fc-status");
    assert_eq!(response.2["error"], kind, "{}", response.2);
}

#[tokio::test]
async fn forwards_single_put_as_versioned_task() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let response = forwarder.invoke("req-put-1", fixture("oss-put.json")).await;
    assert_ok(&response);
    assert_eq!(response.2["sent"], 1);

    let tasks = queue.tasks().await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(task.version, 1);
    assert_eq!(task.op, TaskOp::Put);
    assert_eq!(task.source.region, "cn-hangzhou");
    assert_eq!(task.source.bucket, "src-bucket");
    assert_eq!(task.source.key, "photos/2024/cat.jpg");
    assert_eq!(task.source.size, Some(29203));
    assert_eq!(
        task.source.etag.as_deref(),
        Some("B82349BAAFDA929351EF8F720FBB56D5")
    );
    assert_eq!(task.event_name.as_deref(), Some("ObjectCreated:PutObject"));
    assert_eq!(task.event_time.as_deref(), Some("2024-05-01T08:00:00.000Z"));
    assert!(task.request_id.is_some());

    let logs = forwarder.logs();
    assert!(
        logs.contains("FC Invoke Start RequestId: req-put-1"),
        "{logs}"
    );
    assert!(
        logs.contains("FC Invoke End RequestId: req-put-1"),
        "{logs}"
    );
    assert!(!logs.contains("fc-secret-must-not-be-logged"), "{logs}");
    assert!(!logs.contains(SECRET), "secret in logs: {logs}");
}

#[tokio::test]
async fn sends_batch_of_25_events_in_three_batch_calls() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let response = forwarder
        .invoke("req-batch", fixture("oss-batch.json"))
        .await;
    assert_ok(&response);
    assert_eq!(response.2["events"], 25);
    assert_eq!(response.2["sent"], 25);
    assert_eq!(response.2["batch_calls"], 3);

    let tasks = queue.tasks().await;
    assert_eq!(tasks.len(), 25);
    let expected: BTreeSet<String> = fixture_keys("oss-batch.json").into_iter().collect();
    assert_eq!(keys(&tasks), expected);
}

#[tokio::test]
async fn forwards_only_the_completed_multipart_upload() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let response = forwarder
        .invoke("req-mpu", fixture("oss-multipart.json"))
        .await;
    assert_ok(&response);
    assert_eq!(response.2["skipped_events"], 3);

    let tasks = queue.tasks().await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].source.key, "big/video.mp4");
    assert_eq!(
        tasks[0].event_name.as_deref(),
        Some("ObjectCreated:CompleteMultipartUpload")
    );
    assert_eq!(tasks[0].source.size, Some(16_777_216));
}

#[tokio::test]
async fn forwards_every_append() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    assert_ok(
        &forwarder
            .invoke("req-append", fixture("oss-append.json"))
            .await,
    );

    let mut sizes: Vec<u64> = queue
        .tasks()
        .await
        .iter()
        .inspect(|t| assert_eq!(t.source.key, "logs/app.log"))
        .map(|t| t.source.size.unwrap())
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [100, 250]);
}

#[tokio::test]
async fn ignores_deletes_by_default() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let response = forwarder
        .invoke("req-del", fixture("oss-delete.json"))
        .await;
    assert_ok(&response);
    assert_eq!(response.2["sent"], 0);
    assert_eq!(response.2["skipped_events"], 4);
    assert!(queue.drain().await.is_empty());
}

#[tokio::test]
async fn forwards_deletes_when_enabled() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[("FORWARD_DELETES", "true")]);
    assert_ok(
        &forwarder
            .invoke("req-del", fixture("oss-delete.json"))
            .await,
    );

    let tasks = queue.tasks().await;
    assert!(tasks.iter().all(|t| t.op == TaskOp::Delete), "{tasks:?}");
    // AbortMultipartUpload is never forwarded.
    let expected: BTreeSet<String> = ["old/a.txt", "old/b.txt", "old/c.txt"]
        .map(String::from)
        .into();
    assert_eq!(keys(&tasks), expected);
}

#[tokio::test]
async fn keeps_odd_keys_byte_exact() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    assert_ok(
        &forwarder
            .invoke("req-odd", fixture("oss-odd-keys.json"))
            .await,
    );

    let expected = fixture_keys("oss-odd-keys.json");
    assert!(expected.iter().any(|k| k.contains('%')) && expected.iter().any(|k| k.contains(' ')));
    let tasks = queue.tasks().await;
    assert_eq!(tasks.len(), expected.len());
    assert_eq!(keys(&tasks), expected.into_iter().collect());
}

/// A trigger body of one `ObjectCreated:PutObject` event per key, as OSS writes them.
fn events_body(keys: &[String]) -> Vec<u8> {
    let events: Vec<serde_json::Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            serde_json::json!({
                "eventName": "ObjectCreated:PutObject",
                "eventSource": "acs:oss",
                "eventTime": "2024-01-02T03:04:05.000Z",
                "eventVersion": "1.0",
                "region": "cn-hangzhou",
                "responseElements": {"requestId": format!("CORPUS{i}")},
                "oss": {
                    "bucket": {"name": "src", "arn": "acs:oss:cn-hangzhou:1:src"},
                    "object": {"key": key, "size": i, "eTag": format!("E{i}")},
                },
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "events": events })).expect("JSON")
}

#[tokio::test]
async fn every_odd_key_reaches_the_queue_byte_exact_raw_and_url_encoded() {
    // The corpus's keys that OSS can store (so a trigger can name them), sent as OSS writes
    // them and percent-encoded (which OSS does not document either way): each task carries its
    // event's key as received, and the replicator's candidates for an encoded one include the key.
    let keys: Vec<String> = testkit::odd_keys::corpus()
        .into_iter()
        .filter(|k| k.oss_refuses.is_none())
        .map(|k| k.key)
        .collect();
    assert!(keys.len() >= 200, "{}", keys.len());
    let encoded: Vec<String> = keys
        .iter()
        .map(|k| transfer::encoding::encode_query(k).to_string())
        .collect();
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    for (n, list) in [&keys, &encoded].into_iter().enumerate() {
        for (i, chunk) in list.chunks(10).enumerate() {
            assert_ok(
                &forwarder
                    .invoke(&format!("req-{n}-{i}"), events_body(chunk))
                    .await,
            );
        }
        let tasks = queue.tasks().await;
        let got: BTreeSet<String> = tasks.iter().map(|t| t.source.key.clone()).collect();
        assert_eq!(tasks.len(), list.len());
        assert_eq!(got, list.iter().cloned().collect::<BTreeSet<_>>());
        if n == 1 {
            for task in &tasks {
                let candidates = task.source.key_candidates();
                assert!(
                    candidates.iter().any(|c| keys.contains(&c.to_string())),
                    "{candidates:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn sends_duplicate_events_once() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let response = forwarder
        .invoke("req-dup", fixture("oss-duplicates.json"))
        .await;
    assert_ok(&response);
    assert_eq!(response.2["duplicates"], 2);

    let tasks = queue.tasks().await;
    let mut requests: Vec<_> = tasks
        .iter()
        .map(|t| t.request_id.clone().unwrap())
        .collect();
    requests.sort();
    assert_eq!(requests, ["DUP1", "DUP2"]);
}

#[tokio::test]
async fn applies_key_prefix_filters() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[
        ("KEY_PREFIX_INCLUDE", "data/,logs/"),
        ("KEY_PREFIX_EXCLUDE", "data/tmp/"),
    ]);
    let response = forwarder
        .invoke("req-pfx", fixture("oss-prefixes.json"))
        .await;
    assert_ok(&response);
    assert_eq!(response.2["skipped_keys"], 2);

    let expected: BTreeSet<String> = ["data/keep.csv", "logs/app.log", "data%2Fencoded.csv"]
        .map(String::from)
        .into();
    assert_eq!(keys(&queue.tasks().await), expected);
}

#[tokio::test]
async fn fifo_queue_gets_group_and_deduplication_ids() {
    let queue = Queue::create("tasks.fifo").await;
    let forwarder = queue.forwarder(&[]);
    assert_ok(
        &forwarder
            .invoke("req-fifo", fixture("oss-odd-keys.json"))
            .await,
    );
    // An FC retry of the same event yields the same deduplication IDs.
    assert_ok(
        &forwarder
            .invoke("req-fifo", fixture("oss-odd-keys.json"))
            .await,
    );

    let messages = queue.drain().await;
    assert_eq!(messages.len(), fixture_keys("oss-odd-keys.json").len());
    for message in &messages {
        let task = parse_task(message.body().unwrap());
        let attrs = message.attributes().expect("system attributes");
        let group = &attrs[&MessageSystemAttributeName::MessageGroupId];
        let dedup = &attrs[&MessageSystemAttributeName::MessageDeduplicationId];
        assert_eq!(group, &task.message_group_id());
        assert!(group.len() <= 128);
        assert_eq!(dedup, &task.identity());
    }
    let groups: Vec<_> = messages
        .iter()
        .map(|m| m.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId].clone())
        .collect();
    assert!(groups.contains(&"src-bucket/deep/a/b/c/d.bin".to_owned()));
}

#[tokio::test]
async fn rejects_malformed_bodies_with_fc_404_and_enqueues_nothing() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    for name in [
        "oss-malformed-not-json.txt",
        "oss-malformed-no-events.json",
        "oss-malformed-events-object.json",
        "oss-malformed-missing-key.json",
    ] {
        let request_id = format!("req-{name}");
        let response = forwarder.invoke(&request_id, fixture(name)).await;
        assert_fc_error(&response, "malformed_event");
        let error_line = forwarder
            .wait_for_line(&["ERROR", &request_id])
            .unwrap_or_else(|| panic!("no error log naming {request_id}:\n{}", forwarder.logs()));
        assert!(error_line.contains("body_excerpt"), "{error_line}");
    }
    assert!(queue.drain().await.is_empty());
}

#[tokio::test]
async fn refuses_a_body_larger_than_any_oss_event() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    // OSS trigger events are at most 128 KB; 300 KiB is no event.
    let response = forwarder.invoke("req-huge", vec![b' '; 300 * 1024]).await;
    assert_fc_error(&response, "unreadable_body");
    assert!(queue.drain().await.is_empty());
}

/// Opens a connection and sends `bytes` of a request, then nothing more; returns when the
/// forwarder closes the connection, with what it answered.
async fn stall(forwarder: &Forwarder, bytes: &[u8]) -> (Duration, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = forwarder.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    socket.write_all(bytes).await.expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the stalled connection was never closed");
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_cut_off() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let (after, _) = stall(&forwarder, b"POST /invoke HTTP/1.1\r\nHost: fc\r\nx-fc-req").await;
    assert!(after < Duration::from_secs(20), "held for {after:?}");
    // The function still serves other invocations.
    let response = forwarder
        .invoke("req-after-stall", fixture("oss-put.json"))
        .await;
    assert_eq!(response.0, 200, "{response:?}");
}

#[tokio::test]
async fn a_client_that_stalls_in_its_body_gets_a_retryable_error() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let request = b"POST /invoke HTTP/1.1\r\nHost: fc\r\nx-fc-request-id: req-slow\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{\"events\":";
    let (after, answer) = stall(&forwarder, request).await;
    assert!(after < Duration::from_secs(20), "held for {after:?}");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(
        answer.contains("x-fc-status: 404") && answer.contains("body_timeout"),
        "{answer}"
    );
    assert!(queue.drain().await.is_empty());
}

#[tokio::test]
async fn answers_initialize_and_pre_stop() {
    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let http = reqwest::Client::new();
    let init = http
        .post(format!("{}/initialize", forwarder.base))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status().as_u16(), 200);
    let stop = http
        .get(format!("{}/pre-stop", forwarder.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status().as_u16(), 200);
}

/// Runs `invoke` against a forwarder whose SQS endpoint is broken; it must fail, and quickly.
async fn assert_fails_within(forwarder: &Forwarder, bound: Duration) -> serde_json::Value {
    let started = Instant::now();
    let response = forwarder
        .invoke("req-broken", fixture("oss-batch.json"))
        .await;
    let elapsed = started.elapsed();
    assert_fc_error(&response, "enqueue_failed");
    assert!(elapsed < bound, "took {elapsed:?}");
    assert_eq!(response.2["report"]["sent"], 0);
    assert_eq!(
        response.2["report"]["failed"].as_array().map(Vec::len),
        Some(25)
    );
    response.2
}

#[tokio::test]
async fn fails_with_fc_404_when_sqs_is_unreachable() {
    let closed = format!("http://127.0.0.1:{}", testkit::free_port());
    let url = format!("{closed}/123456789012/tasks");
    let forwarder = Forwarder::start(&[
        ("SQS_QUEUE_URL", &url),
        ("AWS_ENDPOINT_URL_SQS", &closed),
        ("SQS_SEND_ATTEMPTS", "3"),
    ]);
    let body = assert_fails_within(&forwarder, Duration::from_secs(30)).await;
    assert_eq!(body["report"]["batch_calls"], 9, "3 batches × 3 attempts");
}

#[tokio::test]
async fn fails_with_fc_404_when_sqs_hangs() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        listener
            .incoming()
            .take(64)
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let url = format!("{endpoint}/123456789012/tasks");
    let forwarder = Forwarder::start(&[
        ("SQS_QUEUE_URL", &url),
        ("AWS_ENDPOINT_URL_SQS", &endpoint),
        ("SQS_CALL_TIMEOUT_MS", "500"),
        ("SQS_SEND_ATTEMPTS", "2"),
    ]);
    assert_fails_within(&forwarder, Duration::from_secs(30)).await;
    drop(held);
}

#[tokio::test]
async fn fails_with_fc_404_when_queue_does_not_exist() {
    let queue = Queue::create("tasks").await;
    let missing = queue.url.replace("/tasks", "/no-such-queue");
    let forwarder = Forwarder::start(&[
        ("SQS_QUEUE_URL", &missing),
        ("AWS_ENDPOINT_URL_SQS", &queue.moto.endpoint()),
    ]);
    let body = assert_fails_within(&forwarder, Duration::from_secs(30)).await;
    // A missing queue is not retried: one call per batch.
    assert_eq!(body["report"]["batch_calls"], 3);
    assert!(queue.drain().await.is_empty());
}

#[test]
fn refuses_to_start_without_queue_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run bootstrap");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SQS_QUEUE_URL"), "{stderr}");
}

#[tokio::test]
async fn chain_from_emulator_trigger_through_forwarder_to_sqs() {
    use oss_emulator::{Emulator, EmulatorConfig, NotificationTarget};
    use transfer::oss::{
        AddressingStyle, Credentials, Endpoint, OssClient, OssConfig, PutObjectOptions,
    };

    let queue = Queue::create("tasks").await;
    let forwarder = queue.forwarder(&[]);
    let emulator = Emulator::start(
        EmulatorConfig::new()
            .region("cn-hangzhou")
            .bucket("chain-bucket")
            .credentials(Credentials::new("ak", "sk"))
            .notification(
                NotificationTarget::new(format!("{}/invoke", forwarder.base))
                    .events(["oss:ObjectCreated:*", "oss:ObjectRemoved:*"]),
            ),
    )
    .await
    .expect("emulator starts");
    let oss = OssClient::new(
        OssConfig::new("cn-hangzhou")
            .with_endpoint(Endpoint::Custom(emulator.endpoint()))
            .with_addressing(AddressingStyle::PathStyle),
        Credentials::new("ak", "sk"),
    )
    .expect("client");

    let keys = ["chain/plain.txt", "chain/odd key+ü%.txt"];
    for key in keys {
        oss.put_object(
            "chain-bucket",
            key,
            key.as_bytes().to_vec().into(),
            &PutObjectOptions::default(),
        )
        .await
        .expect("put");
    }
    // A delete reaches the forwarder too but is not forwarded by default.
    oss.delete_object("chain-bucket", "chain/plain.txt")
        .await
        .expect("delete");

    let mut tasks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tasks.len() < keys.len() && Instant::now() < deadline {
        tasks.extend(queue.tasks().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give a stray extra message (e.g. the delete) time to show up before the final check.
    assert!(
        forwarder.wait_for_line(&["skipped_events=1"]).is_some(),
        "{}",
        forwarder.logs()
    );
    tasks.extend(queue.tasks().await);

    assert_eq!(tasks.len(), keys.len(), "{tasks:?}");
    for key in keys {
        let task = tasks
            .iter()
            .find(|t| t.source.key == key || t.source.key_candidates().iter().any(|c| c == key))
            .unwrap_or_else(|| panic!("no task for {key}: {tasks:?}"));
        assert_eq!(task.op, TaskOp::Put);
        assert_eq!(task.source.bucket, "chain-bucket");
        assert_eq!(task.source.size, Some(key.len() as u64));
        assert_eq!(task.event_name.as_deref(), Some("ObjectCreated:PutObject"));
    }
    let etag = tasks
        .iter()
        .find(|t| t.source.key == "chain/odd key+ü%.txt")
        .and_then(|t| t.source.etag.clone());
    let info = emulator
        .head_object_direct("chain-bucket", "chain/odd key+ü%.txt")
        .expect("object stored");
    assert_eq!(etag.as_deref(), Some(info.etag.trim_matches('"')));
}
