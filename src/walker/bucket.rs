//! `BucketCheck`: a dict entry must sit in the bucket its key hashes to.
//!
//! A damaged `next` pointer or a damaged key pointer can lead a chain walk to bytes that
//! pass every structural check (another key's entry, another key's name). Redis keeps no
//! checksum, but it does keep the bucket index: `hash(key) & (size - 1)`. With the hash
//! function and the process's random seed, every entry can be checked against the bucket
//! it was found in, which catches such redirections with probability `1 - 1/size`.
//!
//! Redis 4.0 and later (and Valkey) hash sds keys with SipHash-1-2 keyed by a 16-byte
//! random seed kept in the executable's writable data (`dict_hash_function_seed`; Valkey
//! 8.1's hashtables keep the same bytes in `hash_function_seed`). The seed is taken from the
//! binary's symbol when there is one, else found by trying every aligned 16 bytes of the
//! executable's writable image against the head entries of the largest keys table.
//!
//! Redis 2.8 to 3.2 hash them with MurmurHash2 (32 bits) seeded by a 32-bit random word,
//! also in the writable data (`dict_hash_function_seed`, set from the time and pid at
//! start): found the same way, among the aligned 4-byte words, when no SipHash seed places
//! the samples. Which function a build uses is thus learnt from the core, like the seed.
//!
//! Valkey's hashtables also keep, next to each entry, the top byte of its key's hash
//! ([`fragment`]): an entry must match it as well as its bucket, which catches a damaged
//! entry pointer even within its own bucket (with probability `255/256`), and gives the seed
//! search 8 more bits of evidence per sample.

use super::sds::{read_sds, SdsFormat};
use crate::core::AddressSpace;

/// SipHash-1-2 with a 128-bit key, as Redis's `siphash()` computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipHash12 {
    k0: u64,
    k1: u64,
}

impl SipHash12 {
    /// The hasher keyed by the 16 seed bytes (two little-endian words).
    pub fn new(seed: [u8; 16]) -> Self {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&seed[..8]);
        k1.copy_from_slice(&seed[8..]);
        SipHash12 {
            k0: u64::from_le_bytes(k0),
            k1: u64::from_le_bytes(k1),
        }
    }

    /// The 64-bit hash of `data`.
    pub fn hash(&self, data: &[u8]) -> u64 {
        let mut v = [
            0x736f_6d65_7073_6575 ^ self.k0,
            0x646f_7261_6e64_6f6d ^ self.k1,
            0x6c79_6765_6e65_7261 ^ self.k0,
            0x7465_6462_7974_6573 ^ self.k1,
        ];
        let mut blocks = data.chunks_exact(8);
        for block in &mut blocks {
            let mut w = [0u8; 8];
            w.copy_from_slice(block);
            let m = u64::from_le_bytes(w);
            v[3] ^= m;
            round(&mut v);
            v[0] ^= m;
        }
        // The last word: the remaining bytes, and the length's low byte on top.
        let mut last = (data.len() as u64) << 56;
        for (i, b) in blocks.remainder().iter().enumerate() {
            last |= u64::from(*b) << (8 * i);
        }
        v[3] ^= last;
        round(&mut v);
        v[0] ^= last;
        v[2] ^= 0xff;
        round(&mut v);
        round(&mut v);
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

/// One SipRound.
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// The hash fragment a Valkey hashtable stores with each entry: the hash's top byte
/// (`highBits`), the bits the bucket index does not use.
pub fn fragment(hash: u64) -> u8 {
    (hash >> 56) as u8
}

/// A known entry of a keys table: its key's bytes, and the bucket and table size it was
/// found at.
#[derive(Debug, Clone)]
pub struct BucketSample {
    /// The key.
    pub key: Vec<u8>,
    /// The bucket index it was found in.
    pub bucket: u64,
    /// The table's size (a power of two).
    pub size: u64,
    /// The hash fragment stored with the entry ([`fragment`]), for tables that keep one.
    pub fragment: Option<u8>,
}

impl BucketSample {
    /// Bits of evidence a seed placing this sample gives: the bucket index's bits, and 8
    /// for a matching fragment.
    fn bits(&self) -> u32 {
        self.size.trailing_zeros() + if self.fragment.is_some() { 8 } else { 0 }
    }
}

/// Bits of evidence a seed must explain before it is trusted: the sum of `log2(size)` (plus
/// 8 for a stored fragment) over the samples it matches. A wrong seed matches a sample with
/// probability `1/size` (`1/(256·size)` with a fragment).
const MIN_EVIDENCE_BITS: u32 = 64;
/// Samples a wrong candidate may still fail before it is rejected, so a sample read from
/// a damaged entry does not keep the right seed from being found.
const MAX_MISSES: usize = 2;

/// MurmurHash2 (32-bit) with a 32-bit seed, as Redis 2.8 to 3.2's `dictGenHashFunction`
/// computes it: 4 bytes at a time (little-endian), the 1 to 3 left over, a final mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Murmur2 {
    seed: u32,
}

