"""A real Connect server (connectrpc, the Connect project's Python implementation, on uvicorn)
for the Connect browser tests: unary calls over HTTP/1.1 with JSON bodies.

Service `cors.test.v1.GreetService`; its messages are `google.protobuf.Struct` (a JSON object in
the Connect JSON codec), so no code is generated.

- `Greet`: `{"name": N}` -> `{"greeting": "hello N", "timeoutMs": <ms left, or null>}` (the time
  left comes from the request's `connect-timeout-ms`).
- `Fail`: a Connect error, `not_found`, which Connect sends as HTTP 404 with the error as JSON.

Usage: connect_greeter.py PORT (listens on 127.0.0.1:PORT until terminated).
"""

import sys

import uvicorn
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.server import ConnectASGIApplication, Endpoint
from protobuf.wkt import Struct

SERVICE = "cors.test.v1.GreetService"


def method(name):
    return MethodInfo(name=name, service_name=SERVICE, input=Struct, output=Struct,
                      idempotency_level=IdempotencyLevel.UNKNOWN, stream_type=StreamType.UNARY)


async def greet(request, ctx):
    name = request.to_python().get("name")
    timeout_ms = ctx.timeout_ms
    return Struct.from_python({"greeting": f"hello {name}",
                               "timeoutMs": None if timeout_ms is None else round(timeout_ms)})


async def fail(request, ctx):
    raise ConnectError(Code.NOT_FOUND, f"no greeting for {request.to_python().get('name')}")


class GreetService(ConnectASGIApplication):
    @property
    def path(self):
        return f"/{SERVICE}"

    def __init__(self):
        super().__init__(service=self, endpoints=lambda _: {
            f"/{SERVICE}/Greet": Endpoint.unary(method("Greet"), greet),
            f"/{SERVICE}/Fail": Endpoint.unary(method("Fail"), fail),
        })


if __name__ == "__main__":
    uvicorn.run(GreetService(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
