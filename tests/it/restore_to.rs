//! `--to URL` on real servers: a core of Debian 12's redis-server 7.0.15 (every type and
//! encoding, two function libraries, one value over a megabyte) restored straight into a
//! fresh password-protected server of the same version (digest, DBSIZE, TTLs, streams and
//! FUNCTION LIST equal; the password nowhere in the report or the output), existing keys
//! refused and reported without `--replace` and overwritten with it, a value larger than the
//! target's proto-max-bulk-len reported; and a cluster-mode core restored into a 3-node
//! local Redis Cluster, every key on its slot's master.
//!
//! Needs redis-server 7.0.15 and gdb (gcore); see tests/README.md.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;

const PASSWORD: &str = "s3cret-Pa55";
/// A string value over a megabyte (the smallest proto-max-bulk-len a server takes).
const BIG_KEY: &[u8] = b"big:2mb";

static FIXTURE: OnceLock<FunctionsFixture> = OnceLock::new();

fn fixture() -> &'static FunctionsFixture {
    FIXTURE.get_or_init(|| {
        let f = make_core_fixture_with_functions(Path::new(DEFAULT_SERVER), "restore-to", |conn| {
            redis::cmd("SET")
                .arg(BIG_KEY)
                .arg(pseudo_random_bytes(7, 2 << 20))
                .exec(conn)
                .expect("SET the big key");
        });
        assert_eq!(f.core.truth.redis_version, "7.0.15");
        f
    })
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// A fresh 7.0.15 server with `extra` args and a password (set once it answers: the
/// harness waits for PING without one), and a connection to it.
fn target(extra: &[&str]) -> (RedisServer, redis::Connection) {
    let server = RedisServer::start(Path::new(DEFAULT_SERVER), extra);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(PASSWORD)
        .exec(&mut server.conn())
        .expect("CONFIG SET requirepass");
    let client = redis::Client::open(format!("redis://:{PASSWORD}@127.0.0.1:{}/", server.port()))
        .expect("client");
    let conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect with the password");
    (server, conn)
}

fn url(port: u16) -> String {
    format!("redis://:{PASSWORD}@127.0.0.1:{port}")
}

fn assert_no_password(out: &std::process::Output, report: &Path) {
    let all = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(report).unwrap_or_default()
    );
    assert!(!all.contains(PASSWORD), "the password leaked:\n{all}");
}

#[test]
fn a_fresh_server_receives_every_key() {
    let f = fixture();
    let (server, mut conn) = target(&[]);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("to.report.json");
    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("--to"),
        os(&url(server.port())),
        os("--report"),
        report.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_no_password(&out, &report);
    let r = read_report(&report);
    assert_eq!(
        r["output"],
        format!("redis://:***@127.0.0.1:{} (redis 7.0.15)", server.port())
    );
    assert_eq!(r["functions"], 2);
    assert_holds_exactly(&mut conn, &f.core.truth, "--to a fresh server");
    assert_eq!(function_libraries(&mut conn), f.libraries);
    assert!(
        listing(dir.path()) == ["to.report.json"],
        "nothing but the report on disk"
    );
}