impl Murmur2 {
    const M: u32 = 0x5bd1_e995;

    /// The hasher seeded by `seed`.
    pub fn new(seed: u32) -> Self {
        Murmur2 { seed }
    }

    /// The 32-bit hash of `data`, widened.
    pub fn hash(&self, data: &[u8]) -> u64 {
        // The C code mixes the length in as an `int`: only its low 32 bits.
        let mut h = self.seed ^ data.len() as u32;
        let mut words = data.chunks_exact(4);
        for word in &mut words {
            // chunks_exact: always 4 bytes.
            let mut k = u32::from_le_bytes(word.try_into().unwrap_or([0; 4])).wrapping_mul(Self::M);
            k ^= k >> 24;
            k = k.wrapping_mul(Self::M);
            h = h.wrapping_mul(Self::M) ^ k;
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            for (i, b) in rest.iter().enumerate() {
                h ^= u32::from(*b) << (8 * i);
            }
            h = h.wrapping_mul(Self::M);
        }
        h ^= h >> 13;
        h = h.wrapping_mul(Self::M);
        h ^= h >> 15;
        u64::from(h)
    }
}

/// The hash function of a build's dicts, with its process's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyHash {
    /// SipHash-1-2 (Redis 4.0+, Valkey).
    SipHash12(SipHash12),
    /// MurmurHash2 (Redis 2.8 to 3.2).
    Murmur2(Murmur2),
}

impl KeyHash {
    fn hash(&self, data: &[u8]) -> u64 {
        match self {
            KeyHash::SipHash12(h) => h.hash(data),
            KeyHash::Murmur2(h) => h.hash(data),
        }
    }
}

/// Checks entries of sds-keyed dicts and hashtables against their buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCheck {
    hasher: KeyHash,
    sds: SdsFormat,
}

impl BucketCheck {
    /// The check with a known SipHash seed.
    pub fn new(seed: [u8; 16], sds: SdsFormat) -> Self {
        BucketCheck {
            hasher: KeyHash::SipHash12(SipHash12::new(seed)),
            sds,
        }
    }

    /// The check with a known MurmurHash2 seed (Redis 2.8 to 3.2).
    pub fn murmur2(seed: u32, sds: SdsFormat) -> Self {
        BucketCheck {
            hasher: KeyHash::Murmur2(Murmur2::new(seed)),
            sds,
        }
    }

    /// Find the seed in `image` (bytes of the executable's writable data) that places the
    /// samples in their buckets: the one 8-aligned 16-byte window explaining at least
    /// [`MIN_EVIDENCE_BITS`] of them with at most [`MAX_MISSES`] misses. Returns its offset
    /// in `image`, or `None` when no window (or more than one distinct seed) does.
    pub fn find_seed(image: &[u8], samples: &[BucketSample]) -> Option<(usize, [u8; 16])> {
        let windows = (0..image.len()).step_by(8).filter_map(|at| {
            let seed: [u8; 16] = image.get(at..at.checked_add(16)?)?.try_into().ok()?;
            Some((at, seed))
        });
        Self::unique_seed(windows, [0; 16], samples, |seed| {
            let h = SipHash12::new(seed);
            move |k: &[u8]| h.hash(k)
        })
    }

    /// Find the MurmurHash2 seed in `image` that places the samples in their buckets: the
    /// one 4-aligned word explaining them as [`BucketCheck::find_seed`] asks. Returns its
    /// offset in `image`, or `None` when no word (or more than one distinct seed) does.
    pub fn find_murmur2_seed(image: &[u8], samples: &[BucketSample]) -> Option<(usize, u32)> {
        let words = image.chunks_exact(4).enumerate().filter_map(|(i, w)| {
            let seed = u32::from_le_bytes(w.try_into().ok()?);
            Some((i * 4, seed))
        });
        Self::unique_seed(words, 0, samples, |seed| {
            let h = Murmur2::new(seed);
            move |k: &[u8]| h.hash(k)
        })
    }

