"""A real gRPC server (grpcio) for the gRPC-Web browser tests, over HTTP/2 without TLS.

Service `cors.test.Greeter`; every message is a `google.protobuf.StringValue` (one string field,
number 1), so the handlers are registered with grpc's generic handlers and no code is generated.

- `Greet`: answers "hello <name>".
- `Fail`: fails with NOT_FOUND before sending any message, which grpc sends as a trailers-only
  response (status and message in the one HEADERS frame).
- `Deadline`: answers the seconds left until the call's deadline (`grpc-timeout`), or "none".

Usage: grpc_greeter.py PORT (listens on 127.0.0.1:PORT until terminated).
"""

import sys
from concurrent import futures

import grpc
from google.protobuf.wrappers_pb2 import StringValue

SERVICE = "cors.test.Greeter"
NO_DEADLINE = 365 * 24 * 3600


def greet(request, context):
    return StringValue(value=f"hello {request.value}")


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, f"no greeting for {request.value}")


def deadline(request, context):
    # Without a deadline grpc reports the time left until the end of its clock (~292 years).
    remaining = context.time_remaining()
    return StringValue(value="none" if remaining is None or remaining > NO_DEADLINE else f"{remaining:.3f}")


def unary(function):
    return grpc.unary_unary_rpc_method_handler(
        function, request_deserializer=StringValue.FromString, response_serializer=StringValue.SerializeToString)


def main(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        SERVICE, {"Greet": unary(greet), "Fail": unary(fail), "Deadline": unary(deadline)})])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main(int(sys.argv[1]))
