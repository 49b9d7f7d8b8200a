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
    /// A structure whose fields contradict each other or Redis's invariants: `kind` says
    /// how, `detail` where and with what values.
    #[error("{detail}")]
    Inconsistent {
        /// How it is inconsistent.
        kind: FaultKind,
        /// Where, and the values found.
        detail: String,
    },
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
    /// A NULL (or zeroed) pointer or header where Redis always keeps one.
    NullPointer,
    /// Bytes that would run outside their allocation or the dumped memory.
    OutsideAllocation,
    /// A header field (type, encoding, flags, tag, size exponent) with a value Redis never
    /// writes.
    BadHeader,
    /// A length or size that cannot be (odd pair counts, above its allocation, overflows).
    BadLength,
    /// A value that cannot be (a NaN score, a negative expire time).
    BadValue,
    /// A structure holding more or fewer entries than its own counter says.
    CounterMismatch,
    /// An empty collection, which Redis never keeps.
    EmptyValue,
    /// An entry found where its hash does not place it (another bucket, slot or table): a
    /// damaged link led there.
    MisplacedEntry,
    /// An entry reached a second time through another chain.
    Revisit,
    /// A member, field or value held twice.
    Duplicate,
    /// The key's TTL cannot be known: the expires dict is damaged.
    ExpiresDamaged,
    /// A field the build's profile does not place inside its struct.
    ProfileGap,
    /// The walk stopped: its output failed.
    Abandoned,
    /// Any other contradiction.
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

/// Addresses below this are the zero page, which Linux never maps (`vm.mmap_min_addr` is
/// at least 4096).
const ZERO_PAGE: u64 = 4096;

impl Fault {
    /// Its kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Memory(m) => match m {
                // The zero page is never mapped: a read there followed a NULL pointer
                // (plus a field's offset), which says more than "unmapped".
                MemError::Unmapped(at) if *at < ZERO_PAGE => FaultKind::NullPointer,
                MemError::Unmapped(_) => FaultKind::Unmapped,
                MemError::NotDumped(_) => FaultKind::NotDumped,
                MemError::Truncated(_) => FaultKind::Truncated,
                MemError::Unreadable(_) | MemError::ReadFailed { .. } => FaultKind::Unreadable,
                MemError::OutOfRange { .. } => FaultKind::OutOfRange,
            },
            Fault::Decode { .. } => FaultKind::BadEncoding,
            Fault::Inconsistent { kind, .. } => *kind,
            Fault::Cycle(_) => FaultKind::Cycle,
            Fault::Timeout(_) => FaultKind::Timeout,
            Fault::Unsupported(_) => FaultKind::Unsupported,
        }
    }

    /// An [`Fault::Inconsistent`] fault of `kind`.
    pub fn of(kind: FaultKind, detail: impl Into<String>) -> Fault {
        Fault::Inconsistent {
            kind,
            detail: detail.into(),
        }
    }

    /// An [`Fault::Inconsistent`] fault of no more precise kind.
    pub fn bad(detail: impl Into<String>) -> Fault {
        Fault::of(FaultKind::Inconsistent, detail)
    }

    /// Wrap a decoder error with what was being decoded.
    pub fn decode(what: &'static str) -> impl FnOnce(DecodeError) -> Fault {
        move |source| Fault::Decode { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walker::dict::{misplaced_fault, revisit_fault};

    /// Each fault says its kind; the message is the detail alone, as before kinds.
    #[test]
    fn faults_say_their_kind() {
        assert_eq!(misplaced_fault(1, 2).kind(), FaultKind::MisplacedEntry);
        assert_eq!(revisit_fault("chain", 8, false).kind(), FaultKind::Revisit);
        assert_eq!(revisit_fault("chain", 8, true).kind(), FaultKind::Cycle);
        assert_eq!(
            Fault::Memory(MemError::Truncated(1)).kind(),
            FaultKind::Truncated
        );
        assert_eq!(Fault::Timeout(5).kind(), FaultKind::Timeout);
        // A read through a NULL pointer, at a field's offset, or anywhere else unmapped.
        for (at, kind) in [
            (0, FaultKind::NullPointer),
            (0x18, FaultKind::NullPointer),
            (0xfff, FaultKind::NullPointer),
            (0x1000, FaultKind::Unmapped),
            (0x31_0000, FaultKind::Unmapped),
        ] {
            assert_eq!(
                Fault::Memory(MemError::Unmapped(at)).kind(),
                kind,
                "{at:#x}"
            );
        }
        let f = Fault::of(FaultKind::BadValue, "zset score is NaN");
        assert_eq!(f.kind(), FaultKind::BadValue);
        assert_eq!(f.to_string(), "zset score is NaN");
        assert_eq!(Fault::bad("other").kind(), FaultKind::Inconsistent);
    }
}
