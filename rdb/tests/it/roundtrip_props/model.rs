//! The model of an RDB file the properties draw: keyspaces of every value type and encoding,
//! streams with their groups, consumers and producers, module values, and the strategies that
//! make them (the scalar strategies are in `rdb/tests/support/decode_gen.rs`).

use super::*;

/// A quicklist (type 18) node.
#[derive(Clone, Debug)]
pub(super) enum QlNode {
    Plain(Vec<u8>),
    Packed(Vec<It>),
}

/// Module-serialized data opcodes (what a module's rdb_save may emit).
#[derive(Clone, Debug)]
pub(super) enum ModOp {
    SInt(u64),
    UInt(u64),
    Float([u8; 4]),
    Double(f64),
    Str(Vec<u8>),
}

/// A stream entry's fields: the master entry's field names with these values, or its own.
#[derive(Clone, Debug)]
pub(super) enum SFields {
    Same(Vec<It>),
    Own(Vec<(It, It)>),
}

#[derive(Clone, Debug)]
pub(super) struct SEntry {
    pub(super) ms_diff: i64,
    pub(super) seq_diff: i64,
    pub(super) deleted: bool,
    pub(super) fields: SFields,
}

/// One listpack node of a stream.
#[derive(Clone, Debug)]
pub(super) struct SNode {
    pub(super) master: (u64, u64),
    pub(super) master_fields: Vec<It>,
    pub(super) entries: Vec<SEntry>,
}

#[derive(Clone, Debug)]
pub(super) struct SPending {
    pub(super) id: (u64, u64),
    pub(super) delivery_time: i64,
    pub(super) delivery_count: u64,
}

#[derive(Clone, Debug)]
pub(super) struct SConsumer {
    pub(super) name: Vec<u8>,
    pub(super) seen: i64,
    pub(super) active: i64,
    /// Indexes into the group's PEL.
    pub(super) pending: Vec<Index>,
}

#[derive(Clone, Debug)]
pub(super) struct SGroup {
    pub(super) name: Vec<u8>,
    pub(super) last: (u64, u64),
    pub(super) read: u64,
    pub(super) pel: Vec<SPending>,
    pub(super) consumers: Vec<SConsumer>,
}

/// An IDMP producer: its ID, and its IIDs with their entry IDs.
pub(super) type SProducer = (Vec<u8>, Vec<(Vec<u8>, (u64, u64))>);

/// The IDMP state of a type-26 stream: settings, producers and the two counters.
#[derive(Clone, Debug)]
pub(super) struct SIdmp {
    pub(super) duration: u64,
    pub(super) max_entries: u64,
    pub(super) producers: Vec<SProducer>,
    pub(super) added: u64,
    pub(super) duplicates: u64,
}

#[derive(Clone, Debug)]
pub(super) struct SModel {
    pub(super) ty: ValueType,
    pub(super) nodes: Vec<SNode>,
    pub(super) length: u64,
    pub(super) last: (u64, u64),
    pub(super) first: (u64, u64),
    pub(super) max_deleted: (u64, u64),
    pub(super) added: u64,
    pub(super) groups: Vec<SGroup>,
    /// Written only for type 26.
    pub(super) idmp: SIdmp,
}

/// A hash field with an optional TTL offset from the minimum (RDB type 24).
#[derive(Clone, Debug)]
pub(super) struct MetaField {
    pub(super) field: Vec<u8>,
    pub(super) value: Vec<u8>,
    /// Offset from the hash's minimum expire; `None`: no TTL.
    pub(super) offset: Option<u64>,
}

/// A value in every shape the writer API can put in a file.
#[derive(Clone, Debug)]
pub(super) enum Val {
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

pub(super) fn ql_node() -> impl Strategy<Value = QlNode> {
    prop_oneof![
        bytes().prop_map(QlNode::Plain),
        vec(item(), 1..5).prop_map(QlNode::Packed),
    ]
}

pub(super) fn mod_op() -> impl Strategy<Value = ModOp> {
    prop_oneof![
        any::<u64>().prop_map(ModOp::SInt),
        any::<u64>().prop_map(ModOp::UInt),
        any::<[u8; 4]>().prop_map(ModOp::Float),
        any::<f64>().prop_map(ModOp::Double),
        bytes().prop_map(ModOp::Str),
    ]
}

pub(super) fn stream_id() -> impl Strategy<Value = (u64, u64)> {
    prop_oneof![
        (0u64..2_000_000_000_000, 0u64..10),
        (any::<u64>(), any::<u64>())
    ]
}

pub(super) fn id_diff() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0i64..(1 << 40), 1 => any::<i64>()]
}

pub(super) fn stream_node() -> impl Strategy<Value = SNode> {
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

pub(super) fn stream_group() -> impl Strategy<Value = SGroup> {
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
pub(super) fn idmp_setting(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![Just(1u64), Just(100), Just(max), 1..=max]
}

pub(super) fn stream_idmp() -> impl Strategy<Value = SIdmp> {
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

pub(super) fn stream() -> impl Strategy<Value = SModel> {
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
pub(super) const N: std::ops::Range<usize> = 0..6;

pub(super) fn value() -> impl Strategy<Value = Val> {
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
pub(super) struct Rec {
    pub(super) key: Vec<u8>,
    pub(super) expire: Option<i64>,
    pub(super) idle: Option<u64>,
    pub(super) freq: Option<u8>,
    pub(super) compress: bool,
    pub(super) val: Val,
}

pub(super) fn expire() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(-1i64),
        1_600_000_000_000i64..1_900_000_000_000,
        any::<i64>(),
    ]
}

pub(super) fn rec() -> impl Strategy<Value = Rec> {
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
pub(super) enum Aux {
    Str(Vec<u8>, Vec<u8>),
    Int(Vec<u8>, i64),
}

#[derive(Clone, Debug)]
pub(super) struct Db {
    pub(super) db: u32,
    pub(super) resize: Option<(u64, u64)>,
    pub(super) recs: Vec<Rec>,
}

#[derive(Clone, Debug)]
pub(super) struct File {
    pub(super) version: u32,
    pub(super) aux: Vec<Aux>,
    pub(super) functions: Vec<Vec<u8>>,
    pub(super) dbs: Vec<Db>,
}

pub(super) fn file(max_dbs: usize, max_keys: usize) -> impl Strategy<Value = File> {
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
