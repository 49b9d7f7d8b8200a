//! Unit tests of `dict`.

use super::*;
use crate::core::AddressSpace;
use crate::profile::{self, Layout};

const BASE: u64 = 0x20_0000;

fn layout() -> Layout {
    Layout::resolve(&profile::load("7.0.15-debian").unwrap()).unwrap()
}

fn space(bytes: &[u8]) -> AddressSpace<'_> {
    crate::core::address_space::single_segment(bytes, BASE)
}

fn put(m: &mut [u8], off: usize, v: u64) {
    m[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// The address of dictEntry number `i`: BASE+0x200+24·i.
fn e(i: u64) -> u64 {
    BASE + 0x200 + i * 24
}

/// dictEntry (key, next) number `i` at [`e`]`(i)`, for each (i, key, next).
fn put_entries(m: &mut [u8], entries: &[(u64, u64, u64)]) {
    for &(i, key, next) in entries {
        let o = (e(i) - BASE) as usize;
        put(m, o, key);
        put(m, o + 16, next);
    }
}

/// A 7.0 dict at BASE with a 4-bucket table at BASE+0x100 and entries from BASE+0x200.
fn dict_mem(used: u64, rehashidx: i64, exp0: i8, exp1: i8) -> Vec<u8> {
    let mut m = vec![0u8; 0x400];
    put(&mut m, 0, BASE + 0x380); // dictType
    put(&mut m, 8, BASE + 0x100);
    put(&mut m, 24, used);
    put(&mut m, 40, rehashidx as u64);
    m[50] = exp0 as u8;
    m[51] = exp1 as u8;
    m
}

use crate::walker::bucket::BucketCheck;

#[test]
fn walks_chains_and_finds_cycles() {
    let l = layout();
    let mut m = dict_mem(3, -1, 2, -1);
    // Bucket 1 → e0 → e1; bucket 3 → e2 → e2 (a self loop).
    put(&mut m, 0x108, e(0));
    put(&mut m, 0x118, e(2));
    put_entries(&mut m, &[(0u64, 11u64, e(1)), (1, 12, 0), (2, 13, e(2))]);
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c);
    let h = w.header(BASE).unwrap();
    assert_eq!(h.tables[0].size, 4);
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(&keys[..3], &[11, 12, 13]);
    assert!(faults.count >= 1);
    assert!(
        matches!(faults.faults[0].1, Fault::Cycle(_)),
        "{:?}",
        faults.faults
    );
}

#[test]
fn a_looping_chain_yields_each_entry_once() {
    let l = layout();
    let mut m = dict_mem(4, -1, 2, -1);
    put(&mut m, 0x100, e(0));
    // X(0) -> A(1) -> B(2) -> C(3) -> A(1): Brent's check trips only on the second lap.
    put_entries(
        &mut m,
        &[
            (0u64, 10u64, e(1)),
            (1, 11, e(2)),
            (2, 12, e(3)),
            (3, 13, e(1)),
        ],
    );
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c);
    let h = w.header(BASE).unwrap();
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    keys.sort_unstable();
    assert_eq!(keys, vec![10, 11, 12, 13]);
    assert!(matches!(faults.faults[0].1, Fault::Cycle(_)));
}

#[test]
fn an_entry_reached_from_two_chains_is_handed_out_once() {
    let l = layout();
    let mut m = dict_mem(3, -1, 2, -1);
    // Bucket 0 → e0 → e2 (its pointer to e1 was damaged); bucket 2 → e2. e1 is
    // lost, and e2 must not come out twice.
    put(&mut m, 0x100, e(0));
    put(&mut m, 0x110, e(2));
    put_entries(&mut m, &[(0u64, 10u64, e(2)), (1, 11, 0), (2, 12, 0)]);
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c);
    let h = w.header(BASE).unwrap();
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(keys, vec![10, 12]);
    assert_eq!(faults.count, 1);
    assert!(
        faults.faults[0].1.to_string().contains("another chain"),
        "{:?}",
        faults.faults
    );
}

/// An sdshdr8 string at BASE+0x2c0+16·i (len, alloc, flags 1, bytes); its address.
fn put_sds(m: &mut [u8], i: usize, s: &str) -> u64 {
    let o = 0x2c0 + 16 * i;
    m[o] = s.len() as u8;
    m[o + 1] = s.len() as u8;
    m[o + 2] = 1;
    m[o + 3..o + 3 + s.len()].copy_from_slice(s.as_bytes());
    BASE + o as u64 + 3
}

