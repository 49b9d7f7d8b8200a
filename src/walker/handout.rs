//! `Handout`: how a keys-table walk hands its entries to the key decoder.
//!
//! A keyspace walk is two jobs in a row per entry: following the chains (bucket heads,
//! entries, the bucket check on each key's name, entries and names handed out once) and
//! decoding the entry's key and value into what the sinks write. Both chase pointers
//! through the core. When a second core is free and the core is a mapped file, the chains
//! are followed on a second thread, over its own view of the core, and handed over in
//! batches through a bounded queue; the decoder takes them on the calling thread in exactly
//! the order a single thread would, so outputs, reports and faults are the same. Memory in
//! flight is bounded by the queue ([`QUEUE`] batches of [`BATCH`] entries).

use std::ops::ControlFlow;
use std::sync::mpsc::{sync_channel, SyncSender};

use super::context::{Budget, WalkContext};
use super::dict::WalkFaults;
use crate::core::AddressSpace;

/// Entries per batch: big enough that the queue costs little per entry, small enough
/// that the decoder starts at once and the batches in flight stay in the cache.
const BATCH: usize = 512;
/// Batches in flight.
const QUEUE: usize = 8;
/// How far ahead in a batch the taker starts loading an entry's key and value.
const PREFETCH_AHEAD: usize = 16;

/// What a table walk hands out, in order.
#[derive(Debug)]
pub(crate) enum Handed {
    /// An entry: its key and value words (the value word is 0 for tables of objects).
    Entry(u64, u64),
    /// The end of one table, with the faults met in its chains.
    TableEnd(Box<WalkFaults>),
}

/// The walk's side of the hand-over.
pub(crate) struct Handout<'h> {
    to: To<'h>,
    /// Set once the taker stops.
    stopped: bool,
    /// The walk's budget, abandoned once the taker stops: the chain walkers check it at
    /// every bucket and link, so the walk gives up at once.
    budget: &'h Budget,
}

enum To<'h> {
    /// The same thread: straight to the taker.
    Direct(&'h mut dyn FnMut(Handed) -> ControlFlow<()>),
    /// Another thread, in batches.
    Queue {
        tx: SyncSender<Vec<Handed>>,
        batch: Vec<Handed>,
    },
}

impl Handout<'_> {
    /// Hands out one entry.
    pub(crate) fn entry(&mut self, key: u64, value: u64) {
        self.give(Handed::Entry(key, value));
    }

    /// Ends a table, handing out its faults.
    pub(crate) fn table_end(&mut self, faults: WalkFaults) {
        self.give(Handed::TableEnd(Box::new(faults)));
    }

    /// Whether the taker stopped: the walk has nothing more to do.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    fn give(&mut self, item: Handed) {
        if self.stopped {
            return;
        }
        match &mut self.to {
            To::Direct(take) => self.stopped = take(item).is_break(),
            To::Queue { tx, batch } => {
                batch.push(item);
                if batch.len() >= BATCH {
                    let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
                    self.stopped = tx.send(full).is_err();
                }
            }
        }
        if self.stopped {
            self.budget.abandon();
        }
    }

    fn flush(&mut self) {
        if let To::Queue { tx, batch } = &mut self.to {
            if !batch.is_empty() && !self.stopped {
                let _ = tx.send(std::mem::take(batch));
            }
        }
    }
}

/// Runs `walk` and gives everything it hands out to `take`, in order, until `take` breaks.
///
/// With `threads > 1` and a core that is a mapped file, `walk` runs on a second thread
/// over its own view of the core ([`crate::core::AddressSpace::fork`]) with its own
/// context; otherwise on this thread with `ctx`. Either way `take` runs on this thread.
/// Once `take` breaks, nothing more is taken and the walk's budget is abandoned, so its
/// chain walkers give up at their next check (a walk of its own can ask
/// [`Handout::stopped`]).
pub(crate) fn run<'a>(
    ctx: &WalkContext<'_, 'a>,
    threads: usize,
    walk: impl FnOnce(&WalkContext<'_, 'a>, &mut Handout<'_>) + Send,
    mut take: impl FnMut(Handed) -> ControlFlow<()>,
) {
    let mut walk = Some(walk);
    if threads > 1 {
        if let Some(space) = ctx.space.fork() {
            if on_two_threads(ctx, space, &mut walk, &mut take) {
                return;
            }
        }
    }
    // One thread (or no second thread to be had): the walk runs here.
    if let Some(walk) = walk {
        let mut out = Handout {
            to: To::Direct(&mut take),
            stopped: false,
            budget: &ctx.budget,
        };
        walk(ctx, &mut out);
        ctx.budget.resume();
    }
}

