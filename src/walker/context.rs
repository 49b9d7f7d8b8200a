//! `WalkContext`: what every reader of one walk shares — the core, the build's layout, its
//! sds format, the user's options and the per-key time budget — so the dict, hashtable,
//! object and stream readers borrow one context instead of re-pairing `(space, layout)`.

use super::census::ObjectCensus;
use crate::walker::fault::FaultKind;
use std::cell::Cell;
use std::time::{Duration, Instant};

use super::dict::DictWalker;
use super::fault::Fault;
use super::guard::ChainGuard;
use super::hashtable::HashtableWalker;
use super::object::KindTable;
use super::sds::SdsFormat;
use super::WalkOptions;
use crate::core::AddressSpace;
use crate::profile::layout::Features;
use crate::profile::Layout;

/// Steps between two clock reads of a running budget.
const CLOCK_EVERY: u32 = 1024;

/// The time a single key may take to decode (`--timeout`), checked by every chain walk.
///
/// Explicit rather than thread-local: whoever decodes a key opens [`Budget::key`], and
/// every walker reached from the same context sees it.
#[derive(Debug)]
pub struct Budget {
    limit: Option<Duration>,
    end: Cell<Option<Instant>>,
    ticks: Cell<u32>,
    /// The walk's consumer stopped: every check fails until [`Budget::resume`].
    abandoned: Cell<bool>,
}

/// While alive, the key's budget runs; dropping it stops the clock.
pub struct KeyBudget<'b>(&'b Budget);

impl Drop for KeyBudget<'_> {
    fn drop(&mut self) {
        self.0.end.set(None);
    }
}

impl Budget {
    /// A budget of `limit` per key (`None`: unlimited).
    pub fn new(limit: Option<Duration>) -> Self {
        Budget {
            limit,
            end: Cell::new(None),
            ticks: Cell::new(0),
            abandoned: Cell::new(false),
        }
    }

    /// Start the clock for one key.
    pub fn key(&self) -> KeyBudget<'_> {
        self.end.set(self.limit.map(|d| Instant::now() + d));
        self.ticks.set(0);
        KeyBudget(self)
    }

    /// Makes every check fail: nothing the walk finds from now on is wanted.
    pub fn abandon(&self) {
        self.abandoned.set(true);
    }

    /// Undoes [`Budget::abandon`].
    pub fn resume(&self) {
        self.abandoned.set(false);
    }

    /// An error once the running key's time is up, or the walk was abandoned.
    pub fn check(&self) -> Result<(), Fault> {
        if self.abandoned.get() {
            return Err(Fault::of(
                FaultKind::Abandoned,
                "walk abandoned: its output stopped",
            ));
        }
        let (Some(end), Some(limit)) = (self.end.get(), self.limit) else {
            return Ok(());
        };
        let n = self.ticks.get().wrapping_add(1);
        self.ticks.set(n);
        if n.is_multiple_of(CLOCK_EVERY) && Instant::now() > end {
            return Err(Fault::Timeout(limit.as_millis() as u64));
        }
        Ok(())
    }
}

/// One walk's shared state.
pub struct WalkContext<'s, 'a> {
    /// The process memory.
    pub space: &'s AddressSpace<'a>,
    /// The build's resolved layout.
    pub layout: &'s Layout,
    /// The build's sds header format.
    pub sds: SdsFormat,
    /// How damage is treated.
    pub options: WalkOptions,
    /// The per-key time budget.
    pub budget: Budget,
    /// How many places hold each string object, where collections keep their elements as
    /// objects (2.8 to 3.2) and the walk has counted them.
    pub census: Option<&'s ObjectCensus>,
    /// The build's type and encoding numbers, resolved once for every object decoder.
    pub(crate) kinds: KindTable,
}

impl<'s, 'a> WalkContext<'s, 'a> {
    /// A context over `space` with `layout` and `options`.
    pub fn new(space: &'s AddressSpace<'a>, layout: &'s Layout, options: WalkOptions) -> Self {
        WalkContext {
            space,
            layout,
            sds: SdsFormat::of(layout),
            options,
            budget: Budget::new(options.key_timeout),
            census: None,
            kinds: KindTable::new(layout),
        }
    }

    /// The same context, checking string objects against `census`.
    pub fn with_census(self, census: Option<&'s ObjectCensus>) -> Self {
        WalkContext { census, ..self }
    }

    /// The build's structural features.
    pub fn features(&self) -> &Features {
        &self.layout.features
    }

    /// A loop guard for a chain of `what` of at most `max_steps` links.
    pub fn guard(&self, what: &'static str, max_steps: u64) -> ChainGuard<'_> {
        ChainGuard::new(what, max_steps, &self.budget)
    }

    /// A dict reader (without the bucket check).
    pub fn dicts(&self) -> DictWalker<'_, 'a> {
        DictWalker::new(self)
    }

    /// A hashtable reader (open addressing, 7-slot buckets).
    pub fn hashtables(&self) -> HashtableWalker<'_, 'a> {
        HashtableWalker::new(self)
    }
}
