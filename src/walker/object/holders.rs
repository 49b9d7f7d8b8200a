//! The object census's two halves on the decoder's side: counting the string objects a
//! value holds, and refusing one held more often than its `refcount` allows.

use super::{ObjHeader, ObjectDecoder};
use crate::profile::layout::ElementFlavor;
use crate::value::{ObjEncoding, ObjType};
use crate::walker::census::ObjectCensus;
use crate::walker::fault::{Fault, FaultKind};

impl<'s, 'a> ObjectDecoder<'s, 'a> {
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
}
