//! The RDB reader (`rdb::reader`) on files written by a real redis-server 7.0: every type and
//! encoding 7.0 saves (LZF strings, quicklists with compressed and PLAIN nodes, intsets,
//! listpacks, hashtables, skiplists, streams with consumer groups, functions, TTLs, several
//! dbs) must read back exactly as the server holds them; every truncation and every flipped
//! byte of a small real file must be an error, never a panic or a silent success; and
//! `redis-rescue verify` must pass on the real file with no report.
//!
//! Needs Debian's redis-server 7.0.15 on PATH (see tests/README.md).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use rdb::reader::{Checksum, Entry, RdbReader, RdbValue, StreamId};
use redis::Connection;

fn server_bin() -> PathBuf {
    find_in_path(DEFAULT_SERVER)
}

fn q<T: redis::FromRedisValue>(conn: &mut Connection, cmd: &mut redis::Cmd) -> T {
    cmd.query(conn)
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.args_iter().count()))
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// SAVE and copy the dump out of the server's directory.
fn save(server: &RedisServer, conn: &mut Connection, to: &Path) {
    let _: () = q(conn, &mut redis::cmd("SAVE"));
    fs::copy(server.dir().join("dump.rdb"), to).expect("copy the server's dump.rdb");
}

fn read_all(bytes: &[u8]) -> Result<(Vec<Entry>, Option<Checksum>, u64), rdb::ReadError> {
    let mut r = RdbReader::new(bytes)?;
    let mut v = Vec::new();
    while let Some(e) = r.next_entry()? {
        v.push(e);
    }
    Ok((v, r.checksum(), r.functions()))
}

struct Filled {
    /// (db, key) → expected value, for the keys whose value the test spells out.
    expect: BTreeMap<(u32, Vec<u8>), RdbValue>,
    /// (db, key) → RDB type byte 7.0 must use.
    types: BTreeMap<(u32, Vec<u8>), u8>,
    stream_ids: Vec<StreamId>,
}

