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

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Cmd, Connection, Value};

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
// The dataset
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

/// Fill dbs 0, 1 and 3 with streams (and a few strings) of every shape `t` can make.
fn fill(conn: &mut Connection, t: &Target) -> Dataset {
    let mut ds = Dataset {
        streams: Vec::new(),
        others: Vec::new(),
        ttl_keys: Vec::new(),
    };

    // ---- db 0 ----
    select(conn, 0);

    // s:main: 300 entries in 3 nodes (stream-node-max-entries 100), some with an extra field
    // (not the master entry's fields); groups at 0, at $ and at an ID.
    let key: &[u8] = b"s:main";
    let ids = xadd_all(
        conn,
        key,
        &auto(300, |i| {
            let mut f = kv(&[("f1", format!("v{i}")), ("f2", i.to_string())]);
            if i % 7 == 0 {
                f.extend(kv(&[("extra", format!("x{i}"))]));
            }
            f
        }),
    );
    let id = |i: usize| ids[i].as_bytes();
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-all", b"0"]);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-tail", b"$"]);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-mid", id(149)]);
    xreadgroup(conn, key, b"g-all", b"alice", 20); // ids 0..20
    xreadgroup(conn, key, b"g-all", b"bob", 30); // ids 20..50
    xreadgroup(conn, key, b"g-mid", b"carol", 5); // ids 150..155
    r(
        conn,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g-mid",
            b"nobody",
            b"COUNT",
            b"7",
            b"NOACK",
            b"STREAMS",
            key,
            b">",
        ],
    );
    if t.has_createconsumer() {
        r(
            conn,
            &[b"XGROUP", b"CREATECONSUMER", key, b"g-tail", b"dave"],
        );
    }
    xadd_all(
        conn,
        key,
        &auto(10, |i| {
            kv(&[("f1", format!("late{i}")), ("f2", "0".into())])
        }),
    );
    xreadgroup(conn, key, b"g-tail", b"erin", 3);
    let mut ack: Vec<&[u8]> = vec![b"XACK", key, b"g-all"];
    ack.extend((0..10).map(id));
    r(conn, &ack);
    tick();
    r(
        conn,
        &[b"XCLAIM", key, b"g-all", b"alice", b"0", id(25), id(26)],
    );
    tick();
    // bob reads his history again: delivery counts and times change.
    r(
        conn,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g-all",
            b"bob",
            b"STREAMS",
            key,
            b"0",
        ],
    );
    // Deleted: 45..60 (the middle of the first node, bob's pending 45..49 among them), the
    // second node's master entry (100), one of carol's pending (152), the second node's last.
    let mut del: Vec<&[u8]> = vec![b"XDEL", key];
    del.extend((45..60).map(id));
    del.extend([id(100), id(152), id(199)]);
    r(conn, &del);
    ds.streams.push((0, key.to_vec()));

    // s:explicit: explicit IDs with sequence numbers; integer-looking and odd values.
    let key: &[u8] = b"s:explicit";
    let odd = [
        "9223372036854775807",
        "-9223372036854775808",
        "3.14",
        "007",
        "",
        "-1",
        "4294967296",
    ];
    let mut entries = Vec::new();
    for i in 1..=60usize {
        entries.push((format!("{i}-1"), kv(&[("a", i.to_string())])));
        entries.push((
            format!("{i}-7"),
            kv(&[
                ("a", odd[i % odd.len()].to_string()),
                ("b", format!("-{i}")),
            ]),
        ));
    }
    for i in 1..=60usize {
        entries.push((format!("{}-{i}", 1000 + i), kv(&[("c", format!("{i}"))])));
    }
    xadd_all(conn, key, &entries);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    xreadgroup(conn, key, b"g", b"x", 50);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-set", b"5-7"]);
    if t.has_v7() {
        r(
            conn,
            &[
                b"XGROUP",
                b"SETID",
                key,
                b"g-set",
                b"1010-10",
                b"ENTRIESREAD",
                b"130",
            ],
        );
    } else {
        r(conn, &[b"XGROUP", b"SETID", key, b"g-set", b"1010-10"]);
    }
    xreadgroup(conn, key, b"g-set", b"y", 4);
    r(conn, &[b"XDEL", key, b"30-7", b"31-1", b"1002-2"]);
    ds.streams.push((0, key.to_vec()));

    // A binary key with binary field names, values, group and consumer names.
    let key = BIN_KEY;
    xadd_all(
        conn,
        key,
        &auto(130, |i| {
            vec![
                (
                    pseudo_random_bytes(i as u64, 1 + i % 13),
                    pseudo_random_bytes(10_000 + i as u64, i % 40),
                ),
                (
                    b"\x00\xff".to_vec(),
                    (i * 1_000_003).to_string().into_bytes(),
                ),
            ]
        }),
    );
    r(conn, &[b"XGROUP", b"CREATE", key, b"g\x00\xff", b"0"]);
    xreadgroup(conn, key, b"g\x00\xff", b"c\x01\x02\xfe", 40);
    xreadgroup(conn, key, b"g\x00\xff", b"\xffc2", 3);
    ds.streams.push((0, key.to_vec()));

    // s:big: every tenth value 3-6 KB, so nodes are also cut by stream-node-max-bytes.
    let key: &[u8] = b"s:big";
    xadd_all(
        conn,
        key,
        &auto(110, |i| {
            let v = if i % 10 == 0 {
                pseudo_random_bytes(20_000 + i as u64, 3000 + (i * 37) % 3000)
            } else {
                format!("small{i}").into_bytes()
            };
            vec![
                (b"v".to_vec(), v),
                (b"n".to_vec(), i.to_string().into_bytes()),
            ]
        }),
    );
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    xreadgroup(conn, key, b"g", b"r", 15);
    ds.streams.push((0, key.to_vec()));

    r(
        conn,
        &[b"SET", b"ttl0", b"expiring value", b"PX", b"3600000"],
    );
    ds.others.push((0, b"ttl0".to_vec()));
    ds.ttl_keys.push((0, b"ttl0".to_vec()));

    // ---- db 1 ----
    select(conn, 1);

    // s:trim: trimmed to 70 (exactly) after a consumer read 30 of the trimmed-away entries.
    let key: &[u8] = b"s:trim";
    xadd_all(conn, key, &auto(250, |i| kv(&[("n", i.to_string())])));
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    xreadgroup(conn, key, b"g", b"r1", 30);
    r(conn, &[b"XGROUP", b"CREATE", key, b"g-after", b"$"]);
    if t.has_createconsumer() {
        r(
            conn,
            &[b"XGROUP", b"CREATECONSUMER", key, b"g-after", b"idle"],
        );
    }
    r(conn, &[b"XTRIM", key, b"MAXLEN", b"70"]);
    ds.streams.push((1, key.to_vec()));

    // s:empty: emptied by XDEL, with a group whose PEL names deleted entries.
    let key: &[u8] = b"s:empty";
    let ids = xadd_all(conn, key, &auto(5, |i| kv(&[("e", i.to_string())])));
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    xreadgroup(conn, key, b"g", b"r", 2);
    let mut del: Vec<&[u8]> = vec![b"XDEL", key];
    del.extend(ids.iter().map(|s| s.as_bytes()));
    r(conn, &del);
    ds.streams.push((1, key.to_vec()));

    // s:empty-nogroups: emptied by XDEL, no groups.
    let key: &[u8] = b"s:empty-nogroups";
    let ids = xadd_all(conn, key, &auto(3, |i| kv(&[("e", i.to_string())])));
    let mut del: Vec<&[u8]> = vec![b"XDEL", key];
    del.extend(ids.iter().map(|s| s.as_bytes()));
    r(conn, &del);
    ds.streams.push((1, key.to_vec()));

    // s:maxlen0: created empty, with a last ID.
    let key: &[u8] = b"s:maxlen0";
    r(conn, &[b"XADD", key, b"MAXLEN", b"0", b"*", b"f", b"v"]);
    ds.streams.push((1, key.to_vec()));

    r(conn, &[b"SET", b"plain", b"v"]);
    r(conn, &[b"SET", b"num", b"12345"]);
    r(conn, &[b"SET", b"ttl1", b"x", b"PX", b"7200000"]);
    for k in [&b"plain"[..], b"num", b"ttl1"] {
        ds.others.push((1, k.to_vec()));
    }
    ds.ttl_keys.push((1, b"ttl1".to_vec()));

    // ---- db 3: only a stream ----
    select(conn, 3);
    // s:meta: last ID moved ahead with XSETID; on 7.0+ also entries-added, max-deleted-id and
    // a group created with ENTRIESREAD.
    let key: &[u8] = b"s:meta";
    let ids = xadd_all(conn, key, &auto(120, |i| kv(&[("k", i.to_string())])));
    r(conn, &[b"XGROUP", b"CREATE", key, b"g", b"0"]);
    if t.has_v7() {
        r(
            conn,
            &[
                b"XGROUP",
                b"CREATE",
                key,
                b"g-er",
                ids[59].as_bytes(),
                b"ENTRIESREAD",
                b"60",
            ],
        );
    } else {
        r(
            conn,
            &[b"XGROUP", b"CREATE", key, b"g-er", ids[59].as_bytes()],
        );
    }
    xreadgroup(conn, key, b"g-er", b"m", 10);
    let mut del: Vec<&[u8]> = vec![b"XDEL", key];
    del.extend(ids[..5].iter().map(|s| s.as_bytes()));
    r(conn, &del);
    if t.has_v7() {
        r(
            conn,
            &[
                b"XSETID",
                key,
                b"99999999999999-5",
                b"ENTRIESADDED",
                b"500",
                b"MAXDELETEDID",
                ids[100].as_bytes(),
            ],
        );
    } else {
        r(conn, &[b"XSETID", key, b"99999999999999-5"]);
    }
    ds.streams.push((3, key.to_vec()));

    select(conn, 0);
    ds
}

