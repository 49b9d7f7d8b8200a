//! One version's whole test: start the build's server, fill it, record the truth, gcore it,
//! recover the core twice — (a) `--binary` alone (layout derived from the binary's DWARF) and
//! (b) `--binary --profile <version>` (the shipped profile) — and check each result with the
//! version's own RDB checker, the report, and a fresh server of the same version restored
//! from it; then check that both runs agree.

use std::fs;
use std::io::BufReader;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::build::{Build, Generation};
use super::fill::{fill, FillOptions};
use super::oracle::{assert_restores, assert_server_version, Oracle};
use super::truth::{record_truth, MatrixTruth};
use crate::common::{
    assert_core_limit_unlimited, assert_report_matches, check_rdb, describe, gcore,
    kernel_core_name, printable, read_report, run_rescue, snippet, RedisServer, RemoveOnDrop,
};

#[derive(Clone, Copy, Debug)]
pub struct MatrixOptions {
    /// `list-compress-depth 1` before filling (quicklist versions).
    pub compress_lists: bool,
    pub oracle: Oracle,
    /// Redis 8: `vectorset` keys in the dataset, which must be reported lost (exit 1) while
    /// everything else is recovered.
    pub vectorsets: bool,
    /// How the core is taken.
    pub core: CoreKind,
}

impl MatrixOptions {
    /// DEBUG DIGEST as the oracle, a gcore core, no module keys.
    pub fn digest(compress_lists: bool) -> Self {
        MatrixOptions {
            compress_lists,
            oracle: Oracle::Digest,
            vectorsets: false,
            core: CoreKind::Gcore,
        }
    }
}

/// Where the core comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreKind {
    /// `gcore PID`: the server lives on (the key-by-key fallback can read it).
    Gcore,
    /// The kernel's core of the server killed with SIGSEGV (`kernel.core_pattern=core`: the
    /// file lands in the server's `--dir`, its cwd). For a chroot build the core's NT_FILE
    /// names the binary as the chroot sees it, `/usr/bin/redis-check-rdb`.
    Kernel,
}

/// How a run's report must say its layout was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    /// Derived from the binary's DWARF on the fly.
    Dwarf,
    /// The shipped profile named with `--profile`.
    Named,
    /// The shipped profile recorded for the core's build-id.
    BuildId,
}

/// One way of running redis-rescue on the core, and what its report must say.
struct RunSpec {
    label: String,
    args: Vec<String>,
    /// `source.binary` of the report (`None`: null, no binary used).
    binary: Option<PathBuf>,
    choice: Choice,
    /// Text the run must print (stdout or stderr).
    says: Option<String>,
}

/// What one redis-rescue run produced.
struct RunResult {
    label: String,
    rdb: PathBuf,
    report: serde_json::Value,
    oracle: String,
    elapsed: Duration,
    choice: Choice,
}

/// How long a server gets to write its crash report, re-raise SIGSEGV and dump core.
const CRASH_TIMEOUT: Duration = Duration::from_secs(60);

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

fn path_s(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_string()
}

