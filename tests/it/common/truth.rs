//! What a live server holds, read with ordinary commands: DEBUG DIGEST, DBSIZE, the keyspace
//! and rehash state, quicklist node encodings, values, TTLs; the [`Truth`] recorded before a
//! core is taken and the checks that a restored server holds it again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use redis::Connection;

use super::fill::Dataset;
use super::server::RedisServer;
use super::streams::{probe_streams, stream_differences, StreamProbe};
use super::{show, snippet, value_text};

/// `DEBUG DIGEST` (40 hex digits).
pub fn digest(conn: &mut Connection) -> String {
    let d: String = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(conn)
        .unwrap_or_else(|e| {
            panic!("DEBUG DIGEST failed (is --enable-debug-command yes set?): {e}")
        });
    assert_eq!(
        d.len(),
        40,
        "DEBUG DIGEST reply is not 40 hex digits: {d:?}"
    );
    d
}

/// DBSIZE of every db 0..16 that has keys. Leaves the connection on db 0.
pub fn dbsizes(conn: &mut Connection) -> BTreeMap<u32, u64> {
    dbsizes_of(conn, 0..16u32)
}

/// DBSIZE of each of `dbs` that has keys. Leaves the connection on db 0.
pub fn dbsizes_of(conn: &mut Connection, dbs: impl IntoIterator<Item = u32>) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for db in dbs {
        let (n,): (u64,) = redis::pipe()
            .cmd("SELECT")
            .arg(db)
            .ignore()
            .cmd("DBSIZE")
            .query(conn)
            .unwrap_or_else(|e| panic!("SELECT {db} + DBSIZE: {e}"));
        if n > 0 {
            out.insert(db, n);
        }
    }
    select(conn, 0);
    out
}

pub fn select(conn: &mut Connection, db: u32) {
    redis::cmd("SELECT")
        .arg(db)
        .exec(conn)
        .unwrap_or_else(|e| panic!("SELECT {db}: {e}"));
}

/// Per db: (keys, expires) as `INFO keyspace` reports them.
pub fn keyspace_info(conn: &mut Connection) -> BTreeMap<u32, (u64, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(conn)
        .expect("INFO keyspace");
    let mut out = BTreeMap::new();
    for line in info.lines() {
        let Some(rest) = line.trim().strip_prefix("db") else {
            continue;
        };
        let Some((db, fields)) = rest.split_once(':') else {
            continue;
        };
        let db: u32 = db
            .parse()
            .unwrap_or_else(|_| panic!("INFO keyspace line {line:?}"));
        let mut keys = None;
        let mut expires = None;
        for kv in fields.split(',') {
            match kv.split_once('=') {
                Some(("keys", v)) => keys = v.parse().ok(),
                Some(("expires", v)) => expires = v.parse().ok(),
                _ => {}
            }
        }
        out.insert(
            db,
            (
                keys.unwrap_or_else(|| panic!("no keys= in {line:?}")),
                expires.unwrap_or_else(|| panic!("no expires= in {line:?}")),
            ),
        );
    }
    out
}

/// Element counts of the main key dict's hash tables from `DEBUG HTSTATS db`:
/// `[ht0]` when not rehashing, `[ht0, ht1]` while rehashing. Does not rehash anything.
pub fn main_dict_tables(conn: &mut Connection, db: u32) -> Vec<u64> {
    let stats: String = redis::cmd("DEBUG")
        .arg("HTSTATS")
        .arg(db)
        .query(conn)
        .unwrap_or_else(|e| panic!("DEBUG HTSTATS {db}: {e}"));
    let main = stats.split("[Expires HT]").next().unwrap_or("");
    let mut tables = Vec::new();
    for line in main.lines() {
        if let Some(n) = line.trim().strip_prefix("number of elements:") {
            tables.push(
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("HTSTATS line {line:?}")),
            );
        } else if line.contains("No stats available for empty dictionaries") {
            tables.push(0);
        }
    }
    assert!(
        !tables.is_empty() && tables.len() <= 2,
        "cannot read DEBUG HTSTATS {db}:\n{stats}"
    );
    assert_eq!(
        tables.len() == 2,
        main.contains("rehashing target"),
        "DEBUG HTSTATS {db} has an unexpected shape:\n{stats}"
    );
    tables
}

