//! Streams recovered from real servers: for Redis 7.0.15 (Debian's package), 5.0.6, 6.2.14
//! and Valkey 8.1.8 (the last three built by `.ci/provision-redis.sh`), fill a server with
//! streams in every shape the version can make — several listpack nodes, consumer groups
//! created at `0`, at `$` and at an ID, consumers with pending entries (read, re-read,
//! claimed, acked, NOACK), consumers created with XGROUP CREATECONSUMER (6.2+), entries
//! deleted from the middle, the head and the tail of nodes, XTRIM, streams emptied by XDEL,
//! `XADD MAXLEN 0`, explicit IDs with sequence numbers, binary names and values, values of
//! several KB, XSETID, and on 7.0+ ENTRIESREAD / ENTRIESADDED / MAXDELETEDID — plus a few
//! strings, some with a TTL. Record DEBUG DIGEST, DBSIZE per db, the XINFO of every stream
//! and the TTLs; gcore the server; recover the core; restore the RDB into a fresh server of
//! the same version and require all of it to be equal.
//!
//! A last test recovers a 7.0 stream core with `--rdb-version 8`, which has no stream type:
//! the streams must be reported lost (exit 1) and every other key written.
//!
//! A missing build makes the test fail (not skip): run `.ci/provision-redis.sh`.

mod fill;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Cmd, Connection, Value};

use self::fill::fill;
use self::snapshot::{as_int, compare, expire_label, get_label, snapshot, Snapshot};
use crate::common::{
    builds_dir, check_rdb, dbsizes, describe, digest, elf_build_id, gcore, pseudo_random_bytes,
    read_report, ready_entry, run_rescue, select, show, snippet, RedisServer,
};

const HINT: &str =
    "run .ci/provision-redis.sh (it builds the servers into target/redis-builds/ and writes READY)";

/// Debian 12's redis-server 7.0.15 (the shipped `7.0.15-debian` profile matches its build-id).
const DEBIAN_SERVER: &str = "/usr/bin/redis-server";
const DEBIAN_CHECKER: &str = "/usr/bin/redis-check-rdb";

// ---------------------------------------------------------------------------------------------
// The server builds
// ---------------------------------------------------------------------------------------------

/// One server build under test.
struct Target {
    /// The name `RedisServer::start_version` and READY use: `7.0.15`, `valkey-8.1.8`, …
    name: &'static str,
    server: PathBuf,
    /// `major.minor.patch` of the server itself (8.1.8 for Valkey).
    version: (u32, u32, u32),
    valkey: bool,
    /// Pass `--binary` to redis-rescue. Debian's server is found through the core's NT_FILE
    /// note, as a user would run it.
    pass_binary: bool,
}

impl Target {
    fn debian() -> Target {
        let server = PathBuf::from(DEBIAN_SERVER);
        assert!(
            server.is_file(),
            "{DEBIAN_SERVER} is missing: install Debian 12's redis-server 7.0.15 (apt-get install redis-server)"
        );
        Target {
            name: "7.0.15",
            server,
            version: (7, 0, 15),
            valkey: false,
            pass_binary: false,
        }
    }

    /// A build `.ci/provision-redis.sh` made; panics (the test fails) when it is missing or
    /// not the binary READY lists.
    fn provisioned(name: &'static str) -> Target {
        let dir = builds_dir();
        let (_, ready_id) = ready_entry(name, HINT);
        let valkey = name.starts_with("valkey-");
        let parts: Vec<u32> = name
            .trim_start_matches("valkey-")
            .split('.')
            .map(|p| p.parse().unwrap_or_else(|_| panic!("version {name:?}")))
            .collect();
        let server = dir.join(name).join(if valkey {
            "valkey-server"
        } else {
            "redis-server"
        });
        assert!(
            server.is_file(),
            "build {name}: {} is missing; {HINT}",
            server.display()
        );
        let id = elf_build_id(&server);
        assert_eq!(
            id.as_deref(),
            Some(ready_id.as_str()),
            "build {name}: {} is not the binary READY lists; {HINT}",
            server.display()
        );
        Target {
            name,
            server,
            version: (parts[0], parts[1], parts[2]),
            valkey,
            pass_binary: true,
        }
    }

