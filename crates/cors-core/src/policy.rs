//! One CORS policy, parsed from the fields of Envoy's `CorsPolicy` (plus the `allow_origins`
//! shorthand and our own `debug_reason_header`) or from those of the Gateway API's `HTTPRoute`
//! CORS filter (`allowOrigins`, …), validated, and compiled into the values its response
//! headers will carry. Forbidden combinations are refused in `check_combinations`.

use crate::cross_origin::{InUse, Protection};
use crate::enablement::Fraction;
use crate::fields::{child, expected, Fields, JsonError};
use crate::origin::AllowOrigin;
use crate::presets;
use crate::string_match::StringMatcher;
use crate::token_list::TokenList;
use serde_json::Value;

#[derive(Debug)]
pub struct Policy {
    /// Where the policy was written (`routes.api`, `policy`, …), for refusal reasons.
    pub name: String,
    pub origins: AllowOrigin,
    pub methods: TokenList,
    pub headers: TokenList,
    /// `Access-Control-Expose-Headers`, rendered (`*` included as written).
    pub expose_headers: Option<String>,
    /// `Access-Control-Max-Age`, rendered.
    pub max_age: Option<String>,
    pub allow_credentials: bool,
    pub allow_private_network_access: bool,
    pub forward_not_matching_preflights: bool,
    pub filter_enabled: Fraction,
    pub shadow_enabled: Fraction,
    /// Opt-in `x-cors-reason` on refusals (reveals policy details: for staging).
    pub debug_reason_header: bool,
    /// Written with the Gateway API's field names: reasons and warnings use them.
    pub gateway_api: bool,
    /// `cross_origin_protection` (`crossOriginProtection`): CSRF and WebSocket hijacking.
    pub cross_origin_protection: Protection,
    /// Counts this policy in `cross_origin::in_use` while it lives (protection on only).
    _protecting: Option<InUse>,
}

/// The field names a policy is written with. The names say which: a policy holding any of the
/// Gateway API's is read with its names and semantics, and may not mix in Envoy's.
struct Vocabulary {
    allow_origins: &'static str,
    allow_methods: &'static str,
    allow_headers: &'static str,
    expose_headers: &'static str,
    max_age: &'static str,
    allow_credentials: &'static str,
    /// Our addition to both vocabularies, spelt in each one's style.
    cross_origin_protection: &'static str,
    gateway_api: bool,
}

/// Envoy's `CorsPolicy` (and our additions).
const ENVOY: Vocabulary = Vocabulary {
    allow_origins: "allow_origins",
    allow_methods: "allow_methods",
    allow_headers: "allow_headers",
    expose_headers: "expose_headers",
    max_age: "max_age",
    allow_credentials: "allow_credentials",
    cross_origin_protection: "cross_origin_protection",
    gateway_api: false,
};

/// The Gateway API's `HTTPCORSFilter` (GEP-1767): `maxAge` defaults to 5 seconds, `*` stands
/// alone in a list, and refused preflights are answered, never forwarded (gateway-api #4515).
const GATEWAY_API: Vocabulary = Vocabulary {
    allow_origins: "allowOrigins",
    allow_methods: "allowMethods",
    allow_headers: "allowHeaders",
    expose_headers: "exposeHeaders",
    max_age: "maxAge",
    allow_credentials: "allowCredentials",
    cross_origin_protection: "crossOriginProtection",
    gateway_api: true,
};

/// Fields only Envoy's vocabulary has.
const ENVOY_ONLY: [&str; 6] = [
    "allow_origin_string_match",
    "allow_private_network_access",
    "forward_not_matching_preflights",
    "filter_enabled",
    "shadow_enabled",
    "debug_reason_header",
];

/// The vocabulary of the policy object `value`, or the error naming a field of the other one.
fn vocabulary(value: &Value, path: &str) -> Result<&'static Vocabulary, JsonError> {
    let Some(object) = value.as_object() else {
        return Ok(&ENVOY);
    };
    let names = |v: &Vocabulary| {
        [
            v.allow_origins,
            v.allow_methods,
            v.allow_headers,
            v.expose_headers,
            v.max_age,
            v.allow_credentials,
        ]
    };
    let Some(gateway_field) = object
        .keys()
        .find(|k| names(&GATEWAY_API).contains(&k.as_str()))
    else {
        return Ok(&ENVOY);
    };
    if let Some(envoy_field) = object
        .keys()
        .find(|k| names(&ENVOY).contains(&k.as_str()) || ENVOY_ONLY.contains(&k.as_str()))
    {
        return Err(JsonError::new(
            child(path, envoy_field),
            format!(
                "an Envoy CorsPolicy field in a policy written with the Gateway API's field \
                 names ({gateway_field}); write the policy in one vocabulary"
            ),
        ));
    }
    Ok(&GATEWAY_API)
}

