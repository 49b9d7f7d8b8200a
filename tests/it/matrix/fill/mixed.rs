//! One db of keys of every type × encoding a build has, small and large, TTLs on every
//! type, binary keys and values, and the bulk of small keys.

use std::collections::BTreeSet;

use redis::Connection;

use super::modern::fill_modern;
use super::{config_set, FillOptions, Filler};
use crate::common::{
    b, compressible, fill_streams, pseudo_random_bytes, show, RedisServer, StreamCaps, StreamSet,
    DAY_MS,
};
use crate::matrix::build::Generation;

/// One db with keys of every type × encoding the build has (small and large), TTLs on
/// every type, binary keys and values, and `bulk` small keys.
pub(super) fn fill_mixed_db(
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
