//! The recovery report as `verify` reads it back: the fields it checks, each optional, so a
//! report from an older or newer redis-rescue still loads.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// `source` of a recovery report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReportSource {
    /// The core the keyspace came from.
    pub core: String,
    /// Redis version of the layout profile (what the dump must be loaded into).
    pub redis_version: String,
    /// Build-id of the dumped executable.
    pub build_id: Option<String>,
    /// Profile name.
    pub profile: String,
    /// `redis` or `valkey` (reports before this field: empty, told by the profile's name).
    pub server: String,
}

/// Per-database figures of a recovery report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReportDb {
    /// Keys written to the dump.
    pub keys: u64,
    /// Of those, keys with a TTL.
    pub expires: u64,
    /// Keys the dicts counted.
    pub expected: u64,
    /// Keys not recovered.
    pub lost: u64,
    /// Recovered keys by type and encoding.
    pub by_type: BTreeMap<String, BTreeMap<String, u64>>,
}

impl ReportDb {
    /// Recovered keys per type name (encodings summed).
    pub fn types(&self) -> BTreeMap<String, u64> {
        self.by_type
            .iter()
            .map(|(t, encs)| (t.clone(), encs.values().sum()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The parts of a recovery report (`DUMP.report.json`) that `verify` uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RecoveryReport {
    /// Tool name and version.
    pub tool: String,
    /// Where the data came from.
    pub source: ReportSource,
    /// The RDB written.
    pub output: Option<String>,
    /// RDB version written.
    pub rdb_version: u32,
    /// A dry run writes no dump.
    pub dry_run: bool,
    /// Per database.
    pub dbs: BTreeMap<u32, ReportDb>,
    /// Sums over the dbs.
    pub totals: ReportDb,
    /// Lost keys listed (only their number matters here).
    pub lost_keys: Vec<serde_json::Value>,
    /// Lost keys not listed.
    pub lost_keys_not_listed: u64,
    /// CRC-64 of the RDB written, as 16 hex digits, when the report records it.
    pub rdb_crc64: Option<String>,
}

/// Why a report could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read.
    #[error("cannot read the report {path}: {source}")]
    Read {
        /// The report path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a recovery report.
    #[error("{path} is not a redis-rescue report: {source}")]
    Parse {
        /// The report path.
        path: String,
        /// The error.
        source: serde_json::Error,
    },
}

impl RecoveryReport {
    /// Reads and parses the report at `path`.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ReportError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// The recorded RDB checksum, if any and well-formed.
    pub fn crc64(&self) -> Option<u64> {
        let s = self.rdb_crc64.as_deref()?;
        u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
    }

    /// The version the dump must be loaded into, in the form verify compares with the
    /// server's (`7.0.15`, `valkey-8.1.8`); `None` when the report does not say.
    pub fn server_version(&self) -> Option<String> {
        let v = self.source.redis_version.trim();
        if v.is_empty() {
            return None;
        }
        let valkey = (self.source.server == "valkey"
            || (self.source.server.is_empty() && self.source.profile.starts_with("valkey")))
            && !v.starts_with("valkey");
        Some(if valkey {
            format!("valkey-{v}")
        } else {
            v.to_owned()
        })
    }

    /// Lost keys in all.
    pub fn lost(&self) -> u64 {
        self.totals
            .lost
            .max(self.lost_keys.len() as u64 + self.lost_keys_not_listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_recover_writes() {
        let mut b = crate::report::ReportBuilder::new(
            crate::report::Source {
                redis_version: "7.0.15".into(),
                ..Default::default()
            },
            10,
            false,
        );
        b.set_output(Some("x.rdb".into()));
        let report = b.finish();
        let text = serde_json::to_string(&report).expect("serialize");
        let back: RecoveryReport = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.source.redis_version, "7.0.15");
        assert_eq!(back.rdb_version, 10);
        assert_eq!(back.output.as_deref(), Some("x.rdb"));
        assert!(back.rdb_crc64.is_none());

        let json = r#"{"dbs": {"3": {"keys": 5, "by_type": {"string": {"raw": 2, "int": 1}, "list": {"quicklist": 2}}}},
                       "rdb_crc64": "00000000000000ff", "future_field": [1]}"#;
        let r: RecoveryReport = serde_json::from_str(json).expect("lenient parse");
        let db = &r.dbs[&3];
        assert_eq!(db.keys, 5);
        assert_eq!(db.types().get("string"), Some(&3));
        assert_eq!(r.crc64(), Some(255));
        assert_eq!(r.server_version(), None);
        let r: RecoveryReport = serde_json::from_str(
            r#"{"source": {"redis_version": "8.1.8", "profile": "valkey-8.1.8"}}"#,
        )
        .expect("parse");
        assert_eq!(r.server_version().as_deref(), Some("valkey-8.1.8"));
    }
}
