//! The object census (2.8 to 3.2): shared integers found in the executable's data, and
//! objects refused when held more often than their `refcount` allows.

use crate::walker::census::{ObjectCensus, SharedIntegers};
use crate::walker::context::WalkContext;
use crate::walker::fault::FaultKind;
use crate::walker::object::ObjectDecoder;
use crate::walker::testheap::{layout, Heap, NOWHERE};
use crate::walker::WalkOptions;

const BUILDS: &[&str] = &["2.8.17", "3.2.6"];

/// `n` INT-encoded string objects holding 0 to n-1, and an array of pointers to them
/// (as `shared.integers`); the array's address and the objects'.
fn shared_array(heap: &mut Heap<'_>, n: u64) -> (u64, Vec<u64>) {
    let objects: Vec<u64> = (0..n).map(|v| heap.string_int(v as i64)).collect();
    let array = heap.alloc(8 * n, 8);
    for (i, o) in objects.iter().enumerate() {
        heap.put_u64(array + 8 * i as u64, *o);
    }
    (array, objects)
}

fn find(heap: &Heap<'_>, l: &crate::profile::Layout, at: u64, len: u64) -> Option<SharedIntegers> {
    let space = heap.space();
    let ctx = WalkContext::new(&space, l, WalkOptions::default());
    let bytes = space.read(at, len as usize).unwrap();
    SharedIntegers::find(&ctx, &[(at, bytes.as_ref())])
}

#[test]
fn the_shared_integers_array_is_found_once_and_only_whole() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let (array, objects) = shared_array(&mut heap, 1200);
        // Searched from a little before the array: the run starts at the object holding 0.
        let found = find(&heap, &l, array - 64, 8 * 1200 + 64).expect(build);
        assert_eq!(found.array, array, "{build}");
        assert_eq!(found.len, 1200, "{build}");
        let space = heap.space();
        let ctx = WalkContext::new(&space, &l, WalkOptions::default());
        assert!(found.holds(&ctx, objects[7], 7), "{build}");
        assert!(!found.holds(&ctx, objects[7], 8), "{build}");
        assert!(!found.holds(&ctx, objects[7], 5000), "{build}");
        // A damaged slot does not cut the array short: only its own value is not told.
        let mut heap = Heap::new(&l);
        let (array, objects) = shared_array(&mut heap, 1200);
        heap.put_u64(array + 8 * 700, objects[3]);
        let found = find(&heap, &l, array, 8 * 1200).expect(build);
        assert_eq!(found.len, 1200, "{build}");
        let space = heap.space();
        let ctx = WalkContext::new(&space, &l, WalkOptions::default());
        assert!(!found.holds(&ctx, objects[700], 700), "{build}");
        assert!(found.holds(&ctx, objects[1100], 1100), "{build}");
        // A run too short to be the array, and two arrays: neither is taken.
        let mut heap = Heap::new(&l);
        let (short, _) = shared_array(&mut heap, 500);
        assert_eq!(find(&heap, &l, short, 8 * 500), None, "{build}");
        let mut heap = Heap::new(&l);
        let (a, _) = shared_array(&mut heap, 1000);
        let (b, _) = shared_array(&mut heap, 1000);
        assert!(b > a);
        assert_eq!(find(&heap, &l, a, b + 8 * 1000 - a), None, "{build}");
    }
}

#[test]
fn objects_held_beyond_their_refcount_are_refused() {
    for build in BUILDS {
        let l = layout(build);
        let refcount = l.robj.refcount.expect("2.8-3.2 profiles have the refcount");
        let mut heap = Heap::new(&l);
        let (array, shared) = shared_array(&mut heap, 1000);
        let text = heap.string_raw(b"value");
        let private = heap.string_int(42);
        let mut census = ObjectCensus::default();
        // A string held twice with refcount 1: one of the two pointers is damaged.
        heap.set(text, refcount, 1);
        census.note(text);
        census.note(text);
        // Shared 7 held by two keys (refcount 3: the array and both), 8 by two more than
        // its refcount allows (refcount 2), 9 by one and only the array counted (refcount
        // 1); a private INT object held once with refcount 1.
        heap.set(shared[7], refcount, 3);
        heap.set(shared[8], refcount, 2);
        heap.set(shared[9], refcount, 1);
        heap.set(private, refcount, 1);
        for (obj, times) in [(shared[7], 2), (shared[8], 3), (shared[9], 1), (private, 1)] {
            for _ in 0..times {
                census.note(obj);
            }
        }
        let space = heap.space();
        let options = WalkOptions {
            shared_integers: Some(SharedIntegers { array, len: 1000 }),
            ..WalkOptions::default()
        };
        let ctx = WalkContext::new(&space, &l, options).with_census(Some(&census));
        let objects = ObjectDecoder::new(&ctx);
        let check = |obj: u64| objects.check_holders(&objects.header(obj).unwrap());
        let refused = |obj: u64| check(obj).unwrap_err();
        let f = refused(text);
        assert_eq!(f.kind(), FaultKind::Duplicate, "{build}");
        assert!(
            f.to_string()
                .contains("held in 2 places but its refcount is 1"),
            "{f}"
        );
        assert!(check(shared[7]).is_ok(), "{build}");
        let f = refused(shared[8]);
        assert!(
            f.to_string().contains("shared integer object 8")
                && f.to_string()
                    .contains("held in 3 places besides the shared array"),
            "{f}"
        );
        assert!(check(shared[9]).is_err(), "{build}");
        assert!(check(private).is_ok(), "{build}");
        // Raised to 2, the refcount allows the text's second holder.
        heap.set(text, refcount, 2);
        let space = heap.space();
        let ctx = WalkContext::new(&space, &l, options).with_census(Some(&census));
        let objects = ObjectDecoder::new(&ctx);
        assert!(
            objects
                .check_holders(&objects.header(text).unwrap())
                .is_ok(),
            "{build}"
        );
    }
}

