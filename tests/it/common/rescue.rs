//! Running redis-rescue and reading what it wrote: the tool with a timeout, its JSON report
//! checked against the truth, the version's RDB checker, rewriting a dump entry by entry;
//! and the state of a live source (`--pid`) the tool stopped and let go.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::server::RedisServer;
use super::truth::{digest, Truth};
use super::{show, snippet};

/// How long one redis-rescue run may take before the test gives up on it.
const RESCUE_TIMEOUT: Duration = Duration::from_secs(600);

/// Run `redis-rescue` with `args` in `cwd` (or the test's cwd); panics if it runs for more than
/// ten minutes.
pub fn run_rescue_in(cwd: Option<&Path>, args: &[&OsStr]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redis-rescue"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn().expect("spawn redis-rescue");
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + RESCUE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait on redis-rescue") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "redis-rescue {args:?} ran longer than {RESCUE_TIMEOUT:?}; stderr:\n{}",
                snippet(&String::from_utf8_lossy(&stderr), 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Run `redis-rescue` with `args`.
pub fn run_rescue(args: &[&OsStr]) -> Output {
    run_rescue_in(None, args)
}

/// `redis-rescue CORE -o DIR/dump.rdb -q`, which must exit 0; the dump's path.
pub fn recover_core(core: &Path, dir: &Path) -> PathBuf {
    let dump = dir.join("dump.rdb");
    let out = run_rescue(&[
        core.as_os_str(),
        "-o".as_ref(),
        dump.as_os_str(),
        "-q".as_ref(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "recovery failed\n{}",
        describe(&out)
    );
    dump
}

/// Everything about a redis-rescue run, for panic messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        snippet(&String::from_utf8_lossy(&out.stdout), 3000),
        snippet(&String::from_utf8_lossy(&out.stderr), 3000)
    )
}

/// Read and parse a JSON report.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| {
        let listing: Vec<String> = path
            .parent()
            .and_then(|p| fs::read_dir(p).ok())
            .map(|it| {
                it.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        panic!(
            "cannot read report {}: {e}; the directory holds {listing:?}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "report {} is not JSON ({e}):\n{}",
            path.display(),
            snippet(&text, 2000)
        )
    })
}

/// Check a report's per-db section against the truth: keys == expected == DBSIZE, lost == 0,
/// expires and rehashing as the server had them, by_type equal to the census.
pub fn assert_report_matches(report: &serde_json::Value, truth: &Truth) {
    let ctx = || {
        snippet(
            &serde_json::to_string_pretty(report).unwrap_or_default(),
            3000,
        )
    };
    let dbs = report
        .get("dbs")
        .and_then(|d| d.as_object())
        .unwrap_or_else(|| panic!("report has no \"dbs\" object:\n{}", ctx()));
    let with_keys: BTreeSet<u32> = dbs
        .iter()
        .filter(|(_, v)| v.get("keys").and_then(|k| k.as_u64()).unwrap_or(0) > 0)
        .map(|(k, _)| {
            k.parse()
                .unwrap_or_else(|_| panic!("db name {k:?} in the report is not a number"))
        })
        .collect();
    let truth_dbs: BTreeSet<u32> = truth.dbsizes.keys().copied().collect();
    assert_eq!(
        with_keys,
        truth_dbs,
        "dbs with keys in the report vs the source server:\n{}",
        ctx()
    );
    for (db, &size) in &truth.dbsizes {
        let entry = &dbs[&db.to_string()];
        let field = |name: &str| -> u64 {
            entry.get(name).and_then(|v| v.as_u64()).unwrap_or_else(|| {
                panic!("report dbs.{db}.{name} is missing or not a number:\n{entry:#}")
            })
        };
        assert_eq!(field("keys"), size, "dbs.{db}.keys vs DBSIZE\n{entry:#}");
        assert_eq!(
            field("expected"),
            size,
            "dbs.{db}.expected vs DBSIZE\n{entry:#}"
        );
        assert_eq!(
            field("lost"),
            0,
            "dbs.{db}.lost\n{entry:#}\nlost_keys: {}",
            snippet(&report["lost_keys"].to_string(), 2000)
        );
        assert_eq!(
            field("expires"),
            truth.expires.get(db).copied().unwrap_or(0),
            "dbs.{db}.expires vs INFO keyspace\n{entry:#}"
        );
        assert_eq!(
            entry.get("rehashing").and_then(|v| v.as_bool()),
            truth.rehashing.get(db).copied(),
            "dbs.{db}.rehashing vs DEBUG HTSTATS\n{entry:#}"
        );
        let by_type = entry
            .get("by_type")
            .and_then(|v| v.as_object())
            .unwrap_or_else(|| panic!("report dbs.{db}.by_type is missing:\n{entry:#}"));
        let mut got: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (ty, encs) in by_type {
            let encs = encs
                .as_object()
                .unwrap_or_else(|| panic!("dbs.{db}.by_type.{ty} is not an object"));
            for (enc, n) in encs {
                let n = n
                    .as_u64()
                    .unwrap_or_else(|| panic!("dbs.{db}.by_type.{ty}.{enc} is not a count"));
                if n > 0 {
                    got.entry(ty.clone()).or_default().insert(enc.clone(), n);
                }
            }
        }
        assert_eq!(
            &got, &truth.dataset.census[db],
            "dbs.{db}.by_type (left) vs TYPE/OBJECT ENCODING on the source (right)"
        );
    }
    let lost = report.get("lost_keys").and_then(|v| v.as_array());
    assert!(
        lost.is_some_and(|l| l.is_empty()),
        "lost_keys should be an empty array: {}",
        snippet(
            &report
                .get("lost_keys")
                .map(|v| v.to_string())
                .unwrap_or_default(),
            2000
        )
    );
}

/// Run `checker` (redis-check-rdb) on `rdb`, assert it is happy, return its
/// (keys read, expires) counts.
pub fn check_rdb(checker: &Path, rdb: &Path) -> (u64, u64) {
    let out = Command::new(checker)
        .arg(rdb)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", checker.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "{} {} failed ({}):\n{}",
        checker.display(),
        rdb.display(),
        out.status,
        snippet(&text, 4000)
    );
    let count = |suffix: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("[info] ")?
                    .strip_suffix(suffix)?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| {
                panic!(
                    "no `[info] N{suffix}` line in the checker's output:\n{}",
                    snippet(&text, 4000)
                )
            })
    };
    (count(" keys read"), count(" expires"))
}

