//! Streaming RDB reader: one key at a time, with the CRC-64 trailer checked at the end.
//!
//! [`RdbReader`] parses any RDB file of Redis's versions 1 to 13 (`REDIS0001` to
//! `REDIS0013`) and of Valkey 9's version 80 (`VALKEY080`) from an [`std::io::Read`] (it
//! buffers internally): the header, `AUX` fields, `SELECTDB`, `RESIZEDB`, expire times,
//! `IDLE` and `FREQ`, functions, module aux data, module key metadata (`KEY_META`, 8.6+) and
//! Valkey's slot import state (`SLOT_IMPORT`, RDB 80) — both skipped and counted — and every
//! value type Redis and Valkey write — plain and compact encodings (ziplist, listpack,
//! intset, zipmap, quicklists), LZF-compressed strings, streams with their consumer groups
//! and idempotent-producer state (8.6+), hashes with field TTLs (Redis 7.4+ types 24 and 25,
//! Valkey 9's type 22), and module values (skipped, their type name kept).
//!
//! As Valkey's loader does, the reader takes the `VALKEY` magic only with version 80 and the
//! `REDIS` magic only with versions up to 13, and it reads the object types and opcodes each
//! version has: type 22 only in RDB 80, types 24 to 26 never in it, byte 243 as `KEY_META`
//! in RDB 13 and as `SLOT_IMPORT` in RDB 80. Each key comes out as an [`Entry`] with its value
//! decoded into an [`RdbValue`], so memory is bounded by the largest key, not the file.
//!
//! The reader never panics and never trusts a length before the data is there: a corrupt
//! length makes it fail with [`ReadError::Truncated`] or [`ReadError::Corrupt`], after
//! allocating at most about a megabyte ahead of the bytes actually read. After the `EOF`
//! opcode it compares the trailer with the CRC-64 of everything before it; a stored checksum
//! of 0 means "disabled" (as every Redis loader takes it).
//!
//! ```
//! use rdb::reader::{RdbReader, RdbValue};
//! use rdb::{RdbWriter, RecordBuilder, ValueType};
//!
//! let mut w = RdbWriter::new(Vec::new(), 10)?;
//! w.select_db(2)?;
//! let mut rec = RecordBuilder::new(true);
//! rec.expire_ms(1_700_000_000_000);
//! rec.value_type(ValueType::String);
//! rec.key(b"greeting");
//! rec.string(b"hello");
//! w.record(&rec)?;
//! let file = w.finish()?;
//!
//! let mut r = RdbReader::new(&file[..]).expect("header");
//! let e = r.next_entry().expect("valid").expect("one key");
//! assert_eq!((e.db, &e.key[..], e.expire_ms), (2, &b"greeting"[..], Some(1_700_000_000_000)));
//! assert_eq!(e.value, RdbValue::String(b"hello".to_vec()));
//! assert!(r.next_entry().expect("valid").is_none());
//! assert!(r.checksum().is_some());
//! # Ok::<(), rdb::RdbError>(())
//! ```

mod input;
mod payload;
mod stream;
mod value;

use std::io::Read;

use crate::consts::{
    describe_versions, has_redis_feature, is_known_version, AUX, EOF, EXPIRETIME, EXPIRETIME_MS,
    FREQ, FUNCTION2, IDLE, KEY_META, MIN_VERSION_KEY_META, MODULE_AUX, RDB_VERSION_CHECKSUM,
    RDB_VERSION_VALKEY_9, RESIZEDB, SELECTDB, SLOT_IMPORT, SLOT_INFO,
};
use crate::decode::lzf;
use input::Input;
use value::{module_name, parse_score, BlobError};

pub use payload::{read_payload, Payload};
pub use stream::{
    Stream, StreamConsumer, StreamEntry, StreamGroup, StreamId, StreamIdmp, StreamIid,
    StreamPending, StreamProducer,
};

