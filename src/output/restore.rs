//! `--to URL`: the keyspace restored straight into a running Redis or Valkey, or a Redis
//! Cluster, with pipelined `RESTORE`s of DUMP payloads in an RDB version the target loads.
//!
//! The target is reached before the walk starts (a wrong address or password costs nothing),
//! its version read from `INFO server` and its `proto-max-bulk-len` from `CONFIG GET`.
//! Keys go out in batches of bounded size (at most [`BATCH_KEYS`] keys or [`BATCH_BYTES`]
//! bytes of payload in flight), so memory does not grow with the keyspace; each reply is
//! matched to its key, and a key the target refuses (BUSYKEY without `--replace`, a payload
//! it cannot load, ...) is reported lost with the server's reply. In a cluster each key goes
//! to the master that owns its slot (CRC16 of the key or its hash tag, from `CLUSTER SLOTS`),
//! following `MOVED` (the slot map is read again) and `ASK` (`ASKING`, then the command).
//!
//! The password (from the URL, `--askpass` or `REDISCLI_AUTH`) is never displayed: the URL
//! is shown with `***` in its place, and every error text from the client is scrubbed of it.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::{Connection, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value};

use super::{Finished, NotWritten, Output, OutputError};
use crate::sink::{Eviction, KeyEncoder, Sink, SinkError, Written};
use crate::value::{Bytes, Kind, RecoveredKey};

/// Keys in flight at most before their replies are read.
pub const BATCH_KEYS: usize = 512;
/// Payload bytes in flight at most before their replies are read (one larger value goes
/// alone).
pub const BATCH_BYTES: usize = 4 << 20;
/// Redirections followed for one key before it is reported lost.
const MAX_REDIRECTS: usize = 5;
/// Slots of a Redis Cluster.
const SLOTS: usize = 16384;
/// What `proto-max-bulk-len` is when the target does not say (Redis's default, 512 MiB).
const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 << 20;

/// A string that must never be displayed (a password, or a URL that may hold one).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// What `--to` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// The URL: `redis://[user:pass@]host:port[/db]` or `redis-cluster://[user:pass@]host:port`.
    pub url: Secret,
    /// The password when the URL has none (`--askpass`, `REDISCLI_AUTH`).
    pub password: Option<Secret>,
    /// The source db to restore (`--db N`); the others' keys are refused.
    pub db: Option<u32>,
}

/// A parsed `--to` URL.
struct ToUrl {
    cluster: bool,
    info: ConnectionInfo,
    /// The db the URL names, if any.
    db: Option<u32>,
    /// The URL with `***` for the password.
    shown: String,
    password: Option<String>,
}

impl ToUrl {
    fn parse(opts: &RestoreOptions) -> Result<ToUrl, OutputError> {
        let url = opts.url.0.as_str();
        let bad = |why: &str| OutputError::Target(format!("--to {}: {why}", redact_url(url)));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("not a URL (redis://host:port or redis-cluster://host:port)"))?;
        // TLS verifies the server's certificate against the system's CAs (OpenSSL: a
        // private CA through SSL_CERT_FILE); there is no way to turn that off.
        let (cluster, tls) = match scheme {
            "redis" | "valkey" => (false, false),
            "rediss" | "valkeys" => (false, true),
            "redis-cluster" => (true, false),
            "unix" | "redis+unix" => {
                return Err(bad("unix sockets are not supported; use redis://host:port"))
            }
            other => return Err(bad(&format!("unknown scheme {other}://"))),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let path = rest.get(authority.len()..).unwrap_or_default();
        let db = match path.trim_start_matches('/').split(['?', '#']).next() {
            None | Some("") => None,
            Some(d) => Some(
                d.parse::<u32>()
                    .map_err(|_| bad("the db after / is not a number"))?,
            ),
        };
        if cluster && db.is_some_and(|d| d != 0) {
            return Err(bad(
                "a Redis Cluster has only db 0; --db N picks the source db to send",
            ));
        }
        if rest.contains('#') {
            return Err(bad(
                "a #fragment (such as #insecure) is not accepted: the server's certificate is always verified",
            ));
        }
        let parse_scheme = if tls { "rediss" } else { "redis" };
        let info = format!("{parse_scheme}://{rest}")
            .into_connection_info()
            .map_err(|e| bad(&scrub(&e.to_string(), None)))?;
        let mut settings = info.redis_settings().clone().set_skip_set_lib_name();
        let password = match settings.password() {
            Some(p) => Some(p.to_owned()),
            None => opts.password.as_ref().map(|p| p.0.clone()),
        };
        if let Some(p) = &password {
            settings = settings.set_password(p);
        }
        // The db is chosen per source db with SELECT, not at connection time.
        let info = info.set_redis_settings(settings.set_db(0));
        Ok(ToUrl {
            cluster,
            info,
            db,
            shown: redact_url(url),
            password,
        })
    }

