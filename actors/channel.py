"""Frames between a replica and its program workers: a 4-byte length, then msgpack.

msgpack because the replica reads what a worker writes, and a worker runs untrusted code:
decoding msgpack builds lists, dicts, strings and numbers and runs nothing (pickle would run
whatever the frame asks for). Every frame is bounded in size, and the reader validates shape.
"""

from __future__ import annotations

import asyncio
import struct

import msgpack

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 2**20


class ChannelClosed(ConnectionError):
    """The other side went away (or sent something that is not a frame)."""


def pack(obj) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def unpack(body: bytes):
    return msgpack.unpackb(body, raw=False, strict_map_key=False)


async def read_frame(reader: asyncio.StreamReader):
    try:
        header = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(header)
        if size > MAX_FRAME:
            raise ChannelClosed(f"frame of {size} bytes is over the limit")
        body = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
        raise ChannelClosed(str(exc) or "closed") from None
    try:
        return unpack(body)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ChannelClosed(f"malformed frame: {exc}") from None


def write_frame(writer: asyncio.StreamWriter, obj) -> None:
    writer.write(pack(obj))
