//! `Handout`: how a keys-table walk hands its entries to the key decoder.
//!
//! A keyspace walk is two jobs in a row per entry: following the chains (bucket heads,
//! entries, the bucket check on each key's name, entries and names handed out once) and
//! decoding the entry's key and value into what the sinks write. Both chase pointers
//! through the core. When a second core is free and the core is a mapped file, the chains
//! are followed on a second thread, over its own view of the core, and handed over in
//! batches through a bounded queue; the decoder takes them on the calling thread in exactly
//! the order a single thread would, so outputs, reports and faults are the same. Memory in
//! flight is bounded by the queue ([`QUEUE`] batches of at most [`BATCH`] entries).
//!
//! Batches are sized by what the taker makes of them: about [`BATCH_TIME`] of its work
//! each (starting from [`FIRST_BATCH`] entries). A keyspace of a few thousand big
//! collections is then spread over many small batches, the queue fills, and the walk's
//! thread decodes its share; with fixed batches of 512 the whole walk fitted in the queue
//! and the taker decoded every value alone.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use super::context::{Budget, WalkContext};
use super::dict::WalkFaults;
use super::object::ObjectDecoder;
use crate::core::AddressSpace;

/// Most entries per batch: big enough that the queue costs little per entry, small enough
/// that the decoder starts at once and the batches in flight stay in the cache.
const BATCH: usize = 512;
/// Entries of the first batches, before the taker has timed one.
const FIRST_BATCH: usize = 16;
/// About how long the taker should spend on one batch: a batch of small keys (well under
/// 2 µs each) stays at [`BATCH`] entries; one of big collections shrinks, down to one
/// entry.
const BATCH_TIME: Duration = Duration::from_millis(1);
/// Batches in flight.
const QUEUE: usize = 8;
/// How far ahead in a batch the taker starts loading an entry's key and value.
const PREFETCH_AHEAD: usize = 16;
/// How far ahead it loads a value's payload, and the payload's next two levels (a
/// quicklist's head node, then its listpack; a dict's buckets, then their entries): each
/// stage reads what the one before asked for.
const PAYLOAD_AHEAD: usize = 8;
const CHASE_AHEAD: usize = 5;
const CHASE_AGAIN_AHEAD: usize = 2;
/// Parts of the values one batch may hold decoded (the rest of it is left to the taker).
const DECODED_PARTS: usize = 16_384;

/// What a table walk hands out, in order.
#[derive(Debug)]
pub(crate) enum Handed<T> {
    /// An entry: its key and value words (the value word is 0 for tables of objects).
    Entry(u64, u64),
    /// An entry the walk's thread decoded itself (the taker was behind).
    Decoded(T),
    /// The end of one table, with the faults met in its chains.
    TableEnd(Box<WalkFaults>),
}

/// What a decoded entry holds in memory, in separately held parts: the walk's thread stops
/// decoding a batch past [`DECODED_PARTS`], so batches in flight stay small.
pub(crate) trait Parts {
    /// About how many parts (strings, elements) it holds.
    fn parts(&self) -> usize;

    /// Starts loading the first bytes of the core its output reads (the taker writes an
    /// entry the walk's thread decoded from bytes that thread's core loaded, not its own).
    fn prefetch(&self) {}
}

/// The walk's side of the hand-over.
pub(crate) struct Handout<'h, T> {
    to: To<'h, T>,
    /// Set once the taker stops.
    stopped: bool,
    /// The walk's budget, abandoned once the taker stops: the chain walkers check it at
    /// every bucket and link, so the walk gives up at once.
    budget: &'h Budget,
}

enum To<'h, T> {
    /// The same thread: straight to the taker.
    Direct(&'h mut dyn FnMut(Handed<T>) -> ControlFlow<()>),
    /// Another thread, in batches of up to `pace` entries (set by the taker).
    Queue {
        tx: SyncSender<Vec<Handed<T>>>,
        batch: Vec<Handed<T>>,
        pace: &'h AtomicUsize,
    },
}

