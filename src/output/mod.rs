//! Where recovered keys go and in what form: an RDB file, RESTORE commands for
//! `redis-cli --pipe` or JSON lines, each written to a file or to stdout.
//!
//! A file appears only when complete: it is written under a temporary name in its own
//! directory and renamed into place after the last byte is synced, so a run that fails
//! leaves nothing behind. Every file holds key names and values, so files are created mode
//! 0600 ([`DEFAULT_MODE`]), wider only when asked (`--mode`). Stdout (`-o -`) is streamed as
//! the walk goes: nothing touches the local disk, and a run that fails half-way has already
//! written part of the stream (its exit status says so).

mod background;
pub mod jsonl;
pub mod resp;
pub mod restore;

use std::fs::{File, Permissions};
use std::io::{self, Write};

use background::BackgroundWriter;
use std::path::{Path, PathBuf};

use crate::report::Report;
use crate::sink::{Eviction, RdbSink, Sink, SinkError, Written};
use crate::value::{Bytes, Kind, RecoveredKey};

/// Permission bits of every file written unless `--mode` says otherwise: owner only, since a
/// dump or a report holds the keyspace.
pub const DEFAULT_MODE: u32 = 0o600;

/// The form of the keys written (`--format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// An RDB file a server of the target version loads.
    #[default]
    Rdb,
    /// `SELECT` and `RESTORE` commands in RESP, for `redis-cli --pipe`.
    Resp,
    /// One JSON object per key (and per function library or script), one per line.
    Jsonl,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Rdb, Format::Resp, Format::Jsonl];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Rdb => "rdb",
            Format::Resp => "resp",
            Format::Jsonl => "jsonl",
        }
    }

    /// The format named `name`.
    pub fn from_name(name: &str) -> Option<Format> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Permission bits from `--mode`'s octal text (`0640`, `640`, `0o640`): at most `0777`.
pub fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777)
}

/// How outputs are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputOptions {
    /// The form of the keys.
    pub format: Format,
    /// Permission bits of every file written (dump and report).
    pub mode: u32,
    /// RESP: `RESTORE … REPLACE` and `FUNCTION LOAD REPLACE`, overwriting what the target
    /// holds under the same names; without it the target refuses those (BUSYKEY).
    pub replace: bool,
    /// `--to`: restore into a running server instead of writing a file.
    pub to: Option<restore::RestoreOptions>,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            format: Format::Rdb,
            mode: DEFAULT_MODE,
            replace: false,
            to: None,
        }
    }
}

/// Where the output goes.
#[derive(Debug)]
pub enum Target {
    /// Standard output (`-o -`).
    Stdout,
    /// A file, created atomically.
    File(PathBuf),
    /// A running server or cluster (`--to`), already reached.
    Server(Box<restore::Server>),
}

impl Target {
    /// The target the options name: `--to` (reached now, so a wrong address or password
    /// fails before the walk), else `-o PATH` (see [`Target::check`]), else none.
    pub fn choose(
        output: Option<&Path>,
        opts: &OutputOptions,
        force: bool,
    ) -> Result<Option<Target>, OutputError> {
        match (&opts.to, output) {
            (Some(to), _) => Ok(Some(Target::Server(Box::new(restore::Server::connect(
                to,
            )?)))),
            (None, Some(path)) => Target::check(path, force).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The target `-o PATH` names: `-` is stdout. A file that exists is refused unless
    /// `force`, before any work is done.
    pub fn check(path: &Path, force: bool) -> Result<Target, OutputError> {
        if path == Path::new("-") {
            return Ok(Target::Stdout);
        }
        if !force && path.exists() {
            return Err(OutputError::Exists(path.to_owned()));
        }
        Ok(Target::File(path.to_owned()))
    }

    /// How the report names it.
    pub fn describe(&self) -> String {
        match self {
            Target::Stdout => "-".into(),
            Target::File(p) => p.display().to_string(),
            Target::Server(s) => s.describe(),
        }
    }

    /// The RDB version to encode for: `asked` (`--rdb-version`) or the source's, as long as
    /// a target server loads it; else the newest the server loads (values it cannot hold
    /// are then re-encoded or reported, as for `--rdb-version`).
    pub fn rdb_version(&self, asked: Option<u32>, source: u32) -> Result<u32, OutputError> {
        let Target::Server(s) = self else {
            return Ok(asked.unwrap_or(source));
        };
        let max = s.rdb_max();
        match asked {
            Some(v) if rdb::consts::loader_accepts(max, v) => Ok(v),
            Some(v) => Err(OutputError::Target(format!(
                "{} loads RDB {}, not --rdb-version {v}",
                s.describe(),
                rdb::consts::describe_versions(|x| rdb::consts::loader_accepts(max, x))
            ))),
            None if rdb::consts::loader_accepts(max, source) => Ok(source),
            None => Ok(max),
        }
    }
}

/// A key recovered and handed to an output that the output's target then refused (a
/// server's error reply to its RESTORE): it is lost after all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotWritten {
    /// Its db in the source.
    pub db: u32,
    /// The key.
    pub key: Vec<u8>,
    /// Its type and encoding.
    pub kind: Kind,
    /// Whether it has a TTL (it was counted among the db's expires).
    pub has_expire: bool,
    /// Why (the server's reply).
    pub reason: String,
}

/// An output that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output file exists.
    #[error("{0} exists; pass --force to overwrite it")]
    Exists(PathBuf),
    /// Creating, writing or moving the output failed.
    #[error("cannot write {what}: {source}")]
    Io {
        /// The file, or `stdout`.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// The format could not encode what it was given, or its writer failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The `--to` target is unusable: a bad URL, unreachable, refused the password, or
    /// loads no RDB version the options allow. Never holds the password.
    #[error("{0}")]
    Target(String),
}

/// What the RDB format writes before the keys; the other formats carry no header.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// The RDB version values are encoded for (every format encodes through it).
    pub rdb_version: u32,
    /// AUX fields of the RDB file.
    pub aux: &'a [(&'a str, String)],
}

