//! Fuzz target: a zipmap: parse, every pair.
//! Input format and invariants: `redis_rescue_fuzz_entry::zipmap`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| redis_rescue_fuzz_entry::zipmap(data));
