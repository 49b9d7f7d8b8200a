//! Valkey 9's atomic slot migration: the tables of a kvstore whose slots are being imported.
//!
//! While a node imports slots from another (`CLUSTER MIGRATESLOTS` on the source), the keys
//! it has received already sit in the ordinary per-slot hashtables of its kvstores, but the
//! slots are listed in `kvstore.importing` and their keys are counted in
//! `importing_key_count` instead of `key_count` (so `DBSIZE` leaves them out). Until the
//! import finishes, the source node still owns those slots and the import may still fail
//! and be rolled back (the target then deletes the keys). So the walker keeps those tables
//! apart, and whether they are written is the user's choice (`--include-importing`).
//!
//! The set is a `hashtable` of Valkey's `intHashtableType`: it has no key callbacks, so
//! each entry *is* the table index (`(void *)(intptr_t)didx`), hashed as its 8 bytes. It
//! is read with the same bounded hashtable walk as the keys tables, and trusted only when
//! it is whole and consistent: every entry a table index, as many entries as its counter
//! says, and `importing_key_count` equal to the keys its slots' tables hold. Otherwise no
//! slot is treated as importing (every key is written, none is withheld on doubtful
//! evidence) and the reason becomes a warning.

use super::context::WalkContext;
use super::dict::DictHeader;
use super::fault::Fault;
use crate::profile::layout::KvstoreLayout;
use crate::walker::fault::FaultKind;

/// One table of a kvstore: its index (the cluster slot), address and checked header.
pub type IndexedTable = (u32, u64, DictHeader);

/// The tables of a kvstore whose slots are being imported, kept apart from the others.
#[derive(Debug, Clone, Default)]
pub struct ImportingTables {
    /// The slots in the importing set, sorted, each once; a slot whose table holds no key
    /// yet (not allocated) is listed too.
    pub slots: Vec<u32>,
    /// `(slot, address, header)` of the importing slots' tables that exist.
    pub tables: Vec<IndexedTable>,
    /// Why the set was not trusted (then `slots` is empty and every table is the node's
    /// own), for the report's warnings.
    pub warnings: Vec<String>,
}

impl ImportingTables {
    /// Keys the importing tables hold, by their own counters (saturating: the counters
    /// come from the core).
    pub fn used(&self) -> u64 {
        used_of(&self.tables)
    }

    /// A loader size hint for the importing tables (see [`DictHeader::size_hint`]).
    pub fn size_hint(&self) -> u64 {
        self.tables
            .iter()
            .fold(0u64, |n, (_, _, h)| n.saturating_add(h.size_hint()))
    }
}

/// Keys `tables` hold by their own counters, saturating.
pub fn used_of(tables: &[IndexedTable]) -> u64 {
    tables
        .iter()
        .fold(0u64, |n, (_, _, h)| n.saturating_add(h.used()))
}

/// Split the tables of the kvstore whose header bytes are `kv` (`count` tables) into its
/// own tables and the importing ones. Without an `importing` field in the layout (builds
/// before atomic slot migration) every table is the kvstore's own.
pub fn split(
    ctx: &WalkContext<'_, '_>,
    kvl: &KvstoreLayout,
    kv: &[u8],
    count: u64,
    tables: Vec<IndexedTable>,
) -> (Vec<IndexedTable>, ImportingTables) {
    let Some(field) = kvl.importing else {
        return (tables, ImportingTables::default());
    };
    let counter = kvl.importing_key_count.and_then(|f| f.get(kv));
    let counter_note = || {
        counter.map_or_else(String::new, |n| {
            format!(" (its importing_key_count reads {n})")
        })
    };
    let set = field
        .get(kv)
        .ok_or_else(|| {
            Fault::of(
                FaultKind::ProfileGap,
                "kvstore.importing outside the kvstore",
            )
        })
        .and_then(|addr| read_set(ctx, addr, count));
    let slots = match set {
        Ok(s) => s,
        Err(f) => {
            let warning = format!(
                "the set of slots being imported by atomic slot migration is unreadable ({f}): no slot is treated as importing, so the keys of any slot being imported are written as the node's own{}",
                counter_note()
            );
            return (
                tables,
                ImportingTables {
                    warnings: vec![warning],
                    ..ImportingTables::default()
                },
            );
        }
    };
    if slots.is_empty() && counter.unwrap_or(0) == 0 {
        return (tables, ImportingTables::default());
    }
    let (importing, own): (Vec<IndexedTable>, Vec<IndexedTable>) = tables
        .into_iter()
        .partition(|(slot, _, _)| slots.binary_search(slot).is_ok());
    let out = ImportingTables {
        slots,
        tables: importing,
        warnings: Vec::new(),
    };
    match counter {
        Some(n) if n != out.used() => {
            // The set or the counter is damaged: withholding keys needs consistent evidence.
            let listed = if out.slots.is_empty() {
                "is empty".to_owned()
            } else {
                format!(
                    "lists {} slot(s) ({}) whose tables hold {} keys",
                    out.slots.len(),
                    slot_ranges(&out.slots),
                    out.used()
                )
            };
            let warning = format!(
                "the set of slots being imported by atomic slot migration {listed}, but importing_key_count reads {n}: the set or the counter is damaged, so no slot is treated as importing and the keys of any slot being imported are written as the node's own"
            );
            let mut all = own;
            all.extend(out.tables);
            all.sort_unstable_by_key(|(slot, _, _)| *slot);
            (
                all,
                ImportingTables {
                    warnings: vec![warning],
                    ..ImportingTables::default()
                },
            )
        }
        _ => (own, out),
    }
}

