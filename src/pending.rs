//! Counts kept in plain memory per request and handed to Envoy by the root context's timer:
//! a proxy-wasm metric update is a host call, which the request path avoids.

use cors_core::stats::COUNTERS;
use std::cell::Cell;

/// Counts not yet handed to Envoy, by `stats::index`.
#[derive(Default)]
pub struct Pending {
    counts: [Cell<u64>; COUNTERS],
}

impl Pending {
    pub fn count(&self, index: usize) {
        if let Some(c) = self.counts.get(index) {
            c.set(c.get() + 1);
        }
    }

    /// Takes every non-zero count, resetting it.
    pub fn drain(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c.replace(0))).filter(|(_, n)| *n > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn drain_hands_over_each_count_once() {
        let p = Pending::default();
        p.count(3);
        p.count(3);
        assert_eq!(p.drain().collect::<Vec<_>>(), [(3, 2)]);
        assert_eq!(p.drain().count(), 0);
    }
}
