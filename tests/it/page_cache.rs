//! The core's page cache (`src/core/page_cache.rs`): a real gcore core of Debian's
//! redis-server 7.0.15 of over 64 MiB, written back to disk so that its cached pages are
//! clean, sits in the small folios gcore wrote it in. A default recovery reads it again
//! into huge pages (the report's `source.page_cache` says how much ended up mapped so) and
//! restores exactly; a recovery with `--keep-page-cache` says it left the cache alone and
//! restores exactly too. Where transparent huge pages are off, the report must say so.
//!
//! Needs Debian's redis-server 7.0.15 and gdb (gcore); see tests/README.md.

use std::ffi::OsStr;
use std::path::Path;

use crate::common::{
    dbsizes, describe, digest, find_in_path, gcore, read_report, run_rescue, RedisServer,
};

/// Keys of `DEBUG POPULATE`, 64-byte values: a core of about 150 MiB.
const KEYS: u64 = 700_000;

/// `(huge, total)` GiB from a summary ending in "X GiB of Y GiB mapped in huge pages".
fn huge_of(summary: &str) -> Option<(f64, f64)> {
    let tail = summary.rsplit(": ").next()?;
    let mut words = tail.split(' ');
    let huge = words.next()?.parse().ok()?;
    let total = words.nth(2)?.parse().ok()?;
    Some((huge, total))
}

fn recover(core: &Path, rdb: &Path, extra: &[&str]) -> String {
    let mut args = vec![core.as_os_str(), OsStr::new("-o"), rdb.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    let out = run_rescue(&args);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&rdb.with_extension("rdb.report.json"));
    assert_eq!(report["totals"]["lost"], 0, "{}", report["totals"]);
    report["source"]["page_cache"]
        .as_str()
        .unwrap_or_else(|| panic!("no source.page_cache in the report: {:#}", report["source"]))
        .to_owned()
}

fn assert_restores(bin: &Path, rdb: &Path, want: &str, what: &str) {
    let restored = RedisServer::start_on_rdb(bin, rdb, &[]);
    let mut conn = restored.conn();
    assert_eq!(dbsizes(&mut conn).get(&0), Some(&KEYS), "{what}: DBSIZE");
    assert_eq!(digest(&mut conn), want, "{what}: DEBUG DIGEST");
}

#[test]
fn a_core_cached_in_small_pages_is_read_again_into_huge_pages() {
    let bin = find_in_path("redis-server");
    let server = RedisServer::start(&bin, &[]);
    let mut conn = server.conn();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(KEYS)
        .arg("key")
        .arg(64)
        .query(&mut conn)
        .expect("DEBUG POPULATE");
    let want = digest(&mut conn);
    drop(conn);
    let dir = tempfile::Builder::new()
        .prefix("page-cache-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create the test's work dir");
    let core = gcore(&server, dir.path());
    drop(server);
    // Written back, its pages are clean: the cache may drop them and read them again.
    std::fs::File::open(&core)
        .and_then(|f| f.sync_all())
        .expect("write the core back to disk");
    let size = std::fs::metadata(&core).expect("core size").len();
    assert!(
        size > 64 << 20,
        "the core is {size} bytes: too small to be prepared"
    );

    let thp_on = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| !s.contains("[never]"));
    let rdb = dir.path().join("huge.rdb");
    let summary = recover(&core, &rdb, &[]);
    eprintln!("default: {summary}");
    if thp_on {
        let (huge, total) =
            huge_of(&summary).unwrap_or_else(|| panic!("no huge-page figure in {summary:?}"));
        assert!(
            huge >= total / 2.0,
            "only {huge} GiB of {total} GiB mapped in huge pages: {summary}"
        );
    } else {
        assert!(summary.contains("huge pages are off"), "{summary}");
    }
    assert_restores(&bin, &rdb, &want, "default");

    // Cached in both sizes: the first 3/8 of the core written again in 4 KiB pieces (the
    // same bytes) after its cache was dropped, the rest still in huge pages. The sample
    // finds mostly huge pages; the chunks held small are read again all the same.
    if thp_on {
        let part = size / 8 * 3;
        rewrite_in_small_pieces(&core, part);
        let mixed = dir.path().join("mixed.rdb");
        let summary = recover(&core, &mixed, &[]);
        eprintln!("cached in both sizes: {summary}");
        let (huge, total) =
            huge_of(&summary).unwrap_or_else(|| panic!("no huge-page figure in {summary:?}"));
        assert!(
            huge >= total * 0.9,
            "only {huge} GiB of {total} GiB mapped in huge pages: {summary}"
        );
        assert!(summary.contains("re-read"), "{summary}");
        assert_restores(&bin, &mixed, &want, "cached in both sizes");
    }

    let kept = dir.path().join("kept.rdb");
    let summary = recover(&core, &kept, &["--keep-page-cache"]);
    eprintln!("--keep-page-cache: {summary}");
    if thp_on {
        assert!(
            summary.ends_with("left as it is (--keep-page-cache)"),
            "{summary}"
        );
    }
    assert_restores(&bin, &kept, &want, "--keep-page-cache");
}

/// Writes the first `len` bytes of `path` again, 4 KiB at a time, after dropping them from
/// the page cache, and writes them back to disk: they are then cached, clean, in the 4 KiB
/// folios the writes made, as gcore leaves a core.
fn rewrite_in_small_pieces(path: &Path, len: u64) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open the core");
    let mut bytes = vec![0u8; len as usize];
    f.read_exact_at(&mut bytes, 0).expect("read the core");
    f.sync_all().expect("write the core back");
    // SAFETY: a plain syscall on an open descriptor; it reads no memory of ours.
    let r = unsafe {
        libc::posix_fadvise(
            f.as_raw_fd(),
            0,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(r, 0, "posix_fadvise");
    for (i, piece) in bytes.chunks(4096).enumerate() {
        f.write_all_at(piece, i as u64 * 4096)
            .expect("write the core");
    }
    f.sync_all().expect("write the core back");
}
