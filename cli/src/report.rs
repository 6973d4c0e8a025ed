//! A job's report, in the layout of Alibaba Data Online Migration's, under `REPORT/JOB_ID/`:
//!
//! | file | what |
//! |---|---|
//! | `total_list.csv.gz` | every object of the job |
//! | `completed_list.csv.gz`, `skipped_list.csv.gz`, `error_list.csv.gz` | the same rows, by category |
//! | `summary.json` | counts, bytes, times and throughput |
//! | `report.html` | one self-contained page: summary, charts, histogram, statuses, first errors |
//! | `checkpoint.json` | where an interrupted job resumes (`--resume JOB_ID`) |
//!
//! Each list has the columns `key, destination_key, size, etag, crc64, last_modified, status,
//! reason`, quoted as RFC 4180 says, so any key (commas, quotes, newlines) survives. The lists
//! are gzip files of one or more members (one per checkpoint), which `zcat`, Python's `gzip`
//! and every gzip reader read as one.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::html;
use crate::stats::{Category, Stats, Tally};

/// Reads one of the lists (`total_list.csv.gz`, ...): every gzip member, every row.
pub fn read_list(path: &Path) -> anyhow::Result<Vec<Row>> {
    use std::io::Read as _;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(
        File::open(path).with_context(|| format!("opening {}", path.display()))?,
    )
    .read_to_string(&mut text)
    .with_context(|| format!("{} is not gzip-compressed UTF-8", path.display()))?;
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a list of rows", path.display()))
}

/// One row of the lists.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Row {
    /// The source key (for destination-only objects, the source key they map to).
    pub key: String,
    /// The destination key.
    pub destination_key: String,
    /// The size in bytes.
    pub size: u64,
    /// The ETag as listed, without quotes.
    pub etag: String,
    /// The CRC-64/XZ, when known.
    pub crc64: Option<u64>,
    /// The last-modified time (RFC 3339), when listed.
    pub last_modified: String,
    /// What happened: `copied`, `deleted`, `up_to_date`, `conflict`, `extra`, `missing`,
    /// `changed`, `failed`, ...
    pub status: String,
    /// Why, in words.
    pub reason: String,
}

const LISTS: [&str; 4] = ["total_list", "completed_list", "skipped_list", "error_list"];

type Writer = csv::Writer<GzEncoder<BufWriter<File>>>;

/// The four lists being written.
pub struct Lists {
    dir: PathBuf,
    writers: Option<[Writer; 4]>,
}

impl std::fmt::Debug for Lists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lists")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn path(dir: &Path, list: &str) -> PathBuf {
    dir.join(format!("{list}.csv.gz"))
}

impl Lists {
    /// Lists in `dir`, appended to when `lengths` (from a checkpoint) are given (each file cut
    /// back to its length at that checkpoint first), else created anew.
    pub fn open(dir: &Path, lengths: Option<&[u64; 4]>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, list) in LISTS.iter().enumerate() {
            let p = path(dir, list);
            if let Some(lengths) = lengths {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .with_context(|| format!("opening {} to resume", p.display()))?;
                file.set_len(lengths[i])?;
            } else {
                {
                    let mut writer = csv::Writer::from_writer(GzEncoder::new(
                        BufWriter::new(File::create(&p)?),
                        Compression::default(),
                    ));
                    writer.write_record([
                        "key",
                        "destination_key",
                        "size",
                        "etag",
                        "crc64",
                        "last_modified",
                        "status",
                        "reason",
                    ])?;
                    finish(writer)?;
                }
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            writers: None,
        })
    }

    fn writers(&mut self) -> anyhow::Result<&mut [Writer; 4]> {
        if self.writers.is_none() {
            let open = |list: &str| -> anyhow::Result<Writer> {
                let file = OpenOptions::new()
                    .append(true)
                    .open(path(&self.dir, list))?;
                Ok(csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(GzEncoder::new(BufWriter::new(file), Compression::default())))
            };
            self.writers = Some([
                open(LISTS[0])?,
                open(LISTS[1])?,
                open(LISTS[2])?,
                open(LISTS[3])?,
            ]);
        }
        Ok(self.writers.as_mut().expect("just opened"))
    }

    /// Writes `row` to the total list and its category's list.
    pub fn write(&mut self, category: Category, row: &Row) -> anyhow::Result<()> {
        let writers = self.writers()?;
        writers[0].serialize(row)?;
        let i = match category {
            Category::Completed => 1,
            Category::Skipped => 2,
            Category::Failed => 3,
        };
        writers[i].serialize(row)?;
        Ok(())
    }

    /// Ends the current gzip members, so that every row so far is readable; returns the files'
    /// lengths (for a checkpoint).
    pub fn sync(&mut self) -> anyhow::Result<[u64; 4]> {
        if let Some(writers) = self.writers.take() {
            for writer in writers {
                finish(writer)?;
            }
        }
        let mut lengths = [0; 4];
        for (i, list) in LISTS.iter().enumerate() {
            lengths[i] = std::fs::metadata(path(&self.dir, list))?.len();
        }
        Ok(lengths)
    }
}

