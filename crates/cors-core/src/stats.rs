//! The filter's counters: one per mode, kind and verdict, named `cors.<kind>.<verdict>` (and
//! `cors.shadow.…` in shadow mode, and for `cross_origin_protection: report`: decided and
//! counted, not enforced). Each host defines them under its own prefix
//! (`wasmcustom.`, `dynamicmodulescustom.`) and bumps the one `index` names.

use crate::decision::{Kind, Refusal};

const VERDICTS: [&str; 6] = [
    "allowed",
    "denied_origin",
    "denied_method",
    "denied_headers",
    "denied_private_network",
    "denied_cross_origin",
];
const KINDS: [&str; 2] = ["preflight", "actual"];
const MODES: [&str; 2] = ["cors", "cors.shadow"];
pub const COUNTERS: usize = MODES.len() * KINDS.len() * VERDICTS.len();

/// The counter for one decision.
pub fn index(kind: Kind, refusal: Option<Refusal>, shadow: bool) -> usize {
    let verdict = match refusal {
        None => 0,
        Some(Refusal::Origin) => 1,
        Some(Refusal::Method(_)) => 2,
        Some(Refusal::Header(_) | Refusal::RequestHeadersOverLimit) => 3,
        Some(Refusal::PrivateNetwork) => 4,
        Some(Refusal::CrossOrigin(_)) => 5,
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
            names[index(Kind::Actual, Some(Refusal::Origin), false)],
            "cors.actual.denied_origin"
        );
        assert_eq!(
            names[index(Kind::Preflight, Some(Refusal::Header(b"x")), true)],
            "cors.shadow.preflight.denied_headers"
        );
    }
}
