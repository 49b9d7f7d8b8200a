//! Key-by-key comparison of the dump's entries with a server, in pipelined batches.
//!
//! Per key: `TYPE`, the expire time (`PEXPIRETIME` on 7.0+, `PTTL` within a tolerance on
//! 2.6–6.2, `TTL` before), and the value (`GET`, `LRANGE 0 -1`, `SMEMBERS`,
//! `ZRANGE 0 -1 WITHSCORES`, `HGETALL`, and for streams `XRANGE - +`, `XINFO STREAM`,
//! `XINFO GROUPS`). Sets, hashes and sorted sets are compared as sets; lists and stream
//! entries in order; scores exactly. A batch holds at most [`BATCH_KEYS`] keys and about
//! [`BATCH_BYTES`] of values, so memory does not grow with the dump.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rdb::reader::{Entry, RdbValue, Stream, StreamId};
use redis::{Connection, Value};
use serde::Serialize;

use super::server::{ServerError, ServerVersion};
use crate::value::printable;

/// Keys per pipelined batch.
pub const BATCH_KEYS: usize = 256;
/// Approximate value bytes per batch.
pub const BATCH_BYTES: usize = 8 << 20;
/// Longest value excerpt shown in a difference.
const PREVIEW: usize = 48;

/// Unix time in ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How expire times are read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpireMode {
    /// `PEXPIRETIME` (7.0+): the absolute time, compared exactly.
    Pexpiretime,
    /// `PTTL` (2.6+): compared within [`TTL_TOLERANCE_MS`].
    Pttl,
    /// `TTL` (before 2.6): seconds, compared within a second more.
    Ttl,
}

/// Tolerance of a relative expire comparison (clock reading, a server on another host).
pub const TTL_TOLERANCE_MS: i64 = 2000;

impl ExpireMode {
    /// The best mode `version` offers.
    pub fn for_version(v: &ServerVersion) -> Self {
        if v.at_least(7, 0) {
            ExpireMode::Pexpiretime
        } else if v.at_least(2, 6) {
            ExpireMode::Pttl
        } else {
            ExpireMode::Ttl
        }
    }

    fn command(self) -> &'static str {
        match self {
            ExpireMode::Pexpiretime => "PEXPIRETIME",
            ExpireMode::Pttl => "PTTL",
            ExpireMode::Ttl => "TTL",
        }
    }
}

/// One difference between the dump and the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Database.
    pub db: u32,
    /// The key, printable.
    pub key: String,
    /// What differs: `missing`, `type`, `expire`, `value`, `error`.
    pub what: String,
    /// What the dump holds.
    pub expected: String,
    /// What the server holds.
    pub found: String,
}

/// Totals of a comparison.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompareStats {
    /// Keys compared.
    pub compared: u64,
    /// Keys equal in type, expire time and value.
    pub matched: u64,
    /// Keys absent from the server because their expire time had passed (not counted as
    /// differences).
    pub expired: u64,
    /// Keys that differ.
    pub differing: u64,
    /// The first differences.
    pub first: Vec<Difference>,
    /// Per db: dump keys found on the server (matching or not).
    #[serde(skip)]
    pub present: BTreeMap<u32, u64>,
    /// Per db: dump keys gone because their expire time passed.
    #[serde(skip)]
    pub expired_by_db: BTreeMap<u32, u64>,
}

impl CompareStats {
    /// Records a difference (named while fewer than `max_listed` are).
    pub fn differs(&mut self, d: Difference, max_listed: usize) {
        self.differing += 1;
        if self.first.len() < max_listed {
            self.first.push(d);
        }
    }
}

/// Compares entries with a server, batch by batch.
pub struct Comparer<'c> {
    conn: &'c mut Connection,
    mode: ExpireMode,
    batch: Vec<Entry>,
    weight: usize,
    stats: CompareStats,
    max_listed: usize,
}

