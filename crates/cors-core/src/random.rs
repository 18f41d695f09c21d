//! The random numbers a partial `filter_enabled` / `shadow_enabled` rolls: xorshift64, enough
//! to split traffic by percentage, seeded from the clock the host gives.

use std::cell::Cell;

/// A xorshift64 generator; `Cell` because hosts hold it behind shared references.
pub struct Xorshift(Cell<u64>);

/// A fixed seed, for hosts that reseed once they can read a clock (proxy-wasm's root context).
impl Default for Xorshift {
    fn default() -> Xorshift {
        Xorshift::from_nanos(0x9e37_79b9_7f4a_7c15)
    }
}

impl Xorshift {
    /// Seeded from nanoseconds since the epoch (any value: zero, the one state xorshift never
    /// leaves, is avoided).
    pub fn from_nanos(nanos: u128) -> Xorshift {
        Xorshift(Cell::new(nanos as u64 | 1))
    }

    /// Seeded from the system clock (hosts that have one: the native module).
    pub fn from_clock() -> Xorshift {
        Xorshift::from_nanos(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos()),
        )
    }

    pub fn reseed(&self, nanos: u128) {
        self.0.set(nanos as u64 | 1);
    }

    /// The next number, uniformly distributed.
    pub fn next_u32(&self) -> u32 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        (x >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::Xorshift;

    #[test]
    fn a_zero_seed_still_moves_and_splits_traffic_evenly() {
        let random = Xorshift::from_nanos(0);
        let below_half = (0..10_000)
            .filter(|_| random.next_u32() < u32::MAX / 2)
            .count();
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }
}
