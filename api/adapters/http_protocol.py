"""The API's HTTP protocol: uvicorn's httptools protocol, writing each answer to its socket once.

Stock uvicorn writes an answer's status line and headers when the app sends `http.response.start`, and its body
when the app sends `http.response.body`: two socket writes, two packets and two wake-ups of the client for every
small answer. Under wrk at c=32 with the stream worker running, uvicorn's `send` was 23% of the API's samples
(py-spy, self time, which also covers building the head; `benchmarks/api_latency.py --profile`). Here what a
connection writes in one turn of the event loop is held and goes out as one write from a callback the first write
schedules for the loop's next turn (or at once, past HELD_MAX_BYTES): an answer sent in one go leaves in one
write, a streamed answer as the app sends it, turn by turn. Sending on the next turn was also faster than sending
head and body together as soon as the body is sent: the bare floor app under wrk at c=32, alternating, 11.3k-
14.1k req/s (71-88 us of CPU a request) against 6.3k-11.1k (90-158 us), and 6.5k-7.0k on stock uvicorn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HELD_MAX_BYTES = 65_536  # past this a turn's writes go out at once, so the socket's flow control sees them


class OneWriteTransport:
    """A socket transport whose writes of one event-loop turn leave as one; the rest is the transport's own."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        # a copy of anything mutable: the caller may reuse its buffer once write returns
        self._held.append(data if type(data) is bytes else bytes(data))
        self._held_bytes += len(data)
        if self._held_bytes > HELD_MAX_BYTES:
            self.flush()

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(lines))

    def flush(self) -> None:
        held, self._held, self._held_bytes = self._held, [], 0
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()  # what was written before the close still goes out, as with the transport itself
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `OneWriteTransport` (`recsys serve` runs it: `cli.serve_cmd`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(cast(asyncio.Transport, OneWriteTransport(transport, self.loop)))

    def eof_received(self) -> None:
        """The peer ended its side: asyncio closes the socket's transport as this returns, and a write held for the
        next turn would then be dropped. It goes out now, as it would have without holding."""
        cast(OneWriteTransport, self.transport).flush()
