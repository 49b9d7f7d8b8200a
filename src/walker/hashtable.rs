//! `HashtableWalker`: every entry of a Valkey 8.1 `hashtable` (buckets of 7 slots with
//! presence bits, child buckets chained from the last slot, two tables while rehashing).

use super::context::WalkContext;
use super::dict::{revisit_fault, DictHeader, Table, WalkFaults};
use super::fault::Fault;
use super::seen::SeenEntries;
use crate::profile::layout::Field;

/// Largest bucket exponent accepted.
const MAX_BUCKET_EXP: i64 = 40;
/// Child buckets a sample follows from one top-level bucket.
pub const MAX_SAMPLE_CHAIN: u32 = 1024;

/// Reads hashtables with one build's layout.
#[derive(Clone, Copy)]
pub struct HashtableWalker<'c, 'a> {
    ctx: &'c WalkContext<'c, 'a>,
}

impl<'c, 'a> HashtableWalker<'c, 'a> {
    /// A walker in the walk context `ctx`.
    pub fn new(ctx: &'c WalkContext<'c, 'a>) -> Self {
        HashtableWalker { ctx }
    }

    /// Read and check the hashtable header at `addr`. Its tables are expressed as a
    /// [`DictHeader`] whose `size` counts buckets.
    pub fn header(&self, addr: u64) -> Result<DictHeader, Fault> {
        let h = &self.ctx.layout.hashtable;
        let bytes = self.ctx.space.read(addr, h.size as usize)?;
        // A hashtable starts with its `hashtableType *type`, always set: NULL means the
        // header was zeroed or overwritten, not that the table is empty.
        if bytes.get(..8).is_some_and(|t| t.iter().all(|b| *b == 0)) {
            return Err(Fault::bad(format!(
                "hashtable {addr:#x} has a NULL type pointer: its header is zeroed or overwritten"
            )));
        }
        let field = |f: Field| {
            f.get(&bytes)
                .ok_or_else(|| Fault::bad("hashtable field outside its struct"))
        };
        let rehashidx = field(h.rehash_idx)? as i64;
        let mut tables = [Table::default(); 2];
        for (i, t) in tables.iter_mut().enumerate() {
            let i = i as u64;
            let exp = field(h.bucket_exp.element(i, 1))? as u8 as i8 as i64;
            let buckets = field(h.tables.element(i, 8))?;
            let used = field(h.used.element(i, 8))?;
            if exp == -1 {
                if buckets != 0 || used != 0 {
                    return Err(Fault::bad(format!(
                        "hashtable {addr:#x} table {i} has no buckets but {buckets:#x} / used {used}"
                    )));
                }
                continue;
            }
            if !(0..=MAX_BUCKET_EXP).contains(&exp) {
                return Err(Fault::bad(format!(
                    "hashtable {addr:#x} table {i} has bucket exponent {exp}"
                )));
            }
            *t = Table {
                buckets,
                size: 1u64 << exp,
                used,
            };
        }
        if rehashidx < -1 || (rehashidx >= 0 && tables[1].size == 0) {
            return Err(Fault::bad(format!(
                "hashtable {addr:#x} has rehash_idx {rehashidx} with table 1 of {} buckets",
                tables[1].size
            )));
        }
        Ok(DictHeader {
            tables,
            rehashidx,
            no_value: true,
        })
    }

