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
const LEN_FREE_PROFILE: &str = "2.8.17";
/// A profile with quicklists of ziplists, for [`quicklist_node`].
const ZIPLIST_QUICKLIST_PROFILE: &str = "6.2.14";
/// The sample core, relative to the repository root (override with `REDIS_RESCUE_FUZZ_CORE`).
pub const SAMPLE_CORE: &str = "tests/data/sample-7.0.15.core.zst";
/// Size of one mutation record of [`walker`].
pub const MUTATION_RECORD: usize = 9;
/// Where the synthetic memory images of [`sds`] and [`quicklist_node`] are mapped.
const IMAGE_BASE: u64 = 0x7f00_0010_0000;
/// ELF `p_flags` bit of a writable segment.
const PF_W: u32 = 2;

/// An address space of one writable segment holding `data` at `vaddr`.
fn single_segment(data: &[u8], vaddr: u64) -> AddressSpace<'_> {
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

// ---------------------------------------------------------------------------------------
// Compact encodings.
// ---------------------------------------------------------------------------------------

/// Texts of `elems` (what Redis would return for each).
fn texts<'e>(elems: impl IntoIterator<Item = Element<'e>>) -> Vec<Vec<u8>> {
    elems.into_iter().map(|e| e.to_vec()).collect()
}

/// Checks one element's accessors: both text forms agree, integers print canonically.
fn check_element(e: &Element<'_>) {
    let text = e.to_vec();
    let mut appended = b"x".to_vec();
    e.write_text(&mut appended);
    assert_eq!(appended.get(1..), Some(&text[..]), "write_text != to_vec");
    if let Element::Int(v) = *e {
        assert_eq!(
            parse_canonical_int(&text),
            Some(v),
            "integer text is not canonical"
        );
        assert_eq!(text, v.to_string().into_bytes());
    }
}

/// Re-encodes `elems` as a listpack and checks that it parses back to the same texts,
/// and that re-encoding is idempotent.
fn check_listpack_rebuild(elems: &[Element<'_>]) {
    let mut b = ListpackBuilder::new();
    assert!(b.is_empty());
    if b.extend(elems.iter().copied()).is_err() {
        // Only a listpack above 4 GiB is refused; fuzz inputs are far smaller.
        panic!("ListpackBuilder refused {} small elements", elems.len());
    }
    assert_eq!(b.len(), elems.len());
    let built = b.finish();
    let re = match Listpack::parse(&built) {
        Ok(re) => re,
        Err(e) => panic!("a listpack built by ListpackBuilder does not parse: {e}"),
    };
    assert_eq!(re.len(), elems.len(), "rebuilt listpack count");
    assert_eq!(re.total_bytes(), built.len());
    assert_eq!(
        texts(re.iter()),
        texts(elems.iter().copied()),
        "rebuilt texts"
    );
    let mut again = ListpackBuilder::new();
    if again.extend(re.iter()).is_err() {
        panic!("ListpackBuilder refused its own elements");
    }
    assert_eq!(again.finish(), built, "re-encoding is not idempotent");
}

/// Fuzz a listpack: parse, every element and accessor, re-encode and compare.
pub fn listpack(data: &[u8]) {
    let Ok(lp) = Listpack::parse(data) else {
        return;
    };
    let n = lp.len();
    assert_eq!(lp.is_empty(), n == 0);
    let bytes = lp.as_bytes();
    assert_eq!(bytes.len(), lp.total_bytes());
    assert!(data.starts_with(bytes));
    assert_eq!(bytes.last(), Some(&listpack::END));
    let header_num = bytes
        .get(4..6)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_le_bytes);
    assert!(
        header_num == Some(listpack::COUNT_UNKNOWN) || header_num.map(usize::from) == Some(n),
        "num_elements {header_num:?} != {n} entries"
    );
    let elems: Vec<Element<'_>> = lp.iter().collect();
    assert_eq!(elems.len(), n, "iterated entries != len()");
    assert!((&lp).into_iter().eq(elems.iter().copied()));
    for e in &elems {
        check_element(e);
        if let Element::Bytes(s) = e {
            // Every string lies inside the listpack.
            assert!(s.len() < bytes.len());
        }
    }
    check_listpack_rebuild(&elems);
}

/// Fuzz a ziplist: parse, every element and accessor, convert to a listpack and compare.
pub fn ziplist(data: &[u8]) {
    let Ok(zl) = Ziplist::parse(data) else {
        return;
    };
    let n = zl.len();
    assert_eq!(zl.is_empty(), n == 0);
    let bytes = zl.as_bytes();
    assert_eq!(bytes.len(), zl.total_bytes());
    assert!(data.starts_with(bytes));
    assert_eq!(bytes.last(), Some(&ziplist::END));
    let zllen = bytes
        .get(8..10)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_le_bytes);
    assert!(
        zllen == Some(ziplist::COUNT_UNKNOWN) || zllen.map(usize::from) == Some(n),
        "zllen {zllen:?} != {n} entries"
    );
    let elems: Vec<Element<'_>> = zl.iter().collect();
    assert_eq!(elems.len(), n, "iterated entries != len()");
    assert!((&zl).into_iter().eq(elems.iter().copied()));
    for e in &elems {
        check_element(e);
    }
    // What `--rdb-version` re-encoding and the 7.0 loader do: ziplist -> listpack.
    check_listpack_rebuild(&elems);
}