impl<T: Parts> Handout<'_, T> {
    /// Hands out one entry. `decode` is how the walk's thread decodes it when it
    /// finds the taker behind (the queue full): the taker then only has to tell it.
    pub(crate) fn entry(&mut self, key: u64, value: u64, decode: &mut dyn FnMut(u64, u64) -> T) {
        self.give(Handed::Entry(key, value), Some(decode));
    }

    /// Ends a table, handing out its faults.
    pub(crate) fn table_end(&mut self, faults: WalkFaults) {
        self.give(Handed::TableEnd(Box::new(faults)), None);
    }

    /// Whether the taker stopped: the walk has nothing more to do.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    fn give(&mut self, item: Handed<T>, decode: Option<&mut dyn FnMut(u64, u64) -> T>) {
        if self.stopped {
            return;
        }
        match &mut self.to {
            To::Direct(take) => self.stopped = take(item).is_break(),
            To::Queue { tx, batch, pace } => {
                batch.push(item);
                if batch.len() >= pace.load(Ordering::Relaxed) {
                    let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
                    self.stopped = match tx.try_send(full) {
                        Ok(()) => false,
                        Err(TrySendError::Disconnected(_)) => true,
                        // The taker is behind: decode what the batch may hold, instead of
                        // waiting, then wait.
                        Err(TrySendError::Full(mut full)) => {
                            if let Some(decode) = decode {
                                decode_some(&mut full, decode);
                            }
                            tx.send(full).is_err()
                        }
                    };
                }
            }
        }
        if self.stopped {
            self.budget.abandon();
        }
    }

    fn flush(&mut self) {
        if let To::Queue { tx, batch, .. } = &mut self.to {
            if !batch.is_empty() && !self.stopped {
                let _ = tx.send(std::mem::take(batch));
            }
        }
    }
}

