//! `HashtableWalker` over Valkey hashtables of two builds. Their bucket layouts are the
//! same; the `hashtable` struct grew (`safe_iterators`, 72 → 80 bytes) in 9.1.

use crate::walker::context::WalkContext;
use crate::walker::dict::{DictHeader, WalkFaults};
use crate::walker::fault::FaultKind;
use crate::walker::hashtable::HashtableWalker;
use crate::walker::testheap::{layout, HashtableAt, Heap, NOWHERE};

const BUILDS: [&str; 2] = ["valkey-8.1.8", "valkey-9.1.2"];

/// Entry pointers `first..first + n` (8 apart): the walker does not read them without a
/// bucket check.
fn entries(first: u64, n: u64) -> Vec<u64> {
    (0..n).map(|i| first + 8 * i).collect()
}

fn walk(heap: &Heap<'_>, addr: u64) -> (DictHeader, Vec<u64>, WalkFaults) {
    let space = heap.space();
    let ctx = WalkContext::new(&space, heap.l, Default::default());
    let w = HashtableWalker::new(&ctx);
    let h = w.header(addr).unwrap();
    let mut got = Vec::new();
    let faults = w.for_each(&h, |e| got.push(e));
    got.sort_unstable();
    (h, got, faults)
}

/// Bucket 0: 15 entries (a chain of three buckets); bucket 2: two; bucket 3: seven (one
/// full bucket, not chained).
fn table(heap: &mut Heap<'_>) -> (HashtableAt, Vec<u64>) {
    let t = vec![
        entries(0x1000, 15),
        Vec::new(),
        entries(0x2000, 2),
        entries(0x3000, 7),
    ];
    let all = t.concat();
    (heap.hashtable(&[t], -1), all)
}

#[test]
fn buckets_and_child_buckets_yield_every_entry_once() {
    assert_ne!(
        layout(BUILDS[0]).hashtable.size,
        layout(BUILDS[1]).hashtable.size
    );
    for build in BUILDS {
        let l = layout(build);
        assert_eq!(l.hashtable.slots, 7, "{build}");
        let mut heap = Heap::new(&l);
        let (ht, mut all) = table(&mut heap);
        assert_eq!(ht.chains[0][0].len(), 3, "{build}");
        assert_eq!(ht.chains[0][3].len(), 1, "{build}");
        let (h, got, faults) = walk(&heap, ht.addr);
        assert_eq!((h.tables[0].size, h.used()), (4, 24), "{build}");
        all.sort_unstable();
        assert_eq!(got, all, "{build}");
        assert_eq!(faults.count, 0, "{build}: {:?}", faults.faults);
    }
}

#[test]
fn a_rehashing_hashtable_yields_both_tables() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let t0 = vec![Vec::new(), entries(0x1000, 3)];
        let t1 = vec![
            entries(0x2000, 1),
            Vec::new(),
            entries(0x3000, 9),
            Vec::new(),
        ];
        let ht = heap.hashtable(&[t0.clone(), t1.clone()], 1);
        let (h, got, faults) = walk(&heap, ht.addr);
        assert!(h.rehashing(), "{build}");
        assert_eq!((h.tables[0].used, h.tables[1].used), (3, 10), "{build}");
        let mut all = [t0.concat(), t1.concat()].concat();
        all.sort_unstable();
        assert_eq!(got, all, "{build}");
        assert_eq!(faults.count, 0, "{build}: {:?}", faults.faults);
    }
}

#[test]
fn a_child_bucket_leading_back_is_a_cycle_fault() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let (ht, mut all) = table(&mut heap);
        // The last child of bucket 0's chain leads back to the top-level bucket.
        let chain = ht.chains[0][0].clone();
        let last = chain[2];
        let h = l.hashtable;
        heap.set(last, h.entries.element(h.slots - 1, 8), chain[0]);
        heap.set_bits(last, h.chained, 1);
        let (_, got, faults) = walk(&heap, ht.addr);
        all.sort_unstable();
        assert_eq!(got, all, "{build}: each entry once");
        assert_eq!(faults.count, 1, "{build}: {:?}", faults.faults);
        assert_eq!(faults.faults[0].1.kind(), FaultKind::Cycle, "{build}");
    }
}

#[test]
fn a_broken_child_pointer_is_a_fault() {
    for build in BUILDS {
        let l = layout(build);
        let h = l.hashtable;
        for (child, kind) in [
            (NOWHERE, FaultKind::Inconsistent),
            (0, FaultKind::NullPointer),
        ] {
            let mut heap = Heap::new(&l);
            let (ht, _) = table(&mut heap);
            // Bucket 0's first child is lost: its 6 entries and the 3 of the next child.
            heap.set(ht.chains[0][0][0], h.entries.element(h.slots - 1, 8), child);
            let (_, got, faults) = walk(&heap, ht.addr);
            assert_eq!(got.len(), 24 - 9, "{build}");
            assert_eq!(faults.count, 1, "{build}: {:?}", faults.faults);
            assert_eq!(faults.faults[0].0, 0, "{build}");
            assert_eq!(faults.faults[0].1.kind(), kind, "{build}: child {child:#x}");
        }
    }
}

#[test]
fn damaged_headers_are_refused() {
    for build in BUILDS {
        let l = layout(build);
        let h = l.hashtable;
        let header = |damage: &dyn Fn(&mut Heap<'_>, u64)| {
            let mut heap = Heap::new(&l);
            let (ht, _) = table(&mut heap);
            damage(&mut heap, ht.addr);
            let space = heap.space();
            let ctx = WalkContext::new(&space, &l, Default::default());
            HashtableWalker::new(&ctx).header(ht.addr).map(|_| ())
        };
        assert_eq!(header(&|_, _| {}), Ok(()), "{build}");
        let kind = |damage: &dyn Fn(&mut Heap<'_>, u64)| header(damage).unwrap_err().kind();
        assert_eq!(
            kind(&|m, a| m.put_u64(a, 0)),
            FaultKind::NullPointer,
            "{build}"
        );
        assert_eq!(
            kind(&|m, a| m.set(a, h.bucket_exp.element(0, 1), 50)),
            FaultKind::BadHeader,
            "{build}: bucket exponent"
        );
        assert_eq!(
            kind(&|m, a| m.set(a, h.rehash_idx, 0)),
            FaultKind::BadHeader,
            "{build}: rehashing without table 1"
        );
        assert_eq!(
            kind(&|m, a| m.set(a, h.used.element(1, 8), 5)),
            FaultKind::BadHeader,
            "{build}: entries in a table that does not exist"
        );
    }
}

/// A bucket exponent damaged upwards (2^40 buckets, far past the core) costs the table at
/// once, with one fault, instead of a fault per bucket until the key's time runs out.
#[test]
fn a_bucket_array_past_the_core_is_one_fault() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let (ht, _) = table(&mut heap);
        heap.set(ht.addr, l.hashtable.bucket_exp.element(0, 1), 40);
        let (h, got, faults) = walk(&heap, ht.addr);
        assert_eq!(h.tables[0].size, 1 << 40, "{build}");
        assert!(got.is_empty(), "{build}");
        assert_eq!(faults.count, 1, "{build}: {:?}", faults.faults);
        assert_eq!(
            faults.faults[0].1.kind(),
            FaultKind::Inconsistent,
            "{build}"
        );
    }
}
