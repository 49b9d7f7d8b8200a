//! Values: each RDB object type read into an [`RdbValue`], the compact encodings checked
//! with [`crate::decode`]'s parsers, and module values skipped with their type name kept.

use std::io::Read;

use super::{add_context, cap, HashField, ModuleValue, RdbReader, RdbValue, ReadError};
use crate::consts::{ValueType, RDB_VERSION_VALKEY_9};
use crate::decode::intset::Intset;
use crate::decode::listpack::Listpack;
use crate::decode::ziplist::Ziplist;
use crate::decode::zipmap::Zipmap;
use crate::decode::{DecodeError, Element};

impl<R: Read> RdbReader<R> {
    pub(super) fn value(&mut self, ty: u8, at: u64) -> Result<RdbValue, ReadError> {
        // Where Redis's and Valkey's formats part, a type of the other line is refused as
        // their loaders do: in RDB 80 whatever it lacks (Redis's 24 to 26), elsewhere
        // Valkey's type 22. Within 1..=13 the reader takes any type of that line.
        if let Some(t) = ValueType::from_code(ty) {
            if !t.fits(self.version)
                && (self.version == RDB_VERSION_VALKEY_9 || t == ValueType::Hash2)
            {
                return Err(ReadError::Unsupported {
                    offset: at,
                    what: format!(
                        "object type {ty} ({t:?}) is not in RDB {} (only in RDB {})",
                        self.version,
                        t.versions()
                    ),
                });
            }
        }
        Ok(match ty {
            0 => RdbValue::String(self.string("a string value")?),
            1 => RdbValue::List(self.strings("a list")?),
            2 => RdbValue::Set(self.strings("a set")?),
            3 | 5 => {
                let n = self.elements("a sorted set")?;
                let mut v = Vec::with_capacity(cap(n));
                for _ in 0..n {
                    let m = self.string("a sorted set member")?;
                    let s = if ty == 3 {
                        self.string_double(at)?
                    } else {
                        self.binary_double()?
                    };
                    v.push((m, s));
                }
                RdbValue::Zset(v)
            }
            4 => {
                let n = self.elements("a hash")?;
                let mut v = Vec::with_capacity(cap(n));
                for _ in 0..n {
                    let f = self.string("a hash field")?;
                    let x = self.string("a hash value")?;
                    v.push((f, x));
                }
                RdbValue::Hash(v)
            }
            7 => RdbValue::Module(self.module_value(at)?),
            9 => RdbValue::Hash(self.blob(at, "a zipmap", |b| {
                Ok(Zipmap::parse_exact(b)?
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect())
            })?),
            10 => RdbValue::List(self.blob(at, "a ziplist", |b| {
                Ok(Ziplist::parse_exact(b)?
                    .iter()
                    .map(|e| e.to_vec())
                    .collect())
            })?),
            11 => RdbValue::Set(self.blob(at, "an intset", |b| {
                Ok(Intset::parse_exact(b)?
                    .iter()
                    .map(|i| i.to_string().into_bytes())
                    .collect())
            })?),
            12 => RdbValue::Zset(self.blob(at, "a ziplist", |b| {
                zset_pairs(Ziplist::parse_exact(b)?.iter())
            })?),
            13 => RdbValue::Hash(
                self.blob(at, "a ziplist", |b| pairs(Ziplist::parse_exact(b)?.iter()))?,
            ),
            14 => {
                let n = self.elements("a quicklist")?;
                let mut v = Vec::new();
                for _ in 0..n {
                    let items = self.blob(at, "a quicklist node", |b| {
                        Ok(Ziplist::parse_exact(b)?
                            .iter()
                            .map(|e| e.to_vec())
                            .collect::<Vec<_>>())
                    })?;
                    v.extend(items);
                }
                RdbValue::List(v)
            }
            15 | 19 | 21 | 26 => RdbValue::Stream(Box::new(self.stream(ty, at)?)),
            16 => RdbValue::Hash(self.blob(at, "a listpack", |b| {
                pairs(Listpack::parse_exact(b)?.iter())
            })?),
            17 => RdbValue::Zset(self.blob(at, "a listpack", |b| {
                zset_pairs(Listpack::parse_exact(b)?.iter())
            })?),
            18 => {
                let n = self.elements("a quicklist")?;
                let mut v = Vec::new();
                for _ in 0..n {
                    let container = self.len("a quicklist node container")?;
                    match container {
                        1 => v.push(self.string("a plain quicklist node")?),
                        2 => {
                            let items = self.blob(at, "a quicklist node", |b| {
                                Ok(Listpack::parse_exact(b)?
                                    .iter()
                                    .map(|e| e.to_vec())
                                    .collect::<Vec<_>>())
                            })?;
                            if items.is_empty() {
                                return Err(self.corrupt(at, "empty quicklist node"));
                            }
                            v.extend(items);
                        }
                        c => {
                            return Err(self.corrupt(at, format!("unknown quicklist container {c}")))
                        }
                    }
                }
                RdbValue::List(v)
            }
            20 => RdbValue::Set(self.blob(at, "a listpack", |b| {
                Ok(Listpack::parse_exact(b)?
                    .iter()
                    .map(|e| e.to_vec())
                    .collect())
            })?),
            22 => {
                let n = self.elements("a hash")?;
                let mut v = Vec::with_capacity(cap(n));
                for _ in 0..n {
                    let field = self.string("a hash field")?;
                    let value = self.string("a hash value")?;
                    let ms = self.millis("a hash field expire time")?;
                    // Valkey's loader refuses times below -1 (-1 is "none").
                    let expire_ms = match ms {
                        -1 => None,
                        t if t >= 0 => Some(t),
                        t => {
                            return Err(
                                self.corrupt(at, format!("hash field expire time {t} (below -1)"))
                            )
                        }
                    };
                    v.push(HashField {
                        field,
                        value,
                        expire_ms,
                    });
                }
                RdbValue::HashWithTtl(v)
            }
            24 => {
                let min_expire = self.millis("a hash's minimum field expire")?;
                let n = self.elements("a hash")?;
                let mut v = Vec::with_capacity(cap(n));
                for _ in 0..n {
                    let ttl = self.len("a hash field TTL")?;
                    let field = self.string("a hash field")?;
                    let value = self.string("a hash value")?;
                    let expire_ms = if ttl == 0 {
                        None
                    } else {
                        let off = i64::try_from(ttl - 1)
                            .map_err(|_| self.corrupt(at, "hash field TTL out of range"))?;
                        Some(min_expire.saturating_add(off))
                    };
                    v.push(HashField {
                        field,
                        value,
                        expire_ms,
                    });
                }
                RdbValue::HashWithTtl(v)
            }
            25 => {
                let _min_expire = self.millis("a hash's minimum field expire")?;
                RdbValue::HashWithTtl(self.blob(at, "a listpack", |b| {
                    let items: Vec<Element<'_>> = Listpack::parse_exact(b)?.iter().collect();
                    if !items.len().is_multiple_of(3) {
                        return Err("hash listpack with TTLs is not made of triplets".into());
                    }
                    items
                        .chunks_exact(3)
                        .map(|t| match t {
                            [f, v, e] => {
                                let e = e
                                    .as_int()
                                    .ok_or(BlobError::Shape("hash field TTL is not an integer"))?;
                                Ok(HashField {
                                    field: f.to_vec(),
                                    value: v.to_vec(),
                                    expire_ms: (e != 0).then_some(e),
                                })
                            }
                            _ => Err(BlobError::Shape("hash listpack triplet")),
                        })
                        .collect()
                })?)
            }
            6 => {
                return Err(ReadError::Unsupported {
                    offset: at,
                    what: "pre-GA module value (type 6)".into(),
                })
            }
            other => {
                return Err(ReadError::Unsupported {
                    offset: at,
                    what: format!("unknown object type {other}"),
                })
            }
        })
    }

