//! cargo-fuzz wrapper of the `s3_event` target (see tools/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oss2s3_fuzz::targets::run_named("s3_event", data));
