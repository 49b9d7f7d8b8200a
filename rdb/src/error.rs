//! Errors of the RDB writer.

/// What can go wrong while writing an RDB file.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    /// The underlying writer failed.
    #[error("I/O error while writing RDB: {0}")]
    Io(#[from] std::io::Error),
    /// The requested RDB version is outside what this crate writes.
    #[error("unsupported RDB version {0} (supported: 1..={max})", max = crate::consts::RDB_VERSION_MAX)]
    BadVersion(u32),
    /// Something was written that the target RDB version cannot express,
    /// so a loader of that version would reject the file.
    #[error("{what} needs RDB version {needed} or later, but the file is version {version}")]
    TooNew {
        /// The opcode or object type at fault.
        what: &'static str,
        /// The first RDB version that has it.
        needed: u32,
        /// The version being written.
        version: u32,
    },
    /// A value outside the range the target's loader accepts; writing it would make the
    /// whole file unloadable.
    #[error("{what} {value} is out of range (a loader accepts {min}..={max})")]
    OutOfRange {
        /// The setting at fault.
        what: &'static str,
        /// Its value.
        value: u64,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
}