/// A name hashing to bucket `want` of a `size`-bucket table, and one other.
fn name_in(check: &BucketCheck, size: u64, want: u64, skip: usize) -> String {
    (0..)
        .map(|i| format!("n{i}"))
        .filter(|k| check.hash_bytes(k.as_bytes()) & (size - 1) == want)
        .nth(skip)
        .unwrap()
}

/// Names for each of the 4 buckets of a 4-bucket table under `check`.
fn one_name_per_bucket(check: &BucketCheck) -> Vec<String> {
    (0..4).map(|b| name_in(check, 4, b, 0)).collect()
}

/// The keys A, B, C and D of the damaged-bucket scenes (`names` from
/// [`one_name_per_bucket`]), in sds slots 0 to 3.
fn put_bucket_keys(m: &mut [u8], names: &[String]) -> [u64; 4] {
    [
        put_sds(m, 0, &names[0]),
        put_sds(m, 1, &names[1]),
        put_sds(m, 2, &names[3]), // C: found in bucket 2, hashes to 3
        put_sds(m, 3, &names[2]),
    ]
}

/// With the name check, a second entry of a chain naming a key already handed out (its
/// key pointer damaged into the first one's string, or onto a copy of the same bytes)
/// is left out and named; without it, both come out (the visitor's set decides then).
#[test]
fn a_chain_hands_out_each_name_once() {
    use crate::walker::sds::SdsFormat;
    let l = layout();
    let check = BucketCheck::new([5; 16], SdsFormat::Typed);
    let x = name_in(&check, 4, 1, 0);
    let y = name_in(&check, 4, 1, 1);
    let mut m = dict_mem(4, -1, 2, -1);
    let sx = put_sds(&mut m, 0, &x);
    let sy = put_sds(&mut m, 1, &y);
    let sx_copy = put_sds(&mut m, 2, &x);
    // Bucket 1 → X → Y → X' (a pointer into X's string) → X'' (a copy of X's bytes).
    put(&mut m, 0x108, e(0));
    put_entries(
        &mut m,
        &[
            (0u64, sx, e(1)),
            (1, sy, e(2)),
            (2, sx, e(3)),
            (3, sx_copy, 0),
        ],
    );
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c)
        .with_bucket_check(Some(check))
        .with_name_check();
    assert!(w.names_checked());
    let h = w.header(BASE).unwrap();
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(keys, vec![sx, sy]);
    assert_eq!(faults.duplicates, 2);
    assert_eq!(faults.duplicate_names, vec![x.clone().into_bytes(); 2]);
    assert_eq!(faults.count, 0, "{:?}", faults.faults);
    // Without a bucket check nothing proves where equal names are: no name check.
    let w = DictWalker::new(&c).with_name_check();
    assert!(!w.names_checked());
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(keys.len(), 4);
    assert_eq!(faults.duplicates, 0);
}

/// While rehashing, an entry of table 1 naming a key that table 0's chain for that
/// name already handed out is left out; other names of table 1 come out.
#[test]
fn a_rehashing_dict_hands_out_each_name_once() {
    use crate::walker::sds::SdsFormat;
    let l = layout();
    let check = BucketCheck::new([9; 16], SdsFormat::Typed);
    let x = name_in(&check, 8, 5, 0); // table 0 bucket 1, table 1 bucket 5
    let z = name_in(&check, 8, 2, 0);
    let mut m = dict_mem(3, 0, 2, 3);
    put(&mut m, 16, BASE + 0x140); // table 1: 8 buckets
    put(&mut m, 24, 1);
    put(&mut m, 32, 2);
    let sx = put_sds(&mut m, 0, &x);
    let sx_copy = put_sds(&mut m, 1, &x);
    let sz = put_sds(&mut m, 2, &z);
    put(&mut m, 0x108, e(0)); // table 0 bucket 1 → X
    put(&mut m, 0x140 + 5 * 8, e(1)); // table 1 bucket 5 → X (again)
    put(&mut m, 0x140 + 2 * 8, e(2)); // table 1 bucket 2 → Z
    put_entries(&mut m, &[(0u64, sx, 0), (1, sx_copy, 0), (2, sz, 0)]);
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c)
        .with_bucket_check(Some(check))
        .with_name_check();
    let h = w.header(BASE).unwrap();
    assert_eq!((h.tables[0].size, h.tables[1].size), (4, 8));
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(keys, vec![sx, sz]);
    assert_eq!(faults.duplicate_names, vec![x.clone().into_bytes()]);
    assert_eq!(faults.count, 0, "{:?}", faults.faults);

    // A lookup as dictFind does it: by key pointer, in each table's bucket of the hash.
    put(&mut m, 0x200 + 8, 77); // X's value word
    put(&mut m, 0x200 + 2 * 24 + 8, 88); // Z's
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c);
    let h = w.header(BASE).unwrap();
    let hx = check.hash_bytes(x.as_bytes());
    let hz = check.hash_bytes(z.as_bytes());
    assert_eq!(w.value_of(&h, hx, sx), Some(77));
    assert_eq!(w.value_of(&h, hz, sz), Some(88), "found in table 1");
    assert_eq!(
        w.value_of(&h, hx, sz),
        None,
        "not in the buckets of X's hash"
    );
    assert_eq!(w.value_of(&h, hz, sx), None);
}

