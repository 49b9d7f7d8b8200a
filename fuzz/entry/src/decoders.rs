//! Targets of the compact decoders (listpack, ziplist, intset, zipmap, LZF) and of the
//! sds reader.

// A part of this crate, split by target: it shares the root's imports and helpers.
use super::*;

/// Texts of `elems` (what Redis would return for each).
pub(crate) fn texts<'e>(elems: impl IntoIterator<Item = Element<'e>>) -> Vec<Vec<u8>> {
    elems.into_iter().map(|e| e.to_vec()).collect()
}

/// Checks one element's accessors: both text forms agree, integers print canonically.
pub(crate) fn check_element(e: &Element<'_>) {
    let text = e.to_vec();
    let mut appended = b"x".to_vec();
    e.write_text(&mut appended);
    assert_eq!(appended.get(1..), Some(&text[..]), "write_text != to_vec");
    if let Element::Int(v) = *e {
        assert_eq!(
            parse_canonical_int(&text),
            Some(v),
            "integer text is not canonical"
        );
        assert_eq!(text, v.to_string().into_bytes());
    }
}

/// Re-encodes `elems` as a listpack and checks that it parses back to the same texts,
/// and that re-encoding is idempotent.
pub(crate) fn check_listpack_rebuild(elems: &[Element<'_>]) {
    let mut b = ListpackBuilder::new();
    assert!(b.is_empty());
    if b.extend(elems.iter().copied()).is_err() {
        // Only a listpack above 4 GiB is refused; fuzz inputs are far smaller.
        panic!("ListpackBuilder refused {} small elements", elems.len());
    }
    assert_eq!(b.len(), elems.len());
    let built = b.finish();
    let re = match Listpack::parse(&built) {
        Ok(re) => re,
        Err(e) => panic!("a listpack built by ListpackBuilder does not parse: {e}"),
    };
    assert_eq!(re.len(), elems.len(), "rebuilt listpack count");
    assert_eq!(re.total_bytes(), built.len());
    assert_eq!(
        texts(re.iter()),
        texts(elems.iter().copied()),
        "rebuilt texts"
    );
    let mut again = ListpackBuilder::new();
    if again.extend(re.iter()).is_err() {
        panic!("ListpackBuilder refused its own elements");
    }
    assert_eq!(again.finish(), built, "re-encoding is not idempotent");
}

/// Fuzz a listpack: parse, every element and accessor, re-encode and compare.
pub fn listpack(data: &[u8]) {
    let Ok(lp) = Listpack::parse(data) else {
        return;
    };
    let n = lp.len();
    assert_eq!(lp.is_empty(), n == 0);
    let bytes = lp.as_bytes();
    assert_eq!(bytes.len(), lp.total_bytes());
    assert!(data.starts_with(bytes));
    assert_eq!(bytes.last(), Some(&listpack::END));
    let header_num = bytes
        .get(4..6)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_le_bytes);
    assert!(
        header_num == Some(listpack::COUNT_UNKNOWN) || header_num.map(usize::from) == Some(n),
        "num_elements {header_num:?} != {n} entries"
    );
    let elems: Vec<Element<'_>> = lp.iter().collect();
    assert_eq!(elems.len(), n, "iterated entries != len()");
    assert!((&lp).into_iter().eq(elems.iter().copied()));
    for e in &elems {
        check_element(e);
        if let Element::Bytes(s) = e {
            // Every string lies inside the listpack.
            assert!(s.len() < bytes.len());
        }
    }
    check_listpack_rebuild(&elems);
}

/// Fuzz a ziplist: parse, every element and accessor, convert to a listpack and compare.
pub fn ziplist(data: &[u8]) {
    let Ok(zl) = Ziplist::parse(data) else {
        return;
    };
    let n = zl.len();
    assert_eq!(zl.is_empty(), n == 0);
    let bytes = zl.as_bytes();
    assert_eq!(bytes.len(), zl.total_bytes());
    assert!(data.starts_with(bytes));
    assert_eq!(bytes.last(), Some(&ziplist::END));
    let zllen = bytes
        .get(8..10)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_le_bytes);
    assert!(
        zllen == Some(ziplist::COUNT_UNKNOWN) || zllen.map(usize::from) == Some(n),
        "zllen {zllen:?} != {n} entries"
    );
    let elems: Vec<Element<'_>> = zl.iter().collect();
    assert_eq!(elems.len(), n, "iterated entries != len()");
    assert!((&zl).into_iter().eq(elems.iter().copied()));
    for e in &elems {
        check_element(e);
    }
    // What `--rdb-version` re-encoding and the 7.0 loader do: ziplist -> listpack.
    check_listpack_rebuild(&elems);
}

