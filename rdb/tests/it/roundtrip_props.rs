//! Property tests of the `rdb` crate: arbitrary keyspaces written with [`RdbWriter`] and
//! [`RecordBuilder`] must read back, key for key and byte for byte, through [`RdbReader`];
//! the LZF compressor must round-trip through an independent decoder (the `lzf` crate); and
//! the `encode` helpers must emit the RDB primitives exactly as the format defines them.
//!
//! The compact encodings (ziplist, listpack, intset, zipmap, stream listpacks) have no encoder
//! in the crate: small ones written from Redis's format description, and the strategies,
//! are in `../support/decode_gen.rs`, shared with `redis-rescue`'s `tests/it/decode_props.rs`.
//!
//! Case counts are chosen so that `cargo test -p rdb --test it -- roundtrip_props::` stays well under
//! 20 s in a debug build; set `PROPTEST_CASES` to override them all.

use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;

#[path = "../support/decode_gen.rs"]
mod decode_gen;
use decode_gen::*;

use rdb::compress::lzf_compress;
use rdb::encode;
use rdb::reader::{
    Checksum, HashField, ModuleValue, ReadError, Stream, StreamConsumer, StreamEntry, StreamGroup,
    StreamId, StreamIdmp, StreamIid, StreamPending, StreamProducer,
};
use rdb::{
    Entry, RdbError, RdbReader, RdbValue, RdbWriter, RecordBuilder, StreamIdmpConfig, ValueType,
};

// ============================================================================ strategies

/// A quicklist (type 18) node.
#[derive(Clone, Debug)]
enum QlNode {
    Plain(Vec<u8>),
    Packed(Vec<It>),
}

/// Module-serialized data opcodes (what a module's rdb_save may emit).
#[derive(Clone, Debug)]
enum ModOp {
    SInt(u64),
    UInt(u64),
    Float([u8; 4]),
    Double(f64),
    Str(Vec<u8>),
}

/// A stream entry's fields: the master entry's field names with these values, or its own.
#[derive(Clone, Debug)]
enum SFields {
    Same(Vec<It>),
    Own(Vec<(It, It)>),
}

#[derive(Clone, Debug)]
struct SEntry {
    ms_diff: i64,
    seq_diff: i64,
    deleted: bool,
    fields: SFields,
}

/// One listpack node of a stream.
#[derive(Clone, Debug)]
struct SNode {
    master: (u64, u64),
    master_fields: Vec<It>,
    entries: Vec<SEntry>,
}

#[derive(Clone, Debug)]
struct SPending {
    id: (u64, u64),
    delivery_time: i64,
    delivery_count: u64,
}

#[derive(Clone, Debug)]
struct SConsumer {
    name: Vec<u8>,
    seen: i64,
    active: i64,
    /// Indexes into the group's PEL.
    pending: Vec<Index>,
}

#[derive(Clone, Debug)]
struct SGroup {
    name: Vec<u8>,
    last: (u64, u64),
    read: u64,
    pel: Vec<SPending>,
    consumers: Vec<SConsumer>,
}

/// An IDMP producer: its ID, and its IIDs with their entry IDs.
type SProducer = (Vec<u8>, Vec<(Vec<u8>, (u64, u64))>);

/// The IDMP state of a type-26 stream: settings, producers and the two counters.
#[derive(Clone, Debug)]
struct SIdmp {
    duration: u64,
    max_entries: u64,
    producers: Vec<SProducer>,
    added: u64,
    duplicates: u64,
}

#[derive(Clone, Debug)]
struct SModel {
    ty: ValueType,
    nodes: Vec<SNode>,
    length: u64,
    last: (u64, u64),
    first: (u64, u64),
    max_deleted: (u64, u64),
    added: u64,
    groups: Vec<SGroup>,
    /// Written only for type 26.
    idmp: SIdmp,
}

/// A hash field with an optional TTL offset from the minimum (RDB type 24).
#[derive(Clone, Debug)]
struct MetaField {
    field: Vec<u8>,
    value: Vec<u8>,
    /// Offset from the hash's minimum expire; `None`: no TTL.
    offset: Option<u64>,
}

