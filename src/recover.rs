//! One recovery, end to end: open the core, match the binary, choose the profile, find
//! `server`, walk, and write the RDB atomically with its report.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::binary::{BinaryError, Executable};
use crate::core::input::{open_core, InputError};
use crate::core::{CoreError, CoreFile, ExecutableInCore};
use crate::profile::{self, Layout, ProfileError};
use crate::recording::Recording;
use crate::report::{
    BucketCheckNote, EvictionNote, FunctionsLost, FunctionsLostKind, Report, ReportBuilder, Source,
};
use crate::sink::{CountingSink, SinkError};
use crate::walker::{KeyspaceWalker, WalkError, WalkOptions};

mod calibrate;
mod choose;

use calibrate::calibrate_bucket_check;
use choose::{choose_profile, static_offset, Chosen};

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The core file (plain or `.zst`).
    pub core: PathBuf,
    /// Read this live process instead of a core (`--pid`).
    pub pid: Option<i32>,
    /// With `pid`: read the process while it runs instead of stopping it (`--no-freeze`).
    pub no_freeze: bool,
    /// How the core's page cache is prepared for the walk (`--keep-page-cache`: left as it
    /// is).
    pub page_cache: crate::core::page_cache::CachePolicy,
    /// RDB to write; `None` with `dry_run`.
    pub output: Option<PathBuf>,
    /// Binary given with `--binary`.
    pub binary: Option<PathBuf>,
    /// Use no binary: symbols from the profile.
    pub no_binary: bool,
    /// `--profile NAME|PATH`.
    pub profile: Option<String>,
    /// Derive the layout from the binary's DWARF even when a shipped profile matches.
    pub derive: bool,
    /// Walk and count only.
    pub dry_run: bool,
    /// Overwrite the output, accept a build-id mismatch.
    pub force: bool,
    /// Where progress of long work goes (silent by default; the binary draws bars).
    pub progress: crate::progress::ProgressHandle,
    /// RDB version to write instead of the one the source server writes.
    pub rdb_version: Option<u32>,
    /// How damaged keys are treated (`--salvage`, `--timeout`).
    pub walk: crate::walker::WalkOptions,
    /// Do not check dict entries against their buckets (`--no-bucket-check`).
    pub no_bucket_check: bool,
    /// Format, file mode and RESTORE behaviour of the output (`--format`, `--mode`,
    /// `--replace`).
    pub output_options: crate::output::OutputOptions,
}

