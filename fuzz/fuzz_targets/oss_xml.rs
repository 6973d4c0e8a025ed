//! cargo-fuzz wrapper of the `oss_xml` target (see tools/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oss2s3_fuzz::targets::run_named("oss_xml", data));
