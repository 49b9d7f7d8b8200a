//! Fuzz target: an intset: parse, every element.
//! Input format and invariants: `redis_rescue_fuzz_entry::intset`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| redis_rescue_fuzz_entry::intset(data));
