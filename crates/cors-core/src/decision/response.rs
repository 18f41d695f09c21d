//! What a `Grant` does to the response of a forwarded request: the CORS headers it sets or
//! removes, and `Vary`.

use super::*;

/// The header changes for the response to a forwarded CORS request: `(name, Some(value))`
/// sets the header to that one value, `(name, None)` removes it. `existing` is the response's
/// headers as Envoy gives them (lower-case names), so that only what is there is removed;
/// borrowed or owned, as the caller has them.
pub fn response_edits<'a, N: AsRef<[u8]>, V: AsRef<[u8]>>(
    plan: Grant,
    policy: &'a Policy,
    origin: &'a [u8],
    reason: Option<&'a str>,
    existing: &[(N, V)],
) -> Vec<(&'static str, Option<Cow<'a, [u8]>>)> {
    let mut edits: Vec<(&'static str, Option<Cow<'a, [u8]>>)> = Vec::with_capacity(4);
    let mut set = |name, value: Option<Cow<'a, [u8]>>| edits.push((name, value));
    let present = |name: &str| existing.iter().any(|(n, _)| n.as_ref() == name.as_bytes());
    let vary_origin = match plan {
        Grant::Allow { echo_origin } => {
            let acao: &[u8] = if echo_origin { origin } else { b"*" };
            set(ACCESS_CONTROL_ALLOW_ORIGIN, Some(Cow::Borrowed(acao)));
            let owned = [
                (
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    policy.allow_credentials.then_some("true"),
                ),
                (
                    ACCESS_CONTROL_EXPOSE_HEADERS,
                    policy.expose_headers.as_deref(),
                ),
            ];
            for (name, value) in owned {
                match value {
                    Some(v) => set(name, Some(Cow::Borrowed(v.as_bytes()))),
                    None if present(name) => set(name, None),
                    None => {}
                }
            }
            for name in CORS_RESPONSE_HEADERS {
                if !owned.iter().any(|(n, _)| *n == name)
                    && name != ACCESS_CONTROL_ALLOW_ORIGIN
                    && present(name)
                {
                    set(name, None);
                }
            }
            echo_origin
        }
        Grant::Deny => {
            for name in CORS_RESPONSE_HEADERS {
                if present(name) {
                    set(name, None);
                }
            }
            if let Some(r) = reason {
                set(CORS_REASON, Some(Cow::Borrowed(r.as_bytes())));
            }
            true
        }
    };
    if vary_origin {
        if let Some(vary) = vary_with_origin(existing) {
            set(VARY, Some(Cow::Owned(vary)));
        }
    }
    edits
}

/// The response's `Vary` with `Origin` added, or `None` when it already varies on Origin
/// (or on everything, `*`). Several `Vary` lines are joined into one.
fn vary_with_origin<N: AsRef<[u8]>, V: AsRef<[u8]>>(existing: &[(N, V)]) -> Option<Vec<u8>> {
    let mut joined: Vec<u8> = Vec::new();
    for (_, value) in existing
        .iter()
        .filter(|(n, _)| n.as_ref() == VARY.as_bytes())
    {
        let value = value.as_ref();
        if list_contains(value, "origin") || list_contains(value, "*") {
            return None;
        }
        for item in list_items(value) {
            joined.extend_from_slice(item);
            joined.extend_from_slice(b", ");
        }
    }
    joined.extend_from_slice(b"Origin");
    Some(joined)
}
