//! The Redis server verify talks to: one it starts on a private copy of the dump, or one
//! that is already running.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::{Connection, IntoConnectionInfo};

/// Reads of big values (a large list in one LRANGE) may take a while.
const IO_TIMEOUT: Duration = Duration::from_secs(300);
/// Attempts at finding a free port.
const PORT_ATTEMPTS: usize = 5;
/// Name of the copy of the dump in the server's directory.
const DUMP_NAME: &str = "dump.rdb";
/// What every Redis since 2.6 logs once the RDB is loaded.
const LOADED_LINE: &str = "DB loaded from disk";

/// Problems reaching or running a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The binary could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// The error.
        source: std::io::Error,
    },
    /// Setting up the private directory failed.
    #[error("cannot prepare the server's directory: {0}")]
    Dir(std::io::Error),
    /// No server could be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The last error.
        source: redis::RedisError,
    },
    /// The address is not `HOST:PORT` or a `redis://` URL.
    #[error("bad server address {0:?}: expected HOST:PORT or redis://[:PASSWORD@]HOST:PORT[/DB]")]
    Address(String),
    /// The server kept loading (or kept refusing) until the timeout.
    #[error("{0}")]
    Timeout(String),
    /// A command failed.
    #[error("{what}: {source}")]
    Command {
        /// The command.
        what: String,
        /// The error.
        source: redis::RedisError,
    },
}

/// A server version, e.g. 7.0.15 (Valkey: `valkey-8.1.8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// As the server prints it (`valkey-` and the Valkey version for Valkey).
    pub text: String,
    /// Major, minor, patch of the Redis version (for Valkey, the one it is compatible
    /// with); missing parts are 0.
    pub parts: (u32, u32, u32),
}

impl ServerVersion {
    /// Parses `redis_version` text.
    pub fn parse(text: &str) -> Self {
        let mut it = text
            .split('.')
            .map(|p| p.trim().parse::<u32>().unwrap_or(0));
        let parts = (
            it.next().unwrap_or(0),
            it.next().unwrap_or(0),
            it.next().unwrap_or(0),
        );
        ServerVersion {
            text: text.to_owned(),
            parts,
        }
    }

    /// True when this version is `major.minor` or later.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.parts.0, self.parts.1) >= (major, minor)
    }
}

/// How the loading went on a server verify started.
#[derive(Debug)]
pub enum StartOutcome {
    /// It answered and logged that it loaded the dump.
    Loaded {
        /// The running server.
        server: LocalServer,
        /// Time from spawn to loaded.
        elapsed: Duration,
    },
    /// It exited or never finished loading.
    Failed {
        /// Exit status or what went wrong.
        status: String,
        /// The log lines that say why.
        log_excerpt: String,
    },
}

/// A redis-server process verify started, with its private directory; stopped on drop.
#[derive(Debug)]
pub struct LocalServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

/// A loopback port nobody listens on now.
pub fn free_port() -> Result<u16, ServerError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(ServerError::Dir)?;
    Ok(l.local_addr().map_err(ServerError::Dir)?.port())
}

/// The command that starts `binary` as verify and the project's tests both do: on loopback
/// `port`, with `dir` as its directory (and working directory), persistence off, in the
/// foreground, then `args` (later arguments override earlier ones). With `core_limit` it
/// runs as `sh -c 'ulimit -c unlimited; exec BINARY ARGS…'`, so the kernel writes a core
/// when the server dies of a signal; the shell execs the server, so the child's pid is the
/// server's. The caller chooses the log (`--logfile`) and the standard streams.
pub fn server_command(
    binary: &Path,
    port: u16,
    dir: &Path,
    args: &[&str],
    core_limit: bool,
) -> Command {
    let mut cmd = if core_limit {
        // `ulimit -c` without -H/-S sets both limits in dash and bash; raising the hard
        // limit needs root (CAP_SYS_RESOURCE) when it is lower.
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"ulimit -c unlimited || { echo "cannot raise RLIMIT_CORE" >&2; exit 97; }; exec "$0" "$@""#)
            .arg(binary);
        c
    } else {
        // Not canonicalized: Debian's redis-server is a symlink to redis-check-rdb, which
        // picks its mode from argv[0].
        Command::new(binary)
    };
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

/// The lines of a server log that explain a failure: those about the RDB or an error, else
/// warnings (`#`) that are not start-up boilerplate, else the tail.
pub fn log_excerpt(log: &str, max: usize) -> String {
    const TELLING: [&str; 12] = [
        "RDB",
        "rdb",
        "Short read",
        "Bad file format",
        "FATAL",
        "Fatal",
        "rror",
        "CRC",
        "checksum",
        "Unrecoverable",
        "Terminating",
        "Aborting",
    ];
    const BOILERPLATE: [&str; 5] = [
        "WARNING",
        "Redis version=",
        "Configuration loaded",
        "Server initialized",
        "oO0OoO0OoO0Oo",
    ];
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let telling: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            TELLING.iter().any(|t| l.contains(t))
                && !l.contains(" * ")
                && !BOILERPLATE.iter().any(|b| l.contains(b))
        })
        .collect();
    let warnings: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(" # ") && !BOILERPLATE.iter().any(|b| l.contains(b)))
        .collect();
    let pick = if !telling.is_empty() {
        &telling
    } else if !warnings.is_empty() {
        &warnings
    } else {
        &lines
    };
    let start = pick.len().saturating_sub(max);
    pick.get(start..).unwrap_or_default().join("\n")
}

