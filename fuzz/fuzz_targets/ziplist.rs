//! Fuzz target: a ziplist: parse, every entry, convert to a listpack.
//! Input format and invariants: `redis_rescue_fuzz_entry::ziplist`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| redis_rescue_fuzz_entry::ziplist(data));
