//! Listpack decoder and encoder (Redis 5.0+ streams, 7.0+ hash/zset/list, 7.2+ set).
//!
//! Layout: `u32 total_bytes LE`, `u16 num_elements LE` (65535 = unknown), the entries,
//! then the end byte 0xFF. Each entry is `encoding+data` followed by `backlen`, the
//! length of `encoding+data` written so that it can be read backwards.

use super::{exact, parse_canonical_int, read_le, DecodeError, Element};

/// Size of the listpack header (`total_bytes` + `num_elements`).
pub const HEADER_SIZE: usize = 6;
/// The end-of-listpack byte.
pub const END: u8 = 0xFF;
/// `num_elements` value meaning "count unknown, walk the entries".
pub const COUNT_UNKNOWN: u16 = u16::MAX;

const WHAT: &str = "listpack";

/// A validated listpack borrowed from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listpack<'a> {
    data: &'a [u8],
    count: usize,
}

impl<'a> Listpack<'a> {
    /// Validates the listpack at the start of `bytes` (which may extend past its end).
    ///
    /// Checks the header (`7 <= total_bytes <= bytes.len()`), every entry's encoding,
    /// that it fits, that its backlen is the canonical encoding of its length, that the
    /// end byte sits exactly at `total_bytes - 1`, and that `num_elements` (unless
    /// 65535) equals the number of entries.
    pub fn parse(bytes: &'a [u8]) -> Result<Listpack<'a>, DecodeError> {
        let total = read_le::<4>(bytes, 0).ok_or(DecodeError::Truncated {
            what: "listpack header",
            offset: 0,
        })?;
        let num = read_le::<2>(bytes, 4).ok_or(DecodeError::Truncated {
            what: "listpack header",
            offset: 0,
        })?;
        let total = u32::from_le_bytes(total);
        let num = u16::from_le_bytes(num);
        let total = usize::try_from(total).map_err(|_| DecodeError::TooLarge {
            what: "listpack total_bytes",
            size: u64::from(total),
        })?;
        if total < HEADER_SIZE + 1 {
            return Err(DecodeError::BadHeader {
                what: WHAT,
                detail: format!("total_bytes {total} is smaller than the minimum of 7"),
            });
        }
        let data = bytes.get(..total).ok_or(DecodeError::Truncated {
            what: "listpack (total_bytes exceeds the readable bytes)",
            offset: bytes.len(),
        })?;
        let end = total - 1;
        match data.get(end) {
            Some(&END) => {}
            found => {
                return Err(DecodeError::MissingTerminator {
                    what: WHAT,
                    offset: end,
                    found: found.copied(),
                })
            }
        }
        let mut pos = HEADER_SIZE;
        let mut count: usize = 0;
        while pos < end {
            if data.get(pos) == Some(&END) {
                return Err(DecodeError::EarlyTerminator {
                    what: WHAT,
                    offset: pos,
                    expected: end,
                });
            }
            let (_, len) = entry_at(data, pos, end)?;
            let back_at = pos + len; // entry_at guarantees pos + len <= end
            pos = back_at + check_backlen(data, back_at, end, len)?;
            count += 1;
        }
        if num != COUNT_UNKNOWN && usize::from(num) != count {
            return Err(DecodeError::CountMismatch {
                what: WHAT,
                header: u64::from(num),
                actual: count as u64,
            });
        }
        Ok(Listpack { data, count })
    }

    /// [`Listpack::parse`], and the listpack must fill `bytes` exactly (an RDB string holds
    /// one listpack and nothing after it).
    pub fn parse_exact(bytes: &'a [u8]) -> Result<Listpack<'a>, DecodeError> {
        let parsed = Self::parse(bytes)?;
        exact(WHAT, parsed.total_bytes(), bytes)?;
        Ok(parsed)
    }

    /// Number of entries (counted while validating, not taken from the header).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the listpack has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The listpack's size in bytes (`total_bytes`).
    pub fn total_bytes(&self) -> usize {
        self.data.len()
    }

    /// The listpack's bytes, exactly `total_bytes` long.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Iterates over the entries in order.
    pub fn iter(&self) -> ListpackIter<'a> {
        ListpackIter {
            data: self.data,
            pos: HEADER_SIZE,
            remaining: self.count,
        }
    }
}

impl<'a> IntoIterator for &Listpack<'a> {
    type Item = Element<'a>;
    type IntoIter = ListpackIter<'a>;
    fn into_iter(self) -> ListpackIter<'a> {
        self.iter()
    }
}

