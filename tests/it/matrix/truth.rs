//! What the source server held when its core was taken: DEBUG DIGEST, DBSIZE and expires per
//! db, the absolute expiry of every TTL key, which key dicts were mid-rehash; read with the
//! server's own commands and, where the server has no command for it (2.8 and 3.0 have no
//! DEBUG HTSTATS; no version before 7.0 prints quicklist node encodings), with gdb from the
//! live process through the build's DWARF.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis::Connection;

use super::build::{Build, Generation};
use super::fill::{htstats_tables, Filled, REHASHING_DB};
use crate::common::{
    dbsizes, keyspace_info, probe_streams, select, show, snippet, Dataset, RedisServer,
    StreamProbe, Truth,
};

/// The absolute expiry (Unix ms) of one key, known to lie in `[lo, hi]`: exact from
/// PEXPIRETIME (7.0+), or from PTTL and the clock around the query (older versions).
#[derive(Clone, Debug)]
pub struct Expiry {
    pub db: u32,
    pub key: Vec<u8>,
    pub lo: i64,
    pub hi: i64,
}

/// Every field of one hash with field TTLs and its HPEXPIRETIME (-1: no TTL), fields sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTtls {
    pub db: u32,
    pub key: Vec<u8>,
    pub fields: Vec<(Vec<u8>, i64)>,
}

#[derive(Clone, Debug)]
pub struct MatrixTruth {
    pub build: Build,
    /// DEBUG DIGEST of the source (`None` when the digest oracle is not used).
    pub digest: Option<String>,
    pub dbsizes: BTreeMap<u32, u64>,
    pub expires: BTreeMap<u32, u64>,
    pub expiries: Vec<Expiry>,
    /// Per db with keys: was its key dict mid-rehash when the core was taken.
    pub rehashing: BTreeMap<u32, bool>,
    /// How the rehash state was read, with the tables' figures, for messages.
    pub rehash_detail: String,
    /// What the source answered about every stream (groups, consumers, pending entries:
    /// DEBUG DIGEST covers stream entries only): XINFO STREAM FULL COUNT 0 (6.0+, Valkey), or
    /// 5.0's XINFO STREAM / GROUPS / CONSUMERS and XPENDING without their idle times.
    pub streams: Vec<StreamProbe>,
    /// HPEXPIRETIME of every field of every hash with field TTLs (Redis 8).
    pub field_ttls: Vec<FieldTtls>,
    /// FUNCTION LIST WITHCODE, one canonical line per library ([`function_list`]), when the
    /// fill loaded libraries.
    pub functions: Option<Vec<String>>,
    /// The module keys (`filled.module_keys`) were deleted from the source after the core,
    /// and `digest` and `dbsizes` taken again without them: what a restored server must hold.
    pub module_keys_dropped: bool,
    pub filled: Filled,
}

impl MatrixTruth {
    /// The shared harness's truth, for `assert_report_matches`.
    pub fn as_common(&self) -> Truth {
        Truth {
            redis_version: self.build.name.to_string(),
            digest: self.digest.clone().unwrap_or_default(),
            dbsizes: self.dbsizes.clone(),
            expires: self.expires.clone(),
            pexpiretimes: Vec::new(),
            rehashing: self.rehashing.clone(),
            streams: self.streams.clone(),
            dataset: Dataset {
                ttl_keys: self.filled.ttl_keys.clone(),
                rehashing_db: REHASHING_DB,
                census: self.filled.census.clone(),
                streams: self.filled.streams.clone(),
            },
        }
    }

    pub fn total_keys(&self) -> u64 {
        self.dbsizes.values().sum()
    }

    pub fn total_expires(&self) -> u64 {
        self.expires.values().sum()
    }

    /// After the core: delete the module keys (which redis-rescue reports lost) from the
    /// source, and take DEBUG DIGEST and DBSIZE again: the truth a restored server must match.
    pub fn drop_module_keys(&mut self, server: &RedisServer) {
        if self.filled.module_keys.is_empty() {
            return;
        }
        let mut conn = server.conn();
        for (db, key) in &self.filled.module_keys {
            select(&mut conn, *db);
            let n: i64 = redis::cmd("DEL")
                .arg(key.as_slice())
                .query(&mut conn)
                .unwrap_or_else(|e| panic!("DEL {}: {e}", show(key)));
            assert_eq!(n, 1, "{}: DEL db {db} {}", self.build.name, show(key));
        }
        let sizes = dbsizes(&mut conn);
        for (db, n) in &self.dbsizes {
            let gone = self
                .filled
                .module_keys
                .iter()
                .filter(|(d, _)| d == db)
                .count() as u64;
            assert_eq!(
                sizes.get(db).copied().unwrap_or(0),
                n - gone,
                "{}: db {db}: DBSIZE after deleting its {gone} module keys",
                self.build.name
            );
        }
        if self.digest.is_some() {
            self.digest = Some(
                redis::cmd("DEBUG")
                    .arg("DIGEST")
                    .query(&mut conn)
                    .expect("DEBUG DIGEST without the module keys"),
            );
        }
        self.dbsizes = sizes;
        self.module_keys_dropped = true;
    }
}