/// The table indices in the importing set at `addr`, sorted: the whole set, each entry an
/// index below `count`, or an error.
pub fn read_set(ctx: &WalkContext<'_, '_>, addr: u64, count: u64) -> Result<Vec<u32>, Fault> {
    if addr == 0 {
        // kvstoreCreate always creates the set, empty or not.
        return Err(Fault::of(FaultKind::NullPointer, "its pointer is NULL"));
    }
    let walker = ctx.hashtables();
    let header = walker.header(addr)?;
    if header.used() > count {
        return Err(Fault::of(
            FaultKind::CounterMismatch,
            format!("it counts {} entries for {count} tables", header.used()),
        ));
    }
    // A set of at most `count` indices never needs more buckets than that; a bigger table
    // is a damaged exponent, and walking it would read buckets for nothing.
    let buckets: u64 = header.tables.iter().map(|t| t.size).sum();
    if buckets > count.max(64) {
        return Err(Fault::of(
            FaultKind::CounterMismatch,
            format!("its tables have {buckets} buckets for at most {count} entries"),
        ));
    }
    let mut slots = Vec::new();
    let mut stray = None;
    walker
        .for_each(&header, |entry| {
            match u32::try_from(entry).ok().filter(|s| u64::from(*s) < count) {
                Some(slot) => slots.push(slot),
                None => {
                    stray.get_or_insert(entry);
                }
            }
        })
        .into_result()?;
    if let Some(entry) = stray {
        return Err(Fault::of(
            FaultKind::BadHeader,
            format!("it holds {entry:#x}, which is no index of the kvstore's {count} tables"),
        ));
    }
    if slots.len() as u64 != header.used() {
        return Err(Fault::of(
            FaultKind::CounterMismatch,
            format!(
                "it yielded {} entries, its counter says {}",
                slots.len(),
                header.used()
            ),
        ));
    }
    slots.sort_unstable();
    Ok(slots)
}

