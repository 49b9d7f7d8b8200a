//! Fuzz target: the whole recovery (core parsing, profile, `server`, keyspace walk, RDB
//! written and read back) over the sample core `tests/data/sample-7.0.15.core.zst`
//! (or `$REDIS_RESCUE_FUZZ_CORE`) damaged in place by the input's mutation records.
//! Input format and invariants: `redis_rescue_fuzz_entry::walker`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_rescue_fuzz_entry as fuzz_entry;

fn core() -> &'static [u8] {
    match fuzz_entry::sample_core() {
        Ok(c) => c,
        Err(e) => panic!("cannot load the sample core: {e}"),
    }
}

fuzz_target!(
    init: {
        // Decompress the core and make the working copy before the first input is timed.
        fuzz_entry::walker(core(), &[]);
    },
    |data: &[u8]| fuzz_entry::walker(core(), data)
);
