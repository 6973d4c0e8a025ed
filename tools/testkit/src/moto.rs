//! moto's server for S3, SQS and Secrets Manager, from the project-local Python environment.

use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

use crate::python::{free_port, python};

/// A moto server (`moto_server`) on a free loopback port: S3, SQS, Secrets Manager and the other
/// AWS services moto emulates, all behind one endpoint. Killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: std::process::Child,
    port: u16,
}

impl MotoServer {
    /// Starts a fresh moto server (from the project venv) and waits until it answers HTTP.
    ///
    /// Panics if it does not come up within a minute (retrying on another port if the chosen one
    /// was taken in the meantime).
    pub fn start() -> Self {
        let moto = python().with_file_name("moto_server");
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&moto)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", moto.display()));
            let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last_error = format!("moto_server exited with {status}");
                    break;
                }
                if http_answers(port) {
                    return Self { child, port };
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last_error.is_empty() {
                last_error = "moto_server did not answer within 60 s".into();
            }
        }
        panic!("could not start moto: {last_error}");
    }

    /// The server's base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// One server shared by the tests of a test binary that run at the same time: started on
    /// first use, stopped when the last handle is dropped. Blocks while it starts, so call it
    /// from `tokio::task::spawn_blocking` inside async tests.
    pub fn shared() -> Arc<MotoServer> {
        static SHARED: Mutex<Weak<MotoServer>> = Mutex::new(Weak::new());
        let mut slot = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(moto) = slot.upgrade() {
            return moto;
        }
        let moto = Arc::new(MotoServer::start());
        *slot = Arc::downgrade(&moto);
        moto
    }

    /// An AWS SDK configuration that sends every service to this server, in `us-east-1`, with
    /// moto's placeholder credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether something on 127.0.0.1:`port` answers an HTTP request.
fn http_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let timeout = Some(std::time::Duration::from_secs(2));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let request = "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
