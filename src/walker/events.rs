//! The one seam between the walker and whatever consumes a walk.
//!
//! The walker reports everything it finds, in order, to one [`WalkEvents`]: each database
//! it reads, each key it recovers (with what it knowingly left out), each key it loses and
//! why, chain faults and warnings. It knows nothing of what is done with them: an output
//! writes the keys, the report counts and lists them ([`crate::recording::Recording`]
//! feeds both), `--dry-run` only counts.

use super::dict::WalkFaults;
use super::{DbInfo, Fault};
use crate::sink::SinkError;
use crate::value::Kind;
use crate::value::RecoveredKey;

/// What a walk tells its consumer.
pub trait WalkEvents {
    /// A database's tables were read (before any of its keys).
    fn db_seen(&mut self, db: &DbInfo, include_importing: bool);
    /// A database's keys tables could not be read: none of its keys can be walked.
    fn db_unreadable(&mut self, db: u32, fault: &Fault);
    /// The keys of database `db` start; `keys` and `expires` are size hints.
    fn begin_db(&mut self, db: u32, keys: u64, expires: u64) -> Result<(), SinkError>;
    /// One key, decoded and validated. `partial` says what of it is knowingly left out.
    /// An error stops the walk (an output that cannot go on).
    fn key(&mut self, key: &RecoveredKey<'_>, partial: Option<Fault>) -> Result<(), SinkError>;
    /// A key that cannot be recovered, named when its name could be read.
    fn lost(&mut self, db: u32, key: Option<&[u8]>, kind: Option<Kind>, fault: &Fault);
    /// The faults met walking one table's chains.
    fn chain_faults(&mut self, db: u32, faults: &WalkFaults);
    /// Anything else worth saying.
    fn warning(&mut self, message: String);
    /// Whether its output reads the keys' names and values (see
    /// [`crate::sink::Sink::reads_values`]).
    fn reads_values(&self) -> bool {
        true
    }
}
