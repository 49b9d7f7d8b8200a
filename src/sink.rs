//! Where recovered keys go: an RDB file, or nowhere (counting for `--dry-run`).

use std::io::Write;

use rdb::{RdbError, RdbWriter, RecordBuilder, StreamIdmpConfig, ValueType};

use crate::reencode::{plain_type, write_plain, PlainType};
use crate::value::{QuicklistNode, RecoveredKey, StrValue, Value};

pub use crate::eviction::{Eviction, LfuClock};

/// Largest value of the 24-bit LRU clock.
const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

/// Whether RDB `version` holds IDLE and FREQ (asked of the rdb crate: Valkey's 80 has them).
fn holds_idle_freq(version: u32) -> bool {
    rdb::consts::has_redis_feature(version, rdb::consts::MIN_VERSION_IDLE_FREQ)
}

/// Whether RDB `version` holds AUX fields and RESIZEDB.
fn holds_aux(version: u32) -> bool {
    rdb::consts::has_redis_feature(version, rdb::consts::MIN_VERSION_AUX)
}

/// A sink failure.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing the output failed; the walk stops.
    #[error("writing the RDB failed: {0}")]
    Rdb(#[from] RdbError),
    /// Writing an output other than an RDB file failed; the walk stops.
    #[error("writing the output failed: {0}")]
    Io(#[from] std::io::Error),
    /// This key cannot be written for the target RDB version; only the key is lost.
    #[error("{reason}")]
    Unwritable {
        /// Why.
        reason: String,
    },
    /// The target has no function libraries (below RDB 10); only they are lost.
    #[error("{reason}")]
    NoFunctions {
        /// Why, naming the RDB version.
        reason: String,
    },
}

/// How a key was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Whole.
    Whole,
    /// Without a part the target cannot hold (the reason says which): the key is partial.
    Without(String),
}

/// Whether RDB `version` can hold hash field TTLs: Redis's types 24 and 25 (RDB 12, Redis
/// 7.4) or Valkey's type 22 (RDB 80, Valkey 9).
fn has_field_ttls(version: u32) -> bool {
    ValueType::HashMetadata.fits(version) || ValueType::Hash2.fits(version)
}