/// What a finished output says about itself, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// The CRC-64 trailer of an RDB written (none for other formats, or below RDB 5).
    pub crc64: Option<u64>,
}

/// A sink that is also an output to finish: what [`open`] returns for every format.
pub trait Output: Sink {
    /// Keep per-key eviction data (IDLE/FREQ) as the source's policy says.
    fn set_eviction(&mut self, e: Eviction);
    /// Keys the target RDB version could not hold as they were, written re-encoded.
    fn reencoded(&self) -> u64;
    /// Completes what is in flight and returns the keys its target refused after they
    /// were accepted from the walk (only a server target refuses anything late).
    fn settle(&mut self) -> Result<Vec<NotWritten>, OutputError> {
        Ok(Vec::new())
    }
    /// Write what ends the output, flush it and, for a file, give it its mode, sync it and
    /// move it into place.
    fn finish(self: Box<Self>) -> Result<Finished, OutputError>;
}

/// The bytes of an output on their way to a file (under a temporary name) or to stdout.
pub struct Destination {
    /// Written on a thread of its own (the kernel's copy into the page cache overlaps the
    /// walk).
    w: BackgroundWriter<File>,
    /// The temporary file and the path it becomes; `None` for stdout.
    file: Option<(tempfile::TempPath, PathBuf)>,
    mode: u32,
    force: bool,
}

impl Destination {
    /// Opens `target`: a temporary file beside the final path, or a handle on stdout.
    pub fn open(target: &Target, mode: u32, force: bool) -> Result<Self, OutputError> {
        match target {
            Target::Stdout => {
                use std::os::fd::AsFd;
                // A file of our own on fd 1: std's stdout flushes on every newline, which
                // a binary stream does not want.
                let fd = io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|source| OutputError::Io {
                        what: "stdout".into(),
                        source,
                    })?;
                Ok(Destination {
                    w: background(File::from(fd), "stdout")?,
                    file: None,
                    mode,
                    force,
                })
            }
            Target::Server(_) => Err(OutputError::Target("a server is not a byte stream".into())),
            Target::File(path) => {
                let (file, temp) = temp_beside(path)?.into_parts();
                Ok(Destination {
                    w: background(file, &path.display().to_string())?,
                    file: Some((temp, path.clone())),
                    mode,
                    force,
                })
            }
        }
    }

    fn what(&self) -> String {
        match &self.file {
            Some((_, path)) => path.display().to_string(),
            None => "stdout".into(),
        }
    }

    /// Flushes everything; a file gets its mode, is synced and renamed into place (over an
    /// existing file only with `force`).
    pub fn commit(self) -> Result<(), OutputError> {
        let what = self.what();
        let err = |source| OutputError::Io {
            what: what.clone(),
            source,
        };
        let file = self.w.into_inner().map_err(err)?;
        let Some((temp, path)) = self.file else {
            return Ok(());
        };
        set_mode(&file, self.mode).map_err(err)?;
        file.sync_all().map_err(err)?;
        let persisted = if self.force {
            temp.persist(&path)
        } else {
            temp.persist_noclobber(&path)
        };
        persisted.map_err(|e| err(e.error))
    }
}

impl Write for Destination {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.w.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// `file` written on a thread of its own.
fn background(file: File, what: &str) -> Result<BackgroundWriter<File>, OutputError> {
    BackgroundWriter::new(file).map_err(|source| OutputError::Io {
        what: what.into(),
        source,
    })
}

/// A temporary file in `path`'s directory (so the final rename stays on one file system),
/// named after it and hidden, created 0600.
fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, OutputError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|source| OutputError::Io {
            what: path.display().to_string(),
            source,
        })
}

