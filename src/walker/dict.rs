//! `DictWalker`: every entry of a Redis `dict`, both tables while rehashing.

use super::bucket::BucketCheck;
use super::context::WalkContext;
use super::fault::Fault;
use super::object::ObjectDecoder;
use super::sds::read_sds;
use super::seen::SeenEntries;
use crate::profile::layout::{DictFlavor, EntryFlavor, Field};
use crate::value::Bytes;
use crate::walker::fault::FaultKind;

/// Largest table exponent accepted (2^40 buckets would be 8 TiB of pointers).
const MAX_SIZE_EXP: i64 = 40;
/// Buckets of one table a sample looks through (a nearly empty huge table yields fewer).
pub const MAX_SAMPLE_BUCKETS: usize = 1 << 24;
/// Chain faults kept verbatim per table; the rest are only counted.
pub(crate) const MAX_KEPT_FAULTS: usize = 100;

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
    /// The dict's type says its entries carry no value (read for `next_first` entries,
    /// whose untagged form is the same with or without one).
    pub no_value: bool,
}

impl DictHeader {
    /// Entries in both tables, by the dict's own counters.
    pub fn used(&self) -> u64 {
        self.tables[0].used.saturating_add(self.tables[1].used)
    }

    /// A size hint safe to hand to a loader (RESIZEDB): the `used` counter, but never more
    /// than the buckets the tables really have. Redis trusts the hint and a huge one from a
    /// damaged counter would make it reserve absurd amounts of memory.
    pub fn size_hint(&self) -> u64 {
        self.used()
            .min(self.tables[0].size.saturating_add(self.tables[1].size))
    }

    /// Whether its entries are in one table (not rehashing): a bucket check then places
    /// each in one bucket.
    pub fn in_one_table(&self) -> bool {
        self.tables.iter().filter(|t| t.size > 0).count() == 1
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
    /// Entries whose key hashes to another bucket and that no other chain holds: their
    /// key's bytes are damaged, so they are left out, but the chain around them is sound.
    pub damaged_keys: u64,
    /// Names of entries left out because an entry handed out earlier has the same name
    /// (a key pointer damaged into another key's string), the first [`MAX_KEPT_FAULTS`];
    /// only with [`DictWalker::with_name_check`].
    pub duplicate_names: Vec<Vec<u8>>,
    /// All entries left out so, including those not named in `duplicate_names`.
    pub duplicates: u64,
}

impl WalkFaults {
    /// Record a fault found in `bucket`.
    pub fn push(&mut self, bucket: u64, f: Fault) {
        self.count += 1;
        if self.faults.len() < MAX_KEPT_FAULTS {
            self.faults.push((bucket, f));
        }
    }

