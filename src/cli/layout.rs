//! `redis-rescue layout …`: layout profiles.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use redis_rescue::dwarf::{self, DeriveOptions};
use redis_rescue::profile;

/// Work with layout profiles.
#[derive(Debug, Args)]
pub struct LayoutArgs {
    #[command(subcommand)]
    pub command: LayoutCommand,
}

/// `layout` subcommands.
#[derive(Debug, Subcommand)]
pub enum LayoutCommand {
    /// Derive a layout profile from the DWARF of an unstripped redis-server/valkey-server.
    ///
    /// Reads the debug information (DWARF 4 or 5, compressed sections and
    /// .gnu_debugaltlink supplementary files included), the symbols `server` and `shared`,
    /// and the version string, and writes a profile in the schema of layouts/*.json. With
    /// --check, compares the result with an existing profile and exits 1 on differences.
    Derive(DeriveArgs),
}

/// Options of `layout derive`.
#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// The executable with debug information.
    #[arg(long, value_name = "PATH")]
    pub binary: PathBuf,

    /// Write the profile here ("-" for stdout). Default: stdout, unless --check is given.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Profile name. Default: the output file's stem, else the version (e.g. valkey-8.1.8).
    #[arg(long)]
    pub name: Option<String>,

    /// Record this server version instead of the one read from the binary.
    #[arg(long, value_name = "X.Y.Z")]
    pub redis_version: Option<String>,

    /// Record this RDB version instead of the one implied by the server version.
    #[arg(long, value_name = "N")]
    pub rdb_version: Option<u32>,

    /// Record the symbols and build-id of this binary instead: the stripped executable a
    /// distribution ships, when --binary is the same source rebuilt with DWARF (its
    /// layouts apply, its addresses do not).
    #[arg(long, value_name = "PATH")]
    pub symbols_from: Option<PathBuf>,

    /// Compare with this profile (a shipped name or a JSON file); print the differences
    /// and exit 1 if there are any.
    #[arg(long, value_name = "NAME|PATH")]
    pub check: Option<String>,

    /// With --check: structs, fields, symbols and constants that only the derived profile
    /// has count as differences too.
    #[arg(long, requires = "check")]
    pub exact: bool,

    /// Print no warnings or summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run `layout …`.
pub fn run(args: LayoutArgs) -> ExitCode {
    match args.command {
        LayoutCommand::Derive(a) => derive(a),
    }
}

fn derive(a: DeriveArgs) -> ExitCode {
    let to_stdout = a.output.as_deref().is_some_and(|o| o.as_os_str() == "-");
    let name = a.name.clone().or_else(|| {
        a.output
            .as_ref()
            .filter(|_| !to_stdout)
            .and_then(|o| o.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
    });
    let opts = DeriveOptions {
        name,
        redis_version: a.redis_version.clone(),
        rdb_version: a.rdb_version,
        symbols_from: a.symbols_from.clone(),
    };
    let derived = match dwarf::derive(&a.binary, &opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if !a.quiet {
        for w in &derived.warnings {
            eprintln!("warning: {w}");
        }
    }
    let p = &derived.profile;
    let text = dwarf::to_json(p);
    match &a.output {
        Some(o) if !to_stdout => {
            if let Err(e) = std::fs::write(o, &text) {
                eprintln!("error: cannot write {}: {e}", o.display());
                return ExitCode::from(2);
            }
        }
        None if a.check.is_some() => {}
        _ => print!("{text}"),
    }
    if !a.quiet {
        let features: Vec<String> = p.features.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "{} {} {} (build-id {}): {} structs, features {}{}",
            p.name,
            p.identity.server,
            p.identity.redis_version,
            p.identity.build_id.as_deref().unwrap_or("none"),
            p.structs.len(),
            features.join(" "),
            match &a.output {
                Some(o) if !to_stdout => format!("; wrote {}", o.display()),
                _ => String::new(),
            }
        );
    }
    let Some(check) = &a.check else {
        return ExitCode::SUCCESS;
    };
    let reference = match profile::load(check) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let diffs = dwarf::compare(p, &reference, a.exact);
    if diffs.is_empty() {
        println!("{}: no differences from {check}", p.name);
        ExitCode::SUCCESS
    } else {
        println!("{}: {} difference(s) from {check}:", p.name, diffs.len());
        for d in &diffs {
            println!("  {d}");
        }
        ExitCode::from(1)
    }
}
