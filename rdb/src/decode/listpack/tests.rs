//! Unit tests of `listpack`.

use super::*;
use crate::decode::testutil::{for_each_mutation, Rng};
use Element::{Bytes, Int};

/// Wraps raw entries (encoding + data + backlen) in a header and end byte.
fn wrap(entries: &[Vec<u8>], num: u16) -> Vec<u8> {
    let body: Vec<u8> = entries.concat();
    let total = (HEADER_SIZE + body.len() + 1) as u32;
    let mut out = total.to_le_bytes().to_vec();
    out.extend_from_slice(&num.to_le_bytes());
    out.extend_from_slice(&body);
    out.push(END);
    out
}

/// Decodes a backlen reading backwards from its last byte, as Redis does.
fn decode_backlen_backwards(bytes: &[u8]) -> (u64, usize) {
    let mut val = 0u64;
    let mut shift = 0;
    for (n, &b) in bytes.iter().rev().enumerate() {
        val |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return (val, n + 1);
        }
        shift += 7;
    }
    panic!("unterminated backlen");
}

fn build(elems: &[Element]) -> Vec<u8> {
    let mut b = ListpackBuilder::new();
    b.extend(elems.iter().copied()).unwrap();
    b.finish()
}

fn elems(lp: &Listpack) -> Vec<Vec<u8>> {
    lp.iter().map(|e| e.to_vec()).collect()
}

/// (entry bytes with backlen, element) for every encoding and its boundaries.
fn encoding_cases() -> Vec<(Vec<u8>, Element<'static>)> {
    vec![
        (vec![0x00, 0x01], Int(0)),
        (vec![0x01, 0x01], Int(1)),
        (vec![0x7F, 0x01], Int(127)),
        (vec![0xC0, 0x80, 0x02], Int(128)),
        (vec![0xCF, 0xFF, 0x02], Int(4095)),
        (vec![0xDF, 0xFF, 0x02], Int(-1)),
        (vec![0xD0, 0x00, 0x02], Int(-4096)),
        (vec![0xF1, 0x00, 0x10, 0x03], Int(4096)),
        (vec![0xF1, 0xFF, 0xEF, 0x03], Int(-4097)),
        (vec![0xF1, 0xFF, 0x7F, 0x03], Int(32767)),
        (vec![0xF1, 0x00, 0x80, 0x03], Int(-32768)),
        (vec![0xF2, 0x00, 0x80, 0x00, 0x04], Int(32768)),
        (vec![0xF2, 0xFF, 0x7F, 0xFF, 0x04], Int(-32769)),
        (vec![0xF2, 0xFF, 0xFF, 0x7F, 0x04], Int(8_388_607)),
        (vec![0xF2, 0x00, 0x00, 0x80, 0x04], Int(-8_388_608)),
        (vec![0xF3, 0x00, 0x00, 0x80, 0x00, 0x05], Int(8_388_608)),
        (vec![0xF3, 0xFF, 0xFF, 0x7F, 0xFF, 0x05], Int(-8_388_609)),
        (
            vec![0xF3, 0xFF, 0xFF, 0xFF, 0x7F, 0x05],
            Int(i32::MAX.into()),
        ),
        (
            vec![0xF3, 0x00, 0x00, 0x00, 0x80, 0x05],
            Int(i32::MIN.into()),
        ),
        (
            [&[0xF4][..], &(1i64 << 31).to_le_bytes(), &[0x09]].concat(),
            Int(1 << 31),
        ),
        (
            [&[0xF4][..], &(-(1i64 << 31) - 1).to_le_bytes(), &[0x09]].concat(),
            Int(-(1 << 31) - 1),
        ),
        (
            [&[0xF4][..], &i64::MAX.to_le_bytes(), &[0x09]].concat(),
            Int(i64::MAX),
        ),
        (
            [&[0xF4][..], &i64::MIN.to_le_bytes(), &[0x09]].concat(),
            Int(i64::MIN),
        ),
        (vec![0x80, 0x01], Bytes(b"")),
        (vec![0x83, b'a', b'b', b'c', 0x04], Bytes(b"abc")),
        (vec![0x81, 0xFF, 0x02], Bytes(b"\xff")),
    ]
}

