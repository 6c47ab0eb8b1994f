"""REST push throughput: msgs/s acknowledged durably through ``POST``, beside a minimal floor.

Both servers run as processes of their own and get the same eCH-0223 messages
(``ech0223_inputs.samples``) from the same client: ``--concurrency`` keep-alive
connections, each POSTing its next message as soon as the previous one is
answered. A message counts when its ``202`` arrives, which both servers send
only after the body is committed (SQLite, WAL, synchronous=FULL).

- the gateway: ``ech-gateway run`` on a fresh ``init`` folder, with the HTTP
  server and an ``http`` source (bearer token, the XML checked, stored with
  its journal entries); it processes what it took meanwhile (normalise,
  rules, the sedex outbox), as in production;
- the floor: a tiny aiohttp app that inserts each body into SQLite with the
  gateway store's durability settings and group commit (the bodies waiting
  in one event-loop pass share a transaction, as in the gateway's writer),
  then answers ``202`` with the row id. No token, no parsing, no journal.

Besides msgs/s, each run prints the CPU time per message of the gateway's
process (its event loop and threads, not its workers), of the floor's server
and of the client (this process), from the first request to the last 202: on
a shared machine whose speed varies several-fold, the CPU per message of the
servers, and their ratio, move far less than their rates.

Usage: .venv/bin/python bench/push.py [--messages 5000] [--concurrency 32] [--runs 1] [--toml ...]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ech0223_inputs import samples
from throughput import cpu_seconds, start_gateway

BIN = Path(sys.executable).parent
TOKEN = "bench-token"
PATH = "/sources/push/messages"
CONFIG = """\
[gateway]
log_level = "WARNING"
[http]
listen = "127.0.0.1:{port}"
[sources.push]
type = "http"
tokens_sha256 = ["{digest}"]
"""


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until something answers HTTP on ``port`` (the process must not have died)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/"):
                    return
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"nothing listens on {port} after {timeout} s") from None
                await asyncio.sleep(0.1)


async def push(port: int, bodies: list[bytes], concurrency: int) -> float:
    """POST every body; msgs/s from the first request to the last 202."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/xml"}
    url = f"http://127.0.0.1:{port}{PATH}"
    todo = iter(bodies)

    async def client(session: aiohttp.ClientSession) -> None:
        for body in todo:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 202:
                    raise SystemExit(f"answer {response.status}: {await response.text()}")

    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - start)


class Measured(NamedTuple):
    """One server's run: msgs/s and CPU seconds per message of the server and the client."""

    rate: float
    server_cpu: float
    client_cpu: float


def measure(pid: int, port: int, bodies: list[bytes], concurrency: int) -> Measured:
    """Push ``bodies`` to the server ``pid`` listening on ``port``; its rate and CPU per message."""
    server, client = sum(cpu_seconds(pid)), time.process_time()
    rate = asyncio.run(push(port, bodies, concurrency))
    return Measured(rate, (sum(cpu_seconds(pid)) - server) / len(bodies),
                    (time.process_time() - client) / len(bodies))


