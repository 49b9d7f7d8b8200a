//! Skiplist-encoded zsets: the level-0 chain of nodes, each checked against the zset's
//! dict or hashtable, and the element each node holds or embeds.

use super::tables::{AddressSet, Hashes};
use super::{ObjectDecoder, MAX_PREALLOC, MAX_SKIPLIST_LEVELS};
use crate::profile::layout::ZsetElementFlavor;
use crate::value::Bytes;
use crate::walker::fault::{Fault, FaultKind};
use crate::walker::hashtable::{EntryKey, HashtableWalker};
use crate::walker::sds::read_sds;

impl<'s, 'a> ObjectDecoder<'s, 'a> {
    /// The element of the skiplist node at `node`, whose first `node_size` bytes are `nb`:
    /// `node->ele`, or (without it) the sds embedded after the node's levels or at the
    /// offset kept in `level[0].span`.
    pub(super) fn node_element(&self, node: u64, nb: &[u8]) -> Result<Bytes<'a>, Fault> {
        let z = &self.layout.zset;
        let missing = || Fault::of(FaultKind::ProfileGap, "zset field outside its struct");
        let ele = match (z.ele, self.layout.features.zset_element) {
            (Some(f), _) => return self.element(f.get(nb).ok_or_else(missing)?),
            (None, ZsetElementFlavor::AfterLevels) => {
                // level[0].span is the node's level count; the element follows the levels
                // behind its 1-byte header size.
                let levels = z.span0.get(nb).ok_or_else(missing)?;
                if !(1..=MAX_SKIPLIST_LEVELS).contains(&levels) {
                    return Err(Fault::of(
                        FaultKind::BadLength,
                        format!("skiplist node {node:#x} claims {levels} levels"),
                    ));
                }
                let after = node
                    .wrapping_add(z.forward0.offset)
                    .wrapping_add(levels * z.level_size);
                let hdr = u64::from(self.space.u8(after)?);
                after.wrapping_add(1 + hdr)
            }
            // An embedded element sits at the 16-bit offset kept in level[0].span.
            (None, _) => {
                let offset = z.span0.get(nb).ok_or_else(missing)? & 0xffff;
                if offset < z.node_size {
                    return Err(Fault::of(FaultKind::OutsideAllocation, format!(
                        "skiplist node {node:#x} puts its element at offset {offset}, inside the node"
                    )));
                }
                node.wrapping_add(offset)
            }
        };
        read_sds(self.space, self.sds, ele)
    }

    /// The element of the skiplist node at `node`: what a Valkey 8.1+ zset hashtable
    /// (whose entries are the nodes) hashes it by.
    pub fn zset_node_element(&self, node: u64) -> Result<Bytes<'a>, Fault> {
        let nb = self.space.read(node, self.layout.zset.node_size as usize)?;
        self.node_element(node, &nb)
    }

    /// The nodes of a zset's hashtable (Valkey 8.1+: its entries are the skiplist nodes),
    /// each checked against its bucket by its element when a bucket check is on; with the
    /// table's own count and the first fault of the walk. A node refused by the check (a
    /// damaged element pointer) is not among them.
    pub(super) fn zset_table_nodes(
        &self,
        table: u64,
    ) -> Result<(AddressSet, u64, Option<Fault>), Fault> {
        let walker =
            HashtableWalker::new(self.ctx).with_bucket_check(self.check, EntryKey::ZsetNode);
        let h = walker.header(table)?;
        let mut nodes = AddressSet::with_capacity_and_hasher(
            h.used().min(MAX_PREALLOC) as usize,
            Default::default(),
        );
        let faults = walker.for_each(&h, |n| {
            nodes.insert(n);
        });
        let used = h.used();
        let fault = faults.into_result().err().or_else(|| {
            (nodes.len() as u64 != used).then(|| {
                Fault::of(
                    FaultKind::CounterMismatch,
                    format!(
                        "zset hashtable yielded {} nodes, its counter says {used}",
                        nodes.len()
                    ),
                )
            })
        });
        Ok((nodes, used, fault))
    }

    /// A skiplist-encoded zset, read through the level-0 chain. With hashtable collections
    /// every node the chain reaches must also be an entry of the zset's hashtable (which the
    /// bucket check vouches for by the node's element): a node that is not is refused (a
    /// fault; salvage keeps the others), and both must hold the same count.
    pub(super) fn skiplist(&self, zs: u64) -> Result<Vec<(Bytes<'a>, f64)>, Fault> {
        let z = &self.layout.zset;
        let zb = self.space.read(zs, z.size as usize)?;
        let missing = || Fault::of(FaultKind::ProfileGap, "zset field outside its struct");
        let zsl = z.zsl.get(&zb).ok_or_else(missing)?;
        let dict = z.dict.get(&zb).ok_or_else(missing)?;
        let lb = self.space.read(zsl, z.list_size as usize)?;
        let header = match z.header {
            Some(f) => f.get(&lb).ok_or_else(missing)?,
            // The list is its own header node.
            None => zsl,
        };
        let length = z.length.get(&lb).ok_or_else(missing)?;
        let mut dict_header = None;
        let (members, dict_used, table_fault) = if self.hashtable_collections {
            let (nodes, used, fault) = self.zset_table_nodes(dict)?;
            (Some(nodes), used, fault)
        } else {
            let h = self.dicts.header(dict)?;
            let used = h.used();
            dict_header = Some(h);
            (None, used, None)
        };
        // With the bucket check, a node whose element pointer is in the node (not
        // embedded) must be what the zset's dict maps that element to: its entry for the
        // element's pointer, in the bucket the element's text hashes to, holds the node's
        // score address (`dictAdd(zs->dict, ele, &node->score)`).
        let by_dict = match (dict_header, z.ele, self.check) {
            (Some(h), Some(ele), Some(check)) => Some((h, ele, check)),
            _ => None,
        };
        if dict_used != length {
            return Err(Fault::of(
                FaultKind::CounterMismatch,
                format!("zset skiplist length {length} differs from its dict's {dict_used}"),
            ));
        }
        let mut out = Vec::with_capacity(length.min(MAX_PREALLOC) as usize);
        // The bucket check's hash of each member kept, for the duplicate check.
        let mut hashes = Hashes::start(self);
        let mut refused: Option<Fault> = None;
        let mut guard = self
            .ctx
            .guard("skiplist level-0 chain", length)
            .remembering(self.salvage);
        let forward = |node: u64| -> Result<u64, Fault> {
            Ok(self
                .space
                .uint(node.wrapping_add(z.forward0.offset), z.forward0.size)?)
        };
        let walked = (|| {
            let mut node = forward(header)?;
            while node != 0 {
                guard.step(node)?;
                let nb = self.space.read(node, z.node_size as usize)?;
                let next = z.forward0.get(&nb).ok_or_else(missing)?;
                if members.as_ref().is_some_and(|m| !m.contains(&node)) {
                    // Its element (or the pointer that led here) is damaged: the nodes
                    // after it are still checked one by one.
                    refused.get_or_insert_with(|| {
                        Fault::of(FaultKind::MisplacedEntry, format!(
                            "skiplist node {node:#x} is not an entry of its zset's hashtable (a damaged element or node pointer)"
                        ))
                    });
                    node = next;
                    continue;
                }
                let score = f64::from_bits(z.score.get(&nb).ok_or_else(missing)?);
                if score.is_nan() {
                    return Err(Fault::of(FaultKind::BadValue, "zset score is NaN"));
                }
                let element = self.node_element(node, &nb)?;
                if let Some((h, ele, check)) = &by_dict {
                    let ptr = ele.get(&nb).ok_or_else(missing)?;
                    let score_at = node.wrapping_add(z.score.offset);
                    let hash = check.hash_bytes(&element);
                    let mapped = self.dicts.value_of(h, hash, ptr);
                    if mapped != Some(score_at) {
                        refused.get_or_insert_with(|| {
                            Fault::of(FaultKind::MisplacedEntry, format!(
                                "skiplist node {node:#x} is not what its zset's dict maps its element to (a damaged element or node pointer)"
                            ))
                        });
                        node = next;
                        continue;
                    }
                    hashes.push(Some(hash));
                }
                out.push((element, score));
                node = next;
            }
            Ok(())
        })();
        hashes.finish(self);
        let fault = walked.err().or(refused).or(table_fault).or_else(|| {
            (out.len() as u64 != length || length == 0).then(|| {
                Fault::of(
                    FaultKind::CounterMismatch,
                    format!(
                        "skiplist holds {} nodes, its header says {length}",
                        out.len()
                    ),
                )
            })
        });
        self.salvaged(out, fault)
    }
}
