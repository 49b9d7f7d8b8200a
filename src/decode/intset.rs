//! Intset decoder (same bytes in memory and in RDB type 11).
//!
//! Layout: `u32 encoding LE` (2, 4 or 8 bytes per element), `u32 length LE`, then
//! `length` strictly ascending signed little-endian integers of `encoding` bytes.

use super::{read_le, DecodeError};

/// Size of the intset header (`encoding` + `length`).
pub const HEADER_SIZE: usize = 8;

const WHAT: &str = "intset";

/// A validated intset borrowed from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intset<'a> {
    data: &'a [u8],
    width: usize,
}

impl<'a> Intset<'a> {
    /// Validates the intset at the start of `bytes` (which may extend past its end):
    /// encoding in {2, 4, 8}, `8 + length * encoding <= bytes.len()`, and values strictly
    /// ascending. An empty intset is accepted.
    pub fn parse(bytes: &'a [u8]) -> Result<Intset<'a>, DecodeError> {
        let truncated = DecodeError::Truncated {
            what: "intset header",
            offset: 0,
        };
        let encoding = u32::from_le_bytes(read_le(bytes, 0).ok_or(truncated.clone())?);
        let length = u32::from_le_bytes(read_le(bytes, 4).ok_or(truncated)?);
        let width = match encoding {
            2 => 2usize,
            4 => 4,
            8 => 8,
            _ => {
                return Err(DecodeError::BadHeader {
                    what: WHAT,
                    detail: format!("encoding {encoding} is not 2, 4 or 8"),
                })
            }
        };
        let size = usize::try_from(length)
            .ok()
            .and_then(|n| n.checked_mul(width))
            .and_then(|n| n.checked_add(HEADER_SIZE))
            .ok_or(DecodeError::TooLarge {
                what: "intset",
                size: u64::from(length).saturating_mul(width as u64),
            })?;
        let data = bytes.get(..size).ok_or(DecodeError::Truncated {
            what: "intset contents (length exceeds the readable bytes)",
            offset: HEADER_SIZE,
        })?;
        let set = Intset { data, width };
        let mut prev: Option<i64> = None;
        for (index, value) in set.iter().enumerate() {
            if let Some(prev) = prev.filter(|&p| value <= p) {
                return Err(DecodeError::Unsorted {
                    index,
                    offset: HEADER_SIZE + index * width,
                    prev,
                    value,
                });
            }
            prev = Some(value);
        }
        Ok(set)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len().saturating_sub(HEADER_SIZE) / self.width.max(1)
    }

    /// Whether the set has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per element (2, 4 or 8).
    pub fn encoding(&self) -> usize {
        self.width
    }

    /// The intset's bytes, exactly `8 + length * encoding` long.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Iterates over the elements in ascending order.
    pub fn iter(&self) -> IntsetIter<'a> {
        IntsetIter {
            data: self.data,
            width: self.width,
            pos: HEADER_SIZE,
        }
    }
}

impl<'a> IntoIterator for &Intset<'a> {
    type Item = i64;
    type IntoIter = IntsetIter<'a>;
    fn into_iter(self) -> IntsetIter<'a> {
        self.iter()
    }
}

/// Iterator over the elements of an [`Intset`].
#[derive(Debug, Clone)]
pub struct IntsetIter<'a> {
    data: &'a [u8],
    width: usize,
    pos: usize,
}

impl Iterator for IntsetIter<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        let v = match self.width {
            2 => i64::from(i16::from_le_bytes(read_le(self.data, self.pos)?)),
            4 => i64::from(i32::from_le_bytes(read_le(self.data, self.pos)?)),
            8 => i64::from_le_bytes(read_le(self.data, self.pos)?),
            _ => return None,
        };
        self.pos = self.pos.checked_add(self.width)?;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.data.len().saturating_sub(self.pos) / self.width.max(1);
        (n, Some(n))
    }
}

impl ExactSizeIterator for IntsetIter<'_> {}
