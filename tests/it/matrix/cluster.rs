//! Valkey 9 in cluster mode with several databases (`--cluster-databases 4`, new in Valkey
//! 9): a single-node cluster serving every slot, dbs 0 and 2 filled with the mixed dataset
//! (every type and encoding, TTLs, field TTLs, streams with groups in db 0, functions),
//! dbs 1 and 3 never used (NULL in `server.db`, asserted with gdb; every db's kvstore has
//! 16384 hashtables). The gcore core is recovered with `--no-binary` and with `--binary`,
//! and each dump restored into a fresh single-node cluster of the same build with the same
//! settings (it claims the slots its keys are in while loading; the test assigns the rest
//! and waits for `cluster_state:ok`), which must match the source: DEBUG DIGEST, DBSIZE per
//! db, expires per db, PEXPIRETIME of every TTL key, HPEXPIRETIME of every field of the
//! hashes with field TTLs, XINFO STREAM FULL, FUNCTION LIST WITHCODE.
//!
//! DEBUG HTSTATS prints nothing in cluster mode (seen on 9.1.2), so the report's per-db
//! `rehashing` flags are not checked here.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redis::Connection;

use super::build::{Build, Generation};
use super::fill::{fill_dbs, FillOptions, Filled};
use super::flow::rdb_magic;
use super::oracle::assert_field_ttls;
use super::truth::{
    assert_unused_dbs_null, expiries, field_ttls, function_list, used_dbsizes, FieldTtls,
};
use crate::common::{
    assert_report_matches, check_rdb, cluster_info, describe, gcore, keyspace_info, probe_streams,
    read_report, run_rescue, select, show, snippet, stream_differences, Dataset, RedisServer,
    RemoveOnDrop, StreamProbe, Truth,
};

/// `--cluster-databases`.
const CLUSTER_DBS: usize = 4;
/// The dbs filled, with their number of bulk keys; dbs 1 and 3 are never used.
const FILLED_DBS: [(u32, u32); 2] = [(0, 1500), (2, 800)];
/// Slots of a cluster.
const SLOTS: usize = 16384;

fn log(build: &Build, msg: &str) {
    eprintln!("[{} cluster] {msg}", build.name);
}

/// A free loopback port for the cluster bus: by default it is the client port + 10000, and
/// a server refuses to start in cluster mode on a client port above 55535 (the harness picks
/// client ports up to 60999).
fn bus_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

fn cluster_args(conf: &Path) -> Vec<String> {
    vec![
        "--cluster-port".into(),
        bus_port().to_string(),
        "--activerehashing".into(),
        "no".into(),
        "--cluster-enabled".into(),
        "yes".into(),
        "--cluster-databases".into(),
        CLUSTER_DBS.to_string(),
        "--cluster-config-file".into(),
        conf.to_str().expect("UTF-8 path").into(),
    ]
}

fn start_cluster_node(build: &Build, conf: &Path, rdb: Option<&Path>) -> RedisServer {
    let args = cluster_args(conf);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match rdb {
        Some(rdb) => RedisServer::start_version_on_rdb(&build.server, build.name, rdb, &args),
        None => RedisServer::start_version(&build.server, build.name, &args),
    }
}

