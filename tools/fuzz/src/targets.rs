//! The fuzz targets: one per parser of bytes that other systems control. Each takes any bytes,
//! must not panic, and checks what it can beyond that (a parsed task re-serialises to an equal
//! task, a key survives every encoding byte for byte, the signature verifier accepts what the
//! signer produced and rejects a changed byte). A violated property panics with its reason.

use std::borrow::Cow;
use std::fmt::Write as _;

use percent_encoding::percent_decode_str;
use transfer::encoding::{encode_path, encode_query};
use transfer::message::{IncomingMessage, LegacyDefaults, parse_message};
use transfer::task::{ReplicationTask, SourceObject, TaskOp};
use transfer::trigger::s3::{S3Event, S3Notification, decode_key, encode_key, plan_s3};
use transfer::trigger::{EventFilter, OssEventBatch, plan_forward};

use crate::emulator::EmulatorTarget;

/// A fuzz target.
pub trait Target {
    /// The target's name (`oss2s3-fuzz NAME`, `fuzz/fuzz_targets/NAME.rs`).
    fn name(&self) -> &'static str;
    /// Runs one input; panics when a property does not hold.
    fn run(&mut self, data: &[u8]);
    /// Tokens the mutator inserts.
    fn dictionary(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// Every target's name, in the order `oss2s3-fuzz` runs them.
pub const NAMES: &[&str] = &[
    "trigger_body",
    "queue_message",
    "s3_event",
    "task_key",
    "oss_xml",
    "oss_error",
    "secret_json",
    "v4_signature",
    "emulator_request",
];

/// The target called `name`.
pub fn by_name(name: &str) -> Option<Box<dyn Target>> {
    Some(match name {
        "trigger_body" => Box::new(Stateless(name_of(name), trigger_body, json_tokens)),
        "queue_message" => Box::new(Stateless(name_of(name), queue_message, json_tokens)),
        "s3_event" => Box::new(Stateless(name_of(name), s3_event, s3_tokens)),
        "task_key" => Box::new(Stateless(name_of(name), task_key, key_tokens)),
        "oss_xml" => Box::new(Stateless(name_of(name), oss_xml, xml_tokens)),
        "oss_error" => Box::new(Stateless(name_of(name), oss_error, xml_tokens)),
        "secret_json" => Box::new(Stateless(name_of(name), secret_json, json_tokens)),
        "v4_signature" => Box::new(Stateless(name_of(name), v4_signature, key_tokens)),
        "emulator_request" => Box::new(EmulatorTarget::start()),
        _ => return None,
    })
}

/// Runs `data` through the target `name`, made on first use and kept (cargo-fuzz's wrappers
/// call this for every input).
///
/// # Panics
/// When `name` is no target, and when the target's property does not hold.
pub fn run_named(name: &str, data: &[u8]) {
    // Kept for the life of the process and never dropped: libFuzzer ends with exit(), and
    // shutting the emulator's runtime down in a thread-local destructor then crashes.
    thread_local! {
        static TARGETS: std::mem::ManuallyDrop<std::cell::RefCell<Vec<Box<dyn Target>>>> =
            const { std::mem::ManuallyDrop::new(std::cell::RefCell::new(Vec::new())) };
    }
    TARGETS.with(|targets| {
        let mut targets = targets.borrow_mut();
        let at = if let Some(at) = targets.iter().position(|t| t.name() == name) {
            at
        } else {
            targets.push(by_name(name).expect("a fuzz target's name"));
            targets.len() - 1
        };
        targets[at].run(data);
    });
}

fn name_of(name: &str) -> &'static str {
    NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("unknown")
}

/// A target that is a plain function of its input.
struct Stateless(&'static str, fn(&[u8]), fn() -> Vec<Vec<u8>>);

impl Target for Stateless {
    fn name(&self) -> &'static str {
        self.0
    }

    fn run(&mut self, data: &[u8]) {
        (self.1)(data);
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        (self.2)()
    }
}

fn tokens(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|t| t.as_bytes().to_vec()).collect()
}

/// The odd-key corpus's keys, as tokens.
fn odd_key_tokens() -> Vec<Vec<u8>> {
    testkit::odd_keys::corpus()
        .into_iter()
        .map(|k| k.key.into_bytes())
        .filter(|k| k.len() <= 256)
        .collect()
}

