//! `redis-rescue bundle`: one archive to recover from elsewhere.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use redis_rescue::bundle::{create, BundleOptions};

use super::recover::parse_mode;

/// The long help of `bundle`.
pub const LONG_ABOUT: &str = "\
Write one archive holding what it takes to recover the keyspace on another machine with \
nothing else installed: the executable (matched by build-id), its debug file if found, \
/proc/PID/maps (with --pid), the report of a dry run, a manifest, and the core. With --pid \
the core is written by redis-rescue itself while the process is stopped, holding only what \
a recovery reads (writable mappings and the executable's header page), and streamed into \
the archive: no core is written to disk first. The archive is a zstd-compressed tar, \
written under a temporary name and renamed when complete, mode 0600.

Recover from it anywhere with: redis-rescue BUNDLE -o dump.rdb

Exit status: 0 bundle written, every key counted by the dry run (or --no-dry-run); 1 bundle written, but the \
dry run failed or found keys it could not read (the bundle is still what an analyst needs); \
2 nothing written.";

/// Options of `bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Core dump of redis-server (plain, or compressed with zstd, xz, gzip or lz4).
    #[arg(required_unless_present = "pid", conflicts_with = "pid")]
    pub core: Option<PathBuf>,

    /// The running (or hung) redis-server process to bundle: stopped with ptrace while the
    /// dry run and the copy of its memory run, then let go.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: Option<i32>,

    /// With --pid: read the process while it runs instead of stopping it.
    #[arg(long, requires = "pid")]
    pub no_freeze: bool,

    /// The archive to write (e.g. rescue.tar.zst), or - for stdout.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,

    /// The redis-server binary. Default: /proc/PID/exe, or the executable the core's NT_FILE
    /// note names; it must have the core's build-id.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,

    /// Layout profile for the dry run (a shipped name or a JSON file).
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,

    /// Make no dry run: the bundle then holds no report, and from --pid the process is
    /// stopped only while its memory is copied (the dry run walks every key meanwhile).
    #[arg(long)]
    pub no_dry_run: bool,

    /// Permission bits of the archive, in octal. Default 0600: it holds every key and value.
    #[arg(long, value_name = "OCTAL", default_value = "0600", value_parser = parse_mode)]
    pub mode: u32,

    /// zstd compression level (1 fastest to 19 smallest); with --pid the process is stopped
    /// while its memory is compressed.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,

    /// Overwrite an existing archive; accept a --binary whose build-id differs from the core.
    #[arg(long)]
    pub force: bool,

    /// No progress bars and no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Write the bundle and pick the exit status.
pub fn run(cli: BundleArgs) -> ExitCode {
    let quiet = cli.quiet;
    let mut log = |m: &str| {
        if !quiet {
            eprintln!("{m}");
        }
    };
    if cli.output.as_os_str() == "-" && std::io::stdout().is_terminal() {
        eprintln!("redis-rescue: not writing a bundle to a terminal; redirect or pipe -o -");
        return ExitCode::from(2);
    }
    let opts = BundleOptions {
        core: cli.core,
        pid: cli.pid,
        no_freeze: cli.no_freeze,
        output: cli.output,
        binary: cli.binary,
        profile: cli.profile,
        no_dry_run: cli.no_dry_run,
        force: cli.force,
        mode: cli.mode,
        level: cli.level,
        progress: super::progress::bars(!quiet && std::io::stderr().is_terminal()),
    };
    match create(&opts, &mut log) {
        Ok(done) => {
            let m = &done.manifest;
            let size = done
                .archive_bytes
                .map_or(String::new(), |n| format!(" ({n} bytes)"));
            log(&format!("bundle {}{size}:", done.output));
            for e in &m.entries {
                log(&format!("  {:<40} {:>14} bytes", e.name, e.size));
            }
            if let (Some(mapped), Some(kept)) = (m.source.mapped_bytes, m.source.kept_bytes) {
                log(&format!(
                    "the core keeps {kept} of the {mapped} bytes the process maps (writable mappings and the executable's header page)"
                ));
            }
            match &done.dry_run {
                None => ExitCode::SUCCESS,
                Some(Ok(r)) if r.complete() => {
                    log(&format!(
                        "dry run: {} keys, none lost (profile {})",
                        r.totals.keys, r.source.profile
                    ));
                    ExitCode::SUCCESS
                }
                Some(Ok(r)) => {
                    log(&format!(
                        "dry run: {} of {} keys lost (see report.json in the bundle)",
                        r.totals.lost, r.totals.expected
                    ));
                    ExitCode::from(1)
                }
                Some(Err(e)) => {
                    log(&format!("dry run failed: {e}"));
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("redis-rescue: {e}");
            ExitCode::from(2)
        }
    }
}