/// Decodes the entries of `batch` in order until the decoded values hold
/// [`DECODED_PARTS`] parts; the rest stay entries, for the taker.
fn decode_some<T: Parts>(batch: &mut [Handed<T>], decode: &mut dyn FnMut(u64, u64) -> T) {
    let mut parts = 0;
    for item in batch.iter_mut() {
        if parts >= DECODED_PARTS {
            break;
        }
        if let Handed::Entry(key, value) = *item {
            let decoded = decode(key, value);
            parts += decoded.parts();
            *item = Handed::Decoded(decoded);
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
/// [`Handout::stopped`]). `taker_reads` says whether `take` reads the bytes of the core
/// the entries hold (an output does, the dry run's counter does not): the entries the
/// walk's thread decoded are then loaded ahead for it.
pub(crate) fn run<'a, T: Parts + Send>(
    ctx: &WalkContext<'_, 'a>,
    threads: usize,
    taker_reads: bool,
    walk: impl FnOnce(&WalkContext<'_, 'a>, &mut Handout<'_, T>) + Send,
    mut take: impl FnMut(Handed<T>) -> ControlFlow<()>,
) {
    let mut walk = Some(walk);
    if threads > 1 {
        if let Some(space) = ctx.space.fork() {
            if on_two_threads(ctx, space, &mut walk, &mut take, taker_reads) {
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
fn on_two_threads<'a, T: Parts + Send, W>(
    ctx: &WalkContext<'_, 'a>,
    space: AddressSpace<'a>,
    walk: &mut Option<W>,
    take: &mut impl FnMut(Handed<T>) -> ControlFlow<()>,
    taker_reads: bool,
) -> bool
where
    W: FnOnce(&WalkContext<'_, 'a>, &mut Handout<'_, T>) + Send,
{
    let (layout, options, census) = (ctx.layout, ctx.options, ctx.census);
    let objects = ObjectDecoder::new(ctx);
    let pace = AtomicUsize::new(FIRST_BATCH);
    let pace = &pace;
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel(QUEUE);
        let walker = move |walk: &mut Option<W>| {
            let own = WalkContext::new(&space, layout, options).with_census(census);
            let mut out = Handout {
                to: To::Queue {
                    tx,
                    batch: Vec::with_capacity(BATCH),
                    pace,
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
        // Values with payloads found among those probed in the batch before: a keyspace of
        // small strings and integers has none, and is then probed only now and then.
        let (mut probed, mut found) = (1usize, 1usize);
        for mut batch in rx {
            // Payloads being loaded ahead a level at a time, by position in the batch (mod
            // PREFETCH_AHEAD).
            let mut chasing = [None; PREFETCH_AHEAD];
            let probe_every = if found * 16 < probed { 16 } else { 1 };
            (probed, found) = (0, 0);
            let started = Instant::now();
            let mut raw = 0u128;
            for i in 0..batch.len() {
                // The walker's loads warmed the other core's cache, not this one's.
                if let Some(Handed::Entry(key, value)) = batch.get(i + PREFETCH_AHEAD) {
                    if *value == 0 {
                        // An object embedding its key (and often its value): a header, key
                        // and value of about 64 bytes.
                        ctx.space.prefetch_span(*key, 64);
                    } else {
                        // The sds header sits just before the key's bytes.
                        ctx.space.prefetch(key.wrapping_sub(1));
                        ctx.space.prefetch(*value);
                        if let Some(census) = ctx.census {
                            census.prefetch(*value);
                        }
                    }
                }
                let at = |n: usize| (i + n) % PREFETCH_AHEAD;
                match batch.get(i + PAYLOAD_AHEAD) {
                    Some(Handed::Decoded(decoded)) if taker_reads => decoded.prefetch(),
                    Some(Handed::Entry(key, value)) if i % probe_every == 0 => {
                        let obj = if *value == 0 { *key } else { *value };
                        let payload = objects.payload_ahead(obj);
                        probed += 1;
                        found += usize::from(payload.is_some());
                        if let Some(slot) = chasing.get_mut(at(PAYLOAD_AHEAD)) {
                            *slot = payload.flatten();
                        }
                    }
                    _ => {}
                }
                for ahead in [CHASE_AHEAD, CHASE_AGAIN_AHEAD] {
                    if let Some(slot) = chasing.get_mut(at(ahead)) {
                        if let Some(chase) = *slot {
                            *slot = objects.chase_ahead(chase);
                        }
                    }
                }
                let Some(slot) = batch.get_mut(i) else { break };
                let item = std::mem::replace(slot, Handed::Entry(0, 0));
                raw += u128::from(matches!(item, Handed::Entry(..)));
                if take(item).is_break() {
                    return true;
                }
            }
            // The entries that fit in BATCH_TIME at the pace of this batch's undecoded ones.
            if raw > 0 {
                let spent = started.elapsed().as_nanos().max(1);
                let fit = BATCH_TIME.as_nanos().saturating_mul(raw) / spent;
                pace.store(
                    usize::try_from(fit).unwrap_or(BATCH).clamp(1, BATCH),
                    Ordering::Relaxed,
                );
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

    /// A decoded entry of the tests: the entry's words, folded.
    #[derive(Debug, PartialEq)]
    struct Folded(u64);

    impl Parts for Folded {
        fn parts(&self) -> usize {
            1
        }
    }

    fn fold(t: u64, k: u64) -> Folded {
        Folded(t * 1_000_000 + k)
    }

    /// One thread or two, the taker sees every entry in order, decoded by the walk's
    /// thread or not, with the tables' ends in their places; a slow taker gets some
    /// decoded by the walk's thread; a taker that breaks sees nothing after, and the walk
    /// stops soon after.
    #[test]
    fn both_ways_hand_out_in_order_and_stop() {
        let bytes = vec![0u8; 64];
        let space = crate::core::address_space::single_segment(&bytes, 0x1000);
        let layout = layout();
        let ctx = WalkContext::new(&space, &layout, WalkOptions::default());
        for threads in [1, 2] {
            let mut got = Vec::new();
            let mut decoded_by_walk = 0;
            run(
                &ctx,
                threads,
                true,
                |_, out| {
                    for t in 0..3u64 {
                        for k in 0..4000u64 {
                            out.entry(t, k, &mut fold);
                        }
                        out.table_end(WalkFaults::default());
                    }
                },
                |item| {
                    got.push(match item {
                        Handed::Entry(t, k) => fold(t, k).0,
                        Handed::Decoded(f) => {
                            decoded_by_walk += 1;
                            f.0
                        }
                        Handed::TableEnd(_) => u64::MAX,
                    });
                    // Slow at first: the queue fills up.
                    if got.len() < 20 {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    ControlFlow::Continue(())
                },
            );
            let want: Vec<u64> = (0..3u64)
                .flat_map(|t| (0..4000u64).map(move |k| fold(t, k).0).chain([u64::MAX]))
                .collect();
            assert_eq!(got, want, "threads {threads}");
            if threads == 1 {
                assert_eq!(decoded_by_walk, 0);
            } else {
                assert!(decoded_by_walk > 0, "the walk's thread never decoded");
            }

            let mut taken = 0u64;
            let mut walked_on = 0u64;
            run(
                &ctx,
                threads,
                true,
                |_, out| {
                    for k in 0..100_000u64 {
                        if out.stopped() {
                            break;
                        }
                        walked_on = k;
                        out.entry(0, k, &mut fold);
                    }
                },
                |item| {
                    let k = match item {
                        Handed::Entry(_, k) => k,
                        Handed::Decoded(f) => f.0,
                        Handed::TableEnd(_) => u64::MAX,
                    };
                    assert_eq!(k, taken);
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

    /// A walk of few entries that each take the taker long (a keyspace of a few hundred
    /// big collections) is still shared: batches shrink to what the taker gets through in
    /// [`BATCH_TIME`], the queue fills, and the walk's thread decodes some. With batches
    /// of a fixed 512 entries, all 300 went to the taker in one batch.
    #[test]
    fn few_slow_entries_are_shared_between_the_threads() {
        let bytes = vec![0u8; 64];
        let space = crate::core::address_space::single_segment(&bytes, 0x1000);
        let layout = layout();
        let ctx = WalkContext::new(&space, &layout, WalkOptions::default());
        let (mut got, mut decoded_by_walk) = (Vec::new(), 0);
        run(
            &ctx,
            2,
            false,
            |_, out| {
                for k in 0..300u64 {
                    out.entry(0, k, &mut fold);
                }
                out.table_end(WalkFaults::default());
            },
            |item| {
                match item {
                    Handed::Entry(t, k) => {
                        // A big value: the taker decodes it slowly.
                        std::thread::sleep(std::time::Duration::from_micros(300));
                        got.push(fold(t, k).0);
                    }
                    Handed::Decoded(f) => {
                        decoded_by_walk += 1;
                        got.push(f.0);
                    }
                    Handed::TableEnd(_) => got.push(u64::MAX),
                }
                ControlFlow::Continue(())
            },
        );
        let want: Vec<u64> = (0..300u64)
            .map(|k| fold(0, k).0)
            .chain([u64::MAX])
            .collect();
        assert_eq!(got, want);
        assert!(
            decoded_by_walk >= 50,
            "the walk's thread decoded {decoded_by_walk} of 300"
        );
    }

    /// The walk's thread decodes a batch only up to the parts allowed: big values stay
    /// entries for the taker.
    #[test]
    fn a_batch_holds_few_big_decoded_values() {
        struct Big;
        impl Parts for Big {
            fn parts(&self) -> usize {
                DECODED_PARTS / 4
            }
        }
        let mut batch: Vec<Handed<Big>> = (0..10).map(|k| Handed::Entry(k, 0)).collect();
        decode_some(&mut batch, &mut |_, _| Big);
        let decoded = batch
            .iter()
            .filter(|i| matches!(i, Handed::Decoded(_)))
            .count();
        assert_eq!(decoded, 4);
        assert!(matches!(batch.get(4), Some(Handed::Entry(4, 0))));
    }
}
