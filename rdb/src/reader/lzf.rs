//! LZF decompression (the format described in [`crate::compress`]), bounded by the
//! announced output length.

/// Inflates `input` into exactly `out_len` bytes, or says why it cannot.
pub(crate) fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, &'static str> {
    // LZF expands at most about 132× (a 3-byte back reference copies 264 bytes), so a
    // length beyond that cannot be right and must not be allocated.
    if out_len > input.len().saturating_mul(133).saturating_add(64) {
        return Err("LZF raw length is impossible for its compressed length");
    }
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(*input.get(i).ok_or("LZF input")?);
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input
                .get(i..i + n)
                .ok_or("LZF literal runs past the input")?;
            if out.len() + n > out_len {
                return Err("LZF output longer than announced");
            }
            out.extend_from_slice(lit);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(i).ok_or("LZF length runs past the input")?);
                i += 1;
            }
            len += 2;
            let lo = usize::from(*input.get(i).ok_or("LZF offset runs past the input")?);
            i += 1;
            let back = ((ctrl & 0x1F) << 8) + lo + 1;
            if back > out.len() {
                return Err("LZF back reference before the start of the output");
            }
            if out.len() + len > out_len {
                return Err("LZF output longer than announced");
            }
            let from = out.len() - back;
            // Byte by byte: the copy may overlap what it writes.
            for k in 0..len {
                let b = *out.get(from + k).ok_or("LZF back reference")?;
                out.push(b);
            }
        }
    }
    if out.len() != out_len {
        return Err("LZF output shorter than announced");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::lzf_compress;

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
            if lzf_compress(&data, len, &mut c) {
                assert_eq!(decompress(&c, len).unwrap(), data);
                assert_eq!(lzf::decompress(&c, len).unwrap(), data);
                assert!(decompress(&c, len + 1).is_err());
                if len > 1 {
                    assert!(decompress(&c, len - 1).is_err());
                }
                for cut in [0, c.len() / 2, c.len().saturating_sub(1)] {
                    if cut < c.len() {
                        assert!(decompress(&c[..cut], len).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_bad_references_and_absurd_lengths() {
        // Back reference with nothing before it.
        assert!(decompress(&[0x20, 0x00], 3).is_err());
        assert!(decompress(&[0x00, b'a'], usize::MAX).is_err());
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x00], 4).unwrap(), b"aaaa");
        assert_eq!(decompress(&[], 0).unwrap(), b"");
    }
}
