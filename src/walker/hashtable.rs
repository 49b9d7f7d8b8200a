//! `HashtableWalker`: every entry of a Valkey 8.1 `hashtable` (buckets of 7 slots with
//! presence bits, child buckets chained from the last slot, two tables while rehashing).
//!
//! With a [`BucketCheck`], every entry must sit in the bucket chain its key hashes to
//! (`hash & (buckets - 1)`; child buckets hold entries of their top-level bucket's index)
//! and match the hash fragment stored with it (`hashes[slot]`, the hash's top byte), as
//! `hashtable.c` places them; an entry that does not is refused the way
//! [`super::dict::DictWalker`] refuses one.

use super::bucket::{fragment, BucketCheck};
use super::context::WalkContext;
use super::dict::{
    misplaced_fault, revisit_fault, settle_misplaced, DictHeader, Table, WalkFaults,
    CHAIN_BY_ITSELF, MAX_KEPT_FAULTS as MAX_KEPT_DUPLICATES,
};
use super::fault::Fault;
use super::object::ObjectDecoder;
use super::sds::read_sds;
use super::seen::SeenEntries;
use crate::profile::layout::Field;
use crate::walker::fault::FaultKind;

/// Largest bucket exponent accepted.
const MAX_BUCKET_EXP: i64 = 40;
/// Child buckets a sample follows from one top-level bucket.
pub const MAX_SAMPLE_CHAIN: u32 = 1024;

/// How many top-level buckets ahead of the walk their entries are prefetched.
const PREFETCH_AHEAD: u64 = 8;

/// What a hashtable's entry pointer is, for reading the key it is hashed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKey {
    /// The key's sds itself: a set member, or a hash entry (whose pointer is its field).
    Sds,
    /// A keyspace object embedding its key.
    Embedded,
    /// A skiplist node of a zset (Valkey 8.1+ `zsetHashtableType`): hashed by its element
    /// (`node->ele`, or the element embedded after its levels).
    ZsetNode,
}

/// One entry of a bucket: its slot's pointer and the hash fragment stored with it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: u64,
    fragment: Option<u8>,
}

/// Reads hashtables with one build's layout.
#[derive(Clone, Copy)]
pub struct HashtableWalker<'c, 'a> {
    ctx: &'c WalkContext<'c, 'a>,
    check: Option<(BucketCheck, EntryKey)>,
    /// Leave out entries whose key's name an entry handed out earlier has.
    names: bool,
    /// The `seen` of [`HashtableWalker::for_each_unique`] serves this one table's walk
    /// alone.
    sole_table: bool,
}

impl<'c, 'a> HashtableWalker<'c, 'a> {
    /// A walker in the walk context `ctx`.
    pub fn new(ctx: &'c WalkContext<'c, 'a>) -> Self {
        HashtableWalker {
            ctx,
            check: None,
            names: false,
            sole_table: false,
        }
    }

    /// The same walker, told that the `seen` given to [`HashtableWalker::for_each_unique`]
    /// serves this table alone. Where the bucket check is on too and the table is not
    /// rehashing, its entries are proven unique by their buckets and not marked in `seen`
    /// (as [`super::dict::DictWalker::with_sole_table`] says): an entry that hashes to
    /// the bucket it was found in cannot be handed out by another bucket's chain, whose
    /// check it fails.
    pub fn with_sole_table(mut self, sole: bool) -> Self {
        self.sole_table = sole;
        self
    }

    /// Whether this walk of `header` proves its entries unique by the bucket check.
    fn proves_by_bucket(&self, header: &DictHeader) -> bool {
        self.sole_table && self.check.is_some() && header.in_one_table()
    }

    /// The same walker, also handing out each key name once, when the bucket check is on
    /// (as [`super::dict::DictWalker::with_name_check`]).
    pub fn with_name_check(mut self) -> Self {
        self.names = true;
        self
    }

    /// Whether this walker hands out each name once.
    pub fn names_checked(&self) -> bool {
        self.names && self.check.is_some()
    }

    /// The name (key, member) `entry` holds, as the bucket check hashes it.
    fn entry_name(&self, objects: Option<&ObjectDecoder<'_, '_>>, entry: u64) -> Option<Vec<u8>> {
        let (check, keys) = self.check?;
        match (keys, objects) {
            (EntryKey::Sds, _) => read_sds(self.ctx.space, check.sds(), entry)
                .ok()
                .map(|k| k.to_vec()),
            (EntryKey::Embedded, Some(o)) => o.embedded_key(entry).ok().map(|k| k.key.to_vec()),
            (EntryKey::ZsetNode, Some(o)) => o.zset_node_element(entry).ok().map(|e| e.to_vec()),
            (EntryKey::Embedded | EntryKey::ZsetNode, None) => None,
        }
    }

