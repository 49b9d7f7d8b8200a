//! `ObjectDecoder`: a `robj` and everything it points to, decoded into a [`Value`].

use std::borrow::Cow;
use std::cell::Cell;

use super::bucket::BucketCheck;
use super::context::WalkContext;
use super::dict::{DictWalker, KeyForm};
use super::fault::{Fault, FaultKind};
use super::hashtable::{EntryKey, HashtableWalker};
use super::sds::{read_sds, SdsFormat};
use super::stream::StreamReader;
use crate::core::AddressSpace;
use crate::decode::{listpack::Listpack, ziplist::Ziplist, Element};
use crate::profile::layout::{
    ElementFlavor, ExpireFlavor, QuicklistFlavor, TableFlavor, ValueFlavor,
};
use crate::profile::Layout;
use crate::value::{Bytes, Kind, ObjEncoding, ObjType, QuicklistNode, StrValue, Value};

mod holders;
mod packed;
mod tables;
mod zset;

/// Largest uncompressed quicklist node accepted (listpack sizes are 32-bit).
const MAX_NODE_BYTES: u64 = u32::MAX as u64;
/// LZF cannot expand by more than this factor (a 3-byte back-reference yields 264 bytes).
const MAX_LZF_RATIO: u64 = 100;
/// Most levels a skiplist node can have (ZSKIPLIST_MAXLEVEL).
const MAX_SKIPLIST_LEVELS: u64 = 32;
/// Initial capacity cap for collections whose size comes from the core.
const MAX_PREALLOC: u64 = 1 << 16;
/// Type and encoding numbers the lookup tables cover: robj's fields are 4 bits.
const KIND_SLOTS: usize = 16;

/// A build's type and encoding numbers resolved to enums, so reading a header is two
/// array lookups rather than two searches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KindTable {
    types: [Option<ObjType>; KIND_SLOTS],
    encodings: [Option<ObjEncoding>; KIND_SLOTS],
}

impl KindTable {
    pub(crate) fn new(layout: &Layout) -> Self {
        // Numbers a build lacks are u64::MAX and land in no slot. Were two to share a
        // number, the first in `ALL` keeps it, as the search by number did.
        fn fill<T: Copy, const N: usize>(
            all: [T; N],
            number: impl Fn(T) -> u64,
        ) -> [Option<T>; KIND_SLOTS] {
            let mut table = [None; KIND_SLOTS];
            for item in all {
                let slot = usize::try_from(number(item))
                    .ok()
                    .and_then(|i| table.get_mut(i));
                if let Some(slot @ None) = slot {
                    *slot = Some(item);
                }
            }
            table
        }
        KindTable {
            types: fill(ObjType::ALL, |t| layout.types.number(t)),
            encodings: fill(ObjEncoding::ALL, |e| layout.enc.number(e)),
        }
    }

    /// The type and encoding numbered `t` and `e`, `None` for a number the build lacks.
    fn resolve(&self, t: u64, e: u64) -> (Option<ObjType>, Option<ObjEncoding>) {
        let at = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        (
            self.types.get(at(t)).copied().flatten(),
            self.encodings.get(at(e)).copied().flatten(),
        )
    }
}

/// The robj header fields.
#[derive(Debug, Clone, Copy)]
pub struct ObjHeader {
    /// Where the robj is.
    pub addr: u64,
    /// It embeds its value (Valkey 9.1 `hasembval`): no `ptr`; `ptr` below is where the
    /// embedded value is.
    pub embedded: bool,
    /// Type and encoding names.
    pub kind: Kind,
    /// The type, `None` for a number this build does not define.
    pub ty: Option<ObjType>,
    /// The encoding, `None` for a number this build does not define.
    pub enc: Option<ObjEncoding>,
    /// Raw type number.
    pub type_id: u64,
    /// Raw encoding number.
    pub encoding_id: u64,
    /// `ptr`.
    pub ptr: u64,
    /// The `lru` bits: LRU clock of the last access, or LFU time and counter.
    pub lru: u32,
}

