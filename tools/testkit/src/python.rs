//! The repository, its project-local Python environment, and free ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root (the workspace directory).
pub fn repo_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("tools/testkit sits two levels below the root")
            .to_path_buf()
    })
}

/// The project-local Python interpreter, with the test requirements installed.
///
/// Runs `scripts/pyenv` once per test process, which creates or refreshes `.venv` as needed, so
/// `cargo test` works on a fresh machine without any step before it.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = Command::new(repo_root().join("scripts/pyenv"))
            .output()
            .expect("scripts/pyenv runs");
        assert!(
            output.status.success(),
            "scripts/pyenv failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Only for servers that cannot bind port 0 and report the port themselves (moto).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}
