//! The walk from `server` down to every key: `server.db[]` → keys dict → robj → value,
//! with each key's expire from the expires dict.

pub mod bucket;
pub mod census;
pub mod context;
pub mod dict;
pub mod events;
pub mod fault;
pub mod guard;
pub(crate) mod handout;
pub mod hashtable;
pub mod importing;
mod keys;
pub mod locate;
pub mod object;
pub mod sds;
pub mod seen;
pub mod stream;
#[cfg(test)]
pub(crate) mod testheap;
#[cfg(test)]
mod tests;

use context::WalkContext;
use dict::DictHeader;
pub use fault::Fault;
use fault::FaultKind;
use object::ObjectDecoder;
use seen::SeenEntries;

use crate::core::AddressSpace;
use crate::profile::layout::{DbArrayFlavor, ExpireFlavor, KeyspaceFlavor, TableFlavor};
use crate::profile::Layout;
use crate::sink::SinkError;
use crate::value::ObjType;
use census::ObjectCensus;
use events::WalkEvents;
use keys::{ExpireSource, KeyDecoder, KeyVisitor, TableKind, PIPELINE_MIN};
use std::ops::ControlFlow;

/// Entries the object census counts behind its walk, their counts prefetched meanwhile.
const CENSUS_AHEAD: usize = 16;
/// Keys walked between two progress updates.
const PROGRESS_BATCH: u64 = 4096;
/// Databases beyond this count are taken as a sign of a wrong layout.
pub(crate) const MAX_DBNUM: u64 = 1 << 16;

/// A failure that stops the whole walk.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The `server` struct or its db array cannot be read or makes no sense with this layout.
    #[error("cannot find the keyspace: {0}")]
    Keyspace(String),
    /// The output could not be written.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// The hash tables holding one db's keys (or expires): one dict, or every non-empty
/// hashtable of a kvstore.
#[derive(Debug, Clone, Default)]
pub struct KeyTables {
    /// (address, checked header) per table, except the importing ones.
    pub tables: Vec<(u64, DictHeader)>,
    /// The tables of slots being imported by Valkey 9's atomic slot migration, kept apart:
    /// not in `tables` nor in [`KeyTables::used`].
    pub importing: importing::ImportingTables,
    /// The cluster slot of each of `tables` (same order), when the kvstore keeps one table
    /// per slot (cluster mode): a key found in a slot's table must hash to that slot.
    pub slots: Option<Vec<u32>>,
}

impl KeyTables {
    /// Entries by the tables' own counters (the importing tables left out, as the
    /// kvstore's `key_count` leaves them out).
    pub fn used(&self) -> u64 {
        self.tables.iter().map(|(_, h)| h.used()).sum()
    }

    /// Every table's header, the importing ones included: they hold keys of the same
    /// process, hashed with the same seed, so they are evidence for a layout and a seed
    /// even when they are not written.
    pub fn all_headers(&self) -> impl Iterator<Item = &DictHeader> {
        self.tables
            .iter()
            .map(|(_, h)| h)
            .chain(self.importing.tables.iter().map(|(_, _, h)| h))
    }

    /// A loader size hint bounded by the real bucket counts.
    pub fn size_hint(&self) -> u64 {
        self.tables.iter().map(|(_, h)| h.size_hint()).sum()
    }

    /// True when any table is mid-rehash.
    pub fn rehashing(&self) -> bool {
        self.tables.iter().any(|(_, h)| h.rehashing())
    }
}

/// One database as found in memory.
#[derive(Debug, Clone)]
pub struct DbInfo {
    /// Its index.
    pub index: u32,
    /// The keys tables, or why they could not be read.
    pub keys: Result<KeyTables, Fault>,
    /// The expires tables, or why they could not be read.
    pub expires: Result<KeyTables, Fault>,
}

impl DbInfo {
    /// Keys the tables say they hold (0 when unreadable).
    pub fn expected(&self) -> u64 {
        self.keys.as_ref().map_or(0, KeyTables::used)
    }

