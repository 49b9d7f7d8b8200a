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

use std::collections::{BTreeMap, BTreeSet};

use redis::Connection;

use super::build::{Build, Generation};
use crate::common::{
    b, census_of_db, compressible, fill_streams, pseudo_random_bytes, select, show, snippet,
    value_text, Census, RedisServer, StreamCaps, StreamSet, DAY_MS,
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

/// Keys of the listpack generations (Valkey 8.1 and 9.1, Redis 8): names longer than 128
/// bytes with values too big to share their object's allocation, strings on both sides of
/// each EMBSTR limit; where the version has them, hashes with field TTLs (set with HPEXPIRE,
/// HEXPIRE, HPEXPIREAT, HEXPIREAT and HSETEX, some with a key TTL too: `listpackex` and
/// hashtable hashes in Redis, always hashtable in Valkey 9, which converts a small hash on
/// its first field TTL), and with `vectorsets` a `vectorset` key in dbs 0 and 9 (Redis 8).
fn fill_modern(conn: &mut Connection, d: &mut Filler<'_>, opts: FillOptions) {
    let build = d.build;
    let gen = build.generation();
    let db = d.db;
    let tag = format!("db{db}");
    // ---- long names (> 128 bytes), values > 64 bytes ----
    let long_name = |kind: &str| -> Vec<u8> {
        let mut k = format!("big:{kind}:").into_bytes();
        k.extend(compressible(&format!("{tag}-{kind}-name"), 150));
        k
    };
    let k = long_name("string");
    d.set(
        conn,
        &k,
        &compressible(&format!("{tag}-bigval"), 200),
        "raw",
    );
    d.ttl(conn, &k);
    let k = long_name("list");
    d.rpush(
        conn,
        &k,
        &[
            compressible("l1", 80),
            compressible("l2", 100),
            b("3"),
            pseudo_random_bytes(u64::from(db) + 500, 90),
        ],
    );
    d.expect(&k, "list", "listpack");
    let k = long_name("set");
    d.sadd(
        conn,
        &k,
        &[compressible("s1", 70), compressible("s2", 90), b("x")],
    );
    d.expect(&k, "set", "hashtable");
    d.ttl(conn, &k);
    let k = long_name("zset");
    d.zadd(
        conn,
        &k,
        &[
            ("1.5".into(), compressible("z1", 70)),
            ("-2".into(), compressible("z2", 65)),
        ],
    );
    d.expect(&k, "zset", "skiplist");
    let k = long_name("hash");
    d.hmset(
        conn,
        &k,
        &[
            (b("f"), compressible("h1", 100)),
            (b("g"), b("1")),
            (compressible("hf", 70), b("v")),
        ],
    );
    d.expect(&k, "hash", "hashtable");
    d.ttl(conn, &k);
    let k = long_name("int");
    d.set(conn, &k, b"-123456789", "int");

    // ---- EMBSTR limits: 44 value bytes (8.0), 41 key + value bytes (8.2+), 33 (Valkey
    // 8.1.8), 41 (Debian's 8.1.1), 113 (Valkey 9.1, 111 with a key of 32+ bytes) ----
    if gen == Generation::Redis8 {
        d.set_str(conn, b"str:kv41", &[b'a'; 33]);
        d.set_str(conn, b"str:kv42", &[b'b'; 34]);
        d.set_str(conn, b"str:v44", &[b'c'; 44]);
        d.set_str(conn, b"str:v45", &[b'd'; 45]);
    }
    for total in [33usize, 34, 41, 42, 113, 114] {
        let key = format!("str:k{total:03}").into_bytes();
        let value = compressible(&format!("{tag}-e"), total - key.len());
        d.set_str(conn, &key, &value);
    }
    if d.build.valkey_embeds_values() {
        // Around the sdshdr5/sdshdr8 key boundary (32 bytes) and the 128-byte object.
        for (klen, total) in [
            (31usize, 113usize),
            (31, 114),
            (32, 111),
            (32, 112),
            (40, 111),
        ] {
            let mut key = format!("str:k{klen}:{total}:").into_bytes();
            key.resize(klen, b'k');
            let value = compressible(&format!("{tag}-f"), total - klen);
            d.set_str(conn, &key, &value);
        }
        // Embedded key and value with an expire in the same object, and a RAW one.
        let key = b("str:emb:ttl");
        d.set_str(conn, &key, &compressible(&format!("{tag}-g"), 90));
        d.ttl(conn, &key);
        let key = b("str:raw:ttl");
        d.set_str(conn, &key, &compressible(&format!("{tag}-h"), 300));
        d.ttl(conn, &key);
    }

    if build.has_field_ttls() {
        fill_field_ttls(conn, d);
    }
    // ---- vectorset (a module type: reported lost, never written) ----
    if opts.vectorsets && (db == 0 || db == 9) {
        let key = format!("vset:{tag}").into_bytes();
        for (elem, v) in [("elem", [0.1, 0.2, 0.3]), ("other", [0.4, -0.5, 0.6])] {
            let mut c = redis::cmd("VADD");
            c.arg(key.as_slice()).arg("VALUES").arg(3);
            for x in v {
                c.arg(x);
            }
            c.arg(elem);
            d.cmd(conn, c);
        }
        d.module_keys.push(key);
    }
}

/// Hashes with field TTLs (Redis 8, Valkey 9).
fn fill_field_ttls(conn: &mut Connection, d: &mut Filler<'_>) {
    let db = d.db;
    let tag = format!("db{db}");
    // A small hash with field TTLs: `listpackex` in Redis, a hashtable in Valkey 9.
    let small = if d.build.generation() == Generation::Valkey9 {
        "hashtable"
    } else {
        "listpackex"
    };
    let long_name = |kind: &str| -> Vec<u8> {
        let mut k = format!("big:{kind}:").into_bytes();
        k.extend(compressible(&format!("{tag}-{kind}-name"), 150));
        k
    };
    let now = now_ms();
    // An absolute time 1 to 10 days out, different for each i and db.
    let at = |i: i64| now + DAY_MS + (i * 3_600_123 + i64::from(db) * 7_777) % (9 * DAY_MS);
    let field_cmd = |name: &str, key: &[u8], when: i64, fields: &[Vec<u8>]| -> redis::Cmd {
        let mut c = redis::cmd(name);
        c.arg(key).arg(when).arg("FIELDS").arg(fields.len());
        for f in fields {
            c.arg(f.as_slice());
        }
        c
    };
    // listpackex (Redis), by every field TTL command; some fields keep no TTL.
    let key = b("hfe:lp");
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..10)
        .map(|i| {
            let v = if i % 3 == 0 {
                format!("{}", i * 1000 - 7)
            } else {
                format!("{tag}-hfe-{i}")
            };
            (format!("f{i}").into_bytes(), v.into_bytes())
        })
        .collect();
    pairs.push((b"\x00bin\xff".to_vec(), b"\r\n\x00".to_vec()));
    pairs.push((Vec::new(), b("empty field name")));
    d.hmset(conn, &key, &pairs);
    let c = field_cmd("HPEXPIRE", &key, at(1) - now, &[b("f0"), b("f1")]);
    d.cmd(conn, c);
    let c = field_cmd("HEXPIRE", &key, (at(2) - now) / 1000, &[b("f2")]);
    d.cmd(conn, c);
    let c = field_cmd(
        "HPEXPIREAT",
        &key,
        at(3),
        &[b("f3"), b"\x00bin\xff".to_vec()],
    );
    d.cmd(conn, c);
    let c = field_cmd("HEXPIREAT", &key, at(4) / 1000, &[b("f4"), Vec::new()]);
    d.cmd(conn, c);
    d.expect(&key, "hash", small);
    d.field_ttl_hashes.push(key);
    // The same with a key TTL too.
    let key = b("hfe:lp:keyttl");
    d.hmset(conn, &key, &[(b("a"), b("1")), (b("b"), b("two"))]);
    let c = field_cmd("HPEXPIREAT", &key, at(5), &[b("b")]);
    d.cmd(conn, c);
    d.ttl(conn, &key);
    d.expect(&key, "hash", small);
    d.field_ttl_hashes.push(key);
    // HSETEX (8.0+) sets values and their TTL in one command.
    let key = b("hfe:setex");
    let mut c = redis::cmd("HSETEX");
    c.arg(key.as_slice())
        .arg("PXAT")
        .arg(at(6))
        .arg("FIELDS")
        .arg(3)
        .arg("x")
        .arg("1")
        .arg("y")
        .arg(format!("{tag}-y"))
        .arg("z")
        .arg("-3");
    d.cmd(conn, c);
    d.expect(&key, "hash", small);
    d.field_ttl_hashes.push(key);
    // hashtable by its number of fields (hash-max-listpack-entries is 512), a TTL on every
    // fourth field.
    let key = b("hfe:ht:many");
    let many: Vec<(Vec<u8>, Vec<u8>)> = (0..600u32)
        .map(|i| {
            (
                format!("field-{i}").into_bytes(),
                format!("{tag}-many-{i}").into_bytes(),
            )
        })
        .collect();
    d.hmset(conn, &key, &many);
    for group in 0..6i64 {
        let fields: Vec<Vec<u8>> = (0..600i64)
            .filter(|i| i % 4 == 0 && (i / 4) % 6 == group)
            .map(|i| format!("field-{i}").into_bytes())
            .collect();
        let c = if group % 2 == 0 {
            field_cmd("HPEXPIREAT", &key, at(10 + group), &fields)
        } else {
            field_cmd("HPEXPIRE", &key, at(10 + group) - now, &fields)
        };
        d.cmd(conn, c);
    }
    d.expect(&key, "hash", "hashtable");
    d.field_ttl_hashes.push(key);
    // hashtable by a long value (hash-max-listpack-value is 64), with a key TTL.
    let key = b("hfe:ht:long");
    d.hmset(
        conn,
        &key,
        &[
            (b("a"), b("1")),
            (b("long"), compressible(&format!("{tag}-hfe-long"), 100)),
            (b("c"), b("three")),
        ],
    );
    let c = field_cmd("HPEXPIRE", &key, at(20) - now, &[b("a"), b("long")]);
    d.cmd(conn, c);
    d.ttl(conn, &key);
    d.expect(&key, "hash", "hashtable");
    d.field_ttl_hashes.push(key);
    // A value far too big to share its field's allocation, with a TTL, beside one without.
    let key = b("hfe:ht:huge");
    d.hmset(
        conn,
        &key,
        &[
            (b("huge"), compressible(&format!("{tag}-hfe-huge"), 20_000)),
            (b("bin"), pseudo_random_bytes(u64::from(db) + 900, 3000)),
            (b("n"), b("42")),
        ],
    );
    let c = field_cmd("HPEXPIREAT", &key, at(22), &[b("huge"), b("n")]);
    d.cmd(conn, c);
    d.expect(&key, "hash", "hashtable");
    d.field_ttl_hashes.push(key);
    // The long-named hash gets field TTLs as well.
    let key = long_name("hash");
    let c = field_cmd("HPEXPIREAT", &key, at(21), &[b("f")]);
    d.cmd(conn, c);
    d.field_ttl_hashes.push(key);
}