/// Decodes values with one build's layout.
pub struct ObjectDecoder<'s, 'a> {
    ctx: &'s WalkContext<'s, 'a>,
    space: &'s AddressSpace<'a>,
    layout: &'s Layout,
    kinds: KindTable,
    dicts: DictWalker<'s, 'a>,
    hashtables: HashtableWalker<'s, 'a>,
    /// The bucket check of sds elements, when on.
    check: Option<BucketCheck>,
    /// Collections use hashtables instead of dicts.
    hashtable_collections: bool,
    sds: SdsFormat,
    scratch: Vec<u8>,
    /// `--salvage`: keep the readable part of a damaged collection.
    salvage: bool,
    /// Why the last value decoded is only part of the collection (salvage mode).
    partial: Cell<Option<Fault>>,
    /// The bucket check's hashes of the names (members, fields) of the last collection read
    /// from a dict or a skiplist, one per name kept, when every one was hashed: its
    /// duplicate check then compares only names of equal hash, without reading all of
    /// them again. Kept allocated.
    member_hashes: Cell<Vec<u64>>,
}

impl<'s, 'a> ObjectDecoder<'s, 'a> {
    /// A decoder in the walk context `ctx`: with `--salvage` it keeps the readable part of
    /// damaged collections (after each [`ObjectDecoder::value`],
    /// [`ObjectDecoder::take_partial`] says whether the value is only a part); with a
    /// bucket check it checks set members and hash fields against their dict or hashtable
    /// buckets (sds elements, and string objects up to 3.2 hashed by their text; mstr hash
    /// fields are hashed as mstr, so those stay unchecked).
    pub fn new(ctx: &'s WalkContext<'s, 'a>) -> Self {
        let layout = ctx.layout;
        let check = ctx.options.bucket_check;
        let keys = match layout.features.elements {
            ElementFlavor::Robj => KeyForm::StringObject,
            ElementFlavor::Sds => KeyForm::Sds,
        };
        ObjectDecoder {
            ctx,
            space: ctx.space,
            layout,
            kinds: ctx.kinds,
            dicts: DictWalker::new(ctx)
                .with_bucket_check(check)
                .with_keys(keys),
            hashtables: HashtableWalker::new(ctx).with_bucket_check(check, EntryKey::Sds),
            check,
            hashtable_collections: layout.features.tables == TableFlavor::Hashtable,
            sds: ctx.sds,
            scratch: Vec::new(),
            salvage: ctx.options.salvage,
            partial: Cell::new(None),
            member_hashes: Cell::new(Vec::new()),
        }
    }

    /// Why the value just decoded is incomplete, when it was salvaged from damage.
    pub fn take_partial(&self) -> Option<Fault> {
        self.partial.take()
    }

    /// The end of a collection walk that hit `fault` after reading `out`: in salvage mode
    /// a non-empty part is kept (and marked partial), otherwise the key is lost.
    fn salvaged<T>(&self, out: Vec<T>, fault: Option<Fault>) -> Result<Vec<T>, Fault> {
        match fault {
            None => Ok(out),
            Some(f) if self.salvage && !out.is_empty() => {
                self.partial.set(Some(f));
                Ok(out)
            }
            Some(f) => Err(f),
        }
    }

    /// Whether the object at `addr` embeds its value (Valkey 9.1 `hasembval`): then it has
    /// no `ptr` and its embedded data starts right after the flags word.
    fn embeds_value(&self, addr: u64) -> Result<bool, Fault> {
        if self.layout.features.value != ValueFlavor::EmbeddedOrPointer {
            return Ok(false);
        }
        let bytes = self
            .space
            .read(addr, self.layout.robj.ptr.offset as usize)?;
        self.embeds_value_in(&bytes)
    }

    /// [`ObjectDecoder::embeds_value`] of an object whose first bytes (up to `ptr`, at
    /// least) are `head`.
    fn embeds_value_in(&self, head: &[u8]) -> Result<bool, Fault> {
        if self.layout.features.value != ValueFlavor::EmbeddedOrPointer {
            return Ok(false);
        }
        self.layout
            .robj
            .value_flag
            .get(head)
            .map(|v| v == 1)
            .ok_or_else(|| Fault::of(FaultKind::ProfileGap, "object flag bits outside the object"))
    }

    /// Where the embedded value of the object at `addr` without `ptr`, whose first bytes
    /// are `head`, is: after its expire and key, an sdshdr8 string.
    fn embedded_value(&self, addr: u64, head: &[u8]) -> Result<u64, Fault> {
        let r = &self.layout.robj;
        let flag = |b: crate::profile::layout::Bits| {
            b.get(head).ok_or_else(|| {
                Fault::of(FaultKind::ProfileGap, "object flag bits outside the object")
            })
        };
        let mut at = addr.wrapping_add(r.data_start(true));
        if self.layout.features.expire == ExpireFlavor::InObject && flag(r.expire_flag)? == 1 {
            at = at.wrapping_add(8);
        }
        if self.layout.features.embedded_keys() && flag(r.key_flag)? == 1 {
            let hdr = u64::from(self.space.u8(at)?);
            let key_at = at.wrapping_add(1 + hdr);
            let key = read_sds(self.space, SdsFormat::Typed, key_at)?;
            at = key_at.wrapping_add(key.len() as u64 + 1);
        }
        Ok(at.wrapping_add(3))
    }

