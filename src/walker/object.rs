//! `ObjectDecoder`: a `robj` and everything it points to, decoded into a [`Value`].

use super::bucket::BucketCheck;
use super::census::ObjectCensus;
use super::context::WalkContext;
use super::dict::{DictWalker, KeyForm};
use super::fault::Fault;
use super::hashtable::{EntryKey, HashtableWalker};
use super::stream::StreamReader;
use crate::walker::fault::FaultKind;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;

use super::sds::{read_mstr, read_sds, SdsFormat};
use crate::core::AddressSpace;
use crate::decode::{intset::Intset, listpack::Listpack, lzf, ziplist::Ziplist, Element};
use crate::profile::layout::{
    ElementFlavor, ExpireFlavor, HashFieldFlavor, QuicklistFlavor, TableFlavor, ValueFlavor,
    ZsetElementFlavor,
};
use crate::profile::Layout;
use crate::value::{Bytes, Kind, ObjEncoding, ObjType, QuicklistNode, StrValue, Value};

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
        let r = &self.layout.robj;
        let bytes = self.space.read(addr, r.ptr.offset as usize)?;
        r.value_flag
            .get(&bytes)
            .map(|v| v == 1)
            .ok_or_else(|| Fault::of(FaultKind::ProfileGap, "object flag bits outside the object"))
    }

    /// Where the embedded value of an object without `ptr` is: after its expire and key,
    /// an sdshdr8 string.
    fn embedded_value(&self, addr: u64) -> Result<u64, Fault> {
        let r = &self.layout.robj;
        let head = self.space.read(addr, r.ptr.offset as usize)?;
        let flag = |b: crate::profile::layout::Bits| {
            b.get(&head).ok_or_else(|| {
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
        let embedded = self.embeds_value(addr)?;
        let bytes = self
            .space
            .read(addr, r.data_start(embedded).max(r.ptr.offset) as usize)?;
        let missing = || Fault::of(FaultKind::ProfileGap, "robj field outside the robj struct");
        let type_id = r.type_.get(&bytes).ok_or_else(missing)?;
        let encoding_id = r.encoding.get(&bytes).ok_or_else(missing)?;
        let ptr = if embedded {
            self.embedded_value(addr)?
        } else {
            r.ptr.get(&bytes).ok_or_else(missing)?
        };
        let lru = r.lru.get(&bytes).ok_or_else(missing)? as u32;
        let (ty, enc) = self.kinds.resolve(type_id, encoding_id);
        Ok(ObjHeader {
            addr,
            lru,
            kind: Kind::of(ty, enc),
            ty,
            enc,
            type_id,
            encoding_id,
            ptr,
        })
    }

    /// Decode the value of the object `h`, checked to hold no duplicate set member, hash
    /// field or zset member: Redis never keeps one, and its loader either refuses the
    /// file or silently keeps a corrupt value when it meets one.
    pub fn value(&mut self, h: &ObjHeader) -> Result<Value<'a>, Fault> {
        self.partial.set(None);
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
            Value::SetMembers(m) => self.unique_or_salvage(m, |e| e, "set member"),
            Value::ZsetPairs(m) => self.unique_or_salvage(m, |e| &e.0, "zset member"),
            Value::HashPairs(m) => self.unique_or_salvage(m, |e| &e.0, "hash field"),
            Value::HashPairsTtl(m) => self.unique_or_salvage(m, |e| &e.0, "hash field"),
            _ => Ok(()),
        }
    }

    /// See [`ObjectDecoder::check_unique`], for decoded collections.
    fn unique_or_salvage<T>(
        &self,
        items: &mut Vec<T>,
        name: impl Fn(&T) -> &Bytes<'a>,
        what: &str,
    ) -> Result<(), Fault> {
        let mut seen: std::collections::HashSet<&[u8]> =
            std::collections::HashSet::with_capacity(items.len());
        let mut first_dup = None;
        for item in items.iter() {
            let n: &[u8] = name(item).as_ref();
            if !seen.insert(n) {
                first_dup = Some(n);
                break;
            }
        }
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

    fn listpack(&self, ptr: u64, pairs: bool, what: &'static str) -> Result<Bytes<'a>, Fault> {
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

    fn ziplist(&self, ptr: u64, pairs: bool, what: &'static str) -> Result<Bytes<'a>, Fault> {
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

    fn linked_list(&self, ptr: u64) -> Result<Vec<Bytes<'a>>, Fault> {
        let mut out = Vec::new();
        let (len, walked) = self.linked_list_values(ptr, |value, len| {
            if out.is_empty() {
                out.reserve(len.min(MAX_PREALLOC) as usize);
            }
            out.push(self.string_object(value)?);
            Ok(())
        })?;
        let fault = walked.err().or_else(|| {
            (out.len() as u64 != len || len == 0).then(|| {
                Fault::of(
                    FaultKind::CounterMismatch,
                    format!(
                        "linked list holds {} nodes, its header says {len}",
                        out.len()
                    ),
                )
            })
        });
        self.salvaged(out, fault)
    }

    /// Calls `each(value, len)` for each node's value pointer of the linked list at `ptr`
    /// until the end, a fault or an error of `each`; returns the header's length and how
    /// the walk ended.
    fn linked_list_values(
        &self,
        ptr: u64,
        mut each: impl FnMut(u64, u64) -> Result<(), Fault>,
    ) -> Result<(u64, Result<(), Fault>), Fault> {
        let l = &self.layout.linked_list;
        let head = self.space.read(ptr, l.size as usize)?;
        let missing = || Fault::of(FaultKind::ProfileGap, "list field outside its struct");
        let len = l.len.get(&head).ok_or_else(missing)?;
        let mut node = l.head.get(&head).ok_or_else(missing)?;
        let mut guard = self.ctx.guard("linked list", len).remembering(self.salvage);
        let walked = (|| {
            while node != 0 {
                guard.step(node)?;
                let nb = self.space.read(node, l.node_size as usize)?;
                let (Some(next), Some(value)) = (l.next.get(&nb), l.value.get(&nb)) else {
                    return Err(missing());
                };
                each(value, len)?;
                node = next;
            }
            Ok(())
        })();
        Ok((len, walked))
    }

    /// Refuses the object `h` when the walk's census counted more holders of it than its
    /// `refcount` allows (see [`ObjectCensus`]): a damaged pointer led here from another
    /// key or element. Without a census (4.0+, or no refcount in the profile) it passes.
    pub fn check_holders(&self, h: &ObjHeader) -> Result<(), Fault> {
        let (Some(census), Some(field)) = (self.ctx.census, self.layout.robj.refcount) else {
            return Ok(());
        };
        let held = census.references(h.addr);
        if held < 2 {
            return Ok(());
        }
        let at = h.addr.wrapping_add(field.offset);
        // `int refcount`: sign-extended, so a negative one allows no holder at all.
        let refcount = i64::from(self.space.uint(at, field.size)? as u32 as i32);
        if !ObjectCensus::over(held, refcount) {
            return Ok(());
        }
        let many = if held >= ObjectCensus::SATURATES_AT {
            format!("at least {held}")
        } else {
            held.to_string()
        };
        Err(Fault::of(
            FaultKind::Duplicate,
            format!(
                "the {} object at {:#x} is held in {many} places but its refcount is {refcount}: a damaged pointer led to it",
                h.kind.type_name, h.addr
            ),
        ))
    }

    /// Counts in `census` the string objects the value at `obj` holds as the decoder
    /// would read them: the fields and values of a dict-encoded hash, the members of a
    /// dict-encoded set, the elements of a skiplist zset (twice: its dict and its skiplist
    /// node each hold one reference) and of a linked list. Nothing in builds whose
    /// collections keep bare strings; faults are left for the decoder to report.
    pub fn count_held_objects(&self, obj: u64, census: &mut ObjectCensus) {
        if self.layout.features.elements != ElementFlavor::Robj {
            return;
        }
        let Ok(h) = self.header(obj) else {
            return;
        };
        match (h.ty, h.enc) {
            (Some(ty @ (ObjType::Hash | ObjType::Set)), Some(ObjEncoding::Hashtable)) => {
                let hash = ty == ObjType::Hash;
                let _ = self.table_entries(h.ptr, true, |k, v| {
                    census.note(k);
                    if hash {
                        census.note(v);
                    }
                });
            }
            (Some(ObjType::Zset), Some(ObjEncoding::Skiplist)) => {
                let z = &self.layout.zset;
                let dict = self
                    .space
                    .read(h.ptr, z.size as usize)
                    .ok()
                    .and_then(|zb| z.dict.get(&zb));
                if let Some(dict) = dict {
                    let _ = self.table_entries(dict, true, |k, _| {
                        census.note(k);
                        census.note(k);
                    });
                }
            }
            (Some(ObjType::List), Some(ObjEncoding::Linkedlist)) => {
                let _ = self.linked_list_values(h.ptr, |value, _| {
                    census.note(value);
                    Ok(())
                });
            }
            _ => {}
        }
    }

    fn intset(&self, ptr: u64) -> Result<Bytes<'a>, Fault> {
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

    fn quicklist(&mut self, ptr: u64) -> Result<Vec<QuicklistNode<'a>>, Fault> {
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

    /// An embstr's sds lives in the same allocation, right after the robj (after the
    /// embedded key and expire of objects that embed their key), with an sdshdr8 header in every typed-sds build.
    /// A `ptr` elsewhere is a damaged object that would otherwise read some other memory
    /// as the value.
    fn check_embedded_string(&self, h: &ObjHeader) -> Result<(), Fault> {
        let start = h
            .addr
            .wrapping_add(self.layout.robj.data_start(self.embeds_value(h.addr)?));
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

    /// Read a compressed node's bytes and decompress them into `scratch` (checking the size).
    fn lzf_decompress(&mut self, lzf_ptr: u64, raw_len: u64) -> Result<Bytes<'a>, Fault> {
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
    fn packed_info(&self, bytes: &[u8]) -> Result<(u64, u64), Fault> {
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
    fn lzf_node(&mut self, lzf_ptr: u64, raw_len: u64) -> Result<(Bytes<'a>, u64), Fault> {
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

    /// Visit every entry of a collection's table: `(key, value word)` of a dict, or
    /// `(entry, 0)` of a hashtable. Returns the table's own entry count and the
    /// first fault of the walk (entries after a broken link were not visited).
    fn table_entries(
        &self,
        addr: u64,
        checked: bool,
        mut f: impl FnMut(u64, u64),
    ) -> Result<(u64, Option<Fault>), Fault> {
        if self.hashtable_collections {
            let hashtables = if checked {
                self.hashtables
            } else {
                self.hashtables.with_bucket_check(None, EntryKey::Sds)
            };
            let h = hashtables.header(addr)?;
            let faults = hashtables.for_each(&h, |e| f(e, 0));
            Ok((h.used(), faults.into_result().err()))
        } else {
            let dicts = if checked {
                self.dicts
            } else {
                self.dicts.with_bucket_check(None)
            };
            let h = dicts.header(addr)?;
            let faults = dicts.for_each(&h, f);
            Ok((h.used(), faults.into_result().err()))
        }
    }

    fn set_members(&self, table: u64) -> Result<Vec<Bytes<'a>>, Fault> {
        let mut out = Vec::new();
        let mut first = None;
        let (used, broken) = self.table_entries(table, true, |k, _| match self.element(k) {
            Ok(m) => out.push(m),
            Err(e) => {
                first.get_or_insert(e);
            }
        })?;
        let fault = check_complete(broken.or(first), out.len() as u64, used, "set").err();
        self.salvaged(out, fault)
    }

    fn hash_pairs(&self, table: u64) -> Result<Vec<HashField<'a>>, Fault> {
        let mut out = Vec::new();
        let mut first = None;
        let fields = self.layout.features.hash_fields;
        // mstr fields are hashed with their metadata layout, not as plain sds.
        let checked = fields != HashFieldFlavor::Mstr;
        // Each field owns its value string: two fields whose values are one allocation mean
        // a damaged pointer (a bit flip lands on a neighbouring value of the same hash).
        // With robj elements (up to 3.2) an INT-encoded value may be a shared integer
        // object, held by many fields: only the others are owned.
        let sds_values = self.layout.features.elements == ElementFlavor::Sds;
        let owned = |v: u64| {
            sds_values
                || self
                    .header(v)
                    .is_ok_and(|h| h.enc != Some(ObjEncoding::Int))
        };
        let mut value_at: Vec<Option<u64>> = Vec::new();
        let (used, broken) = self.table_entries(table, checked, |k, v| {
            let pair = match fields {
                HashFieldFlavor::Entry => self.hash_entry(k),
                HashFieldFlavor::Mstr => read_mstr(self.space, k).and_then(|(field, has_meta)| {
                    let ttl = if has_meta { self.mstr_ttl(k)? } else { None };
                    Ok(((field, self.element(v)?, ttl), Some(v)))
                }),
                HashFieldFlavor::Sds => self
                    .element(k)
                    .and_then(|f| Ok(((f, self.element(v)?, None), Some(v)))),
            };
            match pair {
                Ok((p, at)) => {
                    out.push(p);
                    value_at.push(at.filter(|v| owned(*v)));
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        })?;
        let shared = shared_values(&value_at);
        if let Some(&at) = shared.iter().next() {
            first.get_or_insert(Fault::of(FaultKind::Duplicate, format!(
                "hash fields share one value string at {at:#x} ({} values shared): a damaged value pointer",
                shared.len()
            )));
            // Neither field can be trusted: keep only the others (for --salvage).
            let mut it = value_at.iter();
            out.retain(|_| {
                !it.next()
                    .copied()
                    .flatten()
                    .is_some_and(|a| shared.contains(&a))
            });
        }
        let fault = check_complete(broken.or(first), out.len() as u64, used, "hash").err();
        self.salvaged(out, fault)
    }

    /// The TTL of a 7.4 hash field whose mstr carries metadata: a 16-bit flags word sits
    /// before the mstr header and, when its bit 0 is set, an `ExpireMeta` before that.
    fn mstr_ttl(&self, field: u64) -> Result<Option<u64>, Fault> {
        let Some(ft) = &self.layout.field_ttl else {
            return Err(Fault::Unsupported(
                "hash fields with TTLs: the profile has no ExpireMeta layout".into(),
            ));
        };
        let info = self.space.u8(field.wrapping_sub(1))?;
        let hdr: u64 = match info & 3 {
            0 => 1,
            1 | 2 => 3,
            _ => 9,
        };
        let flags_at = field.wrapping_sub(hdr + 2);
        let flags = self.space.u16(flags_at)?;
        if flags & 1 == 0 {
            return Ok(None);
        }
        self.expire_meta(flags_at.wrapping_sub(ft.meta_size))
    }

    /// The TTL in the `ExpireMeta` at `at` (`None` when it is marked trash: no TTL).
    fn expire_meta(&self, at: u64) -> Result<Option<u64>, Fault> {
        let Some(ft) = &self.layout.field_ttl else {
            return Err(Fault::Unsupported(
                "hash fields with TTLs: the profile has no ExpireMeta layout".into(),
            ));
        };
        let meta = self.space.read(at, ft.meta_size as usize)?;
        let missing = || Fault::of(FaultKind::ProfileGap, "ExpireMeta field outside its struct");
        if ft.trash.get(&meta).ok_or_else(missing)? == 1 {
            return Ok(None);
        }
        let lo = ft.lo.get(&meta).ok_or_else(missing)?;
        let hi = ft.hi.get(&meta).ok_or_else(missing)?;
        Ok(Some(lo | (hi << 32)))
    }

    /// A 7.4 hash with field TTLs in a listpack of (field, value, TTL) triplets.
    fn listpack_ex(&self, obj_ptr: u64) -> Result<Value<'a>, Fault> {
        let Some(ft) = &self.layout.field_ttl else {
            return Err(Fault::Unsupported(
                "hash with field TTLs: the profile has no listpackEx layout".into(),
            ));
        };
        let lp_ptr = self
            .space
            .uint(obj_ptr.wrapping_add(ft.lp.offset), ft.lp.size)?;
        let bytes = self.listpack(lp_ptr, false, "hash listpack_ex")?;
        let lp = Listpack::parse(&bytes).map_err(Fault::decode("hash listpack_ex"))?;
        if lp.len() % 3 != 0 {
            return Err(Fault::of(
                FaultKind::BadLength,
                format!(
                    "hash listpack_ex holds {} entries, not (field, value, TTL) triplets",
                    lp.len()
                ),
            ));
        }
        let mut min_expire = 0u64;
        for (i, e) in lp.iter().enumerate() {
            if i % 3 != 2 {
                continue;
            }
            match e {
                crate::decode::Element::Int(t) if t >= 0 => {
                    let t = t as u64;
                    if t != 0 && (min_expire == 0 || t < min_expire) {
                        min_expire = t;
                    }
                }
                _ => {
                    return Err(Fault::of(
                        FaultKind::BadValue,
                        "hash listpack_ex TTL is not a non-negative integer",
                    ))
                }
            }
        }
        Ok(Value::HashListpackEx {
            min_expire,
            lp: bytes,
        })
    }

    /// A hash element that is the field sds itself (`hash_fields` = `entry`): aux bits in
    /// the field's flags byte say whether a value pointer (right before the field's header)
    /// and an expire block (before that) are present; without a pointer the value is an
    /// sdshdr8 string right after the field's terminator.
    fn hash_entry(&self, field_ptr: u64) -> Result<(HashField<'a>, Option<u64>), Fault> {
        let Some(he) = self.layout.hash_entry else {
            return Err(Fault::of(
                FaultKind::ProfileGap,
                "the profile has no hash_entry constants",
            ));
        };
        let field = read_sds(self.space, SdsFormat::Typed, field_ptr)?;
        let flags = self.space.u8(field_ptr.wrapping_sub(1))?;
        let ty = flags & 7;
        // sdshdr5 fields have no spare bits: their value is always embedded, no TTL.
        let aux = if ty == 0 { 0 } else { flags >> 3 };
        let hdr: u64 = match ty {
            0 => 1,
            1 => 3,
            2 => 5,
            3 => 9,
            4 => 17,
            _ => {
                return Err(Fault::of(
                    FaultKind::BadHeader,
                    format!("hash field sds type {ty}"),
                ))
            }
        };
        let mut before = field_ptr.wrapping_sub(hdr);
        let value_ptr = if aux & (1 << he.value_ptr_bit) != 0 {
            before = before.wrapping_sub(8);
            Some(self.space.u64(before)?)
        } else {
            None
        };
        let ttl = match he.expire_bit {
            Some(bit) if aux & (1 << bit) != 0 => {
                let at = before.wrapping_sub(he.expire_size);
                if he.expire_size == 8 {
                    // A plain int64 of ms; -1 is a reserved slot without a TTL.
                    Some(self.space.u64(at)? as i64)
                        .filter(|t| *t >= 0)
                        .map(|t| t as u64)
                } else {
                    self.expire_meta(at)?
                }
            }
            _ => None,
        };
        // A value shared with a module: the pointer leads to `stringRef {buf, len}`.
        if let (Some(bit), Some(p)) = (he.string_ref_bit, value_ptr) {
            if aux & (1 << bit) != 0 {
                let buf = self.space.u64(p)?;
                let len = self.space.u64(p.wrapping_add(8))?;
                let value = self.blob(buf, len, "hash value string reference")?;
                // Shared with a module by design: not an allocation of its own.
                return Ok(((field, value, ttl), None));
            }
        }
        let own = value_ptr;
        let value_ptr = match value_ptr {
            Some(p) => p,
            None => {
                let v = field_ptr
                    .wrapping_add(field.len() as u64)
                    .wrapping_add(1 + 3);
                if self.space.u8(v.wrapping_sub(1))? & 7 != 1 {
                    return Err(Fault::of(
                        FaultKind::BadHeader,
                        format!(
                            "hash entry at {field_ptr:#x}: embedded value is not an sdshdr8 string"
                        ),
                    ));
                }
                v
            }
        };
        Ok((
            (
                field,
                read_sds(self.space, SdsFormat::Typed, value_ptr)?,
                ttl,
            ),
            own,
        ))
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
        let mut at = obj.wrapping_add(r.data_start(self.embeds_value(obj)?));
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

    /// The element of the skiplist node at `node`, whose first `node_size` bytes are `nb`:
    /// `node->ele`, or (without it) the sds embedded after the node's levels or at the
    /// offset kept in `level[0].span`.
    fn node_element(&self, node: u64, nb: &[u8]) -> Result<Bytes<'a>, Fault> {
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
    fn zset_table_nodes(&self, table: u64) -> Result<(HashSet<u64>, u64, Option<Fault>), Fault> {
        let walker =
            HashtableWalker::new(self.ctx).with_bucket_check(self.check, EntryKey::ZsetNode);
        let h = walker.header(table)?;
        let mut nodes = HashSet::with_capacity(h.used().min(MAX_PREALLOC) as usize);
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
    fn skiplist(&self, zs: u64) -> Result<Vec<(Bytes<'a>, f64)>, Fault> {
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
                    let mapped = self.dicts.value_of(h, check.hash_bytes(&element), ptr);
                    if mapped != Some(score_at) {
                        refused.get_or_insert_with(|| {
                            Fault::of(FaultKind::MisplacedEntry, format!(
                                "skiplist node {node:#x} is not what its zset's dict maps its element to (a damaged element or node pointer)"
                            ))
                        });
                        node = next;
                        continue;
                    }
                }
                out.push((element, score));
                node = next;
            }
            Ok(())
        })();
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

/// A hash field, its value, and its TTL (Redis 7.4+) when it has one.
type HashField<'a> = (Bytes<'a>, Bytes<'a>, Option<u64>);

/// The addresses that occur more than once in `values` (`None`s ignored).
fn shared_values(values: &[Option<u64>]) -> std::collections::HashSet<u64> {
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    values
        .iter()
        .flatten()
        .filter(|a| !seen.insert(**a))
        .copied()
        .collect()
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

fn first_duplicate_packed(bytes: &[u8], ziplist: bool, stride: usize) -> Option<Vec<u8>> {
    let names: Vec<Vec<u8>> = if ziplist {
        Ziplist::parse(bytes)
            .ok()?
            .iter()
            .step_by(stride)
            .map(|e| e.to_vec())
            .collect()
    } else {
        Listpack::parse(bytes)
            .ok()?
            .iter()
            .step_by(stride)
            .map(|e| e.to_vec())
            .collect()
    };
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    names.into_iter().find(|n| !seen.insert(n.clone()))
}

#[cfg(test)]
mod tests {
    use super::module_type_name;
    use super::shared_values;
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
}