/// One db with keys of every type × encoding the build has (small and large), TTLs on
/// every type, binary keys and values, and `bulk` small keys.
fn fill_mixed_db(
    server: &RedisServer,
    conn: &mut Connection,
    d: &mut Filler<'_>,
    bulk: u32,
    opts: FillOptions,
    notes: &mut Vec<String>,
) {
    let build = d.build;
    let gen = build.generation();
    let db = d.db;
    let tag = format!("db{db}");
    let old = matches!(gen, Generation::Redis28 | Generation::Redis30);
    // Listpacks for small lists, sets, hashes and zsets (Valkey 8.1 and 9.1, Redis 8).
    let listpacks = matches!(
        gen,
        Generation::Valkey81 | Generation::Valkey9 | Generation::Redis8
    );

    // ---- strings ----
    d.set(conn, b"str:int:shared", b"5", "int");
    d.set(conn, b"str:int:zero", b"0", "int");
    d.set(conn, b"str:int:big", b"123456789012", "int");
    d.set(conn, b"str:int:neg", b"-42", "int");
    d.set(
        conn,
        b"str:int:negbig",
        format!("-{}", 987_654_321_000u64 + u64::from(db)).as_bytes(),
        "int",
    );
    d.set(conn, b"str:int:max", b"9223372036854775807", "int");
    d.set(conn, b"str:int:min", b"-9223372036854775808", "int");
    d.set_str(conn, b"str:lead0", b"007");
    d.set_str(conn, b"str:plus", b"+5");
    d.set_str(conn, b"str:huge", b"99999999999999999999");
    d.set_str(conn, b"str:float", b"3.14159");
    d.set_str(conn, b"str:empty", b"");
    d.set_str(conn, b"str:short", format!("hi {tag}").as_bytes());
    if let Some(max) = build.embstr_max() {
        // Both sides of the EMBSTR limit (39 in 3.0, 44 from 3.2).
        d.set(conn, b"str:embstr:max", &vec![b'e'; max], "embstr");
        d.set(conn, b"str:raw:max+1", &vec![b'r'; max + 1], "raw");
    }
    d.set(conn, b"str:raw:300", &compressible(&tag, 300), "raw");
    d.set(conn, b"str:raw:big", &compressible(&tag, 100 * 1024), "raw");
    d.set(
        conn,
        b"str:raw:random",
        &pseudo_random_bytes(u64::from(db) + 1, 20_000),
        "raw",
    );
    d.set_str(conn, "str:ключ:🔑".as_bytes(), "знач ✓".as_bytes());
    d.set_str(conn, b"bin:\x00\xff\r\n:k", b"\x00\xff\r\nv\x00");
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(300).collect();
    d.set(conn, b"bin:\r\n\x00allbytes", &all_bytes, "raw");
    d.set_str(conn, &[0u8, 0xff, b'\r', b'\n'], b"x");
    let long_key = compressible("longkey", 300);
    d.set_str(conn, &long_key, b"value of a 300-byte key");
    // APPEND and SETRANGE make raw strings.
    let mut c = redis::cmd("SET");
    c.arg("str:append").arg("abc");
    d.cmd(conn, c);
    let mut c = redis::cmd("APPEND");
    c.arg("str:append").arg("def");
    d.cmd(conn, c);
    d.expect(b"str:append", "string", "raw");
    let mut c = redis::cmd("SETRANGE");
    c.arg("str:setrange").arg(10).arg("xyz");
    d.cmd(conn, c);
    d.expect(b"str:setrange", "string", "raw");
    let mut c = redis::cmd("INCRBY");
    c.arg("str:incr").arg(1_000_000_007i64 + i64::from(db));
    d.cmd(conn, c);
    d.expect(b"str:incr", "string", "int");
    for key in [
        &b"str:int:big"[..],
        b"str:lead0",
        b"str:raw:300",
        b"str:raw:big",
        b"str:int:shared",
        b"bin:\x00\xff\r\n:k",
    ] {
        d.ttl(conn, key);
    }
    // SET … PX and SETEX (2.6.12+ / 2.0+).
    let mut c = redis::cmd("SET");
    c.arg("str:px")
        .arg("set px")
        .arg("PX")
        .arg(3 * DAY_MS + i64::from(db));
    d.cmd(conn, c);
    let enc = d.str_enc(b"str:px", b"set px");
    d.expect(b"str:px", "string", enc);
    d.ttl_keys.push(b("str:px"));
    let mut c = redis::cmd("SETEX");
    c.arg("str:setex")
        .arg(5 * 86_400 + i64::from(db))
        .arg("setex");
    d.cmd(conn, c);
    let enc = d.str_enc(b"str:setex", b"setex");
    d.expect(b"str:setex", "string", enc);
    d.ttl_keys.push(b("str:setex"));

    // ---- lists ----
    let (small_list, big_list) = match gen {
        Generation::Redis28 | Generation::Redis30 => ("ziplist", "linkedlist"),
        Generation::Quicklist => ("quicklist", "quicklist"),
        Generation::Valkey81 | Generation::Valkey9 | Generation::Redis8 => {
            ("listpack", "quicklist")
        }
    };
    d.rpush(
        conn,
        b"list:small",
        &[b("1"), b("-2"), b("three"), b(""), b"\x00\xff\r\n".to_vec()],
    );
    d.expect(b"list:small", "list", small_list);
    // Every ziplist integer width, and strings that look like integers but are not.
    let ints: Vec<Vec<u8>> = [
        "0",
        "12",
        "127",
        "128",
        "-1",
        "4095",
        "4096",
        "-4096",
        "32767",
        "32768",
        "-32769",
        "8388607",
        "8388608",
        "-8388609",
        "2147483647",
        "2147483648",
        "-2147483649",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "01",
        "1.5",
    ]
    .iter()
    .map(|s| b(s))
    .collect();
    d.rpush(conn, b"list:ints", &ints);
    d.expect(b"list:ints", "list", small_list);
    // String lengths around the ziplist header sizes (6-bit up to 63, 14-bit from 64).
    let lens: Vec<Vec<u8>> = [0usize, 1, 63, 64]
        .iter()
        .map(|&n| compressible(&format!("len{n}"), n))
        .collect();
    d.rpush(conn, b"list:strlens", &lens);
    d.expect(b"list:strlens", "list", small_list);
    // Long elements: a linked list of robj strings before 3.2, nodes of their own after.
    let long: Vec<Vec<u8>> = [0usize, 1, 64, 65, 4095, 4096, 5000, 16_500]
        .iter()
        .map(|&n| compressible(&format!("long{n}"), n))
        .collect();
    d.rpush(conn, b"list:long", &long);
    d.expect(b"list:long", "list", big_list);
    let big: Vec<Vec<u8>> = (0..4000u32)
        .map(|i| {
            if i % 5 == 0 {
                // Shared integers (< 10000) and larger ones.
                format!("{}", i64::from(i) * 7919 - 100_000 * i64::from(i % 2)).into_bytes()
            } else {
                format!(
                    "{tag}-element-{i:05}-{}",
                    "abcdefgh".repeat((i % 7) as usize)
                )
                .into_bytes()
            }
        })
        .collect();
    d.rpush(conn, b"list:big", &big);
    d.expect(b"list:big", "list", big_list);
    if old {
        // A linked list converted from a ziplist by one long element, so its older elements
        // are robjs made from ziplist entries (shared ints, ints, short strings).
        d.rpush(
            conn,
            b"list:converted",
            &[
                b("7"),
                b("123456789"),
                b("short"),
                b(""),
                b"\x00\xff".to_vec(),
            ],
        );
        d.rpush(conn, b"list:converted", &[compressible("conv", 100)]);
        d.expect(b"list:converted", "list", "linkedlist");
        // A ziplist holding a 16500-byte string (32-bit length header): allowed by raising
        // list-max-ziplist-value for the time of the push.
        d.flush(conn);
        config_set(conn, "list-max-ziplist-value", "20000");
        d.rpush(
            conn,
            b"list:zl:wide",
            &[b("a"), compressible(&format!("{tag}-wide"), 16_500), b("z")],
        );
        d.flush(conn);
        config_set(conn, "list-max-ziplist-value", "64");
        d.expect(b"list:zl:wide", "list", "ziplist");
    }
    if listpacks {
        // PLAIN quicklist nodes: elements at or above the packed threshold get a node each.
        d.flush(conn);
        let reply: String = redis::cmd("DEBUG")
            .arg("QUICKLIST-PACKED-THRESHOLD")
            .arg(1000)
            .query(conn)
            .expect("DEBUG QUICKLIST-PACKED-THRESHOLD 1000");
        assert_eq!(reply, "OK");
        let small: Vec<Vec<u8>> = (0..300u32)
            .map(|i| format!("{tag}-plain-neighbour-{i}").into_bytes())
            .collect();
        d.rpush(conn, b"list:plain", &small);
        d.rpush(
            conn,
            b"list:plain",
            &[
                compressible(&format!("{tag}-plainz"), 3000),
                pseudo_random_bytes(u64::from(db) + 77, 5000),
            ],
        );
        d.rpush(conn, b"list:plain", &small);
        let mut c = redis::cmd("LPUSH");
        c.arg("list:plain")
            .arg(compressible(&format!("{tag}-plainhead"), 2500));
        d.cmd(conn, c);
        d.expect(b"list:plain", "list", "quicklist");
        d.flush(conn);
        let reply: String = redis::cmd("DEBUG")
            .arg("QUICKLIST-PACKED-THRESHOLD")
            .arg(1u64 << 30)
            .query(conn)
            .expect("reset DEBUG QUICKLIST-PACKED-THRESHOLD");
        assert_eq!(reply, "OK");
        d.ttl(conn, b"list:plain");
    }
    d.ttl(conn, b"list:small");
    d.ttl(conn, b"list:big");
    d.ttl(conn, b"list:long");

    // ---- sets ----
    let set16: Vec<Vec<u8>> = ["1", "2", "3", "-5", "300"].iter().map(|s| b(s)).collect();
    d.sadd(conn, b"set:int16", &set16);
    d.expect(b"set:int16", "set", "intset");
    let set32: Vec<Vec<u8>> = ["1", "70000", "-70000"].iter().map(|s| b(s)).collect();
    d.sadd(conn, b"set:int32", &set32);
    d.expect(b"set:int32", "set", "intset");
    let set64: Vec<Vec<u8>> = [
        "1",
        "1099511627776",
        "-4611686018427387904",
        "9223372036854775807",
    ]
    .iter()
    .map(|s| b(s))
    .collect();
    d.sadd(conn, b"set:int64", &set64);
    d.expect(b"set:int64", "set", "intset");
    // More than set-max-intset-entries (512): converted to a hashtable of integers.
    let set_int_large: Vec<Vec<u8>> = (0..600i64)
        .map(|i| format!("{}", i * 37 - 5000).into_bytes())
        .collect();
    d.sadd(conn, b"set:int:large", &set_int_large);
    d.expect(b"set:int:large", "set", "hashtable");
    let small_set = if listpacks { "listpack" } else { "hashtable" };
    d.sadd(
        conn,
        b"set:str:small",
        &[b("a"), b("b"), b"\x00\xff".to_vec(), b(""), b("12")],
    );
    d.expect(b"set:str:small", "set", small_set);
    let set_str_large: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| format!("{tag}-member-{i}").into_bytes())
        .collect();
    d.sadd(conn, b"set:str:large", &set_str_large);
    d.expect(b"set:str:large", "set", "hashtable");
    d.sadd(
        conn,
        b"set:mixed",
        &[b("1"), b("2"), b("x"), compressible("m", 100)],
    );
    d.expect(b"set:mixed", "set", "hashtable");
    d.ttl(conn, b"set:int16");
    d.ttl(conn, b"set:str:small");
    d.ttl(conn, b"set:str:large");

    // ---- sorted sets ----
    let compact = build.compact();
    let small_z: Vec<(String, Vec<u8>)> = [
        ("1", "one"),
        ("2.5", "two and a half"),
        ("-3", "minus three"),
        ("0", "zero"),
        ("1e-10", "tiny"),
        ("123456789.123", "big fractional"),
        ("-0.5", "12345"),
        ("0.1", "point one"),
        ("4611686018427387904", "2^62"),
    ]
    .iter()
    .map(|(s, m)| (s.to_string(), b(m)))
    .collect();
    d.zadd(conn, b"zset:small", &small_z);
    d.expect(b"zset:small", "zset", compact);
    d.zadd(
        conn,
        b"zset:small:inf",
        &[
            ("inf".into(), b("up")),
            ("-inf".into(), b("down")),
            ("0".into(), b("mid")),
        ],
    );
    d.expect(b"zset:small:inf", "zset", compact);
    let mut big_z: Vec<(String, Vec<u8>)> = (0..200i64)
        .map(|i| {
            let score = if i % 3 == 0 {
                format!("{}", i * 11 - 900)
            } else {
                format!("{}.{}", i - 100, i % 10)
            };
            (score, format!("{tag}-zmember-{i}").into_bytes())
        })
        .collect();
    big_z.push(("+inf".into(), b("plus infinity")));
    big_z.push(("-inf".into(), b("minus infinity")));
    big_z.push(("1.7976931348623157e308".into(), compressible("zlong", 100)));
    big_z.push(("7".into(), b("8")));
    d.zadd(conn, b"zset:big", &big_z);
    d.expect(b"zset:big", "zset", "skiplist");
    d.zadd(
        conn,
        b"zset:longmember",
        &[
            ("1".into(), b("a")),
            ("2.75".into(), compressible("longmember", 65)),
            ("-3".into(), b("c")),
        ],
    );
    d.expect(b"zset:longmember", "zset", "skiplist");
    d.ttl(conn, b"zset:small");
    d.ttl(conn, b"zset:big");

    // ---- hashes ----
    d.hmset(
        conn,
        b"hash:small",
        &[
            (b("name"), format!("small hash {tag}").into_bytes()),
            (b("n"), b("12345")),
            (b("neg"), b("-1")),
            (b("empty"), b("")),
            (Vec::new(), b("empty field")),
            (b"\x00\xff".to_vec(), b"\r\n\x00".to_vec()),
            (b("1"), b("2")),
        ],
    );
    d.expect(b"hash:small", "hash", compact);
    let big_h: Vec<(Vec<u8>, Vec<u8>)> = (0..700u32)
        .map(|i| {
            let v = if i % 4 == 0 {
                format!("{}", i * 1000)
            } else {
                format!("{tag}-value-{i}")
            };
            (format!("field-{i}").into_bytes(), v.into_bytes())
        })
        .collect();
    d.hmset(conn, b"hash:big", &big_h);
    d.expect(b"hash:big", "hash", "hashtable");
    d.hmset(
        conn,
        b"hash:longval",
        &[(b("a"), b("1")), (b("long"), compressible("hlong", 100))],
    );
    d.expect(b"hash:longval", "hash", "hashtable");
    d.hmset(
        conn,
        b"hash:longfield",
        &[(compressible("hfield", 80), b("v")), (b("b"), b("2"))],
    );
    d.expect(b"hash:longfield", "hash", "hashtable");
    d.ttl(conn, b"hash:small");
    d.ttl(conn, b"hash:big");

    // Compact hash and zset holding a 16500-byte string (32-bit length header), allowed by
    // raising the *-max-*-value limit for the time of the write.
    let (hash_value_cfg, zset_value_cfg) = if listpacks {
        ("hash-max-listpack-value", "zset-max-listpack-value")
    } else {
        ("hash-max-ziplist-value", "zset-max-ziplist-value")
    };
    d.flush(conn);
    config_set(conn, hash_value_cfg, "20000");
    config_set(conn, zset_value_cfg, "20000");
    d.hmset(
        conn,
        b"hash:compact:wide",
        &[
            (b("w"), compressible(&format!("{tag}-hwide"), 16_500)),
            (b("x"), b("1")),
        ],
    );
    d.expect(b"hash:compact:wide", "hash", compact);
    d.zadd(
        conn,
        b"zset:compact:wide",
        &[
            ("1.5".into(), compressible(&format!("{tag}-zwide"), 16_500)),
            ("2".into(), b("two")),
        ],
    );
    d.expect(b"zset:compact:wide", "zset", compact);
    d.flush(conn);
    config_set(conn, hash_value_cfg, "64");
    config_set(conn, zset_value_cfg, "64");
    d.ttl(conn, b"zset:compact:wide");

    // ---- streams (5.0+, dbs 0 and 1) ----
    if let Some(set) = StreamSet::for_db(db).filter(|_| build.has_streams()) {
        d.flush(conn);
        let caps = StreamCaps {
            createconsumer: build.has_createconsumer(),
        };
        let made = fill_streams(conn, db, set, caps);
        for key in &made.keys {
            d.expect(key, "stream", build.stream_encoding());
        }
        if let Some(key) = &made.ttl_key {
            d.ttl(conn, key);
        }
        let nodes: Vec<String> = made
            .nodes
            .iter()
            .map(|(k, n)| format!("{} {n}", show(k)))
            .collect();
        notes.push(format!(
            "db {db} streams (listpack nodes): {}; XGROUP CREATECONSUMER {}",
            nodes.join(", "),
            if caps.createconsumer {
                "used"
            } else {
                "not in this version"
            }
        ));
        d.streams = made.keys;
    }

    if listpacks {
        fill_modern(conn, d, opts);
    }

    // ---- bulk: many small keys, some with TTLs ----
    for i in 0..bulk {
        let key = format!("bulk:{i:05}").into_bytes();
        match i % 10 {
            0..=3 => d.set(
                conn,
                &key,
                format!("{}", i64::from(i) * 7919 - 1_000_000).as_bytes(),
                "int",
            ),
            4..=7 => d.set_str(conn, &key, format!("{tag}-v-{i}").as_bytes()),
            // RAW but on Valkey 9, where the shorter ones are embedded in their object.
            8 => d.set_str(
                conn,
                &key,
                &compressible(&format!("{tag}-{i}"), 50 + (i % 200) as usize),
            ),
            _ => {
                d.hmset(conn, &key, &[(b("i"), format!("{i}").into_bytes())]);
                d.expect(&key, "hash", compact);
            }
        }
        if i % 13 == 0 {
            d.ttl(conn, &key);
        }
    }

    d.verify(conn);

    if listpacks {
        let nodes = crate::common::quicklist_nodes(server, conn, db, b"list:big");
        let lzf = nodes
            .iter()
            .filter(|(c, e)| c == "PACKED" && e == "LZF")
            .count();
        assert!(
            nodes.len() >= 10 && lzf >= 5,
            "{}: db {db} list:big should have many nodes, LZF-compressed inside: {nodes:?}",
            build.name
        );
        let plain = crate::common::quicklist_nodes(server, conn, db, b"list:plain");
        for want in [("PLAIN", "LZF"), ("PLAIN", "RAW"), ("PACKED", "LZF")] {
            assert!(
                plain.iter().any(|(c, e)| c == want.0 && e == want.1),
                "{}: db {db} list:plain should have a {want:?} node: {plain:?}",
                build.name
            );
        }
        if db == 0 {
            notes.push(format!(
                "db 0 list:big: {} quicklist nodes, {lzf} LZF (DEBUG QUICKLIST); list:plain nodes {plain:?}",
                nodes.len()
            ));
        }
    }
    if db == 0 {
        let mut encs: BTreeSet<String> = BTreeSet::new();
        for (_, ty, enc) in &d.expect {
            encs.insert(format!("{ty}/{enc}"));
        }
        notes.push(format!(
            "db 0 encodings asserted: {}",
            encs.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
}