/// How long a stopped source gets to run again after the tool is gone.
pub const RESUME_TIMEOUT: Duration = Duration::from_secs(5);

/// The state letter of process `pid` (`/proc/PID/stat`, after the command name).
pub fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    let after = &stat[stat
        .rfind(')')
        .expect("stat has the command in parentheses")
        + 1..];
    after.trim_start().chars().next().expect("a state letter")
}

/// `TracerPid` of process `pid`.
pub fn tracer_of(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read /proc/PID/status")
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("TracerPid in /proc/PID/status")
}

/// The source runs (not stopped, not traced: within [`RESUME_TIMEOUT`]), answers PING, and
/// its DEBUG DIGEST is still `digest`.
pub fn assert_source_unharmed(source: &RedisServer, want_digest: &str, what: &str) {
    let pid = source.pid();
    let deadline = Instant::now() + RESUME_TIMEOUT;
    while matches!(proc_state(pid), 't' | 'T') || tracer_of(pid) != 0 {
        assert!(
            Instant::now() < deadline,
            "{what}: the source (pid {pid}) is still stopped (state {}, tracer {}) {RESUME_TIMEOUT:?} later",
            proc_state(pid),
            tracer_of(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut conn = source.conn();
    let pong: String = redis::cmd("PING")
        .query(&mut conn)
        .expect("PING the source");
    assert_eq!(pong, "PONG", "{what}");
    assert_eq!(
        digest(&mut conn),
        want_digest,
        "{what}: the source's DEBUG DIGEST changed"
    );
}

/// Where a stream record's value starts in `record` (the file's bytes from the end of the
/// previous key to the end of this one: opcodes, type byte, key, value): right after the type
/// byte and the key, encoded as the writer encodes strings.
pub fn stream_value_start(record: &[u8], e: &rdb::reader::Entry) -> usize {
    let mut found = Vec::new();
    for compress in [true, false] {
        let mut pat = vec![e.rdb_type];
        rdb::encode::put_string(&mut pat, &e.key, compress);
        if let Some(at) = record.windows(pat.len()).position(|w| w == pat.as_slice()) {
            found.push(at + pat.len());
        }
    }
    *found.iter().min().unwrap_or_else(|| {
        panic!(
            "stream {}: its type byte and key are not in its record",
            show(&e.key)
        )
    })
}

/// Rewrite `src` into `dst`, passing every entry through `edit` (return false to drop it).
/// Streams are copied as the file stores them (their value's bytes), the rest re-encoded.
pub fn rewrite(src: &Path, dst: &Path, mut edit: impl FnMut(&mut rdb::reader::Entry) -> bool) {
    let bytes = fs::read(src).expect("read dump");
    let mut r = rdb::reader::RdbReader::new(bytes.as_slice()).expect("dump header");
    let mut start = r.offset() as usize;
    let first = r.next_entry().expect("read").expect("a non-empty dump");
    let mut end = r.offset() as usize;
    let mut streams = Vec::new();
    let mut w =
        rdb::RdbWriter::new(fs::File::create(dst).expect("create"), r.version()).expect("writer");
    for (k, v) in r.aux() {
        w.aux(k, v).expect("aux");
    }
    let mut db = None;
    let mut rec = rdb::RecordBuilder::new(true);
    let mut entry = Some(first);
    while let Some(mut e) = entry {
        if edit(&mut e) {
            if db != Some(e.db) {
                w.select_db(u64::from(e.db)).expect("select");
                db = Some(e.db);
            }
            rec.clear();
            if let Some(t) = e.expire_ms {
                rec.expire_ms(t);
            }
            match &e.value {
                rdb::reader::RdbValue::String(s) => {
                    rec.value_type(rdb::ValueType::String);
                    rec.key(&e.key);
                    rec.string(s);
                }
                rdb::reader::RdbValue::List(l) | rdb::reader::RdbValue::Set(l) => {
                    let list = matches!(e.value, rdb::reader::RdbValue::List(_));
                    rec.value_type(if list {
                        rdb::ValueType::List
                    } else {
                        rdb::ValueType::Set
                    });
                    rec.key(&e.key);
                    rec.len(l.len() as u64);
                    for x in l {
                        rec.string(x);
                    }
                }
                rdb::reader::RdbValue::Zset(z) => {
                    rec.value_type(rdb::ValueType::Zset2);
                    rec.key(&e.key);
                    rec.len(z.len() as u64);
                    for (m, s) in z {
                        rec.string(m);
                        rec.binary_double(*s);
                    }
                }
                rdb::reader::RdbValue::Hash(h) => {
                    rec.value_type(rdb::ValueType::Hash);
                    rec.key(&e.key);
                    rec.len(h.len() as u64);
                    for (f, v) in h {
                        rec.string(f);
                        rec.string(v);
                    }
                }
                rdb::reader::RdbValue::Stream(_) => {
                    let ty = rdb::ValueType::from_code(e.rdb_type).expect("a stream type byte");
                    rec.value_type(ty);
                    rec.key(&e.key);
                    rec.raw(&bytes[start + stream_value_start(&bytes[start..end], &e)..end]);
                    streams.push(e.clone());
                }
                other => panic!("the test rewriter does not handle {}", other.type_name()),
            }
            w.record(&rec).expect("record");
        }
        start = r.offset() as usize;
        entry = r.next_entry().expect("read");
        end = r.offset() as usize;
    }
    w.finish().expect("finish");
    // The copied streams read back as they were.
    let back: Vec<rdb::reader::Entry> =
        rdb::reader::RdbReader::new(fs::File::open(dst).expect("open the rewrite"))
            .expect("header of the rewrite")
            .map(|e| e.expect("read the rewrite"))
            .filter(|e| matches!(e.value, rdb::reader::RdbValue::Stream(_)))
            .collect();
    assert_eq!(back, streams, "streams copied by the rewriter");
}
