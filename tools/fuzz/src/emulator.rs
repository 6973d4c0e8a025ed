//! The `emulator_request` target: whole HTTP requests to the OSS emulator over a loopback
//! socket, the emulator running in this process so that a panic in any of its tasks is seen.
//!
//! An input is either raw bytes written to the socket as they are (the HTTP parser, then
//! whatever the request reaches), or a request built from the bytes: an operation, a key, a
//! query parameter, a header and an XML or data body, signed with the emulator's credentials.
//! Properties: the emulator never panics and never answers 500; a request the signer signed is
//! never refused for its signature; the same request with one byte of the signature changed is;
//! every error has an XML body with a `Code` (except for HEAD).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use oss_emulator::{Emulator, EmulatorConfig};
use transfer::encoding::{encode_path, encode_query};
use transfer::oss::signer::SignableRequest;
use transfer::oss::{Credentials, OssSigner};

use crate::targets::Target;

const BUCKET: &str = "fuzz-bucket";
const AK: &str = "fuzz-ak";
const SK: &str = "fuzz-secret";
const REGION: &str = "cn-hangzhou";

static PANICS: AtomicUsize = AtomicUsize::new(0);
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// The name of the emulator runtime's threads, whose panics are counted.
const THREAD_NAME: &str = "fuzz-emulator";

/// Counts every panic on the emulator runtime's threads (the emulator's tasks catch their own,
/// so they would otherwise go unseen), then reports it as before. Panics on other threads, such
/// as another test's in the same process, are not the emulator's.
fn count_panics() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(THREAD_NAME) {
                previous(info);
                return;
            }
            PANICS.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = info.to_string();
            }
            previous(info);
        }));
    });
}

/// An emulator on a runtime of its own, and the requests' shapes.
pub struct EmulatorTarget {
    runtime: tokio::runtime::Runtime,
    emulator: Option<Emulator>,
    addr: SocketAddr,
}

impl EmulatorTarget {
    /// Starts the emulator on a free loopback port.
    ///
    /// # Panics
    /// When the emulator cannot start.
    pub fn start() -> Self {
        count_panics();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()
            .expect("a runtime");
        let emulator = runtime
            .block_on(Emulator::start(
                EmulatorConfig::new()
                    .bucket(BUCKET)
                    .region(REGION)
                    .credentials(Credentials::new(AK, SK))
                    .listen("127.0.0.1:0".parse().expect("an address")),
            ))
            .expect("the emulator starts");
        let addr = emulator.addr();
        Self {
            runtime,
            emulator: Some(emulator),
            addr,
        }
    }

    /// Writes `request` and reads the whole answer; `None` when the emulator closed the
    /// connection without one (as it may for bytes that are not HTTP). `raw` bytes are
    /// followed by closing the socket's write side, so that an incomplete request ends at once.
    fn exchange(&self, request: &[u8], raw: bool) -> Option<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect(self.addr).expect("the emulator accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        if stream.write_all(request).is_err() {
            return None;
        }
        if raw {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
        let status_line = std::str::from_utf8(&answer[..head_end])
            .ok()?
            .lines()
            .next()?;
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        Some((status, answer[head_end + 4..].to_vec()))
    }
}

/// Runs `f`, failing when anything in the process panicked meanwhile.
fn without_panics<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let before = PANICS.load(Ordering::SeqCst);
    let out = f();
    // A task that panicked after answering is still caught by the next check; a short
    // wait here would slow every run.
    let after = PANICS.load(Ordering::SeqCst);
    if after != before {
        let last = LAST_PANIC.lock().map(|l| l.clone()).unwrap_or_default();
        panic!("the emulator panicked on {what}: {last}");
    }
    out
}

impl Drop for EmulatorTarget {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            self.runtime.block_on(emulator.shutdown());
        }
    }
}

/// One request built from fuzz bytes.
struct Built {
    method: &'static str,
    key: Option<String>,
    query: Vec<(String, String)>,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// The shape of a built request: method, query, a body template (`{}` is replaced by fuzz
/// text).
type Shape = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// The operations a built request takes the shape of.
const SHAPES: &[Shape] = &[
    ("PUT", &[], "{}"),
    ("GET", &[], ""),
    ("HEAD", &[], ""),
    ("DELETE", &[], ""),
    (
        "POST",
        &[("delete", "")],
        "<Delete><Quiet>false</Quiet><Object><Key>{}</Key></Object></Delete>",
    ),
    ("POST", &[("uploads", "")], ""),
    (
        "POST",
        &[("uploadId", "{}")],
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part></CompleteMultipartUpload>",
    ),
    ("PUT", &[("partNumber", "1"), ("uploadId", "{}")], "{}"),
    ("GET", &[("uploadId", "{}")], ""),
    (
        "POST",
        &[("restore", "")],
        "<RestoreRequest><Days>{}</Days></RestoreRequest>",
    ),
    ("PUT", &[("symlink", "")], ""),
    ("GET", &[("symlink", "")], ""),
    ("POST", &[("append", ""), ("position", "{}")], "{}"),
    ("GET", &[("uploads", "")], ""),
];

fn build(data: &[u8]) -> Built {
    let mut parts = data.split(|b| *b == 0);
    let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let selector = text();
    let shape = SHAPES[selector.bytes().map(usize::from).sum::<usize>() % SHAPES.len()];
    let key = text();
    let fill = text();
    let (query_name, query_value) = (text(), text());
    let (header_name, header_value) = (text(), text());
    let list = selector.len() % 7 == 3;
    let mut query: Vec<(String, String)> = shape
        .1
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.replace("{}", &fill)))
        .collect();
    if list {
        query = vec![
            ("list-type".to_owned(), "2".to_owned()),
            ("encoding-type".to_owned(), "url".to_owned()),
            ("prefix".to_owned(), key.clone()),
            ("max-keys".to_owned(), fill.clone()),
        ];
    }
    if !query_name.is_empty() {
        query.push((query_name, query_value));
    }
    let mut headers = http::HeaderMap::new();
    if let (Ok(name), Ok(value)) = (
        http::HeaderName::from_bytes(header_name.as_bytes()),
        http::HeaderValue::from_str(header_value.trim()),
    ) && !matches!(
        name.as_str(),
        "host" | "content-length" | "transfer-encoding" | "connection" | "authorization"
    ) {
        headers.insert(name, value);
    }
    let body = shape
        .2
        .replace("{}", &quick_xml::escape::escape(&fill))
        .into_bytes();
    Built {
        method: if list { "GET" } else { shape.0 },
        key: (!list && !key.is_empty()).then_some(key),
        query,
        headers,
        body,
    }
}

