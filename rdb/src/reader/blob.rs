//! Validating decoders of the compact encodings RDB values are stored in: ziplist, listpack,
//! intset and zipmap. Each one checks its header against the blob's real size, every entry
//! against the end of the blob, and the terminator, and never reads outside the slice.

/// One element of a ziplist or listpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// A string element.
    Str(&'a [u8]),
    /// An integer element (its string form is its decimal text).
    Int(i64),
}

impl Item<'_> {
    /// The element as Redis would return it: bytes, or the integer's decimal text.
    pub(crate) fn to_vec(self) -> Vec<u8> {
        match self {
            Item::Str(s) => s.to_vec(),
            Item::Int(i) => i.to_string().into_bytes(),
        }
    }

    /// The element as an integer, if it is one.
    pub(crate) fn as_int(self) -> Option<i64> {
        match self {
            Item::Int(i) => Some(i),
            Item::Str(s) => std::str::from_utf8(s).ok()?.parse().ok(),
        }
    }
}

/// Why a blob is malformed.
pub(crate) type BlobError = &'static str;

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Sign-extends the low `bits` bits of `raw`.
fn sign_extend(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

/// Little-endian signed integer of `n` bytes at `at`.
fn le_int(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let bytes = b.get(at..at.checked_add(n)?)?;
    let mut raw = 0u64;
    for (i, &x) in bytes.iter().enumerate() {
        raw |= u64::from(x) << (8 * i);
    }
    Some(sign_extend(raw, (8 * n) as u32))
}

// ------------------------------------------------------------------------------- ziplist

/// The elements of a ziplist.
pub(crate) fn ziplist(b: &[u8]) -> Result<Vec<Item<'_>>, BlobError> {
    const HEADER: usize = 10;
    let zlbytes = le_u32(b, 0).ok_or("ziplist shorter than its header")?;
    if zlbytes as usize != b.len() {
        return Err("ziplist size field differs from the blob's size");
    }
    let zltail = le_u32(b, 4).ok_or("ziplist header")? as usize;
    let zllen = le_u16(b, 8).ok_or("ziplist header")?;
    if b.len() < HEADER + 1 || b.last() != Some(&0xFF) {
        return Err("ziplist does not end with 0xFF");
    }
    let end = b.len() - 1;
    let mut items = Vec::with_capacity(usize::from(zllen).min(4096));
    let mut p = HEADER;
    let mut prev_len = 0usize;
    let mut last_start = HEADER;
    while p < end {
        let start = p;
        // prevlen
        let first = *b.get(p).ok_or("ziplist entry")?;
        let prevlen = if first < 254 {
            p += 1;
            usize::from(first)
        } else if first == 254 {
            let v = le_u32(b, p + 1).ok_or("ziplist prevlen runs past the end")?;
            p += 5;
            v as usize
        } else {
            return Err("ziplist entry has prevlen byte 0xFF");
        };
        if prevlen != prev_len {
            return Err("ziplist prevlen does not match the previous entry");
        }
        let enc = *b.get(p).ok_or("ziplist entry has no encoding byte")?;
        let item = match enc >> 6 {
            0 => {
                let n = usize::from(enc & 0x3F);
                p += 1;
                let s = b.get(p..p + n).ok_or("ziplist string runs past the end")?;
                p += n;
                Item::Str(s)
            }
            1 => {
                let lo = *b.get(p + 1).ok_or("ziplist length runs past the end")?;
                let n = (usize::from(enc & 0x3F) << 8) | usize::from(lo);
                p += 2;
                let s = b.get(p..p + n).ok_or("ziplist string runs past the end")?;
                p += n;
                Item::Str(s)
            }
            2 => {
                if enc != 0x80 {
                    return Err("ziplist has an unknown string encoding");
                }
                let raw = b
                    .get(p + 1..p + 5)
                    .ok_or("ziplist length runs past the end")?;
                let n = u32::from_be_bytes(raw.try_into().map_err(|_| "ziplist length")?) as usize;
                p += 5;
                let s = b
                    .get(p..p.checked_add(n).ok_or("ziplist length")?)
                    .ok_or("ziplist string runs past the end")?;
                p += n;
                Item::Str(s)
            }
            _ => {
                let (n, v) = match enc {
                    0xC0 => (2, le_int(b, p + 1, 2)),
                    0xD0 => (4, le_int(b, p + 1, 4)),
                    0xE0 => (8, le_int(b, p + 1, 8)),
                    0xF0 => (3, le_int(b, p + 1, 3)),
                    0xFE => (1, le_int(b, p + 1, 1)),
                    0xF1..=0xFD => (0, Some(i64::from(enc & 0x0F) - 1)),
                    _ => return Err("ziplist has an unknown integer encoding"),
                };
                p += 1 + n;
                Item::Int(v.ok_or("ziplist integer runs past the end")?)
            }
        };
        if p > end {
            return Err("ziplist entry runs past the end");
        }
        prev_len = p - start;
        last_start = start;
        items.push(item);
    }
    let tail_ok = if items.is_empty() {
        zltail == HEADER
    } else {
        zltail == last_start
    };
    if !tail_ok {
        return Err("ziplist tail offset does not point at the last entry");
    }
    if zllen != u16::MAX && usize::from(zllen) != items.len() {
        return Err("ziplist entry count differs from its header");
    }
    Ok(items)
}

