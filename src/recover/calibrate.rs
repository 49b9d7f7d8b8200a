//! The bucket check's calibration: which seeded hash (SipHash or MurmurHash2) places this
//! core's keys in their buckets, and with which seed.

use crate::binary::Executable;
use crate::core::{CoreFile, ExecutableInCore};
use crate::profile::Layout;
use crate::report::BucketCheckNote;
use crate::walker::bucket::{BucketCheck, BucketSample};
use crate::walker::sds::SdsFormat;
use crate::walker::{DbInfo, KeyspaceWalker};

/// Chain heads sampled to find and confirm the hash seed.
const BUCKET_SAMPLES: usize = 64;

/// The seeded hash that places keys in their buckets, so the walk can refuse entries a
/// damaged link led into a wrong chain; and what the report should say about it. The seed
/// comes from the binary's `dict_hash_function_seed` symbol (or Valkey's hashtable copy of
/// it, `hash_function_seed`), else from a search of the executable's writable image; either
/// way it must place the sampled keys (with Valkey's hashtables, also match the hash
/// fragment stored with each).
pub(super) fn calibrate_bucket_check(
    core: &CoreFile<'_>,
    layout: &Layout,
    exe: Option<&ExecutableInCore>,
    binary: Option<&Executable>,
    dbs: &[DbInfo],
) -> (Option<BucketCheck>, BucketCheckNote) {
    let samples = KeyspaceWalker::new(&core.space, layout).bucket_samples(dbs, BUCKET_SAMPLES);
    if samples.is_empty() {
        return (
            None,
            BucketCheckNote::off(
                "no keys to calibrate on: the keys tables are empty or unreadable",
            ),
        );
    }
    let Some(exe) = exe else {
        return (
            None,
            BucketCheckNote::off("the executable's load address is unknown"),
        );
    };
    let sds = SdsFormat::of(layout);
    let images = core.writable_image(exe.base);
    // SipHash first (4.0+, Valkey), then MurmurHash2 (2.8 to 3.2); each by the binary's
    // symbol, then among the executable's data.
    for family in [HashFamily::SipHash, HashFamily::Murmur2] {
        for name in family.symbols() {
            let Some(sym) = binary
                .and_then(|b| b.symbol(name))
                .filter(|s| s.size == family.seed_size())
            else {
                continue;
            };
            let at = exe.base.wrapping_add(sym.offset);
            let Ok(seed) = core.space.read(at, family.seed_size() as usize) else {
                continue;
            };
            if let Some((_, check)) = family.find(&seed, &samples, sds) {
                let summary = format!(
                    "on ({} seed from the binary's {name} at {at:#x})",
                    family.title()
                );
                let note = BucketCheckNote::on(family.name(), "symbol", at, samples.len(), summary);
                return (Some(check), note);
            }
        }
        for (start, image) in &images {
            if let Some((offset, check)) = family.find(image, &samples, sds) {
                let at = start.wrapping_add(offset as u64);
                let summary = format!(
                    "on ({} seed found at {at:#x} in the executable's data, placing {} sampled keys)",
                    family.title(),
                    samples.len()
                );
                let note = BucketCheckNote::on(family.name(), "search", at, samples.len(), summary);
                return (Some(check), note);
            }
        }
    }
    (
        None,
        BucketCheckNote::off(&format!(
            "no SipHash or MurmurHash2 seed in the executable's data places the {} sampled keys: too few keys to be sure, or a hash this tool does not know",
            samples.len()
        )),
    )
}

/// The hash functions Redis's dicts have used, each with its process-wide random seed.
#[derive(Clone, Copy)]
enum HashFamily {
    /// SipHash-1-2 and a 16-byte seed (Redis 4.0+, Valkey).
    SipHash,
    /// MurmurHash2 and a 32-bit seed (Redis 2.8 to 3.2).
    Murmur2,
}

impl HashFamily {
    /// The report's name.
    fn name(self) -> &'static str {
        match self {
            HashFamily::SipHash => "siphash-1-2",
            HashFamily::Murmur2 => "murmurhash2",
        }
    }

    /// The name in the report's summary.
    fn title(self) -> &'static str {
        match self {
            HashFamily::SipHash => "SipHash",
            HashFamily::Murmur2 => "MurmurHash2",
        }
    }

    /// The symbols that hold the seed (Valkey 8.1's hashtables call it `hash_function_seed`).
    fn symbols(self) -> &'static [&'static str] {
        match self {
            HashFamily::SipHash => &["dict_hash_function_seed", "hash_function_seed"],
            HashFamily::Murmur2 => &["dict_hash_function_seed"],
        }
    }

    /// The seed's size in bytes.
    fn seed_size(self) -> u64 {
        match self {
            HashFamily::SipHash => 16,
            HashFamily::Murmur2 => 4,
        }
    }

    /// The one seed in `bytes` that places the samples, as a check, with its offset.
    fn find(
        self,
        bytes: &[u8],
        samples: &[BucketSample],
        sds: SdsFormat,
    ) -> Option<(usize, BucketCheck)> {
        match self {
            HashFamily::SipHash => BucketCheck::find_seed(bytes, samples)
                .map(|(at, seed)| (at, BucketCheck::new(seed, sds))),
            HashFamily::Murmur2 => BucketCheck::find_murmur2_seed(bytes, samples)
                .map(|(at, seed)| (at, BucketCheck::murmur2(seed, sds))),
        }
    }
}
