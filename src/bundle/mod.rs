//! `redis-rescue bundle`: everything needed to recover a keyspace elsewhere, in one archive,
//! as people ship cores from a customer site to an analyst; and its recovery, on a machine
//! with nothing else installed.
//!
//! A bundle is a tar archive compressed with zstd as it is written (no full-size temporary
//! file). Its first entry is the [`Manifest`] (`redis-rescue-bundle/manifest.json`), which is
//! how a bundle is recognised ([`is_bundle`]: a zstd stream whose payload starts with that
//! entry), then, each listed in the manifest with its size:
//! - `maps`: `/proc/PID/maps` (from `--pid`);
//! - `report.json`: the report of a dry run made while the source was held (absent when the
//!   dry run failed; the manifest then says why);
//! - `bin/NAME`: the executable, matched by build-id as a recovery matches it;
//! - `debug/NAME`: its separate debug file (found by build-id under /usr/lib/debug, as GDB
//!   looks) and the `dwz` supplementary file that one names, when present;
//! - `core`: the ELF core: from a core file, that core (decompressed); from `--pid`, one
//!   written by the tool itself while the process is stopped ([`elfcore`]: the writable
//!   mappings and the executable's header page only).
//!
//! Every entry is mode 0600 and so is the archive (wider with `--mode`): it holds every key
//! and value. [`recover`] unpacks the core to a sparse temporary file and the binary and
//! debug files to a private temporary directory, and recovers with that binary.

pub mod create;
pub mod elfcore;
pub mod extract;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use create::{create, BundleOptions, Created};
pub use extract::{is_bundle, recover, unpack, Unpacked};

/// What [`Manifest::format`] says.
pub const FORMAT: &str = "redis-rescue-bundle";
/// The layout of bundles this build writes; it reads this one and older.
pub const FORMAT_VERSION: u32 = 1;
/// The directory every entry sits in.
pub const PREFIX: &str = "redis-rescue-bundle/";
/// The manifest's entry name, under [`PREFIX`].
pub const MANIFEST: &str = "manifest.json";
/// The core's entry name.
pub const CORE: &str = "core";