    /// Read the robj header at `addr`.
    pub fn header(&self, addr: u64) -> Result<ObjHeader, Fault> {
        let r = &self.layout.robj;
        // Where values may be embedded, the flags (before `ptr`) say whether `ptr` is
        // there to read; one read serves both when it is not.
        let (embedded, bytes) = if self.layout.features.value == ValueFlavor::EmbeddedOrPointer {
            let head = self.space.read(addr, r.ptr.offset as usize)?;
            if self.embeds_value_in(&head)? {
                (true, head)
            } else {
                (
                    false,
                    self.space.read(addr, r.size.max(r.ptr.offset) as usize)?,
                )
            }
        } else {
            (
                false,
                self.space.read(addr, r.size.max(r.ptr.offset) as usize)?,
            )
        };
        let missing = || Fault::of(FaultKind::ProfileGap, "robj field outside the robj struct");
        let type_id = r.type_.get(&bytes).ok_or_else(missing)?;
        let encoding_id = r.encoding.get(&bytes).ok_or_else(missing)?;
        let ptr = if embedded {
            self.embedded_value(addr, &bytes)?
        } else {
            r.ptr.get(&bytes).ok_or_else(missing)?
        };
        let lru = r.lru.get(&bytes).ok_or_else(missing)? as u32;
        let (ty, enc) = self.kinds.resolve(type_id, encoding_id);
        Ok(ObjHeader {
            addr,
            embedded,
            lru,
            kind: Kind::of(ty, enc),
            ty,
            enc,
            type_id,
            encoding_id,
            ptr,
        })
    }

    /// Starts loading what decoding the object at `obj` reads first beyond the object:
    /// its payload (a listpack, an intset, a quicklist, a table, a raw string). None when
    /// it has none (an integer, an embedded string) or cannot be read; else what to load
    /// next, if anything ([`ObjectDecoder::chase_ahead`]). Advice only: nothing is
    /// checked or reported, and a word that is no address of the core is passed over.
    pub(crate) fn payload_ahead(&self, obj: u64) -> Option<Option<Chase>> {
        let r = &self.layout.robj;
        if !matches!(self.embeds_value(obj), Ok(false)) {
            return None;
        }
        let bytes = self.space.read(obj, r.ptr.offset as usize + 8).ok()?;
        let (ty, enc) = self
            .kinds
            .resolve(r.type_.get(&bytes)?, r.encoding.get(&bytes)?);
        let enc = enc?;
        if matches!(enc, ObjEncoding::Int | ObjEncoding::Embstr) {
            return None;
        }
        let ptr = r.ptr.get(&bytes)?;
        self.space.prefetch_span(ptr, 64);
        let dict = enc == ObjEncoding::Hashtable
            && matches!(ty, Some(ObjType::Set | ObjType::Hash))
            && !self.hashtable_collections;
        Some(match enc {
            ObjEncoding::Quicklist => Some(Chase::Quicklist(ptr)),
            _ if dict => Some(Chase::Dict(ptr)),
            _ => None,
        })
    }

    /// The next level of what [`ObjectDecoder::payload_ahead`] found, once the level
    /// before has arrived: a quicklist's head node, then its listpack; a set's or hash's
    /// dict's bucket array, then the entries of its first buckets. Returns what follows.
    pub(crate) fn chase_ahead(&self, chase: Chase) -> Option<Chase> {
        match chase {
            Chase::Quicklist(at) => {
                let ql = &self.layout.quicklist;
                let node = ql.head.get(&self.space.read(at, ql.size as usize).ok()?)?;
                self.space.prefetch_span(node, 64);
                Some(Chase::QuicklistNode(node))
            }
            Chase::QuicklistNode(at) => {
                let qn = &self.layout.ql_node;
                let entry = qn.entry.get(&self.space.read(at, qn.size as usize).ok()?)?;
                self.space.prefetch_span(entry, 64);
                None
            }
            Chase::Dict(at) => {
                let t = self.dicts.header(at).ok()?.tables[0];
                let slots = t.size.min(CHASED_BUCKETS);
                self.space.prefetch_span(t.buckets, slots * 8);
                Some(Chase::DictBuckets(t.buckets, slots))
            }
            Chase::DictBuckets(at, slots) => {
                let heads = self.space.read(at, (slots * 8) as usize).ok()?;
                for head in heads.chunks_exact(8) {
                    let p = u64::from_le_bytes(head.try_into().unwrap_or([0; 8]));
                    if p != 0 {
                        self.space.prefetch(p);
                    }
                }
                None
            }
        }
    }