#[test]
fn entries_are_checked_against_their_buckets() {
    use crate::walker::sds::SdsFormat;
    let l = layout();
    let check = BucketCheck::new([3; 16], SdsFormat::Typed);
    let names = one_name_per_bucket(&check);
    let mut m = dict_mem(4, -1, 2, -1);
    let [a, b, c_damaged, d] = put_bucket_keys(&mut m, &names);
    // Bucket 0 → A → B (a damaged link: B is bucket 1's); bucket 1 → B;
    // bucket 2 → C (a damaged name) → D.
    put(&mut m, 0x100, e(0));
    put(&mut m, 0x108, e(1));
    put(&mut m, 0x110, e(2));
    put_entries(
        &mut m,
        &[(0, a, e(1)), (1, b, 0), (2, c_damaged, e(3)), (3, d, 0)],
    );
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c);
    let h = w.header(BASE).unwrap();
    let mut keys = Vec::new();
    let unchecked = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(
        unchecked.count, 1,
        "without the check only the revisit shows"
    );
    assert_eq!(keys, vec![a, b, c_damaged, d]);

    let w = w.with_bucket_check(Some(check));
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(keys, vec![a, b, d], "B once, from its own chain; C refused");
    assert_eq!(faults.damaged_keys, 1);
    assert_eq!(faults.count, 1, "{:?}", faults.faults);
    assert_eq!(faults.faults[0].0, 0, "the redirected chain is bucket 0's");
    assert!(faults.faults[0]
        .1
        .to_string()
        .contains("hashes to bucket 1"));
}

/// A Valkey 8.0 `dictEntryEmbedded` at `off`: v, next, key_header_size, then the key
/// sds copied with its header (`header` bytes long, sdshdr5, 8 or 16), NUL-terminated.
/// Returns the key sds address.
fn put_embedded(m: &mut [u8], off: usize, v: u64, next: u64, header: u8, key: &[u8]) -> u64 {
    put(m, off, v);
    put(m, off + 8, next);
    m[off + 16] = header;
    let h = off + 17;
    let len = key.len();
    match header {
        1 => m[h] = (len as u8) << 3,
        3 => m[h..h + 3].copy_from_slice(&[len as u8, len as u8, 1]),
        5 => {
            m[h..h + 2].copy_from_slice(&(len as u16).to_le_bytes());
            m[h + 2..h + 4].copy_from_slice(&(len as u16).to_le_bytes());
            m[h + 4] = 2;
        }
        _ => unreachable!("test helper: sdshdr5, 8 or 16 only"),
    }
    let k = h + usize::from(header);
    m[k..k + len].copy_from_slice(key);
    m[k + len] = 0;
    BASE + k as u64
}

/// A 4-bucket table at BASE+0x100 holding `used` entries.
fn table4(used: u64) -> DictHeader {
    DictHeader {
        tables: [
            Table {
                buckets: BASE + 0x100,
                size: 4,
                used,
            },
            Table::default(),
        ],
        rehashidx: -1,
        no_value: false,
    }
}

fn valkey80() -> Layout {
    Layout::resolve(&profile::load("valkey-8.0.1").unwrap()).unwrap()
}

