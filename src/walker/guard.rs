//! Loop guards for pointer chains read from the core.

use super::fault::Fault;

/// Detects a cycle in a singly linked chain (Brent's algorithm: O(1) memory, found within
/// a small multiple of the chain's length) and caps the number of steps.
pub struct ChainGuard {
    what: &'static str,
    tortoise: u64,
    power: u64,
    lambda: u64,
    steps: u64,
    max_steps: u64,
    /// Every link seen, when the chain's prefix is kept after a fault (salvage): Brent's
    /// check finds a loop only after walking part of it twice, which would duplicate
    /// elements in the kept part, so such walks stop at the first repeat instead.
    seen: Option<super::seen::SeenEntries>,
}

impl ChainGuard {
    /// Guard a chain of `what` that may not exceed `max_steps` links.
    pub fn new(what: &'static str, max_steps: u64) -> Self {
        ChainGuard {
            what,
            tortoise: 0,
            power: 1,
            lambda: 0,
            steps: 0,
            max_steps,
            seen: None,
        }
    }

    /// Also remember every link and stop at the first repeat, when `exact` is true.
    pub fn remembering(mut self, exact: bool) -> Self {
        if exact {
            self.seen = Some(super::seen::SeenEntries::default());
        }
        self
    }

    /// Record that the chain reached `ptr`; an error when it loops or grows past its bound.
    pub fn step(&mut self, ptr: u64) -> Result<(), Fault> {
        deadline::check()?;
        if self.steps > 0 && ptr == self.tortoise {
            return Err(Fault::Cycle(self.what));
        }
        if let Some(seen) = &mut self.seen {
            if !seen.first_visit(ptr) {
                return Err(Fault::Cycle(self.what));
            }
        }
        self.steps += 1;
        if self.steps > self.max_steps {
            return Err(Fault::bad(format!(
                "{} longer than its bound of {} links",
                self.what, self.max_steps
            )));
        }
        self.lambda += 1;
        if self.lambda == self.power || self.steps == 1 {
            self.tortoise = ptr;
            self.power = self.power.saturating_mul(2);
            self.lambda = 0;
        }
        Ok(())
    }

    /// Links visited so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

/// A time limit for decoding one key (`--timeout`), checked by every chain walk.
///
/// Kept per thread so the many small walkers need no extra argument; a walk without a
/// limit set costs one thread-local read per step.
pub mod deadline {
    use super::Fault;
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    /// Steps between two clock reads.
    const CLOCK_EVERY: u32 = 1024;

    thread_local! {
        static LIMIT: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
        static TICKS: Cell<u32> = const { Cell::new(0) };
    }

    /// While alive, walks on this thread fail with [`Fault::Timeout`] once `limit` has
    /// passed since it was made.
    pub struct Scope(());

    impl Scope {
        /// Start a limit of `limit` from now (none when `limit` is `None`).
        pub fn start(limit: Option<Duration>) -> Scope {
            LIMIT.with(|l| l.set(limit.map(|d| (Instant::now() + d, d))));
            TICKS.with(|t| t.set(0));
            Scope(())
        }
    }

    impl Drop for Scope {
        fn drop(&mut self) {
            LIMIT.with(|l| l.set(None));
        }
    }

    /// An error once the current limit has passed.
    pub fn check() -> Result<(), Fault> {
        let Some((end, limit)) = LIMIT.with(Cell::get) else {
            return Ok(());
        };
        let due = TICKS.with(|t| {
            let n = t.get().wrapping_add(1);
            t.set(n);
            n % CLOCK_EVERY == 0
        });
        if due && Instant::now() > end {
            return Err(Fault::Timeout(limit.as_millis() as u64));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cycles_of_any_shape() {
        for tail in 0..20u64 {
            for cycle in 1..20u64 {
                // Chain: 1..=tail then a loop of `cycle` nodes.
                let next = |p: u64| if p < tail + cycle { p + 1 } else { tail + 1 };
                let mut g = ChainGuard::new("test chain", u64::MAX);
                let mut p = 1;
                let mut found = false;
                for _ in 0..10 * (tail + cycle) + 10 {
                    if g.step(p).is_err() {
                        found = true;
                        break;
                    }
                    p = next(p);
                }
                assert!(found, "tail {tail} cycle {cycle}");
            }
        }
    }

    #[test]
    fn a_deadline_stops_a_long_walk_and_ends_with_its_scope() {
        {
            let _limit = deadline::Scope::start(Some(std::time::Duration::from_millis(1)));
            std::thread::sleep(std::time::Duration::from_millis(2));
            let mut g = ChainGuard::new("long chain", u64::MAX);
            let err = (1..=1_000_000u64).find_map(|p| g.step(p).err());
            assert_eq!(err, Some(Fault::Timeout(1)));
        }
        let mut g = ChainGuard::new("long chain", u64::MAX);
        assert!((1..=100_000u64).all(|p| g.step(p).is_ok()));
    }

    #[test]
    fn a_remembering_guard_stops_at_the_first_repeat() {
        // 1 → 2 → 3 → 4 → 2: the repeat of 2 is the fifth step.
        let chain = [1u64, 2, 3, 4, 2, 3, 4, 2, 3, 4];
        let mut g = ChainGuard::new("loop", u64::MAX).remembering(true);
        let first_err = chain.iter().position(|p| g.step(*p).is_err());
        assert_eq!(first_err, Some(4));
    }

    #[test]
    fn straight_chain_passes_and_is_bounded() {
        let mut g = ChainGuard::new("list", 100);
        for p in 1..=100 {
            g.step(p * 16).unwrap();
        }
        assert!(g.step(101 * 16).is_err());
    }
}