/// Initial capacity of a collection whose length comes from the file: never more than this
/// until the elements are really there.
const MAX_PREALLOC: usize = 1024;
/// AUX fields kept (a file may carry many `lua` scripts; they are parsed, not kept).
const MAX_AUX_KEPT: usize = 64;
/// AUX values longer than this are not kept.
const MAX_AUX_VALUE: usize = 4096;

/// Opcode of the pre-GA function format of 7.0 release candidates (unsupported).
const FUNCTION_PRE_GA: u8 = 0xF6;
/// Most metadata classes one key can carry (classes 1 to 7 belong to modules); Redis 8.6's
/// loader refuses more.
const KEY_META_MAX_CLASSES: u64 = 7;

/// What can go wrong while reading an RDB file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The underlying reader failed.
    #[error("I/O error at offset {offset}: {source}")]
    Io {
        /// File offset of the failed read.
        offset: u64,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not start with `REDIS` and four digits or `VALKEY` and three.
    #[error("not an RDB file (no REDIS or VALKEY magic and version at the start)")]
    NotRdb,
    /// The version does not exist (14 to 79, above 80, 0).
    #[error("unsupported RDB version {0} (the versions are {known}: REDIS0001 to REDIS0013, VALKEY080)", known = describe_versions(is_known_version))]
    BadVersion(u32),
    /// A version under the other vendor's magic (`REDIS0080`, `VALKEY011`): Valkey's loader
    /// takes `VALKEY` only above 79 and `REDIS` only below 80, and so does this reader.
    #[error("RDB version {version} under the {magic} magic: {expected}")]
    MagicMismatch {
        /// The magic found, `REDIS` or `VALKEY`.
        magic: &'static str,
        /// The version after it.
        version: u32,
        /// What a file of that version starts with.
        expected: &'static str,
    },
    /// The file ends in the middle of something.
    #[error("file truncated at offset {offset}: it ends inside {what}")]
    Truncated {
        /// Length of the file (where more was needed).
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// The bytes do not form a valid RDB.
    #[error("corrupt RDB at offset {offset}: {what}")]
    Corrupt {
        /// File offset of the opcode or record at fault.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// Valid RDB this reader does not handle.
    #[error("unsupported at offset {offset}: {what}")]
    Unsupported {
        /// File offset of the opcode or record.
        offset: u64,
        /// What it is.
        what: String,
    },
    /// The CRC-64 trailer differs from the checksum of the file's bytes.
    #[error("checksum mismatch: the trailer says {stored:#018x}, the file's bytes give {computed:#018x}")]
    Checksum {
        /// The trailer's value.
        stored: u64,
        /// CRC-64 of every byte from the magic through `EOF`.
        computed: u64,
    },
}

/// Outcome of the trailer check, known once the reader has passed `EOF`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// The trailer matched this CRC-64.
    Verified(u64),
    /// The trailer is 0: the writer had checksums disabled.
    Disabled,
    /// RDB versions below 5 have no trailer.
    Absent,
}

/// One key as stored in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Database number (from the last `SELECTDB`, 0 before any).
    pub db: u32,
    /// The key.
    pub key: Vec<u8>,
    /// Absolute expire time in Unix milliseconds, if any.
    pub expire_ms: Option<i64>,
    /// LRU idle seconds (`IDLE` opcode), if present.
    pub idle: Option<u64>,
    /// LFU counter (`FREQ` opcode), if present.
    pub freq: Option<u8>,
    /// The object type byte the value was stored with.
    pub rdb_type: u8,
    /// The decoded value.
    pub value: RdbValue,
}

/// A hash field with its own expire time (Redis 7.4+ and Valkey 9 hash field TTLs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashField {
    /// Field name.
    pub field: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Absolute expire time in Unix ms, or `None` for a field without TTL.
    pub expire_ms: Option<i64>,
}

