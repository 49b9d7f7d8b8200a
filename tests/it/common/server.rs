//! Real servers: [`RedisServer`] (a redis-server or valkey-server child on a free loopback
//! port with a private directory, killed on drop), cluster nodes, and the builds
//! `.ci/provision-redis.sh` and `.ci/provision-redis8.sh` put under `target/redis-builds/`.
//!
//! Started with the same command line as verify's servers
//! (`redis_rescue::verify::server::server_command`) and on a free port from the same
//! probe. Not `LocalServer` itself: that one only starts a server on a copy of a dump, with
//! DEBUG off and its log in a file of its own, and reports a failed load instead of
//! panicking; the tests need empty servers with DEBUG on, extra arguments
//! (`--activerehashing no`, cluster options, `ulimit -c unlimited`) and the server's stdout
//! in its log (DEBUG QUICKLIST prints there, see `quicklist_nodes`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use redis::{Connection, IntoConnectionInfo};
use redis_rescue::verify::server::server_command;

use super::tail_of;

/// How long a server gets to answer PING (and finish loading a dump).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A redis-server child process with its own port and directory; killed (SIGKILL) on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// A loopback port nothing listens on now (verify's own probe).
pub fn free_port() -> u16 {
    redis_rescue::verify::server::free_port()
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:0 to find a free port: {e}"))
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
        let mut args = vec!["--logfile", ""];
        if enable_debug {
            args.extend(["--enable-debug-command", "yes"]);
        }
        args.extend_from_slice(extra_args);
        let mut cmd = server_command(binary, port, dir.path(), &args, core_limit);
        cmd.stdout(stdout).stderr(stderr);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", binary.display()));
        let mut server = RedisServer { child, port, dir };

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
