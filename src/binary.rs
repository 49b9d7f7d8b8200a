//! The redis-server executable: its build-id, its symbols and where it sits in the core.

use std::fs::File;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol};

/// Failure to use the executable.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// It could not be opened.
    #[error("cannot read binary {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not an ELF file object can read.
    #[error("{path} is not a readable ELF executable: {reason}")]
    NotElf {
        /// The file.
        path: PathBuf,
        /// What object said.
        reason: String,
    },
}

/// An executable opened for symbol lookups.
pub struct Executable {
    /// Where it was read from.
    pub path: PathBuf,
    /// GNU build-id, hex.
    pub build_id: Option<String>,
    /// Lowest virtual address of a loadable segment (0 for PIE builds).
    pub first_vaddr: u64,
    map: memmap2::Mmap,
}

/// A resolved symbol, relative to the executable's load base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolInfo {
    /// Offset from the load base (the address of the ELF header in memory).
    pub offset: u64,
    /// Size in bytes as recorded in the symbol table.
    pub size: u64,
}

impl Executable {
    /// Open and parse `path`.
    pub fn open(path: &Path) -> Result<Self, BinaryError> {
        let file = File::open(path).map_err(|source| BinaryError::Io {
            path: path.to_owned(),
            source,
        })?;
        // SAFETY: read-only mapping of a file we keep open through `map`'s lifetime.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| BinaryError::Io {
            path: path.to_owned(),
            source,
        })?;
        let not_elf = |reason: String| BinaryError::NotElf {
            path: path.to_owned(),
            reason,
        };
        let obj = object::File::parse(&*map).map_err(|e| not_elf(e.to_string()))?;
        let build_id = obj
            .build_id()
            .map_err(|e| not_elf(e.to_string()))?
            .map(crate::core::hex);
        let first_vaddr = obj
            .segments()
            .filter(|s| s.file_range().0 == 0)
            .map(|s| s.address())
            .min()
            .unwrap_or(0);
        Ok(Executable {
            path: path.to_owned(),
            build_id,
            first_vaddr,
            map,
        })
    }

    /// The whole file, as mapped: for readers that need more than symbols (the machine code
    /// [`crate::code_refs`] decodes).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Look `name` up in `.symtab`, then `.dynsym`. A file-local static renamed by LTO
    /// (`name.lto_priv.N`) counts as `name`.
    pub fn symbol(&self, name: &str) -> Option<SymbolInfo> {
        let obj = object::File::parse(&*self.map).ok()?;
        let matches = |n: Result<&str, object::Error>| {
            n.is_ok_and(|n| {
                n == name
                    || n.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(".lto_priv."))
            })
        };
        let found = obj
            .symbols()
            .find(|s| matches(s.name()) && s.is_definition())
            .or_else(|| {
                obj.dynamic_symbols()
                    .find(|s| matches(s.name()) && s.is_definition())
            })?;
        Some(SymbolInfo {
            offset: found.address().checked_sub(self.first_vaddr)?,
            size: found.size(),
        })
    }
}
