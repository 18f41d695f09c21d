"""A real MCP server (the official `mcp` Python SDK's Streamable HTTP transport, on uvicorn) for
the MCP browser tests, as an OAuth protected resource: without a valid bearer token the SDK
answers 401 with `WWW-Authenticate: Bearer …, resource_metadata="<URL>"`; with one, `initialize`
starts a session (`mcp-session-id`) and later requests of that session are served.

The one valid token is `browser-test-token` (a token verifier stands in for an authorization
server). One tool, `echo`.

Usage: mcp_server.py PORT PUBLIC_URL, where PUBLIC_URL is the endpoint as the browser sees it
(through Envoy), e.g. http://localhost:10000/mcp: the SDK derives the resource metadata URL in
`WWW-Authenticate` from it.
"""

import sys

import uvicorn
from mcp.server import MCPServer
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

TOKEN = "browser-test-token"


class OneTokenVerifier:
    async def verify_token(self, token):
        if token != TOKEN:
            return None
        return AccessToken(token=token, client_id="browser-test", scopes=["mcp"])


def app(public_url):
    server = MCPServer(
        "cors-browser-test",
        token_verifier=OneTokenVerifier(),
        auth=AuthSettings(issuer_url="https://auth.example.com", resource_server_url=public_url,
                          required_scopes=["mcp"], validate_token_resource=False),
    )

    @server.tool()
    def echo(text: str) -> str:
        """Answers with the text it was given."""
        return text

    return server.streamable_http_app()


if __name__ == "__main__":
    uvicorn.run(app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
