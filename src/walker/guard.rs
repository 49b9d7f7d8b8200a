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
        }
    }

    /// Record that the chain reached `ptr`; an error when it loops or grows past its bound.
    pub fn step(&mut self, ptr: u64) -> Result<(), Fault> {
        if self.steps > 0 && ptr == self.tortoise {
            return Err(Fault::Cycle(self.what));
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
    fn straight_chain_passes_and_is_bounded() {
        let mut g = ChainGuard::new("list", 100);
        for p in 1..=100 {
            g.step(p * 16).unwrap();
        }
        assert!(g.step(101 * 16).is_err());
    }
}
