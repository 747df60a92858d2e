"""The registration server guests phone home to: an instance counts as started
only when its cloud-init `phone_home` POST arrives here.

cloud-init runs `phone_home` once per instance, at the very end of boot, and
POSTs a form (`application/x-www-form-urlencoded`, `User-Agent:
Cloud-Init/<ver>`) to a URL in which `$INSTANCE_ID` became the Nova server
UUID. It retries any status >= 400 up to `tries` times, 3 s apart, and recent
versions retry 503 without limit. So this server answers 200 at once, never
503, and takes its timestamps when the request's first bytes arrive.

Routes: `POST /<token>/<instance_id>/` (trailing slash optional). The token
is a secret per run, so strays from other runs or scanners cannot count.

How it keeps its stamps true (issue 19):
- HTTP at the transport level (`registration_http`), not aiohttp. Measured on
  this 2-core machine, 1000 one-shot POSTs from client processes on the other
  core: aiohttp's server stamped p50 166 ms / p99 215 ms after connect() at
  214 us of CPU per request, no better than the stdlib's ThreadingHTTPServer,
  against nginx's 19 / 32 ms at 20 us. aiohttp's per-connection set-up,
  request and response objects and teardown were ~65% of that CPU, and the
  stamp came after them. The README's registration section has this module's
  figures beside nginx's (tests/perf/test_perf_registration.py).
- Its own thread with its own event loop (uvloop when installed, a declared
  dependency; asyncio's otherwise), so a long callback on the run's loop (the
  tracker, the journal of other tables) delays no stamp. Arrivals reach the
  run's loop through a queue under a lock, which the run's side empties into
  `arrivals` whenever it reads them (the tracker: every poll cycle); waking
  the run's loop once per pass instead cost ~30 us of CPU per request.
- A listen queue as deep as the kernel allows (`listen_backlog`: somaxconn),
  apart from the accept batch (ACCEPT_BATCH: asyncio accepts `backlog`
  connections per pass); requests parsed PARSE_BATCH per pass.
- The journal is written once per batch (`journal`, one write), before any
  of its replies; if that fails they all get 500, and cloud-init retries.

Anyone who can reach the port can also try to starve it, and a starved
server records guests as `no_phone_home`: a false failed capacity test. So
every connection goes through a `ConnectionGuard` (`connection_guard`: caps
per source address and in all, closed when it stalls); one request per
connection, as cloud-init sends one POST per boot; and the same complaint is
logged once per interval with a count (`osbench.logthrottle`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import hmac
import logging
import os
import re
import secrets
import socket
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import Self

from osbench.clock import Clock
from osbench.errors import UserError
from osbench.kinds.boot import connection_guard
from osbench.kinds.boot.connection_guard import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    ConnectionGuard,
)
from osbench.kinds.boot.registration_http import (
    RequestProtocol,
    UnsupportedType,
    listen_backlog,
    new_event_loop,
    parse_fields,
    reply,
)
from osbench.logthrottle import Throttle

log = logging.getLogger(__name__)

#: Connections accepted per pass of asyncio's own loop (the `backlog` it is
#: given, see `_accept_connection`: 100 by default), so a burst is accepted a
#: few at a time between reads. uvloop (libuv) accepts every pending
#: connection each pass whatever this says.
ACCEPT_BATCH = 32
#: Requests parsed, journaled and answered per pass of the server's loop; the
#: rest wait for the next pass, after the loop has accepted and read (and so
#: stamped) whatever came meanwhile. Small, so reads come first in a burst;
#: each pass costs CPU of its own (a journal write, a loop iteration). 1000
#: at once, 12 rounds each, interleaved with nginx (2026-12-01): p99 skew
#: x1.13 / x1.43 / x1.76 of nginx's and CPU 67 / 60 / 57 us a request (nginx
#: 20) at 4 / 16 / 64 a pass. With 5000 at once, no SYN was dropped at 16 on
#: a quiet machine; while minicloud booted beside it (load 4), the kernel's
#: listen queue overflowed at every size tried, 4 to 64 (SYNs resent 1 s
#: later), and nginx's did not: a busy harness host loses stamps first.
PARSE_BATCH = 16
#: bind() errors that mean "no IPv6 here" (fall back to IPv4), as opposed to
#: a port in use or not permitted (a user error, not a reason to fall back).
_NO_IPV6_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})
#: How long start() waits for the server's thread to listen.
START_TIMEOUT_S = 30.0

#: The same complaint (a refused connection, a timeout, asyncio's accept
#: errors) is logged at most once per this many seconds, with a count.
LOG_INTERVAL_S = 10.0
#: Loggers that log once per event under attack: asyncio's accept loop
#: ("socket.accept() out of system resource"), and the guard's notes on
#: refused and timed-out connections.
_THROTTLED_LOGGERS = ("asyncio", __name__, connection_guard.__name__)

_INSTANCE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
#: RFC 3986 unreserved characters: a token must survive a URL path unescaped.
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,128}")
_WILDCARDS = frozenset({"::", "0.0.0.0", ""})

_OK = reply(200, "ok")
_RECORDING_FAILED = reply(500, "recording failed; retry")
_NOT_FOUND = reply(404, "not found")
_NO_ID = reply(404, "no instance id in path")
_WRONG_TOKEN = reply(403, "wrong token")
_USE_POST = reply(405, "use POST", "Allow: POST\r\n")
_BAD_ID = reply(400, "instance id must be 1-64 of A-Z a-z 0-9 -")


@dataclass(frozen=True)
class Arrival:
    """One phone-home POST, as received."""

    instance_id: str
    #: Posted `hostname` / `fqdn`; None if not posted, "N/A" kept verbatim
    #: (cloud-init sends N/A for a requested field it cannot fill).
    hostname: str | None
    fqdn: str | None
    #: Every posted field (cloud-init: pub_key_*, instance_id, hostname, fqdn).
    fields: Mapping[str, str]
    #: Peer address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is given as
    #: plain IPv4, as the guest knows itself.
    source_address: str
    #: "ipv4" or "ipv6" ("unknown" only if the connection had no peer address).
    address_family: str
    user_agent: str | None
    #: clock.now() (tz-aware UTC) and clock.monotonic() on receipt.
    wall_time: datetime
    monotonic: float
    #: False for a stray: the id had not been passed to `expect()` on arrival.
    known: bool
    #: True if this instance id had already phoned home in this run (retries).
    duplicate: bool


class RegistrationServer:
    """The per-run HTTP server that records phone-home arrivals.

    It serves from a thread of its own (its own event loop); `start`, `stop`,
    `expect`, `arrivals` and the other properties are for the caller's thread.
    The arrivals of each batch (PARSE_BATCH) are offered, in the server's
    thread and before any of them is answered, to `journal` all at once
    (optional; it must be safe to call from another thread). If it raises,
    the arrivals stay in `arrivals` with their original times, the error is
    logged and each of those guests gets 500, so cloud-init retries (up to
    `tries`); the retry comes as a duplicate and is offered again. Never
    503: cloud-init would retry that forever. The arrivals are queued for the
    caller before their replies go out, so `arrivals` holds every arrival
    whose reply a client has seen.

    Connections beyond `max_connections`, or beyond
    `max_connections_per_source` from one address, are closed at once
    (None: `max_connections_for` the open-file limit, which `start` first
    raises to its hard limit; and a SOURCE_SHARE of that per source). A
    connection is closed if nothing arrives within `idle_timeout_s`, or its
    request headers are not complete `header_timeout_s` after their first
    byte; a body not complete within `body_timeout_s` gets 408. Each is
    counted in `closed_early` (see `connection_guard`).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        journal: Callable[[Sequence[Arrival]], None] | None = None,
        host: str = "::",
        port: int = 0,
        token: str | None = None,
        max_body_bytes: int = 16384,
        advertised_url: str | None = None,
        max_connections: int | None = None,
        max_connections_per_source: int | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        header_timeout_s: float = HEADER_TIMEOUT_S,
        body_timeout_s: float = BODY_TIMEOUT_S,
        log_interval_s: float = LOG_INTERVAL_S,
    ) -> None:
        if token is not None and not _TOKEN.fullmatch(token):
            raise UserError(
                f"phone-home token {token!r} is not usable in a URL path",
                hint="use 8 to 128 of the characters A-Z a-z 0-9 . _ ~ -",
            )
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes must be >= 0, got {max_body_bytes!r}")
        self.guard = ConnectionGuard(
            max_connections=max_connections,
            max_connections_per_source=max_connections_per_source,
            idle_timeout_s=idle_timeout_s, header_timeout_s=header_timeout_s,
            body_timeout_s=body_timeout_s, max_body_bytes=max_body_bytes)
        self.clock = clock
        self.journal = journal
        self.host = host
        self.port = port
        self.token = token if token is not None else secrets.token_urlsafe(16)
        self.max_body_bytes = max_body_bytes
        self.advertised_url = advertised_url
        self._arrivals: list[Arrival] = []  # the caller's
        self._token_bytes = self.token.encode()
        self._lock = threading.Lock()  # _expected: written by the caller, read by the server
        self._expected: set[str] = set()
        self._arrived: set[str] = set()  # the caller's: ids in `arrivals`
        self._seen: set[str] = set()  # the server thread's: ids that posted (duplicates)
        self._queue: deque[RequestProtocol] = deque()  # with bytes to parse
        self._pending: list[tuple[Arrival, RequestProtocol]] = []  # this batch's
        self._outbox: list[Arrival] = []  # handed off, not yet taken (under _lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._done: concurrent.futures.Future[None] | None = None
        #: Set by stop(): the thread may not have made its loop yet (a start cut short).
        self._halt = threading.Event()
        self._throttle = Throttle(log_interval_s)

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; afterwards `port` is the bound port."""
        if self._thread is not None:
            raise RuntimeError("registration server already started")
        max_connections, max_per_source = self.guard.set_caps()
        self._halt.clear()
        backlog = listen_backlog()  # read once: somaxconn, a file under /proc
        sock = self._bind(backlog)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._done = concurrent.futures.Future()
        self._throttle.attach(*_THROTTLED_LOGGERS)
        self._thread = threading.Thread(target=self._serve_in_thread, args=(sock, backlog, started),
                                        name=f"registration-{sock.getsockname()[1]}",
                                        daemon=True)
        try:
            self._thread.start()
            async with asyncio.timeout(START_TIMEOUT_S):
                await asyncio.wrap_future(started)
        except BaseException:
            await self.stop()
            sock.close()
            raise
        self.host, self.port = sock.getsockname()[:2]
        log.info("registration server listening on %s port %d (at most %d connections, "
                 "%d per source address; listen queue %d)", self.host, self.port,
                 max_connections, max_per_source, backlog)

    async def stop(self) -> None:
        """Stop listening and close connections; safe to call twice. Arrivals
        already answered are in `arrivals` when this returns."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._halt.set()  # before reading _loop: _serve sets _loop, then reads _halt
        try:
            loop, stopping, done = self._loop, self._stopping, self._done
            if loop is not None and stopping is not None:
                with contextlib.suppress(RuntimeError):  # its loop already ended
                    loop.call_soon_threadsafe(stopping.set)
            if done is not None:
                await asyncio.wrap_future(done)
        finally:
            self._throttle.detach(*_THROTTLED_LOGGERS)
        if self.closed_early:
            log.warning("registration server on port %d closed %d connection(s) early: %s",
                        self.port, self.closed_early.total(),
                        ", ".join(f"{n} {reason}" for reason, n in
                                  sorted(self.closed_early.items())))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _serve_in_thread(self, sock: socket.socket, backlog: int,
                         started: concurrent.futures.Future[None]) -> None:
        assert self._done is not None
        loop = new_event_loop()
        try:
            loop.run_until_complete(self._serve(sock, backlog, started))
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            else:
                log.exception("registration server's loop failed")
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            sock.close()
            self._done.set_result(None)

    async def _serve(self, sock: socket.socket, backlog: int,
                     started: concurrent.futures.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        self._loop, self._stopping = loop, asyncio.Event()
        if self._halt.is_set():  # stop() came before there was a loop to tell
            return
        server = await loop.create_server(lambda: RequestProtocol(self), sock=sock,
                                          backlog=ACCEPT_BATCH)
        # The loop just listened with ACCEPT_BATCH as the queue too: deepen it.
        sock.listen(backlog)
        started.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            self.guard.abort_all()
            await asyncio.sleep(0)  # the aborted connections' connection_lost

    def _bind(self, backlog: int) -> socket.socket:
        if self.host == "::":
            try:
                # asyncio's create_server sets IPV6_V6ONLY; bind ourselves so
                # IPv4 guests reach the same socket as IPv6 ones.
                return socket.create_server(
                    ("::", self.port),
                    family=socket.AF_INET6,
                    backlog=backlog,
                    dualstack_ipv6=True,
                )
            except ValueError as exc:  # no dual-stack support
                self._fall_back_to_ipv4(exc)
            except OSError as exc:
                if exc.errno not in _NO_IPV6_ERRNOS:
                    raise self._bind_error(exc) from None
                self._fall_back_to_ipv4(exc)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            return socket.create_server((self.host, self.port), family=family, backlog=backlog)
        except OSError as exc:
            raise self._bind_error(exc) from None

    def _fall_back_to_ipv4(self, exc: Exception) -> None:
        log.warning(
            "IPv6 is not available here (%s): registration server falls back "
            "to 0.0.0.0, IPv4 only; IPv6-only guests cannot phone home",
            exc,
        )
        self.host = "0.0.0.0"

    def _bind_error(self, exc: OSError) -> UserError:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return UserError(
            f"registration server cannot listen on [{self.host}]:{self.port}: {reason}",
            hint="free that port, or set params.phone_home_port (0 picks a free one) and "
            "phone_home_bind",
        )

    # -- what the run asks -------------------------------------------------

    def url_template(self, advertise_host: str | None = None) -> str:
        """The `phone_home` URL for cloud-init, with `$INSTANCE_ID` left in.

        `advertised_url` (if set) is the base as given, e.g. behind NAT;
        otherwise `http://<bound host>:<port>`. A wildcard bind has no
        address a guest could use, so then `advertise_host` is required (see
        `run.default_advertise_address`); it is ignored for any other bind, the
        one address the server can be reached on.
        """
        path = f"/{self.token}/$INSTANCE_ID/"
        if self.advertised_url is not None:
            return self.advertised_url.rstrip("/") + path
        host = self.host
        if host in _WILDCARDS and advertise_host is not None:
            host = advertise_host
        if host in _WILDCARDS:
            raise ValueError(
                f"registration server is bound to wildcard {self.host!r}: pass "
                "advertise_host (run.default_advertise_address(api_url)) or advertised_url"
            )
        if self._thread is None or self.port == 0:
            raise RuntimeError("registration server not started: its port is unknown")
        if ":" in host and not host.startswith("["):
            host = "[" + host.replace("%", "%25") + "]"
        return f"http://{host}:{self.port}{path}"

    @property
    def arrivals(self) -> list[Arrival]:
        """Every arrival answered so far, in order (the caller's list: read it
        from the thread that started the server)."""
        self._take_arrivals()
        return self._arrivals

    def expect(self, instance_ids: Iterable[str]) -> None:
        """Register instance ids as this run's; call again as servers appear.

        An id that phoned home before it was expected (its listing came late)
        counts from now on in `phoned_home()`; its Arrival keeps known=False.
        """
        self._take_arrivals()
        with self._lock:
            new = set(instance_ids) - self._expected
            self._expected |= new
        early = new & self._arrived
        if early:
            log.info("%d instance(s) had phoned home before they were expected", len(early))

    def phoned_home(self) -> set[str]:
        """Expected instance ids that have phoned home at least once."""
        self._take_arrivals()
        return self._arrived & self._expected  # both written only in this thread

    @property
    def strays(self) -> list[Arrival]:
        """Arrivals whose instance id is (still) not expected, in arrival order."""
        return [a for a in self.arrivals if a.instance_id not in self._expected]

    # -- the connection guard's numbers ------------------------------------

    @property
    def closed_early(self) -> Counter[str]:
        """Connections refused or cut short, by reason: "per_source", "total"
        (refused over a cap), "idle", "header", "oversize" (closed), "body" (408)."""
        return self.guard.closed_early

    @property
    def open_connections(self) -> int:
        """Connections open now (admitted, not yet closed)."""
        return self.guard.open_connections

    @property
    def max_connections(self) -> int | None:
        return self.guard.max_connections

    @property
    def max_connections_per_source(self) -> int | None:
        return self.guard.max_connections_per_source

    # -- HTTP (the server's thread) -----------------------------------------

    def stamp(self) -> tuple[datetime, float]:
        """Wall time first, then monotonic: the run's clock, on the request's first bytes."""
        return self.clock.now(), self.clock.monotonic()

    def route(self, method: bytes, target: bytes) -> str | bytes:
        # Undecoded: token and id are plain ASCII, and a %2F must not split.
        parts = target.split(b"?", 1)[0].split(b"/")
        # "/tok/id/" -> ["", "tok", "id", ""]; "/tok/id" -> ["", "tok", "id"]
        if len(parts) == 4 and parts[3] == b"":
            parts.pop()
        if len(parts) not in (2, 3) or parts[0] != b"":
            return _NOT_FOUND
        if not hmac.compare_digest(parts[1], self._token_bytes):
            return _WRONG_TOKEN
        if method != b"POST":
            return _USE_POST
        instance_id = parts[2].decode("latin-1") if len(parts) == 3 else ""
        if not instance_id:
            return _NO_ID
        if not _INSTANCE_ID.fullmatch(instance_id):
            return _BAD_ID
        return instance_id

    def request(self, connection: RequestProtocol, instance_id: str, content_type: str,
                user_agent: str | None, body: bytes) -> None:
        try:
            fields = parse_fields(content_type, body)
        except UnsupportedType as exc:
            connection.reply(reply(415, str(exc)))
            return
        except ValueError as exc:
            connection.reply(reply(400, f"malformed body: {exc}"))
            return
        assert connection.stamp is not None
        wall_time, monotonic = connection.stamp
        with self._lock:
            known = instance_id in self._expected
        duplicate = instance_id in self._seen
        self._seen.add(instance_id)
        arrival = Arrival(
            instance_id=instance_id,
            hostname=fields.get("hostname"),
            fqdn=fields.get("fqdn"),
            fields=MappingProxyType(fields),
            source_address=connection.source,
            address_family=connection.family,
            user_agent=user_agent,
            wall_time=wall_time,
            monotonic=monotonic,
            known=known,
            duplicate=duplicate,
        )
        self._pending.append((arrival, connection))

    def queue(self, connection: RequestProtocol) -> None:
        if not self._queue:
            assert self._loop is not None
            self._loop.call_soon(self._parse_batch)
        self._queue.append(connection)

    def _parse_batch(self) -> None:
        """Parse up to PARSE_BATCH connections' new bytes, journal and answer the
        requests they complete; the rest wait for the next pass, after the loop
        has accepted and read (and stamped) what came meanwhile."""
        queue = self._queue
        try:
            for _ in range(min(len(queue), PARSE_BATCH)):
                connection = queue.popleft()
                try:
                    connection.process()
                except Exception:  # one bad request must not stop every later one
                    log.exception("registration server: dropped a connection")
                    connection.abort()
            self._flush()
        finally:  # the next pass is scheduled only here: never left unscheduled
            if queue:
                assert self._loop is not None
                self._loop.call_soon(self._parse_batch)

    def _flush(self) -> None:
        """This pass's arrivals: recorded, handed to the caller's loop, then answered."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        arrivals = [arrival for arrival, _ in batch]
        answer = _OK
        if self.journal is not None:
            try:
                self.journal(arrivals)
            except Exception:
                log.exception("journaling %d phone-home(s) failed (%s ...); guests will retry",
                              len(arrivals), arrivals[0].instance_id)
                answer = _RECORDING_FAILED
        self._hand_off(arrivals)
        for _arrival, connection in batch:
            connection.reply(answer)

    def _hand_off(self, arrivals: list[Arrival]) -> None:
        """Queue arrivals for the caller, who takes them when it next reads
        `arrivals`. No wake-up of the caller's loop: one per pass (a write to its
        self-pipe, and its thread taking the GIL to read it) was ~30 us of a
        request's CPU under wrk."""
        with self._lock:
            self._outbox.extend(arrivals)

    def _take_arrivals(self) -> None:
        """In the caller's thread: move what the server handed off to `arrivals`."""
        with self._lock:
            if not self._outbox:
                return
            arrivals, self._outbox = self._outbox, []
        self._arrivals.extend(arrivals)
        self._arrived.update(arrival.instance_id for arrival in arrivals)