    /// Up to `max` entries of a hashtable, from its first buckets (table 0, then table 1;
    /// at most [`super::dict::MAX_SAMPLE_BUCKETS`] of each) and their child buckets: a
    /// cheap sample for checking that a keyspace decodes before trusting it (see
    /// [`crate::walker::locate`]). A bucket that cannot be read ends its chain (or, for a
    /// top-level bucket, its table: the array is contiguous), and a chain is followed for
    /// at most [`MAX_SAMPLE_CHAIN`] child buckets, so nothing runs away; an entry met
    /// again (a damaged child pointer) is not sampled twice.
    pub fn sample_entries(&self, header: &DictHeader, max: usize) -> Vec<u64> {
        let h = &self.ctx.layout.hashtable;
        let slots = h.slots.max(1);
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for t in header.tables.iter().filter(|t| t.size > 0) {
            'table: for bi in 0..t.size.min(super::dict::MAX_SAMPLE_BUCKETS as u64) {
                let mut bucket = t.buckets.wrapping_add(bi.wrapping_mul(h.bucket_size));
                for depth in 0..=MAX_SAMPLE_CHAIN {
                    if out.len() >= max {
                        return out;
                    }
                    let Ok(bytes) = self.ctx.space.read(bucket, h.bucket_size as usize) else {
                        if depth == 0 {
                            break 'table;
                        }
                        break;
                    };
                    let (Some(chained), Some(presence)) =
                        (h.chained.get(&bytes), h.presence.get(&bytes))
                    else {
                        break;
                    };
                    let mut next = 0;
                    for slot in 0..slots {
                        let Some(ptr) = h.entries.element(slot, 8).get(&bytes) else {
                            break;
                        };
                        // The last slot of a chained bucket points at the child bucket.
                        if chained == 1 && slot == slots - 1 {
                            next = ptr;
                        } else if presence.checked_shr(slot as u32).unwrap_or(0) & 1 == 1
                            && out.len() < max
                            && seen.insert(ptr)
                        {
                            out.push(ptr);
                        }
                    }
                    if chained == 0 || next == 0 {
                        break;
                    }
                    bucket = next;
                }
            }
        }
        out
    }

    /// Call `f(entry)` for every entry of both tables, each entry once. A broken bucket
    /// chain costs the rest of that chain; it is recorded and the walk goes on.
    pub fn for_each(&self, header: &DictHeader, f: impl FnMut(u64)) -> WalkFaults {
        let mut seen = SeenEntries::with_capacity(header.used());
        self.for_each_unique(header, &mut seen, f)
    }

    /// [`HashtableWalker::for_each`] sharing `seen` with other walks.
    pub fn for_each_unique(
        &self,
        header: &DictHeader,
        seen: &mut SeenEntries,
        mut f: impl FnMut(u64),
    ) -> WalkFaults {
        const WHAT: &str = "hashtable bucket chain";
        let h = &self.ctx.layout.hashtable;
        let mut faults = WalkFaults::default();
        let slots = h.slots.max(1);
        let mut chain = Vec::new();
        for (ti, t) in header.tables.iter().enumerate() {
            if t.size == 0 {
                continue;
            }
            // Each bucket holds up to `slots` entries, a chain at least slots-1 per link.
            let budget = t.used / slots.saturating_sub(1).max(1) + 64;
            let mut visited = 0u64;
            for bi in 0..t.size {
                if let Err(e) = self.ctx.budget.check() {
                    faults.push(bi, e);
                    return faults;
                }
                let mut bucket = t.buckets.wrapping_add(bi * h.bucket_size);
                let mut guard = self.ctx.guard(WHAT, budget);
                chain.clear();
                'chain: loop {
                    if let Err(e) = guard.step(bucket) {
                        faults.push(bi, e);
                        break;
                    }
                    let bytes = match self.ctx.space.read(bucket, h.bucket_size as usize) {
                        Ok(b) => b,
                        Err(e) => {
                            faults.push(bi, Fault::bad(format!("table {ti}: {e}")));
                            break;
                        }
                    };
                    let (Some(chained), Some(presence)) =
                        (h.chained.get(&bytes), h.presence.get(&bytes))
                    else {
                        faults.push(bi, Fault::bad("bucket fields outside the bucket"));
                        break;
                    };
                    let last = slots - 1;
                    let mut next = 0;
                    for slot in 0..slots {
                        let Some(ptr) = h.entries.element(slot, 8).get(&bytes) else {
                            break;
                        };
                        if chained == 1 && slot == last {
                            next = ptr;
                        } else if presence & (1 << slot) != 0 {
                            if !seen.first_visit(ptr) {
                                faults.push(bi, revisit_fault(WHAT, ptr, chain.contains(&ptr)));
                                break 'chain;
                            }
                            chain.push(ptr);
                            visited += 1;
                            f(ptr);
                        }
                    }
                    if chained == 0 {
                        break;
                    }
                    if next == 0 {
                        faults.push(bi, Fault::bad("chained bucket without a child"));
                        break;
                    }
                    bucket = next;
                }
            }
            if visited > t.used.saturating_mul(2).saturating_add(64) {
                faults.push(
                    0,
                    Fault::bad(format!(
                        "table {ti} holds {visited} entries, its counter says {}",
                        t.used
                    )),
                );
            }
        }
        faults
    }
}