impl Policy {
    /// Parses the policy object at `path`; configure-time notes go to `warnings`.
    pub fn from_json(
        value: &Value,
        path: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Policy, JsonError> {
        let v = vocabulary(value, path)?;
        let mut f = Fields::new(value, path)?;
        let mut origins = AllowOrigin::default();
        if let Some(list) = f.optional(v.allow_origins) {
            let list_path = f.path_of(v.allow_origins);
            let items = list
                .as_array()
                .ok_or_else(|| expected(&list_path, "a list of origins", list))?;
            if v.gateway_api && items.len() > 1 && items.iter().any(|i| i == "*") {
                return Err(JsonError::new(list_path, "\"*\" must be the only item"));
            }
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{list_path}[{i}]");
                let s = item
                    .as_str()
                    .ok_or_else(|| expected(&item_path, "a string", item))?;
                origins
                    .add_entry(s)
                    .map_err(|why| JsonError::new(item_path, why))?;
            }
        }
        // Envoy's own fields are not part of the Gateway API's vocabulary (`vocabulary` has
        // refused them there): not asked, so that an unknown field lists only its names.
        let envoy = !v.gateway_api;
        if let Some(list) = envoy
            .then(|| f.optional("allow_origin_string_match"))
            .flatten()
        {
            let list_path = f.path_of("allow_origin_string_match");
            let items = list
                .as_array()
                .ok_or_else(|| expected(&list_path, "a list of string matchers", list))?;
            for (i, item) in items.iter().enumerate() {
                origins.add_string_matcher(StringMatcher::from_json(
                    item,
                    &format!("{list_path}[{i}]"),
                )?);
            }
        }
        let token_list = |f: &mut Fields, key| match f.optional(key) {
            Some(v) => TokenList::from_json(v, &f.path_of(key)),
            None => Ok(TokenList::default()),
        };
        let methods = token_list(&mut f, v.allow_methods)?;
        let mut headers = token_list(&mut f, v.allow_headers)?;
        let mut expose = token_list(&mut f, v.expose_headers)?;
        // Our addition, in either vocabulary: a protocol's headers on top of the lists.
        if let Some(list) = f.optional("presets") {
            let (request, response) = presets::from_json(list, &f.path_of("presets"))?;
            headers = presets::extend(headers, &request);
            expose = presets::extend(expose, &response);
        }
        let max_age = match f.optional(v.max_age) {
            None if v.gateway_api => Some("5".to_owned()),
            None => None,
            Some(age) => Some(parse_max_age(age, &f.path_of(v.max_age))?.to_string()),
        };
        let allow_credentials = f.optional_bool(v.allow_credentials)?.unwrap_or(false);
        let flag = |f: &mut Fields, key| match envoy {
            true => f.optional_bool(key),
            false => Ok(None),
        };
        let allow_private_network_access =
            flag(&mut f, "allow_private_network_access")?.unwrap_or(false);
        let forward_not_matching_preflights =
            flag(&mut f, "forward_not_matching_preflights")?.unwrap_or(envoy);
        let debug_reason_header = flag(&mut f, "debug_reason_header")?.unwrap_or(false);
        let mut fraction = |f: &mut Fields, key, default| match envoy.then(|| f.optional(key)) {
            Some(Some(v)) => Fraction::from_json(v, &f.path_of(key), warnings),
            _ => Ok(default),
        };
        let filter_enabled = fraction(&mut f, "filter_enabled", Fraction::ALL)?;
        let shadow_enabled = fraction(&mut f, "shadow_enabled", Fraction::NONE)?;
        let cross_origin_protection = match f.optional(v.cross_origin_protection) {
            Some(value) => Protection::from_json(value, &f.path_of(v.cross_origin_protection))?,
            None => Protection::Off,
        };
        f.finish()?;

        let expose_headers = match &expose {
            TokenList::Any => Some("*".to_owned()),
            listed => listed.rendered().map(str::to_owned),
        };
        let policy = Policy {
            name: path.to_owned(),
            origins,
            methods,
            headers,
            expose_headers,
            max_age,
            allow_credentials,
            allow_private_network_access,
            forward_not_matching_preflights,
            filter_enabled,
            shadow_enabled,
            debug_reason_header,
            gateway_api: v.gateway_api,
            cross_origin_protection,
            _protecting: InUse::new(cross_origin_protection),
        };
        policy.check_combinations(v, warnings)?;
        Ok(policy)
    }

