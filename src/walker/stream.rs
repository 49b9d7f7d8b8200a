//! Streams: the radix tree of master IDs → listpacks, the stream's metadata, and its
//! consumer groups with their pending entries and consumers.

use super::context::WalkContext;
use super::fault::Fault;
use crate::core::AddressSpace;
use crate::decode::{listpack::Listpack, Element};
use crate::profile::layout::{IdmpLayout, StreamLayout};
use crate::value::{
    Bytes, StreamConsumer, StreamGroup, StreamId, StreamIdmp, StreamNack, StreamValue,
};
use crate::walker::fault::FaultKind;

/// Most IIDs a producer may remember (the 8.6 loader refuses larger `idmp_max_entries`).
const MAX_IDMP_ENTRIES: u64 = 10_000;

/// Longest rax key accepted (group and consumer names are sds strings).
const MAX_RAX_KEY: usize = 1 << 20;

/// Reads streams with one build's layout.
pub struct StreamReader<'s, 'a> {
    ctx: &'s WalkContext<'s, 'a>,
    space: &'s AddressSpace<'a>,
    l: &'s StreamLayout,
}

fn id_at(space: &AddressSpace<'_>, addr: u64) -> Result<StreamId, Fault> {
    Ok(StreamId {
        ms: space.u64(addr)?,
        seq: space.u64(addr.wrapping_add(8))?,
    })
}

impl<'s, 'a> StreamReader<'s, 'a> {
    /// A reader in the walk context `ctx` with the stream layout `l`.
    pub fn new(ctx: &'s WalkContext<'s, 'a>, l: &'s StreamLayout) -> Self {
        StreamReader {
            ctx,
            space: ctx.space,
            l,
        }
    }

    /// Every (key, value pointer) of the rax at `rax`, in key order. The walk is bounded
    /// by the rax's own node count and checked against its element count.
    fn rax(
        &self,
        rax: u64,
        mut f: impl FnMut(&[u8], u64) -> Result<(), Fault>,
    ) -> Result<u64, Fault> {
        let l = self.l;
        let hdr = self.space.read(rax, l.rax_size as usize)?;
        let missing = || Fault::of(FaultKind::ProfileGap, "rax field outside the rax");
        let head = l.rax_head.get(&hdr).ok_or_else(missing)?;
        let numele = l.rax_numele.get(&hdr).ok_or_else(missing)?;
        let numnodes = l.rax_numnodes.get(&hdr).ok_or_else(missing)?;
        let mut key: Vec<u8> = Vec::new();
        // (node, key length before it, the edge byte leading to it from an uncompressed parent)
        let mut stack: Vec<(u64, usize, Option<u8>)> = vec![(head, 0, None)];
        let mut visited = 0u64;
        let mut elements = 0u64;
        while let Some((node, plen, edge)) = stack.pop() {
            self.ctx.budget.check()?;
            visited += 1;
            if visited > numnodes.saturating_add(1) {
                return Err(Fault::of(
                    FaultKind::CounterMismatch,
                    format!("rax {rax:#x} has more nodes than its count {numnodes} (a loop?)"),
                ));
            }
            key.truncate(plen);
            if let Some(b) = edge {
                key.push(b);
            }
            let word = self.space.read(node, 4)?;
            let bit = |b: crate::profile::layout::Bits| b.get(&word).ok_or_else(missing);
            let (iskey, isnull, iscompr, size) = (
                bit(l.node_iskey)? == 1,
                bit(l.node_isnull)? == 1,
                bit(l.node_iscompr)? == 1,
                bit(l.node_size)? as usize,
            );
            if key.len().saturating_add(size) > MAX_RAX_KEY {
                return Err(Fault::of(
                    FaultKind::BadLength,
                    format!("rax node {node:#x} makes a key too long"),
                ));
            }
            let data_at = node.wrapping_add(l.node_data);
            // Children start at the next pointer-aligned offset after the data.
            let children_at = node.wrapping_add((l.node_data + size as u64).div_ceil(8) * 8);
            let nchildren = if iscompr { 1 } else { size as u64 };
            if iskey {
                let value = if isnull {
                    0
                } else {
                    self.space.u64(children_at.wrapping_add(nchildren * 8))?
                };
                elements += 1;
                f(&key, value)?;
            }
            if size == 0 {
                continue;
            }
            let data = self.space.read(data_at, size)?;
            let children = self.space.read(children_at, (nchildren * 8) as usize)?;
            if iscompr {
                key.extend_from_slice(&data);
                let child = u64::from_le_bytes(
                    children
                        .get(..8)
                        .and_then(|c| c.try_into().ok())
                        .unwrap_or([0; 8]),
                );
                stack.push((child, key.len(), None));
            } else {
                // Pushed in reverse so the smallest edge is visited first (key order).
                for (i, c) in children.chunks_exact(8).enumerate().rev() {
                    let child = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
                    stack.push((child, key.len(), data.get(i).copied()));
                }
            }
        }
        if elements != numele {
            return Err(Fault::of(
                FaultKind::CounterMismatch,
                format!("rax {rax:#x} holds {elements} keys, its count says {numele}"),
            ));
        }
        Ok(elements)
    }

