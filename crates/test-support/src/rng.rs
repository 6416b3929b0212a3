//! A small deterministic random generator (xorshift64*) for property tests and random
//! choices; a run is replayed from its seed.

use std::time::{SystemTime, UNIX_EPOCH};

/// xorshift64*: small, deterministic, good enough to vary inputs and graphs. The seed must
/// not be 0.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Seeds from `RELIABILITY_SEED` or the clock, and prints the seed for reruns.
    pub fn from_env() -> Self {
        let seed = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        eprintln!("reliability: RELIABILITY_SEED={seed}");
        Self(seed)
    }

    /// Next pseudo-random number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index in `0..n` (0 when `n` is 0).
    pub fn pick(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True in about `percent` of the calls.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
