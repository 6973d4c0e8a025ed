//! A Lambda function's execution environment: the unchanged function binary as a child
//! process, its own [`RuntimeApi`], and the environment variables Lambda sets.
//!
//! Like Lambda, the environment is reset when the runtime exits or an invocation times out: the
//! process is killed (if needed) and started again, a cold start.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use tokio::sync::watch;

use crate::process::{ManagedProcess, log_tail};
use crate::runtime_api::{InvocationOutcome, RuntimeApi};

/// What to run and how Lambda would configure it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// The `bootstrap` executable.
    pub binary: PathBuf,
    /// The function's own environment (configuration, AWS credentials and endpoints).
    pub env: Vec<(String, String)>,
    /// Memory in MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`); informational here.
    pub memory_mb: u32,
    /// The function timeout; also each invocation's deadline.
    pub timeout: Duration,
    /// The region (`AWS_REGION`, `AWS_DEFAULT_REGION`) and the function ARN's region.
    pub region: String,
    /// The account ID in the function ARN.
    pub account: String,
    /// Where the runtime's stdout and stderr (its CloudWatch log stream) go.
    pub log: PathBuf,
    /// A program (and its arguments) to run the binary under, such as a profiler; empty for
    /// none.
    pub wrapper: Vec<String>,
    /// How long the runtime may take to exit after SIGTERM when the environment stops.
    pub grace: Duration,
}

impl FunctionSpec {
    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account, self.name
        )
    }
}

/// How long a runtime may take from process start to its first `invocation/next`.
const INIT_TIMEOUT: Duration = Duration::from_mins(1);

/// One execution environment; stops (killing the runtime) when dropped.
#[derive(Debug)]
pub struct FunctionInstance {
    spec: FunctionSpec,
    api: Arc<RuntimeApi>,
    process: Arc<Mutex<Option<ManagedProcess>>>,
    spawned: Instant,
    stop: watch::Sender<bool>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl FunctionInstance {
    /// Starts the runtime and waits until it asks for its first event (its init succeeded).
    pub async fn start(spec: FunctionSpec) -> anyhow::Result<Self> {
        let api = Arc::new(RuntimeApi::start(spec.arn()).await?);
        let spawned = Instant::now();
        let process = Arc::new(Mutex::new(Some(spawn_runtime(&spec, &api)?)));
        let (stop, stopped) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(
            spec.clone(),
            api.clone(),
            process.clone(),
            stopped,
        ));
        let instance = Self {
            spec,
            api,
            process,
            spawned,
            stop,
            supervisor,
        };
        instance.wait_ready().await?;
        Ok(instance)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.api.next_calls() == 0 {
            if let Some(error) = self.api.init_error() {
                bail!("{} reported an init error: {error}", self.spec.name);
            }
            let exited = lock(&self.process)
                .as_ref()
                .and_then(ManagedProcess::try_wait);
            if let Some(status) = exited {
                bail!(
                    "{} exited with {status} during init\n{}",
                    self.spec.name,
                    log_tail(&self.spec.log, 30)
                );
            }
            if started.elapsed() > INIT_TIMEOUT {
                bail!(
                    "{} did not call the Runtime API within {INIT_TIMEOUT:?}\n{}",
                    self.spec.name,
                    log_tail(&self.spec.log, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The function's settings.
    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// The time from starting the first runtime process to its first `invocation/next`.
    pub fn startup(&self) -> Option<std::time::Duration> {
        self.api
            .first_poll()
            .map(|at| at.saturating_duration_since(self.spawned))
    }

    /// The runtime process's ID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.process).as_ref().map(ManagedProcess::pid)
    }

    /// The runtime process's CPU time and peak RSS (bytes) so far.
    pub fn usage(&self) -> anyhow::Result<(Duration, u64)> {
        let guard = lock(&self.process);
        let process = guard
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the runtime is not running"))?;
        Ok((process.cpu()?, process.peak_rss()?))
    }

    /// The Runtime API address this environment's runtime uses.
    pub fn runtime_api(&self) -> std::net::SocketAddr {
        self.api.address()
    }

    /// Invokes the function with `payload`, as the event source mapping does (synchronously,
    /// with the function timeout as deadline). A timeout resets the environment.
    pub async fn invoke(&self, payload: Bytes) -> InvocationOutcome {
        let outcome = self
            .api
            .invoke(payload, self.spec.timeout, INIT_TIMEOUT)
            .await;
        if outcome == InvocationOutcome::TimedOut {
            tracing::warn!(function = %self.spec.name, timeout = ?self.spec.timeout, "invocation timed out; resetting the environment");
            if let Some(process) = lock(&self.process).as_ref() {
                process.kill();
            }
        }
        outcome
    }

    /// Stops the supervisor and kills the runtime.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.supervisor).await;
        lock(&self.process).take();
    }
}

impl Drop for FunctionInstance {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.supervisor.abort();
        lock(&self.process).take();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts `bootstrap` with a Lambda-like environment: nothing inherited but `PATH`.
fn spawn_runtime(spec: &FunctionSpec, api: &RuntimeApi) -> anyhow::Result<ManagedProcess> {
    let task_root = spec
        .binary
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut command = match spec.wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&spec.binary);
            command
        }
        None => Command::new(&spec.binary),
    };
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let stream = format!(
        "{}/[$LATEST]{:016x}",
        chrono::Utc::now().format("%Y/%m/%d"),
        std::process::id()
    );
    command
        .env("AWS_LAMBDA_RUNTIME_API", api.address().to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        )
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", stream)
        .env("AWS_REGION", &spec.region)
        .env("AWS_DEFAULT_REGION", &spec.region)
        .env("LAMBDA_TASK_ROOT", &task_root)
        .env("_HANDLER", "bootstrap")
        .env("TZ", ":UTC")
        .env("LANG", "en_US.UTF-8")
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(if task_root.is_empty() {
            ".".into()
        } else {
            task_root
        });
    Ok(ManagedProcess::spawn(&spec.name, command, &spec.log)?.with_grace(spec.grace))
}

/// Restarts the runtime whenever it exits, until told to stop.
async fn supervise(
    spec: FunctionSpec,
    api: Arc<RuntimeApi>,
    process: Arc<Mutex<Option<ManagedProcess>>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if *stopped.borrow() {
            return;
        }
        let status = {
            let guard = lock(&process);
            match guard.as_ref() {
                Some(p) => p.exit_description(),
                None => Some("not running".to_owned()),
            }
        };
        let Some(status) = status else {
            backoff = Duration::from_millis(200);
            continue;
        };
        api.fail_in_flight();
        tracing::warn!(function = %spec.name, %status, "runtime exited; starting a new environment");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        match spawn_runtime(&spec, &api) {
            Ok(p) => *lock(&process) = Some(p),
            Err(err) => {
                tracing::error!(function = %spec.name, error = %format!("{err:#}"), "cannot start the runtime");
            }
        }
    }
}