    /// The first fault, as an error for callers that lose the whole value on any fault.
    pub fn into_result(mut self) -> Result<(), Fault> {
        if !self.faults.is_empty() {
            Err(self.faults.swap_remove(0).1)
        } else if self.damaged_keys > 0 {
            Err(Fault::of(
                FaultKind::MisplacedEntry,
                format!(
                    "{} entries hold keys whose bytes hash to another bucket (damaged bytes)",
                    self.damaged_keys
                ),
            ))
        } else {
            Ok(())
        }
    }
}

/// The fault for an entry a chain reached that was already handed out: a loop back into
/// the same chain, or a damaged pointer into another chain. Either way the rest of the
/// chain was (or will be) walked from its own start, so the chain stops here.
pub(crate) fn revisit_fault(what: &'static str, entry: u64, in_this_chain: bool) -> Fault {
    if in_this_chain {
        Fault::Cycle(what)
    } else {
        Fault::of(FaultKind::Revisit, format!(
            "{what} reaches entry {entry:#x} again, already found through another chain (a damaged pointer); it is kept once"
        ))
    }
}

/// How many buckets ahead of the walk the head entries are prefetched.
const PREFETCH_AHEAD: usize = 32;

/// Buckets between two prefetch stages of one chain: an entry asked for at one stage is
/// read at the next, this many buckets later, when its line has arrived.
const PREFETCH_STEP: usize = 8;

/// How deep into a chain the prefetch goes: its first entries' keys and values, and the
/// link after each. In a table at most as full as it is large, about a third of the
/// entries follow another in their chain; deeper ones are rare.
const PREFETCH_DEPTH: usize = PREFETCH_AHEAD / PREFETCH_STEP - 1;

/// The chain cursors of the buckets being prefetched, by bucket index modulo its size:
/// the entry each chain's next stage reads.
struct PrefetchRing([u64; PREFETCH_AHEAD]);

/// Reads dicts with the layout of one Redis build.
#[derive(Clone, Copy)]
pub struct DictWalker<'c, 'a> {
    ctx: &'c WalkContext<'c, 'a>,
    check: Option<BucketCheck>,
    /// Leave out entries whose key's name an entry handed out earlier has.
    names: bool,
    /// The value words are pointers worth prefetching (not an expires dict's times).
    pointer_values: bool,
    /// What the key words point at, and so how the check reads a key's name.
    keys: KeyForm,
    /// The `seen` of [`DictWalker::for_each_unique`] serves this one table's walk alone.
    sole_table: bool,
}

/// Entries of one chain told apart by the chain itself, in a walk proving entries unique
/// by the bucket check; a longer (damaged) chain goes on in `seen`.
pub(crate) const CHAIN_BY_ITSELF: usize = 64;

/// What a dict's key words point at, for the bucket check, which hashes the key's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// An sds string (keys, expires; set members and hash fields from 4.0).
    Sds,
    /// A string object (`robj *`: sets and hashes up to 3.2), hashed as Redis's
    /// `dictEncObjHash` does: an INT-encoded one as its decimal text.
    StringObject,
    /// An object embedding its key (Redis 8.2+'s keyspace dicts of `kvobj`), hashed by
    /// that key.
    KeyObject,
}

impl<'c, 'a> DictWalker<'c, 'a> {
    /// A walker in the walk context `ctx`.
    pub fn new(ctx: &'c WalkContext<'c, 'a>) -> Self {
        DictWalker {
            ctx,
            check: None,
            names: false,
            pointer_values: true,
            keys: KeyForm::Sds,
            sole_table: false,
        }
    }

    /// The same walker, told that the `seen` given to [`DictWalker::for_each_unique`]
    /// serves this table alone (no other table of the db shares it). Where the bucket
    /// check is on too and the dict is not rehashing, an entry whose
    /// key hashes to the bucket it was found in cannot be handed out by another chain: a
    /// damaged link from another chain into it fails that chain's check. Such entries are
    /// then not marked in `seen` (one random access per key less; [`CHAIN_BY_ITSELF`]
    /// says how a chain's own loops are still caught), only those whose key cannot be
    /// read are.
    pub fn with_sole_table(mut self, sole: bool) -> Self {
        self.sole_table = sole;
        self
    }

    /// Whether this walk of `header` proves its entries unique by the bucket check (see
    /// [`DictWalker::with_sole_table`]).
    fn proves_by_bucket(&self, header: &DictHeader) -> bool {
        self.sole_table && self.check.is_some() && header.in_one_table()
    }

    /// The same walker for a dict whose key words point at `keys` (sds by default).
    pub fn with_keys(mut self, keys: KeyForm) -> Self {
        self.keys = keys;
        self
    }

