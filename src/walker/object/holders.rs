//! The object census's two halves on the decoder's side: counting the string objects a
//! value holds, and refusing one held more often than its `refcount` allows.

use super::{ObjHeader, ObjectDecoder};
use crate::value::{ObjEncoding, ObjType};
use crate::walker::census::ObjectCensus;
use crate::walker::fault::{Fault, FaultKind};

impl<'s, 'a> ObjectDecoder<'s, 'a> {
    /// Refuses the object `h` when the walk's census counted more holders of it than its
    /// `refcount` allows (see [`ObjectCensus`]): a damaged pointer led here from another
    /// key or element. A shared integer object's `refcount` also counts the shared array's
    /// own reference, so it allows one holder fewer. Without a census (4.0+, or no
    /// refcount in the profile) it passes.
    pub fn check_holders(&self, h: &ObjHeader) -> Result<(), Fault> {
        let (Some(census), Some(field)) = (self.ctx.census, self.layout.robj.refcount) else {
            return Ok(());
        };
        if h.ty == Some(ObjType::String)
            && h.enc == Some(ObjEncoding::Raw)
            && census.string_shared(h.ptr)
        {
            return Err(Fault::of(
                FaultKind::Duplicate,
                format!(
                    "the string at {:#x} of the string object at {:#x} is also another object's or a key's name: a damaged pointer led to it",
                    h.ptr, h.addr
                ),
            ));
        }
        let held = census.references(h.addr);
        let shared = h.enc == Some(ObjEncoding::Int)
            && self
                .ctx
                .options
                .shared_integers
                .is_some_and(|s| s.holds(self.ctx, h.addr, h.ptr));
        // An object held once is damage only if it is a shared integer (held by the array
        // too); one the census did not meet is checked by nothing here.
        if held.count == 0 || (held.count < 2 && !shared) {
            return Ok(());
        }
        let at = h.addr.wrapping_add(field.offset);
        // `int refcount`: sign-extended, so a negative one allows no holder at all.
        let refcount = i64::from(self.space.uint(at, field.size)? as u32 as i32);
        let allowed = if shared { refcount - 1 } else { refcount };
        if !ObjectCensus::over(held, allowed) {
            return Ok(());
        }
        let which = if shared {
            format!("shared integer object {} at {:#x}", h.ptr, h.addr)
        } else {
            format!("{} object at {:#x}", h.kind.type_name, h.addr)
        };
        let besides = if shared {
            " besides the shared array"
        } else {
            ""
        };
        Err(Fault::of(
            FaultKind::Duplicate,
            format!(
                "the {which} is held in {held} places{besides} but its refcount is {refcount}: a damaged pointer led to it",
            ),
        ))
    }

    /// Counts in `census` the object at `obj` (a keyspace value) and, the first time it is
    /// met, the string objects it holds as the decoder would read them: the fields and
    /// values of a dict-encoded hash, the members of a dict-encoded set, the elements of a
    /// skiplist zset (twice: its dict and its skiplist node each hold one reference) and
    /// of a linked list; and the string of each raw string object. Only what can be read
    /// is counted, so a damaged pointer to nowhere makes the census no bigger; faults are
    /// left for the decoder to report.
    pub fn count_held_objects(&self, obj: u64, census: &mut ObjectCensus) {
        let Some((h, true)) = self.count_object(obj, census) else {
            return;
        };
        match (h.ty, h.enc) {
            (Some(ty @ (ObjType::Hash | ObjType::Set)), Some(ObjEncoding::Hashtable)) => {
                let hash = ty == ObjType::Hash;
                let _ = self.table_entries(h.ptr, true, |k, v, _| {
                    self.count_object(k, census);
                    if hash {
                        self.count_object(v, census);
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
                    // The skiplist node's reference too, whoever met the element first.
                    let _ = self.table_entries(dict, true, |k, _, _| {
                        if self.count_object(k, census).is_some() {
                            census.note(k);
                        }
                    });
                }
            }
            (Some(ObjType::List), Some(ObjEncoding::Linkedlist)) => {
                let _ = self.linked_list_values(h.ptr, |value, _| {
                    self.count_object(value, census);
                    Ok(())
                });
            }
            _ => {}
        }
    }

    /// Counts one more reference to the readable object at `obj` and, the first time, the
    /// string it points to when it is a raw string object. Returns its header and whether
    /// this was the first reference; `None` when it cannot be read (and is not counted).
    fn count_object(&self, obj: u64, census: &mut ObjectCensus) -> Option<(ObjHeader, bool)> {
        let h = self.header(obj).ok()?;
        let first = census.note(obj);
        if first
            && h.ty == Some(ObjType::String)
            && h.enc == Some(ObjEncoding::Raw)
            && self.space.readable_len(h.ptr) > 0
        {
            census.note_string(h.ptr);
        }
        Some((h, first))
    }
}