/// A value in every shape the writer API can put in a file.
#[derive(Clone, Debug)]
enum Val {
    Str(Vec<u8>),
    IntStr(i64),
    /// A string pre-compressed with the `lzf` crate (`RecordBuilder::lzf_blob`).
    LzfStr(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    /// Members and scores; `true`: binary scores (type 5), else text (type 3).
    Zset(Vec<(Vec<u8>, f64)>, bool),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// (key, value, padding) triples; `true`: zmlen 254 ("unknown").
    Zipmap(Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>, bool),
    /// `true`: some prevlens in the 5-byte form although they fit one byte.
    ListZiplist(Vec<It>, bool),
    /// Members; the width is the smallest that fits, widened `u8` steps (max 8 bytes).
    Intset(BTreeSet<i64>, u8),
    ZsetZiplist(Vec<(It, f64, ScoreForm)>, bool),
    HashZiplist(Vec<(It, It)>, bool),
    Quicklist(Vec<(Vec<It>, bool)>),
    HashListpack(Vec<(It, It)>),
    ZsetListpack(Vec<(It, f64, ScoreForm)>),
    Quicklist2(Vec<QlNode>),
    SetListpack(Vec<It>),
    Stream(Box<SModel>),
    HashMetadata(i64, Vec<MetaField>),
    /// Minimum expire, (field, value, TTL or 0) triplets.
    HashListpackEx(i64, Vec<(It, It, i64)>),
    /// Valkey's type 22: (field, value, expire time) triplets.
    Hash2(Vec<(Vec<u8>, Vec<u8>, Option<u64>)>),
    /// Type name (indexes into the 64-character set), encoding version, data.
    Module(Vec<usize>, u32, Vec<ModOp>),
}

fn ql_node() -> impl Strategy<Value = QlNode> {
    prop_oneof![
        bytes().prop_map(QlNode::Plain),
        vec(item(), 1..5).prop_map(QlNode::Packed),
    ]
}

fn mod_op() -> impl Strategy<Value = ModOp> {
    prop_oneof![
        any::<u64>().prop_map(ModOp::SInt),
        any::<u64>().prop_map(ModOp::UInt),
        any::<[u8; 4]>().prop_map(ModOp::Float),
        any::<f64>().prop_map(ModOp::Double),
        bytes().prop_map(ModOp::Str),
    ]
}

fn stream_id() -> impl Strategy<Value = (u64, u64)> {
    prop_oneof![
        (0u64..2_000_000_000_000, 0u64..10),
        (any::<u64>(), any::<u64>())
    ]
}

fn id_diff() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0i64..(1 << 40), 1 => any::<i64>()]
}

fn stream_node() -> impl Strategy<Value = SNode> {
    vec(item(), 0..4).prop_flat_map(|master_fields| {
        let n = master_fields.len();
        let fields = prop_oneof![
            vec(item(), n).prop_map(SFields::Same),
            vec((item(), item()), 0..3).prop_map(SFields::Own),
        ];
        let entry = (id_diff(), id_diff(), any::<bool>(), fields).prop_map(
            |(ms_diff, seq_diff, deleted, fields)| SEntry {
                ms_diff,
                seq_diff,
                deleted,
                fields,
            },
        );
        (Just(master_fields), stream_id(), vec(entry, 0..4)).prop_map(
            |(master_fields, master, entries)| SNode {
                master,
                master_fields,
                entries,
            },
        )
    })
}

fn stream_group() -> impl Strategy<Value = SGroup> {
    let pending = (stream_id(), any::<i64>(), any::<u64>()).prop_map(
        |(id, delivery_time, delivery_count)| SPending {
            id,
            delivery_time,
            delivery_count,
        },
    );
    let consumer = (
        bytes(),
        any::<i64>(),
        any::<i64>(),
        vec(any::<Index>(), 0..3),
    )
        .prop_map(|(name, seen, active, pending)| SConsumer {
            name,
            seen,
            active,
            pending,
        });
    (
        bytes(),
        stream_id(),
        any::<u64>(),
        vec(pending, 0..4),
        vec(consumer, 0..3),
    )
        .prop_map(|(name, last, read, pel, consumers)| SGroup {
            name,
            last,
            read,
            pel,
            consumers,
        })
}

/// IDMP settings across the whole range Redis 8.6 loads, its ends included.
fn idmp_setting(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![Just(1u64), Just(100), Just(max), 1..=max]
}

fn stream_idmp() -> impl Strategy<Value = SIdmp> {
    let iid = prop_oneof![bytes(), int_like()];
    let producer = (bytes(), vec((iid, stream_id()), 0..4));
    (
        idmp_setting(86_400),
        idmp_setting(10_000),
        vec(producer, 0..3),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(duration, max_entries, producers, added, duplicates)| SIdmp {
                duration,
                max_entries,
                producers,
                added,
                duplicates,
            },
        )
}

fn stream() -> impl Strategy<Value = SModel> {
    (
        prop::sample::select(vec![
            ValueType::StreamListpacks,
            ValueType::StreamListpacks2,
            ValueType::StreamListpacks3,
            ValueType::StreamListpacks4,
        ]),
        vec(stream_node(), 0..3),
        any::<u64>(),
        (stream_id(), stream_id(), stream_id()),
        any::<u64>(),
        vec(stream_group(), 0..3),
        stream_idmp(),
    )
        .prop_map(
            |(ty, nodes, length, (last, first, max_deleted), added, groups, idmp)| SModel {
                ty,
                nodes,
                length,
                last,
                first,
                max_deleted,
                added,
                groups,
                idmp,
            },
        )
}

/// Element counts of collections.
const N: std::ops::Range<usize> = 0..6;