fn json_tokens() -> Vec<Vec<u8>> {
    let mut t = tokens(&[
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        "null",
        "true",
        "false",
        "\\u0000",
        "\\ud800",
        "\\u00e9",
        "\\\"",
        "\"events\"",
        "\"eventName\"",
        "\"oss\"",
        "\"bucket\"",
        "\"object\"",
        "\"key\"",
        "\"size\"",
        "\"eTag\"",
        "\"region\"",
        "\"arn\"",
        "\"name\"",
        "\"version\"",
        "\"op\"",
        "\"source\"",
        "\"put\"",
        "\"delete\"",
        "\"continuation\"",
        "\"not_before\"",
        "\"shard\"",
        "\"job\"",
        "\"job_id\"",
        "\"index\"",
        "\"of\"",
        "\"part\"",
        "\"start\"",
        "\"after\"",
        "\"until\"",
        "\"depth\"",
        "\"hop\"",
        "\"pace\"",
        "\"counts\"",
        "\"shards\"",
        "\"overwrite\"",
        "\"report_bucket\"",
        "\"report_prefix\"",
        "\"ObjectCreated:PutObject\"",
        "\"ObjectRemoved:DeleteObject\"",
        "\"oss:ObjectCreated:*\"",
        "\"acs:oss:cn-hangzhou:1:b\"",
        "\"access_key_id\"",
        "\"secret_access_key\"",
        "\"security_token\"",
        "\"bytes_per_second\"",
        "\"objects_per_second\"",
        "\"source_bucket\"",
        "\"prefix\"",
    ]);
    t.extend(odd_key_tokens());
    t
}

fn s3_tokens() -> Vec<Vec<u8>> {
    let mut t = json_tokens();
    t.extend(tokens(&[
        "\"Records\"",
        "\"eventVersion\":\"2.1\"",
        "\"eventSource\":\"aws:s3\"",
        "\"awsRegion\":\"us-east-1\"",
        "\"s3\"",
        "\"ObjectCreated:Put\"",
        "\"ObjectRemoved:Delete\"",
        "\"LifecycleExpiration:Delete\"",
        "\"responseElements\"",
        "\"x-amz-request-id\"",
        "\"Event\":\"s3:TestEvent\"",
        "\"Type\":\"Notification\"",
        "\"Message\"",
        "+",
        "%2B",
        "%20",
        "%2F",
        "%E2%82%AC",
        "%FF",
        "%",
    ]));
    t.extend(
        odd_key_tokens()
            .into_iter()
            .filter_map(|k| String::from_utf8(k).ok())
            .map(|k| encode_key(&k).into_bytes()),
    );
    t
}

fn xml_tokens() -> Vec<Vec<u8>> {
    let mut t = tokens(&[
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<ListBucketResult>",
        "</ListBucketResult>",
        "<Contents>",
        "</Contents>",
        "<Key>",
        "</Key>",
        "<Size>",
        "</Size>",
        "<ETag>",
        "</ETag>",
        "<LastModified>2024-01-02T03:04:05.000Z</LastModified>",
        "<StorageClass>Archive</StorageClass>",
        "<Type>Appendable</Type>",
        "<RestoreInfo>ongoing-request=\"false\"</RestoreInfo>",
        "<EncodingType>url</EncodingType>",
        "<IsTruncated>true</IsTruncated>",
        "<NextContinuationToken>",
        "</NextContinuationToken>",
        "<KeyCount>",
        "<CommonPrefixes><Prefix>",
        "</Prefix></CommonPrefixes>",
        "<UploadId>",
        "</UploadId>",
        "<Part><PartNumber>",
        "</PartNumber>",
        "<HashCrc64ecma>",
        "</HashCrc64ecma>",
        "</Part>",
        "<NextPartNumberMarker>",
        "<Error><Code>",
        "</Code><Message>",
        "</Message><RequestId>",
        "</RequestId><EC>",
        "</EC></Error>",
        "<![CDATA[",
        "]]>",
        "&amp;",
        "&lt;",
        "&#x0;",
        "&#xFFFF;",
        "&unknown;",
        "<!DOCTYPE x [<!ENTITY e \"e\">]>",
        "%20",
        "%2B",
        "%FF",
        "%",
        "%C3%A9",
    ]);
    t.extend(odd_key_tokens());
    t
}

fn key_tokens() -> Vec<Vec<u8>> {
    let mut t = tokens(&[
        "%", "%2", "%20", "%2B", "%2F", "+", " ", "/", "//", "?", "#", "~",
    ]);
    t.extend(odd_key_tokens());
    t
}

