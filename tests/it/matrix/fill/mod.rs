//! A dataset for each server generation: every type and encoding that version has, small and
//! large, binary keys and values, TTLs on every type (set with every TTL command 2.8 already
//! has), several dbs, streams with consumer groups in dbs 0 and 1 (5.0+), and one db whose key
//! dict is caught mid-rehash. Only commands the version knows are used: HMSET (multi-field
//! HSET is 4.0+), plain ZADD (no flags), no UNLINK, no PEXPIRETIME, no XGROUP CREATECONSUMER
//! before 6.2. Every key's TYPE and OBJECT ENCODING is checked against what the fill intended,
//! so the dataset cannot silently drift.
//!
//! Not merged with the 7.0 tests' filler (`common/fill.rs`): that dataset is Redis 7.0's
//! (listpack hashes and zsets, 7.0's EMBSTR limit), a generation this one does not have, and
//! the tests built on each assert what their own filler made. They share the streams
//! (`common/streams.rs`), the census and the small helpers.
//!
//! Here: the options, the [`Filler`] of one db (commands, intended encodings, the check),
//! the rehashing db, functions; `mixed.rs` fills one db with every type × encoding,
//! `modern.rs` adds what only the listpack generations have.

mod mixed;
mod modern;

use std::collections::{BTreeMap, BTreeSet};

use redis::Connection;

use self::mixed::fill_mixed_db;
use super::build::{Build, Generation};
use crate::common::{
    b, census_of_db, compressible, select, show, snippet, value_text, Census, RedisServer, DAY_MS,
};

/// The db whose key dict is left half-rehashed.
pub const REHASHING_DB: u32 = 3;
/// The other dbs, with their number of bulk keys.
const MIXED_DBS: [(u32, u32); 5] = [(0, 2500), (1, 1000), (2, 500), (9, 1200), (15, 100)];

#[derive(Clone, Copy, Debug)]
pub struct FillOptions {
    /// `CONFIG SET list-compress-depth 1` before filling (quicklist versions only), so that
    /// inner quicklist nodes are LZF-compressed.
    pub compress_lists: bool,
    /// Redis 8: also a `vectorset` key (the built-in module type, which redis-rescue does not
    /// recover) in dbs 0 and 9.
    pub vectorsets: bool,
}

/// What [`fill`] made.
#[derive(Debug, Clone)]
pub struct Filled {
    /// Every key with a TTL, as (db, key).
    pub ttl_keys: Vec<(u32, Vec<u8>)>,
    /// Per db × type × encoding, read back from the server (TYPE / OBJECT ENCODING).
    pub census: Census,
    /// The rehashing db's old table capacity (4096, Valkey 3584): it grew when key
    /// capacity + 1 was added.
    pub rehash_base: u64,
    /// Keys of big quicklists whose nodes the caller may inspect: (db, key).
    pub big_lists: Vec<(u32, Vec<u8>)>,
    /// Every stream key (5.0+: dbs 0 and 1), as (db, key).
    pub streams: Vec<(u32, Vec<u8>)>,
    /// Every hash with field TTLs (Redis 8, Valkey 9), as (db, key).
    pub field_ttl_hashes: Vec<(u32, Vec<u8>)>,
    /// Keys of a module type (`vectorset`), as (db, key): not in `census`, to be reported
    /// lost.
    pub module_keys: Vec<(u32, Vec<u8>)>,
    /// Function libraries were loaded (Valkey, Redis 8).
    pub functions: bool,
    /// What the fill checked, one line each, for `--nocapture`.
    pub notes: Vec<String>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Commands for one db, pipelined, and the encodings its keys must end up with.
struct Filler<'b> {
    build: &'b Build,
    db: u32,
    pipe: redis::Pipeline,
    queued: usize,
    expect: Vec<(Vec<u8>, &'static str, &'static str)>,
    ttl_keys: Vec<Vec<u8>>,
    ttl_counter: i64,
    /// The stream keys [`fill_streams`] made in this db.
    streams: Vec<Vec<u8>>,
    /// Value length of every string expected as EMBSTR (for the TTL rule of Redis 8.2).
    embstr_lens: BTreeMap<Vec<u8>, usize>,
    /// Hashes given field TTLs in this db.
    field_ttl_hashes: Vec<Vec<u8>>,
    /// `vectorset` keys made in this db.
    module_keys: Vec<Vec<u8>>,
}

