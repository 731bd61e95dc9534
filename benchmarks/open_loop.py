"""An open-loop HTTP load generator: requests start on a fixed schedule (`--rate` per second), whether or not
earlier ones have been answered, over as many keep-alive connections as that needs. Latency is measured from the
time a request was due, so a stalled server shows in the tail instead of quietly slowing the load (what `wrk` or
`hey -q` do); the same percentiles from when each request was written are given too, and how late requests were
sent (the generator's own timer lag: its event loop wakes on millisecond timers). Prints JSON, times in ms.

    .venv/bin/python -m benchmarks.open_loop URL --rate 500 --seconds 30 [--ids FILE] [--timeline FILE]

`CUSTOMER` in the URL is replaced, per request, by a random line of `--ids`. `--timeline` also writes every
request as [when it was due (epoch s), latency (s, null when it failed), status (0 when it failed)], so a caller can
cut out the window of something it did meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop

from benchmarks.stats import percentile

PERCENTILES = (50, 90, 99, 99.9)


class Client:
    """Keep-alive connections; a request takes an idle one or opens a new one."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def get(self, target: str) -> tuple[int, bytes]:
        """Status and body. A kept-alive connection the server has closed meanwhile (uvicorn closes idle ones
        after 5 s) is replaced once, as HTTP clients do for an idempotent request."""
        if self.idle:
            connection = self.idle.pop()
            try:
                return await self._exchange(connection, target)
            except (asyncio.IncompleteReadError, ConnectionResetError):
                connection[1].close()
        return await self._exchange(await self._open(), target)

    async def _exchange(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], target: str
                        ) -> tuple[int, bytes]:
        reader, writer = connection
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await reader.readexactly(length)
        self.idle.append(connection)
        return status, body

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)


async def run(url: str, rate: float, seconds: float, ids: list[str], warm: int,
              timeline: list[tuple[float, float | None, int]] | None = None) -> dict[str, Any]:
    parts = urlsplit(url)
    client = Client(parts.hostname or "127.0.0.1", parts.port or 80)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    rng = random.Random(7)

    def target() -> str:
        return path.replace("CUSTOMER", rng.choice(ids)) if ids else path

    for _ in range(warm):  # connections and the server's caches, not measured
        await asyncio.gather(*(client.get(target()) for _ in range(8)))
    latencies: list[float] = []  # from when each request was due
    from_send: list[float] = []  # from when it was written (without the generator's own lateness)
    late: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}

    to_epoch = time.time() - time.perf_counter()

    async def one(due: float) -> None:
        sent = time.perf_counter()
        try:
            status, _ = await client.get(target())
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if timeline is not None:
                timeline.append((to_epoch + due, None, 0))
            return
        done = time.perf_counter()
        latencies.append(done - due)
        from_send.append(done - sent)
        statuses[status] = statuses.get(status, 0) + 1
        if timeline is not None:
            timeline.append((to_epoch + due, done - due, status))

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = start + sent / rate
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while sent < total and start + sent / rate <= now:  # every request due by now, each timed from its due
            due = start + sent / rate
            late.append(now - due)
            tasks.append(asyncio.create_task(one(due)))
            sent += 1
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return {
        "rate": rate, "seconds": seconds, "requests": total, "answered": len(latencies),
        "achieved_rate": len(latencies) / elapsed, "statuses": statuses, "errors": errors,
        "connections": client.opened,
        **{f"p{p:g}_ms": 1000 * percentile(latencies, p) for p in PERCENTILES},
        "max_ms": 1000 * max(latencies, default=float("nan")),
        **{f"from_send_p{p:g}_ms": 1000 * percentile(from_send, p) for p in PERCENTILES},
        "send_late_p99_ms": 1000 * percentile(late, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ids", type=Path)
    parser.add_argument("--warm", type=int, default=50, help="rounds of 8 requests before measuring")
    parser.add_argument("--timeline", type=Path, help="also write every request's due time, latency and status")
    args = parser.parse_args()
    ids = args.ids.read_text().split() if args.ids else []
    timeline: list[tuple[float, float | None, int]] | None = [] if args.timeline else None
    # The generator's own full collections over a growing timeline showed as 50-100 ms stalls every ~18 s,
    # counted as the server's latency; what it allocates is freed by reference counting.
    gc.disable()
    print(json.dumps(uvloop.run(run(args.url, args.rate, args.seconds, ids, args.warm, timeline))))
    if args.timeline and timeline is not None:
        args.timeline.write_text(json.dumps(sorted(timeline)))


if __name__ == "__main__":
    main()