/// Replies a key's commands produce.
fn value_commands(p: &mut redis::Pipeline, e: &Entry) -> usize {
    let k = e.key.as_slice();
    match &e.value {
        RdbValue::String(_) => {
            p.cmd("GET").arg(k);
            1
        }
        RdbValue::List(_) => {
            p.cmd("LRANGE").arg(k).arg(0).arg(-1);
            1
        }
        RdbValue::Set(_) => {
            p.cmd("SMEMBERS").arg(k);
            1
        }
        RdbValue::Zset(_) => {
            p.cmd("ZRANGE").arg(k).arg(0).arg(-1).arg("WITHSCORES");
            1
        }
        RdbValue::Hash(_) | RdbValue::HashWithTtl(_) => {
            p.cmd("HGETALL").arg(k);
            1
        }
        RdbValue::Stream(_) => {
            p.cmd("XRANGE").arg(k).arg("-").arg("+");
            p.cmd("XINFO").arg("STREAM").arg(k);
            p.cmd("XINFO").arg("GROUPS").arg(k);
            3
        }
        RdbValue::Module(_) => 0,
    }
}

impl<'c> Comparer<'c> {
    /// A comparer on `conn` (any selected db) for a server of `version`, listing at most
    /// `max_listed` differences.
    pub fn new(conn: &'c mut Connection, version: &ServerVersion, max_listed: usize) -> Self {
        Comparer {
            conn,
            mode: ExpireMode::for_version(version),
            batch: Vec::with_capacity(BATCH_KEYS),
            weight: 0,
            stats: CompareStats::default(),
            max_listed,
        }
    }

    /// The expire comparison in use.
    pub fn mode(&self) -> ExpireMode {
        self.mode
    }

    /// Queues `e`; compares the batch when it is full.
    pub fn push(&mut self, e: Entry) -> Result<(), ServerError> {
        self.weight += e.value.weight() + e.key.len();
        self.batch.push(e);
        if self.batch.len() >= BATCH_KEYS || self.weight >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Compares what is queued and returns the totals.
    pub fn finish(mut self) -> Result<CompareStats, ServerError> {
        self.flush()?;
        Ok(self.stats)
    }

    fn flush(&mut self) -> Result<(), ServerError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.weight = 0;
        let mut p = redis::pipe();
        p.ignore_errors();
        // Per entry: index of its first reply and how many value replies follow TYPE and
        // the expire reply.
        let mut slots = Vec::with_capacity(batch.len());
        let mut n = 0usize;
        let mut db = None;
        for e in &batch {
            if db != Some(e.db) {
                p.cmd("SELECT").arg(e.db);
                n += 1;
                db = Some(e.db);
            }
            p.cmd("TYPE").arg(e.key.as_slice());
            p.cmd(self.mode.command()).arg(e.key.as_slice());
            let v = value_commands(&mut p, e);
            slots.push((n, v));
            n += 2 + v;
        }
        let before = now_ms();
        let replies: Vec<Value> = p.query(self.conn).map_err(|source| ServerError::Command {
            what: format!("pipeline of {} keys", batch.len()),
            source,
        })?;
        let after = now_ms();
        if replies.len() != n {
            return Err(ServerError::Command {
                what: "pipeline".into(),
                source: redis::RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "reply count differs from the commands sent",
                )),
            });
        }
        // A failed SELECT would make everything after it compare against the wrong db.
        for (i, r) in replies.iter().enumerate() {
            if let Value::ServerError(err) = r {
                if slots.iter().all(|(s, v)| i < *s || i >= s + 2 + v) {
                    return Err(ServerError::Command {
                        what: "SELECT".into(),
                        source: redis::RedisError::from((
                            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
                            "SELECT failed",
                            format!("{err:?}"),
                        )),
                    });
                }
            }
        }
        for (e, (start, nv)) in batch.iter().zip(slots) {
            let r = replies.get(start..start + 2 + nv).unwrap_or_default();
            let window = Window { before, after };
            let verdict = check_key(e, r, self.mode, window);
            if !matches!(verdict, Verdict::Expired | Verdict::Differs("missing", ..)) {
                *self.stats.present.entry(e.db).or_default() += 1;
            }
            match verdict {
                Verdict::Match => {
                    self.stats.compared += 1;
                    self.stats.matched += 1;
                }
                Verdict::Expired => {
                    self.stats.expired += 1;
                    *self.stats.expired_by_db.entry(e.db).or_default() += 1;
                }
                Verdict::Differs(what, expected, found) => {
                    self.stats.compared += 1;
                    let d = Difference {
                        db: e.db,
                        key: printable(&e.key),
                        what: what.to_owned(),
                        expected,
                        found,
                    };
                    self.stats.differs(d, self.max_listed);
                }
            }
        }
        Ok(())
    }
}

