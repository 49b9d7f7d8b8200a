//! Streaming outputs and file modes, on a real core of Debian 12's redis-server 7.0.15 full
//! of every type and encoding plus two function libraries:
//!
//! - `-o -` writes the RDB to stdout and nothing to the local disk; the dump restores to the
//!   source's DEBUG DIGEST, DBSIZE per db, TTLs, streams and FUNCTION LIST;
//! - `--format resp -o - | redis-cli --pipe` into a fresh server gives the same, refuses to
//!   overwrite without `--replace` (BUSYKEY) and overwrites with it, and never carries AUTH;
//! - `--format jsonl` is one JSON object per key whose values equal the server's for a
//!   sample of every type and encoding;
//! - dumps and reports are created 0600, and `--mode` widens them.
//!
//! Needs redis-server 7.0.15, redis-cli and gdb (gcore); see tests/README.md.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::common::*;
use base64::Engine as _;
use serde_json::Value as Json;

static FIXTURE: OnceLock<FunctionsFixture> = OnceLock::new();

fn fixture() -> &'static FunctionsFixture {
    FIXTURE.get_or_init(|| {
        let f = make_core_fixture_with_functions(Path::new(DEFAULT_SERVER), "outputs", |_| {});
        assert_eq!(
            f.core.truth.redis_version, "7.0.15",
            "Debian 12's 7.0.15 expected"
        );
        f
    })
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("redis-rescue-outputs-")
        .tempdir()
        .expect("create a temp dir")
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Pipes `commands` into `redis-cli --pipe` against the server on `port`; the number of
/// errors it reports.
fn redis_cli_pipe(port: u16, commands: &[u8]) -> u64 {
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli --pipe (install redis-tools)");
    let mut stdin = child.stdin.take().expect("redis-cli stdin");
    let data = commands.to_vec();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&data).expect("feed redis-cli --pipe");
    });
    let out = child.wait_with_output().expect("redis-cli --pipe");
    writer.join().expect("the feeding thread");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("errors: "))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no `errors:` line from redis-cli --pipe:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        out.status.success() || errors > 0,
        "redis-cli --pipe: {text}"
    );
    errors
}

