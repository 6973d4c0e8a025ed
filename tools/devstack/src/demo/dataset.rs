//! The demo's data set: keys of every shape, sizes from 0 B to the maximum, content headers
//! and user metadata, and how each object is uploaded.

use super::*;

/// How an object is written to OSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadKind {
    /// One PutObject.
    Put,
    /// InitiateMultipartUpload, UploadPart × n, CompleteMultipartUpload.
    Multipart {
        /// The part size in bytes (every part but the last).
        part_size: u64,
    },
    /// AppendObject `pieces` times (each append fires its own trigger event).
    Append {
        /// How many appends.
        pieces: u64,
    },
}

/// One object of the data set.
#[derive(Debug, Clone)]
pub struct DemoObject {
    /// The key, deliberately odd at times (spaces, `+`, `%`, Unicode).
    pub key: String,
    /// The size in bytes.
    pub size: u64,
    /// Seed of its contents.
    pub seed: u64,
    /// How it is uploaded.
    pub kind: UploadKind,
    /// Content headers stored with it.
    pub content: ContentHeaders,
    /// User metadata (names as sent; OSS and S3 keep them lower-case).
    pub user_metadata: BTreeMap<String, String>,
}

impl DemoObject {
    /// The object's bytes (deterministic pseudo-random data).
    pub fn bytes(&self) -> Vec<u8> {
        let mut state = self.seed | 1;
        let mut out = Vec::with_capacity(transfer::size::as_usize(self.size) + 8);
        while (out.len() as u64) < self.size {
            // xorshift64*: fast and good enough to defeat compression and dedup.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        out.truncate(transfer::size::as_usize(self.size));
        out
    }
}

/// A small deterministic random source for sizes and choices (splitmix64).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Key shapes: plain, nested, spaces, `+`, `%`, literal `%2B`, Unicode, emoji, punctuation.
const KEY_SHAPES: &[&str] = &[
    "photos/2024/05/IMG_{i}.jpg",
    "logs/app server {i}.log",
    "a+b/c+d {i}.bin",
    "percent/100% done {i}.txt",
    "percent/literal a%2Bb {i}",
    "unicode/文件-{i}.txt",
    "unicode/Ünïcödé Straße {i}.csv",
    "emoji/rocket 🚀 {i}.dat",
    "deep/a/b/c/d/e/f/{i}.json",
    "punct/key=({i}) & [x],y;z!'@$.txt",
    "tilde/~user/{i}.tar",
    "reports/Q2 (final) v{i}.pdf",
];

fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or_default() {
        "jpg" => "image/jpeg",
        "txt" | "log" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv",
        "pdf" => "application/pdf",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

/// The data set: `options.objects` objects from 0 B to `options.max_size`, with an empty
/// object, one object of exactly the maximum size, a few multipart uploads (one of them also the
/// maximum size), one appendable object, and log-uniform sizes for the rest.
pub fn dataset(options: &DemoOptions) -> Vec<DemoObject> {
    let mut rng = Rng(options.seed);
    let max = options.max_size.max(1);
    let n = options.objects.max(1);
    let mut objects = Vec::with_capacity(n);
    let multipart_sizes: Vec<u64> = if n >= 50 {
        vec![max, max / 2 + 12_345, max * 3 / 8, (5 * MIB + 1).min(max)]
    } else if n >= 3 {
        vec![max]
    } else {
        Vec::new()
    };
    for i in 0..n {
        let shape = KEY_SHAPES[i % KEY_SHAPES.len()];
        let mut key = shape.replace("{i}", &format!("{i:03}"));
        let (size, kind) = if i == 0 {
            (0, UploadKind::Put)
        } else if i == 1 {
            (max, UploadKind::Put)
        } else if i == 2 && n >= 4 {
            key = format!("append/journal-{i:03}.log");
            (300 * 1024 + 7, UploadKind::Append { pieces: 3 })
        } else if let Some(&size) = multipart_sizes.get(i.wrapping_sub(3)) {
            let part_size = if size >= 32 * MIB { 8 * MIB } else { MIB };
            key = format!("multipart/{} part {i:03}.bin", size / MIB);
            (size, UploadKind::Multipart { part_size })
        } else {
            // Log-uniform between 1 B and max/8: mostly small objects, some large ones.
            let top = ((max / 8).max(2)) as f64;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "top^u for u in 0..1 is in 1..top, far below u64::MAX"
            )]
            let size = top.powf(rng.unit()) as u64;
            (size, UploadKind::Put)
        };
        let mut content = ContentHeaders {
            content_type: Some(content_type(&key).to_owned()),
            ..ContentHeaders::default()
        };
        if i % 3 == 0 {
            content.content_disposition = Some(format!("attachment; filename=\"file-{i}.bin\""));
        }
        if i % 5 == 0 {
            content.cache_control = Some("public, max-age=3600".into());
        }
        if i % 7 == 0 {
            content.content_language = Some("en-US".into());
        }
        if i % 11 == 0 {
            content.content_encoding = Some("gzip".into());
        }
        if i % 13 == 0 {
            content.expires = Some("Thu, 01 Jan 2037 00:00:00 GMT".into());
        }
        let mut user_metadata = BTreeMap::from([
            ("origin".to_owned(), "devstack-demo".to_owned()),
            ("index".to_owned(), i.to_string()),
        ]);
        if i % 4 == 0 {
            user_metadata.insert("Camera-Model".into(), "Model X 100".into());
        }
        objects.push(DemoObject {
            key,
            size,
            seed: options.seed ^ (i as u64).wrapping_mul(0x9E37_79B9),
            kind,
            content,
            user_metadata,
        });
    }
    objects
}

/// The size of the `i`-th pre-existing object: 1 KiB and up, with every tenth at 24 MiB, so
/// that the backfill makes multipart copies too.
pub(super) fn existing_size(i: usize) -> u64 {
    if i % 10 == 9 {
        (24 << 20) - i as u64
    } else {
        1024 * (1 + i as u64 * 37)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_data_set_covers_every_kind_and_the_size_range() {
        let objects = dataset(&DemoOptions::default());
        assert_eq!(objects.len(), 200);
        assert_eq!(objects.iter().map(|o| o.size).min(), Some(0));
        assert_eq!(objects.iter().map(|o| o.size).max(), Some(64 * MIB));
        let multipart = objects
            .iter()
            .filter(|o| matches!(o.kind, UploadKind::Multipart { .. }))
            .count();
        assert!(multipart >= 3, "{multipart}");
        assert_eq!(
            objects
                .iter()
                .filter(|o| matches!(o.kind, UploadKind::Append { .. }))
                .count(),
            1
        );
        assert!(objects.iter().any(|o| o.key.contains(' ')));
        assert!(objects.iter().any(|o| o.key.contains('+')));
        assert!(objects.iter().any(|o| o.key.contains('%')));
        assert!(objects.iter().any(|o| !o.key.is_ascii()));
        let keys: std::collections::HashSet<_> = objects.iter().map(|o| &o.key).collect();
        assert_eq!(keys.len(), objects.len(), "keys are unique");
    }

    #[test]
    fn object_bytes_are_deterministic_and_sized() {
        let objects = dataset(&DemoOptions {
            objects: 10,
            max_size: MIB,
            ..DemoOptions::default()
        });
        for o in &objects {
            assert_eq!(o.bytes().len() as u64, o.size);
            assert_eq!(o.bytes(), o.bytes());
        }
    }
}
