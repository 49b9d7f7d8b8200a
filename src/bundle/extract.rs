//! Reading a bundle: recognised by content ([`is_bundle`]), unpacked into a private
//! temporary directory ([`unpack`]: the core as a sparse file, as a compressed core is, the
//! executable and its debug files beside each other where a recovery looks for them), and
//! recovered from with its own executable ([`recover`]). Entries are written under names
//! of the tool's choosing, never under the archive's paths.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{BundleError, EntryKind, Manifest, CORE, FORMAT, FORMAT_VERSION, MANIFEST, PREFIX};
use crate::core::input::{copy_sparse, free_bytes, read_full, SparseError};
use crate::recover::{Log, Options, RecoverError};
use crate::report::Report;

/// zstd's frame magic.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// A manifest larger than this is not one.
const MAX_MANIFEST: u64 = 1 << 20;
/// Entries read beyond those the manifest lists, before the archive is called damaged.
const MAX_EXTRA_ENTRIES: usize = 64;
/// A tar header block.
const BLOCK: usize = 512;

/// A bundle unpacked into a temporary directory, removed when this is dropped.
#[derive(Debug)]
pub struct Unpacked {
    // Holds the files below; removed on drop.
    _dir: tempfile::TempDir,
    /// The bundle's manifest.
    pub manifest: Manifest,
    /// The core, as a sparse file.
    pub core: PathBuf,
    /// The executable, when the bundle has one.
    pub binary: Option<PathBuf>,
}

/// `path` is a bundle: a zstd stream whose payload starts with the manifest's tar entry.
/// Reads a few hundred bytes; any error means no.
pub fn is_bundle(path: &Path) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 4];
    if read_full(&mut file, &mut magic).ok() != Some(4) || magic != ZSTD_MAGIC {
        return false;
    }
    if file.seek(SeekFrom::Start(0)).is_err() {
        return false;
    }
    let Ok(mut decoder) = zstd::stream::read::Decoder::new(file) else {
        return false;
    };
    let mut header = [0u8; BLOCK];
    if read_full(&mut decoder, &mut header).ok() != Some(BLOCK) {
        return false;
    }
    // The ustar name field: 100 bytes, NUL-padded.
    let name = format!("{PREFIX}{MANIFEST}");
    header.starts_with(name.as_bytes()) && header.get(name.len()) == Some(&0)
}

