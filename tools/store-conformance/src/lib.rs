//! The object store contract of the seam in `transfer::store`, written once and run against
//! every store: [`MemoryStore`](transfer::store::MemoryStore), `S3Store` on moto and
//! `OssClient` on the OSS emulator (see this crate's tests). A new store is done when it passes.
//!
//! The idea is rclone's `fstests`: one suite, many backends, and what a backend cannot do is
//! declared rather than skipped silently.
//!
//! - A store that lacks an optional capability lists its methods in
//!   [`SuiteOptions::unimplementable`] (`restore_object`, `symlink_target`, `put_symlink`); the
//!   suite then checks that the store really reports the capability as absent, and fails if a
//!   declared-missing capability is present or an undeclared one is missing.
//! - A server that does not implement a behaviour of the service it stands in for (moto does
//!   not verify checksums) names it in [`SuiteOptions::gaps`] with the reason; the cases that
//!   need it are reported as skipped with that reason.
//!
//! Every case returns `Err(reason)` instead of panicking, so that the suite can be run against
//! a store that breaks the contract and prove that it fails (see `tests/broken_store.rs`).

mod cases;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use transfer::store::{ObjectSink, ObjectSource};

pub use cases::{Case, cases};

/// The capability methods a store may declare unimplementable.
pub const CAPABILITY_METHODS: &[&str] = &["restore_object", "symlink_target", "put_symlink"];

/// A behaviour of the real service that a stand-in server may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Refusing a body that does not match the checksums the writer stated.
    ChecksumVerification,
    /// Refusing user metadata over the store's [`PartLimits::max_user_metadata`].
    ///
    /// [`PartLimits::max_user_metadata`]: transfer::store::PartLimits::max_user_metadata
    MetadataLimit,
    /// Refusing keys over the store's [`PartLimits::max_key_len`].
    ///
    /// [`PartLimits::max_key_len`]: transfer::store::PartLimits::max_key_len
    KeyLengthLimit,
    /// Answering UploadPart and CompleteMultipartUpload of an upload that does not exist with
    /// "no such upload".
    UnknownUploadWrites,
}

/// A behaviour the store under test lacks, and why.
#[derive(Debug, Clone, Copy)]
pub struct Gap {
    /// The behaviour.
    pub behaviour: Behaviour,
    /// Why it is missing (for example, "moto 5.2.5 stores checksums but does not verify them").
    pub reason: &'static str,
}

/// A service answer the suite asks the test's fault hooks to produce, to check that the store
/// classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// The service throttles (S3 503 `SlowDown`, OSS 503 with a throttling code).
    Throttle,
    /// The service fails (HTTP 500 `InternalError`).
    ServerError,
    /// The service rejects the key (403 `InvalidAccessKeyId`).
    RejectCredentials,
    /// The service denies access (403 `AccessDenied`).
    DenyAccess,
    /// The body of a GET breaks off part-way.
    TruncateBody,
}

/// A test's way to make the store's service answer with a fault, for every request until
/// [`InjectFaults::clear`].
pub trait InjectFaults: Send + Sync {
    /// From now on, every request gets `fault`.
    fn inject(&self, fault: InjectedFault);
    /// Requests are answered normally again.
    fn clear(&self);
}

/// How to run the suite against one store.
#[derive(Clone)]
pub struct SuiteOptions {
    /// Capability methods the store cannot implement (from [`CAPABILITY_METHODS`]).
    pub unimplementable: &'static [&'static str],
    /// Behaviours the server under test lacks.
    pub gaps: &'static [Gap],
    /// How long the suite waits for a restore to finish before it gives up.
    pub restore_timeout: Duration,
    /// Only the cases whose names contain this (all when empty).
    pub filter: String,
    /// The fault hooks of the service under the store, to check the error classes that only a
    /// misbehaving service produces; the case is skipped without them.
    pub faults: Option<std::sync::Arc<dyn InjectFaults>>,
}

impl std::fmt::Debug for SuiteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuiteOptions")
            .field("unimplementable", &self.unimplementable)
            .field("gaps", &self.gaps)
            .field("restore_timeout", &self.restore_timeout)
            .field("filter", &self.filter)
            .field("faults", &self.faults.is_some())
            .finish()
    }
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            unimplementable: &[],
            gaps: &[],
            restore_timeout: Duration::from_secs(10),
            filter: String::new(),
            faults: None,
        }
    }
}

