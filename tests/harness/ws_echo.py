"""A real WebSocket upstream for the cross-origin protection tests: the `websockets` package
(pinned in scripts/setup.sh) serving on 127.0.0.1:PORT, answering each text message with
`echo:<message>`. It accepts every handshake, whatever its Origin: refusing cross-origin ones is
the filter's job in front of it.

Usage: python -m tests.harness.ws_echo PORT
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(connection):
    async for message in connection:
        await connection.send(f"echo:{message}")


async def main(port):
    async with serve(echo, "127.0.0.1", port) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
