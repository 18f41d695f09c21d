//! The filter's counters. They are kept in plain memory per request (no host call on the
//! request path) and flushed to Envoy's stats by the root context's timer, where they appear
//! as `wasmcustom.cors.<kind>.<verdict>` (and `wasmcustom.cors.shadow.…` in shadow mode).

use crate::decision::{Denial, Kind};
use std::cell::Cell;

const VERDICTS: [&str; 5] = [
    "allowed",
    "denied_origin",
    "denied_method",
    "denied_headers",
    "denied_private_network",
];
const KINDS: [&str; 2] = ["preflight", "actual"];
const MODES: [&str; 2] = ["cors", "cors.shadow"];
pub const COUNTERS: usize = MODES.len() * KINDS.len() * VERDICTS.len();

/// The counter for one decision.
pub fn index(kind: Kind, denial: Option<Denial>, shadow: bool) -> usize {
    let verdict = match denial {
        None => 0,
        Some(Denial::Origin) => 1,
        Some(Denial::Method(_)) => 2,
        Some(Denial::Header(_) | Denial::RequestHeadersOverLimit) => 3,
        Some(Denial::PrivateNetwork) => 4,
    };
    let kind = match kind {
        Kind::Preflight => 0,
        Kind::Actual => 1,
    };
    (usize::from(shadow) * KINDS.len() + kind) * VERDICTS.len() + verdict
}

/// Every counter's name, in index order.
pub fn names() -> impl Iterator<Item = String> {
    MODES.iter().flat_map(|m| {
        KINDS
            .iter()
            .flat_map(move |k| VERDICTS.iter().map(move |v| format!("{m}.{k}.{v}")))
    })
}

/// Counts not yet handed to Envoy.
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
    use super::*;

    #[test]
    fn each_decision_has_its_own_named_counter() {
        let names: Vec<String> = names().collect();
        assert_eq!(names.len(), COUNTERS);
        assert_eq!(
            names[index(Kind::Preflight, None, false)],
            "cors.preflight.allowed"
        );
        assert_eq!(
            names[index(Kind::Actual, Some(Denial::Origin), false)],
            "cors.actual.denied_origin"
        );
        assert_eq!(
            names[index(Kind::Preflight, Some(Denial::Header(b"x")), true)],
            "cors.shadow.preflight.denied_headers"
        );
        let p = Pending::default();
        p.count(3);
        p.count(3);
        assert_eq!(p.drain().collect::<Vec<_>>(), [(3, 2)]);
        assert_eq!(p.drain().count(), 0);
    }
}
