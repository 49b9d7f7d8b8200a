//! Writing a bundle: the source opened (a core, or a live process stopped with ptrace), a dry
//! run on it, then the archive streamed through zstd into a temporary file beside the output
//! (or to stdout) and renamed into place once complete, mode 0600 unless `--mode`.
//!
//! From `--pid` the process stays stopped from before the dry run until the last byte of
//! its core is copied, so the report and the core describe one state; it is let go before
//! the archive is finished.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use object::Object;

use super::{
    elfcore, BundleError, BundleSource, BundledBinary, DryRun, Entry, EntryKind, Manifest, CORE,
    FORMAT, FORMAT_VERSION, MANIFEST, PREFIX,
};
use crate::binary::Executable;
use crate::core::input::open_core;
use crate::core::page_cache::CachePolicy;
use crate::core::CoreFile;
use crate::live::LiveRead;
use crate::output::{Destination, Target};
use crate::progress::Counted;
use crate::recover::{Log, Options, RecoverError};
use crate::report::Report;

/// Bytes copied per read of the process's memory.
const COPY_CHUNK: usize = 1 << 20;

/// What to bundle and how.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// A core file (plain or compressed), when not `pid`.
    pub core: Option<PathBuf>,
    /// A live process: its core is written by the tool.
    pub pid: Option<i32>,
    /// With `pid`: read it running instead of stopping it.
    pub no_freeze: bool,
    /// The archive to write, or `-` for stdout.
    pub output: PathBuf,
    /// The executable (`--binary`), instead of `/proc/PID/exe` or the core's NT_FILE path.
    pub binary: Option<PathBuf>,
    /// Layout profile for the dry run (`--profile`).
    pub profile: Option<String>,
    /// Make no dry run (`--no-dry-run`): from `--pid`, the process is then stopped only
    /// while its memory is copied.
    pub no_dry_run: bool,
    /// Overwrite the output; accept a binary whose build-id differs.
    pub force: bool,
    /// Permission bits of the archive.
    pub mode: u32,
    /// zstd compression level.
    pub level: i32,
    /// Where progress goes.
    pub progress: crate::progress::ProgressHandle,
}

/// A bundle written.
#[derive(Debug)]
pub struct Created {
    /// Where it went (a path, or `-`).
    pub output: String,
    /// The archive's size, for a file.
    pub archive_bytes: Option<u64>,
    /// What the manifest says.
    pub manifest: Manifest,
    /// The dry run's report, or why it failed; `None` with `--no-dry-run`.
    pub dry_run: Option<Result<Report, String>>,
    /// How the live process was held, for `pid`.
    pub live: Option<LiveRead>,
}

