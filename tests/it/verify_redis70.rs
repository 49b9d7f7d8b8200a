//! End-to-end tests of `redis-rescue verify` on dumps recovered from real cores of Debian's
//! redis-server 7.0.15: it passes on what recovery wrote (a private server, or `--connect` to
//! one that loaded the dump), names the keys when the dump, the report and the server
//! disagree (exit 1), and refuses truncated or corrupt dumps and servers that do not hold the
//! dump (exit 2).
//!
//! Needs redis-server 7.0.15 and gdb (gcore); see tests/README.md.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::common::*;
use rdb::reader::{Entry, RdbReader, RdbValue};

/// A core of the shared dataset, recovered once: the dump and its report.
struct Recovered {
    fixture: CoreFixture,
    dir: tempfile::TempDir,
    dump: PathBuf,
    report: PathBuf,
    keys: u64,
}

static RECOVERED: OnceLock<Recovered> = OnceLock::new();

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

fn server_bin() -> PathBuf {
    find_in_path(DEFAULT_SERVER)
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("redis-rescue-verify-test-")
        .tempdir()
        .expect("create a temp dir")
}

/// Recover `core` into `dir/dump.rdb` (+ report) and return the paths.
fn recover(core: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let dump = recover_core(core, dir);
    let report = dir.join("dump.rdb.report.json");
    assert!(report.is_file(), "no report beside the dump");
    (dump, report)
}

fn recovered() -> &'static Recovered {
    RECOVERED.get_or_init(|| {
        let fixture = make_core_fixture(Path::new(DEFAULT_SERVER), "verify70");
        let dir = tempdir();
        let (dump, report) = recover(&fixture.core, dir.path());
        let keys = fixture.truth.dbsizes.values().sum();
        Recovered {
            fixture,
            dir,
            dump,
            report,
            keys,
        }
    })
}

fn verify(args: &[&OsStr]) -> Output {
    let mut all = vec![os("verify")];
    all.extend_from_slice(args);
    run_rescue(&all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify --json did not print JSON ({e})\n{}", describe(out)))
}

fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}\n{}", describe(out));
}

