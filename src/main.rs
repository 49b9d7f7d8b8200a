//! The `redis-rescue` command line.
// As in the library: no panic on any input; the edge maps errors to exit codes.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Recover a Redis keyspace from an ELF core dump of redis-server, or from the running
/// process itself (--pid), into an RDB file.
///
/// redis-rescue maps the core (plain, or .zst as systemd-coredump stores it), or reads the
/// live process through /proc/PID/mem while it is stopped with ptrace (--pid), finds the
/// global `server` through the binary's symbols or a layout profile, walks every
/// database, key, value and expire time in the process's memory, and writes an RDB that
/// a redis-server of the same version loads. A key is either recovered exactly or listed
/// in the report as lost, with the reason.
///
/// Exit status: 0 every key recovered; 1 RDB written but some keys lost; 2 nothing
/// usable written.
#[derive(Debug, Parser)]
#[command(
    name = "redis-rescue",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    recover: cli::recover::RecoverArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One archive (binary, debug file, maps, dry-run report and a compact core) to
    /// recover from on another machine: `redis-rescue BUNDLE -o dump.rdb`.
    #[command(long_about = cli::bundle::LONG_ABOUT)]
    Bundle(cli::bundle::BundleArgs),
    /// Layout profiles: derive one from the DWARF of a redis-server build.
    Layout(cli::layout::LayoutArgs),
    /// Load a recovered dump into a real Redis and prove it matches the recovery report.
    #[command(long_about = cli::verify::LONG_ABOUT)]
    Verify(cli::verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => cli::recover::run(cli.recover),
        Some(Command::Bundle(args)) => cli::bundle::run(args),
        Some(Command::Layout(args)) => cli::layout::run(args),
        Some(Command::Verify(args)) => cli::verify::run(args),
    }
}