fn value() -> impl Strategy<Value = Val> {
    let zipped = || (item(), score(), score_form());
    Union::new(vec![
        bytes().prop_map(Val::Str).boxed(),
        big_bytes().prop_map(Val::Str).boxed(),
        int().prop_map(Val::IntStr).boxed(),
        compressible().prop_map(Val::LzfStr).boxed(),
        vec(bytes(), N).prop_map(Val::List).boxed(),
        vec(bytes(), N).prop_map(Val::Set).boxed(),
        (vec((bytes(), score()), N), any::<bool>())
            .prop_map(|(m, b)| Val::Zset(m, b))
            .boxed(),
        vec((bytes(), bytes()), N).prop_map(Val::Hash).boxed(),
        (
            vec((bytes(), bytes(), vec(any::<u8>(), 0..5)), N),
            any::<bool>(),
        )
            .prop_map(|(p, u)| Val::Zipmap(p, u))
            .boxed(),
        (vec(item(), 0..8), any::<bool>())
            .prop_map(|(i, b)| Val::ListZiplist(i, b))
            .boxed(),
        (btree_set(int(), 0..8), 0u8..3)
            .prop_map(|(s, w)| Val::Intset(s, w))
            .boxed(),
        (vec(zipped(), N), any::<bool>())
            .prop_map(|(p, b)| Val::ZsetZiplist(p, b))
            .boxed(),
        (vec((item(), item()), N), any::<bool>())
            .prop_map(|(p, b)| Val::HashZiplist(p, b))
            .boxed(),
        vec((vec(item(), 0..5), any::<bool>()), 0..4)
            .prop_map(Val::Quicklist)
            .boxed(),
        vec((item(), item()), N).prop_map(Val::HashListpack).boxed(),
        vec(zipped(), N).prop_map(Val::ZsetListpack).boxed(),
        vec(ql_node(), 0..4).prop_map(Val::Quicklist2).boxed(),
        vec(item(), 0..8).prop_map(Val::SetListpack).boxed(),
        stream().prop_map(|s| Val::Stream(Box::new(s))).boxed(),
        (
            any::<i64>(),
            vec(
                (
                    bytes(),
                    bytes(),
                    option::of(prop_oneof![0u64..100_000, 0..=i64::MAX as u64]),
                )
                    .prop_map(|(field, value, offset)| MetaField {
                        field,
                        value,
                        offset,
                    }),
                N,
            ),
        )
            .prop_map(|(m, f)| Val::HashMetadata(m, f))
            .boxed(),
        (
            any::<i64>(),
            vec((item(), item(), prop_oneof![Just(0i64), any::<i64>()]), N),
        )
            .prop_map(|(m, t)| Val::HashListpackEx(m, t))
            .boxed(),
        vec(
            (
                bytes(),
                bytes(),
                option::of(prop_oneof![
                    Just(0u64),
                    1_600_000_000_000u64..1_900_000_000_000,
                    0..=i64::MAX as u64,
                ]),
            ),
            N,
        )
        .prop_map(Val::Hash2)
        .boxed(),
        (vec(0usize..64, 9), 0u32..1024, vec(mod_op(), 0..5))
            .prop_map(|(n, e, d)| Val::Module(n, e, d))
            .boxed(),
    ])
}

/// One key's record.
#[derive(Clone, Debug)]
struct Rec {
    key: Vec<u8>,
    expire: Option<i64>,
    idle: Option<u64>,
    freq: Option<u8>,
    compress: bool,
    val: Val,
}

fn expire() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(-1i64),
        1_600_000_000_000i64..1_900_000_000_000,
        any::<i64>(),
    ]
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        bytes(),
        option::of(expire()),
        option::weighted(0.2, any::<u64>()),
        option::weighted(0.2, any::<u8>()),
        any::<bool>(),
        value(),
    )
        .prop_map(|(key, expire, idle, freq, compress, val)| Rec {
            key,
            expire,
            idle,
            freq,
            compress,
            val,
        })
}

#[derive(Clone, Debug)]
enum Aux {
    Str(Vec<u8>, Vec<u8>),
    Int(Vec<u8>, i64),
}

#[derive(Clone, Debug)]
struct Db {
    db: u32,
    resize: Option<(u64, u64)>,
    recs: Vec<Rec>,
}

#[derive(Clone, Debug)]
struct File {
    version: u32,
    aux: Vec<Aux>,
    functions: Vec<Vec<u8>>,
    dbs: Vec<Db>,
}