const LEGACY: LegacyDefaults<'static> = LegacyDefaults {
    region: "cn-hangzhou",
    bucket: "legacy-bucket",
};

/// A task, serialised and parsed as the replicator reads it, must come back equal.
fn round_trips(task: &ReplicationTask) {
    let body = serde_json::to_vec(task).expect("a task serialises");
    match parse_message(&body, LEGACY) {
        Ok(IncomingMessage::Task(back)) => assert_eq!(&back, task, "the task changed"),
        other => panic!("a serialised task did not parse back as a task: {other:?}"),
    }
}

/// The FC trigger body, as the forwarder reads it.
fn trigger_body(data: &[u8]) {
    let excerpt = oss_forwarder::forward::excerpt(data, 200);
    assert!(excerpt.len() <= 200 * 4 + 16, "excerpt too long");
    let Ok(batch) = OssEventBatch::parse(data) else {
        return;
    };
    for event in &batch.events {
        assert!(!event.oss.object.key.is_empty(), "an event without a key");
        assert!(event.region().is_some(), "an event without a region");
    }
    for filter in [
        EventFilter::default(),
        EventFilter::from_settings(None, true, None, None).expect("deletes on"),
    ] {
        let plan = plan_forward(&batch, &filter);
        for task in &plan.tasks {
            assert!(
                batch
                    .events
                    .iter()
                    .any(|e| e.oss.object.key == task.source.key),
                "a task's key is no event's key byte for byte"
            );
            round_trips(task);
        }
    }
}

/// A queue message body, as the replicator reads it.
fn queue_message(data: &[u8]) {
    let message = match parse_message(data, LEGACY) {
        Ok(message) => message,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "an error without a message");
            return;
        }
    };
    match &message {
        IncomingMessage::Task(task) => {
            assert!(!task.source.key.is_empty());
            round_trips(task);
        }
        IncomingMessage::Legacy(task) => {
            assert_eq!(task.source.bucket, LEGACY.bucket);
            assert!(!task.source.key.is_empty());
            round_trips(task);
        }
        IncomingMessage::OssEvents(batch) => {
            for task in plan_forward(batch, &EventFilter::default()).tasks {
                round_trips(&task);
            }
        }
        IncomingMessage::S3Events(events) => s3_events_round_trip(events),
        IncomingMessage::S3Test { .. } => {}
        IncomingMessage::Shard(shard) => match parse_message(shard.to_json().as_bytes(), LEGACY) {
            Ok(IncomingMessage::Shard(back)) => assert_eq!(back, *shard, "the shard changed"),
            other => panic!("a serialised shard did not parse back: {other:?}"),
        },
        IncomingMessage::Job(job) => match parse_message(job.to_json().as_bytes(), LEGACY) {
            Ok(IncomingMessage::Job(back)) => assert_eq!(back, *job, "the job changed"),
            other => panic!("a serialised job did not parse back: {other:?}"),
        },
    }
    let _ = message.into_tasks(&EventFilter::default());
}

/// Checks what S3 events promise: each names a bucket, a region and a key that S3's own
/// encoding carries back byte for byte, and each planned task survives the task format.
fn s3_events_round_trip(events: &[S3Event]) {
    for event in events {
        assert!(!event.key.is_empty() && !event.bucket.is_empty() && !event.region.is_empty());
        let encoded = encode_key(&event.key);
        assert_eq!(
            decode_key(&encoded).as_deref(),
            Ok(event.key.as_str()),
            "{encoded}"
        );
        let again = serde_json::json!({"Records": [{
            "eventName": event.name, "awsRegion": event.region,
            "s3": {"bucket": {"name": event.bucket}, "object": {"key": encoded}}}]});
        match S3Notification::from_value(again) {
            Ok(S3Notification::Records(back)) => {
                assert_eq!(back[0].key, event.key, "the key changed");
            }
            other => panic!("a re-encoded event did not parse back: {other:?}"),
        }
    }
    for filter in [
        EventFilter::default(),
        EventFilter::from_settings(None, true, None, None).expect("deletes on"),
    ] {
        for task in plan_s3(events, &filter).tasks {
            assert!(
                events.iter().any(|e| e.key == task.source.key),
                "a task's key is no event's key"
            );
            round_trips(&task);
        }
    }
}

