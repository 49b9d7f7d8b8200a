//! Unit tests of `sink`.

use std::borrow::Cow;

use super::{LfuClock, RdbSink, Sink, SinkError};
use crate::value::{
    Kind, RecoveredKey, StreamConsumer, StreamGroup, StreamId, StreamIdmp, StreamValue, Value,
};
use rdb::reader::{RdbReader, RdbValue};

/// An empty stream (no entries) of a 7.0+ server with one group and consumer, the
/// consumer without an active time (as before 7.2).
fn stream(idmp: Option<StreamIdmp<'static>>) -> StreamValue<'static> {
    let id = |ms, seq| StreamId { ms, seq };
    StreamValue {
        listpacks: Vec::new(),
        length: 0,
        last_id: id(5, 1),
        first_id: Some(id(0, 0)),
        max_deleted: Some(id(5, 1)),
        entries_added: Some(3),
        groups: vec![StreamGroup {
            name: b"g".to_vec(),
            last_id: id(5, 1),
            entries_read: Some(3),
            pel: Vec::new(),
            consumers: vec![StreamConsumer {
                name: b"c".to_vec(),
                seen_time: 1_700_000_000_000,
                active_time: None,
                pel: Vec::new(),
            }],
        }],
        idmp,
    }
}

fn idmp(duration: u64, max_entries: u64) -> StreamIdmp<'static> {
    let id = |ms, seq| StreamId { ms, seq };
    StreamIdmp {
        duration,
        max_entries,
        producers: vec![
            (
                Cow::Borrowed(&b"p1"[..]),
                vec![
                    (Cow::Borrowed(&b"i1"[..]), id(4, 0)),
                    (Cow::Borrowed(&b"i2"[..]), id(5, 1)),
                ],
            ),
            (Cow::Borrowed(&b"p2"[..]), Vec::new()),
        ],
        iids_added: 2,
        iids_duplicates: 7,
    }
}

/// Writes `st` as key "s" into an RDB `version` file; the file (or the key's error) and
/// the count of re-encoded keys.
fn write(st: StreamValue<'static>, version: u32) -> (Result<Vec<u8>, SinkError>, u64) {
    let key = RecoveredKey {
        db: 0,
        key: Cow::Borrowed(b"s"),
        expire_ms: None,
        kind: Kind {
            type_name: "stream",
            encoding: "stream",
        },
        lru: 0,
        value: Value::Stream(Box::new(st)),
    };
    let mut sink = RdbSink::new(Vec::new(), version, &[]).unwrap();
    sink.begin_db(0, 1, 0).unwrap();
    let r = sink.key(&key);
    let reencoded = sink.reencoded();
    let file = sink.finish().unwrap().0;
    (r.map(|_| file), reencoded)
}

/// The stream's type byte and value as the project's reader sees them.
fn read(file: &[u8]) -> (u8, rdb::reader::Stream) {
    let mut r = RdbReader::new(file).unwrap();
    let e = r.next_entry().unwrap().unwrap();
    match e.value {
        RdbValue::Stream(s) => (e.rdb_type, *s),
        other => panic!("a {} came back", other.type_name()),
    }
}

#[test]
fn rdb_13_writes_every_stream_as_type_26() {
    // A stream of a server before 8.6 gets 8.6's defaults.
    let (file, reencoded) = write(stream(None), 13);
    let (ty, st) = read(&file.unwrap());
    assert_eq!((ty, reencoded), (26, 0));
    let i = st.idmp.unwrap();
    assert_eq!(i.config, rdb::StreamIdmpConfig::DEFAULT);
    assert_eq!((i.config.duration(), i.config.max_entries()), (100, 100));
    assert!(i.producers.is_empty());
    assert_eq!((i.iids_added, i.iids_duplicates), (0, 0));
    // Type 21's active time, as Redis 7.2+ fills it when loading type 19.
    let c = &st.groups[0].consumers[0];
    assert_eq!(c.active_time, Some(c.seen_time));

    // A stream of an 8.6 server keeps its own state.
    let (file, reencoded) = write(stream(Some(idmp(300, 50))), 13);
    let (ty, st) = read(&file.unwrap());
    assert_eq!((ty, reencoded), (26, 0));
    let i = st.idmp.unwrap();
    assert_eq!((i.config.duration(), i.config.max_entries()), (300, 50));
    let producers: Vec<_> = i
        .producers
        .iter()
        .map(|p| {
            let iids: Vec<_> = p
                .iids
                .iter()
                .map(|e| (e.iid.clone(), e.id.ms, e.id.seq))
                .collect();
            (p.pid.clone(), iids)
        })
        .collect();
    assert_eq!(
        producers,
        vec![
            (
                b"p1".to_vec(),
                vec![(b"i1".to_vec(), 4, 0), (b"i2".to_vec(), 5, 1)]
            ),
            (b"p2".to_vec(), vec![]),
        ]
    );
    assert_eq!((i.iids_added, i.iids_duplicates), (2, 7));
}