fn file(max_dbs: usize, max_keys: usize) -> impl Strategy<Value = File> {
    let aux = prop_oneof![
        4 => (bytes(), bytes()).prop_map(|(k, v)| Aux::Str(k, v)),
        2 => (bytes(), any::<i64>()).prop_map(|(k, v)| Aux::Int(k, v)),
        // Longer than the 4 KiB the reader keeps.
        1 => (bytes(), 4090usize..4100).prop_map(|(k, n)| Aux::Str(k, vec![b'a'; n])),
    ];
    let db = (
        prop_oneof![3 => 0u32..16, 1 => any::<u32>()],
        option::of((any::<u64>(), any::<u64>())),
        vec(rec(), 0..max_keys),
    )
        .prop_map(|(db, resize, recs)| Db { db, resize, recs });
    (
        prop_oneof![1 => 1u32..=9, 3 => 10u32..=13, 2 => Just(80u32)],
        vec(aux, 0..5),
        vec(prop_oneof![bytes(), compressible()], 0..3),
        vec(db, 0..max_dbs),
    )
        .prop_map(|(version, aux, functions, dbs)| File {
            version,
            aux,
            functions,
            dbs,
        })
}

// ============================================================= hand-written blob encoders

/// A ziplist of `items`; with `big`, every second entry's prevlen takes the 5-byte form.
fn ziplist_alt(items: &[It], big: bool) -> Vec<u8> {
    let flags: Vec<bool> = (0..items.len()).map(|k| big && k % 2 == 1).collect();
    ziplist(items, &flags)
}

fn id_raw((ms, seq): (u64, u64)) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&ms.to_be_bytes());
    b[8..].copy_from_slice(&seq.to_be_bytes());
    b
}

fn sid((ms, seq): (u64, u64)) -> StreamId {
    StreamId { ms, seq }
}

/// The listpack of a stream node: the master entry, then each entry with its flags, ID
/// deltas, fields and element count (Redis's `streamAppendItem`).
fn stream_listpack(node: &SNode) -> Vec<u8> {
    let live = node.entries.iter().filter(|e| !e.deleted).count();
    let dead = node.entries.len() - live;
    let mut items = vec![
        It::Int(live as i64),
        It::Int(dead as i64),
        It::Int(node.master_fields.len() as i64),
    ];
    items.extend(node.master_fields.iter().cloned());
    items.push(It::Int(0));
    for e in &node.entries {
        let mut flags = i64::from(e.deleted);
        if matches!(e.fields, SFields::Same(_)) {
            flags |= 2;
        }
        items.extend([It::Int(flags), It::Int(e.ms_diff), It::Int(e.seq_diff)]);
        let count = match &e.fields {
            SFields::Same(values) => {
                items.extend(values.iter().cloned());
                3 + values.len()
            }
            SFields::Own(pairs) => {
                items.push(It::Int(pairs.len() as i64));
                for (f, v) in pairs {
                    items.extend([f.clone(), v.clone()]);
                }
                4 + 2 * pairs.len()
            }
        };
        items.push(It::Int(count as i64));
    }
    listpack(&items)
}

const MODULE_CHARSET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn module_id(name: &[usize], encver: u32) -> u64 {
    let sig = name.iter().fold(0u64, |id, &c| (id << 6) | c as u64);
    (sig << 10) | u64::from(encver)
}

// ================================================================ writing and expecting

/// The object type of a value.
fn value_type(v: &Val) -> ValueType {
    match v {
        Val::Str(_) | Val::IntStr(_) | Val::LzfStr(_) => ValueType::String,
        Val::List(_) => ValueType::List,
        Val::Set(_) => ValueType::Set,
        Val::Zset(_, false) => ValueType::Zset,
        Val::Zset(_, true) => ValueType::Zset2,
        Val::Hash(_) => ValueType::Hash,
        Val::Zipmap(..) => ValueType::HashZipmap,
        Val::ListZiplist(..) => ValueType::ListZiplist,
        Val::Intset(..) => ValueType::SetIntset,
        Val::ZsetZiplist(..) => ValueType::ZsetZiplist,
        Val::HashZiplist(..) => ValueType::HashZiplist,
        Val::Quicklist(_) => ValueType::ListQuicklist,
        Val::HashListpack(_) => ValueType::HashListpack,
        Val::ZsetListpack(_) => ValueType::ZsetListpack,
        Val::Quicklist2(_) => ValueType::ListQuicklist2,
        Val::SetListpack(_) => ValueType::SetListpack,
        Val::Stream(s) => s.ty,
        Val::HashMetadata(..) => ValueType::HashMetadata,
        Val::HashListpackEx(..) => ValueType::HashListpackEx,
        Val::Hash2(..) => ValueType::Hash2,
        Val::Module(..) => ValueType::Module2,
    }
}

/// Whether RDB `v` has what Redis introduced in RDB `since`, from the format's history
/// (not from the crate): Redis's versions have everything up to their number; Valkey 9's 80
/// descends from RDB 11 and has nothing of 12 or 13.
fn has(v: u32, since: u32) -> bool {
    if v == 80 {
        since <= 11
    } else {
        v >= since
    }
}