/// Fuzz an intset: parse, every element and accessor.
pub fn intset(data: &[u8]) {
    let Ok(set) = Intset::parse(data) else {
        return;
    };
    let n = set.len();
    assert_eq!(set.is_empty(), n == 0);
    let width = set.encoding();
    assert!(matches!(width, 2 | 4 | 8), "encoding {width}");
    let bytes = set.as_bytes();
    assert!(data.starts_with(bytes));
    assert_eq!(
        Some(bytes.len()),
        n.checked_mul(width).and_then(|b| b.checked_add(8))
    );
    let it = set.iter();
    assert_eq!(it.len(), n, "ExactSizeIterator::len");
    let values: Vec<i64> = it.collect();
    assert_eq!(values.len(), n, "iterated elements != len()");
    assert!((&set).into_iter().eq(values.iter().copied()));
    let (min, max) = match width {
        2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    for pair in values.windows(2) {
        if let [a, b] = pair {
            assert!(a < b, "intset not strictly ascending: {a} then {b}");
        }
    }
    for v in &values {
        assert!((min..=max).contains(v), "{v} does not fit {width} bytes");
    }
}

/// Fuzz a zipmap: parse, every pair and accessor.
pub fn zipmap(data: &[u8]) {
    let Ok(zm) = Zipmap::parse(data) else {
        return;
    };
    let n = zm.len();
    assert_eq!(zm.is_empty(), n == 0);
    let bytes = zm.as_bytes();
    assert!(data.starts_with(bytes));
    assert_eq!(bytes.last(), Some(&zipmap::END));
    if let Some(&zmlen) = bytes.first() {
        assert!(zmlen >= zipmap::BIGLEN || usize::from(zmlen) == n);
    }
    let pairs: Vec<(&[u8], &[u8])> = zm.iter().collect();
    assert_eq!(pairs.len(), n, "iterated pairs != len()");
    assert!((&zm).into_iter().eq(pairs.iter().copied()));
    let payload: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    // Each pair costs at least 3 bytes besides its payload (two lengths and `free`).
    assert!(
        payload + 3 * n + 2 <= bytes.len(),
        "pairs exceed the zipmap"
    );
}

/// Fuzz LZF decompression.
///
/// First byte even: `[mode, len0, len1, len2, compressed...]`, decompress to the 24-bit
/// little-endian length and compare with the `lzf` crate (an independent port of liblzf).
/// Odd: the rest is plain data, compressed by the RDB writer's compressor (with the
/// writer's budget, and with room to spare), which must decompress back to it, with our
/// decoder and with the `lzf` crate's.
///
/// The `lzf` crate's *compressor* is not used: `lzf::compress` 1.0.0 panics (index out of
/// bounds, lzf-1.0.0/src/compress.rs:89) on some inputs, e.g. bytes 0..=159 then 1..=5;
/// see `tests/it/decode_props.rs`.
pub fn lzf(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut out = Vec::new();
    if mode & 1 == 0 {
        let Some((len, input)) = rest.split_first_chunk::<3>() else {
            return;
        };
        let [a, b, c] = *len;
        let expected = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
        let ours = lzf_dec::decompress(input, expected, &mut out);
        if ours.is_ok() {
            assert_eq!(out.len(), expected, "Ok with the wrong length");
        }
        // Both refuse impossible lengths before allocating; the crate also refuses empty
        // input, which can only be Ok for us with expected == 0.
        if input.is_empty() || expected > input.len().saturating_mul(lzf_dec::MAX_EXPANSION) {
            assert!(ours.is_err() || expected == 0);
            return;
        }
        let reference = ::lzf::decompress(input, expected)
            .ok()
            .filter(|v| v.len() == expected);
        match (&ours, reference) {
            (Ok(()), Some(r)) => assert!(out == r, "output differs from the lzf crate"),
            (Err(_), None) => {}
            (Ok(()), None) => panic!("accepted input that liblzf rejects"),
            (Err(e), Some(_)) => panic!("rejected input that liblzf accepts: {e}"),
        }
    } else {
        let mut c = Vec::new();
        // The RDB writer's budget (smaller than the input), then room to spare.
        let tight = rest.len().saturating_sub(1);
        if rdb::compress::lzf_compress(rest, tight, &mut c) {
            assert!(c.len() <= tight, "compressed beyond the budget");
            check_lzf_round_trip(&c, rest);
        }
        let roomy = rest.len().saturating_mul(2).saturating_add(64);
        if rdb::compress::lzf_compress(rest, roomy, &mut c) {
            check_lzf_round_trip(&c, rest);
        } else {
            assert!(
                rest.is_empty(),
                "refused {} bytes with room to spare",
                rest.len()
            );
        }
    }
}

/// `compressed` decompresses to `plain`, with our decoder and with the `lzf` crate's.
fn check_lzf_round_trip(compressed: &[u8], plain: &[u8]) {
    let mut out = Vec::new();
    if let Err(e) = lzf_dec::decompress(compressed, plain.len(), &mut out) {
        panic!("cannot decompress the RDB writer's LZF: {e}");
    }
    assert!(out == plain, "RDB compressor round trip");
    match ::lzf::decompress(compressed, plain.len()) {
        Ok(r) => assert!(r == plain, "the lzf crate decompresses it differently"),
        Err(e) => panic!("the lzf crate cannot decompress the RDB writer's LZF: {e:?}"),
    }
}

/// LZF-compresses `data` with the RDB writer's compressor; `None` for empty input.
fn compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut c = Vec::new();
    let room = data.len().saturating_mul(2).saturating_add(64);
    rdb::compress::lzf_compress(data, room, &mut c).then_some(c)
}

// ---------------------------------------------------------------------------------------
// Structures read from memory: sds headers and quicklist nodes.
// ---------------------------------------------------------------------------------------

/// A resolved shipped profile, cached per process.
fn shipped_layout(name: &'static str) -> Option<&'static Layout> {
    static CACHE: OnceLock<Vec<(&'static str, Option<Layout>)>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        [SAMPLE_PROFILE, LEN_FREE_PROFILE, ZIPLIST_QUICKLIST_PROFILE]
            .into_iter()
            .map(|n| {
                let layout = redis_rescue::profile::load(n)
                    .ok()
                    .and_then(|f| Layout::resolve(&f).ok());
                (n, layout)
            })
            .collect()
    });
    cache
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, l)| l.as_ref())
}