/// A recovery that produced nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// Bad combination of options.
    #[error("{0}")]
    Usage(String),
    /// The output exists, or could not be opened, written or moved into place.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// The core could not be opened.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The live process (`--pid`) could not be stopped or read.
    #[error(transparent)]
    Live(#[from] crate::live::LiveError),
    /// A bundle (`redis-rescue bundle`'s archive) is damaged, incomplete or cannot be
    /// unpacked.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// The core is not a usable core.
    #[error("{path}: {source}")]
    Core {
        /// The core.
        path: PathBuf,
        /// What is wrong.
        source: CoreError,
    },
    /// The binary could not be used.
    #[error(transparent)]
    Binary(#[from] BinaryError),
    /// The binary is not the one that was dumped.
    #[error("build-id mismatch: the core's executable has build-id {core}, {binary} has {found}; pass the binary that produced the core (--force to use it anyway)")]
    BuildIdMismatch {
        /// Build-id in the core.
        core: String,
        /// The binary.
        binary: String,
        /// Its build-id.
        found: String,
    },
    /// No profile could be chosen or it is unusable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Nothing selected a profile.
    #[error("no layout profile for this core: {0}")]
    NoProfile(String),
    /// `server` could not be located.
    #[error("cannot locate the global `server`: {0}")]
    Symbol(String),
    /// The walk failed as a whole.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// No key could be recovered although the dicts hold keys.
    #[error("no key could be recovered ({expected} expected); nothing was written. See the report for the reasons")]
    NothingRecovered {
        /// Keys the dicts count.
        expected: u64,
        /// The report of the failed walk.
        report: Box<Report>,
    },
}

impl From<SinkError> for RecoverError {
    fn from(e: SinkError) -> Self {
        RecoverError::Walk(WalkError::Sink(e))
    }
}

/// Progress messages for the user (stderr in the CLI).
pub type Log<'l> = &'l mut dyn FnMut(&str);

pub(crate) fn choose_binary(
    opts: &Options,
    exe: Option<&ExecutableInCore>,
    log: Log<'_>,
) -> Result<Option<Executable>, RecoverError> {
    if opts.no_binary {
        return Ok(None);
    }
    let (path, explicit) = match (&opts.binary, exe) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(e)) => (PathBuf::from(&e.path), false),
        (None, None) => return Ok(None),
    };
    let bin = match Executable::open(&path) {
        Ok(b) => b,
        Err(e) if !explicit => {
            log(&format!("note: not using {} ({e})", path.display()));
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let core_id = exe.and_then(|e| e.build_id.as_deref());
    match (core_id, bin.build_id.as_deref()) {
        (Some(c), Some(b)) if c != b => {
            let err = RecoverError::BuildIdMismatch {
                core: c.to_owned(),
                binary: path.display().to_string(),
                found: b.to_owned(),
            };
            if opts.force {
                log(&format!("warning: {err}; continuing because of --force"));
            } else if explicit {
                return Err(err);
            } else {
                log(&format!("note: not using {}: {err}", path.display()));
                return Ok(None);
            }
        }
        // Without NT_FILE the image is looked up by the binary's build-id instead.
        (None, _) if exe.is_none() => {}
        (None, _) | (_, None) => log(&format!(
            "warning: cannot compare build-ids of the core and {}; assuming they match",
            path.display()
        )),
        _ => {}
    }
    Ok(Some(bin))
}

/// The executable of a core without NT_FILE: the ELF image in the core whose build-id is
/// the binary's, else one a profile records (the one named by --profile, or any shipped).
/// What the user should know about it goes to `warning`, for the log and the report.
fn executable_by_build_id(
    core: &CoreFile<'_>,
    opts: &Options,
    binary: Option<&Executable>,
    warning: &mut Option<String>,
) -> Option<ExecutableInCore> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    if let Some(b) = binary {
        match &b.build_id {
            Some(id) => wanted.push((id.clone(), b.path.display().to_string())),
            None => {
                *warning = Some(format!(
                    "{} has no build-id to find it by in a core without NT_FILE",
                    b.path.display()
                ))
            }
        }
    }
    let profiles = match &opts.profile {
        Some(p) => profile::load(p).map(|f| vec![f]).unwrap_or_default(),
        None => profile::shipped_profiles().unwrap_or_default(),
    };
    for p in profiles {
        if let Some(id) = p.identity.build_id {
            wanted.push((id, format!("profile {}", p.name)));
        }
    }
    for (id, whose) in &wanted {
        if let Some(base) = core.find_image(id) {
            *warning = Some(format!(
                "the core has no NT_FILE note (a truncated gcore core loses it); found the executable's ELF header at {base:#x} by the build-id of {whose} ({id})"
            ));
            return Some(ExecutableInCore {
                path: binary
                    .map(|b| b.path.display().to_string())
                    .unwrap_or_else(|| format!("(unnamed: found by build-id {id})")),
                base,
                build_id: Some(id.clone()),
            });
        }
    }
    if !wanted.is_empty() {
        let whose: Vec<&str> = wanted.iter().map(|(_, w)| w.as_str()).collect();
        *warning = Some(format!(
            "the core has no NT_FILE note, and no ELF image dumped in it has the build-id of {}",
            whose.join(", ")
        ));
    }
    None
}

