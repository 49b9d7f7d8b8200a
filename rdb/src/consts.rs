//! RDB object type bytes, opcodes and version limits.

/// Highest RDB version this crate writes and reads (Redis 8.6).
pub const RDB_VERSION_MAX: u32 = 13;

/// First RDB version with the 8-byte CRC-64 trailer after EOF.
pub const RDB_VERSION_CHECKSUM: u32 = 5;

/// Opcode: end of file (followed by the checksum when RDB >= 5).
pub const EOF: u8 = 0xFF;
/// Opcode: switch database; a length-encoded db number follows.
pub const SELECTDB: u8 = 0xFE;
/// Opcode: expire time in seconds (int32 LE). Read-only legacy, never written
/// by Redis since 2.6; listed for completeness.
pub const EXPIRETIME: u8 = 0xFD;
/// Opcode: absolute expire time of the next key in Unix ms (int64 LE). RDB >= 6.
pub const EXPIRETIME_MS: u8 = 0xFC;
/// Opcode: hash table size hints for the current db (two lengths). RDB >= 7.
pub const RESIZEDB: u8 = 0xFB;
/// Opcode: auxiliary field (two strings). RDB >= 7.
pub const AUX: u8 = 0xFA;
/// Opcode: LFU counter of the next key (one byte). RDB >= 9.
pub const FREQ: u8 = 0xF9;
/// Opcode: LRU idle seconds of the next key (a length). RDB >= 9.
pub const IDLE: u8 = 0xF8;
/// Opcode: module auxiliary data. RDB >= 9.
pub const MODULE_AUX: u8 = 0xF7;
/// Opcode: one function library's source code (a string). RDB >= 10.
pub const FUNCTION2: u8 = 0xF5;
/// Opcode: cluster slot info (slot, size, expires size). RDB >= 12.
pub const SLOT_INFO: u8 = 0xF4;
/// Opcode: module key metadata of the next key (Redis 8.6, RDB >= 13): a length `n`, then
/// `n` times a 4-byte class spec and module-serialized data ending with the module EOF.
/// Read (and skipped) by the reader, never written: it needs the module to mean anything.
pub const KEY_META: u8 = 0xF3;

/// Minimum RDB version for [`EXPIRETIME_MS`].
pub const MIN_VERSION_EXPIRETIME_MS: u32 = 6;
/// Minimum RDB version for [`AUX`] and [`RESIZEDB`].
pub const MIN_VERSION_AUX: u32 = 7;
/// Minimum RDB version for [`IDLE`] and [`FREQ`].
pub const MIN_VERSION_IDLE_FREQ: u32 = 9;
/// Minimum RDB version for [`FUNCTION2`].
pub const MIN_VERSION_FUNCTION2: u32 = 10;
/// Minimum RDB version for [`KEY_META`]. Before it, byte 243 is no opcode (Valkey's
/// RDB 80 uses it for something else).
pub const MIN_VERSION_KEY_META: u32 = 13;

/// Smallest stream IDMP duration (seconds) Redis 8.6 loads.
pub const STREAM_IDMP_DURATION_MIN: u64 = 1;
/// Largest stream IDMP duration (seconds) Redis 8.6 loads; `XCFGSET` refuses more too.
pub const STREAM_IDMP_DURATION_MAX: u64 = 86_400;
/// Smallest number of IIDs per producer (IDMP max entries) Redis 8.6 loads.
pub const STREAM_IDMP_MAX_ENTRIES_MIN: u64 = 1;
/// Largest number of IIDs per producer (IDMP max entries) Redis 8.6 loads.
pub const STREAM_IDMP_MAX_ENTRIES_MAX: u64 = 10_000;
/// Redis 8.6's default IDMP duration (`stream-idmp-duration`), what a new stream gets.
pub const STREAM_IDMP_DURATION_DEFAULT: u64 = 100;
/// Redis 8.6's default IDMP max entries (`stream-idmp-maxsize`), what a new stream gets.
pub const STREAM_IDMP_MAX_ENTRIES_DEFAULT: u64 = 100;