#[test]
fn older_targets_drop_the_idempotency_state_as_a_reencoding() {
    for (version, want) in [(12, 21), (11, 21), (10, 19), (80, 21)] {
        let (file, reencoded) = write(stream(Some(idmp(300, 50))), version);
        let (ty, st) = read(&file.unwrap());
        assert_eq!((ty, reencoded, st.idmp), (want, 1, None), "RDB {version}");
    }
    // Without IDMP state nothing is lost: the type the data has, not re-encoded.
    let (file, reencoded) = write(stream(None), 12);
    assert_eq!((read(&file.unwrap()).0, reencoded), (19, 0));
    // RDB 80 writes streams as RDB 11 does (Valkey 9 saves type 21 for 7.2+ streams).
    for version in [11, 80] {
        let mut active = stream(None);
        active.groups[0].consumers[0].active_time = Some(1_700_000_000_001);
        let (file, reencoded) = write(active, version);
        assert_eq!(
            (read(&file.unwrap()).0, reencoded),
            (21, 0),
            "RDB {version}"
        );
        let (file, reencoded) = write(stream(None), version);
        assert_eq!(
            (read(&file.unwrap()).0, reencoded),
            (19, 0),
            "RDB {version}"
        );
        let mut no_groups = stream(None);
        no_groups.groups.clear();
        let (file, reencoded) = write(no_groups, version);
        assert_eq!(
            (read(&file.unwrap()).0, reencoded),
            (21, 0),
            "RDB {version}"
        );
    }
    let file = write(stream(None), 80).0.unwrap();
    assert!(file.starts_with(b"VALKEY080"));
}

#[test]
fn a_stream_before_7_0_stays_type_15_in_rdb_13() {
    let mut st = stream(None);
    st.first_id = None;
    st.max_deleted = None;
    st.entries_added = None;
    st.groups[0].entries_read = None;
    let (file, reencoded) = write(st, 13);
    let (ty, st) = read(&file.unwrap());
    assert_eq!((ty, reencoded, st.idmp), (15, 0, None));
}

#[test]
fn settings_redis_would_refuse_lose_the_key_not_the_file() {
    for (d, m) in [(0, 100), (86_401, 100), (100, 0), (100, 10_001)] {
        let (r, _) = write(stream(Some(idmp(d, m))), 13);
        match r {
            Err(SinkError::Unwritable { reason }) => {
                assert!(reason.contains("out of range"), "{reason}")
            }
            other => panic!("({d}, {m}): {other:?}"),
        }
    }
    // The file itself stays valid: the next key goes in, the failed one never did.
    let (r, _) = write(stream(Some(idmp(86_400, 10_000))), 13);
    assert_eq!(read(&r.unwrap()).0, 26);
}

/// `lru` bits of an object whose counter was last decremented at `minute`.
fn lru(minute: u16, counter: u8) -> u32 {
    (u32::from(minute) << 8) | u32::from(counter)
}

#[test]
fn counters_decay_one_per_period_since_their_minute() {
    let clock = LfuClock::new(60 * 1000 + 59, 1);
    assert_eq!(clock.now_minutes, 1000);
    assert_eq!(clock.decayed(lru(1000, 5)), 5);
    assert_eq!(clock.decayed(lru(999, 5)), 4);
    assert_eq!(clock.decayed(lru(990, 5)), 0, "never below zero");
    let slow = LfuClock::new(60 * 1000, 4);
    assert_eq!(
        slow.decayed(lru(993, 200)),
        199,
        "7 minutes are one 4-minute period"
    );
}

#[test]
fn zero_decay_time_keeps_the_counter() {
    let clock = LfuClock::new(60 * 1000, 0);
    assert_eq!(clock.decayed(lru(1, 77)), 77);
}

#[test]
fn the_minute_clock_wraps_like_redis() {
    // Redis counts 65535 - then + now across the wrap, one less than modular distance.
    let clock = LfuClock::new(60 * 65536 * 3 + 60 * 2, 1);
    assert_eq!(clock.now_minutes, 2);
    assert_eq!(clock.decayed(lru(65535, 10)), 8);
}

