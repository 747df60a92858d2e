"""The probe engine: does a port answer from here? TCP connect, and a UDP datagram.

What a probe sees, and what it means behind a Neutron firewall (which drops,
never rejects):
- `open`: the TCP handshake completed (or a UDP reply came): a service answers.
- `refused`: a TCP RST or an ICMP port-unreachable: the packet reached the
  instance, nothing listens. Through an enforcing firewall a closed port never
  answers, so for a port the rules close this is an exposure too.
- `filtered`: nothing came back before the timeout (what a drop looks like).
- `no_route`: this machine has no route to the address (the vantage cannot
  reach it; says nothing about the instance).
- `not_run`: the probe phase's time budget ran out first.

Bounded three ways: the caller's count (`max_probes`), a start rate (probe i
starts no earlier than i / rate_per_s after the first), at most `concurrency`
in flight, each connect by `connect_timeout_s`, and the whole by `budget_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from osbench.clock import Clock, RealClock
from osbench.kinds.audit.rules import Protocol, Want

Seen = Literal["open", "refused", "filtered", "no_route", "error", "not_run"]
#: What shows the packet got through to the instance.
REACHED = ("open", "refused")
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}


@dataclass(frozen=True)
class Probe:
    """One port of one address to try, and what the rules expect of it."""

    instance: str
    address: str
    protocol: Protocol
    port: int
    expected: Want


@dataclass(frozen=True)
class Outcome:
    probe: Probe
    seen: Seen
    latency_ms: float
    detail: str = ""

    @property
    def finding(self) -> str:
        """exposed, unreachable_open, ok, or inconclusive."""
        if self.seen in ("no_route", "error", "not_run"):
            return "inconclusive"
        if self.probe.expected == "closed":
            return "exposed" if self.seen in REACHED else "ok"
        if self.seen in REACHED:
            return "ok"
        # A UDP service may ignore a datagram: silence is not proof of a drop.
        return "inconclusive" if self.probe.protocol == "udp" else "unreachable_open"


@dataclass(frozen=True)
class Bounds:
    rate_per_s: float = 200.0
    concurrency: int = 32
    connect_timeout_s: float = 1.0
    budget_s: float = 300.0


def route_source(address: str) -> str | None:
    """The source address this machine would use towards `address`, or None when it
    has no route (a UDP connect sends nothing; it only looks the route up)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, 9))
        except OSError as exc:
            if exc.errno in _NO_ROUTE:
                return None
            raise
        return str(sock.getsockname()[0])


async def _tcp(probe: Probe, timeout_s: float) -> tuple[Seen, str]:
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(probe.address, probe.port)
    except TimeoutError:
        return "filtered", ""
    except ConnectionRefusedError:
        return "refused", ""
    except OSError as exc:
        if exc.errno in _NO_ROUTE:
            return "no_route", exc.strerror or ""
        return "error", f"{type(exc).__name__}: {exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return "open", ""


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.answer.done():
            self.answer.set_result("open")

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            refused = isinstance(exc, ConnectionRefusedError)
            no_route = isinstance(exc, OSError) and exc.errno in _NO_ROUTE
            self.answer.set_result("refused" if refused else "no_route" if no_route
                                   else "error")


async def _udp(probe: Probe, timeout_s: float) -> tuple[Seen, str]:
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _Datagram, remote_addr=(probe.address, probe.port))
    except OSError as exc:
        return ("no_route" if exc.errno in _NO_ROUTE else "error"), str(exc)
    try:
        transport.sendto(b"\0")
        try:
            async with asyncio.timeout(timeout_s):
                return await protocol.answer, ""
        except TimeoutError:
            return "filtered", "no answer (UDP: open or filtered)"
    finally:
        transport.close()


async def run(probes: Sequence[Probe], bounds: Bounds, *, clock: Clock | None = None,
              on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Every probe's outcome, in the order given."""
    clock = clock or RealClock()
    gate = asyncio.Semaphore(bounds.concurrency)
    start = clock.monotonic()
    results: list[Outcome | None] = [None] * len(probes)

    async def one(i: int, probe: Probe) -> None:
        delay = start + i / bounds.rate_per_s - clock.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with gate:
            sent = clock.monotonic()
            check = _tcp if probe.protocol == "tcp" else _udp
            seen, detail = await check(probe, bounds.connect_timeout_s)
            outcome = Outcome(probe, seen, (clock.monotonic() - sent) * 1000.0, detail)
        results[i] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    tasks = [asyncio.ensure_future(one(i, p)) for i, p in enumerate(probes)]
    try:
        async with asyncio.timeout(bounds.budget_s):
            await asyncio.gather(*tasks)
    except TimeoutError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [r if r is not None else Outcome(p, "not_run", 0.0, "the probe budget ran out")
            for r, p in zip(results, probes, strict=True)]