/// Checks a string read from the image: it is the bytes at `ptr` followed by a NUL.
fn check_in_image(mem: &[u8], ptr: u64, body: &[u8]) {
    let at = ptr
        .checked_sub(IMAGE_BASE)
        .and_then(|o| usize::try_from(o).ok());
    let Some(at) = at else {
        panic!("string read at {ptr:#x}, outside the image");
    };
    let end = at.checked_add(body.len());
    assert_eq!(
        end.and_then(|e| mem.get(at..e)),
        Some(body),
        "string is not the image's bytes"
    );
    assert_eq!(
        end.and_then(|e| mem.get(e)),
        Some(&0),
        "string is not NUL-terminated"
    );
}

/// Fuzz the sds (and `mstr`) readers over a one-segment memory image.
///
/// `[flags, p0, p1, memory...]`: the memory is mapped at a fixed base; the pointer is the
/// base plus the 16-bit little-endian `p`, reduced modulo the image size + 17 (so it may
/// point past the end). Flags: bit 0 old `sdshdr {len, free}` headers (2.8) instead of
/// typed ones; bit 1 also read an `mstr`; bit 2 use `p` itself as the pointer (below the
/// image); bit 3 use `u64::MAX - p`.
pub fn sds(data: &[u8]) {
    let Some(([flags, p0, p1], mem)) = data.split_first_chunk::<3>() else {
        return;
    };
    let (flags, p) = (*flags, u64::from(u16::from_le_bytes([*p0, *p1])));
    let format = if flags & 1 == 0 {
        SdsFormat::Typed
    } else {
        match shipped_layout(LEN_FREE_PROFILE) {
            Some(l) => SdsFormat::of(l),
            None => panic!("shipped profile {LEN_FREE_PROFILE} does not resolve"),
        }
    };
    let ptr = if flags & 4 != 0 {
        p
    } else if flags & 8 != 0 {
        u64::MAX - p
    } else {
        IMAGE_BASE + p % (mem.len() as u64 + 17)
    };
    let space = single_segment(mem, IMAGE_BASE);
    if let Ok(body) = read_sds(&space, format, ptr) {
        check_in_image(mem, ptr, &body);
        assert!(matches!(body, Cow::Borrowed(_)), "one segment: zero-copy");
    }
    if flags & 2 != 0 {
        if let Ok((body, _meta)) = read_mstr(&space, ptr) {
            check_in_image(mem, ptr, &body);
        }
    }
}

