"""REST transport throughput: deliveries/s against a local aiohttp server, beside a floor.

Three figures, one run, the same server (its own process, 127.0.0.1, storing
each body by ``Idempotency-Key`` and answering 201):

- ``floor``: a bare aiohttp client POSTing the same bodies with the same
  number of requests in flight: what the server and the machine allow;
- ``transport``: :class:`plugins.rest.transport.RestTransport` alone, the batches
  the dispatcher would hand it (``send_many``);
- ``dispatcher``: the real dispatcher on a real store seeded with the
  deliveries: claims, sends, records each outcome in the journal; delivered
  counted in the database.

Usage: .venv/bin/python bench/rest_transport.py [--messages 5000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import sqlite3
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
from aiohttp import web
from lxml import etree

from gateway.api import NormaliseContext, OutboundItem, PluginContext
from gateway.contracts import Normalised, RawInput, Route
from gateway.dispatcher import Dispatcher
from gateway.ech0223 import sample_person_event, write_message
from gateway.retry import RetryPolicy
from gateway.store import MessageState, Processed, SQLiteStore
from plugins.rest.transport import RestOptions, RestTransport

#: Deliveries claimed at once, as [dispatcher] batch_size's default.
BATCH = 500


def serve(pipe: Connection) -> None:
    """The partner: stores each body by Idempotency-Key, answers 201; sends its port."""
    stored: dict[str, int] = {}

    async def take(request: web.Request) -> web.Response:
        body = await request.read()
        stored.setdefault(request.headers["Idempotency-Key"], len(body))
        return web.Response(status=201, text="stored")

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=str(len(stored)))

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/messages", take)
        app.router.add_get("/count", count)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        pipe.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def floor(url: str, bodies: list[bytes], concurrency: int) -> float:
    """Seconds for a bare client to POST every body, ``concurrency`` at a time."""
    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def post(n: int, body: bytes) -> None:
            async with slots, session.post(url, data=body, headers={
                    "Content-Type": "application/xml", "Idempotency-Key": f"floor-{n}"}) as r:
                await r.read()
                assert r.status == 201
        start = time.perf_counter()
        await asyncio.gather(*(post(n, b) for n, b in enumerate(bodies)))
        return time.perf_counter() - start


async def transport_alone(url: str, bodies: list[bytes], concurrency: int, work: Path) -> float:
    """Seconds for the transport to send every body, in dispatcher-sized batches."""
    context = PluginContext("canton", work, NormaliseContext(1 << 20, 100, 1 << 20, 100), None)
    rest = RestTransport(RestOptions.model_validate({"url": url, "concurrency": concurrency}), context)
    items = [OutboundItem(n, "canton", 1, f"a-{n}", f"m-{n}", body, delivery_ref=f"t-{n}")
             for n, body in enumerate(bodies)]
    start = time.perf_counter()
    for i in range(0, len(items), BATCH):
        results = await rest.send_many(items[i:i + BATCH])
        assert not any(isinstance(r, Exception) for r in results), results
    elapsed = time.perf_counter() - start
    await _close(rest)
    return elapsed


async def through_dispatcher(url: str, bodies: list[bytes], concurrency: int, work: Path) -> float:
    """Seconds for the dispatcher to deliver every seeded delivery through the transport."""
    db = work / "gateway.db"
    store = SQLiteStore(db)
    store.start()
    tree = etree.ElementTree(etree.Element("x"))
    for i in range(0, len(bodies), BATCH):
        part = bodies[i:i + BATCH]
        rows = await store.add_raw([RawInput("bench", f"m-{i + n}", b) for n, b in enumerate(part)])
        await store.record_processing([
            Processed(mid, MessageState.ROUTED, routes=[Route("canton", "bench")],
                      normalised=Normalised("personEventMessage", f"m-{i + n}", b, tree))
            for n, ((mid, _new), b) in enumerate(zip(rows, part, strict=True))])
    context = PluginContext("canton", work, NormaliseContext(1 << 20, 100, 1 << 20, 100), None)
    rest = RestTransport(RestOptions.model_validate({"url": url, "concurrency": concurrency}), context)
    dispatcher = Dispatcher(store, {"canton": rest}, {"canton": RetryPolicy()}, {}, node="bench",
                            lease=60, batch_size=BATCH, idle_poll=0.01, rounds=2)
    start = time.perf_counter()
    task = asyncio.create_task(dispatcher.run())
    while _delivered(db) < len(bodies):
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - start
    dispatcher.stop()
    await task
    await _close(rest)
    store.close()
    return elapsed


def _delivered(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                   .fetchone()[0])
    finally:
        conn.close()


async def _close(rest: RestTransport) -> None:
    task = asyncio.create_task(rest.run(None, None))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def run(messages: int, concurrency: int) -> None:
    rng = random.Random(1)
    bodies = [write_message(sample_person_event(rng, message_id=f"bench-{n}"))
              for n in range(messages)]
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child,), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{parent.recv()}/messages"
        print(f"messages:    {messages} of {sum(map(len, bodies)) // messages} bytes,"
              f" {concurrency} requests in flight, server in its own process")
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            await floor(url, bodies[:500], concurrency)  # warm up the server and the loop
            base = await floor(url, bodies, concurrency)
            alone = await transport_alone(url, bodies, concurrency, work)
            full = await through_dispatcher(url, bodies, concurrency, work)
        print(f"floor:       {messages / base:8.0f} POST/s (bare aiohttp client)")
        print(f"transport:   {messages / alone:8.0f} deliveries/s ({base / alone:.2f} of the floor)")
        print(f"dispatcher:  {messages / full:8.0f} deliveries/s ({base / full:.2f} of the floor;"
              " claimed, sent, recorded)")
    finally:
        server.terminate()
        server.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    asyncio.run(run(args.messages, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
