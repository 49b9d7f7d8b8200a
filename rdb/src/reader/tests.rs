//! Reader tests on files made by this crate's writer (real-Redis files are tested in the
//! workspace's `tests/it/verify_reader.rs`).
//!
//! Over ~900 lines as one list: one test per record type, opcode and refusal of the
//! reader, in the order `reader.rs` handles them, sharing the file builders at the top.

use super::*;
use crate::consts::has_redis_feature;
use crate::decode::testutil::{make_listpack, make_ziplist};
use crate::decode::Element;
use crate::{RdbWriter, RecordBuilder, ValueType};

fn read_all(file: &[u8]) -> Result<(Vec<Entry>, Option<Checksum>), ReadError> {
    let mut r = RdbReader::new(file)?;
    let mut out = Vec::new();
    while let Some(e) = r.next_entry()? {
        out.push(e);
    }
    Ok((out, r.checksum()))
}

fn blob_record(ty: ValueType, key: &[u8], blob: &[u8]) -> RecordBuilder {
    let mut r = RecordBuilder::new(false);
    r.value_type(ty);
    r.key(key);
    r.string(blob);
    r
}

fn intset(width: usize, vals: &[i64]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(width as u32).to_le_bytes());
    b.extend_from_slice(&(vals.len() as u32).to_le_bytes());
    for v in vals {
        b.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    b
}

/// A listpack node of a stream: master fields `a`,`b`; entries at master+0, +1 (same
/// fields), +2 (own fields, deleted) and +3 (own fields).
fn stream_node() -> Vec<u8> {
    use Element::*;
    make_listpack(&[
        Int(3), // live
        Int(1), // deleted
        Int(2),
        Bytes(b"a"),
        Bytes(b"b"),
        Int(0),
        // entry 1: same fields
        Int(2),
        Int(0),
        Int(0),
        Bytes(b"1"),
        Bytes(b"x"),
        Int(5),
        // entry 2: same fields, ms+1
        Int(2),
        Int(1),
        Int(0),
        Int(7),
        Bytes(b"y"),
        Int(5),
        // entry 3: deleted, own fields
        Int(1),
        Int(2),
        Int(0),
        Int(1),
        Bytes(b"gone"),
        Bytes(b"v"),
        Int(6),
        // entry 4: own fields
        Int(0),
        Int(3),
        Int(4),
        Int(1),
        Bytes(b"c"),
        Int(-9),
        Int(6),
    ])
}

