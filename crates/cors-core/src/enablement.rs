//! `filter_enabled` / `shadow_enabled`: Envoy's `RuntimeFractionalPercent`. A Wasm plugin cannot
//! read Envoy's runtime, so `runtime_key` is accepted (configs paste unchanged) and
//! `default_value` is what applies; a warning at configure time says so.

use crate::fields::{Fields, JsonError};
use crate::number;
use serde_json::Value;

const MILLION: u32 = 1_000_000;

/// A share of requests, in parts per million.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    per_million: u32,
}

impl Fraction {
    pub const ALL: Fraction = Fraction {
        per_million: MILLION,
    };
    pub const NONE: Fraction = Fraction { per_million: 0 };

    pub fn from_json(
        value: &Value,
        path: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Self, JsonError> {
        let mut fields = Fields::new(value, path)?;
        if let Some(key) = fields.optional_str("runtime_key")? {
            warnings.push(format!(
                "{path}.runtime_key {key:?} is ignored: the filter does not read Envoy's runtime; default_value applies"
            ));
        }
        let fraction = match fields.optional_object("default_value")? {
            // Envoy: a RuntimeFractionalPercent without default_value means 0%.
            None => Fraction::NONE,
            Some(percent) => {
                let percent_path = format!("{path}.default_value");
                let mut p = Fields::new(percent, &percent_path)?;
                let numerator = match p.optional("numerator") {
                    None => 0,
                    // A whole number, also as inline YAML delivers `5.0` (a string).
                    Some(v) => number::whole(v, u64::from(u32::MAX)).ok_or_else(|| {
                        number::not_whole(&p.path_of("numerator"), "a whole number, such as 5", v)
                    })?,
                };
                let denominator: u64 = match p.optional("denominator") {
                    None => 100,
                    Some(Value::String(s)) if s == "HUNDRED" => 100,
                    Some(Value::String(s)) if s == "TEN_THOUSAND" => 10_000,
                    Some(Value::String(s)) if s == "MILLION" => 1_000_000,
                    Some(Value::Number(n)) if n.as_f64() == Some(0.0) => 100,
                    Some(Value::Number(n)) if n.as_f64() == Some(1.0) => 10_000,
                    Some(Value::Number(n)) if n.as_f64() == Some(2.0) => 1_000_000,
                    Some(other) => {
                        return Err(JsonError::new(
                            p.path_of("denominator"),
                            format!(
                                "expected HUNDRED, TEN_THOUSAND or MILLION, found {}",
                                crate::fields::render(other)
                            ),
                        ))
                    }
                };
                p.finish()?;
                // Envoy caps a numerator above its denominator at 100%.
                let per_million =
                    (numerator.min(denominator) * u64::from(MILLION) / denominator) as u32;
                Fraction { per_million }
            }
        };
        fields.finish()?;
        Ok(fraction)
    }

    /// Neither all nor nothing: deciding needs a random number.
    pub fn is_partial(self) -> bool {
        self.per_million != 0 && self.per_million != MILLION
    }

    /// Whether a request with this uniformly random number falls in the share.
    pub fn includes(self, random: u32) -> bool {
        random % MILLION < self.per_million
    }

    pub fn percent(self) -> f64 {
        f64::from(self.per_million) / 10_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentages_in_every_denominator() {
        let mut w = Vec::new();
        let f = |v, w: &mut Vec<String>| Fraction::from_json(&v, "p", w).unwrap();
        assert_eq!(
            f(json!({"default_value": {"numerator": 100}}), &mut w),
            Fraction::ALL
        );
        assert_eq!(
            f(json!({"default_value": {"numerator": 0}}), &mut w),
            Fraction::NONE
        );
        assert_eq!(
            f(
                json!({"default_value": {"numerator": 50, "denominator": "TEN_THOUSAND"}}),
                &mut w
            )
            .percent(),
            0.5
        );
        assert_eq!(
            f(
                json!({"default_value": {"numerator": 250, "denominator": 2}}),
                &mut w
            )
            .percent(),
            0.025
        );
        assert!(w.is_empty());
        f(
            json!({"default_value": {"numerator": 100}, "runtime_key": "cors.enabled"}),
            &mut w,
        );
        assert!(w[0].contains("runtime_key \"cors.enabled\" is ignored"));
    }

    #[test]
    fn partial_fraction_includes_its_share() {
        let half = Fraction::from_json(
            &json!({"default_value": {"numerator": 50}}),
            "p",
            &mut Vec::new(),
        )
        .unwrap();
        assert!(half.is_partial());
        let hits = (0..10_000u32)
            .filter(|i| half.includes(i.wrapping_mul(2_654_435_761)))
            .count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
    }

    #[test]
    fn bad_values_are_refused() {
        let e = Fraction::from_json(
            &json!({"default_value": {"numerator": -1}}),
            "p",
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.path, "p.default_value.numerator");
        let e = Fraction::from_json(
            &json!({"default_value": {"denominator": "PERCENT"}}),
            "p",
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(e.message.contains("HUNDRED"));
    }
}
