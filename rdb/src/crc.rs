//! CRC-64 as used by Redis for the RDB trailer and DUMP payloads.
//!
//! Parameters (reveng "CRC-64/REDIS"): polynomial `0xad93d23594c935a9`,
//! reflected in and out, init 0, xorout 0, check value for `"123456789"` is
//! `0xe9c6d914c4b8d9ca`. Redis's own `crc64.c` header claims an all-ones
//! init, but Redis always starts from 0, which is what files contain.
//!
//! The SIMD implementation in `crc-fast` is very fast on large inputs but
//! slow per call, so feed it big buffers (the [`RdbWriter`](crate::RdbWriter)
//! hashes whole 256 KiB buffers).

use crc_fast::{CrcAlgorithm, Digest};

/// Incremental Redis CRC-64.
#[derive(Clone, Copy, Debug)]
pub struct Crc64 {
    digest: Digest,
}

impl Crc64 {
    /// A fresh digest (state 0).
    pub fn new() -> Self {
        Crc64 {
            digest: Digest::new(CrcAlgorithm::Crc64Redis),
        }
    }

    /// Feeds `data` into the digest.
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// The CRC of everything fed so far (the digest stays usable).
    pub fn finish(&self) -> u64 {
        self.digest.finalize()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

/// One-shot Redis CRC-64 of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Redis, data)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tiny xorshift64* PRNG so tests need no extra dependency.
    pub(crate) struct XorShift(pub u64);

    impl XorShift {
        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        pub(crate) fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = (self.next_u64() >> 56) as u8;
            }
        }
    }

    fn oracle(data: &[u8]) -> u64 {
        crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(data)
    }

    #[test]
    fn check_value() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(oracle(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        let mut c = Crc64::new();
        c.update(b"1234");
        c.update(b"");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(crc64(b""), 0);
        assert_eq!(Crc64::default().finish(), 0);
    }

    #[test]
    fn matches_oracle_on_random_lengths_and_splits() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut data = vec![0u8; 300_000];
        rng.fill(&mut data);
        for round in 0..400 {
            // Mostly small lengths (where SIMD tails differ), some large.
            let len = if round % 10 == 0 {
                rng.below(data.len() + 1)
            } else {
                rng.below(2048)
            };
            let start = rng.below(data.len() - len + 1);
            let slice = &data[start..start + len];
            let want = oracle(slice);
            assert_eq!(crc64(slice), want, "one-shot len {len}");

            let mut c = Crc64::new();
            let mut rest = slice;
            while !rest.is_empty() {
                let n = rng.below(rest.len().min(5000)) + 1;
                c.update(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(c.finish(), want, "split len {len}");
        }
    }
}
