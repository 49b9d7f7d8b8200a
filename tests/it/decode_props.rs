//! Property tests of the compact-encoding decoders in `rdb/src/decode` and of the re-encoder in
//! `src/reencode.rs`.
//!
//! * Round trips: listpacks from [`ListpackBuilder`] (checked byte for byte against a reference
//!   encoder written from Redis's format), ziplists, intsets and zipmaps from the small
//!   reference encoders, LZF from the `lzf` crate and from `rdb::compress`, all decode to
//!   exactly the elements they were built from, with the right `len()` and size. The
//!   strategies and reference encoders are shared with the `rdb` crate's property tests
//!   (`rdb/tests/support/decode_gen.rs`).
//! * Robustness: arbitrary bytes, blobs with a valid header around random entries, strict
//!   prefixes and byte mutations of valid encodings never panic a decoder; whatever a decoder
//!   accepts iterates to exactly `len()` elements and stays inside the input.
//! * The LZF decoder agrees with the `lzf` crate's on arbitrary input.
//! * `reencode::write_plain` turns every compact value into a plain record that the `rdb`
//!   reader reads back as the same elements.
//!
//! Case counts keep `cargo test --test it -- decode_props::` well under 20 s in a debug
//! build; set `PROPTEST_CASES` to override them all.

use std::borrow::Cow;
use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::sample::Index;

use rdb::reader::{RdbReader, RdbValue};
use rdb::{RdbWriter, RecordBuilder, ValueType};
use redis_rescue::decode::intset::Intset;
use redis_rescue::decode::listpack::{Listpack, ListpackBuilder};
use redis_rescue::decode::ziplist::Ziplist;
use redis_rescue::decode::zipmap::Zipmap;
use redis_rescue::decode::{lzf, parse_canonical_int};
use redis_rescue::reencode::{plain_type, write_plain, PlainType};
use redis_rescue::value::{QuicklistNode, StrValue, Value};

// Strategies, reference encoders and mutations, shared with the `rdb` crate's property tests.
#[path = "../../rdb/tests/support/decode_gen.rs"]
mod decode_gen;
use decode_gen::*;

// ============================================================================ encoders

/// A listpack from the crate's own builder (Redis's choices: canonical integer strings
/// stored as integers).
fn build_listpack(items: &[It]) -> Vec<u8> {
    let mut b = ListpackBuilder::new();
    b.extend(items.iter().map(It::elem)).unwrap();
    b.finish()
}

/// LZF input: small alphabets and repeats (compressible), and noise; up to ~20 KiB, more
/// than LZF's 8 KiB window.
fn lzf_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => (1u8..=255, prop_oneof![1usize..300, 300usize..20_000], any::<u64>()).prop_map(
            |(alphabet, n, seed)| {
                let mut x = seed | 1;
                (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % u64::from(alphabet)) as u8
                    })
                    .collect()
            }
        ),
        2 => (vec(any::<u8>(), 1..8), 2usize..2000)
            .prop_map(|(p, n)| p.iter().copied().cycle().take(n).collect()),
        1 => vec(any::<u8>(), 1..300),
    ]
}

// ===================================================================== invariant checks

/// What must hold for anything `Listpack::parse` accepts from `input`.
fn check_listpack(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(lp) = Listpack::parse(input) {
        let items: Vec<It> = lp.iter().map(owned).collect();
        prop_assert_eq!(items.len(), lp.len());
        prop_assert_eq!(lp.is_empty(), items.is_empty());
        prop_assert_eq!(lp.total_bytes(), lp.as_bytes().len());
        prop_assert!(lp.total_bytes() <= input.len());
        prop_assert_eq!(lp.as_bytes(), &input[..lp.total_bytes()]);
        prop_assert_eq!(lp.as_bytes().last(), Some(&0xFF));
        // What was accepted re-encodes to a listpack with the same strings.
        let again = build_listpack(&items);
        let lp2 = Listpack::parse(&again).unwrap();
        let texts: Vec<Vec<u8>> = items.iter().map(It::text).collect();
        let texts2: Vec<Vec<u8>> = lp2.iter().map(|e| e.to_vec()).collect();
        prop_assert_eq!(texts, texts2);
    }
    Ok(())
}

