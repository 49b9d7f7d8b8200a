//! `verify`: load a recovered dump into a real Redis and prove it holds what the recovery
//! report says was recovered.
//!
//! The steps, each a row of the [`Outcome`]:
//!
//! 1. read the report beside the dump (`DUMP.report.json`); without one, the dump is verified
//!    alone and a warning says so;
//! 2. read the whole dump with [`rdb::reader`] (structure and CRC-64), summed up per db and
//!    compared with the report's per-db key, TTL and type counts;
//! 3. start a redis-server on a private copy of the dump ([`server::LocalServer`]) and wait
//!    for the load, or connect to a running one and check that it holds this keyspace;
//! 4. compare the server's version with the report's, `DBSIZE` per db with the dump's counts,
//!    then every key (or `--sample N` random ones) with [`compare::Comparer`]: type, expire
//!    time, value.
//!
//! Exit status ([`Outcome::exit_code`]): 0 everything matches; 1 the server loaded the dump
//! but something differs; 2 the server did not load it (or verify could not run).

pub mod compare;
pub mod container;
pub mod docker;
pub mod dump;
pub mod engine;
mod on_server;
pub mod output;
pub mod report;
pub mod server;

use on_server::verify_on_server;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdb::reader::Checksum;
use serde::Serialize;

use compare::{now_ms, CompareStats, ExpireMode};
use dump::{DumpError, DumpSummary};
use report::{RecoveryReport, ReportError};
use server::{LocalServer, StartOutcome};

/// Which server to verify against.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start this redis-server binary on a private copy of the dump.
    Start(PathBuf),
    /// Use a running server (`HOST:PORT` or a `redis://` URL).
    Connect(String),
    /// Run the bundled compose file on a container engine.
    Container(ContainerTarget),
}

/// The engine and compose tool `--docker` found, and the image asked for.
#[derive(Debug, Clone)]
pub struct ContainerTarget {
    /// The engine that answered.
    pub engine: engine::Engine,
    /// `docker compose` or `docker-compose`.
    pub tool: container::ComposeTool,
    /// `--image`; `None`: the official image of the dump's version.
    pub image: Option<String>,
}

/// What to verify, and how.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The recovered RDB.
    pub dump: PathBuf,
    /// The report; `None` means `DUMP.report.json` (and no report at all is tolerated).
    pub report: Option<PathBuf>,
    /// The server.
    pub target: Target,
    /// Compare this many random keys instead of all.
    pub sample: Option<u64>,
    /// Seed of the sample (random when `None`).
    pub seed: Option<u64>,
    /// How long the server may take to start and load.
    pub timeout: Duration,
    /// Differences listed by name.
    pub max_listed: usize,
    /// Accept a server version other than the report's.
    pub allow_version_mismatch: bool,
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    /// As expected.
    Ok,
    /// Differs: the exit status is at least 1.
    Fail,
    /// Worth knowing, not a failure.
    Warn,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked.
    pub check: String,
    /// What the report or the dump says.
    pub expected: String,
    /// What was found.
    pub found: String,
    /// The verdict.
    pub result: CheckResult,
}

/// The container of a `--docker` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerRun {
    /// The engine that ran it (`Podman Engine 4.3.1`) and where it listens.
    pub engine: String,
    /// The compose tool.
    pub compose: String,
    /// The compose project's name.
    pub project: String,
    /// The image.
    pub image: String,
    /// Its id on the engine.
    pub image_id: Option<String>,
    /// From `up` to the dump loaded.
    pub up_seconds: Option<f64>,
    /// `down`, and what it left.
    pub teardown: container::Teardown,
}

/// The sample taken with `--sample`.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Keys asked for.
    pub requested: u64,
    /// Keys chosen (at most the dump's keys).
    pub chosen: u64,
    /// The seed, to repeat the same sample.
    pub seed: u64,
}

/// Everything verify found; printed as a table or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The dump.
    pub dump: String,
    /// The report used, if any.
    pub report: Option<String>,
    /// `started` (a private redis-server), `connected` or `container` (`--docker`).
    pub mode: String,
    /// The server's address.
    pub server: Option<String>,
    /// With `--docker`: the engine, image and compose project, and what was left behind.
    pub container: Option<ContainerRun>,
    /// The server's version.
    pub server_version: Option<String>,
    /// Whether the server holds the dump (loaded it, or was found holding it).
    pub loaded: bool,
    /// The server's log lines explaining a failed load.
    pub server_log: Option<String>,
    /// The rows of the table.
    pub checks: Vec<Check>,
    /// Keys in the dump.
    pub keys_in_dump: u64,
    /// The sample, with `--sample`.
    pub sample: Option<Sample>,
    /// How expire times were compared.
    pub expire_mode: Option<ExpireMode>,
    /// The key comparison.
    pub comparison: CompareStats,
    /// Warnings.
    pub warnings: Vec<String>,
    /// 0 match, 1 differs, 2 not loaded / not verified.
    pub exit_code: u8,
    /// One line.
    pub verdict: String,
}

