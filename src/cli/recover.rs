//! The default command: recover a core into an RDB.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use redis_rescue::recover::{recover, write_report, Options, RecoverError};

/// Options of a recovery (the default command).
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Core dump of redis-server (from gcore, the kernel, or systemd-coredump's .zst).
    #[arg(required = true)]
    pub core: Option<PathBuf>,

    /// RDB file to write. It appears only when complete (temp file + rename).
    #[arg(short, long, value_name = "PATH", required_unless_present = "dry_run")]
    pub output: Option<PathBuf>,

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

    /// JSON report path. Default: OUTPUT.report.json (with --dry-run: none unless given).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// RDB version to write (default: the one the source server writes). For an older
    /// target, compact encodings it cannot read are re-encoded as plain types.
    #[arg(long, value_name = "N")]
    pub rdb_version: Option<u32>,

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
    let opts = Options {
        core,
        output: cli.output.clone(),
        binary: cli.binary.clone(),
        no_binary: cli.no_binary,
        profile: cli.profile.clone(),
        derive: cli.derive,
        dry_run: cli.dry_run,
        force: cli.force,
        progress: !quiet && std::io::stderr().is_terminal(),
        rdb_version: cli.rdb_version,
    };
    let report_path = cli.report.clone().or_else(|| {
        (!cli.dry_run)
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
                if let Err(e) = write_report(&report, p) {
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
                    "{} of {} keys lost{}; see {}",
                    report.totals.lost,
                    report.totals.expected,
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
                let _ = write_report(report, p);
            }
            eprintln!("redis-rescue: {e}");
            ExitCode::from(2)
        }
    }
}
