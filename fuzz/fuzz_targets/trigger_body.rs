//! cargo-fuzz wrapper of the `trigger_body` target (see tools/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oss2s3_fuzz::targets::run_named("trigger_body", data));