impl Outcome {
    fn new(opts: &VerifyOptions) -> Self {
        Outcome {
            dump: opts.dump.display().to_string(),
            report: None,
            mode: match opts.target {
                Target::Start(_) => "started".into(),
                Target::Connect(_) => "connected".into(),
                Target::Container(_) => "container".into(),
            },
            server: None,
            container: None,
            server_version: None,
            loaded: false,
            server_log: None,
            checks: Vec::new(),
            keys_in_dump: 0,
            sample: None,
            expire_mode: None,
            comparison: CompareStats::default(),
            warnings: Vec::new(),
            exit_code: 0,
            verdict: String::new(),
        }
    }

    fn check(
        &mut self,
        check: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
        result: CheckResult,
    ) {
        self.checks.push(Check {
            check: check.into(),
            expected: expected.into(),
            found: found.into(),
            result,
        });
    }

    fn ok_if(
        &mut self,
        ok: bool,
        check: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) {
        let r = if ok {
            CheckResult::Ok
        } else {
            CheckResult::Fail
        };
        self.check(check, expected, found, r);
    }

    /// Ends the run with exit status 2.
    fn not_verified(mut self, why: impl Into<String>) -> Self {
        self.mark_not_verified(why);
        self
    }

    /// The server (`who`) did not load the dump: the failed row, its log, exit 2.
    fn load_failed(&mut self, who: &str, status: String, log_excerpt: String) {
        self.check(
            "server loaded the dump",
            "loaded",
            status.clone(),
            CheckResult::Fail,
        );
        self.server_log = Some(log_excerpt);
        self.mark_not_verified(format!("{who} did not load the dump: {status}"));
    }

    fn mark_not_verified(&mut self, why: impl Into<String>) {
        self.exit_code = 2;
        self.verdict = format!("NOT VERIFIED: {}", why.into());
    }

    fn conclude(mut self) -> Self {
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.result == CheckResult::Fail && c.check != KEYS_CHECK)
            .map(|c| c.check.clone())
            .collect();
        let c = &self.comparison;
        if failed.is_empty() && c.differing == 0 {
            self.exit_code = 0;
            let what = match &self.sample {
                Some(_) => format!("{} sampled keys of {}", c.matched, self.keys_in_dump),
                None => format!("all {} keys", c.matched),
            };
            let expired = if c.expired > 0 {
                format!(" ({} more had expired)", c.expired)
            } else {
                String::new()
            };
            self.verdict = format!("MATCH: the server loaded the dump and {what} match{expired}");
        } else {
            self.exit_code = 1;
            let mut parts = Vec::new();
            if !failed.is_empty() {
                parts.push(format!("failed: {}", failed.join(", ")));
            }
            if c.differing > 0 {
                let first = c
                    .first
                    .first()
                    .map(|d| format!(" (first: db {} key {}, {})", d.db, d.key, d.what))
                    .unwrap_or_default();
                parts.push(format!("{} key(s) differ{first}", c.differing));
            }
            self.verdict = format!(
                "DIFFERS: the server loaded the dump, but {}",
                parts.join("; ")
            );
        }
        self
    }
}

/// Name of the key-by-key row.
const KEYS_CHECK: &str = "keys: type, expire, value";

/// The Redis version a dump is for: the report's source version, else the dump's
/// `redis-ver` AUX field (read from the header only).
pub fn redis_version_of(dump: &Path, report: Option<&Path>) -> Option<String> {
    let path = report.map_or_else(|| default_report_path(dump), Path::to_path_buf);
    if let Some(v) = RecoveryReport::load(&path)
        .ok()
        .and_then(|r| r.server_version())
    {
        return Some(v);
    }
    let mut reader = dump::open(dump).ok()?;
    // AUX fields come before the first key.
    let _ = reader.next_entry();
    dump::version_of(&reader)
}

/// Where the report of `dump` is by default.
pub fn default_report_path(dump: &Path) -> PathBuf {
    PathBuf::from(format!("{}.report.json", dump.display()))
}

/// SplitMix64, for the sample.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => ((u128::from(self.next()) * u128::from(n)) >> 64) as u64,
            None => self.next(),
        }
    }
}

/// `n` distinct indices out of `0..total`, sorted (Floyd's algorithm).
pub fn choose_sample(n: u64, total: u64, seed: u64) -> Vec<u64> {
    let n = n.min(total);
    let mut rng = SplitMix(seed);
    let mut set = HashSet::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 24));
    for j in (total - n)..total {
        let t = rng.upto(j);
        if !set.insert(t) {
            set.insert(j);
        }
    }
    let mut v: Vec<u64> = set.into_iter().collect();
    v.sort_unstable();
    v
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    SplitMix(t ^ u64::from(std::process::id()).rotate_left(32)).next()
}

