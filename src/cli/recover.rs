//! The default command: recover a core into an RDB.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use redis_rescue::core::page_cache::CachePolicy;
use redis_rescue::output::restore::{RestoreOptions, Secret};
use redis_rescue::output::{self, Format, OutputOptions};
use redis_rescue::recover::{recover, Options, RecoverError};
use redis_rescue::walker::WalkOptions;

/// Options of a recovery (the default command).
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Core dump of redis-server (from gcore, the kernel, or systemd-coredump's .zst), or a
    /// bundle written by `redis-rescue bundle`.
    #[arg(required_unless_present = "pid", conflicts_with = "pid")]
    pub core: Option<PathBuf>,

    /// Read the running (or hung) redis-server process PID instead of a core: no core is
    /// written, its memory is read through /proc/PID/mem and the binary through
    /// /proc/PID/exe (even if the file on disk was replaced or deleted). Every thread is
    /// stopped with ptrace for the walk and let go at its end, on an error, on Ctrl-C, and if
    /// redis-rescue is killed; the time it was stopped is printed and reported. Needs ptrace
    /// permission: root, or the server's user where kernel.yama.ptrace_scope allows it.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: Option<i32>,

    /// With --pid: read the process while it runs instead of stopping it (for a server that
    /// must not pause, or one another debugger holds). Keys written during the walk may be
    /// missed or lost; the report says the read was not frozen.
    #[arg(long, requires = "pid")]
    pub no_freeze: bool,

    /// File to write, or - for stdout (streamed; nothing is written to the local disk
    /// unless --report asks). A file appears only when complete (temp file + rename).
    #[arg(
        short,
        long,
        value_name = "PATH",
        required_unless_present_any = ["dry_run", "to"]
    )]
    pub output: Option<PathBuf>,

    /// Restore straight into a running Redis or Valkey: redis://[user:pass@]host:port[/db],
    /// or redis-cluster://[user:pass@]host:port (each key to its slot's master). Pipelined
    /// RESTOREs of DUMP payloads in an RDB version the target loads; keys it refuses
    /// (existing ones without --replace) are reported lost. The password comes from the URL,
    /// else --askpass, else REDISCLI_AUTH, and is never shown.
    #[arg(long, value_name = "URL", conflicts_with_all = ["output", "format"])]
    pub to: Option<String>,

    /// With --to: prompt for the target's password (no echo) instead of taking it from the
    /// URL or REDISCLI_AUTH.
    #[arg(long, requires = "to")]
    pub askpass: bool,

    /// With --to: restore only the keys of this source db (a Redis Cluster has only db 0;
    /// by default only db 0 goes to a cluster). The keys of other dbs are reported lost.
    #[arg(long, value_name = "N", requires = "to")]
    pub db: Option<u32>,

    /// What to write: rdb (an RDB file a server of the target version loads), resp (SELECT
    /// and RESTORE commands for `redis-cli --pipe`), or jsonl (one JSON object per key; the
    /// schema is in the README).
    #[arg(long, value_name = "FORMAT", default_value = "rdb", value_parser = parse_format)]
    pub format: Format,

    /// Permission bits of the files written (dump and report), in octal. Default 0600: they
    /// hold every key and value of the keyspace. Give e.g. 0640 for a redis group to read.
    #[arg(long, value_name = "OCTAL", default_value = "0600", value_parser = parse_mode)]
    pub mode: u32,

    /// With --format resp or --to: RESTORE ... REPLACE and FUNCTION LOAD REPLACE, overwriting
    /// keys and libraries the target already has (without it the target refuses them).
    #[arg(long)]
    pub replace: bool,

    /// The redis-server binary that produced the core. Default: the executable named in
    /// the core's NT_FILE note, if that file exists. It must have the core's build-id.
    #[arg(long, value_name = "PATH", conflicts_with = "no_binary")]
    pub binary: Option<PathBuf>,

    /// Use no binary at all: take symbol offsets from the layout profile.
    #[arg(long)]
    pub no_binary: bool,

    /// Layout profile: a shipped name (e.g. 7.0.15-debian) or a JSON file. Default: the
    /// shipped profile whose build-id matches the core.
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,

    /// Derive the layout from the binary's DWARF even when a shipped profile matches the
    /// core (the binary must carry debug info).
    #[arg(long, conflicts_with = "profile")]
    pub derive: bool,

    /// Walk everything and print keys per db, type and encoding; write no RDB.
    #[arg(long)]
    pub dry_run: bool,

    /// JSON report path. Default: OUTPUT.report.json (with --dry-run or -o -: none unless
    /// given; the summary goes to stderr).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// RDB version to write (default: the one the source server writes): Redis's 1 to 13,
    /// or 80 for Valkey 9. For an older target, compact encodings it cannot read are
    /// re-encoded as plain types.
    #[arg(long, value_name = "N")]
    pub rdb_version: Option<u32>,

    /// Also write the readable part of damaged collections (a set, hash, zset or list
    /// whose chain breaks part way). Such keys are listed as `partial_keys` in the report
    /// and the exit status is 1. Off by default: without it a damaged key is lost whole.
    #[arg(long)]
    pub salvage: bool,

    /// Give up on a key whose decoding takes longer than this many seconds (fractions
    /// allowed) and report it lost; protects the run from a pathological structure.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,

    /// Do not check that each dict entry sits in the bucket its key hashes to. The check
    /// (Redis 4.0+, with the process's hash seed found in the core) refuses entries that a
    /// damaged pointer led into another chain; turn it off only to see what it refused.
    #[arg(long)]
    pub no_bucket_check: bool,

    /// Also write the keys of slots this node is importing by Valkey 9's atomic slot
    /// migration (CLUSTER MIGRATESLOTS not finished when the core was taken). By default
    /// they are left out and counted apart in the report (`importing_keys`,
    /// `importing_slots` per db), since the source node still owns those slots and the
    /// import may still roll back.
    #[arg(long)]
    pub include_importing: bool,

    /// Threads for the walk of the keys (default: 2 when the machine has two cores or
    /// more, else 1). With 2, one thread follows the keys tables' chains while the other
    /// decodes and writes the keys, in the same order: the output is the same with 1.
    /// Use 1 to leave a core to a loaded machine. A live process (--pid) is read by one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Leave the core file's page cache as it is. By default a core of 64 MiB or more is
    /// mapped in 2 MiB pages where the kernel allows (transparent huge pages in `madvise`
    /// or `always` mode): it is read in whole first, and a core cached in 4 KiB pages (as
    /// gcore and the kernel leave a core they just wrote) is dropped from the cache and read
    /// again, chunk by chunk, while that reads at 768 MiB/s or more. The walk jumps across
    /// the whole core, and over 2 MiB pages it misses the TLB far less (about twice as
    /// fast on a 1.2 GiB core). The file is never written; the report's `page_cache` says
    /// what was done.
    #[arg(long, conflicts_with = "pid")]
    pub keep_page_cache: bool,

    /// Overwrite an existing output; accept a binary whose build-id differs from the core.
    #[arg(long)]
    pub force: bool,

    /// No progress bars and no summary table.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run a recovery and pick the exit status.