/// Iterator over the entries of a validated [`Listpack`].
#[derive(Debug, Clone)]
pub struct ListpackIter<'a> {
    data: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for ListpackIter<'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let end = self.data.len().checked_sub(1)?;
        match entry_at(self.data, self.pos, end) {
            Ok((elem, len)) => {
                self.pos = self.pos.checked_add(len)?.checked_add(backlen_size(len))?;
                self.remaining -= 1;
                Some(elem)
            }
            Err(_) => {
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

/// Returns `len` bytes at `start`, which must end at or before `end`. `entry` is the
/// offset of the entry being decoded (for the error).
fn field<'a>(
    data: &'a [u8],
    start: usize,
    len: usize,
    end: usize,
    what: &'static str,
    entry: usize,
) -> Result<&'a [u8], DecodeError> {
    start
        .checked_add(len)
        .filter(|&stop| stop <= end)
        .and_then(|stop| data.get(start..stop))
        .ok_or(DecodeError::Overrun {
            what,
            offset: entry,
            needed: (start.saturating_sub(entry) as u64).saturating_add(len as u64),
            available: end.saturating_sub(entry),
        })
}

/// Returns the `N` bytes following the encoding byte at `entry`, ending at or before `end`.
fn int_field<const N: usize>(
    data: &[u8],
    entry: usize,
    end: usize,
    what: &'static str,
) -> Result<[u8; N], DecodeError> {
    let bytes = field(data, entry.saturating_add(1), N, end, what, entry)?;
    bytes.try_into().map_err(|_| DecodeError::Overrun {
        what,
        offset: entry,
        needed: N as u64 + 1,
        available: end.saturating_sub(entry),
    })
}

/// Decodes the entry at `pos` (which must be before `end`, the offset of the end byte).
/// Returns the element and the entry's length without its backlen; the entry is
/// guaranteed to end at or before `end`. The backlen is not checked.
fn entry_at(data: &[u8], pos: usize, end: usize) -> Result<(Element<'_>, usize), DecodeError> {
    let b = *data
        .get(pos)
        .filter(|_| pos < end)
        .ok_or(DecodeError::Truncated {
            what: "listpack entry",
            offset: pos,
        })?;
    let body = |hdr: usize, len: usize, what| field(data, pos + hdr, len, end, what, pos);
    match b {
        0x00..=0x7F => Ok((Element::Int(i64::from(b)), 1)),
        0x80..=0xBF => {
            let len = usize::from(b & 0x3F);
            let s = body(1, len, "listpack 6-bit string")?;
            Ok((Element::Bytes(s), 1 + len))
        }
        0xC0..=0xDF => {
            let [lo] = int_field::<1>(data, pos, end, "listpack 13-bit integer")?;
            let raw = (i64::from(b & 0x1F) << 8) | i64::from(lo);
            let v = if raw >= 1 << 12 { raw - (1 << 13) } else { raw };
            Ok((Element::Int(v), 2))
        }
        0xE0..=0xEF => {
            let [lo] = int_field::<1>(data, pos, end, "listpack 12-bit string length")?;
            let len = (usize::from(b & 0x0F) << 8) | usize::from(lo);
            let s = body(2, len, "listpack 12-bit string")?;
            Ok((Element::Bytes(s), 2 + len))
        }
        0xF0 => {
            let l = int_field::<4>(data, pos, end, "listpack 32-bit string length")?;
            let len = u32::from_le_bytes(l);
            let len = usize::try_from(len).map_err(|_| DecodeError::TooLarge {
                what: "listpack string",
                size: u64::from(len),
            })?;
            let s = body(5, len, "listpack 32-bit string")?;
            Ok((Element::Bytes(s), 5 + len))
        }
        0xF1 => {
            let v = i16::from_le_bytes(int_field(data, pos, end, "listpack int16")?);
            Ok((Element::Int(i64::from(v)), 3))
        }
        0xF2 => {
            let [a, b, c] = int_field(data, pos, end, "listpack int24")?;
            // Put the value in the top 3 bytes; the arithmetic shift sign-extends it.
            let v = i32::from_le_bytes([0, a, b, c]) >> 8;
            Ok((Element::Int(i64::from(v)), 4))
        }
        0xF3 => {
            let v = i32::from_le_bytes(int_field(data, pos, end, "listpack int32")?);
            Ok((Element::Int(i64::from(v)), 5))
        }
        0xF4 => {
            let v = i64::from_le_bytes(int_field(data, pos, end, "listpack int64")?);
            Ok((Element::Int(v), 9))
        }
        _ => Err(DecodeError::BadEncoding {
            what: "listpack entry",
            offset: pos,
            byte: b,
        }),
    }
}

/// Number of backlen bytes Redis writes for an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    if len <= 127 {
        1
    } else if len < 16383 {
        2
    } else if len < 2_097_151 {
        3
    } else if len < 268_435_455 {
        4
    } else {
        5
    }
}