    fn scrub(&self, text: &str) -> String {
        scrub(text, self.password.as_deref())
    }

    fn connect(&self, addr: Option<(&str, u16)>) -> Result<Connection, String> {
        let info = match addr {
            Some((host, port)) => self
                .info
                .clone()
                .set_addr(ConnectionAddr::Tcp(host.to_owned(), port)),
            None => self.info.clone(),
        };
        let shown = info.addr().to_string();
        let connect = || -> redis::RedisResult<Connection> {
            let client = redis::Client::open(info)?;
            let conn = client.get_connection_with_timeout(Duration::from_secs(10))?;
            conn.set_read_timeout(Some(Duration::from_secs(300)))?;
            conn.set_write_timeout(Some(Duration::from_secs(300)))?;
            Ok(conn)
        };
        connect().map_err(|e| format!("cannot connect to {shown}: {}", self.scrub(&e.to_string())))
    }
}

/// `url` with its password (the part of the authority between `:` and `@`) as `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// `text` with every occurrence of `password` as `***`.
fn scrub(text: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text.to_owned(),
    }
}

pub use crate::slot::key_slot;

/// A reached target server (or cluster seed node), with what it said about itself.
pub struct Server {
    url: ToUrl,
    seed: Connection,
    version: String,
    valkey: bool,
    rdb_max: u32,
    proto_max_bulk_len: u64,
    db: Option<u32>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url.shown)
            .field("version", &self.version)
            .finish()
    }
}

impl Server {
    /// Connects to the target of `opts` (authenticated), reads its version and the RDB
    /// version it loads. For a cluster, the seed node must be in cluster mode.
    pub fn connect(opts: &RestoreOptions) -> Result<Server, OutputError> {
        let url = ToUrl::parse(opts)?;
        let mut seed = url.connect(None).map_err(OutputError::Target)?;
        let fail = |what: &str, e: redis::RedisError| {
            OutputError::Target(format!(
                "{}: {what}: {}",
                url.shown,
                url.scrub(&e.to_string())
            ))
        };
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut seed)
            .map_err(|e| fail("INFO server", e))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
                .map(str::to_owned)
        };
        let (valkey, version) = match field("valkey_version") {
            Some(v) => (true, v),
            None => (
                false,
                field("redis_version").ok_or_else(|| {
                    OutputError::Target(format!("{}: INFO server has no version", url.shown))
                })?,
            ),
        };
        let rdb_max = crate::dwarf::rdb_version(valkey, &version).ok_or_else(|| {
            OutputError::Target(format!(
                "{}: cannot tell which RDB versions {} {version} loads",
                url.shown,
                if valkey { "valkey" } else { "redis" }
            ))
        })?;
        // CONFIG may be renamed or refused (ACL): then the default limit is assumed.
        let bulk: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("proto-max-bulk-len")
            .query(&mut seed);
        let proto_max_bulk_len = bulk
            .ok()
            .and_then(|v| v.get(1).and_then(|n| n.parse().ok()))
            .unwrap_or(DEFAULT_PROTO_MAX_BULK_LEN);
        if url.cluster {
            let enabled = field("cluster_enabled")
                .or_else(|| {
                    let c: String = redis::cmd("INFO").arg("cluster").query(&mut seed).ok()?;
                    c.lines()
                        .find_map(|l| l.trim().strip_prefix("cluster_enabled:"))
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            if enabled != "1" {
                return Err(OutputError::Target(format!(
                    "{} is not in cluster mode (cluster_enabled:{enabled}); use redis://",
                    url.shown
                )));
            }
        }
        let db = opts.db.or(url.db);
        Ok(Server {
            url,
            seed,
            version,
            valkey,
            rdb_max,
            proto_max_bulk_len,
            db,
        })
    }

    /// The RDB version the target writes, the newest it loads.
    pub fn rdb_max(&self) -> u32 {
        self.rdb_max
    }

    /// The URL as the report and logs show it (no password).
    pub fn describe(&self) -> String {
        format!(
            "{} ({} {})",
            self.url.shown,
            if self.valkey { "valkey" } else { "redis" },
            self.version
        )
    }
}

