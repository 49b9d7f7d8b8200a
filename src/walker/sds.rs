//! Reading sds strings (typed headers, Redis 3.2+) from the core.

use crate::walker::fault::FaultKind;
use std::borrow::Cow;

use super::fault::Fault;
use crate::core::AddressSpace;
use crate::profile::layout::{SdsFlavor, SdsLayout};
use crate::profile::Layout;

/// How sds headers look in one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdsFormat {
    /// sdshdr5/8/16/32/64 chosen by the flags byte before the string (3.2+).
    Typed,
    /// One `sdshdr {len, free}` header before the string (2.8, 3.0).
    LenFree(SdsLayout),
}

impl SdsFormat {
    /// The format `layout` selects.
    pub fn of(layout: &Layout) -> Self {
        match layout.features.sds {
            SdsFlavor::Typed => SdsFormat::Typed,
            SdsFlavor::LenFree => SdsFormat::LenFree(layout.sds),
        }
    }
}

/// Length of an old-style sds: `len` and `free` in the header before the string.
fn len_free_len(space: &AddressSpace<'_>, l: &SdsLayout, ptr: u64) -> Result<u64, Fault> {
    let hdr = ptr
        .checked_sub(l.header_size)
        .ok_or_else(|| Fault::of(FaultKind::OutsideAllocation, "sds pointer below its header"))?;
    let bytes = space.read(hdr, l.header_size as usize)?;
    let (Some(len), Some(free)) = (l.len.get(&bytes), l.free.get(&bytes)) else {
        return Err(Fault::of(
            FaultKind::ProfileGap,
            "sdshdr fields outside the header",
        ));
    };
    // Both are 32-bit: a string and its slack never exceed 4 GiB together in these versions.
    if len
        .checked_add(free)
        .is_none_or(|t| t > u64::from(u32::MAX))
    {
        return Err(Fault::of(
            FaultKind::BadLength,
            format!("sds at {ptr:#x} has len {len} and free {free}"),
        ));
    }
    Ok(len)
}

/// Length of the typed sds at `ptr` whose flags byte (at `ptr - 1`) is `flags`, checked
/// against the header's allocation size.
fn typed_len(space: &AddressSpace<'_>, ptr: u64, flags: u8) -> Result<u64, Fault> {
    let at = |back: u64| {
        ptr.checked_sub(back)
            .ok_or_else(|| Fault::of(FaultKind::OutsideAllocation, "sds pointer below its header"))
    };
    let (len, alloc) = match flags & 7 {
        // sdsnewlen never makes an empty sdshdr5 (it picks sdshdr8 so the string can
        // grow): a zero flags byte is zeroed memory, not an empty string.
        0 if flags == 0 => {
            return Err(Fault::of(
                FaultKind::NullPointer,
                format!(
                    "sds at {ptr:#x} has a zero header, which Redis never writes (zeroed memory?)"
                ),
            ))
        }
        0 => (u64::from(flags >> 3), u64::MAX),
        1 => (u64::from(space.u8(at(3)?)?), u64::from(space.u8(at(2)?)?)),
        2 => (u64::from(space.u16(at(5)?)?), u64::from(space.u16(at(3)?)?)),
        3 => (u64::from(space.u32(at(9)?)?), u64::from(space.u32(at(5)?)?)),
        4 => (space.u64(at(17)?)?, space.u64(at(9)?)?),
        t => {
            return Err(Fault::of(
                FaultKind::BadHeader,
                format!("sds at {ptr:#x} has invalid type {t}"),
            ))
        }
    };
    if len > alloc {
        return Err(Fault::of(
            FaultKind::BadLength,
            format!("sds at {ptr:#x} claims length {len} above its allocation {alloc}"),
        ));
    }
    Ok(len)
}

/// The typed sds at `ptr` read from its segment's bytes in one lookup, when the header,
/// the bytes and the NUL all lie in that segment and every check of [`read_sds`] passes;
/// `None` otherwise, and the checked path then says what is wrong (the hot path of a walk:
/// most keys and strings are short sds in one segment).
fn typed_in_place<'a>(space: &AddressSpace<'a>, ptr: u64) -> Option<&'a [u8]> {
    let (seg, at) = space.segment_bytes(ptr)?;
    let before = |n: usize| seg.get(at.checked_sub(n)?..at);
    let flags = *before(1)?.first()?;
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |v, x| v << 8 | u64::from(*x));
    let (len, alloc) = match flags & 7 {
        0 if flags == 0 => return None,
        0 => (u64::from(flags >> 3), u64::MAX),
        1 => (le(before(3)?.get(..1)?), le(before(2)?.get(..1)?)),
        2 => (le(before(5)?.get(..2)?), le(before(3)?.get(..2)?)),
        3 => (le(before(9)?.get(..4)?), le(before(5)?.get(..4)?)),
        4 => (le(before(17)?.get(..8)?), le(before(9)?.get(..8)?)),
        _ => return None,
    };
    if len > alloc {
        return None;
    }
    let len = usize::try_from(len).ok()?;
    let end = at.checked_add(len)?;
    match seg.get(end) {
        Some(0) => seg.get(at..end),
        _ => None,
    }
}