/// Writes `value` into the struct at `base` of `buf` (little-endian, `f.size` bytes).
fn put_field(buf: &mut [u8], base: usize, f: Field, value: u64) {
    let start = base.saturating_add(usize::try_from(f.offset).unwrap_or(usize::MAX));
    let bytes = value.to_le_bytes();
    let n = usize::from(f.size).min(8);
    if let (Some(dst), Some(src)) = (buf.get_mut(start..start.saturating_add(n)), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
}

/// Writes `value` into the bit-field `b` of the struct at `base` of `buf`.
fn put_bits(buf: &mut [u8], base: usize, b: Bits, value: u64) {
    for i in 0..u64::from(b.width) {
        let bit = b.bit_offset + i;
        let Some(byte) = usize::try_from(bit / 8)
            .ok()
            .and_then(|o| base.checked_add(o))
            .and_then(|o| buf.get_mut(o))
        else {
            return;
        };
        let mask = 1u8 << (bit % 8);
        if (value >> i) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Texts and size of a packed quicklist node: a ziplist (up to 6.2) or a listpack.
fn packed_texts(bytes: &[u8], ziplist: bool) -> Result<(Vec<Vec<u8>>, usize), String> {
    if ziplist {
        let zl = Ziplist::parse(bytes).map_err(|e| e.to_string())?;
        Ok((texts(zl.iter()), zl.total_bytes()))
    } else {
        let lp = Listpack::parse(bytes).map_err(|e| e.to_string())?;
        Ok((texts(lp.iter()), lp.total_bytes()))
    }
}

/// What one quicklist node of a [`quicklist_node`] image holds.
struct NodeSpec {
    /// Bytes at `entry`: the data, or for LZF a `quicklistLZF` (size + compressed bytes).
    payload: Vec<u8>,
    sz: u64,
    count: u64,
    encoding: u64,
    container: u64,
}

/// Reads the node description at the start of a [`quicklist_node`] input.
fn node_spec(layout: &Layout, ziplist: bool, mode: u8, rest: &[u8]) -> NodeSpec {
    let consts = layout.ql;
    let (explicit, payload) = if mode & 4 != 0 {
        match rest.split_first_chunk::<7>() {
            Some((h, p)) => (Some(*h), p),
            None => (None, rest),
        }
    } else {
        (None, rest)
    };
    let lzf = mode & 1 != 0;
    let plain = mode & 2 != 0;
    // The uncompressed data and the bytes stored at `entry`.
    let (raw, stored): (Option<Vec<u8>>, Vec<u8>) = if !lzf {
        (Some(payload.to_vec()), payload.to_vec())
    } else if mode & 8 != 0 {
        // The payload is the data: compress it as Redis would.
        let c = compress(payload).unwrap_or_else(|| payload.to_vec());
        (Some(payload.to_vec()), c)
    } else {
        // The payload is an LZF stream: its natural length, if it has one.
        let limit = payload.len().saturating_mul(lzf_dec::MAX_EXPANSION);
        (::lzf::decompress(payload, limit).ok(), payload.to_vec())
    };
    let raw_len = raw
        .as_ref()
        .map_or(stored.len() as u64 * 2, |r| r.len() as u64);
    let count = if plain {
        1
    } else {
        raw.as_deref()
            .and_then(|r| packed_texts(r, ziplist).ok())
            .map_or(1, |(t, _)| t.len() as u64)
    };
    let mut spec = NodeSpec {
        payload: stored,
        sz: raw_len,
        count,
        encoding: if lzf {
            consts.encoding_lzf
        } else {
            consts.encoding_raw
        },
        container: if plain {
            consts.container_plain
        } else {
            consts.container_packed
        },
    };
    if let Some([s0, s1, s2, s3, c0, c1, ec]) = explicit {
        spec.sz = u64::from(u32::from_le_bytes([s0, s1, s2, s3]));
        spec.count = u64::from(u16::from_le_bytes([c0, c1]));
        spec.encoding = u64::from(ec & 3);
        spec.container = u64::from((ec >> 2) & 3);
    }
    // What the node's `count` bit-field can hold is what the walker sees.
    let width = layout.ql_node.count.width.min(63);
    spec.count &= (1u64 << width) - 1;
    if spec.encoding == consts.encoding_lzf {
        // A quicklistLZF: compressed size, then the compressed bytes.
        let l = layout.ql_lzf;
        let header = usize::try_from(l.compressed).unwrap_or(usize::MAX).min(64);
        let mut lzf_struct = vec![0u8; header];
        put_field(&mut lzf_struct, 0, l.sz, spec.payload.len() as u64);
        lzf_struct.extend_from_slice(&spec.payload);
        spec.payload = lzf_struct;
    }
    spec
}

/// Decodes a node's elements as the RDB loader would see them.
fn node_elements(node: &QuicklistNode<'_>, ziplist: bool, out: &mut Vec<Vec<u8>>) -> usize {
    let mut scratch = Vec::new();
    let before = out.len();
    match node {
        QuicklistNode::Packed(b) => match packed_texts(b, ziplist) {
            Ok((t, _)) => out.extend(t),
            Err(e) => panic!("walker returned a packed node that does not parse: {e}"),
        },
        QuicklistNode::PackedLzf {
            compressed,
            raw_len,
        } => {
            let len = usize::try_from(*raw_len).unwrap_or(usize::MAX);
            if let Err(e) = lzf_dec::decompress(compressed, len, &mut scratch) {
                panic!("walker returned an LZF node that does not decompress: {e}");
            }
            match packed_texts(&scratch, ziplist) {
                Ok((t, total)) => {
                    assert_eq!(total, scratch.len(), "LZF node size");
                    out.extend(t);
                }
                Err(e) => panic!("walker returned an LZF node that does not parse: {e}"),
            }
        }
        QuicklistNode::Plain(b) => out.push(b.to_vec()),
        QuicklistNode::PlainLzf {
            compressed,
            raw_len,
        } => {
            let len = usize::try_from(*raw_len).unwrap_or(usize::MAX);
            if let Err(e) = lzf_dec::decompress(compressed, len, &mut scratch) {
                panic!("walker returned a PLAIN LZF node that does not decompress: {e}");
            }
            out.push(scratch);
        }
    }
    out.len() - before
}

/// Writes `key` to an RDB of `version` and reads it back.
fn rdb_roundtrip(key: &RecoveredKey<'_>, version: u32) -> rdb::Entry {
    let mut buf = Vec::new();
    let written = RdbSink::new(&mut buf, version, &[]).and_then(|mut sink| {
        sink.begin_db(key.db, 1, 0)?;
        sink.key(key)?;
        sink.finish().map(|_| ())
    });
    if let Err(e) = written {
        panic!("RDB {version}: a recovered key cannot be written: {e}");
    }
    let mut reader = match rdb::RdbReader::new(&buf[..]) {
        Ok(r) => r,
        Err(e) => panic!("RDB {version} written for one key does not open: {e}"),
    };
    let entry = match reader.next_entry() {
        Ok(Some(e)) => e,
        Ok(None) => panic!("RDB {version}: the key written is missing"),
        Err(e) => panic!("RDB {version} written for one key does not read back: {e}"),
    };
    assert!(matches!(reader.next_entry(), Ok(None)), "one key written");
    entry
}

/// Fuzz the quicklist node path of the object decoder (packed-node validation, LZF,
/// PLAIN nodes) on a synthetic memory image with the 7.0.15 layout (listpack nodes), or
/// the 6.2.14 one (ziplist nodes).
///
/// `[mode, (sz u32, count u16, enc|container<<2 u8 if mode & 4), payload...]`.
/// Mode: bit 0 LZF-encoded node; bit 1 PLAIN container; bit 2 explicit header fields;
/// bit 3 (with LZF) the payload is plain data to compress, else an LZF stream; bits 4-5
/// extra nodes sharing the same data; bit 6 salvage mode; bit 7 the 6.2.14 layout.
pub fn quicklist_node(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ziplist = mode & 128 != 0;
    let profile = if ziplist {
        ZIPLIST_QUICKLIST_PROFILE
    } else {
        SAMPLE_PROFILE
    };
    let Some(layout) = shipped_layout(profile) else {
        panic!("shipped profile {profile} does not resolve");
    };
    let spec = node_spec(layout, ziplist, mode, rest);
    let nodes = 1 + usize::from((mode >> 4) & 3);
    let salvage = mode & 64 != 0;

    // robj | quicklist | nodes... | entry data
    let (r, ql, qn) = (&layout.robj, &layout.quicklist, &layout.ql_node);
    let size = |s: u64| usize::try_from(s).unwrap_or(usize::MAX).min(4096);
    let ql_at = align8(size(r.size));
    let node_at = align8(ql_at + size(ql.size));
    let node_size = align8(size(qn.size));
    let entry_at = node_at + nodes * node_size;
    let mut mem = vec![0u8; entry_at];
    mem.extend_from_slice(&spec.payload);
    let addr = |off: usize| IMAGE_BASE + off as u64;
    put_bits(&mut mem, 0, r.type_, layout.types.list);
    put_bits(&mut mem, 0, r.encoding, layout.enc.quicklist);
    put_field(&mut mem, 0, r.ptr, addr(ql_at));
    put_field(&mut mem, ql_at, ql.head, addr(node_at));
    put_field(
        &mut mem,
        ql_at,
        ql.count,
        spec.count.saturating_mul(nodes as u64),
    );
    put_field(&mut mem, ql_at, ql.len, nodes as u64);
    for i in 0..nodes {
        let at = node_at + i * node_size;
        let next = if i + 1 < nodes {
            addr(at + node_size)
        } else {
            0
        };
        put_field(&mut mem, at, qn.next, next);
        put_field(&mut mem, at, qn.entry, addr(entry_at));
        put_field(&mut mem, at, qn.sz, spec.sz);
        put_bits(&mut mem, at, qn.count, spec.count);
        put_bits(&mut mem, at, qn.encoding, spec.encoding);
        put_bits(&mut mem, at, qn.container, spec.container);
    }

    let space = single_segment(&mem, IMAGE_BASE);
    let options = WalkOptions {
        salvage,
        ..WalkOptions::default()
    };
    let ctx = redis_rescue::walker::context::WalkContext::new(&space, layout, options);
    let mut objects = ObjectDecoder::new(&ctx);
    let header = match objects.header(IMAGE_BASE) {
        Ok(h) => h,
        Err(e) => panic!("the robj of the image is unreadable: {e}"),
    };
    assert_eq!(header.kind.type_name, "list");
    assert_eq!(header.kind.encoding, "quicklist");
    let Ok(value) = objects.value(&header) else {
        return;
    };
    let partial = objects.take_partial();
    let found = match (&value, ziplist) {
        (Value::ListQuicklist(found), false) | (Value::ListQuicklistZiplist(found), true) => found,
        _ => panic!("a quicklist decoded as {value:?}"),
    };
    if partial.is_none() {
        assert_eq!(found.len(), nodes, "node count");
    } else {
        assert!(salvage, "partial value without --salvage");
        assert!(!found.is_empty() && found.len() <= nodes);
    }
    let mut elements = Vec::new();
    for node in found {
        let n = node_elements(node, ziplist, &mut elements) as u64;
        assert_eq!(n, spec.count, "node elements != the node's count");
        match node {
            QuicklistNode::Packed(b) | QuicklistNode::Plain(b) => {
                assert_eq!(b.len() as u64, spec.sz, "node size");
            }
            QuicklistNode::PackedLzf { raw_len, .. } | QuicklistNode::PlainLzf { raw_len, .. } => {
                assert_eq!(*raw_len, spec.sz, "LZF node size");
            }
        }
    }
    let key = RecoveredKey {
        db: 0,
        key: Cow::Borrowed(b"k"),
        expire_ms: None,
        kind: header.kind,
        lru: header.lru,
        value,
    };
    // The native RDB version (nodes copied) and RDB 6 (re-encoded element by element).
    for version in [layout.identity.rdb_version, 6] {
        let entry = rdb_roundtrip(&key, version);
        assert_eq!(entry.key, b"k");
        match entry.value {
            rdb::RdbValue::List(read) => {
                assert!(read == elements, "RDB {version}: list elements differ")
            }
            other => panic!("RDB {version}: a list read back as {}", other.type_name()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The walker over a real core.
// ---------------------------------------------------------------------------------------

/// The decompressed sample core ([`SAMPLE_CORE`], or the file `REDIS_RESCUE_FUZZ_CORE`
/// names), loaded once per process.
pub fn sample_core() -> Result<&'static [u8], String> {
    static CORE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    CORE.get_or_init(|| {
        let path = std::env::var_os("REDIS_RESCUE_FUZZ_CORE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                // This crate is fuzz/entry; the sample lives under the repository's tests/.
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join(SAMPLE_CORE)
            });
        let file = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if file.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            zstd::stream::decode_all(&file[..]).map_err(|e| format!("{}: {e}", path.display()))
        } else {
            Ok(file)
        }
    })
    .as_ref()
    .map(|v| v.as_slice())
    .map_err(Clone::clone)
}

/// How [`walk_core`] writes what it recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkSinkKind {
    /// Write an RDB of this version into memory and read it back.
    Rdb(u32),
    /// Count only (`--dry-run`).
    Counting,
}

/// Settings of one [`walk_core`] run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkSettings {
    /// Where the keys go; `Rdb(0)` means the source's own RDB version.
    pub sink: WalkSinkKind,
    /// `--salvage`.
    pub salvage: bool,
}

impl Default for WalkSettings {
    fn default() -> Self {
        WalkSettings {
            sink: WalkSinkKind::Rdb(0),
            salvage: false,
        }
    }
}

impl WalkSettings {
    /// The settings a trailing byte of a [`walker`] input selects: bit 0 salvage, bits
    /// 1-3 the RDB version (0 and 7: the source's, else 6, 7, 8, 9, 11, 12), bit 4 count
    /// only.
    pub fn from_byte(b: u8) -> Self {
        let version = match (b >> 1) & 7 {
            1 => 6,
            2 => 7,
            3 => 8,
            4 => 9,
            5 => 11,
            6 => 12,
            _ => 0,
        };
        WalkSettings {
            sink: if b & 16 != 0 {
                WalkSinkKind::Counting
            } else {
                WalkSinkKind::Rdb(version)
            },
            salvage: b & 1 != 0,
        }
    }
}

/// The layout for a core: the shipped profile with its build-id, else [`SAMPLE_PROFILE`].
fn layout_for(build_id: Option<&str>) -> Option<&'static Layout> {
    static ALL: OnceLock<Vec<(Option<String>, String, Layout)>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        redis_rescue::profile::shipped_profiles()
            .unwrap_or_default()
            .iter()
            .filter_map(|f| {
                let l = Layout::resolve(f).ok()?;
                Some((f.identity.build_id.clone(), f.name.clone(), l))
            })
            .collect()
    });
    let by_id = build_id.and_then(|id| all.iter().find(|(b, _, _)| b.as_deref() == Some(id)));
    by_id
        .or_else(|| all.iter().find(|(_, n, _)| n == SAMPLE_PROFILE))
        .map(|(_, _, l)| l)
}

