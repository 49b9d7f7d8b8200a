//! DUMP payloads: what `DUMP` returns and `RESTORE` takes, one value outside any file.
//!
//! A payload is the object type byte and the value exactly as an RDB file encodes them (no
//! key, no expire or IDLE/FREQ opcodes), then a footer: the RDB version the value is encoded
//! for (2 bytes, little-endian) and the CRC-64 of everything before it (8 bytes,
//! little-endian; the same Redis CRC as the file trailer). `RESTORE` refuses a payload whose
//! version is above the server's own RDB version or whose CRC does not match, so the
//! version written must be one the target loads (see [`crate::ValueType::fits`]).
//!
//! ```
//! use rdb::{dump, RecordBuilder, ValueType};
//!
//! let mut rec = RecordBuilder::new(false);
//! rec.expire_ms(1_700_000_000_000); // not part of the payload: RESTORE takes it apart
//! rec.value_type(ValueType::String);
//! rec.key(b"greeting");
//! rec.string(b"hello");
//! let mut payload = Vec::new();
//! dump::payload(&rec, 10, &mut payload)?;
//! assert_eq!(&payload[..7], b"\x00\x05hello");
//! assert_eq!(&payload[7..9], &10u16.to_le_bytes());
//! let back = dump::read_payload(&payload).expect("valid");
//! assert_eq!(back.value, rdb::RdbValue::String(b"hello".to_vec()));
//! # Ok::<(), rdb::RdbError>(())
//! ```

use crate::consts::is_known_version;
use crate::crc::crc64;
use crate::error::RdbError;
use crate::record::RecordBuilder;

pub use crate::reader::{read_payload, Payload};

/// Bytes of the footer: the 2-byte RDB version and the 8-byte CRC-64.
pub const FOOTER_LEN: usize = 10;

/// Appends to `out` the DUMP payload of the value in `rec` (its type byte and the bytes after
/// its key), for a loader of RDB `version`. Fails, appending nothing, when `version` does not
/// exist, when the record uses a type or opcode that version lacks (as
/// [`RdbWriter::record`](crate::RdbWriter::record) does), or when `rec` has no type and key.
pub fn payload(rec: &RecordBuilder, version: u32, out: &mut Vec<u8>) -> Result<(), RdbError> {
    let footer_version = u16::try_from(version)
        .ok()
        .filter(|_| is_known_version(version))
        .ok_or(RdbError::BadVersion(version))?;
    rec.check_version(version)?;
    let (ty, value) = rec.type_and_value().ok_or(RdbError::NoValue)?;
    let start = out.len();
    out.reserve(1 + value.len() + FOOTER_LEN);
    out.push(ty);
    out.extend_from_slice(value);
    out.extend_from_slice(&footer_version.to_le_bytes());
    let crc = crc64(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{RdbValue, ReadError};
    use crate::ValueType;

    fn string_record(value: &[u8]) -> RecordBuilder {
        let mut r = RecordBuilder::new(false);
        r.expire_ms(5);
        r.freq(3);
        r.value_type(ValueType::String);
        r.key(b"k");
        r.string(value);
        r
    }

    #[test]
    fn payload_is_type_value_version_crc() {
        let mut out = vec![0xAA];
        payload(&string_record(b"v"), 10, &mut out).unwrap();
        let mut want = vec![0xAA, 0, 1, b'v', 10, 0];
        want.extend_from_slice(&crc64(&[0, 1, b'v', 10, 0]).to_le_bytes());
        assert_eq!(
            out, want,
            "appended after what was there, CRC over the payload only"
        );
        let back = read_payload(&out[1..]).unwrap();
        assert_eq!(
            (back.rdb_type, back.rdb_version, back.value),
            (0, 10, RdbValue::String(b"v".to_vec()))
        );
        let mut valkey = Vec::new();
        payload(&string_record(b"v"), 80, &mut valkey).unwrap();
        assert_eq!(&valkey[3..5], &[80, 0]);
    }

    #[test]
    fn refuses_what_the_version_lacks_and_appends_nothing() {
        let mut out = Vec::new();
        // FREQ needs RDB 9.
        assert!(matches!(
            payload(&string_record(b"v"), 8, &mut out),
            Err(RdbError::NotInVersion { version: 8, .. })
        ));
        assert!(matches!(
            payload(&string_record(b"v"), 14, &mut out),
            Err(RdbError::BadVersion(14))
        ));
        let mut keyless = RecordBuilder::new(false);
        keyless.expire_ms(1);
        assert!(matches!(
            payload(&keyless, 10, &mut out),
            Err(RdbError::NoValue)
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn damaged_payloads_are_refused() {
        let mut good = Vec::new();
        payload(&string_record(b"value"), 10, &mut good).unwrap();
        let mut flipped = good.clone();
        flipped[2] ^= 1;
        assert!(matches!(
            read_payload(&flipped),
            Err(ReadError::Checksum { .. })
        ));
        assert!(matches!(
            read_payload(&good[..5]),
            Err(ReadError::Truncated { .. })
        ));
        // A version that does not exist, with a CRC that matches it.
        let mut v14 = good[..good.len() - FOOTER_LEN].to_vec();
        v14.extend_from_slice(&14u16.to_le_bytes());
        let crc = crc64(&v14);
        v14.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(read_payload(&v14), Err(ReadError::BadVersion(14))));
        // Bytes after the value.
        let mut long = good[..good.len() - FOOTER_LEN].to_vec();
        long.extend_from_slice(&[b'x', 10, 0]);
        let crc = crc64(&long);
        long.extend_from_slice(&crc.to_le_bytes());
        match read_payload(&long) {
            Err(ReadError::Corrupt { what, .. }) => assert!(what.contains("after"), "{what}"),
            other => panic!("{other:?}"),
        }
        // An opcode where the type belongs.
        let mut op = vec![0xFE, 0, 10, 0];
        let crc = crc64(&op);
        op.extend_from_slice(&crc.to_le_bytes());
        assert!(read_payload(&op).is_err());
    }
}
