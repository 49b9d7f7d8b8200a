//! RDB primitive encodings, appended to a `Vec<u8>`.
//!
//! These mirror what Redis's own saver emits byte for byte (lengths, the
//! integer/LZF/raw string choice, doubles), so files look like ones Redis
//! would have written.

use std::io::Write as _;

use crate::compress::with_compressed;

/// First byte of a special (non-length) string encoding.
const ENC_SPECIAL: u8 = 0xC0;
const ENC_INT8: u8 = ENC_SPECIAL;
const ENC_INT16: u8 = ENC_SPECIAL | 1;
const ENC_INT32: u8 = ENC_SPECIAL | 2;
const ENC_LZF: u8 = ENC_SPECIAL | 3;

/// Longest string Redis tries to store as an integer ("-2147483648" is 11).
const INT_ENCODING_MAX_LEN: usize = 11;
/// Redis compresses only strings longer than this.
const LZF_MIN_LEN_EXCLUSIVE: usize = 20;
/// Compression must save at least this many bytes to be used.
const LZF_MIN_SAVING: usize = 4;

/// Special length-byte values of a string double.
const DOUBLE_NAN: u8 = 253;
const DOUBLE_POS_INF: u8 = 254;
const DOUBLE_NEG_INF: u8 = 255;

/// Appends a length: 6-bit, 14-bit big-endian, `0x80` + u32 BE or `0x81` + u64 BE.
pub fn put_len(buf: &mut Vec<u8>, len: u64) {
    if len < (1 << 6) {
        buf.push(len as u8);
    } else if len < (1 << 14) {
        buf.push(0x40 | (len >> 8) as u8);
        buf.push(len as u8);
    } else if len <= u64::from(u32::MAX) {
        buf.push(0x80);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        buf.push(0x81);
        buf.extend_from_slice(&len.to_be_bytes());
    }
}

/// The integer `s` spells if it is the canonical decimal form of an `i64`
/// (optional `-`, no leading zeros, no `+`, no `-0`), the same test as Redis's
/// "parse, print back, compare".
pub fn as_canonical_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let first = *digits.first()?;
    if first == b'0' && (digits.len() > 1 || neg) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Appends the INT8/16/32 special encoding of `v`; false if it needs more than 32 bits.
