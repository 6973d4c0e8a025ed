//! Throttling: `--bwlimit` (bytes/s, or an rclone-style timetable) and `--tpslimit`
//! (objects/s), and a source store whose reads obey the bandwidth limit.
//!
//! Limits hold for this process: every part and object the job reads shares one limiter.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{Local, NaiveTime, Timelike};
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use transfer::store::{
    GetOutput, GetRequest, ListPage, ListRequest, ObjectAttributes, ObjectSource, ObjectStore,
    StoreError,
};

/// A rate in bytes per second: a number with an optional binary suffix (`K` = KiB, `M` = MiB,
/// `G` = GiB), or `off`.
fn parse_rate(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (digits, unit) = match text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let factor: f64 = match unit
        .trim_end_matches(['B', 'b', '/', 's'])
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 1.0,
        "K" | "KI" => 1024.0,
        "M" | "MI" => 1024.0 * 1024.0,
        "G" | "GI" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("{text:?}: the unit {unit:?} is not K, M or G")),
    };
    let number: f64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a rate such as 10M, 512K or off"))?;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive rate far below 2^53 bytes/s"
    )]
    let rate = (number * factor).round() as u64;
    if rate == 0 {
        return Err(format!("{text:?}: a rate must be above zero (or off)"));
    }
    Ok(Some(rate))
}

/// A bandwidth limit: one rate, or rates that change at times of day (local time), as in
/// rclone's `--bwlimit "08:00,512K 12:00,10M 19:00,off"`. Before the first time of a day, the
/// day before's last rate holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timetable {
    /// `(time of day, rate)`, sorted by time; `None` is no limit.
    slots: Vec<(NaiveTime, Option<u64>)>,
}

impl FromStr for Timetable {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut slots = Vec::new();
        for item in text.split_whitespace() {
            match item.split_once(',') {
                Some((time, rate)) => {
                    let time = NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| {
                        format!("{item:?}: {time:?} is not a time of day such as 08:00")
                    })?;
                    slots.push((time, parse_rate(rate)?));
                }
                None if text.split_whitespace().count() == 1 => {
                    slots.push((NaiveTime::MIN, parse_rate(item)?));
                }
                None => {
                    return Err(format!(
                        "{item:?}: a timetable's entries are HH:MM,RATE, e.g. \"08:00,10M 19:00,off\""
                    ));
                }
            }
        }
        if slots.is_empty() {
            return Err("the bandwidth limit is empty".to_owned());
        }
        slots.sort_by_key(|(time, _)| *time);
        if slots.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(format!("{text:?} names the same time twice"));
        }
        Ok(Self { slots })
    }
}

impl fmt::Display for Timetable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .slots
            .iter()
            .map(|(time, rate)| {
                let rate = rate.map_or_else(|| "off".to_owned(), |r| format!("{r}B/s"));
                format!("{},{rate}", time.format("%H:%M"))
            })
            .collect();
        f.write_str(&items.join(" "))
    }
}

impl Timetable {
    /// The one rate of a timetable that does not change (`Some(None)`: no limit), or `None`
    /// when it does.
    pub fn single_rate(&self) -> Option<Option<u64>> {
        match self.slots.as_slice() {
            [(_, rate)] => Some(*rate),
            _ => None,
        }
    }

    /// The rate at `time` of day.
    pub fn rate_at(&self, time: NaiveTime) -> Option<u64> {
        let time = time.with_nanosecond(0).unwrap_or(time);
        self.slots
            .iter()
            .rev()
            .find(|(start, _)| *start <= time)
            .or_else(|| self.slots.last())
            .and_then(|(_, rate)| *rate)
    }
}

/// Bytes-per-second limiting shared by every read of a job.
#[derive(Debug)]
pub struct Bandwidth {
    timetable: Timetable,
    current: Mutex<Option<(u64, Arc<DefaultDirectRateLimiter>)>>,
}

impl Bandwidth {
    /// A limiter following `timetable`.
    pub fn new(timetable: Timetable) -> Arc<Self> {
        Arc::new(Self {
            timetable,
            current: Mutex::new(None),
        })
    }

    /// The limiter for the rate that holds now, or `None` when there is no limit now. The
    /// bucket holds a tenth of a second's bytes, so bursts stay small.
    fn limiter(&self) -> Option<(u32, Arc<DefaultDirectRateLimiter>)> {
        let rate = self.timetable.rate_at(Local::now().time())?;
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_second = NonZeroU32::new(u32::try_from(rate).unwrap_or(u32::MAX).max(1))?;
        let burst = NonZeroU32::new(
            (per_second.get() / 10)
                .max(16 * 1024)
                .min(per_second.get().max(1)),
        )?;
        match &*current {
            Some((r, limiter)) if *r == rate => Some((burst.get(), Arc::clone(limiter))),
            _ => {
                let limiter = Arc::new(RateLimiter::direct(
                    Quota::per_second(per_second).allow_burst(burst),
                ));
                *current = Some((rate, Arc::clone(&limiter)));
                Some((burst.get(), limiter))
            }
        }
    }

