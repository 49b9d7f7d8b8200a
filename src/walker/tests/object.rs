//! `ObjectDecoder` over objects of 3.2 (string-object elements, ziplists, `dictht`
//! dicts), 7.0 (sds elements, listpacks) and Valkey 8.1 (hashtable sets, objects that may
//! embed their key) builds.

use crate::value::{QuicklistNode, StrValue, Value};
use crate::walker::context::WalkContext;
use crate::walker::fault::{Fault, FaultKind};
use crate::walker::object::ObjectDecoder;
use crate::walker::testheap::{layout, Heap, NOWHERE};

const BUILDS: [&str; 3] = ["3.2.6", "7.0.15-debian", "valkey-8.1.8"];

/// Decode the object at `obj`: its kind's names and its value (owned bytes compared).
fn decode(heap: &Heap<'_>, obj: u64) -> Result<(String, Value<'static>), Fault> {
    let space = heap.space();
    let ctx = WalkContext::new(&space, heap.l, Default::default());
    let mut d = ObjectDecoder::new(&ctx);
    let h = d.header(obj)?;
    let kind = format!("{} {}", h.kind.type_name, h.kind.encoding);
    let v = d.value(&h)?;
    Ok((kind, owned(v)))
}

/// The value with its bytes copied out of the heap.
fn owned(v: Value<'_>) -> Value<'static> {
    use std::borrow::Cow;
    let o = |b: Cow<'_, [u8]>| Cow::Owned(b.into_owned());
    match v {
        Value::String(StrValue::Bytes(b)) => Value::String(StrValue::Bytes(o(b))),
        Value::String(StrValue::Int(i)) => Value::String(StrValue::Int(i)),
        Value::ListQuicklist(n) => Value::ListQuicklist(n.into_iter().map(node).collect()),
        Value::ListQuicklistZiplist(n) => {
            Value::ListQuicklistZiplist(n.into_iter().map(node).collect())
        }
        Value::SetIntset(b) => Value::SetIntset(o(b)),
        Value::SetMembers(mut m) => {
            m.sort();
            Value::SetMembers(m.into_iter().map(o).collect())
        }
        Value::HashZiplist(b) => Value::HashZiplist(o(b)),
        Value::HashListpack(b) => Value::HashListpack(o(b)),
        Value::HashPairs(mut p) => {
            p.sort();
            Value::HashPairs(p.into_iter().map(|(f, v)| (o(f), o(v))).collect())
        }
        Value::ZsetZiplist(b) => Value::ZsetZiplist(o(b)),
        Value::ZsetListpack(b) => Value::ZsetListpack(o(b)),
        other => panic!("no test decodes {other:?}"),
    }
}

fn node(n: QuicklistNode<'_>) -> QuicklistNode<'static> {
    match n {
        QuicklistNode::Packed(b) => QuicklistNode::Packed(b.into_owned().into()),
        other => panic!("no test builds {other:?}"),
    }
}

fn bytes(b: &[u8]) -> crate::value::Bytes<'static> {
    b.to_vec().into()
}

fn kind(r: Result<(String, Value<'static>), Fault>) -> FaultKind {
    r.unwrap_err().kind()
}

#[test]
fn strings_decode_raw_embstr_and_int() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let raw = heap.string_raw(b"a raw string");
        let emb = heap.string_embstr(b"short");
        let int = heap.string_int(-4200);
        let text = |s: &[u8]| Value::String(StrValue::Bytes(bytes(s)));
        let want = [
            ("string raw", text(b"a raw string")),
            ("string embstr", text(b"short")),
            ("string int", Value::String(StrValue::Int(-4200))),
        ];
        for (obj, (k, v)) in [raw, emb, int].into_iter().zip(want) {
            assert_eq!(decode(&heap, obj).unwrap(), (k.to_owned(), v), "{build}");
        }
        let space = heap.space();
        let ctx = WalkContext::new(&space, &l, Default::default());
        assert_eq!(ObjectDecoder::new(&ctx).header(raw).unwrap().lru, 0x1234);
    }
}

#[test]
fn a_list_decodes_to_its_quicklist_nodes() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let nodes: [&[&[u8]]; 2] = [&[b"a", b"bb", b"7"], &[b"last"]];
        let ql = heap.quicklist(&nodes);
        let obj = heap.robj(l.types.list, l.enc.quicklist, ql);
        let packed: Vec<QuicklistNode<'static>> = nodes
            .iter()
            .map(|n| QuicklistNode::Packed(heap.packed_bytes(n).into()))
            .collect();
        let want = if heap.listpacks() {
            Value::ListQuicklist(packed)
        } else {
            Value::ListQuicklistZiplist(packed)
        };
        assert_eq!(
            decode(&heap, obj).unwrap(),
            ("list quicklist".to_owned(), want),
            "{build}"
        );
        // Its header counting one element more than its nodes hold.
        heap.set(ql, l.quicklist.count, 5);
        assert_eq!(
            kind(decode(&heap, obj)),
            FaultKind::CounterMismatch,
            "{build}"
        );
    }
}

