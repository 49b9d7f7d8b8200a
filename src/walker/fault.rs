//! Why a key (or a whole table) could not be recovered.

use crate::core::MemError;
use crate::decode::DecodeError;

/// A fault found while decoding data from the core. It costs the key it is in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    /// Memory that is not in the core.
    #[error(transparent)]
    Memory(#[from] MemError),
    /// A compact encoding (listpack, intset, LZF...) that does not validate.
    #[error("{what}: {source}")]
    Decode {
        /// Which structure.
        what: &'static str,
        /// What is wrong with it.
        source: DecodeError,
    },
    /// A structure whose fields contradict each other or Redis's invariants.
    #[error("{0}")]
    Inconsistent(String),
    /// A pointer chain that loops.
    #[error("cycle in {0}")]
    Cycle(&'static str),
    /// Decoding the key took longer than `--timeout` (milliseconds).
    #[error("decoding took longer than the --timeout of {0} ms")]
    Timeout(u64),
    /// A value this version of the tool does not recover.
    #[error("{0}")]
    Unsupported(String),
}

impl Fault {
    /// Shorthand for an [`Fault::Inconsistent`] fault.
    pub fn bad(msg: impl Into<String>) -> Fault {
        Fault::Inconsistent(msg.into())
    }

    /// Wrap a decoder error with what was being decoded.
    pub fn decode(what: &'static str) -> impl FnOnce(DecodeError) -> Fault {
        move |source| Fault::Decode { what, source }
    }
}
