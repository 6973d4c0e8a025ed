//! cargo-fuzz wrapper of the `task_key` target (see tools/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oss2s3_fuzz::targets::run_named("task_key", data));