#[test]
fn a_raw_string_whose_string_has_another_holder_is_refused() {
    for build in BUILDS {
        let l = layout(build);
        let refcount = l.robj.refcount.expect("2.8-3.2 profiles have the refcount");
        let mut heap = Heap::new(&l);
        let own = heap.string_raw(b"mine");
        let name = heap.sds(b"a key's name");
        // A raw string object whose pointer was damaged onto a key's name.
        let stray = heap.robj(l.types.string, l.enc.raw, name);
        for o in [own, stray] {
            heap.set(o, refcount, 1);
        }
        let space = heap.space();
        let ctx = WalkContext::new(&space, &l, WalkOptions::default());
        let objects = ObjectDecoder::new(&ctx);
        let mut census = ObjectCensus::default();
        census.note_string(name);
        objects.count_held_objects(own, &mut census);
        objects.count_held_objects(stray, &mut census);
        let ctx = WalkContext::new(&space, &l, WalkOptions::default()).with_census(Some(&census));
        let objects = ObjectDecoder::new(&ctx);
        let check = |obj: u64| objects.check_holders(&objects.header(obj).unwrap());
        assert!(check(own).is_ok(), "{build}");
        let f = check(stray).unwrap_err();
        assert_eq!(f.kind(), FaultKind::Duplicate, "{build}");
        assert!(
            f.to_string()
                .contains("also another object's or a key's name"),
            "{f}"
        );
    }
}

#[test]
fn what_cannot_be_read_is_not_counted() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        // A raw string object whose pointer leads nowhere, and a value pointer to nowhere.
        let stray = heap.robj(l.types.string, l.enc.raw, NOWHERE);
        let space = heap.space();
        let ctx = WalkContext::new(&space, &l, WalkOptions::default());
        let objects = ObjectDecoder::new(&ctx);
        let mut census = ObjectCensus::default();
        objects.count_held_objects(stray, &mut census);
        objects.count_held_objects(NOWHERE, &mut census);
        assert_eq!(census.references(stray).count, 1, "{build}");
        assert_eq!(census.references(NOWHERE).count, 0, "{build}");
        // Had the stray's string been counted, one more holder would make it shared.
        census.note_string(NOWHERE);
        assert!(!census.string_shared(NOWHERE), "{build}");
    }
}

#[test]
fn a_zset_element_counts_its_node_whoever_met_it_first() {
    for build in BUILDS {
        let l = layout(build);
        for hash_first in [true, false] {
            let mut heap = Heap::new(&l);
            let member = heap.string_raw(b"member");
            let field = heap.string_raw(b"f");
            // A hash whose value pointer was damaged onto the zset's element.
            let fields = heap.dict(&[vec![vec![(field, member)]]], -1);
            let hash = heap.robj(l.types.hash, l.enc.hashtable, fields.addr);
            let elements = heap.dict(&[vec![vec![(member, 0x1)]]], -1);
            let zs = heap.alloc(l.zset.size, 8);
            heap.set(zs, l.zset.dict, elements.addr);
            let zset = heap.robj(l.types.zset, l.enc.skiplist, zs);
            let space = heap.space();
            let ctx = WalkContext::new(&space, &l, WalkOptions::default());
            let objects = ObjectDecoder::new(&ctx);
            let mut census = ObjectCensus::default();
            let order = if hash_first {
                [hash, zset]
            } else {
                [zset, hash]
            };
            for value in order {
                objects.count_held_objects(value, &mut census);
            }
            // The hash, the zset's dict and its skiplist node: one more than its refcount 2.
            assert_eq!(census.references(member).count, 3, "{build} {hash_first}");
        }
    }
}