// ---------------------------------------------------------------------------------------------
// The truth: what the server answers about the dataset
// ---------------------------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// An absolute time (Unix ms) the server only shows relative to its clock (idle times, PTTL),
/// bracketed by the client's clock before and after the query: the true value is in
/// `lo..=hi`.
#[derive(Debug, Clone, Copy)]
struct Bracket {
    lo: i64,
    hi: i64,
}

impl Bracket {
    /// Both brackets can hold the same instant (1 ms each side for rounding).
    fn overlaps(&self, o: &Bracket) -> bool {
        self.lo - 1 <= o.hi + 1 && o.lo - 1 <= self.hi + 1
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    digest: String,
    dbsizes: BTreeMap<u32, u64>,
    /// label → raw reply (relative time fields replaced by a marker).
    replies: BTreeMap<String, Value>,
    /// label → absolute time derived from a relative one.
    times: BTreeMap<String, Bracket>,
}

fn bulk_eq(v: &Value, s: &str) -> bool {
    matches!(v, Value::BulkString(b) if b == s.as_bytes())
        || matches!(v, Value::SimpleString(b) if b == s)
}

fn as_int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an integer: {v:?}")),
        _ => panic!("not an integer: {v:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => show(b),
        Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn stripped() -> Value {
    Value::SimpleString("<idle: compared as an absolute time>".into())
}

/// Query `c` and keep the reply under `label`, with the client's clock around it.
fn probe(conn: &mut Connection, c: &Cmd) -> (Value, i64, i64) {
    let t0 = now_ms();
    let v = run(conn, c);
    let t1 = now_ms();
    (v, t0, t1)
}

fn get_label(db: u32, key: &[u8]) -> String {
    format!("db{db} {}: GET", show(key))
}

fn expire_label(db: u32, key: &[u8]) -> String {
    format!("db{db} {} expire time", show(key))
}

/// Record digest, DBSIZEs, the XINFO of every stream and the absolute expire times.
fn snapshot(conn: &mut Connection, t: &Target, ds: &Dataset) -> Snapshot {
    let mut s = Snapshot::default();
    for (db, key) in &ds.streams {
        select(conn, *db);
        let k = format!("db{db} {}", show(key));
        if t.has_xinfo_full() {
            // COUNT 0: every entry and every PEL entry (the default shows 10). Every time
            // XINFO FULL prints (seen-time, active-time, delivery-time) is absolute Unix ms, so
            // the raw replies must be equal.
            let c = cmd(&[b"XINFO", b"STREAM", key, b"FULL", b"COUNT", b"0"]);
            s.replies
                .insert(format!("{k}: XINFO STREAM FULL COUNT 0"), run(conn, &c));
            continue;
        }
        // 5.0: no FULL. XINFO STREAM, XINFO GROUPS, XINFO CONSUMERS and XPENDING per group,
        // and XRANGE. The only times 5.0 shows are relative to its clock: `idle` in XINFO
        // CONSUMERS (now - seen-time) and the idle time in XPENDING's extended form (now -
        // delivery-time). They are taken out of the raw replies and compared as absolute
        // times (client clock around the query minus idle) that must agree within the
        // queries' duration.
        s.replies.insert(
            format!("{k}: XINFO STREAM"),
            r(conn, &[b"XINFO", b"STREAM", key]),
        );
        s.replies.insert(
            format!("{k}: XRANGE - +"),
            r(conn, &[b"XRANGE", key, b"-", b"+"]),
        );
        let groups = r(conn, &[b"XINFO", b"GROUPS", key]);
        let mut names = Vec::new();
        if let Value::Array(gs) = &groups {
            for g in gs {
                let Value::Array(f) = g else {
                    panic!("XINFO GROUPS item {g:?}")
                };
                let name = f
                    .chunks(2)
                    .find(|p| bulk_eq(&p[0], "name"))
                    .map(|p| p[1].clone())
                    .unwrap_or_else(|| panic!("group without name: {g:?}"));
                let Value::BulkString(name) = name else {
                    panic!("group name {name:?}")
                };
                names.push(name);
            }
        }
        s.replies.insert(format!("{k}: XINFO GROUPS"), groups);
        for g in &names {
            let gk = format!("{k} group {}", show(g));
            let (mut consumers, t0, t1) = probe(conn, &cmd(&[b"XINFO", b"CONSUMERS", key, g]));
            if let Value::Array(cs) = &mut consumers {
                for c in cs {
                    let Value::Array(f) = c else {
                        panic!("XINFO CONSUMERS item {c:?}")
                    };
                    let name = f
                        .chunks(2)
                        .find(|p| bulk_eq(&p[0], "name"))
                        .map(|p| text(&p[1]))
                        .unwrap_or_default();
                    for i in (0..f.len()).step_by(2) {
                        if bulk_eq(&f[i], "idle") {
                            let idle = as_int(&f[i + 1]);
                            s.times.insert(
                                format!("{gk} consumer {name} seen-time (now - idle)"),
                                Bracket {
                                    lo: t0 - idle,
                                    hi: t1 - idle,
                                },
                            );
                            f[i + 1] = stripped();
                        }
                    }
                }
            }
            s.replies
                .insert(format!("{gk}: XINFO CONSUMERS"), consumers);
            let (mut pending, t0, t1) =
                probe(conn, &cmd(&[b"XPENDING", key, g, b"-", b"+", b"1000"]));
            if let Value::Array(ps) = &mut pending {
                for p in ps {
                    let Value::Array(f) = p else {
                        panic!("XPENDING item {p:?}")
                    };
                    assert_eq!(f.len(), 4, "XPENDING item {f:?}");
                    let idle = as_int(&f[2]);
                    s.times.insert(
                        format!(
                            "{gk} pending {} ({}) delivery-time (now - idle)",
                            text(&f[0]),
                            text(&f[1])
                        ),
                        Bracket {
                            lo: t0 - idle,
                            hi: t1 - idle,
                        },
                    );
                    f[2] = stripped();
                }
            }
            s.replies
                .insert(format!("{gk}: XPENDING - + 1000"), pending);
        }
    }
    for (db, key) in &ds.others {
        select(conn, *db);
        s.replies
            .insert(get_label(*db, key), r(conn, &[b"GET", key]));
    }
    for (db, key) in &ds.ttl_keys {
        select(conn, *db);
        let label = expire_label(*db, key);
        if t.has_v7() {
            let at = as_int(&r(conn, &[b"PEXPIRETIME", key]));
            s.times.insert(label, Bracket { lo: at, hi: at });
        } else {
            // Before 7.0 only PTTL (relative); the expire time is kept absolute.
            let (v, t0, t1) = probe(conn, &cmd(&[b"PTTL", key]));
            let ttl = as_int(&v);
            assert!(ttl > 0, "{label}: PTTL {ttl}");
            s.times.insert(
                label,
                Bracket {
                    lo: t0 + ttl,
                    hi: t1 + ttl,
                },
            );
        }
    }
    select(conn, 0);
    s.dbsizes = dbsizes(conn);
    s.digest = digest(conn);
    s
}

// ---------------------------------------------------------------------------------------------
// Showing differences
// ---------------------------------------------------------------------------------------------

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::BulkString(b) if b.len() > 80 => format!(
            "\"{}…\" ({} bytes, fnv1a {:016x})",
            show(&b[..60]),
            b.len(),
            fnv1a(b)
        ),
        Value::BulkString(b) => format!("\"{}\"", show(b)),
        Value::Int(i) => i.to_string(),
        Value::Nil => "(nil)".into(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Array(_) => return None,
        other => format!("{other:?}"),
    })
}

