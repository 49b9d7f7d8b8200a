//! Reading sds strings (typed headers, Redis 3.2+) from the core.

use std::borrow::Cow;

use super::fault::Fault;
use crate::core::AddressSpace;

/// Length of the typed sds at `ptr` whose flags byte (at `ptr - 1`) is `flags`, checked
/// against the header's allocation size.
fn typed_len(space: &AddressSpace<'_>, ptr: u64, flags: u8) -> Result<u64, Fault> {
    let at = |back: u64| {
        ptr.checked_sub(back)
            .ok_or_else(|| Fault::bad("sds pointer below its header"))
    };
    let (len, alloc) = match flags & 7 {
        0 => (u64::from(flags >> 3), u64::MAX),
        1 => (u64::from(space.u8(at(3)?)?), u64::from(space.u8(at(2)?)?)),
        2 => (u64::from(space.u16(at(5)?)?), u64::from(space.u16(at(3)?)?)),
        3 => (u64::from(space.u32(at(9)?)?), u64::from(space.u32(at(5)?)?)),
        4 => (space.u64(at(17)?)?, space.u64(at(9)?)?),
        t => return Err(Fault::bad(format!("sds at {ptr:#x} has invalid type {t}"))),
    };
    if len > alloc {
        return Err(Fault::bad(format!(
            "sds at {ptr:#x} claims length {len} above its allocation {alloc}"
        )));
    }
    Ok(len)
}

/// Read the sds string at `ptr`: its bytes, borrowed from the core when possible.
///
/// Checks the header type, `len <= alloc`, that the bytes are in the core, and the NUL
/// terminator that every sds carries at `buf[len]`.
pub fn read_sds<'a>(space: &AddressSpace<'a>, ptr: u64) -> Result<Cow<'a, [u8]>, Fault> {
    if ptr == 0 {
        return Err(Fault::bad("NULL sds pointer"));
    }
    let flags = space.u8(ptr
        .checked_sub(1)
        .ok_or_else(|| Fault::bad("sds pointer 0x0"))?)?;
    let len = typed_len(space, ptr, flags)?;
    let total = len
        .checked_add(1)
        .ok_or_else(|| Fault::bad("sds length overflow"))?;
    if space.readable_len(ptr) < total {
        return Err(Fault::bad(format!(
            "sds at {ptr:#x} of length {len} runs past the dumped memory"
        )));
    }
    let bytes = space.read(ptr, total as usize)?;
    let (body, nul) = match bytes {
        Cow::Borrowed(b) => {
            let (body, nul) = b.split_at(len as usize);
            (Cow::Borrowed(body), nul.first().copied())
        }
        Cow::Owned(mut v) => {
            let nul = v.pop();
            (Cow::Owned(v), nul)
        }
    };
    if nul != Some(0) {
        return Err(Fault::bad(format!(
            "sds at {ptr:#x} is not NUL-terminated at its length {len}"
        )));
    }
    Ok(body)
}