fn finish(writer: Writer) -> anyhow::Result<()> {
    let encoder = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing a list: {}", e.error()))?;
    let mut file = encoder.finish()?;
    file.flush()?;
    file.get_ref().sync_data()?;
    Ok(())
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The job's ID.
    pub job_id: String,
    /// `sync` or `verify`.
    pub command: String,
    /// The source location.
    pub source: String,
    /// The destination location.
    pub destination: String,
    /// When the job started (its first run, when resumed).
    pub started_at: DateTime<Utc>,
    /// When it ended (or was interrupted).
    pub finished_at: DateTime<Utc>,
    /// Seconds between the two, without the time between an interruption and its resume.
    pub duration_seconds: f64,
    /// Objects by category.
    pub objects: Tally,
    /// Bytes by category (object sizes).
    pub bytes: Tally,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Bytes copied per second of the job.
    pub throughput_bytes_per_second: f64,
    /// Rows by status.
    pub statuses: std::collections::BTreeMap<String, u64>,
    /// Whether the job was interrupted before its end (resume it with `--resume`).
    pub interrupted: bool,
    /// Whether the job found nothing wrong: for verify, no difference; for sync, no failure.
    pub ok: bool,
}

/// Writes `summary.json` and `report.html` into `dir`.
pub fn write_summary(dir: &Path, summary: &Summary, stats: &Stats) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(summary)?;
    write_atomic(&dir.join("summary.json"), &json)?;
    write_atomic(
        &dir.join("report.html"),
        html::page(summary, stats).as_bytes(),
    )?;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;

    fn row(key: &str, status: &str) -> Row {
        Row {
            key: key.to_owned(),
            destination_key: key.to_owned(),
            size: 3,
            etag: "E".to_owned(),
            crc64: Some(7),
            last_modified: String::new(),
            status: status.to_owned(),
            reason: "r, \"quoted\"".to_owned(),
        }
    }

    fn read(dir: &Path, list: &str) -> Vec<Row> {
        read_list(&path(dir, list)).expect("a readable list")
    }

    #[test]
    fn lists_round_trip_any_key_across_checkpoints_and_a_resume() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let odd = "a,b \"c\"\nd\r\u{1F600}";
        let mut lists = Lists::open(dir.path(), None).expect("open");
        lists
            .write(Category::Completed, &row(odd, "copied"))
            .expect("write");
        let lengths = lists.sync().expect("sync");
        lists
            .write(Category::Failed, &row("lost", "failed"))
            .expect("write");
        // Dropped without a sync: the rows after the checkpoint are lost, as in a crash.
        drop(lists);
        let mut lists = Lists::open(dir.path(), Some(&lengths)).expect("resume");
        lists
            .write(Category::Skipped, &row("b", "up_to_date"))
            .expect("write");
        lists.sync().expect("sync");
        let total = read(dir.path(), "total_list");
        assert_eq!(total, vec![row(odd, "copied"), row("b", "up_to_date")]);
        assert_eq!(read(dir.path(), "completed_list"), vec![row(odd, "copied")]);
        assert_eq!(
            read(dir.path(), "skipped_list"),
            vec![row("b", "up_to_date")]
        );
        assert!(read(dir.path(), "error_list").is_empty());
    }
}