/// The two recoveries of a core of `build`:
/// - DWARF builds (the matrix's older versions, 8.2.3): (a) `--binary --derive`, the layout
///   derived from DWARF on the fly; (b) the shipped profile, with `--binary --profile NAME`
///   (older versions) or from the core alone, `--no-binary`, found by build-id (8.2.3).
/// - Builds without DWARF (Debian's stripped Redis 8 and Valkey 8.1.1, Valkey 9.1.2 with
///   global symbols only): (a) `--no-binary`, the shipped profile found by build-id; (b)
///   `--binary <root>/usr/bin/redis-check-rdb` (`valkey-check-rdb`), or the binary itself.
/// - Kernel cores: (a) `--no-binary`; (b) no options at all: the binary the core's NT_FILE
///   names is used only if its build-id is the core's (for a chroot build it names
///   `/usr/bin/redis-check-rdb`, which on this host is Debian 12's 7.0.15, or
///   `/usr/bin/valkey-check-rdb`, which this host does not have: it must be passed over).
fn run_specs(build: &Build, core: CoreKind) -> Vec<RunSpec> {
    let spec = |label: &str, args: &[&str], binary: Option<&PathBuf>, choice| RunSpec {
        label: label.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        binary: binary.cloned(),
        choice,
        says: None,
    };
    let bin = path_s(&build.binary);
    // With no symbol for `server` (a static, fully stripped build) every run must say it
    // found `server` by structure.
    let by_structure =
        (!build.names_server()).then(|| "structure search: unique candidate".to_string());
    let spec = |label: &str, args: &[&str], binary: Option<&PathBuf>, choice| RunSpec {
        says: by_structure.clone(),
        ..spec(label, args, binary, choice)
    };
    if core == CoreKind::Kernel {
        return vec![
            spec(
                "(a) --no-binary: the shipped profile found by the kernel core's build-id",
                &["--no-binary"],
                None,
                Choice::BuildId,
            ),
            RunSpec {
                // The chroot's server is /usr/bin/redis-check-rdb (valkey-check-rdb) to the
                // kernel: on this host that path is Debian 12's 7.0.15 (or nothing), which the
                // tool must name and pass over.
                says: build
                    .path_in_chroot()
                    .map(|p| format!("not using {}", p.display()))
                    .or_else(|| by_structure.clone()),
                ..spec(
                    "(b) no options: the binary NT_FILE names is used only if its build-id matches",
                    &[],
                    (!build.chroot).then_some(&build.binary),
                    Choice::BuildId,
                )
            },
        ];
    }
    if !build.has_dwarf() {
        let label = if build.chroot {
            format!(
                "(b) --binary <chroot>{} (Debian's stripped binary)",
                build.path_in_chroot().expect("chroot build").display()
            )
        } else if by_structure.is_some() {
            "(b) --binary: a static, fully stripped binary; `server` found by structure".to_string()
        } else {
            "(b) --binary: symbols from the binary (no DWARF), the shipped profile found by build-id"
                .to_string()
        };
        return vec![
            spec(
                "(a) --no-binary: the shipped profile found by build-id",
                &["--no-binary"],
                None,
                Choice::BuildId,
            ),
            spec(
                &label,
                &["--binary", &bin],
                Some(&build.binary),
                Choice::BuildId,
            ),
        ];
    }
    let derive = spec(
        "(a) --binary --derive: layout derived from DWARF",
        &["--binary", &bin, "--derive"],
        Some(&build.binary),
        Choice::Dwarf,
    );
    if build.generation() == Generation::Redis8 {
        vec![
            derive,
            spec(
                "(b) --no-binary: the shipped profile found by build-id",
                &["--no-binary"],
                None,
                Choice::BuildId,
            ),
        ]
    } else {
        vec![
            derive,
            spec(
                "(b) --binary --profile: the shipped profile",
                &["--binary", &bin, "--profile", build.name],
                Some(&build.binary),
                Choice::Named,
            ),
        ]
    }
}

/// Kill `server` with SIGSEGV and wait for the core the kernel writes into its directory.
fn kernel_core(server: &mut RedisServer, build: &Build) -> PathBuf {
    let pid = server.pid();
    assert_core_limit_unlimited(pid, &format!("{}: ", build.name));
    let core = server.dir().join(kernel_core_name(pid));
    let kill = Command::new("kill")
        .args(["-s", "SEGV", &pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("run kill");
    assert!(
        kill.status.success(),
        "kill -s SEGV {pid}: {}",
        String::from_utf8_lossy(&kill.stderr)
    );
    let status = server.wait_exit(CRASH_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "{}: redis-server (pid {pid}) still runs {CRASH_TIMEOUT:?} after SIGSEGV\n--- redis.log tail ---\n{}",
            build.name,
            server.log_tail(40)
        )
    });
    assert!(
        status.signal() == Some(11) && status.core_dumped() && core.is_file(),
        "{}: redis-server should die of SIGSEGV with a core ({status}); core {} exists: {}; core_pattern {:?}\n--- redis.log tail ---\n{}",
        build.name,
        core.display(),
        core.exists(),
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default(),
        server.log_tail(40)
    );
    core
}

