//! One version's whole test: start the build's server, fill it, record the truth, gcore it,
//! recover the core twice — (a) `--binary` alone (layout derived from the binary's DWARF) and
//! (b) `--binary --profile <version>` (the shipped profile) — and check each result with the
//! version's own RDB checker, the report, and a fresh server of the same version restored
//! from it; then check that both runs agree.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::build::Build;
use super::fill::{fill, FillOptions};
use super::oracle::{assert_restores, assert_server_version, Oracle};
use super::truth::{record_truth, MatrixTruth};
use crate::common::{
    assert_report_matches, check_rdb, describe, gcore, read_report, run_rescue, snippet,
    RedisServer,
};

#[derive(Clone, Copy, Debug)]
pub struct MatrixOptions {
    /// `list-compress-depth 1` before filling (quicklist versions).
    pub compress_lists: bool,
    pub oracle: Oracle,
}

/// What one redis-rescue run produced.
struct RunResult {
    label: &'static str,
    rdb: PathBuf,
    report: serde_json::Value,
    oracle: String,
    elapsed: Duration,
}

/// The message of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-text panic>".into())
}

fn log(build: &Build, msg: &str) {
    // Shown by the test harness when the test fails (and with --nocapture).
    eprintln!("[{}] {msg}", build.name);
}

/// Run the whole matrix flow for the build `name`.
pub fn run_matrix(name: &'static str, opts: MatrixOptions) {
    let started = Instant::now();
    let build = Build::locate(name);
    let source =
        RedisServer::start_version(&build.server, build.name, &["--activerehashing", "no"]);
    assert_server_version(&source, &build, "source server");
    log(
        &build,
        &format!(
            "source {} pid {} port {}",
            build.server.display(),
            source.pid(),
            source.port()
        ),
    );

    let filled = fill(
        &source,
        &build,
        FillOptions {
            compress_lists: opts.compress_lists,
        },
    );
    let mut notes = filled.notes.clone();
    let fill_time = started.elapsed();
    let truth = record_truth(
        &source,
        &build,
        filled,
        opts.oracle == Oracle::Digest,
        opts.compress_lists,
        &mut notes,
    );
    let work = tempfile::Builder::new()
        .prefix(&format!("matrix-{}-", build.tag()))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create the test's work dir");
    // Nothing touched the source between the truth and this core.
    let core = gcore(&source, work.path());
    let core_time = started.elapsed();
    log(
        &build,
        &format!(
            "{} keys in dbs {:?}, {} with TTL; digest {:?}; core {} ({} MB) after {:.1?}",
            truth.total_keys(),
            truth.dbsizes,
            truth.total_expires(),
            truth.digest,
            core.display(),
            fs::metadata(&core).map(|m| m.len() >> 20).unwrap_or(0),
            core_time
        ),
    );

    let server_s = build.server.to_str().expect("UTF-8 path").to_string();
    let runs: [(&'static str, Vec<&str>); 2] = [
        (
            "(a) --binary --derive: layout derived from DWARF",
            vec!["--binary", &server_s, "--derive"],
        ),
        (
            "(b) --binary --profile: the shipped profile",
            vec!["--binary", &server_s, "--profile", build.name],
        ),
    ];
    // Both runs are made even when the first fails, so that one failure says how each fared.
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (i, (label, args)) in runs.iter().enumerate() {
        let dir = work.path().join(format!("run{i}"));
        fs::create_dir(&dir).expect("create the run dir");
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            recover_once(
                &build,
                &truth,
                &core,
                &dir,
                label,
                args,
                &source,
                opts.oracle,
            )
        }));
        match run {
            Ok(r) => results.push(r),
            Err(payload) => failures.push(format!("{label}:\n{}", panic_text(&*payload))),
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {} recoveries failed:\n\n{}",
        build.name,
        failures.len(),
        runs.len(),
        failures.join("\n\n")
    );
    let mut summary = format!(
        "both runs passed after {:.1?} (fill {fill_time:.1?}, truth + core {:.1?})",
        started.elapsed(),
        core_time - fill_time
    );
    for r in &results {
        summary.push_str(&format!(
            "\n  {}: {:.1?}, profile_choice {:?}; oracle: {}",
            r.label, r.elapsed, r.report["source"]["profile_choice"], r.oracle
        ));
    }
    for n in &notes {
        summary.push_str(&format!("\n  {n}"));
    }
    log(&build, &summary);
    assert_runs_agree(&build, &results[0], &results[1]);
    log(&build, &format!("PASS in {:.1?}", started.elapsed()));
}