    /// Whether an entry handed out before `entry` (whose name hashes to `hash`) has the
    /// same name: one of this chain's (`chain_names`), or, for an entry of table 1 while
    /// rehashing, one of the bucket chain of table 0 the name hashes to (walked first).
    fn named_before(
        &self,
        objects: Option<&ObjectDecoder<'_, '_>>,
        header: &DictHeader,
        table: usize,
        entry: u64,
        hash: u64,
        chain_names: &[(u64, u64)],
    ) -> Option<Vec<u8>> {
        let mut mine: Option<Vec<u8>> = None;
        let same = |other: u64, mine: &mut Option<Vec<u8>>| -> bool {
            if mine.is_none() {
                *mine = self.entry_name(objects, entry);
            }
            match (mine.as_deref(), self.entry_name(objects, other)) {
                (Some(a), Some(b)) => a == b.as_slice(),
                _ => false,
            }
        };
        for &(h, other) in chain_names {
            if h == hash && same(other, &mut mine) {
                return mine;
            }
        }
        let t0 = header.tables.first().filter(|t| t.size > 0 && table == 1)?;
        self.find_in_chain(t0, hash, t0.used + 64, |slot| same(slot.entry, &mut mine))?;
        mine
    }

    /// The first slot of the chain of the bucket `hash` selects in `t` (the bucket and its
    /// children) whose stored fragment is the hash's and for which `found` holds; the walk
    /// ends at a bucket that cannot be read, and is bounded by `budget` buckets and loop
    /// detection.
    fn find_in_chain(
        &self,
        t: &Table,
        hash: u64,
        budget: u64,
        mut found: impl FnMut(Slot) -> bool,
    ) -> Option<Slot> {
        let h = &self.ctx.layout.hashtable;
        let mut bucket = t
            .buckets
            .checked_add((hash & t.size.wrapping_sub(1)).checked_mul(h.bucket_size)?)?;
        let mut guard = self.ctx.guard("hashtable bucket chain", budget);
        while guard.step(bucket).is_ok() {
            let bytes = self.ctx.space.read(bucket, h.bucket_size as usize).ok()?;
            let (slots, chained, next) = self.slots(&bytes)?;
            for slot in slots {
                if slot.fragment.is_none_or(|f| f == fragment(hash)) && found(slot) {
                    return Some(slot);
                }
            }
            if !chained || next == 0 {
                break;
            }
            bucket = next;
        }
        None
    }

    /// Bucket links a chain of `t` may have (each bucket holds up to `slots` entries, a
    /// chain at least slots-1 per link), with slack.
    fn chain_budget(&self, t: &Table) -> u64 {
        let slots = self.ctx.layout.hashtable.slots.max(1);
        t.used / slots.saturating_sub(1).max(1) + 64
    }

    /// The same walker, checking each entry against its bucket and stored hash fragment
    /// with `check` (only for tables hashed by an sds with the seeded hash: keys, sets,
    /// hashes, zsets); `keys` says how an entry names its key.
    pub fn with_bucket_check(mut self, check: Option<BucketCheck>, keys: EntryKey) -> Self {
        self.check = check.map(|c| (c, keys));
        self
    }

    /// Offset of `bucket.hashes[]` in a bucket: one byte per slot right before the
    /// entries (after the `chained`/`presence` bits), as `hashtable.c` lays it out.
    /// `None` when the layout leaves no room for it.
    fn hashes_offset(&self) -> Option<u64> {
        let h = &self.ctx.layout.hashtable;
        h.entries
            .offset
            .checked_sub(h.slots)
            .filter(|o| *o >= 1 && h.slots >= 1)
    }

    /// The entries of the bucket `bytes` (not its child pointer) with their stored hash
    /// fragments, and its child bucket (0 for none); `None` when its fields are outside it.
    fn slots(&self, bytes: &[u8]) -> Option<(Vec<Slot>, bool, u64)> {
        let h = &self.ctx.layout.hashtable;
        let slots = h.slots.max(1);
        let (chained, presence) = (h.chained.get(bytes)?, h.presence.get(bytes)?);
        let hashes = self.hashes_offset();
        let mut out = Vec::new();
        let mut next = 0;
        for slot in 0..slots {
            let Some(ptr) = h.entries.element(slot, 8).get(bytes) else {
                break;
            };
            // The last slot of a chained bucket points at the child bucket.
            if chained == 1 && slot == slots - 1 {
                next = ptr;
            } else if presence.checked_shr(slot as u32).unwrap_or(0) & 1 == 1 {
                let fragment = hashes
                    .and_then(|o| bytes.get(usize::try_from(o.saturating_add(slot)).ok()?))
                    .copied();
                out.push(Slot {
                    entry: ptr,
                    fragment,
                });
            }
        }
        Some((out, chained == 1, next))
    }

