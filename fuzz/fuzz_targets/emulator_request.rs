//! cargo-fuzz wrapper of the `emulator_request` target (see tools/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oss2s3_fuzz::targets::run_named("emulator_request", data));