    fn strings(&mut self, what: &'static str) -> Result<Vec<Vec<u8>>, ReadError> {
        let n = self.elements(what)?;
        let mut v = Vec::with_capacity(cap(n));
        for _ in 0..n {
            v.push(self.string(what)?);
        }
        Ok(v)
    }

    fn module_value(&mut self, at: u64) -> Result<ModuleValue, ReadError> {
        let id = self.len("a module id")?;
        let (type_name, encver) = module_name(id);
        self.skip_module_data(at)
            .map_err(|e| add_context(e, &format!("module type {type_name}")))?;
        Ok(ModuleValue { type_name, encver })
    }

    /// Skips module-serialized data: typed opcodes up to the module EOF (0).
    pub(super) fn skip_module_data(&mut self, at: u64) -> Result<(), ReadError> {
        loop {
            match self.len("module data")? {
                0 => return Ok(()),
                1 | 2 => {
                    self.len("a module integer")?;
                }
                3 => self.input.skip(4, "a module float")?,
                4 => self.input.skip(8, "a module double")?,
                5 => self.skip_string("a module string")?,
                op => return Err(self.corrupt(at, format!("unknown module data opcode {op}"))),
            }
        }
    }
}

/// Type name and encoding version of a module type id (9 characters of 6 bits, then 10 bits).
pub(super) fn module_name(id: u64) -> (String, u32) {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut name = String::with_capacity(9);
    let sig = id >> 10;
    for i in (0..9).rev() {
        let c = CHARSET
            .get(((sig >> (6 * i)) & 63) as usize)
            .copied()
            .unwrap_or(b'?');
        name.push(char::from(c));
    }
    (name, (id & 1023) as u32)
}

/// A score written as text (`%.17g`, "inf", "-inf", "nan").
pub(crate) fn parse_score(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    s.parse::<f64>().ok()
}

/// Field/value pairs.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Why a blob inside a value is refused: its decoder's reason, or what the value's shape
/// lacks although the blob itself is sound.
#[derive(Debug, thiserror::Error)]
pub(super) enum BlobError {
    /// The decoder refused the blob.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The elements do not make the value (an odd count where pairs belong, say).
    #[error("{0}")]
    Shape(&'static str),
}

impl From<&'static str> for BlobError {
    fn from(what: &'static str) -> Self {
        BlobError::Shape(what)
    }
}

fn pairs<'a>(items: impl Iterator<Item = Element<'a>>) -> Result<Pairs, BlobError> {
    let items: Vec<Element<'a>> = items.collect();
    if !items.len().is_multiple_of(2) {
        return Err("odd number of elements where pairs belong".into());
    }
    Ok(items
        .chunks_exact(2)
        .filter_map(|p| match p {
            [a, b] => Some((a.to_vec(), b.to_vec())),
            _ => None,
        })
        .collect())
}

fn zset_pairs<'a>(
    items: impl Iterator<Item = Element<'a>>,
) -> Result<Vec<(Vec<u8>, f64)>, BlobError> {
    let items: Vec<Element<'a>> = items.collect();
    if !items.len().is_multiple_of(2) {
        return Err("odd number of elements where member/score pairs belong".into());
    }
    items
        .chunks_exact(2)
        .map(|p| match p {
            [m, Element::Int(i)] => Ok((m.to_vec(), *i as f64)),
            [m, Element::Bytes(s)] => Ok((
                m.to_vec(),
                parse_score(s).ok_or(BlobError::Shape("score is not a number"))?,
            )),
            _ => Err(BlobError::Shape("member/score pair")),
        })
        .collect()
}
