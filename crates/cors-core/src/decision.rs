//! The CORS decision for one request, and what it does to the response; pure. The pipeline
//! reads the request, calls `decide`, and a host remembers the `Grant` (in a `ResponsePlan`) and
//! applies `response_edits` to whatever response comes back (the upstream's or a local reply).
//! One module per job: `preflight` answers preflights, `reason` words refusals, `response`
//! edits responses.

use crate::cross_origin::CrossOrigin;
use crate::headers::*;
use crate::origin::OriginMatch;
use crate::policy::Policy;
use crate::token_list::TokenList;
use std::borrow::Cow;

mod preflight;
mod reason;
mod response;
#[cfg(test)]
mod tests;

use preflight::{preflight_reply, refusal_headers};
pub use reason::reason;
pub use response::response_edits;

/// What the filter needs to know about a request that carries `Origin`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub origin: &'a [u8],
    pub method: &'a [u8],
    /// `Access-Control-Request-Method`; read only for `OPTIONS`.
    pub request_method: Option<&'a [u8]>,
    /// `Access-Control-Request-Headers`.
    pub request_headers: Option<&'a [u8]>,
    /// `Access-Control-Request-Private-Network: true`.
    pub private_network: bool,
}

impl Request<'_> {
    /// A preflight is `OPTIONS` with `Origin` and a non-empty `Access-Control-Request-Method`
    /// (as in Envoy and the Fetch standard); any other request is an actual request.
    pub fn is_preflight(&self) -> bool {
        self.method == b"OPTIONS" && self.request_method.is_some_and(|m| !m.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Preflight,
    Actual,
}

/// Why a request was refused; the class is what the counters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal<'a> {
    Origin,
    Method(&'a [u8]),
    Header(&'a [u8]),
    PrivateNetwork,
    /// `Access-Control-Request-Headers` past `REQUEST_HEADERS_LIMITS`: no browser sends it.
    RequestHeadersOverLimit,
    /// `cross_origin_protection`: an unsafe request or a WebSocket handshake from an origin
    /// the policy does not allow, which is not same-origin (`cross_origin::check`).
    CrossOrigin(CrossOrigin<'a>),
}

impl Refusal<'_> {
    /// The class the counters and `cors-explain` name: `origin`, `method`, `headers` (a header,
    /// or too many of them), `private_network`, `cross_origin`.
    pub fn class(self) -> &'static str {
        match self {
            Refusal::Origin => "origin",
            Refusal::Method(_) => "method",
            Refusal::Header(_) | Refusal::RequestHeadersOverLimit => "headers",
            Refusal::PrivateNetwork => "private_network",
            Refusal::CrossOrigin(_) => "cross_origin",
        }
    }
}

/// Bounds on a preflight's `Access-Control-Request-Headers`, far above anything a browser sends
/// (one line of lower-case names, no empty elements): `(empty elements, names, bytes)`. Past
/// them, the preflight is refused with no CORS headers, and the work per preflight stays
/// bounded. Envoy joins repeated field lines with commas (dropping empty ones) before a filter
/// sees them, so field lines count as list elements.
pub const REQUEST_HEADERS_LIMITS: (usize, usize, usize) = (16, 128, 8192);

fn within_limits(requested: &[u8]) -> bool {
    let (max_empty, max_names, max_bytes) = REQUEST_HEADERS_LIMITS;
    if requested.len() > max_bytes {
        return false;
    }
    let (mut empty, mut names) = (0, 0);
    for item in requested.split(|&b| b == b',').map(trim_ows) {
        let count = if item.is_empty() {
            &mut empty
        } else {
            &mut names
        };
        *count += 1;
        if empty > max_empty || names > max_names {
            return false;
        }
    }
    true
}

/// What the host does with a request: `decide` answers `Reply` or `Forward(Grant)`; the
/// pipeline also passes requests through (`Pass`), and hands hosts a `Forward(ResponsePlan)`,
/// the grant with what applying it needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a, F> {
    /// Nothing: the request and its response pass untouched.
    Pass,
    /// Answer now, without forwarding (an allowed preflight, or a refused one that must not
    /// reach the upstream).
    Reply {
        status: u32,
        headers: Vec<(&'static str, Cow<'a, str>)>,
    },
    /// Forward the request; apply `F` to its response.
    Forward(F),
}

