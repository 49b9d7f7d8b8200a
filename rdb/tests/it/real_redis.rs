//! End-to-end check against the real Redis: the file this crate writes must
//! pass `redis-check-rdb` and load into `redis-server` with the same data.
//!
//! Needs `redis-server` and `redis-check-rdb` on PATH (or the `REDIS_SERVER`
//! / `REDIS_CHECK_RDB` environment variables). Missing binaries FAIL the test
//! on purpose: a silently skipped oracle proves nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdb::{RdbWriter, RecordBuilder, ValueType};

const INSTALL_HINT: &str = "install Redis (e.g. `apt-get install redis-server`, which also \
     provides redis-check-rdb) or point REDIS_SERVER / REDIS_CHECK_RDB at the binaries";

fn tool(env: &str, default: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| default.to_string());
    match Command::new(&path).arg("--version").output() {
        Ok(_) => path,
        Err(e) => panic!("cannot run `{path}` ({e}): {INSTALL_HINT}"),
    }
}

fn unique_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("rdb-real-redis-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Tiny xorshift PRNG for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ---------------------------------------------------------------- RESP client

#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    fn bulk(&self) -> &[u8] {
        match self {
            Reply::Bulk(Some(b)) => b,
            other => panic!("expected a bulk string, got {other:?}"),
        }
    }
    fn text(&self) -> String {
        String::from_utf8(self.bulk().to_vec()).unwrap()
    }
    fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected an integer, got {other:?}"),
        }
    }
    fn array(&self) -> &[Reply] {
        match self {
            Reply::Array(a) => a,
            other => panic!("expected an array, got {other:?}"),
        }
    }
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn connect(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out)?;
        self.read_reply()
    }

    /// Like `cmd` for string arguments, panicking on I/O errors.
    fn q(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd(&args).unwrap()
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        let num = || rest.parse::<i64>().unwrap();
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(num()),
            "$" if num() < 0 => Reply::Bulk(None),
            "$" => {
                let mut b = vec![0u8; num() as usize + 2];
                self.reader.read_exact(&mut b)?;
                b.truncate(b.len() - 2);
                Reply::Bulk(Some(b))
            }
            "*" => {
                let n = num();
                let mut items = Vec::new();
                for _ in 0..n.max(0) {
                    items.push(self.read_reply()?);
                }
                Reply::Array(items)
            }
            _ => panic!("bad RESP line {line:?}"),
        })
    }
}

