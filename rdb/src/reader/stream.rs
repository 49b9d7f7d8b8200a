//! Streams (RDB types 15, 19, 21 and 26): the listpacks of entries, then the stream's
//! metadata, its consumer groups and (type 26) its idempotent-producer state.

use std::io::Read;

use super::{cap, RdbReader, ReadError};
use crate::decode::stream::node_entries;
use crate::record::StreamIdmpConfig;

/// A stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl StreamId {
    /// Parses the `MS-SEQ` text form.
    pub fn parse(s: &str) -> Option<StreamId> {
        let (ms, seq) = s.split_once('-')?;
        Some(StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    fn from_raw(b: &[u8; 16]) -> StreamId {
        let (ms, seq) = b.split_at(8);
        StreamId {
            ms: u64::from_be_bytes(ms.try_into().unwrap_or_default()),
            seq: u64::from_be_bytes(seq.try_into().unwrap_or_default()),
        }
    }
}

/// One (live) stream entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// Its ID.
    pub id: StreamId,
    /// Field/value pairs in order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// An entry of a consumer group's pending entries list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPending {
    /// The pending entry.
    pub id: StreamId,
    /// Last delivery time, Unix ms.
    pub delivery_time: i64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConsumer {
    /// Its name.
    pub name: Vec<u8>,
    /// Last time it was seen, Unix ms.
    pub seen_time: i64,
    /// Last successful interaction, Unix ms (RDB type 21; `None` before).
    pub active_time: Option<i64>,
    /// IDs of the entries pending for it.
    pub pending: Vec<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamGroup {
    /// Its name.
    pub name: Vec<u8>,
    /// Last delivered ID.
    pub last_id: StreamId,
    /// Entries read counter (RDB types 19 and 21).
    pub entries_read: Option<u64>,
    /// The group's pending entries list.
    pub pending: Vec<StreamPending>,
    /// Its consumers.
    pub consumers: Vec<StreamConsumer>,
}

/// An idempotency ID (IID) a producer added, with the entry it added (Redis 8.6+).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamIid {
    /// The IID (given by `XADD … IDMP pid iid`, or a hash of the fields with `IDMPAUTO`).
    pub iid: Vec<u8>,
    /// The ID of the entry that IID added.
    pub id: StreamId,
}

/// A producer of a stream's idempotency state (Redis 8.6+).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamProducer {
    /// The producer ID.
    pub pid: Vec<u8>,
    /// Its remembered IIDs, oldest first.
    pub iids: Vec<StreamIid>,
}

/// A stream's idempotent-producer (IDMP) state, RDB type 26 (Redis 8.6+).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamIdmp {
    /// Duration and IIDs per producer; the reader refuses values Redis would not load.
    pub config: StreamIdmpConfig,
    /// Producers in file order (Redis writes them in producer ID order).
    pub producers: Vec<StreamProducer>,
    /// All-time count of entries added with an IID.
    pub iids_added: u64,
    /// All-time count of duplicate IIDs caught.
    pub iids_duplicates: u64,
}

/// A stream value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// Live entries in ID order.
    pub entries: Vec<StreamEntry>,
    /// The stream's length as recorded (`XLEN`).
    pub length: u64,
    /// Last generated ID.
    pub last_id: StreamId,
    /// First entry's ID (RDB types 19 and 21).
    pub first_id: Option<StreamId>,
    /// Largest deleted ID (RDB types 19 and 21).
    pub max_deleted_id: Option<StreamId>,
    /// Entries ever added (RDB types 19 and 21).
    pub entries_added: Option<u64>,
    /// Consumer groups.
    pub groups: Vec<StreamGroup>,
    /// Idempotent-producer state (RDB type 26; `None` before).
    pub idmp: Option<StreamIdmp>,
}

impl Stream {
    /// Approximate heap bytes held.
    pub fn weight(&self) -> usize {
        let entries: usize = self
            .entries
            .iter()
            .map(|e| {
                32 + e
                    .fields
                    .iter()
                    .map(|(f, v)| f.len() + v.len() + 48)
                    .sum::<usize>()
            })
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|g| {
                64 + g.name.len()
                    + g.pending.len() * 40
                    + g.consumers
                        .iter()
                        .map(|c| 64 + c.name.len() + c.pending.len() * 16)
                        .sum::<usize>()
            })
            .sum();
        let idmp: usize = self.idmp.as_ref().map_or(0, |i| {
            i.producers
                .iter()
                .map(|p| 48 + p.pid.len() + p.iids.iter().map(|e| 48 + e.iid.len()).sum::<usize>())
                .sum()
        });
        entries + groups + idmp
    }
}

impl<R: Read> RdbReader<R> {
    fn stream_id(&mut self, what: &'static str) -> Result<StreamId, ReadError> {
        Ok(StreamId {
            ms: self.len(what)?,
            seq: self.len(what)?,
        })
    }

