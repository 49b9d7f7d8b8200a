//! The quicklist node target: a node of either flavour written into a synthetic image from
//! the layout, read back by the walker, and round-tripped through an RDB.

// A part of this crate, split by target: it shares the root's imports and helpers.
use super::*;

/// Writes `value` into the struct at `base` of `buf` (little-endian, `f.size` bytes).
pub(crate) fn put_field(buf: &mut [u8], base: usize, f: Field, value: u64) {
    let start = base.saturating_add(usize::try_from(f.offset).unwrap_or(usize::MAX));
    let bytes = value.to_le_bytes();
    let n = usize::from(f.size).min(8);
    if let (Some(dst), Some(src)) = (buf.get_mut(start..start.saturating_add(n)), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
}

/// Writes `value` into the bit-field `b` of the struct at `base` of `buf`.
pub(crate) fn put_bits(buf: &mut [u8], base: usize, b: Bits, value: u64) {
    for i in 0..u64::from(b.width) {
        let bit = b.bit_offset + i;
        let Some(byte) = usize::try_from(bit / 8)
            .ok()
            .and_then(|o| base.checked_add(o))
            .and_then(|o| buf.get_mut(o))
        else {
            return;
        };
        let mask = 1u8 << (bit % 8);
        if (value >> i) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

pub(crate) fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Texts and size of a packed quicklist node: a ziplist (up to 6.2) or a listpack.
pub(crate) fn packed_texts(bytes: &[u8], ziplist: bool) -> Result<(Vec<Vec<u8>>, usize), String> {
    if ziplist {
        let zl = Ziplist::parse(bytes).map_err(|e| e.to_string())?;
        Ok((texts(zl.iter()), zl.total_bytes()))
    } else {
        let lp = Listpack::parse(bytes).map_err(|e| e.to_string())?;
        Ok((texts(lp.iter()), lp.total_bytes()))
    }
}

/// What one quicklist node of a [`quicklist_node`] image holds.
pub(crate) struct NodeSpec {
    /// Bytes at `entry`: the data, or for LZF a `quicklistLZF` (size + compressed bytes).
    payload: Vec<u8>,
    sz: u64,
    count: u64,
    encoding: u64,
    container: u64,
}

/// Reads the node description at the start of a [`quicklist_node`] input.
pub(crate) fn node_spec(layout: &Layout, ziplist: bool, mode: u8, rest: &[u8]) -> NodeSpec {
    let consts = layout.ql;
    let (explicit, payload) = if mode & 4 != 0 {
        match rest.split_first_chunk::<7>() {
            Some((h, p)) => (Some(*h), p),
            None => (None, rest),
        }
    } else {
        (None, rest)
    };
    let lzf = mode & 1 != 0;
    let plain = mode & 2 != 0;
    // The uncompressed data and the bytes stored at `entry`.
    let (raw, stored): (Option<Vec<u8>>, Vec<u8>) = if !lzf {
        (Some(payload.to_vec()), payload.to_vec())
    } else if mode & 8 != 0 {
        // The payload is the data: compress it as Redis would.
        let c = compress(payload).unwrap_or_else(|| payload.to_vec());
        (Some(payload.to_vec()), c)
    } else {
        // The payload is an LZF stream: its natural length, if it has one.
        let limit = payload.len().saturating_mul(lzf_dec::MAX_EXPANSION);
        (::lzf::decompress(payload, limit).ok(), payload.to_vec())
    };
    let raw_len = raw
        .as_ref()
        .map_or(stored.len() as u64 * 2, |r| r.len() as u64);
    let count = if plain {
        1
    } else {
        raw.as_deref()
            .and_then(|r| packed_texts(r, ziplist).ok())
            .map_or(1, |(t, _)| t.len() as u64)
    };
    let mut spec = NodeSpec {
        payload: stored,
        sz: raw_len,
        count,
        encoding: if lzf {
            consts.encoding_lzf
        } else {
            consts.encoding_raw
        },
        container: if plain {
            consts.container_plain
        } else {
            consts.container_packed
        },
    };
    if let Some([s0, s1, s2, s3, c0, c1, ec]) = explicit {
        spec.sz = u64::from(u32::from_le_bytes([s0, s1, s2, s3]));
        spec.count = u64::from(u16::from_le_bytes([c0, c1]));
        spec.encoding = u64::from(ec & 3);
        spec.container = u64::from((ec >> 2) & 3);
    }
    // What the node's `count` bit-field can hold is what the walker sees.
    let width = layout.ql_node.count.width.min(63);
    spec.count &= (1u64 << width) - 1;
    if spec.encoding == consts.encoding_lzf {
        // A quicklistLZF: compressed size, then the compressed bytes.
        let l = layout.ql_lzf;
        let header = usize::try_from(l.compressed).unwrap_or(usize::MAX).min(64);
        let mut lzf_struct = vec![0u8; header];
        put_field(&mut lzf_struct, 0, l.sz, spec.payload.len() as u64);
        lzf_struct.extend_from_slice(&spec.payload);
        spec.payload = lzf_struct;
    }
    spec
}

/// Decodes a node's elements as the RDB loader would see them.
pub(crate) fn node_elements(
    node: &QuicklistNode<'_>,
    ziplist: bool,
    out: &mut Vec<Vec<u8>>,
) -> usize {
    let mut scratch = Vec::new();
    let before = out.len();
    match node {
        QuicklistNode::Packed(b) => match packed_texts(b, ziplist) {
            Ok((t, _)) => out.extend(t),
            Err(e) => panic!("walker returned a packed node that does not parse: {e}"),
        },
        QuicklistNode::PackedLzf {
            compressed,
            raw_len,
        } => {
            let len = usize::try_from(*raw_len).unwrap_or(usize::MAX);
            if let Err(e) = lzf_dec::decompress(compressed, len, &mut scratch) {
                panic!("walker returned an LZF node that does not decompress: {e}");
            }
            match packed_texts(&scratch, ziplist) {
                Ok((t, total)) => {
                    assert_eq!(total, scratch.len(), "LZF node size");
                    out.extend(t);
                }
                Err(e) => panic!("walker returned an LZF node that does not parse: {e}"),
            }
        }
        QuicklistNode::Plain(b) => out.push(b.to_vec()),
        QuicklistNode::PlainLzf {
            compressed,
            raw_len,
        } => {
            let len = usize::try_from(*raw_len).unwrap_or(usize::MAX);
            if let Err(e) = lzf_dec::decompress(compressed, len, &mut scratch) {
                panic!("walker returned a PLAIN LZF node that does not decompress: {e}");
            }
            out.push(scratch);
        }
    }
    out.len() - before
}

/// Writes `key` to an RDB of `version` and reads it back.
pub(crate) fn rdb_roundtrip(key: &RecoveredKey<'_>, version: u32) -> rdb::Entry {
    let mut buf = Vec::new();
    let written = RdbSink::new(&mut buf, version, &[]).and_then(|mut sink| {
        sink.begin_db(key.db, 1, 0)?;
        sink.key(key)?;
        sink.finish().map(|_| ())
    });
    if let Err(e) = written {
        panic!("RDB {version}: a recovered key cannot be written: {e}");
    }
    let mut reader = match rdb::RdbReader::new(&buf[..]) {
        Ok(r) => r,
        Err(e) => panic!("RDB {version} written for one key does not open: {e}"),
    };
    let entry = match reader.next_entry() {
        Ok(Some(e)) => e,
        Ok(None) => panic!("RDB {version}: the key written is missing"),
        Err(e) => panic!("RDB {version} written for one key does not read back: {e}"),
    };
    assert!(matches!(reader.next_entry(), Ok(None)), "one key written");
    entry
}

/// Fuzz the quicklist node path of the object decoder (packed-node validation, LZF,
/// PLAIN nodes) on a synthetic memory image with the 7.0.15 layout (listpack nodes), or
/// the 6.2.14 one (ziplist nodes).
///
/// `[mode, (sz u32, count u16, enc|container<<2 u8 if mode & 4), payload...]`.
/// Mode: bit 0 LZF-encoded node; bit 1 PLAIN container; bit 2 explicit header fields;
/// bit 3 (with LZF) the payload is plain data to compress, else an LZF stream; bits 4-5
/// extra nodes sharing the same data; bit 6 salvage mode; bit 7 the 6.2.14 layout.
pub fn quicklist_node(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ziplist = mode & 128 != 0;
    let profile = if ziplist {
        ZIPLIST_QUICKLIST_PROFILE
    } else {
        SAMPLE_PROFILE
    };
    let Some(layout) = shipped_layout(profile) else {
        panic!("shipped profile {profile} does not resolve");
    };
    let spec = node_spec(layout, ziplist, mode, rest);
    let nodes = 1 + usize::from((mode >> 4) & 3);
    let salvage = mode & 64 != 0;

    // robj | quicklist | nodes... | entry data
    let (r, ql, qn) = (&layout.robj, &layout.quicklist, &layout.ql_node);
    let size = |s: u64| usize::try_from(s).unwrap_or(usize::MAX).min(4096);
    let ql_at = align8(size(r.size));
    let node_at = align8(ql_at + size(ql.size));
    let node_size = align8(size(qn.size));
    let entry_at = node_at + nodes * node_size;
    let mut mem = vec![0u8; entry_at];
    mem.extend_from_slice(&spec.payload);
    let addr = |off: usize| IMAGE_BASE + off as u64;
    put_bits(&mut mem, 0, r.type_, layout.types.list);
    put_bits(&mut mem, 0, r.encoding, layout.enc.quicklist);
    put_field(&mut mem, 0, r.ptr, addr(ql_at));
    put_field(&mut mem, ql_at, ql.head, addr(node_at));
    put_field(
        &mut mem,
        ql_at,
        ql.count,
        spec.count.saturating_mul(nodes as u64),
    );
    put_field(&mut mem, ql_at, ql.len, nodes as u64);
    for i in 0..nodes {
        let at = node_at + i * node_size;
        let next = if i + 1 < nodes {
            addr(at + node_size)
        } else {
            0
        };
        put_field(&mut mem, at, qn.next, next);
        put_field(&mut mem, at, qn.entry, addr(entry_at));
        put_field(&mut mem, at, qn.sz, spec.sz);
        put_bits(&mut mem, at, qn.count, spec.count);
        put_bits(&mut mem, at, qn.encoding, spec.encoding);
        put_bits(&mut mem, at, qn.container, spec.container);
    }

    let space = single_segment(&mem, IMAGE_BASE);
    let options = WalkOptions {
        salvage,
        ..WalkOptions::default()
    };
    let ctx = redis_rescue::walker::context::WalkContext::new(&space, layout, options);
    let mut objects = ObjectDecoder::new(&ctx);
    let header = match objects.header(IMAGE_BASE) {
        Ok(h) => h,
        Err(e) => panic!("the robj of the image is unreadable: {e}"),
    };
    assert_eq!(header.kind.type_name, "list");
    assert_eq!(header.kind.encoding, "quicklist");
    let Ok(value) = objects.value(&header) else {
        return;
    };
    let partial = objects.take_partial();
    let found = match (&value, ziplist) {
        (Value::ListQuicklist(found), false) | (Value::ListQuicklistZiplist(found), true) => found,
        _ => panic!("a quicklist decoded as {value:?}"),
    };
    if partial.is_none() {
        assert_eq!(found.len(), nodes, "node count");
    } else {
        assert!(salvage, "partial value without --salvage");
        assert!(!found.is_empty() && found.len() <= nodes);
    }
    let mut elements = Vec::new();
    for node in found {
        let n = node_elements(node, ziplist, &mut elements) as u64;
        assert_eq!(n, spec.count, "node elements != the node's count");
        match node {
            QuicklistNode::Packed(b) | QuicklistNode::Plain(b) => {
                assert_eq!(b.len() as u64, spec.sz, "node size");
            }
            QuicklistNode::PackedLzf { raw_len, .. } | QuicklistNode::PlainLzf { raw_len, .. } => {
                assert_eq!(*raw_len, spec.sz, "LZF node size");
            }
        }
    }
    let key = RecoveredKey {
        db: 0,
        key: Cow::Borrowed(b"k"),
        expire_ms: None,
        kind: header.kind,
        lru: header.lru,
        value,
    };
    // The native RDB version (nodes copied) and RDB 6 (re-encoded element by element).
    for version in [layout.identity.rdb_version, 6] {
        let entry = rdb_roundtrip(&key, version);
        assert_eq!(entry.key, b"k");
        match entry.value {
            rdb::RdbValue::List(read) => {
                assert!(read == elements, "RDB {version}: list elements differ")
            }
            other => panic!("RDB {version}: a list read back as {}", other.type_name()),
        }
    }
}