/// Kills the server if the test panics before shutting it down.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_server(bin: &str, dir: &Path, file: &str) -> (Server, Conn) {
    let port = free_port();
    let log = dir.join("redis.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--dbfilename", file, "--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin} ({e}): {INSTALL_HINT}"));
    let mut server = Server { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "redis-server exited ({status}) while loading; log:\n{}",
                server.log()
            );
        }
        if let Ok(mut c) = Conn::connect(port) {
            match c.cmd(&[b"PING"]) {
                Ok(Reply::Simple(p)) if p == "PONG" => return (server, c),
                // -LOADING: still reading the file.
                Ok(_) | Err(_) => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server not ready in time; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- the data

const FUNCTION_LIB: &str = "#!lua name=rdbtestlib\n\
     redis.register_function('rdbtest_hello', function(keys, args) return 'hello from rdb' end)\n";

struct Expected {
    big: Vec<u8>,
    list_long: Vec<u8>,
    expire_at: i64,
    db0_keys: i64,
    db1_keys: i64,
}

fn write_file(path: &Path) -> Expected {
    let mut rng = Rng(0x5eed);
    // Compressible but bigger than the writer's 256 KiB buffer even after
    // compression, so it also takes the pass-through path.
    let words: [&[u8]; 8] = [
        b"alpha ", b"beta ", b"gamma ", b"delta ", b"eps ", b"zeta ", b"eta ", b"theta ",
    ];
    let mut big = Vec::new();
    while big.len() < 1_500_000 {
        big.extend_from_slice(words[(rng.next() % 8) as usize]);
    }
    let list_long: Vec<u8> = b"list-element-"
        .iter()
        .copied()
        .cycle()
        .take(5000)
        .collect();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let expire_at = now_ms + 365 * 24 * 3600 * 1000;

    let file = std::fs::File::create(path).unwrap();
    let mut w = RdbWriter::new(file, 10).unwrap();
    w.aux(b"redis-ver", b"7.0.15").unwrap();
    w.aux(b"redis-bits", b"64").unwrap();
    w.aux_int(b"ctime", now_ms / 1000).unwrap();
    w.aux_int(b"used-mem", 1_234_567).unwrap();
    w.aux_int(b"aof-base", 0).unwrap();
    w.function(FUNCTION_LIB.as_bytes()).unwrap();

    let mut r = RecordBuilder::new(true);
    let db0_keys = 10;
    w.select_db(0).unwrap();
    w.resize_db(db0_keys as u64, 1).unwrap();

    r.clear();
    r.expire_ms(expire_at);
    r.value_type(ValueType::String);
    r.key(b"expiring");
    r.string(b"still here");
    w.record(&r).unwrap();

    r.clear();
    r.value_type(ValueType::String);
    r.key(b"12345"); // int-encoded key
    r.string(b"-2147483648"); // int-encoded INT32 value
    w.record(&r).unwrap();

    r.clear();
    r.value_type(ValueType::String);
    r.key(b"not-int32");
    r.string(b"2147483648");
    w.record(&r).unwrap();

    r.clear();
    r.value_type(ValueType::String);
    r.key(b"int64");
    r.int_string(i64::MIN);
    w.record(&r).unwrap();

    r.clear();
    r.value_type(ValueType::String);
    r.key(b"big");
    r.string(&big);
    assert!(r.byte_len() > 256 * 1024 && r.byte_len() < big.len());
    w.record(&r).unwrap();

    r.clear();
    r.idle(1000);
    r.value_type(ValueType::List);
    r.key(b"list");
    r.len(4);
    r.string(b"first");
    r.int_string(-7);
    r.string(&list_long);
    r.string(b"");
    w.record(&r).unwrap();

    r.clear();
    r.value_type(ValueType::Set);
    r.key(b"set");
    r.len(3);
    r.string(b"m1");
    r.string(b"100");
    r.string(b"a member that is long enough to be compressed a a a a a a");
    w.record(&r).unwrap();

    r.clear();
    r.value_type(ValueType::Zset2);
    r.key(b"zset");
    let scores = [
        ("one-and-half", 1.5),
        ("neg-inf", f64::NEG_INFINITY),
        ("pos-inf", f64::INFINITY),
        ("tiny", 5e-324),
    ];
    r.len(scores.len() as u64);
    for (m, s) in scores {
        r.string(m.as_bytes());
        r.binary_double(s);
    }
    w.record(&r).unwrap();

    r.clear();
    r.value_type(ValueType::Zset);
    r.key(b"zset-old");
    let old_scores = [
        ("a", 1.5),
        ("b", 3.0),
        ("c", -0.1),
        ("d", 1e300),
        ("e", f64::INFINITY),
        ("f", f64::NEG_INFINITY),
    ];
    r.len(old_scores.len() as u64);
    for (m, s) in old_scores {
        r.string(m.as_bytes());
        r.string_double(s);
    }
    w.record(&r).unwrap();

    r.clear();
    r.value_type(ValueType::Hash);
    r.key(b"hash");
    r.len(3);
    for (f, v) in [("f1", "v1"), ("count", "42"), ("empty", "")] {
        r.string(f.as_bytes());
        r.string(v.as_bytes());
    }
    w.record(&r).unwrap();

    let db1_keys = 2;
    w.select_db(1).unwrap();
    w.resize_db(db1_keys as u64, 0).unwrap();
    r.clear();
    r.freq(200);
    r.value_type(ValueType::String);
    r.key(b"in-db1");
    r.string(b"one");
    w.record(&r).unwrap();
    r.clear();
    r.value_type(ValueType::Set);
    r.key(b"db1-set");
    r.len(1);
    r.int_string(5_000_000_000);
    w.record(&r).unwrap();

    let size = w.bytes_written();
    w.finish().unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), size + 9);
    Expected {
        big,
        list_long,
        expire_at,
        db0_keys,
        db1_keys,
    }
}

fn check_score(c: &mut Conn, key: &str, member: &str, want: f64) {
    let got = c.q(&["ZSCORE", key, member]).text();
    let parsed: f64 = match got.as_str() {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        t => t.parse().unwrap(),
    };
    assert_eq!(parsed.to_bits(), want.to_bits(), "{key} {member}: {got}");
}

