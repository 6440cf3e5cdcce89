"""fal's own Python client (fal-client 1.0.3), unmodified, driven against a fal-compatible
server: N jobs at once through `AsyncClient.subscribe`. fal-client only speaks https to
FAL_QUEUE_RUN_HOST, so the server is reached through tls_proxy.py (SSL_CERT_FILE trusts
its certificate). Prints one JSON line per job: its request id and when (Unix µs) the
client held the result.

usage: python fal_py_driver.py ENDPOINT JOBS    (env: FAL_KEY, FAL_QUEUE_RUN_HOST, SSL_CERT_FILE)
"""

import asyncio
import json
import sys
import time

import fal_client


async def main(endpoint: str, jobs: int) -> None:
    client = fal_client.AsyncClient()

    async def one():
        handle = await client.submit(endpoint, arguments={"prompt": "a lighthouse at dusk"})
        await handle.get()
        return {"request_id": handle.request_id, "held_unix_us": time.time_ns() // 1000}

    for r in await asyncio.gather(*(one() for _ in range(jobs)), return_exceptions=True):
        if isinstance(r, BaseException):
            print(repr(r), file=sys.stderr)
        else:
            print(json.dumps(r))


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
