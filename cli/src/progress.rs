//! Progress: a bar on a terminal (objects, bytes, rate, ETA), plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use transfer::migrate::{ListingOptions, list_objects};
use transfer::store::ObjectStore;

use crate::filter::Filters;
use crate::stats::{Stats, human_bytes};

/// How much work there is: counted by a second listing of the source that runs beside the job.
#[derive(Debug, Default)]
pub struct Expected {
    objects: AtomicU64,
    bytes: AtomicU64,
    done: AtomicBool,
}

impl Expected {
    /// Starts counting what `filters` take of the listing.
    pub fn count<S: ObjectStore + Clone + 'static>(
        store: S,
        bucket: String,
        listing: ListingOptions,
        filters: Filters,
    ) -> Arc<Self> {
        let expected = Arc::new(Self::default());
        let counter = Arc::clone(&expected);
        let prefix = listing.prefix.clone();
        tokio::spawn(async move {
            let mut objects = list_objects(store, &bucket, listing);
            while let Some(Ok(object)) = objects.next().await {
                let relative = object.key.strip_prefix(&prefix).unwrap_or(&object.key);
                if filters.takes(relative, &object) {
                    counter.objects.fetch_add(1, Ordering::Relaxed);
                    counter.bytes.fetch_add(object.size, Ordering::Relaxed);
                }
            }
            counter.done.store(true, Ordering::Relaxed);
        });
        expected
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A bar on standard error when it is a terminal, else plain lines every 10 s.
    Auto,
    /// Nothing.
    Off,
}

/// Progress being shown.
#[derive(Debug)]
pub struct Running {
    mode: &'static str,
    bar: Option<ProgressBar>,
    every: Option<Duration>,
    last_line: Instant,
    started: Instant,
    expected: Arc<Expected>,
}

impl Progress {
    /// Starts showing the progress of a `mode` job.
    pub fn start(self, mode: &'static str, expected: Arc<Expected>) -> Running {
        let (bar, every) = match self {
            Self::Off => (None, None),
            Self::Auto if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(mode);
                bar.enable_steady_tick(Duration::from_millis(200));
                (Some(bar), None)
            }
            Self::Auto => (None, Some(Duration::from_secs(10))),
        };
        Running {
            mode,
            bar,
            every,
            last_line: Instant::now(),
            started: Instant::now(),
            expected,
        }
    }
}

impl Running {
    fn line(&self, stats: &Stats) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let expected = self.expected.objects.load(Ordering::Relaxed);
        let of = if self.expected.done.load(Ordering::Relaxed) {
            format!(" of {expected}")
        } else {
            String::new()
        };
        let eta = if self.expected.done.load(Ordering::Relaxed) && stats.bytes.total > 0 {
            let left = self
                .expected
                .bytes
                .load(Ordering::Relaxed)
                .saturating_sub(stats.bytes.total);
            let rate = stats.bytes.total as f64 / elapsed;
            format!(", ETA {:.0} s", left as f64 / rate.max(1.0))
        } else {
            String::new()
        };
        format!(
            "{}: {}{of} objects ({} completed, {} skipped, {} failed), {} copied at {}/s{eta}",
            self.mode,
            stats.objects.total,
            stats.objects.completed,
            stats.objects.skipped,
            stats.objects.failed,
            human_bytes(stats.copied_bytes),
            human_bytes(crate::stats::whole(stats.copied_bytes as f64 / elapsed)),
        )
    }

    /// Shows `stats`.
    pub fn update(&mut self, stats: &Stats) {
        if let Some(bar) = &self.bar {
            bar.set_length(
                self.expected
                    .bytes
                    .load(Ordering::Relaxed)
                    .max(stats.bytes.total),
            );
            bar.set_position(stats.bytes.total);
            bar.set_message(format!(
                "{} objects, {} failed",
                stats.objects.total, stats.objects.failed
            ));
        } else if let Some(every) = self.every
            && self.last_line.elapsed() >= every
        {
            eprintln!("{}", self.line(stats));
            self.last_line = Instant::now();
        }
    }

    /// Shows the end.
    pub fn finish(&mut self, stats: &Stats) {
        let had_bar = self.bar.take().is_some_and(|bar| {
            bar.finish_and_clear();
            true
        });
        if had_bar || self.every.is_some() {
            eprintln!("{}", self.line(stats));
        }
    }
}