/// A file with every value type and opcode this reader knows.
fn every_type_file(version: u32) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new(), version).unwrap();
    w.aux(b"redis-ver", b"7.0.15").unwrap();
    w.aux_int(b"ctime", 1_700_000_000).unwrap();
    if has_redis_feature(version, 10) {
        w.function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
            .unwrap();
    }
    w.select_db(0).unwrap();
    w.resize_db(20, 1).unwrap();
    let big = vec![b'z'; 3000];
    let mut r = RecordBuilder::new(true);
    // 0: strings, int-encoded and LZF-compressed
    r.expire_ms(1_900_000_000_123);
    if has_redis_feature(version, 9) {
        r.idle(5);
    }
    r.value_type(ValueType::String);
    r.key(b"s1");
    r.string(&big);
    w.record(&r).unwrap();
    r.clear();
    if has_redis_feature(version, 9) {
        r.freq(9);
    }
    r.value_type(ValueType::String);
    r.int_string(-70000);
    r.int_string(12);
    w.record(&r).unwrap();
    // 1, 2, 3, 4, 5
    r.clear();
    r.value_type(ValueType::List);
    r.key(b"l1");
    r.len(3);
    for e in [&b"a"[..], b"300", &big] {
        r.string(e);
    }
    w.record(&r).unwrap();
    r.clear();
    r.value_type(ValueType::Set);
    r.key(b"set1");
    r.len(2);
    r.string(b"m1");
    r.string(b"m2");
    w.record(&r).unwrap();
    r.clear();
    r.value_type(ValueType::Zset);
    r.key(b"z3");
    r.len(3);
    r.string(b"a");
    r.string_double(1.5);
    r.string(b"b");
    r.string_double(f64::INFINITY);
    r.string(b"c");
    r.string_double(-0.1);
    w.record(&r).unwrap();
    r.clear();
    r.value_type(ValueType::Hash);
    r.key(b"h4");
    r.len(1);
    r.string(b"f");
    r.string(b"v");
    w.record(&r).unwrap();
    if ValueType::Zset2.fits(version) {
        r.clear();
        r.value_type(ValueType::Zset2);
        r.key(b"z5");
        r.len(1);
        r.string(b"m");
        r.binary_double(f64::NEG_INFINITY);
        w.record(&r).unwrap();
    }
    // 9: zipmap
    let mut zm = vec![1u8, 1, b'k', 2, 0, b'v', b'w', 0xFF];
    w.record(&blob_record(ValueType::HashZipmap, b"zm", &zm))
        .unwrap();
    zm.clear();
    use Element::*;
    // 10, 11, 12, 13, 14
    w.record(&blob_record(
        ValueType::ListZiplist,
        b"zl",
        &make_ziplist(&[Bytes(b"x"), Int(-3), Int(1 << 40)]),
    ))
    .unwrap();
    w.record(&blob_record(
        ValueType::SetIntset,
        b"is",
        &intset(4, &[-1, 70000]),
    ))
    .unwrap();
    w.record(&blob_record(
        ValueType::ZsetZiplist,
        b"zz",
        &make_ziplist(&[Bytes(b"a"), Int(2), Bytes(b"b"), Bytes(b"2.25")]),
    ))
    .unwrap();
    w.record(&blob_record(
        ValueType::HashZiplist,
        b"hz",
        &make_ziplist(&[Bytes(b"f"), Int(1)]),
    ))
    .unwrap();
    r.clear();
    r.value_type(ValueType::ListQuicklist);
    r.key(b"q1");
    r.len(2);
    r.string(&make_ziplist(&[Bytes(b"a"), Bytes(b"b")]));
    r.string(&make_ziplist(&[Int(3)]));
    w.record(&r).unwrap();
    if ValueType::HashListpack.fits(version) {
        // 16, 17, 18
        w.record(&blob_record(
            ValueType::HashListpack,
            b"hl",
            &make_listpack(&[Bytes(b"f1"), Bytes(b"v1"), Bytes(b"f2"), Int(-2)]),
        ))
        .unwrap();
        w.record(&blob_record(
            ValueType::ZsetListpack,
            b"zl2",
            &make_listpack(&[Bytes(b"m"), Bytes(b"-inf"), Bytes(b"n"), Int(4)]),
        ))
        .unwrap();
        r.clear();
        r.value_type(ValueType::ListQuicklist2);
        r.key(b"q2");
        r.len(2);
        r.len(2);
        r.string(&make_listpack(&[Bytes(b"p"), Int(1)]));
        r.len(1);
        r.string(&big);
        w.record(&r).unwrap();
        // 19: stream with a group
        r.clear();
        r.value_type(ValueType::StreamListpacks2);
        r.key(b"st");
        r.len(1);
        let mut master = Vec::new();
        master.extend_from_slice(&1000u64.to_be_bytes());
        master.extend_from_slice(&0u64.to_be_bytes());
        r.string(&master);
        r.string(&stream_node());
        r.len(3); // length
        r.len(1003);
        r.len(4); // last id
        r.len(1000);
        r.len(0); // first id
        r.len(1002);
        r.len(0); // max deleted
        r.len(4); // entries added
        r.len(1); // groups
        r.string(b"g");
        r.len(1001);
        r.len(0);
        r.len(2); // entries read
        r.len(1); // PEL
        r.raw(&1001u64.to_be_bytes());
        r.raw(&0u64.to_be_bytes());
        r.millis(1_700_000_000_000);
        r.len(2);
        r.len(1); // consumers
        r.string(b"alice");
        r.millis(1_700_000_000_001);
        r.len(1);
        r.raw(&1001u64.to_be_bytes());
        r.raw(&0u64.to_be_bytes());
        w.record(&r).unwrap();
    }
    if ValueType::SetListpack.fits(version) {
        w.record(&blob_record(
            ValueType::SetListpack,
            b"sl",
            &make_listpack(&[Bytes(b"a"), Int(5)]),
        ))
        .unwrap();
    }
    w.select_db(7).unwrap();
    r.clear();
    r.value_type(ValueType::String);
    r.key(b"in7");
    r.string(b"");
    w.record(&r).unwrap();
    if ValueType::HashMetadata.fits(version) {
        r.clear();
        r.value_type(ValueType::HashMetadata);
        r.key(b"hm");
        r.millis(5000);
        r.len(2);
        r.len(0);
        r.string(b"a");
        r.string(b"1");
        r.len(11);
        r.string(b"b");
        r.string(b"2");
        w.record(&r).unwrap();
        r.clear();
        r.value_type(ValueType::HashListpackEx);
        r.key(b"hx");
        r.millis(7000);
        r.string(&make_listpack(&[
            Bytes(b"a"),
            Bytes(b"1"),
            Int(0),
            Bytes(b"b"),
            Int(2),
            Int(7000),
        ]));
        w.record(&r).unwrap();
    }
    if ValueType::StreamListpacks4.fits(version) {
        // 26: the stream of "st" again, with a group and IDMP state.
        r.clear();
        r.value_type(ValueType::StreamListpacks4);
        r.key(b"st4");
        stream_payload_v3(&mut r);
        let id = |ms, seq| StreamId { ms, seq };
        let p1: [(&[u8], StreamId); 2] = [(b"iid-1", id(1000, 0)), (b"7", id(1001, 0))];
        let p2: [(&[u8], StreamId); 0] = [];
        r.stream_idmp(
            crate::StreamIdmpConfig::new(300, 50).unwrap(),
            [(&b"p1"[..], &p1[..]), (b"p2", &p2[..])].map(|(p, e)| (p, e.iter().copied())),
            9,
            4,
        );
        w.record(&r).unwrap();
        // KEY_META of two module classes before a key with an expire.
        r.clear();
        r.expire_ms(1_900_000_000_000);
        r.raw(&[crate::consts::KEY_META]);
        r.len(2);
        r.raw(b"ABCD");
        r.len(2); // UINT 77
        r.len(77);
        r.len(5); // STRING
        r.string(b"meta");
        r.len(0); // EOF
        r.raw(b"EFGH");
        r.len(4); // DOUBLE
        r.binary_double(0.5);
        r.len(0);
        r.value_type(ValueType::String);
        r.key(b"with-meta");
        r.string(b"v");
        w.record(&r).unwrap();
    }
    if ValueType::Hash2.fits(version) {
        // 22, after Valkey's slot opcodes: SLOT_INFO (foreign, skipped) and SLOT_IMPORT.
        r.clear();
        r.raw(&[crate::consts::SLOT_INFO]);
        r.len(5);
        r.len(100);
        r.len(3);
        r.raw(&[crate::consts::SLOT_IMPORT]);
        r.string(&[b'a'; 40]);
        r.len(2);
        for slot in [0, 99, 1000, 16383] {
            r.len(slot);
        }
        r.expire_ms(1_900_000_000_000);
        r.value_type(ValueType::Hash2);
        r.key(b"h22");
        r.len(3);
        r.hash2_field(b"a", b"1", Some(4_102_444_800_000)).unwrap();
        r.hash2_field(b"b", b"2", None).unwrap();
        r.hash2_field(b"c", &big, Some(0)).unwrap();
        w.record(&r).unwrap();
    }
    w.finish().unwrap()
}