/// [`FieldTtls`] of every hash in `keys`: HKEYS, then HPEXPIRETIME of each field. Leaves
/// the connection on db 0.
pub fn field_ttls(conn: &mut Connection, keys: &[(u32, Vec<u8>)]) -> Vec<FieldTtls> {
    let mut out = Vec::new();
    for (db, key) in keys {
        select(conn, *db);
        let mut fields: Vec<Vec<u8>> = redis::cmd("HKEYS")
            .arg(key.as_slice())
            .query(conn)
            .unwrap_or_else(|e| panic!("HKEYS {}: {e}", show(key)));
        fields.sort();
        let mut c = redis::cmd("HPEXPIRETIME");
        c.arg(key.as_slice()).arg("FIELDS").arg(fields.len());
        for f in &fields {
            c.arg(f.as_slice());
        }
        let times: Vec<i64> = if fields.is_empty() {
            Vec::new()
        } else {
            c.query(conn)
                .unwrap_or_else(|e| panic!("HPEXPIRETIME {}: {e}", show(key)))
        };
        out.push(FieldTtls {
            db: *db,
            key: key.clone(),
            fields: fields.into_iter().zip(times).collect(),
        });
    }
    select(conn, 0);
    out
}

/// FUNCTION LIST WITHCODE, one line per library (its fields in order, its functions sorted),
/// libraries sorted: their order follows dict iteration, which differs between processes.
pub fn function_list(conn: &mut Connection) -> Vec<String> {
    let reply: redis::Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("WITHCODE")
        .query(conn)
        .expect("FUNCTION LIST WITHCODE");
    let redis::Value::Array(libs) = reply else {
        panic!("FUNCTION LIST WITHCODE reply {reply:?}")
    };
    let mut out: Vec<String> = libs
        .iter()
        .map(|lib| {
            let redis::Value::Array(kv) = lib else {
                panic!("FUNCTION LIST library {lib:?}")
            };
            kv.chunks(2)
                .map(|p| {
                    let name = crate::common::value_text(&p[0]);
                    let value = match (&name[..], p.get(1)) {
                        ("functions", Some(redis::Value::Array(fs))) => {
                            let mut fs: Vec<String> = fs.iter().map(|f| format!("{f:?}")).collect();
                            fs.sort();
                            fs.join(", ")
                        }
                        (_, Some(v)) => format!("{v:?}"),
                        (_, None) => "<none>".into(),
                    };
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect();
    out.sort();
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The expiry interval of every `(db, key)`. Looks keys up, so never call it on a db whose
/// rehash state matters. Leaves the connection on db 0.
pub fn expiries(conn: &mut Connection, build: &Build, keys: &[(u32, Vec<u8>)]) -> Vec<Expiry> {
    let cmd = if build.has_pexpiretime() {
        "PEXPIRETIME"
    } else {
        "PTTL"
    };
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(200) {
        let mut p = redis::pipe();
        for (db, key) in chunk {
            p.cmd("SELECT").arg(*db).ignore();
            p.cmd(cmd).arg(key.as_slice());
        }
        let before = now_ms();
        let replies: Vec<i64> = p
            .query(conn)
            .unwrap_or_else(|e| panic!("{}: {cmd} pipeline: {e}", build.name));
        let after = now_ms() + 1;
        for ((db, key), v) in chunk.iter().zip(replies) {
            let (lo, hi) = if v < 0 {
                // -1 no TTL, -2 no key: kept as is so that a comparison shows them.
                (v, v)
            } else if build.has_pexpiretime() {
                (v, v)
            } else {
                (before + v, after + v)
            };
            out.push(Expiry {
                db: *db,
                key: key.clone(),
                lo,
                hi,
            });
        }
    }
    select(conn, 0);
    out
}

/// Run gdb in batch mode on the live process `pid` with `script`; its stdout.
pub fn gdb_batch(pid: u32, script: &str, dir: &Path) -> String {
    let path = dir.join(format!("matrix-{pid}-{}.gdb", script.len()));
    std::fs::write(&path, script).expect("write the gdb script");
    let out = Command::new("gdb")
        .args(["-batch", "-nx", "-p", &pid.to_string(), "-x"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run gdb (it is needed for gcore anyway)");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !stdout.contains("No symbol"),
        "gdb on pid {pid} failed ({}):\n--- script ---\n{script}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        snippet(&stdout, 3000),
        snippet(&String::from_utf8_lossy(&out.stderr), 3000)
    );
    stdout
}

/// One key dict as gdb reads it from `server.db[i].dict` (2.8 to 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DictState {
    pub rehashidx: i64,
    pub size0: u64,
    pub used0: u64,
    pub size1: u64,
    pub used1: u64,
}

/// The key dict of every db 0..16 of a live 2.8–6.2 server, read with gdb (moves nothing).
pub fn dict_states(pid: u32, dir: &Path) -> BTreeMap<u32, DictState> {
    let mut script = String::new();
    for db in 0..16 {
        let d = format!("server.db[{db}].dict");
        writeln!(
            script,
            "printf \"dict {db} %ld %lu %lu %lu %lu\\n\", (long){d}->rehashidx, (unsigned long){d}->ht[0].size, (unsigned long){d}->ht[0].used, (unsigned long){d}->ht[1].size, (unsigned long){d}->ht[1].used"
        )
        .expect("write to a String");
    }
    let out = gdb_batch(pid, &script, dir);
    let mut states = BTreeMap::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("dict ") else {
            continue;
        };
        let f: Vec<i64> = rest
            .split_whitespace()
            .map(|w| w.parse().unwrap_or_else(|_| panic!("gdb line {line:?}")))
            .collect();
        states.insert(
            f[0] as u32,
            DictState {
                rehashidx: f[1],
                size0: f[2] as u64,
                used0: f[3] as u64,
                size1: f[4] as u64,
                used1: f[5] as u64,
            },
        );
    }
    assert_eq!(
        states.len(),
        16,
        "cannot read the 16 key dicts from gdb:\n{}",
        snippet(&out, 3000)
    );
    states
}

/// Nodes and LZF-compressed nodes of the quicklist at `key` in `db` of a live 3.2–6.2 server,
/// read with gdb (no DEBUG command prints node encodings before 7.0). The lookup calls
/// `dictFind` in the process, which may move one rehash bucket of that db's dict.
pub fn quicklist_lzf_nodes(pid: u32, lists: &[(u32, Vec<u8>)], dir: &Path) -> Vec<(u64, u64)> {
    let mut script = String::new();
    for (db, key) in lists {
        let key = std::str::from_utf8(key).expect("list keys for gdb are UTF-8");
        assert!(!key.contains('"') && !key.contains('\\'), "gdb key {key:?}");
        write!(
            script,
            r#"set $de = (dictEntry*)dictFind(server.db[{db}].dict, (void*)sdsnew("{key}"))
set $ql = (quicklist*)((robj*)$de->v.val)->ptr
set $n = $ql->head
set $t = 0
set $z = 0
while $n
  set $t = $t + 1
  if $n->encoding == 2
    set $z = $z + 1
  end
  set $n = $n->next
end
printf "quicklist %lu %lu\n", (unsigned long)$t, (unsigned long)$z
"#
        )
        .expect("write to a String");
    }
    let out = gdb_batch(pid, &script, dir);
    let counts: Vec<(u64, u64)> = out
        .lines()
        .filter_map(|l| {
            let mut it = l.strip_prefix("quicklist ")?.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(
        counts.len(),
        lists.len(),
        "cannot read quicklist node counts from gdb:\n{}",
        snippet(&out, 3000)
    );
    counts
}

/// Per db with keys: whether its key dict is mid-rehash, and a description. Moves nothing.
pub fn rehash_state(
    server: &RedisServer,
    conn: &mut Connection,
    build: &Build,
    dbs: &[u32],
) -> (BTreeMap<u32, bool>, String) {
    let mut flags = BTreeMap::new();
    let mut detail = String::new();
    if build.has_dictht_keyspace() {
        let states = dict_states(server.pid(), server.dir());
        for db in dbs {
            let s = states[db];
            let rehashing = s.rehashidx != -1;
            flags.insert(*db, rehashing);
            let _ = writeln!(detail, "db {db}: gdb {s:?}");
            if build.has_htstats() {
                // The server's own view must agree with gdb's.
                let tables = htstats_tables(conn, *db);
                assert_eq!(
                    tables.len() == 2,
                    rehashing,
                    "{}: db {db}: DEBUG HTSTATS tables {tables:?} vs gdb {s:?}",
                    build.name
                );
                let _ = writeln!(detail, "db {db}: DEBUG HTSTATS element counts {tables:?}");
            }
        }
    } else {
        for db in dbs {
            let tables = htstats_tables(conn, *db);
            flags.insert(*db, tables.len() == 2);
            let _ = writeln!(detail, "db {db}: DEBUG HTSTATS element counts {tables:?}");
        }
    }
    select(conn, 0);
    (flags, detail)
}

/// Check that the rehashing db is mid-rehash with many keys in both tables.
fn assert_mid_rehash(
    server: &RedisServer,
    conn: &mut Connection,
    build: &Build,
    filled: &Filled,
    detail: &str,
) {
    let total = filled.census[&REHASHING_DB]
        .values()
        .flat_map(|e| e.values())
        .sum::<u64>();
    let (a, b) = if build.has_dictht_keyspace() {
        let s = dict_states(server.pid(), server.dir())[&REHASHING_DB];
        assert!(
            s.rehashidx > 0 && s.size0 == filled.rehash_base && s.size1 == 2 * filled.rehash_base,
            "{}: db {REHASHING_DB} should be mid-rehash from {} to {} buckets: {s:?}",
            build.name,
            filled.rehash_base,
            2 * filled.rehash_base
        );
        (s.used0, s.used1)
    } else {
        let t = htstats_tables(conn, REHASHING_DB);
        assert_eq!(t.len(), 2, "{}: db {REHASHING_DB} tables {t:?}", build.name);
        (t[0], t[1])
    };
    assert!(
        a >= 300 && b >= 300 && a + b == total,
        "{}: db {REHASHING_DB} should be mid-rehash with many keys in both tables ({a} + {b}, want {total} in all)\n{detail}",
        build.name
    );
    select(conn, 0);
}

/// Record the truth of a filled server, right before its core is taken. Order matters: the
/// TTL, stream and quicklist reads look keys up in the mixed dbs (never in the rehashing db); DEBUG
/// DIGEST moves nothing in the rehashing db because it has no TTL keys (with TTL keys it
/// steps a mid-rehash dict on 5.0/6.2, and kills 2.8–3.2), and the rehash state is read after
/// it anyway; DBSIZE, INFO, DEBUG HTSTATS and gdb reads move nothing.
pub fn record_truth(
    server: &RedisServer,
    build: &Build,
    filled: Filled,
    take_digest: bool,
    compress_lists: bool,
    notes: &mut Vec<String>,
) -> MatrixTruth {
    let mut conn = server.conn();
    let conn = &mut conn;
    let started = Instant::now();

    let expiries = expiries(conn, build, &filled.ttl_keys);
    let bad: Vec<String> = expiries
        .iter()
        .filter(|e| e.lo < 0)
        .map(|e| format!("db {} {}: {}", e.db, show(&e.key), e.lo))
        .collect();
    assert!(
        bad.is_empty(),
        "{}: TTL keys without a TTL on the source:\n{}",
        build.name,
        bad.join("\n")
    );

    assert_eq!(
        !filled.streams.is_empty(),
        build.has_streams(),
        "{}: streams in the dataset ({}) vs the version having them",
        build.name,
        filled.streams.len()
    );
    let streams = probe_streams(conn, &filled.streams, build.has_xinfo_full());

    let field_ttls = field_ttls(conn, &filled.field_ttl_hashes);
    let now = now_ms();
    for h in &field_ttls {
        let with_ttl = h.fields.iter().filter(|(_, t)| *t > now).count();
        let bad: Vec<String> = h
            .fields
            .iter()
            .filter(|(_, t)| *t != -1 && *t <= now)
            .map(|(f, t)| format!("{}={t}", show(f)))
            .collect();
        assert!(
            with_ttl > 0 && bad.is_empty(),
            "{}: db {} hash {} should have fields with TTLs in the future (and no others but -1): {with_ttl} with TTL, bad {bad:?}",
            build.name,
            h.db,
            show(&h.key)
        );
    }
    if !field_ttls.is_empty() {
        let fields: usize = field_ttls.iter().map(|h| h.fields.len()).sum();
        let with_ttl: usize = field_ttls
            .iter()
            .map(|h| h.fields.iter().filter(|(_, t)| *t > 0).count())
            .sum();
        notes.push(format!(
            "{} hashes with field TTLs: {fields} fields, {with_ttl} with a TTL (HPEXPIRETIME)",
            field_ttls.len()
        ));
    }
    let functions = filled.functions.then(|| function_list(conn));
    if let Some(libs) = &functions {
        assert_eq!(
            libs.len(),
            2,
            "{}: FUNCTION LIST should show the 2 libraries the fill loaded:\n{libs:#?}",
            build.name
        );
    }

    if build.generation() == Generation::Quicklist {
        let counts = quicklist_lzf_nodes(server.pid(), &filled.big_lists, server.dir());
        for ((db, key), (nodes, lzf)) in filled.big_lists.iter().zip(&counts) {
            assert!(
                *nodes >= 10,
                "{}: db {db} {} should span many quicklist nodes, has {nodes}",
                build.name,
                show(key)
            );
            if compress_lists {
                assert!(
                    *lzf >= 5 && *lzf + 2 >= *nodes,
                    "{}: db {db} {}: with list-compress-depth 1 every inner node should be LZF; {lzf} of {nodes} are (gdb)",
                    build.name,
                    show(key)
                );
            } else {
                assert_eq!(
                    *lzf,
                    0,
                    "{}: db {db} {}: list-compress-depth 0, yet {lzf} of {nodes} nodes are LZF (gdb)",
                    build.name,
                    show(key)
                );
            }
        }
        notes.push(format!(
            "quicklist nodes (total, LZF) per db's list:big, read with gdb: {counts:?}"
        ));
    }

    let digest = take_digest.then(|| {
        let d: String = redis::cmd("DEBUG")
            .arg("DIGEST")
            .query(conn)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: DEBUG DIGEST on the source failed: {e}\n--- redis.log tail ---\n{}",
                    build.name,
                    server.log_tail(30)
                )
            });
        assert_eq!(d.len(), 40, "DEBUG DIGEST reply {d:?}");
        assert_ne!(d, "0".repeat(40), "the source dataset is empty");
        d
    });

    // Only the dbs INFO keyspace lists are SELECTed: on Valkey 9 a SELECT creates the db,
    // and the dbs never used must stay NULL in `server.db` until the core.
    let sizes = used_dbsizes(conn);
    let info = keyspace_info(conn);
    let expires: BTreeMap<u32, u64> = info.iter().map(|(db, (_, e))| (*db, *e)).collect();
    for (db, (keys, _)) in &info {
        assert_eq!(
            sizes.get(db),
            Some(keys),
            "{}: INFO keyspace vs DBSIZE for db {db}",
            build.name
        );
    }
    for (db, n) in &expires {
        let ours = filled.ttl_keys.iter().filter(|(d, _)| d == db).count() as u64;
        assert_eq!(
            *n, ours,
            "{}: db {db}: INFO keyspace expires vs the TTL keys the fill set",
            build.name
        );
    }
    let census_total: u64 = filled
        .census
        .values()
        .flat_map(|t| t.values())
        .flat_map(|e| e.values())
        .sum::<u64>()
        + filled.module_keys.len() as u64;
    assert_eq!(
        census_total,
        sizes.values().sum::<u64>(),
        "{}: census {:?} does not add up to DBSIZE {sizes:?}",
        build.name,
        filled.census
    );

    let dbs: Vec<u32> = sizes.keys().copied().collect();
    let (rehashing, rehash_detail) = rehash_state(server, conn, build, &dbs);
    assert_eq!(
        rehashing.get(&REHASHING_DB),
        Some(&true),
        "{}: db {REHASHING_DB} must be rehashing when the core is taken\n{rehash_detail}",
        build.name
    );
    assert_mid_rehash(server, conn, build, &filled, &rehash_detail);
    if build.generation() == Generation::Valkey9 && build.names_server() {
        notes.push(assert_unused_dbs_null(server, build, &sizes).0);
    } else if build.generation() == Generation::Valkey9 {
        // gdb cannot name `server` in a fully stripped binary; the recovery's DBSIZE per db
        // still shows the pointer array walked right.
        notes.push("server.db not read with gdb: the binary names no `server`".to_string());
    }
    notes.push(format!(
        "truth recorded in {:.1?}; rehash state:\n{rehash_detail}",
        started.elapsed()
    ));

    MatrixTruth {
        build: build.clone(),
        digest,
        dbsizes: sizes,
        expires,
        expiries,
        rehashing,
        rehash_detail,
        streams,
        field_ttls,
        functions,
        module_keys_dropped: false,
        filled,
    }
}

/// DBSIZE of every db `INFO keyspace` lists (the dbs with keys), without SELECTing any other
/// db (which would create it on Valkey 9). Leaves the connection on db 0.
pub fn used_dbsizes(conn: &mut Connection) -> BTreeMap<u32, u64> {
    let used: Vec<u32> = keyspace_info(conn).into_keys().collect();
    crate::common::dbsizes_of(conn, used)
}

/// An offset from the build's shipped layout profile (`layouts/<name>.json`):
/// `structs.<st>.fields.<field>.offset`.
pub fn profile_offset(build: &Build, st: &str, field: &str) -> u64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("layouts")
        .join(format!("{}.json", build.name));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: read {}: {e}", build.name, path.display()));
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: parse {}: {e}", build.name, path.display()));
    json["structs"][st]["fields"][field]["offset"]
        .as_u64()
        .unwrap_or_else(|| {
            panic!(
                "{}: {} has no structs.{st}.fields.{field}.offset",
                build.name,
                path.display()
            )
        })
}

/// `server.db` of a live Valkey 9 server, read with gdb (the binary's `server` symbol, the
/// offsets of `db` and `dbnum` from the shipped profile): one pointer per db, 0 for a db
/// never used. Moves nothing.
pub fn valkey9_db_pointers(server: &RedisServer, build: &Build) -> Vec<u64> {
    let db_off = profile_offset(build, "redisServer", "db");
    let dbnum_off = profile_offset(build, "redisServer", "dbnum");
    let script = format!(
        r#"set $n = *(int*)((char*)&server + {dbnum_off})
set $a = *(long*)((char*)&server + {db_off})
printf "dbnum %d\n", $n
set $i = 0
while $i < $n
  printf "dbptr %d %lu\n", $i, *(unsigned long*)($a + 8 * $i)
  set $i = $i + 1
end
"#
    );
    let out = gdb_batch(server.pid(), &script, server.dir());
    let dbnum: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("dbnum ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dbnum in gdb's output:\n{}", snippet(&out, 2000)));
    let ptrs: Vec<u64> = out
        .lines()
        .filter_map(|l| {
            l.strip_prefix("dbptr ")?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        ptrs.len(),
        dbnum,
        "{}: cannot read the {dbnum} db pointers from gdb:\n{}",
        build.name,
        snippet(&out, 2000)
    );
    ptrs
}

/// Valkey 9: every db without keys but db 0 (created at start) must be a NULL pointer in
/// `server.db`, and every db with keys not. Returns a note and `dbnum`.
pub fn assert_unused_dbs_null(
    server: &RedisServer,
    build: &Build,
    sizes: &BTreeMap<u32, u64>,
) -> (String, usize) {
    let ptrs = valkey9_db_pointers(server, build);
    let wrong: Vec<String> = ptrs
        .iter()
        .enumerate()
        .filter(|(db, p)| {
            let used = *db == 0 || sizes.contains_key(&(*db as u32));
            used == (**p == 0)
        })
        .map(|(db, p)| format!("db {db}: {p:#x}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{}: server.db should hold NULL exactly for the dbs never used (dbs with keys {:?}, and db 0): {}",
        build.name,
        sizes.keys().collect::<Vec<_>>(),
        wrong.join(", ")
    );
    let null: Vec<usize> = (0..ptrs.len()).filter(|&db| ptrs[db] == 0).collect();
    assert!(
        !null.is_empty(),
        "{}: the dataset should leave some db never used",
        build.name
    );
    let note = format!(
        "server.db (gdb): {} of {} pointers NULL, dbs {null:?}",
        null.len(),
        ptrs.len()
    );
    (note, ptrs.len())
}

/// Wait until no key dict of a restored server is mid-rehash (it runs with activerehashing
/// on). Returns how long that took and how it was seen.
pub fn wait_rehash_done(
    server: &RedisServer,
    conn: &mut Connection,
    build: &Build,
    dbs: &[u32],
) -> String {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    loop {
        let (flags, detail) = rehash_state(server, conn, build, dbs);
        if flags.values().all(|r| !r) {
            let how = if build.has_dictht_keyspace() {
                "gdb rehashidx"
            } else {
                "DEBUG HTSTATS"
            };
            return format!(
                "key dicts done rehashing after {:.1?} ({how})",
                started.elapsed()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{}: the restored server's key dicts are still rehashing after 15 s:\n{detail}",
            build.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