/// One key whose commands are in flight.
struct Pending {
    /// The key's db in the source (the report's).
    source_db: u32,
    /// The db it goes to.
    db: u32,
    key: Vec<u8>,
    kind: Kind,
    has_expire: bool,
    cmds: Vec<Vec<Vec<u8>>>,
    slot: u16,
}

/// Where keys are sent: one server, or a cluster's masters by slot.
enum Route {
    Single,
    Cluster {
        /// Node addresses ("host:port") and their connections, made on first use.
        nodes: Vec<(String, Option<Connection>)>,
        /// The index in `nodes` of each slot's master.
        owner: Vec<Option<usize>>,
    },
}

/// Restores keys into the target with pipelined RESTOREs.
pub struct RestoreSink {
    server: Server,
    route: Route,
    enc: KeyEncoder,
    payload: Vec<u8>,
    replace: bool,
    /// The source db being walked.
    source_db: u32,
    /// The target db of the current source db, or why its keys are not sent.
    current: Result<u32, String>,
    batch: Vec<Pending>,
    batch_bytes: usize,
    failed: Vec<NotWritten>,
}

impl RestoreSink {
    /// Restores into `server` with payloads of RDB `rdb_version`.
    pub fn new(mut server: Server, rdb_version: u32, replace: bool) -> Result<Self, OutputError> {
        let route = if server.url.cluster {
            let (nodes, owner) = cluster_slots(&mut server)?;
            Route::Cluster {
                nodes: nodes.into_iter().map(|n| (n, None)).collect(),
                owner,
            }
        } else {
            Route::Single
        };
        Ok(RestoreSink {
            server,
            route,
            enc: KeyEncoder::new(rdb_version, true),
            payload: Vec::new(),
            replace,
            source_db: 0,
            current: Ok(0),
            batch: Vec::new(),
            batch_bytes: 0,
            failed: Vec::new(),
        })
    }

    fn fatal(&self, what: &str, e: impl std::fmt::Display) -> SinkError {
        SinkError::Io(std::io::Error::other(format!(
            "{}: {what}: {}",
            self.server.url.shown,
            self.server.url.scrub(&e.to_string())
        )))
    }

