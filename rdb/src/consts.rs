//! RDB object type bytes, opcodes and the RDB versions that exist.
//!
//! The version numbers do not form one line. Redis numbered its formats 1 to 13 (13 is
//! Redis 8.6). Valkey forked at RDB 11 (Redis 7.2) and numbers its own formats from 80
//! (Valkey 9.0): RDB 80 is RDB 11 plus [`ValueType::Hash2`] and Valkey's opcodes, and it
//! has none of what Redis added in 12 and 13. Versions 14 to 79 do not exist (Valkey
//! reserves 12 to 79 for foreign formats). So "can version V hold X" is a question for
//! [`ValueType::fits`] or [`has_redis_feature`], never a comparison of numbers.

/// Highest Redis RDB version (Redis 8.6); Redis's versions are 1 to this.
pub const RDB_VERSION_REDIS_MAX: u32 = 13;

/// Valkey 9's RDB version (files start with `VALKEY080`).
pub const RDB_VERSION_VALKEY_9: u32 = 80;

/// The Redis RDB version Valkey's formats descend from (Redis 7.2, Valkey 7.2 to 8.1).
pub const RDB_VERSION_VALKEY_BASE: u32 = 11;

/// Every RDB version this crate reads and writes, in increasing order: Redis's 1 to 13
/// and Valkey 9's 80.
pub const RDB_VERSIONS: [u32; 14] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 80];

/// Whether RDB `version` exists (and so is one this crate reads and writes).
pub fn is_known_version(version: u32) -> bool {
    RDB_VERSIONS.contains(&version)
}

/// The 9-byte magic of an RDB `version` file, as its server writes it: `VALKEY` and three
/// digits above 79 (Valkey's own formats), else `REDIS` and four digits. `None` for a
/// version that does not exist.
pub fn magic(version: u32) -> Option<[u8; 9]> {
    if !is_known_version(version) {
        return None;
    }
    let text = if version > 79 {
        format!("VALKEY{version:03}")
    } else {
        format!("REDIS{version:04}")
    };
    text.into_bytes().try_into().ok()
}

/// Whether a loader whose own RDB version is `loader` (what its server writes) reads a file
/// or DUMP payload of RDB `version`: Redis's up to its own; Valkey 9's (80) up to 11 and 80,
/// since RDB 80 descends from 11 and has none of Redis's 12 and 13.
pub fn loader_accepts(loader: u32, version: u32) -> bool {
    if !is_known_version(loader) || !is_known_version(version) {
        return false;
    }
    if loader == RDB_VERSION_VALKEY_9 {
        version <= RDB_VERSION_VALKEY_BASE || version == RDB_VERSION_VALKEY_9
    } else {
        version <= loader
    }
}

/// Whether a loader of RDB `version` has what Redis introduced in RDB `since` (an opcode,
/// an object type): Redis's versions have everything up to their own number, Valkey 9's
/// RDB 80 has everything up to RDB 11 (and nothing of 12 or 13). False for a version that
/// does not exist.
pub fn has_redis_feature(version: u32, since: u32) -> bool {
    let base = match version {
        1..=RDB_VERSION_REDIS_MAX => version,
        RDB_VERSION_VALKEY_9 => RDB_VERSION_VALKEY_BASE,
        _ => return false,
    };
    base >= since
}

