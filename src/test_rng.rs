//! The unit tests' random numbers: a small deterministic generator
//! (xorshift64*), so that a failing seed replays.

pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; spread so that small seeds differ
    /// at once, and never 0, where xorshift would stay).
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
