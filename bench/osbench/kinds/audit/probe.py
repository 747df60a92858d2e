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

Bounded five ways: the caller's count (`max_probes`), a start rate (probe i
starts no earlier than i / rate_per_s after the first), at most `concurrency`
in flight, each connect by `connect_timeout_s`, and the whole by `budget_s`.

This file is also the vantage's helper process: it uses only the standard
library, so where the probes start somewhere else (a namespace, a host of the
inventory) osbench runs its source there (`python -c SOURCE MODE PAYLOAD`, the
payload zlib-compressed JSON in base64, to stay far under Linux's 128 KiB per
argument) and reads one JSON line per answer. Durations are `time.monotonic`
on the vantage itself, so no SSH round trip enters a probe's time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import socket
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Protocol = Literal["tcp", "udp"]
Want = Literal["open", "closed"]

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


async def run(probes: Sequence[Probe], bounds: Bounds, *,
              on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Every probe's outcome, in the order given."""
    clock = time  # the vantage's own clock: this may run as a helper elsewhere
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


# -- the helper process ---------------------------------------------------------

def encode(payload: Any) -> str:
    """JSON -> zlib -> base64: one short argument."""
    return base64.b64encode(zlib.compress(json.dumps(payload).encode())).decode("ascii")


def decode(text: str) -> Any:
    return json.loads(zlib.decompress(base64.b64decode(text)))


def outcome_from(doc: dict[str, Any]) -> Outcome:
    """An Outcome from one JSON line of the helper."""
    return Outcome(Probe(**doc["probe"]), doc["seen"], float(doc["latency_ms"]),
                   str(doc.get("detail", "")))


def main(argv: Sequence[str]) -> int:
    """`routes PAYLOAD` (a list of addresses): one {"address", "source"} line each;
    `probe PAYLOAD` ({"probes": [...], "bounds": {...}}): one outcome line each."""
    mode, payload = argv[0], decode(argv[1])
    if mode == "routes":
        for address in payload:
            print(json.dumps({"address": address, "source": route_source(address)}),
                  flush=True)
        return 0
    probes = [Probe(**p) for p in payload["probes"]]

    def emit(outcome: Outcome) -> None:
        print(json.dumps({"probe": asdict(outcome.probe), "seen": outcome.seen,
                          "latency_ms": outcome.latency_ms, "detail": outcome.detail}),
              flush=True)

    for outcome in asyncio.run(run(probes, Bounds(**payload["bounds"]), on_outcome=emit)):
        if outcome.seen == "not_run":
            emit(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
