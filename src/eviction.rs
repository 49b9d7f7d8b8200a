//! What per-key eviction data a recovery keeps (`Eviction`, from the source's
//! `maxmemory-policy`) and the server's LFU clock: read from the core by the walker, written
//! by the sinks, so it sits below both.

/// Per-key eviction data to keep, as the source's `maxmemory-policy` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// An LRU policy: write IDLE (seconds) computed against the server's LRU clock.
    Idle {
        /// `server.lruclock` when the core was taken.
        clock: u32,
    },
    /// An LFU policy: write FREQ (the object's logarithmic access counter), decayed to
    /// the time of the core as Redis's own SAVE does when `clock` is known.
    Freq {
        /// The server's LFU clock and decay period; `None` writes the counter undecayed.
        clock: Option<LfuClock>,
    },
    /// The policy uses neither: Redis writes nothing either.
    None,
    /// The profile does not locate the policy or the clock.
    Unknown,
}

impl Eviction {
    /// A short name for the report.
    pub fn name(&self) -> &'static str {
        match self {
            Eviction::Idle { .. } => "idle",
            Eviction::Freq { clock: Some(_) } => "freq",
            Eviction::Freq { clock: None } => {
                "freq (not decayed: the profile does not locate unixtime and lfu_decay_time)"
            }
            Eviction::None => "none (maxmemory-policy is neither LRU nor LFU)",
            Eviction::Unknown => {
                "unknown (the profile does not locate maxmemory_policy and lruclock)"
            }
        }
    }
}

/// The server's LFU clock when the core was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LfuClock {
    /// `server.unixtime` in minutes, modulo 2^16 (the LFU access-time field's range).
    pub now_minutes: u16,
    /// `server.lfu_decay_time`: minutes per decrement of the counter; 0 never decays.
    pub decay_minutes: u64,
}

impl LfuClock {
    /// The clock from `server.unixtime` (seconds) and `server.lfu_decay_time`.
    pub fn new(unixtime: u64, decay_minutes: u64) -> Self {
        LfuClock {
            now_minutes: ((unixtime / 60) & 0xffff) as u16,
            decay_minutes,
        }
    }

    /// The counter in an object's 24 `lru` bits (16-bit minute of the last decrement, 8-bit
    /// counter), less one per decay period elapsed since: what OBJECT FREQ answered and
    /// what Redis's SAVE writes at the moment of the core.
    pub fn decayed(&self, lru: u32) -> u8 {
        let counter = (lru & 0xff) as u8;
        if self.decay_minutes == 0 {
            return counter;
        }
        let then = ((lru >> 8) & 0xffff) as u16;
        // Redis's 16-bit minute clock wraps at 65535, not 65536.
        let elapsed = if self.now_minutes >= then {
            u64::from(self.now_minutes - then)
        } else {
            65535 - u64::from(then) + u64::from(self.now_minutes)
        };
        let periods = elapsed / self.decay_minutes;
        u8::try_from(u64::from(counter).saturating_sub(periods)).unwrap_or(0)
    }
}
