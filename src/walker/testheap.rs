//! A synthetic heap for the walker's unit tests: Redis structures written where a build's
//! [`Layout`] places their fields, so that one test body runs over several builds' layouts
//! instead of bytes at offsets hard-coded for one of them.
//!
//! Everything here panics on misuse: it is test code.

use crate::core::AddressSpace;
use crate::decode::listpack::ListpackBuilder;
use crate::decode::Element;
use crate::profile::layout::{Bits, DictFlavor, EntryFlavor, Field, SdsFlavor};
use crate::profile::{self, Layout};
use crate::value::StreamId;

/// Where every test heap starts.
pub(crate) const BASE: u64 = 0x10_0000;
/// An address no test heap reaches.
pub(crate) const NOWHERE: u64 = 0xdead_0000;

/// The resolved layout of the shipped profile `name`.
pub(crate) fn layout(name: &str) -> Layout {
    Layout::resolve(&profile::load(name).unwrap()).unwrap()
}

/// Memory from [`BASE`] on, filled by a bump allocator, with structures laid out by `l`.
pub(crate) struct Heap<'l> {
    pub l: &'l Layout,
    pub mem: Vec<u8>,
}

/// A dict as built: its address, each table's bucket array, and each entry's address by
/// table, bucket and position in the chain.
pub(crate) struct DictAt {
    pub addr: u64,
    pub buckets: [u64; 2],
    pub entries: Vec<Vec<Vec<u64>>>,
}

/// A hashtable as built: its address and, by table and top-level bucket, the addresses of
/// the buckets of its chain (the top-level one first).
pub(crate) struct HashtableAt {
    pub addr: u64,
    pub chains: Vec<Vec<Vec<u64>>>,
}

/// Keys of a rax with their value pointers.
type RaxKeys = Vec<(Vec<u8>, u64)>;

/// A stream entry: its ID and its (field, value) pairs.
pub(crate) type StreamEntry<'b> = (StreamId, Vec<(&'b [u8], &'b [u8])>);

/// One table of [`Heap::dict`]: per bucket, its chain of (key, value word).
pub(crate) type DictTable = Vec<Vec<(u64, u64)>>;

impl<'l> Heap<'l> {
    /// An empty heap for `l`. The first 16 bytes stay unused, so no structure sits at
    /// [`BASE`] itself.
    pub fn new(l: &'l Layout) -> Self {
        Heap {
            l,
            mem: vec![0; 16],
        }
    }