    /// The one candidate seed (other than `blank`, which is unset memory) whose hash
    /// `hasher(seed)` explains the samples; `None` when none does, when the samples hold
    /// too little evidence, or when two distinct seeds do (ambiguous: trust neither).
    fn unique_seed<S: Copy + PartialEq, H: Fn(&[u8]) -> u64>(
        candidates: impl Iterator<Item = (usize, S)>,
        blank: S,
        samples: &[BucketSample],
        hasher: impl Fn(S) -> H,
    ) -> Option<(usize, S)> {
        let total: u32 = samples.iter().map(BucketSample::bits).sum();
        if total < MIN_EVIDENCE_BITS || samples.iter().any(|s| !s.size.is_power_of_two()) {
            return None;
        }
        let mut found: Option<(usize, S)> = None;
        for (at, seed) in candidates {
            if seed != blank && Self::explains(hasher(seed), samples) {
                match found {
                    Some((_, s)) if s != seed => return None,
                    Some(_) => {}
                    None => found = Some((at, seed)),
                }
            }
        }
        found
    }

    fn explains(hash_of: impl Fn(&[u8]) -> u64, samples: &[BucketSample]) -> bool {
        let mut misses = 0;
        let mut bits = 0;
        for s in samples {
            let hash = hash_of(&s.key);
            if hash & (s.size - 1) == s.bucket && s.fragment.is_none_or(|f| f == fragment(hash)) {
                bits += s.bits();
            } else {
                misses += 1;
                if misses > MAX_MISSES {
                    return false;
                }
            }
        }
        bits >= MIN_EVIDENCE_BITS
    }

    /// The hash of the sds key at `key_ptr`, or `None` when the key cannot be read (the
    /// caller's own decoding then reports it).
    pub fn hash_of(&self, space: &AddressSpace<'_>, key_ptr: u64) -> Option<u64> {
        read_sds(space, self.sds, key_ptr)
            .ok()
            .map(|k| self.hasher.hash(&k))
    }

    /// The sds format of the keys it hashes.
    pub fn sds(&self) -> SdsFormat {
        self.sds
    }