/// The function libraries through a `curr_functions_lib_ctx` found by the structure it
/// points to, when no symbol or profile record says where it is (`why`).
fn functions_by_structure<'a>(
    core: &CoreFile<'a>,
    layout: &Layout,
    exe_base: Option<u64>,
    walker: &KeyspaceWalker<'_, 'a>,
    why: &str,
    log: Log<'_>,
) -> Result<Vec<crate::value::Bytes<'a>>, FunctionsLost> {
    match crate::walker::locate::find_functions_ctx(core, layout, exe_base) {
        Ok(found) => {
            log(&format!("curr_functions_lib_ctx: {}", found.summary()));
            walker
                .functions(found.address)
                .map_err(|f| FunctionsLost::unreadable(&f))
        }
        Err(e) => Err(FunctionsLost::new(
            FunctionsLostKind::NotFound,
            format!("function libraries not recovered: {why}; and by structure: {e}"),
        )),
    }
}

/// Run one recovery. On success the RDB (unless dry run) is in place and the report
/// describes it; the caller writes the report and picks the exit status. A bundle given as
/// the core ([`crate::bundle::is_bundle`]) is unpacked and recovered from with its own
/// executable.
pub fn recover(opts: &Options, log: Log<'_>) -> Result<Report, RecoverError> {
    // ---- a bundle (src/bundle): recovered from the core and binary it holds ----
    if opts.pid.is_none() && crate::bundle::is_bundle(&opts.core) {
        return crate::bundle::recover(opts, log);
    }
    recover_target(opts, None, log)
}

/// [`recover`] from a target already opened: `core` is walked instead of opening
/// `opts.core` or `opts.pid` (`bundle` walks the process it copies while it holds it
/// stopped).
pub fn recover_opened(
    opts: &Options,
    core: &CoreFile<'_>,
    log: Log<'_>,
) -> Result<Report, RecoverError> {
    recover_target(opts, Some(core), log)
}

