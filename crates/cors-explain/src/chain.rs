//! The HTTP filters placed before ours in the listener, and what each does to a request before
//! ours sees it. A filter that answers a request (a jwt_authn 401, an rbac 403) keeps it from
//! our filter: the Wasm build then never sees it and adds nothing to that reply; the native
//! build decorates it (its response hook runs for earlier filters' replies). A preflight never
//! carries credentials (Fetch), so a filter that wants them answers every preflight.
//!
//! Modelled exactly: jwt_authn (rules by path and `:method`, `bypass_cors_preflight`, per-route
//! `disabled` / `requirement_name`), basic_auth, api_key_auth, rbac with no rules, shadow rules
//! only or one policy matching everything, fault without abort, filters disabled in
//! `http_filters` or per route, and filters that never answer. What depends on an external
//! service (ext_authz, ext_proc, ratelimit, oauth2), on state (local_ratelimit) or on code
//! (lua calling respond, other Wasm filters and dynamic modules) is reported as "may answer":
//! cors-explain cannot know.

use crate::routes::RouteMatch;
use serde_json::{Map, Value};

/// Filter types that never answer a request themselves (the part of the `@type` after the last
/// `.`, as `envoy.extensions.filters.http.<x>.v3.<Type>`): what they are for.
const PASSES: [(&str, &str); 12] = [
    ("HeaderMutation", "edits headers"),
    ("Buffer", "buffers bodies"),
    ("Compressor", "compresses responses"),
    ("Decompressor", "decompresses bodies"),
    ("GrpcStats", "counts gRPC calls"),
    ("GrpcWeb", "translates gRPC-Web"),
    ("SetMetadata", "sets metadata"),
    ("StatefulSession", "pins sessions"),
    ("CredentialInjector", "adds upstream credentials"),
    ("CustomResponse", "rewrites responses"),
    ("AdaptiveConcurrency", "limits concurrency"),
    ("Geoip", "looks up addresses"),
];

/// What one filter placed before ours does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Lets it through.
    Passes(String),
    /// Answers it itself, with this status.
    Answers(u32, String),
    /// Answers it unless it carries the credentials the filter asks for (an actual request
    /// may; a preflight never does).
    AnswersWithoutCredentials(u32, String),
    /// May answer it (with this status when known): cors-explain cannot know.
    MayAnswer(Option<u32>, String),
}

impl Effect {
    /// In JSON output.
    pub fn key(&self) -> &'static str {
        match self {
            Effect::Passes(_) => "passes",
            Effect::Answers(..) => "answers",
            Effect::AnswersWithoutCredentials(..) => "answers_without_credentials",
            Effect::MayAnswer(..) => "may_answer",
        }
    }

    pub fn status(&self) -> Option<u32> {
        match self {
            Effect::Passes(_) => None,
            Effect::Answers(s, _) | Effect::AnswersWithoutCredentials(s, _) => Some(*s),
            Effect::MayAnswer(s, _) => *s,
        }
    }

    pub fn why(&self) -> &str {
        match self {
            Effect::Passes(w)
            | Effect::Answers(_, w)
            | Effect::AnswersWithoutCredentials(_, w)
            | Effect::MayAnswer(_, w) => w,
        }
    }
}

/// The request as the earlier filters see it.
pub struct ChainRequest<'a> {
    pub method: &'a str,
    /// A CORS preflight (OPTIONS with Origin and a non-empty Access-Control-Request-Method).
    pub preflight: bool,
    /// Known only with `--path`.
    pub path: Option<&'a str>,
    /// The `typed_per_filter_config` maps of the request's route and virtual host (most
    /// specific first); `None` when the route is unknown.
    pub per_filter: Option<Vec<&'a Map<String, Value>>>,
}

/// One `http_filters` entry placed before ours.
#[derive(Debug)]
pub struct Earlier {
    /// The entry's `name` (the key of its `typed_per_filter_config`).
    pub name: String,
    /// The last part of its `@type` (`JwtAuthentication`).
    pub type_name: String,
    /// `disabled: true` in `http_filters`: off unless a route enables it.
    disabled: bool,
    /// Wrapped in an `ExtensionWithMatcher`: skipped for some requests.
    matched: bool,
    config: Value,
}

