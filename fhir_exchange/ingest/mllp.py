"""An MLLP listener (HL7 v2 Minimal Lower Layer Protocol: each message framed as
<VT> message <FS><CR>) for integration engines that speak HL7 v2 over TCP.

Each framed message is handed to the receiver, in a worker thread, and its ACK is written back
only after the message's transaction has committed (or been refused): an acknowledged message
is never lost, and a dropped connection loses only messages not yet acknowledged, which the
sender resends (resends are recognised and write nothing twice). Messages on one connection
are handled in order.

MLLP has no authentication of its own: the listener acts for the one institution it is
started for, listens on loopback by default, and belongs behind the deployment's TLS tunnel
or VPN to that institution's engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("baylink.mllp")
START, END = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE = 50 * 1024 * 1024


def frame(payload: bytes) -> bytes:
    return START + payload + END


def unframe(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete messages at the start of ``buffer`` and what is left over; bytes before a
    start block are noise and dropped."""
    messages = []
    while True:
        start = buffer.find(START)
        if start < 0:
            return messages, b""
        end = buffer.find(END, start + 1)
        if end < 0:
            return messages, buffer[start:]
        messages.append(buffer[start + 1:end])
        buffer = buffer[end + len(END):]


class MllpServer:
    def __init__(self, handle: Callable[[bytes], bytes], host: str = "127.0.0.1", port: int = 2575) -> None:
        self.handle = handle  # message bytes → ACK bytes, after commit
        self.host = host
        self.port = port
        self.server: asyncio.base_events.Server | None = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        buffer = b""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buffer += chunk
                if len(buffer) > MAX_MESSAGE:
                    log.warning("MLLP %s: message over %d bytes; closing", peer, MAX_MESSAGE)
                    break
                messages, buffer = unframe(buffer)
                for message in messages:
                    reply = await asyncio.to_thread(self.handle, message)
                    writer.write(frame(reply))
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError) as lost:
            log.info("MLLP %s: connection lost (%s); unacknowledged messages are the sender's to resend", peer, lost)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._connection, self.host, self.port)
        return self.server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        if self.server is None:
            await self.start()
        assert self.server is not None
        async with self.server:
            await self.server.serve_forever()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
