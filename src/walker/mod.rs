//! The walk from `server` down to every key: `server.db[]` → keys dict → robj → value,
//! with each key's expire from the expires dict.

pub mod dict;
pub mod fault;
pub mod guard;
pub mod object;
pub mod sds;

use dict::{DictHeader, DictWalker};
pub use fault::Fault;
use object::ObjectDecoder;

use crate::core::AddressSpace;
use crate::profile::Layout;
use crate::report::ReportBuilder;
use crate::sink::{Sink, SinkError};
use crate::value::RecoveredKey;

/// Keys walked between two progress updates.
const PROGRESS_BATCH: u64 = 4096;
/// Databases beyond this count are taken as a sign of a wrong layout.
const MAX_DBNUM: u64 = 1 << 16;

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

/// One database as found in memory.
#[derive(Debug, Clone)]
pub struct DbInfo {
    /// Its index.
    pub index: u32,
    /// The keys dict, or why it could not be read.
    pub keys: Result<DictHeader, Fault>,
    /// Address of the keys dict.
    pub keys_addr: u64,
    /// The expires dict, or why it could not be read.
    pub expires: Result<DictHeader, Fault>,
    /// Address of the expires dict.
    pub expires_addr: u64,
}

impl DbInfo {
    /// Keys the dict says it holds (0 when its header is unreadable).
    pub fn expected(&self) -> u64 {
        self.keys.as_ref().map_or(0, DictHeader::used)
    }

    /// Expires the expires dict says it holds.
    pub fn expected_expires(&self) -> u64 {
        self.expires.as_ref().map_or(0, DictHeader::used)
    }
}

/// Walks one core's keyspace with one build's layout.
pub struct KeyspaceWalker<'s, 'a> {
    space: &'s AddressSpace<'a>,
    layout: &'s Layout,
}

impl<'s, 'a> KeyspaceWalker<'s, 'a> {
    /// A walker over `space` with `layout`.
    pub fn new(space: &'s AddressSpace<'a>, layout: &'s Layout) -> Self {
        KeyspaceWalker { space, layout }
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
        let array_len = dbnum * l.db.size;
        if db_array == 0 || self.space.readable_len(db_array) < array_len {
            return Err(err(format!(
                "server.db ({db_array:#x}) does not point at {dbnum} readable databases"
            )));
        }
        let dicts = DictWalker::new(self.space, l);
        let mut out = Vec::with_capacity(dbnum as usize);
        for i in 0..dbnum {
            let base = db_array + i * l.db.size;
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
                keys: dicts.header(keys_addr),
                keys_addr,
                expires: dicts.header(expires_addr),
                expires_addr,
            });
        }
        Ok(out)
    }

    /// Expire times by key pointer, sorted for binary search, and whether the expires
    /// dict was read completely. When it was not, a key without a found TTL may have had
    /// one, so such keys must not be written as persistent.
    fn expires(&self, db: &DbInfo, report: &mut ReportBuilder) -> (Vec<(u64, i64)>, bool) {
        let h = match &db.expires {
            Ok(h) => h,
            Err(f) => {
                report.warning(format!("db {}: expires dict unreadable: {f}", db.index));
                return (Vec::new(), false);
            }
        };
        let mut out = Vec::with_capacity(h.used().min(1 << 24) as usize);
        let faults =
            DictWalker::new(self.space, self.layout).for_each(h, |k, v| out.push((k, v as i64)));
        for (bucket, f) in &faults.faults {
            report.warning(format!(
                "db {}: expires dict bucket {bucket}: {f}; keys whose TTL cannot be confirmed are reported lost",
                db.index
            ));
        }
        let complete = faults.count == 0 && out.len() as u64 == h.used();
        if faults.count == 0 && !complete {
            report.warning(format!(
                "db {}: expires dict yielded {} entries, its counter says {}; keys whose TTL cannot be confirmed are reported lost",
                db.index,
                out.len(),
                h.used()
            ));
        }
        out.sort_unstable_by_key(|e| e.0);
        (out, complete)
    }

    /// Walk every database, handing each recovered key to `sink` and every loss to `report`.
    pub fn walk(
        &self,
        dbs: &[DbInfo],
        sink: &mut dyn Sink,
        report: &mut ReportBuilder,
        mut progress: impl FnMut(u64),
    ) -> Result<(), WalkError> {
        let dicts = DictWalker::new(self.space, self.layout);
        let mut objects = ObjectDecoder::new(self.space, self.layout);
        let sds_format = sds::SdsFormat::of(self.layout);
        for db in dbs {
            report.db_seen(db);
            let keys = match &db.keys {
                Ok(h) => h,
                Err(f) => {
                    report.db_unreadable(db.index, f);
                    continue;
                }
            };
            if keys.used() == 0 && db.expected_expires() == 0 {
                continue;
            }
            let (expires, expires_complete) = self.expires(db, report);
            let expires_hint = db.expires.as_ref().map_or(0, DictHeader::size_hint);
            sink.begin_db(
                db.index,
                keys.size_hint(),
                expires_hint.min(expires.len() as u64),
            )?;
            let mut fatal: Option<SinkError> = None;
            let mut matched_expires = 0u64;
            let mut pending = 0u64;
            let faults = dicts.for_each(keys, |key_ptr, obj_ptr| {
                // Progress is reported in batches: a tick per key costs a clock read.
                pending += 1;
                if pending == PROGRESS_BATCH {
                    progress(pending);
                    pending = 0;
                }
                if fatal.is_some() {
                    return;
                }
                let key = match sds::read_sds(self.space, sds_format, key_ptr) {
                    Ok(k) => k,
                    Err(f) => return report.lost(db.index, None, None, &f),
                };
                let expire_ms = expires
                    .binary_search_by_key(&key_ptr, |e| e.0)
                    .ok()
                    .and_then(|i| expires.get(i))
                    .map(|e| e.1);
                if expire_ms.is_some() {
                    matched_expires += 1;
                } else if !expires_complete {
                    let f = Fault::bad(
                        "its TTL cannot be known: the expires dict is damaged (see warnings)",
                    );
                    return report.lost(db.index, Some(&key), None, &f);
                }
                let header = match objects.header(obj_ptr) {
                    Ok(h) => h,
                    Err(f) => return report.lost(db.index, Some(&key), None, &f),
                };
                let value = match objects.value(&header) {
                    Ok(v) => v,
                    Err(f) => return report.lost(db.index, Some(&key), Some(header.kind), &f),
                };
                let rk = RecoveredKey {
                    db: db.index,
                    key,
                    expire_ms,
                    kind: header.kind,
                    value,
                };
                match sink.key(&rk) {
                    Ok(()) => report.recovered(db.index, header.kind, expire_ms.is_some()),
                    Err(SinkError::Unwritable { reason }) => {
                        let f = Fault::Unsupported(reason);
                        report.lost(db.index, Some(&rk.key), Some(header.kind), &f);
                    }
                    Err(e) => fatal = Some(e),
                }
            });
            progress(pending);
            if let Some(e) = fatal {
                return Err(e.into());
            }
            report.chain_faults(db.index, &faults);
            let orphans = (expires.len() as u64).saturating_sub(matched_expires);
            if orphans > 0 {
                report.warning(format!(
                    "db {}: {orphans} expires entries point at no key found in the keys dict",
                    db.index
                ));
            }
        }
        Ok(())
    }
}