fn string_entry(len: usize) -> (Vec<u8>, Vec<u8>) {
    let s: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut e = if len < 64 {
        vec![0x80 | len as u8]
    } else if len < 4096 {
        vec![0xE0 | (len >> 8) as u8, len as u8]
    } else {
        [&[0xF0][..], &(len as u32).to_le_bytes()].concat()
    };
    e.extend_from_slice(&s);
    let mut b = [0u8; 5];
    let back = encode_backlen(e.len(), &mut b).to_vec();
    e.extend_from_slice(&back);
    (e, s)
}

#[test]
fn empty() {
    let blob = [7, 0, 0, 0, 0, 0, 0xFF];
    let lp = Listpack::parse(&blob).unwrap();
    assert_eq!(lp.len(), 0);
    assert!(lp.is_empty());
    assert_eq!(lp.total_bytes(), 7);
    assert_eq!(lp.iter().count(), 0);
    assert_eq!(ListpackBuilder::new().finish(), blob);
    // unknown count is fine too
    assert!(Listpack::parse(&[7, 0, 0, 0, 0xFF, 0xFF, 0xFF]).is_ok());
}

#[test]
fn every_integer_and_short_string_encoding() {
    let cases = encoding_cases();
    for (entry, elem) in &cases {
        let blob = wrap(std::slice::from_ref(entry), 1);
        let lp = Listpack::parse(&blob).unwrap_or_else(|e| panic!("{elem:?}: {e}"));
        assert_eq!(lp.iter().collect::<Vec<_>>(), vec![*elem]);
        assert_eq!(build(&[*elem]), blob, "builder encoding of {elem:?}");
    }
    // all of them in one listpack
    let entries: Vec<Vec<u8>> = cases.iter().map(|c| c.0.clone()).collect();
    let blob = wrap(&entries, entries.len() as u16);
    let lp = Listpack::parse(&blob).unwrap();
    assert_eq!(lp.len(), cases.len());
    let got: Vec<Element> = lp.iter().collect();
    let want: Vec<Element> = cases.iter().map(|c| c.1).collect();
    assert_eq!(got, want);
    assert_eq!(lp.as_bytes(), &blob[..]);
}

#[test]
fn string_length_classes() {
    // 6-bit, 12-bit, 32-bit strings, incl. 63/64, 4095/4096 and a 5000-byte string
    for len in [0, 1, 63, 64, 125, 126, 4095, 4096, 5000] {
        let (entry, s) = string_entry(len);
        let blob = wrap(&[entry], 1);
        let lp = Listpack::parse(&blob).unwrap();
        assert_eq!(lp.iter().collect::<Vec<_>>(), vec![Bytes(&s)]);
        assert_eq!(build(&[Bytes(&s)]), blob);
    }
    // exact bytes of a 64-byte and a 5000-byte string entry
    let (e64, _) = string_entry(64);
    assert_eq!(&e64[..2], &[0xE0, 0x40]);
    assert_eq!(&e64[66..], &[66]);
    let (e5000, _) = string_entry(5000);
    assert_eq!(&e5000[..5], &[0xF0, 0x88, 0x13, 0x00, 0x00]);
    assert_eq!(&e5000[5005..], &[39, 0x80 | 13]);
}

#[test]
fn backlen_encoding_boundaries() {
    for (len, size) in [
        (1usize, 1usize),
        (127, 1),
        (128, 2),
        (16382, 2),
        (16383, 3),
        (2_097_150, 3),
        (2_097_151, 4),
        (268_435_454, 4),
        (268_435_455, 5),
        (u32::MAX as usize, 5),
    ] {
        let mut b = [0u8; 5];
        let enc = encode_backlen(len, &mut b);
        assert_eq!(enc.len(), size, "size for {len}");
        assert_eq!(backlen_size(len), size);
        assert_eq!(decode_backlen_backwards(enc), (len as u64, size));
    }
    let mut b = [0u8; 5];
    assert_eq!(encode_backlen(127, &mut b), &[0x7F]);
    assert_eq!(encode_backlen(128, &mut b), &[0x01, 0x80]);
    assert_eq!(encode_backlen(16382, &mut b), &[0x7F, 0xFE]);
    assert_eq!(encode_backlen(16383, &mut b), &[0x00, 0xFF, 0xFF]);
}

