//! `redis-rescue verify`: load a recovered dump into a real Redis and compare.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use redis_rescue::verify::{self, container, docker, engine, output, Target, VerifyOptions};

/// The long help of `verify` (`redis-rescue verify --help`).
pub const LONG_ABOUT: &str = "\
Load a recovered dump into a real Redis of the right version and prove it holds what the \
recovery report says.

By default verify starts redis-server (from PATH, or --redis-server) on a free loopback port \
in a private temporary directory holding a copy of the dump, waits for the load and stops it \
afterwards; the dump itself is never touched. With --docker it restores the dump into a \
container instead: the official image of the dump's version (redis:<version>, \
valkey/valkey:<version>) or --image, run by the bundled compose file as a project of its \
own on a free loopback port, taken down afterwards (also on failure and Ctrl-C). Docker or \
Podman is found through DOCKER_HOST or their usual sockets, and `docker compose` or \
`docker-compose` runs the file; when neither answers, --docker prints the commands that do \
it by hand and exits 2 (nothing was verified). With --connect it uses a server that is \
already running and first checks that the server holds this dump's keyspace.

Checks: the dump reads whole (CRC-64) and agrees with its report (keys, TTLs and types per \
db); the server loaded it (its log's error is shown when not); the server's version is the \
report's; DBSIZE per db; then every key (or --sample N random ones): type, expire time and \
value.

Exit status: 0 everything matches; 1 the server loaded the dump but something differs (the \
first differences are named: db, key, what); 2 the server did not load the dump, or verify \
could not run.";

/// Options of `redis-rescue verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The recovered RDB file.
    pub dump: PathBuf,

    /// The recovery report. Default: DUMP.report.json (when missing, the dump is verified
    /// alone, with a warning).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// The redis-server binary to start on a private copy of the dump. Default:
    /// redis-server from PATH.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["connect", "docker"])]
    pub redis_server: Option<PathBuf>,

    /// Use a running server that loaded this dump: HOST:PORT or redis://[:PASSWORD@]HOST:PORT.
    #[arg(long, value_name = "ADDR", conflicts_with = "docker")]
    pub connect: Option<String>,

    /// Restore the dump into a container (Docker or Podman, through the bundled compose
    /// file) of the official image of its version, compare, and take it down. Without a
    /// reachable engine: print the commands that do it by hand.
    #[arg(long)]
    pub docker: bool,

    /// The image for --docker (default: redis:<version> or valkey/valkey:<version> from the
    /// report or the dump's version field).
    #[arg(long, value_name = "IMAGE", requires = "docker")]
    pub image: Option<String>,

    /// Compare N random keys instead of all of them (for large dumps).
    #[arg(long, value_name = "N")]
    pub sample: Option<u64>,

    /// Seed of --sample, to repeat a sample (default: random, printed).
    #[arg(long, value_name = "SEED", requires = "sample")]
    pub seed: Option<u64>,

    /// Seconds to wait for the server to start (or accept connections) and load the dump.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,

    /// How many differences to name.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_differences: usize,

    /// Accept a server whose version differs from the report's (a warning, not a failure).
    #[arg(long)]
    pub allow_version_mismatch: bool,

    /// Print the outcome as JSON on stdout (for scripts) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `verify` and maps the outcome to the exit status.
pub fn run(args: VerifyArgs) -> ExitCode {
    // The engine and compose tool are found once, here: without them, print the commands.
    let docker = if args.docker {
        match (engine::Engine::find(), container::ComposeTool::find()) {
            (Ok(engine), Ok(tool)) => Some(verify::ContainerTarget {
                engine,
                tool,
                image: args.image.clone(),
            }),
            (Err(e), _) => return print_docker_commands(&args, &e.to_string()),
            (_, Err(e)) => return print_docker_commands(&args, &e.to_string()),
        }
    } else {
        None
    };
    let target = match (args.connect, docker) {
        (Some(addr), _) => Target::Connect(addr),
        (None, Some(c)) => Target::Container(c),
        (None, None) => Target::Start(
            args.redis_server
                .unwrap_or_else(|| PathBuf::from("redis-server")),
        ),
    };
    let opts = VerifyOptions {
        dump: args.dump,
        report: args.report,
        target,
        sample: args.sample,
        seed: args.seed,
        timeout: Duration::from_secs(args.timeout),
        max_listed: args.max_differences,
        allow_version_mismatch: args.allow_version_mismatch,
    };
    let outcome = verify::run(&opts);
    if args.json {
        println!("{}", output::json(&outcome));
    } else {
        print!("{}", output::table(&outcome));
    }
    ExitCode::from(outcome.exit_code)
}

/// With no engine or compose tool (`why`): the commands that restore and verify by hand,
/// and exit 2, since nothing was verified.
fn print_docker_commands(args: &VerifyArgs, why: &str) -> ExitCode {
    let version = verify::redis_version_of(&args.dump, args.report.as_deref());
    let mut text = docker::commands(
        &args.dump,
        version.as_deref(),
        docker::compose_file().as_deref(),
    );
    if let Some(image) = &args.image {
        if let Some(v) = version.as_deref() {
            text = text.replace(&docker::image_for(v), image);
        }
    }
    eprintln!("redis-rescue: {why}: nothing was verified; these commands do it by hand:");
    print!("{text}");
    ExitCode::from(2)
}