#[test]
fn embedded_entries_yield_their_key_sds() {
    use crate::walker::sds::{read_sds, SdsFormat};
    let l = valkey80();
    assert_eq!(
        l.entry.embedded,
        Some(crate::profile::layout::EmbeddedEntryLayout {
            v: Field { offset: 0, size: 8 },
            next: Field { offset: 8, size: 8 },
            key_header_size: Field {
                offset: 16,
                size: 1
            },
            key_buf: 17,
        })
    );
    let long = vec![b'k'; 300];
    let mut m = vec![0u8; 0x800];
    let e = |i: u64| BASE + 0x200 + i * 0x40;
    // Bucket 1 → e0 → e1 → e2 (sdshdr8, sdshdr5, sdshdr8); bucket 2 → e3 (a 300-byte
    // key, sdshdr16) at BASE+0x400. Every link is tagged `100`.
    put(&mut m, 0x108, e(0) | 4);
    put(&mut m, 0x110, (BASE + 0x400) | 4);
    let k0 = put_embedded(&mut m, 0x200, 0x1000, e(1) | 4, 3, b"alpha");
    let k1 = put_embedded(&mut m, 0x240, 0x1001, e(2) | 4, 1, b"b");
    let k2 = put_embedded(&mut m, 0x280, 0x1002, 0, 3, b"");
    let k3 = put_embedded(&mut m, 0x400, 0x1003, 0, 5, &long);
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c);
    let mut got = Vec::new();
    let faults = w.for_each(&table4(4), |k, v| got.push((k, v)));
    assert_eq!(faults.count, 0, "{:?}", faults.faults);
    assert_eq!(
        got,
        vec![(k0, 0x1000), (k1, 0x1001), (k2, 0x1002), (k3, 0x1003)]
    );
    assert_eq!(k0, e(0) + 17 + 3);
    let names: Vec<Vec<u8>> = got
        .iter()
        .map(|(k, _)| read_sds(&s, SdsFormat::Typed, *k).unwrap().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![b"alpha".to_vec(), b"b".to_vec(), Vec::new(), long]
    );
    // The sample used to check a keyspace reads them the same way.
    assert_eq!(w.sample_entries(&table4(4), 10), got);
}

#[test]
fn damaged_embedded_entries_are_faults() {
    let l = valkey80();
    let mut m = vec![0u8; 0x800];
    let e = |i: u64| BASE + 0x200 + i * 0x40;
    // Bucket 0 → e0 (good) → e1 (header size 7: no sds header has it);
    // bucket 1 → e2 (header size 3, but the flags byte says sdshdr16).
    put(&mut m, 0x100, e(0) | 4);
    put(&mut m, 0x108, e(2) | 4);
    let k0 = put_embedded(&mut m, 0x200, 0x1000, e(1) | 4, 3, b"good");
    put_embedded(&mut m, 0x240, 0x1001, 0, 3, b"bad");
    m[0x240 + 16] = 7;
    put_embedded(&mut m, 0x280, 0x1002, 0, 3, b"mislabelled");
    m[0x280 + 17 + 2] = 2;
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let mut got = Vec::new();
    let faults = DictWalker::new(&c).for_each(&table4(3), |k, _| got.push(k));
    assert_eq!(got, vec![k0]);
    let texts: Vec<String> = faults.faults.iter().map(|f| f.1.to_string()).collect();
    assert_eq!(faults.count, 2, "{texts:?}");
    assert!(texts[0].contains("key header size 7"), "{texts:?}");
    assert!(texts[1].contains("sds type 2"), "{texts:?}");
}

#[test]
fn a_100_tag_without_embedded_entries_is_a_fault() {
    // 7.2 and 7.4 are `tagged` without `dictEntryEmbedded`: `100` never occurs there.
    let l74 = Layout::resolve(&profile::load("7.4.1").unwrap()).unwrap();
    assert_eq!(l74.features.dict_entry, EntryFlavor::Tagged);
    assert!(l74.entry.embedded.is_none());
    let mut l = valkey80();
    l.entry.embedded = None;
    let mut m = vec![0u8; 0x800];
    put(&mut m, 0x100, (BASE + 0x200) | 4);
    put_embedded(&mut m, 0x200, 0x1000, 0, 3, b"alpha");
    for layout in [&l, &l74] {
        let s = space(&m);
        let c = WalkContext::new(&s, layout, Default::default());
        let mut got = Vec::new();
        let faults = DictWalker::new(&c).for_each(&table4(1), |k, _| got.push(k));
        assert!(got.is_empty());
        assert_eq!(faults.count, 1);
        assert!(
            faults.faults[0].1.to_string().contains("tag 4"),
            "{:?}",
            faults.faults
        );
    }
}

