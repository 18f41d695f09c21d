//! Numbers as users write them in a configuration: whole numbers (`max_age`, `maxAge`,
//! `numerator`) and durations (`maxAge` in Istio and Envoy Gateway: `"24h"`, `"1m30s"`).
//!
//! JSON text carries numbers as numbers. Inline YAML in an Envoy configuration reaches the
//! plugin as a protobuf `Struct`, and Envoy 1.40 turns a non-integer YAML number (`600.0`,
//! `1.5`) into a string on the way: so a whole-number field takes a number or a string holding
//! one, `"600.0"` included, and refuses anything else with a message saying what to write.

use crate::fields::{render, JsonError};
use serde_json::Value;

/// `v` as a whole number no larger than `max`: a JSON number without a fraction, or a string of
/// digits, optionally followed by `.` and zeros (`"600"`, `"600.0"`).
pub fn whole(v: &Value, max: u64) -> Option<u64> {
    let n = match v {
        Value::Number(n) => match n.as_u64() {
            Some(n) => n,
            None => n
                .as_f64()
                .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x <= max as f64)
                .map(|x| x as u64)?,
        },
        Value::String(s) => {
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
            if int.is_empty() || !digits(int) || !frac.bytes().all(|b| b == b'0') {
                return None;
            }
            int.parse().ok()?
        }
        _ => return None,
    };
    (n <= max).then_some(n)
}

/// The error for a whole-number field: `what` is the wanted value in words with an example
/// ("whole seconds, such as 600").
pub fn not_whole(path: &str, what: &str, found: &Value) -> JsonError {
    JsonError::new(
        path,
        format!(
            "expected {what} (a number or a string of digits), found {}",
            render(found)
        ),
    )
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A duration as Go's `time.ParseDuration` reads it, which is what Istio and Envoy Gateway
/// accept for `maxAge`: one or more decimal numbers, each with a unit `h`, `m`, `s`, `ms`,
/// `us` (`µs`) or `ns` (`"24h"`, `"1m30s"`, `"1.5h"`). Returns nanoseconds, or why not.
pub fn duration_nanos(text: &str) -> Result<u128, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration: write a number with a unit h, m, s or ms, such as \"24h\", \"1m30s\" or \"600s\""
        )
    };
    if text.is_empty() || text.starts_with(['-', '+']) {
        return Err(bad());
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let scale: u128 = match unit {
            "h" => 3600 * NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "s" => NANOS_PER_SECOND,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        // The fraction, exactly: its digits over 10^len, times the unit (Go keeps nanoseconds).
        let frac_digits = frac.get(..frac.len().min(18)).unwrap_or("");
        let frac_value: u128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| bad())?
        };
        let frac_nanos = frac_value * scale / 10u128.pow(frac_digits.len() as u32);
        total = int
            .checked_mul(scale)
            .and_then(|n| n.checked_add(frac_nanos))
            .and_then(|n| total.checked_add(n))
            .ok_or_else(bad)?;
        rest = next;
    }
    Ok(total)
}

/// Whole seconds and the nanoseconds left over.
pub fn split_seconds(nanos: u128) -> (u128, u128) {
    (nanos / NANOS_PER_SECOND, nanos % NANOS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_as_json_and_as_yaml_strings() {
        for (v, n) in [
            (json!(600), 600),
            (json!(600.0), 600),
            (json!("600"), 600),
            (json!("600.0"), 600),
            (json!("0"), 0),
        ] {
            assert_eq!(whole(&v, u64::from(u32::MAX)), Some(n), "{v}");
        }
        for v in [
            json!(1.5),
            json!("1.5"),
            json!(-1),
            json!("-1"),
            json!("ten"),
            json!(""),
            json!(".0"),
            json!("1e3"),
            json!(true),
            json!(4294967296u64),
        ] {
            assert_eq!(whole(&v, u64::from(u32::MAX)), None, "{v}");
        }
    }

    #[test]
    fn durations_read_as_go_reads_them() {
        let s = |t| duration_nanos(t).map(split_seconds);
        assert_eq!(s("24h"), Ok((86400, 0)));
        assert_eq!(s("1m30s"), Ok((90, 0)));
        assert_eq!(s("1.5h"), Ok((5400, 0)));
        assert_eq!(s("600s"), Ok((600, 0)));
        assert_eq!(s("1500ms"), Ok((1, 500_000_000)));
        assert_eq!(s("2.000000042s"), Ok((2, 42)));
        assert_eq!(s("0s"), Ok((0, 0)));
        for bad in ["", "24", "h", "1d", "-1s", "1..5s", "1 h", "1h "] {
            assert!(duration_nanos(bad).is_err(), "{bad}");
        }
        assert!(duration_nanos("1d")
            .unwrap_err()
            .contains("such as \"24h\""));
    }
}
