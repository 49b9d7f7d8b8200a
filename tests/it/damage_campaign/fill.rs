//! The data the Valkey 8.1 and Redis 3.2 campaigns damage: every type in its compact and
//! large encodings, TTLs on some, each value distinct; one filler, two dialects.

use super::*;

/// What a filler says to one family of servers: its config names, the name of its
/// compact encoding, and the encoding of a small set of strings.
pub(super) struct Dialect {
    configs: &'static [(&'static str, &'static str)],
    compact: &'static str,
    small_set: &'static str,
    /// The command setting several hash fields at once (`HSET` from 4.0, `HMSET` before).
    hset: &'static str,
}

/// Valkey 8.1: listpacks, small sets of strings in listpacks.
pub(super) const VALKEY: Dialect = Dialect {
    // The build's defaults differ (hashes stay listpacks up to 512 fields): fix them.
    configs: &[
        ("hash-max-listpack-entries", "128"),
        ("set-max-listpack-entries", "128"),
        ("set-max-intset-entries", "512"),
        ("zset-max-listpack-entries", "128"),
    ],
    compact: "listpack",
    small_set: "listpack",
    hset: "HSET",
};

/// Redis 3.2: ziplists, and sets of strings always hashtables.
pub(super) const REDIS32: Dialect = Dialect {
    configs: &[
        ("hash-max-ziplist-entries", "128"),
        ("set-max-intset-entries", "512"),
        ("zset-max-ziplist-entries", "128"),
    ],
    compact: "ziplist",
    small_set: "hashtable",
    hset: "HMSET",
};

/// [`fill_compact`] for Valkey 8.1.
pub(super) fn fill_valkey(server: &RedisServer) {
    fill_compact(server, &VALKEY);
}

/// [`fill_compact`] for Redis 3.2.
pub(super) fn fill_redis32(server: &RedisServer) {
    fill_compact(server, &REDIS32);
}

/// Put data of every type into `server`: strings (int, embstr, raw), lists, sets (intset,
/// small, hashtable), hashes (compact, hashtable), zsets (compact, skiplist), TTLs on
/// some of each, over dbs 0, 1 and 5. Every value is distinct, so a value a damaged pointer
/// took from another key is recognised. Checks the encodings it intends.
pub(super) fn fill_compact(server: &RedisServer, dialect: &Dialect) {
    let mut conn = server.conn();
    for &(name, value) in dialect.configs {
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("CONFIG SET {name} {value}: {e}"));
    }
    let mut expect: Vec<(u32, String, &str)> = Vec::new();
    for (db, n) in [(0u32, 3000u32), (1, 1200), (5, 400)] {
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for i in 0..n {
            let key = format!("d{db}:k{i:05}");
            match i % 20 {
                0..=4 => {
                    p.cmd("SET")
                        .arg(&key)
                        .arg(u64::from(i) * 7919 + u64::from(db))
                        .ignore();
                }
                5..=8 => {
                    p.cmd("SET").arg(&key).arg(format!("v{db}-{i}")).ignore();
                }
                9 | 10 => {
                    p.cmd("SET")
                        .arg(&key)
                        .arg(format!("{}{key}", "raw-".repeat(20)))
                        .ignore();
                }
                11 => {
                    let items: Vec<String> = (0..40).map(|j| format!("{key}:e{j}")).collect();
                    p.cmd("RPUSH").arg(&key).arg(&items).ignore();
                }
                12 | 13 => {
                    // Hashtable sets: more members than set-max-listpack-entries (128).
                    let m: Vec<String> = (0..150 + i % 60).map(|j| format!("{key}:m{j}")).collect();
                    p.cmd("SADD").arg(&key).arg(&m).ignore();
                    expect.push((db, key.clone(), "hashtable"));
                }
                14 => {
                    let m: Vec<String> = (0..5).map(|j| format!("{key}:s{j}")).collect();
                    p.cmd("SADD").arg(&key).arg(&m).ignore();
                    expect.push((db, key.clone(), dialect.small_set));
                }
                15 => {
                    let m: Vec<u64> = (0..20).map(|j| u64::from(i) * 1000 + j).collect();
                    p.cmd("SADD").arg(&key).arg(&m).ignore();
                    expect.push((db, key.clone(), "intset"));
                }
                16 | 17 => {
                    // Hashtable hashes: more fields than hash-max-listpack-entries (128).
                    let mut c = redis::cmd(dialect.hset);
                    c.arg(&key);
                    for j in 0..140 + i % 50 {
                        c.arg(format!("f{j}")).arg(format!("{key}:{j}"));
                    }
                    p.add_command(c).ignore();
                    expect.push((db, key.clone(), "hashtable"));
                }
                18 => {
                    p.cmd(dialect.hset)
                        .arg(&key)
                        .arg("a")
                        .arg(format!("{key}:a"))
                        .arg("b")
                        .arg(format!("{key}:b"))
                        .ignore();
                    expect.push((db, key.clone(), dialect.compact));
                }
                _ => {
                    let big = i % 40 == 19;
                    let mut c = redis::cmd("ZADD");
                    c.arg(&key);
                    for j in 0..if big { 150 } else { 6 } {
                        c.arg(j * 3 + i).arg(format!("{key}:z{j}"));
                    }
                    p.add_command(c).ignore();
                    expect.push((
                        db,
                        key.clone(),
                        if big { "skiplist" } else { dialect.compact },
                    ));
                }
            }
            if i % 7 == 3 {
                p.cmd("PEXPIRE")
                    .arg(&key)
                    .arg(86_400_000 + u64::from(i) * 1000)
                    .ignore();
            }
        }
        let () = p
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("fill db {db}: {e}"));
    }
    for (db, key, enc) in &expect {
        select(&mut conn, *db);
        let got: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("OBJECT ENCODING {key}: {e}"));
        assert_eq!(got, *enc, "db {db} key {key}");
    }
    select(&mut conn, 0);
}