/// One recovery in phases: open the target (a core, or a live process stopped from here to
/// the end of the walk), choose the profile ([`choose_profile`]), plan the output
/// ([`plan_rdb_version`], the bucket check), read the functions ([`read_functions`]), walk
/// (the walker's events to the output and the report through [`Recording`]), persist (the
/// output finished, atomically for files).
fn recover_target(
    opts: &Options,
    opened: Option<&CoreFile<'_>>,
    log: Log<'_>,
) -> Result<Report, RecoverError> {
    // ---- end of the bundle ----
    // Where the keys go (src/output): -o PATH (refused if it exists, unless --force), -o -
    // for stdout, --to URL (reached now, before any work), or nowhere with --dry-run.
    let output = match (&opts.output, &opts.output_options.to, opts.dry_run) {
        (_, _, true) => None,
        (None, None, false) => {
            return Err(RecoverError::Usage(
                "give -o/--output PATH for the RDB (- for stdout), --to URL, or --dry-run".into(),
            ))
        }
        (o, _, false) => {
            crate::output::Target::choose(o.as_deref(), &opts.output_options, opts.force)?
        }
    };
    // ---- The target: a core file, or a live process (--pid, src/live) ----
    // A live process is stopped from here until `live` is released after the walk (or
    // dropped on any error, which lets it go too), unless --no-freeze.
    let mapped;
    let owned;
    let mut page_cache = None;
    let mut live = None;
    let core: &CoreFile<'_> = match (opened, opts.pid) {
        (Some(core), _) => core,
        (None, Some(pid)) => {
            let (session, core) = crate::live::open(pid, !opts.no_freeze, &mut *log)?;
            live = Some(session);
            owned = core;
            &owned
        }
        (None, None) => {
            mapped = open_core(&opts.core, opts.page_cache, &opts.progress)?;
            log(&format!("core's page cache: {}", mapped.page_cache.summary));
            page_cache = Some(mapped.page_cache.summary.clone());
            owned = CoreFile::parse(mapped.bytes()).map_err(|source| RecoverError::Core {
                path: opts.core.clone(),
                source,
            })?;
            &owned
        }
    };
    let missing = core.space.missing_bytes();
    let exe = core.executable();
    // A live process's binary defaults to the running file itself, /proc/PID/exe (readable
    // even when the file on disk was replaced or deleted); its build-id is checked as usual.
    let running = live.as_ref().map(|l| l.binary_default(exe.as_ref()));
    let binary = choose_binary(opts, running.as_ref().or(exe.as_ref()), log)?;
    // ---- end of the target ----
    let mut exe_warning = None;
    let exe = match exe {
        Some(e) => Some(e),
        None => executable_by_build_id(core, opts, binary.as_ref(), &mut exe_warning),
    };
    let build_id = exe
        .as_ref()
        .and_then(|e| e.build_id.clone())
        .or_else(|| binary.as_ref().and_then(|b| b.build_id.clone()));
    if let Some(w) = &exe_warning {
        log(&format!("warning: {w}"));
    }
    let Chosen {
        layout,
        server,
        server_found_by,
        dbs,
        choice,
    } = choose_profile(
        opts,
        core,
        exe.as_ref(),
        binary.as_ref(),
        build_id.as_deref(),
    )?;
    log(&format!("profile {} ({choice})", layout.name));
    log(&format!("server at {server:#x}: {server_found_by}"));
    let source = Source {
        core: live
            .as_ref()
            .map_or_else(|| opts.core.display().to_string(), |l| l.source_label()),
        binary: binary.as_ref().map(|b| b.path.display().to_string()),
        executable_in_core: exe.as_ref().map(|e| e.path.clone()),
        build_id: build_id.clone(),
        profile: layout.name.clone(),
        profile_choice: choice,
        redis_version: layout.identity.redis_version.clone(),
        server: layout.identity.server.clone(),
        pid: core.process.as_ref().map(|p| p.pid),
        server_address: format!("{server:#x}"),
        server_found_by,
        page_cache,
    };
    let rdb_version = plan_rdb_version(opts, output.as_ref(), &layout)?;
    let mut report = ReportBuilder::new(source, rdb_version, opts.dry_run);
    if let Some(w) = exe_warning {
        report.warning(w);
    }
    if missing > 0 {
        report.warning(format!(
            "the core is truncated: {missing} bytes of its segments are missing"
        ));
    }
    let (bucket_check, bucket_note) = if opts.no_bucket_check {
        (None, BucketCheckNote::off("--no-bucket-check"))
    } else {
        calibrate_bucket_check(core, &layout, exe.as_ref(), binary.as_ref(), &dbs)
    };
    log(&format!("bucket check: {}", bucket_note.summary));
    report.set_bucket_check(bucket_note);
    let mut walk = WalkOptions {
        bucket_check,
        ..opts.walk
    };
    let walker = KeyspaceWalker::new(&core.space, &layout).with_options(walk);
    // The object census (2.8 to 3.2) tells the shared integer objects apart.
    if let Some(exe) = exe.as_ref().filter(|_| layout.counts_object_holders()) {
        let images = core.writable_image(exe.base);
        let images: Vec<(u64, &[u8])> = images.iter().map(|(a, b)| (*a, b.as_ref())).collect();
        walk.shared_integers = walker.shared_integers(&images);
        if let Some(s) = walk.shared_integers {
            log(&format!(
                "shared integers: {} objects, array at {:#x}",
                s.len, s.array
            ));
        }
    }
    let walker = walker.with_options(walk);
    let expected: u64 = dbs.iter().map(|d| d.expected()).sum();
    let mut task = opts
        .progress
        .start("walking keys", expected, crate::progress::Unit::Keys);
    let tick = |n: u64| task.advance(n);

    let functions = read_functions(
        core,
        &layout,
        &walker,
        exe.as_ref(),
        binary.as_ref(),
        build_id.as_deref(),
        &mut *log,
    );

    let Some(output) = output else {
        report.set_functions(functions.map(|f| f.len() as u64));
        walker.walk(
            &dbs,
            &mut Recording::new(&mut CountingSink, &mut report),
            tick,
        )?;
        // --pid: the walk is over, let the process go.
        if let Some(l) = live.take() {
            report.set_live(l.release(&mut *log));
        }
        return Ok(report.finish());
    };
    // ---- the output opened (src/output: format, file or stdout, mode) ----
    let ctime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let used_mem: u64 = core
        .space
        .segments()
        .iter()
        .filter(|s| s.flags & 2 != 0)
        .map(|s| s.memsz)
        .sum();
    // Valkey names its version `valkey-ver`, with no `redis-ver` (its loaders, and verify,
    // read that one to know whose dump it is).
    let version_aux = if layout.identity.server == "valkey" {
        "valkey-ver"
    } else {
        "redis-ver"
    };
    let aux = [
        (version_aux, layout.identity.redis_version.clone()),
        ("redis-bits", "64".to_owned()),
        ("ctime", ctime.to_string()),
        ("used-mem", used_mem.to_string()),
    ];
    let header = crate::output::Header {
        rdb_version,
        aux: &aux,
    };
    let output_name = output.describe();
    let mut sink = crate::output::open(output, &opts.output_options, header, opts.force)?;
    let functions = functions.and_then(|libs| match sink.functions(&libs) {
        Ok(()) => Ok(libs.len() as u64),
        Err(e) => Err(FunctionsLost::not_written(e)),
    });
    report.set_functions(functions);
    if let Some(scripts) = walker.lua_scripts(server) {
        let outcome = match scripts {
            Ok(s) if s.is_empty() => Ok(0),
            Ok(s) => match sink.lua_scripts(&s) {
                Ok(()) => Ok(s.len() as u64),
                Err(SinkError::Unwritable { reason }) => {
                    Err(format!("{} scripts not carried: {reason}", s.len()))
                }
                Err(e) => return Err(e.into()),
            },
            Err(f) => Err(format!("unreadable: {f}")),
        };
        report.set_lua_scripts(outcome);
    }
    let eviction = walker.eviction(server);
    sink.set_eviction(eviction);
    report.set_eviction(
        if rdb::consts::has_redis_feature(rdb_version, rdb::consts::MIN_VERSION_IDLE_FREQ) {
            EvictionNote {
                written: match eviction {
                    crate::sink::Eviction::Idle { .. } => Some("idle".to_owned()),
                    crate::sink::Eviction::Freq { .. } => Some("freq".to_owned()),
                    _ => None,
                },
                summary: eviction.name().to_owned(),
            }
        } else {
            EvictionNote {
                written: None,
                summary: format!("none (RDB {rdb_version} has no IDLE/FREQ)"),
            }
        },
    );
    walker.walk(&dbs, &mut Recording::new(&mut *sink, &mut report), tick)?;
    // --pid: the walk is over, let the process go before the output is finished.
    if let Some(l) = live.take() {
        report.set_live(l.release(&mut *log));
    }
    // Keys a --to server refused after the walk handed them over are lost after all.
    for k in sink.settle()? {
        report.not_written(k.db, &k.key, k.kind, k.has_expire, &k.reason);
    }
    report.set_reencoded(sink.reencoded());
    report.set_output(Some(output_name));
    let report = report.finish();
    if report.totals.keys == 0 && report.totals.expected > 0 {
        return Err(RecoverError::NothingRecovered {
            expected: report.totals.expected,
            report: Box::new(report),
        });
    }
    // The file appears (mode, sync, rename) or the stream ends only now; an RDB's trailer,
    // the CRC-64 of everything before it, goes into the report for verify.
    let finished = sink.finish()?;
    let mut report = report;
    if let Some(crc) = finished.crc64 {
        report.set_crc64(crc);
    }
    // ---- end of the output ----
    Ok(report)
}