/// Recover the keyspace of the core in `core` the way `redis-rescue --no-binary` does
/// (profile by build-id, `server` from the profile's symbols), into an in-memory RDB
/// that is then read back and checked against the report.
///
/// `Err` when the pipeline stops before the walk (not a core, no profile, no `server`):
/// the error the tool would print.
pub fn walk_core(core: &[u8], settings: WalkSettings) -> Result<Report, String> {
    let mut rdb_buf = Vec::new();
    walk_core_into(core, settings, &mut rdb_buf)
}

fn walk_core_into(
    core: &[u8],
    settings: WalkSettings,
    rdb_buf: &mut Vec<u8>,
) -> Result<Report, String> {
    let core = CoreFile::parse(core).map_err(|e| e.to_string())?;
    let exe = core
        .executable()
        .ok_or("the core names no executable (NT_FILE)")?;
    let layout = layout_for(exe.build_id.as_deref()).ok_or("no shipped profile resolves")?;
    let offset = layout
        .server_symbol
        .map(|s| s.offset)
        .ok_or("the profile has no `server` symbol")?;
    let server = exe.base.checked_add(offset).ok_or("address overflow")?;
    let walker = KeyspaceWalker::new(&core.space, layout).with_options(WalkOptions {
        salvage: settings.salvage,
        key_timeout: None,
        bucket_check: None,
        include_importing: false,
        threads: 1,
    });
    let dbs = walker.databases(server).map_err(|e| e.to_string())?;
    let version = match settings.sink {
        WalkSinkKind::Rdb(0) | WalkSinkKind::Counting => layout.identity.rdb_version,
        WalkSinkKind::Rdb(v) => v,
    };
    let source = Source {
        profile: layout.name.clone(),
        ..Source::default()
    };
    let mut report = ReportBuilder::new(source, version, settings.sink == WalkSinkKind::Counting);
    let functions = match (
        &layout.functions,
        layout.functions.as_ref().and_then(|f| f.ctx_symbol),
    ) {
        (Some(_), Some(sym)) => walker
            .functions(exe.base.wrapping_add(sym.offset))
            .map_err(|f| FunctionsLost::unreadable(&f)),
        _ => Ok(Vec::new()),
    };
    let lua = walker.lua_scripts(server);
    let eviction = walker.eviction(server);
    let _ = eviction.name();

    if settings.sink == WalkSinkKind::Counting {
        report.set_functions(functions.map(|f| f.len() as u64));
        walker
            .walk(
                &dbs,
                &mut Recording::new(&mut CountingSink, &mut report),
                |_| {},
            )
            .map_err(|e| e.to_string())?;
        return Ok(finish_report(report));
    }

    rdb_buf.clear();
    let aux = [("redis-ver", layout.identity.redis_version.clone())];
    let mut sink = RdbSink::new(&mut *rdb_buf, version, &aux).map_err(|e| e.to_string())?;
    let functions = functions.and_then(|libs| match sink.functions(&libs) {
        Ok(()) => Ok(libs.len() as u64),
        Err(e) => Err(FunctionsLost::not_written(e)),
    });
    let functions_written = *functions.as_ref().unwrap_or(&0);
    report.set_functions(functions);
    if let Some(Ok(scripts)) = lua {
        let _ = sink.lua_scripts(&scripts);
    }
    sink.set_eviction(eviction);
    walker
        .walk(&dbs, &mut Recording::new(&mut sink, &mut report), |_| {})
        .map_err(|e| e.to_string())?;
    report.set_reencoded(sink.reencoded());
    let report = finish_report(report);
    if let Err(e) = sink.finish() {
        panic!("finishing an in-memory RDB failed: {e}");
    }
    check_rdb(rdb_buf, &report, version, functions_written);
    Ok(report)
}

