//! cargo-fuzz wrapper of the `queue_message` target (see tools/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oss2s3_fuzz::targets::run_named("queue_message", data));