/// The type-21 payload of a stream: the node of [`stream_node`] at master 1000-0, a group
/// "g" with one pending entry owned by consumer "alice".
fn stream_payload_v3(r: &mut RecordBuilder) {
    r.len(1);
    let mut master = Vec::new();
    master.extend_from_slice(&1000u64.to_be_bytes());
    master.extend_from_slice(&0u64.to_be_bytes());
    r.string(&master);
    r.string(&stream_node());
    r.len(3); // length
    r.len(1003);
    r.len(4); // last id
    r.len(1000);
    r.len(0); // first id
    r.len(1002);
    r.len(0); // max deleted
    r.len(4); // entries added
    r.len(1); // groups
    r.string(b"g");
    r.len(1001);
    r.len(0);
    r.len(2); // entries read
    r.len(1); // PEL
    r.raw(&1001u64.to_be_bytes());
    r.raw(&0u64.to_be_bytes());
    r.millis(1_700_000_000_000);
    r.len(2);
    r.len(1); // consumers
    r.string(b"alice");
    r.millis(1_700_000_000_001);
    r.millis(1_700_000_000_002); // active time
    r.len(1);
    r.raw(&1001u64.to_be_bytes());
    r.raw(&0u64.to_be_bytes());
}

fn s(b: &[u8]) -> Vec<u8> {
    b.to_vec()
}

