//! Reading a DUMP payload back: the footer checked (CRC-64 and RDB version), then the one
//! value decoded as the file reader decodes a key's value.

use super::input::Input;
use super::{RdbReader, RdbValue, ReadError};
use crate::consts::is_known_version;
use crate::crc::crc64;
use crate::dump::FOOTER_LEN;

/// A value read from a DUMP payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    /// The object type byte.
    pub rdb_type: u8,
    /// The RDB version in the footer.
    pub rdb_version: u16,
    /// The decoded value.
    pub value: RdbValue,
}

/// Decodes a DUMP payload (what `DUMP` returns): checks the CRC-64 and the RDB version of the
/// footer as `RESTORE` does (a stored CRC of 0 is a mismatch here, not "disabled"), then reads
/// the type byte and the value, which must end exactly at the footer.
pub fn read_payload(payload: &[u8]) -> Result<Payload, ReadError> {
    let body_len = payload
        .len()
        .checked_sub(FOOTER_LEN)
        .ok_or(ReadError::Truncated {
            offset: payload.len() as u64,
            what: "a DUMP payload's footer (RDB version and CRC-64)",
        })?;
    let (body, footer) = payload.split_at(body_len);
    let (version, crc) = footer.split_at(2);
    let stored = u64::from_le_bytes(crc.try_into().map_err(|_| ReadError::Truncated {
        offset: payload.len() as u64,
        what: "a DUMP payload's CRC-64",
    })?);
    let computed = crc64(payload.get(..body_len + 2).unwrap_or_default());
    if stored != computed {
        return Err(ReadError::Checksum { stored, computed });
    }
    let version = u16::from_le_bytes([
        version.first().copied().unwrap_or(0),
        version.get(1).copied().unwrap_or(0),
    ]);
    if !is_known_version(u32::from(version)) {
        return Err(ReadError::BadVersion(u32::from(version)));
    }
    let mut r = RdbReader::with_input(Input::with_capacity(body, body.len()), u32::from(version));
    let rdb_type = r.input.u8("the object type")?;
    let value = r.value(rdb_type, 0)?;
    if !r.input.at_end()? {
        return Err(ReadError::Corrupt {
            offset: r.input.offset(),
            what: "bytes after the value, before the footer".into(),
        });
    }
    Ok(Payload {
        rdb_type,
        rdb_version: version,
        value,
    })
}
