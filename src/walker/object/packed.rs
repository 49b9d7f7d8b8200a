//! Compact encodings behind an object: listpacks, ziplists, intsets and quicklists
//! (with their LZF-compressed nodes), each bounded by the dumped memory and validated.

use super::{ObjectDecoder, MAX_LZF_RATIO, MAX_NODE_BYTES, MAX_PREALLOC};
use crate::decode::{intset::Intset, listpack::Listpack, lzf, ziplist::Ziplist};
use crate::profile::layout::QuicklistFlavor;
use crate::value::{Bytes, QuicklistNode};
use crate::walker::fault::{Fault, FaultKind};

impl<'s, 'a> ObjectDecoder<'s, 'a> {
    pub(super) fn listpack(
        &self,
        ptr: u64,
        pairs: bool,
        what: &'static str,
    ) -> Result<Bytes<'a>, Fault> {
        let total = u64::from(self.space.u32(ptr)?);
        let bytes = self.blob(ptr, total, what)?;
        let lp = Listpack::parse(&bytes).map_err(Fault::decode(what))?;
        if pairs && lp.len() % 2 != 0 {
            return Err(Fault::of(
                FaultKind::BadLength,
                format!("{what} holds an odd number of entries ({})", lp.len()),
            ));
        }
        if lp.is_empty() {
            return Err(Fault::of(
                FaultKind::EmptyValue,
                format!("{what} is empty; Redis never keeps an empty key"),
            ));
        }
        Ok(bytes)
    }

    pub(super) fn ziplist(
        &self,
        ptr: u64,
        pairs: bool,
        what: &'static str,
    ) -> Result<Bytes<'a>, Fault> {
        let total = u64::from(self.space.u32(ptr)?);
        let bytes = self.blob(ptr, total, what)?;
        let zl = Ziplist::parse(&bytes).map_err(Fault::decode(what))?;
        if pairs && zl.len() % 2 != 0 {
            return Err(Fault::of(
                FaultKind::BadLength,
                format!("{what} holds an odd number of entries ({})", zl.len()),
            ));
        }
        if zl.is_empty() {
            return Err(Fault::of(
                FaultKind::EmptyValue,
                format!("{what} is empty; Redis never keeps an empty key"),
            ));
        }
        Ok(bytes)
    }

    pub(super) fn intset(&self, ptr: u64) -> Result<Bytes<'a>, Fault> {
        let enc = u64::from(self.space.u32(ptr)?);
        let len = u64::from(self.space.u32(ptr.wrapping_add(4))?);
        let total = len
            .checked_mul(enc)
            .and_then(|n| n.checked_add(8))
            .ok_or_else(|| Fault::of(FaultKind::BadLength, "intset size overflows"))?;
        let bytes = self.blob(ptr, total, "intset")?;
        let set = Intset::parse(&bytes).map_err(Fault::decode("intset"))?;
        if set.is_empty() {
            return Err(Fault::of(
                FaultKind::EmptyValue,
                "intset is empty; Redis never keeps an empty key",
            ));
        }
        Ok(bytes)
    }

    pub(super) fn quicklist(&mut self, ptr: u64) -> Result<Vec<QuicklistNode<'a>>, Fault> {
        let ql = &self.layout.quicklist;
        let qn = &self.layout.ql_node;
        let consts = self.layout.ql;
        let head = self.space.read(ptr, ql.size as usize)?;
        let missing = || Fault::of(FaultKind::ProfileGap, "quicklist field outside its struct");
        let count = ql.count.get(&head).ok_or_else(missing)?;
        let len = ql.len.get(&head).ok_or_else(missing)?;
        let mut node = ql.head.get(&head).ok_or_else(missing)?;
        let mut nodes = Vec::with_capacity(len.min(MAX_PREALLOC) as usize);
        let mut guard = self
            .ctx
            .guard("quicklist node chain", len)
            .remembering(self.salvage);
        let mut elements = 0u64;
        let walked = (|| {
            while node != 0 {
                guard.step(node)?;
                let nb = self.space.read(node, qn.size as usize)?;
                let (Some(next), Some(entry), Some(sz), Some(ncount), Some(enc), Some(container)) = (
                    qn.next.get(&nb),
                    qn.entry.get(&nb),
                    qn.sz.get(&nb),
                    qn.count.get(&nb),
                    qn.encoding.get(&nb),
                    qn.container.get(&nb),
                ) else {
                    return Err(missing());
                };
                if sz > MAX_NODE_BYTES || ncount == 0 {
                    return Err(Fault::of(
                        FaultKind::CounterMismatch,
                        format!("quicklist node {node:#x} has size {sz} and count {ncount}"),
                    ));
                }
                let plain_allowed =
                    self.layout.features.quicklist == Some(QuicklistFlavor::Listpack);
                if plain_allowed && container == consts.container_plain {
                    if ncount != 1 {
                        return Err(Fault::of(
                            FaultKind::CounterMismatch,
                            format!("PLAIN quicklist node with count {ncount}"),
                        ));
                    }
                    if enc == consts.encoding_lzf {
                        let compressed = self.lzf_decompress(entry, sz)?;
                        nodes.push(QuicklistNode::PlainLzf {
                            compressed,
                            raw_len: sz,
                        });
                    } else {
                        nodes.push(QuicklistNode::Plain(self.blob(
                            entry,
                            sz,
                            "PLAIN quicklist node",
                        )?));
                    }
                } else if container == consts.container_packed {
                    if enc == consts.encoding_lzf {
                        let (compressed, lp_len) = self.lzf_node(entry, sz)?;
                        if lp_len != ncount {
                            return Err(Fault::of(
                                FaultKind::CounterMismatch,
                                format!(
                                "quicklist node holds {lp_len} entries, its header says {ncount}"
                            ),
                            ));
                        }
                        nodes.push(QuicklistNode::PackedLzf {
                            compressed,
                            raw_len: sz,
                        });
                    } else if enc == consts.encoding_raw {
                        let bytes = self.blob(entry, sz, "quicklist node")?;
                        let (entries, total) = self.packed_info(&bytes)?;
                        if entries != ncount || total != sz {
                            return Err(Fault::of(FaultKind::CounterMismatch, format!(
                                "quicklist node holds {entries} entries / {total} bytes, its header says {ncount} / {sz}"
                            )));
                        }
                        nodes.push(QuicklistNode::Packed(bytes));
                    } else {
                        return Err(Fault::of(
                            FaultKind::BadHeader,
                            format!("quicklist node encoding {enc}"),
                        ));
                    }
                } else {
                    return Err(Fault::of(
                        FaultKind::BadHeader,
                        format!("quicklist node container {container}"),
                    ));
                }
                elements += ncount;
                node = next;
            }
            Ok(())
        })();
        let fault = walked.err().or_else(|| {
            if guard.steps() != len || elements != count {
                return Some(Fault::of(
                    FaultKind::CounterMismatch,
                    format!(
                    "quicklist has {} nodes / {elements} elements, its header says {len} / {count}",
                    guard.steps()
                ),
                ));
            }
            (count == 0).then(|| {
                Fault::of(
                    FaultKind::EmptyValue,
                    "quicklist is empty; Redis never keeps an empty key",
                )
            })
        });
        self.salvaged(nodes, fault)
    }

    /// Read a compressed node's bytes and decompress them into `scratch` (checking the size).
    pub(super) fn lzf_decompress(
        &mut self,
        lzf_ptr: u64,
        raw_len: u64,
    ) -> Result<Bytes<'a>, Fault> {
        let l = &self.layout.ql_lzf;
        let csz = self
            .space
            .uint(lzf_ptr.wrapping_add(l.sz.offset), l.sz.size)?;
        if csz == 0 || raw_len > csz.saturating_mul(MAX_LZF_RATIO) {
            return Err(Fault::of(
                FaultKind::CounterMismatch,
                format!("LZF node of {csz} compressed bytes claims {raw_len} bytes uncompressed"),
            ));
        }
        let compressed = self.blob(
            lzf_ptr.wrapping_add(l.compressed),
            csz,
            "LZF quicklist node",
        )?;
        lzf::decompress(&compressed, raw_len as usize, &mut self.scratch)
            .map_err(Fault::decode("LZF quicklist node"))?;
        Ok(compressed)
    }

    /// Validate a packed quicklist node (a listpack from 7.0, a ziplist before) and
    /// return its entry count and byte size.
    pub(super) fn packed_info(&self, bytes: &[u8]) -> Result<(u64, u64), Fault> {
        if self.layout.features.quicklist == Some(QuicklistFlavor::Ziplist) {
            let zl = Ziplist::parse(bytes).map_err(Fault::decode("quicklist ziplist"))?;
            Ok((zl.len() as u64, zl.total_bytes() as u64))
        } else {
            let lp = Listpack::parse(bytes).map_err(Fault::decode("quicklist listpack"))?;
            Ok((lp.len() as u64, lp.total_bytes() as u64))
        }
    }

    /// A compressed packed node: decompressed and validated, kept compressed.
    /// Returns the compressed bytes and the node's entry count.
    pub(super) fn lzf_node(
        &mut self,
        lzf_ptr: u64,
        raw_len: u64,
    ) -> Result<(Bytes<'a>, u64), Fault> {
        let compressed = self.lzf_decompress(lzf_ptr, raw_len)?;
        let (entries, total) = self.packed_info(&self.scratch)?;
        if total != raw_len {
            return Err(Fault::of(
                FaultKind::CounterMismatch,
                "decompressed node size differs from the node's size",
            ));
        }
        Ok((compressed, entries))
    }
}