/// A module value: only its type is known, its data is module-defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleValue {
    /// The module type name (9 characters, what `TYPE` prints).
    pub type_name: String,
    /// The module type's encoding version.
    pub encver: u32,
}

/// A decoded value, whatever encoding it was stored in.
#[derive(Clone, Debug, PartialEq)]
pub enum RdbValue {
    /// A string (integers as their decimal text).
    String(Vec<u8>),
    /// List elements in order.
    List(Vec<Vec<u8>>),
    /// Set members, in file order.
    Set(Vec<Vec<u8>>),
    /// Sorted set members with their scores, in file order.
    Zset(Vec<(Vec<u8>, f64)>),
    /// Hash fields and values, in file order.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// A hash some of whose fields have their own TTL (RDB types 24 and 25, Valkey's 22).
    HashWithTtl(Vec<HashField>),
    /// A stream with its consumer groups.
    Stream(Box<Stream>),
    /// A module value (skipped).
    Module(ModuleValue),
}

impl RdbValue {
    /// The type name `TYPE` returns for this value.
    pub fn type_name(&self) -> &str {
        match self {
            RdbValue::String(_) => "string",
            RdbValue::List(_) => "list",
            RdbValue::Set(_) => "set",
            RdbValue::Zset(_) => "zset",
            RdbValue::Hash(_) | RdbValue::HashWithTtl(_) => "hash",
            RdbValue::Stream(_) => "stream",
            RdbValue::Module(m) => &m.type_name,
        }
    }

    /// Number of elements (1 for a string or module value, entries for a stream).
    pub fn len(&self) -> usize {
        match self {
            RdbValue::String(_) | RdbValue::Module(_) => 1,
            RdbValue::List(v) | RdbValue::Set(v) => v.len(),
            RdbValue::Zset(v) => v.len(),
            RdbValue::Hash(v) => v.len(),
            RdbValue::HashWithTtl(v) => v.len(),
            RdbValue::Stream(s) => s.entries.len(),
        }
    }

    /// True for a collection without elements.
    pub fn is_empty(&self) -> bool {
        match self {
            RdbValue::String(_) | RdbValue::Module(_) => false,
            _ => self.len() == 0,
        }
    }

    /// Approximate heap bytes the value holds (for batching by size).
    pub fn weight(&self) -> usize {
        const PER_ITEM: usize = 24;
        match self {
            RdbValue::String(s) => s.len(),
            RdbValue::List(v) | RdbValue::Set(v) => v.iter().map(|e| e.len() + PER_ITEM).sum(),
            RdbValue::Zset(v) => v.iter().map(|(m, _)| m.len() + PER_ITEM + 8).sum(),
            RdbValue::Hash(v) => v
                .iter()
                .map(|(f, x)| f.len() + x.len() + 2 * PER_ITEM)
                .sum(),
            RdbValue::HashWithTtl(v) => v
                .iter()
                .map(|h| h.field.len() + h.value.len() + 2 * PER_ITEM + 8)
                .sum(),
            RdbValue::Stream(s) => s.weight(),
            RdbValue::Module(_) => PER_ITEM,
        }
    }
}

/// Streaming reader of an RDB file; see the [module docs](self).
#[derive(Debug)]
pub struct RdbReader<R> {
    input: Input<R>,
    version: u32,
    db: u32,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    functions: u64,
    resize_hints: Vec<(u32, u64, u64)>,
    checksum: Option<Checksum>,
    /// Set after EOF or an error: no more entries.
    done: bool,
    keys: u64,
    key_meta_skipped: u64,
    slot_imports_skipped: u64,
}

