//! Protocol presets (`presets: ["grpc-web", "connect", "mcp"]`): the request headers a browser
//! client of the protocol sends (added to `allow_headers`) and the response headers its page must
//! read (added to `expose_headers`). Users copy these lists from old examples and get them wrong
//! (the official grpc-web example does not expose `grpc-status-details-bin`).
//!
//! Sources:
//! - gRPC-Web: grpc/grpc `doc/PROTOCOL-WEB.md` (`x-grpc-web`, `x-user-agent`, `grpc-timeout`,
//!   `application/grpc-web*` content types; status in `grpc-status` / `grpc-message` headers of
//!   trailers-only responses, details in `grpc-status-details-bin`), and connectrpc.com/docs/cors
//!   ("Configurations by protocol: gRPC-web").
//! - Connect: connectrpc.com/docs/cors ("Connect": `Connect-Protocol-Version`,
//!   `Connect-Timeout-Ms`, plus the gRPC-Web set, which Connect clients and servers also speak).
//! - MCP Streamable HTTP: modelcontextprotocol.io specification, "Transports" (`Mcp-Session-Id`,
//!   `MCP-Protocol-Version`, `Last-Event-ID` on resumption; `Mcp-Method` and `Mcp-Name` in the
//!   2026-07-28 revision) and "Authorization" (`Authorization:
//!   Bearer`, `WWW-Authenticate` with `resource_metadata` on a 401).

use crate::fields::{expected, JsonError};
use crate::token_list::TokenList;
use serde_json::Value;

/// `(name, request headers, response headers)`.
const PRESETS: [(&str, &[&str], &[&str]); 3] = [
    (
        "grpc-web",
        &["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"],
        &["grpc-status", "grpc-message", "grpc-status-details-bin"],
    ),
    (
        "connect",
        &[
            "content-type",
            "connect-protocol-version",
            "connect-timeout-ms",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
        ],
        &["grpc-status", "grpc-message", "grpc-status-details-bin"],
    ),
    (
        "mcp",
        &[
            "content-type",
            "authorization",
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
            // The 2026-07-28 revision names each request's method and tool in headers.
            "mcp-method",
            "mcp-name",
        ],
        &["mcp-session-id", "www-authenticate"],
    ),
];

/// The request and response header names of the presets listed at `path`.
pub fn from_json(
    value: &Value,
    path: &str,
) -> Result<(Vec<&'static str>, Vec<&'static str>), JsonError> {
    let items = value
        .as_array()
        .ok_or_else(|| expected(path, "a list of preset names", value))?;
    let (mut request, mut response) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let name = item
            .as_str()
            .ok_or_else(|| expected(&item_path, "a string", item))?;
        let Some((_, req, resp)) = PRESETS.iter().find(|(n, _, _)| *n == name) else {
            let known: Vec<&str> = PRESETS.iter().map(|(n, _, _)| *n).collect();
            return Err(JsonError::new(
                item_path,
                format!("unknown preset {name:?} (known: {})", known.join(", ")),
            ));
        };
        request.extend_from_slice(req);
        response.extend_from_slice(resp);
    }
    Ok((request, response))
}

/// `list` with `names` added (each once, case-insensitively); `*` stays `*`.
pub fn extend(list: TokenList, names: &[&str]) -> TokenList {
    match list {
        TokenList::Any => TokenList::Any,
        TokenList::Listed {
            mut lower,
            mut rendered,
        } => {
            for name in names {
                if !lower.iter().any(|l| l == name) {
                    if !rendered.is_empty() {
                        rendered.push_str(", ");
                    }
                    rendered.push_str(name);
                    lower.push((*name).to_owned());
                }
            }
            TokenList::Listed { lower, rendered }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn presets_add_their_headers_once_and_keep_a_star() {
        let (req, resp) = from_json(&json!(["grpc-web", "connect"]), "p").unwrap();
        let own = TokenList::from_json(&json!("Content-Type, x-trace"), "h").unwrap();
        let allowed = extend(own, &req);
        assert_eq!(
            allowed.rendered(),
            Some("Content-Type, x-trace, x-grpc-web, x-user-agent, grpc-timeout, connect-protocol-version, connect-timeout-ms")
        );
        assert_eq!(extend(TokenList::Any, &req), TokenList::Any);
        let exposed = extend(TokenList::default(), &resp);
        assert_eq!(
            exposed.rendered(),
            Some("grpc-status, grpc-message, grpc-status-details-bin")
        );
    }

    #[test]
    fn an_unknown_preset_is_named() {
        let e = from_json(&json!(["mcp", "graphql"]), "policy.presets").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy.presets[1]: unknown preset \"graphql\" (known: grpc-web, connect, mcp)"
        );
        assert!(from_json(&json!("mcp"), "p").is_err());
    }
}
