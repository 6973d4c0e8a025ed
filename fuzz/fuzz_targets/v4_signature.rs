//! cargo-fuzz wrapper of the `v4_signature` target (see tools/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oss2s3_fuzz::targets::run_named("v4_signature", data));
