"""Noisy neighbour: company B's signed Stripe webhooks while company A floods `POST /events`.

B sends at a fixed rate (open loop: a late answer does not delay the next request, so a
stall shows in the latencies instead of hiding in a lower rate). A keeps four maximum-size
NDJSON batches of `{}` lines in flight. Each side runs in its own process, so neither's
Python competes for the other's GIL. B alone, against a fresh server, is the baseline of
the same run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx
import orjson

from partner_signals.providers.stripe import STRIPE

# B: one company's webhook traffic; enough requests for a p99 worth quoting.
B_RATE = 200.0
# A: the probe: 1 MiB of `{}` lines (349,525 of them), four at a time.
A_CONCURRENCY = 4


@dataclass
class SideB:
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class SideA:
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    seconds: float = 0.0


def tiny_lines_batch(max_body: int) -> bytes:
    return b"{}\n" * (max_body // 3)


def run_b(
    base: str, company_id: str, secret: str, restaurant_id: str, seconds: float, out: Connection
) -> None:
    """Signed Stripe webhooks at B_RATE for `seconds`; sends a SideB through `out`.

    Each request on a connection of its own, written by hand: httpx's async pool spends
    CPU per waiting request, so when answers slow down the sender would measure itself."""
    result = SideB()
    host, _, port = base.removeprefix("http://").partition(":")
    path = f"/webhooks/stripe/{company_id}"
    tag = uuid.uuid4().hex[:8]

    async def one(n: int, due: float) -> None:
        body = orjson.dumps(
            {
                "id": f"evt_noisy_{tag}_{n}",
                "object": "event",
                "type": "payment_intent.succeeded",
                "created": int(time.time()),
                "data": {
                    "object": {
                        "id": f"pi_noisy_{tag}_{n}",
                        "object": "payment_intent",
                        "amount": 9600,
                        "currency": "aed",
                        "metadata": {"restaurant_id": restaurant_id, "order_id": f"o{n}"},
                    }
                },
            }
        )
        signature = STRIPE.sign(body, secret, time.time())["Stripe-Signature"]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Stripe-Signature: {signature}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        try:
            async with asyncio.timeout(30):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(head + body)
                status_line = await reader.readline()
                await reader.read()  # to the end: the whole answer has arrived
                writer.close()
        except (OSError, TimeoutError) as exc:
            result.errors[type(exc).__name__] += 1
            return
        # From when it was due, not when it went out: a stalled sender counts too.
        result.latencies_ms.append((time.perf_counter() - due) * 1000)
        parts = status_line.split()
        status = parts[1].decode() if len(parts) > 1 else "no answer"
        if status == "200":
            result.ok += 1
        else:
            result.errors[status] += 1

    async def main() -> None:
        tasks = []
        start = time.perf_counter()
        n = 0
        while (due := start + n / B_RATE) < start + seconds:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, due)))
            n += 1
        result.sent = n
        await asyncio.gather(*tasks)

    asyncio.run(main())
    out.send(result)


def run_a(base: str, ingest_key: str, max_body: int, seconds: float, out: Connection) -> None:
    """A_CONCURRENCY senders posting maximum-size batches of `{}` lines for `seconds`."""
    result = SideA()
    body = tiny_lines_batch(max_body)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/x-ndjson"}

    def sender() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop_at:
                try:
                    status = str(
                        client.post(f"{base}/events", content=body, headers=headers).status_code
                    )
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    result.requests += 1
                    result.bytes_sent += len(body)
                    result.statuses[status] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=sender) for _ in range(A_CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - started
    out.send(result)


def measure(
    base: str,
    *,
    b: tuple[str, str, str],
    a: tuple[str, int] | None,
    seconds: float,
) -> tuple[SideB, SideA | None]:
    """B (company, secret, restaurant) for `seconds`, with A (ingest key, max body)
    flooding meanwhile when given; each in its own process."""
    ctx = multiprocessing.get_context("spawn")
    b_recv, b_send = ctx.Pipe(duplex=False)
    procs: list[Any] = [ctx.Process(target=run_b, args=(base, *b, seconds, b_send))]
    a_recv = None
    if a is not None:
        a_recv, a_send = ctx.Pipe(duplex=False)
        # A starts first and runs a little longer, so B never sees a quiet edge.
        procs.insert(0, ctx.Process(target=run_a, args=(base, *a, seconds + 2, a_send)))
    procs[0].start()
    if a is not None:
        time.sleep(1.0)
        procs[1].start()
    # A child that dies cannot leave the benchmark waiting for ever.
    for name, pipe in (("B", b_recv), ("A", a_recv)):
        if pipe is not None and not pipe.poll(seconds + 120):
            for p in procs:
                p.kill()
            raise RuntimeError(f"the {name} sender did not report")
    side_b: SideB = b_recv.recv()
    side_a: SideA | None = a_recv.recv() if a_recv is not None else None
    for p in procs:
        p.join(60)
    return side_b, side_a
