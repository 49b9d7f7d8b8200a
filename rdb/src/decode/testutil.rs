//! Helpers shared by the decoders' and the reader's unit tests: a deterministic PRNG,
//! byte mutations and hand encoders of listpacks and ziplists.

use super::Element;

/// Small deterministic xorshift PRNG.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Random bytes of random length in `0..max_len`.
    pub fn blob(&mut self, max_len: usize) -> Vec<u8> {
        let n = self.below(max_len);
        self.bytes(n)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Calls `f` with every single-byte mutation of `blob`: each byte in turn flipped
/// (`^ 0xFF`), set to 0xFF, set to 0x00, low bit flipped, high bit flipped, +1, -1.
pub fn for_each_mutation(blob: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut buf = blob.to_vec();
    for i in 0..buf.len() {
        let orig = buf[i];
        for m in [
            orig ^ 0xFF,
            0xFF,
            0x00,
            orig ^ 0x01,
            orig ^ 0x80,
            orig.wrapping_add(1),
            orig.wrapping_sub(1),
        ] {
            if m == orig {
                continue;
            }
            buf[i] = m;
            f(i, &buf);
        }
        buf[i] = orig;
    }
}

/// A listpack of `items` as given (strings stay strings, integers take the 7-bit, 13-bit or
/// 64-bit form): the reader's tests' hand encoder, independent of `ListpackBuilder`.
pub fn make_listpack(items: &[Element<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for it in items {
        let start = body.len();
        match *it {
            Element::Int(v) if (0..=127).contains(&v) => body.push(v as u8),
            Element::Int(v) if (-4096..4096).contains(&v) => {
                let raw = (v as u64) & 0x1FFF;
                body.push(0xC0 | (raw >> 8) as u8);
                body.push(raw as u8);
            }
            Element::Int(v) => {
                body.push(0xF4);
                body.extend_from_slice(&v.to_le_bytes());
            }
            Element::Bytes(s) if s.len() < 64 => {
                body.push(0x80 | s.len() as u8);
                body.extend_from_slice(s);
            }
            Element::Bytes(s) if s.len() < 4096 => {
                body.push(0xE0 | (s.len() >> 8) as u8);
                body.push(s.len() as u8);
                body.extend_from_slice(s);
            }
            Element::Bytes(s) => {
                body.push(0xF0);
                body.extend_from_slice(&(s.len() as u32).to_le_bytes());
                body.extend_from_slice(s);
            }
        }
        let len = body.len() - start;
        let size = match len {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2_097_150 => 3,
            2_097_151..=268_435_454 => 4,
            _ => 5,
        };
        for i in (0..size).rev() {
            let mut byte = ((len >> (7 * i)) & 0x7F) as u8;
            if i != size - 1 {
                byte |= 0x80;
            }
            body.push(byte);
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&((body.len() + 7) as u32).to_le_bytes());
    out.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(0xFF);
    out
}

/// A ziplist of `items` as given (strings stay strings): a hand encoder for tests.
pub fn make_ziplist(items: &[Element<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut tail = 10;
    for it in items {
        let start = body.len();
        tail = 10 + start;
        if prev < 254 {
            body.push(prev as u8);
        } else {
            body.push(254);
            body.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        match *it {
            Element::Int(v) if (0..=12).contains(&v) => body.push(0xF1 + v as u8),
            Element::Int(v) if i8::try_from(v).is_ok() => {
                body.push(0xFE);
                body.push(v as u8);
            }
            Element::Int(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                body.push(0xF0);
                body.extend_from_slice(&v.to_le_bytes()[..3]);
            }
            Element::Int(v) => {
                body.push(0xE0);
                body.extend_from_slice(&v.to_le_bytes());
            }
            Element::Bytes(s) if s.len() < 64 => {
                body.push(s.len() as u8);
                body.extend_from_slice(s);
            }
            Element::Bytes(s) if s.len() < 16384 => {
                body.push(0x40 | (s.len() >> 8) as u8);
                body.push(s.len() as u8);
                body.extend_from_slice(s);
            }
            Element::Bytes(s) => {
                body.push(0x80);
                body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                body.extend_from_slice(s);
            }
        }
        prev = body.len() - start;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&((body.len() + 11) as u32).to_le_bytes());
    out.extend_from_slice(&(tail as u32).to_le_bytes());
    out.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(0xFF);
    out
}

/// Elements of every integer encoding boundary and of every string length class.
pub fn sample_items(big: &[u8]) -> Vec<Element<'_>> {
    vec![
        Element::Int(0),
        Element::Int(12),
        Element::Int(-1),
        Element::Int(127),
        Element::Int(-4096),
        Element::Int(4095),
        Element::Int(1 << 20),
        Element::Int(-(1 << 23)),
        Element::Int(i64::MIN),
        Element::Int(i64::MAX),
        Element::Bytes(b""),
        Element::Bytes(b"hello"),
        Element::Bytes(&big[..100]),
        Element::Bytes(&big[..5000]),
        Element::Bytes(big),
    ]
}
