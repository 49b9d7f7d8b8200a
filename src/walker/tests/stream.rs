//! `StreamReader` over streams of 5.0 (no first ID, entries added or max deleted ID), 7.0
//! (those three added) and Valkey 9.1 (`cgroups` moved first in the struct).

use crate::decode::stream::node_entries;
use crate::value::{StreamId, StreamValue, Value};
use crate::walker::context::WalkContext;
use crate::walker::fault::{Fault, FaultKind};
use crate::walker::object::ObjectDecoder;
use crate::walker::stream::StreamReader;
use crate::walker::testheap::{id_key, layout, stream_node, Heap, StreamAt, NOWHERE};

const BUILDS: [&str; 3] = ["5.0.6", "7.0.15-debian", "valkey-9.1.2"];

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId { ms, seq }
}

/// A stream of one node (master 1000-0) of three entries, the last with its own fields.
fn one_node(heap: &mut Heap<'_>) -> StreamAt {
    let node = stream_node(
        id(1000, 0),
        &[
            (id(1000, 0), vec![(&b"f"[..], &b"1"[..])]),
            (id(1000, 1), vec![(b"f", b"2")]),
            (id(1005, 0), vec![(b"g", b"x"), (b"h", b"y")]),
        ],
    );
    heap.stream(&[(id(1000, 0), node)], 3, id(1005, 0))
}

/// The fields of each live entry of a node, with its ID deltas.
type NodeFields = Vec<(i64, i64, Vec<(Vec<u8>, Vec<u8>)>)>;

fn fields(lp: &[u8]) -> NodeFields {
    node_entries(lp)
        .unwrap()
        .into_iter()
        .map(|e| (e.ms_diff, e.seq_diff, e.fields))
        .collect()
}

/// What a read stream holds, copied out of the heap.
#[derive(Debug, PartialEq)]
struct Read {
    length: u64,
    last_id: StreamId,
    first_id: Option<StreamId>,
    max_deleted: Option<StreamId>,
    entries_added: Option<u64>,
    groups: usize,
    nodes: Vec<([u8; 16], Vec<u8>)>,
}

impl Read {
    fn of(s: &StreamValue<'_>) -> Read {
        Read {
            length: s.length,
            last_id: s.last_id,
            first_id: s.first_id,
            max_deleted: s.max_deleted,
            entries_added: s.entries_added,
            groups: s.groups.len(),
            nodes: s.listpacks.iter().map(|(k, b)| (*k, b.to_vec())).collect(),
        }
    }
}

fn read(heap: &Heap<'_>, addr: u64) -> Result<Read, Fault> {
    let space = heap.space();
    let ctx = WalkContext::new(&space, heap.l, Default::default());
    let s = StreamReader::new(&ctx, heap.l.stream.as_ref().unwrap()).read(addr)?;
    Ok(Read::of(&s))
}

fn kind(r: Result<Read, Fault>) -> FaultKind {
    r.unwrap_err().kind()
}

#[test]
fn a_stream_of_one_node_reads_back() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let st = one_node(&mut heap);
        let r = read(&heap, st.addr).unwrap();
        let has_7_0_fields = l.stream.unwrap().first_id.is_some();
        assert_eq!(has_7_0_fields, build != "5.0.6", "{build}");
        assert_eq!(
            (r.length, r.last_id, r.groups),
            (3, id(1005, 0), 0),
            "{build}"
        );
        assert_eq!(r.first_id, has_7_0_fields.then(|| id(1000, 0)), "{build}");
        assert_eq!(r.max_deleted, has_7_0_fields.then(|| id(0, 0)), "{build}");
        assert_eq!(r.entries_added, has_7_0_fields.then_some(3), "{build}");
        assert_eq!(r.nodes.len(), 1, "{build}");
        assert_eq!(r.nodes[0].0, id_key(id(1000, 0)), "{build}");
        let pair = |f: &[u8], v: &[u8]| (f.to_vec(), v.to_vec());
        assert_eq!(
            fields(&r.nodes[0].1),
            vec![
                (0, 0, vec![pair(b"f", b"1")]),
                (0, 1, vec![pair(b"f", b"2")]),
                (5, 0, vec![pair(b"g", b"x"), pair(b"h", b"y")]),
            ],
            "{build}"
        );
    }
}

