//! `--format resp`: the keyspace as Redis commands in RESP, for `redis-cli --pipe`.
//!
//! Per database a `SELECT`, then per key one `RESTORE key ttl payload [REPLACE] [ABSTTL]
//! [IDLETIME s | FREQ f]`, the payload being the DUMP encoding of the value for the target's
//! RDB version (the same bytes the RDB file would hold), so types, encodings the target
//! reads, TTLs and LRU/LFU data arrive as a loader would give them. Function libraries go
//! first as `FUNCTION LOAD [REPLACE] code` and EVAL scripts as `SCRIPT LOAD body` (any
//! version's scripts cache can be refilled that way, unlike an RDB's `lua` AUX fields).
//! No `AUTH` is ever written: `redis-cli -a`/`REDISCLI_AUTH` authenticates the pipe.

use std::io::{self, Write};

use super::{Destination, Finished, Output, OutputError};
use crate::sink::{Access, Eviction, KeyEncoder, Sink, SinkError, Written};
use crate::value::{Bytes, RecoveredKey};

/// First RDB version whose servers (Redis 5.0) take `RESTORE … ABSTTL`, `IDLETIME` and
/// `FREQ`. Payloads for older targets get their expire time from a `PEXPIREAT` after the
/// `RESTORE` instead, and the encoder writes no IDLE/FREQ for them.
const RDB_VERSION_ABSTTL: u32 = 9;

/// Writes one RESP command (an array of bulk strings) to `out`.
pub fn write_command(out: &mut impl Write, args: &[&[u8]]) -> io::Result<()> {
    write!(out, "*{}\r\n", args.len())?;
    for a in args {
        write!(out, "${}\r\n", a.len())?;
        out.write_all(a)?;
        out.write_all(b"\r\n")?;
    }
    Ok(())
}

/// The arguments of the `RESTORE` of one key (and what must follow it), built with the
/// payload of its value for RDB `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    /// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s | FREQ f]`.
    pub restore: Vec<Vec<u8>>,
    /// `PEXPIREAT key ms` for a target without `ABSTTL` when the key has a TTL.
    pub pexpireat: Option<Vec<Vec<u8>>>,
}

/// The `RESTORE` (and `PEXPIREAT`) of `key`, whose value's DUMP `payload` is for RDB
/// `version`, with `access` as the encoder computed it.
pub fn restore_args(
    key: &[u8],
    expire_ms: Option<i64>,
    payload: &[u8],
    access: Option<Access>,
    version: u32,
    replace: bool,
) -> Restore {
    let absttl = rdb::consts::has_redis_feature(version, RDB_VERSION_ABSTTL);
    // A TTL of 0 means "none" to RESTORE: a key that expired at or before the epoch gets
    // 1 ms, so it stays expired (the server drops it, as a loader drops expired keys).
    let at = expire_ms.map(|ms| ms.max(1));
    let ttl = match (at, absttl) {
        (Some(ms), true) => ms.to_string(),
        _ => "0".to_owned(),
    };
    let mut restore = vec![
        b"RESTORE".to_vec(),
        key.to_vec(),
        ttl.into_bytes(),
        payload.to_vec(),
    ];
    if replace {
        restore.push(b"REPLACE".to_vec());
    }
    if absttl && at.is_some() {
        restore.push(b"ABSTTL".to_vec());
    }
    match access {
        Some(Access::Idle(secs)) => {
            restore.push(b"IDLETIME".to_vec());
            restore.push(secs.to_string().into_bytes());
        }
        Some(Access::Freq(counter)) => {
            restore.push(b"FREQ".to_vec());
            restore.push(counter.to_string().into_bytes());
        }
        None => {}
    }
    let pexpireat = match (at, absttl) {
        (Some(ms), false) => Some(vec![
            b"PEXPIREAT".to_vec(),
            key.to_vec(),
            ms.to_string().into_bytes(),
        ]),
        _ => None,
    };
    Restore { restore, pexpireat }
}

