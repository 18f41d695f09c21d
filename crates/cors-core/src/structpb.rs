//! A decoder for the protobuf wire format of `google.protobuf.Struct` and
//! `envoy.config.core.v3.Metadata`, into JSON values. Envoy 1.40 hands an inline YAML plugin
//! configuration to the plugin as Struct wire bytes (not JSON), and route metadata
//! (`xds.route_metadata`) as Metadata wire bytes; both are untrusted input, so every length
//! is checked and nesting is bounded.

use serde_json::{Map, Number, Value};

/// Deeper nesting than this is refused (a config is a few levels deep; this bounds the stack).
const MAX_DEPTH: usize = 64;

type Result<T> = std::result::Result<T, String>;

/// Decodes a serialized `google.protobuf.Struct`.
pub fn decode_struct(bytes: &[u8]) -> Result<Value> {
    decode_struct_at(bytes, 0)
}

/// Decodes a serialized `envoy.config.core.v3.Metadata` and returns the Struct stored under
/// `filter_metadata[namespace]`, if there is one.
pub fn filter_metadata(metadata: &[u8], namespace: &str) -> Result<Option<Value>> {
    let mut found = None;
    for field in Fields::new(metadata) {
        let (number, wire) = field?;
        if let (1, Wire::Len(entry)) = (number, wire) {
            let (key, value) = map_entry(entry)?;
            if key == namespace.as_bytes() {
                found = Some(decode_struct_at(value.unwrap_or_default(), 0)?);
            }
        }
    }
    Ok(found)
}

fn decode_struct_at(bytes: &[u8], depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err("configuration nested too deeply".into());
    }
    let mut map = Map::new();
    for field in Fields::new(bytes) {
        if let (1, Wire::Len(entry)) = field? {
            let (key, value) = map_entry(entry)?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| "a field name is not UTF-8")?;
            let value = match value {
                Some(v) => decode_value(v, depth + 1)?,
                None => Value::Null,
            };
            map.insert(key, value);
        }
    }
    Ok(Value::Object(map))
}

fn decode_value(bytes: &[u8], depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err("configuration nested too deeply".into());
    }
    let mut value = Value::Null;
    for field in Fields::new(bytes) {
        value = match field? {
            (1, Wire::Varint(_)) => Value::Null,
            (2, Wire::Fixed64(bits)) => {
                let n = f64::from_bits(bits);
                Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or("a number is not finite")?
            }
            (3, Wire::Len(s)) => Value::String(
                String::from_utf8(s.to_vec()).map_err(|_| "a string value is not UTF-8")?,
            ),
            (4, Wire::Varint(b)) => Value::Bool(b != 0),
            (5, Wire::Len(s)) => decode_struct_at(s, depth + 1)?,
            (6, Wire::Len(list)) => {
                let mut items = Vec::new();
                for item in Fields::new(list) {
                    if let (1, Wire::Len(v)) = item? {
                        items.push(decode_value(v, depth + 1)?);
                    }
                }
                Value::Array(items)
            }
            _ => value,
        };
    }
    Ok(value)
}

/// A map entry message: `key = 1`, `value = 2`.
fn map_entry(entry: &[u8]) -> Result<(&[u8], Option<&[u8]>)> {
    let (mut key, mut value) = (&[][..], None);
    for field in Fields::new(entry) {
        match field? {
            (1, Wire::Len(k)) => key = k,
            (2, Wire::Len(v)) => value = Some(v),
            _ => {}
        }
    }
    Ok((key, value))
}

enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32,
}