#[test]
fn reads_every_type() {
    let file = every_type_file(12);
    let (entries, sum) = read_all(&file).unwrap();
    assert!(matches!(sum, Some(Checksum::Verified(_))));
    let get = |k: &[u8]| {
        entries
            .iter()
            .find(|e| e.key == k)
            .unwrap_or_else(|| panic!("no key {}", k.escape_ascii()))
    };
    let big = vec![b'z'; 3000];
    let s1 = get(b"s1");
    assert_eq!(s1.value, RdbValue::String(big.clone()));
    assert_eq!(
        (s1.expire_ms, s1.idle, s1.freq),
        (Some(1_900_000_000_123), Some(5), None)
    );
    let i = get(b"-70000");
    assert_eq!(
        (i.value.clone(), i.freq, i.expire_ms),
        (RdbValue::String(s(b"12")), Some(9), None)
    );
    assert_eq!(
        get(b"l1").value,
        RdbValue::List(vec![s(b"a"), s(b"300"), big.clone()])
    );
    assert_eq!(get(b"set1").value, RdbValue::Set(vec![s(b"m1"), s(b"m2")]));
    assert_eq!(
        get(b"z3").value,
        RdbValue::Zset(vec![
            (s(b"a"), 1.5),
            (s(b"b"), f64::INFINITY),
            (s(b"c"), -0.1)
        ])
    );
    assert_eq!(get(b"h4").value, RdbValue::Hash(vec![(s(b"f"), s(b"v"))]));
    assert_eq!(
        get(b"z5").value,
        RdbValue::Zset(vec![(s(b"m"), f64::NEG_INFINITY)])
    );
    assert_eq!(get(b"zm").value, RdbValue::Hash(vec![(s(b"k"), s(b"vw"))]));
    assert_eq!(
        get(b"zl").value,
        RdbValue::List(vec![s(b"x"), s(b"-3"), s(b"1099511627776")])
    );
    assert_eq!(get(b"is").value, RdbValue::Set(vec![s(b"-1"), s(b"70000")]));
    assert_eq!(
        get(b"zz").value,
        RdbValue::Zset(vec![(s(b"a"), 2.0), (s(b"b"), 2.25)])
    );
    assert_eq!(get(b"hz").value, RdbValue::Hash(vec![(s(b"f"), s(b"1"))]));
    assert_eq!(
        get(b"q1").value,
        RdbValue::List(vec![s(b"a"), s(b"b"), s(b"3")])
    );
    assert_eq!(
        get(b"hl").value,
        RdbValue::Hash(vec![(s(b"f1"), s(b"v1")), (s(b"f2"), s(b"-2"))])
    );
    assert_eq!(
        get(b"zl2").value,
        RdbValue::Zset(vec![(s(b"m"), f64::NEG_INFINITY), (s(b"n"), 4.0)])
    );
    assert_eq!(
        get(b"q2").value,
        RdbValue::List(vec![s(b"p"), s(b"1"), big])
    );
    assert_eq!(get(b"sl").value, RdbValue::Set(vec![s(b"a"), s(b"5")]));
    let in7 = get(b"in7");
    assert_eq!(
        (in7.db, in7.value.clone()),
        (7, RdbValue::String(Vec::new()))
    );
    assert!(entries
        .iter()
        .filter(|e| e.key != b"in7" && e.key != b"hm" && e.key != b"hx")
        .all(|e| e.db == 0));
    assert_eq!(
        get(b"hm").value,
        RdbValue::HashWithTtl(vec![
            HashField {
                field: s(b"a"),
                value: s(b"1"),
                expire_ms: None
            },
            HashField {
                field: s(b"b"),
                value: s(b"2"),
                expire_ms: Some(5010)
            },
        ])
    );
    assert_eq!(
        get(b"hx").value,
        RdbValue::HashWithTtl(vec![
            HashField {
                field: s(b"a"),
                value: s(b"1"),
                expire_ms: None
            },
            HashField {
                field: s(b"b"),
                value: s(b"2"),
                expire_ms: Some(7000)
            },
        ])
    );
    let RdbValue::Stream(st) = &get(b"st").value else {
        panic!("st is not a stream");
    };
    let id = |ms, seq| StreamId { ms, seq };
    assert_eq!(
        st.entries,
        vec![
            StreamEntry {
                id: id(1000, 0),
                fields: vec![(s(b"a"), s(b"1")), (s(b"b"), s(b"x"))]
            },
            StreamEntry {
                id: id(1001, 0),
                fields: vec![(s(b"a"), s(b"7")), (s(b"b"), s(b"y"))]
            },
            StreamEntry {
                id: id(1003, 4),
                fields: vec![(s(b"c"), s(b"-9"))]
            },
        ]
    );
    assert_eq!(
        (st.length, st.last_id, st.entries_added),
        (3, id(1003, 4), Some(4))
    );
    assert_eq!(st.groups.len(), 1);
    let g = &st.groups[0];
    assert_eq!(
        (g.name.as_slice(), g.last_id, g.entries_read),
        (&b"g"[..], id(1001, 0), Some(2))
    );
    assert_eq!(g.pending[0].delivery_count, 2);
    assert_eq!(g.consumers[0].pending, vec![id(1001, 0)]);
    assert_eq!(get(b"st").value.type_name(), "stream");
    assert_eq!(entries.len(), 21);
}

#[test]
fn reads_rdb13_streams_and_skips_key_meta() {
    let file = every_type_file(13);
    let mut r = RdbReader::new(&file[..]).unwrap();
    assert_eq!(r.version(), 13);
    let entries: Vec<Entry> = r.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(entries.len(), 23);
    assert!(matches!(r.checksum(), Some(Checksum::Verified(_))));
    assert_eq!(r.key_meta_skipped(), 1);
    let get = |k: &[u8]| entries.iter().find(|e| e.key == k).unwrap();
    let meta = get(b"with-meta");
    assert_eq!(
        (meta.db, meta.expire_ms, meta.rdb_type, &meta.value),
        (7, Some(1_900_000_000_000), 0, &RdbValue::String(s(b"v")))
    );
    let st4 = get(b"st4");
    assert_eq!(st4.rdb_type, 26);
    let (RdbValue::Stream(st4), RdbValue::Stream(st2)) = (&st4.value, &get(b"st").value) else {
        panic!("not streams");
    };
    assert_eq!(st2.idmp, None);
    // Same entries and metadata as the type-19 stream, plus an active time and IDMP state.
    assert_eq!(
        (&st4.entries, st4.length, st4.first_id, st4.entries_added),
        (&st2.entries, st2.length, st2.first_id, st2.entries_added)
    );
    assert_eq!(
        st4.groups[0].consumers[0].active_time,
        Some(1_700_000_000_002)
    );
    let id = |ms, seq| StreamId { ms, seq };
    assert_eq!(
        st4.idmp,
        Some(StreamIdmp {
            config: crate::StreamIdmpConfig::new(300, 50).unwrap(),
            producers: vec![
                StreamProducer {
                    pid: s(b"p1"),
                    iids: vec![
                        StreamIid {
                            iid: s(b"iid-1"),
                            id: id(1000, 0)
                        },
                        StreamIid {
                            iid: s(b"7"),
                            id: id(1001, 0)
                        },
                    ]
                },
                StreamProducer {
                    pid: s(b"p2"),
                    iids: vec![]
                },
            ],
            iids_added: 9,
            iids_duplicates: 4,
        })
    );
    assert!(st4.weight() > st2.weight());
}

