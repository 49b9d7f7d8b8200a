//! The damage: a fixed-seed generator, the undamaged core read once, and the four kinds of
//! damage made to copies of it (cut, zeroed pages, flipped bytes, perturbed pointers).

use super::*;

/// splitmix64: a fixed-seed generator, so a failing run can be named by its seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One PT_LOAD segment with contents.
#[derive(Debug, Clone, Copy)]
pub(super) struct Load {
    pub(super) vaddr: u64,
    pub(super) offset: usize,
    pub(super) filesz: usize,
    pub(super) writable: bool,
}

/// The undamaged core and what the damage is aimed at.
pub(super) struct CoreImage {
    pub(super) bytes: Vec<u8>,
    /// The same core laid out as the kernel writes one, notes before the memory: gcore
    /// writes its notes last, so any cut of its file loses the executable's load address.
    pub(super) notes_first: Vec<u8>,
    /// Where the first segment's contents start in `notes_first` (cuts land after it).
    pub(super) contents_start: usize,
    /// File offsets of the non-zero pages of writable segments (the heap, mostly).
    pub(super) live_pages: Vec<usize>,
    /// File offsets of 8-byte words in writable segments that hold a pointer into a
    /// writable segment.
    pub(super) pointer_slots: Vec<usize>,
}

impl CoreImage {
    pub(super) fn read(path: &Path) -> CoreImage {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(&bytes[..6], b"\x7fELF\x02\x01", "not a 64-bit LE ELF file");
        let (phoff, phentsize, phnum) = phdr_table(&bytes);
        let (phoff, phentsize, phnum) = (phoff as usize, phentsize as usize, phnum as usize);
        let mut loads = Vec::new();
        for i in 0..phnum {
            let ph = phoff + i * phentsize;
            let filesz = u64_at(&bytes, ph + 0x20) as usize;
            if u32_at(&bytes, ph) == 1 && filesz > 0 {
                loads.push(Load {
                    vaddr: u64_at(&bytes, ph + 0x10),
                    offset: u64_at(&bytes, ph + 8) as usize,
                    filesz,
                    writable: u32_at(&bytes, ph + 4) & 2 != 0,
                });
            }
        }
        assert!(!loads.is_empty(), "the core has no PT_LOAD contents");
        let (notes_first, contents_start) = notes_first(&bytes, phoff, phentsize, phnum);
        let writable: Vec<Load> = loads.iter().copied().filter(|l| l.writable).collect();
        let mut ranges: Vec<(u64, u64)> = writable
            .iter()
            .map(|l| (l.vaddr, l.vaddr + l.filesz as u64))
            .collect();
        ranges.sort_unstable();
        let points_into_writable = |v: u64| {
            let i = ranges.partition_point(|r| r.0 <= v);
            i > 0 && v < ranges[i - 1].1
        };
        let mut live_pages = Vec::new();
        let mut pointer_slots = Vec::new();
        for l in &writable {
            let end = (l.offset + l.filesz).min(bytes.len());
            let mut page = l.offset;
            while page < end {
                let chunk = &bytes[page..(page + PAGE).min(end)];
                if chunk.iter().any(|b| *b != 0) {
                    live_pages.push(page);
                    for (i, w) in chunk.chunks_exact(8).enumerate() {
                        let v = u64::from_le_bytes(w.try_into().unwrap());
                        if v != 0 && v % 8 == 0 && points_into_writable(v) {
                            pointer_slots.push(page + i * 8);
                        }
                    }
                }
                page += PAGE;
            }
        }
        CoreImage {
            bytes,
            notes_first,
            contents_start,
            live_pages,
            pointer_slots,
        }
    }

    /// A damaged copy and a description of the damage.
    pub(super) fn damaged(&self, kind: Damage, rng: &mut Rng) -> (Vec<u8>, String) {
        let mut b = self.bytes.clone();
        let what = match kind {
            Damage::Truncate => {
                let span = self.notes_first.len() - self.contents_start;
                let len = self.contents_start + rng.below(span);
                b = self.notes_first[..len].to_vec();
                format!(
                    "kernel-layout core cut at {len} of {} bytes",
                    self.notes_first.len()
                )
            }
            Damage::ZeroPages => {
                let mut pages = Vec::new();
                for _ in 0..ZEROED_PAGES {
                    let p = self.live_pages[rng.below(self.live_pages.len())];
                    let end = (p + PAGE).min(b.len());
                    b[p..end].fill(0);
                    pages.push(p);
                }
                pages.sort_unstable();
                format!("zeroed the pages at file offsets {pages:x?}")
            }
            Damage::FlipBytes => {
                for _ in 0..FLIPPED_BYTES {
                    let p = self.live_pages[rng.below(self.live_pages.len())];
                    let at = (p + rng.below(PAGE)).min(b.len() - 1);
                    b[at] ^= 1 << rng.below(8);
                }
                format!("flipped one bit in {FLIPPED_BYTES} bytes of live pages")
            }
            Damage::PerturbPointers => {
                let mut how = BTreeMap::new();
                for _ in 0..PERTURBED_POINTERS {
                    let at = self.pointer_slots[rng.below(self.pointer_slots.len())];
                    let old = u64_at(&b, at);
                    let (new, name) = match rng.below(4) {
                        0 => (
                            old.wrapping_add(8 * (1 + rng.below(32) as u64)),
                            "shifted up",
                        ),
                        1 => (
                            old.wrapping_sub(8 * (1 + rng.below(32) as u64)),
                            "shifted down",
                        ),
                        2 => {
                            let other = self.pointer_slots[rng.below(self.pointer_slots.len())];
                            (u64_at(&self.bytes, other), "swapped for another pointer")
                        }
                        _ => (old ^ (1 << (3 + rng.below(40))), "one bit flipped"),
                    };
                    b[at..at + 8].copy_from_slice(&new.to_le_bytes());
                    *how.entry(name).or_insert(0u32) += 1;
                }
                format!("perturbed {PERTURBED_POINTERS} heap pointers: {how:?}")
            }
        };
        (b, what)
    }
}

/// `bytes` rewritten with its PT_NOTE contents right after the program headers and the
/// memory after them (section headers dropped), and where the memory starts.
pub(super) fn notes_first(
    bytes: &[u8],
    phoff: usize,
    phentsize: usize,
    phnum: usize,
) -> (Vec<u8>, usize) {
    let mut out = bytes[..phoff + phentsize * phnum].to_vec();
    out[0x28..0x30].fill(0); // e_shoff
    out[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    let ph = |i: usize| phoff + i * phentsize;
    for i in 0..phnum {
        if u32_at(bytes, ph(i)) == 4 {
            let (off, size) = (
                u64_at(bytes, ph(i) + 8) as usize,
                u64_at(bytes, ph(i) + 0x20) as usize,
            );
            let at = out.len() as u64;
            out.extend_from_slice(&bytes[off..off + size]);
            out[ph(i) + 8..ph(i) + 16].copy_from_slice(&at.to_le_bytes());
        }
    }
    let start = out.len().div_ceil(PAGE) * PAGE;
    out.resize(start, 0);
    for i in 0..phnum {
        let size = u64_at(bytes, ph(i) + 0x20) as usize;
        if u32_at(bytes, ph(i)) == 1 && size > 0 {
            let off = u64_at(bytes, ph(i) + 8) as usize;
            let at = out.len() as u64;
            out.extend_from_slice(&bytes[off..(off + size).min(bytes.len())]);
            out[ph(i) + 8..ph(i) + 16].copy_from_slice(&at.to_le_bytes());
        }
    }
    (out, start)
}