/// Run the whole matrix flow for the build `name`.
pub fn run_matrix(name: &'static str, opts: MatrixOptions) {
    let started = Instant::now();
    let build = Build::locate(name);
    let kernel = opts.core == CoreKind::Kernel;
    assert!(
        !kernel || build.version >= (7, 0, 0),
        "{}: the kernel-core flow needs --crash-memcheck-enabled (7.0+)",
        build.name
    );
    assert!(
        !(kernel && opts.vectorsets),
        "module keys are deleted from the source after its core: not with a kernel core"
    );
    let mut source = if kernel {
        // sid's and experimental's builds crash in their own crash-time memory test after
        // SIGSEGV: --crash-memcheck-enabled no (see .ci/provision-redis8.sh).
        RedisServer::start_with_core_limit(
            &build.server,
            &["--activerehashing", "no", "--crash-memcheck-enabled", "no"],
        )
    } else {
        RedisServer::start_version(&build.server, build.name, &["--activerehashing", "no"])
    };
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
            vectorsets: opts.vectorsets,
        },
    );
    let mut notes = filled.notes.clone();
    let fill_time = started.elapsed();
    let mut truth = record_truth(
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
    let core = if kernel {
        kernel_core(&mut source, &build)
    } else {
        gcore(&source, work.path())
    };
    let _remove_core = RemoveOnDrop(core.clone());
    let core_time = started.elapsed();
    if kernel {
        notes.push(format!(
            "kernel core {} written in {:.1?} after SIGSEGV",
            core.display(),
            core_time - fill_time
        ));
    }
    truth.drop_module_keys(&source);
    log(
        &build,
        &format!(
            "{} keys in dbs {:?}, {} with TTL; digest {:?}; {} module keys reported lost; core {} ({} MB) after {:.1?}",
            truth.total_keys(),
            truth.dbsizes,
            truth.total_expires(),
            truth.digest,
            truth.filled.module_keys.len(),
            core.display(),
            fs::metadata(&core).map(|m| m.len() >> 20).unwrap_or(0),
            core_time
        ),
    );

    let runs = run_specs(&build, opts.core);
    let live_source = (!kernel).then_some(&source);
    // Both runs are made even when the first fails, so that one failure says how each fared.
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (i, spec) in runs.iter().enumerate() {
        let dir = work.path().join(format!("run{i}"));
        fs::create_dir(&dir).expect("create the run dir");
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            recover_once(&build, &truth, &core, &dir, spec, live_source, opts)
        }));
        match run {
            Ok(r) => results.push(r),
            Err(payload) => failures.push(format!("{}:\n{}", spec.label, panic_text(&*payload))),
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
fn recover_once(
    build: &Build,
    truth: &MatrixTruth,
    core: &Path,
    dir: &Path,
    spec: &RunSpec,
    source: Option<&RedisServer>,
    opts: MatrixOptions,
) -> RunResult {
    let label = spec.label.as_str();
    let started = Instant::now();
    let rdb = dir.join("dump.rdb");
    let mut args: Vec<&std::ffi::OsStr> = vec![core.as_os_str(), "-o".as_ref(), rdb.as_os_str()];
    args.extend(spec.args.iter().map(std::ffi::OsStr::new));
    let out = run_rescue(&args);
    let elapsed = started.elapsed();
    // Module values are reported lost: exit 1, the RDB written all the same.
    let want_exit = if truth.filled.module_keys.is_empty() {
        0
    } else {
        1
    };
    assert_eq!(
        out.status.code(),
        Some(want_exit),
        "{} {label}: redis-rescue {args:?} should recover every key{} (exit {want_exit})\n{}",
        build.name,
        if want_exit == 1 {
            " but the module keys, reported lost"
        } else {
            ""
        },
        describe(&out)
    );
    assert!(
        rdb.is_file(),
        "{} {label}: no {} after exit {want_exit}\n{}",
        build.name,
        rdb.display(),
        describe(&out)
    );
    log(
        build,
        &format!("{label}: exit {want_exit} in {elapsed:.1?}"),
    );
    if let Some(text) = &spec.says {
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            printed.contains(text.as_str()),
            "{} {label}: the run should say {text:?}\n{}",
            build.name,
            describe(&out)
        );
    }

    let report = read_report(&dir.join("dump.rdb.report.json"));
    let (checked, unnamed) = assert_module_keys_lost(build, truth, &report, label);
    assert_report(build, truth, &checked, &rdb, spec);
    check_with_version_checker(build, truth, &rdb, label);
    let what = format!("{label}, restored from {}", rdb.display());
    let oracle = assert_restores(build, &rdb, truth, source, opts.oracle, &what);
    log(build, &format!("{label}: restored and equal: {oracle}"));
    // Checked last, so that a failure here means that everything else passed.
    assert!(
        unnamed.is_empty(),
        "{} {label}: every other check passed, but the lost vectorset keys' reasons do not name their module type:\n{}",
        build.name,
        unnamed.join("\n")
    );
    RunResult {
        label: spec.label.clone(),
        rdb,
        report,
        oracle,
        elapsed,
        choice: spec.choice,
    }
}