/// One redis-rescue run and every check of its output.
#[allow(clippy::too_many_arguments)]
fn recover_once(
    build: &Build,
    truth: &MatrixTruth,
    core: &Path,
    dir: &Path,
    label: &'static str,
    extra: &[&str],
    source: &RedisServer,
    oracle: Oracle,
) -> RunResult {
    let started = Instant::now();
    let rdb = dir.join("dump.rdb");
    let mut args: Vec<&std::ffi::OsStr> = vec![core.as_os_str(), "-o".as_ref(), rdb.as_os_str()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let out = run_rescue(&args);
    let elapsed = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {label}: redis-rescue {args:?} should recover every key (exit 0)\n{}",
        build.name,
        describe(&out)
    );
    assert!(
        rdb.is_file(),
        "{} {label}: no {} after exit 0\n{}",
        build.name,
        rdb.display(),
        describe(&out)
    );
    log(build, &format!("{label}: exit 0 in {elapsed:.1?}"));

    let report = read_report(&dir.join("dump.rdb.report.json"));
    assert_report(build, truth, &report, &rdb, label);
    check_with_version_checker(build, truth, &rdb, label);
    let what = format!("{label}, restored from {}", rdb.display());
    let oracle = assert_restores(build, &rdb, truth, source, oracle, &what);
    log(build, &format!("{label}: restored and equal: {oracle}"));
    RunResult {
        label,
        rdb,
        report,
        oracle,
        elapsed,
    }
}

fn excerpt(v: &serde_json::Value) -> String {
    snippet(&serde_json::to_string_pretty(v).unwrap_or_default(), 2500)
}

/// The report's per-db figures, rehash flags and census, RDB version and source.
fn assert_report(
    build: &Build,
    truth: &MatrixTruth,
    report: &serde_json::Value,
    rdb: &Path,
    label: &str,
) {
    log(
        build,
        &format!(
            "{label}: checking the report's dbs against the truth (rehash state:\n{})",
            truth.rehash_detail
        ),
    );
    assert_report_matches(report, &truth.as_common());

    let version = report
        .get("rdb_version")
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| {
            panic!(
                "{} {label}: report has no rdb_version:\n{}",
                build.name,
                excerpt(report)
            )
        });
    let header = fs::read(rdb)
        .ok()
        .and_then(|b| b.get(5..9).map(|d| String::from_utf8_lossy(d).into_owned()));
    assert_eq!(
        header.as_deref(),
        Some(format!("{version:04}").as_str()),
        "{} {label}: the RDB header's version vs the report's rdb_version {version}",
        build.name
    );
    assert!(
        version as u32 <= build.native_rdb_version(),
        "{} {label}: RDB version {version} is newer than {} loads ({})",
        build.name,
        build.name,
        build.native_rdb_version()
    );

    // Redis 4.0+ hashes dict keys with SipHash and a seed the tool finds in the core; 2.8
    // to 3.2 use MurmurHash2 and Valkey 8.1 hashtables, where the check stays off.
    let bucket_check = report["bucket_check"].as_str().unwrap_or_default();
    let expect_on = build.version.0 >= 4 && !build.name.starts_with("valkey-");
    assert_eq!(
        bucket_check.starts_with("on"),
        expect_on,
        "{} {label}: bucket_check is {bucket_check:?}",
        build.name
    );

    let source = &report["source"];
    assert_eq!(
        source
            .get("build_id")
            .and_then(|v| v.as_str())
            .map(str::to_ascii_lowercase),
        Some(build.build_id.clone()),
        "{} {label}: source.build_id\n{}",
        build.name,
        excerpt(source)
    );
    let binary = source.get("binary").and_then(|v| v.as_str());
    assert_eq!(
        binary.map(|b| fs::canonicalize(b).unwrap_or_else(|_| PathBuf::from(b))),
        Some(fs::canonicalize(&build.server).expect("canonical server path")),
        "{} {label}: source.binary\n{}",
        build.name,
        excerpt(source)
    );
}

