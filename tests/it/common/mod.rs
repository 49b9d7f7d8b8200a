//! Shared harness for the end-to-end tests: start real redis-server processes, fill them with a
//! dataset that covers every type and encoding, record the truth (DEBUG DIGEST, DBSIZE, TTLs,
//! rehash state), take a core with gcore, run redis-rescue and restore what it wrote.
//!
//! Every helper takes the server binary as a parameter so that tests for other Redis versions can
//! reuse it; [`DEFAULT_SERVER`] is the one on `PATH`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::{Connection, IntoConnectionInfo};

/// The server binary used when a test does not name one (looked up on `PATH`).
pub const DEFAULT_SERVER: &str = "redis-server";

/// How long a server gets to answer PING (and finish loading a dump).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one redis-rescue run may take before the test gives up on it.
const RESCUE_TIMEOUT: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/// Absolute path of `name` on `PATH` (or `name` itself when it already contains a slash).
pub fn find_in_path(name: &str) -> PathBuf {
    if name.contains('/') {
        return PathBuf::from(name);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` was not found on PATH ({path:?}); see tests/README.md for what the tests need")
}

/// Last `max_lines` lines of a text file, for panic messages.
pub fn tail_of(path: &Path, max_lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            lines[start..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// First `max` characters of a text, for panic messages.
pub fn snippet(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}… [{} bytes in all]", text.len())
    }
}

/// Printable form of a binary key.
pub fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Deterministic pseudo-random bytes (xorshift64*), so the dataset is the same on every run.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The GNU build-id of an ELF file (hex, lower case), read from its SHT_NOTE sections.
/// Only 64-bit little-endian ELF is supported, which is all the tests need.
pub fn elf_build_id(path: &Path) -> Option<String> {
    let data = fs::read(path).ok()?;
    let u16_at = |o: usize| -> Option<u16> {
        Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?))
    };
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?))
    };
    let u64_at = |o: usize| -> Option<u64> {
        Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?))
    };
    if data.get(0..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        if u32_at(sh + 4)? != 7 {
            continue; // not SHT_NOTE
        }
        let off = usize::try_from(u64_at(sh + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(sh + 0x20)?).ok()?;
        let mut p = off;
        while p + 12 <= off + size {
            let namesz = u32_at(p)? as usize;
            let descsz = u32_at(p + 4)? as usize;
            let ntype = u32_at(p + 8)?;
            let name_start = p + 12;
            let desc_start = name_start + namesz.div_ceil(4) * 4;
            if ntype == 3 && data.get(name_start..name_start + namesz)? == b"GNU\0" {
                let desc = data.get(desc_start..desc_start + descsz)?;
                return Some(desc.iter().map(|b| format!("{b:02x}")).collect());
            }
            p = desc_start + descsz.div_ceil(4) * 4;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// A redis-server process
// ---------------------------------------------------------------------------------------------

/// A redis-server child process with its own port and directory; killed (SIGKILL) on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local_addr of the probe socket")
        .port()
}

/// Whether a server of `version` (`2.8.17`, `7.0.15`, `valkey-8.1.8`, …) needs
/// `--enable-debug-command yes` for DEBUG: Redis 7.0 and later, and every Valkey. Older
/// servers do not know the option (and refuse to start on it).
pub fn needs_enable_debug_command(version: &str) -> bool {
    if version.starts_with("valkey") {
        return true;
    }
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the major version of {version:?}"));
    major >= 7
}

/// `--dir <rdb's dir> --dbfilename <rdb's name>` for a server that loads `rdb` at start-up.
fn rdb_args(rdb: &Path) -> [String; 4] {
    let rdb = fs::canonicalize(rdb).unwrap_or_else(|e| panic!("RDB {}: {e}", rdb.display()));
    let dir = rdb.parent().expect("RDB has a parent dir");
    let name = rdb.file_name().expect("RDB has a file name");
    [
        "--dir".to_string(),
        dir.to_str().expect("UTF-8 path").to_string(),
        "--dbfilename".to_string(),
        name.to_str().expect("UTF-8 name").to_string(),
    ]
}

fn connect(port: u16) -> redis::RedisResult<Connection> {
    let info = format!("redis://127.0.0.1:{port}/").into_connection_info()?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let info = info.set_redis_settings(settings);
    let client = redis::Client::open(info)?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(120)))?;
    conn.set_write_timeout(Some(Duration::from_secs(120)))?;
    Ok(conn)
}

enum StartError {
    /// The port was taken between probing and binding; worth another try.
    PortTaken,
    Failed(String),
}

impl RedisServer {
    /// Start `binary` on a free loopback port with a private directory, persistence off and
    /// DEBUG enabled, plus `extra_args` (later arguments override earlier ones). Waits for PING
    /// and for `loading:0`; panics with the log's tail if the server does not come up.
    pub fn start(binary: &Path, extra_args: &[&str]) -> RedisServer {
        Self::start_launched(binary, extra_args, false)
    }

    /// Like [`RedisServer::start`], but launched as `sh -c 'ulimit -c unlimited; exec BINARY
    /// ARGS…'`, so that the kernel writes a core when the server dies of a signal. The shell
    /// execs the server, so [`RedisServer::pid`] is the server's pid.
    pub fn start_with_core_limit(binary: &Path, extra_args: &[&str]) -> RedisServer {
        Self::start_launched(binary, extra_args, true)
    }

    /// Start a server of `version` (as `.ci/provision-redis.sh` names builds: `2.8.17`,
    /// `valkey-8.1.8`, …) like [`RedisServer::start`], but pass `--enable-debug-command yes`
    /// only to versions that know that option (Redis 7.0+, Valkey): older servers refuse to
    /// start on an unknown option, and have DEBUG enabled anyway.
    pub fn start_version(binary: &Path, version: &str, extra_args: &[&str]) -> RedisServer {
        Self::start_with(
            binary,
            extra_args,
            false,
            needs_enable_debug_command(version),
        )
    }

    /// [`RedisServer::start_on_rdb`] for a server of `version` (see
    /// [`RedisServer::start_version`]).
    pub fn start_version_on_rdb(
        binary: &Path,
        version: &str,
        rdb: &Path,
        extra_args: &[&str],
    ) -> RedisServer {
        let args = rdb_args(rdb);
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(extra_args);
        Self::start_version(binary, version, &all)
    }

    fn start_launched(binary: &Path, extra_args: &[&str], core_limit: bool) -> RedisServer {
        Self::start_with(binary, extra_args, core_limit, true)
    }

    fn start_with(
        binary: &Path,
        extra_args: &[&str],
        core_limit: bool,
        enable_debug: bool,
    ) -> RedisServer {
        for _attempt in 0..5 {
            match Self::try_start(binary, extra_args, core_limit, enable_debug) {
                Ok(server) => return server,
                Err(StartError::PortTaken) => continue,
                Err(StartError::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!(
            "could not start {}: its port was taken on every attempt",
            binary.display()
        )
    }

    /// Start a server that loads `rdb` at start-up (`--dir <its dir> --dbfilename <its name>`).
    pub fn start_on_rdb(binary: &Path, rdb: &Path, extra_args: &[&str]) -> RedisServer {
        let rdb = fs::canonicalize(rdb).unwrap_or_else(|e| panic!("RDB {}: {e}", rdb.display()));
        let dir = rdb
            .parent()
            .expect("RDB has a parent dir")
            .to_str()
            .expect("UTF-8 path");
        let name = rdb
            .file_name()
            .expect("RDB has a file name")
            .to_str()
            .expect("UTF-8 name");
        let mut args = vec!["--dir", dir, "--dbfilename", name];
        args.extend_from_slice(extra_args);
        Self::start(binary, &args)
    }

    /// Start a server on `rdb` like [`RedisServer::start_on_rdb`], but return why it did
    /// not come up (for instance, it refused the file) instead of panicking.
    pub fn try_start_on_rdb(binary: &Path, rdb: &Path) -> Result<RedisServer, String> {
        let args = rdb_args(rdb);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for _attempt in 0..5 {
            match Self::try_start(binary, &args, false, true) {
                Ok(server) => return Ok(server),
                Err(StartError::PortTaken) => continue,
                Err(StartError::Failed(msg)) => return Err(msg),
            }
        }
        Err(format!(
            "could not start {}: its port was taken on every attempt",
            binary.display()
        ))
    }

    fn try_start(
        binary: &Path,
        extra_args: &[&str],
        core_limit: bool,
        enable_debug: bool,
    ) -> Result<RedisServer, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("redis-rescue-server-")
            .tempdir()
            .expect("create the server's temp dir");
        let port = free_port();
        // The log goes to stdout (`--logfile ""`), and stdout to DIR/redis.log: Redis flushes
        // stdout after every log line, so what DEBUG QUICKLIST prints there becomes readable as
        // soon as something is logged (see `quicklist_nodes`).
        let log = dir.path().join("redis.log");
        let stdout = fs::File::create(&log).expect("create redis.log");
        let stderr = fs::File::create(dir.path().join("stderr.log")).expect("create stderr.log");
        let port_s = port.to_string();
        let dir_s = dir.path().to_str().expect("temp dir is UTF-8").to_string();
        let mut cmd = if core_limit {
            // `ulimit -c` without -H/-S sets both limits in dash and bash; raising the hard
            // limit needs root (CAP_SYS_RESOURCE) when it is lower.
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(r#"ulimit -c unlimited || { echo "cannot raise RLIMIT_CORE" >&2; exit 97; }; exec "$0" "$@""#)
                .arg(binary);
            c
        } else {
            Command::new(binary)
        };
        cmd.args(["--port", &port_s, "--bind", "127.0.0.1", "--dir", &dir_s])
            .args(["--save", "", "--appendonly", "no"]);
        if enable_debug {
            cmd.args(["--enable-debug-command", "yes"]);
        }
        cmd.args(["--daemonize", "no", "--logfile", ""])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", binary.display()));
        let mut server = RedisServer {
            child,
            port,
            dir,
            binary: binary.to_path_buf(),
        };

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait().expect("try_wait on redis-server") {
                let log_tail = tail_of(&log, 30);
                if log_tail.contains("Address already in use") {
                    return Err(StartError::PortTaken);
                }
                return Err(StartError::Failed(format!(
                    "{} {extra_args:?} exited at start-up with {status}\n--- redis.log tail ---\n{log_tail}\n--- stderr ---\n{}",
                    binary.display(),
                    tail_of(&server.dir.path().join("stderr.log"), 20)
                )));
            }
            if let Ok(mut conn) = connect(port) {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut conn);
                if let Ok(pong) = pong {
                    assert_eq!(pong, "PONG", "unexpected PING reply");
                    let info: redis::RedisResult<String> =
                        redis::cmd("INFO").arg("persistence").query(&mut conn);
                    if let Ok(info) = info {
                        if info.lines().any(|l| l.trim() == "loading:0") {
                            return Ok(server);
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(StartError::Failed(format!(
                    "{} {extra_args:?} did not answer PING / finish loading within {START_TIMEOUT:?}\n--- redis.log tail ---\n{}",
                    binary.display(),
                    tail_of(&log, 30)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait up to `timeout` for the server process to end on its own; `None` if it is still
    /// running then.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on redis-server") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's private directory (holds redis.log and stderr.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir().join("redis.log")
    }

    /// Where the server's own stdout goes (DEBUG QUICKLIST prints there): the log file.
    pub fn stdout_path(&self) -> PathBuf {
        self.log_path()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.log_path(), lines)
    }

    /// A new connection (db 0, no `CLIENT SETINFO`), or the error: for probing a server that
    /// may have died.
    pub fn try_conn(&self) -> redis::RedisResult<Connection> {
        connect(self.port)
    }

    /// A new connection (db 0, no `CLIENT SETINFO`).
    pub fn conn(&self) -> Connection {
        connect(self.port).unwrap_or_else(|e| {
            panic!(
                "cannot connect to redis-server on port {}: {e}\n--- redis.log tail ---\n{}",
                self.port,
                self.log_tail(20)
            )
        })
    }
}

/// Start a cluster node of `version` (`--cluster-enabled yes`) like
/// [`RedisServer::start_version`], plus `extra_args`: its cluster config file is `nodes.conf`
/// in its private directory, and its cluster bus gets a free port of its own (by default the
/// bus is the client port + 10000, and a server refuses cluster mode on a client port above
/// 55535, while the harness picks client ports up to 60999).
pub fn start_cluster_node(binary: &Path, version: &str, extra_args: &[&str]) -> RedisServer {
    let bus = free_port().to_string();
    let mut args = vec![
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        &bus,
        // Relative to `--dir`, the node's private directory.
        "--cluster-config-file",
        "nodes.conf",
    ];
    args.extend_from_slice(extra_args);
    RedisServer::start_version(binary, version, &args)
}

/// A `CLUSTER INFO` field of the node `conn` talks to.
pub fn cluster_info(conn: &mut Connection, field: &str) -> Option<String> {
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(conn)
        .expect("CLUSTER INFO");
    info.lines()
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
        .map(str::to_string)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Truth from a live server
// ---------------------------------------------------------------------------------------------

/// `DEBUG DIGEST` (40 hex digits).
pub fn digest(conn: &mut Connection) -> String {
    let d: String = redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(conn)
        .unwrap_or_else(|e| {
            panic!("DEBUG DIGEST failed (is --enable-debug-command yes set?): {e}")
        });
    assert_eq!(
        d.len(),
        40,
        "DEBUG DIGEST reply is not 40 hex digits: {d:?}"
    );
    d
}

/// DBSIZE of every db 0..16 that has keys. Leaves the connection on db 0.
pub fn dbsizes(conn: &mut Connection) -> BTreeMap<u32, u64> {
    dbsizes_of(conn, 0..16u32)
}

/// DBSIZE of each of `dbs` that has keys. Leaves the connection on db 0.
#[allow(dead_code)]
pub fn dbsizes_of(conn: &mut Connection, dbs: impl IntoIterator<Item = u32>) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for db in dbs {
        let (n,): (u64,) = redis::pipe()
            .cmd("SELECT")
            .arg(db)
            .ignore()
            .cmd("DBSIZE")
            .query(conn)
            .unwrap_or_else(|e| panic!("SELECT {db} + DBSIZE: {e}"));
        if n > 0 {
            out.insert(db, n);
        }
    }
    select(conn, 0);
    out
}

pub fn select(conn: &mut Connection, db: u32) {
    redis::cmd("SELECT")
        .arg(db)
        .exec(conn)
        .unwrap_or_else(|e| panic!("SELECT {db}: {e}"));
}

/// Per db: (keys, expires) as `INFO keyspace` reports them.
pub fn keyspace_info(conn: &mut Connection) -> BTreeMap<u32, (u64, u64)> {
    let info: String = redis::cmd("INFO")
        .arg("keyspace")
        .query(conn)
        .expect("INFO keyspace");
    let mut out = BTreeMap::new();
    for line in info.lines() {
        let Some(rest) = line.trim().strip_prefix("db") else {
            continue;
        };
        let Some((db, fields)) = rest.split_once(':') else {
            continue;
        };
        let db: u32 = db
            .parse()
            .unwrap_or_else(|_| panic!("INFO keyspace line {line:?}"));
        let mut keys = None;
        let mut expires = None;
        for kv in fields.split(',') {
            match kv.split_once('=') {
                Some(("keys", v)) => keys = v.parse().ok(),
                Some(("expires", v)) => expires = v.parse().ok(),
                _ => {}
            }
        }
        out.insert(
            db,
            (
                keys.unwrap_or_else(|| panic!("no keys= in {line:?}")),
                expires.unwrap_or_else(|| panic!("no expires= in {line:?}")),
            ),
        );
    }
    out
}

/// Element counts of the main key dict's hash tables from `DEBUG HTSTATS db`:
/// `[ht0]` when not rehashing, `[ht0, ht1]` while rehashing. Does not rehash anything.
pub fn main_dict_tables(conn: &mut Connection, db: u32) -> Vec<u64> {
    let stats: String = redis::cmd("DEBUG")
        .arg("HTSTATS")
        .arg(db)
        .query(conn)
        .unwrap_or_else(|e| panic!("DEBUG HTSTATS {db}: {e}"));
    let main = stats.split("[Expires HT]").next().unwrap_or("");
    let mut tables = Vec::new();
    for line in main.lines() {
        if let Some(n) = line.trim().strip_prefix("number of elements:") {
            tables.push(
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("HTSTATS line {line:?}")),
            );
        } else if line.contains("No stats available for empty dictionaries") {
            tables.push(0);
        }
    }
    assert!(
        !tables.is_empty() && tables.len() <= 2,
        "cannot read DEBUG HTSTATS {db}:\n{stats}"
    );
    assert_eq!(
        tables.len() == 2,
        main.contains("rehashing target"),
        "DEBUG HTSTATS {db} has an unexpected shape:\n{stats}"
    );
    tables
}

/// Take a core of the running server with `gcore -o out_dir/core <pid>`; returns `out_dir/core.<pid>`.
pub fn gcore(server: &RedisServer, out_dir: &Path) -> PathBuf {
    let prefix = out_dir.join("core");
    let out = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(server.pid().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run gcore (is gdb installed?)");
    let core = out_dir.join(format!("core.{}", server.pid()));
    assert!(
        out.status.success() && core.is_file(),
        "gcore of pid {} failed ({}), core {} exists: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        server.pid(),
        out.status,
        core.display(),
        core.exists(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    core
}

// ---------------------------------------------------------------------------------------------
// Cores written by the kernel
// ---------------------------------------------------------------------------------------------

/// The file name the kernel gives the core of `pid`, from `kernel.core_pattern` and
/// `kernel.core_uses_pid`, relative to the crashing process's cwd. Panics (the test must not be
/// skipped) when the pattern pipes to a helper or names an absolute path.
pub fn kernel_core_name(pid: u32) -> String {
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern")
        .expect("read /proc/sys/kernel/core_pattern")
        .trim_end_matches('\n')
        .to_string();
    let uses_pid = fs::read_to_string("/proc/sys/kernel/core_uses_pid")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let fix = "the kernel-core tests (kernel_core_recovers, the matrix's *_kernel_core) need the \
               kernel to write cores as plain files in the crashing process's directory: .ci/run \
               must set `sysctl -w kernel.core_pattern=core` (as root, before `cargo test`)";
    assert!(
        !pattern.starts_with('|'),
        "kernel.core_pattern is {pattern:?}: cores go to a helper (systemd-coredump, apport…), not \
         to a file. {fix}"
    );
    assert!(
        !pattern.starts_with('/') && !pattern.contains('/'),
        "kernel.core_pattern is {pattern:?}: cores are written under another directory. {fix}"
    );
    assert!(!pattern.is_empty(), "kernel.core_pattern is empty. {fix}");
    let mut name = String::new();
    let mut has_pid = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            name.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => name.push('%'),
            Some('p') => {
                has_pid = true;
                name.push_str(&pid.to_string());
            }
            other => panic!(
                "kernel.core_pattern {pattern:?} uses %{} which this test does not expand. {fix}",
                other.map(String::from).unwrap_or_default()
            ),
        }
    }
    if uses_pid && !has_pid {
        name.push_str(&format!(".{pid}"));
    }
    name
}

/// Removes a file when dropped (kernel cores are large and root-only).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// The dataset
// ---------------------------------------------------------------------------------------------

/// db → type → encoding → number of keys, with the names `TYPE` and `OBJECT ENCODING` use.
pub type Census = BTreeMap<u32, BTreeMap<String, BTreeMap<String, u64>>>;

/// What [`fill_dataset`] made.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Every key that carries a TTL, as (db, key).
    pub ttl_keys: Vec<(u32, Vec<u8>)>,
    /// The db whose key dict was left half-rehashed.
    pub rehashing_db: u32,
    /// Keys per db × type × encoding, read back from the server.
    pub census: Census,
    /// Every stream key, as (db, key).
    pub streams: Vec<(u32, Vec<u8>)>,
}

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// Collects the commands for one db and the encodings its keys must end up with.
struct DbFill {
    db: u32,
    pipe: redis::Pipeline,
    queued: usize,
    /// (key, TYPE, OBJECT ENCODING) to check once everything is written.
    expect: Vec<(Vec<u8>, &'static str, &'static str)>,
    ttl_keys: Vec<Vec<u8>>,
    ttl_counter: i64,
}

impl DbFill {
    fn new(db: u32) -> Self {
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg(db).ignore();
        DbFill {
            db,
            pipe,
            queued: 0,
            expect: Vec::new(),
            ttl_keys: Vec::new(),
            ttl_counter: 0,
        }
    }

    /// Queue a command whose reply is ignored (errors still fail the pipeline).
    fn cmd(&mut self, conn: &mut Connection, cmd: redis::Cmd) {
        self.pipe.add_command(cmd).ignore();
        self.queued += 1;
        if self.queued >= 500 {
            self.flush(conn);
        }
    }

    fn flush(&mut self, conn: &mut Connection) {
        if self.queued > 0 {
            self.pipe
                .exec(conn)
                .unwrap_or_else(|e| panic!("filling db {}: pipeline failed: {e}", self.db));
        }
        self.pipe = redis::pipe();
        self.pipe.cmd("SELECT").arg(self.db).ignore();
        self.queued = 0;
    }

    fn expect(&mut self, key: &[u8], ty: &'static str, enc: &'static str) {
        self.expect.push((key.to_vec(), ty, enc));
    }

    fn set(&mut self, conn: &mut Connection, key: &[u8], value: &[u8], enc: &'static str) {
        let mut c = redis::cmd("SET");
        c.arg(key).arg(value);
        self.cmd(conn, c);
        self.expect(key, "string", enc);
    }

    /// Push `items` with RPUSH in batches.
    fn rpush(&mut self, conn: &mut Connection, key: &[u8], items: &[Vec<u8>]) {
        for chunk in items.chunks(200) {
            let mut c = redis::cmd("RPUSH");
            c.arg(key);
            for it in chunk {
                c.arg(it.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    fn sadd(&mut self, conn: &mut Connection, key: &[u8], members: &[Vec<u8>]) {
        for chunk in members.chunks(200) {
            let mut c = redis::cmd("SADD");
            c.arg(key);
            for m in chunk {
                c.arg(m.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    fn zadd(&mut self, conn: &mut Connection, key: &[u8], pairs: &[(String, Vec<u8>)]) {
        for chunk in pairs.chunks(200) {
            let mut c = redis::cmd("ZADD");
            c.arg(key);
            for (score, member) in chunk {
                c.arg(score.as_str()).arg(member.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    fn hset(&mut self, conn: &mut Connection, key: &[u8], pairs: &[(Vec<u8>, Vec<u8>)]) {
        for chunk in pairs.chunks(200) {
            let mut c = redis::cmd("HSET");
            c.arg(key);
            for (f, v) in chunk {
                c.arg(f.as_slice()).arg(v.as_slice());
            }
            self.cmd(conn, c);
        }
    }

    /// Give `key` a TTL 1–10 days out, varying the command (PEXPIRE, EXPIRE, PEXPIREAT).
    fn ttl(&mut self, conn: &mut Connection, key: &[u8]) {
        self.ttl_counter += 1;
        let n = self.ttl_counter;
        let offset_ms = DAY_MS + (n * 7_919_113 + i64::from(self.db) * 104_729) % (9 * DAY_MS);
        let mut c;
        match n % 3 {
            0 => {
                c = redis::cmd("PEXPIRE");
                c.arg(key).arg(offset_ms);
            }
            1 => {
                c = redis::cmd("EXPIRE");
                c.arg(key).arg(offset_ms / 1000);
            }
            _ => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock after 1970")
                    .as_millis() as i64;
                c = redis::cmd("PEXPIREAT");
                c.arg(key).arg(now_ms + offset_ms);
            }
        }
        self.cmd(conn, c);
        self.ttl_keys.push(key.to_vec());
    }

    /// Flush, then check `TYPE` and `OBJECT ENCODING` of every key registered with `expect`.
    fn verify(&mut self, conn: &mut Connection) {
        self.flush(conn);
        let mut bad = Vec::new();
        for chunk in self.expect.chunks(500) {
            let mut p = redis::pipe();
            p.cmd("SELECT").arg(self.db).ignore();
            for (key, _, _) in chunk {
                p.cmd("TYPE").arg(key.as_slice());
                p.cmd("OBJECT").arg("ENCODING").arg(key.as_slice());
            }
            let replies: Vec<redis::Value> = p
                .query(conn)
                .unwrap_or_else(|e| panic!("db {}: TYPE/OBJECT ENCODING pipeline: {e}", self.db));
            for (i, (key, ty, enc)) in chunk.iter().enumerate() {
                let got_ty = value_text(&replies[2 * i]);
                let got_enc = value_text(&replies[2 * i + 1]);
                if got_ty != *ty || got_enc != *enc {
                    bad.push(format!(
                        "db {} key {}: want {ty}/{enc}, got {got_ty}/{got_enc}",
                        self.db,
                        snippet(&show(key), 80)
                    ));
                }
            }
        }
        assert!(
            bad.is_empty(),
            "the dataset does not have the encodings it was built for:\n{}",
            bad.join("\n")
        );
    }
}

fn value_text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::Nil => "<nil>".into(),
        other => format!("{other:?}"),
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Text that LZF compresses well, `len` bytes.
fn compressible(tag: &str, len: usize) -> Vec<u8> {
    let unit = format!("{tag}: the quick brown fox jumps over the lazy dog 0123456789. ");
    unit.as_bytes().iter().copied().cycle().take(len).collect()
}

/// Node summaries of a quicklist from `DEBUG QUICKLIST key 0`: one (container, encoding) pair
/// per node, e.g. ("PACKED", "LZF"). Redis prints them on its stdout, which is buffered; a
/// `DEBUG LOG` line right after makes Redis flush it (it logs to stdout, see `try_start`).
pub fn quicklist_nodes(
    server: &RedisServer,
    conn: &mut Connection,
    db: u32,
    key: &[u8],
) -> Vec<(String, String)> {
    use std::io::{Seek, SeekFrom};
    let from = fs::metadata(server.stdout_path())
        .map(|m| m.len())
        .unwrap_or(0);
    let marker = format!("end-of-quicklist-dump-{}-{db}-{from}", show(key));
    select(conn, db);
    let reply: String = redis::cmd("DEBUG")
        .arg("QUICKLIST")
        .arg(key)
        .arg(0)
        .query(conn)
        .unwrap_or_else(|e| panic!("DEBUG QUICKLIST {}: {e}", show(key)));
    assert!(
        reply.contains("printed on stdout"),
        "DEBUG QUICKLIST reply: {reply:?}"
    );
    redis::cmd("DEBUG")
        .arg("LOG")
        .arg(&marker)
        .exec(conn)
        .expect("DEBUG LOG");
    select(conn, 0);

    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let mut bytes = Vec::new();
        let mut f = fs::File::open(server.stdout_path()).expect("open the server's stdout");
        f.seek(SeekFrom::Start(from))
            .expect("seek in the server's stdout");
        f.read_to_end(&mut bytes).expect("read the server's stdout");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find(&marker) {
            break text[..end].to_string();
        }
        assert!(
            Instant::now() < deadline,
            "DEBUG QUICKLIST output for {} never reached the server's stdout:\n{}",
            show(key),
            snippet(&text, 2000)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let len: Option<usize> = text.lines().find_map(|l| {
        l.strip_prefix("{len : ")?
            .strip_suffix('}')?
            .trim()
            .parse()
            .ok()
    });
    let nodes: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("{container : ")?;
            let (container, rest) = rest.split_once(',')?;
            let enc = rest.trim().strip_prefix("encoding: ")?.split(',').next()?;
            Some((container.trim().to_string(), enc.trim().to_string()))
        })
        .collect();
    assert_eq!(
        len,
        Some(nodes.len()),
        "cannot read DEBUG QUICKLIST output for {}:\n{}",
        show(key),
        snippet(&text, 2000)
    );
    nodes
}

/// Fill the server with every type and encoding Redis 7.0 has, small and large, with TTLs on
/// every type, over dbs 0, 1, 2, 9 and 15 (streams with consumer groups in dbs 0 and 1, see
/// [`fill_streams`]), and leave db 3's key dict half-rehashed. The
/// server must have been started with `--activerehashing no`. Asserts the encodings it intends
/// (TYPE / OBJECT ENCODING, DEBUG QUICKLIST node kinds, DEBUG HTSTATS) so the dataset cannot
/// silently drift. Sets `list-compress-depth 1` for good.
pub fn fill_dataset(server: &RedisServer) -> Dataset {
    let mut conn = server.conn();
    let conn = &mut conn;

    let activerehashing: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("activerehashing")
        .query(conn)
        .expect("CONFIG GET activerehashing");
    assert_eq!(
        activerehashing,
        ["activerehashing", "no"],
        "fill_dataset needs a server started with --activerehashing no"
    );
    // Inner quicklist nodes get LZF-compressed from now on.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("list-compress-depth")
        .arg(1)
        .query(conn)
        .expect("CONFIG SET list-compress-depth 1");

    let rehashing_db = 3;
    let mut ttl_keys = Vec::new();

    // db 3 first: 4096 keys, exactly filling a 4096-bucket table. It is crossed at the very end.
    let mut d3 = DbFill::new(rehashing_db);
    for i in 0..4096u32 {
        let key = format!("r:{i:05}").into_bytes();
        if i % 101 == 7 {
            d3.hset(
                conn,
                &key,
                &[(b("f1"), format!("{i}").into_bytes()), (b("f2"), b("v"))],
            );
            d3.expect(&key, "hash", "listpack");
        } else if i % 103 == 9 {
            d3.rpush(conn, &key, &[b("a"), format!("{i}").into_bytes()]);
            d3.expect(&key, "list", "quicklist");
        } else {
            match i % 3 {
                0 => d3.set(
                    conn,
                    &key,
                    format!("{}", u64::from(i) * 1_000_003).as_bytes(),
                    "int",
                ),
                1 => d3.set(conn, &key, format!("val-{i}").as_bytes(), "embstr"),
                _ => d3.set(conn, &key, &compressible(&format!("raw{i}"), 60), "raw"),
            }
        }
    }
    d3.verify(conn);
    select(conn, rehashing_db);
    let n: u64 = redis::cmd("DBSIZE").query(conn).expect("DBSIZE");
    assert_eq!(
        n, 4096,
        "db {rehashing_db} should hold exactly 4096 keys before the crossing"
    );
    assert_eq!(
        main_dict_tables(conn, rehashing_db),
        [4096],
        "db {rehashing_db} should be one full 4096-bucket table, not rehashing"
    );

    for db in [0u32, 1, 2, 9, 15] {
        let mut d = DbFill::new(db);
        fill_mixed_db(server, conn, &mut d);
        ttl_keys.extend(d.ttl_keys.iter().map(|k| (db, k.clone())));
    }

    // Streams in dbs 0 and 1, made after every other key: the other keys (and the expires
    // dicts' tables, which truncated_core_loses_keys_but_never_panics wants past the keyspace
    // headers now and then) are allocated as before streams were added to the dataset.
    let mut streams = Vec::new();
    for db in [0u32, 1] {
        let set = StreamSet::for_db(db).expect("dbs 0 and 1 have streams");
        let mut d = DbFill::new(db);
        let made = fill_streams(
            conn,
            db,
            set,
            StreamCaps {
                createconsumer: true,
            },
        );
        for key in &made.keys {
            d.expect(key, "stream", "stream");
        }
        if let Some(key) = &made.ttl_key {
            d.ttl(conn, key);
        }
        d.verify(conn);
        ttl_keys.extend(d.ttl_keys.iter().map(|k| (db, k.clone())));
        streams.extend(made.keys.into_iter().map(|k| (db, k)));
    }

    // Census of every db (db 3 is not rehashing yet, so lookups there are harmless).
    let mut census = Census::new();
    for db in [0u32, 1, 2, 3, 9, 15] {
        census.insert(db, census_of_db(conn, db));
    }

    // Cross the power of two in db 3: the 4097th key makes the dict grow to 8192 buckets and
    // start rehashing; with activerehashing off, only operations on this dict move buckets, one
    // per lookup/insert. Move a part of them, and add keys that land in the new table.
    let mut p = redis::pipe();
    p.cmd("SELECT").arg(rehashing_db).ignore();
    p.cmd("SET")
        .arg("r:crossing")
        .arg("the key that made the dict grow")
        .ignore();
    for i in 0..200u32 {
        let key = format!("r:late:{i:03}");
        p.cmd("SET").arg(&key).arg(format!("late-{i}")).ignore();
        p.cmd("OBJECT").arg("ENCODING").arg(&key);
    }
    for i in 0..300u32 {
        p.cmd("EXISTS")
            .arg(format!("r:{:05}", (i * 13) % 4096))
            .ignore();
    }
    let encs: Vec<String> = p.query(conn).expect("db 3 crossing pipeline");
    assert!(
        encs.iter().all(|e| e == "embstr"),
        "late db 3 keys are not all embstr: {encs:?}"
    );
    *census
        .get_mut(&rehashing_db)
        .expect("db 3 census")
        .entry("string".into())
        .or_default()
        .entry("embstr".into())
        .or_default() += 201;

    let tables = main_dict_tables(conn, rehashing_db);
    assert!(
        tables.len() == 2 && tables[0] >= 300 && tables[1] >= 300,
        "db {rehashing_db} should be mid-rehash with many keys in both tables, HTSTATS element counts: {tables:?}"
    );
    assert_eq!(tables.iter().sum::<u64>(), 4096 + 201);
    select(conn, 0);

    let total: u64 = census
        .values()
        .flat_map(|t| t.values())
        .flat_map(|e| e.values())
        .sum();
    let sizes = dbsizes(conn);
    assert_eq!(
        total,
        sizes.values().sum::<u64>(),
        "census {census:?} does not add up to DBSIZE {sizes:?}"
    );

    Dataset {
        ttl_keys,
        rehashing_db,
        census,
        streams,
    }
}

/// Queue the ordinary command that reads a key of type `ty` whole (GET, LRANGE, SMEMBERS,
/// ZRANGE WITHSCORES, HGETALL, XRANGE); a missing key or another type queues PING, so
/// only its type is compared.
pub fn queue_value_read(p: &mut redis::Pipeline, key: &[u8], ty: &str) {
    match ty {
        "string" => p.cmd("GET").arg(key),
        "list" => p.cmd("LRANGE").arg(key).arg(0).arg(-1),
        "set" => p.cmd("SMEMBERS").arg(key),
        "zset" => p.cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES"),
        "hash" => p.cmd("HGETALL").arg(key),
        "stream" => p.cmd("XRANGE").arg(key).arg("-").arg("+"),
        _ => p.cmd("PING"),
    };
}

/// A reply as bytes: bulk and simple strings, OK, integers and doubles as their text.
pub fn bulk(v: &redis::Value) -> Vec<u8> {
    match v {
        redis::Value::BulkString(b) => b.clone(),
        redis::Value::SimpleString(s) => s.clone().into_bytes(),
        redis::Value::Okay => b"OK".to_vec(),
        redis::Value::Int(i) => i.to_string().into_bytes(),
        redis::Value::Double(d) => d.to_string().into_bytes(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// An array, set or map reply as a flat list of byte strings.
pub fn bulks(v: &redis::Value) -> Vec<Vec<u8>> {
    match v {
        redis::Value::Array(items) | redis::Value::Set(items) => items.iter().map(bulk).collect(),
        redis::Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// XRANGE's reply as one item per entry: its ID and field/value pairs, NUL-separated.
pub fn stream_entries(v: &redis::Value) -> Vec<Vec<u8>> {
    let redis::Value::Array(entries) = v else {
        panic!("XRANGE reply {v:?}")
    };
    entries
        .iter()
        .map(|e| {
            let redis::Value::Array(parts) = e else {
                panic!("XRANGE entry {e:?}")
            };
            let mut out = bulk(&parts[0]);
            for f in bulks(&parts[1]) {
                out.push(0);
                out.extend(f);
            }
            out
        })
        .collect()
}

/// The file names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `p` with links and `..` resolved.
pub fn canonical(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|e| panic!("canonicalize {}: {e}", p.display()))
}

/// Where `.ci/provision-redis.sh` puts the builds: `$REDIS_BUILDS_DIR`, or
/// `<repo>/target/redis-builds`.
pub fn builds_dir() -> PathBuf {
    std::env::var_os("REDIS_BUILDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/redis-builds"))
}

/// The READY line of build `name` and the build-id it records (lower case). Panics (the
/// test fails, it is not skipped) when READY is missing or does not list the build;
/// `hint` says how to provision it.
pub fn ready_entry(name: &str, hint: &str) -> (String, String) {
    ready_entry_in("READY", name, hint)
}

/// [`ready_entry`] from another list of the builds dir: `READY8`, which
/// `.ci/provision-redis8.sh` writes for the Redis 8 builds.
pub fn ready_entry_in(file: &str, name: &str, hint: &str) -> (String, String) {
    let ready_path = builds_dir().join(file);
    let ready = std::fs::read_to_string(&ready_path).unwrap_or_else(|e| {
        panic!(
            "build {name}: cannot read {} ({e}): the Redis builds are missing; {hint}",
            ready_path.display()
        )
    });
    let line = ready
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| {
            panic!(
                "build {name} is not listed in {}:\n{ready}\n{hint}",
                ready_path.display()
            )
        });
    let id = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("build-id="))
        .unwrap_or_else(|| panic!("no build-id= in READY line {line:?}; {hint}"))
        .to_ascii_lowercase();
    (line.to_owned(), id)
}

/// The server binary `.ci/provision-redis.sh` built for `version` (`6.2.14`,
/// `valkey-8.1.8`), under `$REDIS_BUILDS_DIR` or `target/redis-builds/`. Fails the test
/// when it is missing.
pub fn provisioned_binary(version: &str) -> PathBuf {
    let dir = builds_dir();
    let name = if version.starts_with("valkey-") {
        "valkey-server"
    } else {
        "redis-server"
    };
    let bin = dir.join(version).join(name);
    assert!(
        bin.exists(),
        "{} is missing: run .ci/provision-redis.sh",
        bin.display()
    );
    bin
}

/// Every key of `db` (SCAN, deduplicated). Leaves the connection on `db`.
pub fn scan_keys(conn: &mut Connection, db: u32) -> BTreeSet<Vec<u8>> {
    select(conn, db);
    let mut keys = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .unwrap_or_else(|e| panic!("SCAN in db {db}: {e}"));
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys
}

/// Keys per type × encoding in one db, via SCAN + TYPE + OBJECT ENCODING. Leaves the
/// connection on db 0.
pub fn census_of_db(conn: &mut Connection, db: u32) -> BTreeMap<String, BTreeMap<String, u64>> {
    let keys = scan_keys(conn, db);
    let keys: Vec<Vec<u8>> = keys.into_iter().collect();
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("TYPE").arg(k.as_slice());
            p.cmd("OBJECT").arg("ENCODING").arg(k.as_slice());
        }
        let replies: Vec<redis::Value> = p.query(conn).expect("census pipeline");
        for pair in replies.chunks(2) {
            *out.entry(value_text(&pair[0]))
                .or_default()
                .entry(value_text(&pair[1]))
                .or_default() += 1;
        }
    }
    select(conn, 0);
    out
}

/// One db with one or more keys of every type × encoding (small and large), TTLs on every type.
fn fill_mixed_db(server: &RedisServer, conn: &mut Connection, d: &mut DbFill) {
    let db = d.db;
    let tag = format!("db{db}");

    // ---- strings ----
    d.set(conn, b"str:int:shared", b"5", "int");
    d.set(conn, b"str:int:zero", b"0", "int");
    d.set(conn, b"str:int:big", b"123456789012", "int");
    d.set(conn, b"str:int:neg", b"-42", "int");
    d.set(
        conn,
        b"str:int:negbig",
        format!("-{}", 987_654_321_000u64 + u64::from(db)).as_bytes(),
        "int",
    );
    d.set(conn, b"str:int:max", b"9223372036854775807", "int");
    d.set(conn, b"str:int:min", b"-9223372036854775808", "int");
    d.set(conn, b"str:notint:lead0", b"007", "embstr");
    d.set(conn, b"str:notint:plus", b"+5", "embstr");
    d.set(conn, b"str:notint:huge", b"99999999999999999999", "embstr");
    d.set(conn, b"str:float", b"3.14159", "embstr");
    d.set(conn, b"str:embstr:empty", b"", "embstr");
    d.set(
        conn,
        b"str:embstr:short",
        format!("hello {tag}").as_bytes(),
        "embstr",
    );
    d.set(conn, b"str:embstr:44", &[b'e'; 44], "embstr");
    d.set(conn, b"str:raw:45", &[b'r'; 45], "raw");
    d.set(conn, b"str:raw:300", &compressible(&tag, 300), "raw");
    d.set(conn, b"str:raw:big", &compressible(&tag, 100 * 1024), "raw");
    d.set(
        conn,
        b"str:raw:random",
        &pseudo_random_bytes(u64::from(db) + 1, 20_000),
        "raw",
    );
    d.set(
        conn,
        "str:utf8:ключ:🔑".as_bytes(),
        "значение ✓".as_bytes(),
        "embstr",
    );
    d.set(
        conn,
        b"bin:\x00\xff\r\n:key",
        b"\x00\xff\r\nvalue\x00",
        "embstr",
    );
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(300).collect();
    d.set(conn, b"bin:\r\n\x00allbytes", &all_bytes, "raw");
    d.set(conn, &[0u8, 0xff, b'\r', b'\n'], b"x", "embstr");
    let long_key = compressible("longkey", 300);
    d.set(conn, &long_key, b"value of a 300-byte key", "embstr");
    // APPEND turns even a short string raw.
    d.set(conn, b"str:raw:append", b"abc", "raw");
    let mut c = redis::cmd("APPEND");
    c.arg("str:raw:append").arg("def");
    d.cmd(conn, c);
    // INCR keeps an int encoding.
    let mut c = redis::cmd("INCRBY");
    c.arg("str:int:incr").arg(1_000_000_007i64 + i64::from(db));
    d.cmd(conn, c);
    d.expect(b"str:int:incr", "string", "int");
    for key in [
        "str:int:big",
        "str:notint:lead0",
        "str:raw:45",
        "str:raw:big",
        "str:int:shared",
    ] {
        d.ttl(conn, key.as_bytes());
    }
    d.ttl(conn, b"bin:\x00\xff\r\n:key");
    // A SET with PX directly.
    let mut c = redis::cmd("SET");
    c.arg("str:px")
        .arg("set with px")
        .arg("PX")
        .arg(3 * DAY_MS + i64::from(db));
    d.cmd(conn, c);
    d.expect(b"str:px", "string", "embstr");
    d.ttl_keys.push(b("str:px"));

    // ---- lists (all quicklist in 7.0) ----
    d.rpush(
        conn,
        b"list:small",
        &[b("1"), b("-2"), b("three"), b(""), b"\x00\xff\r\n".to_vec()],
    );
    d.expect(b"list:small", "list", "quicklist");
    let ints: Vec<Vec<u8>> = [
        "0",
        "127",
        "128",
        "-1",
        "4095",
        "4096",
        "-4096",
        "32767",
        "32768",
        "-32769",
        "8388607",
        "8388608",
        "-8388609",
        "2147483647",
        "2147483648",
        "-2147483649",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "01",
        "1.5",
    ]
    .iter()
    .map(|s| b(s))
    .collect();
    d.rpush(conn, b"list:ints", &ints);
    d.expect(b"list:ints", "list", "quicklist");
    let lens: Vec<Vec<u8>> = [0usize, 1, 63, 64, 4095, 4096, 5000]
        .iter()
        .map(|&n| compressible(&format!("len{n}"), n))
        .collect();
    d.rpush(conn, b"list:strlens", &lens);
    d.expect(b"list:strlens", "list", "quicklist");
    let big: Vec<Vec<u8>> = (0..4000u32)
        .map(|i| {
            if i % 5 == 0 {
                format!("{}", i64::from(i) * 7919 - 100_000).into_bytes()
            } else {
                format!(
                    "{tag}-element-{i:05}-{}",
                    "abcdefgh".repeat((i % 7) as usize)
                )
                .into_bytes()
            }
        })
        .collect();
    d.rpush(conn, b"list:big", &big);
    d.expect(b"list:big", "list", "quicklist");
    d.ttl(conn, b"list:small");
    d.ttl(conn, b"list:big");

    // PLAIN nodes: elements at or above the packed threshold get a node of their own.
    d.flush(conn);
    let reply: redis::RedisResult<String> = redis::cmd("DEBUG")
        .arg("QUICKLIST-PACKED-THRESHOLD")
        .arg(1000)
        .query(conn);
    match reply {
        Ok(r) if r == "OK" => {}
        other => panic!(
            "DEBUG QUICKLIST-PACKED-THRESHOLD 1000 did not work (it exists in 7.0): {other:?}"
        ),
    }
    let small: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("{tag}-plain-neighbour-{i}").into_bytes())
        .collect();
    d.rpush(conn, b"list:plain", &small);
    d.rpush(
        conn,
        b"list:plain",
        &[
            compressible(&format!("{tag}-plainz"), 3000),
            pseudo_random_bytes(u64::from(db) + 77, 5000),
        ],
    );
    d.rpush(conn, b"list:plain", &small);
    let mut c = redis::cmd("LPUSH");
    c.arg("list:plain")
        .arg(compressible(&format!("{tag}-plainhead"), 2500));
    d.cmd(conn, c);
    d.expect(b"list:plain", "list", "quicklist");
    d.rpush(
        conn,
        b"list:plain:only",
        &[pseudo_random_bytes(u64::from(db) + 99, 4000)],
    );
    d.expect(b"list:plain:only", "list", "quicklist");
    d.ttl(conn, b"list:plain");
    d.flush(conn);
    let reply: String = redis::cmd("DEBUG")
        .arg("QUICKLIST-PACKED-THRESHOLD")
        .arg(1u64 << 30)
        .query(conn)
        .expect("reset DEBUG QUICKLIST-PACKED-THRESHOLD to 1 GiB");
    assert_eq!(reply, "OK");

    // ---- sets ----
    let set16: Vec<Vec<u8>> = ["1", "2", "3", "-5", "300"].iter().map(|s| b(s)).collect();
    d.sadd(conn, b"set:int16", &set16);
    d.expect(b"set:int16", "set", "intset");
    let set32: Vec<Vec<u8>> = ["1", "70000", "-70000"].iter().map(|s| b(s)).collect();
    d.sadd(conn, b"set:int32", &set32);
    d.expect(b"set:int32", "set", "intset");
    let set64: Vec<Vec<u8>> = [
        "1",
        "1099511627776",
        "-4611686018427387904",
        "9223372036854775807",
    ]
    .iter()
    .map(|s| b(s))
    .collect();
    d.sadd(conn, b"set:int64", &set64);
    d.expect(b"set:int64", "set", "intset");
    let set_int_large: Vec<Vec<u8>> = (0..600i64)
        .map(|i| format!("{}", i * 37 - 5000).into_bytes())
        .collect();
    d.sadd(conn, b"set:int:large", &set_int_large);
    d.expect(b"set:int:large", "set", "hashtable");
    d.sadd(
        conn,
        b"set:str:small",
        &[b("a"), b("b"), b"\x00\xff".to_vec(), b("")],
    );
    d.expect(b"set:str:small", "set", "hashtable");
    let set_str_large: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| format!("{tag}-member-{i}").into_bytes())
        .collect();
    d.sadd(conn, b"set:str:large", &set_str_large);
    d.expect(b"set:str:large", "set", "hashtable");
    d.sadd(
        conn,
        b"set:mixed",
        &[b("1"), b("2"), b("x"), compressible("m", 100)],
    );
    d.expect(b"set:mixed", "set", "hashtable");
    d.ttl(conn, b"set:int16");
    d.ttl(conn, b"set:str:large");

    // ---- sorted sets ----
    let small_z: Vec<(String, Vec<u8>)> = [
        ("1", "one"),
        ("2.5", "two and a half"),
        ("-3", "minus three"),
        ("0", "zero"),
        ("1e-10", "tiny"),
        ("123456789.123", "big fractional"),
        ("-0.5", "12345"),
        ("0.1", "point one"),
        ("4611686018427387904", "2^62"),
    ]
    .iter()
    .map(|(s, m)| (s.to_string(), b(m)))
    .collect();
    d.zadd(conn, b"zset:small", &small_z);
    d.expect(b"zset:small", "zset", "listpack");
    d.zadd(
        conn,
        b"zset:small:inf",
        &[
            ("inf".into(), b("up")),
            ("-inf".into(), b("down")),
            ("0".into(), b("mid")),
        ],
    );
    d.expect(b"zset:small:inf", "zset", "listpack");
    let mut big_z: Vec<(String, Vec<u8>)> = (0..200i64)
        .map(|i| {
            let score = if i % 3 == 0 {
                format!("{}", i * 11 - 900)
            } else {
                format!("{}.{}", i - 100, i % 10)
            };
            (score, format!("{tag}-zmember-{i}").into_bytes())
        })
        .collect();
    big_z.push(("+inf".into(), b("plus infinity")));
    big_z.push(("-inf".into(), b("minus infinity")));
    big_z.push(("1.7976931348623157e308".into(), compressible("zlong", 100)));
    d.zadd(conn, b"zset:big", &big_z);
    d.expect(b"zset:big", "zset", "skiplist");
    d.zadd(
        conn,
        b"zset:longmember",
        &[
            ("1".into(), b("a")),
            ("2.75".into(), compressible("longmember", 65)),
            ("-3".into(), b("c")),
        ],
    );
    d.expect(b"zset:longmember", "zset", "skiplist");
    d.ttl(conn, b"zset:small");
    d.ttl(conn, b"zset:big");

    // ---- hashes ----
    d.hset(
        conn,
        b"hash:small",
        &[
            (b("name"), format!("small hash {tag}").into_bytes()),
            (b("n"), b("12345")),
            (b("neg"), b("-1")),
            (b("empty"), b("")),
            (b""[..].to_vec(), b("empty field")),
            (b"\x00\xff".to_vec(), b"\r\n\x00".to_vec()),
            (b("1"), b("2")),
        ],
    );
    d.expect(b"hash:small", "hash", "listpack");
    let big_h: Vec<(Vec<u8>, Vec<u8>)> = (0..700u32)
        .map(|i| {
            let v = if i % 4 == 0 {
                format!("{}", i * 1000)
            } else {
                format!("{tag}-value-{i}")
            };
            (format!("field-{i}").into_bytes(), v.into_bytes())
        })
        .collect();
    d.hset(conn, b"hash:big", &big_h);
    d.expect(b"hash:big", "hash", "hashtable");
    d.hset(
        conn,
        b"hash:longval",
        &[(b("a"), b("1")), (b("long"), compressible("hlong", 100))],
    );
    d.expect(b"hash:longval", "hash", "hashtable");
    d.hset(
        conn,
        b"hash:longfield",
        &[(compressible("hfield", 80), b("v")), (b("b"), b("2"))],
    );
    d.expect(b"hash:longfield", "hash", "hashtable");
    d.ttl(conn, b"hash:small");
    d.ttl(conn, b"hash:big");

    // ---- bulk: many small keys (strings mostly), some with TTLs ----
    let bulk = match db {
        0 => 5000,
        1 => 1500,
        2 => 800,
        9 => 2000,
        _ => 100,
    };
    for i in 0..bulk {
        let key = format!("bulk:{i:05}").into_bytes();
        match i % 10 {
            0..=3 => d.set(
                conn,
                &key,
                format!("{}", i64::from(i) * 7919 - 1_000_000).as_bytes(),
                "int",
            ),
            4..=7 => d.set(conn, &key, format!("{tag}-value-{i}").as_bytes(), "embstr"),
            8 => d.set(
                conn,
                &key,
                &compressible(&format!("{tag}-{i}"), 50 + (i % 200) as usize),
                "raw",
            ),
            _ => {
                d.hset(conn, &key, &[(b("i"), format!("{i}").into_bytes())]);
                d.expect(&key, "hash", "listpack");
            }
        }
        if i % 13 == 0 {
            d.ttl(conn, &key);
        }
    }

    d.verify(conn);

    // The quicklists really have LZF-compressed and PLAIN nodes.
    let nodes = quicklist_nodes(server, conn, db, b"list:big");
    assert!(
        nodes.len() >= 10,
        "list:big should span many nodes: {nodes:?}"
    );
    assert!(
        nodes
            .iter()
            .filter(|(c, e)| c == "PACKED" && e == "LZF")
            .count()
            >= 5,
        "list:big should have LZF-compressed inner nodes (list-compress-depth 1): {nodes:?}"
    );
    let nodes = quicklist_nodes(server, conn, db, b"list:plain");
    assert!(
        nodes.iter().any(|(c, e)| c == "PLAIN" && e == "LZF"),
        "list:plain should have a compressed PLAIN node: {nodes:?}"
    );
    assert!(
        nodes.iter().any(|(c, e)| c == "PLAIN" && e == "RAW"),
        "list:plain should have an uncompressed PLAIN node: {nodes:?}"
    );
    assert!(
        nodes.iter().any(|(c, e)| c == "PACKED" && e == "LZF"),
        "list:plain should have compressed packed nodes: {nodes:?}"
    );
    let nodes = quicklist_nodes(server, conn, db, b"list:plain:only");
    assert_eq!(nodes, [("PLAIN".to_string(), "RAW".to_string())]);
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/// Which stream commands a server has (streams themselves are 5.0+).
#[derive(Clone, Copy, Debug)]
pub struct StreamCaps {
    /// `XGROUP CREATECONSUMER` (6.2+, Valkey).
    pub createconsumer: bool,
}

/// The streams of one db: [`StreamSet::First`] in db 0, [`StreamSet::Second`] in db 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamSet {
    /// `stream:events` and `stream:trimmed` (the XTRIM).
    First,
    /// A binary-named events stream and `stream:expiring` (the one with a TTL).
    Second,
}

impl StreamSet {
    /// The set a mixed db gets: dbs 0 and 1 have streams, the others none.
    pub fn for_db(db: u32) -> Option<StreamSet> {
        match db {
            0 => Some(StreamSet::First),
            1 => Some(StreamSet::Second),
            _ => None,
        }
    }
}

/// What [`fill_streams`] made in one db.
#[derive(Debug, Clone)]
pub struct FilledStreams {
    /// Every stream key it made.
    pub keys: Vec<Vec<u8>>,
    /// The stream the caller must give a TTL (with its own TTL commands).
    pub ttl_key: Option<Vec<u8>>,
    /// Per key, the listpack nodes XINFO STREAM counts (`radix-tree-keys`), for notes.
    pub nodes: Vec<(Vec<u8>, i64)>,
}

fn cmd_text(c: &redis::Cmd) -> String {
    c.args_iter()
        .map(|a| match a {
            redis::Arg::Simple(b) => snippet(&show(b), 40),
            _ => "<cursor>".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run one command, panicking with the command on an error reply.
fn run_cmd(conn: &mut Connection, c: &redis::Cmd) -> redis::Value {
    c.query::<redis::Value>(conn)
        .unwrap_or_else(|e| panic!("`{}` failed: {e}", cmd_text(c)))
}

fn cmd_of(parts: &[&[u8]]) -> redis::Cmd {
    let mut c = redis::cmd(std::str::from_utf8(parts[0]).expect("command name"));
    for p in &parts[1..] {
        c.arg(*p);
    }
    c
}

fn int_reply(v: &redis::Value, what: &str) -> i64 {
    match v {
        redis::Value::Int(i) => *i,
        other => panic!("{what}: expected an integer reply, got {other:?}"),
    }
}

/// `field` of a flat field/value array (RESP2 XINFO replies).
fn xinfo_field<'v>(v: &'v redis::Value, field: &str) -> Option<&'v redis::Value> {
    let redis::Value::Array(items) = v else {
        return None;
    };
    items.chunks(2).find_map(|p| match &p[0] {
        redis::Value::BulkString(b) if b == field.as_bytes() => p.get(1),
        redis::Value::SimpleString(s) if s == field => p.get(1),
        _ => None,
    })
}

type StreamFields = Vec<(Vec<u8>, Vec<u8>)>;

/// XADD every (id, fields) in pipelines of 200.
fn xadd_entries(conn: &mut Connection, key: &[u8], entries: &[(String, StreamFields)]) {
    for chunk in entries.chunks(200) {
        let mut p = redis::pipe();
        for (id, fields) in chunk {
            let c = p.cmd("XADD").arg(key).arg(id.as_str());
            for (f, v) in fields {
                c.arg(f.as_slice()).arg(v.as_slice());
            }
            c.ignore();
        }
        p.exec(conn)
            .unwrap_or_else(|e| panic!("XADD pipeline on {}: {e}", show(key)));
    }
}

/// `XREADGROUP GROUP group consumer COUNT count STREAMS key >`; asserts that `count` entries
/// were delivered. Sleeps 2 ms after, so that deliveries differ in time.
fn xreadgroup(conn: &mut Connection, key: &[u8], group: &str, consumer: &str, count: usize) {
    let n = count.to_string();
    let reply = run_cmd(
        conn,
        &cmd_of(&[
            b"XREADGROUP",
            b"GROUP",
            group.as_bytes(),
            consumer.as_bytes(),
            b"COUNT",
            n.as_bytes(),
            b"STREAMS",
            key,
            b">",
        ]),
    );
    // [[key, [entry, …]]]
    let delivered = match &reply {
        redis::Value::Array(streams) => match streams.first() {
            Some(redis::Value::Array(kv)) => match kv.get(1) {
                Some(redis::Value::Array(entries)) => entries.len(),
                _ => 0,
            },
            _ => 0,
        },
        _ => 0,
    };
    assert_eq!(
        delivered,
        count,
        "XREADGROUP {group} {consumer} COUNT {count} on {} delivered {delivered} entries: {}",
        show(key),
        snippet(&format!("{reply:?}"), 300)
    );
    std::thread::sleep(Duration::from_millis(2));
}

/// XACK or XDEL `ids`; asserts the reply counts all of them.
fn xids(conn: &mut Connection, head: &[&[u8]], ids: &[String]) {
    let mut c = cmd_of(head);
    for id in ids {
        c.arg(id.as_str());
    }
    let n = int_reply(&run_cmd(conn, &c), &cmd_text(&c));
    assert_eq!(
        n,
        ids.len() as i64,
        "`{}` should count every ID",
        snippet(&cmd_text(&c), 200)
    );
}

/// Fill `db` with the streams of `set`, with the commands of a 5.0 server (plus XGROUP
/// CREATECONSUMER where `caps` has it): every stream has more than 100 entries over several
/// listpack nodes (asserted with XINFO STREAM's `radix-tree-keys`), one or two consumer groups
/// whose pending entries XREADGROUP made, some of them acknowledged with XACK; some entries
/// are deleted with XDEL (pending ones among them), `stream:trimmed` is cut by an exact XTRIM
/// below entries still pending, and `stream:expiring` is returned as the key the caller must
/// give a TTL. IDs are explicit (with sequence numbers) and deterministic; field values mix
/// integers, text, LZF-compressible text and binary. Leaves the connection on `db`.
pub fn fill_streams(
    conn: &mut Connection,
    db: u32,
    set: StreamSet,
    caps: StreamCaps,
) -> FilledStreams {
    select(conn, db);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let tag = format!("db{db}");
    let base = 1_700_000_000_000u64 + u64::from(db) * 10_000_000;

    // The events stream: 320 entries, two IDs per millisecond (sequence 0 and 1).
    let events: Vec<u8> = match set {
        StreamSet::First => b"stream:events".to_vec(),
        StreamSet::Second => b"stream:\x00events\xff".to_vec(),
    };
    let id = |i: usize| format!("{}-{}", base + (i / 2) as u64, i % 2);
    let ids = |r: std::ops::Range<usize>| r.map(id).collect::<Vec<String>>();
    let kinds = ["click", "view", "purchase"];
    let entries: Vec<(String, StreamFields)> = (0..320usize)
        .map(|i| {
            let mut f: StreamFields = vec![
                (b"n".to_vec(), i.to_string().into_bytes()),
                (b"kind".to_vec(), kinds[i % 3].as_bytes().to_vec()),
            ];
            if i % 10 == 3 {
                f.push((
                    b"payload".to_vec(),
                    compressible(&format!("{tag}-payload-{i}"), 150 + i % 100),
                ));
            }
            if i % 17 == 5 {
                f.push((
                    b"bin\x00\xff".to_vec(),
                    pseudo_random_bytes(u64::from(db) * 1000 + i as u64, 1 + i % 20),
                ));
            }
            (id(i), f)
        })
        .collect();
    xadd_entries(conn, &events, &entries);
    let k = events.as_slice();
    run_cmd(
        conn,
        &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:workers", b"0"]),
    );
    run_cmd(
        conn,
        &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:audit", id(99).as_bytes()]),
    );
    xreadgroup(conn, k, "g:workers", "alice", 40); // 0..40
    xreadgroup(conn, k, "g:workers", "bob", 25); // 40..65
    if caps.createconsumer {
        let n = int_reply(
            &run_cmd(
                conn,
                &cmd_of(&[b"XGROUP", b"CREATECONSUMER", k, b"g:workers", b"carol"]),
            ),
            "XGROUP CREATECONSUMER",
        );
        assert_eq!(n, 1, "XGROUP CREATECONSUMER carol on {}", show(k));
    }
    xreadgroup(conn, k, "g:audit", "dave", 15); // 100..115
    let mut acked = ids(0..10);
    acked.extend(ids(45..50));
    xids(conn, &[b"XACK", k, b"g:workers"], &acked);
    xids(conn, &[b"XACK", k, b"g:audit"], &ids(100..103));
    // Deleted: pending entries of alice (20..25), the second node's first entry (100, read
    // and acked by g:audit), a run in the second node, and the last entry.
    let mut deleted = ids(20..25);
    deleted.push(id(100));
    deleted.extend(ids(150..160));
    deleted.push(id(319));
    xids(conn, &[b"XDEL", k], &deleted);
    keys.push(events);

    match set {
        StreamSet::First => {
            // Trimmed to its last 120 entries after a consumer read 60 (of which 40 stay
            // pending though trimmed away); a second consumer reads on after the trim.
            let key = b"stream:trimmed".to_vec();
            let k = key.as_slice();
            let tbase = base + 1_000_000;
            let tid = |i: usize| format!("{}-0", tbase + 3 * i as u64);
            let entries: Vec<(String, StreamFields)> = (0..260usize)
                .map(|i| {
                    (
                        tid(i),
                        vec![
                            (b"v".to_vec(), format!("{tag}-t{i}").into_bytes()),
                            (
                                b"i".to_vec(),
                                (i as i64 * 7919 - 500_000).to_string().into_bytes(),
                            ),
                        ],
                    )
                })
                .collect();
            xadd_entries(conn, k, &entries);
            run_cmd(conn, &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:trim", b"0"]));
            xreadgroup(conn, k, "g:trim", "r1", 60);
            xids(
                conn,
                &[b"XACK", k, b"g:trim"],
                &(0..20).map(tid).collect::<Vec<_>>(),
            );
            let trimmed = int_reply(
                &run_cmd(conn, &cmd_of(&[b"XTRIM", k, b"MAXLEN", b"120"])),
                "XTRIM",
            );
            assert_eq!(trimmed, 140, "XTRIM MAXLEN 120 on {}", show(k));
            xreadgroup(conn, k, "g:trim", "r2", 10); // 140..150
            keys.push(key);
        }
        StreamSet::Second => {
            // 150 entries, a group that read 30 and a group created at `$`; the caller gives
            // it a TTL.
            let key = b"stream:expiring".to_vec();
            let k = key.as_slice();
            let ebase = base + 2_000_000;
            let eid = |i: usize| format!("{}-{}", ebase + (i / 3) as u64, i % 3);
            let entries: Vec<(String, StreamFields)> = (0..150usize)
                .map(|i| {
                    (
                        eid(i),
                        vec![
                            (
                                b"temp".to_vec(),
                                format!("{}.5", i as i64 - 40).into_bytes(),
                            ),
                            (b"unit".to_vec(), b"C".to_vec()),
                        ],
                    )
                })
                .collect();
            xadd_entries(conn, k, &entries);
            run_cmd(conn, &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:exp", b"0"]));
            run_cmd(conn, &cmd_of(&[b"XGROUP", b"CREATE", k, b"g:late", b"$"]));
            xreadgroup(conn, k, "g:exp", "x", 30);
            if caps.createconsumer {
                run_cmd(
                    conn,
                    &cmd_of(&[b"XGROUP", b"CREATECONSUMER", k, b"g:late", b"idle"]),
                );
            }
            xids(
                conn,
                &[b"XACK", k, b"g:exp"],
                &(0..5).map(eid).collect::<Vec<_>>(),
            );
            let mut deleted: Vec<String> = (50..55).map(eid).collect();
            deleted.push(eid(10));
            xids(conn, &[b"XDEL", k], &deleted);
            keys.push(key.clone());
        }
    }

    // Several listpack nodes each (stream-node-max-entries is 100).
    let mut nodes = Vec::new();
    for key in &keys {
        let info = run_cmd(conn, &cmd_of(&[b"XINFO", b"STREAM", key]));
        let n = xinfo_field(&info, "radix-tree-keys")
            .map(|v| int_reply(v, "radix-tree-keys"))
            .unwrap_or_else(|| {
                panic!(
                    "XINFO STREAM {} has no radix-tree-keys: {info:?}",
                    show(key)
                )
            });
        let len = xinfo_field(&info, "length")
            .map(|v| int_reply(v, "length"))
            .unwrap_or(0);
        assert!(
            n >= 2 && len > 100,
            "db {db} stream {} should have more than 100 entries in several listpack nodes: \
             length {len}, radix-tree-keys {n}",
            show(key)
        );
        nodes.push((key.clone(), n));
    }
    let ttl_key = (set == StreamSet::Second).then(|| b"stream:expiring".to_vec());
    FilledStreams {
        keys,
        ttl_key,
        nodes,
    }
}

/// What a server answers about one stream's consumer groups (and, with XINFO FULL, its
/// entries), as labelled raw replies.
#[derive(Debug, Clone)]
pub struct StreamProbe {
    pub db: u32,
    pub key: Vec<u8>,
    pub replies: Vec<(String, redis::Value)>,
}

fn idle_marker() -> redis::Value {
    redis::Value::SimpleString("<idle: relative to the server's clock, not compared>".into())
}

/// Probe every stream of `keys`. With `full` (6.0+, Valkey): `XINFO STREAM k FULL COUNT 0`
/// (every entry, group, consumer and PEL entry; its times are absolute Unix ms, so the raw
/// reply must be equal). Without (5.0): `XINFO STREAM k`, `XINFO GROUPS k`, and per group
/// `XINFO CONSUMERS k g` and `XPENDING k g - + 1000` with the idle times (relative to the
/// server's clock) taken out. Looks the keys up; leaves the connection on db 0.
pub fn probe_streams(
    conn: &mut Connection,
    keys: &[(u32, Vec<u8>)],
    full: bool,
) -> Vec<StreamProbe> {
    let mut out = Vec::new();
    for (db, key) in keys {
        select(conn, *db);
        let k = key.as_slice();
        let mut replies = Vec::new();
        if full {
            replies.push((
                "XINFO STREAM FULL COUNT 0".to_string(),
                run_cmd(
                    conn,
                    &cmd_of(&[b"XINFO", b"STREAM", k, b"FULL", b"COUNT", b"0"]),
                ),
            ));
        } else {
            replies.push((
                "XINFO STREAM".to_string(),
                run_cmd(conn, &cmd_of(&[b"XINFO", b"STREAM", k])),
            ));
            let groups = run_cmd(conn, &cmd_of(&[b"XINFO", b"GROUPS", k]));
            let mut names = Vec::new();
            if let redis::Value::Array(gs) = &groups {
                for g in gs {
                    match xinfo_field(g, "name") {
                        Some(redis::Value::BulkString(n)) => names.push(n.clone()),
                        other => panic!("XINFO GROUPS item without a name ({other:?}): {g:?}"),
                    }
                }
            }
            assert!(
                !names.is_empty(),
                "db {db} stream {}: no groups in {groups:?}",
                show(k)
            );
            replies.push(("XINFO GROUPS".to_string(), groups));
            for g in &names {
                let mut consumers = run_cmd(conn, &cmd_of(&[b"XINFO", b"CONSUMERS", k, g]));
                if let redis::Value::Array(cs) = &mut consumers {
                    for c in cs {
                        let redis::Value::Array(f) = c else {
                            panic!("XINFO CONSUMERS item {c:?}")
                        };
                        for i in (0..f.len().saturating_sub(1)).step_by(2) {
                            if matches!(&f[i], redis::Value::BulkString(b) if b == b"idle") {
                                f[i + 1] = idle_marker();
                            }
                        }
                    }
                }
                replies.push((format!("group {}: XINFO CONSUMERS", show(g)), consumers));
                let mut pending = run_cmd(conn, &cmd_of(&[b"XPENDING", k, g, b"-", b"+", b"1000"]));
                if let redis::Value::Array(ps) = &mut pending {
                    for p in ps {
                        let redis::Value::Array(f) = p else {
                            panic!("XPENDING item {p:?}")
                        };
                        assert_eq!(f.len(), 4, "XPENDING item {f:?}");
                        f[2] = idle_marker();
                    }
                }
                replies.push((format!("group {}: XPENDING - + 1000", show(g)), pending));
            }
        }
        out.push(StreamProbe {
            db: *db,
            key: key.clone(),
            replies,
        });
    }
    select(conn, 0);
    out
}

/// A reply as indented lines, for showing where two replies differ.
fn reply_lines(v: &redis::Value, depth: usize, out: &mut Vec<String>) {
    let ind = "  ".repeat(depth);
    match v {
        redis::Value::Array(items) => {
            out.push(format!("{ind}[{} items]", items.len()));
            for it in items {
                reply_lines(it, depth + 1, out);
            }
        }
        redis::Value::BulkString(b) => out.push(format!("{ind}\"{}\"", snippet(&show(b), 80))),
        other => out.push(format!("{ind}{other:?}")),
    }
}

/// The differences between the source's stream probes and a restored server's, one text per
/// differing reply (with the first differing lines), empty when all are equal.
pub fn stream_differences(want: &[StreamProbe], got: &[StreamProbe]) -> Vec<String> {
    let mut bad = Vec::new();
    if want.len() != got.len() {
        bad.push(format!(
            "{} streams probed on the source, {} on the restored server",
            want.len(),
            got.len()
        ));
    }
    for (w, g) in want.iter().zip(got) {
        let name = format!("db {} stream {}", w.db, show(&w.key));
        let wl: Vec<&String> = w.replies.iter().map(|(l, _)| l).collect();
        let gl: Vec<&String> = g.replies.iter().map(|(l, _)| l).collect();
        if wl != gl {
            bad.push(format!(
                "{name}: replies {wl:?} on the source, {gl:?} restored"
            ));
            continue;
        }
        for ((label, a), (_, b)) in w.replies.iter().zip(&g.replies) {
            if a == b {
                continue;
            }
            let (mut la, mut lb) = (Vec::new(), Vec::new());
            reply_lines(a, 1, &mut la);
            reply_lines(b, 1, &mut lb);
            let at = la.iter().zip(&lb).take_while(|(x, y)| x == y).count();
            let from = at.saturating_sub(3);
            let show_lines = |l: &[String]| {
                l.iter()
                    .skip(from)
                    .take(at - from + 4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            bad.push(format!(
                "{name}: {label} differs at line {} of {} (source) / {} (restored)\n--- source ---\n{}\n--- restored ---\n{}",
                at + 1,
                la.len(),
                lb.len(),
                show_lines(&la),
                show_lines(&lb)
            ));
        }
    }
    bad
}

// ---------------------------------------------------------------------------------------------
// Function libraries (Redis 7.0+)
// ---------------------------------------------------------------------------------------------

/// Two function libraries, one with flags.
pub const FUNCTION_LIBS: [&str; 2] = [
    "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)",
    "#!lua name=other\nredis.register_function{function_name='f2', callback=function(keys, args) return 2 end, flags={'no-writes'}}",
];

/// FUNCTION LOAD every library of [`FUNCTION_LIBS`].
pub fn load_function_libraries(conn: &mut Connection) {
    for code in FUNCTION_LIBS {
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(code)
            .query(conn)
            .expect("FUNCTION LOAD");
    }
}

/// (library name, code) pairs from FUNCTION LIST WITHCODE, sorted by name.
pub fn function_libraries(conn: &mut Connection) -> Vec<(String, String)> {
    let list: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("WITHCODE")
        .query(conn)
        .expect("FUNCTION LIST");
    let mut out = Vec::new();
    for lib in list {
        let fields: Vec<redis::Value> = redis::from_redis_value(lib).expect("library entry");
        let mut name = String::new();
        let mut code = String::new();
        for pair in fields.chunks(2) {
            let key: String = redis::from_redis_value(pair[0].clone()).expect("field name");
            match key.as_str() {
                "library_name" => name = redis::from_redis_value(pair[1].clone()).expect("name"),
                "library_code" => code = redis::from_redis_value(pair[1].clone()).expect("code"),
                _ => {}
            }
        }
        out.push((name, code));
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Truth and the core
// ---------------------------------------------------------------------------------------------

/// What the source server held when its core was taken.
#[derive(Debug, Clone)]
pub struct Truth {
    /// `INFO server` redis_version of the source server.
    pub redis_version: String,
    pub digest: String,
    pub dbsizes: BTreeMap<u32, u64>,
    /// Per db: number of keys with a TTL (INFO keyspace `expires=`).
    pub expires: BTreeMap<u32, u64>,
    /// (db, key, PEXPIRETIME) for every TTL key.
    pub pexpiretimes: Vec<(u32, Vec<u8>, i64)>,
    /// Per db with keys: whether its key dict was mid-rehash (DEBUG HTSTATS).
    pub rehashing: BTreeMap<u32, bool>,
    /// What the server answered about every stream of the dataset ([`probe_streams`]):
    /// DEBUG DIGEST covers stream entries, not consumer groups.
    pub streams: Vec<StreamProbe>,
    pub dataset: Dataset,
}

/// PEXPIRETIME of every (db, key). Leaves the connection on db 0.
pub fn pexpiretimes(conn: &mut Connection, keys: &[(u32, Vec<u8>)]) -> Vec<(u32, Vec<u8>, i64)> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        for (db, key) in chunk {
            p.cmd("SELECT").arg(*db).ignore();
            p.cmd("PEXPIRETIME").arg(key.as_slice());
        }
        let times: Vec<i64> = p.query(conn).expect("PEXPIRETIME pipeline");
        for ((db, key), t) in chunk.iter().zip(times) {
            out.push((*db, key.clone(), t));
        }
    }
    select(conn, 0);
    out
}

/// Record the truth of a filled server. Order matters: PEXPIRETIME and the stream probes look
/// keys up (which moves rehashing buckets), so they go first; DEBUG DIGEST, DBSIZE and HTSTATS
/// move nothing.
pub fn record_truth(conn: &mut Connection, dataset: Dataset) -> Truth {
    let pexpiretimes = pexpiretimes(conn, &dataset.ttl_keys);
    for (db, key, t) in &pexpiretimes {
        assert!(
            *t > 0,
            "TTL key {} in db {db} has PEXPIRETIME {t}",
            show(key)
        );
    }
    assert!(
        !dataset.streams.is_empty(),
        "the dataset should hold streams"
    );
    let streams = probe_streams(conn, &dataset.streams, true);
    let digest = digest(conn);
    assert_ne!(digest, "0".repeat(40), "the source dataset is empty");
    let dbsizes = dbsizes(conn);
    let info = keyspace_info(conn);
    let expires: BTreeMap<u32, u64> = info.iter().map(|(db, (_, e))| (*db, *e)).collect();
    for (db, (keys, _)) in &info {
        assert_eq!(
            dbsizes.get(db),
            Some(keys),
            "INFO keyspace vs DBSIZE for db {db}"
        );
    }
    for (db, n) in &expires {
        let ours = dataset.ttl_keys.iter().filter(|(d, _)| d == db).count() as u64;
        assert_eq!(
            *n, ours,
            "db {db}: INFO keyspace expires vs the TTL keys the dataset set"
        );
    }
    let rehashing: BTreeMap<u32, bool> = dbsizes
        .keys()
        .map(|db| (*db, main_dict_tables(conn, *db).len() == 2))
        .collect();
    assert_eq!(
        rehashing.get(&dataset.rehashing_db),
        Some(&true),
        "db {} must still be rehashing when the core is taken",
        dataset.rehashing_db
    );
    select(conn, 0);
    let redis_version = redis_version(conn);
    Truth {
        redis_version,
        digest,
        dbsizes,
        expires,
        pexpiretimes,
        rehashing,
        streams,
        dataset,
    }
}

/// A core of a filled server, kept in a directory removed when this is dropped.
pub struct CoreFixture {
    pub dir: PathBuf,
    pub core: PathBuf,
    pub truth: Truth,
    /// The server binary the core was taken from (absolute).
    pub binary: PathBuf,
    /// How long filling, recording and gcore took.
    pub elapsed: Duration,
}

impl Drop for CoreFixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Directory for a core of this test process: `CARGO_TARGET_TMPDIR/cores/<tag>-<n>-<pid>`,
/// `n` counting the directories made so far, so that two fixtures of one process never share
/// one (every test file runs in this one binary, side by side). Statics are never dropped,
/// so a fixture kept in a `static` leaves its core behind; this removes the directories of
/// test processes that are gone.
fn core_dir(tag: &str) -> PathBuf {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cores");
    fs::create_dir_all(&base).expect("create the cores directory");
    if let Ok(entries) = fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{tag}-{n}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the core directory");
    dir
}

/// Start `binary` with `--activerehashing no`, fill it, record the truth, gcore it, kill it.
pub fn make_core_fixture(binary: &Path, tag: &str) -> CoreFixture {
    make_core_fixture_with(binary, tag, |_| {})
}

/// [`make_core_fixture`], with `prepare` run on the filled server before the truth is
/// recorded (to add what the dataset lacks, such as function libraries).
pub fn make_core_fixture_with(
    binary: &Path,
    tag: &str,
    prepare: impl FnOnce(&mut Connection),
) -> CoreFixture {
    let started = Instant::now();
    let binary = find_in_path(binary.to_str().expect("UTF-8 binary path"));
    let dir = core_dir(tag);
    let server = RedisServer::start(&binary, &["--activerehashing", "no"]);
    let dataset = fill_dataset(&server);
    let mut conn = server.conn();
    prepare(&mut conn);
    let truth = record_truth(&mut conn, dataset);
    let core = gcore(&server, &dir);
    drop(conn);
    drop(server);
    CoreFixture {
        dir,
        core,
        truth,
        binary,
        elapsed: started.elapsed(),
    }
}

/// A core fixture whose server also held function libraries.
pub struct FunctionsFixture {
    pub core: CoreFixture,
    /// FUNCTION LIST WITHCODE of the source ([`function_libraries`]).
    pub libraries: Vec<(String, String)>,
}

/// A core of a filled 7.0+ server with [`FUNCTION_LIBS`] loaded (see
/// [`make_core_fixture_with`]), `extra` run before the truth is recorded.
pub fn make_core_fixture_with_functions(
    binary: &Path,
    tag: &str,
    extra: impl FnOnce(&mut Connection),
) -> FunctionsFixture {
    let mut libraries = Vec::new();
    let core = make_core_fixture_with(binary, tag, |conn| {
        load_function_libraries(conn);
        libraries = function_libraries(conn);
        extra(conn);
    });
    assert_eq!(libraries.len(), FUNCTION_LIBS.len());
    FunctionsFixture { core, libraries }
}

/// Start a server on `rdb` and assert it holds exactly the truth: same DEBUG DIGEST, same DBSIZE
/// per db, same PEXPIRETIME for every TTL key, same XINFO STREAM FULL COUNT 0 for every stream
/// (consumer groups, consumers and pending entries, which DEBUG DIGEST does not cover).
pub fn assert_restores_exactly(binary: &Path, rdb: &Path, truth: &Truth) {
    let server = RedisServer::start_on_rdb(binary, rdb, &[]);
    let mut conn = server.conn();
    assert_holds_exactly(&mut conn, truth, &rdb.display().to_string());
}

/// Assert that the server behind `conn` holds exactly the truth (as
/// [`assert_restores_exactly`] does), `what` saying how the data got there.
pub fn assert_holds_exactly(conn: &mut Connection, truth: &Truth, what: &str) {
    let sizes = dbsizes(conn);
    assert_eq!(sizes, truth.dbsizes, "DBSIZE per db after restoring {what}");
    let times = pexpiretimes(&mut *conn, &truth.dataset.ttl_keys);
    let wrong: Vec<String> = truth
        .pexpiretimes
        .iter()
        .zip(&times)
        .filter(|(a, b)| a.2 != b.2)
        .map(|(a, b)| format!("db {} key {}: want {}, got {}", a.0, show(&a.1), a.2, b.2))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} TTL keys have a different PEXPIRETIME after restoring:\n{}",
        wrong.len(),
        times.len(),
        wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let got_streams = probe_streams(&mut *conn, &truth.dataset.streams, true);
    let diffs = stream_differences(&truth.streams, &got_streams);
    assert!(
        diffs.is_empty(),
        "{} of {} streams differ after restoring {} (XINFO STREAM FULL COUNT 0):\n{}",
        diffs.len(),
        truth.streams.len(),
        what,
        snippet(&diffs.join("\n\n"), 8000)
    );
    let got = digest(&mut *conn);
    assert_eq!(
        got, truth.digest,
        "DEBUG DIGEST after restoring {} differs from the source",
        what
    );
}

/// Run `redis-rescue` with `args` in `cwd` (or the test's cwd); panics if it runs for more than
/// ten minutes.
pub fn run_rescue_in(cwd: Option<&Path>, args: &[&OsStr]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redis-rescue"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn().expect("spawn redis-rescue");
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + RESCUE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait on redis-rescue") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "redis-rescue {args:?} ran longer than {RESCUE_TIMEOUT:?}; stderr:\n{}",
                snippet(&String::from_utf8_lossy(&stderr), 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Run `redis-rescue` with `args`.
pub fn run_rescue(args: &[&OsStr]) -> Output {
    run_rescue_in(None, args)
}

/// `redis-rescue CORE -o DIR/dump.rdb -q`, which must exit 0; the dump's path.
pub fn recover_core(core: &Path, dir: &Path) -> PathBuf {
    let dump = dir.join("dump.rdb");
    let out = run_rescue(&[
        core.as_os_str(),
        "-o".as_ref(),
        dump.as_os_str(),
        "-q".as_ref(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "recovery failed\n{}",
        describe(&out)
    );
    dump
}

/// Everything about a redis-rescue run, for panic messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        snippet(&String::from_utf8_lossy(&out.stdout), 3000),
        snippet(&String::from_utf8_lossy(&out.stderr), 3000)
    )
}

/// Read and parse a JSON report.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| {
        let listing: Vec<String> = path
            .parent()
            .and_then(|p| fs::read_dir(p).ok())
            .map(|it| {
                it.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        panic!(
            "cannot read report {}: {e}; the directory holds {listing:?}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "report {} is not JSON ({e}):\n{}",
            path.display(),
            snippet(&text, 2000)
        )
    })
}

/// Check a report's per-db section against the truth: keys == expected == DBSIZE, lost == 0,
/// expires and rehashing as the server had them, by_type equal to the census.
pub fn assert_report_matches(report: &serde_json::Value, truth: &Truth) {
    let ctx = || {
        snippet(
            &serde_json::to_string_pretty(report).unwrap_or_default(),
            3000,
        )
    };
    let dbs = report
        .get("dbs")
        .and_then(|d| d.as_object())
        .unwrap_or_else(|| panic!("report has no \"dbs\" object:\n{}", ctx()));
    let with_keys: BTreeSet<u32> = dbs
        .iter()
        .filter(|(_, v)| v.get("keys").and_then(|k| k.as_u64()).unwrap_or(0) > 0)
        .map(|(k, _)| {
            k.parse()
                .unwrap_or_else(|_| panic!("db name {k:?} in the report is not a number"))
        })
        .collect();
    let truth_dbs: BTreeSet<u32> = truth.dbsizes.keys().copied().collect();
    assert_eq!(
        with_keys,
        truth_dbs,
        "dbs with keys in the report vs the source server:\n{}",
        ctx()
    );
    for (db, &size) in &truth.dbsizes {
        let entry = &dbs[&db.to_string()];
        let field = |name: &str| -> u64 {
            entry.get(name).and_then(|v| v.as_u64()).unwrap_or_else(|| {
                panic!("report dbs.{db}.{name} is missing or not a number:\n{entry:#}")
            })
        };
        assert_eq!(field("keys"), size, "dbs.{db}.keys vs DBSIZE\n{entry:#}");
        assert_eq!(
            field("expected"),
            size,
            "dbs.{db}.expected vs DBSIZE\n{entry:#}"
        );
        assert_eq!(
            field("lost"),
            0,
            "dbs.{db}.lost\n{entry:#}\nlost_keys: {}",
            snippet(&report["lost_keys"].to_string(), 2000)
        );
        assert_eq!(
            field("expires"),
            truth.expires.get(db).copied().unwrap_or(0),
            "dbs.{db}.expires vs INFO keyspace\n{entry:#}"
        );
        assert_eq!(
            entry.get("rehashing").and_then(|v| v.as_bool()),
            truth.rehashing.get(db).copied(),
            "dbs.{db}.rehashing vs DEBUG HTSTATS\n{entry:#}"
        );
        let by_type = entry
            .get("by_type")
            .and_then(|v| v.as_object())
            .unwrap_or_else(|| panic!("report dbs.{db}.by_type is missing:\n{entry:#}"));
        let mut got: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (ty, encs) in by_type {
            let encs = encs
                .as_object()
                .unwrap_or_else(|| panic!("dbs.{db}.by_type.{ty} is not an object"));
            for (enc, n) in encs {
                let n = n
                    .as_u64()
                    .unwrap_or_else(|| panic!("dbs.{db}.by_type.{ty}.{enc} is not a count"));
                if n > 0 {
                    got.entry(ty.clone()).or_default().insert(enc.clone(), n);
                }
            }
        }
        assert_eq!(
            &got, &truth.dataset.census[db],
            "dbs.{db}.by_type (left) vs TYPE/OBJECT ENCODING on the source (right)"
        );
    }
    let lost = report.get("lost_keys").and_then(|v| v.as_array());
    assert!(
        lost.is_some_and(|l| l.is_empty()),
        "lost_keys should be an empty array: {}",
        snippet(
            &report
                .get("lost_keys")
                .map(|v| v.to_string())
                .unwrap_or_default(),
            2000
        )
    );
}

/// `INFO server` redis_version.
pub fn redis_version(conn: &mut Connection) -> String {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(conn)
        .expect("INFO server");
    info.lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))
        .unwrap_or_else(|| panic!("no redis_version in INFO server:\n{info}"))
        .to_string()
}

/// Run `checker` (redis-check-rdb) on `rdb`, assert it is happy, return its
/// (keys read, expires) counts.
pub fn check_rdb(checker: &Path, rdb: &Path) -> (u64, u64) {
    let out = Command::new(checker)
        .arg(rdb)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", checker.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "{} {} failed ({}):\n{}",
        checker.display(),
        rdb.display(),
        out.status,
        snippet(&text, 4000)
    );
    let count = |suffix: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("[info] ")?
                    .strip_suffix(suffix)?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| {
                panic!(
                    "no `[info] N{suffix}` line in the checker's output:\n{}",
                    snippet(&text, 4000)
                )
            })
    };
    (count(" keys read"), count(" expires"))
}

// ---------------------------------------------------------------------------------------------
// Keys read back with ordinary commands
// ---------------------------------------------------------------------------------------------

/// A key as ordinary commands show it: TYPE, value, PEXPIRETIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub ty: String,
    /// string: [value]; list: elements in order; set: members sorted; zset: member, score,
    /// member, score… in rank order; hash: field, value… sorted by field; stream: one item per
    /// entry (XRANGE - +: ID, field, value…), then its XINFO STREAM FULL COUNT 0 reply.
    pub value: Vec<Vec<u8>>,
    pub pexpiretime: i64,
}

/// TYPE, value and PEXPIRETIME of `keys` in `db`, read with ordinary commands.
pub fn key_states(conn: &mut Connection, db: u32, keys: &[Vec<u8>]) -> Vec<KeyState> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(200) {
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for k in chunk {
            p.cmd("TYPE").arg(k.as_slice());
            p.cmd("PEXPIRETIME").arg(k.as_slice());
        }
        let meta: Vec<redis::Value> = p
            .query(conn)
            .unwrap_or_else(|e| panic!("db {db}: TYPE/PEXPIRETIME pipeline: {e}"));
        let types: Vec<String> = meta
            .iter()
            .step_by(2)
            .map(|v| String::from_utf8_lossy(&bulk(v)).into_owned())
            .collect();
        let times: Vec<i64> = meta
            .iter()
            .skip(1)
            .step_by(2)
            .map(|v| match v {
                redis::Value::Int(i) => *i,
                other => panic!("PEXPIRETIME reply {other:?}"),
            })
            .collect();
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for (k, ty) in chunk.iter().zip(&types) {
            queue_value_read(&mut p, k, ty);
        }
        let values: Vec<redis::Value> = p
            .query(conn)
            .unwrap_or_else(|e| panic!("db {db}: value pipeline: {e}"));
        // A stream's groups, consumers and pending entries (all times absolute in 7.0).
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for (k, ty) in chunk.iter().zip(&types) {
            if ty == "stream" {
                p.cmd("XINFO")
                    .arg("STREAM")
                    .arg(k.as_slice())
                    .arg("FULL")
                    .arg("COUNT")
                    .arg(0);
            }
        }
        let infos: Vec<redis::Value> = if types.iter().any(|t| t == "stream") {
            p.query(conn)
                .unwrap_or_else(|e| panic!("db {db}: XINFO STREAM FULL pipeline: {e}"))
        } else {
            Vec::new()
        };
        let mut infos = infos.into_iter();
        for ((ty, t), v) in types.into_iter().zip(times).zip(values) {
            let value = match ty.as_str() {
                "string" => vec![bulk(&v)],
                "stream" => {
                    let mut entries = stream_entries(&v);
                    let info = infos
                        .next()
                        .expect("one XINFO STREAM FULL reply per stream");
                    entries.push(format!("XINFO STREAM FULL COUNT 0: {info:?}").into_bytes());
                    entries
                }
                "list" => bulks(&v),
                "set" => {
                    let mut m = bulks(&v);
                    m.sort();
                    m
                }
                "zset" => bulks(&v),
                "hash" => {
                    let flat = bulks(&v);
                    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = flat
                        .chunks(2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    pairs.sort();
                    pairs.into_iter().flat_map(|(f, v)| [f, v]).collect()
                }
                _ => Vec::new(),
            };
            out.push(KeyState {
                ty,
                value,
                pexpiretime: t,
            });
        }
    }
    out
}

/// The tool's printable form of a key (report.rs `printable`): UTF-8 kept, control characters,
/// backslashes and invalid bytes as `\xNN`.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// ELF core files, read whole
// ---------------------------------------------------------------------------------------------

/// Little-endian u16 at `o` of an ELF file read whole (panics past its end).
pub fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}

/// Little-endian u32 at `o`.
pub fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// Little-endian u64 at `o`.
pub fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// (e_phoff, e_phentsize, e_phnum).
pub fn phdr_table(b: &[u8]) -> (u64, u64, u64) {
    (
        u64_at(b, 0x20),
        u64::from(u16_at(b, 0x36)),
        u64::from(u16_at(b, 0x38)),
    )
}

/// The load address of the running process `pid`'s executable: where /proc/PID/maps maps
/// file offset 0 of /proc/PID/exe.
#[allow(dead_code)]
pub fn exe_load_base(pid: u32) -> u64 {
    let exe = fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/exe: {e}"));
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/maps: {e}"));
    maps.lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 6 && Path::new(f[5]) == exe && u64::from_str_radix(f[2], 16).ok()? == 0)
                .then(|| u64::from_str_radix(f[0].split('-').next()?, 16).ok())
                .flatten()
        })
        .unwrap_or_else(|| {
            panic!(
                "no mapping of {} at offset 0 in /proc/{pid}/maps",
                exe.display()
            )
        })
}

/// Panics (naming `what`) unless the process `pid` may write a core of any size.
#[allow(dead_code)]
pub fn assert_core_limit_unlimited(pid: u32, what: &str) {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let core_limit = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or("<no such line>");
    assert!(
        core_limit
            .split_whitespace()
            .skip(4)
            .take(2)
            .all(|v| v == "unlimited"),
        "{what}the server should run with RLIMIT_CORE unlimited: {core_limit}"
    );
}

// ---------------------------------------------------------------------------------------------
// Live sources (--pid, bundle --pid)
// ---------------------------------------------------------------------------------------------

/// How long a stopped source gets to run again after the tool is gone.
pub const RESUME_TIMEOUT: Duration = Duration::from_secs(5);

/// The state letter of process `pid` (`/proc/PID/stat`, after the command name).
pub fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    let after = &stat[stat
        .rfind(')')
        .expect("stat has the command in parentheses")
        + 1..];
    after.trim_start().chars().next().expect("a state letter")
}

/// `TracerPid` of process `pid`.
pub fn tracer_of(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read /proc/PID/status")
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("TracerPid in /proc/PID/status")
}

/// The source runs (not stopped, not traced: within [`RESUME_TIMEOUT`]), answers PING, and
/// its DEBUG DIGEST is still `digest`.
pub fn assert_source_unharmed(source: &RedisServer, want_digest: &str, what: &str) {
    let pid = source.pid();
    let deadline = Instant::now() + RESUME_TIMEOUT;
    while matches!(proc_state(pid), 't' | 'T') || tracer_of(pid) != 0 {
        assert!(
            Instant::now() < deadline,
            "{what}: the source (pid {pid}) is still stopped (state {}, tracer {}) {RESUME_TIMEOUT:?} later",
            proc_state(pid),
            tracer_of(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut conn = source.conn();
    let pong: String = redis::cmd("PING")
        .query(&mut conn)
        .expect("PING the source");
    assert_eq!(pong, "PONG", "{what}");
    assert_eq!(
        digest(&mut conn),
        want_digest,
        "{what}: the source's DEBUG DIGEST changed"
    );
}

/// Where a stream record's value starts in `record` (the file's bytes from the end of the
/// previous key to the end of this one: opcodes, type byte, key, value): right after the type
/// byte and the key, encoded as the writer encodes strings.
pub fn stream_value_start(record: &[u8], e: &rdb::reader::Entry) -> usize {
    let mut found = Vec::new();
    for compress in [true, false] {
        let mut pat = vec![e.rdb_type];
        rdb::encode::put_string(&mut pat, &e.key, compress);
        if let Some(at) = record.windows(pat.len()).position(|w| w == pat.as_slice()) {
            found.push(at + pat.len());
        }
    }
    *found.iter().min().unwrap_or_else(|| {
        panic!(
            "stream {}: its type byte and key are not in its record",
            show(&e.key)
        )
    })
}

/// Rewrite `src` into `dst`, passing every entry through `edit` (return false to drop it).
/// Streams are copied as the file stores them (their value's bytes), the rest re-encoded.
pub fn rewrite(src: &Path, dst: &Path, mut edit: impl FnMut(&mut rdb::reader::Entry) -> bool) {
    let bytes = fs::read(src).expect("read dump");
    let mut r = rdb::reader::RdbReader::new(bytes.as_slice()).expect("dump header");
    let mut start = r.offset() as usize;
    let first = r.next_entry().expect("read").expect("a non-empty dump");
    let mut end = r.offset() as usize;
    let mut streams = Vec::new();
    let mut w =
        rdb::RdbWriter::new(fs::File::create(dst).expect("create"), r.version()).expect("writer");
    for (k, v) in r.aux() {
        w.aux(k, v).expect("aux");
    }
    let mut db = None;
    let mut rec = rdb::RecordBuilder::new(true);
    let mut entry = Some(first);
    while let Some(mut e) = entry {
        if edit(&mut e) {
            if db != Some(e.db) {
                w.select_db(u64::from(e.db)).expect("select");
                db = Some(e.db);
            }
            rec.clear();
            if let Some(t) = e.expire_ms {
                rec.expire_ms(t);
            }
            match &e.value {
                rdb::reader::RdbValue::String(s) => {
                    rec.value_type(rdb::ValueType::String);
                    rec.key(&e.key);
                    rec.string(s);
                }
                rdb::reader::RdbValue::List(l) | rdb::reader::RdbValue::Set(l) => {
                    let list = matches!(e.value, rdb::reader::RdbValue::List(_));
                    rec.value_type(if list {
                        rdb::ValueType::List
                    } else {
                        rdb::ValueType::Set
                    });
                    rec.key(&e.key);
                    rec.len(l.len() as u64);
                    for x in l {
                        rec.string(x);
                    }
                }
                rdb::reader::RdbValue::Zset(z) => {
                    rec.value_type(rdb::ValueType::Zset2);
                    rec.key(&e.key);
                    rec.len(z.len() as u64);
                    for (m, s) in z {
                        rec.string(m);
                        rec.binary_double(*s);
                    }
                }
                rdb::reader::RdbValue::Hash(h) => {
                    rec.value_type(rdb::ValueType::Hash);
                    rec.key(&e.key);
                    rec.len(h.len() as u64);
                    for (f, v) in h {
                        rec.string(f);
                        rec.string(v);
                    }
                }
                rdb::reader::RdbValue::Stream(_) => {
                    let ty = rdb::ValueType::from_code(e.rdb_type).expect("a stream type byte");
                    rec.value_type(ty);
                    rec.key(&e.key);
                    rec.raw(&bytes[start + stream_value_start(&bytes[start..end], &e)..end]);
                    streams.push(e.clone());
                }
                other => panic!("the test rewriter does not handle {}", other.type_name()),
            }
            w.record(&rec).expect("record");
        }
        start = r.offset() as usize;
        entry = r.next_entry().expect("read");
        end = r.offset() as usize;
    }
    w.finish().expect("finish");
    // The copied streams read back as they were.
    let back: Vec<rdb::reader::Entry> =
        rdb::reader::RdbReader::new(fs::File::open(dst).expect("open the rewrite"))
            .expect("header of the rewrite")
            .map(|e| e.expect("read the rewrite"))
            .filter(|e| matches!(e.value, rdb::reader::RdbValue::Stream(_)))
            .collect();
    assert_eq!(back, streams, "streams copied by the rewriter");
}