/// RDB object type byte written before a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueType {
    /// A string.
    String = 0,
    /// Length, then that many element strings.
    List = 1,
    /// Length, then that many member strings.
    Set = 2,
    /// Length, then (member string, score as string double) pairs.
    Zset = 3,
    /// Length, then (field, value) string pairs.
    Hash = 4,
    /// Length, then (member string, score as binary double) pairs.
    Zset2 = 5,
    /// Module value, second format.
    Module2 = 7,
    /// A string holding a zipmap.
    HashZipmap = 9,
    /// A string holding a ziplist.
    ListZiplist = 10,
    /// A string holding an intset.
    SetIntset = 11,
    /// A string holding a ziplist of member, score.
    ZsetZiplist = 12,
    /// A string holding a ziplist of field, value.
    HashZiplist = 13,
    /// Node count, then each node as a string holding a ziplist.
    ListQuicklist = 14,
    /// Stream, first format.
    StreamListpacks = 15,
    /// A string holding a listpack of field, value.
    HashListpack = 16,
    /// A string holding a listpack of member, score.
    ZsetListpack = 17,
    /// Node count, then per node a container kind and a string.
    ListQuicklist2 = 18,
    /// Stream, second format.
    StreamListpacks2 = 19,
    /// A string holding a listpack of members.
    SetListpack = 20,
    /// Stream, third format.
    StreamListpacks3 = 21,
    /// Hash table hash with per-field TTLs (Redis 7.4+).
    HashMetadata = 24,
    /// Listpack hash with per-field TTLs (Redis 7.4+).
    HashListpackEx = 25,
    /// Stream, fourth format (Redis 8.6+): the third format followed by the stream's
    /// idempotent-producer (IDMP) state.
    StreamListpacks4 = 26,
}

impl ValueType {
    /// Every type, in code order.
    pub const ALL: [ValueType; 23] = [
        ValueType::String,
        ValueType::List,
        ValueType::Set,
        ValueType::Zset,
        ValueType::Hash,
        ValueType::Zset2,
        ValueType::Module2,
        ValueType::HashZipmap,
        ValueType::ListZiplist,
        ValueType::SetIntset,
        ValueType::ZsetZiplist,
        ValueType::HashZiplist,
        ValueType::ListQuicklist,
        ValueType::StreamListpacks,
        ValueType::HashListpack,
        ValueType::ZsetListpack,
        ValueType::ListQuicklist2,
        ValueType::StreamListpacks2,
        ValueType::SetListpack,
        ValueType::StreamListpacks3,
        ValueType::HashMetadata,
        ValueType::HashListpackEx,
        ValueType::StreamListpacks4,
    ];

    /// The type byte as it appears in the file.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The type for a type byte, if it is one this crate knows.
    pub fn from_code(code: u8) -> Option<ValueType> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The first RDB version whose loader understands this type.
    pub fn min_rdb_version(self) -> u32 {
        match self {
            ValueType::String
            | ValueType::List
            | ValueType::Set
            | ValueType::Zset
            | ValueType::Hash => 1,
            ValueType::HashZipmap
            | ValueType::ListZiplist
            | ValueType::SetIntset
            | ValueType::ZsetZiplist => 2,
            ValueType::HashZiplist => 6,
            ValueType::ListQuicklist => 7,
            ValueType::Zset2 | ValueType::Module2 => 8,
            ValueType::StreamListpacks => 9,
            ValueType::HashListpack
            | ValueType::ZsetListpack
            | ValueType::ListQuicklist2
            | ValueType::StreamListpacks2 => 10,
            ValueType::SetListpack | ValueType::StreamListpacks3 => 11,
            ValueType::HashMetadata | ValueType::HashListpackEx => 12,
            ValueType::StreamListpacks4 => 13,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for t in ValueType::ALL {
            assert_eq!(ValueType::from_code(t.code()), Some(t));
            assert!(t.min_rdb_version() >= 1 && t.min_rdb_version() <= RDB_VERSION_MAX);
        }
        for missing in [6u8, 8, 22, 23, 27, 0xF3, 0xFF] {
            assert_eq!(ValueType::from_code(missing), None);
        }
        assert_eq!(ValueType::Zset2.code(), 5);
        assert_eq!(ValueType::HashListpackEx.code(), 25);
        assert_eq!(ValueType::ListQuicklist2.min_rdb_version(), 10);
        assert_eq!(ValueType::SetListpack.min_rdb_version(), 11);
        assert_eq!(ValueType::StreamListpacks4.code(), 26);
        assert_eq!(ValueType::StreamListpacks4.min_rdb_version(), 13);
    }
}
