"""The registration server guests phone home to: an instance counts as started
only when its cloud-init `phone_home` POST arrives here.

cloud-init runs `phone_home` once per instance, at the very end of boot, and
POSTs a form (`application/x-www-form-urlencoded`, `User-Agent:
Cloud-Init/<ver>`) to a URL in which `$INSTANCE_ID` became the Nova server
UUID. It retries any status >= 400 up to `tries` times, 3 s apart, and recent
versions retry 503 without limit. So this server answers 200 at once, never
503, and takes its timestamps before it does anything else.

Routes: `POST /<token>/<instance_id>/` (trailing slash optional). The token
is a secret per run, so strays from other runs or scanners cannot count.

Anyone who can reach the port can also try to starve it, and a starved
server records guests as `no_phone_home`: a false failed capacity test. So
every connection goes through a `ConnectionGuard` (`connection_guard`: caps
per source address and in all, closed when it stalls); one request per
connection, as cloud-init sends one POST per boot; and the same complaint is
logged once per interval with a count (`osbench.logthrottle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from osbench.clock import Clock
from osbench.errors import UserError
from osbench.kinds.boot import connection_guard
from osbench.kinds.boot.connection_guard import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    ConnectionGuard,
    peer_address,
)
from osbench.logthrottle import Throttle

log = logging.getLogger(__name__)

#: Listen queue length. The headline experiment boots up to 1000 instances
#: at once, and their phone-homes arrive within seconds of each other; with
#: Linux's old default of 128, SYNs beyond the queue are dropped and the guest
#: retransmits after 1 s, 3 s, ..., which would add whole seconds to measured
#: boot times. 2048 leaves 2x headroom over 1000 (the kernel caps it at
#: net.core.somaxconn, 4096 on current kernels).
LISTEN_BACKLOG = 2048
#: bind() errors that mean "no IPv6 here" (fall back to IPv4), as opposed to
#: a port in use or not permitted (a user error, not a reason to fall back).
_NO_IPV6_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})

#: The same complaint (a refused connection, a timeout, asyncio's accept
#: errors) is logged at most once per this many seconds, with a count.
LOG_INTERVAL_S = 10.0
#: Loggers that log once per event under attack: asyncio's accept loop
#: ("socket.accept() out of system resource"), aiohttp's per-request errors,
#: and the guard's notes on refused and timed-out connections.
_THROTTLED_LOGGERS = ("asyncio", "aiohttp.server", __name__, connection_guard.__name__)

#: Read size when draining a body; bodies are at most a few kilobytes.
_READ_CHUNK = 65536
#: Nesting of a JSON body, at most. cloud-init posts a flat form; json.loads
#: raises RecursionError near 1,000 levels, which is not a ValueError.
_MAX_JSON_DEPTH = 32
#: A JSON string, escapes included: skipped when measuring nesting.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)

#: cloud-init sends at most six fields; anything far beyond that is not a guest.
_MAX_FIELDS = 64

_INSTANCE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
#: RFC 3986 unreserved characters: a token must survive a URL path unescaped.
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,128}")
#: aiohttp reports a missing Content-Type as application/octet-stream; such a
#: body is parsed as a form, which is what every real client sends here.
_FORM_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "text/plain", "application/octet-stream"}
)
_WILDCARDS = frozenset({"::", "0.0.0.0", ""})


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

    `on_arrival` is called synchronously for every arrival (known, stray and
    duplicate alike) before the reply is sent, so a journal can write it at
    once. If it raises, the arrival stays in `arrivals` with its original
    times, the error is logged and the guest gets 500, so cloud-init retries
    (up to `tries`); the retry comes as a duplicate and is offered to
    `on_arrival` again. Never 503: cloud-init would retry that forever.

    Connections beyond `max_connections`, or beyond
    `max_connections_per_source` from one address, are closed at once
    (None: `max_connections_for` the open-file limit, which `start` first
    raises to its hard limit; and a SOURCE_SHARE of that per source). A connection is closed if
    nothing arrives within `idle_timeout_s`, or its request headers are not
    complete `header_timeout_s` after their first byte; a body not complete
    within `body_timeout_s` gets 408. Each is counted in `closed_early`
    (see `connection_guard`).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        on_arrival: Callable[[Arrival], None],
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
        self.on_arrival = on_arrival
        self.host = host
        self.port = port
        self.token = token if token is not None else secrets.token_urlsafe(16)
        self.max_body_bytes = max_body_bytes
        self.advertised_url = advertised_url
        self.arrivals: list[Arrival] = []
        self._token_bytes = self.token.encode()
        self._expected: set[str] = set()
        self._arrived: set[str] = set()
        self._runner: web.ServerRunner | None = None
        self._listener: asyncio.Server | None = None
        self._throttle = Throttle(log_interval_s)

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; afterwards `port` is the bound port."""
        if self._runner is not None:
            raise RuntimeError("registration server already started")
        max_connections, max_per_source = self.guard.set_caps()
        sock = self._bind()
        try:
            # lingering_time=0: after a 408 or 413, close rather than read on
            # for up to 10 s (aiohttp's default) what the client still sends.
            runner = web.ServerRunner(web.Server(self._handle, access_log=None,
                                                 lingering_time=0))
            await runner.setup()
            self._runner = runner  # before the first connection can arrive
            try:
                # Not a SockSite: every connection goes through the guard,
                # which admits it under the caps and closes it when it stalls.
                self._listener = await asyncio.get_running_loop().create_server(
                    lambda: self.guard.protocol(self._request_handler), sock=sock,
                    backlog=LISTEN_BACKLOG)
            except BaseException:
                self._runner = None
                await runner.cleanup()
                raise
        except BaseException:
            sock.close()
            raise
        self._throttle.attach(*_THROTTLED_LOGGERS)
        self.host, self.port = sock.getsockname()[:2]
        log.info("registration server listening on %s port %d (at most %d connections, "
                 "%d per source address)", self.host, self.port, max_connections,
                 max_per_source)

    async def stop(self) -> None:
        """Stop listening and close connections; safe to call twice."""
        runner, self._runner = self._runner, None
        listener, self._listener = self._listener, None
        if runner is None:
            return
        try:
            if listener is not None:
                listener.close()
            await runner.cleanup()  # closes idle connections, lets requests finish
            self.guard.abort_all()
            if listener is not None:
                await listener.wait_closed()
        finally:
            self._throttle.detach(*_THROTTLED_LOGGERS)
        if self.closed_early:
            log.warning("registration server on port %d closed %d connection(s) early: %s",
                        self.port, self.closed_early.total(),
                        ", ".join(f"{n} {reason}" for reason, n in
                                  sorted(self.closed_early.items())))

    def _request_handler(self) -> web.RequestHandler:
        """aiohttp's handler for one admitted connection."""
        runner = self._runner
        assert runner is not None and runner.server is not None
        return runner.server()

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

    def _bind(self) -> socket.socket:
        if self.host == "::":
            try:
                # asyncio's create_server sets IPV6_V6ONLY; bind ourselves so
                # IPv4 guests reach the same socket as IPv6 ones.
                return socket.create_server(
                    ("::", self.port),
                    family=socket.AF_INET6,
                    backlog=LISTEN_BACKLOG,
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
            return socket.create_server((self.host, self.port), family=family,
                                        backlog=LISTEN_BACKLOG)
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
        `default_advertise_address`); it is ignored for any other bind, the
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
                "advertise_host (default_advertise_address(api_url)) or advertised_url"
            )
        if self._runner is None or self.port == 0:
            raise RuntimeError("registration server not started: its port is unknown")
        if ":" in host and not host.startswith("["):
            host = "[" + host.replace("%", "%25") + "]"
        return f"http://{host}:{self.port}{path}"

    def expect(self, instance_ids: Iterable[str]) -> None:
        """Register instance ids as this run's; call again as servers appear.

        An id that phoned home before it was expected (its listing came late)
        counts from now on in `phoned_home()`; its Arrival keeps known=False.
        """
        new = set(instance_ids) - self._expected
        self._expected |= new
        early = new & self._arrived
        if early:
            log.info("%d instance(s) had phoned home before they were expected", len(early))

    def phoned_home(self) -> set[str]:
        """Expected instance ids that have phoned home at least once."""
        return self._arrived & self._expected

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

    @property
    def idle_timeout_s(self) -> float:
        return self.guard.idle_timeout_s

    @property
    def header_timeout_s(self) -> float:
        return self.guard.header_timeout_s

    @property
    def body_timeout_s(self) -> float:
        return self.guard.body_timeout_s

    # -- HTTP --------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        wall_time = self.clock.now()
        monotonic = self.clock.monotonic()
        self.guard.request_started(request.transport)

        # Undecoded: token and id are plain ASCII, and a %2F must not split.
        parts = request.rel_url.raw_path.split("/")
        # "/tok/id/" -> ["", "tok", "id", ""]; "/tok/id" -> ["", "tok", "id"]
        if len(parts) == 4 and parts[3] == "":
            parts.pop()
        if len(parts) not in (2, 3) or parts[0] != "":
            return _reply(404, "not found")
        if not hmac.compare_digest(parts[1].encode(), self._token_bytes):
            return _reply(403, "wrong token")
        if request.method != "POST":
            return _reply(405, "use POST", headers={"Allow": "POST"})
        instance_id = parts[2] if len(parts) == 3 else ""
        if not instance_id:
            return _reply(404, "no instance id in path")
        if not _INSTANCE_ID.fullmatch(instance_id):
            return _reply(400, "instance id must be 1-64 of A-Z a-z 0-9 -")

        too_large = (request.content_length or 0) > self.max_body_bytes
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = None if too_large else await _read_limited(request, self.max_body_bytes)
        except TimeoutError:
            self.guard.closed("body", peer_address(request.remote)[0])
            return _reply(408, f"body not complete in {self.body_timeout_s:g} s")
        if body is None:
            return _reply(413, f"body over {self.max_body_bytes} bytes")
        try:
            fields = _parse_fields(request.content_type, body)
        except _UnsupportedType as exc:
            return _reply(415, str(exc))
        except ValueError as exc:
            return _reply(400, f"malformed body: {exc}")

        source_address, address_family = peer_address(request.remote)
        arrival = Arrival(
            instance_id=instance_id,
            hostname=fields.get("hostname"),
            fqdn=fields.get("fqdn"),
            fields=MappingProxyType(fields),
            source_address=source_address,
            address_family=address_family,
            user_agent=request.headers.get("User-Agent"),
            wall_time=wall_time,
            monotonic=monotonic,
            known=instance_id in self._expected,
            duplicate=instance_id in self._arrived,
        )
        self.arrivals.append(arrival)
        self._arrived.add(instance_id)
        try:
            self.on_arrival(arrival)
        except Exception:
            log.exception("recording the phone-home of %s failed; guest will retry", instance_id)
            return _reply(500, "recording failed; retry")
        return _reply(200, "ok")