/// Unpack the bundle at `path` into a private temporary directory (in `$TMPDIR`, mode 0700;
/// files 0600), checking every entry against the manifest: its size, and the executable's
/// build-id. The whole archive is read, so its zstd checksum is checked too.
pub fn unpack(
    path: &Path,
    progress: &crate::progress::ProgressHandle,
    log: Log<'_>,
) -> Result<Unpacked, BundleError> {
    let damaged = |reason: String| BundleError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let incomplete = |reason: String| BundleError::Incomplete {
        path: path.to_owned(),
        reason,
    };
    // A read error of the stream: a cut file ends the zstd frame early.
    let stream = |e: io::Error, at: &str| {
        if e.kind() == io::ErrorKind::UnexpectedEof || e.to_string().contains("incomplete frame") {
            incomplete(format!("it is cut off in {at} (zstd: {e})"))
        } else {
            damaged(format!("{at} does not decompress (zstd: {e})"))
        }
    };
    let file = File::open(path).map_err(|source| BundleError::Read {
        path: path.to_owned(),
        source,
    })?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let task = progress.start("unpacking", total, crate::progress::Unit::Bytes);
    let decoder = zstd::stream::read::Decoder::new(BufReader::with_capacity(
        1 << 16,
        crate::progress::Counted::new(file, task),
    ))
    .map_err(|e| damaged(format!("not a zstd stream: {e}")))?;
    let mut archive = tar::Archive::new(decoder);
    let tmp = std::env::temp_dir();
    let dir = tempfile::Builder::new()
        .prefix("redis-rescue-bundle.")
        .tempdir_in(&tmp)
        .map_err(|source| BundleError::Unpack {
            path: path.to_owned(),
            dir: tmp.clone(),
            source,
        })?;
    let unpack_err = |source| BundleError::Unpack {
        path: path.to_owned(),
        dir: dir.path().to_owned(),
        source,
    };
    let mut entries = archive
        .entries()
        .map_err(|e| damaged(format!("not a tar archive: {e}")))?;

    // The manifest, first.
    let mut first = match entries.next() {
        None => return Err(incomplete("the archive holds no entry".into())),
        Some(e) => e.map_err(|e| stream(e, "the manifest"))?,
    };
    if first.path_bytes().as_ref() != format!("{PREFIX}{MANIFEST}").as_bytes() {
        return Err(damaged(format!(
            "its first entry is {}, not the manifest",
            String::from_utf8_lossy(&first.path_bytes())
        )));
    }
    if first.size() > MAX_MANIFEST {
        return Err(damaged(format!(
            "its manifest is {} bytes long",
            first.size()
        )));
    }
    let mut text = Vec::new();
    (&mut first)
        .take(MAX_MANIFEST)
        .read_to_end(&mut text)
        .map_err(|e| stream(e, "the manifest"))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| damaged(format!("its manifest is not readable: {e}")))?;
    if manifest.format != FORMAT {
        return Err(damaged(format!(
            "its manifest is of format {:?}, not {FORMAT}",
            manifest.format
        )));
    }
    if manifest.format_version > FORMAT_VERSION {
        return Err(damaged(format!(
            "it was made by {} in bundle format {}, which this redis-rescue ({}) does not read (it reads up to {FORMAT_VERSION}); use a newer redis-rescue",
            manifest.tool,
            manifest.format_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    log(&format!(
        "bundle {}: {}",
        path.display(),
        manifest.describe()
    ));

    // The entries the manifest lists.
    let bin_dir = dir.path().join("bin");
    let debug_dir = bin_dir.join(".debug");
    std::fs::create_dir_all(&debug_dir).map_err(unpack_err)?;
    let mut seen: Vec<String> = Vec::new();
    let mut core = None;
    let mut binary = None;
    let limit = manifest.entries.len() + MAX_EXTRA_ENTRIES;
    for _ in 0..limit {
        let Some(next) = entries.next() else {
            break;
        };
        let at = format!(
            "the entry after {}",
            seen.last().map_or(MANIFEST, |s| s.as_str())
        );
        let mut e = next.map_err(|e| stream(e, &at))?;
        let full = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let name = full.strip_prefix(PREFIX).unwrap_or(&full).to_owned();
        let Some(listed) = manifest.entries.iter().find(|x| x.name == name) else {
            log(&format!(
                "note: {full} is not in the bundle's manifest; skipped"
            ));
            continue;
        };
        if e.size() != listed.size {
            return Err(damaged(format!(
                "{name} is {} bytes, its manifest says {}",
                e.size(),
                listed.size
            )));
        }
        let into = match listed.kind {
            EntryKind::Core => dir.path().join(CORE),
            EntryKind::Binary => bin_dir.join(file_name(&name)),
            EntryKind::Debug | EntryKind::Dwz => debug_dir.join(file_name(&name)),
            EntryKind::Maps | EntryKind::Report | EntryKind::Other => {
                seen.push(name);
                continue;
            }
        };
        let mut out = File::create(&into).map_err(unpack_err)?;
        let copied = match copy_sparse(&mut e, &mut out) {
            Ok(n) => n,
            Err(SparseError::Read(err)) => return Err(stream(err, &name)),
            Err(SparseError::Write { source, needed })
                if source.raw_os_error() == Some(libc::ENOSPC) =>
            {
                return Err(BundleError::NoRoom {
                    path: path.to_owned(),
                    needed,
                    dir: dir.path().to_owned(),
                    free: free_bytes(dir.path()).unwrap_or(0),
                })
            }
            Err(SparseError::Write { source, .. }) => return Err(unpack_err(source)),
        };
        if copied != listed.size {
            return Err(incomplete(format!(
                "{name} stops after {copied} of its {} bytes",
                listed.size
            )));
        }
        match listed.kind {
            EntryKind::Core => core = Some(into),
            EntryKind::Binary => binary = Some(into),
            _ => {}
        }
        seen.push(name);
    }
    // The rest of the stream (the archive's end blocks): reading it checks the zstd
    // checksum of the whole.
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|e| stream(e, "the end of the archive"))?;
    let missing: Vec<&str> = manifest
        .entries
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| !seen.iter().any(|s| s == n))
        .collect();
    if !missing.is_empty() {
        return Err(incomplete(format!(
            "it lacks {} (listed in its manifest)",
            missing.join(", ")
        )));
    }
    let Some(core) = core else {
        return Err(damaged("its manifest lists no core".into()));
    };
    if let (Some(b), Some(want)) = (&binary, manifest.binary.as_ref()) {
        let found = crate::binary::Executable::open(b)
            .map_err(|e| damaged(format!("its executable is unreadable: {e}")))?
            .build_id;
        if want.build_id.is_some() && found != want.build_id {
            return Err(damaged(format!(
                "its executable has build-id {}, its manifest says {}",
                found.as_deref().unwrap_or("(none)"),
                want.build_id.as_deref().unwrap_or("(none)")
            )));
        }
    }
    Ok(Unpacked {
        _dir: dir,
        manifest,
        core,
        binary,
    })
}

/// The last component of an entry name (entries are named by the tool, but a damaged
/// archive must not place a file outside the temporary directory).
fn file_name(name: &str) -> String {
    Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "unnamed".into())
}