/// db → type → encoding → number of keys, with the names `TYPE` and `OBJECT ENCODING` use.
pub type Census = BTreeMap<u32, BTreeMap<String, BTreeMap<String, u64>>>;

/// Every key of `db` (SCAN, deduplicated). Leaves the connection on `db`.
pub fn scan_keys(conn: &mut Connection, db: u32) -> BTreeSet<Vec<u8>> {
    select(conn, db);
    let mut keys = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .unwrap_or_else(|e| panic!("SCAN in db {db}: {e}"));
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys
}

/// Keys per type × encoding in one db, via SCAN + TYPE + OBJECT ENCODING. Leaves the
/// connection on db 0.
pub fn census_of_db(conn: &mut Connection, db: u32) -> BTreeMap<String, BTreeMap<String, u64>> {
    let keys = scan_keys(conn, db);
    let keys: Vec<Vec<u8>> = keys.into_iter().collect();
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("TYPE").arg(k.as_slice());
            p.cmd("OBJECT").arg("ENCODING").arg(k.as_slice());
        }
        let replies: Vec<redis::Value> = p.query(conn).expect("census pipeline");
        for pair in replies.chunks(2) {
            *out.entry(value_text(&pair[0]))
                .or_default()
                .entry(value_text(&pair[1]))
                .or_default() += 1;
        }
    }
    select(conn, 0);
    out
}

/// Node summaries of a quicklist from `DEBUG QUICKLIST key 0`: one (container, encoding) pair
/// per node, e.g. ("PACKED", "LZF"). Redis prints them on its stdout, which is buffered; a
/// `DEBUG LOG` line right after makes Redis flush it (it logs to stdout, see `try_start`).
pub fn quicklist_nodes(
    server: &RedisServer,
    conn: &mut Connection,
    db: u32,
    key: &[u8],
) -> Vec<(String, String)> {
    use std::io::{Seek, SeekFrom};
    let from = fs::metadata(server.stdout_path())
        .map(|m| m.len())
        .unwrap_or(0);
    let marker = format!("end-of-quicklist-dump-{}-{db}-{from}", show(key));
    select(conn, db);
    let reply: String = redis::cmd("DEBUG")
        .arg("QUICKLIST")
        .arg(key)
        .arg(0)
        .query(conn)
        .unwrap_or_else(|e| panic!("DEBUG QUICKLIST {}: {e}", show(key)));
    assert!(
        reply.contains("printed on stdout"),
        "DEBUG QUICKLIST reply: {reply:?}"
    );
    redis::cmd("DEBUG")
        .arg("LOG")
        .arg(&marker)
        .exec(conn)
        .expect("DEBUG LOG");
    select(conn, 0);

    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let mut bytes = Vec::new();
        let mut f = fs::File::open(server.stdout_path()).expect("open the server's stdout");
        f.seek(SeekFrom::Start(from))
            .expect("seek in the server's stdout");
        f.read_to_end(&mut bytes).expect("read the server's stdout");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find(&marker) {
            break text[..end].to_string();
        }
        assert!(
            Instant::now() < deadline,
            "DEBUG QUICKLIST output for {} never reached the server's stdout:\n{}",
            show(key),
            snippet(&text, 2000)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let len: Option<usize> = text.lines().find_map(|l| {
        l.strip_prefix("{len : ")?
            .strip_suffix('}')?
            .trim()
            .parse()
            .ok()
    });
    let nodes: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("{container : ")?;
            let (container, rest) = rest.split_once(',')?;
            let enc = rest.trim().strip_prefix("encoding: ")?.split(',').next()?;
            Some((container.trim().to_string(), enc.trim().to_string()))
        })
        .collect();
    assert_eq!(
        len,
        Some(nodes.len()),
        "cannot read DEBUG QUICKLIST output for {}:\n{}",
        show(key),
        snippet(&text, 2000)
    );
    nodes
}