#[test]
fn backlen_boundaries_in_listpacks() {
    // entry lengths 127/128 (12-bit strings), 16382/16383 and 2097150/2097151
    // (32-bit strings) straddle the backlen size classes
    for entry_len in [127usize, 128, 16382, 16383, 2_097_150, 2_097_151] {
        let slen = if entry_len < 200 {
            entry_len - 2
        } else {
            entry_len - 5
        };
        let s = vec![b'x'; slen];
        let blob = build(&[Bytes(&s), Int(1)]);
        let lp = Listpack::parse(&blob).unwrap();
        assert_eq!(lp.iter().collect::<Vec<_>>(), vec![Bytes(&s), Int(1)]);
        let back_at = HEADER_SIZE + entry_len;
        let size = backlen_size(entry_len);
        assert_eq!(
            decode_backlen_backwards(&blob[back_at..back_at + size]),
            (entry_len as u64, size)
        );
    }
    // a 2-byte backlen for 16383 decodes to the right value but is not what Redis
    // writes: rejected
    let s = vec![b'x'; 16378];
    let mut e = [&[0xF0][..], &16378u32.to_le_bytes(), &s].concat();
    e.extend_from_slice(&[0x7F, 0xFF]);
    assert_eq!(decode_backlen_backwards(&[0x7F, 0xFF]), (16383, 2));
    assert!(matches!(
        Listpack::parse(&wrap(&[e], 1)),
        Err(DecodeError::BacklenMismatch {
            offset: 16389,
            entry_len: 16383
        })
    ));
}

#[test]
fn builder_chooses_int_for_canonical_strings() {
    let blob = build(&[
        Bytes(b"123"),
        Bytes(b"-1"),
        Bytes(b"0"),
        Bytes(b"9223372036854775807"),
        Bytes(b"-9223372036854775808"),
        Bytes(b"0123"),
        Bytes(b"-0"),
        Bytes(b"+5"),
        Bytes(b"9223372036854775808"),
        Bytes(b"1 "),
    ]);
    let lp = Listpack::parse(&blob).unwrap();
    let got: Vec<Element> = lp.iter().collect();
    assert_eq!(
        got,
        vec![
            Int(123),
            Int(-1),
            Int(0),
            Int(i64::MAX),
            Int(i64::MIN),
            Bytes(b"0123"),
            Bytes(b"-0"),
            Bytes(b"+5"),
            Bytes(b"9223372036854775808"),
            Bytes(b"1 "),
        ]
    );
    assert_eq!(&blob[HEADER_SIZE..HEADER_SIZE + 3], &[0x7B, 0x01, 0xDF]);
}

#[test]
fn non_minimal_entry_encodings_are_accepted() {
    // 5 as int64 and "ab" as a 12-bit string: valid, merely not what Redis writes
    let e1 = [&[0xF4][..], &5i64.to_le_bytes(), &[9]].concat();
    let e2 = vec![0xE0, 0x02, b'a', b'b', 0x04];
    let blob = wrap(&[e1, e2], 2);
    let lp = Listpack::parse(&blob).unwrap();
    assert_eq!(lp.iter().collect::<Vec<_>>(), vec![Int(5), Bytes(b"ab")]);
}

#[test]
fn random_round_trip() {
    let mut rng = Rng::new(1);
    for _ in 0..200 {
        let n = rng.below(40);
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for _ in 0..n {
            let t = match rng.below(6) {
                0 => (rng.next_u64() as i64).to_string().into_bytes(),
                1 => ((rng.next_u64() as i64) >> rng.below(64))
                    .to_string()
                    .into_bytes(),
                2 => (rng.below(300) as i64 - 150).to_string().into_bytes(),
                3 => rng.blob(70),
                4 => rng.blob(5000),
                _ => format!("0{}", rng.below(100)).into_bytes(),
            };
            texts.push(t);
        }
        let blob = build(&texts.iter().map(|t| Bytes(t)).collect::<Vec<_>>());
        let lp = Listpack::parse(&blob).unwrap();
        assert_eq!(lp.len(), n);
        assert_eq!(elems(&lp), texts);
        // re-encoding the decoded elements gives the same bytes
        assert_eq!(build(&lp.iter().collect::<Vec<_>>()), blob);
    }
}

#[test]
fn count_above_u16_is_unknown() {
    let mut b = ListpackBuilder::new();
    for i in 0..70_000i64 {
        b.push(Int(i % 100)).unwrap();
    }
    assert_eq!(b.len(), 70_000);
    let blob = b.finish();
    assert_eq!(&blob[4..6], &[0xFF, 0xFF]);
    let lp = Listpack::parse(&blob).unwrap();
    assert_eq!(lp.len(), 70_000);
    assert_eq!(lp.iter().count(), 70_000);
    // exactly 65535 entries must also be stored as "unknown"
    let blob = build(&vec![Int(1); 65_535]);
    assert_eq!(&blob[4..6], &[0xFF, 0xFF]);
    assert_eq!(Listpack::parse(&blob).unwrap().len(), 65_535);
    let blob = build(&vec![Int(1); 65_534]);
    assert_eq!(&blob[4..6], &[0xFE, 0xFF]);
}