/// Recover from the bundle `opts.core`: unpack it, then recover from its core with its
/// executable (unless `--binary` or `--no-binary` say otherwise). The report names the
/// bundle, not the temporary files.
pub fn recover(opts: &Options, log: Log<'_>) -> Result<Report, RecoverError> {
    let unpacked = unpack(&opts.core, &opts.progress, &mut *log)?;
    let mut inner = opts.clone();
    inner.core = unpacked.core.clone();
    let bundled = match (&unpacked.binary, &opts.binary, opts.no_binary) {
        (Some(b), None, false) => {
            inner.binary = Some(b.clone());
            true
        }
        _ => false,
    };
    if unpacked.binary.is_none() {
        if let Some(why) = &unpacked.manifest.binary_missing {
            log(&format!("note: the bundle holds no executable: {why}"));
        }
    }
    let rename = |r: &mut Report| {
        // The temporary path of the executable, where the log and report name it, becomes
        // its place in the bundle.
        if let (Some(tmp), Some(b)) = (&unpacked.binary, &unpacked.manifest.binary) {
            let tmp = tmp.display().to_string();
            let shown = format!("{}:{PREFIX}{}", opts.core.display(), b.entry);
            for field in [&mut r.source.server_found_by, &mut r.source.profile_choice] {
                *field = field.replace(&tmp, &shown);
            }
        }
        r.source.core = format!(
            "{} (bundle: {})",
            opts.core.display(),
            unpacked.manifest.describe()
        );
        if bundled {
            let b = unpacked.manifest.binary.as_ref();
            r.source.binary = Some(format!(
                "{}:{PREFIX}{} (from the bundle; read from {} where it was made)",
                opts.core.display(),
                b.map_or("bin", |b| b.entry.as_str()),
                b.map_or("?", |b| b.read_from.as_str())
            ));
        }
    };
    match crate::recover::recover(&inner, log) {
        Ok(mut r) => {
            rename(&mut r);
            Ok(r)
        }
        Err(RecoverError::NothingRecovered {
            expected,
            mut report,
        }) => {
            rename(&mut report);
            Err(RecoverError::NothingRecovered { expected, report })
        }
        Err(e) => Err(e),
    }
}
