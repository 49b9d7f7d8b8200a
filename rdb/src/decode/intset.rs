//! Intset decoder (same bytes in memory and in RDB type 11).
//!
//! Layout: `u32 encoding LE` (2, 4 or 8 bytes per element), `u32 length LE`, then
//! `length` strictly ascending signed little-endian integers of `encoding` bytes.

use super::{exact, read_le, DecodeError};

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

    /// [`Intset::parse`], and the intset must fill `bytes` exactly (an RDB string holds
    /// one intset and nothing after it).
    pub fn parse_exact(bytes: &'a [u8]) -> Result<Intset<'a>, DecodeError> {
        let parsed = Self::parse(bytes)?;
        exact(WHAT, parsed.as_bytes().len(), bytes)?;
        Ok(parsed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::testutil::for_each_mutation;

    fn make(width: u32, values: &[i64]) -> Vec<u8> {
        let mut out = width.to_le_bytes().to_vec();
        out.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for &v in values {
            out.extend_from_slice(&v.to_le_bytes()[..width as usize]);
        }
        out
    }

    #[test]
    fn empty() {
        for w in [2, 4, 8] {
            let blob = make(w, &[]);
            let set = Intset::parse(&blob).unwrap();
            assert!(set.is_empty());
            assert_eq!(set.iter().count(), 0);
            assert_eq!(set.as_bytes().len(), 8);
        }
    }

    #[test]
    fn every_width_with_boundaries() {
        let cases: [(u32, Vec<i64>); 3] = [
            (2, vec![i16::MIN.into(), -1, 0, 1, i16::MAX.into()]),
            (
                4,
                vec![i32::MIN.into(), -32769, -1, 0, 32768, i32::MAX.into()],
            ),
            (8, vec![i64::MIN, -(1 << 31) - 1, -1, 0, 1 << 31, i64::MAX]),
        ];
        for (w, values) in &cases {
            let blob = make(*w, values);
            let set = Intset::parse(&blob).unwrap();
            assert_eq!(set.len(), values.len());
            assert_eq!(set.encoding(), *w as usize);
            assert_eq!(set.iter().collect::<Vec<_>>(), *values);
            assert_eq!(set.iter().len(), values.len());
            assert_eq!(set.as_bytes(), &blob[..]);
        }
        // hand-made bytes: int16 {-2, 5}
        let blob = [2, 0, 0, 0, 2, 0, 0, 0, 0xFE, 0xFF, 5, 0];
        assert_eq!(
            Intset::parse(&blob).unwrap().iter().collect::<Vec<_>>(),
            vec![-2, 5]
        );
        // an int64 set holding only small values (never downgraded) is valid
        let blob = make(8, &[1, 2, 3]);
        assert_eq!(Intset::parse(&blob).unwrap().len(), 3);
    }

    #[test]
    fn longer_input_is_fine() {
        let mut blob = make(4, &[1, 2, 3]);
        blob.extend_from_slice(&[0x55; 9]);
        let set = Intset::parse(&blob).unwrap();
        assert_eq!(set.as_bytes().len(), 8 + 12);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn bad_encoding() {
        for enc in [0u32, 1, 3, 5, 6, 7, 9, 16, u32::MAX] {
            let mut blob = enc.to_le_bytes().to_vec();
            blob.extend_from_slice(&[0; 12]);
            assert!(matches!(
                Intset::parse(&blob),
                Err(DecodeError::BadHeader { what: "intset", .. })
            ));
        }
    }

    #[test]
    fn unsorted_and_duplicates() {
        assert_eq!(
            Intset::parse(&make(2, &[1, 3, 2])),
            Err(DecodeError::Unsorted {
                index: 2,
                offset: 12,
                prev: 3,
                value: 2
            })
        );
        assert_eq!(
            Intset::parse(&make(8, &[-5, -5])),
            Err(DecodeError::Unsorted {
                index: 1,
                offset: 16,
                prev: -5,
                value: -5
            })
        );
        // sorted as unsigned but not as signed
        assert!(Intset::parse(&make(4, &[1, -1])).is_err());
    }

    #[test]
    fn huge_lengths() {
        for w in [2u32, 4, 8] {
            for len in [u32::MAX, u32::MAX / 2, 1 << 30, 4] {
                let mut blob = w.to_le_bytes().to_vec();
                blob.extend_from_slice(&len.to_le_bytes());
                blob.extend_from_slice(&[0; 8]);
                assert!(Intset::parse(&blob).is_err());
            }
        }
    }

    #[test]
    fn truncated_at_every_position() {
        for blob in [make(2, &[-3, 0, 7]), make(8, &[i64::MIN, 0, i64::MAX])] {
            assert!(Intset::parse(&blob).is_ok());
            for k in 0..blob.len() {
                assert!(Intset::parse(&blob[..k]).is_err(), "prefix {k}");
            }
        }
    }

    #[test]
    fn mutations_never_panic() {
        let mut ok = 0;
        for blob in [
            make(2, &[-300, -2, 0, 9, 4000]),
            make(4, &[-70000, 1, 70000]),
            make(8, &[i64::MIN, 5, i64::MAX]),
            make(2, &[]),
        ] {
            for_each_mutation(&blob, |_, m| {
                if let Ok(set) = Intset::parse(m) {
                    ok += 1;
                    assert!(set.as_bytes().len() <= m.len());
                    let v: Vec<i64> = set.iter().collect();
                    assert_eq!(v.len(), set.len());
                    assert!(v.windows(2).all(|w| w[0] < w[1]));
                }
            });
        }
        assert!(ok > 0);
    }

    // From the reader's former copy: what an RDB string must hold exactly.

    #[test]
    fn exact_checks() {
        let exact = |b: &[u8]| Intset::parse_exact(b).map(|s| s.iter().collect::<Vec<_>>());
        let mut b = Vec::new();
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        for v in [-5i16, 0, 300] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(exact(&b).unwrap(), vec![-5, 0, 300]);
        for cut in 0..b.len() {
            assert!(exact(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut unsorted = b.clone();
        unsorted[8..10].copy_from_slice(&400i16.to_le_bytes());
        assert!(exact(&unsorted).is_err());
        let mut bad_enc = b.clone();
        bad_enc[0] = 3;
        assert!(exact(&bad_enc).is_err());
        let mut longer = b;
        longer.push(0);
        assert!(Intset::parse(&longer).is_ok());
        assert!(matches!(
            exact(&longer),
            Err(DecodeError::TrailingBytes { .. })
        ));
        let mut b8 = Vec::new();
        b8.extend_from_slice(&8u32.to_le_bytes());
        b8.extend_from_slice(&1u32.to_le_bytes());
        b8.extend_from_slice(&i64::MIN.to_le_bytes());
        assert_eq!(exact(&b8).unwrap(), vec![i64::MIN]);
    }
}
