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
            if out.len() + run > expected_len {
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
            if produced + copy > expected_len {
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
