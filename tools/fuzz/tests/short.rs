//! The suite's short fuzz run: every target on its seeds and regressions, then a few thousand
//! mutations each (a fixed RNG seed, so a failure repeats; `OSS2S3_FUZZ_SEED` picks another).
//! `./scripts/fuzz` runs the long ones.

use std::time::Duration;

use oss2s3_fuzz::runner::{Budget, run};
use oss2s3_fuzz::{seeds, targets};

fn rng_seed() -> u64 {
    std::env::var("OSS2S3_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201)
}

fn short_run(name: &str, runs: u64) {
    let mut target = targets::by_name(name).expect("a target");
    let seeds = seeds::for_target(name);
    let crashes = std::env::temp_dir().join("oss2s3-fuzz-crashes");
    let budget = Budget {
        runs: Some(seeds.len() as u64 + runs),
        time: Some(Duration::from_secs(20)),
    };
    match run(target.as_mut(), &seeds, budget, rng_seed(), Some(&crashes)) {
        Ok(outcome) => {
            eprintln!(
                "{name}: {} runs ({} seeds) in {:.1} s",
                outcome.runs,
                outcome.seeds,
                outcome.elapsed.as_secs_f64()
            );
            assert!(outcome.runs > outcome.seeds as u64, "mutations ran");
        }
        Err(crash) => panic!("{crash}"),
    }
}

#[test]
fn every_target_is_known_and_has_seeds() {
    for name in targets::NAMES {
        let target = targets::by_name(name).expect("a target");
        assert_eq!(target.name(), *name);
        assert!(!seeds::for_target(name).is_empty(), "{name}");
    }
    assert!(targets::by_name("no-such-target").is_none());
}

#[test]
fn trigger_body() {
    short_run("trigger_body", 20_000);
}

#[test]
fn queue_message() {
    short_run("queue_message", 20_000);
}

#[test]
fn s3_event() {
    short_run("s3_event", 20_000);
}

#[test]
fn task_key() {
    short_run("task_key", 5_000);
}

#[test]
fn oss_xml() {
    short_run("oss_xml", 5_000);
}

#[test]
fn oss_error() {
    short_run("oss_error", 20_000);
}

#[test]
fn secret_json() {
    short_run("secret_json", 20_000);
}

#[test]
fn v4_signature() {
    short_run("v4_signature", 5_000);
}

#[test]
fn emulator_request() {
    short_run("emulator_request", 1_000);
}

/// The targets catch what they are for: a property broken on purpose is reported, with its input.
#[test]
fn a_panicking_target_is_reported_with_its_input() {
    struct Fragile;
    impl targets::Target for Fragile {
        fn name(&self) -> &'static str {
            "fragile"
        }
        fn run(&mut self, data: &[u8]) {
            assert!(!data.contains(&b'!'), "a bang");
        }
    }
    let dir = tempfile_dir();
    let budget = Budget {
        runs: Some(100_000),
        time: Some(Duration::from_secs(20)),
    };
    let crash = run(&mut Fragile, &[b"hello".to_vec()], budget, 1, Some(&dir))
        .expect_err("the mutations find a '!'");
    assert!(crash.input.contains(&b'!'));
    assert!(crash.message.contains("a bang"), "{}", crash.message);
    let saved = crash.saved.expect("saved");
    assert_eq!(std::fs::read(&saved).expect("the saved input"), crash.input);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("oss2s3-fuzz-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    dir
}