/// Receives recovered keys in walk order.
pub trait Sink {
    /// A database starts; `keys` and `expires` are the dict's counters (a size hint).
    fn begin_db(&mut self, db: u32, keys: u64, expires: u64) -> Result<(), SinkError>;
    /// One key, complete and validated; says whether all of it could be written.
    fn key(&mut self, key: &RecoveredKey<'_>) -> Result<Written, SinkError>;
    /// The source code of every function library, before the first database.
    fn functions(&mut self, _libraries: &[crate::value::Bytes<'_>]) -> Result<(), SinkError> {
        Ok(())
    }
    /// The EVAL scripts cache (up to 6.2), before the first database.
    fn lua_scripts(&mut self, _scripts: &[crate::value::Bytes<'_>]) -> Result<(), SinkError> {
        Ok(())
    }
    /// Whether it reads the keys' names and values (the dry run's does not): the walk then
    /// starts loading them a few keys ahead.
    fn reads_values(&self) -> bool {
        true
    }
}

/// Counts nothing itself (the report keeps the tallies): the `--dry-run` sink.
#[derive(Debug, Default)]
pub struct CountingSink;

impl Sink for CountingSink {
    fn begin_db(&mut self, _db: u32, _keys: u64, _expires: u64) -> Result<(), SinkError> {
        Ok(())
    }
    fn key(&mut self, _key: &RecoveredKey<'_>) -> Result<Written, SinkError> {
        Ok(Written::Whole)
    }
    fn reads_values(&self) -> bool {
        false
    }
}

/// A key's access data under an LRU or LFU policy, as RDB's IDLE/FREQ opcodes and RESTORE's
/// IDLETIME/FREQ arguments carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Seconds since the last access (LRU).
    Idle(u64),
    /// The decayed logarithmic access counter (LFU).
    Freq(u8),
}

/// Encodes recovered keys as RDB records for one target RDB version, re-encoding what that
/// version cannot hold: what every output of whole values shares (the RDB file, DUMP payloads
/// for RESTORE, JSON lines), so each writes exactly what the RDB file would hold.
pub struct KeyEncoder {
    record: RecordBuilder,
    version: u32,
    reencoded: u64,
    eviction: Eviction,
    access: Option<Access>,
}

impl KeyEncoder {
    /// An encoder for RDB `version`; `compress` LZF-compresses strings as Redis's SAVE does.
    pub fn new(version: u32, compress: bool) -> Self {
        KeyEncoder {
            record: RecordBuilder::new(compress),
            version,
            reencoded: 0,
            eviction: Eviction::None,
            access: None,
        }
    }

    /// The target RDB version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Keep per-key eviction data as `e` says (from RDB 9 on; older versions have no opcode).
    pub fn set_eviction(&mut self, e: Eviction) {
        self.eviction = e;
    }

    /// Keys whose encoding the target RDB version cannot read, written as other types.
    pub fn reencoded(&self) -> u64 {
        self.reencoded
    }

    /// The record of the last key encoded (key opcodes, type, key and value).
    pub fn record(&self) -> &RecordBuilder {
        &self.record
    }

    /// The IDLE or FREQ written into the last key's record, if any.
    pub fn access(&self) -> Option<Access> {
        self.access
    }

    /// Encodes `k` into [`record`](Self::record); says whether all of it could be
    /// encoded, or fails for this key alone.
    pub fn encode(&mut self, k: &RecoveredKey<'_>) -> Result<Written, SinkError> {
        let r = &mut self.record;
        r.clear();
        if let Some(ms) = k.expire_ms {
            r.expire_ms(ms);
        }
        self.access = None;
        if holds_idle_freq(self.version) {
            self.access = match self.eviction {
                Eviction::Idle { clock } => {
                    // Seconds since the last access on the wrapping 24-bit clock.
                    let lru = k.lru & LRU_CLOCK_MAX;
                    let idle = if clock >= lru {
                        clock - lru
                    } else {
                        clock + (LRU_CLOCK_MAX - lru)
                    };
                    Some(Access::Idle(u64::from(idle)))
                }
                Eviction::Freq { clock } => Some(Access::Freq(match clock {
                    Some(c) => c.decayed(k.lru),
                    None => (k.lru & 0xff) as u8,
                })),
                Eviction::None | Eviction::Unknown => None,
            };
            match self.access {
                Some(Access::Idle(secs)) => r.idle(secs),
                Some(Access::Freq(counter)) => r.freq(counter),
                None => {}
            }
        }
        // Hash field TTLs exist in RDB 12, 13 and 80: other targets get the fields without.
        if !has_field_ttls(self.version) {
            if let Some(pairs) = hash_without_ttls(&k.value) {
                let (pairs, with_ttl) = pairs.map_err(|e| SinkError::Unwritable {
                    reason: format!("re-encoding for RDB {}: {e}", self.version),
                })?;
                r.value_type(ValueType::Hash);
                r.key(&k.key);
                r.len(pairs.len() as u64);
                for (f, v) in &pairs {
                    r.string(f);
                    r.string(v);
                }
                self.reencoded += 1;
                return Ok(if with_ttl == 0 {
                    Written::Whole
                } else {
                    Written::Without(format!(
                        "written without the TTLs of its {with_ttl} field(s): RDB {} has no hash field TTLs (they need RDB 12, Redis 7.4, or RDB 80, Valkey 9)",
                        self.version
                    ))
                });
            }
        }
        // Valkey 9 keeps hash field TTLs in its own type 22 only.
        if ValueType::Hash2.fits(self.version) {
            if let Some(fields) = hash_fields_with_ttls(&k.value) {
                let fields = fields.map_err(|e| SinkError::Unwritable {
                    reason: format!("re-encoding for RDB {}: {e}", self.version),
                })?;
                // A listpack_ex hash (Redis 7.4+) is decoded and rewritten: re-encoded.
                if matches!(k.value, Value::HashListpackEx { .. }) {
                    self.reencoded += 1;
                }
                write_hash2(r, &k.key, &fields).map_err(|e| SinkError::Unwritable {
                    reason: format!("RDB {}: {e}", self.version),
                })?;
                return Ok(Written::Whole);
            }
        }
        // Binary scores (ZSET_2) exist from RDB 8 (Redis 4.0); older files use text scores.
        let binary_scores = ValueType::Zset2.fits(self.version);
        let ty = match &k.value {
            Value::String(_) => ValueType::String,
            Value::ListQuicklist(_) => ValueType::ListQuicklist2,
            Value::ListQuicklistZiplist(_) => ValueType::ListQuicklist,
            Value::ListZiplist(_) => ValueType::ListZiplist,
            Value::ListElements(_) => ValueType::List,
            Value::SetIntset(_) => ValueType::SetIntset,
            Value::SetMembers(_) => ValueType::Set,
            Value::SetListpack(_) => ValueType::SetListpack,
            Value::ZsetListpack(_) => ValueType::ZsetListpack,
            Value::ZsetZiplist(_) => ValueType::ZsetZiplist,
            Value::ZsetPairs(_) if binary_scores => ValueType::Zset2,
            Value::ZsetPairs(_) => ValueType::Zset,
            Value::HashListpack(_) => ValueType::HashListpack,
            Value::HashZiplist(_) => ValueType::HashZiplist,
            Value::HashPairs(_) => ValueType::Hash,
            Value::HashListpackEx { .. } => ValueType::HashListpackEx,
            Value::HashPairsTtl(_) => ValueType::HashMetadata,
            // The richest stream type both the data and the target know: loaders read the
            // poorer types, and a poorer type only drops metadata its loaders lack (type 21
            // drops the IDMP state; counted as re-encoded). Types 26, 21, 19, 15 each carry
            // less than the one before; RDB 80 has 21 but not 26.
            Value::Stream(st) => {
                let version = self.version;
                let has_active = st
                    .groups
                    .iter()
                    .flat_map(|g| &g.consumers)
                    .any(|c| c.active_time.is_some());
                let natural = if st.first_id.is_none() {
                    // A stream of a server before 7.0 stays type 15 even for RDB 13: its
                    // loader derives the first ID and the groups' read counters from the
                    // entries, which type 26 would have to carry made up.
                    ValueType::StreamListpacks
                } else if st.idmp.is_some() || ValueType::StreamListpacks4.fits(version) {
                    // Redis 8.6's SAVE writes every stream as type 26.
                    ValueType::StreamListpacks4
                } else if has_active
                    || (st.groups.is_empty() && ValueType::StreamListpacks3.fits(version))
                {
                    ValueType::StreamListpacks3
                } else {
                    ValueType::StreamListpacks2
                };
                let fitting = [
                    ValueType::StreamListpacks4,
                    ValueType::StreamListpacks3,
                    ValueType::StreamListpacks2,
                    ValueType::StreamListpacks,
                ]
                .into_iter()
                .skip_while(|&t| t != natural)
                .find(|t| t.fits(version));
                match fitting {
                    Some(t) => {
                        if t != natural {
                            self.reencoded += 1;
                        }
                        t
                    }
                    None => {
                        return Err(SinkError::Unwritable {
                            reason: format!(
                                "RDB {version} has no stream type (streams need RDB 9, Redis 5.0, or later)"
                            ),
                        })
                    }
                }
            }
        };
        if !ty.fits(self.version) {
            if let Some(plain) = plain_type(&k.value) {
                // An older target: write the plain type every loader reads, never a blob
                // it cannot parse.
                let t = match plain {
                    PlainType::List => ValueType::List,
                    PlainType::Set => ValueType::Set,
                    PlainType::Zset if binary_scores => ValueType::Zset2,
                    PlainType::Zset => ValueType::Zset,
                    PlainType::Hash => ValueType::Hash,
                };
                r.value_type(t);
                r.key(&k.key);
                write_plain(&k.value, plain, binary_scores, r).map_err(|e| {
                    SinkError::Unwritable {
                        reason: format!("re-encoding for RDB {} failed: {e}", self.version),
                    }
                })?;
                self.reencoded += 1;
                return Ok(Written::Whole);
            }
            return Err(SinkError::Unwritable {
                reason: format!(
                    "RDB version {} cannot hold a {} encoded as {}",
                    self.version, k.kind.type_name, k.kind.encoding
                ),
            });
        }
        r.value_type(ty);
        r.key(&k.key);
        match &k.value {
            Value::String(StrValue::Bytes(b)) => r.string(b),
            Value::String(StrValue::Int(i)) => r.int_string(*i),
            Value::ListQuicklist(nodes) => {
                r.len(nodes.len() as u64);
                for n in nodes {
                    match n {
                        QuicklistNode::Packed(b) => {
                            r.len(2);
                            r.string(b);
                        }
                        QuicklistNode::PackedLzf {
                            compressed,
                            raw_len,
                        } => {
                            r.len(2);
                            r.lzf_blob(compressed, *raw_len);
                        }
                        QuicklistNode::Plain(b) => {
                            r.len(1);
                            r.string(b);
                        }
                        QuicklistNode::PlainLzf {
                            compressed,
                            raw_len,
                        } => {
                            r.len(1);
                            r.lzf_blob(compressed, *raw_len);
                        }
                    }
                }
            }
            Value::ListQuicklistZiplist(nodes) => {
                // RDB type 14: a node count, then each ziplist as a string (LZF kept as is).
                r.len(nodes.len() as u64);
                for n in nodes {
                    match n {
                        QuicklistNode::Packed(b) | QuicklistNode::Plain(b) => r.string(b),
                        QuicklistNode::PackedLzf {
                            compressed,
                            raw_len,
                        }
                        | QuicklistNode::PlainLzf {
                            compressed,
                            raw_len,
                        } => r.lzf_blob(compressed, *raw_len),
                    }
                }
            }
            Value::SetIntset(b)
            | Value::SetListpack(b)
            | Value::ZsetListpack(b)
            | Value::HashListpack(b)
            | Value::ListZiplist(b)
            | Value::ZsetZiplist(b)
            | Value::HashZiplist(b) => r.string(b),
            Value::ListElements(m) | Value::SetMembers(m) => {
                r.len(m.len() as u64);
                for e in m {
                    r.string(e);
                }
            }
            Value::ZsetPairs(p) => {
                r.len(p.len() as u64);
                for (m, s) in p {
                    r.string(m);
                    if binary_scores {
                        r.binary_double(*s);
                    } else {
                        r.string_double(*s);
                    }
                }
            }
            Value::HashPairs(p) => {
                r.len(p.len() as u64);
                for (f, v) in p {
                    r.string(f);
                    r.string(v);
                }
            }
            Value::Stream(st) => write_stream(r, st, ty)?,
            Value::HashListpackEx { min_expire, lp } => {
                r.millis(*min_expire as i64);
                r.string(lp);
            }
            Value::HashPairsTtl(p) => {
                // TTLs relative to the smallest one, +1 so that 0 can mean "no TTL".
                let min = p.iter().filter_map(|f| f.2).min().unwrap_or(0);
                r.millis(min as i64);
                r.len(p.len() as u64);
                for (f, v, ttl) in p {
                    r.len(ttl.map_or(0, |t| t - min + 1));
                    r.string(f);
                    r.string(v);
                }
            }
        }
        Ok(Written::Whole)
    }
}

/// Writes keys as RDB records, one whole record per key.
pub struct RdbSink<W: Write> {
    writer: RdbWriter<W>,
    enc: KeyEncoder,
}

impl<W: Write> RdbSink<W> {
    /// Start an RDB of `rdb_version` on `inner` with the given AUX fields.
    pub fn new(inner: W, rdb_version: u32, aux: &[(&str, String)]) -> Result<Self, SinkError> {
        let mut writer = RdbWriter::new(inner, rdb_version)?;
        // AUX fields and RESIZEDB exist from RDB 7 (Redis 3.2); older files go without.
        if holds_aux(rdb_version) {
            for (k, v) in aux {
                writer.aux(k.as_bytes(), v.as_bytes())?;
            }
        }
        Ok(RdbSink {
            writer,
            enc: KeyEncoder::new(rdb_version, true),
        })
    }

    /// Keep per-key eviction data as `e` says (from RDB 9 on; older files have no opcode).
    pub fn set_eviction(&mut self, e: Eviction) {
        self.enc.set_eviction(e);
    }

    /// Keys whose compact encoding the target RDB version cannot read, written as plain types.
    pub fn reencoded(&self) -> u64 {
        self.enc.reencoded()
    }

    /// Write EOF and the checksum; returns the inner writer and the bytes written.
    pub fn finish(self) -> Result<(W, u64), SinkError> {
        let written = self.writer.bytes_written() + 9;
        Ok((self.writer.finish()?, written))
    }

    /// Write EOF and the checksum; returns the inner writer and the CRC-64 of the trailer
    /// (`None` below RDB 5, which has none).
    pub fn finish_with_crc(self) -> Result<(W, Option<u64>), SinkError> {
        Ok(self.writer.finish_with_crc()?)
    }
}

/// The (field, value) pairs of a hash with field TTLs and how many fields had one, or `None`
/// for any other value.
#[allow(clippy::type_complexity)]
fn hash_without_ttls(
    v: &Value<'_>,
) -> Option<Result<(Vec<(Vec<u8>, Vec<u8>)>, usize), crate::decode::DecodeError>> {
    match v {
        Value::HashPairsTtl(p) => Some(Ok((
            p.iter().map(|(f, v, _)| (f.to_vec(), v.to_vec())).collect(),
            p.iter().filter(|f| f.2.is_some()).count(),
        ))),
        Value::HashListpackEx { lp, .. } => Some((|| {
            let lp = crate::decode::listpack::Listpack::parse(lp)?;
            let items: Vec<crate::decode::Element<'_>> = lp.iter().collect();
            let mut pairs = Vec::with_capacity(items.len() / 3);
            let mut with_ttl = 0;
            for t in items.chunks_exact(3) {
                if let [f, v, ttl] = t {
                    pairs.push((f.to_vec(), v.to_vec()));
                    if !matches!(ttl, crate::decode::Element::Int(0)) {
                        with_ttl += 1;
                    }
                }
            }
            Ok((pairs, with_ttl))
        })()),
        _ => None,
    }
}

/// A field, its value and its expire time (Unix ms), if any.
type TtlField = (Vec<u8>, Vec<u8>, Option<u64>);

/// The fields of a hash with field TTLs (the listpack_ex triplets decoded, TTL 0 = none), or
/// `None` for any other value. The error says what is wrong with the listpack.
fn hash_fields_with_ttls(v: &Value<'_>) -> Option<Result<Vec<TtlField>, String>> {
    match v {
        Value::HashPairsTtl(p) => Some(Ok(p
            .iter()
            .map(|(f, v, t)| (f.to_vec(), v.to_vec(), *t))
            .collect())),
        Value::HashListpackEx { lp, .. } => Some((|| {
            let lp = crate::decode::listpack::Listpack::parse(lp).map_err(|e| e.to_string())?;
            let items: Vec<crate::decode::Element<'_>> = lp.iter().collect();
            if !items.len().is_multiple_of(3) {
                return Err(format!(
                    "a listpack_ex of {} elements is not made of (field, value, TTL) triplets",
                    items.len()
                ));
            }
            let mut fields = Vec::with_capacity(items.len() / 3);
            for t in items.chunks_exact(3) {
                if let [f, v, ttl] = t {
                    let ttl = match ttl {
                        crate::decode::Element::Int(0) => None,
                        crate::decode::Element::Int(t) => Some(
                            u64::try_from(*t)
                                .map_err(|_| format!("negative hash field TTL {t}"))?,
                        ),
                        crate::decode::Element::Bytes(_) => {
                            return Err("a hash field TTL is not an integer".into())
                        }
                    };
                    fields.push((f.to_vec(), v.to_vec(), ttl));
                }
            }
            Ok(fields)
        })()),
        _ => None,
    }
}

/// A hash with field TTLs as Valkey 9 saves it: type 22 (fields without TTL get -1), or type
/// 4 when no field has a TTL (Valkey writes type 22 only for hashes with volatile fields).
fn write_hash2(r: &mut RecordBuilder, key: &[u8], fields: &[TtlField]) -> Result<(), RdbError> {
    let volatile = fields.iter().any(|f| f.2.is_some());
    r.value_type(if volatile {
        ValueType::Hash2
    } else {
        ValueType::Hash
    });
    r.key(key);
    r.len(fields.len() as u64);
    for (f, v, t) in fields {
        if volatile {
            r.hash2_field(f, v, *t)?;
        } else {
            r.string(f);
            r.string(v);
        }
    }
    Ok(())
}

/// A stream in the layout of RDB type `ty` (15, 19, 21 or 26).
fn write_stream(
    r: &mut RecordBuilder,
    st: &crate::value::StreamValue<'_>,
    ty: ValueType,
) -> Result<(), SinkError> {
    let v2 = ty != ValueType::StreamListpacks;
    let v3 = matches!(
        ty,
        ValueType::StreamListpacks3 | ValueType::StreamListpacks4
    );
    // Settings first: settings out of Redis's range would make the whole file unloadable,
    // so such a stream fails before anything of it is written.
    let idmp_config = match (&st.idmp, ty) {
        (Some(i), ValueType::StreamListpacks4) => Some(
            StreamIdmpConfig::new(i.duration, i.max_entries).map_err(|e| {
                SinkError::Unwritable {
                    reason: format!("stream idempotency settings: {e}"),
                }
            })?,
        ),
        // A stream of a server before 8.6 gets what 8.6 gives a new stream.
        (None, ValueType::StreamListpacks4) => Some(StreamIdmpConfig::DEFAULT),
        _ => None,
    };
    r.len(st.listpacks.len() as u64);
    for (id, lp) in &st.listpacks {
        r.string(id);
        r.string(lp);
    }
    r.len(st.length);
    r.len(st.last_id.ms);
    r.len(st.last_id.seq);
    if v2 {
        let zero = crate::value::StreamId { ms: 0, seq: 0 };
        let first = st.first_id.unwrap_or(zero);
        let max_deleted = st.max_deleted.unwrap_or(zero);
        r.len(first.ms);
        r.len(first.seq);
        r.len(max_deleted.ms);
        r.len(max_deleted.seq);
        r.len(st.entries_added.unwrap_or(st.length));
    }
    r.len(st.groups.len() as u64);
    for g in &st.groups {
        r.string(&g.name);
        r.len(g.last_id.ms);
        r.len(g.last_id.seq);
        if v2 {
            // Stored as the server keeps it; the "invalid" marker -1 round-trips as u64.
            r.len(g.entries_read.unwrap_or(u64::MAX));
        }
        r.len(g.pel.len() as u64);
        for n in &g.pel {
            r.raw(&n.id);
            r.millis(n.delivery_time);
            r.len(n.delivery_count);
        }
        r.len(g.consumers.len() as u64);
        for c in &g.consumers {
            r.string(&c.name);
            r.millis(c.seen_time);
            if v3 {
                r.millis(c.active_time.unwrap_or(c.seen_time));
            }
            r.len(c.pel.len() as u64);
            for id in &c.pel {
                r.raw(id);
            }
        }
    }
    if let Some(config) = idmp_config {
        let rdb_id = |id: &crate::value::StreamId| rdb::reader::StreamId {
            ms: id.ms,
            seq: id.seq,
        };
        match &st.idmp {
            Some(i) => r.stream_idmp(
                config,
                i.producers
                    .iter()
                    .map(|(pid, iids)| (pid, iids.iter().map(|(iid, id)| (iid, rdb_id(id))))),
                i.iids_added,
                i.iids_duplicates,
            ),
            None => r.stream_idmp(
                config,
                std::iter::empty::<(&[u8], std::iter::Empty<(&[u8], rdb::reader::StreamId)>)>(),
                0,
                0,
            ),
        }
    }
    Ok(())
}

impl<W: Write> Sink for RdbSink<W> {
    fn begin_db(&mut self, db: u32, keys: u64, expires: u64) -> Result<(), SinkError> {
        self.writer.select_db(u64::from(db))?;
        if holds_aux(self.writer.version()) {
            self.writer.resize_db(keys, expires)?;
        }
        Ok(())
    }

    fn key(&mut self, key: &RecoveredKey<'_>) -> Result<Written, SinkError> {
        let written = self.enc.encode(key)?;
        self.writer.record(self.enc.record())?;
        Ok(written)
    }

    fn lua_scripts(&mut self, scripts: &[crate::value::Bytes<'_>]) -> Result<(), SinkError> {
        // Only RDB 9 loaders (5.0 to 6.2) load scripts back from the `lua` AUX field.
        if self.writer.version() != rdb::consts::MIN_VERSION_IDLE_FREQ {
            return Err(SinkError::Unwritable {
                reason: format!(
                    "RDB {} loaders do not load the EVAL scripts cache (only RDB 9: Redis 5.0 to 6.2)",
                    self.writer.version()
                ),
            });
        }
        for body in scripts {
            self.writer.aux(b"lua", body)?;
        }
        Ok(())
    }

    fn functions(&mut self, libraries: &[crate::value::Bytes<'_>]) -> Result<(), SinkError> {
        if libraries.is_empty() {
            return Ok(());
        }
        if !rdb::consts::has_redis_feature(
            self.writer.version(),
            rdb::consts::MIN_VERSION_FUNCTION2,
        ) {
            // FUNCTION2 came with RDB 10 (7.0); RDB 80 (Valkey 9) has it too.
            return Err(SinkError::NoFunctions {
                reason: format!(
                    "RDB {} cannot carry functions (FUNCTION2 needs RDB 10)",
                    self.writer.version()
                ),
            });
        }
        for code in libraries {
            self.writer.function(code)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