/// The versions among [`RDB_VERSIONS`] for which `pred` holds, as text: `"12, 13"`,
/// `"6 to 13, 80"`, `"none"`.
pub fn describe_versions(pred: impl Fn(u32) -> bool) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for v in RDB_VERSIONS.into_iter().filter(|&v| pred(v)) {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == v => *end = v,
            _ => runs.push((v, v)),
        }
    }
    if runs.is_empty() {
        return "none".into();
    }
    runs.iter()
        .map(|&(a, b)| match b - a {
            0 => a.to_string(),
            1 => format!("{a}, {b}"),
            _ => format!("{a} to {b}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

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
/// Opcode: cluster slot info (slot, size, expires size: three lengths). Redis RDB >= 12;
/// Valkey 9 (RDB 80) reads it as a foreign size hint and skips it. Read, never written.
pub const SLOT_INFO: u8 = 0xF4;
/// Opcode: module key metadata of the next key (Redis 8.6, RDB 13 only): a length `n`, then
/// `n` times a 4-byte class spec and module-serialized data ending with the module EOF.
/// Read (and skipped) by the reader, never written: it needs the module to mean anything.
pub const KEY_META: u8 = 0xF3;
/// Opcode: an atomic slot migration's import state (Valkey 9, RDB 80 only; the same byte
/// as [`KEY_META`]): the job name (a string), a count `n`, then `n` slot ranges (start and
/// end slot, two lengths each). Valkey writes it in cluster mode while a slot import is
/// under way. Read (and skipped) by the reader, never written.
pub const SLOT_IMPORT: u8 = 0xF3;

/// Minimum RDB version for [`EXPIRETIME_MS`].
pub const MIN_VERSION_EXPIRETIME_MS: u32 = 6;
/// Minimum RDB version for [`AUX`] and [`RESIZEDB`].
pub const MIN_VERSION_AUX: u32 = 7;
/// Minimum RDB version for [`IDLE`] and [`FREQ`].
pub const MIN_VERSION_IDLE_FREQ: u32 = 9;
/// Minimum RDB version for [`FUNCTION2`].
pub const MIN_VERSION_FUNCTION2: u32 = 10;
/// The Redis RDB version that introduced [`KEY_META`]. Before it, byte 243 is no opcode;
/// Valkey's RDB 80 uses it for [`SLOT_IMPORT`].
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
    /// Hash with per-field TTLs, Valkey's format (Valkey 9, RDB 80 only): length, then per
    /// field the field and value strings and the expire time in Unix ms as an int64
    /// little-endian, -1 for a field without TTL.
    Hash2 = 22,
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
    pub const ALL: [ValueType; 24] = [
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
        ValueType::Hash2,
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

    /// Whether a loader of RDB `version` understands this type. Redis's types exist from
    /// the version that introduced them on, in Redis's versions, and in Valkey 9's RDB 80
    /// when Redis had them by RDB 11; [`ValueType::Hash2`] exists only in RDB 80. False for
    /// a version that does not exist.
    pub fn fits(self, version: u32) -> bool {
        match self.redis_since() {
            Some(since) => has_redis_feature(version, since),
            None => version == RDB_VERSION_VALKEY_9,
        }
    }

    /// The RDB versions that hold this type, as text ("10 to 13, 80"), for messages.
    pub fn versions(self) -> String {
        describe_versions(|v| self.fits(v))
    }

    /// The Redis RDB version that introduced this type; `None` for Valkey's own.
    fn redis_since(self) -> Option<u32> {
        Some(match self {
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
            ValueType::Hash2 => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        // RecordBuilder::check_version names the first unfit type by code order: ALL
        // must list them so, as its messages did before.
        assert!(ValueType::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
        for t in ValueType::ALL {
            assert_eq!(ValueType::from_code(t.code()), Some(t));
            assert!(RDB_VERSIONS.iter().any(|&v| t.fits(v)), "{t:?}");
        }
        for missing in [6u8, 8, 23, 27, 0xF3, 0xFF] {
            assert_eq!(ValueType::from_code(missing), None);
        }
        assert_eq!(ValueType::Zset2.code(), 5);
        assert_eq!(ValueType::Hash2.code(), 22);
        assert_eq!(ValueType::HashListpackEx.code(), 25);
        assert_eq!(ValueType::StreamListpacks4.code(), 26);
    }

    /// The first Redis version of each type, as the format's history gives it.
    const FIRST: [(ValueType, u32); 23] = [
        (ValueType::String, 1),
        (ValueType::List, 1),
        (ValueType::Set, 1),
        (ValueType::Zset, 1),
        (ValueType::Hash, 1),
        (ValueType::HashZipmap, 2),
        (ValueType::ListZiplist, 2),
        (ValueType::SetIntset, 2),
        (ValueType::ZsetZiplist, 2),
        (ValueType::HashZiplist, 6),
        (ValueType::ListQuicklist, 7),
        (ValueType::Zset2, 8),
        (ValueType::Module2, 8),
        (ValueType::StreamListpacks, 9),
        (ValueType::HashListpack, 10),
        (ValueType::ZsetListpack, 10),
        (ValueType::ListQuicklist2, 10),
        (ValueType::StreamListpacks2, 10),
        (ValueType::SetListpack, 11),
        (ValueType::StreamListpacks3, 11),
        (ValueType::HashMetadata, 12),
        (ValueType::HashListpackEx, 12),
        (ValueType::StreamListpacks4, 13),
    ];

    #[test]
    fn redis_versions_are_a_line() {
        // In 1..=13 a type fits from its first version on, exactly as before RDB 80.
        for (t, first) in FIRST {
            for v in 1..=RDB_VERSION_REDIS_MAX {
                assert_eq!(t.fits(v), v >= first, "{t:?} in RDB {v}");
            }
        }
        for v in 1..=RDB_VERSION_REDIS_MAX {
            assert!(!ValueType::Hash2.fits(v), "type 22 in RDB {v}");
        }
    }

    #[test]
    fn rdb_80_is_rdb_11_plus_hash_2() {
        for (t, first) in FIRST {
            assert_eq!(t.fits(80), first <= 11, "{t:?}");
        }
        assert!(ValueType::Hash2.fits(80));
        assert_eq!(ValueType::Hash2.versions(), "80");
        assert_eq!(ValueType::HashMetadata.versions(), "12, 13");
        assert_eq!(ValueType::StreamListpacks4.versions(), "13");
        assert_eq!(ValueType::SetListpack.versions(), "11 to 13, 80");
        assert_eq!(ValueType::String.versions(), "1 to 13, 80");
    }

    #[test]
    fn versions_that_do_not_exist_hold_nothing() {
        for v in [0, 14, 15, 79, 81, 99, 100, u32::MAX] {
            assert!(!is_known_version(v), "{v}");
            assert_eq!(magic(v), None);
            assert!(!has_redis_feature(v, 1));
            assert!(ValueType::ALL.iter().all(|t| !t.fits(v)), "{v}");
        }
        for v in RDB_VERSIONS {
            assert!(is_known_version(v));
            assert!(ValueType::String.fits(v));
        }
    }

    #[test]
    fn magics() {
        assert_eq!(magic(1), Some(*b"REDIS0001"));
        assert_eq!(magic(11), Some(*b"REDIS0011"));
        assert_eq!(magic(13), Some(*b"REDIS0013"));
        assert_eq!(magic(80), Some(*b"VALKEY080"));
    }

    #[test]
    fn features_by_lineage() {
        // AUX (7), IDLE/FREQ (9), FUNCTION2 (10) are in RDB 80; KEY_META (13) is not.
        for since in [6, 7, 9, 10, 11] {
            assert!(has_redis_feature(80, since));
        }
        assert!(!has_redis_feature(80, 12));
        assert!(!has_redis_feature(80, MIN_VERSION_KEY_META));
        assert!(has_redis_feature(13, MIN_VERSION_KEY_META));
        assert!(!has_redis_feature(12, MIN_VERSION_KEY_META));
        assert_eq!(describe_versions(|_| false), "none");
        assert!(loader_accepts(10, 9) && loader_accepts(13, 13) && !loader_accepts(10, 11));
        assert!(loader_accepts(80, 11) && loader_accepts(80, 80) && !loader_accepts(80, 12));
        assert!(!loader_accepts(13, 80) && !loader_accepts(14, 1) && !loader_accepts(10, 0));
        assert_eq!(describe_versions(|v| v == 3 || v == 5), "3, 5");
    }
}