/// Read the sds string at `ptr`: its bytes, borrowed from the core when possible.
///
/// Checks the header type, `len <= alloc`, that the bytes are in the core, and the NUL
/// terminator that every sds carries at `buf[len]`.
pub fn read_sds<'a>(
    space: &AddressSpace<'a>,
    format: SdsFormat,
    ptr: u64,
) -> Result<Cow<'a, [u8]>, Fault> {
    if format == SdsFormat::Typed && ptr != 0 {
        if let Some(body) = typed_in_place(space, ptr) {
            return Ok(Cow::Borrowed(body));
        }
    }
    read_sds_checked(space, format, ptr)
}

/// [`read_sds`] read by the field: every read checked, a fault saying what is wrong.
fn read_sds_checked<'a>(
    space: &AddressSpace<'a>,
    format: SdsFormat,
    ptr: u64,
) -> Result<Cow<'a, [u8]>, Fault> {
    if ptr == 0 {
        return Err(Fault::of(FaultKind::NullPointer, "NULL sds pointer"));
    }
    let len = match format {
        SdsFormat::Typed => {
            let flags = space.u8(ptr
                .checked_sub(1)
                .ok_or_else(|| Fault::of(FaultKind::NullPointer, "sds pointer 0x0"))?)?;
            typed_len(space, ptr, flags)?
        }
        SdsFormat::LenFree(l) => len_free_len(space, &l, ptr)?,
    };
    let total = len
        .checked_add(1)
        .ok_or_else(|| Fault::of(FaultKind::BadLength, "sds length overflow"))?;
    if space.readable_len(ptr) < total {
        return Err(Fault::of(
            FaultKind::OutsideAllocation,
            format!("sds at {ptr:#x} of length {len} runs past the dumped memory"),
        ));
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
        return Err(Fault::of(
            FaultKind::BadLength,
            format!("sds at {ptr:#x} is not NUL-terminated at its length {len}"),
        ));
    }
    Ok(body)
}