/// Whether RDB `v` holds object type `t`, from the format's history (not from the crate).
fn type_in_version(t: ValueType, v: u32) -> bool {
    let since = match t.code() {
        0..=4 => 1,
        9..=12 => 2,
        13 => 6,
        14 => 7,
        5 | 7 => 8,
        15 => 9,
        16..=19 => 10,
        20 | 21 => 11,
        22 => return v == 80,
        24 | 25 => 12,
        26 => 13,
        other => panic!("unexpected type {other}"),
    };
    has(v, since)
}

fn write_value(v: &Val, r: &mut RecordBuilder) {
    let flat = |pairs: &[(It, It)]| -> Vec<It> {
        pairs
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect()
    };
    let zflat = |pairs: &[(It, f64, ScoreForm)]| -> Vec<It> {
        pairs
            .iter()
            .flat_map(|(m, s, f)| [m.clone(), score_item(*s, *f)])
            .collect()
    };
    match v {
        Val::Str(s) => r.string(s),
        Val::IntStr(i) => r.int_string(*i),
        Val::LzfStr(s) => match lzf_crate_compress(s) {
            Some(c) => r.lzf_blob(&c, s.len() as u64),
            None => r.string(s),
        },
        Val::List(v) | Val::Set(v) => {
            r.len(v.len() as u64);
            for e in v {
                r.string(e);
            }
        }
        Val::Zset(m, binary) => {
            r.len(m.len() as u64);
            for (k, s) in m {
                r.string(k);
                if *binary {
                    r.binary_double(*s);
                } else {
                    r.string_double(*s);
                }
            }
        }
        Val::Hash(p) => {
            r.len(p.len() as u64);
            for (k, v) in p {
                r.string(k);
                r.string(v);
            }
        }
        Val::Zipmap(p, unknown) => r.string(&zipmap(p, *unknown)),
        Val::ListZiplist(items, big) => r.string(&ziplist_alt(items, *big)),
        Val::Intset(s, w) => r.string(&intset(s, *w)),
        Val::ZsetZiplist(p, big) => r.string(&ziplist_alt(&zflat(p), *big)),
        Val::HashZiplist(p, big) => r.string(&ziplist_alt(&flat(p), *big)),
        Val::Quicklist(nodes) => {
            r.len(nodes.len() as u64);
            for (items, big) in nodes {
                r.string(&ziplist_alt(items, *big));
            }
        }
        Val::HashListpack(p) => r.string(&listpack(&flat(p))),
        Val::ZsetListpack(p) => r.string(&listpack(&zflat(p))),
        Val::Quicklist2(nodes) => {
            r.len(nodes.len() as u64);
            for n in nodes {
                match n {
                    QlNode::Plain(b) => {
                        r.len(1);
                        r.string(b);
                    }
                    QlNode::Packed(items) => {
                        r.len(2);
                        r.string(&listpack(items));
                    }
                }
            }
        }
        Val::SetListpack(items) => r.string(&listpack(items)),
        Val::Stream(s) => write_stream(s, r),
        Val::HashMetadata(min, fields) => {
            r.millis(*min);
            r.len(fields.len() as u64);
            for f in fields {
                r.len(f.offset.map_or(0, |o| o + 1));
                r.string(&f.field);
                r.string(&f.value);
            }
        }
        Val::HashListpackEx(min, triplets) => {
            r.millis(*min);
            let items: Vec<It> = triplets
                .iter()
                .flat_map(|(f, v, ttl)| [f.clone(), v.clone(), It::Int(*ttl)])
                .collect();
            r.string(&listpack(&items));
        }
        Val::Hash2(fields) => {
            r.len(fields.len() as u64);
            for (f, v, t) in fields {
                r.hash2_field(f, v, *t).unwrap();
            }
        }
        Val::Module(name, encver, ops) => {
            r.len(module_id(name, *encver));
            write_mod_ops(ops, r);
        }
    }
}

fn write_stream(s: &SModel, r: &mut RecordBuilder) {
    let v2 = s.ty != ValueType::StreamListpacks;
    let v3 = matches!(
        s.ty,
        ValueType::StreamListpacks3 | ValueType::StreamListpacks4
    );
    let id = |r: &mut RecordBuilder, (ms, seq): (u64, u64)| {
        r.len(ms);
        r.len(seq);
    };
    r.len(s.nodes.len() as u64);
    for n in &s.nodes {
        r.string(&id_raw(n.master));
        r.string(&stream_listpack(n));
    }
    r.len(s.length);
    id(r, s.last);
    if v2 {
        id(r, s.first);
        id(r, s.max_deleted);
        r.len(s.added);
    }
    r.len(s.groups.len() as u64);
    for g in &s.groups {
        r.string(&g.name);
        id(r, g.last);
        if v2 {
            r.len(g.read);
        }
        r.len(g.pel.len() as u64);
        for p in &g.pel {
            r.raw(&id_raw(p.id));
            r.millis(p.delivery_time);
            r.len(p.delivery_count);
        }
        r.len(g.consumers.len() as u64);
        for c in &g.consumers {
            r.string(&c.name);
            r.millis(c.seen);
            if v3 {
                r.millis(c.active);
            }
            let pending: Vec<(u64, u64)> = if g.pel.is_empty() {
                Vec::new()
            } else {
                c.pending
                    .iter()
                    .map(|i| g.pel[i.index(g.pel.len())].id)
                    .collect()
            };
            r.len(pending.len() as u64);
            for p in pending {
                r.raw(&id_raw(p));
            }
        }
    }
    if s.ty == ValueType::StreamListpacks4 {
        let i = &s.idmp;
        let config = StreamIdmpConfig::new(i.duration, i.max_entries).unwrap();
        r.stream_idmp(
            config,
            i.producers
                .iter()
                .map(|(pid, iids)| (pid, iids.iter().map(|(iid, id)| (iid, sid(*id))))),
            i.added,
            i.duplicates,
        );
    }
}