class _UnsupportedType(ValueError):
    pass


def _reply(status: int, text: str, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.Response(status=status, text=text + "\n", headers=headers)
    # One request per connection (cloud-init sends one POST per boot): a
    # kept-alive connection would only hold a descriptor.
    response.force_close()
    return response


async def _read_limited(request: web.BaseRequest, limit: int) -> bytes | None:
    """The body, or None once it grows beyond `limit` (chunked bodies too)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_fields(content_type: str, body: bytes) -> dict[str, str]:
    """Posted fields from a cloud-init form or a JSON object.

    A non-string JSON value is kept as its JSON text (`true`, `3`, `null`).
    """
    if content_type == "application/json" or content_type.endswith("+json"):
        depth = _json_depth(body)
        if depth > _MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested {depth} deep, more than {_MAX_JSON_DEPTH}")
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"JSON body must be an object, got {type(data).__name__}")
        if len(data) > _MAX_FIELDS:
            raise ValueError(f"more than {_MAX_FIELDS} fields")
        return {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in data.items()
        }
    if content_type not in _FORM_TYPES:
        raise _UnsupportedType(
            f"unsupported Content-Type {content_type!r}: "
            "send application/x-www-form-urlencoded or application/json"
        )
    pairs = parse_qsl(
        body.decode("utf-8"),
        keep_blank_values=True,
        strict_parsing=True,
        encoding="utf-8",
        errors="strict",
        max_num_fields=_MAX_FIELDS,
    )
    return dict(pairs)


def _json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped)."""
    depth = deepest = 0
    for byte in _JSON_STRING.sub(b'""', body):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


def default_advertise_address(api_url: str) -> str:
    """The local address of the interface that routes to the cloud's API host.

    That is the address guests most likely reach us on. Found by connecting a
    UDP socket (which sends no packet) and reading its local address;
    "127.0.0.1" for a loopback target such as the simulated cloud. Resolves
    the host name, so it may block on DNS: call it once, or via a thread.
    """
    split = urlsplit(api_url)
    host = split.hostname
    if not host:
        raise UserError(f"cannot find the host in API URL {api_url!r}")
    try:
        port = split.port or (443 if split.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot resolve API host {host!r} to find the phone-home address: {exc}",
            hint="set the URL guests should use with --phone-home-url",
        ) from exc
    errors: list[str] = []
    for family, kind, proto, _canon, address in infos:
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
                return "127.0.0.1"
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.connect(address)
                return str(sock.getsockname()[0])
        except OSError as exc:
            errors.append(f"{address[0]}: {exc}")
    raise UserError(
        f"no local interface routes to API host {host!r} ({'; '.join(errors)})",
        hint="set the URL guests should use with --phone-home-url",
    )
