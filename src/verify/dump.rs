//! The dump as verify sees it: a first pass over the file that checks it whole (structure and
//! CRC-64) and sums it up per database, without keeping values.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use rdb::reader::{Checksum, RdbReader, ReadError};

/// Keys longer than this are not used as probes.
const MAX_PROBE_KEY: usize = 1024;
/// How many keys are kept to probe a running server with.
pub const PROBES: usize = 16;
/// A probe key must not expire within this many ms of the scan.
const PROBE_TTL_MARGIN_MS: i64 = 600_000;

/// One database of the dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbSummary {
    /// Keys.
    pub keys: u64,
    /// Keys with an expire time.
    pub expires: u64,
    /// Keys per type name (as `TYPE` prints it).
    pub types: BTreeMap<String, u64>,
}

/// What the first pass learnt about the dump.
#[derive(Debug, Clone)]
pub struct DumpSummary {
    /// RDB version of the file.
    pub rdb_version: u32,
    /// The `redis-ver` AUX field (`valkey-` + `valkey-ver` for Valkey), if present.
    pub redis_ver: Option<String>,
    /// Per database.
    pub dbs: BTreeMap<u32, DbSummary>,
    /// Keys in all.
    pub keys: u64,
    /// Keys with an expire time, in all.
    pub expires: u64,
    /// Outcome of the trailer check.
    pub checksum: Checksum,
    /// Function libraries in the file.
    pub functions: u64,
    /// Size of the file.
    pub bytes: u64,
    /// A few (db, key) pairs without a near expire time, to look for on a running server.
    pub probes: Vec<(u32, Vec<u8>)>,
}

/// Why the dump could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The dump.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid RDB.
    #[error("{path}: {source}")]
    Read {
        /// The dump.
        path: String,
        /// What is wrong, where.
        source: ReadError,
    },
}

/// Opens `path` for reading entries.
pub fn open(path: &Path) -> Result<RdbReader<File>, DumpError> {
    let file = File::open(path).map_err(|source| DumpError::Open {
        path: path.display().to_string(),
        source,
    })?;
    RdbReader::new(file).map_err(|source| DumpError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The server version an RDB's AUX fields name: `valkey-<valkey-ver>`, else `redis-ver`.
pub fn version_of<R>(r: &RdbReader<R>) -> Option<String>
where
    R: std::io::Read,
{
    if let Some(v) = r.aux_value(b"valkey-ver") {
        return Some(format!("valkey-{}", String::from_utf8_lossy(v)));
    }
    r.aux_value(b"redis-ver")
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Reads the whole dump once; `now_ms` decides which keys are safe probes.
pub fn scan(path: &Path, now_ms: i64) -> Result<DumpSummary, DumpError> {
    let err = |source| DumpError::Read {
        path: path.display().to_string(),
        source,
    };
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut r = open(path)?;
    let mut dbs: BTreeMap<u32, DbSummary> = BTreeMap::new();
    let mut probes = Vec::new();
    let (mut keys, mut expires) = (0u64, 0u64);
    while let Some(e) = r.next_entry().map_err(err)? {
        let db = dbs.entry(e.db).or_default();
        db.keys += 1;
        keys += 1;
        if e.expire_ms.is_some() {
            db.expires += 1;
            expires += 1;
        }
        let ty = e.value.type_name();
        match db.types.get_mut(ty) {
            Some(n) => *n += 1,
            None => {
                db.types.insert(ty.to_owned(), 1);
            }
        }
        let lasting = e
            .expire_ms
            .is_none_or(|t| t > now_ms.saturating_add(PROBE_TTL_MARGIN_MS));
        if probes.len() < PROBES && lasting && e.key.len() <= MAX_PROBE_KEY {
            probes.push((e.db, e.key));
        }
    }
    let redis_ver = version_of(&r);
    Ok(DumpSummary {
        rdb_version: r.version(),
        redis_ver,
        dbs,
        keys,
        expires,
        checksum: r.checksum().unwrap_or(Checksum::Absent),
        functions: r.functions(),
        bytes,
        probes,
    })
}