/// Closes the report and uses its accessors.
fn finish_report(report: ReportBuilder) -> Report {
    let report = report.finish();
    let _ = report.complete();
    let _ = report.table();
    if let Err(e) = serde_json::to_string(&report) {
        panic!("the report does not serialize: {e}");
    }
    let t = &report.totals;
    assert!(t.lost <= t.expected && t.partial <= t.keys && t.expires <= t.keys);
    report
}

/// The RDB written from a walk reads back whole, and holds exactly the keys the report
/// counts as recovered, per db.
fn check_rdb(rdb: &[u8], report: &Report, version: u32, functions: u64) {
    let mut reader = match rdb::RdbReader::new(rdb) {
        Ok(r) => r,
        Err(e) => panic!("the RDB written does not open: {e}"),
    };
    assert_eq!(reader.version(), version);
    let mut per_db = std::collections::BTreeMap::<u32, (u64, u64)>::new();
    loop {
        match reader.next_entry() {
            Ok(Some(e)) => {
                let slot = per_db.entry(e.db).or_default();
                slot.0 += 1;
                slot.1 += u64::from(e.expire_ms.is_some());
            }
            Ok(None) => break,
            Err(e) => panic!(
                "the RDB written does not read back (after {} keys): {e}",
                reader.keys_read()
            ),
        }
    }
    assert_eq!(reader.functions(), functions, "function libraries written");
    for (db, r) in &report.dbs {
        let (keys, expires) = per_db.remove(db).unwrap_or_default();
        assert_eq!(
            keys, r.keys,
            "db {db}: keys in the RDB != keys in the report"
        );
        assert_eq!(
            expires, r.expires,
            "db {db}: TTLs in the RDB != the report's"
        );
    }
    assert!(per_db.is_empty(), "keys in dbs the report does not list");
}

/// A decoded mutation record of [`walker`].
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// XOR one byte of live memory.
    Xor { pos: u64, mask: u8 },
    /// XOR one byte anywhere in the file (headers and notes included).
    XorAnywhere { pos: u64, mask: u8 },
    /// Overwrite an aligned word of live memory with the word at `src` (in the
    /// pristine core) plus `delta * 8`: a pointer into something else.
    Pointer { pos: u64, src: u64, delta: i8 },
    /// Add `delta` to an aligned word of live memory (0: zero it): a length,
    /// counter or pointer off by a little.
    Add { pos: u64, delta: i8 },
}

impl Mutation {
    fn decode(rec: &[u8; MUTATION_RECORD]) -> Self {
        let [w0, w1, w2, w3, w4, w5, w6, w7, b] = *rec;
        let raw = u64::from_le_bytes([w0, w1, w2, w3, w4, w5, w6, w7]);
        let pos = raw & ((1 << 62) - 1);
        let mask = if b == 0 { 0xFF } else { b };
        match raw >> 62 {
            0 => Mutation::Xor { pos, mask },
            1 => Mutation::XorAnywhere { pos, mask },
            2 => Mutation::Pointer {
                pos: pos & 0xFFFF_FFFF,
                src: pos >> 32,
                delta: b as i8,
            },
            _ => Mutation::Add {
                pos,
                delta: b as i8,
            },
        }
    }