/// What must hold for anything `Ziplist::parse` accepts from `input`.
fn check_ziplist(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(zl) = Ziplist::parse(input) {
        let n = zl.iter().count();
        prop_assert_eq!(n, zl.len());
        prop_assert_eq!(zl.is_empty(), n == 0);
        prop_assert_eq!(zl.total_bytes(), zl.as_bytes().len());
        prop_assert!(zl.total_bytes() <= input.len());
        prop_assert_eq!(zl.as_bytes(), &input[..zl.total_bytes()]);
        prop_assert_eq!(zl.as_bytes().last(), Some(&0xFF));
    }
    Ok(())
}

/// What must hold for anything `Intset::parse` accepts from `input`.
fn check_intset(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(is) = Intset::parse(input) {
        let vals: Vec<i64> = is.iter().collect();
        prop_assert_eq!(vals.len(), is.len());
        prop_assert_eq!(is.iter().len(), is.len());
        prop_assert!(vals.windows(2).all(|w| w[0] < w[1]), "{:?}", vals);
        prop_assert!(matches!(is.encoding(), 2 | 4 | 8));
        prop_assert_eq!(is.as_bytes().len(), 8 + is.len() * is.encoding());
        prop_assert_eq!(is.as_bytes(), &input[..is.as_bytes().len()]);
    }
    Ok(())
}

/// What must hold for anything `Zipmap::parse` accepts from `input`.
fn check_zipmap(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(zm) = Zipmap::parse(input) {
        prop_assert_eq!(zm.iter().count(), zm.len());
        prop_assert_eq!(zm.is_empty(), zm.iter().next().is_none());
        prop_assert!(zm.as_bytes().len() <= input.len());
        prop_assert_eq!(zm.as_bytes(), &input[..zm.as_bytes().len()]);
        prop_assert_eq!(zm.as_bytes().last(), Some(&0xFF));
    }
    Ok(())
}

/// LZF through this crate's decoder.
fn inflate(input: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut out = vec![1, 2, 3];
    lzf::decompress(input, n, &mut out).ok().map(|()| out)
}

// ============================================================== re-encoder test helpers

/// A compact value to re-encode, with its elements.
#[derive(Clone, Debug)]
enum Compact {
    /// Quicklist (7.0) nodes: 0 listpack, 1 LZF listpack, 2 plain, 3 LZF plain.
    Quicklist(Vec<(u8, Vec<It>)>),
    /// Quicklist (3.2–6.2) nodes of ziplists, `true`: LZF-compressed.
    QuicklistZiplist(Vec<(bool, Vec<It>)>),
    ListZiplist(Vec<It>),
    SetIntset(BTreeSet<i64>, u8),
    SetListpack(Vec<It>),
    ZsetListpack(Vec<(It, f64, ScoreForm)>),
    ZsetZiplist(Vec<(It, f64, ScoreForm)>),
    HashListpack(Vec<(It, It)>),
    HashZiplist(Vec<(It, It)>),
}

fn compact() -> impl Strategy<Value = Compact> {
    let pairs = || vec((item(), item()), 0..6);
    let zpairs = || vec((item(), score(), score_form()), 0..6);
    prop_oneof![
        vec((0u8..4, vec(item(), 1..5)), 0..4).prop_map(Compact::Quicklist),
        vec((any::<bool>(), vec(item(), 1..5)), 0..4).prop_map(Compact::QuicklistZiplist),
        vec(item(), 0..8).prop_map(Compact::ListZiplist),
        (btree_set(int(), 0..8), 0u8..3).prop_map(|(s, w)| Compact::SetIntset(s, w)),
        vec(item(), 0..8).prop_map(Compact::SetListpack),
        zpairs().prop_map(Compact::ZsetListpack),
        zpairs().prop_map(Compact::ZsetZiplist),
        pairs().prop_map(Compact::HashListpack),
        pairs().prop_map(Compact::HashZiplist),
    ]
}

/// LZF-compresses `b` with the `rdb` crate's compressor (`None` if empty).
fn squeeze(b: &[u8]) -> Option<Vec<u8>> {
    let mut c = Vec::new();
    rdb::compress::lzf_compress(b, usize::MAX, &mut c).then_some(c)
}

fn flat(p: &[(It, It)]) -> Vec<It> {
    p.iter().flat_map(|(a, b)| [a.clone(), b.clone()]).collect()
}

fn zflat(p: &[(It, f64, ScoreForm)]) -> Vec<It> {
    p.iter()
        .flat_map(|(m, s, form)| [m.clone(), score_item(*s, *form)])
        .collect()
}