    /// Sends the batch and matches every reply to its key.
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        match self.route {
            Route::Single => self.flush_single(batch),
            Route::Cluster { .. } => self.flush_cluster(batch),
        }
    }

    fn flush_single(&mut self, batch: Vec<Pending>) -> Result<(), SinkError> {
        let errors = self.send(None, &batch)?;
        for (p, e) in batch.into_iter().zip(errors) {
            if let Some(e) = e {
                self.refused(p, server_error_text(&e));
            }
        }
        Ok(())
    }

    /// Sends the commands of `pendings` in one pipeline to cluster node `node` (or the single
    /// server, selecting each key's db); the first error reply of each key, in order.
    fn send(
        &mut self,
        node: Option<usize>,
        pendings: &[Pending],
    ) -> Result<Vec<Option<redis::ServerError>>, SinkError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut db = None;
        for p in pendings {
            // A single server's batch may span dbs: SELECT before the first key of each.
            if node.is_none() && db != Some(p.db) {
                pipe.cmd("SELECT").arg(p.db).ignore();
                db = Some(p.db);
            }
            for c in &p.cmds {
                pipe.add_command(command(c));
            }
        }
        let conn = match node {
            None => &mut self.server.seed,
            Some(n) => self.node_conn(n)?,
        };
        let replies: Vec<Value> = pipe
            .query(conn)
            .map_err(|e| self.fatal("pipelined RESTORE", e))?;
        let mut replies = replies.into_iter();
        Ok(pendings
            .iter()
            .map(|p| {
                let mut error = None;
                for _ in &p.cmds {
                    if let Some(Value::ServerError(e)) = replies.next() {
                        error.get_or_insert(e);
                    }
                }
                error
            })
            .collect())
    }

    fn refused(&mut self, p: Pending, reply: String) {
        self.failed.push(NotWritten {
            db: p.source_db,
            key: p.key,
            kind: p.kind,
            has_expire: p.has_expire,
            reason: format!("the target refused it: {}", self.server.url.scrub(&reply)),
        });
    }

    fn flush_cluster(&mut self, mut batch: Vec<Pending>) -> Result<(), SinkError> {
        for _round in 0..MAX_REDIRECTS {
            if batch.is_empty() {
                return Ok(());
            }
            let mut by_node: BTreeMap<usize, Vec<Pending>> = BTreeMap::new();
            for p in batch.drain(..) {
                match self.owner(p.slot) {
                    Some(n) => by_node.entry(n).or_default().push(p),
                    None => {
                        let slot = p.slot;
                        self.refused(p, format!("no master serves slot {slot}"));
                    }
                }
            }
            let mut moved = false;
            for (node, pendings) in by_node {
                let errors = self.send(Some(node), &pendings)?;
                for (p, error) in pendings.into_iter().zip(errors) {
                    match error {
                        None => {}
                        Some(e) if e.code() == "MOVED" => {
                            moved = true;
                            batch.push(p);
                        }
                        Some(e) if e.code() == "ASK" => {
                            let to = e.details().and_then(|d| d.split(' ').nth(1)).unwrap_or("");
                            match self.ask(to, &p) {
                                Ok(()) => {}
                                Err(reason) => self.refused(p, reason),
                            }
                        }
                        Some(e) => self.refused(p, server_error_text(&e)),
                    }
                }
            }
            if moved {
                let (nodes, owner) = cluster_slots(&mut self.server)
                    .map_err(|e| SinkError::Io(std::io::Error::other(e.to_string())))?;
                if let Route::Cluster { nodes: n, owner: o } = &mut self.route {
                    // Connections to nodes still listed are kept.
                    let mut old: Vec<(String, Option<Connection>)> = std::mem::take(n);
                    *n = nodes
                        .into_iter()
                        .map(|addr| {
                            let conn = old
                                .iter_mut()
                                .find(|(a, _)| *a == addr)
                                .and_then(|(_, c)| c.take());
                            (addr, conn)
                        })
                        .collect();
                    *o = owner;
                }
            }
        }
        for p in batch {
            self.refused(p, format!("still redirected after {MAX_REDIRECTS} tries"));
        }
        Ok(())
    }

    /// `ASKING` and the key's commands on node `addr` (an import in progress), over the
    /// connection to that node when it is a known master.
    fn ask(&mut self, addr: &str, p: &Pending) -> Result<(), String> {
        let known = match &self.route {
            Route::Cluster { nodes, .. } => nodes.iter().position(|(a, _)| a == addr),
            Route::Single => None,
        };
        let mut fresh = None;
        let conn = match known {
            Some(i) => self.node_conn(i).map_err(|e| e.to_string())?,
            None => {
                let (host, port) = split_addr(addr).ok_or_else(|| format!("ASK to {addr:?}"))?;
                fresh.insert(self.server.url.connect(Some((host, port)))?)
            }
        };
        for c in &p.cmds {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            pipe.cmd("ASKING").ignore();
            pipe.add_command(command(c));
            let replies: Vec<Value> = pipe.query(conn).map_err(|e| e.to_string())?;
            if let Some(Value::ServerError(e)) = replies.first() {
                return Err(server_error_text(e));
            }
        }
        Ok(())
    }

    fn owner(&self, slot: u16) -> Option<usize> {
        match &self.route {
            Route::Cluster { owner, .. } => owner.get(usize::from(slot)).copied().flatten(),
            Route::Single => None,
        }
    }

    fn node_conn(&mut self, node: usize) -> Result<&mut Connection, SinkError> {
        let url = &self.server.url;
        let Route::Cluster { nodes, .. } = &mut self.route else {
            return Ok(&mut self.server.seed);
        };
        let Some((addr, conn)) = nodes.get_mut(node) else {
            return Err(SinkError::Io(std::io::Error::other("no such cluster node")));
        };
        if conn.is_none() {
            let (host, port) = split_addr(addr)
                .ok_or_else(|| SinkError::Io(std::io::Error::other(format!("bad node {addr}"))))?;
            *conn = Some(
                url.connect(Some((host, port)))
                    .map_err(|e| SinkError::Io(std::io::Error::other(e)))?,
            );
        }
        conn.as_mut()
            .ok_or_else(|| SinkError::Io(std::io::Error::other("no connection")))
    }

    /// Runs `args` on the target (every master of a cluster); the first error reply.
    fn everywhere(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let n = match &self.route {
            Route::Single => 0,
            Route::Cluster { nodes, .. } => nodes.len(),
        };
        let targets: Vec<Option<usize>> = if n == 0 {
            vec![None]
        } else {
            (0..n).map(Some).collect()
        };
        for t in targets {
            let mut cmd = redis::Cmd::new();
            for a in args {
                cmd.arg(*a);
            }
            let conn = match t {
                None => &mut self.server.seed,
                Some(i) => self.node_conn(i).map_err(|e| e.to_string())?,
            };
            let r: redis::RedisResult<Value> = cmd.query(conn);
            if let Err(e) = r {
                return Err(self.server.url.scrub(&e.to_string()));
            }
        }
        Ok(())
    }
}

