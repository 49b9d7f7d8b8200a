//! Unit tests of `object`.

use super::module_type_name;
use super::tables::shared_values;
use super::{KindTable, ObjectDecoder};
use crate::profile::{self, Layout};
use crate::value::{ObjEncoding, ObjType};
use crate::walker::bucket::{fragment, BucketCheck};
use crate::walker::context::WalkContext;
use crate::walker::fault::FaultKind;
use crate::walker::sds::SdsFormat;
use crate::walker::WalkOptions;

#[test]
fn a_compact_zset_whose_score_is_no_number_is_refused() {
    use crate::decode::listpack::ListpackBuilder;
    use crate::decode::Element;
    use crate::value::Value;
    let zset = |score: &[u8]| {
        let mut b = ListpackBuilder::new();
        for e in [
            Element::Bytes(b"a"),
            Element::Int(1),
            Element::Bytes(b"b"),
            Element::Bytes(score),
        ] {
            b.push(e).unwrap();
        }
        Value::ZsetListpack(std::borrow::Cow::Owned(b.finish()))
    };
    assert!(super::check_scores(&zset(b"inf")).is_ok());
    assert!(super::check_scores(&zset(b"-2.5e3")).is_ok());
    for bad in [&b"iof"[..], b"nan", b"1.5\x00", b""] {
        let e = super::check_scores(&zset(bad)).unwrap_err().to_string();
        assert!(e.contains("is not a number"), "{e}");
    }
}

#[test]
fn values_held_twice_are_named_once() {
    let v = [
        Some(0x10),
        None,
        Some(0x20),
        Some(0x10),
        None,
        Some(0x10),
        Some(0x30),
    ];
    assert_eq!(shared_values(&v).into_iter().collect::<Vec<_>>(), [0x10]);
    assert!(shared_values(&[None, None, Some(1)]).is_empty());
    assert!(shared_values(&[]).is_empty());
}

const BASE: u64 = 0x40_0000;
/// Valkey 8.1.8: a hashtable header at BASE, its 4 buckets at BASE+0x100, the zset at
/// BASE+0x300, its zskiplist at BASE+0x320, the header node at BASE+0x400, nodes from
/// BASE+0x500, sds strings from BASE+0x700.
const ZSET: u64 = 0x300;

