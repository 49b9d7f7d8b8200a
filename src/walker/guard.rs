//! Loop guards for pointer chains read from the core.

use super::context::Budget;
use super::fault::Fault;
use crate::walker::fault::FaultKind;

/// Detects a cycle in a singly linked chain (Brent's algorithm: O(1) memory, found within
/// a small multiple of the chain's length) and caps the number of steps.
pub struct ChainGuard<'b> {
    what: &'static str,
    /// The time budget of the key being decoded, checked at every step.
    budget: &'b Budget,
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

impl<'b> ChainGuard<'b> {
    /// Guard a chain of `what` that may not exceed `max_steps` links, within `budget`.
    pub fn new(what: &'static str, max_steps: u64, budget: &'b Budget) -> Self {
        ChainGuard {
            what,
            budget,
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
        self.budget.check()?;
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
            return Err(Fault::of(
                FaultKind::CounterMismatch,
                format!(
                    "{} longer than its bound of {} links",
                    self.what, self.max_steps
                ),
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn unlimited() -> Budget {
        Budget::new(None)
    }

    #[test]
    fn finds_cycles_of_any_shape() {
        for tail in 0..20u64 {
            for cycle in 1..20u64 {
                // Chain: 1..=tail then a loop of `cycle` nodes.
                let next = |p: u64| if p < tail + cycle { p + 1 } else { tail + 1 };
                let budget = unlimited();
                let mut g = ChainGuard::new("test chain", u64::MAX, &budget);
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
    fn a_budget_stops_a_long_walk_and_ends_with_its_key() {
        let budget = Budget::new(Some(std::time::Duration::from_millis(1)));
        {
            let _key = budget.key();
            std::thread::sleep(std::time::Duration::from_millis(2));
            let mut g = ChainGuard::new("long chain", u64::MAX, &budget);
            let err = (1..=1_000_000u64).find_map(|p| g.step(p).err());
            assert_eq!(err, Some(Fault::Timeout(1)));
        }
        let mut g = ChainGuard::new("long chain", u64::MAX, &budget);
        assert!((1..=100_000u64).all(|p| g.step(p).is_ok()));
    }

    #[test]
    fn a_remembering_guard_stops_at_the_first_repeat() {
        // 1 → 2 → 3 → 4 → 2: the repeat of 2 is the fifth step.
        let chain = [1u64, 2, 3, 4, 2, 3, 4, 2, 3, 4];
        let budget = unlimited();
        let mut g = ChainGuard::new("loop", u64::MAX, &budget).remembering(true);
        let first_err = chain.iter().position(|p| g.step(*p).is_err());
        assert_eq!(first_err, Some(4));
    }

    #[test]
    fn straight_chain_passes_and_is_bounded() {
        let budget = unlimited();
        let mut g = ChainGuard::new("list", 100, &budget);
        for p in 1..=100 {
            g.step(p * 16).unwrap();
        }
        assert!(g.step(101 * 16).is_err());
    }
}