impl<'b> Filler<'b> {
    fn new(build: &'b Build, db: u32) -> Self {
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg(db).ignore();
        Filler {
            build,
            db,
            pipe,
            queued: 0,
            expect: Vec::new(),
            ttl_keys: Vec::new(),
            ttl_counter: 0,
            streams: Vec::new(),
            embstr_lens: BTreeMap::new(),
            field_ttl_hashes: Vec::new(),
            module_keys: Vec::new(),
        }
    }

    fn cmd(&mut self, conn: &mut Connection, cmd: redis::Cmd) {
        self.pipe.add_command(cmd).ignore();
        self.queued += 1;
        if self.queued >= 500 {
            self.flush(conn);
        }
    }

    fn flush(&mut self, conn: &mut Connection) {
        if self.queued > 0 {
            self.pipe.exec(conn).unwrap_or_else(|e| {
                panic!(
                    "{}: filling db {}: pipeline failed: {e}",
                    self.build.name, self.db
                )
            });
        }
        self.pipe = redis::pipe();
        self.pipe.cmd("SELECT").arg(self.db).ignore();
        self.queued = 0;
    }

    fn expect(&mut self, key: &[u8], ty: &'static str, enc: &'static str) {
        self.expect.push((key.to_vec(), ty, enc));
    }

