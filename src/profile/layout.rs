//! A profile resolved into typed offsets: checked once, then used by the walker without
//! any lookup by name.

use super::schema::{Identity, SymbolSpec};
use crate::value::{ObjEncoding, ObjType};

mod resolve;

/// A plain field: byte offset and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Field {
    /// Byte offset in the struct.
    pub offset: u64,
    /// Size in bytes.
    pub size: u8,
}

impl Field {
    /// Read the field as an unsigned little-endian integer from the struct's bytes.
    pub fn get(&self, bytes: &[u8]) -> Option<u64> {
        let start = usize::try_from(self.offset).ok()?;
        let b = bytes.get(start..start.checked_add(usize::from(self.size))?)?;
        // Fixed widths compile to single loads: this runs several times per key.
        Some(match self.size {
            8 => u64::from_le_bytes(b.try_into().ok()?),
            4 => u64::from(u32::from_le_bytes(b.try_into().ok()?)),
            2 => u64::from(u16::from_le_bytes(b.try_into().ok()?)),
            1 => u64::from(*b.first()?),
            _ => {
                let mut v = [0u8; 8];
                v.get_mut(..b.len())?.copy_from_slice(b);
                u64::from_le_bytes(v)
            }
        })
    }

    /// Element `i` of an array field whose elements are `elem` bytes.
    pub fn element(&self, i: u64, elem: u8) -> Field {
        Field {
            offset: self.offset + i * u64::from(elem),
            size: elem,
        }
    }
}

/// A bit-field: bit position from the struct's first byte (LSB first) and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bits {
    /// Bit offset from the struct's start.
    pub bit_offset: u64,
    /// Width in bits (1..=57).
    pub width: u32,
}

impl Bits {
    /// Extract the bit-field from the struct's bytes.
    pub fn get(&self, bytes: &[u8]) -> Option<u64> {
        let byte = usize::try_from(self.bit_offset / 8).ok()?;
        let shift = (self.bit_offset % 8) as u32;
        let nbytes = (shift + self.width).div_ceil(8) as usize;
        let b = bytes.get(byte..byte.checked_add(nbytes)?)?;
        let mut v = [0u8; 8];
        v.get_mut(..b.len())?.copy_from_slice(b);
        let word = u64::from_le_bytes(v) >> shift;
        Some(word & ((1u64 << self.width) - 1))
    }
}

pub use super::features::{
    DbArrayFlavor, DictFlavor, ElementFlavor, EntryFlavor, ExpireFlavor, Features, HashFieldFlavor,
    KeyObjectFlavor, KeyspaceFlavor, QuicklistFlavor, SdsFlavor, TableFlavor, ValueFlavor,
    ZsetElementFlavor,
};

/// `redisServer` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerLayout {
    /// Struct size.
    pub size: u64,
    /// `redisDb *db`.
    pub db: Field,
    /// `int dbnum`.
    pub dbnum: Field,
    /// `int maxmemory_policy` (flags: bit 0 LRU, bit 1 LFU, from 4.0).
    pub maxmemory_policy: Option<Field>,
    /// `unsigned int lruclock` (24-bit LRU clock, seconds).
    pub lruclock: Option<Field>,
    /// `time_t unixtime` (cached wall clock, seconds; the LFU clock derives from it).
    pub unixtime: Option<Field>,
    /// `int lfu_decay_time` (minutes per LFU counter decrement, from 4.0).
    pub lfu_decay_time: Option<Field>,
    /// `dict *lua_scripts` (SHA1 → script body; up to 6.2).
    pub lua_scripts: Option<Field>,
}

/// `redisDb` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbLayout {
    /// Struct size (array stride).
    pub size: u64,
    /// `dict *dict` (keys).
    pub dict: Field,
    /// `dict *expires`.
    pub expires: Field,
    /// `int id`.
    pub id: Field,
}