/// A hash key `h` holding `value`.
fn hash_key(value: Value<'static>) -> RecoveredKey<'static> {
    RecoveredKey {
        db: 0,
        key: Cow::Borrowed(b"h"),
        expire_ms: Some(1_900_000_000_000),
        kind: Kind {
            type_name: "hash",
            encoding: "hashtable",
        },
        lru: 0,
        value,
    }
}

/// Writes `k` into an RDB `version` file: what the sink said, the count of re-encoded
/// keys, and the key's type byte and value as the reader sees them.
fn write_hash(
    k: &RecoveredKey<'_>,
    version: u32,
) -> (super::Written, u64, u8, Option<i64>, RdbValue) {
    let mut sink = RdbSink::new(Vec::new(), version, &[]).unwrap();
    sink.begin_db(0, 1, 1).unwrap();
    let w = sink.key(k).unwrap();
    let reencoded = sink.reencoded();
    let file = sink.finish().unwrap().0;
    let mut r = RdbReader::new(&file[..]).unwrap();
    let e = r.next_entry().unwrap().unwrap();
    assert!(r.next_entry().unwrap().is_none());
    (w, reencoded, e.rdb_type, e.expire_ms, e.value)
}

/// Field, value and expire time of a `HashPairsTtl`.
type Field = (Cow<'static, [u8]>, Cow<'static, [u8]>, Option<u64>);

fn ttl_fields() -> Vec<Field> {
    vec![
        (
            Cow::Borrowed(&b"a"[..]),
            Cow::Borrowed(&b"1"[..]),
            Some(4_102_444_800_000),
        ),
        (Cow::Borrowed(&b"b"[..]), Cow::Borrowed(&b"2"[..]), None),
    ]
}

fn expected_ttl_fields() -> RdbValue {
    RdbValue::HashWithTtl(vec![
        rdb::reader::HashField {
            field: b"a".to_vec(),
            value: b"1".to_vec(),
            expire_ms: Some(4_102_444_800_000),
        },
        rdb::reader::HashField {
            field: b"b".to_vec(),
            value: b"2".to_vec(),
            expire_ms: None,
        },
    ])
}

/// The listpack_ex of [`ttl_fields`]: (field, value, TTL or 0) triplets.
fn listpack_ex() -> Value<'static> {
    use crate::decode::listpack::ListpackBuilder;
    use crate::decode::Element;
    let mut lp = ListpackBuilder::new();
    for e in [
        Element::Bytes(b"a"),
        Element::Bytes(b"1"),
        Element::Int(4_102_444_800_000),
        Element::Bytes(b"b"),
        Element::Bytes(b"2"),
        Element::Int(0),
    ] {
        lp.push(e).unwrap();
    }
    Value::HashListpackEx {
        min_expire: 4_102_444_800_000,
        lp: Cow::Owned(lp.finish()),
    }
}

#[test]
fn rdb_80_writes_field_ttls_as_type_22() {
    use super::Written;
    // A hashtable hash with field TTLs: Valkey 9's own shape, not a re-encoding.
    let (w, reencoded, ty, expire, value) =
        write_hash(&hash_key(Value::HashPairsTtl(ttl_fields())), 80);
    assert_eq!((w, reencoded, ty), (Written::Whole, 0, 22));
    assert_eq!(expire, Some(1_900_000_000_000));
    assert_eq!(value, expected_ttl_fields());
    // A listpack_ex hash (Redis 7.4+): decoded, rewritten as type 22, re-encoded.
    let (w, reencoded, ty, _, value) = write_hash(&hash_key(listpack_ex()), 80);
    assert_eq!((w, reencoded, ty), (Written::Whole, 1, 22));
    assert_eq!(value, expected_ttl_fields());
    // RDB 12 and 13 keep Redis's types for both.
    for version in [12, 13] {
        let (_, reencoded, ty, _, value) =
            write_hash(&hash_key(Value::HashPairsTtl(ttl_fields())), version);
        assert_eq!((reencoded, ty), (0, 24));
        assert_eq!(value, expected_ttl_fields());
        let (_, reencoded, ty, _, value) = write_hash(&hash_key(listpack_ex()), version);
        assert_eq!((reencoded, ty), (0, 25));
        assert_eq!(value, expected_ttl_fields());
    }
}

#[test]
fn rdb_80_writes_a_hash_without_field_ttls_as_type_4() {
    use super::Written;
    let mut fields = ttl_fields();
    fields[0].2 = None;
    let (w, reencoded, ty, _, value) = write_hash(&hash_key(Value::HashPairsTtl(fields)), 80);
    assert_eq!((w, reencoded, ty), (Written::Whole, 0, 4));
    assert_eq!(
        value,
        RdbValue::Hash(vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ])
    );
}

