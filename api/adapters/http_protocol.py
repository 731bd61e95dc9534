"""The API's HTTP protocol: uvicorn's httptools protocol, writing each answer to its socket once.

Stock uvicorn writes an answer's status line and headers when the app sends `http.response.start`, and its body
when the app sends `http.response.body`: two socket writes, two packets and two wake-ups of the client for every
small answer. Under wrk at c=32 those writes were a fifth of the API's samples (py-spy, `benchmarks/api_latency.py
--profile`). Here the writes a connection makes in one turn of the event loop are held and go out together at the
end of that turn, so an answer sent in one go (every JSON answer of this API) is one write; a streamed answer
still goes out as the app sends it, one turn at a time.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWriteTransport:
    """A socket transport whose writes of one event-loop turn leave as one. Everything else is the transport's."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()  # what was written before the close still goes out, as with the transport itself
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `OneWriteTransport` (`recsys serve` runs it: `cli.serve_cmd`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(cast(asyncio.Transport, OneWriteTransport(transport, self.loop)))
