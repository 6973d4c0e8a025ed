//! Seed inputs: the repository's sample events (`events/`), the odd-key corpus, the seeds kept
//! under `tools/fuzz/seeds/TARGET/`, and every crash found so far (`tools/fuzz/regressions/TARGET/`).

use std::path::{Path, PathBuf};

/// The fuzz crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the crashes found so far are kept, one directory per target.
pub fn regressions_dir(target: &str) -> PathBuf {
    crate_dir().join("regressions").join(target)
}

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// The crashes found so far for `target`.
pub fn regressions(target: &str) -> Vec<Vec<u8>> {
    files_in(&regressions_dir(target))
}

fn events() -> Vec<Vec<u8>> {
    let dir = crate_dir().join("../../events");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "odd-keys.txt"))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn odd_keys() -> Vec<String> {
    testkit::odd_keys::corpus()
        .into_iter()
        .map(|k| k.key)
        .collect()
}

/// The seeds of `target`: its own directory, its regressions, and what fits its input.
pub fn for_target(target: &str) -> Vec<Vec<u8>> {
    let mut seeds = files_in(&crate_dir().join("seeds").join(target));
    seeds.extend(regressions(target));
    match target {
        "trigger_body" | "queue_message" => seeds.extend(events()),
        "s3_event" => {
            seeds.extend(events());
            // Notifications of the odd keys as S3 encodes them, sixteen records each.
            for chunk in odd_keys().chunks(16) {
                let records: Vec<_> = chunk
                    .iter()
                    .map(|key| {
                        serde_json::json!({"eventVersion": "2.1", "eventSource": "aws:s3",
                            "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
                            "s3": {"bucket": {"name": "b"}, "object": {
                                "key": transfer::trigger::s3::encode_key(key), "size": 1}}})
                    })
                    .collect();
                seeds.push(
                    serde_json::json!({ "Records": records })
                        .to_string()
                        .into_bytes(),
                );
            }
        }
        "task_key" => seeds.extend(odd_keys().into_iter().map(String::into_bytes)),
        "oss_xml" | "v4_signature" => {
            // A mode byte, then keys (or request parts) separated by NULs.
            for (i, chunk) in odd_keys().chunks(8).enumerate() {
                let mut seed = vec![u8::try_from(i % 4).unwrap_or(0)];
                seed.extend_from_slice(chunk.join("\0").as_bytes());
                seeds.push(seed);
            }
        }
        "emulator_request" => {
            for (i, key) in odd_keys().iter().enumerate().take(64) {
                let mut seed = vec![u8::try_from(1 + i % 3).unwrap_or(1)];
                seed.extend_from_slice(format!("{i}\0{key}\0body {i}\0\0\0\0").as_bytes());
                seeds.push(seed);
            }
        }
        _ => {}
    }
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}
