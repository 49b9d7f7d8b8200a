//! Property tests of the `rdb` crate: arbitrary keyspaces written with [`RdbWriter`] and
//! [`RecordBuilder`] must read back, key for key and byte for byte, through [`RdbReader`];
//! the LZF compressor must round-trip through an independent decoder (the `lzf` crate); and
//! the `encode` helpers must emit the RDB primitives exactly as the format defines them.
//!
//! The compact encodings (ziplist, listpack, intset, zipmap, stream listpacks) have no encoder
//! in the crate: small ones written from Redis's format description, and the strategies,
//! are in `rdb/tests/support/decode_gen.rs`, shared with `redis-rescue`'s `tests/it/decode_props.rs`.
//!
//! Case counts are chosen so that `cargo test -p rdb --test it -- roundtrip_props::` stays
//! well under 20 s in a debug build; set `PROPTEST_CASES` to override them all.
//!
//! Here: the properties and the decoding helpers; `model.rs` holds the model of a file and
//! its strategies, `expect.rs` writing it and what the reader must give back.

#[path = "../../support/decode_gen.rs"]
mod decode_gen;
mod expect;
mod model;

use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;

use self::decode_gen::*;
use self::expect::{check_file, read_all, write_file};
use self::model::{expire, file, mod_op, Aux, File, ModOp, QlNode, SFields, SModel, SNode, Val};
use rdb::compress::lzf_compress;
use rdb::encode;
use rdb::reader::{
    Checksum, HashField, ModuleValue, ReadError, Stream, StreamConsumer, StreamEntry, StreamGroup,
    StreamId, StreamIdmp, StreamIid, StreamPending, StreamProducer,
};
use rdb::{
    Entry, RdbError, RdbReader, RdbValue, RdbWriter, RecordBuilder, StreamIdmpConfig, ValueType,
};

// ==================================================================== decoding helpers

/// Decodes an RDB length at the start of `b`: (value, bytes used). Hand-written from the
/// format: `00xxxxxx`, `01xxxxxx xxxxxxxx`, `0x80` + u32 BE, `0x81` + u64 BE.
fn decode_len(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    match first >> 6 {
        0 => Some((u64::from(first), 1)),
        1 => Some(((u64::from(first & 0x3F) << 8) | u64::from(*b.get(1)?), 2)),
        _ if first == 0x80 => Some((
            u64::from(u32::from_be_bytes(b.get(1..5)?.try_into().ok()?)),
            5,
        )),
        _ if first == 0x81 => Some((u64::from_be_bytes(b.get(1..9)?.try_into().ok()?), 9)),
        _ => None,
    }
}

fn len_bytes(n: u64) -> Vec<u8> {
    let mut b = Vec::new();
    encode::put_len(&mut b, n);
    b
}

/// The special encoding of an integer that fits 32 bits (`0xC0`/`0xC1`/`0xC2` + LE bytes).
fn small_int_bytes(v: i64) -> Option<Vec<u8>> {
    if let Ok(x) = i8::try_from(v) {
        Some([&[0xC0][..], &x.to_le_bytes()].concat())
    } else if let Ok(x) = i16::try_from(v) {
        Some([&[0xC1][..], &x.to_le_bytes()].concat())
    } else if let Ok(x) = i32::try_from(v) {
        Some([&[0xC2][..], &x.to_le_bytes()].concat())
    } else {
        None
    }
}

/// Low-entropy data of any length up to ~24 KiB (more than LZF's 8 KiB window), from a
/// small alphabet with copied blocks, or repeated patterns, or plain noise.
fn lzf_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => (1u8..=255, prop_oneof![0usize..300, 300usize..24_000], any::<u64>()).prop_map(
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
        2 => compressible(),
        1 => vec(any::<u8>(), 0..200),
        1 => (vec(any::<u8>(), 1..40), vec((any::<Index>(), 1usize..300), 1..12)).prop_map(
            |(seed, copies)| {
                let mut v = seed;
                for (from, n) in copies {
                    let at = from.index(v.len());
                    let chunk: Vec<u8> = v[at..].iter().copied().cycle().take(n).collect();
                    v.extend_from_slice(&chunk);
                }
                v
            }
        ),
    ]
}

// ========================================================================== properties