    /// Waits until `bytes` more may be read.
    pub async fn consume(&self, bytes: usize) {
        let mut left = u32::try_from(bytes).unwrap_or(u32::MAX);
        while left > 0 {
            let Some((burst, limiter)) = self.limiter() else {
                return;
            };
            let take = left.min(burst);
            if let Some(n) = NonZeroU32::new(take) {
                // `take` is at most the burst, so the limiter can always grant it.
                let _ = limiter.until_n_ready(n).await;
            }
            left -= take;
        }
    }
}

/// An objects-per-second limit.
#[derive(Debug)]
pub struct Tps(DefaultDirectRateLimiter);

impl Tps {
    /// At most `per_second` objects a second, with no bursts.
    pub fn new(per_second: NonZeroU32) -> Self {
        Self(RateLimiter::direct(
            Quota::per_second(per_second).allow_burst(NonZeroU32::MIN),
        ))
    }

    /// Waits until one more object may start.
    pub async fn wait(&self) {
        self.0.until_ready().await;
    }
}

/// A source store whose object bodies are read no faster than a [`Bandwidth`] allows.
#[derive(Debug, Clone)]
pub struct Throttled<S> {
    inner: S,
    bandwidth: Option<Arc<Bandwidth>>,
}

impl<S> Throttled<S> {
    /// `inner`, limited by `bandwidth` when there is one.
    pub fn new(inner: S, bandwidth: Option<Arc<Bandwidth>>) -> Self {
        Self { inner, bandwidth }
    }
}

impl<S: ObjectStore> ObjectStore for Throttled<S> {
    type Restore = S::Restore;
    type Symlinks = S::Symlinks;

    fn scheme(&self) -> &'static str {
        self.inner.scheme()
    }

    fn archive_restore(&self) -> Option<&Self::Restore> {
        self.inner.archive_restore()
    }

    fn symlinks(&self) -> Option<&Self::Symlinks> {
        self.inner.symlinks()
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectAttributes, StoreError> {
        self.inner.head_object(bucket, key).await
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.delete_object(bucket, key, if_match).await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest,
    ) -> Result<ListPage, StoreError> {
        self.inner.list_objects(bucket, request).await
    }
}

impl<S: ObjectSource> ObjectSource for Throttled<S> {
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        request: &GetRequest,
    ) -> Result<GetOutput, StoreError> {
        let mut output = self.inner.get_object(bucket, key, request).await?;
        if let Some(bandwidth) = &self.bandwidth {
            let bandwidth = Arc::clone(bandwidth);
            output.body = output
                .body
                .then(move |chunk| {
                    let bandwidth = Arc::clone(&bandwidth);
                    async move {
                        if let Ok(bytes) = &chunk {
                            bandwidth.consume(bytes.len()).await;
                        }
                        chunk
                    }
                })
                .boxed();
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("a time")
    }

    #[test]
    fn a_single_rate_holds_all_day() {
        let t: Timetable = "10M".parse().expect("valid");
        assert_eq!(t.rate_at(at(0, 0)), Some(10 * 1024 * 1024));
        assert_eq!(t.rate_at(at(23, 59)), Some(10 * 1024 * 1024));
        let t: Timetable = "5000000".parse().expect("valid");
        assert_eq!(t.rate_at(at(12, 0)), Some(5_000_000));
    }

    #[test]
    fn a_timetable_switches_at_its_times_and_wraps_past_midnight() {
        let t: Timetable = "08:00,512K 12:00,10M 19:00,off".parse().expect("valid");
        assert_eq!(
            t.rate_at(at(7, 59)),
            None,
            "the day before's last slot (off)"
        );
        assert_eq!(t.rate_at(at(8, 0)), Some(512 * 1024));
        assert_eq!(t.rate_at(at(11, 0)), Some(512 * 1024));
        assert_eq!(t.rate_at(at(12, 30)), Some(10 * 1024 * 1024));
        assert_eq!(t.rate_at(at(19, 0)), None);
        let t: Timetable = "19:00,1M 08:00,2M".parse().expect("valid, any order");
        assert_eq!(t.rate_at(at(3, 0)), Some(1024 * 1024));
    }

    #[test]
    fn bad_limits_say_what_is_wrong() {
        for (text, says) in [
            ("10X", "unit"),
            ("8:00,1M 08:00,2M", "same time"),
            ("25:00,1M", "time of day"),
            ("fast", "unit"),
            ("1.2.3M", "not a rate"),
            ("0", "above zero"),
            ("08:00,1M 2M", "HH:MM,RATE"),
        ] {
            let err = text.parse::<Timetable>().expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