/// The module keys of the dataset must be the report's only lost keys. Returns the report
/// with them taken out (`lost`, `expected`, `lost_keys`), for the checks of everything else,
/// and the lost entries whose reason does not name the module type (`vectorset`).
fn assert_module_keys_lost(
    build: &Build,
    truth: &MatrixTruth,
    report: &serde_json::Value,
    label: &str,
) -> (serde_json::Value, Vec<String>) {
    let module_keys = &truth.filled.module_keys;
    if module_keys.is_empty() {
        return (report.clone(), Vec::new());
    }
    assert!(
        truth.module_keys_dropped,
        "the truth must be taken again without the module keys"
    );
    let lost = report["lost_keys"].as_array().cloned().unwrap_or_default();
    let mut bad = Vec::new();
    let mut unnamed = Vec::new();
    for (db, key) in module_keys {
        let name = printable(key);
        let entry = lost
            .iter()
            .find(|e| e["db"].as_u64() == Some(u64::from(*db)) && e["key"].as_str() == Some(&name));
        match entry {
            None => bad.push(format!("db {db} {name}: not in lost_keys")),
            Some(e) => {
                let reason = e["reason"].as_str().unwrap_or_default();
                if !reason.contains("vectorset") {
                    unnamed.push(format!(
                        "db {db} {name}: the reason does not name the module type vectorset: {e}"
                    ));
                }
            }
        }
    }
    if lost.len() != module_keys.len() {
        bad.push(format!(
            "lost_keys has {} entries, want the {} vectorset keys only",
            lost.len(),
            module_keys.len()
        ));
    }
    if report["totals"]["lost"].as_u64() != Some(module_keys.len() as u64) {
        bad.push(format!(
            "totals.lost is {}, want {}",
            report["totals"]["lost"],
            module_keys.len()
        ));
    }
    assert!(
        bad.is_empty(),
        "{} {label}: the vectorset keys, and they only, should be reported lost:\n{}\nlost_keys: {}",
        build.name,
        bad.join("\n"),
        snippet(&report["lost_keys"].to_string(), 3000)
    );
    let mut out = report.clone();
    for (db, _) in module_keys {
        let entry = &mut out["dbs"][db.to_string()];
        for field in ["lost", "expected"] {
            let n = entry[field].as_u64().unwrap_or_else(|| {
                panic!("{} {label}: dbs.{db}.{field} is not a number", build.name)
            });
            entry[field] = serde_json::json!(n.saturating_sub(1));
        }
    }
    out["lost_keys"] = serde_json::json!([]);
    (out, unnamed)
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
    spec: &RunSpec,
) {
    let label = spec.label.as_str();
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
        .and_then(|b| b.get(0..9).map(|d| String::from_utf8_lossy(d).into_owned()));
    assert_eq!(
        header.as_deref(),
        Some(rdb_magic(version).as_str()),
        "{} {label}: the RDB header vs the report's rdb_version {version}",
        build.name
    );
    assert!(
        version as u32 <= build.native_rdb_version(),
        "{} {label}: RDB version {version} is newer than {} loads ({})",
        build.name,
        build.name,
        build.native_rdb_version()
    );

    // Redis 4.0+ hashes dict keys with SipHash and a seed the tool finds in the core (Redis
    // 8.2+'s dicts of objects embedding their keys by those keys), and so do Valkey 8.1 and
    // 9.1 hashtables (each entry checked against its bucket and stored hash fragment); 2.8
    // to 3.2 with MurmurHash2 and a 32-bit seed, found the same way.
    let bucket_check = &report["bucket_check"];
    let hash = if build.version.0 < 4 && !build.is_valkey() {
        "murmurhash2"
    } else {
        "siphash-1-2"
    };
    assert!(
        bucket_check["on"].as_bool() == Some(true) && bucket_check["hash"] == hash,
        "{} {label}: bucket_check is {bucket_check}, expected on with {hash}",
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
        spec.binary
            .as_ref()
            .map(|b| fs::canonicalize(b).expect("canonical binary path")),
        "{} {label}: source.binary (null: no binary used)\n{}",
        build.name,
        excerpt(source)
    );
    if spec.choice == Choice::BuildId {
        assert_eq!(
            source.get("profile").and_then(|v| v.as_str()),
            Some(build.name),
            "{} {label}: source.profile\n{}",
            build.name,
            excerpt(source)
        );
    }
    if build.chroot && spec.args.iter().all(|a| a != "--binary") {
        // The core names the binary by a path the tool must not trust: by its host path
        // (gcore) or as the chroot sees it (the kernel), where this host has another build.
        let in_core = source
            .get("executable_in_core")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let host = Path::new(in_core);
        if build.path_in_chroot().as_deref() == Some(host) {
            // Debian 12's redis-check-rdb (7.0.15) for the Redis builds; no such file for
            // Valkey's (Debian 12 has no valkey package installed here).
            let host_id = crate::common::elf_build_id(host);
            let valkey = build.is_valkey();
            assert!(
                if valkey {
                    host_id.as_deref() != Some(build.build_id.as_str())
                } else {
                    host_id.is_some() && host_id.as_deref() != Some(build.build_id.as_str())
                },
                "{} {label}: the kernel core names {in_core}, which should be {} on this host, for the test to mean anything; it has build-id {host_id:?}",
                build.name,
                if valkey {
                    "absent or another build"
                } else {
                    "this host's own (Debian 12) build with another build-id"
                }
            );
        } else {
            assert_eq!(
                fs::canonicalize(host).ok(),
                fs::canonicalize(&build.binary).ok(),
                "{} {label}: source.executable_in_core\n{}",
                build.name,
                excerpt(source)
            );
        }
    }
}

