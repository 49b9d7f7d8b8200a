//! Opening the core: plain files are mapped; compressed cores (`.zst` from
//! systemd-coredump, and `.xz`, `.gz`, `.lz4`, recognised by their magic bytes, not their
//! names) are first decompressed to a sparse temporary file in `$TMPDIR`, which is refused
//! up front when the decompressed size is known and does not fit there.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::progress::{Counted, ProgressHandle, Unit};

/// Failure to open or decompress the core file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{0} is empty")]
    Empty(PathBuf),
    /// Decompression failed.
    #[error("cannot decompress {path} ({format}): {source}")]
    Decompress {
        /// The file.
        path: PathBuf,
        /// The compression format.
        format: Compression,
        /// The cause.
        source: std::io::Error,
    },
    /// The decompressed core does not fit in the temporary directory.
    #[error("{path} decompresses to at least {needed} bytes ({format}), but {dir} has {free} bytes free; set TMPDIR to a directory with room")]
    NoRoom {
        /// The file.
        path: PathBuf,
        /// The compression format.
        format: Compression,
        /// Bytes the decompressed core takes (at least, when found while writing).
        needed: u64,
        /// The temporary directory.
        dir: PathBuf,
        /// Bytes free there.
        free: u64,
    },
}

/// A compression format of core files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd (systemd-coredump's default).
    Zstd,
    /// xz.
    Xz,
    /// gzip.
    Gzip,
    /// An LZ4 frame (systemd-coredump built with lz4).
    Lz4,
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
        })
    }
}

impl Compression {
    /// The format whose magic bytes start `head`, if any.
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        const MAGICS: [(&[u8], Compression); 4] = [
            (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
            (&[0x1f, 0x8b], Compression::Gzip),
            (&[0x04, 0x22, 0x4d, 0x18], Compression::Lz4),
        ];
        MAGICS
            .iter()
            .find(|(m, _)| head.starts_with(m))
            .map(|(_, c)| *c)
    }

    /// The decompressed size when the format's header or trailer states it (zstd frame
    /// content size, the lz4 frame's content size, gzip's ISIZE for files under 4 GiB):
    /// a lower bound for checking room up front. xz keeps it in an index that is not read.
    fn stated_size(self, file: &mut File) -> Option<u64> {
        let mut head = [0u8; 18];
        file.seek(SeekFrom::Start(0)).ok()?;
        let n = read_full(file, &mut head).ok()?;
        let head = head.get(..n)?;
        match self {
            Compression::Zstd => zstd::zstd_safe::get_frame_content_size(head).ok().flatten(),
            Compression::Lz4 => {
                // FLG bit 3: a content size follows the 2 descriptor bytes.
                let flg = *head.get(4)?;
                if flg & 0x08 == 0 {
                    return None;
                }
                let size: [u8; 8] = head.get(6..14)?.try_into().ok()?;
                Some(u64::from_le_bytes(size))
            }
            Compression::Gzip => {
                // ISIZE is the size modulo 2^32: only a lower bound, and right for small
                // files; a core of 4 GiB or more may state less than it takes.
                let len = file.metadata().ok()?.len();
                file.seek(SeekFrom::Start(len.checked_sub(4)?)).ok()?;
                let mut isize = [0u8; 4];
                file.read_exact(&mut isize).ok()?;
                Some(u64::from(u32::from_le_bytes(isize)))
            }
            Compression::Xz => None,
        }
    }
}

/// A core file mapped read-only, possibly backed by a decompressed temporary copy.
pub struct MappedCore {
    map: memmap2::Mmap,
    // Kept open so the mapping stays valid; deleted on drop when it is a temporary copy.
    _file: File,
    _temp: Option<tempfile::TempPath>,
    /// The compression of the input, when it was decompressed.
    pub decompressed: Option<Compression>,
    /// What was done to the core's page cache before the walk.
    pub page_cache: super::page_cache::CacheOutcome,
}

impl MappedCore {
    /// The core's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InputError + '_ {
    move |source| InputError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Open `path`, decompressing a compressed core (recognised by its magic), its progress
/// reported to `progress`, and prepare its page cache for the walk by `cache` (see
/// [`super::page_cache`]).
pub fn open_core(
    path: &Path,
    cache: super::page_cache::CachePolicy,
    progress: &ProgressHandle,
) -> Result<MappedCore, InputError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut magic = [0u8; 6];
    let n = read_full(&mut file, &mut magic).map_err(io_err(path))?;
    if n == 0 {
        return Err(InputError::Empty(path.to_owned()));
    }
    let format = magic.get(..n).and_then(Compression::sniff);
    let (file, temp) = match format {
        Some(format) => {
            let (f, t) = decompress(path, file, format, progress)?;
            (f, Some(t))
        }
        None => (file, None),
    };
    // SAFETY: the mapping is read-only and the file stays open for the mapping's lifetime.
    // A core truncated by someone else while mapped would raise SIGBUS; cores are not
    // modified in place by the tools that write them.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
    let page_cache = super::page_cache::prepare(&file, &map, cache, progress);
    Ok(MappedCore {
        map,
        _file: file,
        decompressed: format,
        page_cache,
        _temp: temp,
    })
}