    /// Decode the value of the object `h`, checked to hold no duplicate set member, hash
    /// field or zset member: Redis never keeps one, and its loader either refuses the
    /// file or silently keeps a corrupt value when it meets one.
    pub fn value(&mut self, h: &ObjHeader) -> Result<Value<'a>, Fault> {
        self.partial.set(None);
        let mut hashes = self.member_hashes.take();
        hashes.clear();
        self.member_hashes.set(hashes);
        let mut value = self.decode_value(h)?;
        self.check_unique(&mut value)?;
        check_scores(&value)?;
        Ok(value)
    }

    /// Fail on a duplicate member or field, or in salvage mode drop the later copies and
    /// mark the value partial.
    fn check_unique(&self, value: &mut Value<'a>) -> Result<(), Fault> {
        let packed = |bytes: &[u8], ziplist: bool, stride: usize, what: &str| {
            first_duplicate_packed(bytes, ziplist, stride)
                .map_or(Ok(()), |d| Err(duplicate_fault(what, &d)))
        };
        match value {
            Value::SetListpack(b) => packed(b, false, 1, "set member"),
            Value::ZsetListpack(b) => packed(b, false, 2, "zset member"),
            Value::HashListpack(b) => packed(b, false, 2, "hash field"),
            Value::HashListpackEx { lp, .. } => packed(lp, false, 3, "hash field"),
            Value::ZsetZiplist(b) => packed(b, true, 2, "zset member"),
            Value::HashZiplist(b) => packed(b, true, 2, "hash field"),
            Value::SetMembers(m) => self.unique_by_hashes(m, |e| e, "set member"),
            Value::ZsetPairs(m) => self.unique_by_hashes(m, |e| &e.0, "zset member"),
            Value::HashPairs(m) => self.unique_by_hashes(m, |e| &e.0, "hash field"),
            Value::HashPairsTtl(m) => self.unique_by_hashes(m, |e| &e.0, "hash field"),
            _ => Ok(()),
        }
    }

    /// See [`ObjectDecoder::check_unique`], for decoded collections: by the names'
    /// hashes where the table walk (or the zset's dict check) left one for each name in
    /// `member_hashes`, comparing names only where hashes agree; else by a hash set.
    fn unique_by_hashes<T>(
        &self,
        items: &mut Vec<T>,
        name: impl Fn(&T) -> &Bytes<'a>,
        what: &str,
    ) -> Result<(), Fault> {
        let hashes = self.member_hashes.take();
        let known = hashes.len() == items.len() && items.len() > PAIRWISE_MAX;
        let dup = known
            .then(|| first_repeat_hashed(|i| items.get(i).map(|e| &**name(e)), &hashes))
            .flatten();
        self.member_hashes.set(hashes);
        match dup {
            Some(None) => Ok(()),
            // Salvage keeps what it can the usual way; a fault names the same one.
            Some(Some(d)) if !self.salvage => Err(duplicate_fault(what, &d)),
            _ => self.unique_or_salvage(items, name, what),
        }
    }

    /// See [`ObjectDecoder::check_unique`], for decoded collections.
    fn unique_or_salvage<T>(
        &self,
        items: &mut Vec<T>,
        name: impl Fn(&T) -> &Bytes<'a>,
        what: &str,
    ) -> Result<(), Fault> {
        let names: Vec<&[u8]> = items.iter().map(|i| name(i).as_ref()).collect();
        let first_dup = first_repeat(&names);
        let Some(d) = first_dup else {
            return Ok(());
        };
        let fault = duplicate_fault(what, d);
        if !self.salvage {
            return Err(fault);
        }
        let mut kept = std::collections::HashSet::with_capacity(items.len());
        items.retain(|item| kept.insert(name(item).to_vec()));
        self.partial.set(Some(fault));
        Ok(())
    }

    fn decode_value(&mut self, h: &ObjHeader) -> Result<Value<'a>, Fault> {
        use ObjEncoding as E;
        let invalid = || {
            Fault::of(
                FaultKind::BadHeader,
                format!(
                    "object type {} ({}) with encoding {} ({}) is not valid for this Redis build",
                    h.type_id, h.kind.type_name, h.encoding_id, h.kind.encoding
                ),
            )
        };
        let Some(ty) = h.ty else {
            return Err(invalid());
        };
        // Per type, its encodings; any other is a damaged header. No arm for all types:
        // a new type must say how it decodes.
        match ty {
            ObjType::String => match h.enc {
                Some(E::Int) => Ok(Value::String(StrValue::Int(h.ptr as i64))),
                Some(E::Raw) => Ok(Value::String(StrValue::Bytes(read_sds(
                    self.space, self.sds, h.ptr,
                )?))),
                Some(E::Embstr) => {
                    self.check_embedded_string(h)?;
                    Ok(Value::String(StrValue::Bytes(read_sds(
                        self.space, self.sds, h.ptr,
                    )?)))
                }
                _ => Err(invalid()),
            },
            ObjType::List => match h.enc {
                Some(E::Quicklist) => match self.layout.features.quicklist {
                    Some(QuicklistFlavor::Listpack) => {
                        self.quicklist(h.ptr).map(Value::ListQuicklist)
                    }
                    Some(QuicklistFlavor::Ziplist) => {
                        self.quicklist(h.ptr).map(Value::ListQuicklistZiplist)
                    }
                    None => Err(Fault::of(
                        FaultKind::ProfileGap,
                        "quicklist in a build without quicklists",
                    )),
                },
                Some(E::Ziplist) => self
                    .ziplist(h.ptr, false, "list ziplist")
                    .map(Value::ListZiplist),
                Some(E::Linkedlist) => self.linked_list(h.ptr).map(Value::ListElements),
                // Redis and Valkey save a listpack list as a quicklist of one packed node.
                Some(E::Listpack) => self
                    .listpack(h.ptr, false, "list listpack")
                    .map(|lp| Value::ListQuicklist(vec![QuicklistNode::Packed(lp)])),
                _ => Err(invalid()),
            },
            ObjType::Set => match h.enc {
                Some(E::Intset) => self.intset(h.ptr).map(Value::SetIntset),
                Some(E::Hashtable) => self.set_members(h.ptr).map(Value::SetMembers),
                Some(E::Listpack) => self
                    .listpack(h.ptr, false, "set listpack")
                    .map(Value::SetListpack),
                _ => Err(invalid()),
            },
            ObjType::Zset => match h.enc {
                Some(E::Listpack) => self
                    .listpack(h.ptr, true, "zset listpack")
                    .map(Value::ZsetListpack),
                Some(E::Ziplist) => self
                    .ziplist(h.ptr, true, "zset ziplist")
                    .map(Value::ZsetZiplist),
                Some(E::Skiplist) => self.skiplist(h.ptr).map(Value::ZsetPairs),
                _ => Err(invalid()),
            },
            ObjType::Hash => match h.enc {
                Some(E::Listpack) => self
                    .listpack(h.ptr, true, "hash listpack")
                    .map(Value::HashListpack),
                Some(E::Ziplist) => self
                    .ziplist(h.ptr, true, "hash ziplist")
                    .map(Value::HashZiplist),
                Some(E::ListpackEx) => self.listpack_ex(h.ptr),
                Some(E::Hashtable) => {
                    let pairs = self.hash_pairs(h.ptr)?;
                    Ok(if pairs.iter().any(|p| p.2.is_some()) {
                        Value::HashPairsTtl(pairs)
                    } else {
                        Value::HashPairs(pairs.into_iter().map(|(f, v, _)| (f, v)).collect())
                    })
                }
                _ => Err(invalid()),
            },
            ObjType::Stream => match (h.enc, &self.layout.stream) {
                (Some(E::Stream), Some(l)) => StreamReader::new(self.ctx, l)
                    .read(h.ptr)
                    .map(|s| Value::Stream(Box::new(s))),
                _ => Err(invalid()),
            },
            // Whatever its encoding: the module's own type says what the value is.
            ObjType::Module => {
                let name = self
                    .module_type(h.ptr)
                    .unwrap_or_else(|e| format!("<unreadable: {e}>"));
                Err(Fault::Unsupported(format!(
                    "module type {name}: module values are not recovered by this version of redis-rescue"
                )))
            }
        }
    }

    /// Read `len` bytes at `ptr` after checking they are all in the core.
    fn blob(&self, ptr: u64, len: u64, what: &str) -> Result<Bytes<'a>, Fault> {
        if ptr == 0 {
            return Err(Fault::of(
                FaultKind::NullPointer,
                format!("{what}: NULL pointer"),
            ));
        }
        if self.space.readable_len(ptr) < len {
            return Err(Fault::of(
                FaultKind::OutsideAllocation,
                format!("{what} at {ptr:#x} of {len} bytes runs past the dumped memory"),
            ));
        }
        Ok(self.space.read(ptr, len as usize)?)
    }

    /// A collection element: a bare sds (4.0+) or a string object (up to 3.2).
    fn element(&self, ptr: u64) -> Result<Bytes<'a>, Fault> {
        match self.layout.features.elements {
            ElementFlavor::Sds => read_sds(self.space, self.sds, ptr),
            ElementFlavor::Robj => self.string_object(ptr),
        }
    }

    /// The bytes of a string object, INT encoding as its decimal text.
    pub fn string_object(&self, ptr: u64) -> Result<Bytes<'a>, Fault> {
        let h = self.header(ptr)?;
        self.check_holders(&h)?;
        if h.ty != Some(ObjType::String) {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!(
                    "collection element at {ptr:#x} is a {} object, not a string",
                    h.kind.type_name
                ),
            ));
        }
        match h.enc {
            Some(ObjEncoding::Int) => Ok(Cow::Owned((h.ptr as i64).to_string().into_bytes())),
            Some(ObjEncoding::Raw) => read_sds(self.space, self.sds, h.ptr),
            Some(ObjEncoding::Embstr) => {
                self.check_embedded_string(&h)?;
                read_sds(self.space, self.sds, h.ptr)
            }
            _ => Err(Fault::of(
                FaultKind::BadHeader,
                format!("string element at {ptr:#x} has encoding {}", h.encoding_id),
            )),
        }
    }

    /// An embstr's sds lives in the same allocation, right after the robj (after the
    /// embedded key and expire of objects that embed their key), with an sdshdr8 header in every typed-sds build.
    /// A `ptr` elsewhere is a damaged object that would otherwise read some other memory
    /// as the value.
    fn check_embedded_string(&self, h: &ObjHeader) -> Result<(), Fault> {
        let start = h.addr.wrapping_add(self.layout.robj.data_start(h.embedded));
        let (lowest, highest, typed) = match self.sds {
            SdsFormat::LenFree(l) => (start + l.header_size, start + l.header_size, false),
            // An object embedding its key puts an optional 8-byte expire and the key (a
            // 1-byte header size, then an sds of up to 255 bytes with its header) before
            // the value.
            SdsFormat::Typed if self.layout.features.embedded_keys() => {
                (start + 3, start + 8 + 1 + 3 + 256 + 3, true)
            }
            SdsFormat::Typed => (start + 3, start + 3, true),
        };
        if h.ptr < lowest || h.ptr > highest {
            return Err(Fault::of(
                FaultKind::OutsideAllocation,
                format!(
                    "embstr object {:#x} points at {:#x}, outside its own allocation",
                    h.addr, h.ptr
                ),
            ));
        }
        if typed && self.space.u8(h.ptr.wrapping_sub(1))? & 7 != 1 {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!(
                    "embstr object {:#x}: its string header is not an sdshdr8",
                    h.addr
                ),
            ));
        }
        Ok(())
    }

    /// The name and encoding version of a module value's type (`moduleValue.type->id`).
    fn module_type(&self, value: u64) -> Result<String, Fault> {
        let Some(m) = &self.layout.modules else {
            return Err(Fault::of(
                FaultKind::ProfileGap,
                "the profile has no moduleValue/moduleType layout",
            ));
        };
        let ty = self
            .space
            .uint(value.wrapping_add(m.value_type.offset), m.value_type.size)?;
        let id = self
            .space
            .uint(ty.wrapping_add(m.type_id.offset), m.type_id.size)?;
        Ok(module_type_name(id))
    }

    /// The key embedded in a keyspace object (`key_object` = `embedded`), and its expire
    /// when the object keeps it (inside after the header, or in the slot before it).
    pub fn embedded_key(&self, obj: u64) -> Result<EmbeddedKey<'a>, Fault> {
        let r = &self.layout.robj;
        let bytes = self.space.read(obj, r.size as usize)?;
        let flag = |b: crate::profile::layout::Bits| {
            b.get(&bytes).ok_or_else(|| {
                Fault::of(FaultKind::ProfileGap, "object flag bits outside the object")
            })
        };
        if flag(r.key_flag)? != 1 {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!("keyspace object {obj:#x} has no embedded key"),
            ));
        }
        let mut at = obj.wrapping_add(r.data_start(self.embeds_value_in(&bytes)?));
        // -1 is a reserved but unused expire slot.
        let read_expire = |at: u64| -> Result<Option<i64>, Fault> {
            let ms = self.space.u64(at)? as i64;
            Ok((ms != -1).then_some(ms))
        };
        let expire = match self.layout.features.expire {
            ExpireFlavor::InObject if flag(r.expire_flag)? == 1 => {
                let e = read_expire(at)?;
                at = at.wrapping_add(8);
                e
            }
            ExpireFlavor::BeforeObject if flag(r.metabits)? & 1 == 1 => {
                read_expire(obj.wrapping_sub(8))?
            }
            _ => None,
        };
        if let Some(ms) = expire {
            if ms < 0 {
                return Err(Fault::of(
                    FaultKind::BadValue,
                    format!("keyspace object {obj:#x} has expire time {ms}"),
                ));
            }
        }
        let hdr = u64::from(self.space.u8(at)?);
        if ![1, 3, 5, 9, 17].contains(&hdr) {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!("keyspace object {obj:#x}: embedded key header size {hdr}"),
            ));
        }
        let key = read_sds(self.space, SdsFormat::Typed, at.wrapping_add(1 + hdr))?;
        let module_meta = match self.layout.features.expire {
            ExpireFlavor::BeforeObject => (flag(r.metabits)? & 0xfe) as u8,
            _ => 0,
        };
        Ok(EmbeddedKey {
            key,
            expire_ms: expire,
            module_meta,
        })
    }
}