/// The [`Value`] (owning its blobs) and the plain value the reader must return.
fn materialize(c: &Compact) -> (Value<'static>, PlainType, RdbValue) {
    let texts = |items: &[It]| items.iter().map(It::text).collect::<Vec<_>>();
    let pairs = |p: &[(It, It)]| {
        p.iter()
            .map(|(a, b)| (a.text(), b.text()))
            .collect::<Vec<_>>()
    };
    let zpairs =
        |p: &[(It, f64, ScoreForm)]| p.iter().map(|(m, s, _)| (m.text(), *s)).collect::<Vec<_>>();
    let blob = |b: Vec<u8>| -> Cow<'static, [u8]> { Cow::Owned(b) };
    match c {
        Compact::Quicklist(nodes) => {
            let mut elems = Vec::new();
            let nodes = nodes
                .iter()
                .map(|(kind, items)| {
                    let plain = items[0].text();
                    match kind {
                        0 | 1 => {
                            elems.extend(texts(items));
                            let lp = build_listpack(items);
                            match squeeze(&lp) {
                                Some(c) if *kind == 1 => QuicklistNode::PackedLzf {
                                    compressed: blob(c),
                                    raw_len: lp.len() as u64,
                                },
                                _ => QuicklistNode::Packed(blob(lp)),
                            }
                        }
                        _ => {
                            elems.push(plain.clone());
                            match squeeze(&plain) {
                                Some(c) if *kind == 3 => QuicklistNode::PlainLzf {
                                    compressed: blob(c),
                                    raw_len: plain.len() as u64,
                                },
                                _ => QuicklistNode::Plain(blob(plain)),
                            }
                        }
                    }
                })
                .collect();
            (
                Value::ListQuicklist(nodes),
                PlainType::List,
                RdbValue::List(elems),
            )
        }
        Compact::QuicklistZiplist(nodes) => {
            let mut elems = Vec::new();
            let nodes = nodes
                .iter()
                .map(|(lzf, items)| {
                    elems.extend(texts(items));
                    let zl = ziplist(items, &[]);
                    match squeeze(&zl) {
                        Some(c) if *lzf => QuicklistNode::PackedLzf {
                            compressed: blob(c),
                            raw_len: zl.len() as u64,
                        },
                        _ => QuicklistNode::Packed(blob(zl)),
                    }
                })
                .collect();
            (
                Value::ListQuicklistZiplist(nodes),
                PlainType::List,
                RdbValue::List(elems),
            )
        }
        Compact::ListZiplist(items) => (
            Value::ListZiplist(blob(ziplist(items, &[]))),
            PlainType::List,
            RdbValue::List(texts(items)),
        ),
        Compact::SetIntset(set, widen) => (
            Value::SetIntset(blob(intset(set, *widen))),
            PlainType::Set,
            RdbValue::Set(set.iter().map(|v| v.to_string().into_bytes()).collect()),
        ),
        Compact::SetListpack(items) => (
            Value::SetListpack(blob(build_listpack(items))),
            PlainType::Set,
            RdbValue::Set(texts(items)),
        ),
        Compact::ZsetListpack(p) => (
            Value::ZsetListpack(blob(build_listpack(&zflat(p)))),
            PlainType::Zset,
            RdbValue::Zset(zpairs(p)),
        ),
        Compact::ZsetZiplist(p) => (
            Value::ZsetZiplist(blob(ziplist(&zflat(p), &[]))),
            PlainType::Zset,
            RdbValue::Zset(zpairs(p)),
        ),
        Compact::HashListpack(p) => (
            Value::HashListpack(blob(build_listpack(&flat(p)))),
            PlainType::Hash,
            RdbValue::Hash(pairs(p)),
        ),
        Compact::HashZiplist(p) => (
            Value::HashZiplist(blob(ziplist(&flat(p), &[]))),
            PlainType::Hash,
            RdbValue::Hash(pairs(p)),
        ),
    }
}

/// Writes one plain record (`rec` holds type, key and value) and reads its value back.
fn write_and_read(version: u32, rec: &RecordBuilder) -> Result<RdbValue, TestCaseError> {
    let mut w = RdbWriter::new(Vec::new(), version).unwrap();
    w.select_db(0).unwrap();
    w.record(rec).unwrap();
    let file = w.finish().unwrap();
    let mut r = RdbReader::new(&file[..]).unwrap();
    let e = match r.next_entry() {
        Ok(Some(e)) => e,
        other => return Err(TestCaseError::fail(format!("read back: {other:?}"))),
    };
    prop_assert_eq!(&e.key, b"k");
    prop_assert!(matches!(r.next_entry(), Ok(None)));
    Ok(e.value)
}

