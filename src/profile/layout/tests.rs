//! Unit tests of `layout`.

use super::*;

#[test]
fn bits_extract_lsb_first() {
    // robj word: type 3, encoding 11, lru 0xabcdef.
    let word: u32 = 3 | (11 << 4) | (0xabcdef << 8);
    let bytes = word.to_le_bytes();
    assert_eq!(
        Bits {
            bit_offset: 0,
            width: 4
        }
        .get(&bytes),
        Some(3)
    );
    assert_eq!(
        Bits {
            bit_offset: 4,
            width: 4
        }
        .get(&bytes),
        Some(11)
    );
    assert_eq!(
        Bits {
            bit_offset: 8,
            width: 24
        }
        .get(&bytes),
        Some(0xabcdef)
    );
    assert_eq!(
        Bits {
            bit_offset: 30,
            width: 4
        }
        .get(&bytes),
        None
    );
    let f = Field { offset: 2, size: 2 };
    assert_eq!(f.get(&bytes), Some(0xabcd));
    assert_eq!(Field { offset: 3, size: 2 }.get(&bytes), None);
}
