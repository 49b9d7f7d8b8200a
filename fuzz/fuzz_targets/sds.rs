//! Fuzz target: the sds and mstr header readers over a one-segment memory image.
//! Input format and invariants: `redis_rescue_fuzz_entry::sds`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| redis_rescue_fuzz_entry::sds(data));
