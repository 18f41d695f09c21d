//! What `cors-explain` prints: an `Explanation` as text or as JSON.

use crate::chain::Effect;
use crate::input::Input;
use crate::source::Build;
use cors_core::decision::Kind;
use serde_json::{json, Value};

/// What happened to the request, as reported (`decision` in JSON): the filter's `Action`
/// together with whether the request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    AnsweredPreflight,
    Refused,
    Forwarded,
    PassedThrough,
    /// A filter placed before ours answered (`Explanation::answered_by`).
    AnsweredEarlier,
}

impl Disposition {
    pub fn key(self) -> &'static str {
        match self {
            Disposition::AnsweredPreflight => "answered_preflight",
            Disposition::Refused => "refused",
            Disposition::Forwarded => "forwarded",
            Disposition::PassedThrough => "passed_through",
            Disposition::AnsweredEarlier => "answered_by_earlier_filter",
        }
    }
}

/// What a browser concludes from the response, with and without credentials.
pub struct BrowserConclusion {
    pub what: String,
    pub without_credentials: Result<String, String>,
    pub with_credentials: Result<String, String>,
}

/// What the other build would do with the request, where it differs.
pub struct OtherBuild {
    pub build: Build,
    /// The route it judges the request by, and why.
    pub by: String,
    pub policy: Option<String>,
    pub why: String,
    pub disposition: Disposition,
}

/// A filter placed before ours, and what it does with the request.
pub struct Before {
    /// Its name in `http_filters`.
    pub filter: String,
    pub type_name: String,
    pub effect: Effect,
    /// What its reply carries once it passed our filter (when it may answer).
    pub headers: Vec<(String, String)>,
}

pub struct Explanation {
    pub input: Input,
    /// Whose rules the explanation follows.
    pub build: Build,
    pub route: Option<String>,
    pub vhost: Option<String>,
    pub location: Option<String>,
    pub policy: Option<String>,
    pub source: &'static str,
    pub key: Option<String>,
    pub why: String,
    pub kind: Option<Kind>,
    pub disposition: Disposition,
    pub forwarded: bool,
    /// The filter's own reply status; `None` when the upstream answers.
    pub status: Option<u32>,
    pub refusal: Option<&'static str>,
    pub reason: Option<String>,
    pub counter: Option<String>,
    pub shadow: bool,
    /// The response headers: the filter's reply, or the upstream's after the filter's edits.
    pub headers: Vec<(String, String)>,
    pub edits: Vec<(String, Option<String>)>,
    pub browser: Option<BrowserConclusion>,
    /// For a preflight: the actual request the browser sends next.
    pub then: Option<Box<Explanation>>,
    pub other_build: Option<OtherBuild>,
    pub notes: Vec<String>,
    /// The filter placed before ours that answers the request, when one surely does.
    pub answered_by: Option<String>,
    /// The filters placed before ours, in order.
    pub before: Vec<Before>,
    /// What a reply of a filter before ours carries after ours (see `Before::headers`).
    pub earlier_reply: Vec<(String, String)>,
}

