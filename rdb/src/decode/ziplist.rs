//! Ziplist decoder (Redis 2.2–6.2 in memory; RDB types 10/12/13/14 in all versions).
//!
//! Layout: `u32 zlbytes LE`, `u32 zltail LE` (offset of the last entry), `u16 zllen LE`
//! (65535 = unknown), the entries, then the end byte 0xFF. Each entry is
//! `prevlen` (size of the previous entry: 1 byte if < 254, else 0xFE + u32 LE),
//! an encoding, and the payload.

use super::{exact, read_le, DecodeError, Element};

/// Size of the ziplist header (`zlbytes` + `zltail` + `zllen`).
pub const HEADER_SIZE: usize = 10;
/// The end-of-ziplist byte.
pub const END: u8 = 0xFF;
/// `zllen` value meaning "count unknown, walk the entries".
pub const COUNT_UNKNOWN: u16 = u16::MAX;
/// First prevlen byte announcing a 4-byte prevlen.
const PREVLEN_BIG: u8 = 0xFE;

const WHAT: &str = "ziplist";

/// A validated ziplist borrowed from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ziplist<'a> {
    data: &'a [u8],
    count: usize,
}

impl<'a> Ziplist<'a> {
    /// Validates the ziplist at the start of `bytes` (which may extend past its end).
    ///
    /// Checks the header (`11 <= zlbytes <= bytes.len()`), every entry (prevlen equal to
    /// the previous entry's size, 0 for the first; a defined encoding; payload within
    /// the ziplist), the end byte exactly at `zlbytes - 1`, `zltail` equal to the offset
    /// of the last entry (10 when empty), and `zllen` (unless 65535) equal to the count.
    pub fn parse(bytes: &'a [u8]) -> Result<Ziplist<'a>, DecodeError> {
        let truncated = DecodeError::Truncated {
            what: "ziplist header",
            offset: 0,
        };
        let zlbytes = u32::from_le_bytes(read_le(bytes, 0).ok_or(truncated.clone())?);
        let zltail = u32::from_le_bytes(read_le(bytes, 4).ok_or(truncated.clone())?);
        let zllen = u16::from_le_bytes(read_le(bytes, 8).ok_or(truncated)?);
        let total = usize::try_from(zlbytes).map_err(|_| DecodeError::TooLarge {
            what: "ziplist zlbytes",
            size: u64::from(zlbytes),
        })?;
        if total < HEADER_SIZE + 1 {
            return Err(DecodeError::BadHeader {
                what: WHAT,
                detail: format!("zlbytes {total} is smaller than the minimum of 11"),
            });
        }
        let data = bytes.get(..total).ok_or(DecodeError::Truncated {
            what: "ziplist (zlbytes exceeds the readable bytes)",
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
        let mut prev_size = 0usize;
        let mut last = HEADER_SIZE;
        let mut count = 0usize;
        while pos < end {
            let entry = entry_at(data, pos, end)?;
            if usize::try_from(entry.prevlen).ok() != Some(prev_size) {
                return Err(DecodeError::PrevlenMismatch {
                    offset: pos,
                    expected: prev_size,
                    found: entry.prevlen,
                });
            }
            last = pos;
            prev_size = entry.size;
            pos += entry.size; // entry_at guarantees pos + size <= end
            count += 1;
        }
        if usize::try_from(zltail).ok() != Some(last) {
            return Err(DecodeError::TailMismatch {
                header: zltail,
                actual: last,
            });
        }
        if zllen != COUNT_UNKNOWN && usize::from(zllen) != count {
            return Err(DecodeError::CountMismatch {
                what: WHAT,
                header: u64::from(zllen),
                actual: count as u64,
            });
        }
        Ok(Ziplist { data, count })
    }

    /// [`Ziplist::parse`], and the ziplist must fill `bytes` exactly (an RDB string holds
    /// one ziplist and nothing after it).
    pub fn parse_exact(bytes: &'a [u8]) -> Result<Ziplist<'a>, DecodeError> {
        let parsed = Self::parse(bytes)?;
        exact(WHAT, parsed.total_bytes(), bytes)?;
        Ok(parsed)
    }

    /// Number of entries (counted while validating, not taken from the header).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the ziplist has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ziplist's size in bytes (`zlbytes`).
    pub fn total_bytes(&self) -> usize {
        self.data.len()
    }

    /// The ziplist's bytes, exactly `zlbytes` long.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Iterates over the entries in order.
    pub fn iter(&self) -> ZiplistIter<'a> {
        ZiplistIter {
            data: self.data,
            pos: HEADER_SIZE,
            remaining: self.count,
        }
    }
}

impl<'a> IntoIterator for &Ziplist<'a> {
    type Item = Element<'a>;
    type IntoIter = ZiplistIter<'a>;
    fn into_iter(self) -> ZiplistIter<'a> {
        self.iter()
    }
}

/// Iterator over the entries of a validated [`Ziplist`].
#[derive(Debug, Clone)]
pub struct ZiplistIter<'a> {
    data: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for ZiplistIter<'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let end = self.data.len().checked_sub(1)?;
        match entry_at(self.data, self.pos, end) {
            Ok(entry) => {
                self.pos = self.pos.checked_add(entry.size)?;
                self.remaining -= 1;
                Some(entry.elem)
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

/// A decoded ziplist entry.
struct Entry<'a> {
    /// Value of the prevlen field.
    prevlen: u32,
    /// The element.
    elem: Element<'a>,
    /// Whole entry size: prevlen field + encoding + payload.
    size: usize,
}

/// Returns `len` bytes at `start`, which must end at or before `end` (the offset of the
/// end byte). `entry` is the offset of the entry being decoded (for the error).
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

/// Returns `N` bytes at `start`, ending at or before `end`.
fn array<const N: usize>(
    data: &[u8],
    start: usize,
    end: usize,
    what: &'static str,
    entry: usize,
) -> Result<[u8; N], DecodeError> {
    let bytes = field(data, start, N, end, what, entry)?;
    bytes.try_into().map_err(|_| DecodeError::Overrun {
        what,
        offset: entry,
        needed: N as u64,
        available: end.saturating_sub(entry),
    })
}

/// Decodes the entry at `pos` (before `end`, the offset of the end byte). The entry is
/// guaranteed to end at or before `end`; its prevlen value is returned, not checked.
fn entry_at(data: &[u8], pos: usize, end: usize) -> Result<Entry<'_>, DecodeError> {
    let first = *data
        .get(pos)
        .filter(|_| pos < end)
        .ok_or(DecodeError::Truncated {
            what: "ziplist entry",
            offset: pos,
        })?;
    let (prevlen, plen_size) = match first {
        END => {
            return Err(DecodeError::EarlyTerminator {
                what: WHAT,
                offset: pos,
                expected: end,
            })
        }
        PREVLEN_BIG => {
            let raw = array::<4>(data, pos + 1, end, "ziplist 5-byte prevlen", pos)?;
            (u32::from_le_bytes(raw), 5)
        }
        b => (u32::from(b), 1),
    };
    let enc_at = pos + plen_size;
    let [enc] = array::<1>(data, enc_at, end, "ziplist entry encoding", pos)?;
    let string = |hdr: usize, len: usize, what| {
        field(data, enc_at + hdr, len, end, what, pos).map(|s| (Element::Bytes(s), hdr + len))
    };
    let int_at = enc_at + 1;
    let int = |v: i64, n: usize| (Element::Int(v), 1 + n);
    let (elem, enc_size) = match enc {
        0x00..=0x3F => string(1, usize::from(enc), "ziplist 6-bit string")?,
        0x40..=0x7F => {
            let [lo] = array(data, int_at, end, "ziplist 14-bit string length", pos)?;
            let len = (usize::from(enc & 0x3F) << 8) | usize::from(lo);
            string(2, len, "ziplist 14-bit string")?
        }
        0x80 => {
            let raw = array(data, int_at, end, "ziplist 32-bit string length", pos)?;
            let len = u32::from_be_bytes(raw);
            let len = usize::try_from(len).map_err(|_| DecodeError::TooLarge {
                what: "ziplist string",
                size: u64::from(len),
            })?;
            string(5, len, "ziplist 32-bit string")?
        }
        0xC0 => {
            let v = i16::from_le_bytes(array(data, int_at, end, "ziplist int16", pos)?);
            int(i64::from(v), 2)
        }
        0xD0 => {
            let v = i32::from_le_bytes(array(data, int_at, end, "ziplist int32", pos)?);
            int(i64::from(v), 4)
        }
        0xE0 => {
            let v = i64::from_le_bytes(array(data, int_at, end, "ziplist int64", pos)?);
            int(v, 8)
        }
        0xF0 => {
            let [a, b, c] = array(data, int_at, end, "ziplist int24", pos)?;
            // Put the value in the top 3 bytes; the arithmetic shift sign-extends it.
            int(i64::from(i32::from_le_bytes([0, a, b, c]) >> 8), 3)
        }
        0xFE => {
            let v = i8::from_le_bytes(array(data, int_at, end, "ziplist int8", pos)?);
            int(i64::from(v), 1)
        }
        0xF1..=0xFD => int(i64::from(enc & 0x0F) - 1, 0),
        _ => {
            return Err(DecodeError::BadEncoding {
                what: "ziplist entry",
                offset: enc_at,
                byte: enc,
            })
        }
    };
    Ok(Entry {
        prevlen,
        elem,
        size: plen_size + enc_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::parse_canonical_int;
    use crate::decode::testutil::{for_each_mutation, Rng};
    use Element::{Bytes, Int};

    /// Encoding + payload of an element, smallest encoding (as Redis >= 2.6 writes).
    fn encode(e: Element) -> Vec<u8> {
        let int = match e {
            Int(v) => Some(v),
            Bytes(s) => parse_canonical_int(s),
        };
        match (int, e) {
            (Some(v), _) => {
                if (0..=12).contains(&v) {
                    vec![0xF1 + v as u8]
                } else if let Ok(v) = i8::try_from(v) {
                    vec![0xFE, v as u8]
                } else if let Ok(v) = i16::try_from(v) {
                    [&[0xC0][..], &v.to_le_bytes()].concat()
                } else if (-(1 << 23)..(1 << 23)).contains(&v) {
                    [&[0xF0][..], &(v as i32).to_le_bytes()[..3]].concat()
                } else if let Ok(v) = i32::try_from(v) {
                    [&[0xD0][..], &v.to_le_bytes()].concat()
                } else {
                    [&[0xE0][..], &v.to_le_bytes()].concat()
                }
            }
            (None, Bytes(s)) => {
                let len = s.len();
                let mut out = if len < 64 {
                    vec![len as u8]
                } else if len < 16384 {
                    vec![0x40 | (len >> 8) as u8, len as u8]
                } else {
                    [&[0x80][..], &(len as u32).to_be_bytes()].concat()
                };
                out.extend_from_slice(s);
                out
            }
            (None, Int(_)) => unreachable!(),
        }
    }

    /// Builds a ziplist from raw encodings (encoding + payload), computing prevlens,
    /// zltail and zllen. `big_prevlen` forces 5-byte prevlens everywhere.
    fn build_raw(encs: &[Vec<u8>], big_prevlen: bool) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut tail = HEADER_SIZE;
        for e in encs {
            tail = HEADER_SIZE + body.len();
            let start = body.len();
            if prev < 254 && !big_prevlen {
                body.push(prev as u8);
            } else {
                body.push(0xFE);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            body.extend_from_slice(e);
            prev = body.len() - start;
        }
        let total = (HEADER_SIZE + body.len() + 1) as u32;
        let mut out = total.to_le_bytes().to_vec();
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(encs.len().min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(END);
        out
    }

    fn build(elems: &[Element]) -> Vec<u8> {
        build_raw(&elems.iter().map(|&e| encode(e)).collect::<Vec<_>>(), false)
    }

    fn texts(zl: &Ziplist) -> Vec<Vec<u8>> {
        zl.iter().map(|e| e.to_vec()).collect()
    }

    /// (encoding + payload, element) for every encoding and its boundaries.
    fn encoding_cases() -> Vec<(Vec<u8>, Element<'static>)> {
        let mut v: Vec<(Vec<u8>, Element<'static>)> =
            (0..=12).map(|i| (vec![0xF1 + i as u8], Int(i))).collect();
        v.extend([
            (vec![0xFE, 13], Int(13)),
            (vec![0xFE, 0x7F], Int(127)),
            (vec![0xFE, 0xFF], Int(-1)),
            (vec![0xFE, 0x80], Int(-128)),
            (vec![0xC0, 0x80, 0x00], Int(128)),
            (vec![0xC0, 0x7F, 0xFF], Int(-129)),
            (vec![0xC0, 0xFF, 0x7F], Int(32767)),
            (vec![0xC0, 0x00, 0x80], Int(-32768)),
            (vec![0xF0, 0x00, 0x80, 0x00], Int(32768)),
            (vec![0xF0, 0xFF, 0x7F, 0xFF], Int(-32769)),
            (vec![0xF0, 0xFF, 0xFF, 0x7F], Int(8_388_607)),
            (vec![0xF0, 0x00, 0x00, 0x80], Int(-8_388_608)),
            (vec![0xD0, 0x00, 0x00, 0x80, 0x00], Int(8_388_608)),
            (vec![0xD0, 0xFF, 0xFF, 0x7F, 0xFF], Int(-8_388_609)),
            (vec![0xD0, 0xFF, 0xFF, 0xFF, 0x7F], Int(i32::MAX.into())),
            (vec![0xD0, 0x00, 0x00, 0x00, 0x80], Int(i32::MIN.into())),
            (
                [&[0xE0][..], &(1i64 << 31).to_le_bytes()].concat(),
                Int(1 << 31),
            ),
            (
                [&[0xE0][..], &(-(1i64 << 31) - 1).to_le_bytes()].concat(),
                Int(-(1 << 31) - 1),
            ),
            (
                [&[0xE0][..], &i64::MAX.to_le_bytes()].concat(),
                Int(i64::MAX),
            ),
            (
                [&[0xE0][..], &i64::MIN.to_le_bytes()].concat(),
                Int(i64::MIN),
            ),
            (vec![0x00], Bytes(b"")),
            (vec![0x03, b'a', b'b', b'c'], Bytes(b"abc")),
            (vec![0x02, 0xFF, 0xFE], Bytes(b"\xff\xfe")),
        ]);
        v
    }

    #[test]
    fn empty() {
        let blob = [11, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0xFF];
        let zl = Ziplist::parse(&blob).unwrap();
        assert!(zl.is_empty());
        assert_eq!(zl.len(), 0);
        assert_eq!(zl.iter().count(), 0);
        assert_eq!(zl.as_bytes(), &blob);
        assert_eq!(build(&[]), blob);
        // zltail must be 10 when empty
        let bad = [11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF];
        assert_eq!(
            Ziplist::parse(&bad),
            Err(DecodeError::TailMismatch {
                header: 0,
                actual: 10
            })
        );
    }

    #[test]
    fn every_encoding() {
        let cases = encoding_cases();
        for (enc, elem) in &cases {
            let blob = build_raw(std::slice::from_ref(enc), false);
            let zl = Ziplist::parse(&blob).unwrap_or_else(|e| panic!("{elem:?}: {e}"));
            assert_eq!(zl.iter().collect::<Vec<_>>(), vec![*elem]);
            assert_eq!(build(&[*elem]), blob, "test encoder for {elem:?}");
        }
        let encs: Vec<Vec<u8>> = cases.iter().map(|c| c.0.clone()).collect();
        let blob = build_raw(&encs, false);
        let zl = Ziplist::parse(&blob).unwrap();
        assert_eq!(zl.len(), cases.len());
        let want: Vec<Element> = cases.iter().map(|c| c.1).collect();
        assert_eq!(zl.iter().collect::<Vec<_>>(), want);
        // exact bytes of a small ziplist: [prevlen 0][0xF2] [prevlen 2][0x01 'x']
        let blob = build(&[Int(1), Bytes(b"x")]);
        assert_eq!(
            blob,
            [16, 0, 0, 0, 12, 0, 0, 0, 2, 0, 0, 0xF2, 2, 0x01, b'x', 0xFF]
        );
    }

    #[test]
    fn legacy_integer_encodings() {
        // Redis 2.2/2.4 stored small ints as int16: still valid
        let blob = build_raw(&[vec![0xC0, 5, 0], vec![0xD0, 7, 0, 0, 0]], false);
        let zl = Ziplist::parse(&blob).unwrap();
        assert_eq!(zl.iter().collect::<Vec<_>>(), vec![Int(5), Int(7)]);
    }

    #[test]
    fn string_length_classes() {
        // 6-bit, 14-bit (big-endian) and 32-bit (big-endian) lengths
        for len in [0usize, 1, 63, 64, 5000, 16383, 16384, 20000] {
            let s: Vec<u8> = (0..len).map(|i| b'A' + (i % 26) as u8).collect();
            let blob = build(&[Bytes(&s), Int(7)]);
            let zl = Ziplist::parse(&blob).unwrap();
            assert_eq!(zl.iter().collect::<Vec<_>>(), vec![Bytes(&s), Int(7)]);
        }
        let s = vec![b'a'; 64];
        assert_eq!(&build(&[Bytes(&s)])[10..13], &[0, 0x40, 0x40]);
        let s = vec![b'a'; 5000];
        assert_eq!(&build(&[Bytes(&s)])[10..13], &[0, 0x53, 0x88]);
        let s = vec![b'a'; 20000];
        assert_eq!(&build(&[Bytes(&s)])[10..16], &[0, 0x80, 0, 0, 0x4E, 0x20]);
    }

    #[test]
    fn big_prevlen() {
        // an entry after a 300-byte entry has a 5-byte prevlen
        let s = vec![b'z'; 300];
        let blob = build(&[Bytes(&s), Int(3), Int(4)]);
        let second = HEADER_SIZE + 303;
        assert_eq!(&blob[second..second + 5], &[0xFE, 0x2F, 0x01, 0, 0]);
        let zl = Ziplist::parse(&blob).unwrap();
        assert_eq!(texts(&zl), vec![s.clone(), b"3".to_vec(), b"4".to_vec()]);
        // non-minimal 5-byte prevlens (left by cascade updates) are valid
        let encs: Vec<Vec<u8>> = [Int(1), Bytes(b"ab"), Int(300)]
            .iter()
            .map(|&e| encode(e))
            .collect();
        let blob = build_raw(&encs, true);
        let zl = Ziplist::parse(&blob).unwrap();
        assert_eq!(
            zl.iter().collect::<Vec<_>>(),
            vec![Int(1), Bytes(b"ab"), Int(300)]
        );
    }

    #[test]
    fn random_round_trip() {
        let mut rng = Rng::new(2);
        for _ in 0..200 {
            let n = rng.below(30);
            let mut want: Vec<Vec<u8>> = Vec::new();
            for _ in 0..n {
                want.push(match rng.below(5) {
                    0 => (rng.next_u64() as i64).to_string().into_bytes(),
                    1 => ((rng.next_u64() as i64) >> rng.below(64))
                        .to_string()
                        .into_bytes(),
                    2 => (rng.below(40) as i64 - 20).to_string().into_bytes(),
                    3 => rng.blob(70),
                    _ => rng.blob(600),
                });
            }
            let blob = build(&want.iter().map(|t| Bytes(t)).collect::<Vec<_>>());
            let zl = Ziplist::parse(&blob).unwrap();
            assert_eq!(zl.len(), n);
            assert_eq!(texts(&zl), want);
        }
    }

    #[test]
    fn unknown_and_large_counts() {
        let elems = vec![Int(1); 70_000];
        let blob = build(&elems);
        assert_eq!(&blob[8..10], &[0xFF, 0xFF]);
        let zl = Ziplist::parse(&blob).unwrap();
        assert_eq!(zl.len(), 70_000);
        assert_eq!(zl.iter().count(), 70_000);
        // 65535 with fewer entries means "unknown": fine
        let mut blob = build(&[Int(1), Int(2)]);
        blob[8..10].copy_from_slice(&[0xFF, 0xFF]);
        assert_eq!(Ziplist::parse(&blob).unwrap().len(), 2);
    }

    fn sample() -> Vec<u8> {
        let s = vec![b'k'; 260];
        let mut encs: Vec<Vec<u8>> = encoding_cases().into_iter().map(|c| c.0).collect();
        encs.insert(3, encode(Bytes(&s)));
        encs.push(encode(Bytes(&[b'm'; 70])));
        build_raw(&encs, false)
    }

    #[test]
    fn longer_input_is_fine() {
        let mut blob = sample();
        let n = blob.len();
        blob.extend_from_slice(&[0; 50]);
        assert_eq!(Ziplist::parse(&blob).unwrap().as_bytes().len(), n);
    }

    #[test]
    fn truncated_at_every_position() {
        for blob in [sample(), build(&[Bytes(&[b'x'; 20000]), Int(1)])] {
            assert!(Ziplist::parse(&blob).is_ok());
            for k in 0..blob.len() {
                assert!(Ziplist::parse(&blob[..k]).is_err(), "prefix {k}");
            }
        }
    }

    #[test]
    fn zlbytes_bad() {
        for total in 0..11u32 {
            let mut blob = total.to_le_bytes().to_vec();
            blob.extend_from_slice(&[10, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
            assert!(matches!(
                Ziplist::parse(&blob),
                Err(DecodeError::BadHeader { .. })
            ));
        }
        let mut blob = sample();
        blob[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Ziplist::parse(&blob),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn wrong_terminator() {
        let mut blob = sample();
        let last = blob.len() - 1;
        blob[last] = 0;
        assert_eq!(
            Ziplist::parse(&blob),
            Err(DecodeError::MissingTerminator {
                what: "ziplist",
                offset: last,
                found: Some(0)
            })
        );
        // end byte before zlbytes - 1
        let blob = [12, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0xFF, 0xFF];
        assert_eq!(
            Ziplist::parse(&blob),
            Err(DecodeError::EarlyTerminator {
                what: "ziplist",
                offset: 10,
                expected: 11
            })
        );
    }

    #[test]
    fn wrong_prevlen() {
        let mut blob = build(&[Int(1), Int(2), Int(3)]);
        // entries: 10: [0][F2], 12: [2][F3], 14: [2][F4]
        blob[12] = 3;
        assert_eq!(
            Ziplist::parse(&blob),
            Err(DecodeError::PrevlenMismatch {
                offset: 12,
                expected: 2,
                found: 3
            })
        );
        // the first entry's prevlen must be 0
        let mut blob = build(&[Int(1)]);
        blob[10] = 1;
        assert_eq!(
            Ziplist::parse(&blob),
            Err(DecodeError::PrevlenMismatch {
                offset: 10,
                expected: 0,
                found: 1
            })
        );
        // a 5-byte prevlen with the wrong value
        let s = vec![b'z'; 300];
        let mut blob = build(&[Bytes(&s), Int(3)]);
        let second = HEADER_SIZE + 303;
        blob[second + 1] ^= 1;
        assert_eq!(
            Ziplist::parse(&blob),
            Err(DecodeError::PrevlenMismatch {
                offset: second,
                expected: 303,
                found: 302
            })
        );
    }

    #[test]
    fn wrong_zltail_and_zllen() {
        let mut blob = build(&[Int(1), Int(2), Int(3)]);
        blob[4] = 12;
        assert_eq!(
            Ziplist::parse(&blob),
            Err(DecodeError::TailMismatch {
                header: 12,
                actual: 14
            })
        );
        let mut blob = build(&[Int(1), Int(2), Int(3)]);
        blob[8] = 2;
        assert_eq!(
            Ziplist::parse(&blob),
            Err(DecodeError::CountMismatch {
                what: "ziplist",
                header: 2,
                actual: 3
            })
        );
    }

    #[test]
    fn invalid_encodings() {
        let mut bad: Vec<u8> = (0x81..=0xBF).collect();
        bad.extend((0xC1..=0xCF).chain(0xD1..=0xDF).chain(0xE1..=0xEF));
        bad.push(0xFF);
        for b in bad {
            let blob = build_raw(&[vec![0xF2], vec![b, 0, 0, 0, 0, 0, 0, 0, 0]], false);
            assert_eq!(
                Ziplist::parse(&blob),
                Err(DecodeError::BadEncoding {
                    what: "ziplist entry",
                    offset: 13,
                    byte: b
                }),
                "{b:#x}"
            );
        }
    }

    #[test]
    fn huge_lengths() {
        for len in [u32::MAX, u32::MAX - 5, 1 << 31, 20] {
            let enc = [&[0x80][..], &len.to_be_bytes(), b"abc"].concat();
            let blob = build_raw(&[enc], false);
            assert!(matches!(
                Ziplist::parse(&blob),
                Err(DecodeError::Overrun {
                    what: "ziplist 32-bit string",
                    offset: 10,
                    ..
                })
            ));
        }
        // 14-bit length past the end
        let blob = build_raw(&[vec![0x7F, 0xFF, b'a']], false);
        assert!(matches!(
            Ziplist::parse(&blob),
            Err(DecodeError::Overrun { .. })
        ));
        // huge 5-byte prevlen
        let mut blob = build_raw(&[vec![0xF2]], true);
        blob[11..15].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Ziplist::parse(&blob),
            Err(DecodeError::PrevlenMismatch {
                found: u32::MAX,
                ..
            })
        ));
    }

    #[test]
    fn mutations_never_panic() {
        let blobs = [
            sample(),
            build(&[
                Bytes(b"hello"),
                Int(-5),
                Int(70000),
                Bytes(&[b'z'; 300]),
                Int(2),
            ]),
            build(&[]),
        ];
        let mut ok = 0;
        for blob in &blobs {
            for_each_mutation(blob, |_, m| {
                if let Ok(zl) = Ziplist::parse(m) {
                    ok += 1;
                    assert!(zl.as_bytes().len() <= m.len());
                    let items: Vec<Element> = zl.iter().collect();
                    assert_eq!(items.len(), zl.len());
                    // re-encoding what was decoded gives a valid ziplist
                    let again = build(&items);
                    let zl2 = Ziplist::parse(&again).unwrap();
                    assert_eq!(texts(&zl2), texts(&zl));
                }
            });
        }
        assert!(ok > 0);
    }

    // From the reader's former copy: what an RDB string must hold exactly.

    #[test]
    fn exact_round_trip_and_every_truncation_fails() {
        use crate::decode::testutil::{make_ziplist, sample_items};
        let big = vec![b'y'; 20_000];
        let items = sample_items(&big);
        let zl = make_ziplist(&items);
        fn exact(b: &[u8]) -> Result<Vec<Element<'_>>, DecodeError> {
            Ziplist::parse_exact(b).map(|z| z.iter().collect())
        }
        assert_eq!(exact(&zl).unwrap(), items);
        assert_eq!(exact(&make_ziplist(&[])).unwrap(), vec![]);
        for cut in 0..zl.len() {
            assert!(exact(&zl[..cut]).is_err(), "cut at {cut}");
        }
        let small = make_ziplist(&[Bytes(b"abc"), Int(5)]);
        let mut bad = small.clone();
        bad[10 + 5] = 9; // prevlen of the second entry
        assert!(exact(&bad).is_err());
        let mut bad = small.clone();
        bad[4] = 0; // tail offset
        assert!(exact(&bad).is_err());
        let mut longer = small;
        longer.push(0xFF);
        assert!(Ziplist::parse(&longer).is_ok());
        assert!(matches!(
            exact(&longer),
            Err(DecodeError::TrailingBytes { .. })
        ));
    }
}