/// `dict` fields. Which ones are set depends on [`DictFlavor`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DictLayout {
    /// Struct size.
    pub size: u64,
    /// `dictht ht[2]` (Dictht flavor): the array.
    pub ht: Field,
    /// `sizeof(dictht)` (Dictht flavor).
    pub dictht_size: u64,
    /// `dictht.table` (Dictht flavor).
    pub table: Field,
    /// `dictht.size` (Dictht flavor).
    pub table_size: Field,
    /// `dictht.used` (Dictht flavor).
    pub used: Field,
    /// `dictEntry **ht_table[2]`.
    pub ht_table: Field,
    /// `unsigned long ht_used[2]`.
    pub ht_used: Field,
    /// `long rehashidx`.
    pub rehashidx: Field,
    /// `signed char ht_size_exp[2]`.
    pub ht_size_exp: Field,
}

/// Old `sdshdr {len, free}` fields (LenFree flavor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SdsLayout {
    /// Header size: the string starts this many bytes after the header.
    pub header_size: u64,
    /// `len`, from the header start.
    pub len: Field,
    /// `free`, from the header start.
    pub free: Field,
}

/// `list` and `listNode` (linked lists, Absent quicklist flavor).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkedListLayout {
    /// `sizeof(list)`.
    pub size: u64,
    /// `list.head`.
    pub head: Field,
    /// `list.len`.
    pub len: Field,
    /// `sizeof(listNode)`.
    pub node_size: u64,
    /// `listNode.next`.
    pub next: Field,
    /// `listNode.value`.
    pub value: Field,
}

/// A `kvstore`: an array of per-slot tables (dicts in Redis 7.4+, hashtables in Valkey 8.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct KvstoreLayout {
    /// `sizeof(kvstore)`.
    pub size: u64,
    /// `kvstore.dicts` / `kvstore.hashtables` (array of table pointers).
    pub tables: Field,
    /// `kvstore.num_dicts` / `kvstore.num_hashtables`.
    pub count: Field,
    /// `kvstore.importing` (Valkey 9+): the set of table indices (cluster slots) being
    /// imported by atomic slot migration, a `hashtable` whose entries are the indices
    /// themselves. Absent in builds without atomic slot migration.
    pub importing: Option<Field>,
    /// `kvstore.importing_key_count` (Valkey 9+): keys held by the importing tables, kept
    /// out of `key_count`.
    pub importing_key_count: Option<Field>,
}

/// Valkey's `hashtable`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashtableLayout {
    /// `sizeof(hashtable)`.
    pub size: u64,
    /// `hashtable.rehash_idx`.
    pub rehash_idx: Field,
    /// `hashtable.tables[2]` (bucket pointers).
    pub tables: Field,
    /// `hashtable.used[2]`.
    pub used: Field,
    /// `hashtable.bucket_exp[2]` (int8 each).
    pub bucket_exp: Field,
    /// `sizeof(bucket)`.
    pub bucket_size: u64,
    /// `bucket.chained:1`.
    pub chained: Bits,
    /// `bucket.presence`.
    pub presence: Bits,
    /// `bucket.entries[]`.
    pub entries: Field,
    /// Slots per bucket (entries array size / 8).
    pub slots: u64,
}

