//! A small JSON text parser producing `serde_json::Value`, so that the module does not carry
//! serde's deserializer machinery (about 20 KB of Wasm). It accepts exactly RFC 8259 JSON, as
//! `serde_json::from_slice` does, with the same results: numbers without fraction or exponent
//! become `u64` / `i64` when they fit, others `f64`; a repeated key keeps its last value;
//! nesting deeper than 128 is refused. Errors read like serde_json's ("EOF while parsing a
//! string at line 1 column 9").

use serde_json::{Map, Number, Value};

const MAX_DEPTH: usize = 128;

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

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.digits() {
            0 => {
                return Err(self.error(if self.peek().is_none() {
                    "EOF while parsing a value"
                } else {
                    "invalid number"
                }))
            }
            n if n > 1 && self.bytes.get(int_start) == Some(&b'0') => {
                self.pos = int_start + 1;
                return Err(self.error("invalid number"));
            }
            _ => {}
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let text = self
            .bytes
            .get(start..self.pos)
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or_default();
        if integer {
            if negative {
                // serde_json reads `-0` as the float -0.0.
                if let Ok(n @ (i64::MIN..=-1)) = text.parse::<i64>() {
                    return Ok(Value::Number(n.into()));
                }
            } else if let Ok(n) = text.parse::<u64>() {
                return Ok(Value::Number(n.into()));
            }
        }
        Number::from_f64(to_f64(text))
            .map(Value::Number)
            .ok_or_else(|| self.error("number out of range"))
    }
}

/// A value as JSON text, for error messages ("found -5", "found \"TEN\""): what serde_json's
/// `Display` prints, without its serializer (8 KB of Wasm). Floats print with up to 6
/// decimals; output past 120 characters is cut with "…".
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

/// The value of a valid JSON number. Not core's `str::parse::<f64>`: its correctly rounded
/// algorithm brings a 10 KB table into the module. This is exact (Clinger's fast path) when
/// the number has at most 15 significant digits and a decimal exponent within ±22 (every
/// number a CORS configuration holds: seconds, percentages) and within a few units in the
/// last place otherwise.
fn to_f64(text: &str) -> f64 {
    let mut mantissa: u64 = 0;
    let mut digits = 0;
    let mut exponent: i32 = 0;
    let mut after_point = false;
    let mut bytes = text.bytes().peekable();
    let negative = bytes.next_if_eq(&b'-').is_some();
    while let Some(b) = bytes.next_if(|b| b.is_ascii_digit() || *b == b'.') {
        if b == b'.' {
            after_point = true;
            continue;
        }
        if mantissa == 0 && b == b'0' {
            // Leading zeros are not significant.
        } else if digits < 19 {
            mantissa = mantissa * 10 + u64::from(b - b'0');
            digits += 1;
        } else if !after_point {
            exponent += 1;
            continue;
        } else {
            continue;
        }
        if after_point {
            exponent -= 1;
        }
    }
    if bytes.next_if(|b| *b == b'e' || *b == b'E').is_some() {
        let minus = matches!(bytes.next_if(|b| *b == b'+' || *b == b'-'), Some(b'-'));
        let mut e: i32 = 0;
        for b in bytes {
            e = e.saturating_mul(10).saturating_add(i32::from(b - b'0'));
        }
        exponent = exponent.saturating_add(if minus { -e } else { e });
    }
    let m = mantissa as f64;
    let value = if mantissa == 0 || exponent < -400 {
        0.0
    } else if exponent >= 0 {
        m * 10f64.powi(exponent.min(400))
    } else if exponent >= -308 {
        m / 10f64.powi(-exponent)
    } else {
        m / 10f64.powi(308) / 10f64.powi(-exponent - 308)
    };
    if negative {
        -value
    } else {
        value
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
        agrees(&format!("{}{}", "[".repeat(100), "]".repeat(100)));
        assert!(parse(&[b'"', 0xff, b'"']).is_err());
    }

    #[test]
    fn long_or_far_numbers_are_within_a_few_ulps() {
        for text in [
            "18446744073709551616",
            "-9223372036854775809",
            "3.141592653589793238462643383279",
            "1e300",
            "-2.5e-300",
            "123456789012345678901234567890e-10",
            "0.1e-5",
        ] {
            let ours = parse(text.as_bytes()).unwrap().as_f64().unwrap();
            let theirs: f64 = text.parse().unwrap();
            assert!(
                ((ours - theirs) / theirs).abs() < 1e-14,
                "{text}: {ours} vs {theirs}"
            );
        }
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