// ========================================================================== properties

proptest! {
    #![proptest_config(config(1536))]

    /// ListpackBuilder: byte-identical to the reference encoder (canonical integer strings
    /// stored as integers), and `Listpack::parse` gives the elements back with the right
    /// `len()`, `total_bytes()` and header fields, also with bytes after the listpack.
    #[test]
    fn listpack_builder_round_trips(items in vec(item(), 0..12), junk in vec(any::<u8>(), 0..4)) {
        let mut b = ListpackBuilder::new();
        for (i, e) in items.iter().enumerate() {
            prop_assert_eq!(b.len(), i);
            b.push(e.elem()).unwrap();
        }
        prop_assert_eq!(b.is_empty(), items.is_empty());
        let bytes = b.finish();
        let canonical: Vec<It> = items.iter().map(It::canonical).collect();
        prop_assert_eq!(&bytes, &listpack(&canonical));
        prop_assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len());
        prop_assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]) as usize, items.len());
        let mut longer = bytes.clone();
        longer.extend_from_slice(&junk);
        for input in [&bytes, &longer] {
            let lp = Listpack::parse(input).unwrap();
            prop_assert_eq!(lp.len(), items.len());
            prop_assert_eq!(lp.total_bytes(), bytes.len());
            prop_assert_eq!(lp.as_bytes(), &bytes[..]);
            let got: Vec<It> = lp.iter().map(owned).collect();
            prop_assert_eq!(&got, &canonical);
            let texts: Vec<Vec<u8>> = (&lp).into_iter().map(|e| e.to_vec()).collect();
            let want: Vec<Vec<u8>> = items.iter().map(It::text).collect();
            prop_assert_eq!(texts, want);
        }
        // Strings that only look like integers ("007", "-0", "+1") stay strings.
        for (e, c) in items.iter().zip(&canonical) {
            if let It::Str(s) = e {
                prop_assert_eq!(matches!(c, It::Int(_)), parse_canonical_int(s).is_some());
            }
        }
    }

    /// Ziplists from the reference encoder (any mix of integer and string entries, 1- and
    /// 5-byte prevlens) decode to exactly those elements, with the right `len()` and size.
    #[test]
    fn ziplist_round_trips(items in vec(item(), 0..12), big in vec(any::<bool>(), 12),
                           redis_style in any::<bool>(), junk in vec(any::<u8>(), 0..4)) {
        let items: Vec<It> = if redis_style {
            items.iter().map(It::canonical).collect()
        } else {
            items
        };
        let bytes = ziplist(&items, &big);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&junk);
        for input in [&bytes, &longer] {
            let zl = Ziplist::parse(input).unwrap();
            prop_assert_eq!(zl.len(), items.len());
            prop_assert_eq!(zl.is_empty(), items.is_empty());
            prop_assert_eq!(zl.total_bytes(), bytes.len());
            prop_assert_eq!(zl.as_bytes(), &bytes[..]);
            let got: Vec<It> = zl.iter().map(owned).collect();
            prop_assert_eq!(&got, &items);
        }
    }

    /// Intsets of any width that holds the members decode to the members, ascending.
    #[test]
    fn intset_round_trips(set in btree_set(int(), 0..20), widen in 0u8..3,
                          junk in vec(any::<u8>(), 0..9)) {
        let width = intset_width(&set, widen);
        let bytes = intset(&set, widen);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&junk);
        for input in [&bytes, &longer] {
            let is = Intset::parse(input).unwrap();
            prop_assert_eq!(is.len(), set.len());
            prop_assert_eq!(is.is_empty(), set.is_empty());
            prop_assert_eq!(is.encoding(), width);
            prop_assert_eq!(is.as_bytes(), &bytes[..]);
            let got: Vec<i64> = (&is).into_iter().collect();
            prop_assert_eq!(got, set.iter().copied().collect::<Vec<_>>());
        }
    }

    /// Zipmaps (1- and 5-byte lengths, free bytes after values, known or unknown count)
    /// decode to their pairs; the zipmap ends at its end byte whatever follows.
    #[test]
    fn zipmap_round_trips(pairs in vec(zm_pair(), 0..8), unknown in any::<bool>(),
                          junk in vec(any::<u8>(), 0..4)) {
        let bytes = zipmap(&pairs, unknown);
        let mut longer = bytes.clone();
        longer.extend_from_slice(&junk);
        for input in [&bytes, &longer] {
            let zm = Zipmap::parse(input).unwrap();
            prop_assert_eq!(zm.len(), pairs.len());
            prop_assert_eq!(zm.is_empty(), pairs.is_empty());
            prop_assert_eq!(zm.as_bytes(), &bytes[..]);
            let got: Vec<(Vec<u8>, Vec<u8>)> =
                (&zm).into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            let want: Vec<(Vec<u8>, Vec<u8>)> =
                pairs.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }

    /// Every strict prefix of a valid listpack, ziplist, intset or zipmap is rejected.
    #[test]
    fn strict_prefixes_are_rejected(items in vec(item(), 0..8), set in btree_set(int(), 0..8),
                                    pairs in vec(zm_pair(), 0..5), cut in any::<Index>()) {
        let lp = build_listpack(&items);
        prop_assert!(Listpack::parse(&lp[..cut.index(lp.len())]).is_err());
        let zl = ziplist(&items, &[]);
        prop_assert!(Ziplist::parse(&zl[..cut.index(zl.len())]).is_err());
        let is = intset(&set, 0);
        prop_assert!(Intset::parse(&is[..cut.index(is.len())]).is_err());
        let zm = zipmap(&pairs, false);
        prop_assert!(Zipmap::parse(&zm[..cut.index(zm.len())]).is_err());
    }

    /// Byte changes to valid encodings never panic a decoder, and whatever is still
    /// accepted is self-consistent (iterates to `len()`, stays inside the input).
    #[test]
    fn mutations_never_panic(items in vec(item(), 0..8), set in btree_set(int(), 0..8),
                             pairs in vec(zm_pair(), 0..5), big in vec(any::<bool>(), 8),
                             edits in edits()) {
        let canonical: Vec<It> = items.iter().map(It::canonical).collect();
        check_listpack(&mutate(&build_listpack(&items), &edits))?;
        check_ziplist(&mutate(&ziplist(&items, &big), &edits))?;
        check_ziplist(&mutate(&ziplist(&canonical, &[]), &edits))?;
        check_intset(&mutate(&intset(&set, 0), &edits))?;
        check_zipmap(&mutate(&zipmap(&pairs, false), &edits))?;
    }

    /// Arbitrary bytes, raw and inside a header that matches their size (so the decoders
    /// walk the entries), never panic a decoder; what is accepted is self-consistent.
    #[test]
    fn arbitrary_bytes_never_panic(raw in vec(any::<u8>(), 0..200), tail in any::<u32>(),
                                   count in prop_oneof![Just(65535u16), 0u16..6]) {
        check_listpack(&raw)?;
        check_ziplist(&raw)?;
        check_intset(&raw)?;
        check_zipmap(&raw)?;
        check_listpack(&lp_wrap(&raw, count))?;
        let zl_tail = if tail % 2 == 0 { 10 + tail % (raw.len() as u32 + 1) } else { tail };
        check_ziplist(&zl_wrap(&raw, zl_tail, count))?;
        for width in [2u32, 4, 8] {
            let mut is = width.to_le_bytes().to_vec();
            is.extend_from_slice(&((raw.len() as u32) / width).to_le_bytes());
            is.extend_from_slice(&raw);
            check_intset(&is)?;
        }
        let mut zm = vec![count.min(254) as u8];
        zm.extend_from_slice(&raw);
        zm.push(0xFF);
        check_zipmap(&zm)?;
    }
}

