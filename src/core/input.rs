//! Opening the core: plain files are mapped; `.zst` cores (systemd-coredump) are first
//! decompressed to a sparse temporary file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
    /// zstd decompression failed.
    #[error("cannot decompress {path}: {source}")]
    Zstd {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A core file mapped read-only, possibly backed by a decompressed temporary copy.
pub struct MappedCore {
    map: memmap2::Mmap,
    // Kept open so the mapping stays valid; deleted on drop when it is a temporary copy.
    _file: File,
    _temp: Option<tempfile::TempPath>,
    /// True when the input was zstd-compressed.
    pub decompressed: bool,
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

/// Open `path`, decompressing zstd input (recognised by its magic) with a progress bar.
pub fn open_core(path: &Path, progress: bool) -> Result<MappedCore, InputError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io_err(path))?;
    if n == 0 {
        return Err(InputError::Empty(path.to_owned()));
    }
    let (file, temp) = if n == 4 && magic == ZSTD_MAGIC {
        file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        let (f, t) = decompress_zstd(path, file, progress)?;
        (f, Some(t))
    } else {
        (file, None)
    };
    // SAFETY: the mapping is read-only and the file stays open for the mapping's lifetime.
    // A core truncated by someone else while mapped would raise SIGBUS; cores are not
    // modified in place by the tools that write them.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
    Ok(MappedCore {
        map,
        _file: file,
        decompressed: temp.is_some(),
        _temp: temp,
    })
}

fn decompress_zstd(
    path: &Path,
    input: File,
    progress: bool,
) -> Result<(File, tempfile::TempPath), InputError> {
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if progress {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "decompressing {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let zerr = |source| InputError::Zstd {
        path: path.to_owned(),
        source,
    };
    let mut decoder = zstd::stream::read::Decoder::new(bar.wrap_read(input)).map_err(zerr)?;
    let tmp = tempfile::NamedTempFile::new().map_err(io_err(path))?;
    let (mut out, temp_path) = tmp.into_parts();
    // Cores are mostly zero pages: seek over them so the copy stays sparse.
    let mut block = vec![0u8; 1 << 16];
    let mut len: u64 = 0;
    loop {
        let n = read_full(&mut decoder, &mut block).map_err(zerr)?;
        if n == 0 {
            break;
        }
        let chunk = block.get(..n).unwrap_or(&block);
        for page in chunk.chunks(4096) {
            if page.iter().all(|&b| b == 0) {
                out.seek(SeekFrom::Current(page.len() as i64))
                    .map_err(io_err(path))?;
            } else {
                out.write_all(page).map_err(io_err(path))?;
            }
        }
        len += n as u64;
    }
    out.set_len(len).map_err(io_err(path))?;
    bar.finish_and_clear();
    Ok((out, temp_path))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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
