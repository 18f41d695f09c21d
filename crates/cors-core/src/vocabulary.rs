//! The four vocabularies a policy may be pasted in, and how a policy's fields say which one it
//! is written in: Envoy's `CorsPolicy` (snake_case), and three that share camelCase names with
//! different meanings — the Gateway API's `HTTPCORSFilter`, Istio's `corsPolicy` and Envoy
//! Gateway's `SecurityPolicy.spec.cors`.
//!
//! The camelCase three are told apart by what only one of them can hold:
//! - Istio: `unmatchedPreflights` or the deprecated `allowOrigin`, or an `allowOrigins` entry
//!   that is an object (`{exact | prefix | regex}`);
//! - Envoy Gateway: `maxAge` written as a duration string (the Gateway API's is an integer), or
//!   `*` together with other items in a list (the Gateway API refuses that); a string of digits
//!   is the Gateway API's integer as inline YAML delivers `60.0`;
//! - otherwise the Gateway API's. Its reading of a block that could be Envoy Gateway's differs
//!   only in `Access-Control-Max-Age: 5` where Envoy Gateway sends none, and 5 s is what
//!   browsers assume without the header: the same for a browser.

use crate::fields::{child, JsonError};
use crate::number;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// Envoy's `CorsPolicy`, plus our `allow_origins` shorthand and snake_case additions.
    Envoy,
    /// The Gateway API's `HTTPCORSFilter` (GEP-1767).
    GatewayApi,
    /// Istio's `VirtualService` `spec.http[].corsPolicy` (`networking.istio.io/v1`).
    Istio,
    /// Envoy Gateway's `SecurityPolicy.spec.cors` (`gateway.envoyproxy.io/v1alpha1`).
    EnvoyGateway,
}

/// Envoy's field names shared in spirit with the camelCase vocabularies.
const ENVOY_FIELDS: [&str; 12] = [
    "allow_origins",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "max_age",
    "allow_credentials",
    "allow_origin_string_match",
    "allow_private_network_access",
    "forward_not_matching_preflights",
    "filter_enabled",
    "shadow_enabled",
    "debug_reason_header",
];

/// The field names all three camelCase vocabularies share.
const CAMEL_FIELDS: [&str; 6] = [
    "allowOrigins",
    "allowMethods",
    "allowHeaders",
    "exposeHeaders",
    "maxAge",
    "allowCredentials",
];

/// Fields only Istio's vocabulary has.
pub const ISTIO_ONLY: [&str; 2] = ["unmatchedPreflights", "allowOrigin"];

impl Vocabulary {
    /// The vocabulary of the policy object `value` at `path`, or the error naming a field of
    /// Envoy's vocabulary mixed into a camelCase one. Anything that is not an object is read as
    /// Envoy's, whose parser then says what is wrong with it.
    pub fn of(value: &Value, path: &str) -> Result<Vocabulary, JsonError> {
        let Some(object) = value.as_object() else {
            return Ok(Vocabulary::Envoy);
        };
        let camel =
            |k: &&String| CAMEL_FIELDS.contains(&k.as_str()) || ISTIO_ONLY.contains(&k.as_str());
        let Some(camel_field) = object.keys().find(camel) else {
            return Ok(Vocabulary::Envoy);
        };
        let vocabulary = camel_vocabulary(object);
        if let Some(envoy_field) = object.keys().find(|k| ENVOY_FIELDS.contains(&k.as_str())) {
            return Err(JsonError::new(
                child(path, envoy_field),
                format!(
                    "an Envoy CorsPolicy field in a policy written with {} field names \
                     ({camel_field}); write the policy in one vocabulary",
                    vocabulary.possessive()
                ),
            ));
        }
        Ok(vocabulary)
    }

    /// Written with camelCase field names (`allowOrigins`, …): reasons and warnings use them.
    pub fn camel_case(self) -> bool {
        self != Vocabulary::Envoy
    }

