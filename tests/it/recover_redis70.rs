//! End-to-end: a core of Debian 12's redis-server 7.0.15, full of every type and encoding,
//! recovered by redis-rescue into an RDB that restores to the same DEBUG DIGEST.
//!
//! Needs redis-server 7.0.15, redis-check-rdb and gdb (gcore); see tests/README.md.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use crate::common::*;

const PROFILE: &str = "7.0.15-debian";
const VERSION: &str = "7.0.15";

/// One core shared by every test of this file, made on first use.
static FIXTURE: OnceLock<CoreFixture> = OnceLock::new();

fn fixture() -> &'static CoreFixture {
    FIXTURE.get_or_init(|| {
        let f = make_core_fixture(Path::new(DEFAULT_SERVER), "redis70");
        assert_eq!(
            f.truth.redis_version,
            VERSION,
            "these tests expect Debian's redis-server {VERSION} on PATH (found {})",
            f.binary.display()
        );
        let size = fs::metadata(&f.core).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "core {} ({} MB) of {} keys made in {:.1?}",
            f.core.display(),
            size >> 20,
            f.truth.dbsizes.values().sum::<u64>(),
            f.elapsed
        );
        f
    })
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("redis-rescue-test-")
        .tempdir()
        .expect("create a temp dir")
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Which binary the report's `source.binary` must name: `Some(path)`, or `None` for no binary.
fn assert_source(report: &serde_json::Value, f: &CoreFixture, binary: Option<&Path>) {
    let source = report.get("source").unwrap_or_else(|| {
        panic!(
            "report has no \"source\":\n{}",
            snippet(&report.to_string(), 2000)
        )
    });
    let text = |name: &str| {
        source
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    assert_eq!(
        text("profile").as_deref(),
        Some(PROFILE),
        "source.profile in {source:#}"
    );
    assert_eq!(
        text("redis_version").as_deref(),
        Some(VERSION),
        "source.redis_version in {source:#}"
    );
    let build_id = elf_build_id(&canonical(&f.binary))
        .unwrap_or_else(|| panic!("{} has no GNU build-id note", f.binary.display()));
    assert_eq!(
        text("build_id").map(|s| s.to_ascii_lowercase()),
        Some(build_id),
        "source.build_id in {source:#}"
    );
    let core = text("core").unwrap_or_else(|| panic!("source.core missing in {source:#}"));
    assert_eq!(
        canonical(Path::new(&core)),
        canonical(&f.core),
        "source.core in {source:#}"
    );
    match binary {
        Some(expected) => {
            let got =
                text("binary").unwrap_or_else(|| panic!("source.binary missing in {source:#}"));
            assert_eq!(
                canonical(Path::new(&got)),
                canonical(expected),
                "source.binary in {source:#}"
            );
        }
        None => assert!(
            source.get("binary").is_none_or(|v| v.is_null()),
            "--no-binary, yet the report names a binary: {source:#}"
        ),
    }
}

/// Run the tool on the shared core writing `dir/dump.rdb`, expect exit 0, check the RDB with
/// redis-check-rdb, check the report (at `report`, or the default next to the RDB), restore
/// the RDB into a fresh server and compare with the truth.
fn recover_and_compare(extra: &[&OsStr], report: Option<&Path>, binary_in_report: Option<&Path>) {
    let f = fixture();
    let dir = tempdir();
    let rdb = dir.path().join("dump.rdb");
    let mut args = vec![f.core.as_os_str(), os("-o"), rdb.as_os_str()];
    args.extend_from_slice(extra);
    if let Some(r) = report {
        args.push(os("--report"));
        args.push(r.as_os_str());
    }
    let out = run_rescue(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "redis-rescue {args:?} should recover every key\n{}",
        describe(&out)
    );
    assert!(
        rdb.is_file(),
        "no {} after exit 0\n{}",
        rdb.display(),
        describe(&out)
    );

    let report_path = report
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.path().join("dump.rdb.report.json"));
    let mut expected_files = vec!["dump.rdb".to_string()];
    if report_path.parent() == Some(dir.path()) {
        expected_files.push(
            report_path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    expected_files.sort();
    assert_eq!(
        listing(dir.path()),
        expected_files,
        "output dir should hold the RDB and the report, no temp files"
    );

    let checker = find_in_path("redis-check-rdb");
    let (keys, expires) = check_rdb(&checker, &rdb);
    assert_eq!(
        keys,
        f.truth.dbsizes.values().sum::<u64>(),
        "keys in the RDB (redis-check-rdb)"
    );
    assert_eq!(
        expires,
        f.truth.expires.values().sum::<u64>(),
        "expires in the RDB (redis-check-rdb)"
    );

    let report = read_report(&report_path);
    assert_report_matches(&report, &f.truth);
    assert_source(&report, f, binary_in_report);
    // The stripped Debian binary has no seed symbol: the seed is found in the core.
    let bucket_check = &report["bucket_check"];
    assert_eq!(bucket_check["hash"], "siphash-1-2", "{bucket_check}");
    assert_eq!(bucket_check["seed_source"], "search", "{bucket_check}");
    assert!(
        bucket_check["on"].as_bool() == Some(true)
            && bucket_check["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("on (SipHash seed found at")),
        "every entry should have been checked against its bucket: {bucket_check:?}"
    );

    assert_restores_exactly(&f.binary, &rdb, &f.truth);
}

#[test]
fn recovers_every_type_digest_exact() {
    let f = fixture();
    // The binary comes from the core's NT_FILE note: the executable the process ran.
    recover_and_compare(&[], None, Some(&f.binary));
}

#[test]
fn recovers_with_explicit_binary_and_profile() {
    let binary = Path::new("/usr/bin/redis-server");
    recover_and_compare(
        &[
            os("--binary"),
            binary.as_os_str(),
            os("--profile"),
            os(PROFILE),
        ],
        None,
        Some(binary),
    );
    let dir = tempdir();
    let report = dir.path().join("no-binary.json");
    recover_and_compare(&[os("--no-binary")], Some(&report), None);
}

#[test]
fn dry_run_counts_without_writing() {
    let f = fixture();
    let census: std::collections::BTreeSet<(String, String)> = f
        .truth
        .dataset
        .census
        .values()
        .flat_map(|types| {
            types
                .iter()
                .flat_map(|(t, encs)| encs.keys().map(|e| (t.clone(), e.clone())))
        })
        .collect();
    for (t, e) in [
        ("string", "int"),
        ("string", "embstr"),
        ("string", "raw"),
        ("list", "quicklist"),
        ("set", "intset"),
        ("set", "hashtable"),
        ("zset", "listpack"),
        ("zset", "skiplist"),
        ("hash", "listpack"),
        ("hash", "hashtable"),
        ("stream", "stream"),
    ] {
        assert!(
            census.contains(&(t.into(), e.into())),
            "the dataset lacks {t}/{e}: {census:?}"
        );
    }

    let dir = tempdir();
    let report_path = dir.path().join("r.json");
    let out = run_rescue_in(
        Some(dir.path()),
        &[
            f.core.as_os_str(),
            os("--dry-run"),
            os("--report"),
            report_path.as_os_str(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "dry run should succeed\n{}",
        describe(&out)
    );
    assert_eq!(
        listing(dir.path()),
        ["r.json"],
        "a dry run writes only the report it was asked for"
    );

    let stdout = String::from_utf8_lossy(&out.stdout);
    for db in f.truth.dbsizes.keys() {
        assert!(
            mentions_db(&stdout, *db),
            "the dry-run table does not mention db {db}:\n{}",
            snippet(&stdout, 4000)
        );
    }
    for (t, e) in &census {
        assert!(
            stdout.contains(t.as_str()) && stdout.contains(e.as_str()),
            "the dry-run table does not mention {t}/{e}:\n{}",
            snippet(&stdout, 4000)
        );
    }

    let report = read_report(&report_path);
    assert_report_matches(&report, &f.truth);

    // Without --report a dry run writes nothing at all.
    let dir2 = tempdir();
    let out = run_rescue_in(Some(dir2.path()), &[f.core.as_os_str(), os("--dry-run")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "dry run without --report\n{}",
        describe(&out)
    );
    assert!(
        listing(dir2.path()).is_empty(),
        "dry run wrote {:?}",
        listing(dir2.path())
    );
    let core_dir = f.core.parent().expect("core dir");
    assert_eq!(
        listing(core_dir),
        [f.core.file_name().unwrap().to_string_lossy().into_owned()],
        "nothing may be written next to the core"
    );
}

/// Does a line of the dry-run table name `db` (as `3`, `db3`, `db 3`, `db:3`…) together with a type?
fn mentions_db(table: &str, db: u32) -> bool {
    let want = db.to_string();
    let types = ["string", "list", "set", "zset", "hash", "stream"];
    table.lines().any(|line| {
        let tokens: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || "|:,;=/()[]{}".contains(c))
            .filter(|t| !t.is_empty())
            .collect();
        let names_db = tokens.iter().enumerate().any(|(i, t)| {
            t.strip_prefix("db").is_some_and(|n| n == want)
                || (*t == want && (i == 0 || tokens[i - 1].eq_ignore_ascii_case("db")))
        });
        names_db && types.iter().any(|ty| tokens.contains(ty))
    })
}

#[test]
fn refuses_to_overwrite_existing_output() {
    let f = fixture();
    let dir = tempdir();
    let rdb = dir.path().join("dump.rdb");
    let precious = b"precious data, not an RDB\n";
    fs::write(&rdb, precious).expect("write the existing output");

    let out = run_rescue(&[f.core.as_os_str(), os("-o"), rdb.as_os_str()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an existing output must be refused\n{}",
        describe(&out)
    );
    assert_eq!(
        fs::read(&rdb).expect("read output"),
        precious,
        "the existing file was changed"
    );
    assert!(
        !stderr_of(&out).trim().is_empty(),
        "the refusal should say why\n{}",
        describe(&out)
    );
    assert!(!stderr_of(&out).contains("panicked"), "{}", describe(&out));

    let out = run_rescue(&[f.core.as_os_str(), os("-o"), rdb.as_os_str(), os("--force")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--force should overwrite\n{}",
        describe(&out)
    );
    let written = fs::read(&rdb).expect("read output");
    assert!(
        written.starts_with(b"REDIS"),
        "with --force the file should now be an RDB: {:?}",
        snippet(&show(&written), 100)
    );
    let (keys, _) = check_rdb(&find_in_path("redis-check-rdb"), &rdb);
    assert_eq!(keys, f.truth.dbsizes.values().sum::<u64>());
}

#[test]
fn refuses_mismatched_binary() {
    let f = fixture();
    let dir = tempdir();
    let rdb = dir.path().join("x.rdb");
    let other = find_in_path("redis-cli");
    assert!(
        elf_build_id(&other).is_some(),
        "{} should be an ELF with a build-id",
        other.display()
    );
    let out = run_rescue(&[
        f.core.as_os_str(),
        os("-o"),
        rdb.as_os_str(),
        os("--binary"),
        other.as_os_str(),
    ]);
    let stderr = stderr_of(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a binary that does not match the core must be refused\n{}",
        describe(&out)
    );
    assert!(
        stderr.to_ascii_lowercase().contains("build-id"),
        "the refusal should mention the build-id\n{}",
        describe(&out)
    );
    assert!(!stderr.contains("panicked"), "{}", describe(&out));
    assert!(
        !rdb.exists(),
        "no RDB may be written when the binary is refused"
    );
}

#[test]
fn garbage_input_fails_cleanly() {
    let dir = tempdir();
    let text = dir.path().join("not-a-core.txt");
    fs::write(&text, "this is not a core dump\n".repeat(1000)).expect("write text file");
    let empty = dir.path().join("empty.core");
    fs::write(&empty, b"").expect("write empty file");
    // A real ELF, but an executable rather than a core.
    let not_core = find_in_path("redis-cli");
    let missing = dir.path().join("does-not-exist.core");

    for input in [&text, &empty, &not_core, &missing] {
        let out_dir = tempdir();
        let rdb = out_dir.path().join("out.rdb");
        let out = run_rescue(&[input.as_os_str(), os("-o"), rdb.as_os_str()]);
        let stderr = stderr_of(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "input {}\n{}",
            input.display(),
            describe(&out)
        );
        assert!(
            !stderr.trim().is_empty(),
            "input {}: no error message\n{}",
            input.display(),
            describe(&out)
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "input {}: the tool panicked\n{}",
            input.display(),
            describe(&out)
        );
        let lines = stderr.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(
            lines <= 8,
            "input {}: a short error is expected, got {lines} lines\n{}",
            input.display(),
            describe(&out)
        );
        assert!(
            listing(out_dir.path()).is_empty(),
            "input {}: wrote {:?}",
            input.display(),
            listing(out_dir.path())
        );
    }
}

/// One walk thread or two (chains followed on one, keys decoded on the other) give the
/// same dump, byte for byte but for the time of writing (the `ctime` AUX field) and so
/// the CRC, and the same report: the shared core holds over 4,096 keys in db 0, so two
/// threads really are used there.
#[test]
fn one_thread_and_two_write_the_same_dump() {
    let f = fixture();
    assert!(
        f.truth.dbsizes.values().any(|n| *n >= 4096),
        "the fixture should have a db large enough to be walked on two threads"
    );
    let dir = tempdir();
    let mut dumps = Vec::new();
    let mut reports = Vec::new();
    for threads in ["1", "2"] {
        let rdb = dir.path().join(format!("dump-{threads}.rdb"));
        let out = run_rescue(&[
            f.core.as_os_str(),
            os("-o"),
            rdb.as_os_str(),
            os("-q"),
            os("--threads"),
            os(threads),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "--threads {threads}\n{}",
            describe(&out)
        );
        let mut report = read_report(&dir.path().join(format!("dump-{threads}.rdb.report.json")));
        for volatile in ["output", "rdb_crc64"] {
            report[volatile] = serde_json::Value::Null;
        }
        reports.push(report);
        dumps.push(fs::read(&rdb).expect("read the dump"));
    }
    assert_eq!(reports[0], reports[1], "the reports of --threads 1 and 2");
    let (one, two) = (&dumps[0], &dumps[1]);
    assert_eq!(one.len(), two.len(), "dump sizes");
    // ctime is an AUX field: 0xFA, the string "ctime" (length byte 5), then its value as a
    // 32-bit integer (0xC2 and 4 bytes); the CRC-64 is the last 8 bytes.
    let name = b"\x05ctime\xc2";
    let at = one
        .windows(name.len())
        .position(|w| w == name)
        .expect("a ctime AUX field")
        + name.len();
    let allowed = |i: usize| (at..at + 4).contains(&i) || i >= one.len() - 8;
    let differ: Vec<usize> = (0..one.len()).filter(|&i| one[i] != two[i]).collect();
    assert!(
        differ.iter().all(|&i| allowed(i)),
        "the dumps differ outside ctime and the CRC, first at byte {:?}",
        differ.iter().find(|&&i| !allowed(i))
    );
}