/// The request's bytes, signed (with the signature's byte `tamper` changed, when given).
fn wire(built: &Built, addr: SocketAddr, tamper: Option<usize>) -> Vec<u8> {
    let mut headers = built.headers.clone();
    let request = SignableRequest {
        method: built.method,
        bucket: Some(BUCKET),
        key: built.key.as_deref(),
        query: &built.query,
        headers: &built.headers,
    };
    OssSigner::new(REGION).sign(
        &Credentials::new(AK, SK),
        request,
        &mut headers,
        &[],
        chrono::Utc::now(),
    );
    if let Some(at) = tamper
        && let Some(value) = headers.get(http::header::AUTHORIZATION)
    {
        let mut bytes = value.as_bytes().to_vec();
        let signature_at = bytes.len() - 64;
        let i = signature_at + at % 64;
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_bytes(&bytes).expect("still a header value"),
        );
    }
    let mut target = format!("/{BUCKET}/");
    if let Some(key) = &built.key {
        target.push_str(&encode_path(key).to_string());
    }
    for (i, (k, v)) in built.query.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(&encode_query(k).to_string());
        if !v.is_empty() {
            target.push('=');
            target.push_str(&encode_query(v).to_string());
        }
    }
    let mut out = format!("{} {target} HTTP/1.1\r\nhost: {addr}\r\n", built.method).into_bytes();
    for (name, value) in &headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            built.body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&built.body);
    out
}

/// A 403 for the signature (a HEAD answer has no body to say so: its 403 is taken as one).
fn is_signature_refusal(method: &str, status: u16, body: &[u8]) -> bool {
    status == 403
        && (method == "HEAD" || String::from_utf8_lossy(body).contains("SignatureDoesNotMatch"))
}

impl Target for EmulatorTarget {
    fn name(&self) -> &'static str {
        "emulator_request"
    }

    fn run(&mut self, data: &[u8]) {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        if mode % 4 == 0 {
            // Raw bytes: any answer, or none, but no panic and no 500.
            let answer = without_panics("raw bytes", || self.exchange(rest, true));
            if let Some((status, body)) = answer {
                assert_ne!(
                    status,
                    500,
                    "a 500 for raw bytes: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            return;
        }
        let built = build(rest);
        let answer = without_panics("a signed request", || {
            self.exchange(&wire(&built, self.addr, None), false)
        });
        let (status, body) = answer.expect("the emulator answers a well-formed request");
        assert_ne!(status, 500, "a 500: {}", String::from_utf8_lossy(&body));
        assert!(
            !(status == 403 && String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch")),
            "the emulator refused the signer's signature: {}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 && built.method != "HEAD" {
            assert!(
                String::from_utf8_lossy(&body).contains("<Code>"),
                "an error without an XML Code: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        // A request refused before its signature was checked (a bad name, say) is refused the
        // same way with any signature.
        let checked = status < 400 || matches!(status, 404 | 409);
        if mode % 4 == 1 && checked {
            let answer = without_panics("a tampered signature", || {
                self.exchange(&wire(&built, self.addr, Some(usize::from(mode))), false)
            });
            let (status, body) = answer.expect("the emulator answers a tampered request");
            assert!(
                is_signature_refusal(built.method, status, &body),
                "a changed signature was not refused: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        let mut t: Vec<Vec<u8>> = [
            "GET / HTTP/1.1\r\n",
            "PUT /fuzz-bucket/k HTTP/1.1\r\n",
            "Host: 127.0.0.1\r\n",
            "Content-Length: 5\r\n",
            "Transfer-Encoding: chunked\r\n",
            "Authorization: OSS4-HMAC-SHA256 Credential=fuzz-ak/20240102/cn-hangzhou/oss/aliyun_v4_request,Signature=00\r\n",
            "x-oss-date: 20240102T030405Z\r\n",
            "Range: bytes=0-\r\n",
            "Range: bytes=-1\r\n",
            "If-Match: \"x\"\r\n",
            "x-oss-forbid-overwrite: true\r\n",
            "x-oss-meta-a: b\r\n",
            "x-oss-storage-class: Archive\r\n",
            "x-oss-symlink-target: k\r\n",
            "\r\n",
            "\0",
            "%00",
            "%FF",
            "?uploads",
            "?delete",
            "&partNumber=10001",
            "range",
            "x-oss-copy-source",
            "content-md5",
            "x-oss-hash-crc64ecma",
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
        t.extend(
            testkit::odd_keys::corpus()
                .into_iter()
                .map(|k| k.key.into_bytes())
                .filter(|k| k.len() <= 256),
        );
        t
    }
}
