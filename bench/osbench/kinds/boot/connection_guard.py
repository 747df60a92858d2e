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

The timers themselves belong to each connection's protocol
(`registration_http.RequestProtocol`), which asks the guard to `admit` it, reports
`closed` reasons, and is `release`d when it closes.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

from osbench.fdlimit import raise_open_file_limit

log = logging.getLogger(__name__)

#: Connections open at once, at most. A burst of N guests phoning home together
#: holds up to N open while the server reads first and answers after
#: (`phonehome.PARSE_BATCH`): at 4096, 181 of a 5000 burst were refused (issue
#: 19). Each costs a file descriptor and at most ~100 KB buffered
#: (`MAX_HEAD_BYTES`, the body limit and a read's slack,
#: `registration_http.UNREAD_SLACK`), which only a flood of hostile clients
#: fills: up to 1.6 GB at this cap. A smaller harness sets `max_connections`.
MAX_CONNECTIONS = 16384
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


class Guarded(Protocol):
    """What the guard holds of an admitted connection: a way to cut it."""

    def abort(self) -> None: ...


class ConnectionGuard:
    """Admits connections under the caps and counts those cut short.

    Caps left None are set by `set_caps` (the server calls it on starting) from
    the open-file limit. Each accepted connection calls `admit` with its source
    address, `closed` with the reason it cut itself short (its own idle, header
    and body timers), and `release` when it is gone. Used from the server's own
    thread only; the counters are read from others (one read each).
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
        self._connections: set[Guarded] = set()
        self._open_per_source: Counter[str] = Counter()

    def set_caps(self) -> tuple[int, int]:
        """The caps (total, per source), those not given first set from the open-file
        limit, which this raises to its hard limit: `max_connections_for` it, and a
        SOURCE_SHARE of that per source."""
        # Raised whether or not the cap is given: a cap over the soft limit
        # (often 1024) would fail its accepts with EMFILE instead.
        open_file_limit = raise_open_file_limit()
        if self.max_connections is None:
            self.max_connections = max_connections_for(open_file_limit)
        if self.max_connections_per_source is None:
            self.max_connections_per_source = max(1, self.max_connections // SOURCE_SHARE)
        return self.max_connections, self.max_connections_per_source

    @property
    def open_connections(self) -> int:
        """Connections open now (admitted, not yet closed)."""
        return len(self._connections)

    def abort_all(self) -> None:
        """Close every open connection at once (the server is stopping)."""
        for connection in list(self._connections):
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

    def admit(self, connection: Guarded, source: str) -> str | None:
        """Count a new connection from `source` in; the reason it is refused, or None."""
        assert self.max_connections is not None and self.max_connections_per_source is not None
        if self._open_per_source[source] >= self.max_connections_per_source:
            return "per_source"
        if len(self._connections) >= self.max_connections:
            return "total"
        self._open_per_source[source] += 1
        self._connections.add(connection)
        return None

    def release(self, connection: Guarded, source: str) -> None:
        """An admitted connection is gone: its place is free."""
        self._connections.discard(connection)
        self._open_per_source[source] -= 1
        if not self._open_per_source[source]:
            del self._open_per_source[source]
