//! `DictWalker` over `dictht ht[2]` dicts (3.2) and `ht_table[2]` dicts (7.0).

use crate::profile::layout::DictFlavor;
use crate::walker::context::WalkContext;
use crate::walker::dict::{DictHeader, DictWalker, WalkFaults};
use crate::walker::fault::FaultKind;
use crate::walker::testheap::{layout, DictTable, Heap, NOWHERE};

/// One build of each dict shape.
const BUILDS: [(&str, DictFlavor); 2] = [
    ("3.2.6", DictFlavor::Dictht),
    ("7.0.15-debian", DictFlavor::HtTable),
];

/// Chains of (key, value) words: key `k` has value `k + 0x100`. The walker reads neither
/// without a bucket check.
fn chains(keys: &[&[u64]]) -> DictTable {
    keys.iter()
        .map(|c| c.iter().map(|k| (*k, k + 0x100)).collect())
        .collect()
}

/// The header at `addr` and every (key, value) the walk hands out, sorted.
fn walk(heap: &Heap<'_>, addr: u64) -> (DictHeader, Vec<(u64, u64)>, WalkFaults) {
    let space = heap.space();
    let ctx = WalkContext::new(&space, heap.l, Default::default());
    let w = DictWalker::new(&ctx);
    let h = w.header(addr).unwrap();
    let mut got = Vec::new();
    let faults = w.for_each(&h, |k, v| got.push((k, v)));
    got.sort_unstable();
    (h, got, faults)
}

fn pairs(keys: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = keys.into_iter().map(|k| (k, k + 0x100)).collect();
    v.sort_unstable();
    v
}

#[test]
fn chains_yield_every_key_once() {
    for (build, flavour) in BUILDS {
        let l = layout(build);
        assert_eq!(l.features.dict, flavour, "{build}");
        let mut heap = Heap::new(&l);
        let d = heap.dict(&[chains(&[&[1, 2, 3], &[], &[4], &[5, 6]])], -1);
        let (h, got, faults) = walk(&heap, d.addr);
        assert_eq!((h.tables[0].size, h.used()), (4, 6), "{build}");
        assert!(!h.rehashing(), "{build}");
        assert_eq!(got, pairs(1..=6), "{build}");
        assert_eq!(faults.count, 0, "{build}: {:?}", faults.faults);
    }
}

#[test]
fn a_rehashing_dict_yields_both_tables() {
    for (build, _) in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        // Buckets 0 and 1 of table 0 already moved to table 1.
        let t0 = chains(&[&[], &[], &[1, 2], &[3]]);
        let t1 = chains(&[&[10], &[], &[11, 12], &[], &[], &[13], &[], &[14]]);
        let d = heap.dict(&[t0, t1], 2);
        let (h, got, faults) = walk(&heap, d.addr);
        assert!(h.rehashing(), "{build}");
        assert_eq!((h.tables[0].used, h.tables[1].used), (3, 5), "{build}");
        assert_eq!(h.tables[1].size, 8, "{build}");
        assert_eq!(got, pairs([1, 2, 3, 10, 11, 12, 13, 14]), "{build}");
        assert_eq!(faults.count, 0, "{build}: {:?}", faults.faults);
    }
}

#[test]
fn a_looping_chain_is_a_cycle_fault() {
    for (build, _) in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let d = heap.dict(&[chains(&[&[1, 2, 3], &[4]])], -1);
        let e = &d.entries[0][0];
        heap.set(e[2], l.entry.next, e[0]); // the last entry leads back to the first
        let (_, got, faults) = walk(&heap, d.addr);
        assert_eq!(got, pairs(1..=4), "{build}: each entry once");
        assert_eq!(faults.count, 1, "{build}: {:?}", faults.faults);
        assert_eq!(faults.faults[0].0, 0, "{build}: in bucket 0");
        assert_eq!(faults.faults[0].1.kind(), FaultKind::Cycle, "{build}");
    }
}

#[test]
fn pointers_outside_the_heap_are_faults() {
    for (build, _) in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let d = heap.dict(&[chains(&[&[1, 2], &[3], &[4], &[5]])], -1);
        // Entry 1's `next` and bucket 2's head point to one address that is nowhere:
        // each costs its chain's rest, and the second is the same fault, not a revisit
        // (nothing was handed out there).
        heap.set(d.entries[0][0][0], l.entry.next, NOWHERE);
        heap.put_u64(d.buckets[0] + 2 * 8, NOWHERE);
        let (_, got, faults) = walk(&heap, d.addr);
        assert_eq!(got, pairs([1, 3, 5]), "{build}");
        let kinds: Vec<(u64, FaultKind)> =
            faults.faults.iter().map(|(b, f)| (*b, f.kind())).collect();
        assert_eq!(
            kinds,
            [(0, FaultKind::Unmapped), (2, FaultKind::Unmapped)],
            "{build}"
        );
        assert!(faults.into_result().is_err(), "{build}");

        // A bucket array outside the heap: the table cannot be read at all.
        let mut heap = Heap::new(&l);
        let d = heap.dict(&[chains(&[&[1], &[2]])], -1);
        match l.features.dict {
            DictFlavor::HtTable => heap.set(d.addr, l.dict.ht_table.element(0, 8), NOWHERE),
            DictFlavor::Dictht => heap.set(d.addr + l.dict.ht.offset, l.dict.table, NOWHERE),
        }
        let (_, got, faults) = walk(&heap, d.addr);
        assert!(got.is_empty(), "{build}");
        assert_eq!(faults.count, 1, "{build}");
        assert_eq!(
            faults.faults[0].1.kind(),
            FaultKind::Inconsistent,
            "{build}"
        );
    }
}

#[test]
fn damaged_headers_are_refused() {
    for (build, flavour) in BUILDS {
        let l = layout(build);
        let header = |damage: &dyn Fn(&mut Heap<'_>, u64)| {
            let mut heap = Heap::new(&l);
            let d = heap.dict(&[chains(&[&[1], &[2]])], -1);
            damage(&mut heap, d.addr);
            let space = heap.space();
            let ctx = WalkContext::new(&space, &l, Default::default());
            DictWalker::new(&ctx).header(d.addr).map(|_| ())
        };
        assert_eq!(header(&|_, _| {}), Ok(()), "{build}");
        let kind = |damage: &dyn Fn(&mut Heap<'_>, u64)| header(damage).unwrap_err().kind();
        assert_eq!(
            kind(&|h, a| h.put_u64(a, 0)),
            FaultKind::NullPointer,
            "{build}: a NULL type"
        );
        assert_eq!(
            kind(&|h, a| h.set(a, l.dict.rehashidx, 1)),
            FaultKind::BadHeader,
            "{build}: rehashing without table 1"
        );
        let bad_size = |h: &mut Heap<'_>, a: u64| match flavour {
            DictFlavor::HtTable => h.set(a, l.dict.ht_size_exp.element(0, 1), 99),
            DictFlavor::Dictht => h.set(a + l.dict.ht.offset, l.dict.table_size, 3),
        };
        assert_eq!(kind(&bad_size), FaultKind::BadHeader, "{build}: table size");
    }
}
