//! Collections kept in tables or chains: dict- and hashtable-encoded sets and hashes (with
//! 7.4+ field TTLs and their listpackEx form), and linked lists of 2.8–3.0.

use super::{check_complete, ObjectDecoder, MAX_PREALLOC};
use crate::decode::listpack::Listpack;
use crate::profile::layout::{ElementFlavor, HashFieldFlavor};
use crate::value::{Bytes, ObjEncoding, Value};
use crate::walker::fault::{Fault, FaultKind};
use crate::walker::hashtable::EntryKey;
use crate::walker::sds::{read_mstr, read_sds, SdsFormat};
use crate::walker::seen::AddressHasher;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

impl<'s, 'a> ObjectDecoder<'s, 'a> {
    pub(super) fn linked_list(&self, ptr: u64) -> Result<Vec<Bytes<'a>>, Fault> {
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
    pub(super) fn linked_list_values(
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

    /// Visit every entry of a collection's table: `(key, value word, key's hash)` of a
    /// dict (the hash when the bucket check computed it), or `(entry, 0, None)` of a
    /// hashtable. Returns the table's own entry count and the first fault of the walk
    /// (entries after a broken link were not visited).
    pub(super) fn table_entries(
        &self,
        addr: u64,
        checked: bool,
        mut f: impl FnMut(u64, u64, Option<u64>),
    ) -> Result<(u64, Option<Fault>), Fault> {
        if self.hashtable_collections {
            let hashtables = if checked {
                self.hashtables
            } else {
                self.hashtables.with_bucket_check(None, EntryKey::Sds)
            };
            let h = hashtables.header(addr)?;
            let faults = hashtables.for_each(&h, |e| f(e, 0, None));
            Ok((h.used(), faults.into_result().err()))
        } else {
            let dicts = if checked {
                self.dicts
            } else {
                self.dicts.with_bucket_check(None)
            };
            let h = dicts.header(addr)?;
            let faults = dicts.for_each_hashed(&h, f);
            Ok((h.used(), faults.into_result().err()))
        }
    }

    pub(super) fn set_members(&self, table: u64) -> Result<Vec<Bytes<'a>>, Fault> {
        let mut out = Vec::new();
        let mut first = None;
        let mut hashes = Hashes::start(self);
        let (used, broken) =
            self.table_entries(table, true, |k, _, hash| match self.element(k) {
                Ok(m) => {
                    out.push(m);
                    hashes.push(hash);
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            })?;
        hashes.finish(self);
        let fault = check_complete(broken.or(first), out.len() as u64, used, "set").err();
        self.salvaged(out, fault)
    }

    pub(super) fn hash_pairs(&self, table: u64) -> Result<Vec<HashField<'a>>, Fault> {
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
        let mut hashes = Hashes::start(self);
        let (used, broken) = self.table_entries(table, checked, |k, v, hash| {
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
                    hashes.push(hash);
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        })?;
        let shared = shared_values(&value_at);
        if shared.is_empty() {
            hashes.finish(self);
        }
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
    pub(super) fn mstr_ttl(&self, field: u64) -> Result<Option<u64>, Fault> {
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
    pub(super) fn expire_meta(&self, at: u64) -> Result<Option<u64>, Fault> {
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
    pub(super) fn listpack_ex(&self, obj_ptr: u64) -> Result<Value<'a>, Fault> {
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
    pub(super) fn hash_entry(&self, field_ptr: u64) -> Result<(HashField<'a>, Option<u64>), Fault> {
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
}

/// The bucket check's hashes of a collection's names, one per name kept, gathered while
/// its table (or a zset's skiplist) is walked; handed to [`ObjectDecoder::check_unique`] only when every name
/// kept has one (see `member_hashes`).
pub(super) struct Hashes {
    hashes: Vec<u64>,
    whole: bool,
}

impl Hashes {
    pub(super) fn start(objects: &ObjectDecoder<'_, '_>) -> Self {
        let mut hashes = objects.member_hashes.take();
        hashes.clear();
        Hashes {
            hashes,
            whole: true,
        }
    }

    pub(super) fn push(&mut self, hash: Option<u64>) {
        match hash {
            Some(h) if self.whole => self.hashes.push(h),
            _ => self.whole = false,
        }
    }

    /// Hands the hashes to the duplicate check (none when some name had no hash).
    pub(super) fn finish(mut self, objects: &ObjectDecoder<'_, '_>) {
        if !self.whole {
            self.hashes.clear();
        }
        objects.member_hashes.set(self.hashes);
    }
}

/// A hash field, its value, and its TTL (Redis 7.4+) when it has one.
pub(super) type HashField<'a> = (Bytes<'a>, Bytes<'a>, Option<u64>);

/// Addresses, hashed by one multiply (see [`AddressHasher`]).
pub(super) type AddressSet = HashSet<u64, BuildHasherDefault<AddressHasher>>;

/// The addresses that occur more than once in `values` (`None`s ignored).
pub(super) fn shared_values(values: &[Option<u64>]) -> AddressSet {
    let mut seen = AddressSet::with_capacity_and_hasher(values.len(), Default::default());
    values
        .iter()
        .flatten()
        .filter(|a| !seen.insert(**a))
        .copied()
        .collect()
}