/// Fuzz an intset: parse, every element and accessor.
pub fn intset(data: &[u8]) {
    let Ok(set) = Intset::parse(data) else {
        return;
    };
    let n = set.len();
    assert_eq!(set.is_empty(), n == 0);
    let width = set.encoding();
    assert!(matches!(width, 2 | 4 | 8), "encoding {width}");
    let bytes = set.as_bytes();
    assert!(data.starts_with(bytes));
    assert_eq!(
        Some(bytes.len()),
        n.checked_mul(width).and_then(|b| b.checked_add(8))
    );
    let it = set.iter();
    assert_eq!(it.len(), n, "ExactSizeIterator::len");
    let values: Vec<i64> = it.collect();
    assert_eq!(values.len(), n, "iterated elements != len()");
    assert!((&set).into_iter().eq(values.iter().copied()));
    let (min, max) = match width {
        2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    for pair in values.windows(2) {
        if let [a, b] = pair {
            assert!(a < b, "intset not strictly ascending: {a} then {b}");
        }
    }
    for v in &values {
        assert!((min..=max).contains(v), "{v} does not fit {width} bytes");
    }
}

/// Fuzz a zipmap: parse, every pair and accessor.
pub fn zipmap(data: &[u8]) {
    let Ok(zm) = Zipmap::parse(data) else {
        return;
    };
    let n = zm.len();
    assert_eq!(zm.is_empty(), n == 0);
    let bytes = zm.as_bytes();
    assert!(data.starts_with(bytes));
    assert_eq!(bytes.last(), Some(&zipmap::END));
    if let Some(&zmlen) = bytes.first() {
        assert!(zmlen >= zipmap::BIGLEN || usize::from(zmlen) == n);
    }
    let pairs: Vec<(&[u8], &[u8])> = zm.iter().collect();
    assert_eq!(pairs.len(), n, "iterated pairs != len()");
    assert!((&zm).into_iter().eq(pairs.iter().copied()));
    let payload: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    // Each pair costs at least 3 bytes besides its payload (two lengths and `free`).
    assert!(
        payload + 3 * n + 2 <= bytes.len(),
        "pairs exceed the zipmap"
    );
}

/// Fuzz LZF decompression.
///
/// First byte even: `[mode, len0, len1, len2, compressed...]`, decompress to the 24-bit
/// little-endian length and compare with the `lzf` crate (an independent port of liblzf).
/// Odd: the rest is plain data, compressed by the RDB writer's compressor (with the
/// writer's budget, and with room to spare), which must decompress back to it, with our
/// decoder and with the `lzf` crate's.
///
/// The `lzf` crate's *compressor* is not used: `lzf::compress` 1.0.0 panics (index out of
/// bounds, lzf-1.0.0/src/compress.rs:89) on some inputs, e.g. bytes 0..=159 then 1..=5;
/// see `tests/it/decode_props.rs`.
pub fn lzf(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut out = Vec::new();
    if mode & 1 == 0 {
        let Some((len, input)) = rest.split_first_chunk::<3>() else {
            return;
        };
        let [a, b, c] = *len;
        let expected = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
        let ours = lzf_dec::decompress(input, expected, &mut out);
        if ours.is_ok() {
            assert_eq!(out.len(), expected, "Ok with the wrong length");
        }
        // Both refuse impossible lengths before allocating; the crate also refuses empty
        // input, which can only be Ok for us with expected == 0.
        if input.is_empty() || expected > input.len().saturating_mul(lzf_dec::MAX_EXPANSION) {
            assert!(ours.is_err() || expected == 0);
            return;
        }
        let reference = ::lzf::decompress(input, expected)
            .ok()
            .filter(|v| v.len() == expected);
        match (&ours, reference) {
            (Ok(()), Some(r)) => assert!(out == r, "output differs from the lzf crate"),
            (Err(_), None) => {}
            (Ok(()), None) => panic!("accepted input that liblzf rejects"),
            (Err(e), Some(_)) => panic!("rejected input that liblzf accepts: {e}"),
        }
    } else {
        let mut c = Vec::new();
        // The RDB writer's budget (smaller than the input), then room to spare.
        let tight = rest.len().saturating_sub(1);
        if rdb::compress::lzf_compress(rest, tight, &mut c) {
            assert!(c.len() <= tight, "compressed beyond the budget");
            check_lzf_round_trip(&c, rest);
        }
        let roomy = rest.len().saturating_mul(2).saturating_add(64);
        if rdb::compress::lzf_compress(rest, roomy, &mut c) {
            check_lzf_round_trip(&c, rest);
        } else {
            assert!(
                rest.is_empty(),
                "refused {} bytes with room to spare",
                rest.len()
            );
        }
    }
}

/// `compressed` decompresses to `plain`, with our decoder and with the `lzf` crate's.
pub(crate) fn check_lzf_round_trip(compressed: &[u8], plain: &[u8]) {
    let mut out = Vec::new();
    if let Err(e) = lzf_dec::decompress(compressed, plain.len(), &mut out) {
        panic!("cannot decompress the RDB writer's LZF: {e}");
    }
    assert!(out == plain, "RDB compressor round trip");
    match ::lzf::decompress(compressed, plain.len()) {
        Ok(r) => assert!(r == plain, "the lzf crate decompresses it differently"),
        Err(e) => panic!("the lzf crate cannot decompress the RDB writer's LZF: {e:?}"),
    }
}

/// LZF-compresses `data` with the RDB writer's compressor; `None` for empty input.
pub(crate) fn compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut c = Vec::new();
    let room = data.len().saturating_mul(2).saturating_add(64);
    rdb::compress::lzf_compress(data, room, &mut c).then_some(c)
}

