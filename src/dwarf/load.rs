//! Loading the debug information: the executable's own DWARF, else a separate debug file
//! found by build-id or debuglink (and a `.gnu_debugaltlink` file for shared types).

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use gimli::{EndianSlice, RunTimeEndian};
use object::Object;

use super::types::{self, TypeIndex};
use super::DwarfError;

/// The type index of the DWARF found, and where it came from.
pub(super) struct LoadedDwarf {
    pub(super) index: TypeIndex,
    pub(super) alt: Option<PathBuf>,
    /// The separate debug file the DWARF came from, for a stripped executable.
    pub(super) debug_file: Option<PathBuf>,
}

pub(super) fn object_error(path: &Path, e: impl fmt::Display) -> DwarfError {
    DwarfError::Object {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

pub(super) fn map_file(path: &Path) -> Result<memmap2::Mmap, DwarfError> {
    let io = |source| DwarfError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: read-only mapping; the file stays open while the map lives.
    unsafe { memmap2::Mmap::map(&file) }.map_err(io)
}

/// Where `.gnu_debugaltlink`'s file may be: as named (absolute, or relative to the
/// binary's directory), then under /usr/lib/debug/.dwz/, then by its file name beside the
/// file naming it (where a bundle unpacks it: src/bundle).
pub(crate) fn alt_candidates(binary: &Path, name: &str) -> Vec<PathBuf> {
    let named = Path::new(name);
    let dir = binary.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    if named.is_absolute() {
        out.push(named.to_owned());
    } else {
        out.push(dir.join(named));
    }
    let dwz = Path::new("/usr/lib/debug/.dwz");
    if let Some(i) = name.find(".dwz/") {
        if let Some(rest) = name.get(i + 5..) {
            out.push(dwz.join(rest));
        }
    }
    if let Some(file) = named.file_name() {
        out.push(dwz.join(file));
        out.push(dir.join(file));
    }
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

pub(super) fn load_dwarf(path: &Path, obj: &object::File<'_>) -> Result<LoadedDwarf, DwarfError> {
    if !obj.is_little_endian() {
        return Err(DwarfError::Unsupported {
            path: path.to_owned(),
            what: "a big-endian executable".into(),
        });
    }
    if obj.section_by_name(".debug_info").is_none() {
        return load_separate_debug_file(path, obj);
    }
    let endian = RunTimeEndian::Little;
    let dwarf_err = |source| DwarfError::Dwarf {
        path: path.to_owned(),
        source,
    };

    // Supplementary (dwz) file.
    let altlink = obj.gnu_debugaltlink().map_err(|e| object_error(path, e))?;
    let mut alt_map = None;
    if let Some((name, build_id)) = altlink {
        let name = String::from_utf8_lossy(name).into_owned();
        let tried = alt_candidates(path, &name);
        let found = tried.iter().find(|p| p.is_file()).cloned();
        let Some(alt_path) = found else {
            return Err(DwarfError::AltLinkMissing {
                path: path.to_owned(),
                name,
                tried,
            });
        };
        let map = map_file(&alt_path)?;
        {
            let alt_obj = object::File::parse(&*map).map_err(|e| object_error(&alt_path, e))?;
            let found_id = alt_obj
                .build_id()
                .map_err(|e| object_error(&alt_path, e))?
                .unwrap_or_default();
            if found_id != build_id {
                return Err(DwarfError::AltLinkMismatch {
                    path: path.to_owned(),
                    alt: alt_path,
                    found: crate::core::hex(found_id),
                    expected: crate::core::hex(build_id),
                });
            }
        }
        alt_map = Some((alt_path, map));
    }
    let alt_obj = match &alt_map {
        Some((p, m)) => Some(object::File::parse(&**m).map_err(|e| object_error(p, e))?),
        None => None,
    };
    let sections = gimli::DwarfSections::load(|id| types::section_data(obj, id))
        .map_err(|e| object_error(path, e))?;
    let sup_sections = match (&alt_obj, &alt_map) {
        (Some(o), Some((p, _))) => Some(
            gimli::DwarfSections::load(|id| types::section_data(o, id))
                .map_err(|e| object_error(p, e))?,
        ),
        _ => None,
    };
    let dwarf = sections.borrow_with_sup(sup_sections.as_ref(), |s| EndianSlice::new(s, endian));
    let index = TypeIndex::load(&dwarf).map_err(dwarf_err)?;
    Ok(LoadedDwarf {
        index,
        alt: alt_map.map(|(p, _)| p),
        debug_file: None,
    })
}

/// Where the separate debug file of a stripped executable may be, as GDB looks: by
/// build-id under /usr/lib/debug/.build-id/, then by `.gnu_debuglink` name beside the
/// executable, in its `.debug/` directory, and under /usr/lib/debug/ + its directory.
pub(crate) fn debug_file_candidates(
    binary: &Path,
    build_id: Option<&[u8]>,
    link: Option<&str>,
) -> Vec<PathBuf> {
    let root = Path::new("/usr/lib/debug");
    let mut out = Vec::new();
    if let Some(id) = build_id {
        let hex = crate::core::hex(id);
        if let (Some(head), Some(tail)) = (hex.get(..2), hex.get(2..)) {
            out.push(
                root.join(".build-id")
                    .join(head)
                    .join(format!("{tail}.debug")),
            );
        }
    }
    if let Some(link) = link {
        let dir = binary.parent().unwrap_or(Path::new("."));
        out.push(dir.join(link));
        out.push(dir.join(".debug").join(link));
        if let Ok(abs) = std::fs::canonicalize(dir) {
            if let Ok(rel) = abs.strip_prefix("/") {
                out.push(root.join(rel).join(link));
            }
        }
    }
    out
}

/// The DWARF of a stripped executable from its separate debug file (same build-id).
pub(super) fn load_separate_debug_file(
    path: &Path,
    obj: &object::File<'_>,
) -> Result<LoadedDwarf, DwarfError> {
    let build_id = obj.build_id().ok().flatten();
    let link = obj
        .gnu_debuglink()
        .ok()
        .flatten()
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned());
    let tried = debug_file_candidates(path, build_id, link.as_deref());
    for cand in &tried {
        if !cand.is_file() || cand.as_path() == path {
            continue;
        }
        let map = map_file(cand)?;
        let Ok(dobj) = object::File::parse(&*map) else {
            continue;
        };
        let same_build = match build_id {
            Some(id) => dobj.build_id().ok().flatten() == Some(id),
            None => true,
        };
        if !same_build || dobj.section_by_name(".debug_info").is_none() {
            continue;
        }
        let mut loaded = load_dwarf(cand, &dobj)?;
        loaded.debug_file = Some(cand.clone());
        return Ok(loaded);
    }
    Err(DwarfError::NoDebugInfo {
        path: path.to_owned(),
        debuglink: link,
        tried,
    })
}

pub(super) fn arch_name(obj: &object::File<'_>) -> String {
    match obj.architecture() {
        object::Architecture::X86_64 => "x86_64".into(),
        object::Architecture::Aarch64 => "aarch64".into(),
        object::Architecture::I386 => "x86".into(),
        object::Architecture::Arm => "arm".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}