fn expected_stream(s: &SModel) -> Stream {
    let v2 = s.ty != ValueType::StreamListpacks;
    let v3 = matches!(
        s.ty,
        ValueType::StreamListpacks3 | ValueType::StreamListpacks4
    );
    let mut entries = Vec::new();
    for n in &s.nodes {
        for e in n.entries.iter().filter(|e| !e.deleted) {
            let fields = match &e.fields {
                SFields::Same(values) => n
                    .master_fields
                    .iter()
                    .zip(values)
                    .map(|(f, v)| (f.text(), v.text()))
                    .collect(),
                SFields::Own(pairs) => pairs.iter().map(|(f, v)| (f.text(), v.text())).collect(),
            };
            entries.push(StreamEntry {
                id: StreamId {
                    ms: n.master.0.wrapping_add(e.ms_diff as u64),
                    seq: n.master.1.wrapping_add(e.seq_diff as u64),
                },
                fields,
            });
        }
    }
    let groups = s
        .groups
        .iter()
        .map(|g| StreamGroup {
            name: g.name.clone(),
            last_id: sid(g.last),
            entries_read: v2.then_some(g.read),
            pending: g
                .pel
                .iter()
                .map(|p| StreamPending {
                    id: sid(p.id),
                    delivery_time: p.delivery_time,
                    delivery_count: p.delivery_count,
                })
                .collect(),
            consumers: g
                .consumers
                .iter()
                .map(|c| StreamConsumer {
                    name: c.name.clone(),
                    seen_time: c.seen,
                    active_time: v3.then_some(c.active),
                    pending: if g.pel.is_empty() {
                        Vec::new()
                    } else {
                        c.pending
                            .iter()
                            .map(|i| sid(g.pel[i.index(g.pel.len())].id))
                            .collect()
                    },
                })
                .collect(),
        })
        .collect();
    Stream {
        entries,
        length: s.length,
        last_id: sid(s.last),
        first_id: v2.then_some(sid(s.first)),
        max_deleted_id: v2.then_some(sid(s.max_deleted)),
        entries_added: v2.then_some(s.added),
        groups,
        idmp: (s.ty == ValueType::StreamListpacks4).then(|| StreamIdmp {
            config: StreamIdmpConfig::new(s.idmp.duration, s.idmp.max_entries).unwrap(),
            producers: s
                .idmp
                .producers
                .iter()
                .map(|(pid, iids)| StreamProducer {
                    pid: pid.clone(),
                    iids: iids
                        .iter()
                        .map(|(iid, id)| StreamIid {
                            iid: iid.clone(),
                            id: sid(*id),
                        })
                        .collect(),
                })
                .collect(),
            iids_added: s.idmp.added,
            iids_duplicates: s.idmp.duplicates,
        }),
    }
}