/// Encodes `key` with `enc` into its DUMP `payload` and the commands that restore it.
pub(super) fn encode_restore(
    enc: &mut KeyEncoder,
    payload: &mut Vec<u8>,
    key: &RecoveredKey<'_>,
    replace: bool,
) -> Result<(Written, Restore), SinkError> {
    let written = enc.encode(key)?;
    payload.clear();
    rdb::dump::payload(enc.record(), enc.version(), payload)?;
    let r = restore_args(
        &key.key,
        key.expire_ms,
        payload,
        enc.access(),
        enc.version(),
        replace,
    );
    Ok((written, r))
}

/// Fails unless servers that load RDB `version` have functions: those of RDB 10 (Redis
/// 7.0) and later, and Valkey 9's RDB 80.
pub(super) fn require_functions(version: u32) -> Result<(), SinkError> {
    if rdb::consts::has_redis_feature(version, rdb::consts::MIN_VERSION_FUNCTION2) {
        return Ok(());
    }
    Err(SinkError::NoFunctions {
        reason: format!(
            "servers of RDB {version} have no functions (FUNCTION LOAD needs Redis 7.0, RDB 10)"
        ),
    })
}

/// Writes keys as `RESTORE` commands.
pub struct RespSink<W: Write> {
    out: W,
    enc: KeyEncoder,
    payload: Vec<u8>,
    replace: bool,
}

