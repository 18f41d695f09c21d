//! A small JSON text parser producing `serde_json::Value`, used instead of serde_json's
//! deserializer to keep the module small. Measured 2026-12-02 (`cargo build --release --target
//! wasm32-wasip1 -p cors-filter`, then `wasm-opt` with the Makefile's flags): the filter is
//! 201,950 bytes with this parser and 214,920 bytes (+12,970) with `serde_json::from_slice`.
//!
//! It accepts and refuses exactly what `serde_json::from_slice::<Value>` does, with equal values:
//! numbers without fraction or exponent become `u64` / `i64` when they fit, others `f64` with
//! the same bits as serde_json's (its algorithm without the `float_roundtrip` feature, which is
//! not always correctly rounded); a repeated key keeps its last value; nesting deeper than 127
//! is refused. `tests/json_text_equals_serde_json.rs` (property tests) and the fuzz target
//! `json_text` check this. Errors read like serde_json's ("EOF while parsing a string at line 1
//! column 9") but need not be the same.

use serde_json::{Map, Number, Value};

/// serde_json's recursion limit: 127 nested arrays or objects are read, 128 are not.
const MAX_DEPTH: usize = 127;

/// Parses `bytes` as one JSON value (whitespace around it allowed).
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut p = Parser {
        bytes,
        pos: 0,
        depth: 0,
    };
    let value = p.value()?;
    p.skip_ws();
    if p.pos < bytes.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let end = self.pos.min(self.bytes.len());
        let before = self.bytes.get(..end).unwrap_or_default();
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count();
        format!("{what} at line {line} column {column}")
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek();
        if b.is_some() {
            self.pos += 1;
        }
        b
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.error("EOF while parsing a value")),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => {
                self.pos += 1;
                self.string().map(Value::String)
            }
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => {
                self.pos += 1;
                Err(self.error("expected value"))
            }
        }
    }

    fn nested(&mut self, parse: fn(&mut Self) -> Result<Value, String>) -> Result<Value, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.pos += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, String> {
        for &expected in word.as_bytes() {
            match self.next() {
                Some(b) if b == expected => {}
                Some(_) => return Err(self.error("expected ident")),
                None => return Err(self.error("EOF while parsing a value")),
            }
        }
        Ok(value)
    }

    fn object(&mut self) -> Result<Value, String> {
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            match self.next() {
                Some(b'"') => {}
                Some(_) => return Err(self.error("key must be a string")),
                None => return Err(self.error("EOF while parsing an object")),
            }
            let key = self.string()?;
            self.skip_ws();
            match self.next() {
                Some(b':') => {}
                Some(_) => return Err(self.error("expected `:`")),
                None => return Err(self.error("EOF while parsing an object")),
            }
            let value = self.value()?;
            map.insert(key, value);
            self.skip_ws();
            match self.next() {
                Some(b',') => {}
                Some(b'}') => return Ok(Value::Object(map)),
                Some(_) => return Err(self.error("expected `,` or `}`")),
                None => return Err(self.error("EOF while parsing an object")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_ws();
            match self.next() {
                Some(b',') => {}
                Some(b']') => return Ok(Value::Array(items)),
                Some(_) => return Err(self.error("expected `,` or `]`")),
                None => return Err(self.error("EOF while parsing a list")),
            }
        }
    }

    /// The rest of a string whose opening quote was consumed.
    fn string(&mut self) -> Result<String, String> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.extend_from_slice(self.bytes.get(start..self.pos).unwrap_or_default());
            match self.next() {
                None => return Err(self.error("EOF while parsing a string")),
                Some(b'"') => {
                    return String::from_utf8(out)
                        .map_err(|_| self.error("invalid unicode code point"))
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(_) => {
                    return Err(self
                        .error("control character (\\u0000-\\u001F) found while parsing a string"))
                }
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let simple = match self.next() {
            None => return Err(self.error("EOF while parsing a string")),
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let mut c = self.hex4()?;
                if (0xD800..0xDC00).contains(&c) {
                    if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                        return Err(self.error("unexpected end of hex escape"));
                    }
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error("lone leading surrogate in hex escape"));
                    }
                    c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                }
                let ch = char::from_u32(c)
                    .ok_or_else(|| self.error("lone leading surrogate in hex escape"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            Some(_) => return Err(self.error("invalid escape")),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut n = 0;
        for _ in 0..4 {
            let digit = match self.next() {
                None => return Err(self.error("EOF while parsing a string")),
                Some(b) => char::from(b).to_digit(16),
            };
            n = n * 16 + digit.ok_or_else(|| self.error("invalid escape"))?;
        }
        Ok(n)
    }

    fn digit(&mut self) -> Option<u64> {
        let d = char::from(self.peek()?).to_digit(10)?;
        self.pos += 1;
        Some(u64::from(d))
    }

    /// serde_json's number algorithm (without its `float_roundtrip` feature), step for step, so
    /// that both give the same bits: the first digits that fit a u64 form the significand, later
    /// integer digits scale it and later fraction digits are dropped; the value is the
    /// significand times or divided by a correctly rounded power of ten.
    fn number(&mut self) -> Result<Value, String> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            None => return Err(self.error("EOF while parsing a value")),
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {}
            Some(_) => {
                self.pos += 1;
                return Err(self.error("invalid number"));
            }
        }
        let mut significand: u64 = 0;
        let mut exponent: i32 = 0;
        let mut full = false;
        let push = |s: u64, d: u64| s.checked_mul(10).and_then(|s| s.checked_add(d));
        while let Some(d) = self.digit() {
            match push(significand, d).filter(|_| !full) {
                Some(s) => significand = s,
                None => {
                    full = true;
                    exponent = exponent.saturating_add(1);
                }
            }
        }
        let mut integer = !full;
        if self.peek() == Some(b'.') {
            integer = false;
            self.pos += 1;
            let (mut any, mut full) = (false, false);
            while let Some(d) = self.digit() {
                any = true;
                match push(significand, d).filter(|_| !full) {
                    Some(s) => {
                        significand = s;
                        exponent = exponent.saturating_sub(1);
                    }
                    None => full = true,
                }
            }
            if !any {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.pos += 1;
            let positive = self.peek() != Some(b'-');
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            let mut e: i32 = match self.digit() {
                Some(d) => d as i32,
                None => return Err(self.error("invalid number")),
            };
            let mut overflow = false;
            while let Some(d) = self.digit() {
                match e.checked_mul(10).and_then(|e| e.checked_add(d as i32)) {
                    Some(n) if !overflow => e = n,
                    _ => overflow = true,
                }
            }
            if overflow {
                if significand != 0 && positive {
                    return Err(self.error("number out of range"));
                }
                return Ok(float(if negative { -0.0 } else { 0.0 }));
            }
            exponent = if positive {
                exponent.saturating_add(e)
            } else {
                exponent.saturating_sub(e)
            };
        }
        if integer {
            if !negative {
                return Ok(Value::Number(significand.into()));
            }
            // As in serde_json: `-0` and values below i64::MIN are floats.
            return Ok(match (significand as i64).wrapping_neg() {
                n @ i64::MIN..=-1 => Value::Number(n.into()),
                _ => float(-(significand as f64)),
            });
        }
        let mut f = significand as f64;
        loop {
            if let k @ 0..=308 = exponent.unsigned_abs() {
                if exponent >= 0 {
                    f *= pow10(k);
                    if f.is_infinite() {
                        return Err(self.error("number out of range"));
                    }
                } else {
                    f /= pow10(k);
                }
                break;
            }
            if f == 0.0 {
                break;
            }
            if exponent >= 0 {
                return Err(self.error("number out of range"));
            }
            f /= pow10(308);
            exponent += 308;
        }
        Ok(float(if negative { -f } else { f }))
    }
}

