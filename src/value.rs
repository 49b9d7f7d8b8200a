//! What the walker recovers: one key and its value, borrowed from the core where possible.

use std::borrow::Cow;

/// Bytes borrowed from the mapped core, or owned when they had to be assembled.
pub type Bytes<'a> = Cow<'a, [u8]>;

/// A string value.
#[derive(Debug, Clone, PartialEq)]
pub enum StrValue<'a> {
    /// Raw or embstr bytes.
    Bytes(Bytes<'a>),
    /// An INT-encoded string.
    Int(i64),
}

/// One quicklist node, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum QuicklistNode<'a> {
    /// A listpack (ziplist before 7.0), validated entry by entry.
    Packed(Bytes<'a>),
    /// An LZF-compressed listpack or ziplist, kept compressed; it was decompressed and validated.
    PackedLzf {
        /// The compressed bytes.
        compressed: Bytes<'a>,
        /// Uncompressed size.
        raw_len: u64,
    },
    /// A PLAIN node: one large element.
    Plain(Bytes<'a>),
    /// An LZF-compressed PLAIN node, kept compressed; it was decompressed to check its size.
    PlainLzf {
        /// The compressed bytes.
        compressed: Bytes<'a>,
        /// Uncompressed size.
        raw_len: u64,
    },
}

/// A value, in the shape the in-memory encoding gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A string.
    String(StrValue<'a>),
    /// A quicklist (7.0: listpack or PLAIN nodes).
    ListQuicklist(Vec<QuicklistNode<'a>>),
    /// A quicklist of ziplist nodes (3.2 to 6.2).
    ListQuicklistZiplist(Vec<QuicklistNode<'a>>),
    /// A ziplist-encoded list (2.8, 3.0), validated.
    ListZiplist(Bytes<'a>),
    /// Elements of a linked list (2.8, 3.0).
    ListElements(Vec<Bytes<'a>>),
    /// An intset blob (validated).
    SetIntset(Bytes<'a>),
    /// A listpack of set members (7.2+), validated.
    SetListpack(Bytes<'a>),
    /// Members of a hashtable set.
    SetMembers(Vec<Bytes<'a>>),
    /// A listpack of member, score pairs (validated).
    ZsetListpack(Bytes<'a>),
    /// A ziplist of member, score pairs (up to 6.2), validated.
    ZsetZiplist(Bytes<'a>),
    /// Members and scores of a skiplist zset.
    ZsetPairs(Vec<(Bytes<'a>, f64)>),
    /// A listpack of field, value pairs (validated).
    HashListpack(Bytes<'a>),
    /// A ziplist of field, value pairs (up to 6.2), validated.
    HashZiplist(Bytes<'a>),
    /// Fields and values of a hashtable hash.
    HashPairs(Vec<(Bytes<'a>, Bytes<'a>)>),
    /// A stream.
    Stream(Box<StreamValue<'a>>),
    /// A listpack of (field, value, TTL ms or 0) triplets (7.4 `listpack_ex`), validated,
    /// with the smallest field TTL (0 when none).
    HashListpackEx {
        /// Smallest field expire time, 0 when no field has one.
        min_expire: u64,
        /// The listpack.
        lp: Bytes<'a>,
    },
    /// Fields, values and field expire times (ms) of a hashtable hash with field TTLs (7.4+).
    HashPairsTtl(Vec<(Bytes<'a>, Bytes<'a>, Option<u64>)>),
}

impl Value<'_> {
    /// About how many separately held parts (strings, elements, nodes) the value has: a
    /// measure of the memory a decoded value holds beyond the core's own bytes.
    pub fn parts(&self) -> usize {
        let n = match self {
            Value::String(_)
            | Value::ListZiplist(_)
            | Value::SetIntset(_)
            | Value::SetListpack(_)
            | Value::ZsetListpack(_)
            | Value::ZsetZiplist(_)
            | Value::HashListpack(_)
            | Value::HashZiplist(_)
            | Value::HashListpackEx { .. } => 1,
            Value::ListQuicklist(nodes) | Value::ListQuicklistZiplist(nodes) => nodes.len(),
            Value::ListElements(v) | Value::SetMembers(v) => v.len(),
            Value::ZsetPairs(v) => v.len(),
            Value::HashPairs(v) => v.len(),
            Value::HashPairsTtl(v) => v.len(),
            Value::Stream(s) => {
                s.listpacks.len()
                    + s.groups
                        .iter()
                        .map(|g| g.pel.len() + g.consumers.len())
                        .sum::<usize>()
            }
        };
        n.max(1)
    }
}

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

/// A pending entry of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNack {
    /// The entry ID as stored in the rax: 16 bytes, ms then seq, big-endian.
    pub id: [u8; 16],
    /// Last delivery, Unix ms.
    pub delivery_time: i64,
    /// Deliveries so far.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConsumer {
    /// Its name.
    pub name: Vec<u8>,
    /// Last seen, Unix ms.
    pub seen_time: i64,
    /// Last active, Unix ms (7.2+).
    pub active_time: Option<i64>,
    /// IDs of its pending entries (each also in the group's PEL).
    pub pel: Vec<[u8; 16]>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGroup {
    /// Its name.
    pub name: Vec<u8>,
    /// Last delivered ID.
    pub last_id: StreamId,
    /// Entries read (7.0+), as stored (may be the "invalid" marker).
    pub entries_read: Option<u64>,
    /// The group's pending entries, in ID order.
    pub pel: Vec<StreamNack>,
    /// Its consumers.
    pub consumers: Vec<StreamConsumer>,
}

/// A stream's idempotent-producer (IDMP) state (Redis 8.6+: `XADD … IDMP`/`IDMPAUTO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamIdmp<'a> {
    /// Seconds an IID is remembered (`idmp_duration`).
    pub duration: u64,
    /// IIDs remembered per producer (`idmp_max_entries`).
    pub max_entries: u64,
    /// Producers in producer ID order: the producer ID, then its IIDs oldest first, each
    /// with the ID of the entry it added.
    pub producers: Vec<(Bytes<'a>, Vec<(Bytes<'a>, StreamId)>)>,
    /// All-time count of entries added with an IID.
    pub iids_added: u64,
    /// All-time count of duplicate IIDs caught.
    pub iids_duplicates: u64,
}

/// A stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamValue<'a> {
    /// (master ID, listpack) pairs in ID order; each listpack validated.
    pub listpacks: Vec<([u8; 16], Bytes<'a>)>,
    /// Live entries.
    pub length: u64,
    /// Last ID generated.
    pub last_id: StreamId,
    /// First live ID (7.0+).
    pub first_id: Option<StreamId>,
    /// Largest deleted ID (7.0+).
    pub max_deleted: Option<StreamId>,
    /// Entries ever added (7.0+).
    pub entries_added: Option<u64>,
    /// Consumer groups.
    pub groups: Vec<StreamGroup>,
    /// Idempotent-producer state (8.6+); `None` for a stream of an older server.
    pub idmp: Option<StreamIdmp<'a>>,
}

/// An object type (`OBJ_STRING`...), resolved from the build's numbers once per decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjType {
    /// OBJ_STRING.
    String,
    /// OBJ_LIST.
    List,
    /// OBJ_SET.
    Set,
    /// OBJ_ZSET.
    Zset,
    /// OBJ_HASH.
    Hash,
    /// OBJ_MODULE.
    Module,
    /// OBJ_STREAM.
    Stream,
}

impl ObjType {
    /// Every type, in the order a build's numbers are searched.
    pub const ALL: [ObjType; 7] = [
        ObjType::String,
        ObjType::List,
        ObjType::Set,
        ObjType::Zset,
        ObjType::Hash,
        ObjType::Module,
        ObjType::Stream,
    ];

    /// Its name as `TYPE` gives it.
    pub fn name(self) -> &'static str {
        match self {
            ObjType::String => "string",
            ObjType::List => "list",
            ObjType::Set => "set",
            ObjType::Zset => "zset",
            ObjType::Hash => "hash",
            ObjType::Module => "module",
            ObjType::Stream => "stream",
        }
    }
}

/// An object encoding (`OBJ_ENCODING_*`), resolved from the build's numbers once per
/// decoder: the numbers come from the profile, and a build lacks some (embstr before 3.0,
/// listpack before 7.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjEncoding {
    /// OBJ_ENCODING_RAW.
    Raw,
    /// OBJ_ENCODING_INT.
    Int,
    /// OBJ_ENCODING_EMBSTR.
    Embstr,
    /// OBJ_ENCODING_HT.
    Hashtable,
    /// OBJ_ENCODING_INTSET.
    Intset,
    /// OBJ_ENCODING_SKIPLIST.
    Skiplist,
    /// OBJ_ENCODING_QUICKLIST.
    Quicklist,
    /// OBJ_ENCODING_LISTPACK.
    Listpack,
    /// OBJ_ENCODING_ZIPLIST.
    Ziplist,
    /// OBJ_ENCODING_LINKEDLIST.
    Linkedlist,
    /// OBJ_ENCODING_LISTPACK_EX.
    ListpackEx,
    /// OBJ_ENCODING_STREAM.
    Stream,
}

impl ObjEncoding {
    /// Every encoding, in the order a build's numbers are searched.
    pub const ALL: [ObjEncoding; 12] = [
        ObjEncoding::Raw,
        ObjEncoding::Int,
        ObjEncoding::Embstr,
        ObjEncoding::Hashtable,
        ObjEncoding::Intset,
        ObjEncoding::Skiplist,
        ObjEncoding::Quicklist,
        ObjEncoding::Listpack,
        ObjEncoding::Ziplist,
        ObjEncoding::Linkedlist,
        ObjEncoding::ListpackEx,
        ObjEncoding::Stream,
    ];

    /// Its name as `OBJECT ENCODING` gives it.
    pub fn name(self) -> &'static str {
        match self {
            ObjEncoding::Raw => "raw",
            ObjEncoding::Int => "int",
            ObjEncoding::Embstr => "embstr",
            ObjEncoding::Hashtable => "hashtable",
            ObjEncoding::Intset => "intset",
            ObjEncoding::Skiplist => "skiplist",
            ObjEncoding::Quicklist => "quicklist",
            ObjEncoding::Listpack => "listpack",
            ObjEncoding::Ziplist => "ziplist",
            ObjEncoding::Linkedlist => "linkedlist",
            ObjEncoding::ListpackEx => "listpack_ex",
            ObjEncoding::Stream => "stream",
        }
    }
}

/// The type and encoding of a key, as Redis names them (`OBJECT ENCODING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    /// `string`, `list`, `set`, `zset`, `hash`, `stream`, `module`, or `unknown`.
    pub type_name: &'static str,
    /// `raw`, `int`, `embstr`, `quicklist`, `listpack`, `intset`, `hashtable`, `skiplist`...
    pub encoding: &'static str,
}

impl Kind {
    /// The names of a resolved type and encoding; `unknown` for a number the build does
    /// not define.
    pub fn of(ty: Option<ObjType>, enc: Option<ObjEncoding>) -> Kind {
        Kind {
            type_name: ty.map_or("unknown", ObjType::name),
            encoding: enc.map_or("unknown", ObjEncoding::name),
        }
    }
}

/// A key recovered whole.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredKey<'a> {
    /// Database number.
    pub db: u32,
    /// Key bytes.
    pub key: Bytes<'a>,
    /// Absolute expire time in Unix milliseconds, if the key has a TTL.
    pub expire_ms: Option<i64>,
    /// Type and encoding.
    pub kind: Kind,
    /// The object's `lru` bits (LRU clock or LFU data), for IDLE/FREQ.
    pub lru: u32,
    /// The value.
    pub value: Value<'a>,
}

/// Printable form of key bytes: UTF-8 text kept, other bytes as `\xNN`.
pub fn printable(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                for b in c.to_string().bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}