// ---------------------------------------------------------------------------------------
// Structures read from memory: sds headers.
// ---------------------------------------------------------------------------------------

/// A resolved shipped profile, cached per process.
pub(crate) fn shipped_layout(name: &'static str) -> Option<&'static Layout> {
    static CACHE: OnceLock<Vec<(&'static str, Option<Layout>)>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        [SAMPLE_PROFILE, LEN_FREE_PROFILE, ZIPLIST_QUICKLIST_PROFILE]
            .into_iter()
            .map(|n| {
                let layout = redis_rescue::profile::load(n)
                    .ok()
                    .and_then(|f| Layout::resolve(&f).ok());
                (n, layout)
            })
            .collect()
    });
    cache
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, l)| l.as_ref())
}

/// Checks a string read from the image: it is the bytes at `ptr` followed by a NUL.
pub(crate) fn check_in_image(mem: &[u8], ptr: u64, body: &[u8]) {
    let at = ptr
        .checked_sub(IMAGE_BASE)
        .and_then(|o| usize::try_from(o).ok());
    let Some(at) = at else {
        panic!("string read at {ptr:#x}, outside the image");
    };
    let end = at.checked_add(body.len());
    assert_eq!(
        end.and_then(|e| mem.get(at..e)),
        Some(body),
        "string is not the image's bytes"
    );
    assert_eq!(
        end.and_then(|e| mem.get(e)),
        Some(&0),
        "string is not NUL-terminated"
    );
}

/// Fuzz the sds (and `mstr`) readers over a one-segment memory image.
///
/// `[flags, p0, p1, memory...]`: the memory is mapped at a fixed base; the pointer is the
/// base plus the 16-bit little-endian `p`, reduced modulo the image size + 17 (so it may
/// point past the end). Flags: bit 0 old `sdshdr {len, free}` headers (2.8) instead of
/// typed ones; bit 1 also read an `mstr`; bit 2 use `p` itself as the pointer (below the
/// image); bit 3 use `u64::MAX - p`.
pub fn sds(data: &[u8]) {
    let Some(([flags, p0, p1], mem)) = data.split_first_chunk::<3>() else {
        return;
    };
    let (flags, p) = (*flags, u64::from(u16::from_le_bytes([*p0, *p1])));
    let format = if flags & 1 == 0 {
        SdsFormat::Typed
    } else {
        match shipped_layout(LEN_FREE_PROFILE) {
            Some(l) => SdsFormat::of(l),
            None => panic!("shipped profile {LEN_FREE_PROFILE} does not resolve"),
        }
    };
    let ptr = if flags & 4 != 0 {
        p
    } else if flags & 8 != 0 {
        u64::MAX - p
    } else {
        IMAGE_BASE + p % (mem.len() as u64 + 17)
    };
    let space = single_segment(mem, IMAGE_BASE);
    if let Ok(body) = read_sds(&space, format, ptr) {
        check_in_image(mem, ptr, &body);
        assert!(matches!(body, Cow::Borrowed(_)), "one segment: zero-copy");
    }
    if flags & 2 != 0 {
        if let Ok((body, _meta)) = read_mstr(&space, ptr) {
            check_in_image(mem, ptr, &body);
        }
    }
}
