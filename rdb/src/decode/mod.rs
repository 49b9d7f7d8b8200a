//! Validating decoders of the compact byte formats Redis keeps in memory and in RDB files:
//! the only ones, shared by the [`crate::reader`] and by the core walker of `redis-rescue`,
//! so a hardening fix lands once for both.
//!
//! Everything decoded here is untrusted (the memory of a crashed process, or a file): every
//! decoder validates its whole input up front, never panics, never allocates based on an
//! unchecked length and reports the exact reason (and byte offset) of a rejection through
//! [`DecodeError`].
//!
//! * [`listpack`]: listpacks (Redis 5.0+ streams, 7.0+ hashes/zsets/lists, 7.2+ sets).
//! * [`ziplist`]: ziplists (Redis 2.2–6.2 in memory, RDB types 10/12/13/14).
//! * [`intset`]: integer sets (in memory and RDB type 11).
//! * [`zipmap`]: zipmaps (RDB type 9).
//! * [`lzf`]: LZF decompression of RDB compressed strings.
//! * [`stream`]: the entry-by-entry check of a stream's listpack node.
//!
//! Each format has one `parse` that accepts a blob at the start of a longer slice (memory
//! goes on after it); `parse_exact` adds only that the blob fills the slice, as an RDB
//! string must.

pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod stream;
pub mod ziplist;
pub mod zipmap;

#[cfg(test)]
pub(crate) mod testutil;

/// Why a byte blob was rejected by one of the decoders in this module.
///
/// Offsets are byte offsets from the start of the blob handed to the decoder
/// (for [`lzf`], from the start of the compressed input).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before `what` (starting at `offset`) could be read completely.
    #[error("truncated input: {what} at offset {offset} is cut off")]
    Truncated {
        /// The structure that could not be read.
        what: &'static str,
        /// Offset at which `what` starts.
        offset: usize,
    },
    /// A piece of the container runs past the container's declared end.
    #[error(
        "{what} at offset {offset} needs {needed} bytes but only {available} remain before the end of the container"
    )]
    Overrun {
        /// The structure that does not fit.
        what: &'static str,
        /// Offset at which `what` starts.
        offset: usize,
        /// Bytes `what` needs from `offset` on.
        needed: u64,
        /// Bytes left between `offset` and the container's end (terminator excluded).
        available: usize,
    },
    /// A header field holds an impossible value.
    #[error("bad {what} header: {detail}")]
    BadHeader {
        /// The format whose header is wrong.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// An encoding (type) byte that the format does not define.
    #[error("invalid {what} encoding byte {byte:#04x} at offset {offset}")]
    BadEncoding {
        /// The field holding the byte.
        what: &'static str,
        /// Offset of the byte.
        offset: usize,
        /// The byte itself.
        byte: u8,
    },
    /// A listpack entry's back-length is not the canonical encoding of the entry's length.
    #[error("listpack backlen at offset {offset} does not encode the entry length {entry_len}")]
    BacklenMismatch {
        /// Offset of the first backlen byte.
        offset: usize,
        /// The length of the entry (encoding + data) it should encode.
        entry_len: usize,
    },
    /// A ziplist entry's `prevlen` differs from the size of the previous entry.
    #[error(
        "ziplist prevlen at offset {offset} is {found}, but the previous entry is {expected} bytes"
    )]
    PrevlenMismatch {
        /// Offset of the entry (its prevlen field).
        offset: usize,
        /// Size of the previous entry (0 for the first entry).
        expected: usize,
        /// Value stored in the prevlen field.
        found: u32,
    },
    /// A ziplist's `zltail` does not point at its last entry.
    #[error("ziplist zltail is {header}, but the last entry starts at offset {actual}")]
    TailMismatch {
        /// Value of the header field.
        header: u32,
        /// Actual offset of the last entry (10 when empty).
        actual: usize,
    },
    /// The element count stored in a header differs from the number of elements found.
    #[error("{what} header says {header} elements, but {actual} were found")]
    CountMismatch {
        /// The container format.
        what: &'static str,
        /// Count stored in the header.
        header: u64,
        /// Count found by walking the entries.
        actual: u64,
    },
    /// The byte where the end marker (0xFF) must be is something else, or absent.
    #[error("{what} end marker (0xff) missing at offset {offset} (found {found:?})")]
    MissingTerminator {
        /// The container format.
        what: &'static str,
        /// Where the end marker must be.
        offset: usize,
        /// The byte found there, `None` if the input ended.
        found: Option<u8>,
    },
    /// An end marker appears before the container's declared end.
    #[error("{what} end marker at offset {offset}, before the declared end at offset {expected}")]
    EarlyTerminator {
        /// The container format.
        what: &'static str,
        /// Offset of the premature end marker.
        offset: usize,
        /// Offset where the end marker must be.
        expected: usize,
    },
    /// Intset elements are not strictly ascending.
    #[error("intset element {index} at offset {offset} ({value}) is not greater than its predecessor ({prev})")]
    Unsorted {
        /// Index of the offending element.
        index: usize,
        /// Byte offset of the offending element.
        offset: usize,
        /// Value of the previous element.
        prev: i64,
        /// Value of the offending element.
        value: i64,
    },
    /// An LZF back-reference points before the start of the output.
    #[error(
        "lzf back-reference at input offset {offset} reaches {distance} bytes back, but only {produced} bytes were produced"
    )]
    LzfBadBackref {
        /// Input offset of the control byte.
        offset: usize,
        /// How far back the reference reaches.
        distance: usize,
        /// Output bytes produced so far.
        produced: usize,
    },
    /// LZF decompression would produce more than the expected length.
    #[error("lzf output would exceed the expected {expected_len} bytes at input offset {offset}")]
    LzfOverflow {
        /// Input offset of the control byte whose output does not fit.
        offset: usize,
        /// The expected decompressed length.
        expected_len: usize,
    },
    /// A decompressed length differs from the expected one.
    #[error("decompressed length is {actual}, expected {expected}")]
    LengthMismatch {
        /// The expected length.
        expected: usize,
        /// The length actually produced (or the most that could be produced).
        actual: usize,
    },
    /// A blob that must fill its slice (an RDB string) ends before the slice does.
    #[error("{what} is {size} bytes, but its blob is {available}")]
    TrailingBytes {
        /// The container format.
        what: &'static str,
        /// The container's own size.
        size: usize,
        /// The size of the slice holding it.
        available: usize,
    },
    /// A stream listpack node is well formed as a listpack but not as a stream node.
    #[error("bad stream node: {0}")]
    BadStreamNode(&'static str),
    /// A value is too large for the format (while encoding) or for this machine.
    #[error("{what} too large: {size}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        size: u64,
    },
}