/// An S3 event notification, bare or inside an SNS notification, as the S3 → OSS replicator
/// reads it from its queue.
fn s3_event(data: &[u8]) {
    let Ok(notification) = S3Notification::parse(data) else {
        return;
    };
    let S3Notification::Records(events) = &notification else {
        return;
    };
    s3_events_round_trip(events);
    if let Ok(text) = std::str::from_utf8(data) {
        let sns = serde_json::json!({"Type": "Notification", "Message": text});
        match parse_message(sns.to_string().as_bytes(), LEGACY) {
            Ok(IncomingMessage::S3Events(through_sns)) => {
                assert_eq!(&through_sns, events, "SNS changed the events");
            }
            other => panic!("the notification did not parse through SNS: {other:?}"),
        }
    }
}

fn decoded(encoded: &str) -> Cow<'_, str> {
    percent_decode_str(encoded)
        .decode_utf8()
        .expect("percent-encoded UTF-8 decodes")
}

/// One OSS event naming `key`, as a trigger body.
fn event_body(key: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"events": [{
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": "2024-01-02T03:04:05.000Z",
        "eventVersion": "1.0",
        "region": "cn-hangzhou",
        "oss": {
            "bucket": {"name": "b", "arn": "acs:oss:cn-hangzhou:1:b"},
            "object": {"key": key, "size": 1, "eTag": "ABC"},
        },
    }]}))
    .expect("an event serialises")
}

/// The task the forwarder makes of a trigger event naming `key`.
fn forwarded(key: &str) -> ReplicationTask {
    let batch = OssEventBatch::parse(&event_body(key)).expect("a well-formed event parses");
    let mut tasks = plan_forward(&batch, &EventFilter::default()).tasks;
    assert_eq!(tasks.len(), 1, "one event, one task");
    tasks.remove(0)
}

/// Any key: through a trigger event raw, percent-encoded and form-encoded (the forwarder keeps
/// the key as received, and the replicator's candidates find the object), through the task
/// format, and through the encodings of URLs and markers, byte for byte.
fn task_key(data: &[u8]) {
    let key = String::from_utf8_lossy(data);
    if key.is_empty() {
        return;
    }
    let key = key.as_ref();
    let raw = forwarded(key);
    assert_eq!(raw.source.key, key, "the raw event's key changed");
    assert_eq!(raw.source.key_candidates()[0], key);
    round_trips(&raw);
    let encoded = encode_query(key).to_string();
    let task = forwarded(&encoded);
    assert_eq!(task.source.key, encoded, "the encoded event's key changed");
    assert!(
        task.source.key_candidates().iter().any(|c| c == key),
        "no candidate of the percent-encoded key is the key"
    );
    let form = encoded.replace("%20", "+");
    let task = forwarded(&form);
    assert!(
        task.source.key_candidates().iter().any(|c| c == key),
        "no candidate of the form-encoded key is the key"
    );
    assert_eq!(decoded(&encode_path(key).to_string()), key, "path encoding");
    assert_eq!(decoded(&encoded), key, "query encoding");
    let url = transfer::replicate::source_url("oss", "b", key);
    match url.strip_prefix("oss://b/") {
        Some(path) => assert_eq!(decoded(path), key, "the marker's URL"),
        None => assert!(url.starts_with("sha256:") && url.len() == 71, "{url}"),
    }
    let mut task = ReplicationTask::put(SourceObject {
        region: "r".to_owned(),
        bucket: "b".to_owned(),
        key: key.to_owned(),
        size: Some(data.len() as u64),
        etag: None,
    });
    round_trips(&task);
    task.op = TaskOp::Delete;
    round_trips(&task);
}

/// Splits `data` into up to `n` non-empty pieces at NUL bytes.
fn pieces(data: &[u8], n: usize) -> Vec<String> {
    data.split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .filter(|p| !p.is_empty())
        .take(n)
        .collect()
}

