//! Errors of the RDB writer.

/// What can go wrong while writing an RDB file.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    /// The underlying writer failed.
    #[error("I/O error while writing RDB: {0}")]
    Io(#[from] std::io::Error),
    /// The requested RDB version does not exist.
    #[error("RDB version {0} does not exist (the versions are {versions})", versions = crate::consts::describe_versions(crate::consts::is_known_version))]
    BadVersion(u32),
    /// Something was written that the target RDB version cannot express,
    /// so a loader of that version would reject the file.
    #[error("{what} is not in RDB version {version} (only in RDB {holders})")]
    NotInVersion {
        /// The opcode or object type at fault.
        what: String,
        /// The version being written.
        version: u32,
        /// The RDB versions that have it, as text ("10 to 13, 80").
        holders: String,
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
    /// A DUMP payload was asked of a record without an object type and key.
    #[error("the record has no object type and key, so it has no value to make a DUMP payload of")]
    NoValue,
}