/// What an object that embeds its key holds besides its value.
#[derive(Debug, Clone)]
pub struct EmbeddedKey<'a> {
    /// The key.
    pub key: Bytes<'a>,
    /// Its expire time (ms), when it has one.
    pub expire_ms: Option<i64>,
    /// Module key-metadata classes attached to it (`metabits` bits 1-7, Redis 8.6).
    pub module_meta: u8,
}

/// Decode a module type id: a 9-character name in 6-bit symbols (most significant first),
/// then a 10-bit encoding version.
pub fn module_type_name(id: u64) -> String {
    // Redis's symbol set, A-Z a-z 0-9 - _, computed rather than looked up in a table.
    fn symbol(v: u8) -> char {
        char::from(match v {
            0..=25 => b'A' + v,
            26..=51 => b'a' + (v - 26),
            52..=61 => b'0' + (v - 52),
            62 => b'-',
            _ => b'_',
        })
    }
    let signature = id >> 10;
    let name: String = (0..9)
        .map(|i| symbol(((signature >> (6 * (8 - i))) & 63) as u8))
        .collect();
    format!("{name} (encver {})", id & 1023)
}

fn check_complete(first: Option<Fault>, found: u64, used: u64, what: &str) -> Result<(), Fault> {
    if let Some(e) = first {
        return Err(e);
    }
    if found != used || found == 0 {
        return Err(Fault::of(
            FaultKind::CounterMismatch,
            format!("{what} hashtable yielded {found} elements, its dict says {used}"),
        ));
    }
    Ok(())
}