/// The named differences of a `--json` outcome, as "db key what" lines.
fn differences(j: &serde_json::Value) -> Vec<String> {
    j["comparison"]["first"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    format!(
                        "{} {} {}",
                        d["db"],
                        d["key"].as_str().unwrap_or("?"),
                        d["what"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn failed_checks(j: &serde_json::Value) -> Vec<String> {
    j["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["result"] == "fail")
                .map(|c| format!("{}: {} / {}", c["check"], c["expected"], c["found"]))
                .collect()
        })
        .unwrap_or_default()
}

/// The first string key of db 0 with / without an expire time.
fn pick_string_key(dump: &Path, with_ttl: bool) -> Vec<u8> {
    let r = RdbReader::new(fs::File::open(dump).expect("open")).expect("header");
    for e in r {
        let e = e.expect("read");
        if e.db == 0
            && matches!(e.value, RdbValue::String(_))
            && e.expire_ms.is_some() == with_ttl
            && e.key.is_ascii()
        {
            return e.key;
        }
    }
    panic!("no suitable string key in db 0");
}

fn file_digest(p: &Path) -> (u64, u64) {
    let b = fs::read(p).expect("read");
    (b.len() as u64, rdb::crc64(&b))
}

#[test]
fn verify_passes_on_a_recovered_dump() {
    let r = recovered();
    let before = file_digest(&r.dump);
    let listing_before: Vec<_> = fs::read_dir(r.dir.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();

    let out = verify(&[
        r.dump.as_os_str(),
        os("--redis-server"),
        server_bin().as_os_str(),
    ]);
    assert_exit(&out, 0, "verify of the recovered dump");
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "MATCH: the server loaded the dump and all {} keys match",
            r.keys
        )),
        "{text}"
    );
    for db in r.fixture.truth.dbsizes.keys() {
        assert!(
            text.contains(&format!("DBSIZE db {db}")),
            "no DBSIZE row for db {db}:\n{text}"
        );
    }
    assert!(
        text.contains("redis version") && text.contains("7.0.15 (report)"),
        "{text}"
    );

    let out = verify(&[r.dump.as_os_str(), os("--json")]);
    assert_exit(&out, 0, "verify --json with redis-server from PATH");
    let j = json(&out);
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["keys_in_dump"].as_u64(), Some(r.keys));
    assert_eq!(j["comparison"]["matched"].as_u64(), Some(r.keys), "{j:#}");
    assert_eq!(j["expire_mode"], "pexpiretime");
    assert!(failed_checks(&j).is_empty());
    assert_eq!(
        j["report"].as_str(),
        Some(r.report.to_str().expect("utf-8"))
    );
    // Report vs dump rows for every db with keys.
    let checks = j["checks"].to_string();
    for (db, n) in &r.fixture.truth.dbsizes {
        assert!(
            checks.contains(&format!("db {db}: dump vs report")),
            "{checks}"
        );
        assert!(checks.contains(&format!("{n} keys")), "{checks}");
    }

    // The user's file is untouched and nothing was left beside it.
    assert_eq!(file_digest(&r.dump), before, "verify modified the dump");
    let listing_after: Vec<_> = fs::read_dir(r.dir.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(listing_after, listing_before);
}

#[test]
fn verify_connect_to_a_server_that_loaded_the_dump() {
    let r = recovered();
    let copy_dir = tempdir();
    let copy = copy_dir.path().join("dump.rdb");
    fs::copy(&r.dump, &copy).expect("copy");
    let server = RedisServer::start_on_rdb(&server_bin(), &copy, &[]);
    let addr = format!("127.0.0.1:{}", server.port());
    let out = verify(&[r.dump.as_os_str(), os("--connect"), os(&addr)]);
    assert_exit(&out, 0, "verify --connect to a server on the dump");
    assert!(
        stdout(&out).contains("server holds this dump"),
        "{}",
        stdout(&out)
    );

    // Then change it: one key deleted, one value changed, one expire changed, one key added.
    let deleted = pick_string_key(&r.dump, false);
    let (changed, retimed) = {
        let rd = RdbReader::new(fs::File::open(&r.dump).expect("open")).expect("header");
        let strings: Vec<Entry> = rd
            .map(|e| e.expect("read"))
            .filter(|e| {
                e.db == 0
                    && e.key.is_ascii()
                    && matches!(e.value, RdbValue::String(_))
                    && e.key != deleted
            })
            .take(50)
            .collect();
        let changed = strings
            .iter()
            .find(|e| e.expire_ms.is_none())
            .expect("a persistent string")
            .key
            .clone();
        let retimed = strings
            .iter()
            .find(|e| e.key != changed)
            .expect("another string")
            .key
            .clone();
        (changed, retimed)
    };
    let mut conn = server.conn();
    let _: i64 = redis::cmd("DEL")
        .arg(&deleted)
        .query(&mut conn)
        .expect("DEL");
    let _: () = redis::cmd("SET")
        .arg(&changed)
        .arg("tampered")
        .arg("KEEPTTL")
        .query(&mut conn)
        .expect("SET");
    let _: i64 = redis::cmd("PEXPIREAT")
        .arg(&retimed)
        .arg(4_102_444_800_000i64)
        .query(&mut conn)
        .expect("PEXPIREAT");
    let _: () = redis::cmd("SET")
        .arg("not-from-the-dump")
        .arg("x")
        .query(&mut conn)
        .expect("SET");
    let out = verify(&[r.dump.as_os_str(), os("--connect"), os(&addr), os("--json")]);
    assert_exit(&out, 1, "verify --connect to a changed server");
    let diffs = differences(&json(&out));
    let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
    for want in [
        format!("0 {} missing", show(&deleted)),
        format!("0 {} value", show(&changed)),
        format!("0 {} expire", show(&retimed)),
        "0 not-from-the-dump extra".to_string(),
    ] {
        assert!(
            diffs.contains(&want),
            "{want:?} not among the differences {diffs:?}"
        );
    }
    assert_eq!(diffs.len(), 4, "{diffs:?}");

    // The human form names them too, and says why it is exit 1.
    let out = verify(&[r.dump.as_os_str(), os("--connect"), os(&addr)]);
    assert_exit(&out, 1, "verify --connect (table)");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("key {}: missing on the server", show(&deleted))),
        "{text}"
    );
    assert!(
        text.contains(&format!("key {}: value differs", show(&changed))),
        "{text}"
    );
    assert!(
        text.contains("DIFFERS: the server loaded the dump"),
        "{text}"
    );
}