#[test]
fn stdout_streams_the_rdb_and_writes_nothing_to_disk() {
    let f = fixture();
    let cwd = tempdir();
    // A file left by an older version's `-o -`: `-` still means stdout, the file stays.
    fs::write(cwd.path().join("-"), b"old").unwrap();
    let out = run_rescue_in(
        Some(cwd.path()),
        &[f.core.core.as_os_str(), os("-o"), os("-")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stdout.starts_with(b"REDIS0010"), "{}", describe(&out));
    assert_eq!(listing(cwd.path()), ["-"], "nothing else on disk");
    assert_eq!(fs::read(cwd.path().join("-")).unwrap(), b"old");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expected"),
        "the summary goes to stderr: {stderr}"
    );

    let dir = tempdir();
    let dump = dir.path().join("dump.rdb");
    fs::write(&dump, &out.stdout).unwrap();
    let restored = RedisServer::start_on_rdb(&f.core.binary, &dump, &[]);
    let mut conn = restored.conn();
    assert_holds_exactly(&mut conn, &f.core.truth, "the RDB streamed to stdout");
    assert_eq!(function_libraries(&mut conn), f.libraries);

    // A report only where asked, private, naming stdout and the stream's CRC.
    let report = dir.path().join("stdout.report.json");
    let out = run_rescue_in(
        Some(cwd.path()),
        &[
            f.core.core.as_os_str(),
            os("-o"),
            os("-"),
            os("--report"),
            report.as_os_str(),
            os("-q"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(listing(cwd.path()), ["-"]);
    assert_eq!(mode_of(&report), 0o600);
    let r = read_report(&report);
    assert_eq!(r["output"], "-");
    let trailer: [u8; 8] = out.stdout[out.stdout.len() - 8..].try_into().unwrap();
    assert_eq!(
        r["rdb_crc64"],
        format!("{:016x}", u64::from_le_bytes(trailer)),
        "{r}"
    );
}

#[test]
fn resp_through_redis_cli_pipe_restores_the_keyspace() {
    let f = fixture();
    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("--format"),
        os("resp"),
        os("-o"),
        os("-"),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let resp = out.stdout;
    assert!(resp.starts_with(b"*"), "RESP arrays");
    assert!(
        !resp
            .windows(10)
            .any(|w| w.eq_ignore_ascii_case(b"$4\r\nAUTH\r\n")),
        "no AUTH command"
    );
    let target = RedisServer::start(&f.core.binary, &[]);
    assert_eq!(redis_cli_pipe(target.port(), &resp), 0);
    let mut conn = target.conn();
    assert_holds_exactly(
        &mut conn,
        &f.core.truth,
        "RESTOREs through redis-cli --pipe",
    );
    assert_eq!(function_libraries(&mut conn), f.libraries);

    // Again into the same server: every key and library exists, and is refused.
    let keys: u64 = f.core.truth.dbsizes.values().sum();
    let refused = redis_cli_pipe(target.port(), &resp);
    assert_eq!(
        refused,
        keys + FUNCTION_LIBS.len() as u64,
        "BUSYKEY per key"
    );
    // With --replace they are overwritten, and the keyspace is still the source's.
    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("--format"),
        os("resp"),
        os("--replace"),
        os("-o"),
        os("-"),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(redis_cli_pipe(target.port(), &out.stdout), 0);
    assert_holds_exactly(&mut conn, &f.core.truth, "RESTORE ... REPLACE over itself");
    assert_eq!(function_libraries(&mut conn), f.libraries);
}

/// The bytes of a JSON binary-safe string: a string, or `{"base64": ...}`.
fn json_bytes(v: &Json) -> Vec<u8> {
    match v {
        Json::String(s) => s.clone().into_bytes(),
        Json::Object(o) => base64::engine::general_purpose::STANDARD
            .decode(o["base64"].as_str().expect("base64 text"))
            .expect("valid base64"),
        other => panic!("not a binary-safe string: {other}"),
    }
}

fn json_score(v: &Json) -> f64 {
    match v {
        Json::Number(n) => n.as_f64().expect("a finite score"),
        Json::String(s) if s == "inf" => f64::INFINITY,
        Json::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => panic!("not a score: {other}"),
    }
}

fn text_score(b: &[u8]) -> f64 {
    match std::str::from_utf8(b).expect("score text") {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        s => s.parse().expect("a number"),
    }
}

/// A value in a comparable shape, from the server's reply to [`queue_value_read`].
fn server_value(ty: &str, reply: &redis::Value) -> Vec<Vec<u8>> {
    let mut v = match ty {
        "string" => vec![bulk(reply)],
        "stream" => stream_entries(reply),
        "zset" => bulks(reply)
            .chunks(2)
            .map(|p| format!("{}\0{}", show(&p[0]), text_score(&p[1])).into_bytes())
            .collect(),
        "hash" => bulks(reply)
            .chunks(2)
            .map(|p| [p[0].clone(), vec![0], p[1].clone()].concat())
            .collect(),
        _ => bulks(reply),
    };
    if matches!(ty, "set" | "zset" | "hash") {
        v.sort();
    }
    v
}

/// The same shape from a JSON line's `value`.
fn json_value(ty: &str, value: &Json) -> Vec<Vec<u8>> {
    let items = |v: &Json| v.as_array().expect("an array").clone();
    let mut v: Vec<Vec<u8>> = match ty {
        "string" => vec![json_bytes(value)],
        "list" | "set" => items(value).iter().map(json_bytes).collect(),
        "zset" => items(value)
            .iter()
            .map(|p| {
                let m = json_bytes(&p[0]);
                format!("{}\0{}", show(&m), json_score(&p[1])).into_bytes()
            })
            .collect(),
        "hash" => items(value)
            .iter()
            .map(|p| [json_bytes(&p[0]), vec![0], json_bytes(&p[1])].concat())
            .collect(),
        "stream" => items(&value["entries"])
            .iter()
            .map(|e| {
                let mut out = e["id"].as_str().expect("an ID").as_bytes().to_vec();
                for pair in items(&e["fields"]) {
                    for x in items(&pair) {
                        out.push(0);
                        out.extend(json_bytes(&x));
                    }
                }
                out
            })
            .collect(),
        other => panic!("type {other}"),
    };
    if matches!(ty, "set" | "zset" | "hash") {
        v.sort();
    }
    v
}

#[test]
fn jsonl_is_one_line_per_key_with_the_servers_values() {
    let f = fixture();
    let dir = tempdir();
    let jsonl = dir.path().join("keys.jsonl");
    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("--format"),
        os("jsonl"),
        os("-o"),
        jsonl.as_os_str(),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(mode_of(&jsonl), 0o600);
    assert_eq!(mode_of(&dir.path().join("keys.jsonl.report.json")), 0o600);
    let text = fs::read_to_string(&jsonl).expect("the JSON lines are UTF-8");
    let lines: Vec<Json> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let (keys, others): (Vec<&Json>, Vec<&Json>) =
        lines.iter().partition(|l| l.get("key").is_some());
    let mut code: Vec<String> = others
        .iter()
        .map(|l| l["code"].as_str().expect("a function line").to_owned())
        .collect();
    code.sort();
    let want: Vec<String> = f.libraries.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(code, want, "one line per function library");
    let mut per_db: BTreeMap<u32, u64> = BTreeMap::new();
    let mut census: Census = BTreeMap::new();
    for k in &keys {
        let db = k["db"].as_u64().unwrap() as u32;
        *per_db.entry(db).or_default() += 1;
        *census
            .entry(db)
            .or_default()
            .entry(k["type"].as_str().unwrap().to_owned())
            .or_default()
            .entry(k["encoding"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_db, f.core.truth.dbsizes, "one line per key");
    assert_eq!(
        census, f.core.truth.dataset.census,
        "keys per db, type and encoding (the source's OBJECT ENCODING)"
    );

    // A sample: the first keys of every db × type × encoding, and every 50th line.
    let mut seen: BTreeMap<(u64, String, String), usize> = BTreeMap::new();
    let sample: Vec<&Json> = keys
        .iter()
        .enumerate()
        .filter(|(i, k)| {
            let class = (
                k["db"].as_u64().unwrap(),
                k["type"].as_str().unwrap().to_owned(),
                k["encoding"].as_str().unwrap().to_owned(),
            );
            let n = seen.entry(class).or_default();
            *n += 1;
            *n <= 3 || i % 50 == 0
        })
        .map(|(_, k)| *k)
        .collect();
    let types: std::collections::BTreeSet<&str> =
        sample.iter().map(|k| k["type"].as_str().unwrap()).collect();
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["hash", "list", "set", "stream", "string", "zset"]
    );

    // The values of the source, from a server restored from the same core.
    let dump = dir.path().join("dump.rdb");
    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("-o"),
        dump.as_os_str(),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let server = RedisServer::start_on_rdb(&f.core.binary, &dump, &[]);
    let mut conn = server.conn();
    assert_eq!(digest(&mut conn), f.core.truth.digest);
    for k in &sample {
        let db = k["db"].as_u64().unwrap();
        let key = json_bytes(&k["key"]);
        let ty = k["type"].as_str().unwrap();
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        p.cmd("TYPE").arg(&key);
        p.cmd("PEXPIRETIME").arg(&key);
        queue_value_read(&mut p, &key, ty);
        let r: Vec<redis::Value> = p.query(&mut conn).expect("read the key back");
        let what = format!("db {db} key {}", show(&key));
        assert_eq!(bulk(&r[0]), ty.as_bytes(), "{what}: TYPE");
        let ttl = k["ttl"].as_i64().unwrap_or(-1);
        assert_eq!(bulk(&r[1]), ttl.to_string().into_bytes(), "{what}: ttl");
        assert_eq!(
            json_value(ty, &k["value"]),
            server_value(ty, &r[2]),
            "{what}: value"
        );
    }
}

#[test]
fn files_are_private_unless_mode_widens_them() {
    let f = fixture();
    let dir = tempdir();
    let dump = dir.path().join("dump.rdb");
    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("-o"),
        dump.as_os_str(),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(mode_of(&dump), 0o600);
    assert_eq!(mode_of(&dir.path().join("dump.rdb.report.json")), 0o600);

    let wide = dir.path().join("wide.resp");
    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("--format"),
        os("resp"),
        os("-o"),
        wide.as_os_str(),
        os("--mode"),
        os("0640"),
        os("-q"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(mode_of(&wide), 0o640);
    assert_eq!(mode_of(&dir.path().join("wide.resp.report.json")), 0o640);

    let out = run_rescue(&[
        f.core.core.as_os_str(),
        os("-o"),
        dir.path().join("x.rdb").as_os_str(),
        os("--mode"),
        os("0999"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(!dir.path().join("x.rdb").exists());
}