/// Queue the ordinary command that reads a key of type `ty` whole (GET, LRANGE, SMEMBERS,
/// ZRANGE WITHSCORES, HGETALL, XRANGE); a missing key or another type queues PING, so
/// only its type is compared.
pub fn queue_value_read(p: &mut redis::Pipeline, key: &[u8], ty: &str) {
    match ty {
        "string" => p.cmd("GET").arg(key),
        "list" => p.cmd("LRANGE").arg(key).arg(0).arg(-1),
        "set" => p.cmd("SMEMBERS").arg(key),
        "zset" => p.cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES"),
        "hash" => p.cmd("HGETALL").arg(key),
        "stream" => p.cmd("XRANGE").arg(key).arg("-").arg("+"),
        _ => p.cmd("PING"),
    };
}

/// A reply as bytes: bulk and simple strings, OK, integers and doubles as their text.
pub fn bulk(v: &redis::Value) -> Vec<u8> {
    match v {
        redis::Value::BulkString(b) => b.clone(),
        redis::Value::SimpleString(s) => s.clone().into_bytes(),
        redis::Value::Okay => b"OK".to_vec(),
        redis::Value::Int(i) => i.to_string().into_bytes(),
        redis::Value::Double(d) => d.to_string().into_bytes(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// An array, set or map reply as a flat list of byte strings.
pub fn bulks(v: &redis::Value) -> Vec<Vec<u8>> {
    match v {
        redis::Value::Array(items) | redis::Value::Set(items) => items.iter().map(bulk).collect(),
        redis::Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// XRANGE's reply as one item per entry: its ID and field/value pairs, NUL-separated.
pub fn stream_entries(v: &redis::Value) -> Vec<Vec<u8>> {
    let redis::Value::Array(entries) = v else {
        panic!("XRANGE reply {v:?}")
    };
    entries
        .iter()
        .map(|e| {
            let redis::Value::Array(parts) = e else {
                panic!("XRANGE entry {e:?}")
            };
            let mut out = bulk(&parts[0]);
            for f in bulks(&parts[1]) {
                out.push(0);
                out.extend(f);
            }
            out
        })
        .collect()
}

/// What the source server held when its core was taken.
#[derive(Debug, Clone)]
pub struct Truth {
    /// `INFO server` redis_version of the source server.
    pub redis_version: String,
    pub digest: String,
    pub dbsizes: BTreeMap<u32, u64>,
    /// Per db: number of keys with a TTL (INFO keyspace `expires=`).
    pub expires: BTreeMap<u32, u64>,
    /// (db, key, PEXPIRETIME) for every TTL key.
    pub pexpiretimes: Vec<(u32, Vec<u8>, i64)>,
    /// Per db with keys: whether its key dict was mid-rehash (DEBUG HTSTATS).
    pub rehashing: BTreeMap<u32, bool>,
    /// What the server answered about every stream of the dataset ([`probe_streams`]):
    /// DEBUG DIGEST covers stream entries, not consumer groups.
    pub streams: Vec<StreamProbe>,
    pub dataset: Dataset,
}

/// PEXPIRETIME of every (db, key). Leaves the connection on db 0.
pub fn pexpiretimes(conn: &mut Connection, keys: &[(u32, Vec<u8>)]) -> Vec<(u32, Vec<u8>, i64)> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        for (db, key) in chunk {
            p.cmd("SELECT").arg(*db).ignore();
            p.cmd("PEXPIRETIME").arg(key.as_slice());
        }
        let times: Vec<i64> = p.query(conn).expect("PEXPIRETIME pipeline");
        for ((db, key), t) in chunk.iter().zip(times) {
            out.push((*db, key.clone(), t));
        }
    }
    select(conn, 0);
    out
}

/// Record the truth of a filled server. Order matters: PEXPIRETIME and the stream probes look
/// keys up (which moves rehashing buckets), so they go first; DEBUG DIGEST, DBSIZE and HTSTATS
/// move nothing.
pub fn record_truth(conn: &mut Connection, dataset: Dataset) -> Truth {
    let pexpiretimes = pexpiretimes(conn, &dataset.ttl_keys);
    for (db, key, t) in &pexpiretimes {
        assert!(
            *t > 0,
            "TTL key {} in db {db} has PEXPIRETIME {t}",
            show(key)
        );
    }
    assert!(
        !dataset.streams.is_empty(),
        "the dataset should hold streams"
    );
    let streams = probe_streams(conn, &dataset.streams, true);
    let digest = digest(conn);
    assert_ne!(digest, "0".repeat(40), "the source dataset is empty");
    let dbsizes = dbsizes(conn);
    let info = keyspace_info(conn);
    let expires: BTreeMap<u32, u64> = info.iter().map(|(db, (_, e))| (*db, *e)).collect();
    for (db, (keys, _)) in &info {
        assert_eq!(
            dbsizes.get(db),
            Some(keys),
            "INFO keyspace vs DBSIZE for db {db}"
        );
    }
    for (db, n) in &expires {
        let ours = dataset.ttl_keys.iter().filter(|(d, _)| d == db).count() as u64;
        assert_eq!(
            *n, ours,
            "db {db}: INFO keyspace expires vs the TTL keys the dataset set"
        );
    }
    let rehashing: BTreeMap<u32, bool> = dbsizes
        .keys()
        .map(|db| (*db, main_dict_tables(conn, *db).len() == 2))
        .collect();
    assert_eq!(
        rehashing.get(&dataset.rehashing_db),
        Some(&true),
        "db {} must still be rehashing when the core is taken",
        dataset.rehashing_db
    );
    select(conn, 0);
    let redis_version = redis_version(conn);
    Truth {
        redis_version,
        digest,
        dbsizes,
        expires,
        pexpiretimes,
        rehashing,
        streams,
        dataset,
    }
}

/// Start a server on `rdb` and assert it holds exactly the truth: same DEBUG DIGEST, same DBSIZE
/// per db, same PEXPIRETIME for every TTL key, same XINFO STREAM FULL COUNT 0 for every stream
/// (consumer groups, consumers and pending entries, which DEBUG DIGEST does not cover).
pub fn assert_restores_exactly(binary: &Path, rdb: &Path, truth: &Truth) {
    let server = RedisServer::start_on_rdb(binary, rdb, &[]);
    let mut conn = server.conn();
    assert_holds_exactly(&mut conn, truth, &rdb.display().to_string());
}

/// Assert that the server behind `conn` holds exactly the truth (as
/// [`assert_restores_exactly`] does), `what` saying how the data got there.
pub fn assert_holds_exactly(conn: &mut Connection, truth: &Truth, what: &str) {
    let sizes = dbsizes(conn);
    assert_eq!(sizes, truth.dbsizes, "DBSIZE per db after restoring {what}");
    let times = pexpiretimes(&mut *conn, &truth.dataset.ttl_keys);
    let wrong: Vec<String> = truth
        .pexpiretimes
        .iter()
        .zip(&times)
        .filter(|(a, b)| a.2 != b.2)
        .map(|(a, b)| format!("db {} key {}: want {}, got {}", a.0, show(&a.1), a.2, b.2))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} TTL keys have a different PEXPIRETIME after restoring:\n{}",
        wrong.len(),
        times.len(),
        wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let got_streams = probe_streams(&mut *conn, &truth.dataset.streams, true);
    let diffs = stream_differences(&truth.streams, &got_streams);
    assert!(
        diffs.is_empty(),
        "{} of {} streams differ after restoring {} (XINFO STREAM FULL COUNT 0):\n{}",
        diffs.len(),
        truth.streams.len(),
        what,
        snippet(&diffs.join("\n\n"), 8000)
    );
    let got = digest(&mut *conn);
    assert_eq!(
        got, truth.digest,
        "DEBUG DIGEST after restoring {} differs from the source",
        what
    );
}

/// `INFO server` redis_version.
pub fn redis_version(conn: &mut Connection) -> String {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(conn)
        .expect("INFO server");
    info.lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))
        .unwrap_or_else(|| panic!("no redis_version in INFO server:\n{info}"))
        .to_string()
}