#[test]
fn rdb_80_refuses_what_type_22_cannot_hold() {
    // A field TTL beyond int64 loses the key, not the file.
    let mut fields = ttl_fields();
    fields[0].2 = Some(1 << 63);
    let mut sink = RdbSink::new(Vec::new(), 80, &[]).unwrap();
    sink.begin_db(0, 2, 0).unwrap();
    match sink.key(&hash_key(Value::HashPairsTtl(fields))) {
        Err(SinkError::Unwritable { reason }) => {
            assert!(reason.contains("out of range"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    sink.key(&hash_key(Value::HashPairsTtl(ttl_fields())))
        .unwrap();
    let file = sink.finish().unwrap().0;
    let mut r = RdbReader::new(&file[..]).unwrap();
    assert_eq!(
        r.next_entry().unwrap().unwrap().value,
        expected_ttl_fields()
    );
    assert!(r.next_entry().unwrap().is_none());
    // A listpack_ex that is not made of triplets.
    let mut lp = crate::decode::listpack::ListpackBuilder::new();
    lp.push(crate::decode::Element::Bytes(b"a")).unwrap();
    let odd = Value::HashListpackEx {
        min_expire: 0,
        lp: Cow::Owned(lp.finish()),
    };
    let mut sink = RdbSink::new(Vec::new(), 80, &[]).unwrap();
    match sink.key(&hash_key(odd)) {
        Err(SinkError::Unwritable { reason }) => {
            assert!(reason.contains("triplets"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rdb_80_reencodes_what_it_lacks_as_rdb_11_does() {
    // Every compact type of RDB 11 goes in as it is.
    let key = |value| RecoveredKey {
        db: 0,
        key: Cow::Borrowed(b"k"),
        expire_ms: None,
        kind: Kind {
            type_name: "set",
            encoding: "listpack",
        },
        lru: 0,
        value,
    };
    let mut lp = crate::decode::listpack::ListpackBuilder::new();
    lp.push(crate::decode::Element::Bytes(b"m")).unwrap();
    let lp = lp.finish();
    for version in [11, 80] {
        let (w, reencoded, ty, _, value) =
            write_hash(&key(Value::SetListpack(Cow::Owned(lp.clone()))), version);
        assert_eq!((w, reencoded, ty), (super::Written::Whole, 0, 20));
        assert_eq!(value, RdbValue::Set(vec![b"m".to_vec()]));
    }
    // Functions are carried, the EVAL scripts cache is not (as for RDB 11).
    let mut sink = RdbSink::new(Vec::new(), 80, &[("valkey-ver", "9.1.2".into())]).unwrap();
    sink.functions(&[Cow::Borrowed(&b"#!lua name=l"[..])])
        .unwrap();
    assert!(sink
        .lua_scripts(&[Cow::Borrowed(&b"return 1"[..])])
        .is_err());
    let file = sink.finish().unwrap().0;
    let mut r = RdbReader::new(&file[..]).unwrap();
    assert!(r.next_entry().unwrap().is_none());
    assert_eq!(r.functions(), 1);
    assert_eq!(r.aux_value(b"valkey-ver"), Some(&b"9.1.2"[..]));
}

#[test]
fn field_ttls_are_dropped_for_older_targets_and_say_so() {
    use crate::value::{Kind, RecoveredKey, Value};
    use std::borrow::Cow;
    let key = |value| RecoveredKey {
        db: 0,
        key: Cow::Borrowed(b"h"),
        expire_ms: None,
        kind: Kind {
            type_name: "hash",
            encoding: "hashtable",
        },
        lru: 0,
        value,
    };
    let pairs = vec![
        (
            Cow::Borrowed(&b"a"[..]),
            Cow::Borrowed(&b"1"[..]),
            Some(4_102_444_800_000),
        ),
        (Cow::Borrowed(&b"b"[..]), Cow::Borrowed(&b"2"[..]), None),
    ];
    for (version, whole) in [(10, false), (11, false), (12, true), (80, true)] {
        let mut sink = super::RdbSink::new(Vec::new(), version, &[]).unwrap();
        sink.begin_db(0, 1, 0).unwrap();
        let w = super::Sink::key(&mut sink, &key(Value::HashPairsTtl(pairs.clone()))).unwrap();
        assert_eq!(w == super::Written::Whole, whole, "RDB {version}: {w:?}");
        if let super::Written::Without(reason) = w {
            assert!(reason.contains("1 field"), "{reason}");
        }
        let file = sink.finish().unwrap().0;
        let mut r = rdb::RdbReader::new(&file[..]).unwrap();
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.key, b"h");
    }
}