impl<W: Write> RespSink<W> {
    /// Commands for a server that loads RDB `rdb_version` payloads; `replace` overwrites keys
    /// and libraries the target already has.
    pub fn new(out: W, rdb_version: u32, replace: bool) -> Self {
        RespSink {
            out,
            // Compressed as Redis's DUMP compresses (rdbcompression's default).
            enc: KeyEncoder::new(rdb_version, true),
            payload: Vec::new(),
            replace,
        }
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, SinkError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Sink for RespSink<W> {
    fn begin_db(&mut self, db: u32, _keys: u64, _expires: u64) -> Result<(), SinkError> {
        write_command(&mut self.out, &[b"SELECT", db.to_string().as_bytes()])?;
        Ok(())
    }

    fn key(&mut self, key: &RecoveredKey<'_>) -> Result<Written, SinkError> {
        let (written, r) = encode_restore(&mut self.enc, &mut self.payload, key, self.replace)?;
        let args: Vec<&[u8]> = r.restore.iter().map(Vec::as_slice).collect();
        write_command(&mut self.out, &args)?;
        if let Some(p) = &r.pexpireat {
            let args: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
            write_command(&mut self.out, &args)?;
        }
        Ok(written)
    }

    fn functions(&mut self, libraries: &[Bytes<'_>]) -> Result<(), SinkError> {
        if libraries.is_empty() {
            return Ok(());
        }
        require_functions(self.enc.version())?;
        for code in libraries {
            if self.replace {
                write_command(&mut self.out, &[b"FUNCTION", b"LOAD", b"REPLACE", code])?;
            } else {
                write_command(&mut self.out, &[b"FUNCTION", b"LOAD", code])?;
            }
        }
        Ok(())
    }

    fn lua_scripts(&mut self, scripts: &[Bytes<'_>]) -> Result<(), SinkError> {
        for body in scripts {
            write_command(&mut self.out, &[b"SCRIPT", b"LOAD", body])?;
        }
        Ok(())
    }
}

impl Output for RespSink<Destination> {
    fn set_eviction(&mut self, e: Eviction) {
        self.enc.set_eviction(e);
    }
    fn reencoded(&self) -> u64 {
        self.enc.reencoded()
    }
    fn finish(self: Box<Self>) -> Result<Finished, OutputError> {
        RespSink::finish(*self)?.commit()?;
        Ok(Finished::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Kind, StrValue, Value};
    use std::borrow::Cow;

    fn string_key(expire_ms: Option<i64>) -> RecoveredKey<'static> {
        RecoveredKey {
            db: 0,
            key: Cow::Borrowed(b"k"),
            expire_ms,
            kind: Kind {
                type_name: "string",
                encoding: "embstr",
            },
            lru: 0,
            value: Value::String(StrValue::Bytes(Cow::Borrowed(b"v"))),
        }
    }

    #[test]
    fn commands_are_resp_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        write_command(&mut out, &[b"SELECT", b"3"]).unwrap();
        write_command(&mut out, &[b"SET", b"a\r\nb", b""]).unwrap();
        assert_eq!(
            out,
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn restore_carries_absolute_ttls_and_access_data() {
        let args = |r: &Restore| -> Vec<String> {
            r.restore
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        };
        let r = restore_args(b"k", Some(1_900_000_000_000), b"P", None, 10, false);
        assert_eq!(args(&r), ["RESTORE", "k", "1900000000000", "P", "ABSTTL"]);
        assert_eq!(r.pexpireat, None);
        let r = restore_args(b"k", None, b"P", Some(Access::Idle(7)), 10, true);
        assert_eq!(
            args(&r),
            ["RESTORE", "k", "0", "P", "REPLACE", "IDLETIME", "7"]
        );
        let r = restore_args(b"k", Some(-5), b"P", Some(Access::Freq(3)), 80, false);
        assert_eq!(
            args(&r),
            ["RESTORE", "k", "1", "P", "ABSTTL", "FREQ", "3"],
            "a TTL at or before the epoch stays a TTL"
        );
        // Before Redis 5.0 (RDB 9) there is no ABSTTL: PEXPIREAT follows.
        let r = restore_args(b"k", Some(1_900_000_000_000), b"P", None, 8, false);
        assert_eq!(args(&r), ["RESTORE", "k", "0", "P"]);
        assert_eq!(
            r.pexpireat,
            Some(vec![
                b"PEXPIREAT".to_vec(),
                b"k".to_vec(),
                b"1900000000000".to_vec()
            ])
        );
    }

    #[test]
    fn a_key_becomes_select_and_restore_of_its_dump_payload() {
        let mut sink = RespSink::new(Vec::new(), 10, false);
        sink.begin_db(2, 1, 1).unwrap();
        sink.key(&string_key(Some(1_900_000_000_000))).unwrap();
        let out = sink.finish().unwrap();
        let mut want = Vec::new();
        write_command(&mut want, &[b"SELECT", b"2"]).unwrap();
        let mut payload = vec![0, 1, b'v', 10, 0];
        let crc = rdb::crc64(&payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        write_command(
            &mut want,
            &[b"RESTORE", b"k", b"1900000000000", &payload, b"ABSTTL"],
        )
        .unwrap();
        assert_eq!(out, want);
        assert!(!out.windows(4).any(|w| w == b"AUTH"));
    }

    #[test]
    fn functions_need_a_target_that_has_them() {
        let lib: [Bytes<'_>; 1] = [Cow::Borrowed(&b"#!lua name=l\nx"[..])];
        let mut sink = RespSink::new(Vec::new(), 9, false);
        assert!(matches!(
            sink.functions(&lib),
            Err(SinkError::NoFunctions { .. })
        ));
        sink.lua_scripts(&[Cow::Borrowed(&b"return 1"[..])])
            .unwrap();
        let mut sink10 = RespSink::new(Vec::new(), 10, true);
        sink10.functions(&lib).unwrap();
        let out = sink10.finish().unwrap();
        let mut want = Vec::new();
        write_command(&mut want, &[b"FUNCTION", b"LOAD", b"REPLACE", &lib[0]]).unwrap();
        assert_eq!(out, want);
        let mut want9 = Vec::new();
        write_command(&mut want9, &[b"SCRIPT", b"LOAD", b"return 1"]).unwrap();
        assert_eq!(sink.finish().unwrap(), want9);
    }
}
