//! `DictWalker`: every entry of a Redis `dict`, both tables while rehashing.

use super::fault::Fault;
use super::guard::ChainGuard;
use crate::core::AddressSpace;
use crate::profile::Layout;

/// Largest table exponent accepted (2^40 buckets would be 8 TiB of pointers).
const MAX_SIZE_EXP: i64 = 40;
/// Chain faults kept verbatim per table; the rest are only counted.
const MAX_KEPT_FAULTS: usize = 100;

/// One of the two hash tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Table {
    /// Bucket array address (0 when the table is not allocated).
    pub buckets: u64,
    /// Number of buckets.
    pub size: u64,
    /// Entries the dict says it holds.
    pub used: u64,
}

/// A dict header, checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DictHeader {
    /// `ht_table[0]` and `[1]`.
    pub tables: [Table; 2],
    /// `rehashidx` (−1 when not rehashing).
    pub rehashidx: i64,
}

impl DictHeader {
    /// Entries in both tables, by the dict's own counters.
    pub fn used(&self) -> u64 {
        self.tables[0].used.saturating_add(self.tables[1].used)
    }

    /// True while entries are being moved from table 0 to table 1.
    pub fn rehashing(&self) -> bool {
        self.rehashidx >= 0
    }
}

/// What went wrong inside a table walk that did not stop it.
#[derive(Debug, Default)]
pub struct WalkFaults {
    /// The first faults, with the bucket they were found in.
    pub faults: Vec<(u64, Fault)>,
    /// Total number of faults (including those not kept).
    pub count: u64,
}

impl WalkFaults {
    fn push(&mut self, bucket: u64, f: Fault) {
        self.count += 1;
        if self.faults.len() < MAX_KEPT_FAULTS {
            self.faults.push((bucket, f));
        }
    }

    /// The first fault, as an error for callers that lose the whole value on any fault.
    pub fn into_result(mut self) -> Result<(), Fault> {
        if self.faults.is_empty() {
            Ok(())
        } else {
            Err(self.faults.swap_remove(0).1)
        }
    }
}

/// Reads dicts with the layout of one Redis build.
#[derive(Clone, Copy)]
pub struct DictWalker<'s, 'a> {
    space: &'s AddressSpace<'a>,
    layout: &'s Layout,
}

impl<'s, 'a> DictWalker<'s, 'a> {
    /// A walker over `space` with `layout`.
    pub fn new(space: &'s AddressSpace<'a>, layout: &'s Layout) -> Self {
        DictWalker { space, layout }
    }

    /// Read and check the dict header at `addr`.
    pub fn header(&self, addr: u64) -> Result<DictHeader, Fault> {
        let d = &self.layout.dict;
        let bytes = self.space.read(addr, d.size as usize)?;
        let field = |f: crate::profile::layout::Field| {
            f.get(&bytes)
                .ok_or_else(|| Fault::bad("dict field outside the dict struct"))
        };
        let rehashidx = field(d.rehashidx)? as i64;
        let mut tables = [Table::default(); 2];
        for (i, t) in tables.iter_mut().enumerate() {
            let i = i as u64;
            let exp = field(d.ht_size_exp.element(i, 1))? as u8 as i8 as i64;
            let buckets = field(d.ht_table.element(i, 8))?;
            let used = field(d.ht_used.element(i, 8))?;
            if exp == -1 {
                if buckets != 0 || used != 0 {
                    return Err(Fault::bad(format!(
                        "dict {addr:#x} table {i} has no size but buckets {buckets:#x} / used {used}"
                    )));
                }
                continue;
            }
            if !(0..=MAX_SIZE_EXP).contains(&exp) {
                return Err(Fault::bad(format!(
                    "dict {addr:#x} table {i} has size exponent {exp}"
                )));
            }
            *t = Table {
                buckets,
                size: 1u64 << exp,
                used,
            };
        }
        if rehashidx < -1 || (rehashidx >= 0 && rehashidx as u64 >= tables[0].size.max(1)) {
            return Err(Fault::bad(format!(
                "dict {addr:#x} has rehashidx {rehashidx}"
            )));
        }
        if (rehashidx == -1) != (tables[1].size == 0) {
            return Err(Fault::bad(format!(
                "dict {addr:#x}: rehashidx {rehashidx} disagrees with table 1 of size {}",
                tables[1].size
            )));
        }
        Ok(DictHeader { tables, rehashidx })
    }

    /// Call `f(key, value_word)` for every entry of both tables.
    ///
    /// A broken chain costs the rest of that chain only; it is recorded and the walk goes
    /// on with the next bucket. The total number of entries visited is capped by the
    /// dict's counters (with slack), so garbage cannot make the walk run away.
    pub fn for_each(&self, header: &DictHeader, mut f: impl FnMut(u64, u64)) -> WalkFaults {
        let e = &self.layout.entry;
        let mut faults = WalkFaults::default();
        for (ti, t) in header.tables.iter().enumerate() {
            if t.size == 0 {
                continue;
            }
            let budget = t.used.saturating_mul(2).saturating_add(64);
            let mut visited = 0u64;
            let buckets = match self.space.read(t.buckets, (t.size * 8) as usize) {
                Ok(b) => b,
                Err(err) => {
                    faults.push(0, Fault::bad(format!("bucket array of table {ti}: {err}")));
                    continue;
                }
            };
            for (bi, slot) in buckets.chunks_exact(8).enumerate() {
                let mut p = u64::from_le_bytes(slot.try_into().unwrap_or([0; 8]));
                let mut guard = ChainGuard::new("dict bucket chain", budget);
                while p != 0 {
                    if let Err(err) = guard.step(p) {
                        faults.push(bi as u64, err);
                        break;
                    }
                    let entry = match self.space.read(p, e.size as usize) {
                        Ok(b) => b,
                        Err(err) => {
                            faults.push(bi as u64, err.into());
                            break;
                        }
                    };
                    let (Some(key), Some(v), Some(next)) =
                        (e.key.get(&entry), e.v.get(&entry), e.next.get(&entry))
                    else {
                        faults.push(bi as u64, Fault::bad("dictEntry fields outside the entry"));
                        break;
                    };
                    visited += 1;
                    f(key, v);
                    p = next;
                }
                if visited > budget {
                    faults.push(
                        bi as u64,
                        Fault::bad(format!(
                            "table {ti} holds more entries than its used counter {} allows",
                            t.used
                        )),
                    );
                    break;
                }
            }
        }
        faults
    }
}
