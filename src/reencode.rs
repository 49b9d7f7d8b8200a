//! Turning compact in-memory encodings into the plain RDB types every loader reads
//! (list, set, zset, hash), for `--rdb-version` targets older than the source.

use rdb::RecordBuilder;

use crate::decode::{
    intset::Intset, listpack::Listpack, lzf, ziplist::Ziplist, DecodeError, Element,
};
use crate::value::{QuicklistNode, Value};

/// Which plain RDB type a re-encoded value becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainType {
    /// RDB type 1.
    List,
    /// RDB type 2.
    Set,
    /// RDB type 3 or 5 (scores as text or binary).
    Zset,
    /// RDB type 4.
    Hash,
}

/// The plain type for a compact value, or `None` when the value is not compact.
pub fn plain_type(v: &Value<'_>) -> Option<PlainType> {
    Some(match v {
        Value::ListQuicklist(_) | Value::ListQuicklistZiplist(_) | Value::ListZiplist(_) => {
            PlainType::List
        }
        Value::SetIntset(_) | Value::SetListpack(_) => PlainType::Set,
        Value::ZsetListpack(_) | Value::ZsetZiplist(_) => PlainType::Zset,
        Value::HashListpack(_) | Value::HashZiplist(_) => PlainType::Hash,
        _ => return None,
    })
}

/// Every element of a compact value, as text, in order (pairs flattened).
fn elements(
    v: &Value<'_>,
    scratch: &mut Vec<u8>,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), DecodeError> {
    let push_all = |it: &mut dyn Iterator<Item = Element<'_>>, out: &mut Vec<Vec<u8>>| {
        for e in it {
            out.push(e.to_vec());
        }
    };
    match v {
        Value::ListQuicklist(nodes) => {
            for n in nodes {
                match n {
                    QuicklistNode::Packed(b) => push_all(&mut Listpack::parse(b)?.iter(), out),
                    QuicklistNode::PackedLzf {
                        compressed,
                        raw_len,
                    } => {
                        lzf::decompress(compressed, *raw_len as usize, scratch)?;
                        push_all(&mut Listpack::parse(scratch)?.iter(), out);
                    }
                    QuicklistNode::Plain(b) => out.push(b.to_vec()),
                    QuicklistNode::PlainLzf {
                        compressed,
                        raw_len,
                    } => {
                        lzf::decompress(compressed, *raw_len as usize, scratch)?;
                        out.push(scratch.clone());
                    }
                }
            }
        }
        Value::ListQuicklistZiplist(nodes) => {
            for n in nodes {
                match n {
                    QuicklistNode::Packed(b) | QuicklistNode::Plain(b) => {
                        push_all(&mut Ziplist::parse(b)?.iter(), out)
                    }
                    QuicklistNode::PackedLzf {
                        compressed,
                        raw_len,
                    }
                    | QuicklistNode::PlainLzf {
                        compressed,
                        raw_len,
                    } => {
                        lzf::decompress(compressed, *raw_len as usize, scratch)?;
                        push_all(&mut Ziplist::parse(scratch)?.iter(), out);
                    }
                }
            }
        }
        Value::ListZiplist(b) | Value::ZsetZiplist(b) | Value::HashZiplist(b) => {
            push_all(&mut Ziplist::parse(b)?.iter(), out)
        }
        Value::ZsetListpack(b) | Value::HashListpack(b) | Value::SetListpack(b) => {
            push_all(&mut Listpack::parse(b)?.iter(), out)
        }
        Value::SetIntset(b) => {
            for i in Intset::parse(b)?.iter() {
                out.push(i.to_string().into_bytes());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Append the value of `v` as the plain type `t` to `rec` (the type byte and key are the
/// caller's). `binary_scores` selects ZSET_2 score encoding.
pub fn write_plain(
    v: &Value<'_>,
    t: PlainType,
    binary_scores: bool,
    rec: &mut RecordBuilder,
) -> Result<(), DecodeError> {
    let mut scratch = Vec::new();
    let mut elems = Vec::new();
    elements(v, &mut scratch, &mut elems)?;
    // A field without its value (or a member without its score) would make a record that
    // reads as something else; the walker rejects odd counts first, this keeps it so.
    if matches!(t, PlainType::Hash | PlainType::Zset) && elems.len() % 2 != 0 {
        return Err(DecodeError::BadHeader {
            what: "hash or zset pairs",
            detail: format!("{} elements, an odd count", elems.len()),
        });
    }
    match t {
        PlainType::List | PlainType::Set => {
            rec.len(elems.len() as u64);
            for e in &elems {
                rec.string(e);
            }
        }
        PlainType::Hash => {
            rec.len(elems.len() as u64 / 2);
            for e in &elems {
                rec.string(e);
            }
        }
        PlainType::Zset => {
            rec.len(elems.len() as u64 / 2);
            for pair in elems.chunks_exact(2) {
                let (Some(member), Some(score)) = (pair.first(), pair.get(1)) else {
                    continue;
                };
                let score = parse_score(score).ok_or(DecodeError::BadHeader {
                    what: "zset score",
                    detail: String::from_utf8_lossy(score).into_owned(),
                })?;
                rec.string(member);
                if binary_scores {
                    rec.binary_double(score);
                } else {
                    rec.string_double(score);
                }
            }
        }
    }
    Ok(())
}

/// Parse a score as Redis stores it in a listpack or ziplist (decimal text or "inf").
fn parse_score(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    match s {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdb::RecordBuilder;
    use std::borrow::Cow;

    /// A listpack of three one-byte strings: a field and its value, then a field alone.
    fn listpack_of_three() -> Vec<u8> {
        let mut lp = vec![0, 0, 0, 0, 3, 0];
        for s in [b'f', b'v', b'g'] {
            lp.extend_from_slice(&[0x81, s, 2]);
        }
        lp.push(0xff);
        let total = lp.len() as u32;
        lp[..4].copy_from_slice(&total.to_le_bytes());
        lp
    }

    #[test]
    fn an_odd_number_of_hash_elements_is_refused() {
        let v = Value::HashListpack(Cow::Owned(listpack_of_three()));
        let mut rec = RecordBuilder::new(false);
        let err = write_plain(&v, PlainType::Hash, true, &mut rec).unwrap_err();
        assert!(err.to_string().contains("odd"), "{err}");
        let mut rec = RecordBuilder::new(false);
        assert!(write_plain(&v, PlainType::Zset, true, &mut rec).is_err());
        // The same three elements are a fine list.
        let mut rec = RecordBuilder::new(false);
        write_plain(&v, PlainType::List, true, &mut rec).unwrap();
    }
}