/// Why a value with a repeated member or field is not written as it is.
fn duplicate_fault(what: &str, name: &[u8]) -> Fault {
    Fault::of(
        FaultKind::Duplicate,
        format!(
            "{what} {} appears twice (a damaged pointer led to it again)",
            crate::value::printable(name)
        ),
    )
}

/// The first element that repeats among every `stride`-th element (from the first) of a
/// validated listpack or ziplist; integers compare by their decimal text, as Redis does.
/// A compact zset's scores must be numbers: a damaged score string ("inf" with a flipped
/// bit) would be written as is, and a loader that reads scores refuses the file (Redis's
/// refuses a NaN score too).
fn check_scores(value: &Value<'_>) -> Result<(), Fault> {
    let scores: Vec<Element<'_>> = match value {
        Value::ZsetListpack(b) => Listpack::parse(b)
            .map_err(|e| Fault::of(FaultKind::BadEncoding, format!("zset listpack: {e}")))?
            .iter()
            .skip(1)
            .step_by(2)
            .collect(),
        Value::ZsetZiplist(b) => Ziplist::parse(b)
            .map_err(|e| Fault::of(FaultKind::BadEncoding, format!("zset ziplist: {e}")))?
            .iter()
            .skip(1)
            .step_by(2)
            .collect(),
        _ => return Ok(()),
    };
    for score in scores {
        if let Element::Bytes(b) = score {
            let number = std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|x| !x.is_nan());
            if number.is_none() {
                return Err(Fault::of(
                    FaultKind::BadValue,
                    format!("zset score {} is not a number", crate::value::printable(b)),
                ));
            }
        }
    }
    Ok(())
}

