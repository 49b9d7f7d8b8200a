//! `--format jsonl`: one JSON object per line, per key (and per function library and EVAL
//! script), for scripts and analysts. The schema is in the README ("JSON lines").
//!
//! Each value is first encoded exactly as the RDB file would hold it and read back with the
//! `rdb` crate's reader, so every encoding (listpacks, quicklists with LZF nodes, intsets,
//! streams with their groups, hashes with field TTLs) comes out through one decoder, the one
//! `verify` trusts. Binary data stays exact: a string that is valid UTF-8 is a JSON string,
//! anything else `{"base64": "..."}` (standard alphabet, padded).

use std::io::Write;

use base64::Engine as _;
use rdb::reader::{HashField, RdbValue, Stream, StreamId};
use serde::Serialize;
use serde_json::{json, Value as Json};

use super::{Destination, Finished, Output, OutputError};
use crate::sink::{Eviction, KeyEncoder, Sink, SinkError, Written};
use crate::value::{Bytes, RecoveredKey};

/// Bytes as JSON: a string when they are UTF-8, else `{"base64": ...}`.
pub fn bin(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) => Json::String(s.to_owned()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

/// A score as JSON: a number, or `"inf"`/`"-inf"` (JSON has no infinities).
fn score(s: f64) -> Json {
    if s.is_finite() {
        json!(s)
    } else if s.is_nan() {
        json!("nan")
    } else if s > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

fn id(i: &StreamId) -> Json {
    Json::String(i.to_string())
}

fn pairs<'a>(it: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> Json {
    Json::Array(it.map(|(f, v)| json!([bin(f), bin(v)])).collect())
}

/// A stream: its metadata, entries, consumer groups and (8.6+) idempotency state.
fn stream(s: &Stream) -> Json {
    let entries: Vec<Json> = s
        .entries
        .iter()
        .map(|e| json!({ "id": id(&e.id), "fields": pairs(e.fields.iter().map(|(f, v)| (f, v))) }))
        .collect();
    let groups: Vec<Json> = s
        .groups
        .iter()
        .map(|g| {
            json!({
                "name": bin(&g.name),
                "last_id": id(&g.last_id),
                // Redis keeps -1 (stored as u64::MAX) when the counter is not known.
                "entries_read": g.entries_read.filter(|&n| n != u64::MAX),
                "pending": g.pending.iter().map(|p| json!({
                    "id": id(&p.id),
                    "delivery_time": p.delivery_time,
                    "delivery_count": p.delivery_count,
                })).collect::<Vec<_>>(),
                "consumers": g.consumers.iter().map(|c| json!({
                    "name": bin(&c.name),
                    "seen_time": c.seen_time,
                    "active_time": c.active_time,
                    "pending": c.pending.iter().map(id).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut out = json!({
        "length": s.length,
        "last_id": id(&s.last_id),
        "first_id": s.first_id.as_ref().map(id),
        "max_deleted_id": s.max_deleted_id.as_ref().map(id),
        "entries_added": s.entries_added,
        "entries": entries,
        "groups": groups,
    });
    if let (Some(i), Some(obj)) = (&s.idmp, out.as_object_mut()) {
        obj.insert(
            "idmp".into(),
            json!({
                "duration": i.config.duration(),
                "max_entries": i.config.max_entries(),
                "producers": i.producers.iter().map(|p| json!({
                    "pid": bin(&p.pid),
                    "iids": p.iids.iter().map(|e| json!([bin(&e.iid), id(&e.id)])).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "iids_added": i.iids_added,
                "iids_duplicates": i.iids_duplicates,
            }),
        );
    }
    out
}

/// The `value` of a key line, and for a hash with field TTLs its `field_ttls`.
pub fn value(v: &RdbValue) -> (Json, Option<Json>) {
    let list = |v: &[Vec<u8>]| Json::Array(v.iter().map(|e| bin(e)).collect());
    match v {
        RdbValue::String(s) => (bin(s), None),
        RdbValue::List(v) | RdbValue::Set(v) => (list(v), None),
        RdbValue::Zset(v) => (
            Json::Array(v.iter().map(|(m, s)| json!([bin(m), score(*s)])).collect()),
            None,
        ),
        RdbValue::Hash(v) => (pairs(v.iter().map(|(f, x)| (f, x))), None),
        RdbValue::HashWithTtl(v) => {
            let ttls: Vec<Json> = v
                .iter()
                .filter_map(
                    |HashField {
                         field, expire_ms, ..
                     }| { expire_ms.map(|ms| json!([bin(field), ms])) },
                )
                .collect();
            (
                pairs(v.iter().map(|h| (&h.field, &h.value))),
                Some(Json::Array(ttls)),
            )
        }
        RdbValue::Stream(s) => (stream(s), None),
        // The walker never recovers module values; the reader names their type only.
        RdbValue::Module(m) => (json!({ "module": m.type_name }), None),
    }
}

/// The library name on the first line of a function library's code (`#!lua name=mylib`).
fn library_name(code: &[u8]) -> Option<&[u8]> {
    let first = code.split(|&b| b == b'\n').next()?.strip_prefix(b"#!")?;
    first
        .split(|b| b.is_ascii_whitespace())
        .find_map(|word| word.strip_prefix(b"name="))
}

/// One key's line, its fields in this order.
#[derive(Serialize)]
struct KeyLine {
    db: u32,
    key: Json,
    r#type: &'static str,
    encoding: &'static str,
    /// Absolute expire time, Unix ms.
    ttl: Option<i64>,
    value: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    field_ttls: Option<Json>,
}

/// Writes keys as JSON lines.
pub struct JsonlSink<W: Write> {
    out: W,
    enc: KeyEncoder,
    payload: Vec<u8>,
    db: u32,
}

impl<W: Write> JsonlSink<W> {
    /// Lines for values encoded through RDB `rdb_version` (what that version cannot hold is
    /// re-encoded, or the key lost, exactly as for an RDB file).
    pub fn new(out: W, rdb_version: u32) -> Self {
        JsonlSink {
            out,
            // Compression would only be undone by the reader.
            enc: KeyEncoder::new(rdb_version, false),
            payload: Vec::new(),
            db: 0,
        }
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, SinkError> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn line(&mut self, obj: &Json) -> Result<(), SinkError> {
        serde_json::to_writer(&mut self.out, obj).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
}

impl<W: Write> Sink for JsonlSink<W> {
    fn begin_db(&mut self, db: u32, _keys: u64, _expires: u64) -> Result<(), SinkError> {
        self.db = db;
        Ok(())
    }

    fn key(&mut self, key: &RecoveredKey<'_>) -> Result<Written, SinkError> {
        let written = self.enc.encode(key)?;
        self.payload.clear();
        rdb::dump::payload(self.enc.record(), self.enc.version(), &mut self.payload)?;
        let decoded =
            rdb::dump::read_payload(&self.payload).map_err(|e| SinkError::Unwritable {
                reason: format!("its value does not read back for JSON: {e}"),
            })?;
        let (value, field_ttls) = value(&decoded.value);
        let line = KeyLine {
            db: self.db,
            key: bin(&key.key),
            r#type: key.kind.type_name,
            encoding: key.kind.encoding,
            ttl: key.expire_ms,
            value,
            field_ttls,
        };
        serde_json::to_writer(&mut self.out, &line).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(written)
    }

    fn functions(&mut self, libraries: &[Bytes<'_>]) -> Result<(), SinkError> {
        for code in libraries {
            let line = json!({
                "function_library": library_name(code).map(bin),
                "code": bin(code),
            });
            self.line(&line)?;
        }
        Ok(())
    }

    fn lua_scripts(&mut self, scripts: &[Bytes<'_>]) -> Result<(), SinkError> {
        for body in scripts {
            self.line(&json!({ "lua_script": bin(body) }))?;
        }
        Ok(())
    }
}

impl Output for JsonlSink<Destination> {
    fn set_eviction(&mut self, e: Eviction) {
        self.enc.set_eviction(e);
    }
    fn reencoded(&self) -> u64 {
        self.enc.reencoded()
    }
    fn finish(self: Box<Self>) -> Result<Finished, OutputError> {
        JsonlSink::finish(*self)?.commit()?;
        Ok(Finished::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Kind, StrValue, Value};
    use std::borrow::Cow;

    fn key(value: Value<'static>, kind: Kind, expire_ms: Option<i64>) -> RecoveredKey<'static> {
        RecoveredKey {
            db: 0,
            key: Cow::Borrowed(b"\xffk"),
            expire_ms,
            kind,
            lru: 0,
            value,
        }
    }

    fn lines(out: &[u8]) -> Vec<Json> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[test]
    fn binary_safe_strings() {
        assert_eq!(bin(b"plain"), json!("plain"));
        assert_eq!(bin(b"\xff\x00"), json!({"base64": "/wA="}));
        assert_eq!(score(f64::INFINITY), json!("inf"));
        assert_eq!(score(f64::NEG_INFINITY), json!("-inf"));
        assert_eq!(score(0.1), json!(0.1));
    }

    #[test]
    fn one_line_per_key_with_its_db_type_ttl_and_value() {
        let mut sink = JsonlSink::new(Vec::new(), 10);
        sink.functions(&[Cow::Borrowed(&b"#!lua name=mylib\nreturn"[..])])
            .unwrap();
        sink.begin_db(3, 2, 1).unwrap();
        let kind = |t, e| Kind {
            type_name: t,
            encoding: e,
        };
        sink.key(&key(
            Value::String(StrValue::Int(-12)),
            kind("string", "int"),
            Some(1_900_000_000_000),
        ))
        .unwrap();
        sink.key(&key(
            Value::ZsetPairs(vec![
                (Cow::Borrowed(&b"a"[..]), f64::NEG_INFINITY),
                (Cow::Borrowed(&b"b"[..]), 2.5),
            ]),
            kind("zset", "skiplist"),
            None,
        ))
        .unwrap();
        sink.key(&key(
            Value::HashPairsTtl(vec![
                (
                    Cow::Borrowed(&b"f"[..]),
                    Cow::Borrowed(&b"v"[..]),
                    Some(1_950_000_000_000),
                ),
                (Cow::Borrowed(&b"g"[..]), Cow::Borrowed(&b"w"[..]), None),
            ]),
            kind("hash", "hashtable"),
            None,
        ))
        .unwrap();
        let got = lines(&sink.finish().unwrap());
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(
            got[0],
            json!({"function_library": "mylib", "code": "#!lua name=mylib\nreturn"})
        );
        assert_eq!(
            got[1],
            json!({"db": 3, "key": {"base64": "/2s="}, "type": "string", "encoding": "int",
                   "ttl": 1_900_000_000_000i64, "value": "-12"})
        );
        assert_eq!(got[2]["value"], json!([["a", "-inf"], ["b", 2.5]]));
        assert_eq!(got[2]["ttl"], Json::Null);
        // RDB 10 has no field TTLs: the fields come without, as in the RDB file.
        assert_eq!(got[3]["value"], json!([["f", "v"], ["g", "w"]]));
        assert!(got[3].get("field_ttls").is_none());
        let mut sink12 = JsonlSink::new(Vec::new(), 12);
        sink12.begin_db(0, 1, 0).unwrap();
        sink12
            .key(&key(
                Value::HashPairsTtl(vec![(
                    Cow::Borrowed(&b"f"[..]),
                    Cow::Borrowed(&b"v"[..]),
                    Some(1_950_000_000_000),
                )]),
                kind("hash", "hashtable"),
                None,
            ))
            .unwrap();
        let got12 = lines(&sink12.finish().unwrap());
        assert_eq!(got12[0]["value"], json!([["f", "v"]]));
        assert_eq!(got12[0]["field_ttls"], json!([["f", 1_950_000_000_000i64]]));
    }

    #[test]
    fn library_names() {
        assert_eq!(library_name(b"#!lua name=abc\ncode"), Some(&b"abc"[..]));
        assert_eq!(library_name(b"#!lua  x=1 name=z"), Some(&b"z"[..]));
        assert_eq!(library_name(b"no shebang"), None);
    }
}