#[test]
fn verify_connect_refuses_servers_without_the_dump() {
    let r = recovered();
    // An empty server.
    let empty = RedisServer::start(&server_bin(), &[]);
    let addr = format!("127.0.0.1:{}", empty.port());
    let out = verify(&[r.dump.as_os_str(), os("--connect"), os(&addr)]);
    assert_exit(&out, 2, "verify --connect to an empty server");
    assert!(
        stdout(&out).contains("the server is empty"),
        "{}",
        stdout(&out)
    );
    // A server holding something else.
    let mut conn = empty.conn();
    for i in 0..20 {
        let _: () = redis::cmd("SET")
            .arg(format!("other:{i}"))
            .arg(i)
            .query(&mut conn)
            .expect("SET");
    }
    let out = verify(&[r.dump.as_os_str(), os("--connect"), os(&addr)]);
    assert_exit(&out, 2, "verify --connect to an unrelated server");
    assert!(
        stdout(&out).contains("does not hold this dump's keyspace"),
        "{}",
        stdout(&out)
    );
    // Nobody listening.
    drop(conn);
    drop(empty);
    let out = verify(&[
        r.dump.as_os_str(),
        os("--connect"),
        os(&addr),
        os("--timeout"),
        os("1"),
    ]);
    assert_exit(&out, 2, "verify --connect to a closed port");
    assert!(stdout(&out).contains("cannot connect"), "{}", stdout(&out));
}

#[test]
fn tampered_dumps_fail_and_name_the_key() {
    let r = recovered();
    let dir = tempdir();
    let report = r.report.as_os_str();
    // A server holding the genuine dump, for --connect.
    let copy = dir.path().join("genuine.rdb");
    fs::copy(&r.dump, &copy).expect("copy");
    let server = RedisServer::start_on_rdb(&server_bin(), &copy, &[]);
    let addr = format!("127.0.0.1:{}", server.port());

    // One key removed.
    let gone = pick_string_key(&r.dump, false);
    let removed = dir.path().join("removed.rdb");
    rewrite(&r.dump, &removed, |e| !(e.db == 0 && e.key == gone));
    let out = verify(&[removed.as_os_str(), os("--report"), report, os("--json")]);
    assert_exit(&out, 1, "a dump missing a key, against its report");
    let j = json(&out);
    let failed = failed_checks(&j);
    assert!(
        failed.iter().any(|f| f.contains("db 0: dump vs report")),
        "{failed:?}"
    );
    let out = verify(&[
        removed.as_os_str(),
        os("--report"),
        report,
        os("--connect"),
        os(&addr),
        os("--json"),
    ]);
    assert_exit(
        &out,
        1,
        "a dump missing a key, against a server holding the genuine dump",
    );
    let diffs = differences(&json(&out));
    let name = String::from_utf8_lossy(&gone).into_owned();
    assert!(diffs.contains(&format!("0 {name} extra")), "{diffs:?}");

    // One value changed.
    let victim = pick_string_key(&r.dump, false);
    let changed = dir.path().join("changed.rdb");
    rewrite(&r.dump, &changed, |e| {
        if e.db == 0 && e.key == victim {
            e.value = RdbValue::String(b"tampered value".to_vec());
        }
        true
    });
    let out = verify(&[
        changed.as_os_str(),
        os("--report"),
        report,
        os("--connect"),
        os(&addr),
        os("--json"),
    ]);
    assert_exit(&out, 1, "a dump with a changed value");
    let j = json(&out);
    let victim_name = String::from_utf8_lossy(&victim).into_owned();
    assert_eq!(differences(&j), vec![format!("0 {victim_name} value")]);
    let first = &j["comparison"]["first"][0];
    assert!(
        first["expected"]
            .as_str()
            .unwrap_or("")
            .contains("tampered value"),
        "{first:#}"
    );

    // One expire changed.
    let timed = pick_string_key(&r.dump, true);
    let retimed = dir.path().join("retimed.rdb");
    rewrite(&r.dump, &retimed, |e| {
        if e.db == 0 && e.key == timed {
            e.expire_ms = e.expire_ms.map(|t| t + 3_600_000);
        }
        true
    });
    let out = verify(&[
        retimed.as_os_str(),
        os("--report"),
        report,
        os("--connect"),
        os(&addr),
        os("--json"),
    ]);
    assert_exit(&out, 1, "a dump with a changed expire time");
    let timed_name = String::from_utf8_lossy(&timed).into_owned();
    assert_eq!(
        differences(&json(&out)),
        vec![format!("0 {timed_name} expire")]
    );

    // A report that records the dump's CRC-64 catches any rewrite, even loaded alone.
    let mut rep: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&r.report).expect("report")).expect("json");
    let genuine = fs::read(&r.dump).expect("dump");
    let crc = u64::from_le_bytes(genuine[genuine.len() - 8..].try_into().expect("8 bytes"));
    rep["rdb_crc64"] = serde_json::Value::String(format!("{crc:016x}"));
    let rep_path = dir.path().join("with-crc.report.json");
    fs::write(&rep_path, rep.to_string()).expect("write report");
    let out = verify(&[r.dump.as_os_str(), os("--report"), rep_path.as_os_str()]);
    assert_exit(&out, 0, "the genuine dump against a report with its CRC");
    let out = verify(&[
        changed.as_os_str(),
        os("--report"),
        rep_path.as_os_str(),
        os("--json"),
    ]);
    assert_exit(
        &out,
        1,
        "a rewritten dump against a report with the genuine CRC",
    );
    let failed = failed_checks(&json(&out));
    assert!(failed.iter().any(|f| f.contains("CRC-64")), "{failed:?}");
}