/// Write the bundle `opts` asks for; `log` gets progress lines.
pub fn create(opts: &BundleOptions, log: Log<'_>) -> Result<Created, BundleError> {
    let target = Target::check(&opts.output, opts.force)?;
    let what = target.describe();
    let werr = |source| BundleError::Write {
        what: what.clone(),
        source,
    };
    // The temporary file is created (0600) before the source is opened: a full disk or a
    // read-only directory fails before the process is stopped.
    let dest = Destination::open(&target, opts.mode, opts.force)?;
    let mut encoder = zstd::stream::write::Encoder::new(dest, opts.level).map_err(werr)?;
    // A damaged copy is then caught when the bundle is read.
    encoder.include_checksum(true).map_err(werr)?;
    let mut tar = tar::Builder::new(encoder);

    // ---- the source: a live process (stopped until its core is copied), or a core ----
    let mapped;
    let owned;
    let mut session = None;
    // `raw`: a core file's bytes, copied as they are.
    let (core, mut source, raw): (&CoreFile<'_>, BundleSource, Option<&[u8]>) =
        match (opts.pid, &opts.core) {
            (Some(pid), _) => {
                let (s, c) = crate::live::open(pid, !opts.no_freeze, &mut *log)?;
                session = Some(s);
                owned = c;
                let source = BundleSource {
                    kind: "pid".into(),
                    pid: Some(pid),
                    frozen: Some(!opts.no_freeze),
                    ..BundleSource::default()
                };
                (&owned, source, None)
            }
            (None, Some(path)) => {
                mapped = open_core(path, CachePolicy::Keep, &opts.progress)?;
                owned = CoreFile::parse(mapped.bytes()).map_err(|source| BundleError::Core {
                    path: path.clone(),
                    source,
                })?;
                let source = BundleSource {
                    kind: "core".into(),
                    pid: owned.process.as_ref().map(|p| p.pid),
                    core: Some(path.display().to_string()),
                    ..BundleSource::default()
                };
                (&owned, source, Some(mapped.bytes()))
            }
            (None, None) => return Err(BundleError::Usage("give a CORE or --pid PID".into())),
        };
    source.command = core
        .process
        .as_ref()
        .map(|p| format!("{}: {}", p.fname, p.psargs));
    let exe = core.executable();

    // ---- the executable, matched by build-id as a recovery matches it ----
    let label = match &session {
        Some(s) => PathBuf::from(s.source_label()),
        None => opts.core.clone().unwrap_or_default(),
    };
    let mut dry_opts = Options {
        core: label,
        binary: opts.binary.clone(),
        profile: opts.profile.clone(),
        dry_run: true,
        force: opts.force,
        progress: opts.progress.clone(),
        ..Options::default()
    };
    let running = session.as_ref().map(|s| s.binary_default(exe.as_ref()));
    let binary = crate::recover::choose_binary(&dry_opts, running.as_ref().or(exe.as_ref()), log)
        .map_err(|e| BundleError::Binary(Box::new(e)))?;
    let binary_missing = binary.is_none().then(|| {
        format!(
            "no executable with the core's build-id was found ({}); pass --binary",
            exe.as_ref()
                .map_or("the core names none", |e| e.path.as_str())
        )
    });
    dry_opts.binary = binary.as_ref().map(|b| b.path.clone());

    // ---- the dry run, on the state being bundled ----
    let dry_run =
        (!opts.no_dry_run).then(
            || match crate::recover::recover_opened(&dry_opts, core, log) {
                Ok(r) => Ok(r),
                Err(RecoverError::NothingRecovered { report, .. }) => Ok(*report),
                Err(e) => Err(e.to_string()),
            },
        );
    if let Some(Err(e)) = &dry_run {
        log(&format!(
            "warning: the dry run failed ({e}); the bundle is written all the same"
        ));
    }
    let report_json = match &dry_run {
        Some(Ok(r)) => Some(serde_json::to_vec_pretty(r).map_err(|e| werr(e.into()))?),
        _ => None,
    };

    // ---- what goes in, each with its size: the manifest comes first ----
    let mut files: Vec<(Entry, Content)> = Vec::new();
    if let Some(pid) = opts.pid {
        let maps = std::fs::read(format!("/proc/{pid}/maps")).map_err(|e| BundleError::Read {
            path: format!("/proc/{pid}/maps").into(),
            source: e,
        })?;
        files.push((
            entry("maps", EntryKind::Maps, maps.len()),
            Content::Bytes(maps),
        ));
    }
    if let Some(r) = report_json {
        files.push((
            entry("report.json", EntryKind::Report, r.len()),
            Content::Bytes(r),
        ));
    }
    let mut bundled_binary = None;
    if let Some(b) = &binary {
        let name = binary_name(exe.as_ref().map(|e| e.path.as_str()), &b.path);
        let e = file_entry(&format!("bin/{name}"), EntryKind::Binary, &b.path)?;
        bundled_binary = Some(BundledBinary {
            entry: e.0.name.clone(),
            read_from: b.path.display().to_string(),
            path_in_process: exe.as_ref().map(|e| e.path.clone()),
            build_id: b.build_id.clone(),
        });
        files.push(e);
        for (kind, path) in debug_files(b) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            log(&format!("debug file: {}", path.display()));
            files.push(file_entry(&format!("debug/{name}"), kind, &path)?);
        }
    }
    let image = match &session {
        Some(_) => {
            let image = elfcore::plan(core)?;
            source.mapped_bytes = Some(image.mapped);
            source.kept_bytes = Some(image.kept);
            source.unreadable = image
                .unreadable
                .iter()
                .map(|(a, n)| format!("{a:#x}+{n:#x}"))
                .collect();
            for u in &source.unreadable {
                log(&format!(
                    "warning: {u} cannot be read from the process; left out of the core"
                ));
            }
            Some(image)
        }
        None => None,
    };
    let core_len = match (&image, raw) {
        (Some(i), _) => i.len,
        (None, Some(r)) => r.len() as u64,
        (None, None) => 0,
    };
    let core_entry = Entry {
        name: CORE.into(),
        kind: EntryKind::Core,
        size: core_len,
    };
    let build_id = exe
        .as_ref()
        .and_then(|e| e.build_id.clone())
        .or_else(|| binary.as_ref().and_then(|b| b.build_id.clone()));
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        tool: format!("redis-rescue {}", env!("CARGO_PKG_VERSION")),
        created: now(),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
        source,
        build_id,
        binary: bundled_binary,
        binary_missing,
        dry_run: summary(&dry_run),
        entries: files
            .iter()
            .map(|(e, _)| e.clone())
            .chain(std::iter::once(core_entry.clone()))
            .collect(),
    };

    // ---- the archive ----
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| werr(e.into()))?;
    append(
        &mut tar,
        MANIFEST,
        manifest_json.len() as u64,
        manifest_json.as_slice(),
    )
    .map_err(werr)?;
    for (e, content) in files {
        match content {
            Content::Bytes(b) => append(&mut tar, &e.name, e.size, b.as_slice()),
            Content::File(path) => {
                let file = File::open(&path).map_err(|source| BundleError::Read {
                    path: path.clone(),
                    source,
                })?;
                append(&mut tar, &e.name, e.size, file)
            }
        }
        .map_err(werr)?;
    }
    let task = opts
        .progress
        .start("bundling the core", core_len, crate::progress::Unit::Bytes);
    match (&image, core.space.process_memory()) {
        (Some(image), Some(mem)) => {
            let reader = BufReader::with_capacity(COPY_CHUNK, image.reader(mem));
            append(&mut tar, CORE, core_len, Counted::new(reader, task))
        }
        _ => append(
            &mut tar,
            CORE,
            core_len,
            Counted::new(raw.unwrap_or_default(), task),
        ),
    }
    .map_err(werr)?;
    // The copy is done: the process runs again before the archive is finished.
    let live = session.take().map(|s| s.release(&mut *log));
    let encoder = tar.into_inner().map_err(werr)?;
    let dest = encoder.finish().map_err(werr)?;
    dest.commit()?;
    let archive_bytes = match &target {
        Target::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        _ => None,
    };
    Ok(Created {
        output: what,
        archive_bytes,
        manifest,
        dry_run,
        live,
    })
}