    fn id_key(key: &[u8]) -> Result<[u8; 16], Fault> {
        key.try_into().map_err(|_| {
            Fault::of(
                FaultKind::BadLength,
                format!("stream ID key of {} bytes", key.len()),
            )
        })
    }

    /// Read the stream at `ptr`.
    pub fn read(&self, ptr: u64) -> Result<StreamValue<'a>, Fault> {
        let l = self.l;
        let s = self.space.read(ptr, l.size as usize)?;
        let missing = || Fault::of(FaultKind::ProfileGap, "stream field outside the stream");
        let rax = l.rax.get(&s).ok_or_else(missing)?;
        let length = l.length.get(&s).ok_or_else(missing)?;
        let cgroups = l.cgroups.get(&s).ok_or_else(missing)?;
        let mut listpacks = Vec::new();
        let mut entries = 0u64;
        self.rax(rax, |key, lp_ptr| {
            let id = Self::id_key(key)?;
            let total = u64::from(self.space.u32(lp_ptr)?);
            if self.space.readable_len(lp_ptr) < total {
                return Err(Fault::of(
                    FaultKind::OutsideAllocation,
                    "stream listpack runs past the dumped memory",
                ));
            }
            let bytes: Bytes<'a> = self.space.read(lp_ptr, total as usize)?;
            let lp = Listpack::parse(&bytes).map_err(Fault::decode("stream listpack"))?;
            // The master entry starts with the count of live entries in this listpack.
            match lp.iter().next() {
                Some(Element::Int(n)) if n >= 0 => entries += n as u64,
                _ => {
                    return Err(Fault::of(
                        FaultKind::BadEncoding,
                        "stream listpack without a master entry count",
                    ))
                }
            }
            // Entry by entry, as Redis's deep sanitization would: a damaged element count
            // loads fine and then sends XREVRANGE astray.
            rdb::decode::stream::check_stream_node(&bytes)
                .map_err(|e| Fault::of(FaultKind::BadEncoding, format!("stream listpack: {e}")))?;
            listpacks.push((id, bytes));
            Ok(())
        })?;
        if entries != length {
            return Err(Fault::of(
                FaultKind::CounterMismatch,
                format!("stream listpacks hold {entries} live entries, the stream says {length}"),
            ));
        }
        let base = ptr;
        let id_field = |off: Option<u64>| -> Result<Option<StreamId>, Fault> {
            off.map(|o| id_at(self.space, base.wrapping_add(o)))
                .transpose()
        };
        let groups = if cgroups == 0 {
            Vec::new()
        } else {
            self.groups(cgroups)?
        };
        Ok(StreamValue {
            listpacks,
            length,
            last_id: id_at(self.space, base.wrapping_add(l.last_id))?,
            first_id: id_field(l.first_id)?,
            max_deleted: id_field(l.max_deleted)?,
            entries_added: l
                .entries_added
                .map(|f| f.get(&s).ok_or_else(missing))
                .transpose()?,
            groups,
            idmp: l.idmp.map(|i| self.idmp(&i, &s)).transpose()?,
        })
    }

    /// The idempotent-producer state of a stream whose struct bytes are `s`.
    fn idmp(&self, i: &IdmpLayout, s: &[u8]) -> Result<StreamIdmp<'a>, Fault> {
        let missing = || {
            Fault::of(
                FaultKind::ProfileGap,
                "stream IDMP field outside the stream",
            )
        };
        let producers_rax = i.producers.get(s).ok_or_else(missing)?;
        let mut producers = Vec::new();
        if producers_rax != 0 {
            self.rax(producers_rax, |pid, producer| {
                let pb = self.space.read(producer, i.producer_size as usize)?;
                let mut entry = i.head.get(&pb).ok_or_else(missing)?;
                let mut iids = Vec::new();
                // The list is bounded by the cap on remembered IIDs.
                let cap = i.max_entries.get(s).ok_or_else(missing)?;
                let mut guard = self.ctx.guard("IDMP entry list", cap.max(MAX_IDMP_ENTRIES));
                while entry != 0 {
                    guard.step(entry)?;
                    let eb = self.space.read(entry, i.entry_size as usize)?;
                    let len = i.iid_len.get(&eb).ok_or_else(missing)?;
                    if len > MAX_RAX_KEY as u64 || self.space.readable_len(entry) < i.iid + len {
                        return Err(Fault::of(
                            FaultKind::BadLength,
                            format!("IDMP entry {entry:#x} claims an IID of {len} bytes"),
                        ));
                    }
                    let iid = self.space.read(entry.wrapping_add(i.iid), len as usize)?;
                    iids.push((iid, id_at(self.space, entry.wrapping_add(i.id))?));
                    entry = i.next.get(&eb).ok_or_else(missing)?;
                }
                producers.push((std::borrow::Cow::Owned(pid.to_vec()), iids));
                Ok(())
            })?;
        }
        Ok(StreamIdmp {
            duration: i.duration.get(s).ok_or_else(missing)?,
            max_entries: i.max_entries.get(s).ok_or_else(missing)?,
            producers,
            iids_added: i.iids_added.get(s).ok_or_else(missing)?,
            iids_duplicates: i.iids_duplicates.get(s).ok_or_else(missing)?,
        })
    }

    fn groups(&self, cgroups: u64) -> Result<Vec<StreamGroup>, Fault> {
        let l = self.l;
        let mut out = Vec::new();
        self.rax(cgroups, |name, cg| {
            let b = self.space.read(cg, l.cg_size as usize)?;
            let missing = || Fault::of(FaultKind::ProfileGap, "streamCG field outside the group");
            let pel_rax = l.cg_pel.get(&b).ok_or_else(missing)?;
            let consumers_rax = l.cg_consumers.get(&b).ok_or_else(missing)?;
            let mut pel = Vec::new();
            self.rax(pel_rax, |id, nack| {
                let nb = self.space.read(nack, l.nack_size as usize)?;
                pel.push(StreamNack {
                    id: Self::id_key(id)?,
                    delivery_time: l.nack_delivery_time.get(&nb).ok_or_else(missing)? as i64,
                    delivery_count: l.nack_delivery_count.get(&nb).ok_or_else(missing)?,
                });
                Ok(())
            })?;
            let mut consumers = Vec::new();
            self.rax(consumers_rax, |cname, c| {
                let cb = self.space.read(c, l.consumer_size as usize)?;
                let cpel_rax = l.consumer_pel.get(&cb).ok_or_else(missing)?;
                let mut cpel = Vec::new();
                self.rax(cpel_rax, |id, _| {
                    let id = Self::id_key(id)?;
                    // The loader rejects a consumer PEL entry missing from the group PEL.
                    if pel
                        .binary_search_by(|n: &StreamNack| n.id.cmp(&id))
                        .is_err()
                    {
                        return Err(Fault::of(
                            FaultKind::Inconsistent,
                            "consumer PEL entry missing from the group PEL",
                        ));
                    }
                    cpel.push(id);
                    Ok(())
                })?;
                consumers.push(StreamConsumer {
                    name: cname.to_vec(),
                    seen_time: l.consumer_seen_time.get(&cb).ok_or_else(missing)? as i64,
                    active_time: l
                        .consumer_active_time
                        .map(|f| f.get(&cb).ok_or_else(missing))
                        .transpose()?
                        .map(|v| v as i64),
                    pel: cpel,
                });
                Ok(())
            })?;
            out.push(StreamGroup {
                name: name.to_vec(),
                last_id: id_at(self.space, cg.wrapping_add(l.cg_last_id))?,
                entries_read: l
                    .cg_entries_read
                    .map(|f| f.get(&b).ok_or_else(missing))
                    .transpose()?,
                pel,
                consumers,
            });
            Ok(())
        })?;
        Ok(out)
    }
}