#[test]
fn a_dump_from_another_core_fails() {
    let r = recovered();
    // Another server with other data: a different keyspace.
    let other = RedisServer::start(&server_bin(), &[]);
    let mut conn = other.conn();
    for i in 0..300 {
        let _: () = redis::cmd("SET")
            .arg(format!("elsewhere:{i}"))
            .arg(i)
            .query(&mut conn)
            .expect("SET");
    }
    let _: i64 = redis::cmd("RPUSH")
        .arg("elsewhere:list")
        .arg(&["a", "b"][..])
        .query(&mut conn)
        .expect("RPUSH");
    let dir = tempdir();
    let core = gcore(&other, dir.path());
    drop(conn);
    drop(other);
    let (dump2, _report2) = recover(&core, dir.path());
    let _ = fs::remove_file(&core);

    // The other core's dump with the first core's report.
    let out = verify(&[
        dump2.as_os_str(),
        os("--report"),
        r.report.as_os_str(),
        os("--json"),
    ]);
    assert_exit(&out, 1, "another core's dump with this report");
    let failed = failed_checks(&json(&out));
    for db in r.fixture.truth.dbsizes.keys() {
        assert!(
            failed
                .iter()
                .any(|f| f.contains(&format!("db {db}: dump vs report"))),
            "db {db} not named: {failed:?}"
        );
    }
    // And against a server holding the first dump: not this keyspace.
    let copy = dir.path().join("first.rdb");
    fs::copy(&r.dump, &copy).expect("copy");
    let server = RedisServer::start_on_rdb(&server_bin(), &copy, &[]);
    let addr = format!("127.0.0.1:{}", server.port());
    let out = verify(&[
        dump2.as_os_str(),
        os("--report"),
        r.report.as_os_str(),
        os("--connect"),
        os(&addr),
    ]);
    assert_exit(
        &out,
        2,
        "another core's dump against a server holding the first",
    );
}

