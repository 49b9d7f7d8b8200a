//! Streaming writer and reader for Redis and Valkey RDB files: Redis's RDB 1 to 13
//! (`REDIS0001` to `REDIS0013`) and Valkey 9's RDB 80 (`VALKEY080`). The versions are not a
//! line (RDB 80 descends from 11 and lacks 12 and 13's types): ask [`ValueType::fits`] or
//! [`is_known_version`], never compare version numbers.
//!
//! The crate is split into small layers:
//!
//! * [`crc`]: the CRC-64 variant Redis uses for the file trailer;
//! * [`consts`]: object type bytes ([`ValueType`]), opcodes and the versions that exist;
//! * [`compress`]: a bounded-output LZF compressor;
//! * [`encode`]: free functions appending RDB primitives (lengths, strings,
//!   doubles, times) to a `Vec<u8>`;
//! * [`RecordBuilder`]: one key's serialized record, assembled in a scratch
//!   buffer so a key that fails half-way never reaches the file;
//! * [`RdbWriter`]: the buffered, checksumming file writer;
//! * [`dump`]: DUMP/RESTORE payloads of one value (built from a [`RecordBuilder`], and read
//!   back);
//! * [`decode`]: the validating decoders of the compact encodings (listpack, ziplist,
//!   intset, zipmap, LZF) and the stream node check, shared with `redis-rescue`'s walker;
//! * [`reader`]: the streaming, checksum-verifying [`RdbReader`] that turns a file back
//!   into one [`Entry`] per key.
//!
//! ```
//! use rdb::{RdbWriter, RecordBuilder, ValueType};
//!
//! let mut w = RdbWriter::new(Vec::new(), 10)?;
//! w.aux(b"redis-ver", b"7.0.15")?;
//! w.select_db(0)?;
//! w.resize_db(1, 0)?;
//! let mut rec = RecordBuilder::new(true);
//! rec.value_type(ValueType::String);
//! rec.key(b"greeting");
//! rec.string(b"hello");
//! w.record(&rec)?;
//! let bytes = w.finish()?;
//! assert!(bytes.starts_with(b"REDIS0010"));
//! # Ok::<(), rdb::RdbError>(())
//! ```
#![deny(missing_docs)]
// Library code must not panic on any input; tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod compress;
pub mod consts;
pub mod crc;
pub mod decode;
pub mod dump;
pub mod encode;
mod error;
pub mod reader;
mod record;
mod writer;

pub use consts::{is_known_version, ValueType};
pub use crc::{crc64, Crc64};
pub use error::RdbError;
pub use reader::{Entry, RdbReader, RdbValue, ReadError};
pub use record::{RecordBuilder, StreamIdmpConfig};
pub use writer::RdbWriter;