    /// Expires the expires tables say they hold.
    pub fn expected_expires(&self) -> u64 {
        self.expires.as_ref().map_or(0, KeyTables::used)
    }

    /// Keys of slots being imported by atomic slot migration, by their tables' counters.
    pub fn importing_keys(&self) -> u64 {
        self.keys.as_ref().map_or(0, |k| k.importing.used())
    }

    /// Expires of slots being imported by atomic slot migration.
    pub fn importing_expires(&self) -> u64 {
        self.expires.as_ref().map_or(0, |k| k.importing.used())
    }

    /// The slots being imported by atomic slot migration (from the keys kvstore's set).
    pub fn importing_slots(&self) -> &[u32] {
        self.keys.as_ref().map_or(&[], |k| &k.importing.slots)
    }
}

/// What decoding a sample of a keyspace's keys showed (see [`KeyspaceWalker::sample_keys`]).
#[derive(Debug, Clone, Default)]
pub struct KeySample {
    /// Entries tried.
    pub sampled: u64,
    /// Of those, keys whose name, object header and value decoded.
    pub decoded: u64,
    /// Why the first one that did not decode failed.
    pub first_fault: Option<Fault>,
}

/// Most per-slot tables a kvstore may have (cluster mode: 16384 slots).
const MAX_KVSTORE_TABLES: u64 = 16384;

/// How the walk treats damaged keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Write the readable part of a damaged collection, marked partial in the report,
    /// instead of reporting the key lost (`--salvage`).
    pub salvage: bool,
    /// Give up on a key whose decoding takes longer than this (`--timeout`).
    pub key_timeout: Option<std::time::Duration>,
    /// Check every entry of the keys, expires, set and hash dicts against its bucket.
    pub bucket_check: Option<bucket::BucketCheck>,
    /// Also write the keys of slots being imported by Valkey 9's atomic slot migration
    /// (`--include-importing`); by default they are counted apart and not written.
    pub include_importing: bool,
    /// Threads the keyspace walk may use (`--threads`; 0 and 1: one). With two, one
    /// follows the keys tables' chains while the other decodes the keys, in the same order.
    pub threads: usize,
    /// Where the shared integer objects are (2.8 to 3.2, for the object census; see
    /// [`KeyspaceWalker::shared_integers`]).
    pub shared_integers: Option<census::SharedIntegers>,
}

/// Walks one core's keyspace with one build's layout.
pub struct KeyspaceWalker<'s, 'a> {
    ctx: WalkContext<'s, 'a>,
    space: &'s AddressSpace<'a>,
    layout: &'s Layout,
}

impl<'s, 'a> KeyspaceWalker<'s, 'a> {
    /// A walker over `space` with `layout`.
    pub fn new(space: &'s AddressSpace<'a>, layout: &'s Layout) -> Self {
        KeyspaceWalker {
            ctx: WalkContext::new(space, layout, WalkOptions::default()),
            space,
            layout,
        }
    }

    /// The same walker with `options`.
    pub fn with_options(self, options: WalkOptions) -> Self {
        KeyspaceWalker {
            ctx: WalkContext::new(self.space, self.layout, options),
            ..self
        }
    }