fn sample() -> Vec<u8> {
    let mut entries: Vec<Vec<u8>> = encoding_cases().into_iter().map(|c| c.0).collect();
    entries.push(string_entry(64).0);
    entries.push(string_entry(200).0);
    let n = entries.len() as u16;
    wrap(&entries, n)
}

#[test]
fn longer_input_is_fine() {
    let mut blob = sample();
    let total = blob.len();
    blob.extend_from_slice(&[0xAB; 100]);
    let lp = Listpack::parse(&blob).unwrap();
    assert_eq!(lp.total_bytes(), total);
    assert_eq!(lp.as_bytes().len(), total);
}

#[test]
fn truncated_at_every_position() {
    for blob in [sample(), wrap(&[string_entry(5000).0], 1)] {
        assert!(Listpack::parse(&blob).is_ok());
        for k in 0..blob.len() {
            assert!(Listpack::parse(&blob[..k]).is_err(), "prefix {k}");
        }
    }
    assert_eq!(
        Listpack::parse(&[7, 0, 0, 0, 0]),
        Err(DecodeError::Truncated {
            what: "listpack header",
            offset: 0
        })
    );
}

#[test]
fn total_bytes_too_small_or_huge() {
    for total in 0..7u32 {
        let mut blob = total.to_le_bytes().to_vec();
        blob.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        assert!(matches!(
            Listpack::parse(&blob),
            Err(DecodeError::BadHeader { .. })
        ));
    }
    let mut blob = sample();
    blob[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Listpack::parse(&blob),
        Err(DecodeError::Truncated { .. })
    ));
    // total_bytes cutting an entry short: the byte at total-1 is not the end byte
    let mut blob = sample();
    let short = (blob.len() - 3) as u32;
    blob[..4].copy_from_slice(&short.to_le_bytes());
    assert!(matches!(
        Listpack::parse(&blob),
        Err(DecodeError::MissingTerminator { .. })
    ));
}

#[test]
fn wrong_terminator() {
    let mut blob = sample();
    let last = blob.len() - 1;
    blob[last] = 0xFE;
    assert_eq!(
        Listpack::parse(&blob),
        Err(DecodeError::MissingTerminator {
            what: "listpack",
            offset: last,
            found: Some(0xFE)
        })
    );
}

#[test]
fn early_terminator() {
    // a listpack whose declared size is one byte past an end byte
    let blob = [8, 0, 0, 0, 0, 0, 0xFF, 0xFF];
    assert_eq!(
        Listpack::parse(&blob),
        Err(DecodeError::EarlyTerminator {
            what: "listpack",
            offset: 6,
            expected: 7
        })
    );
}

#[test]
fn entry_overlapping_the_end_byte() {
    // "abc" claims 5 bytes of data but only 3 + backlen are there
    let blob = wrap(&[vec![0x85, b'a', b'b', b'c', 0x04]], 1);
    assert!(matches!(
        Listpack::parse(&blob),
        Err(DecodeError::Overrun { offset: 6, .. })
    ));
    // backlen missing entirely
    let blob = wrap(&[vec![0x83, b'a', b'b', b'c']], 1);
    assert!(matches!(
        Listpack::parse(&blob),
        Err(DecodeError::Overrun {
            what: "listpack backlen",
            offset: 10,
            ..
        })
    ));
}

#[test]
fn wrong_count() {
    let blob = wrap(&[vec![0x01, 0x01], vec![0x02, 0x01]], 3);
    assert_eq!(
        Listpack::parse(&blob),
        Err(DecodeError::CountMismatch {
            what: "listpack",
            header: 3,
            actual: 2
        })
    );
    let blob = wrap(&[vec![0x01, 0x01], vec![0x02, 0x01]], 0);
    assert!(matches!(
        Listpack::parse(&blob),
        Err(DecodeError::CountMismatch { .. })
    ));
    let blob = wrap(&[vec![0x01, 0x01], vec![0x02, 0x01]], COUNT_UNKNOWN);
    assert_eq!(Listpack::parse(&blob).unwrap().len(), 2);
}