fn fill_every_type(conn: &mut Connection) -> Filled {
    let mut expect = BTreeMap::new();
    let mut types = BTreeMap::new();
    macro_rules! put {
        ($key:expr, $ty:expr, $v:expr $(,)?) => {{
            types.insert((0u32, b($key)), $ty);
            expect.insert((0u32, b($key)), $v);
        }};
    }
    let compressible: Vec<u8> = b"0123456789abcdef"
        .iter()
        .copied()
        .cycle()
        .take(600)
        .collect();
    let binary: Vec<u8> = (0..=255u8).collect();
    let big = pseudo_random_bytes(7, 200_000);
    for (k, v) in [
        ("str:int", b("12345")),
        ("str:neg", b("-42")),
        ("str:short", b("hello")),
        ("str:lzf", compressible.clone()),
        ("str:bin", binary.clone()),
        ("str:big", big.clone()),
    ] {
        let _: () = q(conn, redis::cmd("SET").arg(k).arg(&v[..]));
        put!(k, 0, RdbValue::String(v));
    }
    // Lists: one listpack node; many LZF-compressed nodes; a PLAIN node.
    let _: () = q(
        conn,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("list-compress-depth")
            .arg(1),
    );
    let _: i64 = q(
        conn,
        redis::cmd("RPUSH")
            .arg("list:small")
            .arg("a")
            .arg(1)
            .arg(-5),
    );
    put!(
        "list:small",
        18,
        RdbValue::List(vec![b("a"), b("1"), b("-5")])
    );
    let long: Vec<Vec<u8>> = (0..5000)
        .map(|i| format!("element-{i}-{}", "x".repeat(i % 40)).into_bytes())
        .collect();
    for chunk in long.chunks(500) {
        let _: i64 = q(conn, redis::cmd("RPUSH").arg("list:big").arg(chunk));
    }
    put!("list:big", 18, RdbValue::List(long));
    let _: () = q(
        conn,
        redis::cmd("DEBUG")
            .arg("QUICKLIST-PACKED-THRESHOLD")
            .arg(100),
    );
    let plain = vec![b'p'; 500];
    let _: i64 = q(
        conn,
        redis::cmd("RPUSH")
            .arg("list:plain")
            .arg("small")
            .arg(&plain[..])
            .arg("tail"),
    );
    let _: () = q(
        conn,
        redis::cmd("DEBUG")
            .arg("QUICKLIST-PACKED-THRESHOLD")
            .arg(1u64 << 30),
    );
    put!(
        "list:plain",
        18,
        RdbValue::List(vec![b("small"), plain, b("tail")])
    );
    // Sets: intset and hashtable.
    let _: i64 = q(
        conn,
        redis::cmd("SADD")
            .arg("set:int")
            .arg(&[3, -7, 100000, 1][..]),
    );
    put!(
        "set:int",
        11,
        RdbValue::Set(vec![b("-7"), b("1"), b("3"), b("100000")])
    );
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let _: i64 = q(conn, redis::cmd("SADD").arg("set:big").arg(&members));
    types.insert((0, b("set:big")), 2);
    // Sorted sets: listpack (with infinities) and skiplist.
    let _: i64 = q(
        conn,
        redis::cmd("ZADD")
            .arg("zset:small")
            .arg(&["1.5", "a", "+inf", "b", "-inf", "c", "0", "d", "-0.25", "e"][..]),
    );
    put!(
        "zset:small",
        17,
        RdbValue::Zset(vec![
            (b("c"), f64::NEG_INFINITY),
            (b("e"), -0.25),
            (b("d"), 0.0),
            (b("a"), 1.5),
            (b("b"), f64::INFINITY),
        ]),
    );
    for i in 0..300 {
        let _: i64 = q(
            conn,
            redis::cmd("ZADD")
                .arg("zset:big")
                .arg(f64::from(i) / 3.0)
                .arg(format!("member-{i}")),
        );
    }
    types.insert((0, b("zset:big")), 5);
    // Hashes: listpack and hashtable.
    let _: i64 = q(
        conn,
        redis::cmd("HSET")
            .arg("hash:small")
            .arg(&["f1", "v1", "f2", "7"][..]),
    );
    put!(
        "hash:small",
        16,
        RdbValue::Hash(vec![(b("f1"), b("v1")), (b("f2"), b("7"))])
    );
    for i in 0..1000 {
        let _: i64 = q(
            conn,
            redis::cmd("HSET")
                .arg("hash:big")
                .arg(format!("field{i}"))
                .arg(i),
        );
    }
    types.insert((0, b("hash:big")), 4);
    // A stream with a deleted entry, entries with other fields, two groups, a PEL.
    let mut stream_ids = Vec::new();
    for (i, fields) in [
        vec![("temp", "20"), ("hum", "50")],
        vec![("temp", "21"), ("hum", "51")],
        vec![("temp", "22"), ("hum", "52")],
        vec![("other", "x")],
    ]
    .iter()
    .enumerate()
    {
        let mut c = redis::cmd("XADD");
        c.arg("stream:s")
            .arg(format!("{}-{i}", 1_700_000_000_000u64 + i as u64));
        for (f, v) in fields {
            c.arg(*f).arg(*v);
        }
        let id: String = q(conn, &mut c);
        stream_ids.push(StreamId::parse(&id).expect("XADD returns an ID"));
    }
    let _: i64 = q(
        conn,
        redis::cmd("XDEL")
            .arg("stream:s")
            .arg(stream_ids[1].to_string()),
    );
    let _: () = q(
        conn,
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("stream:s")
            .arg("g1")
            .arg("0"),
    );
    let _: () = q(
        conn,
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("stream:s")
            .arg("g2")
            .arg("$"),
    );
    let _: redis::Value = q(
        conn,
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g1")
            .arg("alice")
            .arg("COUNT")
            .arg(2)
            .arg("STREAMS")
            .arg("stream:s")
            .arg(">"),
    );
    types.insert((0, b("stream:s")), 19);
    // TTLs, another db, a function library.
    let _: i64 = q(
        conn,
        redis::cmd("PEXPIREAT")
            .arg("str:short")
            .arg(4_102_444_800_000i64),
    );
    let _: i64 = q(conn, redis::cmd("EXPIRE").arg("set:big").arg(86_400));
    let _: () = q(conn, redis::cmd("SELECT").arg(5));
    let _: () = q(conn, redis::cmd("SET").arg("in-db-5").arg("five"));
    let _: () = q(conn, redis::cmd("SELECT").arg(0));
    types.insert((5, b("in-db-5")), 0);
    expect.insert((5, b("in-db-5")), RdbValue::String(b("five")));
    let _: String = q(
        conn,
        redis::cmd("FUNCTION").arg("LOAD").arg(
            "#!lua name=rescuelib\nredis.register_function('hello', function() return 'hi' end)",
        ),
    );
    Filled {
        expect,
        types,
        stream_ids,
    }
}