    /// The hash of `key`'s bytes.
    pub fn hash_bytes(&self, key: &[u8]) -> u64 {
        self.hasher.hash(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference SipHash paper's key 00 01 .. 0f.
    fn paper_key() -> [u8; 16] {
        let mut k = [0u8; 16];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        k
    }

    #[test]
    fn siphash12_is_deterministic_and_keyed() {
        let a = SipHash12::new(paper_key());
        let b = SipHash12::new([7; 16]);
        assert_eq!(a.hash(b"key:1"), a.hash(b"key:1"));
        assert_ne!(a.hash(b"key:1"), a.hash(b"key:2"));
        assert_ne!(a.hash(b"key:1"), b.hash(b"key:1"));
        // Lengths that differ only in the final word's length byte hash apart.
        assert_ne!(a.hash(b""), a.hash(b"\0"));
        assert_ne!(a.hash(&[0; 8]), a.hash(&[0; 9]));
    }

    #[test]
    fn the_seed_is_found_among_other_bytes() {
        let seed = [0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xa5];
        let h = SipHash12::new(seed);
        let samples: Vec<BucketSample> = (0..20)
            .map(|i| {
                let key = format!("key:{i}").into_bytes();
                let size = 1024;
                BucketSample {
                    bucket: h.hash(&key) & (size - 1),
                    key,
                    size,
                    fragment: None,
                }
            })
            .collect();
        let mut image = vec![0xeeu8; 4096];
        image[1000..1016].copy_from_slice(&seed);
        assert_eq!(BucketCheck::find_seed(&image, &samples), Some((1000, seed)));
        // One damaged sample does not hide it.
        let mut damaged = samples.clone();
        damaged[3].bucket ^= 1;
        assert_eq!(BucketCheck::find_seed(&image, &damaged), Some((1000, seed)));
        // Too little evidence: no answer rather than a guess.
        assert_eq!(BucketCheck::find_seed(&image, &samples[..5]), None);
        // Not there at all.
        assert_eq!(BucketCheck::find_seed(&[0xee; 4096], &samples), None);
    }

    #[test]
    fn fragments_make_small_tables_enough_evidence() {
        let seed = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6];
        let h = SipHash12::new(seed);
        // Ten entries of a 2-bucket hashtable: 10 bits by bucket alone, 90 with fragments.
        let samples: Vec<BucketSample> = (0..10)
            .map(|i| {
                let key = format!("member:{i}").into_bytes();
                let hash = h.hash(&key);
                BucketSample {
                    bucket: hash & 1,
                    key,
                    size: 2,
                    fragment: Some(fragment(hash)),
                }
            })
            .collect();
        let mut image = vec![0x11u8; 2048];
        image[512..528].copy_from_slice(&seed);
        assert_eq!(BucketCheck::find_seed(&image, &samples), Some((512, seed)));
        let bare: Vec<BucketSample> = samples
            .iter()
            .cloned()
            .map(|s| BucketSample {
                fragment: None,
                ..s
            })
            .collect();
        assert_eq!(
            BucketCheck::find_seed(&image, &bare),
            None,
            "10 bits are not enough"
        );
        // A wrong fragment is a miss like a wrong bucket.
        let mut wrong = samples.clone();
        for s in wrong.iter_mut().take(3) {
            s.fragment = s.fragment.map(|f| f ^ 0x80);
        }
        assert_eq!(BucketCheck::find_seed(&image, &wrong), None);
        assert_eq!(fragment(0xab00_0000_0000_00ff), 0xab);
    }

    /// Austin Appleby's MurmurHash2 as Redis 2.8 computes it (`dictGenHashFunction`), on
    /// values worked by hand from its definition: every tail length, the length mixed in.
    #[test]
    fn murmur2_matches_its_definition() {
        // Seed 0, empty input: h = 0 ^ 0, then the final mix of 0 is 0.
        assert_eq!(Murmur2::new(0).hash(b""), 0);
        // A reference written out step by step, independent of the loop above.
        fn reference(seed: u32, data: &[u8]) -> u32 {
            let m = 0x5bd1_e995u32;
            let mut h = seed ^ (data.len() as u32);
            let mut i = 0;
            while data.len() - i >= 4 {
                let mut k = u32::from(data[i])
                    | u32::from(data[i + 1]) << 8
                    | u32::from(data[i + 2]) << 16
                    | u32::from(data[i + 3]) << 24;
                k = k.wrapping_mul(m);
                k ^= k >> 24;
                k = k.wrapping_mul(m);
                h = h.wrapping_mul(m);
                h ^= k;
                i += 4;
            }
            match data.len() - i {
                3 => {
                    h ^= u32::from(data[i + 2]) << 16;
                    h ^= u32::from(data[i + 1]) << 8;
                    h ^= u32::from(data[i]);
                    h = h.wrapping_mul(m);
                }
                2 => {
                    h ^= u32::from(data[i + 1]) << 8;
                    h ^= u32::from(data[i]);
                    h = h.wrapping_mul(m);
                }
                1 => {
                    h ^= u32::from(data[i]);
                    h = h.wrapping_mul(m);
                }
                _ => {}
            }
            h ^= h >> 13;
            h = h.wrapping_mul(m);
            h ^= h >> 15;
            h
        }
        for seed in [5381u32, 0xdead_beef, 1] {
            for len in 0..=13 {
                let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
                assert_eq!(
                    Murmur2::new(seed).hash(&data),
                    u64::from(reference(seed, &data)),
                    "seed {seed:#x}, {len} bytes"
                );
            }
        }
        // Keyed: another seed, another hash.
        assert_ne!(
            Murmur2::new(1).hash(b"key:1"),
            Murmur2::new(2).hash(b"key:1")
        );
    }

    #[test]
    fn the_murmur2_seed_is_found_among_other_words() {
        let seed = 0x1234_5678u32;
        let h = Murmur2::new(seed);
        let samples: Vec<BucketSample> = (0..20)
            .map(|i| {
                let key = format!("key:{i}").into_bytes();
                let size = 1024;
                BucketSample {
                    bucket: h.hash(&key) & (size - 1),
                    key,
                    size,
                    fragment: None,
                }
            })
            .collect();
        let mut image = vec![0xeeu8; 4096];
        image[1004..1008].copy_from_slice(&seed.to_le_bytes());
        assert_eq!(
            BucketCheck::find_murmur2_seed(&image, &samples),
            Some((1004, seed))
        );
        let mut damaged = samples.clone();
        damaged[3].bucket ^= 1;
        assert_eq!(
            BucketCheck::find_murmur2_seed(&image, &damaged),
            Some((1004, seed))
        );
        assert_eq!(BucketCheck::find_murmur2_seed(&image, &samples[..5]), None);
        assert_eq!(
            BucketCheck::find_murmur2_seed(&[0xee; 4096], &samples),
            None
        );
        // The SipHash search does not take it for a SipHash seed.
        assert_eq!(BucketCheck::find_seed(&image, &samples), None);
    }
}
