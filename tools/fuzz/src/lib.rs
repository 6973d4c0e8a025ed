//! Fuzzing oss2s3's parsers of untrusted input (see `targets` for the list and what each
//! checks). `oss2s3-fuzz` runs the targets on stable Rust with a seed-mutating runner
//! (`runner`, `mutate`); `fuzz/` wraps the same targets for cargo-fuzz's coverage-guided
//! libFuzzer on nightly. `./scripts/fuzz` picks whichever is available.

pub mod emulator;
pub mod mutate;
pub mod runner;
pub mod seeds;
pub mod targets;