/// What [`ObjectDecoder::chase_ahead`] loads next of a payload, a level at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chase {
    /// A quicklist: its head node next.
    Quicklist(u64),
    /// A quicklist's node: its listpack next.
    QuicklistNode(u64),
    /// A set's or hash's dict: its first table's bucket array next.
    Dict(u64),
    /// A bucket array and how many of its first buckets: their entries next.
    DictBuckets(u64, u64),
}

/// Buckets of a collection's dict whose entries are loaded ahead: a small set or hash
/// (the usual one) has no more.
const CHASED_BUCKETS: u64 = 8;

/// Up to this many names are checked for a duplicate pair by pair, allocating nothing;
/// more go through a hash set.
const PAIRWISE_MAX: usize = 24;

/// The first name of a compact encoding's `stride`-th entries that an earlier one
/// equals as text (an integer entry equals a string entry holding its canonical decimal).
fn first_duplicate_packed(bytes: &[u8], ziplist: bool, stride: usize) -> Option<Vec<u8>> {
    /// An entry's name, integers and strings holding one canonical integer alike.
    #[derive(PartialEq, Eq, Hash, Clone, Copy)]
    enum Name<'b> {
        Int(i64),
        Text(&'b [u8]),
    }
    fn name(e: Element<'_>) -> Name<'_> {
        match e {
            Element::Int(v) => Name::Int(v),
            Element::Bytes(b) => e.as_int().map_or(Name::Text(b), Name::Int),
        }
    }
    let names: Vec<Name<'_>> = if ziplist {
        Ziplist::parse(bytes)
            .ok()?
            .iter()
            .step_by(stride)
            .map(name)
            .collect()
    } else {
        Listpack::parse(bytes)
            .ok()?
            .iter()
            .step_by(stride)
            .map(name)
            .collect()
    };
    let dup = first_repeat(&names)?;
    Some(match dup {
        Name::Int(v) => Element::Int(v).to_vec(),
        Name::Text(b) => b.to_vec(),
    })
}