/// A finite float as a JSON value.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// 10^k (k <= 308) rounded to the nearest f64: the value of the literal `1e{k}`, which
/// serde_json keeps in a table of 309 floats (2,472 bytes). Here 5^k is carried in a u128
/// below 2^124, halved with the lost bits folded into the lowest one (so the rounding below
/// still sees them), then rounded once to 53 bits by `as f64` and scaled by the twos. A test
/// checks every k against serde_json.
fn pow10(k: u32) -> f64 {
    let (mut m, mut twos) = (1u128, k);
    for _ in 0..k {
        m *= 5;
        while m >> 124 != 0 {
            m = m >> 1 | m & 1;
            twos += 1;
        }
    }
    m as f64 * f64::from_bits(u64::from(twos + 1023) << 52)
}

/// A value as JSON text, for error messages ("found -5", "found \"TEN\""): what serde_json's
/// `Display` prints, without its serializer (measured as above: `Value::to_string` here makes
/// the filter 3,630 bytes bigger). Floats print with up to 6 decimals; output past 120
/// characters is cut with "…".
pub fn render(value: &Value) -> String {
    let mut out = String::new();
    render_into(value, &mut out);
    if out.chars().count() > 120 {
        out = out.chars().take(119).collect();
        out.push('…');
    }
    out
}