#[test]
fn sets_decode_from_intsets_and_tables() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let is = heap.intset(&[-3, 5, 300]);
        let ints = heap.robj(l.types.set, l.enc.intset, is);
        let table = heap.member_table(&[b"x", b"yy", b"zzz"]);
        let members = heap.robj(l.types.set, l.enc.hashtable, table);
        let mut want_is = 2u32.to_le_bytes().to_vec();
        want_is.extend(3u32.to_le_bytes());
        for v in [-3i16, 5, 300] {
            want_is.extend(v.to_le_bytes());
        }
        assert_eq!(
            decode(&heap, ints).unwrap(),
            ("set intset".to_owned(), Value::SetIntset(want_is.into())),
            "{build}"
        );
        let want = Value::SetMembers(vec![bytes(b"x"), bytes(b"yy"), bytes(b"zzz")]);
        assert_eq!(
            decode(&heap, members).unwrap(),
            ("set hashtable".to_owned(), want),
            "{build}"
        );
    }
}

#[test]
fn hashes_and_zsets_decode_from_packed_encodings() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let (enc, lp) = (heap.packed_encoding(), heap.listpacks());
        let hash_items: [&[u8]; 4] = [b"f1", b"v1", b"f2", b"12"];
        let zset_items: [&[u8]; 4] = [b"a", b"1", b"b", b"2.5"];
        let (hb, zb) = (
            heap.packed_bytes(&hash_items),
            heap.packed_bytes(&zset_items),
        );
        let (hp, zp) = (heap.blob(&hb), heap.blob(&zb));
        let hash = heap.robj(l.types.hash, enc, hp);
        let zset = heap.robj(l.types.zset, enc, zp);
        let (hv, zv, e) = if lp {
            (
                Value::HashListpack(hb.into()),
                Value::ZsetListpack(zb.into()),
                "listpack",
            )
        } else {
            (
                Value::HashZiplist(hb.into()),
                Value::ZsetZiplist(zb.into()),
                "ziplist",
            )
        };
        assert_eq!(
            decode(&heap, hash).unwrap(),
            (format!("hash {e}"), hv),
            "{build}"
        );
        assert_eq!(
            decode(&heap, zset).unwrap(),
            (format!("zset {e}"), zv),
            "{build}"
        );
        // A field without its value.
        let odd = heap.packed_bytes(&hash_items[..3]);
        let odd = heap.blob(&odd);
        let odd = heap.robj(l.types.hash, enc, odd);
        assert_eq!(kind(decode(&heap, odd)), FaultKind::BadLength, "{build}");
    }
}

/// Hashtable-encoded hashes of builds whose fields and values are separate elements
/// (string objects in 3.2, sds in 7.0).
#[test]
fn a_hash_table_decodes_to_its_pairs() {
    for build in &BUILDS[..2] {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let pair = |h: &mut Heap<'_>, f: &[u8], v: &[u8]| (h.element(f), h.element(v));
        let t = vec![
            vec![
                pair(&mut heap, b"f1", b"one"),
                pair(&mut heap, b"f2", b"two"),
            ],
            vec![pair(&mut heap, b"f3", b"three")],
        ];
        let d = heap.dict(&[t], -1);
        let obj = heap.robj(l.types.hash, l.enc.hashtable, d.addr);
        let want = Value::HashPairs(vec![
            (bytes(b"f1"), bytes(b"one")),
            (bytes(b"f2"), bytes(b"two")),
            (bytes(b"f3"), bytes(b"three")),
        ]);
        assert_eq!(
            decode(&heap, obj).unwrap(),
            ("hash hashtable".to_owned(), want),
            "{build}"
        );
        // Two fields whose value pointers are one string: a damaged pointer.
        let e = &d.entries[0][0];
        let v0 = heap.get_u64(e[0] + l.entry.v.offset);
        heap.set(e[1], l.entry.v, v0);
        assert_eq!(kind(decode(&heap, obj)), FaultKind::Duplicate, "{build}");
    }
}