impl Earlier {
    /// The `http_filters` entries before ours.
    pub fn from_entries(entries: &[Value]) -> Vec<Earlier> {
        entries
            .iter()
            .map(|entry| {
                let mut config = entry.get("typed_config").cloned().unwrap_or(Value::Null);
                let matched = type_name(&config) == "ExtensionWithMatcher";
                if matched {
                    config = config
                        .get("extension_config")
                        .and_then(|e| e.get("typed_config"))
                        .cloned()
                        .unwrap_or(Value::Null);
                }
                Earlier {
                    name: text(entry, "name").unwrap_or_default().to_owned(),
                    type_name: type_name(&config).to_owned(),
                    disabled: entry.get("disabled").and_then(Value::as_bool) == Some(true),
                    matched,
                    config,
                }
            })
            .collect()
    }

    /// What the filter does with `req`.
    pub fn effect(&self, req: &ChainRequest) -> Effect {
        let own = req
            .per_filter
            .as_ref()
            .and_then(|maps| maps.iter().find_map(|m| m.get(&self.name)));
        if own.and_then(|c| c.get("disabled")).and_then(Value::as_bool) == Some(true) {
            return Effect::Passes("disabled on this route (typed_per_filter_config)".into());
        }
        if self.disabled && own.is_none() {
            let why = "disabled in http_filters";
            return match req.per_filter {
                Some(_) => Effect::Passes(format!("{why}, and this route does not enable it")),
                None => Effect::MayAnswer(
                    None,
                    format!("{why}; a route may enable it (name the route to know)"),
                ),
            };
        }
        let effect = self.model(req, own);
        match effect {
            Effect::Answers(s, w) | Effect::AnswersWithoutCredentials(s, w) if self.matched => {
                Effect::MayAnswer(
                    Some(s),
                    format!("{w}, unless its matcher (ExtensionWithMatcher) skips it"),
                )
            }
            e => e,
        }
    }

