//! `--pid` straight to where the keyspace must go, with nothing on the local disk: the RDB
//! streamed to stdout (`-o -`), and `--to redis://` into a fresh server. Sources are real
//! running servers: Debian 12's redis-server 7.0.15 (every type and encoding, function
//! libraries) and PyPI's Redis 8.2.3 (every type, TTLs, hash field TTLs, functions). Each output is compared with the
//! source: DEBUG DIGEST, DBSIZE per db, FUNCTION LIST; the source keeps serving with its
//! digest unchanged.
//!
//! Needs root (ptrace of the servers) and the 8.2.3 build of `.ci/provision-redis8.sh`.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{
    dbsizes, describe, digest, fill_dataset, find_in_path, function_libraries,
    load_function_libraries, provisioned_binary, RedisServer,
};

/// A running source of `bin` (`version` for its options), filled and with function
/// libraries loaded: the 7.0 dataset of tests/common for 7.0.15; for Redis 8 (whose
/// encodings that dataset does not expect) every type, with TTLs and hash field TTLs.
fn source(bin: &Path, version: &str) -> (RedisServer, Truth) {
    let server = RedisServer::start_version(bin, version, &["--activerehashing", "no"]);
    let mut conn = server.conn();
    if version.starts_with("7.") {
        fill_dataset(&server);
    } else {
        fill_redis8(&mut conn);
    }
    load_function_libraries(&mut conn);
    let truth = Truth {
        digest: digest(&mut conn),
        dbsizes: dbsizes(&mut conn),
        libraries: function_libraries(&mut conn),
        field_ttl: field_ttl(&mut conn),
    };
    assert!(
        !truth.libraries.is_empty(),
        "the source holds function libraries"
    );
    (server, truth)
}

/// What the outputs are compared with.
struct Truth {
    digest: String,
    dbsizes: std::collections::BTreeMap<u32, u64>,
    libraries: Vec<(String, String)>,
    /// HPEXPIRETIME of `h0`'s fields f1, f2 (Redis 8; DEBUG DIGEST leaves field TTLs out).
    field_ttl: Option<Vec<i64>>,
}

fn field_ttl(conn: &mut redis::Connection) -> Option<Vec<i64>> {
    redis::cmd("HPEXPIRETIME")
        .arg("h0")
        .arg("FIELDS")
        .arg(2)
        .arg("f1")
        .arg("f2")
        .query(conn)
        .ok()
}

/// `conn` holds what `truth` says.
fn assert_holds(conn: &mut redis::Connection, truth: &Truth, what: &str) {
    assert_eq!(dbsizes(conn), truth.dbsizes, "{what}: DBSIZE per db");
    assert_eq!(digest(conn), truth.digest, "{what}: DEBUG DIGEST");
    assert_eq!(
        function_libraries(conn),
        truth.libraries,
        "{what}: FUNCTION LIST"
    );
    assert_eq!(field_ttl(conn), truth.field_ttl, "{what}: HPEXPIRETIME");
}

/// Every type of Redis 8 in two dbs, some keys with TTLs, a hash with field TTLs.
fn fill_redis8(conn: &mut redis::Connection) {
    let mut p = redis::pipe();
    for db in [0u32, 5] {
        p.cmd("SELECT").arg(db).ignore();
        p.cmd("DEBUG")
            .arg("POPULATE")
            .arg(3000)
            .arg(format!("k{db}"))
            .ignore();
        for i in 0..200 {
            p.cmd("RPUSH")
                .arg(format!("l{db}"))
                .arg(format!("e{i}"))
                .ignore();
            p.cmd("SADD")
                .arg(format!("s{db}"))
                .arg(format!("m{i}"))
                .ignore();
            p.cmd("ZADD")
                .arg(format!("z{db}"))
                .arg(i)
                .arg(format!("m{i}"))
                .ignore();
            p.cmd("HSET")
                .arg(format!("h{db}"))
                .arg(format!("f{i}"))
                .arg(i)
                .ignore();
            p.cmd("XADD")
                .arg(format!("x{db}"))
                .arg("*")
                .arg("f")
                .arg(i)
                .ignore();
        }
        p.cmd("HPEXPIRE")
            .arg(format!("h{db}"))
            .arg(86_400_000)
            .arg("FIELDS")
            .arg(2)
            .arg("f1")
            .arg("f2")
            .ignore();
        p.cmd("PEXPIRE")
            .arg(format!("k{db}:7"))
            .arg(86_400_000)
            .ignore();
        p.cmd("PEXPIRE")
            .arg(format!("l{db}"))
            .arg(86_400_000)
            .ignore();
    }
    p.cmd("SELECT").arg(0).ignore();
    let () = p.query(conn).expect("fill the Redis 8 source");
}

/// `redis-rescue --pid PID ARGS` run in `cwd`, stdout into `stdout` (a file) when given.
fn rescue_pid(pid: u32, args: &[&str], cwd: &Path, stdout: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redis-rescue"));
    cmd.arg("--pid")
        .arg(pid.to_string())
        .args(args)
        .current_dir(cwd);
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    match stdout {
        Some(p) => cmd.stdout(File::create(p).expect("create the stdout file")),
        None => cmd.stdout(Stdio::piped()),
    };
    cmd.output().expect("run redis-rescue")
}

/// The source is still serving, unchanged.
fn assert_unharmed(source: &RedisServer, truth: &Truth, what: &str) {
    assert_eq!(
        digest(&mut source.conn()),
        truth.digest,
        "the source's DEBUG DIGEST changed {what}"
    );
}

fn pid_to_stdout_and_to_a_server(bin: &Path, version: &str) {
    let (src, truth) = source(bin, version);
    let pid = src.pid();
    let dir = tempfile::Builder::new()
        .prefix("live-outputs-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let run_dir = dir.path().join("cwd");
    std::fs::create_dir_all(&run_dir).expect("mkdir");

    // -o -: the RDB on stdout, the summary on stderr, no file written beside it.
    let streamed = dir.path().join("streamed.rdb");
    let out = rescue_pid(pid, &["-o", "-", "-q"], &run_dir, Some(&streamed));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{version} -o -: {}",
        describe(&out)
    );
    assert!(
        std::fs::read_dir(&run_dir).expect("ls").next().is_none(),
        "{version}: -o - wrote a file"
    );
    assert_unharmed(&src, &truth, "after --pid -o -");
    let restored = RedisServer::start_version_on_rdb(bin, version, &streamed, &[]);
    assert_holds(
        &mut restored.conn(),
        &truth,
        &format!("{version} -o -, restored"),
    );
    drop(restored);

    // --to: RESTOREd into a fresh, empty server of the same build.
    let target = RedisServer::start_version(bin, version, &[]);
    let url = format!("redis://127.0.0.1:{}", target.port());
    let out = rescue_pid(pid, &["--to", &url, "-q"], &run_dir, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{version} --to: {}",
        describe(&out)
    );
    assert_holds(&mut target.conn(), &truth, &format!("{version} --to"));
    assert_unharmed(&src, &truth, "after --pid --to");
    eprintln!("{version}: --pid -o - and --pid --to equal to the source");
}

#[test]
fn pid_7_0_15_to_stdout_and_to_a_server() {
    pid_to_stdout_and_to_a_server(&find_in_path("redis-server"), "7.0.15");
}

#[test]
fn pid_8_2_3_to_stdout_and_to_a_server() {
    pid_to_stdout_and_to_a_server(&provisioned_binary("8.2.3"), "8.2.3");
}