/// Streams (5.0+): the stream, its radix trees, consumer groups, consumers, pending entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamLayout {
    /// `sizeof(stream)`.
    pub size: u64,
    /// `stream.rax` (master ID → listpack).
    pub rax: Field,
    /// `stream.length`.
    pub length: Field,
    /// `stream.last_id` (ms, then seq).
    pub last_id: u64,
    /// `stream.first_id` (7.0+).
    pub first_id: Option<u64>,
    /// `stream.max_deleted_entry_id` (7.0+).
    pub max_deleted: Option<u64>,
    /// `stream.entries_added` (7.0+).
    pub entries_added: Option<Field>,
    /// `stream.cgroups` (rax of group name → streamCG, may be NULL).
    pub cgroups: Field,
    /// `sizeof(rax)`.
    pub rax_size: u64,
    /// `rax.head`.
    pub rax_head: Field,
    /// `rax.numele`.
    pub rax_numele: Field,
    /// `rax.numnodes`.
    pub rax_numnodes: Field,
    /// `raxNode.iskey:1`.
    pub node_iskey: Bits,
    /// `raxNode.isnull:1`.
    pub node_isnull: Bits,
    /// `raxNode.iscompr:1`.
    pub node_iscompr: Bits,
    /// `raxNode.size:29`.
    pub node_size: Bits,
    /// Offset of `raxNode.data`.
    pub node_data: u64,
    /// `sizeof(streamCG)`.
    pub cg_size: u64,
    /// `streamCG.last_id`.
    pub cg_last_id: u64,
    /// `streamCG.entries_read` (7.0+).
    pub cg_entries_read: Option<Field>,
    /// `streamCG.pel`.
    pub cg_pel: Field,
    /// `streamCG.consumers`.
    pub cg_consumers: Field,
    /// `sizeof(streamConsumer)`.
    pub consumer_size: u64,
    /// `streamConsumer.seen_time`.
    pub consumer_seen_time: Field,
    /// `streamConsumer.active_time` (7.2+).
    pub consumer_active_time: Option<Field>,
    /// `streamConsumer.pel`.
    pub consumer_pel: Field,
    /// `sizeof(streamNACK)`.
    pub nack_size: u64,
    /// `streamNACK.delivery_time`.
    pub nack_delivery_time: Field,
    /// `streamNACK.delivery_count`.
    pub nack_delivery_count: Field,
    /// Idempotent-producer state (Redis 8.6+).
    pub idmp: Option<IdmpLayout>,
}

/// A stream's idempotent-producer state (Redis 8.6+): counters in the stream, a rax of
/// producer ID → `idmpProducer`, each with a list of `idmpEntry` oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdmpLayout {
    /// `stream.idmp_duration`.
    pub duration: Field,
    /// `stream.idmp_max_entries`.
    pub max_entries: Field,
    /// `stream.idmp_producers` (rax, may be NULL).
    pub producers: Field,
    /// `stream.iids_added`.
    pub iids_added: Field,
    /// `stream.iids_duplicates`.
    pub iids_duplicates: Field,
    /// `sizeof(idmpProducer)`.
    pub producer_size: u64,
    /// `idmpProducer.idmp_head`.
    pub head: Field,
    /// `sizeof(idmpEntry)` (up to its flexible `iid`).
    pub entry_size: u64,
    /// `idmpEntry.next`.
    pub next: Field,
    /// `idmpEntry.id` (ms, then seq).
    pub id: u64,
    /// `idmpEntry.iid_len`.
    pub iid_len: Field,
    /// `idmpEntry.iid` (the bytes follow the struct).
    pub iid: u64,
}

/// Functions (7.0+): the current functions library context and its libraries.
#[derive(Debug, Clone, Copy, Default)]
pub struct FunctionsLayout {
    /// `curr_functions_lib_ctx` from the profile (a static: a binary may lack it).
    pub ctx_symbol: Option<SymbolSpec>,
    /// `functionsLibCtx.libraries` (dict of name → functionLibInfo).
    pub libraries: Field,
    /// `sizeof(functionsLibCtx)`.
    pub ctx_size: u64,
    /// `functionsLibCtx.functions` (dict of name → functionInfo), when the profile has it.
    pub functions: Option<Field>,
    /// `functionsLibCtx.engines_stats` (dict of engine name → stats), when the profile has
    /// it: with `functions`, what finds the context by structure in a build without symbols.
    pub engines_stats: Option<Field>,
    /// `functionLibInfo.code` (sds).
    pub code: Field,
}

/// Module values (4.0+): `moduleValue.type` and `moduleType.id`, to name a module type.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModuleLayout {
    /// `moduleValue.type`.
    pub value_type: Field,
    /// `moduleType.id`.
    pub type_id: Field,
}

