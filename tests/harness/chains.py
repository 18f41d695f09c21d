"""Building blocks for filter-chain tests: the Envoy filters that usually sit after ours
(jwt_authn, rbac, local_ratelimit; Envoy's own CORS filter is in tests/harness/envoy.py) and a signed
test JWT.

Everything here is plain config dicts for `tests/harness/envoy.py`; nothing is downloaded.
"""

import base64
import hashlib
import hmac
import json
import time

from tests.harness.envoy import percent

JWT_ISSUER = "https://issuer.example"
JWT_SECRET = b"a test secret, not for production use"
JWT_KID = "test-key"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks() -> str:
    """An inline JWKS holding one HS256 (`oct`) key: no crypto library needed to sign a token."""
    return json.dumps({"keys": [{"kty": "oct", "alg": "HS256", "kid": JWT_KID, "k": b64url(JWT_SECRET)}]})


def jwt(lifetime=3600, secret=JWT_SECRET) -> str:
    """A compact HS256 JWT from JWT_ISSUER (valid for `lifetime` seconds; negative: expired)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": JWT_KID}).encode())
    payload = b64url(json.dumps({"iss": JWT_ISSUER, "sub": "test", "exp": int(time.time()) + lifetime}).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def jwt_authn(prefix="/"):
    """jwt_authn requiring a token from JWT_ISSUER on every path under `prefix`."""
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"test": {
                "issuer": JWT_ISSUER,
                "local_jwks": {"inline_string": jwks()},
                "forward": True,
            }},
            "rules": [{"match": {"prefix": prefix}, "requires": {"provider_name": "test"}}],
        },
    }


def rbac_deny_all():
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "DENY", "policies": {"everyone": {
                "permissions": [{"any": True}], "principals": [{"any": True}],
            }}},
        },
    }


def token_bucket_config(stat_prefix="limited"):
    """local_ratelimit's settings: one token, refilled once an hour (after one request, 429)."""
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": stat_prefix,
        "token_bucket": {"max_tokens": 1, "tokens_per_fill": 1, "fill_interval": "3600s"},
        "filter_enabled": percent(100, "unused"),
        "filter_enforced": percent(100, "unused"),
    }


def local_ratelimit():
    return {"name": "envoy.filters.http.local_ratelimit", "typed_config": token_bucket_config()}