/// The build's own checker: `redis-check-dump FILE` (2.8, 3.0: exit 0 even on errors, so its
/// output is read), `redis-check-rdb` / `valkey-check-rdb` (3.2+: "RDB looks OK", key counts).
fn check_with_version_checker(build: &Build, truth: &MatrixTruth, rdb: &Path, label: &str) {
    let checker_name = build
        .checker
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if checker_name != "redis-check-dump" {
        let (keys, expires) = check_rdb(&build.checker, rdb);
        assert_eq!(
            (keys, expires),
            (truth.total_keys(), truth.total_expires()),
            "{} {label}: (keys, expires) {checker_name} read vs the source",
            build.name
        );
        return;
    }
    let out = Command::new(&build.checker)
        .arg(rdb)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", build.checker.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success()
            && text.contains("CRC64 checksum is OK")
            && !text.contains("Error trace")
            && !text.contains("unprocessable"),
        "{} {label}: {} {} does not accept the file ({}):\n{}",
        build.name,
        build.checker.display(),
        rdb.display(),
        out.status,
        snippet(&text, 4000)
    );
    // One valid opcode per key (its expire included), per SELECTDB, and the EOF.
    let opcodes: Option<u64> = text.lines().find_map(|l| {
        l.trim_start_matches('=')
            .trim()
            .strip_prefix("Processed ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    });
    let want = truth.total_keys() + truth.dbsizes.len() as u64 + 1;
    assert_eq!(
        opcodes,
        Some(want),
        "{} {label}: valid opcodes {checker_name} counted (keys + SELECTDBs + EOF):\n{}",
        build.name,
        snippet(&text, 2000)
    );
}

/// Read an RDB fully with the workspace's reader: (version, AUX fields, entries).
type RdbContents = (u32, Vec<(Vec<u8>, Vec<u8>)>, Vec<rdb::reader::Entry>);

fn read_rdb(path: &Path) -> RdbContents {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut r = rdb::reader::RdbReader::new(BufReader::new(file))
        .unwrap_or_else(|e| panic!("{}: bad RDB header: {e}", path.display()));
    let mut entries = Vec::new();
    while let Some(e) = r
        .next_entry()
        .unwrap_or_else(|e| panic!("{}: unreadable RDB: {e}", path.display()))
    {
        entries.push(e);
    }
    (r.version(), r.aux().to_vec(), entries)
}

/// Both runs wrote the same file but for the AUX `ctime`, and name their profile as
/// expected: (a) derived from DWARF, (b) the shipped one. The names are checked last, so
/// that a failure there means everything else passed.
fn assert_runs_agree(build: &Build, a: &RunResult, b: &RunResult) {
    let (va, aux_a, ea) = read_rdb(&a.rdb);
    let (vb, aux_b, eb) = read_rdb(&b.rdb);
    assert_eq!(va, vb, "{}: RDB versions of the two runs", build.name);
    let no_ctime = |aux: &[(Vec<u8>, Vec<u8>)]| -> Vec<(String, String)> {
        aux.iter()
            .filter(|(k, _)| k.as_slice() != b"ctime")
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        no_ctime(&aux_a),
        no_ctime(&aux_b),
        "{}: AUX fields (but ctime) of {} (left) and {} (right)",
        build.name,
        a.label,
        b.label
    );
    assert_eq!(
        ea.len(),
        eb.len(),
        "{}: number of keys in the two RDBs",
        build.name
    );
    if let Some((i, (x, y))) = ea.iter().zip(&eb).enumerate().find(|(_, (x, y))| x != y) {
        panic!(
            "{}: the two runs' RDBs differ at key #{i}:\n{} {}: {}\n{} {}: {}",
            build.name,
            a.label,
            crate::common::show(&x.key),
            snippet(&format!("{x:?}"), 600),
            b.label,
            crate::common::show(&y.key),
            snippet(&format!("{y:?}"), 600)
        );
    }
    if va < 7 {
        // No AUX fields before RDB 7: the files must be byte-identical.
        let (fa, fb) = (fs::read(&a.rdb).unwrap(), fs::read(&b.rdb).unwrap());
        assert!(
            fa == fb,
            "{}: RDB {va} files of the two runs should be byte-identical ({} vs {} bytes)",
            build.name,
            fa.len(),
            fb.len()
        );
    }

    let choice = |r: &RunResult| {
        r.report["source"]["profile_choice"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (ca, cb) = (choice(a), choice(b));
    assert!(
        ca.to_ascii_lowercase().contains("dwarf"),
        "{} {}: source.profile_choice should say the layout was derived from the binary's DWARF on the fly, got {ca:?} (both runs passed every other check)\n{}",
        build.name,
        a.label,
        excerpt(&a.report["source"])
    );
    assert!(
        cb.contains(build.name) && !cb.to_ascii_lowercase().contains("dwarf"),
        "{} {}: source.profile_choice should name the profile {:?}, got {cb:?}\n{}",
        build.name,
        b.label,
        build.name,
        excerpt(&b.report["source"])
    );
    assert_eq!(
        b.report["source"]["profile"].as_str(),
        Some(build.name),
        "{} {}: source.profile\n{}",
        build.name,
        b.label,
        excerpt(&b.report["source"])
    );
}