/// [`run`] with the walk on a second thread over `space`; false (and `walk` untouched)
/// when no thread could be started.
fn on_two_threads<'a, W>(
    ctx: &WalkContext<'_, 'a>,
    space: AddressSpace<'a>,
    walk: &mut Option<W>,
    take: &mut impl FnMut(Handed) -> ControlFlow<()>,
) -> bool
where
    W: FnOnce(&WalkContext<'_, 'a>, &mut Handout<'_>) + Send,
{
    let (layout, options) = (ctx.layout, ctx.options);
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel(QUEUE);
        let walker = move |walk: &mut Option<W>| {
            let own = WalkContext::new(&space, layout, options);
            let mut out = Handout {
                to: To::Queue {
                    tx,
                    batch: Vec::with_capacity(BATCH),
                },
                stopped: false,
                budget: &own.budget,
            };
            if let Some(walk) = walk.take() {
                walk(&own, &mut out);
            }
            out.flush();
        };
        // Named so that a profile or `top -H` tells the two apart. The walk is lent, so
        // that it is still here to run on this thread if no thread can be started.
        let spawned = std::thread::Builder::new()
            .name("walk-chains".into())
            .spawn_scoped(s, move || walker(walk));
        if spawned.is_err() {
            return false;
        }
        // Dropping the receiver on a break makes the walker's next send fail: it stops.
        for mut batch in rx {
            for i in 0..batch.len() {
                // The walker's loads warmed the other core's cache, not this one's.
                if let Some(Handed::Entry(key, value)) = batch.get(i + PREFETCH_AHEAD) {
                    ctx.space.prefetch(key.wrapping_sub(1));
                    if *value != 0 {
                        ctx.space.prefetch(*value);
                    }
                }
                let Some(slot) = batch.get_mut(i) else { break };
                let item = std::mem::replace(slot, Handed::Entry(0, 0));
                if take(item).is_break() {
                    return true;
                }
            }
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{self, Layout};
    use crate::walker::WalkOptions;

    fn layout() -> Layout {
        Layout::resolve(&profile::load("7.0.15-debian").unwrap()).unwrap()
    }

    /// One thread or two, the taker sees the same items in the same order, and a taker
    /// that breaks sees nothing after.
    #[test]
    fn both_ways_hand_out_in_order_and_stop() {
        let bytes = vec![0u8; 64];
        let space = crate::core::address_space::single_segment(&bytes, 0x1000);
        let layout = layout();
        let ctx = WalkContext::new(&space, &layout, WalkOptions::default());
        for threads in [1, 2] {
            let mut got = Vec::new();
            run(
                &ctx,
                threads,
                |_, out| {
                    for t in 0..3u64 {
                        for k in 0..2000u64 {
                            out.entry(t, k);
                        }
                        out.table_end(WalkFaults::default());
                    }
                },
                |item| {
                    got.push(match item {
                        Handed::Entry(t, k) => (t, k),
                        Handed::TableEnd(_) => (u64::MAX, 0),
                    });
                    ControlFlow::Continue(())
                },
            );
            let want: Vec<(u64, u64)> = (0..3u64)
                .flat_map(|t| (0..2000u64).map(move |k| (t, k)).chain([(u64::MAX, 0)]))
                .collect();
            assert_eq!(got, want, "threads {threads}");

            let mut taken = 0u64;
            let mut walked_on = 0u64;
            run(
                &ctx,
                threads,
                |_, out| {
                    for k in 0..100_000u64 {
                        if out.stopped() {
                            break;
                        }
                        walked_on = k;
                        out.entry(0, k);
                    }
                },
                |item| {
                    assert!(matches!(item, Handed::Entry(0, k) if k == taken));
                    taken += 1;
                    if taken == 700 {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            );
            assert_eq!(taken, 700, "threads {threads}");
            // The walk noticed: it stopped within the queue's reach, not at the end.
            assert!(
                walked_on < 700 + (QUEUE as u64 + 2) * BATCH as u64,
                "threads {threads}: walked on to {walked_on}"
            );
        }
    }
}