#[test]
fn inconsistent_headers_are_rejected() {
    let l = layout();
    for (used, rehashidx, e0, e1) in [
        (0u64, -1i64, 99i8, -1i8), // absurd exponent
        (0, 5, 2, -1),             // rehashing without a second table
        (0, -1, 2, 3),             // second table without rehashing
        (0, 9, 2, 3),              // rehashidx beyond table 0
        (0, -7, 2, -1),            // rehashidx below -1
        (1, -1, -1, -1),           // entries counted in a table that does not exist
    ] {
        let m = dict_mem(used, rehashidx, e0, e1);
        let s = space(&m);
        assert!(
            DictWalker::new(&WalkContext::new(&s, &l, Default::default()))
                .header(BASE)
                .is_err(),
            "{used} {rehashidx} {e0} {e1}"
        );
    }
    // A bucket array outside the core is a fault of the walk, not a panic.
    let mut m = dict_mem(1, -1, 10, -1);
    put(&mut m, 8, 0xdead_0000);
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c);
    let h = w.header(BASE).unwrap();
    assert_eq!(w.for_each(&h, |_, _| {}).count, 1);
}

/// A string object (`robj`) at BASE+0x300+16·`i`: raw pointing at an sds, or INT
/// holding `int` in its pointer word (7.0's object layout, 3.2's too).
fn put_robj(m: &mut [u8], i: usize, sds: Option<u64>, int: i64) -> u64 {
    let o = 0x300 + 16 * i;
    // type string (0) in bits 0-3, encoding raw (0) or int (1) in bits 4-7.
    m[o] = if sds.is_some() { 0 } else { 1 << 4 };
    m[o + 4..o + 8].copy_from_slice(&1u32.to_le_bytes());
    put(m, o + 8, sds.unwrap_or(int as u64));
    BASE + o as u64
}

/// Sets and hashes up to 3.2 key their dicts by string objects, hashed by their text
/// (an INT one as its decimal digits) with MurmurHash2: entries in their buckets come
/// out, one found in another bucket is refused.
#[test]
fn string_object_keys_are_checked_by_their_text() {
    use crate::walker::sds::SdsFormat;
    let l = layout();
    let check = BucketCheck::murmur2(0x5eed_1234, SdsFormat::Typed);
    let home = |text: &str| check.hash_bytes(text.as_bytes()) & 3;
    let name = name_in(&check, 4, 2, 0);
    // An integer whose digits hash to a bucket other than 2, and one that hashes to 2.
    let int_elsewhere = (1000..).find(|n: &i64| home(&n.to_string()) != 2).unwrap();
    let int_home = (1000..).find(|n: &i64| home(&n.to_string()) == 2).unwrap();
    let mut m = dict_mem(3, -1, 2, -1);
    let sds = put_sds(&mut m, 0, &name);
    let raw = put_robj(&mut m, 0, Some(sds), 0);
    let int_ok = put_robj(&mut m, 1, None, int_home);
    let int_bad = put_robj(&mut m, 2, None, int_elsewhere);
    // Bucket 2 → raw → int_ok → int_bad (a damaged link into another chain's entry).
    put(&mut m, 0x110, e(0));
    put_entries(
        &mut m,
        &[(0u64, raw, e(1)), (1, int_ok, e(2)), (2, int_bad, 0)],
    );
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c)
        .with_bucket_check(Some(check))
        .with_keys(KeyForm::StringObject)
        .with_name_check();
    let h = w.header(BASE).unwrap();
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(keys, vec![raw, int_ok]);
    assert_eq!(faults.damaged_keys, 1, "{:?}", faults.faults);
    // Read as sds the objects are no keys at all, so nothing is checked (the decoder
    // says what is wrong with them): the flag is what brings the check to them.
    let w = DictWalker::new(&c).with_bucket_check(Some(check));
    let mut keys = Vec::new();
    let faults = w.for_each(&h, |k, _| keys.push(k));
    assert_eq!(keys.len(), 3);
    assert_eq!(faults.damaged_keys, 0);
}