/// A bundle could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Bad combination of options.
    #[error("{0}")]
    Usage(String),
    /// The archive exists, or its file could not be created or moved into place.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// The core could not be opened.
    #[error(transparent)]
    Input(#[from] crate::core::input::InputError),
    /// The core is not a usable core.
    #[error("{path}: {source}")]
    Core {
        /// The core.
        path: PathBuf,
        /// What is wrong.
        source: crate::core::CoreError,
    },
    /// The live process could not be stopped or read.
    #[error(transparent)]
    Live(#[from] crate::live::LiveError),
    /// The process's core could not be planned.
    #[error(transparent)]
    ElfCore(#[from] elfcore::ElfCoreError),
    /// The binary given is unusable or is not the core's.
    #[error(transparent)]
    Binary(Box<crate::recover::RecoverError>),
    /// Writing the archive failed (or reading what goes into it).
    #[error("writing the bundle {what} failed: {source}")]
    Write {
        /// The archive.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file to put in the bundle could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bundle is damaged: it cannot be decompressed or unpacked, or is not what its
    /// manifest says.
    #[error("{path} is a damaged bundle: {reason}")]
    Damaged {
        /// The bundle.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The bundle ends before everything its manifest lists.
    #[error("{path} is an incomplete bundle: {reason}; copy it again from where it was made (`zstd -t` checks a copy)")]
    Incomplete {
        /// The bundle.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// Unpacking it needs a temporary directory.
    #[error("cannot unpack {path} into {dir}: {source}")]
    Unpack {
        /// The bundle.
        path: PathBuf,
        /// The temporary directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The core does not fit in the temporary directory.
    #[error("{path}: unpacking its core needs at least {needed} bytes in {dir}, which has {free} bytes free; set TMPDIR to a directory with room")]
    NoRoom {
        /// The bundle.
        path: PathBuf,
        /// Bytes needed (at least).
        needed: u64,
        /// The temporary directory.
        dir: PathBuf,
        /// Bytes free there.
        free: u64,
    },
}

/// The first entry of a bundle: what it is, where it came from and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The bundle layout, [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The redis-rescue that wrote it (`redis-rescue 0.1.0`).
    pub tool: String,
    /// When it was written, in Unix seconds.
    pub created: u64,
    /// The host name of the machine it was made on.
    pub host: String,
    /// Where the memory came from.
    pub source: BundleSource,
    /// GNU build-id of the executable, read from its header in the process's memory (else
    /// from the binary).
    pub build_id: Option<String>,
    /// The executable in the bundle; `null` when none matched the core (see
    /// `binary_missing`).
    pub binary: Option<BundledBinary>,
    /// Why the bundle holds no executable.
    pub binary_missing: Option<String>,
    /// What the dry run found, or why it failed.
    pub dry_run: DryRun,
    /// Every entry after the manifest, in archive order.
    pub entries: Vec<Entry>,
}

/// Where a bundle's memory came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BundleSource {
    /// `pid` (a live process, its core written by the tool) or `core` (a core file).
    pub kind: String,
    /// The process id.
    pub pid: Option<i32>,
    /// The process's name and command line (NT_PRPSINFO).
    pub command: Option<String>,
    /// The core file, for `core`.
    pub core: Option<String>,
    /// For `pid`: every thread was stopped while the dry run and the copy ran.
    pub frozen: Option<bool>,
    /// For `pid`: bytes the process mapped.
    pub mapped_bytes: Option<u64>,
    /// For `pid`: bytes of memory kept in the core.
    pub kept_bytes: Option<u64>,
    /// For `pid`: ranges to keep that the kernel refused to read (`0xADDR+LEN`), left out.
    #[serde(default)]
    pub unreadable: Vec<String>,
}

/// The executable in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundledBinary {
    /// Its entry name (under [`PREFIX`]).
    pub entry: String,
    /// Where it was read (`/proc/PID/exe`, `--binary`, or the path NT_FILE names).
    pub read_from: String,
    /// The path the process (or the core's NT_FILE) names it by.
    pub path_in_process: Option<String>,
    /// Its GNU build-id.
    pub build_id: Option<String>,
}

/// The dry run made when the bundle was written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DryRun {
    /// Keys counted.
    pub keys: Option<u64>,
    /// Keys the dicts' own counters hold.
    pub expected: Option<u64>,
    /// Keys that could not be read.
    pub lost: Option<u64>,
    /// The layout profile chosen.
    pub profile: Option<String>,
    /// The server's version.
    pub redis_version: Option<String>,
    /// Why it failed (then `report.json` is absent unless the walk itself ran).
    pub error: Option<String>,
}

/// One entry of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Its name under [`PREFIX`].
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its size in bytes.
    pub size: u64,
}

/// What an entry of a bundle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// The ELF core.
    Core,
    /// The executable.
    Binary,
    /// Its separate debug file.
    Debug,
    /// The `dwz` supplementary file its debug file names.
    Dwz,
    /// `/proc/PID/maps`.
    Maps,
    /// The dry run's report.
    Report,
    /// Something a later version added: not needed to recover.
    #[serde(other)]
    Other,
}

impl Manifest {
    /// One line for the log: who made the bundle, when, where, and from what.
    pub fn describe(&self) -> String {
        let from = match (self.source.kind.as_str(), self.source.pid) {
            ("pid", Some(pid)) => format!(
                "live process {pid}{}",
                self.source
                    .command
                    .as_deref()
                    .map_or(String::new(), |c| format!(" ({c})"))
            ),
            _ => format!(
                "core {}",
                self.source.core.as_deref().unwrap_or("(unnamed)")
            ),
        };
        format!(
            "made by {} on {} at Unix time {} from {from}",
            self.tool, self.host, self.created
        )
    }
}
