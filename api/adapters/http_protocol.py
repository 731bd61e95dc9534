"""The API's HTTP protocol: uvicorn's httptools protocol, writing each answer to its socket once.

Stock uvicorn writes an answer's status line and headers when the app sends `http.response.start`, and its body
when the app sends `http.response.body`: two socket writes, two packets and two wake-ups of the client for every
small answer. Under wrk at c=32 with the stream worker running, uvicorn's `send` was 23% of the API's samples
(py-spy, self time, which also covers building the head; `benchmarks/api_latency.py --profile`). Here a write is
held until the connection's next write, which joins it and goes out at once, or until the event loop's next turn,
whichever comes first: an answer sent in one go (head, then body, as every JSON answer of this API is) leaves in
one write as soon as its body is sent, and a streamed answer still leaves as the app sends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWriteTransport:
    """A socket transport that holds one write until the next write or the loop's next turn; the rest is the
    transport's own. At most one write is held, so the transport's buffer (and its flow control) sees every byte
    at most a turn late."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held + data)
            return
        # a copy of anything mutable: the caller may reuse its buffer once write returns
        self._held = data if type(data) is bytes else bytes(data)
        self._loop.call_soon(self.flush)

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(lines))

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

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