/// A key as ordinary commands show it: TYPE, value, PEXPIRETIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub ty: String,
    /// string: [value]; list: elements in order; set: members sorted; zset: member, score,
    /// member, score… in rank order; hash: field, value… sorted by field; stream: one item per
    /// entry (XRANGE - +: ID, field, value…), then its XINFO STREAM FULL COUNT 0 reply.
    pub value: Vec<Vec<u8>>,
    pub pexpiretime: i64,
}

/// TYPE, value and PEXPIRETIME of `keys` in `db`, read with ordinary commands.
pub fn key_states(conn: &mut Connection, db: u32, keys: &[Vec<u8>]) -> Vec<KeyState> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(200) {
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for k in chunk {
            p.cmd("TYPE").arg(k.as_slice());
            p.cmd("PEXPIRETIME").arg(k.as_slice());
        }
        let meta: Vec<redis::Value> = p
            .query(conn)
            .unwrap_or_else(|e| panic!("db {db}: TYPE/PEXPIRETIME pipeline: {e}"));
        let types: Vec<String> = meta
            .iter()
            .step_by(2)
            .map(|v| String::from_utf8_lossy(&bulk(v)).into_owned())
            .collect();
        let times: Vec<i64> = meta
            .iter()
            .skip(1)
            .step_by(2)
            .map(|v| match v {
                redis::Value::Int(i) => *i,
                other => panic!("PEXPIRETIME reply {other:?}"),
            })
            .collect();
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for (k, ty) in chunk.iter().zip(&types) {
            queue_value_read(&mut p, k, ty);
        }
        let values: Vec<redis::Value> = p
            .query(conn)
            .unwrap_or_else(|e| panic!("db {db}: value pipeline: {e}"));
        // A stream's groups, consumers and pending entries (all times absolute in 7.0).
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for (k, ty) in chunk.iter().zip(&types) {
            if ty == "stream" {
                p.cmd("XINFO")
                    .arg("STREAM")
                    .arg(k.as_slice())
                    .arg("FULL")
                    .arg("COUNT")
                    .arg(0);
            }
        }
        let infos: Vec<redis::Value> = if types.iter().any(|t| t == "stream") {
            p.query(conn)
                .unwrap_or_else(|e| panic!("db {db}: XINFO STREAM FULL pipeline: {e}"))
        } else {
            Vec::new()
        };
        let mut infos = infos.into_iter();
        for ((ty, t), v) in types.into_iter().zip(times).zip(values) {
            let value = match ty.as_str() {
                "string" => vec![bulk(&v)],
                "stream" => {
                    let mut entries = stream_entries(&v);
                    let info = infos
                        .next()
                        .expect("one XINFO STREAM FULL reply per stream");
                    entries.push(format!("XINFO STREAM FULL COUNT 0: {info:?}").into_bytes());
                    entries
                }
                "list" => bulks(&v),
                "set" => {
                    let mut m = bulks(&v);
                    m.sort();
                    m
                }
                "zset" => bulks(&v),
                "hash" => {
                    let flat = bulks(&v);
                    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = flat
                        .chunks(2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    pairs.sort();
                    pairs.into_iter().flat_map(|(f, v)| [f, v]).collect()
                }
                _ => Vec::new(),
            };
            out.push(KeyState {
                ty,
                value,
                pexpiretime: t,
            });
        }
    }
    out
}

/// The tool's printable form of a key (report.rs `printable`): UTF-8 kept, control characters,
/// backslashes and invalid bytes as `\xNN`.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
