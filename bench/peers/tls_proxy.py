"""A TLS front for a plain-HTTP server on loopback, so clients that only speak https
(fal-client) can reach it: accepts TLS on 127.0.0.1:PORT (0: any free port), forwards
bytes to TARGET. Prints "listening on PORT" once ready.

usage: python tls_proxy.py CERT KEY TARGET_HOST:PORT [PORT]
"""

import asyncio
import ssl
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(cert: str, key: str, target: str, listen_port: str = "0") -> None:
    host, port = target.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", int(listen_port), ssl=ctx, backlog=4096)
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main(*sys.argv[1:5]))