    /// The one place where combinations of otherwise valid fields are refused or flagged.
    fn check_combinations(
        &self,
        v: &Vocabulary,
        warnings: &mut Vec<String>,
    ) -> Result<(), JsonError> {
        let path = &self.name;
        if self.allow_credentials && self.origins.allows_any() {
            let gateway = if v.gateway_api {
                " (the Gateway API would echo any origin with credentials; this filter refuses to)"
            } else {
                ""
            };
            return Err(JsonError::new(
                format!("{path}.{}", v.allow_credentials),
                format!(
                    "true together with an allow-any origin (\"*\") would let every website read \
                     credentialed responses{gateway}; list the allowed origins instead"
                ),
            ));
        }
        if self.allow_credentials && self.expose_headers.as_deref() == Some("*") {
            warnings.push(format!(
                "{path}.{}: \"*\" does not expose anything to credentialed requests \
                 (Fetch standard); list the header names",
                v.expose_headers
            ));
        }
        if self.origins.is_empty() {
            let fields = if v.gateway_api {
                "allowOrigins"
            } else {
                "allow_origins or allow_origin_string_match"
            };
            warnings.push(format!("{path}: no {fields}: every origin is refused"));
        }
        if self.cross_origin_protection != Protection::Off && self.origins.allows_any() {
            warnings.push(format!(
                "{path}.{}: every origin is allowed, so every origin is trusted: only unsafe \
                 requests without Origin and with a cross-site Sec-Fetch-Site are refused",
                v.cross_origin_protection
            ));
        }
        Ok(())
    }
}

