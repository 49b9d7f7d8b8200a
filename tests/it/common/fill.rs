//! The dataset of the 7.0-era tests ([`fill_dataset`]): every type and encoding Redis 7.0
//! has over dbs 0, 1, 2, 9 and 15, db 3 caught mid-rehash, TTLs on every type; and the two
//! function libraries of 7.0+.
//!
//! The version matrix fills with its own filler (`matrix/fill/`): it has to leave out
//! what each version lacks (2.8 to Valkey 9.1) and adds what Redis 8 and Valkey 9 have, and
//! its datasets, asserted key by key per version, are not this one. The streams, which both
//! fill alike, are filled by `streams.rs` for both.

use redis::Connection;

use super::server::RedisServer;
use super::streams::{fill_streams, StreamCaps, StreamSet};
use super::truth::{census_of_db, dbsizes, main_dict_tables, quicklist_nodes, select, Census};
use super::{b, compressible, pseudo_random_bytes, show, snippet, value_text, DAY_MS};

/// What [`fill_dataset`] made.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Every key that carries a TTL, as (db, key).
    pub ttl_keys: Vec<(u32, Vec<u8>)>,
    /// The db whose key dict was left half-rehashed.
    pub rehashing_db: u32,
    /// Keys per db × type × encoding, read back from the server.
    pub census: Census,
    /// Every stream key, as (db, key).
    pub streams: Vec<(u32, Vec<u8>)>,
}

/// Collects the commands for one db and the encodings its keys must end up with.
struct DbFill {
    db: u32,
    pipe: redis::Pipeline,
    queued: usize,
    /// (key, TYPE, OBJECT ENCODING) to check once everything is written.
    expect: Vec<(Vec<u8>, &'static str, &'static str)>,
    ttl_keys: Vec<Vec<u8>>,
    ttl_counter: i64,
}

impl DbFill {
    fn new(db: u32) -> Self {
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg(db).ignore();
        DbFill {
            db,
            pipe,
            queued: 0,
            expect: Vec::new(),
            ttl_keys: Vec::new(),
            ttl_counter: 0,
        }
    }

    /// Queue a command whose reply is ignored (errors still fail the pipeline).
    fn cmd(&mut self, conn: &mut Connection, cmd: redis::Cmd) {
        self.pipe.add_command(cmd).ignore();
        self.queued += 1;
        if self.queued >= 500 {
            self.flush(conn);
        }
    }

    fn flush(&mut self, conn: &mut Connection) {
        if self.queued > 0 {
            self.pipe
                .exec(conn)
                .unwrap_or_else(|e| panic!("filling db {}: pipeline failed: {e}", self.db));
        }
        self.pipe = redis::pipe();
        self.pipe.cmd("SELECT").arg(self.db).ignore();
        self.queued = 0;
    }

    fn expect(&mut self, key: &[u8], ty: &'static str, enc: &'static str) {
        self.expect.push((key.to_vec(), ty, enc));
    }

    fn set(&mut self, conn: &mut Connection, key: &[u8], value: &[u8], enc: &'static str) {
        let mut c = redis::cmd("SET");
        c.arg(key).arg(value);
        self.cmd(conn, c);
        self.expect(key, "string", enc);
    }

    /// Push `items` with RPUSH in batches.
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