fn types_text(types: &BTreeMap<String, u64>) -> String {
    types
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS.get(u).copied().unwrap_or("B"))
    }
}

/// Report vs dump: versions, per-db keys, TTLs and types, the recorded checksum.
fn check_report_against_dump(o: &mut Outcome, r: &RecoveryReport, s: &DumpSummary) {
    if r.rdb_version != 0 {
        o.ok_if(
            r.rdb_version == s.rdb_version,
            "RDB version",
            format!("{} (report)", r.rdb_version),
            format!("{} (dump)", s.rdb_version),
        );
    }
    if let Some(want) = r.crc64() {
        let got = match s.checksum {
            Checksum::Verified(c) => Some(c),
            _ => None,
        };
        o.ok_if(
            got == Some(want),
            "dump is the report's file (CRC-64)",
            format!("{want:016x}"),
            got.map_or("no checksum".into(), |c| format!("{c:016x}")),
        );
    }
    let dbs: BTreeSet<u32> = r
        .dbs
        .iter()
        .filter(|(_, d)| d.keys > 0)
        .map(|(db, _)| *db)
        .chain(s.dbs.keys().copied())
        .collect();
    for db in dbs {
        let rd = r.dbs.get(&db).cloned().unwrap_or_default();
        let sd = s.dbs.get(&db).cloned().unwrap_or_default();
        let rt = rd.types();
        let counts_ok = rd.keys == sd.keys && rd.expires == sd.expires;
        // Reports without by_type (older tools) are not held against the dump.
        let types_ok = rt.is_empty() || rt == sd.types;
        o.ok_if(
            counts_ok && types_ok,
            format!("db {db}: dump vs report"),
            format!("{} keys, {} TTLs (report)", rd.keys, rd.expires),
            format!("{} keys, {} TTLs (dump)", sd.keys, sd.expires),
        );
        if counts_ok && !types_ok {
            o.check(
                format!("db {db}: types"),
                types_text(&rt),
                types_text(&sd.types),
                CheckResult::Fail,
            );
        }
    }
    let lost = r.lost();
    if lost > 0 {
        o.warnings.push(format!(
            "the report lists {lost} key(s) as lost: they are not in the dump, so not verified"
        ));
    }
}