/// Make the single node serve every slot it does not serve yet (from `CLUSTER NODES`), and
/// wait for `cluster_state:ok`. Returns how many slots it already served.
fn serve_all_slots(server: &RedisServer, what: &str) -> usize {
    let mut conn = server.conn();
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut conn)
        .expect("CLUSTER NODES");
    let myself = nodes
        .lines()
        .find(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|f| f.contains("myself"))
        })
        .unwrap_or_else(|| panic!("{what}: no `myself` line in CLUSTER NODES:\n{nodes}"));
    let mut served = vec![false; SLOTS];
    for tok in myself.split_whitespace().skip(8) {
        let (a, b) = tok.split_once('-').unwrap_or((tok, tok));
        let (a, b): (usize, usize) = (
            a.parse()
                .unwrap_or_else(|_| panic!("{what}: slot {tok:?} in {myself:?}")),
            b.parse()
                .unwrap_or_else(|_| panic!("{what}: slot {tok:?} in {myself:?}")),
        );
        served[a..=b].iter_mut().for_each(|s| *s = true);
    }
    let already = served.iter().filter(|s| **s).count();
    let mut ranges = Vec::new();
    let mut slot = 0;
    while slot < SLOTS {
        if served[slot] {
            slot += 1;
            continue;
        }
        let start = slot;
        while slot < SLOTS && !served[slot] {
            slot += 1;
        }
        ranges.push((start, slot - 1));
    }
    if !ranges.is_empty() {
        let mut c = redis::cmd("CLUSTER");
        c.arg("ADDSLOTSRANGE");
        for (a, b) in &ranges {
            c.arg(*a).arg(*b);
        }
        c.exec(&mut conn).unwrap_or_else(|e| {
            panic!(
                "{what}: CLUSTER ADDSLOTSRANGE ({} ranges): {e}",
                ranges.len()
            )
        });
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let state = cluster_info(&mut conn, "cluster_state");
        let assigned = cluster_info(&mut conn, "cluster_slots_assigned");
        if state.as_deref() == Some("ok") && assigned.as_deref() == Some("16384") {
            return already;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the single-node cluster is not ok 15 s after serving every slot: cluster_state {state:?}, cluster_slots_assigned {assigned:?}\n--- log ---\n{}",
            server.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a server holds, as the test compares it (the source's, when its core was taken, is
/// the truth).
struct Observed {
    digest: String,
    dbsizes: BTreeMap<u32, u64>,
    expires: BTreeMap<u32, u64>,
    /// PEXPIRETIME of every TTL key, in `filled.ttl_keys` order.
    expiries: Vec<(u32, Vec<u8>, i64)>,
    field_ttls: Vec<FieldTtls>,
    streams: Vec<StreamProbe>,
    functions: Vec<String>,
}

/// Read what a server holds (the source and a restored server alike); SELECTs only dbs with
/// keys.
fn observe(conn: &mut Connection, build: &Build, filled: &Filled, what: &str) -> Observed {
    let expiries = expiries(conn, build, &filled.ttl_keys)
        .into_iter()
        .map(|e| (e.db, e.key, e.lo))
        .collect();
    let streams = probe_streams(conn, &filled.streams, true);
    let field_ttls = field_ttls(conn, &filled.field_ttl_hashes);
    let functions = function_list(conn);
    let digest: String = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(conn)
        .unwrap_or_else(|e| panic!("{what}: DEBUG DIGEST: {e}"));
    let dbsizes = used_dbsizes(conn);
    let expires = keyspace_info(conn)
        .into_iter()
        .map(|(db, (_, e))| (db, e))
        .collect();
    Observed {
        digest,
        dbsizes,
        expires,
        expiries,
        field_ttls,
        streams,
        functions,
    }
}

/// Valkey 9 in cluster mode: the whole test for the build `name`.
pub fn cluster_matrix(name: &'static str) {
    let started = Instant::now();
    let build = Build::locate(name);
    assert_eq!(
        build.generation(),
        Generation::Valkey9,
        "{name}: several databases in cluster mode are Valkey 9's"
    );
    let work = tempfile::Builder::new()
        .prefix(&format!("cluster-{}-", build.tag()))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create the test's work dir");
    let source = start_cluster_node(&build, &work.path().join("nodes-source.conf"), None);
    let mut conn = source.conn();
    let served = serve_all_slots(&source, "source");
    assert_eq!(served, 0, "a fresh node serves no slot");
    let dbs: String = redis::cmd("CONFIG")
        .arg("GET")
        .arg("cluster-databases")
        .query::<Vec<String>>(&mut conn)
        .expect("CONFIG GET cluster-databases")
        .get(1)
        .cloned()
        .unwrap_or_default();
    assert_eq!(dbs, CLUSTER_DBS.to_string(), "cluster-databases");
    let err = redis::cmd("SELECT")
        .arg(CLUSTER_DBS)
        .exec(&mut conn)
        .expect_err("SELECT past cluster-databases must fail");
    assert!(
        err.to_string().contains("out of range"),
        "SELECT {CLUSTER_DBS}: {err}"
    );

    let filled = fill_dbs(
        &source,
        &build,
        &FILLED_DBS,
        FillOptions {
            compress_lists: true,
            vectorsets: false,
        },
    );
    let fill_time = started.elapsed();
    let truth = observe(&mut conn, &build, &filled, "source");
    let want_dbs: Vec<u32> = FILLED_DBS.iter().map(|(db, _)| *db).collect();
    assert_eq!(
        truth.dbsizes.keys().copied().collect::<Vec<_>>(),
        want_dbs,
        "{}: dbs with keys on the source",
        build.name
    );
    assert!(
        truth.expiries.iter().all(|(_, _, t)| *t > 0)
            && !truth.field_ttls.is_empty()
            && !truth.streams.is_empty(),
        "{}: the dataset should have TTLs, field TTLs and streams",
        build.name
    );
    assert_eq!(
        truth.functions.len(),
        2,
        "{}: FUNCTION LIST {:#?}",
        build.name,
        truth.functions
    );
    // Last, right before the core: dbs 1 and 3 never used.
    let (null_note, dbnum) = assert_unused_dbs_null(&source, &build, &truth.dbsizes);
    assert_eq!(
        dbnum, CLUSTER_DBS,
        "{}: server.dbnum in cluster mode is cluster-databases",
        build.name
    );
    let core = gcore(&source, work.path());
    let _remove_core = RemoveOnDrop(core.clone());
    log(
        &build,
        &format!(
            "{} keys in dbs {:?} (cluster-databases {CLUSTER_DBS}); {null_note}; digest {}; fill {fill_time:.1?}, core after {:.1?}",
            truth.dbsizes.values().sum::<u64>(),
            truth.dbsizes,
            truth.digest,
            started.elapsed()
        ),
    );

    let bin = build.binary.to_str().expect("UTF-8 path").to_string();
    let runs: [(&str, Vec<&str>, Option<&Path>); 2] = [
        (
            "(a) --no-binary: the shipped profile found by build-id",
            vec!["--no-binary"],
            None,
        ),
        (
            "(b) --binary: symbols from the binary, the shipped profile found by build-id",
            vec!["--binary", &bin],
            Some(build.binary.as_path()),
        ),
    ];
    let mut failures = Vec::new();
    for (i, (label, args, binary)) in runs.iter().enumerate() {
        let dir = work.path().join(format!("run{i}"));
        fs::create_dir(&dir).expect("create the run dir");
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            recover_and_restore(&build, &truth, &filled, &core, &dir, label, args, *binary)
        }));
        if let Err(payload) = run {
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{label}:\n{text}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cluster: {} of 2 recoveries failed:\n\n{}",
        build.name,
        failures.len(),
        failures.join("\n\n")
    );
    log(&build, &format!("PASS in {:.1?}", started.elapsed()));
}

/// One redis-rescue run on the core, its report, and its dump restored into a fresh
/// single-node cluster.
#[allow(clippy::too_many_arguments)]
fn recover_and_restore(
    build: &Build,
    truth: &Observed,
    filled: &Filled,
    core: &Path,
    dir: &Path,
    label: &str,
    args: &[&str],
    binary: Option<&Path>,
) {
    let started = Instant::now();
    let rdb = dir.join("dump.rdb");
    let mut all: Vec<&OsStr> = vec![core.as_os_str(), "-o".as_ref(), rdb.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    let out = run_rescue(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} cluster {label}: every key should be recovered\n{}",
        build.name,
        describe(&out)
    );
    let report = read_report(&dir.join("dump.rdb.report.json"));

    // The report: per-db counts and census (its rehashing flags taken as they are: DEBUG
    // HTSTATS says nothing in cluster mode), RDB 80, the source.
    let rehashing: BTreeMap<u32, bool> = truth
        .dbsizes
        .keys()
        .map(|db| {
            (
                *db,
                report["dbs"][db.to_string()]["rehashing"]
                    .as_bool()
                    .unwrap_or(false),
            )
        })
        .collect();
    let common = Truth {
        redis_version: build.name.to_string(),
        digest: truth.digest.clone(),
        dbsizes: truth.dbsizes.clone(),
        expires: truth.expires.clone(),
        pexpiretimes: Vec::new(),
        rehashing,
        streams: truth.streams.clone(),
        dataset: Dataset {
            ttl_keys: filled.ttl_keys.clone(),
            rehashing_db: u32::MAX,
            census: filled.census.clone(),
            streams: filled.streams.clone(),
        },
    };
    assert_report_matches(&report, &common);
    // As in the matrix: every entry of the 16384 hashtables per db checked against its bucket.
    let bucket_check = &report["bucket_check"];
    assert!(
        bucket_check["on"].as_bool() == Some(true),
        "{} cluster {label}: bucket_check is {bucket_check:?}",
        build.name
    );
    let header = fs::read(&rdb)
        .ok()
        .and_then(|b| b.get(0..9).map(|h| String::from_utf8_lossy(h).into_owned()));
    assert_eq!(
        (report["rdb_version"].as_u64(), header),
        (Some(80), Some(rdb_magic(80))),
        "{} cluster {label}: report rdb_version and the file's header",
        build.name
    );
    let source = &report["source"];
    assert_eq!(
        (
            source["build_id"].as_str(),
            source["profile"].as_str(),
            source["binary"]
                .as_str()
                .map(|b| fs::canonicalize(b).unwrap_or_else(|_| PathBuf::from(b))),
        ),
        (
            Some(build.build_id.as_str()),
            Some(build.name),
            binary.map(|b| fs::canonicalize(b).expect("canonical binary path")),
        ),
        "{} cluster {label}: source.build_id, .profile, .binary:\n{}",
        build.name,
        snippet(&source.to_string(), 2000)
    );
    let (keys, expires) = check_rdb(&build.checker, &rdb);
    assert_eq!(
        (keys, expires),
        (
            truth.dbsizes.values().sum::<u64>(),
            truth.expires.values().sum::<u64>()
        ),
        "{} cluster {label}: (keys, expires) valkey-check-rdb read vs the source",
        build.name
    );

    // A fresh single-node cluster with the same settings, on the dump.
    let what = format!("{} cluster {label}, restored", build.name);
    let restored = start_cluster_node(build, &dir.join("nodes-restored.conf"), Some(&rdb));
    let claimed = serve_all_slots(&restored, &what);
    let mut conn = restored.conn();
    let got = observe(&mut conn, build, filled, &what);
    for db in 0..CLUSTER_DBS as u32 {
        select(&mut conn, db);
        let n: u64 = redis::cmd("DBSIZE").query(&mut conn).expect("DBSIZE");
        assert_eq!(
            n,
            truth.dbsizes.get(&db).copied().unwrap_or(0),
            "{what}: DBSIZE of db {db}"
        );
    }
    select(&mut conn, 0);
    assert_eq!(
        (&got.dbsizes, &got.expires),
        (&truth.dbsizes, &truth.expires),
        "{what}: DBSIZE and INFO keyspace expires per db (left) vs the source (right)"
    );
    let wrong: Vec<String> = truth
        .expiries
        .iter()
        .zip(&got.expiries)
        .filter(|(w, g)| w != g)
        .map(|((db, key, w), (_, _, g))| format!("db {db} {}: source {w}, restored {g}", show(key)))
        .collect();
    assert!(
        wrong.is_empty() && truth.expiries.len() == got.expiries.len(),
        "{what}: PEXPIRETIME of {} of {} TTL keys differ:\n{}",
        wrong.len(),
        truth.expiries.len(),
        wrong.join("\n")
    );
    assert_field_ttls(build, &truth.field_ttls, &got.field_ttls, &what);
    let diffs = stream_differences(&truth.streams, &got.streams);
    assert!(
        diffs.is_empty(),
        "{what}: streams differ (XINFO STREAM FULL COUNT 0):\n{}",
        snippet(&diffs.join("\n\n"), 6000)
    );
    assert_eq!(
        got.functions, truth.functions,
        "{what}: FUNCTION LIST WITHCODE (left) vs the source (right)"
    );
    assert_eq!(
        got.digest, truth.digest,
        "{what}: DEBUG DIGEST (left) vs the source (right)"
    );
    let fields: usize = truth.field_ttls.iter().map(|h| h.fields.len()).sum();
    log(
        build,
        &format!(
            "{label}: recovered and restored in {:.1?} (the restored node claimed {claimed} slots while loading): DEBUG DIGEST {}, DBSIZE {:?} and expires equal; PEXPIRETIME of {} keys, HPEXPIRETIME of {fields} fields of {} hashes, {} streams' XINFO STREAM FULL, {} function libraries equal",
            started.elapsed(),
            got.digest,
            got.dbsizes,
            truth.expiries.len(),
            truth.field_ttls.len(),
            truth.streams.len(),
            truth.functions.len()
        ),
    );
}
