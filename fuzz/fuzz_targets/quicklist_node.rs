//! Fuzz target: quicklist nodes (packed, PLAIN, LZF) through ObjectDecoder, written to an RDB and read back.
//! Input format and invariants: `redis_rescue_fuzz_entry::quicklist_node`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| redis_rescue_fuzz_entry::quicklist_node(data));
