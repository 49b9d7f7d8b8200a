//! The keys only the listpack generations have (Valkey 8.1 and 9.1, Redis 8): long names,
//! strings on both sides of each EMBSTR limit, hashes with field TTLs, vectorsets.

use redis::Connection;

use super::{now_ms, FillOptions, Filler};
use crate::common::{b, compressible, pseudo_random_bytes, DAY_MS};
use crate::matrix::build::Generation;

/// Keys of the listpack generations (Valkey 8.1 and 9.1, Redis 8): names longer than 128
/// bytes with values too big to share their object's allocation, strings on both sides of
/// each EMBSTR limit; where the version has them, hashes with field TTLs (set with HPEXPIRE,
/// HEXPIRE, HPEXPIREAT, HEXPIREAT and HSETEX, some with a key TTL too: `listpackex` and
/// hashtable hashes in Redis, always hashtable in Valkey 9, which converts a small hash on
/// its first field TTL), and with `vectorsets` a `vectorset` key in dbs 0 and 9 (Redis 8).
pub(super) fn fill_modern(conn: &mut Connection, d: &mut Filler<'_>, opts: FillOptions) {
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