/// A character XML 1.0 can carry (escaped when markup).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// The OSS responses the client parses: any text must parse or fail cleanly; a listing the
/// fuzzer's keys were written into must give those keys back byte for byte.
fn oss_xml(data: &[u8]) {
    use transfer::oss::xml::fuzzing;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        let _ = fuzzing::list_objects_v2(&text);
        let _ = fuzzing::initiate(&text).map(|id| assert!(!id.is_empty()));
        let _ = fuzzing::complete(&text);
        if let Ok((parts, _, marker)) = fuzzing::list_parts(&text) {
            assert!(marker.is_none_or(|m| m > 0));
            let _ = parts;
        }
        if let Ok((_, _, marker)) = fuzzing::list_uploads(&text) {
            assert!(marker.is_none_or(|m| !m.is_empty()));
        }
        return;
    }
    let keys = pieces(rest, 20);
    // With encoding-type=url (what the client asks for) every key comes back; without it, the
    // keys XML can carry and its parser does not normalise as line ends (CR, NEL, U+2028).
    let url = mode % 4 == 1;
    let keys: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            url || k
                .chars()
                .all(|c| xml_char(c) && !matches!(c, '\r' | '\u{85}' | '\u{2028}'))
        })
        .collect();
    let field = |k: &str| {
        if url {
            encode_query(k).to_string()
        } else {
            quick_xml::escape::escape(k).into_owned()
        }
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult>");
    if url {
        xml.push_str("<EncodingType>url</EncodingType>");
    }
    for (i, key) in keys.iter().enumerate() {
        let _ = write!(
            xml,
            "<Contents><Key>{}</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified><ETag>\"E{i}\"</ETag><Size>{i}</Size><StorageClass>Standard</StorageClass></Contents>",
            field(key)
        );
    }
    let token = keys.last().cloned();
    if let Some(token) = &token {
        let _ = write!(
            xml,
            "<IsTruncated>true</IsTruncated><NextContinuationToken>{}</NextContinuationToken>",
            field(token)
        );
    }
    xml.push_str("</ListBucketResult>");
    let page = fuzzing::list_objects_v2(&xml).expect("a well-formed listing parses");
    let got: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(got, keys, "the listing's keys changed");
    assert_eq!(page.next_continuation_token, token, "the token changed");
    for (i, o) in page.objects.iter().enumerate() {
        assert_eq!(o.size, i as u64);
    }
    // The parts of a ListPartsResult, with CRC-64s, come back as written.
    let parts: Vec<(u32, u64)> = rest
        .chunks(9)
        .filter(|c| c.len() == 9)
        .map(|c| {
            let n = u32::from(u16::from_le_bytes([c[0], c[1]])) % 10_000 + 1;
            let crc = u64::from_le_bytes(c[1..9].try_into().expect("8 bytes"));
            (n, crc)
        })
        .take(50)
        .collect();
    let mut xml = String::from("<ListPartsResult>");
    for (n, crc) in &parts {
        let _ = write!(
            xml,
            "<Part><PartNumber>{n}</PartNumber><ETag>\"P{n}\"</ETag><Size>{crc}</Size><HashCrc64ecma>{crc}</HashCrc64ecma></Part>"
        );
    }
    xml.push_str("</ListPartsResult>");
    let (got, truncated, _) = fuzzing::list_parts(&xml).expect("a well-formed part list parses");
    assert!(!truncated);
    let got: Vec<(u32, u64)> = got
        .iter()
        .map(|p| (p.part_number, p.crc64.expect("a CRC-64")))
        .collect();
    assert_eq!(got, parts, "the parts changed");
}

/// An OSS error response: the details come from the body, or from `x-oss-err` (base64 of the
/// same XML) when the body is empty, as for HEAD; both ways give the same details.
fn oss_error(data: &[u8]) {
    use base64::Engine as _;
    let Some((&status, body)) = data.split_first() else {
        return;
    };
    let status = 400 + u16::from(status) % 200;
    let empty = http::HeaderMap::new();
    let from_body = transfer::oss::error::fuzz_service_details(status, &empty, body);
    assert_eq!(from_body.status, Some(status));
    for field in [&from_body.code, &from_body.message, &from_body.request_id] {
        assert!(field.as_deref().is_none_or(|f| !f.trim().is_empty()));
    }
    let mut headers = http::HeaderMap::new();
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    headers.insert(
        "x-oss-err",
        http::HeaderValue::from_str(&encoded).expect("base64 is a header value"),
    );
    let from_header = transfer::oss::error::fuzz_service_details(status, &headers, b"");
    if !body.iter().all(u8::is_ascii_whitespace) {
        assert_eq!(
            from_header, from_body,
            "x-oss-err read otherwise than the body"
        );
    }
}