    fn hset(&mut self, conn: &mut Connection, key: &[u8], pairs: &[(Vec<u8>, Vec<u8>)]) {
        for chunk in pairs.chunks(200) {
            let mut c = redis::cmd("HSET");
            c.arg(key);
            for (f, v) in chunk {
                c.arg(f.as_slice()).arg(v.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    /// Give `key` a TTL 1–10 days out, varying the command (PEXPIRE, EXPIRE, PEXPIREAT).
    fn ttl(&mut self, conn: &mut Connection, key: &[u8]) {
        self.ttl_counter += 1;
        let n = self.ttl_counter;
        let offset_ms = DAY_MS + (n * 7_919_113 + i64::from(self.db) * 104_729) % (9 * DAY_MS);
        let mut c;
        match n % 3 {
            0 => {
                c = redis::cmd("PEXPIRE");
                c.arg(key).arg(offset_ms);
            }
            1 => {
                c = redis::cmd("EXPIRE");
                c.arg(key).arg(offset_ms / 1000);
            }
            _ => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock after 1970")
                    .as_millis() as i64;
                c = redis::cmd("PEXPIREAT");
                c.arg(key).arg(now_ms + offset_ms);
            }
        }
        self.cmd(conn, c);
        self.ttl_keys.push(key.to_vec());
    }

    /// Flush, then check `TYPE` and `OBJECT ENCODING` of every key registered with `expect`.
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
            let replies: Vec<redis::Value> = p
                .query(conn)
                .unwrap_or_else(|e| panic!("db {}: TYPE/OBJECT ENCODING pipeline: {e}", self.db));
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
            "the dataset does not have the encodings it was built for:\n{}",
            bad.join("\n")
        );
    }
}

/// Fill the server with every type and encoding Redis 7.0 has, small and large, with TTLs on
/// every type, over dbs 0, 1, 2, 9 and 15 (streams with consumer groups in dbs 0 and 1, see
/// [`fill_streams`]), and leave db 3's key dict half-rehashed. The
/// server must have been started with `--activerehashing no`. Asserts the encodings it intends
/// (TYPE / OBJECT ENCODING, DEBUG QUICKLIST node kinds, DEBUG HTSTATS) so the dataset cannot
/// silently drift. Sets `list-compress-depth 1` for good.
pub fn fill_dataset(server: &RedisServer) -> Dataset {
    let mut conn = server.conn();
    let conn = &mut conn;

    let activerehashing: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("activerehashing")
        .query(conn)
        .expect("CONFIG GET activerehashing");
    assert_eq!(
        activerehashing,
        ["activerehashing", "no"],
        "fill_dataset needs a server started with --activerehashing no"
    );
    // Inner quicklist nodes get LZF-compressed from now on.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("list-compress-depth")
        .arg(1)
        .query(conn)
        .expect("CONFIG SET list-compress-depth 1");

    let rehashing_db = 3;
    let mut ttl_keys = Vec::new();

    // db 3 first: 4096 keys, exactly filling a 4096-bucket table. It is crossed at the very end.
    let mut d3 = DbFill::new(rehashing_db);
    for i in 0..4096u32 {
        let key = format!("r:{i:05}").into_bytes();
        if i % 101 == 7 {
            d3.hset(
                conn,
                &key,
                &[(b("f1"), format!("{i}").into_bytes()), (b("f2"), b("v"))],
            );
            d3.expect(&key, "hash", "listpack");
        } else if i % 103 == 9 {
            d3.rpush(conn, &key, &[b("a"), format!("{i}").into_bytes()]);
            d3.expect(&key, "list", "quicklist");
        } else {
            match i % 3 {
                0 => d3.set(
                    conn,
                    &key,
                    format!("{}", u64::from(i) * 1_000_003).as_bytes(),
                    "int",
                ),
                1 => d3.set(conn, &key, format!("val-{i}").as_bytes(), "embstr"),
                _ => d3.set(conn, &key, &compressible(&format!("raw{i}"), 60), "raw"),
            }
        }
    }
    d3.verify(conn);
    select(conn, rehashing_db);
    let n: u64 = redis::cmd("DBSIZE").query(conn).expect("DBSIZE");
    assert_eq!(
        n, 4096,
        "db {rehashing_db} should hold exactly 4096 keys before the crossing"
    );
    assert_eq!(
        main_dict_tables(conn, rehashing_db),
        [4096],
        "db {rehashing_db} should be one full 4096-bucket table, not rehashing"
    );

    for db in [0u32, 1, 2, 9, 15] {
        let mut d = DbFill::new(db);
        fill_mixed_db(server, conn, &mut d);
        ttl_keys.extend(d.ttl_keys.iter().map(|k| (db, k.clone())));
    }

    // Streams in dbs 0 and 1, made after every other key: the other keys (and the expires
    // dicts' tables, which truncated_core_loses_keys_but_never_panics wants past the keyspace
    // headers now and then) are allocated as before streams were added to the dataset.
    let mut streams = Vec::new();
    for db in [0u32, 1] {
        let set = StreamSet::for_db(db).expect("dbs 0 and 1 have streams");
        let mut d = DbFill::new(db);
        let made = fill_streams(
            conn,
            db,
            set,
            StreamCaps {
                createconsumer: true,
            },
        );
        for key in &made.keys {
            d.expect(key, "stream", "stream");
        }
        if let Some(key) = &made.ttl_key {
            d.ttl(conn, key);
        }
        d.verify(conn);
        ttl_keys.extend(d.ttl_keys.iter().map(|k| (db, k.clone())));
        streams.extend(made.keys.into_iter().map(|k| (db, k)));
    }

    // Census of every db (db 3 is not rehashing yet, so lookups there are harmless).
    let mut census = Census::new();
    for db in [0u32, 1, 2, 3, 9, 15] {
        census.insert(db, census_of_db(conn, db));
    }

    // Cross the power of two in db 3: the 4097th key makes the dict grow to 8192 buckets and
    // start rehashing; with activerehashing off, only operations on this dict move buckets, one
    // per lookup/insert. Move a part of them, and add keys that land in the new table.
    let mut p = redis::pipe();
    p.cmd("SELECT").arg(rehashing_db).ignore();
    p.cmd("SET")
        .arg("r:crossing")
        .arg("the key that made the dict grow")
        .ignore();
    for i in 0..200u32 {
        let key = format!("r:late:{i:03}");
        p.cmd("SET").arg(&key).arg(format!("late-{i}")).ignore();
        p.cmd("OBJECT").arg("ENCODING").arg(&key);
    }
    for i in 0..300u32 {
        p.cmd("EXISTS")
            .arg(format!("r:{:05}", (i * 13) % 4096))
            .ignore();
    }
    let encs: Vec<String> = p.query(conn).expect("db 3 crossing pipeline");
    assert!(
        encs.iter().all(|e| e == "embstr"),
        "late db 3 keys are not all embstr: {encs:?}"
    );
    *census
        .get_mut(&rehashing_db)
        .expect("db 3 census")
        .entry("string".into())
        .or_default()
        .entry("embstr".into())
        .or_default() += 201;

    let tables = main_dict_tables(conn, rehashing_db);
    assert!(
        tables.len() == 2 && tables[0] >= 300 && tables[1] >= 300,
        "db {rehashing_db} should be mid-rehash with many keys in both tables, HTSTATS element counts: {tables:?}"
    );
    assert_eq!(tables.iter().sum::<u64>(), 4096 + 201);
    select(conn, 0);

    let total: u64 = census
        .values()
        .flat_map(|t| t.values())
        .flat_map(|e| e.values())
        .sum();
    let sizes = dbsizes(conn);
    assert_eq!(
        total,
        sizes.values().sum::<u64>(),
        "census {census:?} does not add up to DBSIZE {sizes:?}"
    );

    Dataset {
        ttl_keys,
        rehashing_db,
        census,
        streams,
    }
}

/// One db with one or more keys of every type × encoding (small and large), TTLs on every type.
fn fill_mixed_db(server: &RedisServer, conn: &mut Connection, d: &mut DbFill) {
    let db = d.db;
    let tag = format!("db{db}");

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
    d.set(conn, b"str:notint:lead0", b"007", "embstr");
    d.set(conn, b"str:notint:plus", b"+5", "embstr");
    d.set(conn, b"str:notint:huge", b"99999999999999999999", "embstr");
    d.set(conn, b"str:float", b"3.14159", "embstr");
    d.set(conn, b"str:embstr:empty", b"", "embstr");
    d.set(
        conn,
        b"str:embstr:short",
        format!("hello {tag}").as_bytes(),
        "embstr",
    );
    d.set(conn, b"str:embstr:44", &[b'e'; 44], "embstr");
    d.set(conn, b"str:raw:45", &[b'r'; 45], "raw");
    d.set(conn, b"str:raw:300", &compressible(&tag, 300), "raw");
    d.set(conn, b"str:raw:big", &compressible(&tag, 100 * 1024), "raw");
    d.set(
        conn,
        b"str:raw:random",
        &pseudo_random_bytes(u64::from(db) + 1, 20_000),
        "raw",
    );
    d.set(
        conn,
        "str:utf8:ключ:🔑".as_bytes(),
        "значение ✓".as_bytes(),
        "embstr",
    );
    d.set(
        conn,
        b"bin:\x00\xff\r\n:key",
        b"\x00\xff\r\nvalue\x00",
        "embstr",
    );
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(300).collect();
    d.set(conn, b"bin:\r\n\x00allbytes", &all_bytes, "raw");
    d.set(conn, &[0u8, 0xff, b'\r', b'\n'], b"x", "embstr");
    let long_key = compressible("longkey", 300);
    d.set(conn, &long_key, b"value of a 300-byte key", "embstr");
    // APPEND turns even a short string raw.
    d.set(conn, b"str:raw:append", b"abc", "raw");
    let mut c = redis::cmd("APPEND");
    c.arg("str:raw:append").arg("def");
    d.cmd(conn, c);
    // INCR keeps an int encoding.
    let mut c = redis::cmd("INCRBY");
    c.arg("str:int:incr").arg(1_000_000_007i64 + i64::from(db));
    d.cmd(conn, c);
    d.expect(b"str:int:incr", "string", "int");
    for key in [
        "str:int:big",
        "str:notint:lead0",
        "str:raw:45",
        "str:raw:big",
        "str:int:shared",
    ] {
        d.ttl(conn, key.as_bytes());
    }
    d.ttl(conn, b"bin:\x00\xff\r\n:key");
    // A SET with PX directly.
    let mut c = redis::cmd("SET");
    c.arg("str:px")
        .arg("set with px")
        .arg("PX")
        .arg(3 * DAY_MS + i64::from(db));
    d.cmd(conn, c);
    d.expect(b"str:px", "string", "embstr");
    d.ttl_keys.push(b("str:px"));

    // ---- lists (all quicklist in 7.0) ----
    d.rpush(
        conn,
        b"list:small",
        &[b("1"), b("-2"), b("three"), b(""), b"\x00\xff\r\n".to_vec()],
    );
    d.expect(b"list:small", "list", "quicklist");
    let ints: Vec<Vec<u8>> = [
        "0",
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
    d.expect(b"list:ints", "list", "quicklist");
    let lens: Vec<Vec<u8>> = [0usize, 1, 63, 64, 4095, 4096, 5000]
        .iter()
        .map(|&n| compressible(&format!("len{n}"), n))
        .collect();
    d.rpush(conn, b"list:strlens", &lens);
    d.expect(b"list:strlens", "list", "quicklist");
    let big: Vec<Vec<u8>> = (0..4000u32)
        .map(|i| {
            if i % 5 == 0 {
                format!("{}", i64::from(i) * 7919 - 100_000).into_bytes()
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
    d.expect(b"list:big", "list", "quicklist");
    d.ttl(conn, b"list:small");
    d.ttl(conn, b"list:big");

    // PLAIN nodes: elements at or above the packed threshold get a node of their own.
    d.flush(conn);
    let reply: redis::RedisResult<String> = redis::cmd("DEBUG")
        .arg("QUICKLIST-PACKED-THRESHOLD")
        .arg(1000)
        .query(conn);
    match reply {
        Ok(r) if r == "OK" => {}
        other => panic!(
            "DEBUG QUICKLIST-PACKED-THRESHOLD 1000 did not work (it exists in 7.0): {other:?}"
        ),
    }
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
    d.rpush(
        conn,
        b"list:plain:only",
        &[pseudo_random_bytes(u64::from(db) + 99, 4000)],
    );
    d.expect(b"list:plain:only", "list", "quicklist");
    d.ttl(conn, b"list:plain");
    d.flush(conn);
    let reply: String = redis::cmd("DEBUG")
        .arg("QUICKLIST-PACKED-THRESHOLD")
        .arg(1u64 << 30)
        .query(conn)
        .expect("reset DEBUG QUICKLIST-PACKED-THRESHOLD to 1 GiB");
    assert_eq!(reply, "OK");

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
    let set_int_large: Vec<Vec<u8>> = (0..600i64)
        .map(|i| format!("{}", i * 37 - 5000).into_bytes())
        .collect();
    d.sadd(conn, b"set:int:large", &set_int_large);
    d.expect(b"set:int:large", "set", "hashtable");
    d.sadd(
        conn,
        b"set:str:small",
        &[b("a"), b("b"), b"\x00\xff".to_vec(), b("")],
    );
    d.expect(b"set:str:small", "set", "hashtable");
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
    d.ttl(conn, b"set:str:large");

    // ---- sorted sets ----
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
    d.expect(b"zset:small", "zset", "listpack");
    d.zadd(
        conn,
        b"zset:small:inf",
        &[
            ("inf".into(), b("up")),
            ("-inf".into(), b("down")),
            ("0".into(), b("mid")),
        ],
    );
    d.expect(b"zset:small:inf", "zset", "listpack");
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
    d.hset(
        conn,
        b"hash:small",
        &[
            (b("name"), format!("small hash {tag}").into_bytes()),
            (b("n"), b("12345")),
            (b("neg"), b("-1")),
            (b("empty"), b("")),
            (b""[..].to_vec(), b("empty field")),
            (b"\x00\xff".to_vec(), b"\r\n\x00".to_vec()),
            (b("1"), b("2")),
        ],
    );
    d.expect(b"hash:small", "hash", "listpack");
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
    d.hset(conn, b"hash:big", &big_h);
    d.expect(b"hash:big", "hash", "hashtable");
    d.hset(
        conn,
        b"hash:longval",
        &[(b("a"), b("1")), (b("long"), compressible("hlong", 100))],
    );
    d.expect(b"hash:longval", "hash", "hashtable");
    d.hset(
        conn,
        b"hash:longfield",
        &[(compressible("hfield", 80), b("v")), (b("b"), b("2"))],
    );
    d.expect(b"hash:longfield", "hash", "hashtable");
    d.ttl(conn, b"hash:small");
    d.ttl(conn, b"hash:big");

    // ---- bulk: many small keys (strings mostly), some with TTLs ----
    let bulk = match db {
        0 => 5000,
        1 => 1500,
        2 => 800,
        9 => 2000,
        _ => 100,
    };
    for i in 0..bulk {
        let key = format!("bulk:{i:05}").into_bytes();
        match i % 10 {
            0..=3 => d.set(
                conn,
                &key,
                format!("{}", i64::from(i) * 7919 - 1_000_000).as_bytes(),
                "int",
            ),
            4..=7 => d.set(conn, &key, format!("{tag}-value-{i}").as_bytes(), "embstr"),
            8 => d.set(
                conn,
                &key,
                &compressible(&format!("{tag}-{i}"), 50 + (i % 200) as usize),
                "raw",
            ),
            _ => {
                d.hset(conn, &key, &[(b("i"), format!("{i}").into_bytes())]);
                d.expect(&key, "hash", "listpack");
            }
        }
        if i % 13 == 0 {
            d.ttl(conn, &key);
        }
    }

    d.verify(conn);

    // The quicklists really have LZF-compressed and PLAIN nodes.
    let nodes = quicklist_nodes(server, conn, db, b"list:big");
    assert!(
        nodes.len() >= 10,
        "list:big should span many nodes: {nodes:?}"
    );
    assert!(
        nodes
            .iter()
            .filter(|(c, e)| c == "PACKED" && e == "LZF")
            .count()
            >= 5,
        "list:big should have LZF-compressed inner nodes (list-compress-depth 1): {nodes:?}"
    );
    let nodes = quicklist_nodes(server, conn, db, b"list:plain");
    assert!(
        nodes.iter().any(|(c, e)| c == "PLAIN" && e == "LZF"),
        "list:plain should have a compressed PLAIN node: {nodes:?}"
    );
    assert!(
        nodes.iter().any(|(c, e)| c == "PLAIN" && e == "RAW"),
        "list:plain should have an uncompressed PLAIN node: {nodes:?}"
    );
    assert!(
        nodes.iter().any(|(c, e)| c == "PACKED" && e == "LZF"),
        "list:plain should have compressed packed nodes: {nodes:?}"
    );
    let nodes = quicklist_nodes(server, conn, db, b"list:plain:only");
    assert_eq!(nodes, [("PLAIN".to_string(), "RAW".to_string())]);
}

/// Two function libraries, one with flags.
pub const FUNCTION_LIBS: [&str; 2] = [
    "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)",
    "#!lua name=other\nredis.register_function{function_name='f2', callback=function(keys, args) return 2 end, flags={'no-writes'}}",
];

/// FUNCTION LOAD every library of [`FUNCTION_LIBS`].
pub fn load_function_libraries(conn: &mut Connection) {
    for code in FUNCTION_LIBS {
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(code)
            .query(conn)
            .expect("FUNCTION LOAD");
    }
}

/// (library name, code) pairs from FUNCTION LIST WITHCODE, sorted by name.
pub fn function_libraries(conn: &mut Connection) -> Vec<(String, String)> {
    let list: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("WITHCODE")
        .query(conn)
        .expect("FUNCTION LIST");
    let mut out = Vec::new();
    for lib in list {
        let fields: Vec<redis::Value> = redis::from_redis_value(lib).expect("library entry");
        let mut name = String::new();
        let mut code = String::new();
        for pair in fields.chunks(2) {
            let key: String = redis::from_redis_value(pair[0].clone()).expect("field name");
            match key.as_str() {
                "library_name" => name = redis::from_redis_value(pair[1].clone()).expect("name"),
                "library_code" => code = redis::from_redis_value(pair[1].clone()).expect("code"),
                _ => {}
            }
        }
        out.push((name, code));
    }
    out.sort();
    out
}