/// Hash field TTLs (Redis 7.4+): `listpackEx.lp` and the `ExpireMeta` kept before an
/// `mstr` field that carries a TTL.
#[derive(Debug, Clone, Copy, Default)]
pub struct FieldTtlLayout {
    /// `listpackEx.lp`.
    pub lp: Field,
    /// `sizeof(ExpireMeta)`.
    pub meta_size: u64,
    /// `ExpireMeta.expireTimeLo` (low 32 bits, ms).
    pub lo: Field,
    /// `ExpireMeta.expireTimeHi` (high 16 bits).
    pub hi: Field,
    /// `ExpireMeta.trash:1` (set: no TTL).
    pub trash: Bits,
}

/// Hash table elements that are the field sds itself (`hash_fields` = `entry`): which aux
/// bits of the field's sds flags byte (bit 3 + n) announce which blocks before its header.
/// These are macros, so the values come from the profile's `hash_entry` constants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashEntryLayout {
    /// Aux bit announcing an expire block (`None`: fields carry no TTL).
    pub expire_bit: Option<u8>,
    /// Bytes of the expire block (an `ExpireMeta` of 16 in Redis 8.6, an int64 in Valkey 9).
    pub expire_size: u64,
    /// Aux bit announcing a value pointer (8 bytes, right before the field's header).
    pub value_ptr_bit: u8,
    /// Aux bit saying the value pointer leads to a `stringRef {buf, len}` (a buffer shared
    /// with a module) instead of an sds (Valkey 9.1).
    pub string_ref_bit: Option<u8>,
}

/// `dictEntry` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct EntryLayout {
    /// Bytes to read per entry.
    pub size: u64,
    /// `void *key`.
    pub key: Field,
    /// The value union.
    pub v: Field,
    /// `dictEntry *next`.
    pub next: Field,
    /// `sizeof(dictEntryNoValue)` (Tagged flavor).
    pub no_value_size: u64,
    /// `dictEntryNoValue.key`.
    pub no_value_key: Field,
    /// `dictEntryNoValue.next`.
    pub no_value_next: Field,
    /// `dictType.no_value`, read through each dict's type pointer (`next_first` entries:
    /// an untagged entry has a value only in dicts whose type says `no_value == 0`).
    pub type_no_value: Bits,
    /// `dictEntryEmbedded`, the entry tagged `100` that embeds its key (`tagged` entries of
    /// builds that have the struct: Valkey 8.0's keyspace). `None`: a `100` tag is a fault.
    pub embedded: Option<EmbeddedEntryLayout>,
}

/// `dictEntryEmbedded {v, next, key_header_size, key_buf[]}`: an entry holding a copy of
/// its key sds, header included, in `key_buf`; the key sds starts `key_header_size` bytes
/// into `key_buf`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddedEntryLayout {
    /// The value union.
    pub v: Field,
    /// `dictEntry *next`.
    pub next: Field,
    /// `uint8_t key_header_size`: the embedded sds header's size.
    pub key_header_size: Field,
    /// Offset of the flexible array `key_buf` (the fixed part's size: 17).
    pub key_buf: u64,
}

/// `robj` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct RobjLayout {
    /// Struct size.
    pub size: u64,
    /// `type:4`.
    pub type_: Bits,
    /// `encoding:4`.
    pub encoding: Bits,
    /// `lru:24`.
    pub lru: Bits,
    /// `void *ptr`.
    pub ptr: Field,
    /// `int refcount`, where the profile has it (the object census of 2.8–3.2 reads it).
    pub refcount: Option<Field>,
    /// The flag saying an int64 expire follows the header (`expire` = `in_object`:
    /// Valkey 8.1 `hasexpire`, Redis 8.2 `expirable`).
    pub expire_flag: Bits,
    /// The flag saying the key is embedded after the header (`key_object` = `embedded`:
    /// Valkey 8.1 `hasembkey`, Redis 8.2 `iskvobj`).
    pub key_flag: Bits,
    /// `metabits` (`expire` = `before_object`, Redis 8.6): bit `i` set means an 8-byte
    /// metadata slot of class `i` sits before the object, class 0 being the expire.
    pub metabits: Bits,
    /// The flag saying the value is embedded and there is no `ptr` (`value` =
    /// `embedded_or_pointer`: Valkey 9.1 `hasembval`).
    pub value_flag: Bits,
}