/// A redis command of `args`.
fn command(args: &[Vec<u8>]) -> redis::Cmd {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(a.as_slice());
    }
    c
}

/// The server's error reply as it sent it (`BUSYKEY Target key name already exists.`).
fn server_error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_owned(),
    }
}

fn split_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

/// The masters of the cluster and the owner of every slot, from `CLUSTER SLOTS` on the
/// seed node.
#[allow(clippy::type_complexity)]
fn cluster_slots(server: &mut Server) -> Result<(Vec<String>, Vec<Option<usize>>), OutputError> {
    let reply: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut server.seed)
        .map_err(|e| {
            OutputError::Target(format!(
                "{}: CLUSTER SLOTS: {}",
                server.url.shown,
                server.url.scrub(&e.to_string())
            ))
        })?;
    let seed_host = match server.url.info.addr() {
        ConnectionAddr::Tcp(h, _) | ConnectionAddr::TcpTls { host: h, .. } => h.clone(),
        _ => String::new(),
    };
    let mut nodes: Vec<String> = Vec::new();
    let mut owner = vec![None; SLOTS];
    let Value::Array(ranges) = reply else {
        return Err(OutputError::Target("CLUSTER SLOTS: not an array".into()));
    };
    for r in ranges {
        let Value::Array(parts) = r else { continue };
        let int = |v: Option<&Value>| match v {
            Some(Value::Int(i)) => usize::try_from(*i).ok(),
            _ => None,
        };
        let (Some(start), Some(end)) = (int(parts.first()), int(parts.get(1))) else {
            continue;
        };
        let Some(Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let host = match master.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => String::new(),
        };
        // An empty host (or `?`) means the node's own address, the one asked.
        let host = if host.is_empty() || host == "?" {
            seed_host.clone()
        } else {
            host
        };
        let Some(port) = int(master.get(1)) else {
            continue;
        };
        let addr = format!("{host}:{port}");
        let idx = match nodes.iter().position(|n| *n == addr) {
            Some(i) => i,
            None => {
                nodes.push(addr);
                nodes.len() - 1
            }
        };
        for s in start..=end.min(SLOTS - 1) {
            if let Some(o) = owner.get_mut(s) {
                *o = Some(idx);
            }
        }
    }
    if nodes.is_empty() {
        return Err(OutputError::Target(format!(
            "{}: CLUSTER SLOTS lists no master",
            server.url.shown
        )));
    }
    Ok((nodes, owner))
}

impl Sink for RestoreSink {
    fn begin_db(&mut self, db: u32, _keys: u64, _expires: u64) -> Result<(), SinkError> {
        let cluster = self.server.url.cluster;
        self.source_db = db;
        self.current = match (self.server.db, cluster) {
            (Some(pick), _) if pick != db => Err(format!(
                "not restored: only db {pick} is sent (--db or the URL's db)"
            )),
            (Some(_), true) => Ok(0),
            (Some(pick), false) => Ok(self.server.url.db.unwrap_or(pick)),
            (None, true) if db != 0 => Err(format!(
                "not restored: a Redis Cluster has only db 0 (--db {db} sends this db instead)"
            )),
            (None, _) => Ok(db),
        };
        Ok(())
    }