/// When the batch's commands ran, in Unix ms.
#[derive(Clone, Copy)]
struct Window {
    before: i64,
    after: i64,
}

enum Verdict {
    Match,
    Expired,
    Differs(&'static str, String, String),
}

fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::Okay => Some(b"OK"),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => std::str::from_utf8(text(other)?).ok()?.parse().ok(),
    }
}

fn items(v: &Value) -> Option<Vec<&Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a.iter().collect()),
        Value::Map(m) => Some(m.iter().flat_map(|(a, b)| [a, b]).collect()),
        _ => None,
    }
}

fn byte_items(v: &Value) -> Option<Vec<&[u8]>> {
    items(v)?.into_iter().map(text).collect()
}

fn byte_pairs(v: &Value) -> Option<Vec<(&[u8], &[u8])>> {
    let flat = byte_items(v)?;
    if flat.len() % 2 != 0 {
        return None;
    }
    Some(
        flat.chunks_exact(2)
            .filter_map(|c| match c {
                [a, b] => Some((*a, *b)),
                _ => None,
            })
            .collect(),
    )
}

/// Field → value of a flat key/value reply (XINFO).
fn fields(v: &Value) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    if let Some(all) = items(v) {
        for c in all.chunks_exact(2) {
            if let [k, v] = c {
                if let Some(k) = text(k) {
                    out.insert(String::from_utf8_lossy(k).into_owned(), *v);
                }
            }
        }
    }
    out
}

fn describe_reply(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::ServerError(e) => format!(
            "error {}{}",
            e.code(),
            e.details().map(|d| format!(" {d}")).unwrap_or_default()
        ),
        Value::Int(i) => i.to_string(),
        other => match text(other) {
            Some(t) => preview(t),
            None => "an unexpected reply".into(),
        },
    }
}

/// A short printable excerpt of `b`.
fn preview(b: &[u8]) -> String {
    let cut = b.get(..PREVIEW).unwrap_or(b);
    let mut s = format!("\"{}\"", printable(cut));
    if b.len() > PREVIEW {
        s.push_str(&format!("… ({} bytes)", b.len()));
    }
    s
}

fn fmt_score(s: f64) -> String {
    if s.is_infinite() {
        if s > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{s}")
    }
}