pub fn run(cli: RecoverArgs) -> ExitCode {
    let core = cli.core.clone().unwrap_or_default();
    let quiet = cli.quiet;
    let mut log = |m: &str| {
        if !quiet {
            eprintln!("{m}");
        }
    };
    let mut opts = Options {
        core,
        pid: cli.pid,
        no_freeze: cli.no_freeze,
        page_cache: if cli.keep_page_cache {
            CachePolicy::Keep
        } else {
            CachePolicy::HugePages
        },
        output: cli.output.clone(),
        binary: cli.binary.clone(),
        no_binary: cli.no_binary,
        profile: cli.profile.clone(),
        derive: cli.derive,
        dry_run: cli.dry_run,
        force: cli.force,
        progress: super::progress::bars(!quiet && std::io::stderr().is_terminal()),
        rdb_version: cli.rdb_version,
        walk: WalkOptions {
            salvage: cli.salvage,
            key_timeout: cli.timeout,
            bucket_check: None,
            include_importing: cli.include_importing,
            threads: cli.threads.map_or_else(default_threads, usize::from),
            shared_integers: None,
        },
        no_bucket_check: cli.no_bucket_check,
        output_options: OutputOptions {
            format: cli.format,
            mode: cli.mode,
            replace: cli.replace,
            to: None,
        },
    };
    if let Some(url) = &cli.to {
        let password = if cli.askpass {
            match rpassword::prompt_password("password for --to: ") {
                Ok(p) => Some(Secret(p)),
                Err(e) => {
                    eprintln!("redis-rescue: --askpass: cannot read a password: {e}");
                    return ExitCode::from(2);
                }
            }
        } else {
            std::env::var("REDISCLI_AUTH").ok().map(Secret)
        };
        opts.output_options.to = Some(RestoreOptions {
            url: Secret(url.clone()),
            password,
            db: cli.db,
        });
    }
    let to_stdout = cli.output.as_deref() == Some(std::path::Path::new("-"));
    if to_stdout && cli.format != Format::Jsonl && std::io::stdout().is_terminal() {
        eprintln!(
            "redis-rescue: not writing a binary {} stream to a terminal; redirect or pipe -o -",
            cli.format.name()
        );
        return ExitCode::from(2);
    }
    let report_path = cli.report.clone().or_else(|| {
        // Beside a file only: with -o - nothing goes to the local disk unless asked.
        (!cli.dry_run && !to_stdout)
            .then(|| {
                cli.output
                    .as_ref()
                    .map(|o| PathBuf::from(format!("{}.report.json", o.display())))
            })
            .flatten()
    });
    match recover(&opts, &mut log) {
        Ok(report) => {
            if let Some(p) = &report_path {
                if let Err(e) = output::write_report(&report, p, cli.mode) {
                    eprintln!("redis-rescue: {e}");
                    return ExitCode::from(2);
                }
            }
            if cli.dry_run {
                print!("{}", report.table());
            } else if !quiet {
                eprint!("{}", report.table());
            }
            for w in &report.warnings {
                log(&format!("warning: {w}"));
            }
            if report.complete() {
                ExitCode::SUCCESS
            } else {
                let unreadable = report.dbs.values().filter(|d| d.unreadable).count();
                log(&format!(
                    "{} of {} keys lost{}{}; see {}",
                    report.totals.lost,
                    report.totals.expected,
                    if report.totals.partial > 0 {
                        // Partial keys come from --salvage, or from a target RDB version that
                        // cannot hold part of them (field TTLs); the report says which.
                        format!(
                            ", {} written partial (listed under partial_keys with the reason)",
                            report.totals.partial
                        )
                    } else {
                        String::new()
                    },
                    if unreadable > 0 {
                        format!(", and {unreadable} database(s) whose key count is unreadable")
                    } else {
                        String::new()
                    },
                    report_path
                        .as_ref()
                        .map_or("the table above".into(), |p| p.display().to_string())
                ));
                ExitCode::from(1)
            }
        }
        Err(e) => {
            if let (RecoverError::NothingRecovered { report, .. }, Some(p)) = (&e, &report_path) {
                let _ = output::write_report(report, p, cli.mode);
            }
            eprintln!("redis-rescue: {e}");
            ExitCode::from(2)
        }
    }
}

/// A `--timeout` in seconds: positive, finite, at most a day.
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "{s}: the timeout must be above 0 and at most 86400 seconds"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// A `--format` name.
fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        format!("{s:?}: the formats are {}", names.join(", "))
    })
}

/// A `--mode` in octal.
pub(crate) fn parse_mode(s: &str) -> Result<u32, String> {
    output::parse_mode(s).ok_or_else(|| format!("{s:?} is not an octal mode from 0 to 0777"))
}

/// Two threads when the machine has two cores or more: the walk uses no more than two.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}