    pub(super) fn stream(&mut self, ty: u8, at: u64) -> Result<Stream, ReadError> {
        let v2 = ty >= 19;
        let v3 = ty >= 21;
        let v4 = ty >= 26;
        let mut s = Stream::default();
        let nodes = self.len("a stream")?;
        for _ in 0..nodes {
            let key = self.string("a stream node ID")?;
            let raw: [u8; 16] = key
                .as_slice()
                .try_into()
                .map_err(|_| self.corrupt(at, "stream node ID is not 16 bytes"))?;
            let master = StreamId::from_raw(&raw);
            let lp = self.string("a stream listpack")?;
            let node = node_entries(&lp).map_err(|e| self.corrupt(at, e.to_string()))?;
            // IDs are stored as deltas from the node's master ID.
            s.entries.extend(node.into_iter().map(|e| StreamEntry {
                id: StreamId {
                    ms: master.ms.wrapping_add(e.ms_diff as u64),
                    seq: master.seq.wrapping_add(e.seq_diff as u64),
                },
                fields: e.fields,
            }));
        }
        s.length = self.len("a stream length")?;
        s.last_id = self.stream_id("a stream's last ID")?;
        if v2 {
            s.first_id = Some(self.stream_id("a stream's first ID")?);
            s.max_deleted_id = Some(self.stream_id("a stream's max deleted ID")?);
            s.entries_added = Some(self.len("a stream's entries added")?);
        }
        let ngroups = self.len("a stream's group count")?;
        let mut groups = Vec::with_capacity(cap(ngroups));
        for _ in 0..ngroups {
            let name = self.string("a consumer group name")?;
            let last_id = self.stream_id("a consumer group's last ID")?;
            let entries_read = if v2 {
                Some(self.len("a consumer group's entries read")?)
            } else {
                None
            };
            let npel = self.len("a group PEL")?;
            let mut pending = Vec::with_capacity(cap(npel));
            for _ in 0..npel {
                let raw: [u8; 16] = self.input.array("a PEL entry")?;
                let delivery_time = self.millis("a PEL delivery time")?;
                let delivery_count = self.len("a PEL delivery count")?;
                pending.push(StreamPending {
                    id: StreamId::from_raw(&raw),
                    delivery_time,
                    delivery_count,
                });
            }
            let nconsumers = self.len("a consumer count")?;
            let mut consumers = Vec::with_capacity(cap(nconsumers));
            for _ in 0..nconsumers {
                let cname = self.string("a consumer name")?;
                let seen_time = self.millis("a consumer's seen time")?;
                let active_time = if v3 {
                    Some(self.millis("a consumer's active time")?)
                } else {
                    None
                };
                let n = self.len("a consumer PEL")?;
                let mut ids = Vec::with_capacity(cap(n));
                for _ in 0..n {
                    let raw: [u8; 16] = self.input.array("a consumer PEL entry")?;
                    let id = StreamId::from_raw(&raw);
                    let known = pending.binary_search_by(|p| p.id.cmp(&id)).is_ok()
                        || pending.iter().any(|p| p.id == id);
                    if !known {
                        return Err(self.corrupt(
                            at,
                            format!("consumer PEL entry {id} is not in the group's PEL"),
                        ));
                    }
                    ids.push(id);
                }
                consumers.push(StreamConsumer {
                    name: cname,
                    seen_time,
                    active_time,
                    pending: ids,
                });
            }
            groups.push(StreamGroup {
                name,
                last_id,
                entries_read,
                pending,
                consumers,
            });
        }
        s.groups = groups;
        if v4 {
            s.idmp = Some(self.stream_idmp(at)?);
        }
        Ok(s)
    }

    /// The IDMP state that type 26 appends to the type-21 payload.
    fn stream_idmp(&mut self, at: u64) -> Result<StreamIdmp, ReadError> {
        let duration = self.len("a stream's IDMP duration")?;
        let max_entries = self.len("a stream's IDMP max entries")?;
        // Redis 8.6 refuses the whole file for one stream outside these ranges.
        let config = StreamIdmpConfig::new(duration, max_entries)
            .map_err(|e| self.corrupt(at, format!("{e}: Redis refuses to load it")))?;
        let nproducers = self.len("a stream's IDMP producer count")?;
        let mut producers = Vec::with_capacity(cap(nproducers));
        for _ in 0..nproducers {
            let pid = self.string("an IDMP producer ID")?;
            let n = self.len("an IDMP producer's IID count")?;
            let mut iids = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let iid = self.string("an IDMP IID")?;
                let id = self.stream_id("an IDMP entry ID")?;
                iids.push(StreamIid { iid, id });
            }
            producers.push(StreamProducer { pid, iids });
        }
        Ok(StreamIdmp {
            config,
            producers,
            iids_added: self.len("a stream's IIDs added")?,
            iids_duplicates: self.len("a stream's IID duplicates")?,
        })
    }
}