    /// The heap as the walker sees it.
    pub fn space(&self) -> AddressSpace<'_> {
        crate::core::address_space::single_segment(&self.mem, BASE)
    }

    /// `size` zeroed bytes aligned to `align`; their address.
    pub fn alloc(&mut self, size: u64, align: u64) -> u64 {
        let start = self.mem.len().next_multiple_of(align as usize);
        self.mem.resize(start + size as usize, 0);
        BASE + start as u64
    }

    fn at(&self, addr: u64) -> usize {
        (addr - BASE) as usize
    }

    pub fn put_bytes(&mut self, addr: u64, b: &[u8]) {
        let o = self.at(addr);
        self.mem[o..o + b.len()].copy_from_slice(b);
    }

    pub fn put_u8(&mut self, addr: u64, v: u8) {
        self.put_bytes(addr, &[v]);
    }

    pub fn put_u32(&mut self, addr: u64, v: u32) {
        self.put_bytes(addr, &v.to_le_bytes());
    }

    pub fn put_u64(&mut self, addr: u64, v: u64) {
        self.put_bytes(addr, &v.to_le_bytes());
    }

    pub fn get_u64(&self, addr: u64) -> u64 {
        let o = self.at(addr);
        u64::from_le_bytes(self.mem[o..o + 8].try_into().unwrap())
    }

    /// Copy `bytes` into a fresh allocation; its address.
    pub fn blob(&mut self, bytes: &[u8]) -> u64 {
        let a = self.alloc(bytes.len() as u64, 8);
        self.put_bytes(a, bytes);
        a
    }

    /// Write the plain field `f` of the struct at `at`.
    pub fn set(&mut self, at: u64, f: Field, v: u64) {
        let n = usize::from(f.size);
        assert!(n <= 8 && (n == 8 || v < 1 << (8 * n)), "{v:#x} in {f:?}");
        self.put_bytes(at + f.offset, &v.to_le_bytes()[..n]);
    }

    /// Write the bit-field `b` of the struct at `at` (the setter [`Bits::get`] lacks).
    pub fn set_bits(&mut self, at: u64, b: Bits, v: u64) {
        assert!(v >> b.width == 0, "{v:#x} does not fit {b:?}");
        for i in 0..u64::from(b.width) {
            let bit = b.bit_offset + i;
            let o = self.at(at) + (bit / 8) as usize;
            let mask = 1u8 << (bit % 8);
            if v >> i & 1 == 1 {
                self.mem[o] |= mask;
            } else {
                self.mem[o] &= !mask;
            }
        }
    }

    /// A stream ID (ms, then seq) at `at`.
    pub fn put_id(&mut self, at: u64, id: StreamId) {
        self.put_u64(at, id.ms);
        self.put_u64(at + 8, id.seq);
    }

    /// An sds string in the build's header format (sdshdr8, or sdshdr16 from 256 bytes;
    /// `sdshdr {len, free}` before 3.2), NUL-terminated; the string's address.
    pub fn sds(&mut self, s: &[u8]) -> u64 {
        let len = s.len() as u64;
        let ptr = match self.l.features.sds {
            SdsFlavor::Typed if len < 256 => {
                let a = self.alloc(3 + len + 1, 8);
                self.put_bytes(a, &[len as u8, len as u8, 1]);
                a + 3
            }
            SdsFlavor::Typed => {
                let a = self.alloc(5 + len + 1, 8);
                self.put_bytes(a, &(len as u16).to_le_bytes());
                self.put_bytes(a + 2, &(len as u16).to_le_bytes());
                self.put_u8(a + 4, 2);
                a + 5
            }
            SdsFlavor::LenFree => {
                let h = self.l.sds;
                let a = self.alloc(h.header_size + len + 1, 8);
                self.set(a, h.len, len);
                self.set(a, h.free, 0);
                a + h.header_size
            }
        };
        self.put_bytes(ptr, s);
        ptr
    }

    /// A `robj` of type `ty` and encoding `enc` pointing at `ptr`.
    pub fn robj(&mut self, ty: u64, enc: u64, ptr: u64) -> u64 {
        let r = self.l.robj;
        let a = self.alloc(r.size, 8);
        self.set_bits(a, r.type_, ty);
        self.set_bits(a, r.encoding, enc);
        self.set_bits(a, r.lru, 0x1234);
        self.set(a, r.ptr, ptr);
        a
    }

    /// A raw string object.
    pub fn string_raw(&mut self, s: &[u8]) -> u64 {
        let p = self.sds(s);
        self.robj(self.l.types.string, self.l.enc.raw, p)
    }

    /// An INT-encoded string object.
    pub fn string_int(&mut self, v: i64) -> u64 {
        self.robj(self.l.types.string, self.l.enc.int, v as u64)
    }

    /// An embstr object: the robj and an sdshdr8 string in one allocation (typed sds).
    pub fn string_embstr(&mut self, s: &[u8]) -> u64 {
        assert_eq!(self.l.features.sds, SdsFlavor::Typed);
        let r = self.l.robj;
        let len = s.len() as u64;
        let a = self.alloc(r.size + 3 + len + 1, 8);
        let ptr = a + r.size + 3;
        self.set_bits(a, r.type_, self.l.types.string);
        self.set_bits(a, r.encoding, self.l.enc.embstr);
        self.set(a, r.ptr, ptr);
        self.put_bytes(a + r.size, &[len as u8, len as u8, 1]);
        self.put_bytes(ptr, s);
        a
    }

    /// A collection element as the build keeps it: a string object up to 3.2, else an sds.
    pub fn element(&mut self, s: &[u8]) -> u64 {
        match self.l.features.elements {
            crate::profile::layout::ElementFlavor::Robj => self.string_raw(s),
            crate::profile::layout::ElementFlavor::Sds => self.sds(s),
        }
    }

    /// A dict of plain `dictEntry` chains with up to two tables (each a power-of-two
    /// number of buckets), `dictht ht[2]` or `ht_table[2]` as the build has it.
    pub fn dict(&mut self, tables: &[DictTable], rehashidx: i64) -> DictAt {
        assert_eq!(self.l.features.dict_entry, EntryFlavor::Plain);
        assert!(tables.len() <= 2);
        let d = self.l.dict;
        let e = self.l.entry;
        let ty = self.alloc(128, 8);
        let addr = self.alloc(d.size, 8);
        // Every dict starts with its `dictType *type` (not in the resolved layout).
        self.put_u64(addr, ty);
        self.set(addr, d.rehashidx, rehashidx as u64);
        let mut out = DictAt {
            addr,
            buckets: [0; 2],
            entries: Vec::new(),
        };
        for i in 0..2u64 {
            let Some(table) = tables.get(i as usize) else {
                if d.ht_size_exp.size > 0 {
                    self.set(addr, d.ht_size_exp.element(i, 1), 0xff); // -1: no table
                }
                continue;
            };
            let size = table.len() as u64;
            assert!(size.is_power_of_two());
            let array = self.alloc(size * 8, 8);
            let mut used = 0;
            let mut entries = Vec::new();
            for (bi, chain) in table.iter().enumerate() {
                let at: Vec<u64> = chain.iter().map(|_| self.alloc(e.size, 8)).collect();
                for (j, &(key, v)) in chain.iter().enumerate() {
                    self.set(at[j], e.key, key);
                    self.set(at[j], e.v, v);
                    self.set(at[j], e.next, at.get(j + 1).copied().unwrap_or(0));
                }
                if let Some(&head) = at.first() {
                    self.put_u64(array + bi as u64 * 8, head);
                }
                used += at.len() as u64;
                entries.push(at);
            }
            match self.l.features.dict {
                DictFlavor::HtTable => {
                    self.set(addr, d.ht_table.element(i, 8), array);
                    self.set(addr, d.ht_used.element(i, 8), used);
                    self.set(
                        addr,
                        d.ht_size_exp.element(i, 1),
                        size.trailing_zeros().into(),
                    );
                }
                DictFlavor::Dictht => {
                    let ht = addr + d.ht.offset + i * d.dictht_size;
                    self.set(ht, d.table, array);
                    self.set(ht, d.table_size, size);
                    self.set(ht, d.used, used);
                }
            }
            out.buckets[i as usize] = array;
            out.entries.push(entries);
        }
        out
    }

    /// Write one hashtable bucket at `at`: `entries` in its first slots, and `child` in
    /// the last slot (marked chained) when set.
    fn bucket(&mut self, at: u64, entries: &[u64], child: Option<u64>) {
        let h = self.l.hashtable;
        let mut presence = 0;
        for (slot, &e) in entries.iter().enumerate() {
            presence |= 1 << slot;
            self.set(at, h.entries.element(slot as u64, 8), e);
        }
        if let Some(c) = child {
            self.set(at, h.entries.element(h.slots - 1, 8), c);
        }
        self.set_bits(at, h.presence, presence);
        self.set_bits(at, h.chained, u64::from(child.is_some()));
    }

    /// A Valkey hashtable with up to two tables: per top-level bucket its entries, spilling
    /// into child buckets (slots − 1 entries and a child pointer per chained bucket).
    pub fn hashtable(&mut self, tables: &[Vec<Vec<u64>>], rehash_idx: i64) -> HashtableAt {
        assert!(tables.len() <= 2);
        let h = self.l.hashtable;
        let ty = self.alloc(128, 8);
        let addr = self.alloc(h.size, 8);
        // A hashtable starts with its `hashtableType *type` (not in the resolved layout).
        self.put_u64(addr, ty);
        self.set(addr, h.rehash_idx, rehash_idx as u64);
        let mut chains = Vec::new();
        for i in 0..2u64 {
            let Some(table) = tables.get(i as usize) else {
                self.set(addr, h.bucket_exp.element(i, 1), 0xff); // -1: no table
                continue;
            };
            let size = table.len() as u64;
            assert!(size.is_power_of_two());
            let array = self.alloc(size * h.bucket_size, 64);
            let mut per_bucket = Vec::new();
            for (bi, entries) in table.iter().enumerate() {
                let mut chain = vec![array + bi as u64 * h.bucket_size];
                let mut rest = entries.as_slice();
                while rest.len() as u64 > h.slots {
                    let (here, more) = rest.split_at(h.slots as usize - 1);
                    let child = self.alloc(h.bucket_size, 64);
                    self.bucket(*chain.last().unwrap(), here, Some(child));
                    chain.push(child);
                    rest = more;
                }
                self.bucket(*chain.last().unwrap(), rest, None);
                per_bucket.push(chain);
            }
            let used = table.iter().map(|b| b.len() as u64).sum();
            self.set(addr, h.tables.element(i, 8), array);
            self.set(addr, h.used.element(i, 8), used);
            self.set(
                addr,
                h.bucket_exp.element(i, 1),
                size.trailing_zeros().into(),
            );
            chains.push(per_bucket);
        }
        HashtableAt { addr, chains }
    }

    /// A set of the members: a dict (keys the members, no values) or a hashtable of their
    /// sds, by the build's table family; its table's address.
    pub fn member_table(&mut self, members: &[&[u8]]) -> u64 {
        let ptrs: Vec<u64> = members.iter().map(|m| self.element(m)).collect();
        // Two buckets, the members dealt out in turn: chains of more than one entry.
        let mut buckets = vec![Vec::new(), Vec::new()];
        for (i, p) in ptrs.into_iter().enumerate() {
            buckets[i % 2].push(p);
        }
        match self.l.features.tables {
            crate::profile::layout::TableFlavor::Dict => {
                let t: DictTable = buckets
                    .into_iter()
                    .map(|b| b.into_iter().map(|p| (p, 0)).collect())
                    .collect();
                self.dict(&[t], -1).addr
            }
            crate::profile::layout::TableFlavor::Hashtable => self.hashtable(&[buckets], -1).addr,
        }
    }

    /// An intset of the (ascending) values in the narrowest encoding that holds them.
    pub fn intset(&mut self, values: &[i64]) -> u64 {
        let width: u32 = if values.iter().all(|v| i16::try_from(*v).is_ok()) {
            2
        } else if values.iter().all(|v| i32::try_from(*v).is_ok()) {
            4
        } else {
            8
        };
        let mut b = width.to_le_bytes().to_vec();
        b.extend((values.len() as u32).to_le_bytes());
        for v in values {
            b.extend(&v.to_le_bytes()[..width as usize]);
        }
        self.blob(&b)
    }

    /// The packed encoding of the build's small collections: a listpack where the build
    /// has them (7.0+), else a ziplist; its bytes.
    pub fn packed_bytes(&self, items: &[&[u8]]) -> Vec<u8> {
        if self.listpacks() {
            listpack(items)
        } else {
            ziplist(items)
        }
    }

    /// Whether small collections are listpacks (else ziplists).
    pub fn listpacks(&self) -> bool {
        self.l.enc.listpack != u64::MAX
    }

    /// The encoding number of [`Heap::packed_bytes`].
    pub fn packed_encoding(&self) -> u64 {
        if self.listpacks() {
            self.l.enc.listpack
        } else {
            self.l.enc.ziplist
        }
    }

    /// A quicklist of packed, uncompressed nodes holding `nodes`' elements.
    pub fn quicklist(&mut self, nodes: &[&[&[u8]]]) -> u64 {
        let (ql, qn, c) = (self.l.quicklist, self.l.ql_node, self.l.ql);
        let addrs: Vec<u64> = nodes.iter().map(|_| self.alloc(qn.size, 8)).collect();
        for (i, items) in nodes.iter().enumerate() {
            let bytes = self.packed_bytes(items);
            let data = self.blob(&bytes);
            let n = addrs[i];
            self.set(n, qn.next, addrs.get(i + 1).copied().unwrap_or(0));
            self.set(n, qn.entry, data);
            self.set(n, qn.sz, bytes.len() as u64);
            self.set_bits(n, qn.count, items.len() as u64);
            self.set_bits(n, qn.encoding, c.encoding_raw);
            self.set_bits(n, qn.container, c.container_packed);
        }
        let q = self.alloc(ql.size, 8);
        self.set(q, ql.head, addrs.first().copied().unwrap_or(0));
        self.set(q, ql.count, nodes.iter().map(|n| n.len() as u64).sum());
        self.set(q, ql.len, nodes.len() as u64);
        q
    }

    /// A rax holding `keys` (each with its value pointer): compressed nodes for shared
    /// runs, branching nodes where keys part; the rax struct's address.
    pub fn rax(&mut self, keys: &[(Vec<u8>, u64)]) -> u64 {
        let s = self.l.stream.expect("a build with streams");
        let mut nodes = 0;
        let head = self.rax_node(keys, &mut nodes);
        let r = self.alloc(s.rax_size, 8);
        self.set(r, s.rax_head, head);
        self.set(r, s.rax_numele, keys.len() as u64);
        self.set(r, s.rax_numnodes, nodes);
        r
    }

    fn rax_node(&mut self, keys: &[(Vec<u8>, u64)], count: &mut u64) -> u64 {
        let s = self.l.stream.unwrap();
        *count += 1;
        let value = keys.iter().find(|(k, _)| k.is_empty()).map(|(_, v)| *v);
        let rest: Vec<&(Vec<u8>, u64)> = keys.iter().filter(|(k, _)| !k.is_empty()).collect();
        let first: std::collections::BTreeSet<u8> = rest.iter().map(|(k, _)| k[0]).collect();
        // One run every key shares: a compressed node; else one edge byte per child.
        let compressed = first.len() == 1;
        let (data, children): (Vec<u8>, Vec<RaxKeys>) = if compressed {
            let common = (1..)
                .find(|&n| {
                    rest.iter()
                        .any(|(k, _)| k.len() < n || k[..n] != rest[0].0[..n])
                })
                .unwrap()
                - 1;
            let data = rest[0].0[..common].to_vec();
            let child = rest
                .iter()
                .map(|(k, v)| (k[common..].to_vec(), *v))
                .collect();
            (data, vec![child])
        } else {
            let children = first
                .iter()
                .map(|b| {
                    rest.iter()
                        .filter(|(k, _)| k[0] == *b)
                        .map(|(k, v)| (k[1..].to_vec(), *v))
                        .collect()
                })
                .collect();
            (first.into_iter().collect(), children)
        };
        let child_ptrs: Vec<u64> = children.iter().map(|c| self.rax_node(c, count)).collect();
        let children_at = (s.node_data + data.len() as u64).next_multiple_of(8);
        let size = children_at + 8 * child_ptrs.len() as u64 + 8;
        let n = self.alloc(size, 8);
        self.set_bits(n, s.node_iskey, u64::from(value.is_some()));
        self.set_bits(n, s.node_isnull, u64::from(value == Some(0)));
        self.set_bits(n, s.node_iscompr, u64::from(compressed));
        self.set_bits(n, s.node_size, data.len() as u64);
        self.put_bytes(n + s.node_data, &data);
        for (i, c) in child_ptrs.iter().enumerate() {
            self.put_u64(n + children_at + 8 * i as u64, *c);
        }
        if let Some(v) = value.filter(|v| *v != 0) {
            self.put_u64(n + children_at + 8 * child_ptrs.len() as u64, v);
        }
        n
    }

    /// A stream whose listpack nodes are `nodes` (master ID, node bytes), with `length`
    /// live entries and last ID `last`; first ID and entries added where the build has
    /// them; no consumer groups.
    pub fn stream(
        &mut self,
        nodes: &[(StreamId, Vec<u8>)],
        length: u64,
        last: StreamId,
    ) -> StreamAt {
        let s = self.l.stream.expect("a build with streams");
        let blobs: Vec<u64> = nodes.iter().map(|(_, lp)| self.blob(lp)).collect();
        let keys: Vec<(Vec<u8>, u64)> = nodes
            .iter()
            .zip(&blobs)
            .map(|((id, _), b)| (id_key(*id).to_vec(), *b))
            .collect();
        let rax = self.rax(&keys);
        let a = self.alloc(s.size, 8);
        self.set(a, s.rax, rax);
        self.set(a, s.length, length);
        self.put_id(a + s.last_id, last);
        if let (Some(o), Some((id, _))) = (s.first_id, nodes.first()) {
            self.put_id(a + o, *id);
        }
        if let Some(f) = s.entries_added {
            self.set(a, f, length);
        }
        self.set(a, s.cgroups, 0);
        StreamAt {
            addr: a,
            rax,
            nodes: blobs,
        }
    }
}

