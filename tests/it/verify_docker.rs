//! `docker/compose.yml` and `verify --docker`, run for real on a container engine (Podman
//! with its Docker-compatible socket, started by `.ci/run`; images built locally by
//! `.ci/build-images.sh`, since no registry is reachable):
//! - the file's structure, `docker-compose config`, and its command run by a plain `sh`;
//! - `verify --docker --image` on dumps recovered from real cores of Debian 12's 7.0.15, a
//!   Redis 8 build (8.2.3) and a Valkey build (9.1.2), each taken down with nothing left;
//! - a 2.8.17 image (no `protected-mode` option) and images without `/data`;
//! - exit 1 naming the key on a tampered dump, 2 on a corrupt one, 130 on SIGINT with the
//!   project taken down;
//! - with no engine answering, the printed commands and exit 2.
//!
//! Needs the engine: `.ci/run` starts it (`podman system service`) and exports DOCKER_HOST.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
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
    let tmpfs: Vec<&str> = match s.get("tmpfs") {
        Some(Value::Sequence(t)) => t.iter().map(str_of).collect(),
        other => panic!("no tmpfs list: {other:?}"),
    };
    assert_eq!(
        tmpfs,
        ["/data"],
        "/data must be a tmpfs (made even when the image lacks it)"
    );
    assert_eq!(str_of(&s["environment"]["SERVER"]), "${SERVER:-}");
    let ep = entrypoint();
    assert_eq!(ep[..2], ["sh".to_string(), "-c".to_string()]);
    let script = &ep[2];
    assert!(
        script.contains("cp /rescue/dump.rdb /data/dump.rdb && exec $$srv "),
        "{script}"
    );
    for arg in [
        "--dir /data",
        "--dbfilename dump.rdb",
        "--appendonly no",
        "--save ''",
        "pm=\"--protected-mode no\"",
        "*\" v=2.\"* | *\" v=3.0.\"* | *\" v=3.1.\"*) pm=\"\"",
        "command -v valkey-server",
    ] {
        assert!(script.contains(arg), "{arg} missing from {script}");
    }
    // Every `$` is doubled: compose interpolates single ones.
    assert!(!script.replace("$$", "").contains('$'), "{script}");
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
fn compose_config_validates() {
    let tool = compose_tool().expect(
        "neither `docker compose` nor `docker-compose` runs: apt-get install docker-compose",
    );
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

/// The container's command, run here by a plain `sh` (as compose hands it over, `$$` as
/// `$`): `/rescue/dump.rdb` and `/data` mapped to temporary directories, a free loopback
/// port appended. Then `verify --connect` must pass, and the
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
        .replace("$$", "$")
        .replace("/rescue/dump.rdb", dump.to_str().expect("utf-8"))
        .replace("/data", data.to_str().expect("utf-8"));
    let script = format!("{script} --port {port} --bind 127.0.0.1 --daemonize no --logfile ''");
    let log = fs::File::create(tmp.path().join("server.log")).expect("log");
    let mut child = Command::new(&ep[0])
        .arg(&ep[1])
        .arg(&script)
        .env("SERVER", find_in_path(DEFAULT_SERVER))
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

// ---- On a real engine -------------------------------------------------------------------

/// The images `.ci/build-images.sh` builds.
const IMAGE_7_0_15: &str = "localhost/redis-rescue-ci/redis:7.0.15";
const IMAGE_8_2_3: &str = "localhost/redis-rescue-ci/redis:8.2.3";
const IMAGE_VALKEY_9_1_2: &str = "localhost/redis-rescue-ci/valkey:9.1.2";
const IMAGE_2_8_17: &str = "localhost/redis-rescue-ci/redis:2.8.17";

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// `podman ARGS` output; the engine must answer (the test fails, it is not skipped).
fn podman(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(args)
        .output()
        .expect("podman runs (.ci/run installs it)");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The engine answers and has `image` (built by .ci/build-images.sh).
fn require_image(image: &str) {
    let out = Command::new("podman")
        .args(["image", "exists", image])
        .status()
        .expect("podman runs (.ci/run installs it)");
    assert!(
        out.success(),
        "image {image} is missing: run .ci/build-images.sh (after .ci/provision-redis8.sh)"
    );
}

/// What a compose project left: its containers (any state) and networks.
fn leftovers(project: &str) -> Vec<String> {
    assert!(
        project.starts_with("redis-rescue-verify-"),
        "project {project:?}"
    );
    let label = format!("label=com.docker.compose.project={project}");
    let mut v: Vec<String> = podman(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
        .lines()
        .map(|l| format!("container {l}"))
        .collect();
    v.extend(
        podman(&["network", "ls", "--filter", &label, "--format", "{{.Name}}"])
            .lines()
            .map(|l| format!("network {l}")),
    );
    v.extend(
        podman(&["volume", "ls", "--filter", &label, "--format", "{{.Name}}"])
            .lines()
            .map(|l| format!("volume {l}")),
    );
    v
}

/// `verify DUMP --docker ARGS --json`: (exit code, outcome).
fn verify_docker(dump: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec![os("verify"), dump.as_os_str(), os("--docker")];
    all.extend(args.iter().map(os));
    all.push(os("--json"));
    let out = run_rescue(&all);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify --json did not print JSON ({e})\n{}", describe(&out)));
    (out.status.code().unwrap_or(-1), j, describe(&out))
}

/// The outcome says `down` ran cleanly and left nothing of the project.
fn assert_taken_down(j: &serde_json::Value, what: &str) {
    let t = &j["container"]["teardown"];
    assert_eq!(t["down_ok"], true, "{what}: {j:#}");
    assert_eq!(t["leftovers"], serde_json::json!([]), "{what}: {j:#}");
}

/// The container part of an outcome is complete and the project is gone.
fn assert_container_run(j: &serde_json::Value, image: &str, what: &str) {
    let c = &j["container"];
    assert_eq!(c["image"], image, "{what}: {c:#}");
    let id = c["image_id"].as_str().unwrap_or("");
    let want = podman(&["image", "inspect", "--format", "{{.Id}}", image]);
    assert!(
        !id.is_empty() && want.trim().ends_with(id.trim_start_matches("sha256:")),
        "{what}: image id {id:?}, engine says {want:?}"
    );
    assert_taken_down(j, what);
    let project = c["project"].as_str().unwrap_or("");
    assert_eq!(
        leftovers(project),
        Vec::<String>::new(),
        "{what}: left behind"
    );
}

/// A dump saved by a real `binary` of `version` after `fill`, copied into `dir`.
fn saved_dump(
    binary: &Path,
    version: &str,
    dir: &Path,
    fill: impl FnOnce(&mut redis::Connection),
) -> PathBuf {
    let src = RedisServer::start_version(binary, version, &[]);
    let mut conn = src.conn();
    fill(&mut conn);
    let _: () = redis::cmd("SAVE").query(&mut conn).expect("SAVE");
    let dump = dir.join("dump.rdb");
    fs::copy(src.dir().join("dump.rdb"), &dump).expect("copy the dump");
    dump
}

/// One string key.
fn one_key(conn: &mut redis::Connection) {
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("1")
        .query(conn)
        .expect("SET");
}

/// Fills dbs 0 and 2 of a Redis 8 or Valkey 9 server with every type in its compact and
/// large encodings, TTLs on every tenth key and per-field TTLs on some hashes; returns the
/// number of keys.
fn fill_mixed(conn: &mut redis::Connection) -> u64 {
    let mut total = 0;
    for db in [0u32, 2] {
        select(conn, db);
        let mut p = redis::pipe();
        for i in 0..3000u32 {
            match i % 3 {
                0 => p.cmd("SET").arg(format!("i:{i}")).arg(i * 7919),
                1 => p.cmd("SET").arg(format!("s:{i}")).arg(format!("v-{i}")),
                _ => p
                    .cmd("SET")
                    .arg(format!("r:{i}"))
                    .arg(pseudo_random_bytes(u64::from(i), 100)),
            };
        }
        for i in 0..300u32 {
            let n = if i == 0 { 600 } else { 5 };
            let items: Vec<String> = (0..n).map(|j| format!("e{j}-{i}")).collect();
            p.cmd("RPUSH").arg(format!("l:{i}")).arg(&items);
            let ints: Vec<u32> = (0..n).map(|j| j * 3 + i).collect();
            p.cmd("SADD").arg(format!("si:{i}")).arg(&ints);
            p.cmd("SADD").arg(format!("ss:{i}")).arg(&items);
            let scored: Vec<(f64, &String)> = items
                .iter()
                .enumerate()
                .map(|(j, m)| (j as f64 * 1.5 - 3.0, m))
                .collect();
            p.cmd("ZADD").arg(format!("z:{i}")).arg(&scored);
            let fields: Vec<(&String, usize)> =
                items.iter().enumerate().map(|(j, m)| (m, j)).collect();
            p.cmd("HSET").arg(format!("h:{i}")).arg(&fields);
            if i % 7 == 0 {
                p.cmd("HPEXPIRE")
                    .arg(format!("h:{i}"))
                    .arg(7_200_000)
                    .arg("FIELDS")
                    .arg(1)
                    .arg(format!("e0-{i}"));
            }
        }
        for j in 0..50 {
            p.cmd("XADD").arg("stream").arg("*").arg("n").arg(j);
        }
        for i in (0..3000u32).step_by(10) {
            p.cmd("PEXPIRE").arg(format!("i:{i}")).arg(3_600_000);
        }
        let _: redis::Value = p.query(conn).expect("fill");
        total += redis::cmd("DBSIZE").query::<u64>(conn).expect("DBSIZE");
    }
    total
}

/// A real core (gcore) of a provisioned Redis 8 or Valkey build filled by [`fill_mixed`]:
/// (directory holding it, core, keys).
fn mixed_core(binary: &Path, version: &str, tag: &str) -> (tempfile::TempDir, PathBuf, u64) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("redis-rescue-{tag}-"))
        .tempdir()
        .expect("tempdir");
    let server = RedisServer::start_version(binary, version, &[]);
    let mut conn = server.conn();
    let keys = fill_mixed(&mut conn);
    let core = gcore(&server, dir.path());
    drop(conn);
    drop(server);
    (dir, core, keys)
}

/// A real core of `binary` (the shared dataset for 7.0.15, [`fill_mixed`] for later
/// versions), recovered, verified in a container of `image`: exit 0, every key matched, the
/// server of the report's version, nothing left.
fn core_verifies_in(binary: &Path, version: &str, tag: &str, image: &str) {
    require_image(image);
    let (_fixture, _mixed, core, keys) = if version == "7.0.15" {
        let f = make_core_fixture(binary, tag);
        let keys: u64 = f.truth.dbsizes.values().sum();
        let core = f.core.clone();
        (Some(f), None, core, keys)
    } else {
        let (d, core, keys) = mixed_core(binary, version, tag);
        (None, Some(d), core, keys)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = recover_core(&core, dir.path());
    let started = Instant::now();
    let (code, j, text) = verify_docker(&dump, &["--image", image]);
    eprintln!(
        "{tag}: verify --docker took {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        j["verdict"]
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(j["mode"], "container");
    assert_eq!(j["comparison"]["matched"].as_u64(), Some(keys), "{j:#}");
    assert_container_run(&j, image, tag);
}

#[test]
fn docker_verifies_a_7_0_15_core() {
    core_verifies_in(
        &find_in_path(DEFAULT_SERVER),
        "7.0.15",
        "docker70",
        IMAGE_7_0_15,
    );
}

#[test]
fn docker_verifies_a_redis_8_2_3_core() {
    core_verifies_in(
        &provisioned_binary("8.2.3"),
        "8.2.3",
        "docker82",
        IMAGE_8_2_3,
    );
}

#[test]
fn docker_verifies_a_valkey_9_1_2_core() {
    core_verifies_in(
        &provisioned_binary("valkey-9.1.2"),
        "valkey-9.1.2",
        "dockervk91",
        IMAGE_VALKEY_9_1_2,
    );
}

/// A dump saved by a real 2.8.17 (which does not know `protected-mode`: the compose file
/// must not pass it) loads in a 2.8.17 image and verifies.
#[test]
fn docker_verifies_a_2_8_17_dump() {
    require_image(IMAGE_2_8_17);
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = provisioned_binary("2.8.17");
    let dump = saved_dump(&binary, "2.8.17", dir.path(), |conn| {
        for i in 0..300 {
            let _: () = redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg(i)
                .query(conn)
                .expect("SET");
        }
        let _: i64 = redis::cmd("SADD")
            .arg("s")
            .arg(&["a", "b"][..])
            .query(conn)
            .expect("SADD");
    });
    let (code, j, text) = verify_docker(&dump, &["--image", IMAGE_2_8_17]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(j["server_version"], "2.8.17", "{j:#}");
    assert_eq!(j["comparison"]["matched"].as_u64(), Some(301), "{j:#}");
    assert_container_run(&j, IMAGE_2_8_17, "2.8.17");
}

/// A recovered 7.0.15 dump, tampered two ways: a set emptied (the server drops an empty key
/// on load: exit 1 naming it), and a flipped byte (the server refuses the file: exit 2 with
/// its log). Both projects are taken down.
#[test]
fn docker_names_the_key_of_a_tampered_dump_and_refuses_a_corrupt_one() {
    require_image(IMAGE_7_0_15);
    let fixture = make_core_fixture(&find_in_path(DEFAULT_SERVER), "dockertamper");
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = recover_core(&fixture.core, dir.path());

    let tampered = dir.path().join("tampered.rdb");
    let mut victim = None;
    rewrite(&dump, &tampered, |e| {
        if victim.is_none() && e.db == 0 && e.expire_ms.is_none() {
            if let rdb::reader::RdbValue::Set(members) = &mut e.value {
                members.clear();
                victim = Some(e.key.clone());
            }
        }
        true
    });
    let victim = String::from_utf8_lossy(&victim.expect("a set in db 0")).into_owned();
    let (code, j, text) = verify_docker(&tampered, &["--image", IMAGE_7_0_15]);
    assert_eq!(code, 1, "{text}");
    let first = &j["comparison"]["first"][0];
    assert_eq!(first["db"], 0, "{j:#}");
    assert_eq!(first["key"], victim.as_str(), "{j:#}");
    assert_container_run(&j, IMAGE_7_0_15, "tampered");

    let mut bytes = fs::read(&dump).expect("read");
    let at = bytes.len() / 3;
    bytes[at] ^= 0x10;
    let corrupt = dir.path().join("corrupt.rdb");
    fs::write(&corrupt, &bytes).expect("write");
    let (code, j, text) = verify_docker(&corrupt, &["--image", IMAGE_7_0_15]);
    assert_eq!(code, 2, "{text}");
    assert_eq!(j["loaded"], false, "{j:#}");
    let log = j["server_log"].as_str().unwrap_or("");
    assert!(
        log.contains("checksum") || log.contains("CRC") || log.contains("RDB"),
        "the container's log must say why: {log}"
    );
    assert!(
        j["verdict"].as_str().unwrap_or("").contains("container"),
        "{j:#}"
    );
    // The project never became ready, yet it is down.
    assert_taken_down(&j, "corrupt");
}

/// An image the engine does not have and cannot pull: exit 2, the image named, nothing left.
#[test]
fn docker_with_a_missing_image_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = saved_dump(&find_in_path(DEFAULT_SERVER), "7.0.15", dir.path(), one_key);
    let image = "localhost/redis-rescue-ci/no-such-image:0.0.1";
    let (code, j, text) = verify_docker(&dump, &["--image", image]);
    assert_eq!(code, 2, "{text}");
    assert!(
        j["verdict"]
            .as_str()
            .unwrap_or("")
            .contains("not on this engine"),
        "{j:#}"
    );
    assert_taken_down(&j, "missing image");
}

/// SIGINT while the container holds the dump: the tool takes the project down and exits
/// 130. The dump is large enough (400,000 keys) that the comparison outlasts the signal.
#[test]
fn docker_sigint_takes_the_project_down() {
    require_image(IMAGE_7_0_15);
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = saved_dump(
        &find_in_path(DEFAULT_SERVER),
        "7.0.15",
        dir.path(),
        |conn| {
            let _: () = redis::cmd("DEBUG")
                .arg("POPULATE")
                .arg(400_000)
                .query(conn)
                .expect("DEBUG POPULATE");
        },
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_redis-rescue"))
        .args([
            os("verify"),
            dump.as_os_str(),
            os("--docker"),
            os("--image"),
            os(IMAGE_7_0_15),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn verify");
    let prefix = format!("redis-rescue-verify-{}-", child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    let project = loop {
        let running = podman(&[
            "ps",
            "--filter",
            "status=running",
            "--format",
            "{{index .Labels \"com.docker.compose.project\"}}",
        ]);
        if let Some(p) = running.lines().find(|l| l.starts_with(&prefix)) {
            break p.to_owned();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("verify ended ({status}) before its container ran");
        }
        assert!(Instant::now() < deadline, "no container of {prefix}* ran");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Let the server load, so the comparison is under way.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {err}");
    assert!(
        err.contains(&project),
        "the interruption names the project: {err}"
    );
    assert_eq!(
        leftovers(&project),
        Vec::<String>::new(),
        "left behind after SIGINT"
    );
}

/// No engine answering (DOCKER_HOST names a socket nobody serves): the commands are printed
/// for the report's version, nothing was verified (exit 2).
#[test]
fn docker_without_an_engine_prints_the_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = saved_dump(&find_in_path(DEFAULT_SERVER), "7.0.15", dir.path(), one_key);
    let out = Command::new(env!("CARGO_BIN_EXE_redis-rescue"))
        .args([os("verify"), dump.as_os_str(), os("--docker")])
        .env(
            "DOCKER_HOST",
            format!("unix://{}", dir.path().join("no-engine.sock").display()),
        )
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let dump_s = dump.to_str().expect("utf-8");
    assert!(
        text.contains(&format!("REDIS_IMAGE=redis:7.0.15 DUMP={dump_s}")),
        "{text}"
    );
    assert!(
        text.contains(" up -d\n") && text.contains(" down -v --remove-orphans\n"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "redis-rescue verify {dump_s} --connect 127.0.0.1:6390"
    )));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no container engine answered") && err.contains("nothing was verified"),
        "{err}"
    );
}