/// An XINFO-style field name (`last-delivered-id`, `pel-count`, …).
fn field_name(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b)
            if !b.is_empty()
                && b.len() <= 30
                && b.iter().all(|c| c.is_ascii_lowercase() || *c == b'-') =>
        {
            std::str::from_utf8(b).ok()
        }
        _ => None,
    }
}

/// An array of field-name/value pairs (XINFO's replies).
fn is_map(items: &[Value]) -> bool {
    !items.is_empty()
        && items.len().is_multiple_of(2)
        && items.iter().step_by(2).all(|k| field_name(k).is_some())
}

/// A scalar, or a short array of scalars that is not a map (PEL entries, field lists), on one
/// line.
fn inline(v: &Value) -> Option<String> {
    let Value::Array(items) = v else {
        return scalar(v);
    };
    if items.len() > 8 || is_map(items) {
        return None;
    }
    let parts = items.iter().map(scalar).collect::<Option<Vec<_>>>()?;
    Some(format!("[{}]", parts.join(", ")))
}

/// A reply as indented lines (for diffs only: equality is decided on the raw replies).
/// Arrays of field-name/value pairs are shown as `name: value`.
fn render(v: &Value, depth: usize, out: &mut Vec<String>) {
    let ind = "  ".repeat(depth);
    if let Some(s) = inline(v) {
        out.push(format!("{ind}{s}"));
        return;
    }
    let Value::Array(items) = v else {
        unreachable!("inline() shows every scalar")
    };
    if is_map(items) {
        for p in items.chunks(2) {
            let name = field_name(&p[0]).unwrap_or_default();
            match inline(&p[1]) {
                Some(s) => out.push(format!("{ind}{name}: {s}")),
                None => {
                    out.push(format!("{ind}{name}:"));
                    render(&p[1], depth + 1, out);
                }
            }
        }
    } else {
        for (i, item) in items.iter().enumerate() {
            match inline(item) {
                Some(s) => out.push(format!("{ind}[{i}] {s}")),
                None => {
                    out.push(format!("{ind}[{i}]"));
                    render(item, depth + 1, out);
                }
            }
        }
    }
}

