"""The registration server's defences against being starved: every connection is
admitted under a cap per source address and in all, and closed when it stalls.

Anyone who can reach the phone-home port can try to starve it, and a starved
server records guests as `no_phone_home`: a false failed capacity test. So a
`ConnectionGuard` admits each accepted connection under the caps (the total one
set by the open-file limit, less a reserve for the rest of the process), closes
it when nothing arrives (idle), when its request headers do not complete
(header), or when it sends far more than a request head before its request
starts (oversize), and counts each in `closed_early`. The body timeout (408) is
the HTTP handler's; it counts here too, as "body". Complaints are logged from
this module's logger, which the server throttles (`osbench.logthrottle`).

The HTTP itself is aiohttp's request handler, which `_Connection` wraps:
aiohttp has no header timeout, and only recent versions time out a silent client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Callable
from typing import cast

from aiohttp import web

from osbench.fdlimit import raise_open_file_limit

log = logging.getLogger(__name__)

#: Connections open at once, at most. The headline experiment's 1000 guests
#: phoning home together need up to 1000; 4096 leaves 4x headroom. Each costs
#: a file descriptor and at most ~32 KB buffered (`MAX_HEAD_BYTES` plus the
#: body limit), 128 MB in all.
MAX_CONNECTIONS = 4096
#: File descriptors left to the rest of the process (journal, the cloud API's
#: connection pool, logs, the event loop's own) when the open-file limit, not
#: MAX_CONNECTIONS, sets the cap.
FD_RESERVE = 256
#: One source address may hold this share of the connections: guests behind
#: one SNAT router (tenant networks without floating IPs) all come from one
#: address, so the share is large, yet an attacker at one address leaves
#: three quarters to everyone else.
SOURCE_SHARE = 4
#: cloud-init connects and sends its whole POST at once; these leave room for
#: several TCP retransmissions (200 ms, 400 ms, ... doubling) on a lossy
#: guest network, and bound how long an attacker holds a connection to 30 s.
IDLE_TIMEOUT_S = 10.0
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
#: Bytes a connection may send before its request starts, on top of the body
#: limit (a read can carry the start of the body). cloud-init's head is ~300.
MAX_HEAD_BYTES = 16384


def max_connections_for(open_file_limit: int) -> int:
    """The default cap on connections for a process allowed `open_file_limit`
    open files: MAX_CONNECTIONS, or what the limit leaves after FD_RESERVE
    (but at least half the limit), whichever is less.
    """
    return min(MAX_CONNECTIONS, max(open_file_limit - FD_RESERVE, open_file_limit // 2, 1))


def peer_address(remote: str | None) -> tuple[str, str]:
    """(address, family) of a peer; IPv4-mapped IPv6 counts as IPv4."""
    if remote is None:
        return "", "unknown"
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote, "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped), "ipv4"
        return remote, "ipv6"
    return remote, "ipv4"


class ConnectionGuard:
    """Admits connections under the caps and closes those that stall.

    Caps left None are set by `set_caps` (the server calls it on starting) from
    the open-file limit. `protocol(make_handler)` is what the listening socket
    creates per accepted connection; `make_handler` gives the aiohttp handler it
    hands admitted ones to. The handler calls `request_started` once a request's
    headers are complete, which ends the header timeout (the body timeout is the
    handler's own; it reports a 408 with `closed("body", source)`).
    """

    def __init__(self, *, max_connections: int | None, max_connections_per_source: int | None,
                 idle_timeout_s: float, header_timeout_s: float, body_timeout_s: float,
                 max_body_bytes: int) -> None:
        for name, value in [("max_connections", max_connections),
                            ("max_connections_per_source", max_connections_per_source),
                            ("idle_timeout_s", idle_timeout_s),
                            ("header_timeout_s", header_timeout_s),
                            ("body_timeout_s", body_timeout_s)]:
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.max_connections = max_connections
        self.max_connections_per_source = max_connections_per_source
        self.idle_timeout_s = idle_timeout_s
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.max_body_bytes = max_body_bytes
        #: Connections refused or cut short, by reason: "per_source", "total"
        #: (refused over a cap), "idle", "header", "oversize" (closed), "body" (408).
        self.closed_early: Counter[str] = Counter()
        self._connections: dict[asyncio.Transport, _Connection] = {}
        self._open_per_source: Counter[str] = Counter()

    def set_caps(self) -> tuple[int, int]:
        """The caps (total, per source), those not given first set from the open-file
        limit, which this raises to its hard limit: `max_connections_for` it, and a
        SOURCE_SHARE of that per source."""
        if self.max_connections is None:
            self.max_connections = max_connections_for(raise_open_file_limit())
        if self.max_connections_per_source is None:
            self.max_connections_per_source = max(1, self.max_connections // SOURCE_SHARE)
        return self.max_connections, self.max_connections_per_source

    def protocol(self, make_handler: Callable[[], web.RequestHandler]) -> asyncio.Protocol:
        """A protocol for one accepted connection (a `create_server` factory's product)."""
        return _Connection(self, make_handler)

    @property
    def open_connections(self) -> int:
        """Connections open now (admitted, not yet closed)."""
        return len(self._connections)

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        """The request on `transport` has its headers: the header timeout no longer applies."""
        connection = (self._connections.get(cast(asyncio.Transport, transport))
                      if transport is not None else None)
        if connection is not None:
            connection.request_started()

    def abort_all(self) -> None:
        """Close every open connection at once (the server is stopping)."""
        for connection in list(self._connections.values()):
            connection.abort()

    def closed(self, reason: str, source: str) -> None:
        """Count a refused or cut-short connection; say so (throttled by the server)."""
        self.closed_early[reason] += 1
        if reason == "per_source":
            log.warning("refused a connection from %s: %d open from that address "
                        "(max_connections_per_source)", source, self.max_connections_per_source)
        elif reason == "total":
            log.warning("refused a connection from %s: %d open (max_connections)",
                        source, self.max_connections)
        elif reason == "idle":
            log.warning("closed a connection from %s: nothing received in %g s "
                        "(idle_timeout_s)", source, self.idle_timeout_s)
        elif reason == "header":
            log.warning("closed a connection from %s: request headers not complete %g s "
                        "after their first byte (header_timeout_s)", source,
                        self.header_timeout_s)
        elif reason == "oversize":
            log.warning("closed a connection from %s: over %d bytes before its request "
                        "began", source, MAX_HEAD_BYTES + self.max_body_bytes)
        else:
            log.warning("answered 408 to %s: body not complete in %g s (body_timeout_s)",
                        source, self.body_timeout_s)

    def _admit(self, connection: _Connection, transport: asyncio.Transport) -> str | None:
        """Count a new connection in; the reason it is refused, or None."""
        assert self.max_connections is not None and self.max_connections_per_source is not None
        if self._open_per_source[connection.source] >= self.max_connections_per_source:
            return "per_source"
        if len(self._connections) >= self.max_connections:
            return "total"
        self._open_per_source[connection.source] += 1
        self._connections[transport] = connection
        return None

    def _release(self, connection: _Connection, transport: asyncio.Transport) -> None:
        del self._connections[transport]
        self._open_per_source[connection.source] -= 1
        if not self._open_per_source[connection.source]:
            del self._open_per_source[connection.source]


class _Connection(asyncio.Protocol):
    """One accepted connection: admitted under the guard's caps, closed when it
    stalls, its HTTP handled by the aiohttp handler it wraps."""

    def __init__(self, guard: ConnectionGuard,
                 make_handler: Callable[[], web.RequestHandler]) -> None:
        self._guard = guard
        self._make_handler = make_handler
        self._handler: web.RequestHandler | None = None  # None: refused or not yet made
        self.transport: asyncio.Transport | None = None
        self.source = ""
        self._received = 0
        self._timer: asyncio.TimerHandle | None = None
        self._first_byte_at: float | None = None
        self._in_request = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # a stream transport: TCP
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.source = peer_address(str(peer[0]) if peer else None)[0]
        refused = self._guard._admit(self, transport)
        if refused is not None:
            transport.abort()  # at once: frees the descriptor without a FIN wait
            self._guard.closed(refused, self.source)
            return
        self._handler = self._make_handler()
        self._handler.connection_made(transport)
        self._arm(self._guard.idle_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            return
        if not self._in_request:
            if self._first_byte_at is None:
                self._first_byte_at = asyncio.get_running_loop().time()
                self._arm(self._guard.header_timeout_s)
            self._received += len(data)
            if self._received > MAX_HEAD_BYTES + self._guard.max_body_bytes:
                self._close_early("oversize")
                return
        self._handler.data_received(data)

    def eof_received(self) -> None:
        if self._handler is not None:
            self._handler.eof_received()

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        handler, self._handler = self._handler, None
        if handler is None:
            return
        self._disarm()
        assert self.transport is not None
        self._guard._release(self, self.transport)
        handler.connection_lost(exc)

    def request_started(self) -> None:
        """Headers are complete: from here the handler's body timeout applies."""
        self._in_request = True
        self._disarm()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _arm(self, timeout_s: float) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if not self._in_request:
            self._close_early("idle" if self._first_byte_at is None else "header")

    def _close_early(self, reason: str) -> None:
        self._guard.closed(reason, self.source)
        self.abort()