/// The OSS credentials secret: what parses has a key ID and secret, re-serialises to the same
/// credentials, and an error never quotes the secret.
fn secret_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match transfer::oss::parse_credentials_json(text) {
        Ok(c) => {
            assert!(!c.access_key_id.is_empty() && !c.access_key_secret.is_empty());
            assert_eq!(c.access_key_id.trim(), c.access_key_id);
            let again = serde_json::json!({
                "access_key_id": c.access_key_id,
                "secret_access_key": c.access_key_secret,
                "security_token": c.security_token,
            })
            .to_string();
            let back = transfer::oss::parse_credentials_json(&again).expect("re-serialised");
            assert_eq!(back, c, "the credentials changed");
        }
        Err(message) => {
            let secret = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v["secret_access_key"].as_str().map(str::to_owned))
                .filter(|s| s.trim().len() >= 6);
            if let Some(secret) = secret {
                assert!(
                    !message.contains(secret.trim()),
                    "the error quotes the secret"
                );
            }
        }
    }
}

/// Signature V4 as the emulator checks it: the signer's `Authorization` parses back to its
/// credential and scope, the signature recomputed from the request matches, and changing one
/// byte of the key, a query value or a signed header makes it fail (a changed signature, over
/// the wire: `emulator_request`).
fn v4_signature(data: &[u8]) {
    use transfer::oss::signer::{self, Authorization, SignableRequest};
    use transfer::oss::{Credentials, OssSigner};
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let parts = pieces(rest, 6);
    let text = |i: usize| parts.get(i).cloned().unwrap_or_default();
    let method = ["GET", "PUT", "POST", "DELETE", "HEAD"][usize::from(shape % 5)];
    let key = text(0);
    let key = (!key.is_empty()).then_some(key);
    let query: Vec<(String, String)> = [(text(1), text(2))]
        .into_iter()
        .filter(|(k, _)| !k.is_empty())
        .collect();
    let mut headers = http::HeaderMap::new();
    let meta = text(3);
    let meta_value = http::HeaderValue::from_str(meta.trim()).ok();
    if let Some(v) = &meta_value {
        headers.insert("x-oss-meta-fuzz", v.clone());
    }
    let credentials = Credentials::new("fuzz-ak", "fuzz-secret");
    let time = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a time");
    let request = SignableRequest {
        method,
        bucket: Some("fuzz-bucket"),
        key: key.as_deref(),
        query: &query,
        headers: &headers,
    };
    let mut signed = headers.clone();
    OssSigner::new("cn-hangzhou").sign(&credentials, request, &mut signed, &[], time);
    let value = signed
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .expect("an Authorization header");
    let auth = Authorization::parse(value).expect("the signer's header parses");
    assert_eq!(auth.access_key_id, "fuzz-ak");
    assert_eq!(auth.region, "cn-hangzhou");
    let datetime = signed
        .get("x-oss-date")
        .and_then(|v| v.to_str().ok())
        .expect("x-oss-date")
        .to_owned();
    assert_eq!(auth.date, datetime[..8]);
    let verify = |request: &SignableRequest<'_>| {
        signer::signature(
            "fuzz-secret",
            &datetime,
            "cn-hangzhou",
            request,
            &auth.additional_headers,
        ) == auth.signature
    };
    let as_signed = SignableRequest {
        headers: &signed,
        ..request
    };
    assert!(
        verify(&as_signed),
        "the verifier rejects what the signer produced"
    );
    // One byte changed (to another byte that keeps the text UTF-8 and is not trimmed away).
    let changed = |s: &str| -> Option<String> {
        let at = s.char_indices().find(|(_, c)| c.is_ascii_alphanumeric())?.0;
        let mut bytes = s.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
        String::from_utf8(bytes).ok()
    };
    if let Some(other) = key.as_deref().and_then(changed) {
        let request = SignableRequest {
            key: Some(&other),
            ..as_signed
        };
        assert!(!verify(&request), "a changed key still verifies");
    }
    if let Some((name, value)) = query.first()
        && let Some(other) = changed(value)
    {
        let query = vec![(name.clone(), other)];
        let request = SignableRequest {
            query: &query,
            ..as_signed
        };
        assert!(!verify(&request), "a changed query value still verifies");
    }
    if let Some(other) = meta_value
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(changed)
        && let Ok(other) = http::HeaderValue::from_str(&other)
    {
        let mut headers = signed.clone();
        headers.insert("x-oss-meta-fuzz", other);
        let request = SignableRequest {
            headers: &headers,
            ..as_signed
        };
        assert!(!verify(&request), "a changed signed header still verifies");
    }
}