/// The phase that plans the output: the RDB version written (the source's, `--rdb-version`,
/// or what a `--to` server loads), refused before any output exists when it cannot be
/// written.
fn plan_rdb_version(
    opts: &Options,
    output: Option<&crate::output::Target>,
    layout: &Layout,
) -> Result<u32, RecoverError> {
    // A --to server may load only older RDB versions than the source's (src/output).
    let rdb_version = match output {
        Some(t) => t.rdb_version(opts.rdb_version, layout.identity.rdb_version)?,
        None => opts.rdb_version.unwrap_or(layout.identity.rdb_version),
    };
    if !rdb::is_known_version(rdb_version) {
        return Err(RecoverError::Usage(format!(
            "RDB version {rdb_version} does not exist; redis-rescue writes RDB {} (Redis's 1 to 13, Valkey 9's 80)",
            rdb::consts::describe_versions(writable)
        )));
    }
    // Asked before any output exists: a version that cannot hold a key's TTL would fail
    // on the first key with one.
    if !writable(rdb_version) {
        return Err(RecoverError::Usage(format!(
            "RDB {rdb_version} cannot hold expire times in milliseconds (EXPIRETIME_MS, RDB {} and later); redis-rescue writes RDB {}",
            rdb::consts::MIN_VERSION_EXPIRETIME_MS,
            rdb::consts::describe_versions(writable)
        )));
    }
    Ok(rdb_version)
}

