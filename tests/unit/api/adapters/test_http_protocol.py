"""uvicorn's own httptools protocol, driven with raw request bytes over a transport that records its writes: an
answer sent in one go leaves in one write, with stock uvicorn's bytes; a streamed one as it is sent; nothing held
is lost or reordered at a close, an end of writing or the peer's end."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.adapters.http_protocol import HELD_MAX_BYTES, OneWriteHttpToolsProtocol, OneWriteTransport

BODY = b'{"items": []}'
REQUEST = b"GET /recommend?customer_id=c1 HTTP/1.1\r\nHost: test\r\n\r\n"


class RecordedTransport:
    """The socket's side: what was written, in which calls, and whether it was closed."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.ended = False

    def write(self, data: bytes) -> None:
        assert not self.closed and not self.ended, "written after the close or the end"
        self.writes.append(bytes(data))

    def write_eof(self) -> None:
        self.ended = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def json_answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(BODY)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})


async def streamed_answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"second"})


def connect(app: Any, protocol_class: type[HttpToolsProtocol]) -> tuple[HttpToolsProtocol, RecordedTransport]:
    """The protocol serving `app` over a recording transport; inside a running event loop."""
    config = Config(app, lifespan="off", log_level="warning")
    protocol = protocol_class(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = RecordedTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def serve(app: Any, protocol_class: type[HttpToolsProtocol], request: bytes = REQUEST) -> RecordedTransport:
    async def exchange() -> RecordedTransport:
        protocol, transport = connect(app, protocol_class)
        protocol.data_received(request)
        await asyncio.sleep(0.1)
        protocol.connection_lost(None)
        return transport

    return asyncio.run(exchange())


def test_an_answer_sent_in_one_go_leaves_in_one_write() -> None:
    one_write = serve(json_answer, OneWriteHttpToolsProtocol)
    assert len(one_write.writes) == 1
    head, _, body = one_write.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 13" in head.lower()
    assert body == BODY
    # stock uvicorn sends the same bytes in two writes: what this protocol is for
    stock = serve(json_answer, HttpToolsProtocol)
    assert len(stock.writes) == 2 and b"".join(stock.writes) == one_write.writes[0]


def test_pipelined_requests_are_answered_in_order_one_write_each() -> None:
    transport = serve(json_answer, OneWriteHttpToolsProtocol, REQUEST * 3)
    assert len(transport.writes) == 3  # uvicorn starts each pipelined request after the one before has answered
    assert b"".join(transport.writes) == b"".join(serve(json_answer, HttpToolsProtocol, REQUEST * 3).writes)


def test_a_streamed_answer_leaves_as_it_is_sent() -> None:
    transport = serve(streamed_answer, OneWriteHttpToolsProtocol)
    assert len(transport.writes) == 3  # the head, each chunk with its framing (the last with the end)
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in transport.writes[0]
    assert transport.writes[1] == b"5\r\nfirst\r\n"
    assert transport.writes[2] == b"6\r\nsecond\r\n0\r\n\r\n"
    assert transport.writes == serve(streamed_answer, HttpToolsProtocol).writes


def held_then(finish: str) -> RecordedTransport:
    """One write held, a mutable buffer changed after it, then the transport closed or its writing ended."""

    async def run() -> RecordedTransport:
        transport = RecordedTransport()
        one_write = OneWriteTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        body = bytearray(b"HTTP/1.1 400 Bad Request\r\n\r\nbad")
        one_write.write(body)
        body[:] = b"reused by the caller"
        getattr(one_write, finish)()
        await asyncio.sleep(0.01)  # the turn's flush, scheduled by the write, finds nothing left
        return transport

    return asyncio.run(run())


def test_a_held_write_goes_out_once_before_a_close_or_an_end_as_it_was_written() -> None:
    for finish in ("close", "write_eof"):
        transport = held_then(finish)
        assert transport.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\nbad"]
        assert transport.closed if finish == "close" else transport.ended


def test_a_turns_writes_past_the_bound_go_out_at_once_in_order() -> None:
    async def run() -> tuple[list[bytes], list[bytes]]:
        transport = RecordedTransport()
        one_write = OneWriteTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        one_write.write(b"head")
        one_write.write(b"x" * HELD_MAX_BYTES)
        within_the_turn = list(transport.writes)
        one_write.write(b"tail")
        await asyncio.sleep(0.01)
        return within_the_turn, transport.writes

    within_the_turn, after = asyncio.run(run())
    assert within_the_turn == [b"head" + b"x" * HELD_MAX_BYTES]  # the socket's flow control sees them now
    assert after == [*within_the_turn, b"tail"]


def test_an_answer_held_when_the_peer_ends_its_side_still_goes_out() -> None:
    async def exchange() -> RecordedTransport:
        protocol, transport = connect(json_answer, OneWriteHttpToolsProtocol)
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the app answers; its one write is held for the loop's next turn
        assert transport.writes == []
        # the peer's FIN in the same turn: asyncio calls eof_received, then closes the transport (it returned None)
        protocol.eof_received()
        transport.close()
        await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return transport

    transport = asyncio.run(exchange())
    assert transport.writes == serve(json_answer, OneWriteHttpToolsProtocol).writes
