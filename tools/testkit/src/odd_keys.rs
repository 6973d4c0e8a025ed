//! The odd-key corpus, `events/odd-keys.txt`: keys that every path of oss2s3 must carry byte for
//! byte, or refuse for the reason the corpus notes. See the file's header for its escapes.

/// One key of the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OddKey {
    /// The key, unescaped.
    pub key: String,
    /// Why OSS cannot store it, when it cannot.
    pub oss_refuses: Option<String>,
    /// Why S3 cannot store it, when it cannot.
    pub s3_refuses: Option<String>,
    /// Why oss2s3 refuses it, in either direction, when both services could store it.
    pub oss2s3_refuses: Option<String>,
    /// Why moto, the tests' S3, cannot store it though S3 can.
    pub moto_refuses: Option<String>,
}

impl OddKey {
    /// Whether both services can store the key and oss2s3 carries it.
    pub fn everywhere(&self) -> bool {
        self.oss_refuses.is_none() && self.s3_refuses.is_none() && self.oss2s3_refuses.is_none()
    }

    /// Whether a test can carry the key from the emulator to moto's S3 and back.
    pub fn on_moto(&self) -> bool {
        self.everywhere() && self.moto_refuses.is_none()
    }
}

/// The corpus file's text.
pub const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../events/odd-keys.txt"
));

/// Undoes the corpus's escapes: `\\`, `\t`, `\n`, `\r` and `\u{HEX}`.
fn unescape(text: &str, line: usize) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let rest: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let hex = rest
                    .strip_prefix('{')
                    .unwrap_or_else(|| panic!("line {line}: \\u needs {{HEX}}"));
                let code = u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or_else(|| panic!("line {line}: \\u{{{hex}}} is not a character"));
                out.push(code);
            }
            other => panic!("line {line}: unknown escape \\{other:?}"),
        }
    }
    out
}

/// Every key of the corpus, in file order.
pub fn corpus() -> Vec<OddKey> {
    let mut keys = Vec::new();
    for (i, line) in CORPUS.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (text, note) = line.split_once('\t').unwrap_or((line, ""));
        let key = match text.strip_prefix("!repeat ") {
            Some(rest) => {
                let (n, unit) = rest
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("line {}: !repeat N TEXT", i + 1));
                let n: usize = n
                    .parse()
                    .unwrap_or_else(|_| panic!("line {}: {n:?} is not a count", i + 1));
                unescape(unit, i + 1).repeat(n)
            }
            None => unescape(text, i + 1),
        };
        let reason = |service: &str| {
            note.split("; ")
                .find_map(|part| part.strip_prefix(&format!("{service}-refuses: ")))
                .map(str::to_owned)
        };
        keys.push(OddKey {
            oss_refuses: reason("oss"),
            s3_refuses: reason("s3"),
            oss2s3_refuses: reason("oss2s3"),
            moto_refuses: reason("moto"),
            key,
        });
    }
    keys
}

/// The keys both services can store.
pub fn storable() -> Vec<String> {
    corpus()
        .into_iter()
        .filter(OddKey::everywhere)
        .map(|k| k.key)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_has_every_kind_of_key_it_promises_once() {
        let keys = corpus();
        assert!(keys.len() >= 200, "{} keys", keys.len());
        let mut unique: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "no key twice");
        let has = |k: &str| keys.iter().any(|o| o.key == k);
        for k in [
            "a+b",
            "a b",
            "a%20b",
            "a%2Bb",
            " leading space",
            "trailing space ",
            "tab\tkey",
            "back\\slash",
            "café",
            "cafe\u{301}",
            "Case.txt",
            "case.txt",
            "😀",
            "line\nfeed",
        ] {
            assert!(has(k), "{k:?}");
        }
        let lengths: Vec<usize> = keys.iter().map(|k| k.key.len()).collect();
        assert!(lengths.contains(&1023) && lengths.contains(&1024));
        let long = keys
            .iter()
            .find(|k| k.key.len() == 1024)
            .expect("1,024 bytes");
        assert!(long.oss_refuses.is_some() && long.s3_refuses.is_none());
        let slash = keys
            .iter()
            .find(|k| k.key == "/leading-slash")
            .expect("listed");
        assert_eq!(
            slash.oss_refuses.as_deref(),
            Some("a key cannot start with /")
        );
        let dots = keys.iter().find(|k| k.key == "dir/../up").expect("listed");
        assert!(dots.oss2s3_refuses.is_some() && !dots.everywhere());
        // Seven keys a service refuses, eight oss2s3 refuses; the rest go everywhere.
        assert_eq!(storable().len() + 15, keys.len());
        assert_eq!(
            keys.iter()
                .filter(|k| k.everywhere() && !k.on_moto())
                .count(),
            2
        );
    }
}