fn sorted(v: &RdbValue) -> RdbValue {
    match v {
        RdbValue::Set(s) => {
            let mut s = s.clone();
            s.sort();
            RdbValue::Set(s)
        }
        other => other.clone(),
    }
}

#[test]
fn reads_every_type_redis_70_saves() {
    let server = RedisServer::start(&server_bin(), &[]);
    let mut conn = server.conn();
    let filled = fill_every_type(&mut conn);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("real.rdb");
    save(&server, &mut conn, &path);
    let bytes = fs::read(&path).expect("read the dump");
    let (entries, checksum, functions) =
        read_all(&bytes).expect("the reader reads a real 7.0 dump");
    assert!(
        matches!(checksum, Some(Checksum::Verified(_))),
        "{checksum:?}"
    );
    assert_eq!(functions, 1, "one function library");
    let r = RdbReader::new(&bytes[..]).expect("header");
    assert_eq!(r.version(), 10);

    let sizes = dbsizes(&mut conn);
    assert_eq!(
        entries.len() as u64,
        sizes.values().sum::<u64>(),
        "keys read vs DBSIZE"
    );
    let by_key: BTreeMap<(u32, Vec<u8>), &Entry> =
        entries.iter().map(|e| ((e.db, e.key.clone()), e)).collect();

    for ((db, key), ty) in &filled.types {
        let e = by_key
            .get(&(*db, key.clone()))
            .unwrap_or_else(|| panic!("db {db} key {} not read", show(key)));
        assert_eq!(e.rdb_type, *ty, "RDB type of {}", show(key));
    }
    for ((db, key), want) in &filled.expect {
        let e = by_key[&(*db, key.clone())];
        assert_eq!(
            sorted(&e.value),
            sorted(want),
            "value of db {db} key {}",
            show(key)
        );
    }
    // Values the test did not spell out, against the server itself.
    let members: Vec<Vec<u8>> = q(&mut conn, redis::cmd("SMEMBERS").arg("set:big"));
    let mut members = members;
    members.sort();
    assert_eq!(
        sorted(&by_key[&(0, b("set:big"))].value),
        RdbValue::Set(members)
    );
    // 7.0 saves a skiplist from its tail: compare in score order.
    let zbig: Vec<(Vec<u8>, f64)> = q(
        &mut conn,
        redis::cmd("ZRANGE")
            .arg("zset:big")
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES"),
    );
    let RdbValue::Zset(mut z) = by_key[&(0, b("zset:big"))].value.clone() else {
        panic!("zset:big is not a zset");
    };
    z.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert!(
        z == zbig,
        "zset:big differs from ZRANGE ({} vs {} members)",
        z.len(),
        zbig.len()
    );
    let hbig: BTreeMap<Vec<u8>, Vec<u8>> = q(&mut conn, redis::cmd("HGETALL").arg("hash:big"));
    let RdbValue::Hash(h) = &by_key[&(0, b("hash:big"))].value else {
        panic!("hash:big is not a hash");
    };
    assert_eq!(h.iter().cloned().collect::<BTreeMap<_, _>>(), hbig);
    // TTLs exactly as PEXPIRETIME says.
    for key in ["str:short", "set:big"] {
        let t: i64 = q(&mut conn, redis::cmd("PEXPIRETIME").arg(key));
        assert_eq!(by_key[&(0, b(key))].expire_ms, Some(t), "expire of {key}");
    }
    assert_eq!(by_key[&(0, b("str:int"))].expire_ms, None);
    // The stream: live entries, metadata, groups and PELs.
    let RdbValue::Stream(s) = &by_key[&(0, b("stream:s"))].value else {
        panic!("stream:s is not a stream");
    };
    let ids: Vec<StreamId> = s.entries.iter().map(|e| e.id).collect();
    let ids_want = vec![
        filled.stream_ids[0],
        filled.stream_ids[2],
        filled.stream_ids[3],
    ];
    assert_eq!(ids, ids_want);
    assert_eq!(s.entries[2].fields, vec![(b("other"), b("x"))]);
    assert_eq!(
        s.entries[1].fields,
        vec![(b("temp"), b("22")), (b("hum"), b("52"))]
    );
    assert_eq!((s.length, s.last_id), (3, filled.stream_ids[3]));
    assert_eq!(s.max_deleted_id, Some(filled.stream_ids[1]));
    assert_eq!(s.entries_added, Some(4));
    let g1 = s.groups.iter().find(|g| g.name == b"g1").expect("group g1");
    assert_eq!(g1.pending.len(), 2);
    assert_eq!(g1.last_id, filled.stream_ids[2]);
    assert_eq!(g1.consumers.len(), 1);
    assert_eq!(g1.consumers[0].name, b("alice"));
    assert_eq!(g1.consumers[0].pending.len(), 2);
    let g2 = s.groups.iter().find(|g| g.name == b"g2").expect("group g2");
    assert_eq!((g2.last_id, g2.pending.len()), (filled.stream_ids[3], 0));

    // verify, with no report beside the file: the server on PATH loads it, all keys match.
    let out = run_rescue(&[
        "verify".as_ref(),
        path.as_os_str(),
        "--redis-server".as_ref(),
        server_bin().as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let j: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("verify --json prints JSON");
    assert_eq!(
        j["comparison"]["matched"].as_u64(),
        Some(entries.len() as u64),
        "{j:#}"
    );
    assert_eq!(j["comparison"]["differing"].as_u64(), Some(0));
    assert!(j["report"].is_null());
    assert!(
        j["warnings"].to_string().contains("no report"),
        "a missing report must be warned about: {j:#}"
    );
}

/// A small real file: a few keys of every type.
fn small_real_dump() -> Vec<u8> {
    let server = RedisServer::start(&server_bin(), &[]);
    let mut conn = server.conn();
    let cmds: Vec<Vec<&str>> = vec![
        vec!["SET", "s", "v"],
        vec!["SET", "n", "1234567"],
        vec![
            "SET",
            "lzf",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ],
        vec!["RPUSH", "l", "a", "b", "3"],
        vec!["SADD", "si", "1", "2"],
        vec!["SADD", "ss", "x", "y"],
        vec!["ZADD", "z", "1", "a", "2.5", "b"],
        vec!["HSET", "h", "f", "v"],
        vec!["XADD", "x", "1-1", "f", "v"],
        vec!["XGROUP", "CREATE", "x", "g", "0"],
        vec!["PEXPIRE", "s", "100000000"],
    ];
    for c in cmds {
        let mut cmd = redis::cmd(c[0]);
        for a in &c[1..] {
            cmd.arg(*a);
        }
        let _: redis::Value = q(&mut conn, &mut cmd);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("small.rdb");
    save(&server, &mut conn, &path);
    fs::read(&path).expect("read")
}

#[test]
fn every_truncation_and_every_flipped_byte_of_a_real_file_is_an_error() {
    let bytes = small_real_dump();
    let (entries, _, _) = read_all(&bytes).expect("the whole file reads");
    assert_eq!(entries.len(), 9);
    assert!(
        bytes.len() < 4096,
        "the small dump is {} bytes",
        bytes.len()
    );
    for cut in 0..bytes.len() {
        let r = std::panic::catch_unwind(|| read_all(&bytes[..cut]).map(|_| ()));
        match r {
            Ok(Err(_)) => {}
            Ok(Ok(())) => panic!("a dump cut at {cut} of {} read as valid", bytes.len()),
            Err(_) => panic!("the reader panicked on a dump cut at {cut}"),
        }
    }
    for at in 0..bytes.len() {
        for bit in [0u8, 3, 7] {
            let mut bad = bytes.clone();
            bad[at] ^= 1 << bit;
            let r = std::panic::catch_unwind(|| read_all(&bad).map(|_| ()));
            assert!(
                matches!(r, Ok(Err(_))),
                "flipping bit {bit} of byte {at} must be an error (no panic, no success)"
            );
        }
    }
}