/// The phase that reads the function libraries (7.0+), which the static
/// `curr_functions_lib_ctx` points at: by symbol, machine code or profile record, else by
/// structure.
fn read_functions<'a>(
    core: &CoreFile<'a>,
    layout: &Layout,
    walker: &KeyspaceWalker<'_, 'a>,
    exe: Option<&ExecutableInCore>,
    binary: Option<&Executable>,
    build_id: Option<&str>,
    log: Log<'_>,
) -> Result<Vec<crate::value::Bytes<'a>>, FunctionsLost> {
    match &layout.functions {
        None => Ok(Vec::new()),
        Some(f) => match (
            static_offset(
                "curr_functions_lib_ctx",
                binary,
                layout,
                f.ctx_symbol,
                build_id,
            ),
            exe,
        ) {
            (Ok((off, how)), Some(e)) => {
                log(&format!("curr_functions_lib_ctx: {how}"));
                walker
                    .functions(e.base.wrapping_add(off))
                    .map_err(|f| FunctionsLost::unreadable(&f))
            }
            (Ok(_), None) => functions_by_structure(
                core,
                layout,
                None,
                walker,
                "the executable's load address is unknown",
                &mut *log,
            ),
            (Err(why), e) => {
                functions_by_structure(core, layout, e.map(|e| e.base), walker, &why, &mut *log)
            }
        },
    }
}

/// Whether redis-rescue writes RDB `version`: it exists and holds millisecond expires.
fn writable(version: u32) -> bool {
    rdb::consts::has_redis_feature(version, rdb::consts::MIN_VERSION_EXPIRETIME_MS)
}

#[cfg(test)]
mod tests {
    use super::choose::same_release_line;
    use crate::profile::{self, ProfileFile};

    fn with_version(name: &str, version: &str) -> ProfileFile {
        let mut p = profile::load(name).unwrap();
        p.identity.redis_version = version.into();
        p.name = format!("{name}@{version}");
        p
    }

    #[test]
    fn the_release_line_is_tried_nearest_patch_first() {
        let shipped = vec![
            with_version("7.0.15-debian", "7.0.3"),
            with_version("7.0.15-debian", "7.0.15"),
            with_version("7.0.15-debian", "7.0.9"),
            with_version("7.0.15-debian", "7.0.11"),
            with_version("7.2.6", "7.2.6"),
            with_version("valkey-8.1.8", "7.0.10"),
        ];
        let names: Vec<&str> = same_release_line(&shipped, "redis", "7.0.10")
            .iter()
            .map(|p| p.identity.redis_version.as_str())
            .collect();
        // Distance 1 twice (the newer first), then 5, then 7; other lines and other
        // server kinds are left out.
        assert_eq!(names, ["7.0.11", "7.0.9", "7.0.15", "7.0.3"]);
        let exact: Vec<&str> = same_release_line(&shipped, "redis", "7.0.15")
            .iter()
            .map(|p| p.identity.redis_version.as_str())
            .collect();
        assert_eq!(exact.first(), Some(&"7.0.15"));
        assert!(same_release_line(&shipped, "redis", "nonsense").is_empty());
    }
}