#[test]
fn an_encoding_the_type_never_has_is_a_fault() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let s = heap.sds(b"x");
        let unknown = heap.robj(l.types.string, 13, s);
        let set_raw = heap.robj(l.types.set, l.enc.raw, s);
        let no_type = heap.robj(9, l.enc.raw, s);
        for obj in [unknown, set_raw, no_type] {
            assert_eq!(kind(decode(&heap, obj)), FaultKind::BadHeader, "{build}");
        }
    }
}

#[test]
fn null_and_wild_pointers_are_faults() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let raw = heap.robj(l.types.string, l.enc.raw, 0);
        assert_eq!(kind(decode(&heap, raw)), FaultKind::NullPointer, "{build}");
        // A collection's NULL pointer is read before it is looked at: a read in the
        // zero page, which says NULL.
        let list = heap.robj(l.types.list, l.enc.quicklist, 0);
        assert_eq!(kind(decode(&heap, list)), FaultKind::NullPointer, "{build}");
        let set = heap.robj(l.types.set, l.enc.hashtable, NOWHERE);
        assert_eq!(kind(decode(&heap, set)), FaultKind::Unmapped, "{build}");
        // An embstr whose pointer leaves its own allocation (farther than an embedded
        // key and expire could put it).
        let emb = heap.string_embstr(b"mine");
        heap.alloc(512, 8);
        let other = heap.sds(b"other");
        heap.set(emb, l.robj.ptr, other);
        assert_eq!(
            kind(decode(&heap, emb)),
            FaultKind::OutsideAllocation,
            "{build}"
        );
    }
}

#[test]
fn lengths_past_the_heap_are_faults() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let is = heap.intset(&[1, 2]);
        let set = heap.robj(l.types.set, l.enc.intset, is);
        let pb = heap.packed_bytes(&[b"f", b"v"]);
        let p = heap.blob(&pb);
        let hash = heap.robj(l.types.hash, heap.packed_encoding(), p);
        let s = heap.string_raw(b"tail");
        let sds = heap.get_u64(s + l.robj.ptr.offset);
        assert!(
            decode(&heap, set).is_ok() && decode(&heap, hash).is_ok() && decode(&heap, s).is_ok()
        );
        heap.put_u32(is + 4, 1000); // intset length
        heap.put_u32(p, 1 << 20); // listpack / ziplist total bytes
        heap.put_bytes(sds - 3, &[250, 250]); // sdshdr8 len and alloc
        for obj in [set, hash, s] {
            assert_eq!(
                kind(decode(&heap, obj)),
                FaultKind::OutsideAllocation,
                "{build}"
            );
        }
    }
}

/// A set's dict walked with the bucket check hands its members' hashes to the duplicate
/// check, which compares names only where hashes agree: a member stored twice (two
/// strings of one text, in the bucket they hash to) is still found, among more members
/// than are compared pair by pair; with --salvage the later copy is dropped.
#[test]
fn a_set_member_stored_twice_is_found_by_its_hash() {
    use crate::walker::bucket::BucketCheck;
    use crate::walker::sds::SdsFormat;
    use crate::walker::WalkOptions;
    let l = layout("7.0.15-debian");
    let check = BucketCheck::new([3; 16], SdsFormat::Typed);
    for (twice, salvage) in [(false, false), (true, false), (true, true)] {
        let mut heap = Heap::new(&l);
        let mut names: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("member:{i}").into_bytes())
            .collect();
        if twice {
            names.push(b"member:17".to_vec());
        }
        let mut table = vec![Vec::new(); 64];
        for n in &names {
            let p = heap.element(n);
            table[(check.hash_bytes(n) & 63) as usize].push((p, 0));
        }
        let set = heap.dict(&[table], -1).addr;
        let obj = heap.robj(l.types.set, l.enc.hashtable, set);
        let space = heap.space();
        let options = WalkOptions {
            bucket_check: Some(check),
            salvage,
            ..Default::default()
        };
        let ctx = WalkContext::new(&space, heap.l, options);
        let mut d = ObjectDecoder::new(&ctx);
        let h = d.header(obj).unwrap();
        let got = d.value(&h);
        match (twice, salvage) {
            (false, _) => match got.unwrap() {
                Value::SetMembers(m) => assert_eq!(m.len(), 40),
                other => panic!("{other:?}"),
            },
            (true, false) => {
                let e = got.unwrap_err().to_string();
                assert!(e.contains("member:17"), "{e}");
            }
            (true, true) => {
                match got.unwrap() {
                    Value::SetMembers(m) => assert_eq!(m.len(), 40),
                    other => panic!("{other:?}"),
                }
                assert!(d.take_partial().is_some());
            }
        }
    }
}
