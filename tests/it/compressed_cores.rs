//! Compressed cores: a real gcore core of Debian's redis-server 7.0.15, compressed with the
//! system's `xz`, `gzip`, `lz4` and `zstd`, recovers from each compressed file exactly as from
//! the plain core (the format is recognised by its magic bytes, whatever the file is named),
//! and a core that decompresses to more than the temporary directory holds is refused up
//! front with the sizes named (a 1 MiB tmpfs in a private mount namespace).
//!
//! Needs Debian's redis-server 7.0.15, gdb (gcore), xz, gzip, lz4, zstd and, for the tmpfs,
//! unshare and mount (root); see tests/README.md.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{
    assert_restores_exactly, describe, make_core_fixture, read_report, run_rescue,
};

/// `tool ARGS core` writes `core` + `suffix` beside it, keeping the core.
fn compress(core: &Path, tool: &str, args: &[&str], suffix: &str) -> PathBuf {
    let out = PathBuf::from(format!("{}{suffix}", core.display()));
    let status = Command::new(tool)
        .args(args)
        .arg(core)
        .status()
        .unwrap_or_else(|e| panic!("run {tool}: {e} (install it: see tests/README.md)"));
    assert!(
        status.success(),
        "{tool} {args:?} {} failed",
        core.display()
    );
    assert!(out.is_file(), "{tool} wrote no {}", out.display());
    out
}

#[test]
fn xz_gzip_lz4_and_zstd_cores_recover_exactly() {
    let fx = make_core_fixture(Path::new("redis-server"), "compressed");
    let compressed = [
        ("xz", compress(&fx.core, "xz", &["-k", "-1", "-T2"], ".xz")),
        ("gzip", compress(&fx.core, "gzip", &["-k", "-1"], ".gz")),
        (
            "lz4",
            compress(&fx.core, "lz4", &["-q", "-1", "-m"], ".lz4"),
        ),
        ("zstd", compress(&fx.core, "zstd", &["-q", "-1"], ".zst")),
    ];
    for (format, file) in &compressed {
        // Named without its suffix, the format must still be recognised by its magic.
        let renamed = fx.dir.join(format!("core-{format}"));
        std::fs::rename(file, &renamed).expect("rename the compressed core");
        let rdb = fx.dir.join(format!("{format}.rdb"));
        let out = run_rescue(&[
            renamed.as_os_str(),
            OsStr::new("--binary"),
            fx.binary.as_os_str(),
            OsStr::new("--profile"),
            OsStr::new("7.0.15-debian"),
            OsStr::new("-o"),
            rdb.as_os_str(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", describe(&out));
        let report = read_report(&rdb.with_extension("rdb.report.json"));
        assert_eq!(
            report["totals"]["lost"], 0,
            "{format}: {}",
            report["totals"]
        );
        assert_restores_exactly(&fx.binary, &rdb, &fx.truth);
        eprintln!("{format}: recovered and restored exactly");
    }
}

/// A core whose stated decompressed size exceeds the free space of `$TMPDIR` is refused
/// before anything is written, naming both sizes; one with no stated size (xz) fails when
/// the disk fills, naming them too. Run in a private mount namespace on a 1 MiB tmpfs.
#[test]
fn a_core_too_big_for_tmpdir_is_refused_with_the_sizes() {
    let fx = make_core_fixture(Path::new("redis-server"), "compressed-room");
    let zst = compress(&fx.core, "zstd", &["-q", "-1"], ".zst");
    let xz = compress(&fx.core, "xz", &["-k", "-1"], ".xz");
    let tool = env!("CARGO_BIN_EXE_redis-rescue");
    for (label, core) in [("zstd, size stated", &zst), ("xz, size unknown", &xz)] {
        let script = format!(
            "mkdir -p /tmp/rr-room && mount -t tmpfs -o size=1m none /tmp/rr-room && \
             TMPDIR=/tmp/rr-room exec '{tool}' '{}' --dry-run --binary '{}' --profile 7.0.15-debian",
            core.display(),
            fx.binary.display()
        );
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .expect("run unshare (util-linux)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{label}: {}", describe(&out));
        assert!(
            err.contains("set TMPDIR to a directory with room") && err.contains("bytes free"),
            "{label}: the error should name the sizes:\n{err}"
        );
        eprintln!("{label}: {}", err.trim());
    }
}
