//! The consumer of a walk that feeds an output and the report: each key goes to the sink,
//! and what became of it (written whole, written in part, refused) to the report, which
//! also takes every loss, fault and warning. The walker knows neither (see
//! [`crate::walker::events`]).

use crate::report::ReportBuilder;
use crate::sink::{Sink, SinkError, Written};
use crate::value::{Kind, RecoveredKey};
use crate::walker::dict::WalkFaults;
use crate::walker::events::WalkEvents;
use crate::walker::{DbInfo, Fault};

/// A walk's events, written to `sink` and recorded in `report`.
pub struct Recording<'r> {
    sink: &'r mut dyn Sink,
    report: &'r mut ReportBuilder,
}

impl<'r> Recording<'r> {
    /// Feed `sink` and `report`.
    pub fn new(sink: &'r mut dyn Sink, report: &'r mut ReportBuilder) -> Self {
        Recording { sink, report }
    }
}

impl WalkEvents for Recording<'_> {
    fn db_seen(&mut self, db: &DbInfo, include_importing: bool) {
        self.report.db_seen(db, include_importing);
    }

    fn db_unreadable(&mut self, db: u32, fault: &Fault) {
        self.report.db_unreadable(db, fault);
    }

    fn begin_db(&mut self, db: u32, keys: u64, expires: u64) -> Result<(), SinkError> {
        self.sink.begin_db(db, keys, expires)
    }

    fn key(&mut self, rk: &RecoveredKey<'_>, partial: Option<Fault>) -> Result<(), SinkError> {
        match self.sink.key(rk) {
            Ok(written) => {
                self.report
                    .recovered(rk.db, rk.kind, rk.expire_ms.is_some());
                let dropped = match written {
                    Written::Whole => None,
                    Written::Without(reason) => Some(Fault::Unsupported(reason)),
                };
                if let Some(f) = partial.or(dropped) {
                    self.report.partial(rk.db, &rk.key, rk.kind, &f);
                }
                Ok(())
            }
            // This key cannot be written in this output's format: lost, the walk goes on.
            Err(SinkError::Unwritable { reason }) => {
                let f = Fault::Unsupported(reason);
                self.report.lost(rk.db, Some(&rk.key), Some(rk.kind), &f);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn reads_values(&self) -> bool {
        self.sink.reads_values()
    }

    fn lost(&mut self, db: u32, key: Option<&[u8]>, kind: Option<Kind>, fault: &Fault) {
        self.report.lost(db, key, kind, fault);
    }

    fn chain_faults(&mut self, db: u32, faults: &WalkFaults) {
        self.report.chain_faults(db, faults);
    }

    fn warning(&mut self, message: String) {
        self.report.warning(message);
    }
}