/// The value the reader must return for `v`.
fn expected_value(v: &Val) -> RdbValue {
    let texts = |items: &[It]| items.iter().map(It::text).collect::<Vec<_>>();
    let pairs = |p: &[(It, It)]| {
        p.iter()
            .map(|(a, b)| (a.text(), b.text()))
            .collect::<Vec<_>>()
    };
    let zpairs =
        |p: &[(It, f64, ScoreForm)]| p.iter().map(|(m, s, _)| (m.text(), *s)).collect::<Vec<_>>();
    match v {
        Val::Str(s) | Val::LzfStr(s) => RdbValue::String(s.clone()),
        Val::IntStr(i) => RdbValue::String(i.to_string().into_bytes()),
        Val::List(v) => RdbValue::List(v.clone()),
        Val::Set(v) => RdbValue::Set(v.clone()),
        Val::Zset(m, _) => RdbValue::Zset(m.clone()),
        Val::Hash(p) => RdbValue::Hash(p.clone()),
        Val::Zipmap(p, _) => {
            RdbValue::Hash(p.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect())
        }
        Val::ListZiplist(items, _) => RdbValue::List(texts(items)),
        Val::Intset(s, _) => RdbValue::Set(s.iter().map(|v| v.to_string().into_bytes()).collect()),
        Val::ZsetZiplist(p, _) => RdbValue::Zset(zpairs(p)),
        Val::HashZiplist(p, _) => RdbValue::Hash(pairs(p)),
        Val::Quicklist(nodes) => {
            RdbValue::List(nodes.iter().flat_map(|(items, _)| texts(items)).collect())
        }
        Val::HashListpack(p) => RdbValue::Hash(pairs(p)),
        Val::ZsetListpack(p) => RdbValue::Zset(zpairs(p)),
        Val::Quicklist2(nodes) => RdbValue::List(
            nodes
                .iter()
                .flat_map(|n| match n {
                    QlNode::Plain(b) => vec![b.clone()],
                    QlNode::Packed(items) => texts(items),
                })
                .collect(),
        ),
        Val::SetListpack(items) => RdbValue::Set(texts(items)),
        Val::Stream(s) => RdbValue::Stream(Box::new(expected_stream(s))),
        Val::HashMetadata(min, fields) => RdbValue::HashWithTtl(
            fields
                .iter()
                .map(|f| HashField {
                    field: f.field.clone(),
                    value: f.value.clone(),
                    expire_ms: f.offset.map(|o| min.saturating_add(o as i64)),
                })
                .collect(),
        ),
        Val::HashListpackEx(_, triplets) => RdbValue::HashWithTtl(
            triplets
                .iter()
                .map(|(f, v, ttl)| HashField {
                    field: f.text(),
                    value: v.text(),
                    expire_ms: (*ttl != 0).then_some(*ttl),
                })
                .collect(),
        ),
        Val::Hash2(fields) => RdbValue::HashWithTtl(
            fields
                .iter()
                .map(|(f, v, t)| HashField {
                    field: f.clone(),
                    value: v.clone(),
                    expire_ms: t.map(|t| t as i64),
                })
                .collect(),
        ),
        Val::Module(name, encver, _) => RdbValue::Module(ModuleValue {
            type_name: name
                .iter()
                .map(|&c| char::from(MODULE_CHARSET[c]))
                .collect(),
            encver: *encver,
        }),
    }
}

/// The scores of a zset value as bit patterns (so that -0 and 0 differ), else `None`.
fn score_bits(v: &RdbValue) -> Option<Vec<u64>> {
    match v {
        RdbValue::Zset(m) => Some(m.iter().map(|(_, s)| s.to_bits()).collect()),
        _ => None,
    }
}

/// Everything the reader should report for a file.
struct Expected {
    entries: Vec<Entry>,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    functions: u64,
    resize_hints: Vec<(u32, u64, u64)>,
    /// `bytes_written()` just before `finish`.
    body_len: u64,
}