fn put(m: &mut [u8], off: u64, v: u64) {
    let off = off as usize;
    m[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Names hashing to distinct buckets (0, 1, 2 and 3), with their fragments.
fn names(check: &BucketCheck) -> Vec<(String, u8)> {
    let mut out: Vec<Option<(String, u8)>> = vec![None; 4];
    for i in 0.. {
        let k = format!("m{i}");
        let hash = check.hash_bytes(k.as_bytes());
        out[(hash & 3) as usize].get_or_insert((k, fragment(hash)));
        if out.iter().all(Option::is_some) {
            break;
        }
    }
    out.into_iter().flatten().collect()
}

/// A skiplist zset of the elements `names[0..3]` (scores 1, 2, 3) whose hashtable holds
/// its three nodes, each in its element's bucket; `names[3]` is another sds in memory.
/// Returns the memory and the node and sds addresses.
fn zset_mem(names: &[(String, u8)]) -> (Vec<u8>, Vec<u64>, Vec<u64>) {
    let mut m = vec![0u8; 0x800];
    put(&mut m, 0, BASE + 0x780); // hashtableType
    put(&mut m, 8, u64::MAX); // rehash_idx -1
    put(&mut m, 16, BASE + 0x100);
    put(&mut m, 32, 3);
    m[48] = 2; // 4 buckets
    m[49] = 0xff; // no table 1
    let sds: Vec<u64> = names
        .iter()
        .enumerate()
        .map(|(i, (s, _))| {
            let o = 0x700 + 32 * i;
            m[o] = s.len() as u8;
            m[o + 1] = s.len() as u8;
            m[o + 2] = 1; // sdshdr8
            m[o + 3..o + 3 + s.len()].copy_from_slice(s.as_bytes());
            BASE + o as u64 + 3
        })
        .collect();
    let nodes: Vec<u64> = (0..3).map(|i| BASE + 0x500 + 0x40 * i).collect();
    for (i, node) in nodes.iter().enumerate() {
        let off = node - BASE;
        put(&mut m, off, sds[i]); // ele
        put(&mut m, off + 8, (i as f64 + 1.0).to_bits()); // score
        put(&mut m, off + 24, nodes.get(i + 1).copied().unwrap_or(0)); // forward
        put(&mut m, off + 32, 1); // level[0].span: one level
                                  // Bucket i (the element hashes there): the node in slot 0 with its fragment.
        let bucket = 0x100 + 64 * i;
        m[bucket] = 1 << 1; // slot 0 present, not chained
        m[bucket + 1] = names[i].1;
        put(&mut m, bucket as u64 + 8, *node);
    }
    put(&mut m, ZSET, BASE); // zset.ht
    put(&mut m, ZSET + 8, BASE + 0x320); // zset.zsl
    put(&mut m, 0x320, BASE + 0x400); // zsl.header
    put(&mut m, 0x328, nodes[2]); // zsl.tail
    put(&mut m, 0x330, 3); // zsl.length
    put(&mut m, 0x338, 1); // zsl.level
    put(&mut m, 0x400 + 24, nodes[0]); // header->level[0].forward
    (m, nodes, sds)
}

/// A decoded zset's (element, score) pairs, or its fault's text.
type Decoded = Result<Vec<(Vec<u8>, f64)>, String>;

fn decode(m: &[u8], l: &Layout, check: Option<BucketCheck>, salvage: bool) -> (Decoded, bool) {
    let s = crate::core::address_space::single_segment(m, BASE);
    let options = WalkOptions {
        salvage,
        bucket_check: check,
        ..Default::default()
    };
    let ctx = WalkContext::new(&s, l, options);
    let d = ObjectDecoder::new(&ctx);
    let got = d
        .skiplist(BASE + ZSET)
        .map(|v| v.into_iter().map(|(e, sc)| (e.to_vec(), sc)).collect())
        .map_err(|e| e.to_string());
    (got, d.take_partial().is_some())
}

#[test]
fn a_skiplist_node_its_zset_hashtable_refuses_is_refused() {
    let l = Layout::resolve(&profile::load("valkey-8.1.8").unwrap()).unwrap();
    let check = BucketCheck::new([7; 16], SdsFormat::Typed);
    let n = names(&check);
    let (mut m, nodes, sds) = zset_mem(&n);
    let all: Vec<(Vec<u8>, f64)> = (0..3)
        .map(|i| (n[i].0.as_bytes().to_vec(), i as f64 + 1.0))
        .collect();
    assert_eq!(decode(&m, &l, Some(check), false).0, Ok(all.clone()));

    // The second node's element pointer damaged into another valid sds: the hashtable
    // refuses the node (its element hashes to bucket 3), so the skiplist does too.
    put(&mut m, nodes[1] - BASE, sds[3]);
    let (got, _) = decode(&m, &l, Some(check), false);
    let err = got.unwrap_err();
    assert!(
        err.contains("not an entry of its zset's hashtable"),
        "{err}"
    );
    let (got, partial) = decode(&m, &l, Some(check), true);
    assert_eq!(got, Ok(vec![all[0].clone(), all[2].clone()]));
    assert!(partial, "salvage keeps the other elements, marked partial");
    // Without the check the hashtable holds the node: the damage goes unseen.
    let (got, _) = decode(&m, &l, None, false);
    assert_eq!(got.unwrap()[1].0, n[3].0.as_bytes());
    put(&mut m, nodes[1] - BASE, sds[1]);

    // A damaged forward pointer to a node the hashtable does not hold (a copy of the
    // third node elsewhere): refused even without the bucket check.
    m.copy_within(0x580..0x5c0, 0x5c0);
    put(&mut m, nodes[1] - BASE + 24, BASE + 0x5c0);
    let (got, _) = decode(&m, &l, None, false);
    assert!(got.unwrap_err().contains("not an entry"));
}

#[test]
fn types_and_encodings_resolve_by_each_builds_numbers() {
    for name in profile::shipped_names() {
        let l = Layout::resolve(&profile::load(name).unwrap()).unwrap();
        let table = KindTable::new(&l);
        for t in ObjType::ALL {
            let n = l.types.number(t);
            let want = (n != u64::MAX).then_some(t);
            assert_eq!(table.resolve(n, 0).0, want, "{name}: {}", t.name());
        }
        for e in ObjEncoding::ALL {
            let n = l.enc.number(e);
            let want = (n != u64::MAX).then_some(e);
            assert_eq!(table.resolve(0, n).1, want, "{name}: {}", e.name());
        }
        // Zipmap (3) is no robj's encoding; 16 is past the 4-bit fields.
        assert_eq!(table.resolve(0, 3).1, None, "{name}");
        assert_eq!(table.resolve(16, 16), (None, None), "{name}");
    }
}

#[test]
fn a_type_with_an_encoding_it_never_has_is_a_bad_header() {
    let l = Layout::resolve(&profile::load("7.0.15-debian").unwrap()).unwrap();
    let decode = |type_and_encoding: u8| {
        let mut m = vec![0u8; 0x40];
        m[0] = type_and_encoding;
        let s = crate::core::address_space::single_segment(&m, BASE);
        let ctx = WalkContext::new(&s, &l, WalkOptions::default());
        let mut d = ObjectDecoder::new(&ctx);
        let h = d.header(BASE).unwrap();
        let fault = d.value(&h).unwrap_err();
        (h.ty, h.enc, h.kind, fault.kind(), fault.to_string())
    };
    // A string (0) encoded as an intset (6).
    let (ty, enc, kind, fault, text) = decode(6 << 4);
    assert_eq!(
        (ty, enc),
        (Some(ObjType::String), Some(ObjEncoding::Intset))
    );
    assert_eq!((kind.type_name, kind.encoding), ("string", "intset"));
    assert_eq!(fault, FaultKind::BadHeader);
    assert_eq!(
        text,
        "object type 0 (string) with encoding 6 (intset) is not valid for this Redis build"
    );
    // Numbers 7.0 does not define.
    let (ty, enc, kind, fault, text) = decode((3 << 4) | 9);
    assert_eq!((ty, enc), (None, None));
    assert_eq!((kind.type_name, kind.encoding), ("unknown", "unknown"));
    assert_eq!(fault, FaultKind::BadHeader);
    assert_eq!(
        text,
        "object type 9 (unknown) with encoding 3 (unknown) is not valid for this Redis build"
    );
}

#[test]
fn module_type_ids_decode_to_their_names() {
    // Encode "MyType-01" with encver 3 the way modules register their type.
    const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = 0u64;
    for c in b"MyType-01" {
        let i = SYMBOLS.iter().position(|s| s == c).unwrap() as u64;
        id = (id << 6) | i;
    }
    id = (id << 10) | 3;
    assert_eq!(module_type_name(id), "MyType-01 (encver 3)");
    assert_eq!(module_type_name(0), "AAAAAAAAA (encver 0)");
    assert_eq!(module_type_name(u64::MAX), "_________ (encver 1023)");
    // Every symbol, in the last position of the name.
    for (i, &c) in SYMBOLS.iter().enumerate() {
        let name = module_type_name((i as u64) << 10);
        assert_eq!(name.as_bytes()[8], c, "symbol {i}");
    }
}

/// A repeated name is found whether the two entries are integers, strings, or one of each
/// (an integer equals the string of its canonical decimal, not another spelling), pair by
/// pair for a few names and by a hash set for many, as the stride's names only.
#[test]
fn duplicates_in_a_listpack_are_found_by_their_text() {
    use crate::decode::listpack::ListpackBuilder;
    use crate::decode::Element::{self, Bytes, Int};
    let lp = |items: &[Element<'_>]| {
        let mut b = ListpackBuilder::new();
        for e in items {
            b.push(*e).unwrap();
        }
        b.finish()
    };
    let dup =
        |items: &[Element<'_>], stride| super::first_duplicate_packed(&lp(items), false, stride);
    assert_eq!(
        dup(&[Int(12), Bytes(b"x"), Int(12)], 1),
        Some(b"12".to_vec())
    );
    assert_eq!(
        dup(&[Bytes(b"ab"), Int(7), Bytes(b"ab")], 1),
        Some(b"ab".to_vec())
    );
    assert_eq!(
        dup(&[Int(12), Bytes(b"x"), Bytes(b"12")], 1),
        Some(b"12".to_vec())
    );
    assert_eq!(dup(&[Int(12), Bytes(b"012"), Bytes(b"+12")], 1), None);
    // Pairs: only the fields count, not the values.
    assert_eq!(dup(&[Bytes(b"f"), Int(1), Bytes(b"g"), Int(1)], 2), None);
    assert_eq!(
        dup(&[Bytes(b"f"), Int(1), Bytes(b"f"), Int(2)], 2),
        Some(b"f".to_vec())
    );
    // Many names: the hash set's way, with the repeat last.
    let texts: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    let mut many: Vec<Element<'_>> = texts.iter().map(|t| Bytes(t.as_bytes())).collect();
    assert_eq!(dup(&many, 1), None);
    many.push(Bytes(b"m42"));
    assert_eq!(dup(&many, 1), Some(b"m42".to_vec()));
    many.pop();
    many.push(Int(-5));
    many.push(Bytes(b"-5"));
    assert_eq!(dup(&many, 1), Some(b"-5".to_vec()));
}

/// Names compared only where their hashes agree find the same first repeat as the hash
/// set does, with true hashes and with hashes that collide for different names; a hash
/// shared by more than PAIRWISE_MAX names is left to the hash set.
#[test]
fn repeats_found_by_known_hashes_are_those_of_the_hash_set() {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for round in 0..300 {
        let len = 25 + next(200) as usize;
        let alphabet = 1 + next([40, 1000, 100_000][round % 3]);
        let names: Vec<Vec<u8>> = (0..len)
            .map(|_| format!("m:{}", next(alphabet)).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        let want = super::first_repeat(&refs).map(<[u8]>::to_vec);
        let name = |i: usize| refs.get(i).copied();
        // Left to the hash set only when more than PAIRWISE_MAX names share a hash.
        let check = |hashes: &[u64], what: &str| match super::first_repeat_hashed(name, hashes) {
            Some(got) => assert_eq!(got, want, "round {round}, {what}"),
            None => {
                let most = hashes
                    .iter()
                    .map(|h| hashes.iter().filter(|g| *g == h).count())
                    .max();
                assert!(most > Some(super::PAIRWISE_MAX), "round {round}, {what}");
            }
        };
        let true_hashes: Vec<u64> = refs.iter().map(|n| state.hash_one(n)).collect();
        check(&true_hashes, "true hashes");
        // Different names of one length and last byte share a hash.
        let colliding: Vec<u64> = refs
            .iter()
            .map(|n| n.len() as u64 * 256 + u64::from(n.last().copied().unwrap_or(0)))
            .collect();
        check(&colliding, "colliding hashes");
    }
    // One hash for all: too many to compare pair by pair.
    let texts: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    let refs: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    assert_eq!(
        super::first_repeat_hashed(|i| refs.get(i).copied(), &[7; 100]),
        None
    );
    assert_eq!(
        super::first_repeat_hashed(|i| refs.get(i).copied(), &(0..100u64).collect::<Vec<_>>()),
        Some(None)
    );
}