/// A version-13 file holding one stream record whose IDMP settings are `duration` and
/// `max_entries`, written raw (the builder refuses them when out of range).
fn stream_with_idmp_settings(duration: u64, max_entries: u64) -> Vec<u8> {
    let mut r = RecordBuilder::new(false);
    r.value_type(ValueType::StreamListpacks4);
    r.key(b"s");
    stream_payload_v3(&mut r);
    r.len(duration);
    r.len(max_entries);
    r.len(0);
    r.len(0);
    r.len(0);
    let mut w = RdbWriter::new(Vec::new(), 13).unwrap();
    w.record(&r).unwrap();
    w.finish().unwrap()
}

#[test]
fn idmp_settings_redis_refuses_are_corrupt() {
    for (d, m) in [(1, 1), (86_400, 10_000)] {
        let (entries, _) = read_all(&stream_with_idmp_settings(d, m)).unwrap();
        let RdbValue::Stream(st) = &entries[0].value else {
            panic!("not a stream");
        };
        let cfg = st.idmp.as_ref().unwrap().config;
        assert_eq!((cfg.duration(), cfg.max_entries()), (d, m));
    }
    for (d, m, what) in [
        (0, 100, "duration 0"),
        (86_401, 100, "duration 86401"),
        (100, 0, "max entries 0"),
        (100, 10_001, "max entries 10001"),
    ] {
        let e = read_all(&stream_with_idmp_settings(d, m)).unwrap_err();
        assert!(matches!(e, ReadError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains(what), "{e}");
        assert!(e.to_string().contains("key s"), "{e}");
    }
}

#[test]
fn key_meta_must_precede_a_key_and_needs_rdb_13() {
    let file = |version: u32, body: &[u8]| {
        let mut f = format!("REDIS{version:04}").into_bytes();
        f.extend_from_slice(body);
        f
    };
    // One class with no data but its EOF, then a string key: fine.
    let ok = file(
        13,
        &[
            0xF3, 1, b'A', b'B', b'C', b'D', 0, 0, 1, b'k', 1, b'v', 0xFF,
        ],
    );
    let mut r = RdbReader::new(&ok[..]).unwrap();
    let e = r.next_entry().unwrap().unwrap();
    assert_eq!(
        (e.key.as_slice(), e.value),
        (&b"k"[..], RdbValue::String(s(b"v")))
    );
    assert_eq!(r.key_meta_skipped(), 1);
    // Followed by an opcode instead of a key.
    let e = read_all(&file(13, &[0xF3, 0, 0xFE, 0])).unwrap_err();
    assert!(e.to_string().contains("not by a key"), "{e}");
    // More classes than modules can have.
    let e = read_all(&file(13, &[0xF3, 8])).unwrap_err();
    assert!(e.to_string().contains("8 metadata classes"), "{e}");
    // A module opcode that does not exist.
    let e = read_all(&file(13, &[0xF3, 1, 0, 0, 0, 0, 9])).unwrap_err();
    assert!(e.to_string().contains("key metadata class 1"), "{e}");
    // Cut inside the metadata.
    let e = read_all(&file(13, &[0xF3, 1, 0, 0])).unwrap_err();
    assert!(matches!(e, ReadError::Truncated { .. }), "{e}");
    // Before RDB 13 the byte is no opcode.
    let e = read_all(&file(12, &[0xF3, 0, 0, 1, b'k', 1, b'v', 0xFF])).unwrap_err();
    assert!(e.to_string().contains("unknown object type 243"), "{e}");
}

#[test]
fn reads_valkey_80() {
    let file = every_type_file(80);
    assert!(file.starts_with(b"VALKEY080"));
    let mut r = RdbReader::new(&file[..]).unwrap();
    assert_eq!(r.version(), 80);
    let entries: Vec<Entry> = r.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(matches!(r.checksum(), Some(Checksum::Verified(_))));
    assert_eq!((r.slot_imports_skipped(), r.key_meta_skipped()), (1, 0));
    assert_eq!(r.functions(), 1);
    // Everything of RDB 11, plus the type-22 hash.
    let (rdb11, _) = read_all(&every_type_file(11)).unwrap();
    assert_eq!(entries.len(), rdb11.len() + 1);
    assert_eq!(&entries[..rdb11.len()], &rdb11[..]);
    let h = entries.last().unwrap();
    assert_eq!(
        (h.key.as_slice(), h.db, h.rdb_type, h.expire_ms),
        (&b"h22"[..], 7, 22, Some(1_900_000_000_000))
    );
    assert_eq!(
        h.value,
        RdbValue::HashWithTtl(vec![
            HashField {
                field: s(b"a"),
                value: s(b"1"),
                expire_ms: Some(4_102_444_800_000)
            },
            HashField {
                field: s(b"b"),
                value: s(b"2"),
                expire_ms: None
            },
            HashField {
                field: s(b"c"),
                value: vec![b'z'; 3000],
                expire_ms: Some(0)
            },
        ])
    );
    assert_eq!(h.value.type_name(), "hash");
}

/// A file of `magic` whose body is `body` and a valid checksum.
fn raw_file(magic: &[u8], body: &[u8]) -> Vec<u8> {
    let mut f = magic.to_vec();
    f.extend_from_slice(body);
    f.push(0xFF);
    let sum = crate::crc64(&f);
    f.extend_from_slice(&sum.to_le_bytes());
    f
}

#[test]
fn types_of_the_other_line_are_refused() {
    // Redis's 24, 25, 26 in RDB 80; Valkey's 22 in Redis's versions. As their loaders do.
    for ty in [24u8, 25, 26] {
        let e = read_all(&raw_file(b"VALKEY080", &[ty, 1, b'k', 0])).unwrap_err();
        assert!(matches!(e, ReadError::Unsupported { offset: 9, .. }), "{e}");
        assert!(e.to_string().contains("is not in RDB 80"), "{e}");
    }
    for magic in [&b"REDIS0011"[..], b"REDIS0012", b"REDIS0013"] {
        let e = read_all(&raw_file(magic, &[22, 1, b'k', 0])).unwrap_err();
        assert!(
            e.to_string().contains("object type 22 (Hash2)")
                && e.to_string().contains("only in RDB 80"),
            "{e}"
        );
    }
    // 23 exists nowhere.
    let e = read_all(&raw_file(b"VALKEY080", &[23, 1, b'k'])).unwrap_err();
    assert!(e.to_string().contains("unknown object type 23"), "{e}");
    // Byte 243 is SLOT_IMPORT in RDB 80, not KEY_META: a KEY_META payload is no import.
    let key_meta = [0xF3, 1, b'A', b'B', b'C', b'D', 0, 0, 1, b'k', 1, b'v'];
    assert!(read_all(&raw_file(b"REDIS0013", &key_meta)).is_ok());
    assert!(read_all(&raw_file(b"VALKEY080", &key_meta)).is_err());
    // An import with no ranges, then a key.
    let (entries, _) = read_all(&raw_file(
        b"VALKEY080",
        &[0xF3, 2, b'j', b'1', 0, 0, 1, b'k', 1, b'v'],
    ))
    .unwrap();
    assert_eq!(entries.len(), 1);
}

#[test]
fn type_22_edges() {
    let one = |ms: i64| {
        let mut b = vec![22, 1, b'h', 1, 1, b'f', 1, b'v'];
        b.extend_from_slice(&ms.to_le_bytes());
        raw_file(b"VALKEY080", &b)
    };
    for (ms, want) in [(-1, None), (0, Some(0)), (i64::MAX, Some(i64::MAX))] {
        let (e, _) = read_all(&one(ms)).unwrap();
        assert_eq!(
            e[0].value,
            RdbValue::HashWithTtl(vec![HashField {
                field: s(b"f"),
                value: s(b"v"),
                expire_ms: want
            }])
        );
    }
    for ms in [-2, i64::MIN] {
        let e = read_all(&one(ms)).unwrap_err();
        assert!(matches!(e, ReadError::Corrupt { .. }), "{e}");
        assert!(
            e.to_string().contains("below -1") && e.to_string().contains("key h"),
            "{e}"
        );
    }
    // An empty one reads as empty (Valkey's loader skips such a key).
    let (e, _) = read_all(&raw_file(b"VALKEY080", &[22, 1, b'h', 0])).unwrap();
    assert_eq!(e[0].value, RdbValue::HashWithTtl(Vec::new()));
    // Cut inside the expire time.
    let f = one(5);
    assert!(matches!(
        read_all(&f[..f.len() - 9 - 3]),
        Err(ReadError::Truncated { .. })
    ));
}

#[test]
fn header_aux_functions_and_hints() {
    let file = every_type_file(10);
    let mut r = RdbReader::new(&file[..]).unwrap();
    assert_eq!(r.version(), 10);
    let first = r.next_entry().unwrap().unwrap();
    assert_eq!(first.key, b"s1");
    assert_eq!(r.aux_value(b"redis-ver"), Some(&b"7.0.15"[..]));
    assert_eq!(r.aux_value(b"ctime"), Some(&b"1700000000"[..]));
    assert_eq!(r.functions(), 1);
    assert_eq!(r.resize_hints(), &[(0, 20, 1)]);
    let n = r.by_ref().count();
    assert_eq!(n, 17);
    assert_eq!(r.keys_read(), 18);
    assert_eq!(r.offset(), file.len() as u64);
    // Exhausted: keeps answering None.
    assert!(r.next_entry().unwrap().is_none());
}

#[test]
fn old_versions_and_disabled_checksums() {
    let file = every_type_file(7);
    let (entries, sum) = read_all(&file).unwrap();
    assert_eq!(entries.len(), 13);
    assert!(entries.iter().all(|e| e.idle.is_none() && e.freq.is_none()));
    assert!(matches!(sum, Some(Checksum::Verified(_))));

    let mut zeroed = file.clone();
    let n = zeroed.len();
    zeroed[n - 8..].fill(0);
    assert_eq!(read_all(&zeroed).unwrap().1, Some(Checksum::Disabled));

    // Version 4: no trailer; EXPIRETIME in seconds.
    let mut f = b"REDIS0004".to_vec();
    f.extend_from_slice(&[0xFE, 3, 0xFD]);
    f.extend_from_slice(&1_000_000i32.to_le_bytes());
    f.extend_from_slice(&[0, 1, b'k', 1, b'v', 0xFF]);
    let (entries, sum) = read_all(&f).unwrap();
    assert_eq!(sum, Some(Checksum::Absent));
    assert_eq!(entries[0].expire_ms, Some(1_000_000_000));
    assert_eq!(entries[0].db, 3);
}

#[test]
fn bad_headers() {
    assert!(matches!(RdbReader::new(&b""[..]), Err(ReadError::NotRdb)));
    assert!(matches!(
        RdbReader::new(&b"REDIS00"[..]),
        Err(ReadError::NotRdb)
    ));
    assert!(matches!(
        RdbReader::new(&b"RADIS0010\xff"[..]),
        Err(ReadError::NotRdb)
    ));
    assert!(matches!(
        RdbReader::new(&b"REDIS00a0\xff"[..]),
        Err(ReadError::NotRdb)
    ));
    assert!(matches!(
        RdbReader::new(&b"REDIS0014\xff"[..]),
        Err(ReadError::BadVersion(14))
    ));
    assert!(matches!(
        RdbReader::new(&b"REDIS0000\xff"[..]),
        Err(ReadError::BadVersion(0))
    ));
    // Valkey's versions: VALKEY080 only.
    assert!(RdbReader::new(&b"VALKEY080\xff"[..]).is_ok());
    for (magic, v) in [
        (&b"VALKEY081"[..], 81),
        (b"VALKEY999", 999),
        (b"REDIS0079", 79),
    ] {
        assert!(
            matches!(RdbReader::new(magic), Err(ReadError::BadVersion(x)) if x == v),
            "{}",
            magic.escape_ascii()
        );
    }
    for magic in [
        &b"VALKEY08"[..],
        b"VALKEY08a",
        b"VALKEY\xff80",
        b"VALKEZ080",
        b"valkey080",
    ] {
        assert!(
            matches!(RdbReader::new(magic), Err(ReadError::NotRdb)),
            "{}",
            magic.escape_ascii()
        );
    }
}

#[test]
fn a_version_under_the_other_magic_is_refused() {
    for (magic, m, v) in [
        (&b"REDIS0080"[..], "REDIS", 80),
        (b"REDIS0081", "REDIS", 81),
        (b"REDIS9999", "REDIS", 9999),
        (b"VALKEY011", "VALKEY", 11),
        (b"VALKEY013", "VALKEY", 13),
        (b"VALKEY079", "VALKEY", 79),
        (b"VALKEY000", "VALKEY", 0),
    ] {
        match RdbReader::new(magic) {
            Err(e @ ReadError::MagicMismatch { .. }) => {
                let ReadError::MagicMismatch { magic, version, .. } = e else {
                    unreachable!()
                };
                assert_eq!((magic, version), (m, v));
            }
            other => panic!("{}: {other:?}", magic.escape_ascii()),
        }
    }
    let e = RdbReader::new(&b"REDIS0080"[..]).unwrap_err();
    assert!(e.to_string().contains("VALKEY080"), "{e}");
}

#[test]
fn every_truncation_is_an_error() {
    for version in [7, 12, 13, 80] {
        let file = every_type_file(version);
        for cut in 0..file.len() {
            let r = read_all(&file[..cut]);
            assert!(
                r.is_err(),
                "version {version}, cut at {cut} of {}",
                file.len()
            );
        }
    }
}

#[test]
fn flipped_bytes_are_caught() {
    for (version, seed) in [(13, 11), (80, 12)] {
        flipped_bytes_are_caught_in(version, seed);
    }
}

fn flipped_bytes_are_caught_in(version: u32, seed: u64) {
    let file = every_type_file(version);
    let mut rng = crate::crc::tests::XorShift(seed);
    for _ in 0..400 {
        let mut bad = file.clone();
        let at = 9 + rng.below(file.len() - 9 - 8);
        bad[at] ^= 1 << rng.below(8);
        // Never a panic, and never a silent success: the checksum catches what parses.
        assert!(read_all(&bad).is_err(), "flip at {at}");
    }
    // A flip in the trailer itself.
    let mut bad = file.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x80;
    assert!(matches!(read_all(&bad), Err(ReadError::Checksum { .. })));
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = crate::crc::tests::XorShift(5);
    for round in 0..3000 {
        let len = rng.below(300);
        let mut f = match round % 3 {
            0 => b"REDIS0010".to_vec(),
            1 => b"REDIS0013".to_vec(),
            _ => b"VALKEY080".to_vec(),
        };
        let mut tail = vec![0u8; len];
        rng.fill(&mut tail);
        // Start most files with a plausible opcode so parsing goes deeper.
        if let Some(b) = tail.first_mut() {
            *b = [
                0u8, 1, 2, 3, 4, 5, 7, 14, 15, 18, 19, 21, 22, 24, 25, 26, 0xF3, 0xF4, 0xF7, 0xFA,
            ][round % 20];
        }
        f.extend_from_slice(&tail);
        let _ = read_all(&f);
    }
}

#[test]
fn huge_announced_lengths_fail_without_allocating() {
    // A list claiming 2^62 elements, a string claiming 4 GiB, an LZF blob claiming a huge
    // raw length: each must fail fast.
    for body in [
        &[1u8, 1, b'k', 0x81, 0x40, 0, 0, 0, 0, 0, 0, 0][..],
        &[0u8, 1, b'k', 0x80, 0xFF, 0xFF, 0xFF, 0xFF, b'a'][..],
        &[
            0u8, 1, b'k', 0xC3, 2, 0x81, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0, b'a',
        ][..],
        &[18u8, 1, b'k', 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 2][..],
    ] {
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(body);
        assert!(read_all(&f).is_err());
    }
}

#[test]
fn unsupported_and_corrupt_things_are_named() {
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(&[6, 1, b'k']);
    let e = read_all(&f).unwrap_err();
    assert!(matches!(e, ReadError::Unsupported { offset: 9, .. }), "{e}");
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(&[23, 1, b'k']);
    assert!(read_all(&f)
        .unwrap_err()
        .to_string()
        .contains("unknown object type 23"));
    // A bad listpack inside a hash names the key.
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(&[16, 3, b'k', b'e', b'y', 3, 1, 2, 3]);
    let e = read_all(&f).unwrap_err();
    assert!(e.to_string().contains("key key"), "{e}");
    // Odd listpack for a hash.
    let lp = make_listpack(&[Element::Bytes(b"f")]);
    let mut w = RdbWriter::new(Vec::new(), 10).unwrap();
    w.record(&blob_record(ValueType::HashListpack, b"odd", &lp))
        .unwrap();
    let f = w.finish().unwrap();
    assert!(read_all(&f).unwrap_err().to_string().contains("odd"));
}

#[test]
fn module_values_and_aux_are_skipped() {
    // Module type id for "mymodtype" encver 3, data: UINT 5, STRING "abc", DOUBLE, FLOAT, EOF.
    const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = 0u64;
    for c in b"mymodtype" {
        id = (id << 6) | CHARSET.iter().position(|x| x == c).unwrap() as u64;
    }
    id = (id << 10) | 3;
    let mut rec = RecordBuilder::new(false);
    rec.raw(&[0xF7]);
    rec.len(id);
    rec.len(2);
    rec.len(1);
    rec.len(0);
    rec.raw(&[7]);
    rec.key(b"mod");
    rec.len(id);
    rec.len(2);
    rec.len(5);
    rec.len(5);
    rec.string(b"abc");
    rec.len(4);
    rec.binary_double(1.0);
    rec.len(3);
    rec.raw(&[0, 0, 0, 0]);
    rec.len(0);
    let mut w = RdbWriter::new(Vec::new(), 9).unwrap();
    w.record(&rec).unwrap();
    let f = w.finish().unwrap();
    let (entries, _) = read_all(&f).unwrap();
    assert_eq!(
        entries[0].value,
        RdbValue::Module(ModuleValue {
            type_name: "mymodtype".into(),
            encver: 3
        })
    );
    assert_eq!(entries[0].value.type_name(), "mymodtype");
}