    /// The encoding a non-integer string value gets on this build.
    fn str_enc(&self, key: &[u8], value: &[u8]) -> &'static str {
        match self.build.generation() {
            Generation::Redis28 => "raw",
            Generation::Redis30 | Generation::Quicklist => {
                if value.len() <= self.build.embstr_max().expect("3.0+ has embstr") {
                    "embstr"
                } else {
                    "raw"
                }
            }
            // Redis 8.0: EMBSTR up to 44 value bytes, whatever the key (measured on 8.0.2).
            Generation::Redis8 if !self.build.embeds_keys() => {
                if value.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            // Redis 8.2+ embeds the key in the object: EMBSTR while key + value are at most 41
            // bytes (measured on 8.2.3 and 8.6.3 for keys of 1 to 300 bytes; a TTL set later
            // changes that on 8.2, see `ttl`).
            Generation::Redis8 => {
                if key.len() + value.len() <= 41 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            // Valkey 8.1 (and 9.0, same objects) embeds the key in the EMBSTR allocation: measured on 8.1.8 (libc
            // malloc) and Debian's 8.1.1 (jemalloc) for keys of 1 to 300 bytes, SET makes an
            // EMBSTR while key + value are at most 41 bytes (a TTL changes that, see `ttl`).
            Generation::Valkey81 | Generation::Valkey9 if self.build.valkey_embstr_after_key() => {
                if key.len() + value.len() <= 41 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            // Valkey 9.1 embeds key and value in the object while it takes at most 128 bytes:
            // measured on 9.1.2 for keys of 1 to 300 bytes, with or without a TTL (set by SET
            // EX or later), key + value up to 113 bytes with a key under 32 bytes (an sdshdr5
            // key), 111 with a longer one (sdshdr8).
            Generation::Valkey81 | Generation::Valkey9 => {
                let room = if key.len() < 32 { 113 } else { 111 };
                if key.len() + value.len() <= room {
                    "embstr"
                } else {
                    "raw"
                }
            }
        }
    }

    /// SET a non-integer string; its encoding follows from the build.
    fn set_str(&mut self, conn: &mut Connection, key: &[u8], value: &[u8]) {
        let enc = self.str_enc(key, value);
        self.set(conn, key, value, enc);
    }

    fn set(&mut self, conn: &mut Connection, key: &[u8], value: &[u8], enc: &'static str) {
        let mut c = redis::cmd("SET");
        c.arg(key).arg(value);
        self.cmd(conn, c);
        self.expect(key, "string", enc);
        if enc == "embstr" {
            self.embstr_lens.insert(key.to_vec(), value.len());
        }
    }

    fn rpush(&mut self, conn: &mut Connection, key: &[u8], items: &[Vec<u8>]) {
        for chunk in items.chunks(200) {
            let mut c = redis::cmd("RPUSH");
            c.arg(key);
            for it in chunk {
                c.arg(it.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    fn sadd(&mut self, conn: &mut Connection, key: &[u8], members: &[Vec<u8>]) {
        for chunk in members.chunks(200) {
            let mut c = redis::cmd("SADD");
            c.arg(key);
            for m in chunk {
                c.arg(m.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    /// Plain `ZADD key score member …` (2.4+; flags like NX are 3.0.2+).
    fn zadd(&mut self, conn: &mut Connection, key: &[u8], pairs: &[(String, Vec<u8>)]) {
        for chunk in pairs.chunks(200) {
            let mut c = redis::cmd("ZADD");
            c.arg(key);
            for (score, member) in chunk {
                c.arg(score.as_str()).arg(member.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    /// HMSET (HSET takes one field before 4.0).
    fn hmset(&mut self, conn: &mut Connection, key: &[u8], pairs: &[(Vec<u8>, Vec<u8>)]) {
        for chunk in pairs.chunks(200) {
            let mut c = redis::cmd("HMSET");
            c.arg(key);
            for (f, v) in chunk {
                c.arg(f.as_slice()).arg(v.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    /// A TTL 1–10 days out, with a different command each time (all exist in 2.8).
    fn ttl(&mut self, conn: &mut Connection, key: &[u8]) {
        if self.build.embeds_keys() && self.build.version < (8, 6, 0) {
            // 8.2 moves a string to a new allocation that holds the expire too: measured on
            // 8.2.3, an EMBSTR with a key of up to 31 bytes stays one while key + value are
            // at most 33 bytes; other lengths follow no simple rule (8.6.3 keeps 41).
            if let Some(&vlen) = self.embstr_lens.get(key) {
                assert!(
                    key.len() <= 31 && key.len() + vlen <= 33,
                    "{}: an EMBSTR of {}+{vlen} key+value bytes has no simple encoding rule once \
                     it gets a TTL on 8.2; pick another key than {}",
                    self.build.name,
                    key.len(),
                    show(key)
                );
            }
        }
        if self.build.valkey_embstr_after_key() {
            // Valkey 8.1 (and 9.0) moves a string to a new allocation that holds the expire too:
            // measured (EXPIRE after SET, and SET EX), an EMBSTR stays one while key + value
            // are at most 41 bytes with a key of up to 31 bytes on 8.1.8, at most 33 bytes
            // with a key of up to 33 bytes on Debian's 8.1.1 (jemalloc); other lengths follow
            // no simple rule.
            if let Some(&vlen) = self.embstr_lens.get(key) {
                let (max_key, max_total) = if self.build.valkey81_jemalloc() {
                    (33, 33)
                } else {
                    (31, 41)
                };
                assert!(
                    key.len() <= max_key && key.len() + vlen <= max_total,
                    "{}: an EMBSTR of {}+{vlen} key+value bytes has no simple encoding rule once \
                     it gets a TTL; pick another key than {}",
                    self.build.name,
                    key.len(),
                    show(key)
                );
            }
        }
        self.ttl_counter += 1;
        let n = self.ttl_counter;
        let offset_ms = DAY_MS + (n * 7_919_113 + i64::from(self.db) * 104_729) % (9 * DAY_MS);
        let mut c;
        match n % 4 {
            0 => {
                c = redis::cmd("PEXPIRE");
                c.arg(key).arg(offset_ms);
            }
            1 => {
                c = redis::cmd("EXPIRE");
                c.arg(key).arg(offset_ms / 1000);
            }
            2 => {
                c = redis::cmd("PEXPIREAT");
                c.arg(key).arg(now_ms() + offset_ms);
            }
            _ => {
                c = redis::cmd("EXPIREAT");
                c.arg(key).arg((now_ms() + offset_ms) / 1000);
            }
        }
        self.cmd(conn, c);
        self.ttl_keys.push(key.to_vec());
    }

    /// Keys per type × encoding, from the expectations (each key registered once).
    fn census(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let distinct: BTreeSet<&[u8]> = self.expect.iter().map(|(k, _, _)| k.as_slice()).collect();
        assert_eq!(
            distinct.len(),
            self.expect.len(),
            "a key registered twice in db {}",
            self.db
        );
        for (_, ty, enc) in &self.expect {
            *out.entry(ty.to_string())
                .or_default()
                .entry(enc.to_string())
                .or_default() += 1;
        }
        out
    }

    /// Flush, then check TYPE and OBJECT ENCODING of every key registered with `expect`.
    fn verify(&mut self, conn: &mut Connection) {
        self.flush(conn);
        let mut bad = Vec::new();
        for chunk in self.expect.chunks(500) {
            let mut p = redis::pipe();
            p.cmd("SELECT").arg(self.db).ignore();
            for (key, _, _) in chunk {
                p.cmd("TYPE").arg(key.as_slice());
                p.cmd("OBJECT").arg("ENCODING").arg(key.as_slice());
            }
            let replies: Vec<redis::Value> = p.query(conn).unwrap_or_else(|e| {
                panic!(
                    "{}: db {}: TYPE/OBJECT ENCODING pipeline: {e}",
                    self.build.name, self.db
                )
            });
            for (i, (key, ty, enc)) in chunk.iter().enumerate() {
                let got_ty = value_text(&replies[2 * i]);
                let got_enc = value_text(&replies[2 * i + 1]);
                if got_ty != *ty || got_enc != *enc {
                    bad.push(format!(
                        "db {} key {}: want {ty}/{enc}, got {got_ty}/{got_enc}",
                        self.db,
                        snippet(&show(key), 80)
                    ));
                }
            }
        }
        assert!(
            bad.is_empty(),
            "{}: the dataset does not have the encodings it was built for ({} keys):\n{}",
            self.build.name,
            bad.len(),
            bad.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

fn config_get(conn: &mut Connection, name: &str) -> Option<String> {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(conn)
        .unwrap_or_else(|e| panic!("CONFIG GET {name}: {e}"));
    pair.get(1).cloned()
}

fn config_set(conn: &mut Connection, name: &str, value: &str) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .exec(conn)
        .unwrap_or_else(|e| panic!("CONFIG SET {name} {value}: {e}"));
    assert_eq!(
        config_get(conn, name).as_deref(),
        Some(value),
        "CONFIG GET {name} after CONFIG SET"
    );
}

/// Element counts of the main key dict's tables from `DEBUG HTSTATS db` (3.2+, Valkey):
/// `[ht0]`, or `[ht0, ht1]` while rehashing. Reads "number of elements" (Redis) and "number of
/// entries" (Valkey 8.1). Moves nothing.
pub fn htstats_tables(conn: &mut Connection, db: u32) -> Vec<u64> {
    let stats: String = redis::cmd("DEBUG")
        .arg("HTSTATS")
        .arg(db)
        .query(conn)
        .unwrap_or_else(|e| panic!("DEBUG HTSTATS {db}: {e}"));
    let main = stats.split("[Expires HT]").next().unwrap_or("");
    let mut tables = Vec::new();
    for line in main.lines() {
        let line = line.trim();
        if let Some(n) = line
            .strip_prefix("number of elements:")
            .or_else(|| line.strip_prefix("number of entries:"))
        {
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

/// Fill `server` (a `build` started with `--activerehashing no`). [`REHASHING_DB`] is filled
/// first, to one key short of a full table, then in one pipeline fills it, makes it grow
/// (key 2^k + 1 in Redis) and moves part of it: it is left mid-rehash, nothing touches it
/// afterwards, and the caller must not either before the core is taken.
pub fn fill(server: &RedisServer, build: &Build, opts: FillOptions) -> Filled {
    let mut conn = server.conn();
    let conn = &mut conn;
    let mut notes = Vec::new();
    let gen = build.generation();

    assert_eq!(
        config_get(conn, "activerehashing").as_deref(),
        Some("no"),
        "{}: the fill needs a server started with --activerehashing no",
        build.name
    );
    let quicklists = matches!(
        gen,
        Generation::Quicklist | Generation::Valkey81 | Generation::Valkey9 | Generation::Redis8
    );
    if quicklists {
        let depth = if opts.compress_lists { "1" } else { "0" };
        config_set(conn, "list-compress-depth", depth);
        notes.push(format!("list-compress-depth {depth}"));
    } else {
        assert!(
            !opts.compress_lists,
            "{} has no quicklists to compress",
            build.name
        );
    }

    // The rehashing db first, up to one key short of a full table: 4096 buckets in Redis,
    // 512 buckets of 7 entries (3584) in Valkey 8.1 and 9.1. Not full yet, because Valkey's cron
    // (even with activerehashing off) starts resizing a full table by itself.
    let valkey_table = matches!(gen, Generation::Valkey81 | Generation::Valkey9);
    let capacity: u32 = if valkey_table { 3584 } else { 4096 };
    let base = capacity - 1;
    // No TTLs in this db: DEBUG DIGEST looks each key's expire up, which on a mid-rehash db
    // with TTL keys trips the dict fingerprint assertion on 2.8.17, 3.0.5 and 3.2.6 (the
    // server dies) and moves rehash buckets on 5.0.6 and 6.2.14 (both seen here).
    let mut r = Filler::new(build, REHASHING_DB);
    let small_list_enc = match gen {
        Generation::Redis28 | Generation::Redis30 => "ziplist",
        Generation::Quicklist => "quicklist",
        Generation::Valkey81 | Generation::Valkey9 | Generation::Redis8 => "listpack",
    };
    for i in 0..base {
        let key = format!("r:{i:05}").into_bytes();
        if i % 101 == 7 {
            r.hmset(
                conn,
                &key,
                &[(b("f1"), format!("{i}").into_bytes()), (b("f2"), b("v"))],
            );
            r.expect(&key, "hash", build.compact());
        } else if i % 103 == 9 {
            r.rpush(conn, &key, &[b("a"), format!("{i}").into_bytes()]);
            r.expect(&key, "list", small_list_enc);
        } else {
            match i % 3 {
                0 => r.set(
                    conn,
                    &key,
                    format!("{}", u64::from(i) * 1_000_003).as_bytes(),
                    "int",
                ),
                1 => r.set_str(conn, &key, format!("val-{i}").as_bytes()),
                _ => r.set_str(conn, &key, &compressible(&format!("raw{i}"), 60)),
            }
        }
    }
    r.verify(conn);
    select(conn, REHASHING_DB);
    let n: u64 = redis::cmd("DBSIZE").query(conn).expect("DBSIZE");
    assert_eq!(
        n,
        u64::from(base),
        "db {REHASHING_DB} should hold exactly {base} keys before the crossing"
    );
    if build.has_htstats() {
        assert_eq!(
            htstats_tables(conn, REHASHING_DB),
            [u64::from(base)],
            "{}: db {REHASHING_DB} should be a single table of {base} keys, not rehashing",
            build.name
        );
    }
    // Census of the rehashing db from the verified expectations: every key's TYPE and OBJECT
    // ENCODING were just checked, and DBSIZE matches.
    let mut census = Census::new();
    census.insert(REHASHING_DB, r.census());

    // Fill the table and cross the power of two in one pipeline (Valkey 8.1.8's cron grows a
    // full table by itself, even with activerehashing off, and the lookups above would then
    // finish that rehash). With activerehashing off only operations on this dict move
    // buckets (one per lookup or insert): move a part of them and add keys that land in the
    // new table. Valkey moves a whole bucket (up to 7 keys) per step, so it gets fewer.
    let (late, lookups) = if valkey_table {
        (40u32, 40u32)
    } else {
        (200, 300)
    };
    let mut p = redis::pipe();
    p.cmd("SELECT").arg(REHASHING_DB).ignore();
    // Key `capacity` fills the table, key `capacity + 1` (2^k + 1 in Redis) makes it grow.
    let first = [
        (b("r:full"), b("filled the dict")),
        (b("r:crossing"), b("grew the dict")),
    ];
    for (key, value) in &first {
        p.cmd("SET")
            .arg(key.as_slice())
            .arg(value.as_slice())
            .ignore();
    }
    let mut late_keys = Vec::new();
    for i in 0..late {
        let key = format!("r:late:{i:03}");
        let value = format!("late-{i}");
        p.cmd("SET").arg(&key).arg(&value).ignore();
        p.cmd("OBJECT").arg("ENCODING").arg(&key);
        late_keys.push((key.into_bytes(), value.into_bytes()));
    }
    for i in 0..lookups {
        p.cmd("EXISTS")
            .arg(format!("r:{:05}", (i * 13) % base))
            .ignore();
    }
    let encs: Vec<String> = p.query(conn).expect("crossing pipeline");

    let probe = Filler::new(build, REHASHING_DB);
    for ((key, value), got) in late_keys.iter().zip(&encs) {
        let want = probe.str_enc(key, value);
        assert_eq!(
            got,
            want,
            "{}: late key {} in db {REHASHING_DB}",
            build.name,
            show(key)
        );
    }
    let db_census = census.get_mut(&REHASHING_DB).expect("rehashing db census");
    for (key, value) in first.iter().chain(&late_keys) {
        *db_census
            .entry("string".into())
            .or_default()
            .entry(probe.str_enc(key, value).into())
            .or_default() += 1;
    }
    notes.push(format!(
        "db {REHASHING_DB}: {base} keys, then in one pipeline key {capacity} (full table), key {} (the dict grows), {late} late keys and {lookups} lookups",
        capacity + 1
    ));
    select(conn, 0);

    // The other dbs; nothing below touches the rehashing db.
    fill_mixed_dbs(
        server,
        conn,
        build,
        &MIXED_DBS,
        opts,
        notes,
        census,
        u64::from(capacity),
    )
}

/// Fill `dbs` (each with its number of bulk keys) of `server` with the mixed dataset of
/// [`fill`] and load the function libraries, but leave no db mid-rehash (for servers whose
/// dbs are not the usual 16: cluster mode).
pub fn fill_dbs(
    server: &RedisServer,
    build: &Build,
    dbs: &[(u32, u32)],
    opts: FillOptions,
) -> Filled {
    let mut conn = server.conn();
    let conn = &mut conn;
    let depth = if opts.compress_lists { "1" } else { "0" };
    config_set(conn, "list-compress-depth", depth);
    let notes = vec![format!("list-compress-depth {depth}")];
    fill_mixed_dbs(server, conn, build, dbs, opts, notes, Census::new(), 0)
}

/// The mixed dbs of [`fill`] and the function libraries, after the rehashing db (whose
/// census and table capacity `census` and `rehash_base` hold).
#[allow(clippy::too_many_arguments)]
fn fill_mixed_dbs(
    server: &RedisServer,
    conn: &mut Connection,
    build: &Build,
    dbs: &[(u32, u32)],
    opts: FillOptions,
    mut notes: Vec<String>,
    mut census: Census,
    rehash_base: u64,
) -> Filled {
    let gen = build.generation();
    let quicklists = matches!(
        gen,
        Generation::Quicklist | Generation::Valkey81 | Generation::Valkey9 | Generation::Redis8
    );
    let mut ttl_keys = Vec::new();
    let mut big_lists = Vec::new();
    let mut streams = Vec::new();
    let mut field_ttl_hashes = Vec::new();
    let mut module_keys = Vec::new();
    assert!(
        !opts.vectorsets || gen == Generation::Redis8,
        "{} has no vectorset type",
        build.name
    );
    for &(db, bulk) in dbs {
        let mut d = Filler::new(build, db);
        fill_mixed_db(server, conn, &mut d, bulk, opts, &mut notes);
        ttl_keys.extend(d.ttl_keys.iter().map(|k| (db, k.clone())));
        streams.extend(d.streams.iter().map(|k| (db, k.clone())));
        field_ttl_hashes.extend(d.field_ttl_hashes.iter().map(|k| (db, k.clone())));
        module_keys.extend(d.module_keys.iter().map(|k| (db, k.clone())));
        if quicklists {
            big_lists.push((db, b("list:big")));
        }
        let mut db_census = census_of_db(conn, db);
        // Module values are not recovered: they are left out of the census the report must
        // match, and checked on their own.
        let vsets: u64 = db_census
            .remove("vectorset")
            .map(|encs| encs.values().sum())
            .unwrap_or(0);
        assert_eq!(
            vsets,
            d.module_keys.len() as u64,
            "{}: db {db}: vectorset keys SCAN found vs the ones the fill made",
            build.name
        );
        // OBJECT ENCODING says `listpackex` for a listpack hash with field TTLs; the report
        // names the encoding `listpack_ex`.
        if let Some(encs) = db_census.get_mut("hash") {
            if let Some(n) = encs.remove("listpackex") {
                *encs.entry("listpack_ex".into()).or_default() += n;
            }
        }
        if build.stream_encoding() != "stream" {
            // The report's name for the encoding 5.0 calls `unknown` (checked key by key).
            if let Some(encs) = db_census.get_mut("stream") {
                if let Some(n) = encs.remove(build.stream_encoding()) {
                    *encs.entry("stream".into()).or_default() += n;
                }
            }
        }
        census.insert(db, db_census);
    }

    let functions = build.has_functions();
    if functions {
        load_functions(conn, build);
        notes.push("function libraries rescue_lib and second_lib loaded".into());
    }

    Filled {
        ttl_keys,
        census,
        rehash_base,
        big_lists,
        streams,
        field_ttl_hashes,
        module_keys,
        functions,
        notes,
    }
}

/// Two Lua function libraries (7.0+): one with a read-only function with a description.
fn load_functions(conn: &mut Connection, build: &Build) {
    let libs = [
        "#!lua name=rescue_lib\n\
         redis.register_function('rescue_get', function(keys, args) return redis.call('GET', keys[1]) end)\n\
         redis.register_function{function_name='rescue_echo', callback=function(keys, args) return args[1] end, flags={'no-writes'}, description='echoes its argument'}\n",
        "#!lua name=second_lib\n\
         local function incr_by(keys, args) return redis.call('INCRBY', keys[1], args[1]) end\n\
         redis.register_function('second_incr', incr_by)\n",
    ];
    for code in libs {
        let name: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(code)
            .query(conn)
            .unwrap_or_else(|e| panic!("{}: FUNCTION LOAD: {e}", build.name));
        assert!(
            code.contains(&format!("name={name}")),
            "FUNCTION LOAD {name}"
        );
    }
}
