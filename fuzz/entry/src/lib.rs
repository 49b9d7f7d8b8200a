//! Entry points of the cargo-fuzz targets in `fuzz/` and of `tests/it/fuzz_regressions.rs`.
//!
//! Test code, kept out of the `redis-rescue` library (its asserts and panics are the
//! point here, and the library must not panic): a `publish = false` crate of the main
//! workspace, which `cargo test --workspace` builds, used by `fuzz/` as a path dependency
//! and by the root crate's tests as a dev-dependency.
//!
//! One function per target. Each takes arbitrary bytes, decodes them completely (parse,
//! then every element and every accessor) and returns normally: a panic is the bug being
//! hunted. Where a decoder accepts its input, the function also asserts properties that
//! must hold for every accepted input (element counts, re-encoding round trips, a written
//! RDB that reads back); a failed assertion is a bug too.
//!
//! Not part of the tool's interface: kept stable only for `fuzz/` and the regression test.

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock};

use redis_rescue::core::address_space::{AddressSpace, Segment};
use redis_rescue::core::CoreFile;
use redis_rescue::decode::intset::Intset;
use redis_rescue::decode::listpack::{self, Listpack, ListpackBuilder};
use redis_rescue::decode::ziplist::{self, Ziplist};
use redis_rescue::decode::zipmap::{self, Zipmap};
use redis_rescue::decode::{lzf as lzf_dec, parse_canonical_int, Element};
use redis_rescue::profile::layout::{Bits, Field};
use redis_rescue::profile::Layout;
use redis_rescue::recording::Recording;
use redis_rescue::report::{FunctionsLost, Report, ReportBuilder, Source};
use redis_rescue::sink::{CountingSink, RdbSink, Sink};
use redis_rescue::value::{QuicklistNode, RecoveredKey, Value};
use redis_rescue::walker::object::ObjectDecoder;
use redis_rescue::walker::sds::{read_mstr, read_sds, SdsFormat};
use redis_rescue::walker::{KeyspaceWalker, WalkOptions};

/// The profile of the sample core, and of the quicklist images built by [`quicklist_node`].
pub const SAMPLE_PROFILE: &str = "7.0.15-debian";
/// A profile with `sdshdr {len, free}` headers, for [`sds`].
pub(crate) const LEN_FREE_PROFILE: &str = "2.8.17";
/// A profile with quicklists of ziplists, for [`quicklist_node`].
pub(crate) const ZIPLIST_QUICKLIST_PROFILE: &str = "6.2.14";
/// The sample core, relative to the repository root (override with `REDIS_RESCUE_FUZZ_CORE`).
pub const SAMPLE_CORE: &str = "tests/data/sample-7.0.15.core.zst";
/// Size of one mutation record of [`walker`].
pub const MUTATION_RECORD: usize = 9;
/// Where the synthetic memory images of [`sds`] and [`quicklist_node`] are mapped.
pub(crate) const IMAGE_BASE: u64 = 0x7f00_0010_0000;
/// ELF `p_flags` bit of a writable segment.
pub(crate) const PF_W: u32 = 2;

/// An address space of one writable segment holding `data` at `vaddr`.
pub(crate) fn single_segment(data: &[u8], vaddr: u64) -> AddressSpace<'_> {
    let len = data.len() as u64;
    let segment = Segment {
        vaddr,
        memsz: len,
        filesz: len,
        file_offset: 0,
        present: 0,
        flags: 6,
    };
    AddressSpace::new(data, vec![segment])
}

mod decoders;
mod quicklist;
mod walk;

use decoders::{compress, shipped_layout, texts};
pub use decoders::{intset, listpack, lzf, sds, ziplist, zipmap};
pub use quicklist::quicklist_node;
pub use walk::{
    add_record, pointer_record, sample_core, walk_core, walker, walker_outcome,
    xor_anywhere_record, xor_record, WalkSettings, WalkSinkKind,
};
