//! `redis-rescue verify` against every server build `.ci/provision-redis.sh` provides (the
//! builds listed in `target/redis-builds/READY`, or `$REDIS_BUILDS_DIR/READY`): a server of
//! each version is filled with the types it has, saved, and its own dump must verify with
//! exit 0 both ways (`--redis-server <build>` and `--connect`), with the version's expire
//! comparison (PTTL before 7.0); the dump with a flipped byte must give exit 2.
//!
//! Debian's 7.0.15 is covered by verify_redis70.rs and verify_reader.rs. Without a READY
//! file this test fails and says to run `.ci/provision-redis.sh`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use redis::Connection;

/// (name, server binary) of every READY build.
fn ready_builds() -> Option<Vec<(String, PathBuf)>> {
    let text = fs::read_to_string(builds_dir().join("READY")).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next().expect("a version").to_string();
                let bin = PathBuf::from(
                    w.next()
                        .unwrap_or_else(|| panic!("no binary in READY line {l:?}")),
                );
                (name, bin)
            })
            .collect(),
    )
}

/// (major, minor) of a build name (`2.8.17`, `valkey-8.1.8`: Valkey 8 speaks Redis 7.2+).
fn redis_level(name: &str) -> (u32, u32) {
    if name.starts_with("valkey-") {
        return (7, 2);
    }
    let mut it = name.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn run(conn: &mut Connection, args: &[&str]) {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    let _: redis::Value = c.query(conn).unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

/// Every type the version has, small and large, TTLs, two dbs.
fn fill(conn: &mut Connection, level: (u32, u32)) -> u64 {
    let mut keys = 0;
    for i in 0..300 {
        run(
            conn,
            &[
                "SET",
                &format!("s:{i}"),
                &format!("value-{i}-{}", "v".repeat(i % 70)),
            ],
        );
        keys += 1;
    }
    run(conn, &["SET", "int", "123456"]);
    run(conn, &["SET", "lzf", &"compressible text ".repeat(40)]);
    let many: Vec<String> = (0..600).map(|i| format!("e{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut rpush = vec!["RPUSH", "list:big"];
    rpush.extend_from_slice(&many);
    run(conn, &rpush);
    run(conn, &["RPUSH", "list:small", "a", "1", "-2"]);
    run(conn, &["SADD", "set:int", "1", "-5", "70000"]);
    let mut sadd = vec!["SADD", "set:big"];
    sadd.extend_from_slice(&many);
    run(conn, &sadd);
    run(conn, &["SADD", "set:str", "x", "y"]);
    run(
        conn,
        &["ZADD", "zset:small", "1.5", "a", "-2", "b", "0", "c"],
    );
    for i in 0..200 {
        run(
            conn,
            &[
                "ZADD",
                "zset:big",
                &format!("{}", f64::from(i) / 7.0),
                &format!("m{i}"),
            ],
        );
    }
    run(conn, &["HSET", "hash:small", "f", "v"]);
    for i in 0..300 {
        run(
            conn,
            &["HSET", "hash:big", &format!("f{i}"), &format!("{i}")],
        );
    }
    keys += 11;
    if level >= (5, 0) {
        run(conn, &["XADD", "stream", "1-1", "a", "1"]);
        run(conn, &["XADD", "stream", "2-1", "a", "2", "b", "3"]);
        run(conn, &["XGROUP", "CREATE", "stream", "g", "0"]);
        run(
            conn,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                "1",
                "STREAMS",
                "stream",
                ">",
            ],
        );
        keys += 1;
    }
    run(conn, &["PEXPIRE", "s:1", "86400000"]);
    run(conn, &["EXPIRE", "list:small", "86400"]);
    run(conn, &["SELECT", "2"]);
    run(conn, &["SET", "in-db-2", "x"]);
    run(conn, &["SELECT", "0"]);
    keys + 1
}

fn verify(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut all = vec![std::ffi::OsStr::new("verify")];
    all.extend_from_slice(args);
    run_rescue(&all)
}

/// The checks of one build; returns what went wrong.
fn check_build(name: &str, bin: &Path) -> Result<(), String> {
    let level = redis_level(name);
    let src = RedisServer::start_version(bin, name, &[]);
    let mut conn = src.conn();
    let keys = fill(&mut conn, level);
    run(&mut conn, &["SAVE"]);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dump = dir.path().join("dump.rdb");
    fs::copy(src.dir().join("dump.rdb"), &dump).map_err(|e| e.to_string())?;
    drop(conn);
    drop(src);

    let want_mode = if level >= (7, 0) {
        "pexpiretime"
    } else {
        "pttl"
    };
    let check = |out: &std::process::Output, how: &str| -> Result<(), String> {
        if out.status.code() != Some(0) {
            return Err(format!(
                "{how}: exit {:?}\n{}",
                out.status.code(),
                describe(out)
            ));
        }
        let j: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("{how}: {e}"))?;
        if j["comparison"]["matched"].as_u64() != Some(keys) {
            return Err(format!(
                "{how}: {} keys matched, {keys} expected",
                j["comparison"]["matched"]
            ));
        }
        if j["expire_mode"] != want_mode {
            return Err(format!(
                "{how}: expire mode {}, want {want_mode}",
                j["expire_mode"]
            ));
        }
        Ok(())
    };
    let out = verify(&[
        dump.as_os_str(),
        "--redis-server".as_ref(),
        bin.as_os_str(),
        "--json".as_ref(),
    ]);
    check(&out, "--redis-server")?;

    let copy = dir.path().join("copy.rdb");
    fs::copy(&dump, &copy).map_err(|e| e.to_string())?;
    let server = RedisServer::start_version_on_rdb(bin, name, &copy, &[]);
    let addr = format!("127.0.0.1:{}", server.port());
    let out = verify(&[
        dump.as_os_str(),
        "--connect".as_ref(),
        addr.as_ref(),
        "--json".as_ref(),
    ]);
    check(&out, "--connect")?;
    drop(server);

    let mut bytes = fs::read(&dump).map_err(|e| e.to_string())?;
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let flipped = dir.path().join("flipped.rdb");
    fs::write(&flipped, &bytes).map_err(|e| e.to_string())?;
    let out = verify(&[
        flipped.as_os_str(),
        "--redis-server".as_ref(),
        bin.as_os_str(),
    ]);
    if out.status.code() != Some(2) {
        return Err(format!(
            "flipped byte: exit {:?}, want 2\n{}",
            out.status.code(),
            describe(&out)
        ));
    }
    Ok(())
}

#[test]
fn verify_every_provisioned_build() {
    let Some(builds) = ready_builds() else {
        panic!(
            "no {}: no provisioned builds to verify against: run .ci/provision-redis.sh",
            builds_dir().join("READY").display()
        );
    };
    assert!(!builds.is_empty(), "READY lists no build");
    let mut failures = Vec::new();
    for (name, bin) in &builds {
        assert!(
            bin.is_file(),
            "READY lists {name} at {}, which is missing",
            bin.display()
        );
        let started = std::time::Instant::now();
        match check_build(name, bin) {
            Ok(()) => eprintln!("verify on {name}: ok ({:.1?})", started.elapsed()),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "verify failed on some builds:\n{}",
        failures.join("\n\n")
    );
}