/// Runs a verification. Never panics; every failure is in the outcome.
pub fn run(opts: &VerifyOptions) -> Outcome {
    let mut o = Outcome::new(opts);

    // 1. The report.
    let report_path = opts
        .report
        .clone()
        .unwrap_or_else(|| default_report_path(&opts.dump));
    let report = match RecoveryReport::load(&report_path) {
        Ok(r) => {
            o.report = Some(report_path.display().to_string());
            Some(r)
        }
        Err(ReportError::Read { source, .. })
            if opts.report.is_none() && source.kind() == std::io::ErrorKind::NotFound =>
        {
            o.warnings.push(format!(
                "no report at {}: verifying the dump alone (DBSIZE against the dump's own counts)",
                report_path.display()
            ));
            None
        }
        Err(e) => return o.not_verified(e.to_string()),
    };
    if report.as_ref().is_some_and(|r| r.dry_run) {
        return o.not_verified("the report is of a dry run, which writes no dump");
    }

    // 2. The dump, whole.
    let summary = match dump::scan(&opts.dump, now_ms()) {
        Ok(s) => {
            let crc = match s.checksum {
                Checksum::Verified(c) => format!("CRC-64 {c:016x} ok"),
                Checksum::Disabled => "checksum disabled (0)".into(),
                Checksum::Absent => "no checksum (RDB < 5)".into(),
            };
            o.check(
                "dump readable",
                "a complete RDB",
                format!(
                    "RDB {}, {} keys, {}, {crc}",
                    s.rdb_version,
                    s.keys,
                    human_bytes(s.bytes)
                ),
                CheckResult::Ok,
            );
            o.keys_in_dump = s.keys;
            if s.functions > 0 {
                o.warnings.push(format!(
                    "the dump holds {} function librar(ies); they are loaded but not compared",
                    s.functions
                ));
            }
            Ok(s)
        }
        Err(DumpError::Open { path, source }) => {
            return o.not_verified(format!("cannot open {path}: {source}"))
        }
        Err(e @ DumpError::Read { .. }) => {
            o.check(
                "dump readable",
                "a complete RDB",
                e.to_string(),
                CheckResult::Fail,
            );
            Err(e)
        }
    };
    if let (Some(r), Ok(s)) = (&report, &summary) {
        check_report_against_dump(&mut o, r, s);
    }

    // 3. The server.
    let mut local: Option<LocalServer> = None;
    let mut container: Option<container::Project> = None;
    let mut conn = match &opts.target {
        Target::Start(binary) => {
            let Some(path) = server::find_binary(binary) else {
                return o.not_verified(format!(
                    "{} not found (give --redis-server PATH, or --connect HOST:PORT)",
                    binary.display()
                ));
            };
            match LocalServer::start(&path, &opts.dump, opts.timeout) {
                Err(e) => return o.not_verified(e.to_string()),
                Ok(StartOutcome::Failed {
                    status,
                    log_excerpt,
                }) => {
                    o.load_failed(&path.display().to_string(), status, log_excerpt);
                    return o;
                }
                Ok(StartOutcome::Loaded { server, elapsed }) => {
                    o.server = Some(server.address());
                    o.loaded = true;
                    o.check(
                        "server loaded the dump",
                        "loaded",
                        format!(
                            "loaded in {:.2} s by {}",
                            elapsed.as_secs_f64(),
                            path.display()
                        ),
                        CheckResult::Ok,
                    );
                    match server.connection() {
                        Ok(c) => {
                            local = Some(server);
                            c
                        }
                        Err(e) => return o.not_verified(e.to_string()),
                    }
                }
            }
        }
        Target::Connect(addr) => {
            o.server = Some(addr.clone());
            let c = server::connect(addr, opts.timeout)
                .and_then(|mut c| server::wait_loaded(&mut c, opts.timeout).map(|()| c));
            match c {
                Ok(c) => c,
                Err(e) => return o.not_verified(e.to_string()),
            }
        }
        Target::Container(target) => {
            let version = report
                .as_ref()
                .and_then(RecoveryReport::server_version)
                .or_else(|| redis_version_of(&opts.dump, None));
            let Some(image) = container::image_for(target.image.as_deref(), version.as_deref())
            else {
                return o.not_verified(
                    "the dump's server version is unknown (no report, no redis-ver AUX \
                     field): pass --image",
                );
            };
            match start_container(&mut o, target, &image, opts) {
                Some(p) => match server::connect(&p.address(), Duration::from_secs(5)) {
                    Ok(c) => {
                        container = Some(p);
                        c
                    }
                    Err(e) => {
                        finish_container(&mut o, p);
                        return o.not_verified(e.to_string());
                    }
                },
                None => return o,
            }
        }
    };
    // From here on a container is taken down before returning (verify_on_server never
    // returns early past this point).
    let mut o = verify_on_server(o, opts, report.as_ref(), summary, &mut conn);
    drop(conn);
    if let Some(s) = local {
        s.stop();
    }
    if let Some(p) = container {
        finish_container(&mut o, p);
    }
    o
}

/// Starts the compose project of `--docker` and records it in `o`; `None` (with `o`
/// concluded as not verified) when no server came up with the dump loaded.
fn start_container(
    o: &mut Outcome,
    target: &ContainerTarget,
    image: &str,
    opts: &VerifyOptions,
) -> Option<container::Project> {
    let (engine, tool) = (&target.engine, &target.tool);
    let mut run = ContainerRun {
        engine: format!("{} at {}", engine.name, engine.host),
        compose: tool.name(),
        image: image.to_owned(),
        ..ContainerRun::default()
    };
    let started = container::Project::start(engine, tool, image, &opts.dump, opts.timeout);
    match started {
        Err(e) => {
            o.container = Some(run);
            o.mark_not_verified(e.to_string());
            None
        }
        Ok(container::ContainerStart::Failed {
            status,
            log_excerpt,
            teardown,
        }) => {
            run.image_id = engine.image_id(image).ok().flatten();
            run.teardown = teardown;
            o.container = Some(run);
            o.load_failed("the container", status, log_excerpt);
            None
        }
        Ok(container::ContainerStart::Loaded { project, elapsed }) => {
            run.project = project.name().to_owned();
            run.image_id = engine.image_id(image).ok().flatten();
            run.up_seconds = Some(elapsed.as_secs_f64());
            o.server = Some(project.address());
            o.loaded = true;
            o.check(
                "server loaded the dump",
                "loaded",
                format!(
                    "loaded in {:.2} s (compose up included) by a container of {image}",
                    elapsed.as_secs_f64()
                ),
                CheckResult::Ok,
            );
            o.container = Some(run);
            Some(project)
        }
    }
}

/// Takes the project down and records what it left; leftovers are a warning.
fn finish_container(o: &mut Outcome, mut p: container::Project) {
    let t = p.teardown();
    if !t.leftovers.is_empty() {
        o.warnings.push(format!(
            "the compose project {} left behind: {}",
            p.name(),
            t.leftovers.join(", ")
        ));
    } else if let Some(e) = &t.error {
        o.warnings.push(format!("compose down: {e}"));
    }
    if let Some(run) = o.container.as_mut() {
        run.teardown = t;
    }
}

#[cfg(test)]
mod tests;