impl SuiteOptions {
    /// Why `behaviour` is missing, if the store declared it a gap.
    pub fn gap(&self, behaviour: Behaviour) -> Option<&'static str> {
        self.gaps
            .iter()
            .find(|g| g.behaviour == behaviour)
            .map(|g| g.reason)
    }

    /// Whether `method` is declared unimplementable.
    pub fn is_unimplementable(&self, method: &str) -> bool {
        self.unimplementable.contains(&method)
    }
}

/// What one case is given: the store, a bucket of its own, and a key prefix no other case uses.
#[derive(Debug)]
pub struct Ctx<'a, S> {
    /// The store under test.
    pub store: &'a S,
    /// A bucket that exists and that only this suite run uses.
    pub bucket: &'a str,
    /// A bucket that does not exist.
    pub missing_bucket: &'a str,
    /// The prefix this case's keys start with (`<case name>/`).
    pub prefix: String,
    /// The options.
    pub options: &'a SuiteOptions,
}

impl<S> Ctx<'_, S> {
    /// `name` under this case's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseOutcome {
    /// Every check held.
    Passed,
    /// A check failed, with the reason.
    Failed(String),
    /// The case does not apply to this store, with the reason.
    Skipped(String),
}

/// A case's result: `Ok(None)` passed, `Ok(Some(reason))` skipped, `Err(reason)` failed.
pub type CaseResult = Result<Option<String>, String>;

/// A boxed case future.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

/// What one suite run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The store's scheme.
    pub store: String,
    /// Each case and how it ended, in run order.
    pub cases: Vec<(&'static str, CaseOutcome)>,
}

impl Report {
    /// The names of the cases that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.cases
            .iter()
            .filter(|(_, o)| matches!(o, CaseOutcome::Failed(_)))
            .map(|(n, _)| *n)
            .collect()
    }

    /// The names of the cases that passed.
    pub fn passed(&self) -> Vec<&'static str> {
        self.cases
            .iter()
            .filter(|(_, o)| *o == CaseOutcome::Passed)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Checks that every case passed or was skipped for a declared reason.
    ///
    /// # Panics
    /// Otherwise, with the whole report as the message (for use in a test).
    pub fn assert_passed(&self) {
        assert!(!self.cases.is_empty(), "no case ran");
        assert!(self.failed().is_empty(), "{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "store conformance of `{}`:", self.store)?;
        for (name, outcome) in &self.cases {
            match outcome {
                CaseOutcome::Passed => writeln!(f, "  PASS {name}")?,
                CaseOutcome::Skipped(why) => writeln!(f, "  SKIP {name}: {why}")?,
                CaseOutcome::Failed(why) => writeln!(f, "  FAIL {name}: {why}")?,
            }
        }
        let failed = self.failed().len();
        write!(
            f,
            "{} passed, {failed} failed, {} skipped",
            self.passed().len(),
            self.cases.len() - failed - self.passed().len()
        )
    }
}

/// Runs every case (or those `options.filter` selects) against `store`, in order, each under
/// its own key prefix in `bucket`. `bucket` must exist and be empty.
pub async fn run<S>(store: &S, bucket: &str, options: &SuiteOptions) -> Report
where
    S: ObjectSource + ObjectSink,
{
    let missing_bucket = format!("{bucket}-missing");
    let mut report = Report {
        store: store.scheme().to_owned(),
        cases: Vec::new(),
    };
    for case in cases::<S>() {
        if !case.name.contains(options.filter.as_str()) {
            continue;
        }
        let ctx = Ctx {
            store,
            bucket,
            missing_bucket: &missing_bucket,
            prefix: format!("{}/", case.name),
            options,
        };
        let outcome = match (case.run)(&ctx).await {
            Ok(None) => CaseOutcome::Passed,
            Ok(Some(why)) => CaseOutcome::Skipped(why),
            Err(why) => CaseOutcome::Failed(why),
        };
        report.cases.push((case.name, outcome));
    }
    report
}

/// Fails the case with a message unless `condition` holds.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!("{} (line {})", format!($($message)+), line!()));
        }
    };
}

/// The value of a `Result`, or the case fails with what went wrong.
#[macro_export]
macro_rules! must {
    ($result:expr, $what:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return Err(format!("{}: {} (line {})", $what, error, line!())),
        }
    };
}