/// A CA, and a certificate for `localhost` it signed, made with the openssl CLI in `dir`:
/// (ca.crt, server.crt, server.key).
fn tls_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", describe(&out));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=rescue-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").expect("write ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ]);
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

/// `rediss://`: the keys go over TLS to a server whose certificate a private CA signed,
/// trusted through SSL_CERT_FILE; without that CA the certificate is refused and nothing
/// is sent.
#[test]
fn a_tls_server_receives_every_key_over_rediss() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let tls_port = free_port();
    let tls_port_s = tls_port.to_string();
    let (server, mut conn) = target(&[
        "--tls-port",
        &tls_port_s,
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-ca-cert-file",
        ca.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://:{PASSWORD}@localhost:{tls_port}");
    let report = dir.path().join("tls.report.json");
    let rescue = |trust: Option<&Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_redis-rescue"));
        cmd.arg(&f.core.core)
            .args(["--to", &url, "--report"])
            .arg(&report)
            .arg("--force");
        match trust {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd.output().expect("run redis-rescue")
    };
    // The system's CAs do not know this one: refused, nothing sent.
    let out = rescue(None);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_eq!(
        dbsizes(&mut conn),
        BTreeMap::new(),
        "nothing sent to an untrusted server"
    );
    let out = rescue(Some(&ca));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_no_password(&out, &report);
    assert_holds_exactly(&mut conn, &f.core.truth, "--to rediss://");
    assert_eq!(function_libraries(&mut conn), f.libraries);
    drop(server);
}

#[test]
fn existing_keys_are_reported_unless_replace() {
    let f = fixture();
    let (server, mut conn) = target(&[]);
    // Three keys of the source, already in the target with other values.
    let taken: Vec<(u32, Vec<u8>)> = f.core.truth.dataset.ttl_keys[..3].to_vec();
    for (db, key) in &taken {
        select(&mut conn, *db);
        redis::cmd("SET")
            .arg(key.as_slice())
            .arg("kept")
            .exec(&mut conn)
            .unwrap();
    }
    // The password from REDISCLI_AUTH this time: the URL has none.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_redis-rescue"));
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = cmd
        .arg(&f.core.core)
        .args(["--to", &format!("redis://127.0.0.1:{}", server.port())])
        .arg("--report")
        .arg(&report)
        .env("REDISCLI_AUTH", PASSWORD)
        .output()
        .expect("run redis-rescue");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_no_password(&out, &report);
    let r = read_report(&report);
    let lost: Vec<(u64, String, String)> = r["lost_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["db"].as_u64().unwrap(),
                k["key"].as_str().unwrap().to_owned(),
                k["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut named: Vec<(u64, String)> = lost.iter().map(|(d, k, _)| (*d, k.clone())).collect();
    let mut want: Vec<(u64, String)> = taken
        .iter()
        .map(|(db, key)| (u64::from(*db), printable(key)))
        .collect();
    named.sort();
    want.sort();
    assert_eq!(named, want, "the taken keys, and only they, are lost");
    for (_, _, reason) in &lost {
        assert!(reason.contains("BUSYKEY"), "{reason}");
    }
    for (db, key) in &taken {
        select(&mut conn, *db);
        let v: String = redis::cmd("GET")
            .arg(key.as_slice())
            .query(&mut conn)
            .unwrap();
        assert_eq!(v, "kept", "not overwritten without --replace");
    }
    assert_eq!(r["totals"]["lost"], 3);
    let keys: u64 = f.core.truth.dbsizes.values().sum();
    assert_eq!(r["totals"]["keys"].as_u64(), Some(keys - 3));

    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("--to"),
        os(&url(server.port())),
        os("--replace"),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_holds_exactly(&mut conn, &f.core.truth, "--to --replace over taken keys");
    assert_eq!(function_libraries(&mut conn), f.libraries);
}

#[test]
fn values_over_proto_max_bulk_len_are_reported() {
    let f = fixture();
    let (server, mut conn) = target(&["--proto-max-bulk-len", "1mb"]);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("--to"),
        os(&url(server.port())),
        os("--report"),
        report.as_os_str(),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = read_report(&report);
    let lost = r["lost_keys"].as_array().unwrap();
    assert!(
        lost.iter().any(|k| k["key"] == "big:2mb"),
        "the big value is listed: {lost:?}"
    );
    for k in lost {
        let reason = k["reason"].as_str().unwrap();
        assert!(reason.contains("proto-max-bulk-len (1048576)"), "{reason}");
    }
    let n: u64 = redis::cmd("EXISTS").arg(BIG_KEY).query(&mut conn).unwrap();
    assert_eq!(n, 0);
    let restored: u64 = dbsizes(&mut conn).values().sum();
    assert_eq!(
        restored + lost.len() as u64,
        f.core.truth.dbsizes.values().sum::<u64>()
    );
}

// ------------------------------------------------------------------------------- cluster

fn cluster_field(conn: &mut redis::Connection, field: &str) -> Option<String> {
    let info: String = redis::cmd("CLUSTER").arg("INFO").query(conn).ok()?;
    info.lines()
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
        .map(str::to_owned)
}

/// Waits until `conn`'s node says `cluster_state:ok` with every slot assigned.
fn wait_cluster_ok(conn: &mut redis::Connection, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = cluster_field(conn, "cluster_state").as_deref() == Some("ok")
            && cluster_field(conn, "cluster_slots_assigned").as_deref() == Some("16384");
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: cluster not ok in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every key of the node with its DEBUG DIGEST-VALUE and PEXPIRETIME.
fn key_digests(conn: &mut redis::Connection) -> BTreeMap<Vec<u8>, (String, i64)> {
    let keys = scan_keys(conn, 0);
    let mut out = BTreeMap::new();
    for k in keys {
        let (d, t): (Vec<String>, i64) = redis::pipe()
            .cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(k.as_slice())
            .cmd("PEXPIRETIME")
            .arg(k.as_slice())
            .query(conn)
            .expect("DEBUG DIGEST-VALUE, PEXPIRETIME");
        out.insert(k, (d.concat(), t));
    }
    out
}

#[test]
fn a_three_node_cluster_receives_every_key_of_a_cluster_core() {
    let bin = Path::new(DEFAULT_SERVER);
    // The source: one cluster-mode node serving every slot, keys of every type.
    let source = start_cluster_node(bin, "7.0.15", &[]);
    let mut sc = source.conn();
    redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .exec(&mut sc)
        .expect("ADDSLOTSRANGE");
    wait_cluster_ok(&mut sc, "source");
    let mut p = redis::pipe();
    for i in 0..3000u32 {
        let k = format!("k:{i}");
        match i % 7 {
            0 => p.cmd("SET").arg(&k).arg(i),
            1 => p.cmd("RPUSH").arg(&k).arg("a").arg(i).arg("c"),
            2 => p.cmd("SADD").arg(&k).arg(i).arg(i + 1),
            3 => p.cmd("ZADD").arg(&k).arg(1.5).arg("m").arg(i).arg("n"),
            4 => p.cmd("HSET").arg(&k).arg("f").arg(i),
            5 => p.cmd("XADD").arg(&k).arg("*").arg("f").arg(i),
            _ => p
                .cmd("SET")
                .arg(format!("{{tag}}:{i}"))
                .arg("x".repeat(100 + i as usize)),
        };
        if i % 5 == 0 {
            p.cmd("PEXPIREAT")
                .arg(&k)
                .arg(4_102_444_800_000i64 + i64::from(i));
        }
    }
    p.exec(&mut sc).expect("fill the source");
    let truth = key_digests(&mut sc);
    assert_eq!(truth.len(), 3000);
    let dir = tempfile::tempdir().unwrap();
    let core = gcore(&source, dir.path());
    drop(sc);
    drop(source);

    // The target: three masters, the slots split between them.
    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| start_cluster_node(bin, "7.0.15", &[]))
        .collect();
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    for (n, (a, b)) in nodes.iter().zip(ranges) {
        redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(a)
            .arg(b)
            .exec(&mut n.conn())
            .expect("ADDSLOTSRANGE");
    }
    let mut first = nodes[0].conn();
    for n in &nodes[1..] {
        // The harness gives every node a bus port of its own: MEET must name it.
        let bus: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("cluster-port")
            .query(&mut n.conn())
            .expect("CONFIG GET cluster-port");
        redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(n.port())
            .arg(&bus[1])
            .exec(&mut first)
            .expect("CLUSTER MEET");
    }
    for (i, n) in nodes.iter().enumerate() {
        wait_cluster_ok(&mut n.conn(), &format!("node {i}"));
    }

    // One slot half-way through a migration from node 0 to node 2: node 0 answers ASK for
    // its keys, which must then go to node 2 after ASKING.
    let id = |n: &RedisServer| -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut n.conn())
            .expect("CLUSTER MYID")
    };
    let (from, to) = (id(&nodes[0]), id(&nodes[2]));
    let slot: u16 = (0..3000)
        .map(|i| {
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(format!("k:{i}"))
                .query(&mut first)
                .expect("CLUSTER KEYSLOT")
        })
        .find(|s: &u16| *s <= 5460)
        .expect("a key in node 0's slots");
    let setslot = |n: &RedisServer, args: &[&str]| {
        let mut c = redis::cmd("CLUSTER");
        c.arg("SETSLOT").arg(slot);
        for a in args {
            c.arg(*a);
        }
        c.exec(&mut n.conn()).expect("CLUSTER SETSLOT");
    };
    setslot(&nodes[2], &["IMPORTING", &from]);
    setslot(&nodes[0], &["MIGRATING", &to]);

    let out = run_rescue(&[
        core.as_os_str(),
        os("--to"),
        os(&format!("redis-cluster://127.0.0.1:{}", nodes[1].port())),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let migrated: u64 = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query(&mut nodes[2].conn())
        .expect("COUNTKEYSINSLOT");
    assert!(migrated > 0, "the ASKed keys of slot {slot} are on node 2");
    // The migration ends: node 2 owns the slot, so its keys can be read there.
    for n in &nodes {
        setslot(n, &["NODE", &to]);
    }
    let mut got = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let held = key_digests(&mut n.conn());
        assert!(
            held.len() > 500,
            "node {i} holds {} keys: the slots are split",
            held.len()
        );
        got.extend(held);
    }
    assert_eq!(got.len(), truth.len(), "every key, each on one node");
    let wrong: Vec<String> = truth
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{}: {v:?} vs {:?}", show(k), got.get(k)))
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "values or TTLs differ:\n{}",
        wrong.join("\n")
    );
}