/// A walk of a sole table (its `seen` its own) with the bucket and name checks: entries
/// are proven unique by their buckets, not marked. It hands out what a marking walk
/// does, and says the same about damaged links and keys.
#[test]
fn a_sole_table_proven_by_its_buckets_hands_out_the_same_entries() {
    use crate::walker::sds::SdsFormat;
    let l = layout();
    let check = BucketCheck::new([3; 16], SdsFormat::Typed);
    let names = one_name_per_bucket(&check);
    let mut m = dict_mem(5, -1, 2, -1);
    let [a, b, c_damaged, d] = put_bucket_keys(&mut m, &names);
    // Bucket 0 → A → B (a damaged link into bucket 1's chain, walked later); bucket
    // 1 → B; bucket 2 → C (a damaged name) → D → B (a damaged link into bucket 1's
    // chain, walked earlier); bucket 3 → E, whose key cannot be read, also reached from
    // nowhere else.
    put(&mut m, 0x100, e(0));
    put(&mut m, 0x108, e(1));
    put(&mut m, 0x110, e(2));
    put(&mut m, 0x118, e(4));
    put_entries(
        &mut m,
        &[
            (0, a, e(1)),
            (1, b, 0),
            (2, c_damaged, e(3)),
            (3, d, e(1)),
            (4, 0x10, 0),
        ],
    );
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c)
        .with_bucket_check(Some(check))
        .with_name_check();
    let h = w.header(BASE).unwrap();
    assert!(w.with_sole_table(true).proves_by_bucket(&h));
    assert!(!w.proves_by_bucket(&h), "a shared seen proves nothing");
    let run = |w: DictWalker<'_, '_>| {
        let mut keys = Vec::new();
        let mut seen = SeenEntries::with_capacity(8);
        let faults = w.for_each_unique(&h, &mut seen, |k, _| keys.push(k));
        (keys, faults)
    };
    let (marked_keys, marked) = run(w);
    let (keys, proven) = run(w.with_sole_table(true));
    assert_eq!(keys, vec![a, b, d, 0x10], "B once; C refused");
    assert_eq!(keys, marked_keys);
    assert_eq!(proven.damaged_keys, 1, "C");
    assert_eq!(proven.damaged_keys, marked.damaged_keys);
    // The same buckets, not in the same order: a marking walk meets bucket 2's damaged
    // link at once (a revisit), a proving one when it settles (a misplaced entry).
    let buckets = |f: &WalkFaults| {
        let mut b: Vec<u64> = f.faults.iter().map(|(b, _)| *b).collect();
        b.sort_unstable();
        b
    };
    assert_eq!(buckets(&proven), vec![0, 2], "{:?}", proven.faults);
    assert_eq!(buckets(&proven), buckets(&marked), "{:?}", marked.faults);
}

/// In a walk proving entries by their buckets, a chain's own loop is still caught, each
/// entry handed out once; a key that cannot be read, reached from two chains, comes out
/// once.
#[test]
fn a_proven_walk_still_catches_loops_and_unreadable_keys_met_twice() {
    use crate::walker::sds::SdsFormat;
    let l = layout();
    let check = BucketCheck::new([3; 16], SdsFormat::Typed);
    let x = name_in(&check, 4, 1, 0);
    let y = name_in(&check, 4, 1, 1);
    let z = name_in(&check, 4, 1, 2);
    let mut m = dict_mem(4, -1, 2, -1);
    let sx = put_sds(&mut m, 0, &x);
    let sy = put_sds(&mut m, 1, &y);
    let sz = put_sds(&mut m, 2, &z);
    // Bucket 1 → X → Y → Z → Y (a loop past the guard's first look); buckets 2 and 3
    // both → U, whose key cannot be read.
    put(&mut m, 0x108, e(0));
    put(&mut m, 0x110, e(3));
    put(&mut m, 0x118, e(3));
    put_entries(
        &mut m,
        &[(0, sx, e(1)), (1, sy, e(2)), (2, sz, e(1)), (3, 0x10, 0)],
    );
    let s = space(&m);
    let c = WalkContext::new(&s, &l, Default::default());
    let w = DictWalker::new(&c)
        .with_bucket_check(Some(check))
        .with_name_check()
        .with_sole_table(true);
    let h = w.header(BASE).unwrap();
    assert!(w.proves_by_bucket(&h));
    let mut keys = Vec::new();
    let mut seen = SeenEntries::with_capacity(8);
    let faults = w.for_each_unique(&h, &mut seen, |k, _| keys.push(k));
    assert_eq!(keys, vec![sx, sy, sz, 0x10], "each once");
    let kinds: Vec<(u64, FaultKind)> = faults.faults.iter().map(|(b, f)| (*b, f.kind())).collect();
    assert_eq!(kinds.len(), 2, "{:?}", faults.faults);
    assert_eq!(kinds[0].0, 1, "the loop, in bucket 1");
    assert!(
        matches!(kinds[0].1, FaultKind::Cycle | FaultKind::Revisit),
        "{:?}",
        faults.faults
    );
    assert_eq!(kinds[1], (3, FaultKind::Revisit), "U again, from bucket 3");
}