/// What an entry is written from.
enum Content {
    Bytes(Vec<u8>),
    File(PathBuf),
}

fn entry(name: &str, kind: EntryKind, size: usize) -> Entry {
    Entry {
        name: name.into(),
        kind,
        size: size as u64,
    }
}

fn file_entry(name: &str, kind: EntryKind, path: &Path) -> Result<(Entry, Content), BundleError> {
    let size = std::fs::metadata(path)
        .map_err(|source| BundleError::Read {
            path: path.to_owned(),
            source,
        })?
        .len();
    Ok((
        Entry {
            name: name.into(),
            kind,
            size,
        },
        Content::File(path.to_owned()),
    ))
}

/// Append `name` (under [`PREFIX`]), mode 0600, with exactly `size` bytes of `data`: a
/// source that ends early or runs on (a file changing while it is copied) is an error, not
/// a misaligned archive.
fn append(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    size: u64,
    data: impl Read,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(now());
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(
        &mut header,
        format!("{PREFIX}{name}"),
        Exact {
            inner: data,
            left: size,
            name,
        },
    )
}

/// A reader yielding exactly `left` bytes of `inner`, or an error.
struct Exact<'n, R> {
    inner: R,
    left: u64,
    name: &'n str,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One more byte would mean the source grew.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(format!(
                    "{} grew while it was copied",
                    self.name
                ))),
            };
        }
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ended {} bytes early", self.name, self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The file name the executable goes by in the bundle: the process's name for it (not
/// `exe`, for `/proc/PID/exe`), without a ` (deleted)` mark.
fn binary_name(in_process: Option<&str>, read_from: &Path) -> String {
    let named = in_process
        .map(|p| p.trim_end_matches(" (deleted)"))
        .map(Path::new)
        .unwrap_or(read_from);
    named
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "exe")
        .unwrap_or_else(|| "redis-server".into())
}

/// The separate debug file of `binary`, found by build-id (and `.gnu_debuglink`) where GDB
/// looks, and the `dwz` file it names; each checked by build-id.
fn debug_files(binary: &Executable) -> Vec<(EntryKind, PathBuf)> {
    let Ok(obj) = object::File::parse(binary.bytes()) else {
        return Vec::new();
    };
    let id = obj.build_id().ok().flatten();
    let link = obj
        .gnu_debuglink()
        .ok()
        .flatten()
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned());
    let Some(debug) = crate::dwarf::debug_file_candidates(&binary.path, id, link.as_deref())
        .into_iter()
        .find(|p| p != &binary.path && same_build(p, id))
    else {
        return Vec::new();
    };
    let mut out = vec![(EntryKind::Debug, debug.clone())];
    let alt = Executable::open(&debug).ok().and_then(|d| {
        let obj = object::File::parse(d.bytes()).ok()?;
        let (name, alt_id) = obj.gnu_debugaltlink().ok().flatten()?;
        let name = String::from_utf8_lossy(name).into_owned();
        crate::dwarf::alt_candidates(&debug, &name)
            .into_iter()
            .find(|p| same_build(p, Some(alt_id)))
    });
    if let Some(a) = alt {
        out.push((EntryKind::Dwz, a));
    }
    out
}

/// `path` is an ELF file with build-id `id` (any, when `id` is unknown).
fn same_build(path: &Path, id: Option<&[u8]>) -> bool {
    path.is_file()
        && Executable::open(path).is_ok_and(|e| match id {
            Some(id) => e.build_id.as_deref() == Some(crate::core::hex(id).as_str()),
            None => true,
        })
}

fn summary(dry_run: &Option<Result<Report, String>>) -> DryRun {
    match dry_run {
        None => DryRun {
            error: Some("not run (--no-dry-run)".into()),
            ..DryRun::default()
        },
        Some(Ok(r)) => DryRun {
            keys: Some(r.totals.keys),
            expected: Some(r.totals.expected),
            lost: Some(r.totals.lost),
            profile: Some(r.source.profile.clone()),
            redis_version: Some(r.source.redis_version.clone()),
            error: None,
        },
        Some(Err(e)) => DryRun {
            error: Some(e.clone()),
            ..DryRun::default()
        },
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