/// `slots` (sorted) as ranges: `3300, 15495-15497`.
pub fn slot_ranges(slots: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = slots.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while let Some(next) = iter.next_if(|n| Some(*n) == end.checked_add(1)) {
            end = next;
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::AddressSpace;
    use crate::profile::{self, Layout};

    const BASE: u64 = 0x40_0000;
    /// The set's buckets at BASE+0x100; a kvstore header at BASE+0x400.
    const BUCKETS: u64 = 0x100;
    const KVSTORE: u64 = 0x400;

    fn layout() -> Layout {
        Layout::resolve(&profile::load("valkey-9.1.2").unwrap()).unwrap()
    }

    fn put(m: &mut [u8], off: u64, v: u64) {
        let off = off as usize;
        m[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Memory with an importing set at BASE (one table of 2 buckets) holding `slots` in
    /// bucket 0 with `used` as its counter, and a kvstore at BASE+KVSTORE pointing at it
    /// with `importing_key_count` = `counter`.
    fn memory(l: &Layout, slots: &[u64], used: u64, counter: u64) -> Vec<u8> {
        let h = &l.hashtable;
        let mut m = vec![0u8; 0x600];
        put(&mut m, 0, BASE + 0x500); // hashtableType
        put(&mut m, h.rehash_idx.offset, u64::MAX);
        put(&mut m, h.tables.offset, BASE + BUCKETS);
        put(&mut m, h.used.offset, used);
        m[h.bucket_exp.offset as usize] = 1; // 2 buckets
        m[h.bucket_exp.offset as usize + 1] = 0xff; // no table 1
        let mut presence = 0u8;
        for (i, s) in slots.iter().enumerate() {
            presence |= 1 << i;
            put(&mut m, BUCKETS + h.entries.offset + 8 * i as u64, *s);
        }
        m[BUCKETS as usize] = presence << 1;
        let kv = &l.kvstore;
        put(&mut m, KVSTORE + kv.importing.unwrap().offset, BASE);
        put(
            &mut m,
            KVSTORE + kv.importing_key_count.unwrap().offset,
            counter,
        );
        m
    }

    fn table(slot: u32, used: u64) -> IndexedTable {
        let mut h = DictHeader::default();
        h.tables[0].used = used;
        h.tables[0].size = 8;
        (slot, BASE + 0x1000 * u64::from(slot), h)
    }

    fn run(l: &Layout, m: &[u8], tables: Vec<IndexedTable>) -> (Vec<u32>, ImportingTables) {
        let space: AddressSpace<'_> = crate::core::address_space::single_segment(m, BASE);
        let ctx = WalkContext::new(&space, l, Default::default());
        let kv = &m[KVSTORE as usize..KVSTORE as usize + l.kvstore.size as usize];
        let (own, imp) = split(&ctx, &l.kvstore, kv, 16384, tables);
        (own.iter().map(|t| t.0).collect(), imp)
    }

    #[test]
    fn the_profile_has_the_importing_fields() {
        let l = layout();
        assert_eq!(l.kvstore.importing.map(|f| f.offset), Some(96));
        assert_eq!(l.kvstore.importing_key_count.map(|f| f.offset), Some(104));
        let old = Layout::resolve(&profile::load("valkey-8.1.8").unwrap()).unwrap();
        assert!(old.kvstore.importing.is_none());
    }

    #[test]
    fn importing_tables_are_kept_apart() {
        let l = layout();
        // Slot 0 is the entry 0: only the presence bit says it is there.
        let m = memory(&l, &[3300, 0, 15495], 3, 7);
        let tables = vec![table(0, 2), table(12, 4), table(3300, 5)];
        let (own, imp) = run(&l, &m, tables);
        assert_eq!(own, vec![12]);
        assert_eq!(imp.slots, vec![0, 3300, 15495], "15495 has no table yet");
        assert_eq!(
            imp.tables.iter().map(|t| t.0).collect::<Vec<_>>(),
            vec![0, 3300]
        );
        assert_eq!(imp.used(), 7);
        assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
    }

    #[test]
    fn an_empty_set_changes_nothing() {
        let l = layout();
        let m = memory(&l, &[], 0, 0);
        let (own, imp) = run(&l, &m, vec![table(1, 1), table(2, 1)]);
        assert_eq!(own, vec![1, 2]);
        assert!(imp.slots.is_empty() && imp.tables.is_empty() && imp.warnings.is_empty());
    }

    #[test]
    fn a_damaged_set_or_counter_withholds_nothing() {
        let l = layout();
        let cases: [(&[u64], u64, u64, &str); 5] = [
            (&[3300, 0x7f00_dead_beef], 2, 5, "no index"),
            (&[3300, 12], 3, 5, "counter says 3"),
            (&[3300], 1, 6, "importing_key_count reads 6"),
            (&[3300], 20_000, 5, "for 16384 tables"),
            (&[], 0, 5, "importing_key_count reads 5"),
        ];
        for (slots, used, counter, want) in cases {
            let m = memory(&l, slots, used, counter);
            let (own, imp) = run(&l, &m, vec![table(12, 1), table(3300, 5)]);
            assert_eq!(
                own,
                vec![12, 3300],
                "{slots:?} used {used}: every table written"
            );
            assert!(imp.slots.is_empty() && imp.tables.is_empty());
            assert!(
                imp.warnings.len() == 1 && imp.warnings[0].contains(want),
                "{slots:?} used {used} counter {counter}: {:?}",
                imp.warnings
            );
        }
        // A NULL set pointer, and one into memory the core does not hold.
        for ptr in [0, 0x10] {
            let mut m = memory(&l, &[3300], 1, 5);
            put(&mut m, KVSTORE + l.kvstore.importing.unwrap().offset, ptr);
            let (own, imp) = run(&l, &m, vec![table(3300, 5)]);
            assert_eq!(own, vec![3300]);
            assert!(
                imp.warnings.len() == 1 && imp.warnings[0].contains("unreadable"),
                "{:?}",
                imp.warnings
            );
        }
    }

    #[test]
    fn slot_ranges_are_compact() {
        assert_eq!(slot_ranges(&[]), "");
        assert_eq!(slot_ranges(&[5]), "5");
        assert_eq!(slot_ranges(&[0, 1, 2, 7, 9, 10]), "0-2, 7, 9-10");
        assert_eq!(
            slot_ranges(&[u32::MAX - 1, u32::MAX]),
            "4294967294-4294967295"
        );
    }
}
