//! Helpers shared by the decoders' unit tests.

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
