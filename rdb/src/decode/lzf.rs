//! LZF decompression (liblzf format, used for compressed strings in RDB files).
//!
//! The stream is a sequence of items introduced by a control byte `c`:
//! * `c < 32`: a literal run, `c + 1` bytes copied from the input;
//! * otherwise a back-reference: `len = c >> 5` (if 7, plus the next input byte),
//!   then `distance = ((c & 0x1f) << 8 | next byte) + 1`; `len + 2` bytes are copied
//!   from `distance` bytes back in the output (the source may overlap the copy).

use super::DecodeError;

/// The most output bytes one input byte can produce: a 3-byte back-reference copies at
/// most 7 + 255 + 2 = 264 bytes.
pub const MAX_EXPANSION: usize = 88;

/// Decompresses `input` into `out` (cleared first), which must end up exactly
/// `expected_len` bytes long.
///
/// `expected_len` should already be bounded by the caller; in any case no more than
/// `expected_len` bytes are written, and the allocation is refused outright if
/// `input` could not possibly expand to `expected_len` bytes. Errors on a truncated
/// item, a back-reference reaching before the start of the output, output exceeding
/// `expected_len`, or a final length different from `expected_len`.
pub fn decompress(input: &[u8], expected_len: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    out.clear();
    let max_possible = input.len().saturating_mul(MAX_EXPANSION);
    if expected_len > max_possible {
        return Err(DecodeError::LengthMismatch {
            expected: expected_len,
            actual: max_possible,
        });
    }
    out.reserve_exact(expected_len);
    let mut ip = 0usize;
    while let Some(&ctrl) = input.get(ip) {
        let item = ip;
        ip += 1;
        if ctrl < 32 {
            let run = usize::from(ctrl) + 1;
            let lit = input
                .get(ip..ip.saturating_add(run))
                .ok_or(DecodeError::Truncated {
                    what: "lzf literal run",
                    offset: item,
                })?;
            if out.len().checked_add(run).is_none_or(|n| n > expected_len) {
                return Err(DecodeError::LzfOverflow {
                    offset: item,
                    expected_len,
                });
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let truncated = DecodeError::Truncated {
                what: "lzf back-reference",
                offset: item,
            };
            let mut len = usize::from(ctrl >> 5);
            if len == 7 {
                len += usize::from(*input.get(ip).ok_or(truncated.clone())?);
                ip += 1;
            }
            let lo = *input.get(ip).ok_or(truncated)?;
            ip += 1;
            let distance = (usize::from(ctrl & 0x1F) << 8 | usize::from(lo)) + 1;
            let produced = out.len();
            let Some(start) = produced.checked_sub(distance) else {
                return Err(DecodeError::LzfBadBackref {
                    offset: item,
                    distance,
                    produced,
                });
            };
            let copy = len + 2;
            if produced.checked_add(copy).is_none_or(|n| n > expected_len) {
                return Err(DecodeError::LzfOverflow {
                    offset: item,
                    expected_len,
                });
            }
            if distance >= copy {
                out.extend_from_within(start..start + copy);
            } else {
                // Overlapping copy: each byte may be one this loop just wrote.
                for i in start..start + copy {
                    let b = out.get(i).copied().unwrap_or(0);
                    out.push(b);
                }
            }
        }
    }
    if out.len() != expected_len {
        return Err(DecodeError::LengthMismatch {
            expected: expected_len,
            actual: out.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::testutil::{for_each_mutation, Rng};

    /// Compress with the rdb crate's compressor (the `lzf` crate's `compress` 1.0.0 can
    /// index out of bounds on some inputs); `None` when the data does not shrink.
    fn compress(data: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        crate::compress::lzf_compress(data, data.len().saturating_sub(1), &mut out).then_some(out)
    }

    fn dec(input: &[u8], n: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out = vec![9, 9, 9]; // must be cleared
        decompress(input, n, &mut out).map(|()| out)
    }

    /// Inputs of many shapes: random, repetitive, runs, text-like, mixed.
    fn corpus() -> Vec<Vec<u8>> {
        let mut rng = Rng::new(4);
        let mut v: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            vec![0; 10_000],
            b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(20),
            b"hello world, hello redis, hello world, hello rescue! ".repeat(50),
        ];
        for i in 0..300 {
            let len = rng.below(if i % 10 == 0 { 70_000 } else { 3000 }) + 3;
            let data = match i % 4 {
                0 => rng.bytes(len),
                1 => {
                    let alphabet = rng.below(4) + 1;
                    (0..len).map(|_| b'a' + rng.below(alphabet) as u8).collect()
                }
                2 => {
                    let mut d = Vec::new();
                    while d.len() < len {
                        let run = rng.below(400) + 1;
                        let b = rng.next_u64() as u8;
                        d.extend(std::iter::repeat_n(b, run));
                        let lit = rng.below(20);
                        d.extend(rng.bytes(lit));
                    }
                    d
                }
                _ => {
                    let chunk = rng.blob(300);
                    let mut d = Vec::new();
                    while d.len() < len {
                        d.extend_from_slice(&chunk);
                        d.push(rng.next_u64() as u8);
                    }
                    d
                }
            };
            v.push(data);
        }
        v
    }

    #[test]
    fn matches_lzf_crate() {
        let mut compressed_ok = 0;
        for data in corpus() {
            let Some(c) = compress(&data) else {
                continue; // incompressible
            };
            compressed_ok += 1;
            assert_eq!(dec(&c, data.len()).unwrap(), data);
            assert_eq!(::lzf::decompress(&c, data.len()).unwrap(), data);
            // wrong expected length: too short overflows, too long is a mismatch
            assert!(matches!(
                dec(&c, data.len() - 1),
                Err(DecodeError::LzfOverflow { .. })
            ));
            assert!(matches!(
                dec(&c, data.len() + 1),
                Err(DecodeError::LengthMismatch { .. })
            ));
        }
        assert!(compressed_ok > 200);
    }

    #[test]
    fn hand_made_streams() {
        // literal run of 3
        assert_eq!(dec(&[2, b'a', b'b', b'c'], 3).unwrap(), b"abc");
        // 'a' then back-reference distance 1, len 1+2 = 3 (overlapping): "aaaa"
        assert_eq!(dec(&[0, b'a', 0x20, 0x00], 4).unwrap(), b"aaaa");
        // "ab" then distance 2, len 6+2 = 8: "ababababab"
        assert_eq!(
            dec(&[1, b'a', b'b', 0xC0, 0x01], 10).unwrap(),
            b"ababababab"
        );
        // long back-reference: len 7 + 255 + 2 = 264 copies of 'x'
        let out = dec(&[0, b'x', 0xE0, 0xFF, 0x00], 265).unwrap();
        assert_eq!(out, vec![b'x'; 265]);
        // maximal distance 8192 (high 5 bits + low byte all set)
        let mut input = Vec::new();
        let mut want = Vec::new();
        for i in 0..256usize {
            input.push(31);
            let chunk: Vec<u8> = (0..32).map(|j| (i * 7 + j) as u8).collect();
            input.extend_from_slice(&chunk);
            want.extend_from_slice(&chunk);
        }
        input.extend_from_slice(&[0x3F, 0xFF]); // len 1+2, distance 0x1FFF+1
        want.extend_from_within(0..3);
        assert_eq!(dec(&input, want.len()).unwrap(), want);
        // empty
        assert_eq!(dec(&[], 0).unwrap(), b"");
    }

    #[test]
    fn errors() {
        // back-reference before the start of the output
        assert_eq!(
            dec(&[0x20, 0x00], 3),
            Err(DecodeError::LzfBadBackref {
                offset: 0,
                distance: 1,
                produced: 0
            })
        );
        assert_eq!(
            dec(&[1, b'a', b'b', 0x20, 0x02], 5),
            Err(DecodeError::LzfBadBackref {
                offset: 3,
                distance: 3,
                produced: 2
            })
        );
        // truncated literal run
        assert_eq!(
            dec(&[5, b'a', b'b'], 6),
            Err(DecodeError::Truncated {
                what: "lzf literal run",
                offset: 0
            })
        );
        // truncated back-reference (missing offset byte, missing length byte)
        assert_eq!(
            dec(&[0, b'a', 0x20], 4),
            Err(DecodeError::Truncated {
                what: "lzf back-reference",
                offset: 2
            })
        );
        assert_eq!(
            dec(&[0, b'a', 0xE0], 12),
            Err(DecodeError::Truncated {
                what: "lzf back-reference",
                offset: 2
            })
        );
        assert!(dec(&[0, b'a', 0xE0, 0x05], 12).is_err());
        // output exceeding expected_len, by a literal or a back-reference
        assert_eq!(
            dec(&[2, b'a', b'b', b'c'], 2),
            Err(DecodeError::LzfOverflow {
                offset: 0,
                expected_len: 2
            })
        );
        assert_eq!(
            dec(&[0, b'a', 0x20, 0x00], 3),
            Err(DecodeError::LzfOverflow {
                offset: 2,
                expected_len: 3
            })
        );
        // short output
        assert_eq!(
            dec(&[2, b'a', b'b', b'c'], 4),
            Err(DecodeError::LengthMismatch {
                expected: 4,
                actual: 3
            })
        );
        // impossible expansion is refused before allocating
        assert_eq!(
            dec(&[0, b'a'], usize::MAX),
            Err(DecodeError::LengthMismatch {
                expected: usize::MAX,
                actual: 2 * MAX_EXPANSION
            })
        );
        assert!(dec(&[], 1).is_err());
    }

    #[test]
    fn max_expansion_is_reachable() {
        // 'x' literal (2 bytes) then back-references of 264 bytes (3 bytes each)
        let mut input = vec![0, b'x'];
        for _ in 0..100 {
            input.extend_from_slice(&[0xE0, 0xFF, 0x00]);
        }
        let n = 1 + 100 * 264;
        assert!(n <= input.len() * MAX_EXPANSION);
        assert_eq!(dec(&input, n).unwrap(), vec![b'x'; n]);
    }

    #[test]
    fn truncated_at_every_position() {
        let data = b"The quick brown fox jumps over the lazy dog; the quick brown fox!".repeat(8);
        let c = compress(&data).unwrap();
        for k in 0..c.len() {
            assert!(dec(&c[..k], data.len()).is_err(), "prefix {k}");
        }
    }

    #[test]
    fn mutations_never_panic() {
        let data = b"abcabcabc-hello-hello-hello-0123456789-0123456789-xyz".repeat(6);
        let c = compress(&data).unwrap();
        let mut ok = 0;
        for_each_mutation(&c, |_, m| {
            for n in [data.len(), data.len() / 2, data.len() * 2] {
                if let Ok(out) = dec(m, n) {
                    ok += 1;
                    assert_eq!(out.len(), n);
                }
            }
        });
        assert!(ok > 0);
        let mut rng = Rng::new(5);
        for _ in 0..2000 {
            let input = rng.blob(64);
            let n = rng.below(2000);
            if let Ok(out) = dec(&input, n) {
                assert_eq!(out.len(), n);
            }
        }
    }

    // From the reader's former copy.

    #[test]
    fn round_trips_our_compressor_and_the_lzf_crate() {
        let mut rng = crate::crc::tests::XorShift(77);
        for round in 0..200 {
            let len = 1 + rng.below(if round % 10 == 0 { 100_000 } else { 2000 });
            let mut data = vec![0u8; len];
            // Low-entropy data so it compresses.
            for b in &mut data {
                *b = b"abcab cabbage "[rng.below(14)];
            }
            let mut c = Vec::new();
            // The `lzf` crate's compressor is no reference (1.0.0 can index out of bounds
            // on some inputs); its decompressor cross-checks ours instead.
            if crate::compress::lzf_compress(&data, len, &mut c) {
                assert_eq!(dec(&c, len).unwrap(), data);
                assert_eq!(::lzf::decompress(&c, len).unwrap(), data);
                assert!(dec(&c, len + 1).is_err());
                if len > 1 {
                    assert!(dec(&c, len - 1).is_err());
                }
                for cut in [0, c.len() / 2, c.len().saturating_sub(1)] {
                    if cut < c.len() {
                        assert!(dec(&c[..cut], len).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_bad_references_and_absurd_lengths() {
        // Back reference with nothing before it.
        assert!(dec(&[0x20, 0x00], 3).is_err());
        assert!(dec(&[0x00, b'a'], usize::MAX).is_err());
        assert_eq!(dec(&[0x00, b'a', 0x20, 0x00], 4).unwrap(), b"aaaa");
        assert_eq!(dec(&[], 0).unwrap(), b"");
    }
}
