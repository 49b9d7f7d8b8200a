//! `docker/compose.yml`, checked without a Docker engine: its structure (the image variable
//! with the 7.0.15 default, the dump mounted read-only and required, the port published on
//! loopback only, persistence off), `docker compose config` / `docker-compose config` when
//! one of them is installed, and the container's command line run for real against the local
//! redis-server (same version as the default image), followed by `verify --connect`.

mod common;

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_norway::Value;

fn compose_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/compose.yml")
}

fn compose() -> Value {
    let text = fs::read_to_string(compose_path()).expect("read docker/compose.yml");
    serde_norway::from_str(&text).expect("docker/compose.yml is YAML")
}

fn service() -> Value {
    let c = compose();
    let services = c.get("services").expect("services");
    let Value::Mapping(m) = services else {
        panic!("services is not a mapping")
    };
    assert_eq!(m.len(), 1, "exactly one service");
    services.get("redis").expect("a `redis` service").clone()
}

fn str_of(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("{v:?} is not a string"))
}

/// The entrypoint, as the list compose runs.
fn entrypoint() -> Vec<String> {
    let s = service();
    let Some(Value::Sequence(ep)) = s.get("entrypoint") else {
        panic!("entrypoint is not a list: {s:?}")
    };
    ep.iter().map(|v| str_of(v).to_owned()).collect()
}

#[test]
fn compose_file_structure() {
    let s = service();
    assert_eq!(str_of(&s["image"]), "${REDIS_IMAGE:-redis:7.0.15}");
    let Some(Value::Sequence(volumes)) = s.get("volumes") else {
        panic!("no volumes")
    };
    assert_eq!(volumes.len(), 1);
    let v = &volumes[0];
    assert_eq!(str_of(&v["type"]), "bind");
    assert!(
        str_of(&v["source"]).starts_with("${DUMP:?"),
        "DUMP must be required: {v:?}"
    );
    assert_eq!(str_of(&v["target"]), "/rescue/dump.rdb");
    assert_eq!(
        v["read_only"].as_bool(),
        Some(true),
        "the dump is mounted read-only"
    );
    let Some(Value::Sequence(ports)) = s.get("ports") else {
        panic!("no ports")
    };
    assert!(!ports.is_empty());
    for p in ports {
        let p = str_of(p);
        assert!(
            p.starts_with("127.0.0.1:"),
            "port {p} is not published on loopback only"
        );
        assert!(p.ends_with(":6379"), "{p}");
    }
    let ep = entrypoint();
    assert_eq!(ep[..2], ["sh".to_string(), "-c".to_string()]);
    let script = &ep[2];
    assert!(
        script.starts_with("cp /rescue/dump.rdb /data/dump.rdb && exec redis-server "),
        "{script}"
    );
    for arg in [
        "--dir /data",
        "--dbfilename dump.rdb",
        "--appendonly no",
        "--save ''",
    ] {
        assert!(script.contains(arg), "{arg} missing from {script}");
    }
    // No `$` left for compose to interpolate in the command.
    assert!(!script.contains('$'), "{script}");
}

/// `docker compose` (v2 plugin) or `docker-compose` (v1), whichever runs.
fn compose_tool() -> Option<Vec<&'static str>> {
    for cmd in [vec!["docker", "compose"], vec!["docker-compose"]] {
        let ok = Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(cmd);
        }
    }
    None
}