/// A stream as built: its address, its rax's, and each listpack node's.
pub(crate) struct StreamAt {
    pub addr: u64,
    pub rax: u64,
    pub nodes: Vec<u64>,
}

/// A stream ID as a rax key: ms then seq, big-endian (`streamEncodeID`).
pub(crate) fn id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

/// A listpack of `items` (canonical integers stored as integers, as Redis does).
pub(crate) fn listpack(items: &[&[u8]]) -> Vec<u8> {
    let mut b = ListpackBuilder::new();
    for i in items {
        let e = match crate::decode::parse_canonical_int(i) {
            Some(n) => Element::Int(n),
            None => Element::Bytes(i),
        };
        b.push(e).unwrap();
    }
    b.finish()
}

/// A ziplist of short strings (under 64 bytes each, stored as strings).
pub(crate) fn ziplist(items: &[&[u8]]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut prev = 0usize;
    let mut tail = 10usize;
    for s in items {
        assert!(s.len() < 64);
        tail = 10 + entries.len();
        let start = entries.len();
        entries.push(prev as u8);
        entries.push(s.len() as u8); // 00pppppp: a string of up to 63 bytes
        entries.extend_from_slice(s);
        prev = entries.len() - start;
    }
    let total = 10 + entries.len() + 1;
    let mut out = (total as u32).to_le_bytes().to_vec();
    out.extend((tail as u32).to_le_bytes());
    out.extend((items.len() as u16).to_le_bytes());
    out.extend(entries);
    out.push(0xff);
    out
}