/// `max_age`: seconds, an integer or a numeric string (Envoy's form).
fn parse_max_age(v: &Value, path: &str) -> Result<u32, JsonError> {
    let bad = || {
        JsonError::new(
            path,
            format!(
                "expected a non-negative number of seconds, found {}",
                crate::fields::render(v)
            ),
        )
    };
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x <= f64::from(u32::MAX))
            .map(|x| x as u32)
            .ok_or_else(bad),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Policy, JsonError> {
        Policy::from_json(&v, "routes.api", &mut Vec::new())
    }

    #[test]
    fn envoy_fields_parse() {
        let p = parse(json!({
            "allow_origin_string_match": [{"exact": "https://a.com"}, {"suffix": ".b.com"}],
            "allow_methods": "GET, POST", "allow_headers": "x-a", "expose_headers": ["x-b", "x-c"],
            "max_age": "600", "allow_credentials": true, "allow_private_network_access": true,
            "forward_not_matching_preflights": false,
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        }))
        .unwrap();
        assert_eq!(p.max_age.as_deref(), Some("600"));
        assert_eq!(p.expose_headers.as_deref(), Some("x-b, x-c"));
        assert!(p.allow_credentials && !p.forward_not_matching_preflights);
    }

    #[test]
    fn gateway_api_field_names_parse_with_its_semantics() {
        let p = parse(json!({
            "allowOrigins": ["https://a.com", "https://*.b.com"],
            "allowMethods": ["GET", "OPTIONS"], "allowHeaders": ["x-header-1"],
            "exposeHeaders": ["x-header-3"], "allowCredentials": true,
        }))
        .unwrap();
        assert!(p.gateway_api && p.allow_credentials);
        assert_eq!(p.max_age.as_deref(), Some("5"), "maxAge defaults to 5");
        assert!(
            !p.forward_not_matching_preflights,
            "refused preflights are answered"
        );
        assert_eq!(p.expose_headers.as_deref(), Some("x-header-3"));
        let p = parse(json!({"allowOrigins": ["*"], "maxAge": 3600})).unwrap();
        assert_eq!(p.max_age.as_deref(), Some("3600"));
    }

    #[test]
    fn gateway_api_errors_name_its_fields() {
        let err = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(
            err(json!({"allowOrigins": ["https://a.com"], "allow_methods": "GET"})),
            "routes.api.allow_methods: an Envoy CorsPolicy field in a policy written with the \
             Gateway API's field names (allowOrigins); write the policy in one vocabulary"
        );
        assert_eq!(
            err(json!({"allowOrigins": ["https://a.com", "*"]})),
            "routes.api.allowOrigins: \"*\" must be the only item"
        );
        assert_eq!(
            err(json!({"allowOrigins": ["*"], "allowMethods": ["GET", "*"]})),
            "routes.api.allowMethods: \"*\" must be the only item"
        );
        assert!(
            err(json!({"allowOrigins": ["*"], "allowCredentials": true}))
                .starts_with("routes.api.allowCredentials: true together with an allow-any origin")
        );
        assert!(err(json!({"allowOrigins": ["*"], "filter_enabled": {}}))
            .starts_with("routes.api.filter_enabled: an Envoy CorsPolicy field"));
        assert!(err(json!({"allowOrigins": ["*"], "allowMethod": ["GET"]}))
            .starts_with("routes.api.allowMethod: unknown field"));
    }

    #[test]
    fn any_origin_with_credentials_is_refused() {
        let e = parse(json!({"allow_origins": ["*"], "allow_credentials": true})).unwrap_err();
        assert_eq!(e.path, "routes.api.allow_credentials");
        let e = parse(
            json!({"allow_origin_string_match": [{"exact": "*"}], "allow_credentials": true}),
        )
        .unwrap_err();
        assert!(e.message.contains("every website"));
    }

    #[test]
    fn string_matcher_matching_star_with_credentials_is_refused_as_any_origin() {
        let e = parse(
            json!({"allow_origin_string_match": [{"safe_regex": {"regex": ".*"}}],
                             "allow_credentials": true}),
        )
        .unwrap_err();
        assert_eq!(e.path, "routes.api.allow_credentials");
        assert!(parse(
            json!({"allow_origin_string_match": [{"safe_regex": {"regex": "https://.*"}}],
                             "allow_credentials": true})
        )
        .is_ok());
    }

    #[test]
    fn bad_fields_name_their_path() {
        let cases = [
            (
                json!({"allow_origins": ["https://a.com", "app.example.com/path"]}),
                "routes.api.allow_origins[1]",
            ),
            (
                json!({"allow_origins": "https://a.com"}),
                "routes.api.allow_origins",
            ),
            (json!({"max_age": -1}), "routes.api.max_age"),
            (json!({"max_age": "ten"}), "routes.api.max_age"),
            (json!({"max_age": 1.5}), "routes.api.max_age"),
            (
                json!({"allow_credentials": "yes"}),
                "routes.api.allow_credentials",
            ),
            (json!({"allow_origin": ["*"]}), "routes.api.allow_origin"),
            (json!("https://a.com"), "routes.api"),
        ];
        for (v, path) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert_eq!(e.path, path, "{v}: {e}");
        }
        let e = parse(json!({"allow_origin": ["*"]})).unwrap_err();
        assert!(e.message.starts_with("unknown field"), "{e}");
    }

    #[test]
    fn max_age_accepts_integer_and_numeric_string() {
        assert_eq!(
            parse(json!({"max_age": 600})).unwrap().max_age.as_deref(),
            Some("600")
        );
        assert_eq!(
            parse(json!({"max_age": 600.0})).unwrap().max_age.as_deref(),
            Some("600")
        );
        assert_eq!(
            parse(json!({"max_age": "0"})).unwrap().max_age.as_deref(),
            Some("0")
        );
    }

    #[test]
    fn cross_origin_protection_is_in_both_vocabularies_and_refuses_other_values() {
        use crate::cross_origin::Protection;
        assert_eq!(
            parse(json!({"allow_origins": ["https://a.com"]}))
                .unwrap()
                .cross_origin_protection,
            Protection::Off
        );
        let p =
            parse(json!({"allow_origins": ["https://a.com"], "cross_origin_protection": "report"}));
        assert_eq!(p.unwrap().cross_origin_protection, Protection::Report);
        let p =
            parse(json!({"allowOrigins": ["https://a.com"], "crossOriginProtection": "enforce"}));
        assert_eq!(p.unwrap().cross_origin_protection, Protection::Enforce);
        let e = parse(json!({"cross_origin_protection": "on"})).unwrap_err();
        assert_eq!(e.path, "routes.api.cross_origin_protection");
        assert!(
            e.message.contains("\"off\", \"report\", \"enforce\""),
            "{e}"
        );
        let e = parse(json!({"allowOrigins": ["*"], "cross_origin_protection": "enforce"}));
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("routes.api.cross_origin_protection: unknown field"));
        let mut warnings = Vec::new();
        Policy::from_json(
            &json!({"allow_origins": ["*"], "cross_origin_protection": "enforce"}),
            "policy",
            &mut warnings,
        )
        .unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("policy.cross_origin_protection: every origin is allowed")),
            "{warnings:?}"
        );
    }
}