    /// Starts loading the entries of the bucket at `bucket` (and its child bucket, if
    /// chained), which the walk reads soon: a bucket is one cache line of up to seven
    /// entry pointers, each entry an object in a line of its own elsewhere in the heap. A
    /// hint only: nothing is checked or kept.
    fn prefetch_bucket(&self, bucket: u64) {
        let h = &self.ctx.layout.hashtable;
        let space = self.ctx.space;
        let Ok(bytes) = space.read(bucket, h.bucket_size as usize) else {
            return;
        };
        let (Some(chained), Some(presence)) = (h.chained.get(&bytes), h.presence.get(&bytes))
        else {
            return;
        };
        let slots = h.slots.max(1);
        for slot in 0..slots {
            let Some(ptr) = h.entries.element(slot, 8).get(&bytes) else {
                break;
            };
            let child = chained == 1 && slot == slots - 1;
            if child || presence.checked_shr(slot as u32).unwrap_or(0) & 1 == 1 {
                space.prefetch(ptr);
            }
        }
    }

    /// The hash of the key of `entry`, or `None` when it cannot be read (the caller's own
    /// decoding then reports it).
    fn entry_hash(
        check: &BucketCheck,
        keys: EntryKey,
        objects: Option<&ObjectDecoder<'_, '_>>,
        space: &crate::core::AddressSpace<'_>,
        entry: u64,
    ) -> Option<u64> {
        match (keys, objects) {
            (EntryKey::Sds, _) => check.hash_of(space, entry),
            (EntryKey::Embedded, Some(o)) => {
                o.embedded_key(entry).ok().map(|k| check.hash_bytes(&k.key))
            }
            (EntryKey::ZsetNode, Some(o)) => o
                .zset_node_element(entry)
                .ok()
                .map(|e| check.hash_bytes(&e)),
            (EntryKey::Embedded | EntryKey::ZsetNode, None) => None,
        }
    }

    /// The hash of the key of the entry in `slot`, found in the chain of bucket `bucket` of
    /// a `size`-bucket table (`None` without a check or when the key cannot be read); a
    /// fault when it hashes to another bucket or its hash fragment differs from the one
    /// stored with it.
    fn home(
        &self,
        objects: Option<&ObjectDecoder<'_, '_>>,
        slot: Slot,
        bucket: u64,
        size: u64,
    ) -> Result<Option<u64>, Fault> {
        let Some((check, keys)) = self.check else {
            return Ok(None);
        };
        let Some(hash) = Self::entry_hash(&check, keys, objects, self.ctx.space, slot.entry) else {
            return Ok(None);
        };
        let home = hash & size.wrapping_sub(1);
        if home != bucket {
            return Err(misplaced_fault(bucket, home));
        }
        let want = fragment(hash);
        match slot.fragment {
            Some(stored) if stored != want => Err(Fault::of(FaultKind::MisplacedEntry, format!(
                "an entry found in bucket {bucket} has a key whose hash fragment {want:#04x} differs from the {stored:#04x} stored with it: a damaged entry pointer"
            ))),
            _ => Ok(Some(hash)),
        }
    }

    /// Up to `max` entries `(entry, bucket, table size, stored hash fragment)` of the
    /// top-level buckets, spread over the tables, to calibrate a [`BucketCheck`] with.
    /// Child buckets are not followed, so one damaged child pointer cannot place a sample
    /// in a wrong bucket (as [`super::dict::DictWalker::chain_heads`]).
    pub fn bucket_heads(
        &self,
        header: &DictHeader,
        max: usize,
    ) -> Vec<(u64, u64, u64, Option<u8>)> {
        let h = &self.ctx.layout.hashtable;
        let mut out = Vec::new();
        for t in header.tables.iter().filter(|t| t.size > 0) {
            for bi in 0..t.size.min(super::dict::MAX_SAMPLE_BUCKETS as u64) {
                if out.len() >= max {
                    return out;
                }
                let at = t.buckets.wrapping_add(bi.wrapping_mul(h.bucket_size));
                let Ok(bytes) = self.ctx.space.read(at, h.bucket_size as usize) else {
                    break; // the array is contiguous: the rest is not there either
                };
                let Some((slots, _, _)) = self.slots(&bytes) else {
                    break;
                };
                for s in slots.into_iter().take(max.saturating_sub(out.len())) {
                    out.push((s.entry, bi, t.size, s.fragment));
                }
            }
        }
        out
    }