/// One element of a compact container: a byte string or an integer.
///
/// Containers store strings that are canonical decimal integers in integer form; use
/// [`Element::write_text`] / [`Element::to_vec`] to get the string Redis would return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element<'a> {
    /// A byte string, borrowed from the container.
    Bytes(&'a [u8]),
    /// An integer.
    Int(i64),
}

impl Element<'_> {
    /// Appends the element's string form to `out`: the bytes themselves, or an integer
    /// as canonical decimal (`-` sign, no leading zeros).
    pub fn write_text(&self, out: &mut Vec<u8>) {
        match *self {
            Element::Bytes(b) => out.extend_from_slice(b),
            Element::Int(v) => write_decimal(v, out),
        }
    }

    /// The element's string form as a new vector (see [`Element::write_text`]).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_text(&mut out);
        out
    }

    /// The element as an integer: an integer entry, or a string that is a canonical
    /// decimal integer (what Redis's `lpGetInteger` accepts through `string2ll`).
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Element::Int(v) => Some(v),
            Element::Bytes(b) => parse_canonical_int(b),
        }
    }
}

/// Checks that a container parsed from the start of `bytes`, `size` bytes long, fills
/// `bytes` exactly: an RDB string holds one blob and nothing after it.
fn exact(what: &'static str, size: usize, bytes: &[u8]) -> Result<(), DecodeError> {
    if size == bytes.len() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes {
            what,
            size,
            available: bytes.len(),
        })
    }
}

/// Appends `v` in canonical decimal form.
fn write_decimal(v: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut mag = v.unsigned_abs();
    loop {
        pos -= 1;
        // `mag % 10` < 10, so the cast cannot truncate.
        if let Some(slot) = buf.get_mut(pos) {
            *slot = b'0' + (mag % 10) as u8;
        }
        mag /= 10;
        if mag == 0 || pos == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(buf.get(pos..).unwrap_or_default());
}

/// Parses `s` as a canonical decimal integer (what Redis's `string2ll` accepts):
/// optional `-`, no `+`, no leading zeros, no `-0`, no spaces, fits in `i64`.
pub fn parse_canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut mag: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        mag = mag.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        0i64.checked_sub_unsigned(mag)
    } else {
        i64::try_from(mag).ok()
    }
}

/// Reads a little-endian unsigned integer of `N` bytes at `offset`.
fn read_le<const N: usize>(data: &[u8], offset: usize) -> Option<[u8; N]> {
    let end = offset.checked_add(N)?;
    data.get(offset..end)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text() {
        for v in [
            0i64,
            1,
            -1,
            9,
            10,
            -10,
            12345,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            assert_eq!(Element::Int(v).to_vec(), v.to_string().into_bytes());
        }
        assert_eq!(Element::Bytes(b"abc").to_vec(), b"abc");
        let mut out = b"x".to_vec();
        Element::Int(-42).write_text(&mut out);
        assert_eq!(out, b"x-42");
    }

    #[test]
    fn canonical_ints() {
        for v in [0i64, 1, -1, 127, -4096, i64::MAX, i64::MIN, 1_000_000] {
            assert_eq!(parse_canonical_int(v.to_string().as_bytes()), Some(v));
        }
        for s in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"00",
            b"99999999999999999999",
            b"-99999999999999999999",
            b"1.0",
        ] {
            assert_eq!(
                parse_canonical_int(s),
                None,
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn element_as_int() {
        assert_eq!(Element::Int(-42).to_vec(), b"-42");
        assert_eq!(Element::Bytes(b"7").as_int(), Some(7));
        assert_eq!(Element::Int(-3).as_int(), Some(-3));
        // string2ll's rules: no sign, leading zero or spaces.
        for s in [&b"+7"[..], b"07", b"-0", b" 7", b"x"] {
            assert_eq!(Element::Bytes(s).as_int(), None);
        }
    }
}