fn parse_score(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    match s {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn check_key(e: &Entry, r: &[Value], mode: ExpireMode, w: Window) -> Verdict {
    let expired_by_now = e.expire_ms.is_some_and(|t| t <= w.after);
    let (Some(ty), Some(exp)) = (r.first(), r.get(1)) else {
        return Verdict::Differs("error", "replies".into(), "too few replies".into());
    };
    let want_type = e.value.type_name();
    match text(ty) {
        Some(b"none") => {
            return if expired_by_now || all_fields_expired(&e.value, w.after) {
                Verdict::Expired
            } else {
                Verdict::Differs(
                    "missing",
                    format!("a {want_type}"),
                    "no such key on the server".into(),
                )
            };
        }
        Some(t) if t == want_type.as_bytes() => {}
        _ => {
            return Verdict::Differs("type", want_type.to_owned(), describe_reply(ty));
        }
    }
    if let Some(v) = check_expire(e.expire_ms, exp, mode, w) {
        if expired_by_now {
            return Verdict::Expired;
        }
        return Verdict::Differs("expire", expire_text(e.expire_ms), v);
    }
    let values = r.get(2..).unwrap_or_default();
    match check_value(&e.value, values, w) {
        None => Verdict::Match,
        Some(_) if expired_by_now => Verdict::Expired,
        Some((expected, found)) => Verdict::Differs("value", expected, found),
    }
}

/// A hash whose fields all have a TTL that has passed: the server drops such a key (Valkey
/// 9 and Redis 7.4+ skip it while loading, or expire its last field later), so its absence
/// is an expiry, not a difference.
pub fn all_fields_expired(v: &RdbValue, now: i64) -> bool {
    matches!(v, RdbValue::HashWithTtl(h)
        if !h.is_empty() && h.iter().all(|f| f.expire_ms.is_some_and(|t| t <= now)))
}

fn expire_text(t: Option<i64>) -> String {
    match t {
        None => "no expire".into(),
        Some(ms) => format!("expires at {ms} ms"),
    }
}

/// `None` when the expire reply agrees with `want`, else what the server says.
fn check_expire(want: Option<i64>, reply: &Value, mode: ExpireMode, w: Window) -> Option<String> {
    let Some(got) = int(reply) else {
        return Some(describe_reply(reply));
    };
    let found = |abs: String| Some(abs);
    match (mode, want) {
        (_, None) if got == -1 => None,
        (_, None) => found(match mode {
            ExpireMode::Pexpiretime => format!("expires at {got} ms"),
            ExpireMode::Pttl => format!("expires in {got} ms"),
            ExpireMode::Ttl => format!("expires in {got} s"),
        }),
        (ExpireMode::Pexpiretime, Some(t)) if got == t => None,
        (ExpireMode::Pexpiretime, Some(_)) => found(if got < 0 {
            "no expire".into()
        } else {
            format!("expires at {got} ms")
        }),
        (ExpireMode::Pttl | ExpireMode::Ttl, Some(t)) => {
            if got < 0 {
                return found("no expire".into());
            }
            let (ms, slack) = if mode == ExpireMode::Pttl {
                (got, TTL_TOLERANCE_MS)
            } else {
                (got.saturating_mul(1000), TTL_TOLERANCE_MS + 1000)
            };
            // The server measured between `before` and `after`.
            let lo = w.before.saturating_add(ms).saturating_sub(slack);
            let hi = w.after.saturating_add(ms).saturating_add(slack);
            if (lo..=hi).contains(&t) {
                None
            } else {
                found(format!(
                    "expires at about {} ms ({} {ms} ms)",
                    w.after.saturating_add(ms),
                    mode.command()
                ))
            }
        }
    }
}

/// `None` when equal, else (expected, found) descriptions of the first difference.
fn check_value(want: &RdbValue, r: &[Value], w: Window) -> Option<(String, String)> {
    let reply = |i: usize| r.get(i).unwrap_or(&Value::Nil);
    let bad_reply = |v: &Value| Some(("a valid reply".to_owned(), describe_reply(v)));
    match want {
        RdbValue::String(s) => match text(reply(0)) {
            Some(got) if got == s.as_slice() => None,
            Some(got) => Some((
                format!("{} bytes {}", s.len(), preview(s)),
                format!("{} bytes {}", got.len(), preview(got)),
            )),
            None => bad_reply(reply(0)),
        },
        RdbValue::List(l) => {
            let Some(got) = byte_items(reply(0)) else {
                return bad_reply(reply(0));
            };
            compare_seq(l.iter().map(Vec::as_slice), got.into_iter(), l.len())
        }
        RdbValue::Set(s) => {
            let Some(mut got) = byte_items(reply(0)) else {
                return bad_reply(reply(0));
            };
            let mut want: Vec<&[u8]> = s.iter().map(Vec::as_slice).collect();
            want.sort_unstable();
            got.sort_unstable();
            compare_sets(&want, &got, "member")
        }
        RdbValue::Zset(z) => {
            let Some(pairs) = byte_pairs(reply(0)) else {
                return bad_reply(reply(0));
            };
            let mut got = Vec::with_capacity(pairs.len());
            for (m, s) in pairs {
                let Some(score) = parse_score(s) else {
                    return Some(("a score".into(), preview(s)));
                };
                got.push((m, score));
            }
            let mut want: Vec<(&[u8], f64)> = z.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
            want.sort_by(|a, b| a.0.cmp(b.0));
            got.sort_by(|a, b| a.0.cmp(b.0));
            let wm: Vec<&[u8]> = want.iter().map(|p| p.0).collect();
            let gm: Vec<&[u8]> = got.iter().map(|p| p.0).collect();
            if let Some(d) = compare_sets(&wm, &gm, "member") {
                return Some(d);
            }
            want.iter()
                .zip(&got)
                .find(|(a, b)| a.1 != b.1)
                .map(|(a, b)| {
                    (
                        format!("member {} score {}", preview(a.0), fmt_score(a.1)),
                        format!("score {}", fmt_score(b.1)),
                    )
                })
        }
        RdbValue::Hash(h) => {
            let Some(mut got) = byte_pairs(reply(0)) else {
                return bad_reply(reply(0));
            };
            let mut want: Vec<(&[u8], &[u8])> = h
                .iter()
                .map(|(f, v)| (f.as_slice(), v.as_slice()))
                .collect();
            compare_hash(&mut want, &mut got)
        }
        RdbValue::HashWithTtl(h) => {
            let Some(got) = byte_pairs(reply(0)) else {
                return bad_reply(reply(0));
            };
            // Fields whose own TTL has passed may or may not still be there.
            let gone: std::collections::HashSet<&[u8]> = h
                .iter()
                .filter(|x| x.expire_ms.is_some_and(|t| t <= w.after))
                .map(|x| x.field.as_slice())
                .collect();
            let mut want: Vec<(&[u8], &[u8])> = h
                .iter()
                .filter(|x| x.expire_ms.is_none_or(|t| t > w.after))
                .map(|x| (x.field.as_slice(), x.value.as_slice()))
                .collect();
            let mut got: Vec<(&[u8], &[u8])> =
                got.into_iter().filter(|(f, _)| !gone.contains(f)).collect();
            compare_hash(&mut want, &mut got)
        }
        RdbValue::Stream(s) => check_stream(s, reply(0), reply(1), reply(2)),
        RdbValue::Module(_) => None,
    }
}

fn compare_seq<'a>(
    want: impl Iterator<Item = &'a [u8]>,
    got: impl ExactSizeIterator<Item = &'a [u8]>,
    want_len: usize,
) -> Option<(String, String)> {
    let got_len = got.len();
    let mut got = got;
    for (i, a) in want.enumerate() {
        match got.next() {
            Some(b) if a == b => {}
            Some(b) => {
                return Some((
                    format!("element {i} {}", preview(a)),
                    format!("element {i} {}", preview(b)),
                ))
            }
            None => break,
        }
    }
    (want_len != got_len).then(|| {
        (
            format!("{want_len} elements"),
            format!("{got_len} elements"),
        )
    })
}

/// Compares two sorted lists of members; names the first one missing on either side.
fn compare_sets(want: &[&[u8]], got: &[&[u8]], what: &str) -> Option<(String, String)> {
    let (mut i, mut j) = (0, 0);
    loop {
        match (want.get(i), got.get(j)) {
            (None, None) => return None,
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.is_none_or(|b| a < b) => {
                return Some((
                    format!("{what} {} ({} in all)", preview(a), want.len()),
                    format!("{what} absent ({} in all)", got.len()),
                ))
            }
            (_, Some(b)) => {
                return Some((
                    format!("no {what} {} ({} in all)", preview(b), want.len()),
                    format!("{what} {} present ({} in all)", preview(b), got.len()),
                ))
            }
            (Some(_), None) => return None, // unreachable: covered above
        }
    }
}

fn compare_hash(
    want: &mut [(&[u8], &[u8])],
    got: &mut [(&[u8], &[u8])],
) -> Option<(String, String)> {
    want.sort_unstable();
    got.sort_unstable();
    let wf: Vec<&[u8]> = want.iter().map(|p| p.0).collect();
    let gf: Vec<&[u8]> = got.iter().map(|p| p.0).collect();
    if let Some(d) = compare_sets(&wf, &gf, "field") {
        return Some(d);
    }
    want.iter()
        .zip(got.iter())
        .find(|(a, b)| a.1 != b.1)
        .map(|(a, b)| {
            (
                format!("field {} = {}", preview(a.0), preview(a.1)),
                format!("field {} = {}", preview(b.0), preview(b.1)),
            )
        })
}

fn id_of(v: &Value) -> Option<StreamId> {
    StreamId::parse(std::str::from_utf8(text(v)?).ok()?)
}

fn check_stream(
    s: &Stream,
    range: &Value,
    info: &Value,
    groups: &Value,
) -> Option<(String, String)> {
    // Entries, in order.
    let Some(got) = items(range) else {
        return Some(("XRANGE entries".into(), describe_reply(range)));
    };
    if got.len() != s.entries.len() {
        return Some((
            format!("{} entries", s.entries.len()),
            format!("{} entries", got.len()),
        ));
    }
    for (want, g) in s.entries.iter().zip(got) {
        let parts = items(g).unwrap_or_default();
        let id = parts.first().and_then(|v| id_of(v));
        let fv = parts.get(1).and_then(|v| byte_pairs(v));
        let same_fields = fv.as_ref().is_some_and(|fv| {
            fv.len() == want.fields.len()
                && fv
                    .iter()
                    .zip(&want.fields)
                    .all(|(a, b)| a.0 == b.0.as_slice() && a.1 == b.1.as_slice())
        });
        if id != Some(want.id) || !same_fields {
            return Some((
                format!("entry {}", want.id),
                match id {
                    Some(id) if id == want.id => format!("entry {id} with other fields"),
                    Some(id) => format!("entry {id}"),
                    None => "an unreadable entry".into(),
                },
            ));
        }
    }
    // Stream metadata.
    let f = fields(info);
    let length = f.get("length").and_then(|v| int(v));
    if length != i64::try_from(s.length).ok() {
        return Some((
            format!("XLEN {}", s.length),
            format!("XLEN {}", length.map_or("?".into(), |l| l.to_string())),
        ));
    }
    let last = f.get("last-generated-id").and_then(|v| id_of(v));
    if last != Some(s.last_id) {
        return Some((
            format!("last ID {}", s.last_id),
            format!("last ID {}", last.map_or("?".into(), |l| l.to_string())),
        ));
    }
    if let (Some(want), Some(got)) = (s.entries_added, f.get("entries-added").and_then(|v| int(v)))
    {
        if i64::try_from(want).ok() != Some(got) {
            return Some((
                format!("entries-added {want}"),
                format!("entries-added {got}"),
            ));
        }
    }
    if let (Some(want), Some(got)) = (
        s.max_deleted_id,
        f.get("max-deleted-entry-id").and_then(|v| id_of(v)),
    ) {
        if want != got {
            return Some((
                format!("max-deleted-entry-id {want}"),
                format!("max-deleted-entry-id {got}"),
            ));
        }
    }
    // Consumer groups, by name.
    let Some(got_groups) = items(groups) else {
        return Some(("XINFO GROUPS".into(), describe_reply(groups)));
    };
    let mut by_name: BTreeMap<Vec<u8>, BTreeMap<String, &Value>> = BTreeMap::new();
    for g in got_groups {
        let gf = fields(g);
        if let Some(name) = gf.get("name").and_then(|v| text(v)) {
            by_name.insert(name.to_vec(), gf);
        }
    }
    if by_name.len() != s.groups.len() {
        return Some((
            format!("{} consumer groups", s.groups.len()),
            format!("{} consumer groups", by_name.len()),
        ));
    }
    for g in &s.groups {
        let name = preview(&g.name);
        let Some(gf) = by_name.get(&g.name) else {
            return Some((format!("group {name}"), "no such group".into()));
        };
        let last = gf.get("last-delivered-id").and_then(|v| id_of(v));
        if last != Some(g.last_id) {
            return Some((
                format!("group {name} last-delivered-id {}", g.last_id),
                last.map_or("?".into(), |l| l.to_string()),
            ));
        }
        let pending = gf.get("pending").and_then(|v| int(v));
        if pending != i64::try_from(g.pending.len()).ok() {
            return Some((
                format!("group {name} pending {}", g.pending.len()),
                format!("pending {}", pending.map_or("?".into(), |p| p.to_string())),
            ));
        }
        let consumers = gf.get("consumers").and_then(|v| int(v));
        if consumers != i64::try_from(g.consumers.len()).ok() {
            return Some((
                format!("group {name} consumers {}", g.consumers.len()),
                format!(
                    "consumers {}",
                    consumers.map_or("?".into(), |p| p.to_string())
                ),
            ));
        }
        if let (Some(want), Some(got)) =
            (g.entries_read, gf.get("entries-read").and_then(|v| int(v)))
        {
            if i64::try_from(want).ok() != Some(got) {
                return Some((
                    format!("group {name} entries-read {want}"),
                    format!("entries-read {got}"),
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