/// Free bytes for an unprivileged writer in the file system holding `dir`.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes into the zeroed struct we pass; `c` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pointers are valid for the call.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

fn decompress(
    path: &Path,
    mut input: File,
    format: Compression,
    progress: &ProgressHandle,
) -> Result<(File, tempfile::TempPath), InputError> {
    let dir = std::env::temp_dir();
    let free = free_bytes(&dir);
    let no_room = |needed: u64, free: u64| InputError::NoRoom {
        path: path.to_owned(),
        format,
        needed,
        dir: dir.clone(),
        free,
    };
    if let (Some(needed), Some(free)) = (format.stated_size(&mut input), free) {
        if needed > free {
            return Err(no_room(needed, free));
        }
    }
    input.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    let task = progress.start("decompressing", total, Unit::Bytes);
    let derr = |source| InputError::Decompress {
        path: path.to_owned(),
        format,
        source,
    };
    let reader = std::io::BufReader::with_capacity(1 << 16, Counted::new(input, task));
    let mut decoder: Box<dyn Read> = match format {
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader).map_err(derr)?),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(reader)),
    };
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_err(path))?;
    let (mut out, temp_path) = tmp.into_parts();
    match copy_sparse(&mut decoder, &mut out) {
        Ok(_) => {}
        Err(SparseError::Read(e)) => return Err(derr(e)),
        // Name the sizes rather than a bare "No space left on device".
        Err(SparseError::Write { source, needed })
            if source.raw_os_error() == Some(libc::ENOSPC) =>
        {
            return Err(no_room(needed, free.unwrap_or(needed)))
        }
        Err(SparseError::Write { source, .. }) => return Err(io_err(path)(source)),
    }
    Ok((out, temp_path))
}

/// Why [`copy_sparse`] stopped.
#[derive(Debug)]
pub(crate) enum SparseError {
    /// Reading the source failed.
    Read(std::io::Error),
    /// Writing the copy failed; `needed` is the bytes it held with the run of pages that
    /// failed.
    Write {
        /// The cause (ENOSPC when the disk is full).
        source: std::io::Error,
        /// Bytes written, with the run of pages that did not fit (up to 2 MiB).
        needed: u64,
    },
}

/// Copy `from` to the start of `out`, seeking over zero pages so the copy stays sparse
/// (cores are mostly zero pages), and set `out`'s length to the bytes read: returns it.
pub(crate) fn copy_sparse(from: &mut dyn Read, out: &mut File) -> Result<u64, SparseError> {
    let werr = |source, needed| SparseError::Write { source, needed };
    // 2 MiB at a time, each run of non-zero pages in one write: the page cache then holds
    // the copy in large folios, which the walk can map as huge pages (see `page_cache`).
    let mut block = vec![0u8; 2 << 20];
    let mut len: u64 = 0;
    let mut written: u64 = 0;
    loop {
        let n = read_full(from, &mut block).map_err(SparseError::Read)?;
        if n == 0 {
            break;
        }
        let chunk = block.get(..n).unwrap_or(&block);
        let zero = |p: &[u8]| p.iter().all(|&b| b == 0);
        let mut pages = chunk.chunks(4096).peekable();
        let mut at = 0;
        while let Some(first) = pages.next() {
            // A run: this page and those after it that are zero, or not, alike.
            let run_zero = zero(first);
            let mut end = at + first.len();
            while let Some(p) = pages.next_if(|p| zero(p) == run_zero) {
                end += p.len();
            }
            let run = chunk.get(at..end).unwrap_or(&[]);
            if run_zero {
                out.seek(SeekFrom::Current(run.len() as i64))
                    .map_err(|e| werr(e, written))?;
            } else {
                out.write_all(run)
                    .map_err(|e| werr(e, written + run.len() as u64))?;
                written += run.len() as u64;
            }
            at = end;
        }
        len += n as u64;
    }
    out.set_len(len).map_err(|e| werr(e, written))?;
    Ok(len)
}

pub(crate) fn read_full(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(buf.get_mut(filled..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of data and of zero pages, across the 2 MiB blocks and ending in a part page,
    /// come out byte for byte, the zero runs as holes.
    #[test]
    fn a_sparse_copy_keeps_every_byte_and_skips_zero_pages() {
        let mut src = vec![0u8; (5 << 20) + 1234];
        for (i, b) in src.iter_mut().enumerate() {
            let page = i / 4096;
            // Data in pages 0-2, 7, 500-900 (across the first block's end), the tail.
            if page < 3 || page == 7 || (500..900).contains(&page) || i >= 5 << 20 {
                *b = (i % 253) as u8 | 1;
            }
        }
        let mut out = tempfile::tempfile().unwrap();
        let n = copy_sparse(&mut src.as_slice(), &mut out).unwrap();
        assert_eq!(n, src.len() as u64);
        let mut back = Vec::new();
        out.seek(SeekFrom::Start(0)).unwrap();
        out.read_to_end(&mut back).unwrap();
        assert!(back == src, "the copy differs");
        use std::os::unix::fs::MetadataExt;
        let allocated = out.metadata().unwrap().blocks() * 512;
        assert!(
            allocated < 3 << 20,
            "{allocated} bytes allocated: zero pages were written"
        );
    }
}