/// What to do to the response of a forwarded CORS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Allowed: set `Access-Control-Allow-Origin` (`*`, or the request's origin when
    /// `echo_origin`) and the policy's credentials and exposed headers.
    Allow { echo_origin: bool },
    /// Refused: remove every CORS header the upstream set, keep `Vary: Origin`.
    Deny,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Decision<'a, 'r> {
    pub kind: Kind,
    /// Borrows the request only ('r), so that it outlives the policy's borrow.
    pub refusal: Option<Refusal<'r>>,
    pub action: Action<'a, Grant>,
}

const SAFELISTED_METHODS: [&[u8]; 3] = [b"GET", b"HEAD", b"POST"];

/// Decides a request carrying `Origin` under `policy`.
pub fn decide<'a, 'r: 'a>(policy: &'a Policy, request: &Request<'r>) -> Decision<'a, 'r> {
    // A serialized origin is visible ASCII (hosts are punycode). Anything else is refused
    // before matching: a loose matcher (`prefix`, `contains`, a regex) must never get the
    // filter to echo control bytes, spaces or non-ASCII into `Access-Control-Allow-Origin`.
    let origin = Some(request.origin)
        .filter(|o| o.iter().all(|b| (0x21..0x7f).contains(b)))
        .and_then(|o| std::str::from_utf8(o).ok());
    let matched = origin.and_then(|o| policy.origins.matches(o, policy.allow_credentials));
    let kind = if request.is_preflight() {
        Kind::Preflight
    } else {
        Kind::Actual
    };
    let (Some(origin), Some(matched)) = (origin, matched) else {
        let action = match kind {
            Kind::Preflight if !policy.forward_not_matching_preflights => Action::Reply {
                status: 403,
                headers: refusal_headers(policy, request, Refusal::Origin),
            },
            _ => Action::Forward(Grant::Deny),
        };
        return Decision {
            kind,
            refusal: Some(Refusal::Origin),
            action,
        };
    };
    let echo_origin = matched == OriginMatch::Listed || policy.allow_credentials;
    if kind == Kind::Preflight && !request.request_headers.is_none_or(within_limits) {
        let refusal = Refusal::RequestHeadersOverLimit;
        return Decision {
            kind,
            refusal: Some(refusal),
            action: Action::Reply {
                status: 403,
                headers: refusal_headers(policy, request, refusal),
            },
        };
    }
    if kind == Kind::Actual {
        return Decision {
            kind,
            refusal: None,
            action: Action::Forward(Grant::Allow { echo_origin }),
        };
    }
    let (reply, refusal) = preflight_reply(policy, request, origin, echo_origin);
    Decision {
        kind,
        refusal,
        action: Action::Reply {
            status: 200,
            headers: reply,
        },
    }
}

/// A refusal of `cross_origin_protection` applied to the decision on an actual request (or on
/// a request without `Origin`). It replaces the CORS refusal, since the protection refuses only
/// origins the policy does not allow (one verdict, one counter per request); `enforce` answers
/// 403 with no CORS headers instead of forwarding, `report` leaves the action as it was.
pub fn refuse_cross_origin<'a, 'r: 'a>(
    policy: &'a Policy,
    request: &Request<'r>,
    decision: &mut Decision<'a, 'r>,
    refused: CrossOrigin<'r>,
    enforce: bool,
) {
    let refusal = Refusal::CrossOrigin(refused);
    decision.refusal = Some(refusal);
    if enforce {
        decision.action = Action::Reply {
            status: 403,
            headers: refusal_headers(policy, request, refusal),
        };
    }
}