/// Writes the canonical backlen of `len` into `buf` and returns the used part.
///
/// The first byte holds the most significant 7-bit group with bit 7 clear; every later
/// byte has bit 7 set; the last byte holds the lowest 7 bits.
/// Checks that the backlen at `back_at` (before the end byte at `end`) is the canonical
/// encoding of the entry length `len`; returns its size.
fn check_backlen(
    data: &[u8],
    back_at: usize,
    end: usize,
    len: usize,
) -> Result<usize, DecodeError> {
    let mismatch = DecodeError::BacklenMismatch {
        offset: back_at,
        entry_len: len,
    };
    // Most entries are short: their backlen is the one byte `len`, compared in place (a
    // slice built and compared was the hottest part of validating a listpack).
    if len < 128 && back_at < end {
        return if data.get(back_at) == Some(&(len as u8)) {
            Ok(1)
        } else {
            Err(mismatch)
        };
    }
    let mut buf = [0u8; 5];
    let want = encode_backlen(len, &mut buf);
    let avail = end - back_at;
    let present = data.get(back_at..back_at + want.len().min(avail));
    if present != want.get(..want.len().min(avail)) {
        return Err(mismatch);
    }
    if want.len() > avail {
        return Err(DecodeError::Overrun {
            what: "listpack backlen",
            offset: back_at,
            needed: want.len() as u64,
            available: avail,
        });
    }
    Ok(want.len())
}

fn encode_backlen(len: usize, buf: &mut [u8; 5]) -> &[u8] {
    let size = backlen_size(len);
    for (i, slot) in buf.iter_mut().take(size).enumerate() {
        let shift = 7 * (size - 1 - i);
        let group = (len >> shift) as u8 & 0x7F;
        *slot = if i == 0 { group } else { group | 0x80 };
    }
    buf.get(..size).unwrap_or_default()
}

/// Encodes [`Element`]s into a new listpack, choosing the smallest encoding for each
/// (strings that are canonical decimal integers are stored as integers, as Redis does).
#[derive(Debug, Clone)]
pub struct ListpackBuilder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ListpackBuilder {
    /// Starts an empty listpack.
    pub fn new() -> Self {
        ListpackBuilder {
            buf: vec![0; HEADER_SIZE],
            count: 0,
        }
    }

    /// Number of entries pushed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no entry has been pushed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends an element. Fails (leaving the builder unchanged) if the listpack would
    /// exceed the format's 4 GiB limit.
    pub fn push(&mut self, elem: Element<'_>) -> Result<(), DecodeError> {
        let start = self.buf.len();
        match elem {
            Element::Int(v) => self.push_int(v),
            Element::Bytes(s) => match parse_canonical_int(s) {
                Some(v) => self.push_int(v),
                None => self.push_str(s)?,
            },
        }
        let mut back = [0u8; 5];
        let back = encode_backlen(self.buf.len() - start, &mut back);
        self.buf.extend_from_slice(back);
        self.count += 1;
        Ok(())
    }

    fn push_str(&mut self, s: &[u8]) -> Result<(), DecodeError> {
        let len = s.len();
        // Final size if this is the last entry: header (<= 5) + data + backlen (<= 5) + end.
        let total = (self.buf.len() as u64)
            .saturating_add(len as u64)
            .saturating_add(11);
        let len32 = u32::try_from(len)
            .ok()
            .filter(|_| total <= u64::from(u32::MAX));
        let Some(len32) = len32 else {
            return Err(DecodeError::TooLarge {
                what: "listpack",
                size: total,
            });
        };
        if len < 64 {
            self.buf.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buf.push(0xE0 | (len >> 8) as u8);
            self.buf.push(len as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&len32.to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        Ok(())
    }

    fn push_int(&mut self, v: i64) {
        if let Ok(v @ 0..=127) = u8::try_from(v) {
            self.buf.push(v);
        } else if (-4096..=4095).contains(&v) {
            let raw = (v as u16) & 0x1FFF;
            self.buf.push(0xC0 | (raw >> 8) as u8);
            self.buf.push(raw as u8);
        } else if let Ok(v) = i16::try_from(v) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            let [a, b, c, _] = (v as i32).to_le_bytes();
            self.buf.extend_from_slice(&[0xF2, a, b, c]);
        } else if let Ok(v) = i32::try_from(v) {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Appends every element of `elems` (see [`ListpackBuilder::push`]).
    pub fn extend<'e>(
        &mut self,
        elems: impl IntoIterator<Item = Element<'e>>,
    ) -> Result<(), DecodeError> {
        elems.into_iter().try_for_each(|e| self.push(e))
    }

    /// Writes the header and end byte and returns the listpack's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(END);
        let total = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        let num = u16::try_from(self.count)
            .ok()
            .filter(|&n| n != COUNT_UNKNOWN)
            .unwrap_or(COUNT_UNKNOWN);
        let [t0, t1, t2, t3] = total.to_le_bytes();
        let [n0, n1] = num.to_le_bytes();
        for (slot, b) in self.buf.iter_mut().zip([t0, t1, t2, t3, n0, n1]) {
            *slot = b;
        }
        self.buf
    }
}

#[cfg(test)]
mod tests;