/// Writes `f`, checking on the way that every call the file's version cannot hold is
/// refused without writing anything, and returns the file and what must come back.
fn write_file(f: &File) -> Result<(Vec<u8>, Expected), TestCaseError> {
    let v = f.version;
    let mut w = RdbWriter::new(Vec::new(), v).unwrap();
    prop_assert_eq!(w.bytes_written(), 9);
    let mut exp = Expected {
        entries: Vec::new(),
        aux: Vec::new(),
        functions: 0,
        resize_hints: Vec::new(),
        body_len: 0,
    };
    // A refusal must name the file's version and exactly the versions `holds` accepts.
    let refused =
        |r: Result<(), RdbError>, holds: &dyn Fn(u32) -> bool| -> Result<(), TestCaseError> {
            let want = rdb::consts::describe_versions(holds);
            match r {
                Err(RdbError::NotInVersion {
                    version, holders, ..
                }) => {
                    prop_assert_eq!(holders, want);
                    prop_assert_eq!(version, v);
                    Ok(())
                }
                other => Err(TestCaseError::fail(format!(
                    "RDB {v} must refuse a feature of RDB {want}, got {other:?}"
                ))),
            }
        };
    for a in &f.aux {
        let before = w.bytes_written();
        let (r, k, val) = match a {
            Aux::Str(k, val) => (w.aux(k, val), k, val.clone()),
            Aux::Int(k, i) => (w.aux_int(k, *i), k, i.to_string().into_bytes()),
        };
        if has(v, 7) {
            r.unwrap();
            if exp.aux.len() < 64 && val.len() <= 4096 {
                exp.aux.push((k.clone(), val));
            }
        } else {
            refused(r, &|x| has(x, 7))?;
            prop_assert_eq!(w.bytes_written(), before);
        }
    }
    for code in &f.functions {
        let before = w.bytes_written();
        let r = w.function(code);
        if has(v, 10) {
            r.unwrap();
            exp.functions += 1;
        } else {
            refused(r, &|x| has(x, 10))?;
            prop_assert_eq!(w.bytes_written(), before);
        }
    }
    for db in &f.dbs {
        w.select_db(u64::from(db.db)).unwrap();
        if let Some((keys, expires)) = db.resize {
            let before = w.bytes_written();
            let r = w.resize_db(keys, expires);
            if has(v, 7) {
                r.unwrap();
                exp.resize_hints.push((db.db, keys, expires));
            } else {
                refused(r, &|x| has(x, 7))?;
                prop_assert_eq!(w.bytes_written(), before);
            }
        }
        for rec in &db.recs {
            let mut r = RecordBuilder::new(rec.compress);
            // The newest key opcode, then the type: what a refusal names first.
            let mut opcodes = 1;
            if let Some(ms) = rec.expire {
                r.expire_ms(ms);
                opcodes = opcodes.max(6);
            }
            if let Some(secs) = rec.idle {
                r.idle(secs);
                opcodes = opcodes.max(9);
            }
            if let Some(c) = rec.freq {
                r.freq(c);
                opcodes = opcodes.max(9);
            }
            let ty = value_type(&rec.val);
            r.value_type(ty);
            r.key(&rec.key);
            write_value(&rec.val, &mut r);
            let idmp = matches!(&rec.val, Val::Stream(s) if s.ty == ValueType::StreamListpacks4);
            let holds = |x: u32| has(x, opcodes) && type_in_version(ty, x) && (!idmp || has(x, 13));
            for x in rdb::consts::RDB_VERSIONS {
                prop_assert_eq!(r.fits(x), holds(x), "RDB {}", x);
            }
            prop_assert_eq!(r.written_value_type(), Some(ty));
            let before = w.bytes_written();
            let res = w.record(&r);
            if holds(v) {
                res.unwrap();
                prop_assert_eq!(w.bytes_written(), before + r.byte_len() as u64);
                exp.entries.push(Entry {
                    db: db.db,
                    key: rec.key.clone(),
                    expire_ms: rec.expire,
                    idle: rec.idle,
                    freq: rec.freq,
                    rdb_type: ty.code(),
                    value: expected_value(&rec.val),
                });
            } else if !has(v, opcodes) {
                refused(res, &|x| has(x, opcodes))?;
                prop_assert_eq!(w.bytes_written(), before);
            } else {
                refused(res, &|x| type_in_version(ty, x))?;
                prop_assert_eq!(w.bytes_written(), before);
            }
        }
    }
    exp.body_len = w.bytes_written();
    Ok((w.finish().unwrap(), exp))
}

/// CRC-64/Redis from the `crc` crate (an implementation independent of `rdb::crc`).
fn crc_oracle(data: &[u8]) -> u64 {
    crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(data)
}

/// Every entry of `file`, and the reader (for its AUX fields, hints, checksum…).
fn read_all(file: &[u8]) -> Result<(Vec<Entry>, RdbReader<&[u8]>), ReadError> {
    let mut r = RdbReader::new(file)?;
    let mut out = Vec::new();
    while let Some(e) = r.next_entry()? {
        out.push(e);
    }
    Ok((out, r))
}

/// Reads `file` back and compares everything with `exp`.
fn check_file(version: u32, file: &[u8], exp: &Expected) -> Result<(), TestCaseError> {
    let trailer = if version >= 5 { 8 } else { 0 };
    prop_assert_eq!(file.len() as u64, exp.body_len + 1 + trailer);
    let magic = if version == 80 {
        "VALKEY080".to_owned()
    } else {
        format!("REDIS{version:04}")
    };
    prop_assert_eq!(&file[..9], magic.as_bytes());
    let (entries, r) = match read_all(file) {
        Ok(x) => x,
        Err(e) => return Err(TestCaseError::fail(format!("read failed: {e}"))),
    };
    prop_assert_eq!(r.version(), version);
    prop_assert_eq!(entries.len(), exp.entries.len());
    for (got, want) in entries.iter().zip(&exp.entries) {
        prop_assert_eq!(got, want);
        prop_assert_eq!(score_bits(&got.value), score_bits(&want.value));
    }
    prop_assert_eq!(r.aux(), &exp.aux[..]);
    prop_assert_eq!(r.functions(), exp.functions);
    prop_assert_eq!(r.resize_hints(), &exp.resize_hints[..]);
    prop_assert_eq!(r.keys_read(), exp.entries.len() as u64);
    prop_assert_eq!(r.offset(), file.len() as u64);
    let body = &file[..file.len() - trailer as usize];
    prop_assert_eq!(body.last(), Some(&0xFF));
    if version >= 5 {
        let crc = crc_oracle(body);
        prop_assert_eq!(&file[body.len()..], &crc.to_le_bytes()[..]);
        prop_assert_eq!(rdb::crc64(body), crc);
        prop_assert_eq!(r.checksum(), Some(Checksum::Verified(crc)));
    } else {
        prop_assert_eq!(r.checksum(), Some(Checksum::Absent));
    }
    Ok(())
}

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