impl<R: Read> RdbReader<R> {
    /// Reads and checks the header: `REDIS` and a four-digit version 1..=13, or `VALKEY`
    /// and a three-digit version 80.
    pub fn new(inner: R) -> Result<Self, ReadError> {
        let mut input = Input::new(inner);
        let magic: [u8; 9] = input.array("the header").map_err(|e| match e {
            ReadError::Truncated { .. } => ReadError::NotRdb,
            other => other,
        })?;
        let (valkey, digits) = if let Some(d) = magic.strip_prefix(b"REDIS") {
            (false, d)
        } else if let Some(d) = magic.strip_prefix(b"VALKEY") {
            (true, d)
        } else {
            return Err(ReadError::NotRdb);
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(ReadError::NotRdb);
        }
        let version = digits
            .iter()
            .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        // Valkey's `rdbIsVersionAccepted`: VALKEY needs > 79, REDIS needs <= 79.
        match (valkey, version > 79) {
            (true, false) => {
                return Err(ReadError::MagicMismatch {
                    magic: "VALKEY",
                    version,
                    expected:
                        "VALKEY files are of version 80 and up; a version below 80 is a REDIS file",
                })
            }
            (false, true) => {
                return Err(ReadError::MagicMismatch {
                    magic: "REDIS",
                    version,
                    expected:
                        "versions from 80 on are Valkey's, in VALKEY files (RDB 80 is VALKEY080)",
                })
            }
            _ => {}
        }
        if !is_known_version(version) {
            return Err(ReadError::BadVersion(version));
        }
        Ok(Self::with_input(input, version))
    }

    /// A reader of RDB `version` at the start of `input` (past any header).
    fn with_input(input: Input<R>, version: u32) -> Self {
        RdbReader {
            input,
            version,
            db: 0,
            aux: Vec::new(),
            functions: 0,
            resize_hints: Vec::new(),
            checksum: None,
            done: false,
            keys: 0,
            key_meta_skipped: 0,
            slot_imports_skipped: 0,
        }
    }

    /// The file's RDB version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// AUX fields seen so far (the first 64, values up to 4 KiB), in file order.
    pub fn aux(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.aux
    }

    /// The value of AUX field `name`, if seen and kept.
    pub fn aux_value(&self, name: &[u8]) -> Option<&[u8]> {
        self.aux
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Function libraries seen so far (`FUNCTION2` opcodes, skipped).
    pub fn functions(&self) -> u64 {
        self.functions
    }

    /// `RESIZEDB` hints seen so far: (db, keys, expires).
    pub fn resize_hints(&self) -> &[(u32, u64, u64)] {
        &self.resize_hints
    }

    /// Keys returned so far.
    pub fn keys_read(&self) -> u64 {
        self.keys
    }

    /// Keys read so far whose module key metadata (`KEY_META`, Redis 8.6+) was skipped: the
    /// keys come back without it.
    pub fn key_meta_skipped(&self) -> u64 {
        self.key_meta_skipped
    }

    /// Valkey slot import states (`SLOT_IMPORT`, RDB 80) skipped so far. Valkey writes one
    /// per slot import under way in cluster mode; the keys of those slots are in the file
    /// (and come back) although the server did not count them yet.
    pub fn slot_imports_skipped(&self) -> u64 {
        self.slot_imports_skipped
    }

    /// Offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    /// The trailer check, once [`next_entry`](Self::next_entry) has returned `Ok(None)`.
    pub fn checksum(&self) -> Option<Checksum> {
        self.checksum
    }

    /// The next key, `Ok(None)` after `EOF` (and a good checksum), or the first error. After
    /// an error or the end, it keeps returning `Ok(None)`.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let r = self.next_inner();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    fn corrupt(&self, offset: u64, what: impl Into<String>) -> ReadError {
        ReadError::Corrupt {
            offset,
            what: what.into(),
        }
    }