    /// Read and check the hashtable header at `addr`. Its tables are expressed as a
    /// [`DictHeader`] whose `size` counts buckets.
    pub fn header(&self, addr: u64) -> Result<DictHeader, Fault> {
        let h = &self.ctx.layout.hashtable;
        let bytes = self.ctx.space.read(addr, h.size as usize)?;
        // A hashtable starts with its `hashtableType *type`, always set: NULL means the
        // header was zeroed or overwritten, not that the table is empty.
        if bytes.get(..8).is_some_and(|t| t.iter().all(|b| *b == 0)) {
            return Err(Fault::of(
                FaultKind::NullPointer,
                format!(
                "hashtable {addr:#x} has a NULL type pointer: its header is zeroed or overwritten"
            ),
            ));
        }
        let field = |f: Field| {
            f.get(&bytes).ok_or_else(|| {
                Fault::of(FaultKind::ProfileGap, "hashtable field outside its struct")
            })
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
                    return Err(Fault::of(FaultKind::BadHeader, format!(
                        "hashtable {addr:#x} table {i} has no buckets but {buckets:#x} / used {used}"
                    )));
                }
                continue;
            }
            if !(0..=MAX_BUCKET_EXP).contains(&exp) {
                return Err(Fault::of(
                    FaultKind::BadHeader,
                    format!("hashtable {addr:#x} table {i} has bucket exponent {exp}"),
                ));
            }
            *t = Table {
                buckets,
                size: 1u64 << exp,
                used,
            };
        }
        if rehashidx < -1 || (rehashidx >= 0 && tables[1].size == 0) {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!(
                    "hashtable {addr:#x} has rehash_idx {rehashidx} with table 1 of {} buckets",
                    tables[1].size
                ),
            ));
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
        // The set is this walk's own; a walk proving its entries marks few or none.
        let sole = self.with_sole_table(true);
        let mut seen = SeenEntries::for_walk(sole.proves_by_bucket(header), header.used());
        sole.for_each_unique(header, &mut seen, f)
    }

    /// For a walk that proved its entries by the bucket check: marks those of the refused
    /// entries, `misplaced`, that their own chain holds, as the walk handed them out there,
    /// so that [`settle_misplaced`] judges them as after a walk that marked every entry.
    fn mark_held_by_own_chain(
        &self,
        objects: Option<&ObjectDecoder<'_, '_>>,
        header: &DictHeader,
        misplaced: &[(u64, u64, Fault)],
        seen: &mut SeenEntries,
    ) {
        let (Some((check, keys)), Some(t)) =
            (self.check, header.tables.iter().find(|t| t.size > 0))
        else {
            return;
        };
        for &(_, entry, _) in misplaced {
            let Some(hash) = Self::entry_hash(&check, keys, objects, self.ctx.space, entry) else {
                continue;
            };
            // Held where the table walk would hand it out: its own chain, fragment and all.
            let held = self.find_in_chain(t, hash, self.chain_budget(t), |s| s.entry == entry);
            if held.is_some() {
                seen.first_visit(entry);
            }
        }
    }

    /// [`HashtableWalker::for_each`] sharing `seen` with other walks. With a bucket check,
    /// an entry that does not belong where it was found is refused: one that its own chain
    /// also holds marks the chain that led to it as redirected (a fault), one that no chain
    /// holds has a damaged key (counted in [`WalkFaults::damaged_keys`]).
    pub fn for_each_unique(
        &self,
        header: &DictHeader,
        seen: &mut SeenEntries,
        mut f: impl FnMut(u64),
    ) -> WalkFaults {
        const WHAT: &str = "hashtable bucket chain";
        let h = &self.ctx.layout.hashtable;
        let mut faults = WalkFaults::default();
        let objects = matches!(
            self.check,
            Some((_, EntryKey::Embedded | EntryKey::ZsetNode))
        )
        .then(|| ObjectDecoder::new(self.ctx));
        let mut chain = Vec::new();
        let mut chain_names = Vec::new();
        let names = self.names_checked();
        let proven = self.proves_by_bucket(header);
        let mut misplaced = Vec::new();
        for (ti, t) in header.tables.iter().enumerate() {
            if t.size == 0 {
                continue;
            }
            // The top-level buckets are one array: all of it must be in the core, or a
            // damaged size would have the walk fail bucket by bucket for up to 2^exp of
            // them (as a dict's walk reads its whole bucket array first).
            let span = t.size.checked_mul(h.bucket_size);
            if span.is_none_or(|n| self.ctx.space.readable_len(t.buckets) < n) {
                faults.push(
                    0,
                    Fault::of(
                        FaultKind::Inconsistent,
                        format!(
                            "bucket array of table {ti}: {} buckets of {} bytes at {:#x} are not all in the core",
                            t.size, h.bucket_size, t.buckets
                        ),
                    ),
                );
                continue;
            }
            let budget = self.chain_budget(t);
            let mut visited = 0u64;
            for bi in 0..t.size {
                if let Err(e) = self.ctx.budget.check() {
                    faults.push(bi, e);
                    return faults;
                }
                if bi + PREFETCH_AHEAD < t.size {
                    self.prefetch_bucket(
                        t.buckets
                            .wrapping_add((bi + PREFETCH_AHEAD).wrapping_mul(h.bucket_size)),
                    );
                }
                let mut bucket = t.buckets.wrapping_add(bi * h.bucket_size);
                let mut guard = self.ctx.guard(WHAT, budget);
                chain.clear();
                chain_names.clear();
                'chain: loop {
                    if let Err(e) = guard.step(bucket) {
                        faults.push(bi, e);
                        break;
                    }
                    let bytes = match self.ctx.space.read(bucket, h.bucket_size as usize) {
                        Ok(b) => b,
                        Err(e) => {
                            faults.push(
                                bi,
                                Fault::of(FaultKind::Inconsistent, format!("table {ti}: {e}")),
                            );
                            break;
                        }
                    };
                    let Some((entries, chained, next)) = self.slots(&bytes) else {
                        faults.push(
                            bi,
                            Fault::of(FaultKind::ProfileGap, "bucket fields outside the bucket"),
                        );
                        break;
                    };
                    for slot in entries {
                        let ptr = slot.entry;
                        // Told apart by the chain itself, or by `seen` (see
                        // `with_sole_table`).
                        let by_chain = proven && chain.len() < CHAIN_BY_ITSELF;
                        if proven && chain.len() == CHAIN_BY_ITSELF {
                            // A chain this long is damaged: from here on `seen` holds it.
                            for &q in &chain {
                                seen.first_visit(q);
                            }
                        }
                        let fresh = if by_chain {
                            !chain.contains(&ptr)
                        } else {
                            seen.first_visit(ptr)
                        };
                        if !fresh {
                            faults.push(bi, revisit_fault(WHAT, ptr, chain.contains(&ptr)));
                            break 'chain;
                        }
                        chain.push(ptr);
                        let hash = match self.home(objects.as_ref(), slot, bi, t.size) {
                            Ok(h) => h,
                            Err(err) => {
                                // A damaged pointer led here (the entry's own chain, even
                                // this one by a slot with a wrong fragment, may still hand
                                // it out: forget it), or its key's bytes are damaged;
                                // which one is known at the end.
                                if by_chain {
                                    chain.pop();
                                } else {
                                    seen.forget(ptr);
                                }
                                misplaced.push((bi, ptr, err));
                                continue;
                            }
                        };
                        // An entry whose key cannot be hashed is not proven to belong
                        // here: `seen` tells whether another chain had it.
                        if by_chain && hash.is_none() && !seen.first_visit(ptr) {
                            faults.push(bi, revisit_fault(WHAT, ptr, false));
                            break 'chain;
                        }
                        visited += 1;
                        if let (true, Some(hash)) = (names, hash) {
                            let before = self.named_before(
                                objects.as_ref(),
                                header,
                                ti,
                                ptr,
                                hash,
                                &chain_names,
                            );
                            if let Some(name) = before {
                                faults.duplicates += 1;
                                if faults.duplicate_names.len() < MAX_KEPT_DUPLICATES {
                                    faults.duplicate_names.push(name);
                                }
                                continue;
                            }
                            chain_names.push((hash, ptr));
                        }
                        f(ptr);
                    }
                    if !chained {
                        break;
                    }
                    if next == 0 {
                        faults.push(
                            bi,
                            Fault::of(FaultKind::NullPointer, "chained bucket without a child"),
                        );
                        break;
                    }
                    bucket = next;
                }
            }
            if visited > t.used.saturating_mul(2).saturating_add(64) {
                faults.push(
                    0,
                    Fault::of(
                        FaultKind::CounterMismatch,
                        format!(
                            "table {ti} holds {visited} entries, its counter says {}",
                            t.used
                        ),
                    ),
                );
            }
        }
        if proven {
            self.mark_held_by_own_chain(objects.as_ref(), header, &misplaced, seen);
        }
        settle_misplaced(misplaced, seen, &mut faults);
        faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::AddressSpace;
    use crate::profile::{self, Layout};
    use crate::walker::sds::SdsFormat;

    const BASE: u64 = 0x40_0000;
    /// Four top-level buckets at BASE+0x100, child buckets from BASE+0x200, sds strings
    /// from BASE+0x400.
    const TABLE: u64 = 0x100;
    const CHILDREN: u64 = 0x200;
    const STRINGS: usize = 0x400;

    fn layout() -> Layout {
        Layout::resolve(&profile::load("valkey-8.1.8").unwrap()).unwrap()
    }

    fn space(bytes: &[u8]) -> AddressSpace<'_> {
        crate::core::address_space::single_segment(bytes, BASE)
    }

    fn put(m: &mut [u8], off: u64, v: u64) {
        let off = off as usize;
        m[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Memory with a hashtable header at BASE: one table of 4 buckets holding `used`.
    fn table_mem(used: u64) -> Vec<u8> {
        let mut m = vec![0u8; 0x800];
        put(&mut m, 0, BASE + 0x780); // hashtableType
        put(&mut m, 8, u64::MAX); // rehash_idx -1
        put(&mut m, 16, BASE + TABLE);
        put(&mut m, 32, used);
        m[48] = 2; // 4 buckets
        m[49] = 0xff; // no table 1
        m
    }

    /// Fill the bucket at offset `at`: `(entry, fragment)` per slot from slot 0, and a
    /// child bucket in the last slot when `child` is set.
    fn put_bucket(m: &mut [u8], at: u64, entries: &[(u64, u8)], child: Option<u64>) {
        let mut presence = 0u8;
        for (i, (e, frag)) in entries.iter().enumerate() {
            presence |= 1 << i;
            m[at as usize + 1 + i] = *frag;
            put(m, at + 8 + 8 * i as u64, *e);
        }
        let chained = match child {
            Some(c) => {
                put(m, at + 8 + 8 * 6, c);
                1
            }
            None => 0,
        };
        m[at as usize] = chained | (presence << 1);
    }

    /// sdshdr8 strings: `s` number `i` at STRINGS+32·i; its address.
    fn put_sds(m: &mut [u8], i: usize, s: &str) -> u64 {
        let o = STRINGS + 32 * i;
        m[o] = s.len() as u8;
        m[o + 1] = s.len() as u8;
        m[o + 2] = 1;
        m[o + 3..o + 3 + s.len()].copy_from_slice(s.as_bytes());
        BASE + o as u64 + 3
    }

    /// `n` member names for each of the 4 buckets, with their hash fragments.
    fn names(check: &BucketCheck, n: usize) -> Vec<Vec<(String, u8)>> {
        let mut out = vec![Vec::new(); 4];
        for i in 0.. {
            let k = format!("m{i}");
            let hash = check.hash_bytes(k.as_bytes());
            let b = &mut out[(hash & 3) as usize];
            if b.len() < n {
                b.push((k, fragment(hash)));
            }
            if out.iter().all(|b| b.len() == n) {
                break;
            }
        }
        out
    }

    /// The entries (sorted) and faults of a walk of the table at BASE, walked both ways:
    /// marking every entry in `seen`, and proving them by their buckets where the check
    /// is on. Both must hand out the same entries and refuse the same ones, with faults in
    /// the same buckets.
    fn walk(w: HashtableWalker<'_, '_>) -> (Vec<u64>, WalkFaults) {
        let h = w.header(BASE).unwrap();
        let run = |w: HashtableWalker<'_, '_>| {
            let mut got = Vec::new();
            let mut seen = SeenEntries::with_capacity(8);
            let faults = w.for_each_unique(&h, &mut seen, |e| got.push(e));
            got.sort_unstable();
            (got, faults)
        };
        let buckets = |f: &WalkFaults| {
            let mut b: Vec<u64> = f.faults.iter().map(|(b, _)| *b).collect();
            b.sort_unstable();
            b
        };
        let (marked_got, marked) = run(w.with_sole_table(false));
        let (got, proven) = run(w.with_sole_table(true));
        assert_eq!(got, marked_got, "the same entries either way");
        assert_eq!(proven.damaged_keys, marked.damaged_keys);
        assert_eq!(proven.duplicates, marked.duplicates);
        assert_eq!(buckets(&proven), buckets(&marked), "{:?}", marked.faults);
        (got, proven)
    }

    /// With the name check, a slot naming a member an earlier slot of the chain has (its
    /// pointer damaged onto a copy of the same bytes; onto the same string it is a revisit)
    /// is left out and named.
    #[test]
    fn a_chain_hands_out_each_name_once() {
        let l = layout();
        let check = BucketCheck::new([7; 16], SdsFormat::Typed);
        let n = names(&check, 2);
        let (x, fx) = n[1][0].clone();
        let (y, fy) = n[1][1].clone();
        let mut m = table_mem(4);
        let sx = put_sds(&mut m, 0, &x);
        let sy = put_sds(&mut m, 1, &y);
        let sx_copy = put_sds(&mut m, 2, &x);
        let b1 = TABLE + 64; // bucket 1
        put_bucket(&mut m, b1, &[(sx, fx), (sx_copy, fx), (sy, fy)], None);
        let s = space(&m);
        let c = WalkContext::new(&s, &l, Default::default());
        let w = HashtableWalker::new(&c)
            .with_bucket_check(Some(check), EntryKey::Sds)
            .with_name_check();
        assert!(w.names_checked());
        let h = w.header(BASE).unwrap();
        let mut got = Vec::new();
        let faults = w.for_each(&h, |e| got.push(e));
        assert_eq!(got, vec![sx, sy]);
        assert_eq!(faults.duplicates, 1);
        assert_eq!(faults.duplicate_names, vec![x.into_bytes()]);
        assert_eq!(faults.count, 0, "{:?}", faults.faults);
        let w = HashtableWalker::new(&c).with_bucket_check(Some(check), EntryKey::Sds);
        assert!(!w.names_checked());
    }

    /// A sole table proven by its buckets marks none of its entries in `seen` (one random
    /// access per key less); shared with other tables, it marks each.
    #[test]
    fn a_proven_walk_marks_nothing() {
        let l = layout();
        let check = BucketCheck::new([7; 16], SdsFormat::Typed);
        let n = names(&check, 2);
        let mut m = table_mem(3);
        let x = put_sds(&mut m, 0, &n[0][0].0);
        let y = put_sds(&mut m, 1, &n[1][0].0);
        let z = put_sds(&mut m, 2, &n[1][1].0);
        put_bucket(&mut m, TABLE, &[(x, n[0][0].1)], None);
        put_bucket(&mut m, TABLE + 64, &[(y, n[1][0].1), (z, n[1][1].1)], None);
        let s = space(&m);
        let ctx = WalkContext::new(&s, &l, Default::default());
        let w = HashtableWalker::new(&ctx).with_bucket_check(Some(check), EntryKey::Sds);
        let h = w.header(BASE).unwrap();
        for (sole, marked) in [(true, 0), (false, 3)] {
            let mut seen = SeenEntries::with_capacity(8);
            let mut got = Vec::new();
            let faults = w
                .with_sole_table(sole)
                .for_each_unique(&h, &mut seen, |e| got.push(e));
            assert_eq!(got, vec![x, y, z]);
            assert_eq!(faults.count, 0, "{:?}", faults.faults);
            assert_eq!(seen.len(), marked, "sole {sole}");
        }
    }

    #[test]
    fn an_entry_in_the_wrong_bucket_or_with_the_wrong_fragment_is_refused() {
        let l = layout();
        let check = BucketCheck::new([5; 16], SdsFormat::Typed);
        let n = names(&check, 2);
        let mut m = table_mem(4);
        let a = put_sds(&mut m, 0, &n[0][0].0);
        let b = put_sds(&mut m, 1, &n[0][1].0);
        let c = put_sds(&mut m, 2, &n[2][0].0); // found in bucket 1: a damaged name
        let d = put_sds(&mut m, 3, &n[1][0].0);
        // Bucket 0: A, and B with a fragment that is not its own; bucket 1: C, D.
        put_bucket(
            &mut m,
            TABLE,
            &[(a, n[0][0].1), (b, n[0][1].1 ^ 0x40)],
            None,
        );
        put_bucket(&mut m, TABLE + 64, &[(c, n[2][0].1), (d, n[1][0].1)], None);
        let s = space(&m);
        let ctx = WalkContext::new(&s, &l, Default::default());
        let w = HashtableWalker::new(&ctx);
        let (got, faults) = walk(w);
        assert_eq!(
            got,
            vec![a, b, c, d],
            "without the check every entry is taken"
        );
        assert_eq!(faults.count, 0);

        let (got, faults) = walk(w.with_bucket_check(Some(check), EntryKey::Sds));
        assert_eq!(
            got,
            vec![a, d],
            "B (wrong fragment) and C (wrong bucket) refused"
        );
        assert_eq!(faults.damaged_keys, 2, "{:?}", faults.faults);
        assert_eq!(faults.count, 0, "{:?}", faults.faults);
        assert!(
            faults.into_result().is_err(),
            "a collection with them is not whole"
        );
    }

    #[test]
    fn a_damaged_entry_pointer_to_an_entry_its_chain_holds_is_a_chain_fault() {
        let l = layout();
        let check = BucketCheck::new([6; 16], SdsFormat::Typed);
        let n = names(&check, 3);
        let mut m = table_mem(3);
        let a = put_sds(&mut m, 0, &n[0][0].0);
        let x = put_sds(&mut m, 1, &n[0][2].0);
        // Bucket 0's slot 1 held B, with B's fragment; its pointer was damaged into X,
        // which bucket 0's child holds. Same bucket: only the fragment tells.
        put_bucket(
            &mut m,
            TABLE,
            &[(a, n[0][0].1), (x, n[0][1].1)],
            Some(BASE + CHILDREN),
        );
        put_bucket(&mut m, CHILDREN, &[(x, n[0][2].1)], None);
        assert_ne!(n[0][1].1, n[0][2].1, "the test needs distinct fragments");
        let s = space(&m);
        let ctx = WalkContext::new(&s, &l, Default::default());
        let w = HashtableWalker::new(&ctx);
        let (_, unchecked) = walk(w);
        assert_eq!(
            unchecked.count, 1,
            "without the check: a revisit in the chain"
        );

        let (got, faults) = walk(w.with_bucket_check(Some(check), EntryKey::Sds));
        assert_eq!(got, vec![a, x], "X once, from the child bucket");
        assert_eq!(faults.damaged_keys, 0);
        assert_eq!(faults.count, 1, "{:?}", faults.faults);
        assert_eq!(faults.faults[0].0, 0);
        assert!(
            faults.faults[0].1.to_string().contains("hash fragment"),
            "{:?}",
            faults.faults
        );
    }

    #[test]
    fn a_redirected_child_chain_is_a_fault_of_the_chain_that_lost_its_child() {
        let l = layout();
        let check = BucketCheck::new([7; 16], SdsFormat::Typed);
        let n = names(&check, 8);
        let mut m = table_mem(14);
        // Buckets 0 and 1: six entries each and a child of one entry.
        let mut ptrs = Vec::new();
        for (bucket, child) in [(0u64, CHILDREN), (1, CHILDREN + 64)] {
            let entries: Vec<(u64, u8)> = (0..6)
                .map(|i| {
                    let (name, frag) = &n[bucket as usize][i];
                    (put_sds(&mut m, bucket as usize * 8 + i, name), *frag)
                })
                .collect();
            ptrs.extend(entries.iter().map(|e| e.0));
            put_bucket(&mut m, TABLE + bucket * 64, &entries, Some(BASE + child));
            let (name, frag) = &n[bucket as usize][6];
            let e = put_sds(&mut m, bucket as usize * 8 + 6, name);
            put_bucket(&mut m, child, &[(e, *frag)], None);
            ptrs.push(e);
        }
        let lost = ptrs[6]; // bucket 0's child entry
                            // Bucket 0's child pointer damaged into bucket 1's child.
        put(&mut m, TABLE + 8 + 8 * 6, BASE + CHILDREN + 64);
        let s = space(&m);
        let ctx = WalkContext::new(&s, &l, Default::default());
        let w = HashtableWalker::new(&ctx);
        let (got, unchecked) = walk(w);
        assert_eq!(
            got.len(),
            13,
            "without the check bucket 1's child comes once"
        );
        assert_eq!(unchecked.count, 1, "bucket 1 reaches it again");
        assert_eq!(unchecked.faults[0].0, 1, "blamed on the wrong chain");

        let (got, faults) = walk(w.with_bucket_check(Some(check), EntryKey::Sds));
        let mut want: Vec<u64> = ptrs.iter().copied().filter(|p| *p != lost).collect();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(faults.damaged_keys, 0);
        assert_eq!(faults.count, 1, "{:?}", faults.faults);
        assert_eq!(faults.faults[0].0, 0, "the redirected chain is bucket 0's");
        assert!(faults.faults[0]
            .1
            .to_string()
            .contains("hashes to bucket 1"));
    }

    #[test]
    fn bucket_heads_do_not_follow_child_buckets() {
        let l = layout();
        let check = BucketCheck::new([8; 16], SdsFormat::Typed);
        let n = names(&check, 7);
        let mut m = table_mem(7);
        let entries: Vec<(u64, u8)> = (0..6)
            .map(|i| (put_sds(&mut m, i, &n[3][i].0), n[3][i].1))
            .collect();
        put_bucket(&mut m, TABLE + 3 * 64, &entries, Some(BASE + CHILDREN));
        let e = put_sds(&mut m, 6, &n[3][6].0);
        put_bucket(&mut m, CHILDREN, &[(e, n[3][6].1)], None);
        let s = space(&m);
        let ctx = WalkContext::new(&s, &l, Default::default());
        let w = HashtableWalker::new(&ctx);
        let h = w.header(BASE).unwrap();
        let heads = w.bucket_heads(&h, 100);
        assert_eq!(heads.len(), 6);
        assert!(heads
            .iter()
            .zip(&entries)
            .all(|(h, e)| *h == (e.0, 3, 4, Some(e.1))));
        assert_eq!(w.bucket_heads(&h, 2).len(), 2);
    }
}