// ------------------------------------------------------------------------------ listpack

/// Bytes `backlen` takes for an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// The value a backlen field of `size` bytes at `at` encodes.
fn backlen_value(b: &[u8], at: usize, size: usize) -> Option<usize> {
    let bytes = b.get(at..at + size)?;
    // Written most significant first; every byte but the first carries bit 7.
    let mut v = 0usize;
    for (i, &x) in bytes.iter().rev().enumerate() {
        v |= usize::from(x & 0x7F) << (7 * i);
    }
    Some(v)
}

/// The elements of a listpack.
pub(crate) fn listpack(b: &[u8]) -> Result<Vec<Item<'_>>, BlobError> {
    const HEADER: usize = 6;
    let total = le_u32(b, 0).ok_or("listpack shorter than its header")?;
    if total as usize != b.len() {
        return Err("listpack size field differs from the blob's size");
    }
    let count = le_u16(b, 4).ok_or("listpack header")?;
    if b.len() < HEADER + 1 || b.last() != Some(&0xFF) {
        return Err("listpack does not end with 0xFF");
    }
    let end = b.len() - 1;
    let mut items = Vec::with_capacity(usize::from(count).min(4096));
    let mut p = HEADER;
    while p < end {
        let enc = *b.get(p).ok_or("listpack entry")?;
        let (item, len) = if enc & 0x80 == 0 {
            (Item::Int(i64::from(enc & 0x7F)), 1)
        } else if enc & 0xC0 == 0x80 {
            let n = usize::from(enc & 0x3F);
            let s = b
                .get(p + 1..p + 1 + n)
                .ok_or("listpack string runs past the end")?;
            (Item::Str(s), 1 + n)
        } else if enc & 0xE0 == 0xC0 {
            let lo = *b.get(p + 1).ok_or("listpack integer runs past the end")?;
            let raw = (u64::from(enc & 0x1F) << 8) | u64::from(lo);
            (Item::Int(sign_extend(raw, 13)), 2)
        } else if enc & 0xF0 == 0xE0 {
            let lo = *b.get(p + 1).ok_or("listpack length runs past the end")?;
            let n = (usize::from(enc & 0x0F) << 8) | usize::from(lo);
            let s = b
                .get(p + 2..p + 2 + n)
                .ok_or("listpack string runs past the end")?;
            (Item::Str(s), 2 + n)
        } else {
            match enc {
                0xF0 => {
                    let n = le_u32(b, p + 1).ok_or("listpack length runs past the end")? as usize;
                    let s = b
                        .get(p + 5..(p + 5).checked_add(n).ok_or("listpack length")?)
                        .ok_or("listpack string runs past the end")?;
                    (Item::Str(s), 5 + n)
                }
                0xF1 => (Item::Int(le_int(b, p + 1, 2).ok_or("listpack int16")?), 3),
                0xF2 => (Item::Int(le_int(b, p + 1, 3).ok_or("listpack int24")?), 4),
                0xF3 => (Item::Int(le_int(b, p + 1, 4).ok_or("listpack int32")?), 5),
                0xF4 => (Item::Int(le_int(b, p + 1, 8).ok_or("listpack int64")?), 9),
                _ => return Err("listpack has an unknown encoding byte"),
            }
        };
        let bl = backlen_size(len);
        if backlen_value(b, p + len, bl) != Some(len) {
            return Err("listpack entry's back length is wrong");
        }
        p += len + bl;
        if p > end {
            return Err("listpack entry runs past the end");
        }
        items.push(item);
    }
    if count != u16::MAX && usize::from(count) != items.len() {
        return Err("listpack element count differs from its header");
    }
    Ok(items)
}

// -------------------------------------------------------------------------------- intset

