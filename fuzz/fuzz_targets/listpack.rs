//! Fuzz target: a listpack: parse, every entry, re-encode with ListpackBuilder.
//! Input format and invariants: `redis_rescue_fuzz_entry::listpack`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| redis_rescue_fuzz_entry::listpack(data));