impl LocalServer {
    /// Starts `binary` on a free loopback port in a private temporary directory holding a
    /// copy of `dump`, persistence off, and waits until it has loaded the copy, exited, or
    /// `timeout` passed.
    pub fn start(
        binary: &Path,
        dump: &Path,
        timeout: Duration,
    ) -> Result<StartOutcome, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("redis-rescue-verify-")
            .tempdir()
            .map_err(ServerError::Dir)?;
        std::fs::copy(dump, dir.path().join(DUMP_NAME)).map_err(ServerError::Dir)?;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match try_start(binary, dir.path(), port, timeout)? {
                Attempt::PortTaken => continue,
                Attempt::Failed {
                    status,
                    log_excerpt,
                } => {
                    return Ok(StartOutcome::Failed {
                        status,
                        log_excerpt,
                    })
                }
                Attempt::Loaded { child, elapsed } => {
                    return Ok(StartOutcome::Loaded {
                        server: LocalServer { child, dir, port },
                        elapsed,
                    })
                }
            }
        }
        Ok(StartOutcome::Failed {
            status: "no free port".into(),
            log_excerpt: "the chosen port was taken on every attempt".into(),
        })
    }

    /// The loopback address it listens on.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// A new connection.
    pub fn connection(&self) -> Result<Connection, ServerError> {
        connect_once(&self.address(), Duration::from_secs(5))
    }

    /// `SHUTDOWN NOSAVE`, then a kill if it lingers; the directory goes with `self`.
    pub fn stop(mut self) {
        if let Ok(mut c) = self.connection() {
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").exec(&mut c);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

enum Attempt {
    PortTaken,
    Failed { status: String, log_excerpt: String },
    Loaded { child: Child, elapsed: Duration },
}

/// Kills the child unless it is taken out.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn child(&mut self) -> Option<&mut Child> {
        self.0.as_mut()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn read_logs(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let err = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    format!("{log}{err}")
}

fn try_start(
    binary: &Path,
    dir: &Path,
    port: u16,
    timeout: Duration,
) -> Result<Attempt, ServerError> {
    let log = dir.join("redis.log");
    let _ = std::fs::remove_file(&log);
    let stderr = std::fs::File::create(dir.join("stderr.log")).map_err(ServerError::Dir)?;
    let stdout = stderr.try_clone().map_err(ServerError::Dir)?;
    let log_s = log.display().to_string();
    let started = Instant::now();
    let child = server_command(
        binary,
        port,
        dir,
        &["--dbfilename", DUMP_NAME, "--logfile", &log_s],
        false,
    )
    .stdout(stdout)
    .stderr(stderr)
    .spawn()
    .map_err(|source| ServerError::Spawn {
        binary: binary.display().to_string(),
        source,
    })?;
    let mut guard = ChildGuard(Some(child));
    let deadline = started + timeout;
    let mut conn: Option<Connection> = None;
    loop {
        if let Some(Ok(Some(status))) = guard.child().map(|c| c.try_wait()) {
            let text = read_logs(dir);
            if text.contains("Address already in use") {
                return Ok(Attempt::PortTaken);
            }
            return Ok(Attempt::Failed {
                status: format!("redis-server exited ({status})"),
                log_excerpt: log_excerpt(&text, 6),
            });
        }
        if conn.is_none() {
            conn = connect_once(&format!("127.0.0.1:{port}"), Duration::from_millis(500)).ok();
        }
        let timed_out = Instant::now() > deadline;
        if let Some(c) = conn.as_mut() {
            match loading(c) {
                Ok(false) => {
                    // The log line is written just before the server turns to clients.
                    let text = read_logs(dir);
                    if text.contains(LOADED_LINE) {
                        if let Some(child) = guard.0.take() {
                            return Ok(Attempt::Loaded {
                                child,
                                elapsed: started.elapsed(),
                            });
                        }
                    }
                    if timed_out {
                        return Ok(Attempt::Failed {
                            status: "the server runs but never logged loading the dump".into(),
                            log_excerpt: log_excerpt(&text, 6),
                        });
                    }
                }
                Ok(true) => {}
                Err(_) => conn = None,
            }
        }
        if timed_out {
            return Ok(Attempt::Failed {
                status: format!("not loaded within {} s (--timeout)", timeout.as_secs()),
                log_excerpt: log_excerpt(&read_logs(dir), 6),
            });
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}

/// Connection info for `HOST:PORT` or a `redis://` URL, without `CLIENT SETINFO` (old
/// servers answer it with an error).
fn connection_info(addr: &str) -> Result<redis::ConnectionInfo, ServerError> {
    let url = if addr.contains("://") {
        addr.to_owned()
    } else {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| ServerError::Address(addr.to_owned()))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(ServerError::Address(addr.to_owned()));
        }
        format!("redis://{host}:{port}/")
    };
    let info = url
        .as_str()
        .into_connection_info()
        .map_err(|_| ServerError::Address(addr.to_owned()))?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    Ok(info.set_redis_settings(settings))
}

fn connect_once(addr: &str, timeout: Duration) -> Result<Connection, ServerError> {
    let err = |source| ServerError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let client = redis::Client::open(connection_info(addr)?).map_err(err)?;
    let conn = client.get_connection_with_timeout(timeout).map_err(err)?;
    conn.set_read_timeout(Some(IO_TIMEOUT)).map_err(err)?;
    conn.set_write_timeout(Some(IO_TIMEOUT)).map_err(err)?;
    Ok(conn)
}

/// Connects to a running server, retrying until `timeout` (it may still be starting).
pub fn connect(addr: &str, timeout: Duration) -> Result<Connection, ServerError> {
    // A malformed address will not get better.
    connection_info(addr)?;
    let deadline = Instant::now() + timeout;
    loop {
        match connect_once(addr, Duration::from_secs(2)) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// True while the server is loading its dataset.
fn loading(conn: &mut Connection) -> Result<bool, ServerError> {
    let info = info(conn, "persistence")?;
    Ok(info_field(&info, "loading").is_some_and(|v| v != "0"))
}

/// Waits until the server has finished loading, or `timeout`.
pub fn wait_loaded(conn: &mut Connection, timeout: Duration) -> Result<(), ServerError> {
    let deadline = Instant::now() + timeout;
    loop {
        if !loading(conn)? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ServerError::Timeout(format!(
                "the server was still loading after {} s (--timeout)",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `INFO section` text.
pub fn info(conn: &mut Connection, section: &str) -> Result<String, ServerError> {
    redis::cmd("INFO")
        .arg(section)
        .query(conn)
        .map_err(|source| ServerError::Command {
            what: format!("INFO {section}"),
            source,
        })
}

/// The value of `field:` in INFO text.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.trim()
            .strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
    })
}

/// The server's version: `INFO server` redis_version, or for Valkey `valkey-<valkey_version>`
/// (its redis_version, the Redis level it is compatible with, decides the commands used).
pub fn version(conn: &mut Connection) -> Result<ServerVersion, ServerError> {
    let text = info(conn, "server")?;
    let mut v = ServerVersion::parse(info_field(&text, "redis_version").unwrap_or("unknown"));
    if let Some(valkey) = info_field(&text, "valkey_version") {
        v.text = format!("valkey-{valkey}");
    }
    Ok(v)
}

/// Databases with keys, as `INFO keyspace` lists them: db → keys.
pub fn keyspace(conn: &mut Connection) -> Result<Vec<(u32, u64)>, ServerError> {
    let text = info(conn, "keyspace")?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((db, fields)) = line
            .trim()
            .strip_prefix("db")
            .and_then(|r| r.split_once(':'))
        else {
            continue;
        };
        let Ok(db) = db.parse::<u32>() else { continue };
        let keys = fields
            .split(',')
            .find_map(|kv| kv.strip_prefix("keys="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.push((db, keys));
    }
    Ok(out)
}

/// Path of the binary on `PATH` when `name` has no slash.
pub fn find_binary(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_info() {
        let v = ServerVersion::parse("7.0.15");
        assert_eq!(v.parts, (7, 0, 15));
        assert!(v.at_least(7, 0) && v.at_least(6, 2) && !v.at_least(7, 2));
        assert_eq!(ServerVersion::parse("2.8").parts, (2, 8, 0));
        let info = "# Persistence\r\nloading:0\r\nrdb_last_load_keys_loaded:12\r\n";
        assert_eq!(info_field(info, "loading"), Some("0"));
        assert_eq!(info_field(info, "rdb_last_load_keys_loaded"), Some("12"));
        assert_eq!(info_field(info, "load"), None);
    }

    #[test]
    fn addresses() {
        assert!(connection_info("127.0.0.1:6390").is_ok());
        assert!(connection_info("redis://:pw@localhost:6390/0").is_ok());
        for bad in ["127.0.0.1", ":6390", "host:port", "host:70000"] {
            assert!(
                matches!(connection_info(bad), Err(ServerError::Address(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn log_excerpts_prefer_warnings() {
        let log = "1:M 01 Jan 00:00:00.000 # Server initialized\n1:M x # WARNING overcommit\n1:M 01 Jan 00:00:00.001 # Wrong RDB checksum\n1:M x * bye\n";
        assert_eq!(
            log_excerpt(log, 5),
            "1:M 01 Jan 00:00:00.001 # Wrong RDB checksum"
        );
        assert_eq!(
            log_excerpt("1:M # Server initialized\n1:M # odd thing\n", 5),
            "1:M # odd thing"
        );
        assert_eq!(log_excerpt("a\nb\nc\n", 2), "b\nc");
    }
}