/// The 9 bytes an RDB of `version` starts with: `REDIS0011`, or `VALKEY080` from RDB 80
/// (Valkey 9).
pub fn rdb_magic(version: u64) -> String {
    if version >= 80 {
        format!("VALKEY{version:03}")
    } else {
        format!("REDIS{version:04}")
    }
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

    for r in [a, b] {
        let choice = r.report["source"]["profile_choice"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let profile = r.report["source"]["profile"].as_str();
        let ok = match r.choice {
            Choice::Dwarf => choice.to_ascii_lowercase().contains("dwarf"),
            Choice::Named => {
                choice.contains(build.name)
                    && !choice.to_ascii_lowercase().contains("dwarf")
                    && profile == Some(build.name)
            }
            Choice::BuildId => {
                choice.contains(&build.build_id)
                    && !choice.to_ascii_lowercase().contains("dwarf")
                    && profile == Some(build.name)
            }
        };
        assert!(
            ok,
            "{} {}: source.profile_choice should say {}, got {choice:?} (both runs passed every other check)\n{}",
            build.name,
            r.label,
            match r.choice {
                Choice::Dwarf => "the layout was derived from the binary's DWARF on the fly".to_string(),
                Choice::Named => format!("the profile {:?} was named", build.name),
                Choice::BuildId => format!(
                    "the shipped profile {:?} was found by build-id {}",
                    build.name, build.build_id
                ),
            },
            excerpt(&r.report["source"])
        );
    }
}
