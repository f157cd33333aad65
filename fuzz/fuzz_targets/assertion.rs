#![no_main]
// The property lives in writ::fuzz, where the test run replays fuzz/regressions too.
libfuzzer_sys::fuzz_target!(|data: &[u8]| writ::fuzz::assertion(data));
