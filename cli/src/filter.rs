//! Which objects a job takes: `--include`/`--exclude` globs on the key relative to the source
//! prefix, `--modified-after`/`--modified-before`, `--min-size`/`--max-size`.

use chrono::{DateTime, NaiveDate, Utc};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use transfer::store::ListedObject;

/// The job's filters. An object is taken when it matches an include (or there are none),
/// matches no exclude, and passes the time and size bounds.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    /// Only objects last modified at or after this.
    pub modified_after: Option<DateTime<Utc>>,
    /// Only objects last modified before this.
    pub modified_before: Option<DateTime<Utc>>,
    /// Only objects of at least this many bytes.
    pub min_size: Option<u64>,
    /// Only objects of at most this many bytes.
    pub max_size: Option<u64>,
}

fn glob(pattern: &str) -> Result<Glob, String> {
    // `*` and `?` stay within one path segment; `**` crosses them, as in rclone and gitignore.
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("{pattern:?} is not a glob: {e}"))
}

fn set(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(glob(pattern)?);
    }
    builder.build().map(Some).map_err(|e| e.to_string())
}

impl Filters {
    /// Filters from the glob lists (the bounds are set on the fields).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        Ok(Self {
            include: set(include)?,
            exclude: set(exclude)?,
            ..Self::default()
        })
    }

    /// Whether the globs take `relative_key`.
    pub fn takes_key(&self, relative_key: &str) -> bool {
        self.include
            .as_ref()
            .is_none_or(|s| s.is_match(relative_key))
            && !self
                .exclude
                .as_ref()
                .is_some_and(|s| s.is_match(relative_key))
    }

    /// Whether a source object is taken.
    pub fn takes(&self, relative_key: &str, object: &ListedObject) -> bool {
        let modified = object.last_modified;
        self.takes_key(relative_key)
            && self.min_size.is_none_or(|min| object.size >= min)
            && self.max_size.is_none_or(|max| object.size <= max)
            && self
                .modified_after
                .is_none_or(|t| modified.is_some_and(|m| m >= t))
            && self
                .modified_before
                .is_none_or(|t| modified.is_some_and(|m| m < t))
    }
}

/// A time: RFC 3339 (`2024-05-01T12:00:00Z`) or a date (`2024-05-01`, midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{text:?} is not a time such as 2024-05-01 or 2024-05-01T12:00:00Z"))
}

/// A size in bytes: a number with an optional binary suffix (`K`, `M`, `G`, `T`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit
        .trim_end_matches(['B', 'b', 'i'])
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?}: the unit {unit:?} is not K, M, G or T")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 4096, 64K or 5G"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(size: u64, modified: &str) -> ListedObject {
        ListedObject {
            key: String::new(),
            size,
            etag: String::new(),
            last_modified: Some(parse_time(modified).expect("a time")),
            storage_class: None,
        }
    }

    #[test]
    fn globs_keep_star_within_a_segment_and_double_star_across() {
        let f = Filters::new(&["*.jpg".into(), "logs/**".into()], &["**/tmp/**".into()])
            .expect("valid");
        assert!(f.takes_key("a.jpg"));
        assert!(!f.takes_key("dir/a.jpg"), "* does not cross /");
        assert!(f.takes_key("logs/2024/01/x.gz"));
        assert!(!f.takes_key("logs/tmp/x"), "excluded");
        assert!(!f.takes_key("b.png"));
        assert!(
            Filters::new(&[], &[])
                .expect("valid")
                .takes_key("any/thing")
        );
        assert!(Filters::new(&["a[".into()], &[]).is_err());
    }

    #[test]
    fn time_and_size_bounds_apply_to_source_objects() {
        let f = Filters {
            modified_after: Some(parse_time("2024-01-01").expect("a date")),
            modified_before: Some(parse_time("2024-02-01T00:00:00Z").expect("a time")),
            min_size: Some(parse_size("1K").expect("a size")),
            max_size: Some(parse_size("1M").expect("a size")),
            ..Filters::default()
        };
        assert!(f.takes("k", &object(2048, "2024-01-15T00:00:00Z")));
        assert!(!f.takes("k", &object(2048, "2023-12-31T23:59:59Z")));
        assert!(
            !f.takes("k", &object(2048, "2024-02-01T00:00:00Z")),
            "before is exclusive"
        );
        assert!(!f.takes("k", &object(1023, "2024-01-15T00:00:00Z")));
        assert!(!f.takes("k", &object(1024 * 1024 + 1, "2024-01-15T00:00:00Z")));
    }

    #[test]
    fn sizes_and_times_refuse_nonsense() {
        assert_eq!(parse_size("5G"), Ok(5 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert!(parse_size("5Q").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
