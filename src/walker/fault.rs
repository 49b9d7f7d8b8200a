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

/// What kind of fault cost a key, for scripts: the report lists it beside each lost key's
/// message (`reason_kind`) and counts losses by it (`lost_by_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// An address no segment or mapping covers (often a damaged pointer).
    Unmapped,
    /// Mapped memory whose bytes are not in the core.
    NotDumped,
    /// Memory in the part of a truncated core that is missing.
    Truncated,
    /// Live process memory that could not be read.
    Unreadable,
    /// A read whose address or length is absurd.
    OutOfRange,
    /// A compact encoding (listpack, ziplist, intset, LZF...) that does not validate.
    BadEncoding,
    /// Fields that contradict each other or Redis's invariants.
    Inconsistent,
    /// A pointer chain that loops.
    Cycle,
    /// Decoding took longer than `--timeout`.
    Timeout,
    /// A value this tool does not recover.
    Unsupported,
    /// Recovered, but the output's target refused it (a server's reply to RESTORE).
    Refused,
}

impl Fault {
    /// Its kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Memory(m) => match m {
                MemError::Unmapped(_) => FaultKind::Unmapped,
                MemError::NotDumped(_) => FaultKind::NotDumped,
                MemError::Truncated(_) => FaultKind::Truncated,
                MemError::Unreadable(_) | MemError::ReadFailed { .. } => FaultKind::Unreadable,
                MemError::OutOfRange { .. } => FaultKind::OutOfRange,
            },
            Fault::Decode { .. } => FaultKind::BadEncoding,
            Fault::Inconsistent(_) => FaultKind::Inconsistent,
            Fault::Cycle(_) => FaultKind::Cycle,
            Fault::Timeout(_) => FaultKind::Timeout,
            Fault::Unsupported(_) => FaultKind::Unsupported,
        }
    }

    /// Shorthand for an [`Fault::Inconsistent`] fault.
    pub fn bad(msg: impl Into<String>) -> Fault {
        Fault::Inconsistent(msg.into())
    }

    /// Wrap a decoder error with what was being decoded.
    pub fn decode(what: &'static str) -> impl FnOnce(DecodeError) -> Fault {
        move |source| Fault::Decode { what, source }
    }
}