proptest! {
    #![proptest_config(config(6))]

    /// 65535 elements and more: the header count saturates at 65535 ("unknown") and the
    /// decoders count the entries themselves.
    #[test]
    fn saturated_counts(n in 65533usize..65540, v in -3i64..200) {
        let items: Vec<It> = (0..n).map(|i| It::Int(v + (i % 7) as i64)).collect();
        let lp = build_listpack(&items);
        prop_assert_eq!(&lp, &listpack(&items));
        prop_assert_eq!(u16::from_le_bytes([lp[4], lp[5]]), n.min(65535) as u16);
        let parsed = Listpack::parse(&lp).unwrap();
        prop_assert_eq!(parsed.len(), n);
        prop_assert_eq!(parsed.iter().count(), n);
        let zl = ziplist(&items, &[]);
        prop_assert_eq!(u16::from_le_bytes([zl[8], zl[9]]), n.min(65535) as u16);
        let parsed = Ziplist::parse(&zl).unwrap();
        prop_assert_eq!(parsed.len(), n);
        prop_assert!(parsed.iter().map(owned).eq(items.iter().cloned()));
    }
}

proptest! {
    #![proptest_config(config(768))]

    /// LZF: what the `lzf` crate and `rdb::compress` produce inflates back exactly; a wrong
    /// expected length is an error.
    #[test]
    fn lzf_round_trips(x in lzf_input()) {
        let mut outputs = Vec::new();
        outputs.extend(lzf_crate_compress(&x));
        outputs.extend(squeeze(&x));
        prop_assert!(!outputs.is_empty());
        for c in &outputs {
            prop_assert_eq!(inflate(c, x.len()), Some(x.clone()));
            prop_assert!(inflate(c, x.len() + 1).is_none());
            prop_assert!(inflate(c, x.len() - 1).is_none());
            prop_assert!(inflate(&c[..c.len() - 1], x.len()).is_none());
        }
    }

    /// On arbitrary input the decoder agrees with the `lzf` crate's: same bytes when the
    /// crate produces exactly the expected length, an error otherwise; never a panic.
    #[test]
    fn lzf_agrees_with_the_lzf_crate(input in prop_oneof![
        vec(any::<u8>(), 1..64),
        // Streams of valid-looking items: literal runs and short back references.
        vec(prop_oneof![
            (0u8..32).prop_flat_map(|c| vec(any::<u8>(), usize::from(c) + 1)
                .prop_map(move |lit| [&[c][..], &lit].concat())),
            (1u8..7, 0u8..2, any::<u8>()).prop_map(|(l, hi, lo)| vec![(l << 5) | hi, lo]),
            (any::<u8>(), any::<u8>()).prop_map(|(ext, lo)| vec![0xE0, ext, lo]),
        ], 1..10).prop_map(|v| v.concat()),
    ], n in 0usize..3000) {
        let theirs = ::lzf::decompress(&input, 100_000).ok();
        if let Some(t) = &theirs {
            // The exact length the crate produced must work here too, one more must not.
            prop_assert_eq!(inflate(&input, t.len()), Some(t.clone()));
            prop_assert!(inflate(&input, t.len() + 1).is_none());
        }
        let ours = inflate(&input, n);
        let theirs_n = ::lzf::decompress(&input, n).ok().filter(|t| t.len() == n);
        prop_assert_eq!(ours, theirs_n);
    }

    /// Byte changes to valid LZF data never panic the decoder; success means exactly the
    /// expected length.
    #[test]
    fn lzf_mutations_never_panic(x in lzf_input(), edits in edits(), extra in 0usize..3) {
        let Some(c) = squeeze(&x) else { return Ok(()) };
        let m = mutate(&c, &edits);
        for n in [x.len(), x.len() + extra, x.len().saturating_sub(extra)] {
            if let Some(out) = inflate(&m, n) {
                prop_assert_eq!(out.len(), n);
            }
        }
    }

    /// `write_plain` turns every compact value into the plain record (list, set, zset with
    /// text or binary scores, hash) that the `rdb` reader reads back as the same elements,
    /// scores bit for bit.
    #[test]
    fn reencode_round_trips(c in compact(), binary in any::<bool>(), compress in any::<bool>(),
                            version in 1u32..=12) {
        let (value, plain, want) = materialize(&c);
        prop_assert_eq!(plain_type(&value), Some(plain));
        let (ty, version) = match plain {
            PlainType::List => (ValueType::List, version),
            PlainType::Set => (ValueType::Set, version),
            PlainType::Hash => (ValueType::Hash, version),
            PlainType::Zset if binary => (ValueType::Zset2, version.max(8)),
            PlainType::Zset => (ValueType::Zset, version),
        };
        let mut rec = RecordBuilder::new(compress);
        rec.value_type(ty);
        rec.key(b"k");
        write_plain(&value, plain, binary, &mut rec).unwrap();
        let got = write_and_read(version, &rec)?;
        prop_assert_eq!(&got, &want);
        if let (RdbValue::Zset(g), RdbValue::Zset(w)) = (&got, &want) {
            let bits = |v: &[(Vec<u8>, f64)]| v.iter().map(|(_, s)| s.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(g), bits(w));
        }
        prop_assert_eq!(plain_type(&Value::String(StrValue::Int(1))), None);
    }
}