/// The members of an intset, which must be sorted and unique.
pub(crate) fn intset(b: &[u8]) -> Result<Vec<i64>, BlobError> {
    let enc = le_u32(b, 0).ok_or("intset shorter than its header")? as usize;
    let len = le_u32(b, 4).ok_or("intset shorter than its header")? as usize;
    if !matches!(enc, 2 | 4 | 8) {
        return Err("intset has an unknown encoding");
    }
    if len.checked_mul(enc).and_then(|n| n.checked_add(8)) != Some(b.len()) {
        return Err("intset length does not match the blob's size");
    }
    let mut out = Vec::with_capacity(len.min(4096));
    for i in 0..len {
        let v = le_int(b, 8 + i * enc, enc).ok_or("intset member")?;
        if out.last().is_some_and(|&last| last >= v) {
            return Err("intset members are not sorted and unique");
        }
        out.push(v);
    }
    Ok(out)
}

// -------------------------------------------------------------------------------- zipmap

/// Field/value pairs borrowed from a blob.
pub(crate) type BorrowedPairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The field/value pairs of a zipmap.
pub(crate) fn zipmap(b: &[u8]) -> Result<BorrowedPairs<'_>, BlobError> {
    let zmlen = *b.first().ok_or("empty zipmap")?;
    let mut p = 1;
    let read_len = |p: &mut usize| -> Result<Option<usize>, BlobError> {
        let first = *b.get(*p).ok_or("zipmap runs past the end")?;
        match first {
            0..=253 => {
                *p += 1;
                Ok(Some(usize::from(first)))
            }
            254 => {
                let v = le_u32(b, *p + 1).ok_or("zipmap length runs past the end")?;
                *p += 5;
                Ok(Some(v as usize))
            }
            _ => Ok(None),
        }
    };
    let mut out = Vec::with_capacity(usize::from(zmlen).min(253));
    while let Some(klen) = read_len(&mut p)? {
        let key = b
            .get(p..p.checked_add(klen).ok_or("zipmap length")?)
            .ok_or("zipmap key runs past the end")?;
        p += klen;
        let vlen = read_len(&mut p)?.ok_or("zipmap ends after a key")?;
        let free = usize::from(*b.get(p).ok_or("zipmap free byte")?);
        p += 1;
        let value = b
            .get(p..p.checked_add(vlen).ok_or("zipmap length")?)
            .ok_or("zipmap value runs past the end")?;
        p += vlen + free;
        out.push((key, value));
    }
    if p + 1 != b.len() {
        return Err("zipmap has bytes after its end marker");
    }
    if zmlen < 254 && usize::from(zmlen) != out.len() {
        return Err("zipmap entry count differs from its header");
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A listpack of `items` (test helper, also used by the reader's tests).
    pub(crate) fn make_listpack(items: &[Item<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        for it in items {
            let start = body.len();
            match *it {
                Item::Int(v) if (0..=127).contains(&v) => body.push(v as u8),
                Item::Int(v) if (-4096..4096).contains(&v) => {
                    let raw = (v as u64) & 0x1FFF;
                    body.push(0xC0 | (raw >> 8) as u8);
                    body.push(raw as u8);
                }
                Item::Int(v) => {
                    body.push(0xF4);
                    body.extend_from_slice(&v.to_le_bytes());
                }
                Item::Str(s) if s.len() < 64 => {
                    body.push(0x80 | s.len() as u8);
                    body.extend_from_slice(s);
                }
                Item::Str(s) if s.len() < 4096 => {
                    body.push(0xE0 | (s.len() >> 8) as u8);
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Item::Str(s) => {
                    body.push(0xF0);
                    body.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    body.extend_from_slice(s);
                }
            }
            let len = body.len() - start;
            let size = backlen_size(len);
            for i in (0..size).rev() {
                let mut byte = ((len >> (7 * i)) & 0x7F) as u8;
                if i != size - 1 {
                    byte |= 0x80;
                }
                body.push(byte);
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((body.len() + 7) as u32).to_le_bytes());
        out.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xFF);
        out
    }

    /// A ziplist of `items` (test helper).
    pub(crate) fn make_ziplist(items: &[Item<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut tail = 10;
        for it in items {
            let start = body.len();
            tail = 10 + start;
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(254);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match *it {
                Item::Int(v) if (0..=12).contains(&v) => body.push(0xF1 + v as u8),
                Item::Int(v) if i8::try_from(v).is_ok() => {
                    body.push(0xFE);
                    body.push(v as u8);
                }
                Item::Int(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                    body.push(0xF0);
                    body.extend_from_slice(&v.to_le_bytes()[..3]);
                }
                Item::Int(v) => {
                    body.push(0xE0);
                    body.extend_from_slice(&v.to_le_bytes());
                }
                Item::Str(s) if s.len() < 64 => {
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Item::Str(s) if s.len() < 16384 => {
                    body.push(0x40 | (s.len() >> 8) as u8);
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Item::Str(s) => {
                    body.push(0x80);
                    body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    body.extend_from_slice(s);
                }
            }
            prev = body.len() - start;
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((body.len() + 11) as u32).to_le_bytes());
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xFF);
        out
    }

    fn sample_items(big: &[u8]) -> Vec<Item<'_>> {
        vec![
            Item::Int(0),
            Item::Int(12),
            Item::Int(-1),
            Item::Int(127),
            Item::Int(-4096),
            Item::Int(4095),
            Item::Int(1 << 20),
            Item::Int(-(1 << 23)),
            Item::Int(i64::MIN),
            Item::Int(i64::MAX),
            Item::Str(b""),
            Item::Str(b"hello"),
            Item::Str(&big[..100]),
            Item::Str(&big[..5000]),
            Item::Str(big),
        ]
    }

    #[test]
    fn listpack_round_trip_and_every_truncation_fails() {
        let big = vec![b'x'; 20_000];
        let items = sample_items(&big);
        let lp = make_listpack(&items);
        assert_eq!(listpack(&lp).unwrap(), items);
        assert_eq!(listpack(&make_listpack(&[])).unwrap(), vec![]);
        for cut in 0..lp.len() {
            assert!(listpack(&lp[..cut]).is_err(), "cut at {cut}");
        }
        // A flipped back length is caught.
        let small = make_listpack(&[Item::Str(b"abc"), Item::Int(5)]);
        let mut bad = small.clone();
        bad[6 + 4] ^= 1;
        assert!(listpack(&bad).is_err());
        // Count mismatch.
        let mut bad = small.clone();
        bad[4] = 3;
        assert!(listpack(&bad).is_err());
        // Unknown encoding byte.
        let mut bad = small;
        bad[6] = 0xF5;
        assert!(listpack(&bad).is_err());
    }

    #[test]
    fn ziplist_round_trip_and_every_truncation_fails() {
        let big = vec![b'y'; 20_000];
        let items = sample_items(&big);
        let zl = make_ziplist(&items);
        assert_eq!(ziplist(&zl).unwrap(), items);
        assert_eq!(ziplist(&make_ziplist(&[])).unwrap(), vec![]);
        for cut in 0..zl.len() {
            assert!(ziplist(&zl[..cut]).is_err(), "cut at {cut}");
        }
        let small = make_ziplist(&[Item::Str(b"abc"), Item::Int(5)]);
        let mut bad = small.clone();
        bad[10 + 5] = 9; // prevlen of the second entry
        assert!(ziplist(&bad).is_err());
        let mut bad = small;
        bad[4] = 0; // tail offset
        assert!(ziplist(&bad).is_err());
        assert_eq!(Item::Int(-42).to_vec(), b"-42");
        assert_eq!(Item::Str(b"7").as_int(), Some(7));
    }

    #[test]
    fn intset_checks() {
        let mut b = Vec::new();
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        for v in [-5i16, 0, 300] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(intset(&b).unwrap(), vec![-5, 0, 300]);
        for cut in 0..b.len() {
            assert!(intset(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut unsorted = b.clone();
        unsorted[8..10].copy_from_slice(&400i16.to_le_bytes());
        assert!(intset(&unsorted).is_err());
        let mut bad_enc = b;
        bad_enc[0] = 3;
        assert!(intset(&bad_enc).is_err());
        let mut b8 = Vec::new();
        b8.extend_from_slice(&8u32.to_le_bytes());
        b8.extend_from_slice(&1u32.to_le_bytes());
        b8.extend_from_slice(&i64::MIN.to_le_bytes());
        assert_eq!(intset(&b8).unwrap(), vec![i64::MIN]);
    }

    #[test]
    fn zipmap_checks() {
        let mut b = vec![2u8];
        b.extend_from_slice(&[1, b'a', 2, 1, b'x', b'y', 0xEE]); // value "xy" + 1 free byte
        b.push(254);
        b.extend_from_slice(&300u32.to_le_bytes());
        let long = vec![b'k'; 300];
        b.extend_from_slice(&long);
        b.extend_from_slice(&[0, 0]);
        b.push(0xFF);
        let pairs = zipmap(&b).unwrap();
        assert_eq!(pairs, vec![(&b"a"[..], &b"xy"[..]), (&long[..], &b""[..])]);
        for cut in 0..b.len() {
            assert!(zipmap(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(zipmap(&extra).is_err());
    }
}
