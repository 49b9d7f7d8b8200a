//! A small LZF compressor with a bounded output.
//!
//! Why not the `lzf` crate: `lzf::compress` allocates and zeroes a 512 KiB
//! hash table on every call, which made compressing a 36-byte string cost
//! about 10 µs (150× the cost of writing it raw). RDB files hold millions of
//! short strings, so this compressor sizes its table to the input instead.
//! It also stops as soon as the output would exceed the caller's limit,
//! which is exactly Redis's "must save 4 bytes" rule.
//!
//! Format (what liblzf's decoder, used by every Redis, accepts): a control
//! byte `c`; `c < 32` means `c + 1` literal bytes follow; otherwise
//! `len = c >> 5` (7 means "add the next byte"), then one more byte, and
//! `len + 2` bytes are copied from `((c & 31) << 8 | byte) + 1` bytes back
//! (the copy may overlap its own output).

/// Longest literal run one control byte can announce.
const MAX_LITERAL: usize = 32;
/// Farthest back a match may point.
const MAX_OFFSET: usize = 1 << 13;
/// Shortest match worth a back reference (it costs 2–3 bytes).
const MIN_MATCH: usize = 3;
/// Longest match one back reference can copy: (7 + 255) + 2.
const MAX_MATCH: usize = 7 + 255 + 2;
const MIN_TABLE_BITS: u32 = 6;
const MAX_TABLE_BITS: u32 = 14;
/// Slots of the hash table: enough for the largest table of [`MAX_TABLE_BITS`].
const TABLE_SLOTS: usize = 1 << MAX_TABLE_BITS;

/// The hash table of one thread's compressions, kept from call to call so that a short
/// string costs no allocation: a slot holds `position + 1` of the last triple seen with
/// that hash, 0 for none. Its size is fixed, so that a hash masked to it needs no bounds
/// check.
type Table = Box<[u32; TABLE_SLOTS]>;