impl Explanation {
    pub fn to_json(&self, source: &str) -> Value {
        let verdict = |r: &Result<String, String>| match r {
            Ok(m) => json!({"allowed": true, "message": m}),
            Err(m) => json!({"allowed": false, "message": m}),
        };
        json!({
            "config": source,
            "request": self.input.to_json(),
            "route": self.route,
            "virtual_host": self.vhost,
            "location": self.location,
            "policy": self.policy,
            "selected_by": {"source": self.source, "key": self.key, "why": self.why},
            "kind": self.kind.map(|k| match k { Kind::Preflight => "preflight", Kind::Actual => "actual" }),
            "decision": self.disposition.key(),
            "forwarded": self.forwarded,
            "status": self.status,
            "refusal": self.refusal,
            "reason": self.reason,
            "counter": self.counter,
            "shadow": self.shadow,
            "headers": self.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "edits": self.edits.iter().map(|(n, v)| json!({"header": n, "value": v})).collect::<Vec<_>>(),
            "browser": self.browser.as_ref().map(|b| json!({
                "sends": b.what,
                "without_credentials": verdict(&b.without_credentials),
                "with_credentials": verdict(&b.with_credentials),
            })),
            "then": self.then.as_ref().map(|t| t.to_json(source)),
            "build": self.build.key(),
            "other_build": self.other_build.as_ref().map(|o| json!({
                "build": o.build.key(),
                "by": o.by,
                "policy": o.policy,
                "why": o.why,
                "decision": o.disposition.key(),
            })),
            "answered_by": self.answered_by,
            "before": self.before.iter().map(|b| json!({
                "filter": b.filter,
                "type": b.type_name,
                "effect": b.effect.key(),
                "status": b.effect.status(),
                "why": b.effect.why(),
                "headers": b.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }

    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        let mut line = |label: &str, text: &str| {
            out.push_str(&format!("{label:<10}{text}\n"));
        };
        line("Config", source);
        let i = &self.input;
        let mut req = vec![i.method().to_owned()];
        if let Some(p) = &i.path {
            req.push(p.clone());
        }
        for (name, value) in [
            ("Origin", &i.origin),
            ("Access-Control-Request-Method", &i.request_method),
            ("Access-Control-Request-Headers", &i.request_headers),
        ] {
            if let Some(v) = value {
                req.push(format!("{name}: {v}"));
            }
        }
        if i.private_network {
            req.push("Access-Control-Request-Private-Network: true".into());
        }
        line("Request", &req.join("  "));
        let names = format!(
            "route {}, virtual host {}{}",
            self.route
                .as_deref()
                .map_or("(none)".to_owned(), |r| format!("{r:?}")),
            self.vhost
                .as_deref()
                .map_or("(none)".to_owned(), |v| format!("{v:?}")),
            self.location
                .as_deref()
                .map_or(String::new(), |l| format!(" ({l})"))
        );
        line("Where", &names);
        line(
            "Policy",
            &format!(
                "{} (selected: {})",
                self.policy.as_deref().unwrap_or("none"),
                self.why
            ),
        );
        if let Some(kind) = self.kind {
            line(
                "Kind",
                match kind {
                    Kind::Preflight => {
                        "preflight (OPTIONS with Origin and Access-Control-Request-Method)"
                    }
                    Kind::Actual => "actual request",
                },
            );
        }
        let decision = match self.disposition {
            Disposition::AnsweredPreflight => format!(
                "answered preflight: the filter replies {} itself, not forwarded",
                self.status.unwrap_or(200)
            ),
            Disposition::Refused => match self.status {
                Some(s) => format!("REFUSED: the filter replies {s} itself, not forwarded"),
                None => "REFUSED: forwarded upstream; the response carries no CORS permission"
                    .to_owned(),
            },
            Disposition::Forwarded => {
                "forwarded upstream; the filter adds CORS headers to the response".to_owned()
            }
            Disposition::PassedThrough => {
                "passed through: the filter does not touch the request or response".to_owned()
            }
            Disposition::AnsweredEarlier => format!(
                "ANSWERED BEFORE THE FILTER: {} (placed before it) replies {}; {}",
                self.answered_by.as_deref().unwrap_or("an earlier filter"),
                self.status.unwrap_or(0),
                match self.build {
                    Build::Wasm => "the Wasm build never sees the request and adds nothing to that reply",
                    Build::Native => "the native build decorates that reply (it cannot answer the request any more)",
                }
            ),
        };
        line("Decision", &decision);
        if let Some(r) = &self.reason {
            line("Reason", r);
        }
        if let Some(c) = &self.counter {
            line("Counter", c);
        }
        let who = match (self.status, self.input.upstream_headers.is_empty()) {
            (Some(s), _) if self.answered_by.is_some() => format!("{s} from an earlier filter"),
            (Some(s), _) => format!("{s} from the filter"),
            (None, true) => "the upstream's, with these headers from the filter \
                             (add the upstream's own with --upstream-header)"
                .to_owned(),
            (None, false) => "the upstream's (as given), after the filter's edits".to_owned(),
        };
        line("Response", &who);
        for (n, v) in &self.headers {
            out.push_str(&format!("  {n}: {v}\n"));
        }
        if self.headers.is_empty() {
            out.push_str("  (no headers from the filter)\n");
        }
        if let Some(b) = &self.browser {
            out.push_str(&format!("Browser   {}\n", b.what));
            for (label, r) in [
                ("without credentials", &b.without_credentials),
                ("with credentials   ", &b.with_credentials),
            ] {
                match r {
                    Ok(m) => out.push_str(&format!("  {label}: allowed: {m}\n")),
                    Err(m) => out.push_str(&format!("  {label}: BLOCKED: {m}\n")),
                }
            }
        }
        if let Some(then) = &self.then {
            out.push_str(&format!(
                "Then      the actual {}: {}\n",
                then.input.method(),
                then.disposition.key().replace('_', " ")
            ));
            for (n, v) in &then.headers {
                out.push_str(&format!("  {n}: {v}\n"));
            }
        }
        if let Some(o) = &self.other_build {
            out.push_str(&format!(
                "Other     {} judges it by {}: policy {} (selected: {}); {}\n",
                o.build.name(),
                o.by,
                o.policy.as_deref().unwrap_or("none"),
                o.why,
                o.disposition.key().replace('_', " ")
            ));
        }
        for b in &self.before {
            out.push_str(&format!(
                "Before    {} ({}): {}: {}\n",
                b.filter,
                b.type_name,
                b.effect.key().replace('_', " "),
                b.effect.why()
            ));
            if let Effect::AnswersWithoutCredentials(..) | Effect::MayAnswer(..) = b.effect {
                let reply = if b.headers.is_empty() {
                    "its reply carries no CORS header: the browser reports a CORS error, and \
                     the page cannot read the status"
                        .to_owned()
                } else {
                    format!(
                        "its reply gets {} from the filter: the page can read the status",
                        b.headers
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                out.push_str(&format!(
                    "  when it answers ({}): {reply}\n",
                    self.build.name()
                ));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("Note      {n}\n"));
        }
        out
    }
}