fn put_small_int(buf: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        buf.push(ENC_INT8);
        buf.extend_from_slice(&b.to_le_bytes());
    } else if let Ok(h) = i16::try_from(v) {
        buf.push(ENC_INT16);
        buf.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        buf.push(ENC_INT32);
        buf.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Appends a string the way Redis's saver chooses its encoding: integer
/// encoding for short canonical integers that fit in 32 bits, else LZF when
/// `compress` is set, the string is longer than 20 bytes and compression
/// saves at least 4 bytes, else length + raw bytes.
pub fn put_string(buf: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= INT_ENCODING_MAX_LEN {
        if let Some(v) = as_canonical_int(s) {
            if put_small_int(buf, v) {
                return;
            }
        }
    }
    if compress && s.len() > LZF_MIN_LEN_EXCLUSIVE {
        let written = with_compressed(s, s.len() - LZF_MIN_SAVING, |c| {
            c.map(|c| put_lzf_blob(buf, c, s.len() as u64)).is_some()
        });
        if written {
            return;
        }
    }
    put_raw_string(buf, s);
}

/// Appends length + bytes, never int-encoding or compressing.
pub fn put_raw_string(buf: &mut Vec<u8>, s: &[u8]) {
    put_len(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

/// Formats `v` in decimal into `tmp`, returning the used part.
fn format_i64(v: i64, tmp: &mut [u8; 20]) -> &[u8] {
    let mut pos = tmp.len();
    let mut m = v.unsigned_abs();
    loop {
        pos -= 1;
        if let Some(slot) = tmp.get_mut(pos) {
            *slot = b'0' + (m % 10) as u8;
        }
        m /= 10;
        if m == 0 || pos == 0 {
            break;
        }
    }
    if v < 0 && pos > 0 {
        pos -= 1;
        if let Some(slot) = tmp.get_mut(pos) {
            *slot = b'-';
        }
    }
    tmp.get(pos..).unwrap_or_default()
}

/// Appends an integer as a string value: INT8/16/32 encoding when it fits,
/// otherwise its decimal text (through [`put_string`]).
pub fn put_int_string(buf: &mut Vec<u8>, v: i64, compress: bool) {
    if !put_small_int(buf, v) {
        let mut tmp = [0u8; 20];
        put_string(buf, format_i64(v, &mut tmp), compress);
    }
}

/// Appends already LZF-compressed data: `0xC3`, compressed length, raw
/// length, data. The caller vouches that `compressed` inflates to `raw_len` bytes.
pub fn put_lzf_blob(buf: &mut Vec<u8>, compressed: &[u8], raw_len: u64) {
    buf.push(ENC_LZF);
    put_len(buf, compressed.len() as u64);
    put_len(buf, raw_len);
    buf.extend_from_slice(compressed);
}

/// Appends a double as 8 bytes IEEE-754 little-endian (ZSET_2 scores).
pub fn put_binary_double(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends a double in the old text form (ZSET type 3 scores): one length
/// byte then the `%.17g` text, or the single byte 253 (NaN), 254 (+inf) or
/// 255 (-inf). The text parses back to the same bits, including `-0`.
pub fn put_string_double(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.push(DOUBLE_NAN);
        return;
    }
    if v.is_infinite() {
        buf.push(if v > 0.0 {
            DOUBLE_POS_INF
        } else {
            DOUBLE_NEG_INF
        });
        return;
    }
    let len_at = buf.len();
    buf.push(0);
    format_g17(v, buf);
    // At most 24 bytes ("-1.2345678901234567e-308"), so it fits the byte.
    let n = buf.len() - len_at - 1;
    if let Some(b) = buf.get_mut(len_at) {
        *b = n as u8;
    }
}

/// Appends `v` (finite) formatted like C's `printf("%.17g", v)`.
fn format_g17(v: f64, out: &mut Vec<u8>) {
    const PRECISION: i32 = 17;
    // Rust's `{:.16e}` rounds exactly to 17 significant digits, which gives
    // both the digits and the decimal exponent %g needs.
    let mut tmp = [0u8; 40];
    let used = {
        let mut cur: &mut [u8] = &mut tmp;
        let cap = cur.len();
        if write!(cur, "{v:.16e}").is_err() {
            0
        } else {
            cap - cur.len()
        }
    };
    let text = tmp.get(..used).unwrap_or_default();
    let Some((neg, digits, exp)) = split_sci(text) else {
        // Unreachable in practice; the shortest round-trip form still parses.
        let _ = write!(out, "{v:e}");
        return;
    };
    if neg {
        out.push(b'-');
    }
    if (-4..PRECISION).contains(&exp) {
        if exp >= 0 {
            let split = (exp as usize + 1).min(digits.len());
            let (int_part, frac) = digits.split_at(split);
            out.extend_from_slice(int_part);
            let frac = frac.get(..trim(frac)).unwrap_or_default();
            if !frac.is_empty() {
                out.push(b'.');
                out.extend_from_slice(frac);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(digits.get(..trim(&digits)).unwrap_or_default());
        }
    } else {
        let (lead, frac) = digits.split_at(1.min(digits.len()));
        out.extend_from_slice(lead);
        let frac = frac.get(..trim(frac)).unwrap_or_default();
        if !frac.is_empty() {
            out.push(b'.');
            out.extend_from_slice(frac);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
}

/// Length of `d` without its trailing zeros.
fn trim(d: &[u8]) -> usize {
    d.iter().rposition(|&c| c != b'0').map_or(0, |p| p + 1)
}

/// Splits Rust's `-d.dddde-N` output into (negative, 17 digits, exponent).
fn split_sci(text: &[u8]) -> Option<(bool, [u8; 17], i32)> {
    let (neg, rest) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_at = rest.iter().position(|&c| c == b'e')?;
    let (mantissa, exp_text) = rest.split_at(e_at);
    let exp: i32 = std::str::from_utf8(exp_text.get(1..)?).ok()?.parse().ok()?;
    let mut digits = [0u8; 17];
    let mut n = 0;
    for &c in mantissa.iter().filter(|c| c.is_ascii_digit()) {
        *digits.get_mut(n)? = c;
        n += 1;
    }
    (n == digits.len()).then_some((neg, digits, exp))
}

/// Appends a millisecond time (or any int64) little-endian.
pub fn put_millis(buf: &mut Vec<u8>, ms: i64) {
    buf.extend_from_slice(&ms.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc::tests::XorShift;

    fn len_bytes(n: u64) -> Vec<u8> {
        let mut b = Vec::new();
        put_len(&mut b, n);
        b
    }

    fn string_bytes(s: &[u8], compress: bool) -> Vec<u8> {
        let mut b = Vec::new();
        put_string(&mut b, s, compress);
        b
    }

    fn raw(s: &[u8]) -> Vec<u8> {
        let mut b = vec![s.len() as u8];
        b.extend_from_slice(s);
        b
    }

    #[test]
    fn length_boundaries() {
        assert_eq!(len_bytes(0), [0x00]);
        assert_eq!(len_bytes(63), [0x3F]);
        assert_eq!(len_bytes(64), [0x40, 0x40]);
        assert_eq!(len_bytes(300), [0x41, 0x2C]);
        assert_eq!(len_bytes(16383), [0x7F, 0xFF]);
        assert_eq!(len_bytes(16384), [0x80, 0x00, 0x00, 0x40, 0x00]);
        assert_eq!(
            len_bytes(u64::from(u32::MAX)),
            [0x80, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(
            len_bytes(u64::from(u32::MAX) + 1),
            [0x81, 0, 0, 0, 0x01, 0, 0, 0, 0]
        );
        assert_eq!(
            len_bytes(u64::MAX),
            [0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }

    #[test]
    fn int_encoded_strings() {
        assert_eq!(string_bytes(b"0", true), [0xC0, 0x00]);
        assert_eq!(string_bytes(b"-1", true), [0xC0, 0xFF]);
        assert_eq!(string_bytes(b"127", true), [0xC0, 0x7F]);
        assert_eq!(string_bytes(b"-128", true), [0xC0, 0x80]);
        assert_eq!(string_bytes(b"128", true), [0xC1, 0x80, 0x00]);
        assert_eq!(string_bytes(b"-32768", true), [0xC1, 0x00, 0x80]);
        assert_eq!(string_bytes(b"32768", true), [0xC2, 0x00, 0x80, 0x00, 0x00]);
        assert_eq!(
            string_bytes(b"2147483647", true),
            [0xC2, 0xFF, 0xFF, 0xFF, 0x7F]
        );
        assert_eq!(
            string_bytes(b"-2147483648", true),
            [0xC2, 0x00, 0x00, 0x00, 0x80]
        );
    }

    #[test]
    fn non_int_encoded_strings() {
        for s in [
            &b"2147483648"[..],
            b"-2147483649",
            b"007",
            b"+1",
            b"-0",
            b"00",
            b"",
            b"-",
            b"1a",
            b" 1",
            b"1 ",
            b"1.0",
            b"123456789012",
            b"-12345678901",
            b"99999999999",
        ] {
            assert_eq!(
                string_bytes(s, true),
                raw(s),
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn canonical_int_parsing() {
        assert_eq!(as_canonical_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(as_canonical_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(as_canonical_int(b"9223372036854775808"), None);
        assert_eq!(as_canonical_int(b"-9223372036854775809"), None);
        assert_eq!(as_canonical_int(b"99999999999999999999999"), None);
        assert_eq!(as_canonical_int(b"0"), Some(0));
        assert_eq!(as_canonical_int(b"-0"), None);
        assert_eq!(as_canonical_int(b"-"), None);
    }

    #[test]
    fn int_string_values() {
        let enc = |v: i64| {
            let mut b = Vec::new();
            put_int_string(&mut b, v, true);
            b
        };
        assert_eq!(enc(0), [0xC0, 0]);
        assert_eq!(enc(-32768), [0xC1, 0x00, 0x80]);
        assert_eq!(enc(i64::from(i32::MAX)), [0xC2, 0xFF, 0xFF, 0xFF, 0x7F]);
        assert_eq!(enc(2147483648), raw(b"2147483648"));
        assert_eq!(enc(i64::MIN), raw(b"-9223372036854775808"));
        assert_eq!(enc(i64::MAX), raw(b"9223372036854775807"));
        assert_eq!(enc(-12345678901), raw(b"-12345678901"));
    }

    #[test]
    fn lzf_compressible_string() {
        let s: Vec<u8> = b"abcdefgh-".iter().copied().cycle().take(1000).collect();
        let b = string_bytes(&s, true);
        assert_eq!(b[0], 0xC3);
        // clen (6-bit: period-9 text squeezes very well), then rawlen 1000
        // (14-bit: 0x43 0xE8).
        let clen = usize::from(b[1]);
        assert!(clen < 64, "{clen}");
        assert_eq!(&b[2..4], &[0x43, 0xE8]);
        assert_eq!(b.len(), 4 + clen);
        assert_eq!(lzf::decompress(&b[4..], 1000).unwrap(), s);
        // Without compression it is stored raw.
        let plain = string_bytes(&s, false);
        assert_eq!(&plain[..2], &[0x43, 0xE8]);
        assert_eq!(&plain[2..], &s[..]);
    }

    #[test]
    fn lzf_skipped_when_useless_or_short() {
        let mut rng = XorShift(42);
        let mut noise = [0u8; 25];
        rng.fill(&mut noise);
        assert_eq!(string_bytes(&noise, true), raw(&noise));
        let twenty = [b'a'; 20];
        assert_eq!(string_bytes(&twenty, true), raw(&twenty));
        let twenty_one = [b'a'; 21];
        assert_eq!(string_bytes(&twenty_one, true)[0], 0xC3);
    }

    #[test]
    fn lzf_random_round_trips() {
        // Mixed random/repetitive inputs: whatever put_string emits must
        // decode back, and must never panic.
        let mut rng = XorShift(7);
        for _ in 0..2000 {
            let len = rng.below(600);
            let mut s = vec![0u8; len];
            let alphabet = 1 + rng.below(255) as u64;
            for b in s.iter_mut() {
                *b = (rng.next_u64() % alphabet) as u8;
            }
            let b = string_bytes(&s, true);
            if b.first() == Some(&0xC3) {
                let mut at = 1;
                let read_len = |at: &mut usize| -> usize {
                    let first = b[*at];
                    match first >> 6 {
                        0 => {
                            *at += 1;
                            usize::from(first)
                        }
                        1 => {
                            *at += 2;
                            (usize::from(first & 0x3F) << 8) | usize::from(b[*at - 1])
                        }
                        _ => panic!("unexpected long length"),
                    }
                };
                let clen = read_len(&mut at);
                let rawlen = read_len(&mut at);
                assert_eq!(rawlen, s.len());
                assert_eq!(b.len(), at + clen);
                assert!(clen + 4 <= s.len());
                assert_eq!(lzf::decompress(&b[at..], rawlen).unwrap(), s);
            }
        }
    }

    fn double_text(v: f64) -> String {
        let mut b = Vec::new();
        put_string_double(&mut b, v);
        assert_eq!(usize::from(b[0]), b.len() - 1);
        String::from_utf8(b[1..].to_vec()).unwrap()
    }

    #[test]
    fn string_doubles() {
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (3.0, "3"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-0.1, "-0.10000000000000001"),
            (1e300, "1.0000000000000001e+300"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (123456.0, "123456"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (4503599627370496.0, "4503599627370496"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "4.9406564584124654e-324"),
        ];
        for &(v, want) in cases {
            let got = double_text(v);
            assert_eq!(got, want, "{v:e}");
            let back: f64 = got.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{got}");
        }
        let special = |v: f64| {
            let mut b = Vec::new();
            put_string_double(&mut b, v);
            b
        };
        assert_eq!(special(f64::NAN), [253]);
        assert_eq!(special(f64::INFINITY), [254]);
        assert_eq!(special(f64::NEG_INFINITY), [255]);
    }

    #[test]
    fn string_doubles_round_trip_random_bits() {
        let mut rng = XorShift(99);
        for _ in 0..20000 {
            let v = f64::from_bits(rng.next_u64());
            if !v.is_finite() {
                continue;
            }
            let text = double_text(v);
            assert!(text.len() <= 24, "{text}");
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{text}");
        }
    }

    #[test]
    fn binary_double_and_millis() {
        let mut b = Vec::new();
        put_binary_double(&mut b, 1.5);
        put_millis(&mut b, -2);
        assert_eq!(
            b,
            [0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }
}