/// [`first_repeat`] of the names `name(0..hashes.len())` whose hashes are `hashes` (equal
/// names hash alike): names are compared only where their hashes are equal, so most are
/// not read again. `Some` of the same name as [`first_repeat`] finds, copied, or of none;
/// `None` when more than [`PAIRWISE_MAX`] names share a hash (a crafted core could make
/// them all collide, and comparing them pair by pair would cost the square of their
/// number).
fn first_repeat_hashed<'n>(
    name: impl Fn(usize) -> Option<&'n [u8]>,
    hashes: &[u64],
) -> Option<Option<Vec<u8>>> {
    let mut order: Vec<(u64, usize)> = hashes.iter().copied().zip(0..).collect();
    order.sort_unstable();
    // The repeat with the lowest index is the one a walk in order meets first. Within a
    // group of equal hashes the indexes ascend.
    let mut first: Option<usize> = None;
    for group in order.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        if group.len() > PAIRWISE_MAX {
            return None;
        }
        for (k, &(_, j)) in group.iter().enumerate().skip(1) {
            if first.is_some_and(|f| f <= j) {
                break;
            }
            let later = name(j);
            let earlier = group.get(..k).unwrap_or_default();
            if earlier.iter().any(|&(_, i)| name(i) == later) {
                first = Some(j);
                break;
            }
        }
    }
    Some(first.and_then(name).map(<[u8]>::to_vec))
}

/// The first item equal to an earlier one: pair by pair for a few, by a hash set for more.
fn first_repeat<T: Eq + std::hash::Hash + Copy>(items: &[T]) -> Option<T> {
    if items.len() <= PAIRWISE_MAX {
        return items
            .iter()
            .enumerate()
            .find(|(i, x)| items.get(..*i).is_some_and(|before| before.contains(x)))
            .map(|(_, x)| *x);
    }
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.iter().find(|x| !seen.insert(**x)).copied()
}

#[cfg(test)]
mod tests;