proptest! {
    #![proptest_config(config(1024))]

    /// Arbitrary keyspaces (several dbs, every value type, expires, IDLE/FREQ, AUX fields,
    /// functions, RESIZEDB hints, every RDB version) come back exactly, with a valid CRC;
    /// whatever the file's version cannot hold is refused and writes nothing.
    #[test]
    fn keyspace_round_trips(f in file(5, 8)) {
        let (bytes, exp) = write_file(&f)?;
        check_file(f.version, &bytes, &exp)?;
    }
}

/// Appends module-serialized data (typed opcodes, then the module EOF).
fn write_mod_ops(ops: &[ModOp], r: &mut RecordBuilder) {
    for op in ops {
        match op {
            ModOp::SInt(v) => {
                r.len(1);
                r.len(*v);
            }
            ModOp::UInt(v) => {
                r.len(2);
                r.len(*v);
            }
            ModOp::Float(b) => {
                r.len(3);
                r.raw(b);
            }
            ModOp::Double(d) => {
                r.len(4);
                r.binary_double(*d);
            }
            ModOp::Str(s) => {
                r.len(5);
                r.string(s);
            }
        }
    }
    r.len(0);
}

proptest! {
    #![proptest_config(config(512))]

    /// IDMP settings: exactly those Redis 8.6's loader accepts (duration 1..=86400 s,
    /// 1..=10000 IIDs per producer) can be built; the others are refused by name.
    #[test]
    fn idmp_settings_outside_the_loader_range_are_refused(
        d in prop_oneof![0u64..=3, 86_398u64..=86_402, any::<u64>()],
        m in prop_oneof![0u64..=3, 9_998u64..=10_002, any::<u64>()],
    ) {
        let r = StreamIdmpConfig::new(d, m);
        let d_ok = (1..=86_400).contains(&d);
        let m_ok = (1..=10_000).contains(&m);
        match r {
            Ok(c) => {
                prop_assert!(d_ok && m_ok);
                prop_assert_eq!((c.duration(), c.max_entries()), (d, m));
            }
            Err(RdbError::OutOfRange { what, value, .. }) => {
                prop_assert!(!(d_ok && m_ok));
                if d_ok {
                    prop_assert_eq!((what, value), ("stream IDMP max entries", m));
                } else {
                    prop_assert_eq!((what, value), ("stream IDMP duration", d));
                }
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        }
    }

    /// Module key metadata (`KEY_META`, RDB 13) of up to 7 classes with arbitrary module
    /// data, before a key with or without an expire, is skipped: the key reads as if it
    /// had none, and the reader counts it.
    #[test]
    fn key_meta_is_skipped(
        classes in vec((any::<[u8; 4]>(), vec(mod_op(), 0..4)), 0..=7),
        expire in option::of(expire()),
        key in bytes(),
        val in bytes(),
    ) {
        let mut r = RecordBuilder::new(false);
        if let Some(ms) = expire {
            r.expire_ms(ms);
        }
        r.raw(&[rdb::consts::KEY_META]);
        r.len(classes.len() as u64);
        for (spec, ops) in &classes {
            r.raw(spec);
            write_mod_ops(ops, &mut r);
        }
        r.value_type(ValueType::String);
        r.key(&key);
        r.string(&val);
        let mut w = RdbWriter::new(Vec::new(), 13).unwrap();
        w.select_db(0).unwrap();
        w.record(&r).unwrap();
        let file = w.finish().unwrap();
        let (entries, rd) = match read_all(&file) {
            Ok(x) => x,
            Err(e) => return Err(TestCaseError::fail(format!("read failed: {e}"))),
        };
        prop_assert_eq!(rd.key_meta_skipped(), 1);
        prop_assert_eq!(entries, vec![Entry {
            db: 0,
            key,
            expire_ms: expire,
            idle: None,
            freq: None,
            rdb_type: 0,
            value: RdbValue::String(val),
        }]);
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Headers are taken as Valkey's loader takes them (`rdbIsVersionAccepted`, strict):
    /// `REDIS` + 4 digits for Redis's 1..=13, `VALKEY` + 3 digits for 80; a version under
    /// the other vendor's magic (`REDIS0080`, `VALKEY011`) is a `MagicMismatch`, any other
    /// number a `BadVersion`; a file the writer starts reads back with its version.
    #[test]
    fn headers_are_taken_as_valkey_does(
        valkey in any::<bool>(),
        version in prop_oneof![0u32..=100, Just(11u32), Just(13u32), Just(80u32), 0u32..=9999],
    ) {
        let digits = if valkey { 3 } else { 4 };
        prop_assume!(version < 10u32.pow(digits));
        let magic = if valkey {
            format!("VALKEY{version:03}")
        } else {
            format!("REDIS{version:04}")
        };
        let mut file = magic.clone().into_bytes();
        file.push(0xFF);
        let sum = rdb::crc64(&file);
        // No trailer before RDB 5.
        if !(1..5).contains(&version) {
            file.extend_from_slice(&sum.to_le_bytes());
        }
        let accepted = if valkey { version == 80 } else { (1..=13).contains(&version) };
        match RdbReader::new(&file[..]) {
            Ok(mut r) => {
                prop_assert!(accepted, "{} was accepted", magic);
                prop_assert_eq!(r.version(), version);
                prop_assert!(r.next_entry().unwrap().is_none());
                let want = if version < 5 { Checksum::Absent } else { Checksum::Verified(sum) };
                prop_assert_eq!(r.checksum(), Some(want));
                // The writer starts such a file the same way.
                let w = RdbWriter::new(Vec::new(), version).unwrap().finish().unwrap();
                prop_assert_eq!(w, file);
            }
            Err(ReadError::MagicMismatch { version: got, .. }) => {
                prop_assert!(!accepted);
                prop_assert_eq!(got, version);
                prop_assert!(if valkey { version < 80 } else { version > 79 }, "{}", magic);
            }
            Err(ReadError::BadVersion(got)) => {
                prop_assert!(!accepted);
                prop_assert_eq!(got, version);
                prop_assert!(if valkey { version > 80 } else { version == 0 || (14..=79).contains(&version) }, "{}", magic);
                prop_assert!(RdbWriter::new(Vec::new(), version).is_err());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{magic}: {e}"))),
        }
    }

    /// Nine arbitrary bytes never panic the reader; whatever it takes starts with one of
    /// the 14 magics.
    #[test]
    fn arbitrary_headers(h in prop_oneof![
        any::<[u8; 9]>().prop_map(|b| b.to_vec()),
        (prop::sample::select(vec![&b"REDIS"[..], b"VALKEY"]), vec(any::<u8>(), 3..5))
            .prop_map(|(m, d)| [m, &d[..]].concat()),
    ]) {
        if let Ok(r) = RdbReader::new(&h[..]) {
            let v = r.version();
            prop_assert!(rdb::consts::is_known_version(v));
            prop_assert_eq!(&h[..9], &rdb::consts::magic(v).unwrap()[..]);
        }
    }
}

proptest! {
    #![proptest_config(config(400))]

    /// Every strict prefix of a valid file fails to read (and never panics).
    #[test]
    fn truncated_files_fail(f in file(3, 4), cut in any::<Index>()) {
        let (bytes, _) = write_file(&f)?;
        let cut = cut.index(bytes.len());
        prop_assert!(read_all(&bytes[..cut]).is_err(), "prefix of {} bytes read fine", cut);
    }

    /// A changed byte never panics the reader, and never goes unnoticed in a file with a
    /// CRC: the read fails, unless the change made the reader stop at an early `EOF`
    /// whose "trailer" happens to be 0 (checksum disabled, as Redis takes it).
    #[test]
    fn changed_byte_is_caught(f in file(3, 4), at in any::<Index>(), xor in 1u8..=255) {
        let (mut bytes, _) = write_file(&f)?;
        let at = 9 + at.index(bytes.len() - 9);
        bytes[at] ^= xor;
        if let Ok((_, r)) = read_all(&bytes) {
            prop_assert!(
                f.version < 5 || r.checksum() == Some(Checksum::Disabled),
                "byte {} ^ {:#04x} went unnoticed: {:?}", at, xor, r.checksum()
            );
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// LZF: unlimited, every non-empty input compresses; the `lzf` crate (an independent
    /// decoder) inflates the output back; the output is at most one control byte per 32
    /// input bytes longer than the input.
    #[test]
    fn lzf_round_trips_through_the_lzf_crate(x in lzf_input()) {
        let mut c = Vec::new();
        let ok = lzf_compress(&x, usize::MAX, &mut c);
        prop_assert_eq!(ok, !x.is_empty());
        if ok {
            prop_assert!(c.len() <= x.len() + x.len().div_ceil(32), "{} > {}", c.len(), x.len());
            prop_assert_eq!(lzf::decompress(&c, x.len()).unwrap(), x);
        }
    }

    /// LZF with a limit succeeds exactly when the unlimited output fits it, and then gives
    /// the same bytes (the "must save 4 bytes" rule relies on this).
    #[test]
    fn lzf_limit_is_exact(x in lzf_input(), slack in -3i64..3, limit in any::<Index>()) {
        let mut full = Vec::new();
        prop_assume!(lzf_compress(&x, usize::MAX, &mut full));
        let limits = [
            (full.len() as i64 + slack).max(0) as usize,
            limit.index(x.len() + 40),
        ];
        for max_out in limits {
            let mut c = Vec::new();
            let ok = lzf_compress(&x, max_out, &mut c);
            prop_assert_eq!(ok, full.len() <= max_out, "limit {}", max_out);
            if ok {
                prop_assert_eq!(&c, &full);
            }
        }
    }

    /// The reader inflates what the reference compressor (`lzf::compress`) produces, stored
    /// through `RecordBuilder::lzf_blob`.
    #[test]
    fn reader_inflates_lzf_crate_output(x in lzf_input()) {
        let Some(c) = lzf_crate_compress(&x) else { return Ok(()) };
        let mut w = RdbWriter::new(Vec::new(), 9).unwrap();
        let mut r = RecordBuilder::new(false);
        r.value_type(ValueType::String);
        r.key(b"k");
        r.lzf_blob(&c, x.len() as u64);
        w.record(&r).unwrap();
        let file = w.finish().unwrap();
        let (entries, _) = read_all(&file).unwrap();
        prop_assert_eq!(entries.len(), 1);
        prop_assert_eq!(&entries[0].value, &RdbValue::String(x));
    }

    /// `put_len` emits the four length forms at their exact boundaries, and they decode back.
    #[test]
    fn lengths_encode_as_specified(n in prop_oneof![
        0u64..70,
        60u64..70,
        16370u64..16400,
        any::<u32>().prop_map(u64::from),
        (u64::from(u32::MAX) - 5)..(u64::from(u32::MAX) + 5),
        any::<u64>(),
    ]) {
        let b = len_bytes(n);
        let want: Vec<u8> = if n < 64 {
            vec![n as u8]
        } else if n < 16384 {
            vec![0x40 | (n >> 8) as u8, n as u8]
        } else if n <= u64::from(u32::MAX) {
            [&[0x80][..], &(n as u32).to_be_bytes()].concat()
        } else {
            [&[0x81][..], &n.to_be_bytes()].concat()
        };
        prop_assert_eq!(&b, &want);
        prop_assert_eq!(decode_len(&b), Some((n, b.len())));
    }

    /// Strings: int encoding exactly for canonical decimal integers of 32 bits (so "007",
    /// "-0", "+1" stay strings), LZF exactly when compressing a string longer than 20 bytes
    /// saves at least 4 bytes, raw length + bytes otherwise.
    #[test]
    fn strings_choose_the_redis_encoding(s in prop_oneof![int_like(), bytes(), lzf_input()],
                                         compress in any::<bool>()) {
        let mut b = Vec::new();
        encode::put_string(&mut b, &s, compress);
        let canonical = canonical_int_oracle(&s);
        prop_assert_eq!(encode::as_canonical_int(&s), canonical);
        if let Some(want) = canonical.and_then(small_int_bytes) {
            prop_assert_eq!(&b, &want);
            return Ok(());
        }
        let mut c = Vec::new();
        let fits = s.len() > 20 && lzf_compress(&s, s.len() - 4, &mut c);
        if compress && fits {
            prop_assert_eq!(b[0], 0xC3);
            let (clen, used) = decode_len(&b[1..]).unwrap();
            let (rawlen, used2) = decode_len(&b[1 + used..]).unwrap();
            let data = &b[1 + used + used2..];
            prop_assert_eq!(rawlen, s.len() as u64);
            prop_assert_eq!(clen, data.len() as u64);
            prop_assert!(data.len() + 4 <= s.len());
            prop_assert_eq!(lzf::decompress(data, s.len()).unwrap(), s);
        } else {
            let mut want = len_bytes(s.len() as u64);
            want.extend_from_slice(&s);
            prop_assert_eq!(&b, &want);
            let mut raw = Vec::new();
            encode::put_raw_string(&mut raw, &s);
            prop_assert_eq!(&raw, &want);
        }
    }

    /// Integers as strings: INT8/16/32 special encodings when they fit, else the decimal
    /// text; the reader returns the decimal text either way.
    #[test]
    fn int_strings_encode_as_specified(v in int(), compress in any::<bool>()) {
        let mut b = Vec::new();
        encode::put_int_string(&mut b, v, compress);
        let text = v.to_string().into_bytes();
        let want = small_int_bytes(v).unwrap_or_else(|| {
            let mut w = len_bytes(text.len() as u64);
            w.extend_from_slice(&text);
            w
        });
        prop_assert_eq!(&b, &want);
        // The same through put_string of the text.
        let mut b2 = Vec::new();
        encode::put_string(&mut b2, &text, compress);
        prop_assert_eq!(&b2, &want);
        let mut w = RdbWriter::new(Vec::new(), 9).unwrap();
        let mut r = RecordBuilder::new(compress);
        r.value_type(ValueType::String);
        r.int_string(v);
        r.int_string(v.wrapping_neg());
        w.record(&r).unwrap();
        let (entries, _) = read_all(&w.finish().unwrap()).unwrap();
        prop_assert_eq!(&entries[0].key, &text);
        prop_assert_eq!(&entries[0].value, &RdbValue::String(v.wrapping_neg().to_string().into_bytes()));
    }

    /// Text doubles: one length byte and `%.17g`-shaped text (at most 17 significant digits,
    /// at most 24 bytes) that parses back to the same bits; 253/254/255 for NaN/+inf/-inf.
    /// Binary doubles and millisecond times: 8 bytes little-endian.
    #[test]
    fn doubles_encode_as_specified(v in prop_oneof![score(), Just(f64::NAN)], ms in any::<i64>()) {
        let mut b = Vec::new();
        encode::put_string_double(&mut b, v);
        if v.is_nan() {
            prop_assert_eq!(&b, &[253]);
        } else if v == f64::INFINITY {
            prop_assert_eq!(&b, &[254]);
        } else if v == f64::NEG_INFINITY {
            prop_assert_eq!(&b, &[255]);
        } else {
            prop_assert_eq!(usize::from(b[0]), b.len() - 1);
            prop_assert!(b.len() - 1 <= 24);
            let text = std::str::from_utf8(&b[1..]).unwrap();
            prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{}", text);
            let mantissa = text.split('e').next().unwrap();
            let digits = mantissa.trim_start_matches('-').replace('.', "");
            prop_assert!(digits.trim_start_matches('0').len() <= 17, "{}", text);
            prop_assert!(!mantissa.contains('.') || !mantissa.ends_with('0'), "{}", text);
        }
        let mut d = Vec::new();
        encode::put_binary_double(&mut d, v);
        prop_assert_eq!(&d, &v.to_le_bytes());
        let mut m = Vec::new();
        encode::put_millis(&mut m, ms);
        prop_assert_eq!(&m, &ms.to_le_bytes());
    }
}

/// The input that makes `lzf::compress` 1.0.0 panic (see [`lzf_crate_compress`]) goes
/// through this crate's compressor, the `lzf` crate's decoder and the RDB reader unharmed.
#[test]
fn lzf_crate_panic_input_is_fine_here() {
    let mut x: Vec<u8> = (0u8..160).collect();
    x.extend_from_slice(&[1, 2, 3, 4, 5]);
    assert!(lzf_crate_compress(&x).is_none());
    let mut c = Vec::new();
    assert!(lzf_compress(&x, usize::MAX, &mut c));
    assert_eq!(lzf::decompress(&c, x.len()).unwrap(), x);
    let mut w = RdbWriter::new(Vec::new(), 9).unwrap();
    let mut r = RecordBuilder::new(false);
    r.value_type(ValueType::String);
    r.key(b"k");
    r.lzf_blob(&c, x.len() as u64);
    w.record(&r).unwrap();
    let (entries, _) = read_all(&w.finish().unwrap()).unwrap();
    assert_eq!(entries[0].value, RdbValue::String(x));
}
