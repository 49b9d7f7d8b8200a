//! Zipmap decoder (small hashes in RDB type 9, written by Redis < 2.6).
//!
//! Layout: `zmlen` (1 byte: the pair count if < 254, else unknown), then pairs
//! `<len><key><len><free><value><free bytes of padding>`, then the end byte 0xFF.
//! `<len>` is 1 byte if 0–253, else 254 followed by a u32 LE; `free` is 1 byte.

use super::{read_le, DecodeError};

/// The end-of-zipmap byte.
pub const END: u8 = 0xFF;
/// Length byte announcing a u32 length; also the smallest `zmlen` meaning "unknown".
pub const BIGLEN: u8 = 254;

const WHAT: &str = "zipmap";

/// A validated zipmap borrowed from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zipmap<'a> {
    data: &'a [u8],
    count: usize,
}

impl<'a> Zipmap<'a> {
    /// Validates the zipmap at the start of `bytes` (which may extend past its end byte):
    /// every length, key, `free` byte, value and padding must be present, the value
    /// length must not be the end byte, and `zmlen` (if < 254) must equal the pair count.
    pub fn parse(bytes: &'a [u8]) -> Result<Zipmap<'a>, DecodeError> {
        let zmlen = *bytes.first().ok_or(DecodeError::Truncated {
            what: "zipmap header",
            offset: 0,
        })?;
        let mut pos = 1usize;
        let mut count = 0usize;
        while let Some((_, _, next)) = pair_at(bytes, pos)? {
            pos = next;
            count += 1;
        }
        if zmlen < BIGLEN && usize::from(zmlen) != count {
            return Err(DecodeError::CountMismatch {
                what: WHAT,
                header: u64::from(zmlen),
                actual: count as u64,
            });
        }
        let data = bytes.get(..=pos).ok_or(DecodeError::MissingTerminator {
            what: WHAT,
            offset: pos,
            found: None,
        })?;
        Ok(Zipmap { data, count })
    }

    /// Number of key/value pairs (counted while validating).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the zipmap has no pairs.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The zipmap's bytes, from `zmlen` through the end byte.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Iterates over the `(key, value)` pairs in order (padding excluded).
    pub fn iter(&self) -> ZipmapIter<'a> {
        ZipmapIter {
            data: self.data,
            pos: 1,
            remaining: self.count,
        }
    }
}

impl<'a> IntoIterator for &Zipmap<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = ZipmapIter<'a>;
    fn into_iter(self) -> ZipmapIter<'a> {
        self.iter()
    }
}

/// Iterator over the pairs of a validated [`Zipmap`].
#[derive(Debug, Clone)]
pub struct ZipmapIter<'a> {
    data: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for ZipmapIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        if self.remaining == 0 {
            return None;
        }
        match pair_at(self.data, self.pos) {
            Ok(Some((key, value, next))) => {
                self.pos = next;
                self.remaining -= 1;
                Some((key, value))
            }
            _ => {
                // Unreachable after validation; stop rather than loop or panic.
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Reads a `<len>` at `pos`; returns the length and the offset after it.
fn len_at(data: &[u8], pos: usize, what: &'static str) -> Result<(usize, usize), DecodeError> {
    let b = *data
        .get(pos)
        .ok_or(DecodeError::Truncated { what, offset: pos })?;
    match b {
        END => Err(DecodeError::BadEncoding {
            what,
            offset: pos,
            byte: b,
        }),
        BIGLEN => {
            let raw = read_le::<4>(data, pos + 1)
                .ok_or(DecodeError::Truncated { what, offset: pos })?;
            let len = u32::from_le_bytes(raw);
            let len = usize::try_from(len).map_err(|_| DecodeError::TooLarge {
                what: "zipmap string",
                size: u64::from(len),
            })?;
            Ok((len, pos + 5))
        }
        _ => Ok((usize::from(b), pos + 1)),
    }
}

/// Returns `len` bytes at `start`.
fn take<'a>(
    data: &'a [u8],
    start: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    start
        .checked_add(len)
        .and_then(|stop| data.get(start..stop))
        .ok_or(DecodeError::Truncated {
            what,
            offset: start,
        })
}

/// A decoded pair: key, value and the offset after the value's padding.
type Pair<'a> = Option<(&'a [u8], &'a [u8], usize)>;

/// Decodes the pair at `pos`: `None` if `pos` holds the end byte, else the key, the
/// value and the offset after the value's padding (always > `pos`).
fn pair_at(data: &[u8], pos: usize) -> Result<Pair<'_>, DecodeError> {
    match data.get(pos) {
        None => {
            return Err(DecodeError::MissingTerminator {
                what: WHAT,
                offset: pos,
                found: None,
            })
        }
        Some(&END) => return Ok(None),
        Some(_) => {}
    }
    let (klen, at) = len_at(data, pos, "zipmap key length")?;
    let key = take(data, at, klen, "zipmap key")?;
    let at = at + klen; // `take` checked it
    let (vlen, at) = len_at(data, at, "zipmap value length")?;
    let free = *data.get(at).ok_or(DecodeError::Truncated {
        what: "zipmap free byte",
        offset: at,
    })?;
    let value = take(data, at + 1, vlen, "zipmap value")?;
    let at = at + 1 + vlen;
    take(data, at, usize::from(free), "zipmap value padding")?;
    Ok(Some((key, value, at + usize::from(free))))
}