    fn next_inner(&mut self) -> Result<Option<Entry>, ReadError> {
        let mut expire_ms = None;
        let mut idle = None;
        let mut freq = None;
        loop {
            let at = self.input.offset();
            let op = self.input.u8("an opcode")?;
            match op {
                EXPIRETIME_MS => {
                    expire_ms = Some(i64::from_le_bytes(self.input.array("an expire time")?));
                }
                EXPIRETIME => {
                    let secs = i32::from_le_bytes(self.input.array("an expire time")?);
                    expire_ms = Some(i64::from(secs) * 1000);
                }
                IDLE => idle = Some(self.len("an IDLE time")?),
                FREQ => freq = Some(self.input.u8("a FREQ counter")?),
                SELECTDB => {
                    let db = self.len("a SELECTDB number")?;
                    self.db = u32::try_from(db)
                        .map_err(|_| self.corrupt(at, format!("SELECTDB {db} is out of range")))?;
                }
                RESIZEDB => {
                    let keys = self.len("RESIZEDB")?;
                    let expires = self.len("RESIZEDB")?;
                    if self.resize_hints.len() < 1024 {
                        self.resize_hints.push((self.db, keys, expires));
                    }
                }
                AUX => {
                    let k = self.string("an AUX field")?;
                    let v = self.string("an AUX value")?;
                    if self.aux.len() < MAX_AUX_KEPT && v.len() <= MAX_AUX_VALUE {
                        self.aux.push((k, v));
                    }
                }
                MODULE_AUX => {
                    let id = self.len("a module id")?;
                    let when_op = self.len("MODULE_AUX")?;
                    if when_op != MODULE_OPCODE_UINT {
                        return Err(self.corrupt(at, "MODULE_AUX without its `when` field"));
                    }
                    let _when = self.len("MODULE_AUX")?;
                    self.skip_module_data(at).map_err(|e| {
                        add_context(e, &format!("module aux data of {}", module_name(id).0))
                    })?;
                }
                FUNCTION2 => {
                    self.skip_string("a function library")?;
                    self.functions += 1;
                }
                FUNCTION_PRE_GA => {
                    return Err(ReadError::Unsupported {
                        offset: at,
                        what: "pre-GA function opcode (0xF6) of Redis 7.0 release candidates"
                            .into(),
                    })
                }
                SLOT_INFO => {
                    for _ in 0..3 {
                        self.len("SLOT_INFO")?;
                    }
                }
                EOF => {
                    self.finish_file()?;
                    return Ok(None);
                }
                SLOT_IMPORT if self.version == RDB_VERSION_VALKEY_9 => {
                    self.skip_slot_import()?;
                    self.slot_imports_skipped += 1;
                }
                KEY_META if has_redis_feature(self.version, MIN_VERSION_KEY_META) => {
                    self.skip_key_meta(at)?;
                    // As in Redis's loader, the metadata belongs to the key right after it:
                    // the next byte must be an object type, not another opcode.
                    let ty_at = self.input.offset();
                    let ty = self.input.u8("the object type after KEY_META")?;
                    if ty >= KEY_META {
                        return Err(self.corrupt(
                            ty_at,
                            format!("KEY_META is followed by opcode {ty:#04x}, not by a key"),
                        ));
                    }
                    self.key_meta_skipped += 1;
                    let entry = self.key_entry(ty, ty_at, expire_ms, idle, freq)?;
                    return Ok(Some(entry));
                }
                ty => return self.key_entry(ty, at, expire_ms, idle, freq).map(Some),
            }
        }
    }

    /// The key and value of an object of type `ty` (its type byte at `at`).
    fn key_entry(
        &mut self,
        ty: u8,
        at: u64,
        expire_ms: Option<i64>,
        idle: Option<u64>,
        freq: Option<u8>,
    ) -> Result<Entry, ReadError> {
        let key = self.string("a key")?;
        let value = self
            .value(ty, at)
            .map_err(|e| add_context(e, &format!("key {}", printable(&key))))?;
        self.keys += 1;
        Ok(Entry {
            db: self.db,
            key,
            expire_ms,
            idle,
            freq,
            rdb_type: ty,
            value,
        })
    }

