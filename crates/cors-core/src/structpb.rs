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
    fn len_field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
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

/// Test vectors come from a real encoder: `prost` with `prost-types`' `Struct`, `Value` and
/// `ListValue`, and Envoy itself (`tests/fixtures/`, captured from Envoy 1.40.0). Our own
/// `encode` is checked against prost here, not used to make vectors.
#[cfg(test)]
mod tests {
    use super::encode::{encode_filter_metadata, encode_struct};
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::Config as PropConfig;
    use prost::Message;
    use prost_types::value::Kind;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// `envoy.config.core.v3.Metadata`, the part `xds.route_metadata` carries that we read.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Metadata {
        #[prost(btree_map = "string, message", tag = "1")]
        filter_metadata: BTreeMap<String, prost_types::Struct>,
    }

    /// The protobuf form of a JSON value (numbers as f64, as Struct holds them).
    fn to_prost(v: &Value) -> prost_types::Value {
        let kind = match v {
            Value::Null => Kind::NullValue(0),
            Value::Bool(b) => Kind::BoolValue(*b),
            Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
            Value::String(s) => Kind::StringValue(s.clone()),
            Value::Array(items) => Kind::ListValue(prost_types::ListValue {
                values: items.iter().map(to_prost).collect(),
            }),
            Value::Object(_) => Kind::StructValue(to_prost_struct(v)),
        };
        prost_types::Value { kind: Some(kind) }
    }

    fn to_prost_struct(v: &Value) -> prost_types::Struct {
        let map = v.as_object().unwrap();
        prost_types::Struct {
            fields: map.iter().map(|(k, v)| (k.clone(), to_prost(v))).collect(),
        }
    }

    fn prost_bytes(v: &Value) -> Vec<u8> {
        to_prost_struct(v).encode_to_vec()
    }

    /// Equal values, with every float's bits (serde_json prints floats in their shortest
    /// round-trip form, so `-0.0` and `0.0` print differently).
    fn assert_same(ours: &Value, expected: &Value) {
        assert_eq!(ours, expected);
        assert_eq!(ours.to_string(), expected.to_string());
    }

    /// What Envoy 1.40.0 handed the plugin for the inline YAML configuration in
    /// `tests/fixtures/capture-envoy.yaml`: integers arrive as numbers, but numbers written
    /// with a fraction or an exponent (`12.5`, `-1.5e-3`, `1.0e+300`) arrive as strings.
    fn envoy_plugin_configuration() -> Value {
        json!({
            "big": "1.0e+300",
            "note": "\u{e9} \u{2713} \u{1f600} \"quoted\"\ttab",
            "policy": {
                "allow_credentials": true,
                "allow_headers": ["content-type", "authorization"],
                "allow_methods": "GET, POST, PUT",
                "allow_origins": ["https://app.example.com", "https://*.app.example.com"],
                "debug_reason_header": false,
                "expose_headers": [],
                "filter_enabled": {"default_value": {"denominator": "HUNDRED", "numerator": "12.5"}},
                "max_age": 600.0
            },
            "routes": {
                "health": null,
                "public-catalog": {"allow_origins": ["*"], "max_age": "-1.5e-3"}
            },
            "virtual_hosts": {}
        })
    }

    const ENVOY_PLUGIN_CONFIGURATION: &[u8] =
        include_bytes!("../tests/fixtures/envoy-1.40.0-plugin-configuration.struct.bin");
    const ENVOY_ROUTE_METADATA: &[u8] =
        include_bytes!("../tests/fixtures/envoy-1.40.0-route-metadata.metadata.bin");

    #[test]
    fn the_plugin_configuration_envoy_sent_decodes() {
        let decoded = decode_struct(ENVOY_PLUGIN_CONFIGURATION).unwrap();
        assert_same(&decoded, &envoy_plugin_configuration());
        // prost reads the same bytes as the same message, so the vectors below are like Envoy's.
        let by_prost = prost_types::Struct::decode(ENVOY_PLUGIN_CONFIGURATION).unwrap();
        assert_eq!(by_prost, to_prost_struct(&envoy_plugin_configuration()));
    }

    #[test]
    fn the_route_metadata_envoy_sent_decodes() {
        let cors = json!({
            "allow_credentials": false,
            "allow_headers": ["content-type"],
            "allow_methods": "PUT",
            "allow_origins": ["https://app.example.com"],
            "filter_enabled": null,
            "max_age": 300.0
        });
        let found = filter_metadata(ENVOY_ROUTE_METADATA, "cors")
            .unwrap()
            .unwrap();
        assert_same(&found, &cors);
        let lb = filter_metadata(ENVOY_ROUTE_METADATA, "envoy.lb").unwrap();
        assert_eq!(lb, Some(json!({"canary": true})));
        assert_eq!(
            filter_metadata(ENVOY_ROUTE_METADATA, "other").unwrap(),
            None
        );
        let by_prost = Metadata::decode(ENVOY_ROUTE_METADATA).unwrap();
        assert_eq!(by_prost.filter_metadata["cors"], to_prost_struct(&cors));
        // A route without metadata gives no bytes at all.
        assert_eq!(filter_metadata(b"", "cors").unwrap(), None);
    }

    #[test]
    fn every_kind_of_value_encoded_by_prost_decodes() {
        let v = json!({
            "": "empty key",
            "null": null,
            "t": true,
            "f": false,
            "numbers": [0.0, -0.0, 1.5, -600.0, 1e300, 5e-324, f64::MAX, f64::MIN_POSITIVE],
            "strings": ["", "plain", "\u{0}\u{1f}\"\\", "\u{e9}\u{1f600}"],
            "list": [[], [[]], [{}], [null, true, 1.0, "x", {"k": [1.0]}]],
            "struct": {"a": {"b": {"c": {}}}}
        });
        assert_same(&decode_struct(&prost_bytes(&v)).unwrap(), &v);
        assert_same(&decode_struct(&[]).unwrap(), &json!({}));
    }

    #[test]
    fn metadata_encoded_by_prost_gives_each_namespace() {
        let cors = json!({"allow_origins": ["https://a.com"], "max_age": 60.0});
        let md = Metadata {
            filter_metadata: BTreeMap::from([
                ("cors".to_owned(), to_prost_struct(&cors)),
                ("empty".to_owned(), prost_types::Struct::default()),
                ("other".to_owned(), to_prost_struct(&json!({"cors": "no"}))),
            ]),
        }
        .encode_to_vec();
        assert_same(&filter_metadata(&md, "cors").unwrap().unwrap(), &cors);
        // prost leaves an empty Struct out of its map entry: still an (empty) namespace.
        assert_eq!(filter_metadata(&md, "empty").unwrap(), Some(json!({})));
        assert_eq!(filter_metadata(&md, "absent").unwrap(), None);
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
        let nested = |depth: usize| {
            let mut v = json!({});
            for _ in 0..depth {
                v = json!({ "k": v });
            }
            prost_bytes(&v)
        };
        assert!(decode_struct(&nested(MAX_DEPTH / 2)).is_ok());
        assert!(decode_struct(&nested(200)).is_err());
    }

    // ---- properties: prost and our code agree on any JSON object ----

    /// Any JSON value a Struct can hold: finite f64 numbers (any bits), any strings.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>()
                .prop_map(f64::from_bits)
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            prop_oneof![Just(0.0), Just(-0.0), -1e6..1e6f64].prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                json_object(inner),
            ]
        })
    }

    fn json_object(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        let key = prop_oneof![Just(String::new()), "[a-z_]{1,8}", ".{1,8}"];
        prop::collection::btree_map(key, value, 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #![proptest_config(PropConfig { cases: 1000, failure_persistence: None, ..PropConfig::default() })]

        /// prost encodes, we decode: the same value, floats to the bit.
        #[test]
        fn what_prost_encodes_we_decode(v in json_object(json_value())) {
            prop_assert_eq!(decode_struct(&prost_bytes(&v)).unwrap().to_string(), v.to_string());
        }

        /// Our encoder (used by cors-explain and fuzz/), read back by prost: the same message,
        /// and prost re-encodes it to the bytes it makes from the value itself.
        #[test]
        fn what_we_encode_prost_decodes(v in json_object(json_value())) {
            let decoded = prost_types::Struct::decode(encode_struct(&v).as_slice()).unwrap();
            prop_assert_eq!(&decoded, &to_prost_struct(&v));
            prop_assert_eq!(decoded.encode_to_vec(), prost_bytes(&v));
        }

    }

    proptest! {
        #![proptest_config(PropConfig { cases: 500, failure_persistence: None, ..PropConfig::default() })]

        /// Metadata both ways: every namespace prost wrote is found, others are not, and our
        /// `encode_filter_metadata` reads back in prost as the same message.
        #[test]
        fn metadata_agrees_with_prost(
            namespaces in prop::collection::btree_map("[a-z.]{0,6}", json_object(json_value()), 0..4),
            absent in "[a-z.]{0,6}",
        ) {
            let md = Metadata {
                filter_metadata: namespaces.iter().map(|(k, v)| (k.clone(), to_prost_struct(v))).collect(),
            };
            let bytes = md.encode_to_vec();
            for (ns, v) in &namespaces {
                prop_assert_eq!(filter_metadata(&bytes, ns).unwrap().map(|v| v.to_string()), Some(v.to_string()));
            }
            if !namespaces.contains_key(&absent) {
                prop_assert_eq!(filter_metadata(&bytes, &absent).unwrap(), None);
            }
            let ours = encode_filter_metadata(&namespaces.clone().into_iter().collect());
            prop_assert_eq!(Metadata::decode(ours.as_slice()).unwrap(), md);
        }
    }
}