/// Iterates over the fields of one message; yields an error (and stops) on malformed bytes.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields { rest: bytes }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.rest.split_first().ok_or("truncated protobuf varint")?;
            self.rest = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("protobuf varint too long".into())
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.rest.len())
            .ok_or("truncated protobuf field")?;
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u64, Wire<'a>)> {
        let tag = self.varint()?;
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                Wire::Fixed64(u64::from_le_bytes(le))
            }
            2 => {
                let len = self.varint()?;
                Wire::Len(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            other => return Err(format!("unsupported protobuf wire type {other}")),
        };
        Ok((tag >> 3, wire))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Wire<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

/// The inverse of the decoder, which the filter never needs: for tests, for fuzz/ and for
/// `cors-explain` (which hands route metadata to the pipeline as Envoy would), through the
/// `struct-encoder` feature.
#[cfg(any(test, feature = "struct-encoder"))]
pub mod encode {
    use serde_json::Value;

    /// Encodes a JSON object as a protobuf Struct, as Envoy does with inline YAML.
    pub fn encode_struct(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        if let Value::Object(map) = v {
            for (k, val) in map {
                let mut entry = Vec::new();
                len_field(&mut entry, 1, k.as_bytes());
                len_field(&mut entry, 2, &encode_value(val));
                len_field(&mut out, 1, &entry);
            }
        }
        out
    }

    fn encode_value(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        match v {
            Value::Null => out.extend([0x08, 0]),
            Value::Number(n) => {
                out.push(0x11);
                out.extend(n.as_f64().unwrap_or_default().to_le_bytes());
            }
            Value::String(s) => len_field(&mut out, 3, s.as_bytes()),
            Value::Bool(b) => out.extend([0x20, *b as u8]),
            Value::Object(_) => len_field(&mut out, 5, &encode_struct(v)),
            Value::Array(items) => {
                let mut list = Vec::new();
                for i in items {
                    len_field(&mut list, 1, &encode_value(i));
                }
                len_field(&mut out, 6, &list);
            }
        }
        out
    }

    /// One length-delimited field: tag (`number`, wire type 2), varint length, bytes.
    pub fn len_field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        out.push(number << 3 | 2);
        let mut n = bytes.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(bytes);
    }

    /// Encodes `Metadata` with one `filter_metadata` entry, as `xds.route_metadata` arrives.
    pub fn encode_metadata(namespace: &str, v: &Value) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        map.insert(namespace.to_owned(), v.clone());
        encode_filter_metadata(&map)
    }

    /// Encodes `Metadata{filter_metadata}` from its namespaces (each a Struct).
    pub fn encode_filter_metadata(filter_metadata: &serde_json::Map<String, Value>) -> Vec<u8> {
        let mut out = Vec::new();
        for (namespace, v) in filter_metadata {
            let mut entry = Vec::new();
            len_field(&mut entry, 1, namespace.as_bytes());
            len_field(&mut entry, 2, &encode_struct(v));
            len_field(&mut out, 1, &entry);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{encode_metadata, encode_struct, len_field};
    use super::*;
    use serde_json::json;

    #[test]
    fn struct_round_trips() {
        let v = json!({"policy": {"allow_origins": ["https://a.com", "*"], "max_age": 600.0,
                       "allow_credentials": false, "x": null, "nested": {"l": [[1.5], {}]}}});
        assert_eq!(decode_struct(&encode_struct(&v)).unwrap(), v);
    }

    #[test]
    fn the_bytes_envoy_sent_decode() {
        // The start of what Envoy 1.40 handed the plugin for {"policy":{"allow_origins":[…]}}.
        let v = json!({"policy": {"allow_origins": ["https://a.com"]}});
        let bytes = encode_struct(&v);
        assert_eq!(bytes[0], 0x0a);
        assert_eq!(&bytes[2..4], b"\x0a\x06");
    }

    #[test]
    fn metadata_namespace_is_found() {
        let v = json!({"allow_origins": ["https://a.com"]});
        let md = encode_metadata("cors", &v);
        assert_eq!(filter_metadata(&md, "cors").unwrap(), Some(v));
        assert_eq!(filter_metadata(&md, "other").unwrap(), None);
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        for bad in [
            &b"\x0a\xff"[..],
            b"\x0a\x05\x0a\x01",
            b"\x0b",
            b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
        ] {
            assert!(decode_struct(bad).is_err(), "{bad:?}");
        }
        let mut deep = b"\x0a\x00".to_vec();
        for _ in 0..200 {
            let mut entry = Vec::new();
            len_field(&mut entry, 1, b"k");
            let mut value = Vec::new();
            len_field(&mut value, 5, &deep);
            len_field(&mut entry, 2, &value);
            deep.clear();
            len_field(&mut deep, 1, &entry);
        }
        assert!(decode_struct(&deep).is_err());
    }
}