def run_gateway(work: Path, bodies: list[bytes], concurrency: int, toml: str = ""
                ) -> tuple[Measured, int]:
    """The gateway's figures, and how many of the inputs it had processed by the last 202."""
    subprocess.run([str(BIN / "ech-gateway"), "init", str(work)], check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    (work / "conf.d" / "10-push.toml").write_text(CONFIG.format(
        port=port, digest=hashlib.sha256(TOKEN.encode()).hexdigest()))
    if toml:
        (work / "conf.d" / "95-extra.toml").write_text(toml.replace("\\n", "\n") + "\n")
    gateway = start_gateway(str(BIN / "ech-gateway"), work / "gateway.toml")
    try:
        asyncio.run(wait_listening(port, gateway))
        measured = measure(gateway.pid, port, bodies, concurrency)
        conn = sqlite3.connect(f"file:{work / 'gateway.db'}?mode=ro", uri=True)
        done = conn.execute("SELECT count(*) FROM messages WHERE state != 'received'").fetchone()[0]
        stored = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        conn.close()
        assert stored == len(bodies), f"{stored} stored of {len(bodies)}"
        return measured, int(done)
    finally:
        gateway.terminate()
        gateway.wait(60)


def run_floor(work: Path, bodies: list[bytes], concurrency: int) -> Measured:
    """The floor's figures (the floor server in a process of its own)."""
    port = free_port()
    floor = subprocess.Popen([sys.executable, __file__, "--serve-floor", str(port),
                              str(work / "floor.db")])
    try:
        asyncio.run(wait_listening(port, floor))
        return measure(floor.pid, port, bodies, concurrency)
    finally:
        floor.terminate()
        floor.wait(60)


def serve_floor(port: int, db: Path) -> None:
    """The floor server: insert each body, group-committed, then answer 202."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, received_at REAL, raw BLOB)")
    waiting: list[tuple[bytes, asyncio.Future[int]]] = []

    def flush() -> None:
        batch = waiting[:]
        waiting.clear()
        conn.execute("BEGIN")
        ids = [conn.execute("INSERT INTO m (received_at, raw) VALUES (?, ?)",
                            (time.time(), body)).lastrowid for body, _ in batch]
        conn.execute("COMMIT")
        for (_, fut), rowid in zip(batch, ids, strict=True):
            fut.set_result(int(rowid or 0))

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not waiting:
            asyncio.get_running_loop().call_soon(flush)
        waiting.append((body, fut))
        return web.json_response({"id": await fut}, status=202)

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post(PATH, handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    """Print the gateway's and the floor's msgs/s and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--runs", type=int, default=1, help="alternate gateway and floor N times")
    ap.add_argument("--dir", type=Path, default=None, help="where the work folders go")
    ap.add_argument("--toml", default="", help="extra gateway configuration, e.g."
                    " '[gateway]\\nworker_nice = 0'")
    ap.add_argument("--serve-floor", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_floor:
        serve_floor(int(args.serve_floor[0]), Path(args.serve_floor[1]))
        return
    bodies = list(samples(args.messages, seed=1))
    gateways: list[Measured] = []
    floors: list[Measured] = []
    for run in range(1, args.runs + 1):
        work = Path(tempfile.mkdtemp(prefix="ech-gateway-push-", dir=args.dir))
        try:
            gateway, processed = run_gateway(work / "gateway", bodies, args.concurrency, args.toml)
            (work / "floor").mkdir()
            floor = run_floor(work / "floor", bodies, args.concurrency)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        gateways.append(gateway)
        floors.append(floor)
        print(f"run {run}: gateway {gateway.rate:.0f} msgs/s ({processed} of {len(bodies)} processed"
              f" by the last 202), floor {floor.rate:.0f} msgs/s, ratio"
              f" {gateway.rate / floor.rate:.2f}; CPU per message: gateway process"
              f" {gateway.server_cpu * 1e6:.0f} us, floor server {floor.server_cpu * 1e6:.0f} us,"
              f" client {gateway.client_cpu * 1e6:.0f} / {floor.client_cpu * 1e6:.0f} us")
    ratio = statistics.median(g.rate / f.rate for g, f in zip(gateways, floors, strict=True))
    print(f"inputs: {len(bodies)} eCH-0223 messages, {args.concurrency} keep-alive clients")
    print(f"gateway (POST -> 202, durable): {statistics.median(g.rate for g in gateways):.0f} msgs/s"
          f" (median), {statistics.median(g.server_cpu for g in gateways) * 1e6:.0f} us CPU per"
          " message in its process")
    print(f"floor (aiohttp + SQLite insert): {statistics.median(f.rate for f in floors):.0f} msgs/s"
          f" (median), {statistics.median(f.server_cpu for f in floors) * 1e6:.0f} us CPU per"
          " message in its server")
    print(f"ratio gateway/floor: {ratio:.2f} (median of the runs' ratios; target >= 0.6)")

if __name__ == "__main__":
    main()