/// Read an `mstr` (Redis 7.4+ hash field): its bytes, and whether metadata (a field
/// TTL) is attached. The info byte before the string holds the header type in bits 0-1
/// and the metadata flag in bit 2.
pub fn read_mstr<'a>(space: &AddressSpace<'a>, ptr: u64) -> Result<(Cow<'a, [u8]>, bool), Fault> {
    let at = |back: u64| {
        ptr.checked_sub(back).ok_or_else(|| {
            Fault::of(
                FaultKind::OutsideAllocation,
                "mstr pointer below its header",
            )
        })
    };
    let info = space.u8(at(1)?)?;
    let len = match info & 3 {
        0 => u64::from(info >> 3),
        1 => u64::from(space.u8(at(2)?)?),
        2 => u64::from(space.u16(at(3)?)?),
        _ => space.u64(at(9)?)?,
    };
    if space.readable_len(ptr) < len.saturating_add(1) {
        return Err(Fault::of(
            FaultKind::OutsideAllocation,
            format!("mstr at {ptr:#x} of length {len} runs past the dumped memory"),
        ));
    }
    let bytes = space.read(ptr, len as usize + 1)?;
    if bytes.last() != Some(&0) {
        return Err(Fault::of(
            FaultKind::BadLength,
            format!("mstr at {ptr:#x} is not NUL-terminated"),
        ));
    }
    let body = match bytes {
        Cow::Borrowed(b) => Cow::Borrowed(b.split_at(len as usize).0),
        Cow::Owned(mut v) => {
            v.truncate(len as usize);
            Cow::Owned(v)
        }
    };
    Ok((body, info & 4 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x10_0000;

    fn space(bytes: &[u8]) -> AddressSpace<'_> {
        crate::core::address_space::single_segment(bytes, BASE)
    }

    /// Memory holding one sds with header `hdr` (ending in the flags byte) and `body`.
    fn sds_mem(hdr: &[u8], body: &[u8], nul: bool) -> (Vec<u8>, u64) {
        let mut m = vec![0xAAu8; 32];
        m.extend_from_slice(hdr);
        let ptr = BASE + m.len() as u64;
        m.extend_from_slice(body);
        if nul {
            m.push(0);
        }
        (m, ptr)
    }

    #[test]
    fn every_header_type() {
        let body = b"hello\x00world";
        let n = body.len();
        let headers: Vec<Vec<u8>> = vec![
            vec![(n as u8) << 3],
            vec![n as u8, 20, 1],
            [(n as u16).to_le_bytes(), 20u16.to_le_bytes()]
                .concat()
                .into_iter()
                .chain([2])
                .collect(),
            [(n as u32).to_le_bytes(), 20u32.to_le_bytes()]
                .concat()
                .into_iter()
                .chain([3])
                .collect(),
            [(n as u64).to_le_bytes(), 20u64.to_le_bytes()]
                .concat()
                .into_iter()
                .chain([4])
                .collect(),
        ];
        for hdr in headers {
            let (m, ptr) = sds_mem(&hdr, body, true);
            assert_eq!(
                &*read_sds(&space(&m), SdsFormat::Typed, ptr).unwrap(),
                body,
                "header {hdr:?}"
            );
        }
    }

    #[test]
    fn len_free_headers() {
        let fmt = SdsFormat::LenFree(SdsLayout {
            header_size: 8,
            len: crate::profile::layout::Field { offset: 0, size: 4 },
            free: crate::profile::layout::Field { offset: 4, size: 4 },
        });
        let hdr = [5u32.to_le_bytes(), 3u32.to_le_bytes()].concat();
        let (m, ptr) = sds_mem(&hdr, b"a\x00b\xffc", true);
        assert_eq!(&*read_sds(&space(&m), fmt, ptr).unwrap(), b"a\x00b\xffc");
        let hdr = [u32::MAX.to_le_bytes(), 3u32.to_le_bytes()].concat();
        let (m, ptr) = sds_mem(&hdr, b"abc", true);
        assert!(read_sds(&space(&m), fmt, ptr).is_err());
        let (m, ptr) = sds_mem(&[0u8; 4], b"abc", true);
        assert!(read_sds(&space(&m), fmt, ptr - 8).is_err());
    }

    /// The one-lookup path and the checked path agree on every header, length, NUL and
    /// segment edge: the same bytes, or both a fault.
    #[test]
    fn in_place_and_checked_reads_agree() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut agreed_ok = 0;
        for _ in 0..10_000 {
            // Small memories: headers cut by the segment's start, bodies by its end.
            let n = (next() % 48) as usize + 1;
            let mut m: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            // Often a plausible header: a small length, a larger alloc, a type 0..=5.
            if next() % 2 == 0 && n > 4 {
                let at = (next() as usize % (n - 3)) + 3;
                let len = (next() % 8) as u8;
                m[at - 3] = len;
                m[at - 2] = len + (next() % 4) as u8;
                m[at - 1] = (next() % 6) as u8;
                if let Some(b) = m.get_mut(at + len as usize) {
                    if next() % 4 != 0 {
                        *b = 0;
                    }
                }
            }
            let sp = space(&m);
            for ptr in BASE..=BASE + n as u64 + 1 {
                let fast = read_sds(&sp, SdsFormat::Typed, ptr);
                let slow = read_sds_checked(&sp, SdsFormat::Typed, ptr);
                match (&fast, &slow) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b, "ptr {ptr:#x} in {m:?}");
                        agreed_ok += 1;
                    }
                    (Err(_), Err(_)) => {}
                    _ => panic!("ptr {ptr:#x} in {m:?}: {fast:?} against {slow:?}"),
                }
            }
        }
        assert!(
            agreed_ok > 500,
            "only {agreed_ok} successful reads compared"
        );
    }

    #[test]
    fn malformed_headers_are_faults() {
        // Invalid type 5.
        let (m, ptr) = sds_mem(&[5], b"", true);
        assert!(read_sds(&space(&m), SdsFormat::Typed, ptr).is_err());
        // len above alloc.
        let (m, ptr) = sds_mem(&[9, 4, 1], b"123456789", true);
        assert!(read_sds(&space(&m), SdsFormat::Typed, ptr).is_err());
        // Missing NUL terminator.
        let (m, ptr) = sds_mem(&[3, 3, 1], b"abcX", false);
        assert!(read_sds(&space(&m), SdsFormat::Typed, ptr).is_err());
        // Length running past the mapped memory.
        let (m, ptr) = sds_mem(&[200, 250, 1], b"short", true);
        assert!(read_sds(&space(&m), SdsFormat::Typed, ptr).is_err());
        // NULL and pointers outside the core.
        let (m, _) = sds_mem(&[3 << 3], b"abc", true);
        assert!(read_sds(&space(&m), SdsFormat::Typed, 0).is_err());
        assert!(read_sds(&space(&m), SdsFormat::Typed, 1).is_err());
        assert!(read_sds(&space(&m), SdsFormat::Typed, u64::MAX).is_err());
    }
}