    /// Chain heads of the largest readable keys tables, with their key bytes, to calibrate
    /// a [`bucket::BucketCheck`]: the heads of dict chains, or the entries of hashtables'
    /// top-level buckets (objects embedding their keys, with the hash fragment stored with
    /// each); a dict chain's head is an sds key, or an object embedding its key (Redis
    /// 8.2+).
    pub fn bucket_samples(&self, dbs: &[DbInfo], max: usize) -> Vec<bucket::BucketSample> {
        let f = self.layout.features;
        let hashtables = f.tables == TableFlavor::Hashtable;
        let key_objects = f.embedded_keys();
        let format = self.ctx.sds;
        let objects = ObjectDecoder::new(&self.ctx);
        let mut tables: Vec<&DictHeader> = dbs
            .iter()
            .filter_map(|d| d.keys.as_ref().ok())
            .flat_map(KeyTables::all_headers)
            .collect();
        tables.sort_by_key(|h| std::cmp::Reverse(h.size_hint()));
        let mut out = Vec::new();
        for h in tables {
            let want = max.saturating_sub(out.len());
            if hashtables {
                for (entry, bucket, size, fragment) in self.ctx.hashtables().bucket_heads(h, want) {
                    if let Ok(k) = objects.embedded_key(entry) {
                        out.push(bucket::BucketSample {
                            key: k.key.into_owned(),
                            bucket,
                            size,
                            fragment,
                        });
                    }
                }
            } else {
                for (key, bucket, size) in self.ctx.dicts().chain_heads(h, want) {
                    let name = if key_objects {
                        objects.embedded_key(key).map(|k| k.key)
                    } else {
                        sds::read_sds(self.space, format, key)
                    };
                    if let Ok(k) = name {
                        out.push(bucket::BucketSample {
                            key: k.into_owned(),
                            bucket,
                            size,
                            fragment: None,
                        });
                    }
                }
            }
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// Decode up to `max` keys spread over the databases' readable keys tables (the heads
    /// of each table's first chains or buckets): name, object header and value, each value
    /// within the walker's per-key time budget. Cheap evidence that `dbs` really is a
    /// keyspace; nothing is written anywhere.
    pub fn sample_keys(&self, dbs: &[DbInfo], max: usize) -> KeySample {
        let mut out = KeySample::default();
        let tables: Vec<&DictHeader> = dbs
            .iter()
            .filter_map(|d| d.keys.as_ref().ok())
            .flat_map(KeyTables::all_headers)
            .filter(|h| h.used() > 0)
            .collect();
        if tables.is_empty() {
            return out;
        }
        let quota = max.div_ceil(tables.len()).max(1);
        let embedded = self.layout.features.embedded_keys();
        let mut objects = ObjectDecoder::new(&self.ctx);
        for h in tables {
            let want = quota.min(max.saturating_sub(out.sampled as usize));
            if want == 0 {
                break;
            }
            let entries: Vec<(u64, u64)> = match self.layout.features.tables {
                TableFlavor::Hashtable => self
                    .ctx
                    .hashtables()
                    .sample_entries(h, want)
                    .into_iter()
                    .map(|e| (e, e))
                    .collect(),
                TableFlavor::Dict => self.ctx.dicts().sample_entries(h, want),
            };
            for (key, value) in entries {
                out.sampled += 1;
                match self.sample_key(&mut objects, key, value, embedded) {
                    Ok(()) => out.decoded += 1,
                    Err(f) => {
                        out.first_fault.get_or_insert(f);
                    }
                }
            }
        }
        out
    }

    /// Decode one sampled entry: an object embedding its key, or an sds key and its object.
    fn sample_key(
        &self,
        objects: &mut ObjectDecoder<'_, 'a>,
        key: u64,
        value: u64,
        embedded: bool,
    ) -> Result<(), Fault> {
        let obj = if embedded {
            objects.embedded_key(key)?;
            key
        } else {
            sds::read_sds(self.space, self.ctx.sds, key)?;
            value
        };
        let header = objects.header(obj)?;
        let _budget = self.ctx.budget.key();
        match objects.value(&header) {
            Ok(_) => Ok(()),
            // A module value, or one too big for the time budget: its name and object
            // header decoded, which is what the sample is for.
            Err(Fault::Unsupported(_)) if header.ty == Some(ObjType::Module) => Ok(()),
            Err(Fault::Timeout(_)) => Ok(()),
            Err(f) => Err(f),
        }
    }

    fn key_tables(&self, addr: u64) -> Result<KeyTables, Fault> {
        let hashtables = self.layout.features.tables == TableFlavor::Hashtable;
        match self.layout.features.keyspace {
            KeyspaceFlavor::Dict => {
                let h = self.ctx.dicts().header(addr)?;
                Ok(KeyTables {
                    tables: vec![(addr, h)],
                    importing: Default::default(),
                    slots: None,
                })
            }
            KeyspaceFlavor::Kvstore => {
                let kvl = &self.layout.kvstore;
                let kv = self.space.read(addr, kvl.size as usize)?;
                let (Some(array), Some(count)) = (kvl.tables.get(&kv), kvl.count.get(&kv)) else {
                    return Err(Fault::of(
                        FaultKind::ProfileGap,
                        "kvstore fields outside the kvstore",
                    ));
                };
                let count = count as i64;
                if count < 1 || count as u64 > MAX_KVSTORE_TABLES {
                    return Err(Fault::of(
                        FaultKind::BadHeader,
                        format!("kvstore {addr:#x} has {count} tables"),
                    ));
                }
                let ptrs = self.space.read(array, count as usize * 8)?;
                let mut tables = Vec::new();
                for (index, chunk) in (0u32..).zip(ptrs.chunks_exact(8)) {
                    let p = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                    // Tables are allocated on demand: NULL is an empty slot.
                    if p == 0 {
                        continue;
                    }
                    let h = if hashtables {
                        self.ctx.hashtables().header(p)?
                    } else {
                        self.ctx.dicts().header(p)?
                    };
                    tables.push((index, p, h));
                }
                let (own, importing) = importing::split(&self.ctx, kvl, &kv, count as u64, tables);
                let per_slot = count as u64 == u64::from(crate::slot::SLOTS);
                Ok(KeyTables {
                    slots: per_slot.then(|| own.iter().map(|(i, _, _)| *i).collect()),
                    tables: own.into_iter().map(|(_, p, h)| (p, h)).collect(),
                    importing,
                })
            }
        }
    }

    /// Find the databases from the `server` struct at `server_addr`.
    ///
    /// Checks that dbnum is plausible, the array is in the core and `db[i].id == i`, which
    /// together confirm that the layout and the symbol address are right.
    pub fn databases(&self, server_addr: u64) -> Result<Vec<DbInfo>, WalkError> {
        let l = self.layout;
        let err = |m: String| WalkError::Keyspace(m);
        let server = self
            .space
            .read(server_addr, l.server.size as usize)
            .map_err(|e| err(format!("the server struct at {server_addr:#x}: {e}")))?;
        let db_array = l.server.db.get(&server).unwrap_or(0);
        let dbnum = l.server.dbnum.get(&server).unwrap_or(0) as u32 as i32 as i64;
        if dbnum < 1 || dbnum as u64 > MAX_DBNUM {
            return Err(err(format!(
                "server.dbnum reads {dbnum}; the profile {} probably does not match this build",
                l.name
            )));
        }
        let dbnum = dbnum as u64;
        // The array holds the db structs, or pointers to them (NULL: a db never used).
        let pointers = l.features.db_array == DbArrayFlavor::Pointers;
        let stride = if pointers { 8 } else { l.db.size };
        let array_len = dbnum * stride;
        if db_array == 0 || self.space.readable_len(db_array) < array_len {
            return Err(err(format!(
                "server.db ({db_array:#x}) does not point at {dbnum} readable databases"
            )));
        }
        let mut out = Vec::with_capacity(dbnum as usize);
        for i in 0..dbnum {
            let slot = db_array + i * stride;
            let base = if pointers {
                let p = self
                    .space
                    .u64(slot)
                    .map_err(|e| err(format!("db {i} pointer: {e}")))?;
                if p == 0 {
                    continue;
                }
                p
            } else {
                slot
            };
            let bytes = self
                .space
                .read(base, l.db.size as usize)
                .map_err(|e| err(format!("db {i}: {e}")))?;
            let id = l.db.id.get(&bytes).unwrap_or(u64::MAX) as u32 as i32 as i64;
            if id != i as i64 {
                return Err(err(format!(
                    "db[{i}].id reads {id}; the profile {} does not match this build or core",
                    l.name
                )));
            }
            let keys_addr = l.db.dict.get(&bytes).unwrap_or(0);
            let expires_addr = l.db.expires.get(&bytes).unwrap_or(0);
            out.push(DbInfo {
                index: i as u32,
                keys: self.key_tables(keys_addr),
                expires: self.key_tables(expires_addr),
            });
        }
        Ok(out)
    }

    /// The bodies of the EVAL scripts cache (`server.lua_scripts`, up to 6.2), or `None`
    /// when the build keeps it elsewhere.
    pub fn lua_scripts(
        &self,
        server_addr: u64,
    ) -> Option<Result<Vec<crate::value::Bytes<'a>>, Fault>> {
        let field = self.layout.server.lua_scripts?;
        Some((|| {
            let dict = self
                .space
                .uint(server_addr.wrapping_add(field.offset), field.size)?;
            if dict == 0 {
                return Ok(Vec::new());
            }
            let dicts = self.ctx.dicts();
            let header = dicts.header(dict)?;
            let objects = ObjectDecoder::new(&self.ctx);
            let mut out = Vec::new();
            let mut first = None;
            dicts
                .for_each(&header, |_, body| match objects.string_object(body) {
                    Ok(b) => out.push(b),
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                })
                .into_result()?;
            match first {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })())
    }

    /// What the server's `maxmemory-policy` says to keep per key, read from `server`.
    pub fn eviction(&self, server_addr: u64) -> crate::eviction::Eviction {
        use crate::eviction::Eviction;
        let l = &self.layout.server;
        let read = |f: crate::profile::layout::Field| {
            self.space
                .uint(server_addr.wrapping_add(f.offset), f.size)
                .ok()
        };
        let Some(policy) = l.maxmemory_policy else {
            return Eviction::Unknown;
        };
        // A server without `lruclock` (Valkey 9.1) ticks its LRU clock from the wall clock
        // in seconds, as `unixtime` keeps it.
        let clock = match (l.lruclock, l.unixtime) {
            (Some(c), _) => read(c),
            (None, Some(t)) => read(t).map(|t| t & 0xff_ffff),
            (None, None) => None,
        };
        match (read(policy), clock) {
            (Some(p), Some(c)) if p & 1 != 0 => Eviction::Idle { clock: c as u32 },
            (Some(p), Some(_)) if p & 2 != 0 => Eviction::Freq {
                clock: match (l.unixtime.and_then(read), l.lfu_decay_time.and_then(read)) {
                    (Some(t), Some(d)) => Some(crate::eviction::LfuClock::new(t, d)),
                    _ => None,
                },
            },
            (Some(_), Some(_)) => Eviction::None,
            _ => Eviction::Unknown,
        }
    }

    /// Expire times by key pointer, sorted for binary search, and whether the expires
    /// dict was read completely. When it was not, a key without a found TTL may have had
    /// one, so such keys must not be written as persistent.
    /// The expires dict of `db` walked whole: its entries `(key pointer, expire ms)` sorted
    /// by key pointer when `keep` (else none are kept), whether it read whole, and how many
    /// entries it yielded.
    fn expires(
        &self,
        db: &DbInfo,
        events: &mut dyn WalkEvents,
        keep: bool,
    ) -> (Vec<(u64, i64)>, bool, u64) {
        let t = match &db.expires {
            Ok(t) => t,
            Err(f) => {
                events.warning(format!("db {}: expires dict unreadable: {f}", db.index));
                return (Vec::new(), false, 0);
            }
        };
        let mut out = Vec::with_capacity(if keep {
            t.used().min(1 << 24) as usize
        } else {
            0
        });
        let mut yielded = 0u64;
        let dicts = self
            .ctx
            .dicts()
            .with_bucket_check(self.ctx.options.bucket_check)
            .with_number_values();
        let mut fault_count = 0;
        let mut damaged = 0;
        for (_, h) in &t.tables {
            let faults = dicts.for_each(h, |k, v| {
                yielded += 1;
                if keep {
                    out.push((k, v as i64));
                }
            });
            fault_count += faults.count;
            damaged += faults.damaged_keys;
            for (bucket, f) in &faults.faults {
                events.warning(format!(
                    "db {}: expires dict bucket {bucket}: {f}; keys whose TTL cannot be confirmed are reported lost",
                    db.index
                ));
            }
        }
        // An entry whose key hashes to another bucket has a damaged name; the key shares
        // those bytes and is refused in the keys table too, so it needs no TTL. Many at
        // once mean a redirected table rather than damaged names: then nothing is sure.
        let few_damaged = damaged <= 1 + t.used() / 100;
        if damaged > 0 {
            events.warning(format!(
                "db {}: {damaged} expires entries hold names whose bytes hash to another bucket{}",
                db.index,
                if few_damaged {
                    " (damaged names: those keys are refused in the keys table too)"
                } else {
                    "; too many for damaged names, so keys whose TTL cannot be confirmed are reported lost"
                }
            ));
        }
        let complete =
            fault_count == 0 && few_damaged && yielded.saturating_add(damaged) == t.used();
        if fault_count == 0 && !complete {
            events.warning(format!(
                "db {}: expires dict yielded {yielded} entries, its counter says {}; keys whose TTL cannot be confirmed are reported lost",
                db.index,
                t.used()
            ));
        }
        out.sort_unstable_by_key(|e| e.0);
        (out, complete, yielded)
    }

    /// The source code of every function library (7.0+) in the functions context whose
    /// pointer is stored at `ctx_ptr_addr` (the `curr_functions_lib_ctx` static).
    pub fn functions(&self, ctx_ptr_addr: u64) -> Result<Vec<crate::value::Bytes<'a>>, Fault> {
        let Some(f) = &self.layout.functions else {
            return Ok(Vec::new());
        };
        let ctx = self.space.u64(ctx_ptr_addr)?;
        if ctx == 0 {
            return Ok(Vec::new());
        }
        let libraries = self
            .space
            .uint(ctx.wrapping_add(f.libraries.offset), f.libraries.size)?;
        let dicts = self.ctx.dicts();
        let header = dicts.header(libraries)?;
        let format = self.ctx.sds;
        let mut out = Vec::new();
        let mut first = None;
        dicts
            .for_each(&header, |_, lib| {
                let code = self
                    .space
                    .uint(lib.wrapping_add(f.code.offset), f.code.size)
                    .map_err(Fault::from)
                    .and_then(|p| sds::read_sds(self.space, format, p));
                match code {
                    Ok(c) => out.push(c),
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            })
            .into_result()?;
        if let Some(e) = first {
            return Err(e);
        }
        if out.len() as u64 != header.used() {
            return Err(Fault::of(
                FaultKind::CounterMismatch,
                format!(
                    "functions libraries dict yielded {} of {} libraries",
                    out.len(),
                    header.used()
                ),
            ));
        }
        Ok(out)
    }

    /// The shared integer objects' array in the executable's writable `images` (start
    /// address, bytes), for the object census ([`Layout::counts_object_holders`]); `None`
    /// in other builds, or when no single array is found.
    pub fn shared_integers(&self, images: &[(u64, &[u8])]) -> Option<census::SharedIntegers> {
        if !self.layout.counts_object_holders() {
            return None;
        }
        census::SharedIntegers::find(&self.ctx, images)
    }

    /// Counts the holders of every string object in `dbs` (see [`ObjectCensus`]), in
    /// builds whose collections keep their elements as objects and whose profile has the
    /// `refcount`; `None` elsewhere. The keys tables are walked as [`Self::walk`] walks
    /// them, so the census counts what the walk will meet.
    fn census(&self, dbs: &[DbInfo]) -> Option<ObjectCensus> {
        if !self.layout.counts_object_holders() {
            return None;
        }
        let ctx = &self.ctx;
        let objects = ObjectDecoder::new(ctx);
        let dicts = TableKind::dicts(ctx);
        let mut census = ObjectCensus::default();
        for db in dbs {
            let Ok(keys) = &db.keys else {
                continue;
            };
            // As the walk does: a sole table proves its entries by their buckets.
            let dicts = dicts.with_sole_table(keys.tables.len() == 1);
            for (_, h) in &keys.tables {
                let mut seen = SeenEntries::with_capacity(h.used());
                // A key's name and its value; only a name that can be read is counted,
                // so a damaged pointer to nowhere makes the census no bigger.
                let count = |census: &mut ObjectCensus, (key, value): (u64, u64)| {
                    if ctx.space.readable_len(key) > 0 {
                        census.note_string(key);
                    }
                    objects.count_held_objects(value, census);
                };
                // Each count is a cache miss of its own: count CENSUS_AHEAD entries behind
                // the walk, their counts' words prefetched meanwhile.
                let mut ring = std::collections::VecDeque::with_capacity(CENSUS_AHEAD + 1);
                let _ = dicts.for_each_unique(h, &mut seen, |key, value| {
                    census.prefetch(key);
                    census.prefetch(value);
                    ring.push_back((key, value));
                    if ring.len() > CENSUS_AHEAD {
                        if let Some(entry) = ring.pop_front() {
                            count(&mut census, entry);
                        }
                    }
                });
                for entry in ring {
                    count(&mut census, entry);
                }
            }
        }
        Some(census)
    }

    /// Walk every database, telling `events` of each database, each key recovered or lost,
    /// chain faults and warnings, in order.
    pub fn walk(
        &self,
        dbs: &[DbInfo],
        events: &mut dyn WalkEvents,
        mut progress: impl FnMut(u64),
    ) -> Result<(), WalkError> {
        let census = self.census(dbs);
        let ctx = &WalkContext::new(self.space, self.layout, self.ctx.options)
            .with_census(census.as_ref());
        let mut visitor = KeyVisitor {
            events,
            fatal: None,
            key_names: std::collections::HashSet::new(),
            names_checked: false,
            slot: None,
            matched_expires: 0,
            pending: 0,
        };
        let include = ctx.options.include_importing;
        for db in dbs {
            visitor.events.db_seen(db, include);
            let keys = match &db.keys {
                Ok(t) => t,
                Err(f) => {
                    visitor.events.db_unreadable(db.index, f);
                    continue;
                }
            };
            // The tables of slots being imported are walked only when asked for.
            let importing: &[importing::IndexedTable] =
                if include { &keys.importing.tables } else { &[] };
            let importing_used = importing::used_of(importing);
            if keys.used() == 0 && db.expected_expires() == 0 && importing_used == 0 {
                continue;
            }
            // Objects that embed their key keep their expire too, unless the build keeps
            // expires in a dict.
            let embedded = self.layout.features.embedded_keys()
                && self.layout.features.expire != ExpireFlavor::ExpiresDict;
            // With the bucket check, a key's expire is looked up in its bucket of the one
            // expires dict; without it (or across a kvstore's dicts) the dict's entries are
            // kept, sorted, and searched.
            let lookup = match (&db.expires, ctx.options.bucket_check) {
                (Ok(t), Some(check)) if t.tables.len() == 1 => {
                    t.tables.first().map(|(_, h)| (h, check))
                }
                _ => None,
            };
            let (expires, complete, yielded) = if embedded {
                (Vec::new(), true, 0)
            } else {
                self.expires(db, &mut *visitor.events, lookup.is_none())
            };
            let source = match lookup {
                _ if embedded => ExpireSource::Embedded,
                // An expires dict walked whole and empty holds no TTL: no key's name needs
                // hashing to look one up.
                Some(_) if complete && yielded == 0 => ExpireSource::Dict {
                    sorted: &[],
                    complete,
                },
                Some((header, check)) => ExpireSource::Lookup {
                    header,
                    check,
                    complete,
                },
                None => ExpireSource::Dict {
                    sorted: &expires,
                    complete,
                },
            };
            let expires_tables = db.expires.as_ref().ok();
            let (importing_expires, importing_expires_hint) = match expires_tables {
                Some(t) if include => (t.importing.used(), t.importing.size_hint()),
                _ => (0, 0),
            };
            let expires_hint = expires_tables
                .map_or(0, KeyTables::size_hint)
                .saturating_add(importing_expires_hint);
            let expires_found = if embedded {
                db.expected_expires().saturating_add(importing_expires)
            } else {
                yielded
            };
            let keys_hint = keys.size_hint().saturating_add(if include {
                keys.importing.size_hint()
            } else {
                0
            });
            let keys_used = keys.used().saturating_add(importing_used);
            visitor
                .events
                .begin_db(db.index, keys_hint, expires_hint.min(expires_found))?;
            visitor.matched_expires = 0;
            // Grows per key only where no table walker proves names unique (see
            // `names_checked`): it starts small.
            visitor.key_names =
                std::collections::HashSet::with_capacity(keys_used.min(1024) as usize);
            // Names are proven unique within a table by its walker; across the tables of a
            // cluster kvstore by the slot check (a name belongs to one slot's table).
            let single_table = keys.tables.len() + importing.len() == 1;
            let slotted = keys.slots.is_some() && importing.is_empty();
            let own_slots = keys.slots.iter().flatten().map(|s| Some(*s));
            let headers = keys
                .tables
                .iter()
                .map(|(_, h)| h)
                .zip(own_slots.chain(std::iter::repeat(None)))
                .chain(importing.iter().map(|(slot, _, h)| (h, Some(*slot))));
            let tables: Vec<(&DictHeader, Option<u32>)> = headers
                .map(|(h, slot)| (h, slot.filter(|_| keys.slots.is_some())))
                .collect();
            let kind = TableKind::of(self.layout.features.tables, embedded);
            visitor.names_checked = kind.names_checked(ctx) && (single_table || slotted);
            visitor.slot = tables.first().and_then(|(_, slot)| *slot);
            let mut next_table = 1;
            let mut decoder = KeyDecoder::new(ctx, kind);
            let threads = if keys_used >= PIPELINE_MIN {
                ctx.options.threads
            } else {
                1
            };
            let reads = visitor.events.reads_values();
            handout::run(
                ctx,
                threads,
                reads,
                |c, out| {
                    let mut decoder = KeyDecoder::new(c, kind);
                    let mut decode = |key, value| decoder.decode(key, value, &source);
                    // One set per db: a damaged pointer may lead from one table into another.
                    let mut seen = SeenEntries::with_capacity(keys_used);
                    let sole = tables.len() == 1;
                    for (h, _) in &tables {
                        let faults = kind.walk(c, h, sole, &mut seen, out, &mut decode);
                        out.table_end(faults);
                        if out.stopped() {
                            return;
                        }
                    }
                },
                |item| {
                    match item {
                        handout::Handed::Entry(key, value) => {
                            let decoded = decoder.decode(key, value, &source);
                            visitor.take(db.index, decoded, &mut progress);
                        }
                        handout::Handed::Decoded(decoded) => {
                            visitor.take(db.index, decoded, &mut progress);
                        }
                        handout::Handed::TableEnd(faults) => {
                            visitor.table_end(db.index, &faults);
                            visitor.slot = tables.get(next_table).and_then(|(_, slot)| *slot);
                            next_table += 1;
                        }
                    }
                    if visitor.fatal.is_some() {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            );
            visitor.names_checked = false;
            if let Some(e) = visitor.fatal.take() {
                return Err(e.into());
            }
            progress(std::mem::take(&mut visitor.pending));
            let orphans = expires_found.saturating_sub(visitor.matched_expires);
            if orphans > 0 {
                visitor.events.warning(format!(
                    "db {}: {orphans} expires entries point at no key found in the keys table",
                    db.index
                ));
            }
        }
        Ok(())
    }
}