    /// "the Gateway API", for messages.
    pub fn name(self) -> &'static str {
        match self {
            Vocabulary::Envoy => "Envoy",
            Vocabulary::GatewayApi => "the Gateway API",
            Vocabulary::Istio => "Istio",
            Vocabulary::EnvoyGateway => "Envoy Gateway",
        }
    }

    /// "the Gateway API's", for messages.
    pub fn possessive(self) -> &'static str {
        match self {
            Vocabulary::Envoy => "Envoy's",
            Vocabulary::GatewayApi => "the Gateway API's",
            Vocabulary::Istio => "Istio's",
            Vocabulary::EnvoyGateway => "Envoy Gateway's",
        }
    }

    pub fn allow_origins(self) -> &'static str {
        self.pick("allow_origins", "allowOrigins")
    }
    pub fn allow_methods(self) -> &'static str {
        self.pick("allow_methods", "allowMethods")
    }
    pub fn allow_headers(self) -> &'static str {
        self.pick("allow_headers", "allowHeaders")
    }
    pub fn expose_headers(self) -> &'static str {
        self.pick("expose_headers", "exposeHeaders")
    }
    pub fn max_age(self) -> &'static str {
        self.pick("max_age", "maxAge")
    }
    pub fn allow_credentials(self) -> &'static str {
        self.pick("allow_credentials", "allowCredentials")
    }
    /// Our addition to every vocabulary, spelt in each one's style.
    pub fn cross_origin_protection(self) -> &'static str {
        self.pick("cross_origin_protection", "crossOriginProtection")
    }

    fn pick(self, snake: &'static str, camel: &'static str) -> &'static str {
        if self.camel_case() {
            camel
        } else {
            snake
        }
    }
}

/// Which camelCase vocabulary `object` is written in (see the module comment).
fn camel_vocabulary(object: &Map<String, Value>) -> Vocabulary {
    let istio = ISTIO_ONLY.iter().any(|k| object.contains_key(*k))
        || object
            .get("allowOrigins")
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(Value::is_object));
    if istio {
        return Vocabulary::Istio;
    }
    let star_among_others = |key| {
        object
            .get(key)
            .and_then(Value::as_array)
            .is_some_and(|items| items.len() > 1 && items.iter().any(|i| i == "*"))
    };
    // A string of digits is the Gateway API's integer as inline YAML may deliver it (`60.0`).
    let duration = |v: &Value| v.is_string() && number::whole(v, u64::MAX).is_none();
    let envoy_gateway = object.get("maxAge").is_some_and(duration)
        || [
            "allowOrigins",
            "allowMethods",
            "allowHeaders",
            "exposeHeaders",
        ]
        .into_iter()
        .any(star_among_others);
    if envoy_gateway {
        Vocabulary::EnvoyGateway
    } else {
        Vocabulary::GatewayApi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: Value) -> Result<Vocabulary, JsonError> {
        Vocabulary::of(&v, "policy")
    }

    #[test]
    fn the_fields_tell_the_vocabulary() {
        use Vocabulary::*;
        assert_eq!(of(json!({"allow_origins": ["*"]})), Ok(Envoy));
        assert_eq!(of(json!({})), Ok(Envoy));
        assert_eq!(
            of(json!({"allowOrigins": ["*"], "maxAge": 60})),
            Ok(GatewayApi)
        );
        assert_eq!(of(json!({"allowMethods": ["GET"]})), Ok(GatewayApi));
        assert_eq!(
            of(json!({"allowOrigins": [{"exact": "https://a.com"}]})),
            Ok(Istio)
        );
        assert_eq!(of(json!({"allowOrigin": ["https://a.com"]})), Ok(Istio));
        assert_eq!(of(json!({"unmatchedPreflights": "IGNORE"})), Ok(Istio));
        assert_eq!(
            of(json!({"allowOrigins": [{"prefix": "https://a"}], "maxAge": "24h"})),
            Ok(Istio)
        );
        assert_eq!(
            of(json!({"allowOrigins": ["https://a.com"], "maxAge": "1h"})),
            Ok(EnvoyGateway)
        );
        assert_eq!(of(json!({"allowMethods": ["GET", "*"]})), Ok(EnvoyGateway));
    }

    #[test]
    fn mixing_in_an_envoy_field_names_it_and_the_vocabulary() {
        let e =
            of(json!({"allowOrigins": [{"exact": "https://a.com"}], "max_age": "60"})).unwrap_err();
        assert_eq!(e.path, "policy.max_age");
        assert!(
            e.message
                .contains("with Istio's field names (allowOrigins)"),
            "{e}"
        );
        let e = of(json!({"maxAge": "1h", "filter_enabled": {}})).unwrap_err();
        assert!(e.message.contains("Envoy Gateway's"), "{e}");
    }
}