    /// Skips a `SLOT_IMPORT` opcode's payload (Valkey's `clusterRDBLoadSlotImport`): the job
    /// name, a count of slot ranges, then each range's start and end slot.
    fn skip_slot_import(&mut self) -> Result<(), ReadError> {
        self.skip_string("SLOT_IMPORT's job name")?;
        // Valkey checks neither the count nor the ranges; every range costs bytes read, so
        // a false count ends at the end of the file.
        let ranges = self.len("SLOT_IMPORT's range count")?;
        for _ in 0..ranges {
            self.len("a SLOT_IMPORT range")?;
            self.len("a SLOT_IMPORT range")?;
        }
        Ok(())
    }

    /// Skips a `KEY_META` opcode's payload: a class count, then per class a 4-byte class
    /// spec and the module's data in module opcodes up to the module EOF. Redis's own loader
    /// skips a class it does not know the same way, so no module is needed to pass it.
    fn skip_key_meta(&mut self, at: u64) -> Result<(), ReadError> {
        let classes = self.len("KEY_META's class count")?;
        if classes > KEY_META_MAX_CLASSES {
            return Err(self.corrupt(
                at,
                format!(
                    "KEY_META announces {classes} metadata classes (at most {KEY_META_MAX_CLASSES})"
                ),
            ));
        }
        for i in 0..classes {
            let _spec: [u8; 4] = self.input.array("a KEY_META class spec")?;
            self.skip_module_data(at)
                .map_err(|e| add_context(e, &format!("key metadata class {}", i + 1)))?;
        }
        Ok(())
    }

    fn finish_file(&mut self) -> Result<(), ReadError> {
        if self.version < RDB_VERSION_CHECKSUM {
            self.checksum = Some(Checksum::Absent);
            return Ok(());
        }
        let computed = self.input.crc();
        let stored = u64::from_le_bytes(self.input.array("the checksum trailer")?);
        if stored == 0 {
            self.checksum = Some(Checksum::Disabled);
        } else if stored != computed {
            return Err(ReadError::Checksum { stored, computed });
        } else {
            self.checksum = Some(Checksum::Verified(computed));
        }
        Ok(())
    }

    // ------------------------------------------------------------------ primitives

    /// A length (not a special string encoding).
    fn len(&mut self, what: &'static str) -> Result<u64, ReadError> {
        match self.len_or_special(what)? {
            Len::Len(n) => Ok(n),
            Len::Special(_) => {
                let at = self.input.offset().saturating_sub(1);
                Err(self.corrupt(
                    at,
                    format!("{what}: a string encoding where a length belongs"),
                ))
            }
        }
    }

    fn len_or_special(&mut self, what: &'static str) -> Result<Len, ReadError> {
        let at = self.input.offset();
        let first = self.input.u8(what)?;
        Ok(match first >> 6 {
            0 => Len::Len(u64::from(first & 0x3F)),
            1 => {
                let lo = self.input.u8(what)?;
                Len::Len((u64::from(first & 0x3F) << 8) | u64::from(lo))
            }
            2 => match first {
                0x80 => Len::Len(u64::from(u32::from_be_bytes(self.input.array(what)?))),
                0x81 => Len::Len(u64::from_be_bytes(self.input.array(what)?)),
                _ => {
                    return Err(
                        self.corrupt(at, format!("{what}: unknown length byte {first:#04x}"))
                    )
                }
            },
            _ => Len::Special(first & 0x3F),
        })
    }

    /// A length used as an element count.
    fn elements(&mut self, what: &'static str) -> Result<u64, ReadError> {
        self.len(what)
    }

