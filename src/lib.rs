//! redis-rescue: recover a Redis keyspace from the memory of a redis-server process.
//!
//! The pipeline: [`core`] maps an ELF core and indexes its memory (or [`live`] reads a
//! running process, stopped for the walk); [`binary`] matches the
//! executable and resolves symbols; [`profile`] loads the layout of the Redis build;
//! [`walker`] walks `server.db[]` down to every key; [`sink`] writes an RDB or counts;
//! [`output`] opens the file or stream keys go to, in RDB, RESP or JSON lines;
//! [`report`] says what was recovered and what was lost; [`recover`] runs it all.
#![deny(missing_docs)]
// Library code must not panic on any input (a core is damaged memory); tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod binary;
pub mod bundle;
pub mod code_refs;
pub mod core;
// The decoders live in the `rdb` crate, which its reader shares; the path stays `crate::decode`.
pub use rdb::decode;
pub mod dwarf;
pub mod eviction;
pub mod live;
pub mod output;
pub mod profile;
pub mod progress;
pub mod recording;
pub mod recover;
pub mod reencode;
pub mod report;
pub mod sink;
pub mod slot;
pub mod value;
pub mod verify;
pub mod walker;
