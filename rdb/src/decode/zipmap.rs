//! Zipmap decoder (small hashes in RDB type 9, written by Redis < 2.6).
//!
//! Layout: `zmlen` (1 byte: the pair count if < 254, else unknown), then pairs
//! `<len><key><len><free><value><free bytes of padding>`, then the end byte 0xFF.
//! `<len>` is 1 byte if 0–253, else 254 followed by a u32 LE; `free` is 1 byte.

use super::{exact, read_le, DecodeError};

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

    /// [`Zipmap::parse`], and the zipmap must fill `bytes` exactly (an RDB string holds
    /// one zipmap and nothing after it).
    pub fn parse_exact(bytes: &'a [u8]) -> Result<Zipmap<'a>, DecodeError> {
        let parsed = Self::parse(bytes)?;
        exact(WHAT, parsed.as_bytes().len(), bytes)?;
        Ok(parsed)
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
            let raw =
                read_le::<4>(data, pos + 1).ok_or(DecodeError::Truncated { what, offset: pos })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::testutil::{for_each_mutation, Rng};

    fn enc_len(len: usize, out: &mut Vec<u8>) {
        if len < 254 {
            out.push(len as u8);
        } else {
            out.push(BIGLEN);
            out.extend_from_slice(&(len as u32).to_le_bytes());
        }
    }

    /// Encodes pairs with the given `free` padding per value.
    fn make(pairs: &[(&[u8], &[u8], u8)], zmlen: Option<u8>) -> Vec<u8> {
        let mut out = vec![zmlen.unwrap_or(pairs.len().min(254) as u8)];
        for (k, v, free) in pairs {
            enc_len(k.len(), &mut out);
            out.extend_from_slice(k);
            enc_len(v.len(), &mut out);
            out.push(*free);
            out.extend_from_slice(v);
            out.extend(std::iter::repeat_n(0, usize::from(*free)));
        }
        out.push(END);
        out
    }

    fn pairs(zm: &Zipmap) -> Vec<(Vec<u8>, Vec<u8>)> {
        zm.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn empty() {
        let zm = Zipmap::parse(&[0, 0xFF]).unwrap();
        assert!(zm.is_empty());
        assert_eq!(zm.iter().count(), 0);
        assert_eq!(zm.as_bytes(), &[0, 0xFF]);
    }

    #[test]
    fn hand_made() {
        // {"a": "1"}, {"kk": "v" with 3 bytes free}
        let blob = [
            2, 1, b'a', 1, 0, b'1', 2, b'k', b'k', 1, 3, b'v', 0, 0, 0, 0xFF,
        ];
        let zm = Zipmap::parse(&blob).unwrap();
        assert_eq!(zm.len(), 2);
        assert_eq!(
            zm.iter().collect::<Vec<_>>(),
            vec![(&b"a"[..], &b"1"[..]), (&b"kk"[..], &b"v"[..])]
        );
        assert_eq!(make(&[(b"a", b"1", 0), (b"kk", b"v", 3)], None), blob);
    }

    #[test]
    fn length_classes() {
        // 1-byte lengths up to 253, 5-byte from 254; empty key and value; 5000 bytes
        for len in [0usize, 1, 64, 253, 254, 255, 5000] {
            let k = vec![b'k'; len];
            let v = vec![b'v'; len];
            let blob = make(&[(&k, &v, 1), (b"", b"", 0)], None);
            let zm = Zipmap::parse(&blob).unwrap();
            assert_eq!(pairs(&zm), vec![(k.clone(), v.clone()), (vec![], vec![])]);
            assert_eq!(zm.as_bytes(), &blob[..]);
        }
        let k = vec![b'k'; 300];
        assert_eq!(
            &make(&[(&k, b"", 0)], None)[..6],
            &[1, 254, 0x2C, 0x01, 0, 0]
        );
        // a non-minimal 5-byte length is unambiguous and accepted
        let blob = [1, 254, 1, 0, 0, 0, b'x', 254, 1, 0, 0, 0, 0, b'y', 0xFF];
        let zm = Zipmap::parse(&blob).unwrap();
        assert_eq!(pairs(&zm), vec![(b"x".to_vec(), b"y".to_vec())]);
    }

    #[test]
    fn unknown_count() {
        let mut rng = Rng::new(3);
        let data: Vec<(Vec<u8>, Vec<u8>)> =
            (0..300).map(|_| (rng.blob(10), rng.blob(300))).collect();
        let refs: Vec<(&[u8], &[u8], u8)> = data
            .iter()
            .enumerate()
            .map(|(i, (k, v))| (&k[..], &v[..], (i % 5) as u8))
            .collect();
        let blob = make(&refs, None);
        assert_eq!(blob[0], 254);
        let zm = Zipmap::parse(&blob).unwrap();
        assert_eq!(zm.len(), 300);
        assert_eq!(pairs(&zm), data);
        // zmlen 254 or 255 with a small count: unknown, fine
        for z in [254, 255] {
            let blob = make(&[(b"a", b"b", 0)], Some(z));
            assert_eq!(Zipmap::parse(&blob).unwrap().len(), 1);
        }
    }

    #[test]
    fn wrong_count() {
        let blob = make(&[(b"a", b"b", 0)], Some(2));
        assert_eq!(
            Zipmap::parse(&blob),
            Err(DecodeError::CountMismatch {
                what: "zipmap",
                header: 2,
                actual: 1
            })
        );
        assert!(Zipmap::parse(&make(&[], Some(1))).is_err());
    }

    #[test]
    fn malformed() {
        // value length 0xFF
        assert_eq!(
            Zipmap::parse(&[1, 1, b'a', 0xFF, 0, 0xFF]),
            Err(DecodeError::BadEncoding {
                what: "zipmap value length",
                offset: 3,
                byte: 0xFF
            })
        );
        // no terminator
        assert_eq!(
            Zipmap::parse(&[1, 1, b'a', 1, 0, b'b']),
            Err(DecodeError::MissingTerminator {
                what: "zipmap",
                offset: 6,
                found: None
            })
        );
        // free padding runs past the end
        assert_eq!(
            Zipmap::parse(&[1, 1, b'a', 1, 9, b'b', 0xFF]),
            Err(DecodeError::Truncated {
                what: "zipmap value padding",
                offset: 6
            })
        );
        assert!(Zipmap::parse(&[]).is_err());
    }

    #[test]
    fn huge_lengths() {
        for len in [u32::MAX, u32::MAX - 1, 1 << 31, 1000] {
            let mut blob = vec![1, 254];
            blob.extend_from_slice(&len.to_le_bytes());
            blob.extend_from_slice(b"abc\x01\x00x\xff");
            assert_eq!(
                Zipmap::parse(&blob),
                Err(DecodeError::Truncated {
                    what: "zipmap key",
                    offset: 6
                })
            );
            let mut blob = vec![1, 1, b'k', 254];
            blob.extend_from_slice(&len.to_le_bytes());
            blob.extend_from_slice(b"\x00abc\xff");
            assert!(Zipmap::parse(&blob).is_err());
        }
    }

    #[test]
    fn truncated_at_every_position() {
        let k = vec![b'K'; 300];
        let blob = make(&[(b"a", b"1", 0), (&k, b"vv", 4), (b"x", &k, 0)], None);
        assert!(Zipmap::parse(&blob).is_ok());
        for n in 0..blob.len() {
            assert!(Zipmap::parse(&blob[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn mutations_never_panic() {
        let k = vec![b'K'; 260];
        let mut ok = 0;
        for blob in [
            make(&[(b"a", b"1", 0), (&k, b"vv", 4), (b"x", b"", 2)], None),
            make(&[], None),
        ] {
            for_each_mutation(&blob, |_, m| {
                if let Ok(zm) = Zipmap::parse(m) {
                    ok += 1;
                    assert!(zm.as_bytes().len() <= m.len());
                    assert_eq!(zm.as_bytes().last(), Some(&END));
                    assert_eq!(zm.iter().count(), zm.len());
                    for (k, v) in zm.iter() {
                        assert!(k.len() + v.len() <= m.len());
                    }
                }
            });
        }
        assert!(ok > 0);
    }

    // From the reader's former copy: what an RDB string must hold exactly.

    #[test]
    fn exact_checks() {
        let exact = |b: &[u8]| {
            Zipmap::parse_exact(b).map(|z| {
                z.iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect::<Vec<_>>()
            })
        };
        let mut b = vec![2u8];
        b.extend_from_slice(&[1, b'a', 2, 1, b'x', b'y', 0xEE]); // value "xy" + 1 free byte
        b.push(254);
        b.extend_from_slice(&300u32.to_le_bytes());
        let long = vec![b'k'; 300];
        b.extend_from_slice(&long);
        b.extend_from_slice(&[0, 0]);
        b.push(0xFF);
        assert_eq!(
            exact(&b).unwrap(),
            vec![
                (b"a".to_vec(), b"xy".to_vec()),
                (long.clone(), b"".to_vec())
            ]
        );
        for cut in 0..b.len() {
            assert!(exact(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(Zipmap::parse(&extra).is_ok());
        assert!(exact(&extra).is_err());
    }
}