#[test]
fn truncated_and_corrupt_dumps_exit_2() {
    let r = recovered();
    let dir = tempdir();
    let bytes = fs::read(&r.dump).expect("dump");
    for (name, cut) in [
        ("half", bytes.len() / 2),
        ("tail", bytes.len() - 5),
        ("header", 12),
    ] {
        let p = dir.path().join(format!("{name}.rdb"));
        fs::write(&p, &bytes[..cut]).expect("write");
        let out = verify(&[p.as_os_str(), os("--report"), r.report.as_os_str()]);
        assert_exit(&out, 2, &format!("a dump cut at {cut} ({name})"));
        let text = stdout(&out);
        assert!(
            text.contains("truncated"),
            "our reader must say truncated:\n{text}"
        );
        assert!(
            text.contains("server log:"),
            "the server's log must be shown:\n{text}"
        );
        assert!(text.contains("NOT VERIFIED"), "{text}");
    }
    let mut flipped = bytes.clone();
    let at = bytes.len() / 3;
    flipped[at] ^= 0x10;
    let p = dir.path().join("flipped.rdb");
    fs::write(&p, &flipped).expect("write");
    let out = verify(&[
        p.as_os_str(),
        os("--report"),
        r.report.as_os_str(),
        os("--json"),
    ]);
    assert_exit(&out, 2, "a dump with a flipped byte");
    let j = json(&out);
    assert_eq!(j["loaded"], false);
    let log = j["server_log"].as_str().unwrap_or("");
    assert!(
        log.contains("checksum") || log.contains("CRC") || log.contains("RDB"),
        "server log: {log}"
    );
    assert!(
        j["checks"].to_string().contains("checksum mismatch")
            || j["checks"].to_string().contains("corrupt"),
        "{j:#}"
    );
}

#[test]
fn sample_compares_n_random_keys() {
    let r = recovered();
    let out = verify(&[
        r.dump.as_os_str(),
        os("--sample"),
        os("100"),
        os("--seed"),
        os("42"),
        os("--json"),
    ]);
    assert_exit(&out, 0, "verify --sample 100");
    let j = json(&out);
    assert_eq!(j["sample"]["chosen"].as_u64(), Some(100));
    assert_eq!(j["sample"]["seed"].as_u64(), Some(42));
    let c = &j["comparison"];
    assert_eq!(
        c["compared"].as_u64().unwrap_or(0) + c["expired"].as_u64().unwrap_or(0),
        100,
        "{c:#}"
    );
    let out = verify(&[
        r.dump.as_os_str(),
        os("--sample"),
        os("100"),
        os("--seed"),
        os("42"),
    ]);
    assert!(
        stdout(&out).contains("sample: 100 random keys of"),
        "{}",
        stdout(&out)
    );
}

/// With no container engine answering, `--docker` prints the commands for the report's
/// version and exits 2 (nothing was verified); tests/it/verify_docker.rs runs it on an engine.
#[test]
fn docker_prints_the_compose_commands_for_the_dumps_version() {
    let r = recovered();
    let dir = tempdir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redis-rescue"))
        .args([os("verify"), r.dump.as_os_str(), os("--docker")])
        .env(
            "DOCKER_HOST",
            format!("unix://{}", dir.path().join("none.sock").display()),
        )
        .output()
        .expect("run verify");
    assert_exit(&out, 2, "verify --docker without an engine");
    let text = stdout(&out);
    let abs = fs::canonicalize(&r.dump).expect("canonical");
    assert!(
        text.contains(&format!(
            "REDIS_IMAGE=redis:7.0.15 DUMP={} PORT=6390 docker compose",
            abs.display()
        )),
        "{text}"
    );
    assert!(text.contains("docker/compose.yml up -d"), "{text}");
    assert!(
        text.contains(&format!(
            "redis-rescue verify {} --connect 127.0.0.1:6390",
            abs.display()
        )),
        "{text}"
    );
    assert!(text.contains(" down"), "{text}");
}

/// The README's sample core (no binary needed), recovered and verified.
#[test]
fn verify_passes_on_the_shipped_sample_core() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample-7.0.15.core.zst");
    let dir = tempdir();
    let dump = dir.path().join("sample.rdb");
    let out = run_rescue(&[
        core.as_os_str(),
        os("--no-binary"),
        os("-o"),
        dump.as_os_str(),
        os("-q"),
    ]);
    assert_exit(&out, 0, "recovery of the sample core");
    let out = verify(&[dump.as_os_str(), os("--json")]);
    assert_exit(&out, 0, "verify of the sample core's dump");
    let j = json(&out);
    assert_eq!(j["comparison"]["matched"].as_u64(), Some(3636), "{j:#}");
    assert!(j["report"]
        .as_str()
        .is_some_and(|r| r.ends_with("sample.rdb.report.json")));
}