impl RobjLayout {
    /// Bytes of the object header before any embedded data: without `ptr` when the value
    /// is embedded.
    pub fn data_start(&self, embedded_value: bool) -> u64 {
        if embedded_value {
            self.ptr.offset
        } else {
            self.size
        }
    }
}

/// `quicklist` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuicklistLayout {
    /// Struct size.
    pub size: u64,
    /// `head`.
    pub head: Field,
    /// Total element count.
    pub count: Field,
    /// Node count.
    pub len: Field,
}

/// `quicklistNode` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuicklistNodeLayout {
    /// Struct size.
    pub size: u64,
    /// `next`.
    pub next: Field,
    /// `entry` / `zl`: the node's data.
    pub entry: Field,
    /// Uncompressed size of the data.
    pub sz: Field,
    /// `count:16`.
    pub count: Bits,
    /// `encoding:2` (RAW / LZF).
    pub encoding: Bits,
    /// `container:2` (PLAIN / PACKED).
    pub container: Bits,
}

/// `quicklistLZF` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuicklistLzfLayout {
    /// Compressed size.
    pub sz: Field,
    /// Offset of the compressed bytes.
    pub compressed: u64,
}

/// `zset`, `zskiplist`, `zskiplistNode` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZsetLayout {
    /// `zset` size.
    pub size: u64,
    /// `zset.dict`.
    pub dict: Field,
    /// `zset.zsl`.
    pub zsl: Field,
    /// `zskiplist` size.
    pub list_size: u64,
    /// `zskiplist.header` (`None`: the `zskiplist` is itself the header node).
    pub header: Option<Field>,
    /// `zskiplist.length`.
    pub length: Field,
    /// Bytes of a node up to and including `level[0]`.
    pub node_size: u64,
    /// `zskiplistNode.ele` (`None`: the element is embedded, see [`ZsetLayout::span0`]).
    pub ele: Option<Field>,
    /// `level[0].span`, offset from the node: with embedded elements, its low 16 bits are
    /// the element's offset from the node.
    pub span0: Field,
    /// `zskiplistNode.score` (a double).
    pub score: Field,
    /// `level[0].forward`, offset from the node.
    pub forward0: Field,
    /// `sizeof(zskiplistLevel)`.
    pub level_size: u64,
}

/// Object type numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct TypeConsts {
    /// OBJ_STRING.
    pub string: u64,
    /// OBJ_LIST.
    pub list: u64,
    /// OBJ_SET.
    pub set: u64,
    /// OBJ_ZSET.
    pub zset: u64,
    /// OBJ_HASH.
    pub hash: u64,
    /// OBJ_MODULE.
    pub module: u64,
    /// OBJ_STREAM.
    pub stream: u64,
}

impl TypeConsts {
    /// The number of type `t` in this build (`u64::MAX` when it has none).
    pub fn number(&self, t: ObjType) -> u64 {
        match t {
            ObjType::String => self.string,
            ObjType::List => self.list,
            ObjType::Set => self.set,
            ObjType::Zset => self.zset,
            ObjType::Hash => self.hash,
            ObjType::Module => self.module,
            ObjType::Stream => self.stream,
        }
    }
}

/// Object encoding numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodingConsts {
    /// OBJ_ENCODING_RAW.
    pub raw: u64,
    /// OBJ_ENCODING_INT.
    pub int: u64,
    /// OBJ_ENCODING_HT.
    pub hashtable: u64,
    /// OBJ_ENCODING_INTSET.
    pub intset: u64,
    /// OBJ_ENCODING_ZIPLIST.
    pub ziplist: u64,
    /// OBJ_ENCODING_LINKEDLIST.
    pub linkedlist: u64,
    /// OBJ_ENCODING_SKIPLIST.
    pub skiplist: u64,
    /// OBJ_ENCODING_EMBSTR.
    pub embstr: u64,
    /// OBJ_ENCODING_QUICKLIST.
    pub quicklist: u64,
    /// OBJ_ENCODING_LISTPACK.
    pub listpack: u64,
    /// OBJ_ENCODING_LISTPACK_EX (Redis 7.4+: hash listpack with field TTLs).
    pub listpack_ex: u64,
    /// OBJ_ENCODING_STREAM.
    pub stream: u64,
}

