//! One CORS policy, parsed from the fields of one of four vocabularies (`vocabulary.rs` says
//! how the names tell which): Envoy's `CorsPolicy` (plus the `allow_origins` shorthand and our
//! own `debug_reason_header`), the Gateway API's `HTTPCORSFilter`, Istio's `corsPolicy`
//! (`istio.rs`) or Envoy Gateway's `SecurityPolicy.spec.cors`; validated, and compiled into the
//! values its response headers will carry. Forbidden combinations are refused in
//! `check_combinations`.

use crate::cross_origin::{InUse, Protection};
use crate::enablement::Fraction;
use crate::fields::{expected, string_items, Fields, JsonError};
use crate::istio;
use crate::number;
use crate::origin::AllowOrigin;
use crate::presets;
use crate::string_match::StringMatcher;
use crate::token_list::TokenList;
pub use crate::vocabulary::Vocabulary;
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
    /// The vocabulary it was written in: reasons and warnings use its field names.
    pub vocabulary: Vocabulary,
    /// `cross_origin_protection` (`crossOriginProtection`): CSRF and WebSocket hijacking.
    pub cross_origin_protection: Protection,
    /// Counts this policy in `cross_origin::in_use` while it lives (protection on only).
    _protecting: Option<InUse>,
}

impl Policy {
    /// Parses the policy object at `path`; configure-time notes go to `warnings`.
    pub fn from_json(
        value: &Value,
        path: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Policy, JsonError> {
        let v = Vocabulary::of(value, path)?;
        let mut f = Fields::new(value, path)?;
        let mut origins = AllowOrigin::default();
        if v == Vocabulary::Istio {
            istio::read_origins(&mut f, &mut origins, warnings)?;
        } else if let Some(list) = f.optional(v.allow_origins()) {
            let list_path = f.path_of(v.allow_origins());
            for item in string_items(list, &list_path, "a list of origins")? {
                let (item_path, s) = item?;
                origins
                    .add_entry(s)
                    .map_err(|why| JsonError::new(item_path, why))?;
            }
        }
        // Envoy's own fields belong to no other vocabulary (`Vocabulary::of` has refused them
        // there): not asked, so that an unknown field lists only the vocabulary's names.
        let envoy = v == Vocabulary::Envoy;
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
        let token_list = |f: &mut Fields, key| -> Result<TokenList, JsonError> {
            let Some(list) = f.optional(key) else {
                return Ok(TokenList::default());
            };
            match v {
                // Envoy Gateway's translator: a `*` anywhere in the list makes it `*`.
                Vocabulary::EnvoyGateway
                    if list.as_array().is_some_and(|l| l.iter().any(|i| i == "*")) =>
                {
                    Ok(TokenList::Any)
                }
                Vocabulary::Istio => TokenList::from_json(list, &f.path_of(key)).map(istio::joined),
                _ => TokenList::from_json(list, &f.path_of(key)),
            }
        };
        if v == Vocabulary::Istio {
            if let Some(list) = f.optional("allowMethods") {
                istio::check_methods(list, &f.path_of("allowMethods"))?;
            }
        }
        let methods = token_list(&mut f, v.allow_methods())?;
        let mut headers = token_list(&mut f, v.allow_headers())?;
        let mut expose = token_list(&mut f, v.expose_headers())?;
        // Our addition, in every vocabulary: a protocol's headers on top of the lists.
        if let Some(list) = f.optional("presets") {
            let (request, response) = presets::from_json(list, &f.path_of("presets"))?;
            headers = presets::extend(headers, &request);
            expose = presets::extend(expose, &response);
        }
        let max_age = match f.optional(v.max_age()) {
            None if v == Vocabulary::GatewayApi => Some("5".to_owned()),
            None => None,
            Some(age) => Some(parse_max_age(v, age, &f.path_of(v.max_age()))?.to_string()),
        };
        let allow_credentials = f.optional_bool(v.allow_credentials())?.unwrap_or(false);
        let flag = |f: &mut Fields, key| match envoy {
            true => f.optional_bool(key),
            false => Ok(None),
        };
        let allow_private_network_access =
            flag(&mut f, "allow_private_network_access")?.unwrap_or(false);
        let forward_not_matching_preflights = match v {
            Vocabulary::Envoy => flag(&mut f, "forward_not_matching_preflights")?.unwrap_or(true),
            Vocabulary::Istio => istio::forward_unmatched(&mut f)?,
            // The Gateway API (gateway-api #4515) and Envoy Gateway's translator
            // (`ForwardNotMatchingPreflights: false`) answer them.
            Vocabulary::GatewayApi | Vocabulary::EnvoyGateway => false,
        };
        let debug_reason_header = flag(&mut f, "debug_reason_header")?.unwrap_or(false);
        let mut fraction = |f: &mut Fields, key, default| match envoy.then(|| f.optional(key)) {
            Some(Some(v)) => Fraction::from_json(v, &f.path_of(key), warnings),
            _ => Ok(default),
        };
        let filter_enabled = fraction(&mut f, "filter_enabled", Fraction::ALL)?;
        let shadow_enabled = fraction(&mut f, "shadow_enabled", Fraction::NONE)?;
        let cross_origin_protection = match f.optional(v.cross_origin_protection()) {
            Some(value) => Protection::from_json(value, &f.path_of(v.cross_origin_protection()))?,
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
            vocabulary: v,
            cross_origin_protection,
            _protecting: InUse::new(cross_origin_protection),
        };
        policy.check_combinations(warnings)?;
        Ok(policy)
    }

    /// The one place where combinations of otherwise valid fields are refused or flagged.
    fn check_combinations(&self, warnings: &mut Vec<String>) -> Result<(), JsonError> {
        let (path, v) = (&self.name, self.vocabulary);
        if self.allow_credentials && self.origins.allows_any() {
            let echo = match v {
                Vocabulary::Envoy => String::new(),
                _ => format!(
                    " ({} would echo any origin with credentials; this filter refuses to)",
                    v.name()
                ),
            };
            return Err(JsonError::new(
                format!("{path}.{}", v.allow_credentials()),
                format!(
                    "true together with an allow-any origin (\"*\") would let every website read \
                     credentialed responses{echo}; list the allowed origins instead"
                ),
            ));
        }
        if self.allow_credentials && self.expose_headers.as_deref() == Some("*") {
            warnings.push(format!(
                "{path}.{}: \"*\" does not expose anything to credentialed requests \
                 (Fetch standard); list the header names",
                v.expose_headers()
            ));
        }
        if self.origins.is_empty() {
            let fields = match v {
                Vocabulary::Envoy => "allow_origins or allow_origin_string_match",
                _ => "allowOrigins",
            };
            warnings.push(format!("{path}: no {fields}: every origin is refused"));
        }
        if self.cross_origin_protection != Protection::Off && self.origins.allows_any() {
            warnings.push(format!(
                "{path}.{}: every origin is allowed, so every origin is trusted: only unsafe \
                 requests without Origin and with a cross-site Sec-Fetch-Site are refused",
                v.cross_origin_protection()
            ));
        }
        Ok(())
    }
}

/// `max_age` / `maxAge` in seconds, as each vocabulary writes it: whole seconds in Envoy's (a
/// number or a string of digits) and the Gateway API's (a number); a duration string in Istio's
/// (whole seconds only, as Istio's validation requires) and Envoy Gateway's (cut to whole
/// seconds, as its translator does with `int(Seconds())`).
fn parse_max_age(v: Vocabulary, value: &Value, path: &str) -> Result<u32, JsonError> {
    let max = u64::from(u32::MAX);
    match v {
        Vocabulary::Envoy | Vocabulary::GatewayApi => number::whole(value, max)
            .map(|n| n as u32)
            .ok_or_else(|| number::not_whole(path, "whole seconds, such as 600", value)),
        Vocabulary::Istio | Vocabulary::EnvoyGateway => {
            let Value::String(text) = value else {
                return Err(JsonError::new(
                    path,
                    format!(
                        "expected a duration string such as \"24h\", \"1m30s\" or \"600s\" \
                         ({} maxAge), found {}",
                        v.possessive(),
                        crate::fields::render(value)
                    ),
                ));
            };
            let nanos = number::duration_nanos(text).map_err(|why| JsonError::new(path, why))?;
            let (seconds, rest) = number::split_seconds(nanos);
            if v == Vocabulary::Istio && rest != 0 {
                return Err(JsonError::new(
                    path,
                    format!("{text:?}: Istio takes whole seconds only; write \"{seconds}s\""),
                ));
            }
            u32::try_from(seconds)
                .map_err(|_| JsonError::new(path, format!("{text:?} is longer than {max} seconds")))
        }
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
        assert!(p.vocabulary == Vocabulary::GatewayApi && p.allow_credentials);
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
        // `*` among other items is Envoy Gateway's (the Gateway API refuses it), whose maxAge
        // is a duration string.
        assert_eq!(
            err(json!({"allowOrigins": ["https://a.com", "*"], "maxAge": 60})),
            "routes.api.maxAge: expected a duration string such as \"24h\", \"1m30s\" or \
             \"600s\" (Envoy Gateway's maxAge), found 60"
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
    fn istio_fields_parse_with_what_istio_generates() {
        let p = parse(json!({
            "allowOrigins": [{"exact": "https://a.com"}, {"prefix": "https://b"},
                             {"regex": "https://[a-z]+\\.c\\.com"}],
            "allowMethods": ["POST", "GET"], "allowHeaders": ["X-Foo-Bar", "X-Foo-Baz"],
            "exposeHeaders": ["x-a"], "maxAge": "24h", "allowCredentials": true,
        }))
        .unwrap();
        assert_eq!(p.vocabulary, Vocabulary::Istio);
        assert_eq!(p.max_age.as_deref(), Some("86400"));
        assert_eq!(
            p.methods.rendered(),
            Some("POST,GET"),
            "joined with a bare comma"
        );
        assert_eq!(p.headers.rendered(), Some("X-Foo-Bar,X-Foo-Baz"));
        assert!(
            p.forward_not_matching_preflights,
            "unset unmatchedPreflights forwards"
        );
        let p = parse(json!({"allowOrigin": ["https://a.com"], "unmatchedPreflights": "IGNORE"}));
        let p = p.unwrap();
        assert!(!p.forward_not_matching_preflights && p.max_age.is_none());
        assert!(p.origins.matches("https://a.com", false).is_some());
    }

    #[test]
    fn istio_refusals_name_istio_fields_and_say_what_to_write() {
        let err = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(
            err(json!({"allowOrigins": [{"exact": "https://a.com"}], "maxAge": "2.5s"})),
            "routes.api.maxAge: \"2.5s\": Istio takes whole seconds only; write \"2s\""
        );
        assert!(
            err(json!({"allowOrigins": [{"exact": "https://a.com"}], "maxAge": 60}))
                .starts_with("routes.api.maxAge: expected a duration string")
        );
        assert!(err(json!({"unmatchedPreflights": "DROP"}))
            .starts_with("routes.api.unmatchedPreflights: expected FORWARD or IGNORE"));
        assert!(
            err(json!({"unmatchedPreflights": "IGNORE", "allowMethods": ["PUTT"]}))
                .starts_with("routes.api.allowMethods[0]: \"PUTT\" is not a method Istio accepts")
        );
        assert!(
            err(json!({"allowOrigins": [{"exact": "*"}], "allowCredentials": true}))
                .starts_with("routes.api.allowCredentials: true together with an allow-any origin")
        );
        assert!(
            err(json!({"allowOrigins": ["https://a.com", {"exact": "https://b.com"}]}))
                .starts_with("routes.api.allowOrigins[0]: expected an object")
        );
    }

    #[test]
    fn envoy_gateway_fields_parse_with_what_its_translator_generates() {
        let p = parse(json!({
            "allowOrigins": ["https://www.foo.com", "https://*.foobar.com"],
            "allowMethods": ["GET", "POST"], "allowHeaders": ["x-header-1"],
            "exposeHeaders": ["x-header-3"], "maxAge": "1m30s",
        }))
        .unwrap();
        assert_eq!(p.vocabulary, Vocabulary::EnvoyGateway);
        assert_eq!(p.max_age.as_deref(), Some("90"));
        assert!(
            !p.forward_not_matching_preflights,
            "ForwardNotMatchingPreflights: false"
        );
        assert_eq!(p.methods.rendered(), Some("GET, POST"));
        let p = parse(
            json!({"allowOrigins": ["*", "https://a.com"], "allowMethods": ["GET", "*"],
                             "maxAge": "1500ms"}),
        )
        .unwrap();
        assert!(p.origins.allows_any() && p.methods == TokenList::Any);
        assert_eq!(
            p.max_age.as_deref(),
            Some("1"),
            "cut to whole seconds, as int(Seconds())"
        );
    }

    #[test]
    fn numbers_as_inline_yaml_delivers_them() {
        let p = parse(json!({"max_age": "600.0"})).unwrap();
        assert_eq!(p.max_age.as_deref(), Some("600"));
        let e = parse(json!({"max_age": "1.5"})).unwrap_err().to_string();
        assert_eq!(
            e,
            "routes.api.max_age: expected whole seconds, such as 600 (a number or a string of \
             digits), found \"1.5\""
        );
        let p = parse(json!({"allowOrigins": ["*"], "maxAge": "60.0"})).unwrap();
        assert_eq!(
            p.vocabulary,
            Vocabulary::GatewayApi,
            "digits are the Gateway API's integer"
        );
        assert_eq!(p.max_age.as_deref(), Some("60"));
        let p = parse(json!({"filter_enabled": {"default_value": {"numerator": "5.0"}}}));
        assert!(p.is_ok());
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