/// Sets the permission bits of `file` exactly (the umask does not apply to a chmod).
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(Permissions::from_mode(mode))
}

/// Opens the output `target` in the format `opts` asks for (a server target is restored
/// into with RESTOREs, whatever the format).
pub fn open(
    target: Target,
    opts: &OutputOptions,
    header: Header<'_>,
    force: bool,
) -> Result<Box<dyn Output>, OutputError> {
    if let Target::Server(server) = target {
        return Ok(Box::new(restore::RestoreSink::new(
            *server,
            header.rdb_version,
            opts.replace,
        )?));
    }
    let dest = Destination::open(&target, opts.mode, force)?;
    Ok(match opts.format {
        Format::Rdb => Box::new(RdbOutput {
            sink: RdbSink::new(dest, header.rdb_version, header.aux)?,
        }),
        Format::Resp => Box::new(resp::RespSink::new(dest, header.rdb_version, opts.replace)),
        Format::Jsonl => Box::new(jsonl::JsonlSink::new(dest, header.rdb_version)),
    })
}

/// Writes `report` as pretty JSON to `path`, atomically and with permission bits `mode`.
pub fn write_report(report: &Report, path: &Path, mode: u32) -> Result<(), OutputError> {
    let mut dest = Destination::open(&Target::File(path.to_owned()), mode, true)?;
    let written = serde_json::to_writer_pretty(&mut dest, report)
        .map_err(io::Error::from)
        .and_then(|()| dest.write_all(b"\n"));
    written.map_err(|source| OutputError::Io {
        what: path.display().to_string(),
        source,
    })?;
    dest.commit()
}

/// The RDB file format as an [`Output`].
struct RdbOutput {
    sink: RdbSink<Destination>,
}

impl Sink for RdbOutput {
    fn begin_db(&mut self, db: u32, keys: u64, expires: u64) -> Result<(), SinkError> {
        self.sink.begin_db(db, keys, expires)
    }
    fn key(&mut self, key: &RecoveredKey<'_>) -> Result<Written, SinkError> {
        self.sink.key(key)
    }
    fn functions(&mut self, libraries: &[Bytes<'_>]) -> Result<(), SinkError> {
        self.sink.functions(libraries)
    }
    fn lua_scripts(&mut self, scripts: &[Bytes<'_>]) -> Result<(), SinkError> {
        self.sink.lua_scripts(scripts)
    }
}

impl Output for RdbOutput {
    fn set_eviction(&mut self, e: Eviction) {
        self.sink.set_eviction(e);
    }
    fn reencoded(&self) -> u64 {
        self.sink.reencoded()
    }
    fn finish(self: Box<Self>) -> Result<Finished, OutputError> {
        let (dest, crc64) = self.sink.finish_with_crc()?;
        dest.commit()?;
        Ok(Finished { crc64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_file_appears_only_when_committed_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.rdb");
        let target = Target::check(&path, false).unwrap();
        let mut d = Destination::open(&target, DEFAULT_MODE, false).unwrap();
        d.write_all(b"data").unwrap();
        assert!(!path.exists(), "nothing under the final name before commit");
        d.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        assert_eq!(mode_of(&path), 0o600);
        // It exists now: refused without force, replaced with it, with the mode asked.
        assert!(matches!(
            Target::check(&path, false),
            Err(OutputError::Exists(_))
        ));
        let mut d = Destination::open(&target, 0o640, true).unwrap();
        d.write_all(b"new").unwrap();
        d.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode_of(&path), 0o640);
        // A destination dropped without commit leaves no file, temporary or final.
        let other = dir.path().join("never.rdb");
        let mut d = Destination::open(&Target::File(other.clone()), DEFAULT_MODE, false).unwrap();
        d.write_all(b"x").unwrap();
        drop(d);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("out.rdb")]);
    }

    #[test]
    fn modes_and_formats_by_name() {
        assert_eq!(parse_mode("0640"), Some(0o640));
        assert_eq!(parse_mode("600"), Some(0o600));
        assert_eq!(parse_mode("0o755"), Some(0o755));
        for bad in ["", "0800", "1777", "rw", "-1"] {
            assert_eq!(parse_mode(bad), None, "{bad}");
        }
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("json"), None);
    }

    #[test]
    fn dash_is_stdout_even_when_a_file_named_dash_exists() {
        assert!(matches!(
            Target::check(Path::new("-"), false),
            Ok(Target::Stdout)
        ));
        assert_eq!(Target::Stdout.describe(), "-");
    }

    #[test]
    fn reports_are_written_with_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_report(&Report::default(), &path, DEFAULT_MODE).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let back: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(back.get("dbs").is_some());
        write_report(&Report::default(), &path, 0o644).unwrap();
        assert_eq!(mode_of(&path), 0o644);
    }
}