fn render_into(value: &Value, out: &mut String) {
    if out.len() > 200 {
        return;
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => out.push_str(&u.to_string()),
            (_, Some(i), _) => out.push_str(&i.to_string()),
            (_, _, Some(f)) => render_float(f, out),
            _ => out.push_str("a number"),
        },
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if u32::from(c) < 0x20 => {
                        out.push_str("\\u00");
                        for shift in [4, 0] {
                            let digit = (u32::from(c) >> shift) & 0xf;
                            out.push(char::from_digit(digit, 16).unwrap_or('0'));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render_into(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render_into(&Value::String(key.clone()), out);
                out.push(':');
                render_into(item, out);
            }
            out.push('}');
        }
    }
}

/// A finite float with up to 6 decimals (trailing zeros dropped), without core's float
/// formatting; very large or small magnitudes print in scientific notation, roughly.
fn render_float(f: f64, out: &mut String) {
    if f < 0.0 || (f == 0.0 && f.is_sign_negative()) {
        out.push('-');
    }
    let mut x = f.abs();
    let mut exponent = 0;
    if x >= 1e12 {
        while x >= 10.0 {
            x /= 10.0;
            exponent += 1;
        }
    } else if x != 0.0 && x < 1e-6 {
        while x < 1.0 {
            x *= 10.0;
            exponent -= 1;
        }
    }
    let scaled = (x * 1e6).round() as u64;
    out.push_str(&(scaled / 1_000_000).to_string());
    let frac = scaled % 1_000_000;
    out.push('.');
    if frac == 0 {
        out.push('0');
    } else {
        let digits = format!("{frac:06}");
        out.push_str(digits.trim_end_matches('0'));
    }
    if exponent != 0 {
        out.push('e');
        out.push_str(&exponent.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same value as serde_json for valid text, an error for invalid text.
    fn agrees(text: &str) {
        let ours = parse(text.as_bytes());
        let theirs: Result<Value, _> = serde_json::from_slice(text.as_bytes());
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{text}: ours {a:?}, serde_json {b:?}"),
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        for text in [
            r#"{"policy": {"allow_origins": ["https://a.com"], "max_age": 600, "x": -1.5e3}}"#,
            r#" [1, -0, 0.5, 1E2, 18446744073709551615, -9223372036854775808, 0.000125, 1.5e-7, 3e22] "#,
            r#"{"a": 1, "a": 2, "b": [true, false, null, {}, []]}"#,
            r#""\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r""#,
            r#""é and 😀 raw""#,
            "{}",
            "",
            "   ",
            "{",
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            "[1,]",
            "[1 2]",
            "01",
            "-",
            "1.",
            "1e",
            ".5",
            "+1",
            "tru",
            "nul",
            "true false",
            r#""\x""#,
            r#""\ud800""#,
            r#""\ud800\u0041""#,
            r#""\udc00""#,
            "\"a\u{1}b\"",
            "\"unterminated",
            "1e400",
            "{1: 2}",
            "NaN",
        ] {
            agrees(text);
        }
        agrees(&"[".repeat(129));
        agrees(&format!("{}{}", "[".repeat(127), "]".repeat(127)));
        agrees(&format!("{}{}", "[".repeat(128), "]".repeat(128)));
        agrees(&format!("{}{}", "[".repeat(100), "]".repeat(100)));
        assert!(parse(&[b'"', 0xff, b'"']).is_err());
    }

    #[test]
    fn renders_like_serde_json_display() {
        for text in [
            r#"{"a":[1,-2,true,null,"x\"y\\z\u0001"],"b":{}}"#,
            "0.5",
            "-1.25",
            "600.0",
            "-0.0",
            "18446744073709551615",
            r#""é""#,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(render(&v), v.to_string(), "{text}");
        }
        let long = Value::String("x".repeat(500));
        assert_eq!(render(&long).chars().count(), 120);
        assert_eq!(render(&serde_json::json!(1e20)), "1.0e20");
        assert_eq!(render(&serde_json::json!(-2.5e-9)), "-2.5e-9");
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            parse(br#"{"policy": "#).unwrap_err(),
            "EOF while parsing a value at line 1 column 11"
        );
        assert_eq!(
            parse(b"{\n  \"a\": tru }").unwrap_err(),
            "expected ident at line 2 column 11"
        );
    }
}