#[test]
fn wrong_backlen() {
    for bad in [0x00u8, 0x02, 0x81, 0xFF] {
        let blob = wrap(&[vec![0x01, 0x01], vec![0x02, bad]], 2);
        assert_eq!(
            Listpack::parse(&blob),
            Err(DecodeError::BacklenMismatch {
                offset: 9,
                entry_len: 1
            })
        );
    }
    // over-long backlen for a 1-byte entry (0x00 0x81 also decodes to 1)
    let blob = wrap(&[vec![0x01, 0x00, 0x81]], 1);
    assert_eq!(
        Listpack::parse(&blob),
        Err(DecodeError::BacklenMismatch {
            offset: 7,
            entry_len: 1
        })
    );
}

#[test]
fn invalid_encoding_bytes() {
    for b in 0xF5..=0xFEu8 {
        let blob = wrap(&[vec![0x01, 0x01], vec![b, 0x01]], 2);
        assert_eq!(
            Listpack::parse(&blob),
            Err(DecodeError::BadEncoding {
                what: "listpack entry",
                offset: 8,
                byte: b
            })
        );
    }
}

#[test]
fn huge_string_lengths() {
    for len in [u32::MAX, u32::MAX - 5, 1 << 31, 100] {
        let e = [&[0xF0][..], &len.to_le_bytes(), b"abc", &[0x08]].concat();
        let blob = wrap(&[e], 1);
        assert!(matches!(
            Listpack::parse(&blob),
            Err(DecodeError::Overrun {
                what: "listpack 32-bit string",
                offset: 6,
                ..
            })
        ));
    }
    // 12-bit length larger than the rest
    let blob = wrap(&[vec![0xEF, 0xFF, b'a', 0x03]], 1);
    assert!(matches!(
        Listpack::parse(&blob),
        Err(DecodeError::Overrun { .. })
    ));
}

#[test]
fn mutations_never_panic() {
    let blobs = [
        sample(),
        build(&[Bytes(b"hello"), Int(-5), Int(70000), Bytes(&[b'z'; 130])]),
        ListpackBuilder::new().finish(),
    ];
    let mut ok = 0;
    for blob in &blobs {
        for_each_mutation(blob, |_, m| {
            if let Ok(lp) = Listpack::parse(m) {
                ok += 1;
                assert!(lp.total_bytes() <= m.len());
                assert_eq!(lp.as_bytes().len(), lp.total_bytes());
                let items: Vec<Element> = lp.iter().collect();
                assert_eq!(items.len(), lp.len());
                // re-encoding what was decoded yields an equivalent valid listpack
                let again = build(&items);
                let lp2 = Listpack::parse(&again).unwrap();
                assert_eq!(elems(&lp2), elems(&lp));
            }
        });
    }
    // some mutations (e.g. changed integer payloads) stay valid
    assert!(ok > 0);
}

// From the reader's former copy: what an RDB string must hold exactly.

#[test]
fn exact_round_trip_and_every_truncation_fails() {
    use crate::decode::testutil::{make_listpack, sample_items};
    let big = vec![b'x'; 20_000];
    let items = sample_items(&big);
    let lp = make_listpack(&items);
    fn exact(b: &[u8]) -> Result<Vec<Element<'_>>, DecodeError> {
        Listpack::parse_exact(b).map(|l| l.iter().collect())
    }
    assert_eq!(exact(&lp).unwrap(), items);
    assert_eq!(exact(&make_listpack(&[])).unwrap(), vec![]);
    for cut in 0..lp.len() {
        assert!(exact(&lp[..cut]).is_err(), "cut at {cut}");
    }
    // A flipped back length is caught.
    let small = make_listpack(&[Bytes(b"abc"), Int(5)]);
    let mut bad = small.clone();
    bad[6 + 4] ^= 1;
    assert!(exact(&bad).is_err());
    // Count mismatch.
    let mut bad = small.clone();
    bad[4] = 3;
    assert!(exact(&bad).is_err());
    // Unknown encoding byte.
    let mut bad = small.clone();
    bad[6] = 0xF5;
    assert!(exact(&bad).is_err());
    // Bytes after the end byte: fine for `parse`, not for `parse_exact`.
    let mut longer = small;
    longer.push(0);
    assert!(Listpack::parse(&longer).is_ok());
    assert!(matches!(
        exact(&longer),
        Err(DecodeError::TrailingBytes {
            size: 14,
            available: 15,
            ..
        })
    ));
}