    fn model(&self, req: &ChainRequest, own: Option<&Value>) -> Effect {
        let c = &self.config;
        let credentials = |status, what: &str| {
            let why = format!("answers {status} to a request without {what}");
            if req.preflight {
                Effect::Answers(status, format!("{why}, and a preflight never carries it"))
            } else {
                Effect::AnswersWithoutCredentials(status, why)
            }
        };
        match self.type_name.as_str() {
            "JwtAuthentication" => self.jwt(req, own),
            "BasicAuth" => credentials(401, "valid basic credentials (Authorization)"),
            "ApiKeyAuth" => credentials(401, "a valid API key"),
            "RBAC" => rbac(c),
            "Fault" => match c.get("abort") {
                None => Effect::Passes("injects delays only (no abort)".into()),
                Some(a) => Effect::MayAnswer(
                    a.get("http_status")
                        .and_then(Value::as_u64)
                        .and_then(|s| u32::try_from(s).ok()),
                    "aborts a share of requests (fault injection)".into(),
                ),
            },
            "LocalRateLimit" => {
                let enforced = c
                    .get("filter_enforced")
                    .and_then(|f| f.get("default_value"))
                    .and_then(|d| d.get("numerator"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if enforced == 0 || c.get("token_bucket").is_none() {
                    Effect::Passes("not enforced (filter_enforced 0% or no token_bucket)".into())
                } else {
                    Effect::MayAnswer(
                        Some(429),
                        "answers 429 once its token bucket is empty (preflights take tokens too); \
                         cors-explain cannot know the bucket's state"
                            .into(),
                    )
                }
            }
            "ExtAuthz" => Effect::MayAnswer(
                Some(403),
                "asks an authorization service, which may deny (403 by default, or the status it \
                 returns; also when it cannot be reached, unless failure_mode_allow); \
                 cors-explain cannot know"
                    .into(),
            ),
            "ExternalProcessor" => Effect::MayAnswer(
                None,
                "asks an external processor, which may answer the request (500 when it cannot \
                 be reached, unless failure_mode_allow); cors-explain cannot know"
                    .into(),
            ),
            "RateLimit" => Effect::MayAnswer(
                Some(429),
                "asks a rate limit service, which may answer 429; cors-explain cannot know".into(),
            ),
            "OAuth2" => Effect::MayAnswer(
                Some(302),
                "redirects a request without a session to the authorization server (302) or \
                 answers 401, unless its pass_through_matcher lets it through; cors-explain \
                 cannot know"
                    .into(),
            ),
            "Lua" | "LuaPerRoute" => {
                let code = serde_json::to_string(c).unwrap_or_default();
                if code.contains("respond") {
                    Effect::MayAnswer(
                        None,
                        "its script can answer (request_handle:respond); cors-explain does not \
                         run it"
                            .into(),
                    )
                } else {
                    Effect::Passes("its script never calls respond".into())
                }
            }
            "Wasm" | "DynamicModuleFilter" => Effect::MayAnswer(
                None,
                "another module's filter may answer; cors-explain cannot know".into(),
            ),
            "Cors" => Effect::MayAnswer(
                Some(200),
                "Envoy's own CORS filter answers preflights on routes that carry a CorsPolicy"
                    .into(),
            ),
            other => match PASSES.iter().find(|(t, _)| *t == other) {
                Some((_, what)) => Effect::Passes(format!("{what}; never answers")),
                None => Effect::MayAnswer(
                    None,
                    format!(
                        "a filter cors-explain does not model ({})",
                        if other.is_empty() { "no @type" } else { other }
                    ),
                ),
            },
        }
    }

    /// jwt_authn: the first rule matching the request decides; a rule without `requires`, or
    /// whose requirement allows a missing token, lets it through. A per-route config
    /// (`requirement_name`) requires the named requirement.
    fn jwt(&self, req: &ChainRequest, own: Option<&Value>) -> Effect {
        let c = &self.config;
        if req.preflight && c.get("bypass_cors_preflight").and_then(Value::as_bool) == Some(true) {
            return Effect::Passes("bypass_cors_preflight lets preflights through".into());
        }
        let missing = || {
            let why = "answers 401 (Jwt is missing) to a request without a valid JWT";
            if req.preflight {
                Effect::Answers(401, format!("{why}, and a preflight never carries one"))
            } else {
                Effect::AnswersWithoutCredentials(401, why.to_owned())
            }
        };
        if let Some(name) = own.and_then(|o| text(o, "requirement_name")) {
            let requirement = c.get("requirement_map").and_then(|m| m.get(name));
            return match requirement {
                Some(r) if allows_missing(r) => {
                    Effect::Passes(format!("requirement {name:?} allows a missing JWT"))
                }
                _ => missing(),
            };
        }
        let rules = c.get("rules").and_then(Value::as_array);
        let Some(path) = req.path else {
            let first = rules.and_then(|r| r.first());
            let everywhere =
                first.and_then(|r| r.get("match")) == Some(&serde_json::json!({"prefix": "/"}));
            if let Some(requires) = first.filter(|_| everywhere).and_then(|r| r.get("requires")) {
                if !allows_missing(requires) {
                    return missing();
                }
            }
            let requiring = rules
                .into_iter()
                .flatten()
                .any(|r| r.get("requires").is_some_and(|q| !allows_missing(q)));
            return if requiring {
                Effect::MayAnswer(
                    Some(401),
                    "requires a JWT on the paths its rules name (give --path to know)".into(),
                )
            } else {
                Effect::Passes("no rule requires a JWT".into())
            };
        };
        for rule in rules.into_iter().flatten() {
            let matcher = match RouteMatch::from_envoy(rule.get("match")) {
                Ok(m) => m,
                Err(e) => {
                    return Effect::MayAnswer(
                        Some(401),
                        format!("a rule cors-explain cannot reproduce ({e})"),
                    )
                }
            };
            if matcher.matches(path, req.method) {
                return match rule.get("requires") {
                    Some(r) if !allows_missing(r) => missing(),
                    Some(_) => Effect::Passes("its rule for this path allows a missing JWT".into()),
                    None => Effect::Passes("its rule for this path requires no JWT".into()),
                };
            }
        }
        Effect::Passes("no rule matches this path".into())
    }
}

/// A JWT requirement that lets a request without a token through.
fn allows_missing(r: &Value) -> bool {
    if r.get("allow_missing").is_some() || r.get("allow_missing_or_failed").is_some() {
        return true;
    }
    r.get("requires_any")
        .and_then(|a| a.get("requirements"))
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(allows_missing))
}

/// rbac: no rules, or shadow rules only, enforce nothing; one policy that matches everything
/// decides for every request; anything else depends on the request's attributes.
fn rbac(c: &Value) -> Effect {
    let Some(rules) = c.get("rules") else {
        return Effect::Passes("no enforced rules (shadow_rules only log)".into());
    };
    let action = text(rules, "action").unwrap_or("ALLOW");
    let policies = rules.get("policies").and_then(Value::as_object);
    let all = |list: Option<&Value>| {
        list.and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|p| p.get("any") == Some(&Value::Bool(true))))
    };
    let everyone = policies.is_some_and(|ps| {
        ps.values()
            .any(|p| all(p.get("permissions")) && all(p.get("principals")))
    });
    match (action, policies.is_none_or(Map::is_empty), everyone) {
        ("ALLOW", true, _) => {
            Effect::Answers(403, "ALLOW with no policy denies every request".into())
        }
        ("DENY", true, _) => Effect::Passes("DENY with no policy denies nothing".into()),
        ("DENY", false, true) => {
            Effect::Answers(403, "a DENY policy matches every request".into())
        }
        ("ALLOW", false, true) => Effect::Passes("an ALLOW policy matches every request".into()),
        ("LOG", _, _) => Effect::Passes("action LOG only logs".into()),
        _ => Effect::MayAnswer(
            Some(403),
            format!(
                "{action} policies on the request's attributes, which cors-explain does not evaluate"
            ),
        ),
    }
}

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// `JwtAuthentication` from `type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`.
fn type_name(typed_config: &Value) -> &str {
    let url = text(typed_config, "@type").unwrap_or("");
    url.rsplit(['.', '/']).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn earlier(entry: Value) -> Earlier {
        Earlier::from_entries(&[entry]).into_iter().next().unwrap()
    }

    fn jwt(extra: Value) -> Earlier {
        let mut c = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "rules": [{"match": {"prefix": "/open"}}, {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
        });
        if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        earlier(json!({"name": "jwt", "typed_config": c}))
    }

    fn req<'a>(preflight: bool, path: Option<&'a str>) -> ChainRequest<'a> {
        ChainRequest {
            method: if preflight { "OPTIONS" } else { "GET" },
            preflight,
            path,
            per_filter: None,
        }
    }

    #[test]
    fn jwt_authn_answers_preflights_on_the_paths_its_rules_protect() {
        let j = jwt(json!({}));
        assert_eq!(j.effect(&req(true, Some("/api"))).key(), "answers");
        assert_eq!(
            j.effect(&req(false, Some("/api"))).key(),
            "answers_without_credentials"
        );
        assert_eq!(j.effect(&req(true, Some("/open/x"))).key(), "passes");
        assert_eq!(j.effect(&req(true, None)).key(), "may_answer");
        let bypass = jwt(json!({"bypass_cors_preflight": true}));
        assert_eq!(bypass.effect(&req(true, Some("/api"))).key(), "passes");
    }

    #[test]
    fn a_route_can_disable_an_earlier_filter() {
        let j = jwt(json!({}));
        let per_route = json!({"jwt": {"disabled": true}});
        let maps = vec![per_route.as_object().unwrap()];
        let r = ChainRequest {
            per_filter: Some(maps),
            ..req(true, Some("/api"))
        };
        assert_eq!(j.effect(&r).key(), "passes");
    }

    #[test]
    fn rbac_deny_all_answers_and_external_services_may() {
        let deny = earlier(json!({"name": "rbac", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "DENY", "policies": {"all": {"permissions": [{"any": true}], "principals": [{"any": true}]}}}}}));
        assert_eq!(
            deny.effect(&req(true, None)),
            Effect::Answers(403, "a DENY policy matches every request".into())
        );
        let authz = earlier(json!({"name": "a", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"}}));
        assert_eq!(authz.effect(&req(true, None)).status(), Some(403));
        assert_eq!(authz.effect(&req(true, None)).key(), "may_answer");
        let hm = earlier(json!({"name": "h", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"}}));
        assert_eq!(hm.effect(&req(true, None)).key(), "passes");
    }
}