impl EncodingConsts {
    /// The number of encoding `e` in this build (`u64::MAX` when it has none).
    pub fn number(&self, e: ObjEncoding) -> u64 {
        match e {
            ObjEncoding::Raw => self.raw,
            ObjEncoding::Int => self.int,
            ObjEncoding::Embstr => self.embstr,
            ObjEncoding::Hashtable => self.hashtable,
            ObjEncoding::Intset => self.intset,
            ObjEncoding::Skiplist => self.skiplist,
            ObjEncoding::Quicklist => self.quicklist,
            ObjEncoding::Listpack => self.listpack,
            ObjEncoding::Ziplist => self.ziplist,
            ObjEncoding::Linkedlist => self.linkedlist,
            ObjEncoding::ListpackEx => self.listpack_ex,
            ObjEncoding::Stream => self.stream,
        }
    }
}

/// quicklistNode encoding/container values.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuicklistConsts {
    /// QUICKLIST_NODE_ENCODING_RAW.
    pub encoding_raw: u64,
    /// QUICKLIST_NODE_ENCODING_LZF.
    pub encoding_lzf: u64,
    /// QUICKLIST_NODE_CONTAINER_PLAIN.
    pub container_plain: u64,
    /// QUICKLIST_NODE_CONTAINER_PACKED.
    pub container_packed: u64,
}

/// A profile resolved into everything the walker needs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Profile name.
    pub name: String,
    /// Build identity.
    pub identity: Identity,
    /// The global `server`, when the profile records symbols for its build.
    pub server_symbol: Option<SymbolSpec>,
    /// Feature selection.
    pub features: Features,
    /// `redisServer`.
    pub server: ServerLayout,
    /// `redisDb`.
    pub db: DbLayout,
    /// `dict`.
    pub dict: DictLayout,
    /// `dictEntry`.
    pub entry: EntryLayout,
    /// Old sds header.
    pub sds: SdsLayout,
    /// Linked lists.
    pub linked_list: LinkedListLayout,
    /// Valkey hashtables.
    pub hashtable: HashtableLayout,
    /// kvstore (Redis 7.4+, Valkey 8.1).
    pub kvstore: KvstoreLayout,
    /// Streams, when the build has them.
    pub stream: Option<StreamLayout>,
    /// Functions, when the build has them.
    pub functions: Option<FunctionsLayout>,
    /// Module values, when the build has them.
    pub modules: Option<ModuleLayout>,
    /// Hash field TTLs, when the build has them.
    pub field_ttl: Option<FieldTtlLayout>,
    /// Hash elements that are field sds strings (`hash_fields` = `entry`).
    pub hash_entry: Option<HashEntryLayout>,
    /// `robj`.
    pub robj: RobjLayout,
    /// `quicklist`.
    pub quicklist: QuicklistLayout,
    /// `quicklistNode`.
    pub ql_node: QuicklistNodeLayout,
    /// `quicklistLZF`.
    pub ql_lzf: QuicklistLzfLayout,
    /// zset structs.
    pub zset: ZsetLayout,
    /// Object types.
    pub types: TypeConsts,
    /// Object encodings.
    pub enc: EncodingConsts,
    /// quicklist node values.
    pub ql: QuicklistConsts,
}

impl Layout {
    /// Whether the walk counts the holders of string objects against their `refcount`
    /// (the object census): the build's collections keep their elements as objects (2.8
    /// to 3.2) and the profile locates the `refcount`.
    pub fn counts_object_holders(&self) -> bool {
        self.features.elements == ElementFlavor::Robj && self.robj.refcount.is_some()
    }
}

#[cfg(test)]
mod tests;