/// A line diff of two replies (`-` source, `+` restored) with some context.
fn diff_replies(a: &Value, b: &Value) -> String {
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    render(a, 1, &mut la);
    render(b, 1, &mut lb);
    let pre = la.iter().zip(&lb).take_while(|(x, y)| x == y).count();
    let suf = la[pre..]
        .iter()
        .rev()
        .zip(lb[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&la[pre..la.len() - suf], &lb[pre..lb.len() - suf]);
    let mut ops: Vec<(char, &String)> = Vec::new();
    if ma.len() * mb.len() <= 4_000_000 {
        // Longest common subsequence.
        let (n, m) = (ma.len(), mb.len());
        let mut t = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                t[i * (m + 1) + j] = if ma[i] == mb[j] {
                    t[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    t[(i + 1) * (m + 1) + j].max(t[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && ma[i] == mb[j] {
                ops.push((' ', &ma[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || t[(i + 1) * (m + 1) + j] >= t[i * (m + 1) + j + 1]) {
                ops.push(('-', &ma[i]));
                i += 1;
            } else {
                ops.push(('+', &mb[j]));
                j += 1;
            }
        }
    } else {
        ops.extend(ma.iter().map(|l| ('-', l)));
        ops.extend(mb.iter().map(|l| ('+', l)));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  (`-` source, `+` restored; {} vs {} lines, first difference at line {})",
        la.len(),
        lb.len(),
        pre + 1
    );
    for l in &la[pre.saturating_sub(4)..pre] {
        let _ = writeln!(s, "   {l}");
    }
    let mut shown = 0;
    for (i, (op, l)) in ops.iter().enumerate() {
        // Changed lines, with one line of context around each.
        let near = |k: usize| ops.get(k).is_some_and(|(o, _)| *o != ' ');
        if *op == ' ' && !(near(i + 1) || (i > 0 && near(i - 1))) {
            continue;
        }
        if shown == 60 {
            let _ = writeln!(s, "  … ({} more lines of diff)", ops.len() - i);
            break;
        }
        let _ = writeln!(s, "  {op}{l}");
        shown += 1;
    }
    s
}

/// Everything that differs between the source's snapshot and the restored server's.
fn compare(want: &Snapshot, got: &Snapshot) -> Vec<String> {
    let mut bad = Vec::new();
    if want.digest != got.digest {
        bad.push(format!(
            "DEBUG DIGEST: source {}, restored {}",
            want.digest, got.digest
        ));
    }
    if want.dbsizes != got.dbsizes {
        bad.push(format!(
            "DBSIZE per db: source {:?}, restored {:?}",
            want.dbsizes, got.dbsizes
        ));
    }
    let labels: BTreeSet<&String> = want.replies.keys().chain(got.replies.keys()).collect();
    for l in labels {
        match (want.replies.get(l), got.replies.get(l)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => bad.push(format!("{l} differs:\n{}", diff_replies(a, b))),
            (a, _) => bad.push(format!(
                "{l}: only on the {}",
                if a.is_some() {
                    "source"
                } else {
                    "restored server"
                }
            )),
        }
    }
    let labels: BTreeSet<&String> = want.times.keys().chain(got.times.keys()).collect();
    for l in labels {
        match (want.times.get(l), got.times.get(l)) {
            (Some(a), Some(b)) if a.overlaps(b) => {}
            (a, b) => {
                let show = |x: Option<&Bracket>| match x {
                    Some(x) if x.lo == x.hi => x.lo.to_string(),
                    Some(x) => format!("{}..={}", x.lo, x.hi),
                    None => "none".to_string(),
                };
                let off = match (a, b) {
                    (Some(a), Some(b)) => format!(" (off by {} ms)", b.lo - a.lo),
                    _ => String::new(),
                };
                bad.push(format!(
                    "{l} (absolute Unix ms): source {}, restored {}{off}",
                    show(a),
                    show(b)
                ))
            }
        }
    }
    bad
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