    /// Encodes the record (for seeds and tests).
    fn encode(self) -> [u8; MUTATION_RECORD] {
        let (kind, pos, b): (u64, u64, u8) = match self {
            Mutation::Xor { pos, mask } => (0, pos, mask),
            Mutation::XorAnywhere { pos, mask } => (1, pos, mask),
            Mutation::Pointer { pos, src, delta } => {
                (2, (pos & 0xFFFF_FFFF) | (src << 32), delta as u8)
            }
            Mutation::Add { pos, delta } => (3, pos, delta as u8),
        };
        let raw = (kind << 62) | (pos & ((1 << 62) - 1));
        let mut out = [0u8; MUTATION_RECORD];
        for (slot, v) in out.iter_mut().zip(raw.to_le_bytes().into_iter().chain([b])) {
            *slot = v;
        }
        out
    }
}

/// A mutation record of [`walker`] that XORs byte `pos` (of live memory) with
/// `mask`: for seeds and tests.
pub fn xor_record(pos: u64, mask: u8) -> [u8; MUTATION_RECORD] {
    Mutation::Xor { pos, mask }.encode()
}

/// A mutation record of [`walker`] that replaces the word at `pos` with the word at
/// `src` plus `delta * 8` (both in live memory): for seeds and tests.
pub fn pointer_record(pos: u32, src: u32, delta: i8) -> [u8; MUTATION_RECORD] {
    Mutation::Pointer {
        pos: u64::from(pos),
        src: u64::from(src),
        delta,
    }
    .encode()
}

/// A mutation record of [`walker`] that adds `delta` to the word at `pos` (0: zeroes
/// it): for seeds and tests.
pub fn add_record(pos: u64, delta: i8) -> [u8; MUTATION_RECORD] {
    Mutation::Add { pos, delta }.encode()
}

/// A mutation record of [`walker`] that XORs byte `pos` of the whole file.
pub fn xor_anywhere_record(pos: u64, mask: u8) -> [u8; MUTATION_RECORD] {
    Mutation::XorAnywhere { pos, mask }.encode()
}

/// Granule of the live-memory index: mutations aim at granules holding a non-zero byte.
const GRANULE: usize = 16;

/// The process-wide mutable copy of the core [`walker`] damages and repairs.
struct Working {
    /// Address and length of the pristine core copied (identifies it).
    source: (usize, usize),
    bytes: Vec<u8>,
    /// Live memory: runs `(file offset, length)` of granules of the writable PT_LOAD
    /// segments that hold a non-zero byte (most of a core's writable memory is zero pages
    /// the walker never reads), and the running total before each run.
    live: Vec<(usize, usize)>,
    live_before: Vec<u64>,
    live_total: u64,
    /// True while `bytes` may differ from the pristine core.
    dirty: bool,
    /// Ranges mutated by the current input.
    touched: Vec<(usize, usize)>,
    /// The RDB buffer, reused.
    rdb: Vec<u8>,
}

/// File ranges of the writable segments' dumped bytes (the whole file if none).
fn writable_ranges(core: &[u8]) -> Vec<(usize, usize)> {
    let ranges: Vec<(usize, usize)> = CoreFile::parse(core)
        .map(|c| {
            c.space
                .segments()
                .iter()
                .filter(|s| s.flags & PF_W != 0 && s.present > 0)
                .filter_map(|s| {
                    let start = usize::try_from(s.file_offset).ok()?;
                    let len = usize::try_from(s.present).ok()?;
                    (start.checked_add(len)? <= core.len()).then_some((start, len))
                })
                .collect()
        })
        .unwrap_or_default();
    if ranges.is_empty() {
        vec![(0, core.len())]
    } else {
        ranges
    }
}

/// Runs of granules holding a non-zero byte inside `ranges` (all of `ranges` if none).
fn live_runs(core: &[u8], ranges: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &(start, len) in ranges {
        let Some(seg) = core.get(start..start + len) else {
            continue;
        };
        for (i, g) in seg.chunks(GRANULE).enumerate() {
            if g.iter().all(|&b| b == 0) {
                continue;
            }
            let at = start + i * GRANULE;
            match runs.last_mut() {
                Some((s, l)) if *s + *l == at => *l += g.len(),
                _ => runs.push((at, g.len())),
            }
        }
    }
    if runs.is_empty() {
        ranges.to_vec()
    } else {
        runs
    }
}

impl Working {
    fn new() -> Self {
        Working {
            source: (0, 0),
            bytes: Vec::new(),
            live: Vec::new(),
            live_before: Vec::new(),
            live_total: 0,
            dirty: true,
            touched: Vec::new(),
            rdb: Vec::new(),
        }
    }

    /// Makes `bytes` a copy of `core` (copying only when it is another core or dirty).
    fn reset(&mut self, core: &[u8]) {
        let id = (core.as_ptr() as usize, core.len());
        if self.source == id && !self.dirty {
            return;
        }
        self.bytes.clear();
        self.bytes.extend_from_slice(core);
        self.dirty = false;
        self.touched.clear();
        if self.source != id {
            self.source = id;
            self.live = live_runs(core, &writable_ranges(core));
            self.live_before = self
                .live
                .iter()
                .scan(0u64, |acc, r| {
                    let before = *acc;
                    *acc += r.1 as u64;
                    Some(before)
                })
                .collect();
            self.live_total = self.live.iter().map(|r| r.1 as u64).sum();
        }
    }

    /// File offset of byte `pos` of live memory (concatenated, modulo its size).
    fn live_offset(&self, pos: u64) -> usize {
        let rel = pos % self.live_total.max(1);
        let i = self.live_before.partition_point(|&b| b <= rel);
        let Some(i) = i.checked_sub(1) else {
            return 0;
        };
        match (self.live.get(i), self.live_before.get(i)) {
            (Some(&(start, _)), Some(&before)) => start + (rel - before) as usize,
            _ => 0,
        }
    }