#[test]
fn compose_config_validates_when_a_compose_tool_is_installed() {
    let Some(tool) = compose_tool() else {
        eprintln!(
            "neither `docker compose` nor `docker-compose` is installed: the file's structure \
             is still checked by compose_file_structure (apt-get install docker-compose for this check)"
        );
        return;
    };
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(tool[0]);
        c.args(&tool[1..])
            .arg("-f")
            .arg(compose_path())
            .arg("config")
            .env_remove("DUMP")
            .env_remove("REDIS_IMAGE")
            .env_remove("PORT");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run compose config")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.rdb");
    fs::write(&dump, b"REDIS0010\xff").expect("write");
    let dump_s = dump.to_str().expect("utf-8");
    let out = run(&[
        ("DUMP", dump_s),
        ("REDIS_IMAGE", "redis:2.8.17"),
        ("PORT", "6391"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{tool:?} config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("image: redis:2.8.17"), "{text}");
    assert!(
        text.contains("127.0.0.1") && text.contains("6391"),
        "{text}"
    );
    assert!(text.contains(dump_s), "{text}");
    let out = run(&[("DUMP", dump_s)]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("image: redis:7.0.15"));
    // DUMP is required.
    let out = run(&[]);
    assert!(!out.status.success(), "config without DUMP must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DUMP"), "the error must name DUMP: {err}");
}

/// The container's command, run here: `/rescue/dump.rdb` and `/data` mapped to temporary
/// directories, a free loopback port appended. Then `verify --connect` must pass, and the
/// read-only dump must be untouched.
#[test]
fn compose_command_loads_the_dump_and_verify_connect_passes() {
    // A real dump: a 7.0 server with a few keys of each type, saved.
    let src = RedisServer::start(&find_in_path(DEFAULT_SERVER), &[]);
    let mut conn = src.conn();
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut conn)
            .expect("SET");
    }
    let _: i64 = redis::cmd("RPUSH")
        .arg("list")
        .arg(&["a", "b", "c"][..])
        .query(&mut conn)
        .expect("RPUSH");
    let _: i64 = redis::cmd("HSET")
        .arg("hash")
        .arg(&["f", "v"][..])
        .query(&mut conn)
        .expect("HSET");
    let _: i64 = redis::cmd("PEXPIRE")
        .arg("k1")
        .arg(86_400_000)
        .query(&mut conn)
        .expect("PEXPIRE");
    let _: () = redis::cmd("SAVE").query(&mut conn).expect("SAVE");
    let tmp = tempfile::tempdir().expect("tempdir");
    let rescue = tmp.path().join("rescue");
    let data = tmp.path().join("data");
    fs::create_dir_all(&rescue).expect("mkdir");
    fs::create_dir_all(&data).expect("mkdir");
    let dump = rescue.join("dump.rdb");
    fs::copy(src.dir().join("dump.rdb"), &dump).expect("copy");
    drop(conn);
    drop(src);
    let mut perms = fs::metadata(&dump).expect("stat").permissions();
    perms.set_readonly(true);
    fs::set_permissions(&dump, perms).expect("chmod");
    let before = fs::read(&dump).expect("read");

    let ep = entrypoint();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let script = ep[2]
        .replace("/rescue/dump.rdb", dump.to_str().expect("utf-8"))
        .replace("/data", data.to_str().expect("utf-8"));
    let script = format!("{script} --port {port} --bind 127.0.0.1 --daemonize no --logfile ''");
    let log = fs::File::create(tmp.path().join("server.log")).expect("log");
    let mut child = Command::new(&ep[0])
        .arg(&ep[1])
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone"))
        .stderr(log)
        .spawn()
        .expect("run the compose command");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the compose command exited ({status}):\n{}",
                tail_of(&tmp.path().join("server.log"), 20)
            );
        }
        assert!(
            Instant::now() < deadline,
            "the compose command's server never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr = format!("127.0.0.1:{port}");
    let out = run_rescue(&[
        "verify".as_ref(),
        dump.as_os_str(),
        "--connect".as_ref(),
        addr.as_ref(),
        "--json".as_ref(),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["comparison"]["matched"].as_u64(), Some(202), "{j:#}");
    assert_eq!(
        fs::read(&dump).expect("read"),
        before,
        "the read-only dump changed"
    );
    assert!(
        data.join("dump.rdb").is_file(),
        "the dump was not copied into the data directory"
    );
}