#[test]
fn real_redis_loads_our_file() {
    let server_bin = tool("REDIS_SERVER", "redis-server");
    let check_bin = tool("REDIS_CHECK_RDB", "redis-check-rdb");
    let dir = unique_dir();
    let file = "dump.rdb";
    let path = dir.join(file);
    let exp = write_file(&path);

    // 1. redis-check-rdb
    let out = Command::new(&check_bin).arg(&path).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "redis-check-rdb failed:\n{text}");
    let total = exp.db0_keys + exp.db1_keys;
    assert!(
        text.contains(&format!("{total} keys read")),
        "expected {total} keys in:\n{text}"
    );
    assert!(text.contains("RDB looks OK"), "{text}");

    // 2. redis-server
    let (mut server, mut c) = start_server(&server_bin, &dir, file);
    assert_eq!(c.q(&["DBSIZE"]), Reply::Int(exp.db0_keys));
    assert_eq!(c.q(&["GET", "expiring"]).text(), "still here");
    let pttl = c.q(&["PTTL", "expiring"]).int();
    assert!(pttl > 0, "PTTL {pttl}");
    let pexpiretime = c.q(&["PEXPIRETIME", "expiring"]).int();
    assert_eq!(pexpiretime, exp.expire_at);
    assert_eq!(c.q(&["GET", "12345"]).text(), "-2147483648");
    assert_eq!(c.q(&["GET", "not-int32"]).text(), "2147483648");
    assert_eq!(c.q(&["GET", "int64"]).text(), i64::MIN.to_string());
    assert_eq!(c.q(&["GET", "big"]).bulk(), &exp.big[..]);
    assert_eq!(c.q(&["PTTL", "big"]), Reply::Int(-1));

    // Before LRANGE, which would touch the key and reset its idle time.
    let idle = c.q(&["OBJECT", "IDLETIME", "list"]).int();
    assert!((1000..1100).contains(&idle), "idle {idle}");
    let list = c.q(&["LRANGE", "list", "0", "-1"]);
    let list: Vec<&[u8]> = list.array().iter().map(Reply::bulk).collect();
    assert_eq!(list, [&b"first"[..], b"-7", &exp.list_long, b""]);

    assert_eq!(c.q(&["SCARD", "set"]), Reply::Int(3));
    for m in [
        "m1",
        "100",
        "a member that is long enough to be compressed a a a a a a",
    ] {
        assert_eq!(c.q(&["SISMEMBER", "set", m]), Reply::Int(1), "{m}");
    }

    assert_eq!(c.q(&["ZCARD", "zset"]), Reply::Int(4));
    check_score(&mut c, "zset", "one-and-half", 1.5);
    check_score(&mut c, "zset", "neg-inf", f64::NEG_INFINITY);
    check_score(&mut c, "zset", "pos-inf", f64::INFINITY);
    check_score(&mut c, "zset", "tiny", 5e-324);
    let order = c.q(&["ZRANGE", "zset", "0", "-1"]);
    let order: Vec<String> = order.array().iter().map(Reply::text).collect();
    assert_eq!(order, ["neg-inf", "tiny", "one-and-half", "pos-inf"]);

    assert_eq!(c.q(&["ZCARD", "zset-old"]), Reply::Int(6));
    check_score(&mut c, "zset-old", "a", 1.5);
    check_score(&mut c, "zset-old", "b", 3.0);
    check_score(&mut c, "zset-old", "c", -0.1);
    check_score(&mut c, "zset-old", "d", 1e300);
    check_score(&mut c, "zset-old", "e", f64::INFINITY);
    check_score(&mut c, "zset-old", "f", f64::NEG_INFINITY);

    assert_eq!(c.q(&["HLEN", "hash"]), Reply::Int(3));
    assert_eq!(c.q(&["HGET", "hash", "f1"]).text(), "v1");
    assert_eq!(c.q(&["HGET", "hash", "count"]).text(), "42");
    assert_eq!(c.q(&["HGET", "hash", "empty"]).text(), "");

    assert_eq!(
        c.q(&["FCALL", "rdbtest_hello", "0"]).text(),
        "hello from rdb"
    );

    assert_eq!(c.q(&["SELECT", "1"]), Reply::Simple("OK".into()));
    assert_eq!(c.q(&["DBSIZE"]), Reply::Int(exp.db1_keys));
    assert_eq!(c.q(&["GET", "in-db1"]).text(), "one");
    assert_eq!(c.q(&["SISMEMBER", "db1-set", "5000000000"]), Reply::Int(1));
    assert_eq!(c.q(&["SELECT", "2"]), Reply::Simple("OK".into()));
    assert_eq!(c.q(&["DBSIZE"]), Reply::Int(0));

    // SHUTDOWN closes the connection instead of replying.
    let _ = c.cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.log();
    drop(server);
    assert!(log.contains("Done loading RDB"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- DUMP payloads

/// A listpack of short strings (each under 64 bytes), as Redis lays it out: total bytes and
/// element count, then per element `0x80|len`, the bytes and the one-byte back-length.
fn small_listpack(items: &[&[u8]]) -> Vec<u8> {
    let mut lp = vec![0, 0, 0, 0];
    lp.extend_from_slice(&(items.len() as u16).to_le_bytes());
    for it in items {
        assert!(it.len() < 64);
        lp.push(0x80 | it.len() as u8);
        lp.extend_from_slice(it);
        lp.push(1 + it.len() as u8);
    }
    lp.push(0xFF);
    let total = lp.len() as u32;
    lp[..4].copy_from_slice(&total.to_le_bytes());
    lp
}

/// `rdb::dump::payload` against the server's own DUMP: the same bytes where the encoding is
/// determined (one-element collections, strings without compression), RESTORE accepting ours,
/// `read_payload` decoding the server's DUMP of every type, and the footer's version obeyed.
#[test]
fn dump_payloads_match_the_real_servers() {
    use rdb::dump::{payload, read_payload};
    use rdb::RdbValue;

    let server_bin = tool("REDIS_SERVER", "redis-server");
    let dir = unique_dir();
    let (_server, mut c) = start_server(&server_bin, &dir, "none.rdb");
    for (name, value) in [
        ("rdbcompression", "no"),
        ("zset-max-listpack-entries", "0"),
        ("hash-max-listpack-entries", "0"),
    ] {
        assert_eq!(
            c.q(&["CONFIG", "SET", name, value]),
            Reply::Simple("OK".into())
        );
    }
    let dump = |c: &mut Conn, key: &str| c.q(&["DUMP", key]).bulk().to_vec();
    // The server's own RDB version, from the footer of any DUMP.
    assert_eq!(c.q(&["SET", "probe", "x"]), Reply::Simple("OK".into()));
    let probe = dump(&mut c, "probe");
    let version = u32::from(u16::from_le_bytes([
        probe[probe.len() - 10],
        probe[probe.len() - 9],
    ]));

    let mut rng = Rng(7);
    let long: Vec<u8> = (0..200).map(|_| b'a' + (rng.next() % 26) as u8).collect();
    let long_text = String::from_utf8(long.clone()).unwrap();
    let setup: [&[&str]; 7] = [
        &["SET", "s", "hello"],
        &["SET", "n", "12345"],
        &["SET", "long", &long_text],
        &["SADD", "set", "member"],
        &["ZADD", "zset", "1.5", "m"],
        &["HSET", "hash", "f", "v"],
        &["RPUSH", "list", "a", "bc"],
    ];
    for cmd in setup {
        assert!(!matches!(c.q(cmd), Reply::Error(_)), "{cmd:?}");
    }
    let lp = small_listpack(&[b"a", b"bc"]);
    type Build = Box<dyn Fn(&mut RecordBuilder)>;
    let cases: Vec<(&str, ValueType, Build)> = vec![
        ("s", ValueType::String, Box::new(|r| r.string(b"hello"))),
        ("n", ValueType::String, Box::new(|r| r.int_string(12345))),
        (
            "long",
            ValueType::String,
            Box::new(move |r| r.string(&long)),
        ),
        (
            "set",
            ValueType::Set,
            Box::new(|r| {
                r.len(1);
                r.string(b"member")
            }),
        ),
        (
            "zset",
            ValueType::Zset2,
            Box::new(|r| {
                r.len(1);
                r.string(b"m");
                r.binary_double(1.5)
            }),
        ),
        (
            "hash",
            ValueType::Hash,
            Box::new(|r| {
                r.len(1);
                r.string(b"f");
                r.string(b"v")
            }),
        ),
        (
            "list",
            ValueType::ListQuicklist2,
            Box::new(move |r| {
                r.len(1);
                r.len(2);
                r.string(&lp)
            }),
        ),
    ];
    for (key, ty, build) in &cases {
        let mut rec = RecordBuilder::new(false);
        // Key opcodes stay out of the payload.
        rec.expire_ms(1);
        rec.value_type(*ty);
        rec.key(key.as_bytes());
        build(&mut rec);
        let mut ours = Vec::new();
        payload(&rec, version, &mut ours).unwrap();
        assert_eq!(ours, dump(&mut c, key), "DUMP {key}");
        let copy = format!("{key}-copy");
        assert_eq!(
            c.cmd(&[b"RESTORE", copy.as_bytes(), b"0", &ours]).unwrap(),
            Reply::Simple("OK".into()),
            "RESTORE {copy}"
        );
        assert_eq!(dump(&mut c, &copy), ours, "{copy} restored whole");
    }

    // A version above the server's is refused, as loaders refuse newer files.
    let mut rec = RecordBuilder::new(false);
    rec.value_type(ValueType::String);
    rec.key(b"k");
    rec.string(b"v");
    let newer = if version < 13 { version + 1 } else { 80 };
    let mut too_new = Vec::new();
    payload(&rec, newer, &mut too_new).unwrap();
    match c.cmd(&[b"RESTORE", b"too-new", b"0", &too_new]).unwrap() {
        Reply::Error(e) => assert!(e.contains("payload version"), "{e}"),
        other => panic!("RDB {newer} payload into an RDB {version} server: {other:?}"),
    }

    // Every type the server DUMPs, in its compact encodings too, reads back.
    for (name, value) in [
        ("rdbcompression", "yes"),
        ("zset-max-listpack-entries", "128"),
        ("hash-max-listpack-entries", "128"),
    ] {
        assert_eq!(
            c.q(&["CONFIG", "SET", name, value]),
            Reply::Simple("OK".into())
        );
    }
    let big = "x".repeat(300);
    let compact: [&[&str]; 6] = [
        &["SADD", "intset", "1", "2", "-3"],
        &["HSET", "lphash", "f1", "v1", "f2", "2"],
        &["RPUSH", "biglist", &big, "7"],
        &["SET", "compressed", &big],
        &["XADD", "stream", "1-1", "f", "v"],
        &["XGROUP", "CREATE", "stream", "g", "0"],
    ];
    for cmd in compact {
        assert!(!matches!(c.q(cmd), Reply::Error(_)), "{cmd:?}");
    }
    assert_eq!(c.q(&["ZADD", "lpzset", "2", "b", "-1", "a"]), Reply::Int(2));
    let read = |c: &mut Conn, key: &str| read_payload(&dump(c, key)).unwrap().value;
    let strings = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    let mut intset = match read(&mut c, "intset") {
        RdbValue::Set(m) => m,
        other => panic!("{other:?}"),
    };
    intset.sort();
    assert_eq!(intset, strings(&["-3", "1", "2"]));
    assert_eq!(
        read(&mut c, "lphash"),
        RdbValue::Hash(vec![
            (b"f1".to_vec(), b"v1".to_vec()),
            (b"f2".to_vec(), b"2".to_vec())
        ])
    );
    assert_eq!(
        read(&mut c, "biglist"),
        RdbValue::List(strings(&[&big, "7"]))
    );
    assert_eq!(
        read(&mut c, "compressed"),
        RdbValue::String(big.clone().into_bytes())
    );
    assert_eq!(
        read(&mut c, "lpzset"),
        RdbValue::Zset(vec![(b"a".to_vec(), -1.0), (b"b".to_vec(), 2.0)])
    );
    match read(&mut c, "stream") {
        RdbValue::Stream(s) => {
            assert_eq!(s.entries.len(), 1);
            assert_eq!(s.groups.len(), 1);
            assert_eq!(s.groups[0].name, b"g");
        }
        other => panic!("{other:?}"),
    }
    let mut damaged = dump(&mut c, "s");
    damaged[2] ^= 1;
    assert!(read_payload(&damaged).is_err());
    drop(c);
    drop(_server);
    std::fs::remove_dir_all(&dir).unwrap();
}