    /// `XINFO STREAM key FULL` (6.0+).
    fn has_xinfo_full(&self) -> bool {
        self.valkey || self.version >= (6, 0, 0)
    }

    /// `XGROUP CREATECONSUMER` (6.2+).
    fn has_createconsumer(&self) -> bool {
        self.valkey || self.version >= (6, 2, 0)
    }

    /// 7.0's stream metadata (ENTRIESREAD, XSETID ENTRIESADDED/MAXDELETEDID) and PEXPIRETIME.
    fn has_v7(&self) -> bool {
        self.valkey || self.version >= (7, 0, 0)
    }

    /// The RDB version the server writes, which redis-rescue must write by default.
    fn native_rdb_version(&self) -> u64 {
        if self.valkey {
            11
        } else if self.version >= (7, 0, 0) {
            10
        } else {
            9
        }
    }

    /// Start a server (free loopback port, private dir, `--save ""`; `--enable-debug-command
    /// yes` only where the version knows it) and check it is the version it should be.
    fn start(&self, rdb: Option<&Path>) -> RedisServer {
        let server = match rdb {
            Some(rdb) => RedisServer::start_version_on_rdb(&self.server, self.name, rdb, &[]),
            None => RedisServer::start_version(&self.server, self.name, &[]),
        };
        let mut conn = server.conn();
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut conn)
            .expect("INFO server");
        let field = if self.valkey {
            "valkey_version:"
        } else {
            "redis_version:"
        };
        let (a, b, c) = self.version;
        let got = info
            .lines()
            .find_map(|l| l.trim().strip_prefix(field))
            .unwrap_or_default();
        assert_eq!(
            got,
            format!("{a}.{b}.{c}"),
            "{} reports another version (INFO server {field})",
            self.server.display()
        );
        server
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

fn cmd_text(c: &Cmd) -> String {
    c.args_iter()
        .map(|a| match a {
            redis::Arg::Simple(b) => snippet(&show(b), 60),
            _ => "<cursor>".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run one command; panics with the command on an error reply.
fn run(conn: &mut Connection, c: &Cmd) -> Value {
    c.query::<Value>(conn)
        .unwrap_or_else(|e| panic!("`{}` failed: {e}", cmd_text(c)))
}

fn cmd(parts: &[&[u8]]) -> Cmd {
    let mut c = redis::cmd(std::str::from_utf8(parts[0]).expect("command name"));
    for p in &parts[1..] {
        c.arg(*p);
    }
    c
}

/// `run(conn, cmd(parts))`.
fn r(conn: &mut Connection, parts: &[&[u8]]) -> Value {
    run(conn, &cmd(parts))
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// XADD every entry (id `*` or explicit) in one pipeline; returns the IDs.
fn xadd_all(conn: &mut Connection, key: &[u8], entries: &[(String, Fields)]) -> Vec<String> {
    let mut p = redis::pipe();
    for (id, fields) in entries {
        let c = p.cmd("XADD").arg(key).arg(id.as_str());
        for (f, v) in fields {
            c.arg(f.as_slice()).arg(v.as_slice());
        }
    }
    p.query(conn)
        .unwrap_or_else(|e| panic!("XADD pipeline on {}: {e}", show(key)))
}

fn auto(n: usize, f: impl Fn(usize) -> Fields) -> Vec<(String, Fields)> {
    (1..=n).map(|i| ("*".to_string(), f(i))).collect()
}

fn kv(pairs: &[(&str, String)]) -> Fields {
    pairs
        .iter()
        .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// A little time between deliveries, so that delivery and seen times differ.
fn tick() {
    std::thread::sleep(Duration::from_millis(3));
}

fn xreadgroup(conn: &mut Connection, key: &[u8], group: &[u8], consumer: &[u8], count: usize) {
    let n = count.to_string();
    r(
        conn,
        &[
            b"XREADGROUP",
            b"GROUP",
            group,
            consumer,
            b"COUNT",
            n.as_bytes(),
            b"STREAMS",
            key,
            b">",
        ],
    );
    tick();
}

// ---------------------------------------------------------------------------------------------
// The dataset (filled in `fill.rs`)
// ---------------------------------------------------------------------------------------------

/// What [`fill`] made.
struct Dataset {
    /// Every stream key as (db, key).
    streams: Vec<(u32, Vec<u8>)>,
    /// Every other key as (db, key).
    others: Vec<(u32, Vec<u8>)>,
    /// The keys (of `others`) with a TTL.
    ttl_keys: Vec<(u32, Vec<u8>)>,
}

impl Dataset {
    fn streams_in(&self, db: u32) -> u64 {
        self.streams.iter().filter(|(d, _)| *d == db).count() as u64
    }
}

const BIN_KEY: &[u8] = b"s:\x00bin\xff";

// ---------------------------------------------------------------------------------------------
// The truth: what the server answers about the dataset (`snapshot.rs`)
// ---------------------------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

fn log(t: &Target, msg: &str) {
    eprintln!("[streams {}] {msg}", t.name);
}

fn work_dir(t: &Target) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("streams-{}-", t.name))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create the test's work dir")
}

/// Start, fill, snapshot and gcore a server of `t`; returns the dataset, its snapshot and the
/// core (in `dir`).
fn make_core(t: &Target, dir: &Path) -> (Dataset, Snapshot, PathBuf) {
    let started = Instant::now();
    let source = t.start(None);
    let mut conn = source.conn();
    let ds = fill(&mut conn, t);
    let truth = snapshot(&mut conn, t, &ds);
    for (db, _) in &ds.streams {
        assert!(
            truth.dbsizes.get(db).copied().unwrap_or(0) >= ds.streams_in(*db),
            "db {db} lacks streams after filling: {:?}",
            truth.dbsizes
        );
    }
    // Nothing touched the server between the snapshot and the core.
    let core = gcore(&source, dir);
    log(
        t,
        &format!(
            "{} streams, DBSIZEs {:?}, digest {}; core {} MB after {:.1?}",
            ds.streams.len(),
            truth.dbsizes,
            truth.digest,
            fs::metadata(&core).map(|m| m.len() >> 20).unwrap_or(0),
            started.elapsed()
        ),
    );
    (ds, truth, core)
}

fn rescue(t: &Target, core: &Path, rdb: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![core.as_os_str(), "-o".as_ref(), rdb.as_os_str()];
    if t.pass_binary {
        args.push("--binary".as_ref());
        args.push(t.server.as_os_str());
    }
    args.extend(extra.iter().map(OsStr::new));
    let started = Instant::now();
    let out = run_rescue(&args);
    log(
        t,
        &format!(
            "redis-rescue {:?}: {} in {:.1?}",
            args,
            out.status,
            started.elapsed()
        ),
    );
    out
}

fn db_entry(report: &serde_json::Value, db: u32) -> &serde_json::Value {
    &report["dbs"][db.to_string()]
}

fn count(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The whole round trip for one version.
fn round_trip(t: &Target) {
    let started = Instant::now();
    let work = work_dir(t);
    let (ds, truth, core) = make_core(t, work.path());
    let rdb = work.path().join("dump.rdb");
    let out = rescue(t, &core, &rdb, &[]);
    let ctx = describe(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: redis-rescue should recover every key (exit 0)\n{ctx}",
        t.name
    );
    let report = read_report(&work.path().join("dump.rdb.report.json"));
    let rep = || {
        snippet(
            &serde_json::to_string_pretty(&report).unwrap_or_default(),
            3000,
        )
    };

    let mut bad = Vec::new();
    if report["rdb_version"].as_u64() != Some(t.native_rdb_version()) {
        bad.push(format!(
            "report rdb_version {} (want {}, what {} writes)",
            report["rdb_version"],
            t.native_rdb_version(),
            t.name
        ));
    }
    if count(&report["totals"]["lost"]) != 0
        || report["lost_keys"].as_array().is_none_or(|l| !l.is_empty())
    {
        bad.push(format!(
            "report: totals.lost {} and lost_keys {} (want 0 and [])",
            report["totals"]["lost"],
            snippet(&report["lost_keys"].to_string(), 2000)
        ));
    }
    let total: u64 = truth.dbsizes.values().sum();
    let streams_total = count(&report["totals"]["by_type"]["stream"]["stream"]);
    if count(&report["totals"]["keys"]) != total || streams_total != ds.streams.len() as u64 {
        bad.push(format!(
            "report totals: keys {} (want {total}), by_type.stream.stream {streams_total} (want {})",
            report["totals"]["keys"],
            ds.streams.len()
        ));
    }
    for (db, &size) in &truth.dbsizes {
        let e = db_entry(&report, *db);
        let (keys, lost) = (count(&e["keys"]), count(&e["lost"]));
        let streams = count(&e["by_type"]["stream"]["stream"]);
        if keys != size || lost != 0 || streams != ds.streams_in(*db) {
            bad.push(format!(
                "report dbs.{db}: keys {keys} (DBSIZE {size}), lost {lost} (want 0), \
                 by_type.stream.stream {streams} (want {} stream keys)",
                ds.streams_in(*db)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{}: the report is wrong:\n{}\n--- report ---\n{}\n{ctx}",
        t.name,
        bad.join("\n"),
        rep()
    );

    let restored = t.start(Some(&rdb));
    let mut conn = restored.conn();
    let got = snapshot(&mut conn, t, &ds);
    let bad = compare(&truth, &got);
    assert!(
        bad.is_empty(),
        "{}: the server restored from {} differs from the source in {} ways:\n\n{}\n\n{ctx}",
        t.name,
        rdb.display(),
        bad.len(),
        snippet(&bad.join("\n\n"), 20_000)
    );
    log(
        t,
        &format!(
            "PASS in {:.1?}: digest, DBSIZEs, {} replies (XINFO, XPENDING, XRANGE, GET) and {} times equal",
            started.elapsed(),
            truth.replies.len(),
            truth.times.len()
        ),
    );
}

#[test]
fn streams_redis_7_0_15_debian() {
    round_trip(&Target::debian());
}

#[test]
fn streams_redis_5_0_6() {
    round_trip(&Target::provisioned("5.0.6"));
}

#[test]
fn streams_redis_6_2_14() {
    round_trip(&Target::provisioned("6.2.14"));
}

#[test]
fn streams_valkey_8_1_8() {
    round_trip(&Target::provisioned("valkey-8.1.8"));
}

/// `--rdb-version 8` (Redis 4.0's format, which has no stream type) on a 7.0 stream core:
/// every stream is reported lost with a reason naming the RDB version, the exit status is 1,
/// and every other key is written exactly (value and expire time), which a 7.0 server and
/// redis-check-rdb confirm.
#[test]
fn streams_lost_with_rdb_version_8() {
    let started = Instant::now();
    let t = Target::debian();
    let work = work_dir(&t);
    let (ds, truth, core) = make_core(&t, work.path());

    // The non-stream keys as the source had them: value and expire time.
    let rdb = work.path().join("dump8.rdb");
    let out = rescue(&t, &core, &rdb, &["--rdb-version", "8"]);
    let ctx = describe(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "--rdb-version 8 on a stream core should write the other keys and report the streams lost (exit 1)\n{ctx}"
    );
    let header = fs::read(&rdb)
        .ok()
        .and_then(|b| b.get(..9).map(<[u8]>::to_vec));
    assert_eq!(
        header.as_deref(),
        Some(&b"REDIS0008"[..]),
        "header of {} (exit 1 must leave the RDB)\n{ctx}",
        rdb.display()
    );
    let report = read_report(&work.path().join("dump8.rdb.report.json"));
    let rep = || {
        snippet(
            &serde_json::to_string_pretty(&report).unwrap_or_default(),
            4000,
        )
    };

    let mut bad = Vec::new();
    if report["rdb_version"].as_u64() != Some(8) {
        bad.push(format!("rdb_version {} (want 8)", report["rdb_version"]));
    }
    let lost = report["lost_keys"].as_array().cloned().unwrap_or_default();
    let lost_set: BTreeSet<(u64, String)> = lost
        .iter()
        .map(|l| {
            (
                count(&l["db"]),
                l["key"].as_str().unwrap_or("<unnamed>").to_string(),
            )
        })
        .collect();
    let want_set: BTreeSet<(u64, String)> = ds
        .streams
        .iter()
        .map(|(db, k)| (u64::from(*db), show(k)))
        .collect();
    if lost_set != want_set || lost.len() != want_set.len() {
        bad.push(format!(
            "lost_keys (db, key) {lost_set:?}, want every stream key and nothing else: {want_set:?}"
        ));
    }
    for l in &lost {
        let reason = l["reason"].as_str().unwrap_or_default();
        let low = reason.to_ascii_lowercase();
        let names_8 = reason
            .split(|c: char| !c.is_ascii_digit())
            .any(|w| w == "8");
        if !(low.contains("rdb") && names_8) {
            bad.push(format!(
                "lost key {}: reason {reason:?} does not name the RDB version (8)",
                l["key"]
            ));
        }
        if !l["kind"].as_str().unwrap_or_default().contains("stream") {
            bad.push(format!(
                "lost key {}: kind {} (want a stream)",
                l["key"], l["kind"]
            ));
        }
    }
    let mut want_sizes = BTreeMap::new();
    for (db, &size) in &truth.dbsizes {
        let streams = ds.streams_in(*db);
        let e = db_entry(&report, *db);
        let (keys, lost, expected) = (count(&e["keys"]), count(&e["lost"]), count(&e["expected"]));
        if keys != size - streams || lost != streams || expected != size {
            bad.push(format!(
                "dbs.{db}: keys {keys} lost {lost} expected {expected}, want {} {streams} {size}",
                size - streams
            ));
        }
        if size > streams {
            want_sizes.insert(*db, size - streams);
        }
    }
    assert!(
        bad.is_empty(),
        "--rdb-version 8: the report is wrong:\n{}\n--- report ---\n{}\n{ctx}",
        bad.join("\n"),
        rep()
    );

    let (keys, expires) = check_rdb(Path::new(DEBIAN_CHECKER), &rdb);
    let others = ds.others.len() as u64;
    assert_eq!(
        (keys, expires),
        (others, ds.ttl_keys.len() as u64),
        "(keys, expires) redis-check-rdb read in {}\n{ctx}",
        rdb.display()
    );

    let restored = t.start(Some(&rdb));
    let mut conn = restored.conn();
    let sizes = dbsizes(&mut conn);
    let mut bad = Vec::new();
    if sizes != want_sizes {
        bad.push(format!(
            "DBSIZE per db {sizes:?}, want {want_sizes:?} (the source's without its streams)"
        ));
    }
    // Every other key as the source had it: value and expire time (-1: none).
    for (db, key) in &ds.others {
        select(&mut conn, *db);
        let value = &truth.replies[&get_label(*db, key)];
        let expire = truth
            .times
            .get(&expire_label(*db, key))
            .map_or(-1, |b| b.lo);
        let got = r(&mut conn, &[b"GET", key]);
        let at = as_int(&r(&mut conn, &[b"PEXPIRETIME", key]));
        if &got != value || at != expire {
            bad.push(format!(
                "db{db} {}: GET {got:?} PEXPIRETIME {at}, want {value:?} {expire}",
                show(key)
            ));
        }
    }
    for (db, key) in &ds.streams {
        select(&mut conn, *db);
        if as_int(&r(&mut conn, &[b"EXISTS", key])) != 0 {
            bad.push(format!("db{db} {}: a lost stream exists", show(key)));
        }
    }
    assert!(
        bad.is_empty(),
        "--rdb-version 8: the restored server is wrong:\n{}\n{ctx}",
        bad.join("\n")
    );
    log(&t, &format!("PASS in {:.1?}", started.elapsed()));
}