    /// The bytes of the key at `key`, as the bucket check hashes them.
    fn name_of(&self, key: u64) -> Option<Bytes<'a>> {
        match self.keys {
            KeyForm::Sds => read_sds(self.ctx.space, self.check?.sds(), key).ok(),
            KeyForm::StringObject => ObjectDecoder::new(self.ctx).string_object(key).ok(),
            KeyForm::KeyObject => ObjectDecoder::new(self.ctx)
                .embedded_key(key)
                .ok()
                .map(|k| k.key),
        }
    }

    /// The same walker for a dict whose values are numbers (an expires dict's times): they
    /// are not prefetched as addresses.
    pub fn with_number_values(mut self) -> Self {
        self.pointer_values = false;
        self
    }

    /// The same walker, also handing out each key name once (the first entry found with
    /// it wins), when the bucket check is on: entries of equal names then share a bucket,
    /// so only the chain at hand (and, while rehashing, the one bucket of table 0 the name
    /// belongs to) needs a look, and nothing is kept per key. Without the check it does
    /// nothing: [`DictWalker::names_checked`] says which.
    pub fn with_name_check(mut self) -> Self {
        self.names = true;
        self
    }

    /// Whether this walker hands out each name once.
    pub fn names_checked(&self) -> bool {
        self.names && self.check.is_some()
    }

    /// The same walker, checking each entry's sds key against its bucket with `check`
    /// (only for dicts whose keys are sds hashed with the seeded hash: keys, expires, set
    /// members, hash fields).
    pub fn with_bucket_check(mut self, check: Option<BucketCheck>) -> Self {
        self.check = check;
        self
    }

    /// Up to `max` chain heads `(key pointer, bucket, table size)` spread over the tables,
    /// to calibrate a [`BucketCheck`] with. A chain's head is reached through the bucket
    /// array alone, so one damaged `next` pointer cannot place a sample in a wrong bucket.
    pub fn chain_heads(&self, header: &DictHeader, max: usize) -> Vec<(u64, u64, u64)> {
        let mut out = Vec::new();
        for t in header.tables.iter().filter(|t| t.size > 1) {
            let Ok(buckets) = self.ctx.space.read(t.buckets, (t.size * 8) as usize) else {
                continue;
            };
            for (bi, slot) in buckets.chunks_exact(8).enumerate() {
                if out.len() >= max {
                    return out;
                }
                let p = u64::from_le_bytes(slot.try_into().unwrap_or([0; 8]));
                if p == 0 {
                    continue;
                }
                if let Ok((key, _, _)) = self.entry(p, header.no_value) {
                    out.push((key, bi as u64, t.size));
                }
            }
        }
        out
    }

    /// Up to `max` entries `(key, value word)` of a dict, from its first non-empty chains
    /// (table 0, then table 1; the first [`MAX_SAMPLE_BUCKETS`] buckets of each), each
    /// chain followed until `max` is reached: a cheap sample for checking that a keyspace
    /// decodes before trusting it (see [`crate::walker::locate`]). A link that cannot be
    /// read, or was already sampled, ends its chain, so each entry counts once and a
    /// looping chain cannot run away.
    pub fn sample_entries(&self, header: &DictHeader, max: usize) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for t in header.tables.iter().filter(|t| t.size > 0) {
            let Ok(buckets) = self.ctx.space.read(t.buckets, (t.size * 8) as usize) else {
                continue;
            };
            for slot in buckets.chunks_exact(8).take(MAX_SAMPLE_BUCKETS) {
                let mut p = u64::from_le_bytes(slot.try_into().unwrap_or([0; 8]));
                while p != 0 {
                    if out.len() >= max {
                        return out;
                    }
                    if !seen.insert(p) {
                        break;
                    }
                    let Ok((key, value, next)) = self.entry(p, header.no_value) else {
                        break;
                    };
                    out.push((key, value));
                    p = next;
                }
            }
        }
        out
    }

    /// The value word of the entry whose key pointer is `key_ptr`, looked up as Redis's
    /// `dictFind` does: in the chain of each table's bucket that `hash` (the key's hash)
    /// selects. `None` when no such chain holds it, or a chain breaks or loops first.
    pub fn value_of(&self, header: &DictHeader, hash: u64, key_ptr: u64) -> Option<u64> {
        header.tables.iter().filter(|t| t.size > 0).find_map(|t| {
            self.find_in_chain(t, hash, header.no_value, |_, k, _| k == key_ptr)
                .map(|(_, _, v)| v)
        })
    }

    /// The first entry of the chain of `t`'s bucket that `hash` selects for which
    /// `found(entry, key, value word)` holds, as `(entry, key, value word)`. The walk ends
    /// at a link that cannot be read, and is bounded by the table's counter (with slack)
    /// and loop detection.
    fn find_in_chain(
        &self,
        t: &Table,
        hash: u64,
        no_value: bool,
        mut found: impl FnMut(u64, u64, u64) -> bool,
    ) -> Option<(u64, u64, u64)> {
        let slot = (hash & t.size.wrapping_sub(1))
            .checked_mul(8)
            .and_then(|o| t.buckets.checked_add(o))?;
        let mut p = self.ctx.space.u64(slot).ok()?;
        let mut guard = self
            .ctx
            .guard("dict bucket chain", t.used.saturating_mul(2) + 64);
        while p != 0 && guard.step(p).is_ok() {
            let (k, v, next) = self.entry(p, no_value).ok()?;
            if found(p, k, v) {
                return Some((p, k, v));
            }
            p = next;
        }
        None
    }

    /// Starts loading what the walk reads soon, in stages over the buckets ahead: the head
    /// entry of the bucket [`PREFETCH_AHEAD`] on (`far`); then, every [`PREFETCH_STEP`]
    /// buckets nearer, one more entry of each chain, whose line was asked for at the stage
    /// before: its key, its value and the link after it. So the entries that follow a
    /// head in their chain arrive in time too, not one dependent miss after another.
    fn prefetch_ahead(&self, header: &DictHeader, ring: &mut PrefetchRing, bi: usize, far: u64) {
        let space = self.ctx.space;
        if let Some(slot) = ring.0.get_mut((bi + PREFETCH_AHEAD) % PREFETCH_AHEAD) {
            *slot = far;
        }
        if far != 0 {
            space.prefetch(far);
        }
        for stage in 1..=PREFETCH_DEPTH {
            let b = bi + PREFETCH_AHEAD - stage * PREFETCH_STEP;
            let Some(slot) = ring.0.get_mut(b % PREFETCH_AHEAD) else {
                continue;
            };
            let p = std::mem::take(slot);
            if p == 0 {
                continue;
            }
            if let Ok((key, value, next)) = self.entry(p, header.no_value) {
                if self.keys == KeyForm::Sds {
                    // The sds header sits just before the key's bytes.
                    space.prefetch(key.wrapping_sub(1));
                } else {
                    // An object: its header and the key it embeds.
                    space.prefetch_span(key, 64);
                }
                if !header.no_value && self.pointer_values {
                    space.prefetch(value);
                }
                if next != 0 {
                    space.prefetch(next);
                    *slot = next;
                }
            }
        }
    }

    /// The hash of the key of an entry found in bucket `bucket` of a `size`-bucket table
    /// (`None` without a check, or when the key cannot be read); a fault when it hashes
    /// to another bucket: a damaged link led here from another chain.
    fn home(&self, key: u64, bucket: u64, size: u64) -> Result<Option<u64>, Fault> {
        let Some(hash) = self.key_hash(key) else {
            return Ok(None);
        };
        let home = hash & size.wrapping_sub(1);
        if home == bucket {
            Ok(Some(hash))
        } else {
            Err(misplaced_fault(bucket, home))
        }
    }

    /// The bucket check's hash of the key at `key` (`None` without a check, or when the
    /// key cannot be read).
    fn key_hash(&self, key: u64) -> Option<u64> {
        match self.check {
            Some(c) if self.keys == KeyForm::Sds => c.hash_of(self.ctx.space, key),
            Some(c) => self.name_of(key).map(|k| c.hash_bytes(&k)),
            None => None,
        }
    }

    /// For a walk that proved its entries by the bucket check (not marking them in
    /// `seen`): marks those of the refused entries, `misplaced`, that their own chain
    /// holds, as the walk handed them out there, so that [`settle_misplaced`] judges them
    /// as it would after a walk that marked every entry. Only damaged tables have any.
    fn mark_held_by_own_chain(
        &self,
        header: &DictHeader,
        misplaced: &[(u64, u64, Fault)],
        seen: &mut SeenEntries,
    ) {
        let Some(t) = header.tables.iter().find(|t| t.size > 0) else {
            return;
        };
        for &(_, entry, _) in misplaced {
            let Ok((key, _, _)) = self.entry(entry, header.no_value) else {
                continue;
            };
            let Some(hash) = self.key_hash(key) else {
                continue;
            };
            let held = self.find_in_chain(t, hash, header.no_value, |p, _, _| p == entry);
            if held.is_some() {
                seen.first_visit(entry);
            }
        }
    }

    /// Whether an entry handed out before this one names the same key as `key`, whose
    /// hash is `hash`: one of this chain's (`chain_names`: hash and key pointer of those
    /// handed out), or, for an entry of table 1 while rehashing, one of the chain of table
    /// 0 the name hashes to (walked first). Equal names share a bucket once the bucket
    /// check has passed, so no other chain can hold one.
    fn named_before(
        &self,
        header: &DictHeader,
        table: usize,
        key: u64,
        hash: u64,
        chain_names: &[(u64, u64)],
        seen: &SeenEntries,
    ) -> Option<Vec<u8>> {
        self.check?;
        let name = || self.name_of(key);
        for &(h, k) in chain_names {
            if h == hash {
                let (Some(a), Some(b)) = (name(), self.name_of(k)) else {
                    continue;
                };
                if *a == *b {
                    return Some(a.into_owned());
                }
            }
        }
        let t0 = header.tables.first().filter(|t| t.size > 0 && table == 1)?;
        let mine = name()?;
        self.find_in_chain(t0, hash, header.no_value, |p, k0, _| {
            seen.contains(p) && self.name_of(k0).is_some_and(|other| *other == *mine)
        })?;
        Some(mine.into_owned())
    }

    /// Read and check the dict header at `addr`.
    pub fn header(&self, addr: u64) -> Result<DictHeader, Fault> {
        let layout = self.ctx.layout;
        let d = &layout.dict;
        let bytes = self.ctx.space.read(addr, d.size as usize)?;
        let field = |f: Field| {
            f.get(&bytes).ok_or_else(|| {
                Fault::of(FaultKind::ProfileGap, "dict field outside the dict struct")
            })
        };
        // Every dict of every supported build starts with its `dictType *type`, which
        // dictCreate always sets: a NULL there is a zeroed or scribbled header, whose
        // zero counters must not be taken as an empty dict.
        if bytes.get(..8).is_some_and(|t| t.iter().all(|b| *b == 0)) {
            return Err(Fault::of(
                FaultKind::NullPointer,
                format!(
                    "dict {addr:#x} has a NULL type pointer: its header is zeroed or overwritten"
                ),
            ));
        }
        let rehashidx = field(d.rehashidx)? as i64;
        let mut tables = [Table::default(); 2];
        for (i, t) in tables.iter_mut().enumerate() {
            let i = i as u64;
            // Either shape comes down to (bucket array, size exponent or size, used).
            let (buckets, size, used) = match layout.features.dict {
                DictFlavor::HtTable => {
                    let exp = field(d.ht_size_exp.element(i, 1))? as u8 as i8 as i64;
                    let size = match exp {
                        -1 => 0,
                        0..=MAX_SIZE_EXP => 1u64 << exp,
                        _ => {
                            return Err(Fault::of(
                                FaultKind::BadHeader,
                                format!("dict {addr:#x} table {i} has size exponent {exp}"),
                            ))
                        }
                    };
                    (
                        field(d.ht_table.element(i, 8))?,
                        size,
                        field(d.ht_used.element(i, 8))?,
                    )
                }
                DictFlavor::Dictht => {
                    let base = d.ht.offset + i * d.dictht_size;
                    let at = |f: Field| Field {
                        offset: base + f.offset,
                        size: f.size,
                    };
                    let size = field(at(d.table_size))?;
                    if size != 0 && (!size.is_power_of_two() || size > 1 << MAX_SIZE_EXP) {
                        return Err(Fault::of(
                            FaultKind::BadHeader,
                            format!("dict {addr:#x} table {i} has size {size}, not a power of two"),
                        ));
                    }
                    (field(at(d.table))?, size, field(at(d.used))?)
                }
            };
            if size == 0 {
                if buckets != 0 || used != 0 {
                    return Err(Fault::of(FaultKind::BadHeader, format!(
                        "dict {addr:#x} table {i} has no size but buckets {buckets:#x} / used {used}"
                    )));
                }
                continue;
            }
            *t = Table {
                buckets,
                size,
                used,
            };
        }
        if rehashidx < -1 || (rehashidx >= 0 && rehashidx as u64 >= tables[0].size.max(1)) {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!("dict {addr:#x} has rehashidx {rehashidx}"),
            ));
        }
        if (rehashidx == -1) != (tables[1].size == 0) {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!(
                    "dict {addr:#x}: rehashidx {rehashidx} disagrees with table 1 of size {}",
                    tables[1].size
                ),
            ));
        }
        let no_value = if layout.features.dict_entry == EntryFlavor::NextFirst {
            let ty = bytes
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes);
            self.type_no_value(ty)?
        } else {
            false
        };
        Ok(DictHeader {
            tables,
            rehashidx,
            no_value,
        })
    }

    /// `dictType.no_value` of the type at `ty`.
    fn type_no_value(&self, ty: u64) -> Result<bool, Fault> {
        let bits = self.ctx.layout.entry.type_no_value;
        let len = (bits.bit_offset + u64::from(bits.width)).div_ceil(8);
        let b = self.ctx.space.read(ty, len as usize)?;
        match bits.get(&b) {
            Some(v) => Ok(v == 1),
            None => Err(Fault::of(
                FaultKind::ProfileGap,
                "dictType.no_value outside the dictType",
            )),
        }
    }

    /// The `{key, next}` of an entry without a value at `base`.
    fn no_value_entry(&self, base: u64) -> Result<(u64, u64, u64), Fault> {
        let e = &self.ctx.layout.entry;
        let b = self.ctx.space.read(base, e.no_value_size as usize)?;
        match (e.no_value_key.get(&b), e.no_value_next.get(&b)) {
            (Some(k), Some(n)) => Ok((k, 0, n)),
            _ => Err(Fault::of(
                FaultKind::ProfileGap,
                "dictEntryNoValue fields outside the entry",
            )),
        }
    }

    /// The `(key, value word, next)` of a `dictEntryEmbedded` at `base`: its key is the
    /// sds copied, header and all, into the entry's `key_buf`, `key_header_size` bytes in.
    /// The header size must be one of an sds header's (1, 3, 5, 9, 17) and agree with the
    /// type in the copied flags byte (the header's last).
    fn embedded_entry(&self, base: u64) -> Result<(u64, u64, u64), Fault> {
        let Some(e) = self.ctx.layout.entry.embedded else {
            return Err(Fault::of(
                FaultKind::BadHeader,
                "dict entry pointer with tag 4",
            ));
        };
        let b = self.ctx.space.read(base, e.key_buf as usize)?;
        let (Some(v), Some(next), Some(header)) =
            (e.v.get(&b), e.next.get(&b), e.key_header_size.get(&b))
        else {
            return Err(Fault::of(
                FaultKind::ProfileGap,
                "dictEntryEmbedded fields outside the entry",
            ));
        };
        // sdshdr5, 8, 16, 32, 64: header sizes 1 to 17, types 0 to 4.
        let Some(sds_type) = [1u64, 3, 5, 9, 17].iter().position(|h| *h == header) else {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!(
                "embedded dict entry {base:#x} has key header size {header}, not an sds header's"
            ),
            ));
        };
        let key = base
            .checked_add(e.key_buf)
            .and_then(|k| k.checked_add(header))
            .ok_or_else(|| {
                Fault::of(
                    FaultKind::OutsideAllocation,
                    "embedded dict entry at the end of the address space",
                )
            })?;
        let flags = self.ctx.space.u8(key - 1)?;
        if usize::from(flags & 7) != sds_type {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!(
                    "embedded dict entry {base:#x} has key header size {header} but sds type {}",
                    flags & 7
                ),
            ));
        }
        Ok((key, v, next))
    }

    /// Decode the chain link `p` of a dict whose type says `no_value`: (key, value word,
    /// next link). A bare key ends the chain.
    fn entry(&self, p: u64, no_value: bool) -> Result<(u64, u64, u64), Fault> {
        let e = &self.ctx.layout.entry;
        let flavor = self.ctx.layout.features.dict_entry;
        if flavor != EntryFlavor::Plain {
            // An odd pointer is the key itself (an sds), stored bare: the chain ends.
            if p & 1 == 1 {
                return Ok((p, 0, 0));
            }
            let tag = p & 7;
            let base = p & !7;
            match (flavor, tag) {
                (_, 0) if flavor != EntryFlavor::NextFirst || !no_value => {}
                (EntryFlavor::NextFirst, 0) => return self.no_value_entry(p),
                (EntryFlavor::Tagged, 2) | (EntryFlavor::TaggedEvenKeys, 4) => {
                    return self.no_value_entry(base)
                }
                // An entry embedding its key (Valkey 8.0's keyspace), where the build has one.
                (EntryFlavor::Tagged, 4) if e.embedded.is_some() => {
                    return self.embedded_entry(base)
                }
                // A bare even key (an object pointer), tagged so: the chain ends.
                (EntryFlavor::TaggedEvenKeys | EntryFlavor::NextFirst, 2) => {
                    return Ok((base, 0, 0))
                }
                _ => {
                    return Err(Fault::of(
                        FaultKind::BadHeader,
                        format!("dict entry pointer with tag {tag}"),
                    ))
                }
            }
        }
        let entry = self.ctx.space.read(p, e.size as usize)?;
        match (e.key.get(&entry), e.v.get(&entry), e.next.get(&entry)) {
            (Some(k), Some(v), Some(n)) => Ok((k, v, n)),
            _ => Err(Fault::of(
                FaultKind::ProfileGap,
                "dictEntry fields outside the entry",
            )),
        }
    }

    /// Call `f(key, value_word)` for every entry of both tables, each entry once.
    ///
    /// A broken chain costs the rest of that chain only; it is recorded and the walk goes
    /// on with the next bucket. The total number of entries visited is capped by the
    /// dict's counters (with slack), so garbage cannot make the walk run away.
    pub fn for_each(&self, header: &DictHeader, mut f: impl FnMut(u64, u64)) -> WalkFaults {
        self.for_each_hashed(header, |k, v, _| f(k, v))
    }

    /// [`DictWalker::for_each`], also handing out each key's hash when the bucket check
    /// computed it (equal names hash alike: a duplicate check can compare names only
    /// where their hashes agree).
    pub fn for_each_hashed(
        &self,
        header: &DictHeader,
        f: impl FnMut(u64, u64, Option<u64>),
    ) -> WalkFaults {
        // The set is this walk's own. A walk proving its entries by the bucket check marks
        // few or none: no room is made for all (a set or hash value is often small, and
        // there are many).
        let sole = self.with_sole_table(true);
        let mut seen = SeenEntries::for_walk(sole.proves_by_bucket(header), header.used());
        sole.walk_unique(header, &mut seen, f)
    }

    /// [`DictWalker::for_each`] sharing `seen` with other walks, so that an entry reached
    /// from two tables (the tables of one kvstore, or both tables while rehashing) is
    /// handed out once.
    pub fn for_each_unique(
        &self,
        header: &DictHeader,
        seen: &mut SeenEntries,
        mut f: impl FnMut(u64, u64),
    ) -> WalkFaults {
        self.walk_unique(header, seen, |k, v, _| f(k, v))
    }

    /// [`DictWalker::for_each_unique`], handing out each key's hash too, when computed.
    fn walk_unique(
        &self,
        header: &DictHeader,
        seen: &mut SeenEntries,
        mut f: impl FnMut(u64, u64, Option<u64>),
    ) -> WalkFaults {
        const WHAT: &str = "dict bucket chain";
        let mut faults = WalkFaults::default();
        let mut chain = Vec::new();
        let mut chain_names = Vec::new();
        let names = self.names_checked();
        let proven = self.proves_by_bucket(header);
        let mut misplaced = Vec::new();
        for (ti, t) in header.tables.iter().enumerate() {
            if t.size == 0 {
                continue;
            }
            let budget = t.used.saturating_mul(2).saturating_add(64);
            let mut visited = 0u64;
            let buckets = match self.ctx.space.read(t.buckets, (t.size * 8) as usize) {
                Ok(b) => b,
                Err(err) => {
                    faults.push(
                        0,
                        Fault::of(
                            FaultKind::Inconsistent,
                            format!("bucket array of table {ti}: {err}"),
                        ),
                    );
                    continue;
                }
            };
            let head_of = |bi: usize| {
                buckets
                    .get(bi * 8..bi * 8 + 8)
                    .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            };
            let mut ring = PrefetchRing(std::array::from_fn(head_of));
            for (bi, slot) in buckets.chunks_exact(8).enumerate() {
                if let Err(err) = self.ctx.budget.check() {
                    faults.push(bi as u64, err);
                    return faults;
                }
                let far = head_of(bi + PREFETCH_AHEAD);
                seen.prefetch(far);
                self.prefetch_ahead(header, &mut ring, bi, far);
                let mut p = u64::from_le_bytes(slot.try_into().unwrap_or([0; 8]));
                let mut guard = self.ctx.guard(WHAT, budget);
                chain.clear();
                chain_names.clear();
                while p != 0 {
                    if let Err(err) = guard.step(p) {
                        faults.push(bi as u64, err);
                        break;
                    }
                    // Told apart by the chain itself, or by `seen` (see `with_sole_table`).
                    let by_chain = proven && chain.len() < CHAIN_BY_ITSELF;
                    if proven && chain.len() == CHAIN_BY_ITSELF {
                        // A chain this long is damaged: from here on `seen` holds it all.
                        for &q in &chain {
                            seen.first_visit(q);
                        }
                    }
                    let fresh = if by_chain {
                        !chain.contains(&p)
                    } else {
                        seen.first_visit(p)
                    };
                    if !fresh {
                        faults.push(bi as u64, revisit_fault(WHAT, p, chain.contains(&p)));
                        break;
                    }
                    chain.push(p);
                    match self.entry(p, header.no_value) {
                        Ok((key, v, next)) => {
                            let hash = match self.home(key, bi as u64, t.size) {
                                Ok(h) => h,
                                Err(err) => {
                                    // Either the link here is damaged (the entry belongs
                                    // to another chain, which may still reach it: forget
                                    // it) or the key's bytes are (only the entry is
                                    // lost). Which one is known at the end. Go on: entries
                                    // that follow and belong here are kept, the others
                                    // are refused one by one.
                                    if !by_chain {
                                        seen.forget(p);
                                    }
                                    misplaced.push((bi as u64, p, err));
                                    p = next;
                                    continue;
                                }
                            };
                            // An entry whose key cannot be hashed is not proven to
                            // belong here: `seen` tells whether another chain had it.
                            if by_chain && hash.is_none() && !seen.first_visit(p) {
                                faults.push(bi as u64, revisit_fault(WHAT, p, false));
                                break;
                            }
                            visited += 1;
                            if let (true, Some(hash)) = (names, hash) {
                                let before =
                                    self.named_before(header, ti, key, hash, &chain_names, seen);
                                if let Some(name) = before {
                                    faults.duplicates += 1;
                                    if faults.duplicate_names.len() < MAX_KEPT_FAULTS {
                                        faults.duplicate_names.push(name);
                                    }
                                    p = next;
                                    continue;
                                }
                                chain_names.push((hash, key));
                            }
                            f(key, v, hash);
                            p = next;
                        }
                        Err(err) => {
                            // Nothing was read here, so nothing was handed out: another
                            // chain reaching it must meet the same fault, not a revisit.
                            if !by_chain {
                                seen.forget(p);
                            }
                            faults.push(bi as u64, err);
                            break;
                        }
                    }
                }
                if visited > budget {
                    faults.push(
                        bi as u64,
                        Fault::of(
                            FaultKind::CounterMismatch,
                            format!(
                                "table {ti} holds more entries than its used counter {} allows",
                                t.used
                            ),
                        ),
                    );
                    break;
                }
            }
        }
        if proven {
            self.mark_held_by_own_chain(header, &misplaced, seen);
        }
        settle_misplaced(misplaced, seen, &mut faults);
        faults
    }
}

/// The fault for an entry found in bucket `bucket` whose key hashes to bucket `home`.
pub(crate) fn misplaced_fault(bucket: u64, home: u64) -> Fault {
    Fault::of(FaultKind::MisplacedEntry, format!(
        "an entry found in bucket {bucket} has a key that hashes to bucket {home}: a damaged link leads into another chain"
    ))
}

/// Judge the entries a walk refused, `(bucket, entry, why)`, once every chain was walked
/// (they were forgotten in `seen` when refused). A refused entry that its own chain then
/// handed out was reached through a damaged link: the chain that led to it lost its real
/// continuation (one fault per such chain). One that no chain holds has a damaged key.
pub(crate) fn settle_misplaced(
    misplaced: Vec<(u64, u64, Fault)>,
    seen: &SeenEntries,
    faults: &mut WalkFaults,
) {
    let mut redirected = std::collections::HashSet::new();
    for (bucket, entry, err) in misplaced {
        if seen.contains(entry) {
            if redirected.insert(bucket) {
                faults.push(bucket, err);
            }
        } else {
            faults.damaged_keys += 1;
        }
    }
}

#[cfg(test)]
mod tests;
