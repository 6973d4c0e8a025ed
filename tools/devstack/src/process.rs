//! Child processes of the stack: started in their own process group, logged to a file, and
//! killed when their handle drops, on Ctrl-C, or (through [`kill_all`] in a panic hook) on a
//! panic.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Every live child, by handle ID, so that [`kill_all`] can reach them without their handles.
static CHILDREN: Mutex<BTreeMap<u64, Child>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Kills every child process started by this process that is still running.
///
/// Meant for panic hooks and signal handlers; handles dropped later find nothing left to do.
pub fn kill_all() {
    let children = std::mem::take(&mut *registry());
    for (_, mut child) in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<u64, Child>> {
    CHILDREN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running child process whose stdout and stderr go to a log file. Killed on drop.
#[derive(Debug)]
pub struct ManagedProcess {
    id: u64,
    name: String,
    pid: u32,
    log: PathBuf,
}

impl ManagedProcess {
    /// Starts `command` as `name`, appending its stdout and stderr to `log`.
    ///
    /// With `announce`, waits up to `wait` for a stdout line starting with that text and returns
    /// the rest of the line (servers that pick their own port print it so). Fails, with the
    /// log's tail, if the process exits first or the line does not come.
    pub fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
        announce: Option<(&str, Duration)>,
    ) -> anyhow::Result<(Self, Option<String>)> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let stdout_file = file.try_clone()?;
        // A process group of its own: a terminal's Ctrl-C reaches only the stack, which then
        // stops its children in order instead of racing them.
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file);
        let mut child = command
            .spawn()
            .with_context(|| format!("start {name} ({:?})", command.get_program()))?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        registry().insert(id, child);
        let process = Self {
            id,
            name: name.to_owned(),
            pid,
            log: log.to_owned(),
        };
        let (tx, rx) = mpsc::channel();
        let prefix = announce.map(|(p, _)| p.to_owned());
        if let Some(stdout) = stdout {
            std::thread::spawn(move || copy_stdout(stdout, stdout_file, prefix, tx));
        }
        let Some((_, wait)) = announce else {
            return Ok((process, None));
        };
        let deadline = Instant::now() + wait;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(rest) => return Ok((process, Some(rest))),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stdout closed: the process is exiting.
                    std::thread::sleep(Duration::from_millis(200));
                    bail!(
                        "{name} stopped before it was ready ({})\n{}",
                        process.status_text(),
                        process.log_tail(40)
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some(status) = process.try_wait() {
                bail!(
                    "{name} exited with {status} before it was ready\n{}",
                    process.log_tail(40)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} was not ready within {wait:?}\n{}",
                    process.log_tail(40)
                );
            }
        }
    }

    /// The process name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operating-system process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&self) -> Option<ExitStatus> {
        let mut children = registry();
        let child = children.get_mut(&self.id)?;
        child.try_wait().ok().flatten()
    }

    /// `None` while the process runs; otherwise how it ended (`killed` if through [`Self::kill`]).
    pub fn exit_description(&self) -> Option<String> {
        let mut children = registry();
        match children.get_mut(&self.id) {
            None => Some("killed".to_owned()),
            Some(child) => child.try_wait().ok().flatten().map(|s| s.to_string()),
        }
    }

    fn status_text(&self) -> String {
        self.try_wait()
            .map_or_else(|| "still running".to_owned(), |s| s.to_string())
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Kills the process (SIGKILL) and reaps it. Does nothing if it is already gone.
    pub fn kill(&self) {
        let child = registry().remove(&self.id);
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of the file at `path` (empty if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!(
        "--- {} (last lines) ---\n{}",
        path.display(),
        all[start..].join("\n")
    )
}

/// Copies the child's stdout into its log; reports the rest of the first line that starts with
/// `prefix`.
fn copy_stdout(
    stdout: std::process::ChildStdout,
    mut log: File,
    mut prefix: Option<String>,
    announce: mpsc::Sender<String>,
) {
    let reader = BufReader::new(stdout);
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        let _ = log.write_all(&line);
        let _ = log.write_all(b"\n");
        if let Some(p) = &prefix {
            let text = String::from_utf8_lossy(&line);
            if let Some(rest) = text.trim_end().strip_prefix(p.as_str()) {
                let _ = announce.send(rest.trim().to_owned());
                prefix = None;
            }
        }
    }
}
