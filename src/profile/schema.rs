//! The on-disk JSON schema of a layout profile (documented in `layouts/README.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Current schema version.
pub const SCHEMA_VERSION: u32 = 2;

/// A layout profile as stored in `layouts/NAME.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Schema version, [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Short name, e.g. `7.0.15-debian`.
    pub name: String,
    /// Which build this describes.
    pub identity: Identity,
    /// Global symbols, as offsets from the executable's load base.
    pub symbols: BTreeMap<String, SymbolSpec>,
    /// Named walker features that select the structure families of this build.
    pub features: BTreeMap<String, String>,
    /// Struct sizes and field positions.
    pub structs: BTreeMap<String, StructSpec>,
    /// Named integer constants, grouped (object types, encodings, quicklist node values).
    pub constants: BTreeMap<String, BTreeMap<String, i64>>,
}

/// The build a profile belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// `REDIS_VERSION` of the build (Valkey: its own version).
    pub redis_version: String,
    /// `redis` or `valkey`.
    pub server: String,
    /// GNU build-id (hex) of the executable, when known.
    pub build_id: Option<String>,
    /// `x86_64`, `aarch64`.
    pub arch: String,
    /// Bytes per pointer.
    pub pointer_size: u8,
    /// RDB version this server writes.
    pub rdb_version: u32,
    /// How the profile was made (derived from DWARF of which file, or written by hand from what).
    pub origin: String,
}

/// A global symbol.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolSpec {
    /// Offset from the load base (address of the ELF header in memory).
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// One struct.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructSpec {
    /// `sizeof`.
    pub size: u64,
    /// Fields by name.
    pub fields: BTreeMap<String, FieldSpec>,
}

/// A field: a byte range, or a bit-field.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged, deny_unknown_fields)]
pub enum FieldSpec {
    /// A plain member.
    Bytes {
        /// Byte offset in the struct.
        offset: u64,
        /// Size in bytes (for arrays, of the whole array).
        size: u64,
    },
    /// A bit-field, positions counted from the struct's first byte, least significant bit first.
    Bits {
        /// Bit offset from the start of the struct.
        bit_offset: u64,
        /// Width in bits.
        bit_size: u32,
    },
}