/// Two nodes: the rax holds a shared run, then a branch on the byte where the IDs part.
#[test]
fn a_stream_of_two_nodes_reads_in_id_order() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let a = stream_node(id(1000, 0), &[(id(1000, 0), vec![(&b"k"[..], &b"a"[..])])]);
        let b = stream_node(
            id(2000, 0),
            &[
                (id(2000, 0), vec![(b"k", b"b")]),
                (id(2000, 7), vec![(b"k", b"c")]),
            ],
        );
        // Given out of order: the rax keeps its keys sorted.
        let st = heap.stream(
            &[(id(2000, 0), b.clone()), (id(1000, 0), a.clone())],
            3,
            id(2000, 7),
        );
        let r = read(&heap, st.addr).unwrap();
        assert_eq!(r.length, 3, "{build}");
        assert_eq!(
            r.nodes,
            vec![(id_key(id(1000, 0)), a), (id_key(id(2000, 0)), b)],
            "{build}"
        );
        // One node more in the rax's count than it holds.
        let s = l.stream.unwrap();
        heap.set(st.rax, s.rax_numele, 3);
        assert_eq!(
            kind(read(&heap, st.addr)),
            FaultKind::CounterMismatch,
            "{build}"
        );
    }
}

#[test]
fn a_rax_pointer_to_nowhere_is_a_fault() {
    for build in BUILDS {
        let l = layout(build);
        let s = l.stream.unwrap();
        let mut heap = Heap::new(&l);
        let st = one_node(&mut heap);
        heap.set(st.addr, s.rax, NOWHERE);
        assert_eq!(kind(read(&heap, st.addr)), FaultKind::Unmapped, "{build}");
        // The rax's head node pointer, then its listpack pointer.
        let mut heap = Heap::new(&l);
        let st = one_node(&mut heap);
        heap.set(st.rax, s.rax_head, NOWHERE);
        assert_eq!(kind(read(&heap, st.addr)), FaultKind::Unmapped, "{build}");
    }
}

#[test]
fn a_length_mismatch_is_a_fault() {
    for build in BUILDS {
        let l = layout(build);
        let s = l.stream.unwrap();
        let mut heap = Heap::new(&l);
        let st = one_node(&mut heap);
        heap.set(st.addr, s.length, 4);
        assert_eq!(
            kind(read(&heap, st.addr)),
            FaultKind::CounterMismatch,
            "{build}"
        );
    }
}

#[test]
fn a_damaged_listpack_node_is_a_fault() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let st = one_node(&mut heap);
        // The master entry's live count (its first element, 3 as a 7-bit integer) says 2:
        // the listpack is sound, the entry-by-entry check of the node is not.
        heap.put_u8(st.nodes[0] + 6, 2);
        assert_eq!(
            kind(read(&heap, st.addr)),
            FaultKind::BadEncoding,
            "{build}"
        );
        heap.put_u8(st.nodes[0] + 6, 3);
        assert!(read(&heap, st.addr).is_ok(), "{build}");
        // Its total length running past the heap.
        heap.put_u32(st.nodes[0], 1 << 20);
        assert_eq!(
            kind(read(&heap, st.addr)),
            FaultKind::OutsideAllocation,
            "{build}"
        );
    }
}

#[test]
fn a_stream_object_decodes_to_a_stream_value() {
    for build in BUILDS {
        let l = layout(build);
        let mut heap = Heap::new(&l);
        let st = one_node(&mut heap);
        let obj = heap.robj(l.types.stream, l.enc.stream, st.addr);
        let space = heap.space();
        let ctx = WalkContext::new(&space, &l, Default::default());
        let mut d = ObjectDecoder::new(&ctx);
        let h = d.header(obj).unwrap();
        assert_eq!(
            (h.kind.type_name, h.kind.encoding),
            ("stream", "stream"),
            "{build}"
        );
        match d.value(&h).unwrap() {
            Value::Stream(s) => assert_eq!(Read::of(&s), read(&heap, st.addr).unwrap()),
            other => panic!("{build}: {other:?}"),
        }
    }
}