    /// A string in any encoding (int-encoded ones as decimal text).
    fn string(&mut self, what: &'static str) -> Result<Vec<u8>, ReadError> {
        let at = self.input.offset();
        match self.len_or_special(what)? {
            Len::Len(n) => {
                let mut v = Vec::new();
                self.input.take_into(n, &mut v, what)?;
                Ok(v)
            }
            Len::Special(0) => Ok(i64::from(i8::from_le_bytes(self.input.array(what)?))
                .to_string()
                .into_bytes()),
            Len::Special(1) => Ok(i64::from(i16::from_le_bytes(self.input.array(what)?))
                .to_string()
                .into_bytes()),
            Len::Special(2) => Ok(i64::from(i32::from_le_bytes(self.input.array(what)?))
                .to_string()
                .into_bytes()),
            Len::Special(3) => {
                let clen = self.len(what)?;
                let rlen = self.len(what)?;
                let mut c = Vec::new();
                self.input.take_into(clen, &mut c, what)?;
                let rlen = usize::try_from(rlen)
                    .map_err(|_| self.corrupt(at, "LZF raw length too large"))?;
                let mut out = Vec::new();
                lzf::decompress(&c, rlen, &mut out)
                    .map_err(|e| self.corrupt(at, format!("{what}: {e}")))?;
                Ok(out)
            }
            Len::Special(s) => {
                Err(self.corrupt(at, format!("{what}: unknown string encoding {s}")))
            }
        }
    }

    /// Skips a string without keeping it (LZF data is skipped compressed).
    fn skip_string(&mut self, what: &'static str) -> Result<(), ReadError> {
        let at = self.input.offset();
        match self.len_or_special(what)? {
            Len::Len(n) => self.input.skip(n, what),
            Len::Special(0) => self.input.skip(1, what),
            Len::Special(1) => self.input.skip(2, what),
            Len::Special(2) => self.input.skip(4, what),
            Len::Special(3) => {
                let clen = self.len(what)?;
                let _rlen = self.len(what)?;
                self.input.skip(clen, what)
            }
            Len::Special(s) => {
                Err(self.corrupt(at, format!("{what}: unknown string encoding {s}")))
            }
        }
    }

    /// A score in the old text form (ZSET type 3).
    fn string_double(&mut self, at: u64) -> Result<f64, ReadError> {
        let n = self.input.u8("a score")?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let mut v = Vec::new();
                self.input.take_into(u64::from(n), &mut v, "a score")?;
                parse_score(&v).ok_or_else(|| {
                    self.corrupt(at, format!("score {:?} is not a number", printable(&v)))
                })
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64, ReadError> {
        Ok(f64::from_le_bytes(self.input.array("a score")?))
    }

    fn millis(&mut self, what: &'static str) -> Result<i64, ReadError> {
        Ok(i64::from_le_bytes(self.input.array(what)?))
    }

    /// A string holding a blob that `decode` turns into a value.
    fn blob<T>(
        &mut self,
        at: u64,
        what: &'static str,
        decode: impl FnOnce(&[u8]) -> Result<T, BlobError>,
    ) -> Result<T, ReadError> {
        let b = self.string(what)?;
        decode(&b).map_err(|e| self.corrupt(at, e.to_string()))
    }
}

impl<R: Read> Iterator for RdbReader<R> {
    type Item = Result<Entry, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// Module opcode announcing an unsigned integer (the `when` of MODULE_AUX).
const MODULE_OPCODE_UINT: u64 = 2;

enum Len {
    Len(u64),
    Special(u8),
}

/// Capacity to reserve for `n` elements announced by the file.
fn cap(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX).min(MAX_PREALLOC)
}

fn add_context(e: ReadError, ctx: &str) -> ReadError {
    match e {
        ReadError::Corrupt { offset, what } => ReadError::Corrupt {
            offset,
            what: format!("{ctx}: {what}"),
        },
        ReadError::Unsupported { offset, what } => ReadError::Unsupported {
            offset,
            what: format!("{ctx}: {what}"),
        },
        other => other,
    }
}

/// Printable form of key bytes: ASCII kept, the rest escaped.
fn printable(b: &[u8]) -> String {
    const MAX: usize = 200;
    let s = b.get(..MAX).unwrap_or(b).escape_ascii().to_string();
    if b.len() > MAX {
        format!("{s}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
