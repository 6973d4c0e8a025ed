//! Child processes (every server runs in its own) and what `/proc` says about them.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process that is killed when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let out = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = command
            .spawn()
            .with_context(|| format!("start {name} ({command:?})"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    /// Spawns `command` and waits (up to `timeout`) for a stdout line containing `marker`;
    /// returns the process, the line and the time from just before exec to the line. Later
    /// stdout lines go to `log`; stderr goes to `log` from the start.
    pub(crate) fn spawn_until_line(
        name: &str,
        mut command: Command,
        marker: &str,
        log: &Path,
        timeout: Duration,
    ) -> anyhow::Result<(Self, String, Duration)> {
        let err = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let mut rest = err.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("start {name} ({command:?})"))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let marker = marker.to_owned();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { return };
                if line.contains(&marker) {
                    let _ = tx.send((line, started.elapsed()));
                    break;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
            for line in lines {
                let Ok(line) = line else { return };
                let _ = std::io::Write::write_all(&mut rest, format!("{line}\n").as_bytes());
            }
        });
        let mut proc = Self {
            name: name.to_owned(),
            child,
        };
        match rx.recv_timeout(timeout) {
            Ok((line, elapsed)) => Ok((proc, line, elapsed)),
            Err(_) => {
                let status = proc.child.try_wait().ok().flatten();
                bail!(
                    "{name} did not print {:?} within {timeout:?} (exit status {status:?}); see {}",
                    "its ready line",
                    log.display()
                )
            }
        }
    }

    /// The process ID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) used so far.
    pub(crate) fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_of(&format!("/proc/{}/stat", self.pid()))
    }

    /// Peak resident set size so far, in bytes (`VmHWM`).
    pub(crate) fn peak_rss(&self) -> anyhow::Result<u64> {
        status_kib(&format!("/proc/{}/status", self.pid()), "VmHWM:").map(|k| k * 1024)
    }

    /// Whether the process has exited.
    pub(crate) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited() {
            // SIGTERM first, so a profiler wrapping the process can write its output.
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !self.exited() {
                let _ = self.child.kill();
            }
        }
        if self.child.wait().is_err() {
            eprintln!("bench: could not reap {}", self.name);
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
pub(crate) fn cpu_of(stat_path: &str) -> anyhow::Result<Duration> {
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
pub(crate) fn status_kib(status_path: &str, field: &str) -> anyhow::Result<u64> {
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
pub(crate) fn own_usage() -> anyhow::Result<(Duration, u64)> {
    Ok((
        cpu_of("/proc/self/stat")?,
        status_kib("/proc/self/status", "VmHWM:")? * 1024,
    ))
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
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
pub(crate) fn machine_load() -> (String, usize) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (load, cores)
}

/// Free bytes on the file system holding `path` (from `df`).
pub(crate) fn free_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("df").args(["-Pk"]).arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let avail_kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(avail_kib * 1024)
}