    fn key(&mut self, key: &RecoveredKey<'_>) -> Result<Written, SinkError> {
        let target_db = self
            .current
            .clone()
            .map_err(|reason| SinkError::Unwritable { reason })?;
        let (written, r) =
            super::resp::encode_restore(&mut self.enc, &mut self.payload, key, self.replace)?;
        // Checked before sending: the server would drop the connection, not the key.
        if self.payload.len() as u64 > self.server.proto_max_bulk_len {
            return Err(SinkError::Unwritable {
                reason: format!(
                    "its DUMP payload is {} bytes, more than the target's proto-max-bulk-len ({})",
                    self.payload.len(),
                    self.server.proto_max_bulk_len
                ),
            });
        }
        let mut cmds = vec![r.restore];
        cmds.extend(r.pexpireat);
        self.batch_bytes += self.payload.len();
        self.batch.push(Pending {
            source_db: self.source_db,
            db: target_db,
            key: key.key.to_vec(),
            kind: key.kind,
            has_expire: key.expire_ms.is_some(),
            cmds,
            slot: key_slot(&key.key),
        });
        if self.batch.len() >= BATCH_KEYS || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(written)
    }

    fn functions(&mut self, libraries: &[Bytes<'_>]) -> Result<(), SinkError> {
        if libraries.is_empty() {
            return Ok(());
        }
        super::resp::require_functions(self.enc.version())?;
        let mut refused = Vec::new();
        for code in libraries {
            let args: Vec<&[u8]> = if self.replace {
                vec![b"FUNCTION", b"LOAD", b"REPLACE", code]
            } else {
                vec![b"FUNCTION", b"LOAD", code]
            };
            if let Err(e) = self.everywhere(&args) {
                refused.push(e);
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(SinkError::Unwritable {
                reason: format!(
                    "{} of {} libraries refused by the target: {}",
                    refused.len(),
                    libraries.len(),
                    refused.join("; ")
                ),
            })
        }
    }

    fn lua_scripts(&mut self, scripts: &[Bytes<'_>]) -> Result<(), SinkError> {
        for body in scripts {
            self.everywhere(&[b"SCRIPT", b"LOAD", body])
                .map_err(|reason| SinkError::Unwritable { reason })?;
        }
        Ok(())
    }
}

impl Output for RestoreSink {
    fn set_eviction(&mut self, e: Eviction) {
        self.enc.set_eviction(e);
    }
    fn reencoded(&self) -> u64 {
        self.enc.reencoded()
    }
    fn settle(&mut self) -> Result<Vec<NotWritten>, OutputError> {
        self.flush()?;
        Ok(std::mem::take(&mut self.failed))
    }
    fn finish(mut self: Box<Self>) -> Result<Finished, OutputError> {
        self.flush()?;
        Ok(Finished::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact_url("redis://:secret@host:6379/2"),
            "redis://:***@host:6379/2"
        );
        assert_eq!(
            redact_url("redis://user:p@ss@host:1"),
            "redis://user:***@host:1"
        );
        assert_eq!(redact_url("redis://host:1/0"), "redis://host:1/0");
        assert_eq!(redact_url("redis://user@host:1"), "redis://user@host:1");
        assert_eq!(scrub("bad pw hunter2!", Some("hunter2")), "bad pw ***!");
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "***");
    }

    #[test]
    fn urls_parse_into_targets() {
        let opts = |url: &str| RestoreOptions {
            url: Secret(url.into()),
            password: Some(Secret("fromenv".into())),
            db: None,
        };
        let u = ToUrl::parse(&opts("redis://:pw@127.0.0.1:7000/3")).unwrap();
        assert_eq!(
            (u.cluster, u.db, u.password.as_deref()),
            (false, Some(3), Some("pw"))
        );
        assert_eq!(u.shown, "redis://:***@127.0.0.1:7000/3");
        let u = ToUrl::parse(&opts("redis-cluster://127.0.0.1:7000")).unwrap();
        assert_eq!(
            (u.cluster, u.db, u.password.as_deref()),
            (true, None, Some("fromenv"))
        );
        let u = ToUrl::parse(&opts("rediss://:pw@localhost:7000")).unwrap();
        assert!(matches!(
            u.info.addr(),
            redis::ConnectionAddr::TcpTls {
                insecure: false,
                ..
            }
        ));
        assert_eq!(u.shown, "rediss://:***@localhost:7000");
        for bad in [
            "rediss://h:1/#insecure",
            "redis-cluster://h:1/2",
            "http://h:1",
            "h:1",
            "redis://h:1/x",
        ] {
            let e = ToUrl::parse(&opts(bad)).err().expect(bad);
            assert!(!e.to_string().contains("fromenv"), "{e}");
        }
        let e = ToUrl::parse(&opts("rediss://:topsecret@h:1#insecure"))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("always verified") && !e.to_string().contains("topsecret"),
            "{e}"
        );
    }
}
