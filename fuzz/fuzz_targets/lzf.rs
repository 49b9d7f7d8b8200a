//! Fuzz target: LZF decompression, against the lzf crate, and compress/decompress round trips.
//! Input format and invariants: `redis_rescue_fuzz_entry::lzf`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| redis_rescue_fuzz_entry::lzf(data));
