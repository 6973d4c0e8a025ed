//! Child processes: started in their own process group, logged to a file, stopped when their
//! handle drops (SIGTERM, then SIGKILL after a grace period) or, through [`kill_all`] in a panic
//! hook or signal handler, when the parent goes; and what `/proc` says about them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long a process may take to exit after SIGTERM before it is killed, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

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

/// A running child process whose stdout and stderr go to a log file. Stopped on drop.
#[derive(Debug)]
pub struct ManagedProcess {
    id: u64,
    name: String,
    pid: u32,
    log: PathBuf,
    grace: Duration,
}

/// The stdout line a starting server prints when it is ready.
#[derive(Debug, Clone, Copy)]
pub struct ReadyLine<'a> {
    /// The line starts with this.
    pub prefix: &'a str,
    /// How long to wait for it.
    pub timeout: Duration,
}

/// What a process announced when it was ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The rest of the line after the prefix, trimmed (an address, an endpoint).
    pub rest: String,
    /// The time from just before the process was started to the line.
    pub after: Duration,
}

impl ManagedProcess {
    /// Starts `command` as `name`, appending its stdout and stderr to `log`.
    pub fn spawn(name: &str, command: Command, log: &Path) -> anyhow::Result<Self> {
        Self::start(name, command, log, None).map(|(process, _)| process)
    }

    /// Starts `command` as `name` and waits for its `ready` line (servers that pick their own
    /// port print it so). Fails, with the log's tail, if the process exits first or the line does
    /// not come in time.
    pub fn spawn_until(
        name: &str,
        command: Command,
        log: &Path,
        ready: ReadyLine<'_>,
    ) -> anyhow::Result<(Self, Ready)> {
        let (process, ready) = Self::start(name, command, log, Some(ready))?;
        let ready = ready.context("no ready line")?;
        Ok((process, ready))
    }

    fn start(
        name: &str,
        mut command: Command,
        log: &Path,
        announce: Option<ReadyLine<'_>>,
    ) -> anyhow::Result<(Self, Option<Ready>)> {
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
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("start {name} ({})", command.get_program().display()))?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        registry().insert(id, child);
        let process = Self {
            id,
            name: name.to_owned(),
            pid,
            log: log.to_owned(),
            grace: DEFAULT_GRACE,
        };
        let (tx, rx) = mpsc::channel();
        let prefix = announce.map(|r| r.prefix.to_owned());
        if let Some(stdout) = stdout {
            std::thread::spawn(move || copy_stdout(stdout, stdout_file, prefix, started, &tx));
        }
        let Some(ReadyLine { timeout: wait, .. }) = announce else {
            return Ok((process, None));
        };
        let deadline = Instant::now() + wait;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(ready) => return Ok((process, Some(ready))),
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

    /// The same process, given `grace` to exit after SIGTERM when it is stopped.
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
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

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process (SIGKILL) and reaps it, as a crash would. Does nothing if it is already
    /// gone.
    pub fn kill(&self) {
        let child = registry().remove(&self.id);
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to exit (SIGTERM), waits up to its grace period, then kills it.
    pub fn stop(&self) {
        if self.try_wait().is_none() && registry().contains_key(&self.id) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + self.grace;
            while self.try_wait().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }

    /// CPU time (user + system) used so far.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_of(&format!("/proc/{}/stat", self.pid))
    }

    /// Peak resident set size so far, in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        status_kib(&format!("/proc/{}/status", self.pid), "VmHWM:").map(|k| k * 1024)
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop();
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
/// `prefix`, and when it came.
fn copy_stdout(
    stdout: std::process::ChildStdout,
    mut log: File,
    mut prefix: Option<String>,
    started: Instant,
    announce: &mpsc::Sender<Ready>,
) {
    let reader = BufReader::new(stdout);
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        let _ = log.write_all(&line);
        let _ = log.write_all(b"\n");
        if let Some(p) = &prefix {
            let text = String::from_utf8_lossy(&line);
            if let Some(rest) = text.trim_end().strip_prefix(p.as_str()) {
                let _ = announce.send(Ready {
                    rest: rest.trim().to_owned(),
                    after: started.elapsed(),
                });
                prefix = None;
            }
        }
    }
}

/// Clock ticks per second for `/proc/*/stat` (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// User + system CPU time from a `/proc/<pid>/stat` file.
pub fn cpu_of(stat_path: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(stat_path).with_context(|| format!("read {stat_path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("stat format")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    let ticks = clock_ticks();
    Ok(Duration::from_millis((utime + stime) * 1000 / ticks))
}

/// A `kB` line (such as `VmHWM:`) from a `/proc/<pid>/status` file.
pub fn status_kib(status_path: &str, field: &str) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string(status_path).with_context(|| format!("read {status_path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in {status_path}"))
}

/// This process's own CPU time and peak RSS (bytes).
pub fn own_usage() -> anyhow::Result<(Duration, u64)> {
    Ok((
        cpu_of("/proc/self/stat")?,
        status_kib("/proc/self/status", "VmHWM:")? * 1024,
    ))
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("nothing listens on port {port} after {timeout:?}")
}

/// The machine's load averages (1, 5, 15 min) and core count, to say how busy it was.
pub fn machine_load() -> (String, usize) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (load, cores)
}

/// Free bytes on the file system holding `path` (from `df`).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("df").args(["-Pk"]).arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let avail_kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(avail_kib * 1024)
}