thread_local! {
    static TABLE: std::cell::Cell<Option<Table>> = const { std::cell::Cell::new(None) };
    static OUT: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Calls `f` with `input` compressed (see [`lzf_compress`]), or `None` when that would
/// take more than `max_out` bytes; the output buffer is the thread's own, reused.
pub fn with_compressed<R>(input: &[u8], max_out: usize, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    OUT.with(|cell| {
        let mut out = cell.take();
        let fits = lzf_compress(input, max_out, &mut out);
        let r = f(fits.then_some(out.as_slice()));
        cell.set(out);
        r
    })
}

/// Compresses `input` into `out` (cleared first). Returns false, leaving
/// `out` unspecified, if the result would be longer than `max_out` bytes or
/// `input` is empty.
pub fn lzf_compress(input: &[u8], max_out: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    // Positions are stored as u32; strings that big are not worth it anyway.
    if input.is_empty() || input.len() >= u32::MAX as usize {
        return false;
    }
    TABLE.with(|cell| {
        let mut table = cell.take().unwrap_or_else(|| Box::new([0; TABLE_SLOTS]));
        let fits = compress_with(input, max_out, out, &mut table);
        cell.set(Some(table));
        fits
    })
}

/// The three bytes at `p` as one little-endian word (the hash's input), `None` past the
/// end.
fn triple(input: &[u8], p: usize) -> Option<u32> {
    let [a, b, c] = <[u8; MIN_MATCH]>::try_from(input.get(p..p + MIN_MATCH)?).ok()?;
    Some(u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16)
}

/// Greedy LZF: at each position, the last earlier position with the same hash of its next
/// three bytes is the only candidate; a match of 3 bytes or more is taken whole, and every
/// position inside it is indexed. The three bytes in hand roll along byte by byte.
fn compress_with(input: &[u8], max_out: usize, out: &mut Vec<u8>, table: &mut Table) -> bool {
    // Roughly one slot per input byte, capped: enough for a good ratio. The bits also
    // pick the hash. Only the slots this call uses are emptied: about two per byte.
    let bits = usize::BITS - input.len().leading_zeros();
    let bits = bits.clamp(MIN_TABLE_BITS, MAX_TABLE_BITS);
    for slot in table.iter_mut().take(1 << bits) {
        *slot = 0;
    }
    // Masking changes nothing (the hash has `bits` bits) but proves the index in range.
    let hash = |v: u32| (v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize & (TABLE_SLOTS - 1);

    let n = input.len();
    let mut lit_start = 0;
    let mut i = 0;
    let mut next = triple(input, 0);
    while let Some(v) = next {
        // Positions are below u32::MAX (see `lzf_compress`).
        let old = table
            .get_mut(hash(v))
            .map_or(0, |slot| std::mem::replace(slot, i as u32 + 1));
        let candidate = (old as usize).checked_sub(1);
        // Every stored position is before `i`, so the offset is at least 1. A candidate
        // whose first three bytes differ (another triple of the same hash) is no match.
        let match_len = match candidate {
            Some(c) if i - c <= MAX_OFFSET && triple(input, c) == Some(v) => {
                common_prefix(input, c, i, MAX_MATCH.min(n - i))
            }
            _ => 0,
        };
        if match_len < MIN_MATCH {
            i += 1;
            // Pending literals alone already overflow: give up early on
            // incompressible data.
            if out.len() + (i - lit_start) > max_out {
                return false;
            }
            next = input.get(i + 2).map(|&c| v >> 8 | u32::from(c) << 16);
            continue;
        }
        let offset = candidate.map_or(0, |c| i - c);
        emit_literals(out, input.get(lit_start..i).unwrap_or_default());
        emit_match(out, offset, match_len);
        if out.len() > max_out {
            return false;
        }
        // Index the positions inside the match so later data can refer to them: each
        // one's triple ends one byte further on.
        let mut w = v;
        let ends = input
            .get(i + 3..(i + match_len + 2).min(n))
            .unwrap_or_default();
        for (p, &c) in (i + 1..).zip(ends) {
            w = w >> 8 | u32::from(c) << 16;
            if let Some(slot) = table.get_mut(hash(w)) {
                *slot = p as u32 + 1;
            }
        }
        i += match_len;
        lit_start = i;
        next = triple(input, i);
    }
    emit_literals(out, input.get(lit_start..).unwrap_or_default());
    out.len() <= max_out
}

/// How many bytes from `a` and `b` agree, up to `limit` (`a < b`).
fn common_prefix(input: &[u8], a: usize, b: usize, limit: usize) -> usize {
    let (Some(x), Some(y)) = (input.get(a..), input.get(b..)) else {
        return 0;
    };
    let limit = limit.min(x.len()).min(y.len());
    // Eight bytes at a time: the first differing byte is the lowest set byte of the XOR.
    let mut n = 0;
    while n + 8 <= limit {
        let (Some(p), Some(q)) = (x.get(n..n + 8), y.get(n..n + 8)) else {
            break;
        };
        let (Ok(p), Ok(q)) = (<[u8; 8]>::try_from(p), <[u8; 8]>::try_from(q)) else {
            break;
        };
        let diff = u64::from_le_bytes(p) ^ u64::from_le_bytes(q);
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + x
        .get(n..limit)
        .unwrap_or_default()
        .iter()
        .zip(y.get(n..limit).unwrap_or_default())
        .take_while(|(p, q)| p == q)
        .count()
}

fn emit_literals(out: &mut Vec<u8>, mut lits: &[u8]) {
    while !lits.is_empty() {
        let (run, rest) = lits.split_at(lits.len().min(MAX_LITERAL));
        out.push((run.len() - 1) as u8);
        out.extend_from_slice(run);
        lits = rest;
    }
}

/// `offset` in 1..=8192, `len` in 3..=264.
fn emit_match(out: &mut Vec<u8>, offset: usize, len: usize) {
    let o = offset - 1;
    let l = len - 2;
    let hi = (o >> 8) as u8;
    if l < 7 {
        out.push(((l as u8) << 5) | hi);
    } else {
        out.push((7 << 5) | hi);
        out.push((l - 7) as u8);
    }
    out.push(o as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc::tests::XorShift;

    fn round_trip(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if !lzf_compress(input, input.len() + input.len() / 32 + 2, &mut out) {
            return None;
        }
        assert_eq!(
            lzf::decompress(&out, input.len()).unwrap(),
            input,
            "len {}",
            input.len()
        );
        Some(out)
    }

    /// The compressor's algorithm written plainly, as it first was: a table of its own,
    /// each position's three bytes read and hashed anew, every candidate compared.
    fn reference(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
        let bits =
            (usize::BITS - input.len().leading_zeros()).clamp(MIN_TABLE_BITS, MAX_TABLE_BITS);
        let hash = |p: usize| {
            let t = input.get(p..p + 3)?;
            let v = u32::from(t[0]) | u32::from(t[1]) << 8 | u32::from(t[2]) << 16;
            Some((v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize)
        };
        let mut table = vec![None; 1 << bits];
        let (mut out, mut lit_start, mut i) = (Vec::new(), 0, 0);
        while let Some(h) = hash(i) {
            let candidate = table[h].replace(i);
            let len = match candidate {
                Some(c) if i - c <= MAX_OFFSET => {
                    common_prefix(input, c, i, MAX_MATCH.min(input.len() - i))
                }
                _ => 0,
            };
            if len < MIN_MATCH {
                i += 1;
                if out.len() + (i - lit_start) > max_out {
                    return None;
                }
                continue;
            }
            emit_literals(&mut out, &input[lit_start..i]);
            emit_match(&mut out, i - candidate?, len);
            if out.len() > max_out {
                return None;
            }
            for p in i + 1..i + len {
                if let Some(h) = hash(p) {
                    table[h] = Some(p);
                }
            }
            i += len;
            lit_start = i;
        }
        emit_literals(&mut out, &input[lit_start..]);
        (out.len() <= max_out).then_some(out)
    }

    /// The compressor's output is exactly the plain algorithm's (so dumps stay
    /// byte-identical), call after call on one thread's table, for short and long inputs,
    /// repetitive ones, list-like ones and noise, with limits that fit and ones that do not.
    #[test]
    fn compresses_as_the_plain_algorithm() {
        let mut rng = XorShift(0x5eed_1234);
        let mut inputs: Vec<Vec<u8>> = (0..400)
            .map(|_| {
                let len = 1 + rng.below(3000);
                let alphabet = 1 + rng.below(8) as u8;
                (0..len)
                    .map(|_| b'a' + (rng.below(alphabet as usize) as u8))
                    .collect()
            })
            .collect();
        for s in 0..40u64 {
            let mut lp = Vec::new();
            for k in 0..(1 + s * 37) {
                let e = format!("element:{s}:{k}");
                lp.push(0x80 | e.len() as u8);
                lp.extend_from_slice(e.as_bytes());
                lp.push(e.len() as u8 + 1);
            }
            inputs.push(lp);
        }
        for len in [70_000, 200_000] {
            let mut noise = vec![0u8; len];
            rng.fill(&mut noise);
            inputs.push(noise.clone());
            inputs.push(noise.iter().map(|b| b % 3).collect());
        }
        for input in &inputs {
            let fits = input.len() + input.len() / 32 + 2;
            for max_out in [fits, input.len() / 2, input.len() / 8] {
                let mut out = Vec::new();
                let got = lzf_compress(input, max_out, &mut out).then_some(out);
                assert_eq!(
                    got,
                    reference(input, max_out),
                    "len {} max {max_out}",
                    input.len()
                );
            }
        }
    }

    #[test]
    fn common_prefix_agrees_with_a_byte_by_byte_count() {
        let mut rng = XorShift(0xfeed_beef);
        for _ in 0..2000 {
            let len = 1 + rng.below(80);
            let input: Vec<u8> = (0..len).map(|_| rng.below(2) as u8).collect();
            let a = rng.below(len);
            let b = a + rng.below(len - a);
            let limit = rng.below(90);
            let slow = input[a..]
                .iter()
                .zip(&input[b..])
                .take(limit)
                .take_while(|(p, q)| p == q)
                .count();
            assert_eq!(common_prefix(&input, a, b, limit), slow, "{a} {b} {limit}");
        }
    }

    #[test]
    fn known_shapes() {
        assert!(!lzf_compress(b"", 10, &mut Vec::new()));
        assert_eq!(round_trip(b"a").unwrap(), [0, b'a']);
        assert_eq!(round_trip(b"abc").unwrap(), [2, b'a', b'b', b'c']);
        // A run: one literal, then an overlapping back reference.
        let run = [b'z'; 200];
        let c = round_trip(&run).unwrap();
        assert!(c.len() <= 6, "{c:?}");
        // Longer than one back reference can cover.
        let long = vec![7u8; 100_000];
        let c = round_trip(&long).unwrap();
        assert!(c.len() < 1400, "{}", c.len());
        // Repeats farther away than the 8 KiB window are not matched.
        let mut rng = XorShift(1);
        let mut far = vec![0u8; 9000];
        rng.fill(&mut far);
        let block: Vec<u8> = far[..100].to_vec();
        far[8500..8600].copy_from_slice(&block);
        round_trip(&far).unwrap();
    }

    #[test]
    fn respects_limit() {
        let s: Vec<u8> = b"0123456789".iter().copied().cycle().take(500).collect();
        let mut out = Vec::new();
        assert!(lzf_compress(&s, 500, &mut out));
        let exact = out.len();
        assert!(lzf_compress(&s, exact, &mut out));
        assert_eq!(out.len(), exact);
        assert!(!lzf_compress(&s, exact - 1, &mut out));
        let mut noise = vec![0u8; 300];
        XorShift(5).fill(&mut noise);
        assert!(!lzf_compress(&noise, 296, &mut out));
    }

    #[test]
    fn random_round_trips() {
        let mut rng = XorShift(11);
        for round in 0..3000 {
            let len = if round % 100 == 0 {
                rng.below(200_000)
            } else {
                rng.below(700)
            };
            // Small alphabets and copied blocks give plenty of matches.
            let alphabet = 1 + rng.below(256) as u64;
            let mut s: Vec<u8> = (0..len)
                .map(|_| (rng.next_u64() % alphabet) as u8)
                .collect();
            if len > 20 {
                for _ in 0..rng.below(5) {
                    let a = rng.below(len - 10);
                    let b = rng.below(len - 10);
                    let k = rng.below((len - a.max(b)).min(300));
                    s.copy_within(a..a + k, b);
                }
            }
            round_trip(&s);
        }
    }
}