/// A stream listpack node (master ID `master`) of live `entries`, each an ID and its
/// fields; entries with the first entry's field names are stored SAMEFIELDS.
pub(crate) fn stream_node(master: StreamId, entries: &[StreamEntry<'_>]) -> Vec<u8> {
    let master_fields: Vec<&[u8]> = entries[0].1.iter().map(|(f, _)| *f).collect();
    let mut b = ListpackBuilder::new();
    let mut push = |e: Element<'_>| b.push(e).unwrap();
    push(Element::Int(entries.len() as i64));
    push(Element::Int(0));
    push(Element::Int(master_fields.len() as i64));
    for f in &master_fields {
        push(Element::Bytes(f));
    }
    push(Element::Int(0));
    for (id, fields) in entries {
        let same = fields
            .iter()
            .map(|(f, _)| *f)
            .eq(master_fields.iter().copied());
        push(Element::Int(if same { 2 } else { 0 }));
        push(Element::Int((id.ms - master.ms) as i64));
        push(Element::Int((id.seq as i64) - (master.seq as i64)));
        if same {
            for (_, v) in fields {
                push(Element::Bytes(v));
            }
        } else {
            push(Element::Int(fields.len() as i64));
            for (f, v) in fields {
                push(Element::Bytes(f));
                push(Element::Bytes(v));
            }
        }
        let n = 3 + if same {
            fields.len()
        } else {
            1 + 2 * fields.len()
        };
        push(Element::Int(n as i64));
    }
    b.finish()
}