    /// The aligned word at `pos` of live memory, kept inside the file.
    fn word_offset(&self, pos: u64) -> Option<usize> {
        let at = self.live_offset(pos) & !7;
        (at.checked_add(8)? <= self.bytes.len()).then_some(at)
    }

    fn apply(&mut self, core: &[u8], m: Mutation) {
        let len = self.bytes.len();
        if len == 0 {
            return;
        }
        match m {
            Mutation::Xor { pos, mask } => {
                let at = self.live_offset(pos);
                self.xor(at, mask);
            }
            Mutation::XorAnywhere { pos, mask } => {
                let at = (pos % len as u64) as usize;
                self.xor(at, mask);
            }
            Mutation::Pointer { pos, src, delta } => {
                let (Some(at), Some(from)) = (self.word_offset(pos), self.word_offset(src)) else {
                    return;
                };
                let word = read_u64(core, from).wrapping_add((i64::from(delta) * 8) as u64);
                self.write_word(at, word);
            }
            Mutation::Add { pos, delta } => {
                let Some(at) = self.word_offset(pos) else {
                    return;
                };
                let word = if delta == 0 {
                    0
                } else {
                    read_u64(&self.bytes, at).wrapping_add(i64::from(delta) as u64)
                };
                self.write_word(at, word);
            }
        }
    }

    fn xor(&mut self, at: usize, mask: u8) {
        if let Some(b) = self.bytes.get_mut(at) {
            *b ^= mask;
            self.touched.push((at, 1));
        }
    }

    fn write_word(&mut self, at: usize, word: u64) {
        if let Some(dst) = self.bytes.get_mut(at..at + 8) {
            dst.copy_from_slice(&word.to_le_bytes());
            self.touched.push((at, 8));
        }
    }

    /// Puts the pristine bytes back where this input changed them.
    fn restore(&mut self, core: &[u8]) {
        for (at, n) in std::mem::take(&mut self.touched) {
            if let (Some(dst), Some(src)) = (self.bytes.get_mut(at..at + n), core.get(at..at + n)) {
                dst.copy_from_slice(src);
            }
        }
        self.dirty = false;
    }
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at.saturating_add(8))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Fuzz the whole pipeline over `core` (a decompressed ELF core, normally
/// [`sample_core`]) damaged by `mutations`.
///
/// `mutations` is a sequence of 9-byte records: a u64 little-endian position whose top
/// two bits select the kind, and one byte. Positions of kinds 0, 2 and 3 are taken modulo
/// the size of the core's *live memory*: the 16-byte granules of its writable PT_LOAD
/// segments (heap, stack, data) that hold a non-zero byte, concatenated; most of a
/// core's writable memory is zero pages that nothing points into.
///
/// * kind 0 XORs the byte (0 means 0xFF) into live memory;
/// * kind 1 XORs it at the position modulo the file size (ELF headers and notes too);
/// * kind 2 overwrites an aligned word of live memory (position bits 0-31) with the word
///   at another place of it (bits 32-61) plus the byte (signed) times 8: a pointer to
///   something else;
/// * kind 3 adds the byte (signed; 0 zeroes the word) to an aligned word of live memory.
///
/// A trailing partial record selects [`WalkSettings::from_byte`] with its first byte.
///
/// The core is copied once per process into a working buffer (a core is recognised by
/// its address and length); each call damages the copy in place, walks it
/// ([`walk_core`]) and puts the original bytes back.
pub fn walker(core: &[u8], mutations: &[u8]) {
    let _ = walker_outcome(core, mutations);
}

/// [`walker`], returning what the walk of the damaged core gave: the report, or why the
/// pipeline stopped before the walk.
pub fn walker_outcome(core: &[u8], mutations: &[u8]) -> Result<Report, String> {
    static WORKING: OnceLock<Mutex<Working>> = OnceLock::new();
    let mut w = WORKING
        .get_or_init(|| Mutex::new(Working::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // A panic in a previous call (a test harness catching it) leaves the copy dirty.
    w.reset(core);
    w.dirty = true;
    let records = mutations.chunks_exact(MUTATION_RECORD);
    let settings = records
        .remainder()
        .first()
        .map_or_else(WalkSettings::default, |&b| WalkSettings::from_byte(b));
    for rec in records {
        if let Ok(rec) = <&[u8; MUTATION_RECORD]>::try_from(rec) {
            w.apply(core, Mutation::decode(rec));
        }
    }
    let mut rdb_buf = std::mem::take(&mut w.rdb);
    let outcome = walk_core_into(&w.bytes, settings, &mut rdb_buf);
    w.rdb = rdb_buf;
    if mutations.is_empty()
        && core.as_ptr() == sample_core().map_or(std::ptr::null(), <[u8]>::as_ptr)
    {
        // The pristine sample recovers whole.
        match &outcome {
            Ok(r) => assert!(r.complete() && r.totals.keys == r.totals.expected),
            Err(e) => panic!("the pristine sample core does not recover: {e}"),
        }
    }
    w.restore(core);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_records_round_trip() {
        for m in [
            Mutation::Xor { pos: 5, mask: 3 },
            Mutation::XorAnywhere {
                pos: 1 << 40,
                mask: 0xFF,
            },
            Mutation::Pointer {
                pos: 77,
                src: 1234,
                delta: -2,
            },
            Mutation::Add { pos: 9, delta: 1 },
        ] {
            assert_eq!(
                format!("{:?}", Mutation::decode(&m.encode())),
                format!("{m:?}")
            );
        }
    }

    #[test]
    fn bit_fields_written_read_back() {
        let mut buf = vec![0u8; 16];
        let b = Bits {
            bit_offset: 19,
            width: 11,
        };
        put_bits(&mut buf, 2, b, 0x5A5);
        assert_eq!(b.get(&buf[2..]), Some(0x5A5));
        let f = Field { offset: 3, size: 4 };
        put_field(&mut buf, 0, f, 0xDEAD_BEEF);
        assert_eq!(f.get(&buf), Some(0xDEAD_BEEF));
    }
}
