//! Progress of long work (decompressing a core, walking the keys, bundling), as the library
//! reports it. The library never draws anything: the binary passes a [`Progress`] that draws
//! bars on a terminal (`src/cli/progress.rs`); a library user passes its own, or none.

use std::io::Read;
use std::sync::Arc;

/// What a task counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes read or written.
    Bytes,
    /// Keys walked.
    Keys,
}

/// Where progress goes.
pub trait Progress: Send + Sync {
    /// A task named `what` starts, `total` `unit`s long. It ends when the returned task is
    /// dropped.
    fn start(&self, what: &str, total: u64, unit: Unit) -> Box<dyn Task>;
}

/// One running task.
pub trait Task: Send {
    /// `n` more units are done.
    fn advance(&mut self, n: u64);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

struct SilentTask;

impl Task for SilentTask {
    fn advance(&mut self, _n: u64) {}
}

impl Progress for Silent {
    fn start(&self, _what: &str, _total: u64, _unit: Unit) -> Box<dyn Task> {
        Box::new(SilentTask)
    }
}

/// A shared [`Progress`], [`Silent`] unless given one: what options carry.
#[derive(Clone)]
pub struct ProgressHandle(Arc<dyn Progress>);

impl ProgressHandle {
    /// Report to `p`.
    pub fn new(p: impl Progress + 'static) -> Self {
        ProgressHandle(Arc::new(p))
    }

    /// Start a task (see [`Progress::start`]).
    pub fn start(&self, what: &str, total: u64, unit: Unit) -> Box<dyn Task> {
        self.0.start(what, total, unit)
    }
}

impl Default for ProgressHandle {
    fn default() -> Self {
        ProgressHandle::new(Silent)
    }
}

impl std::fmt::Debug for ProgressHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHandle")
    }
}

/// A reader that advances a task by every byte read through it.
pub struct Counted<R> {
    inner: R,
    task: Box<dyn Task>,
}

impl<R: Read> Counted<R> {
    /// Count `inner`'s bytes into `task`.
    pub fn new(inner: R, task: Box<dyn Task>) -> Self {
        Counted { inner, task }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Tally(Arc<AtomicU64>);

    struct TallyTask(Arc<AtomicU64>);

    impl Task for TallyTask {
        fn advance(&mut self, n: u64) {
            self.0.fetch_add(n, Ordering::SeqCst);
        }
    }

    impl Progress for Tally {
        fn start(&self, _what: &str, _total: u64, _unit: Unit) -> Box<dyn Task> {
            Box::new(TallyTask(Arc::clone(&self.0)))
        }
    }

    #[test]
    fn a_counted_reader_reports_every_byte() {
        let seen = Arc::new(AtomicU64::new(0));
        let p = ProgressHandle::new(Tally(Arc::clone(&seen)));
        let mut r = Counted::new(&[7u8; 10_000][..], p.start("t", 10_000, Unit::Bytes));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!((out.len(), seen.load(Ordering::SeqCst)), (10_000, 10_000));
        // The default reports nothing and costs nothing.
        ProgressHandle::default()
            .start("x", 1, Unit::Keys)
            .advance(1);
    }
}
