"""A burst of 1000 simultaneous phone-homes, against osbench's registration
server and against the kind of minimal stdlib `http.server` the field
experiment used, in the same run so the two can be compared.

Skew is the recorded arrival time minus the moment the client was about to
send: what a boot time measured by phone-home over-states. Client and server
share this process, so the client's `perf_counter` and the servers' arrival
stamps (RealClock.monotonic is `perf_counter`) are on one time base. Each
server runs on its own thread, the guests on the test's event loop; the skew
therefore includes the client's own work of opening 1000 connections from one
Python loop, the same for both servers: compare them, and read neither as a
guest's absolute delay.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from osbench.clock import RealClock
from osbench.kinds.boot.phonehome import LISTEN_BACKLOG, RegistrationServer
from tests.perf.conftest import Figures

BURST = 1000
#: A guard, not a target: a burst that needs this long has a real problem
#: (the stdlib server's 1 s, 3 s, 7 s SYN retransmits stay well inside it).
BURST_TIMEOUT_S = 120.0
#: cloud-init's phone_home, as the simulator's guests also send it.
USER_AGENT = "Cloud-Init/23.1.2"
FORM = "application/x-www-form-urlencoded"
#: Rounds per server: three bursts give the comparison more than one sample.
ROUNDS = 3

T = TypeVar("T")


@dataclass
class Burst:
    """Send and arrival times of one burst, keyed by instance id."""

    sent: dict[str, float]
    arrived: dict[str, float]
    recorded: int

    def skews_ms(self) -> list[float]:
        return [1000 * (self.arrived[i] - self.sent[i]) for i in self.sent]


async def burst(url_for: Callable[[str], str], ids: list[str]) -> dict[str, float]:
    """One-shot POSTs for all `ids` at once; returns each one's send time."""
    sent: dict[str, float] = {}
    go = asyncio.Event()
    # force_close: each guest sends one POST on its own connection, as
    # cloud-init does; limit=1000 lets every connection open at once.
    connector = aiohttp.TCPConnector(limit=BURST, force_close=True)
    timeout = aiohttp.ClientTimeout(total=BURST_TIMEOUT_S)

    async def guest(session: aiohttp.ClientSession, instance_id: str) -> None:
        body = urlencode({"instance_id": instance_id, "hostname": f"host-{instance_id[:8]}",
                          "fqdn": f"host-{instance_id[:8]}.novalocal"})
        await go.wait()
        sent[instance_id] = time.perf_counter()
        async with session.post(url_for(instance_id), data=body,
                                headers={"User-Agent": USER_AGENT,
                                         "Content-Type": FORM}) as response:
            await response.read()
            assert response.status == 200, (instance_id, response.status)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(guest(session, i)) for i in ids]
        await asyncio.sleep(0)  # every guest is waiting on `go`
        go.set()
        await asyncio.gather(*tasks)
    return sent


class _LoopThread:
    """An event loop of its own on a background thread, so that the server
    does not share the clients' loop (guests are other machines)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> _LoopThread:
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(BURST_TIMEOUT_S)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


async def burst_osbench(ids: list[str]) -> Burst:
    server = RegistrationServer(clock=RealClock(), on_arrival=lambda a: None,
                                host="127.0.0.1", port=0)
    with _LoopThread() as thread:
        thread.run(server.start())
        try:
            server.expect(ids)
            base = server.url_template()
            sent = await burst(lambda i: base.replace("$INSTANCE_ID", i), ids)
        finally:
            thread.run(server.stop())
    arrivals = server.arrivals
    assert not [a for a in arrivals if a.duplicate or not a.known]
    assert server.phoned_home() == set(ids)
    assert all(a.user_agent == USER_AGENT and a.fields["instance_id"] == a.instance_id
               for a in arrivals)
    return Burst(sent, {a.instance_id: a.monotonic for a in arrivals}, len(arrivals))


class _StdlibHandler(BaseHTTPRequestHandler):
    """The field experiment's kind of server: stamp, read the form, answer 200."""

    server: _StdlibServer

    def do_POST(self) -> None:
        arrived = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        fields = dict(parse_qsl(self.rfile.read(length).decode()))
        instance_id = self.path.strip("/").split("/")[-1]
        with self.server.lock:
            self.server.arrivals.append((instance_id, arrived, fields))
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:
        pass  # 1000 access-log lines on stderr would time the terminal


class _StdlibServer(ThreadingHTTPServer):
    """A thread per connection, as `python3 -m http.server` serves.

    Its listen backlog is raised from socketserver's 5 to osbench's, so the
    two servers are compared, not their backlogs: with 5, a burst of 1000 on
    this machine saw 124 connections reset after ~120 s (SYN/ACK retries
    exhausted while the accept queue was full), which would take this whole
    suite past its time budget. That is why osbench.kinds.boot.phonehome.LISTEN_BACKLOG
    is 2048.
    """

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StdlibHandler)
        self.lock = threading.Lock()
        self.arrivals: list[tuple[str, float, dict[str, str]]] = []


async def burst_stdlib(ids: list[str]) -> Burst:
    with _StdlibServer() as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            port = server.server_address[1]
            sent = await burst(lambda i: f"http://127.0.0.1:{port}/token/{i}/", ids)
        finally:
            server.shutdown()
            thread.join(30)
    arrived = {i: t for i, t, _ in server.arrivals}
    assert len(server.arrivals) == len(arrived) == len(ids)
    assert set(arrived) == set(ids)
    return Burst(sent, arrived, len(server.arrivals))


def _percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


SERVERS: dict[str, Callable[[list[str]], Awaitable[Burst]]] = {
    "osbench-aiohttp": burst_osbench,
    "stdlib-http.server": burst_stdlib,
}


@pytest.fixture
def ids_per_round() -> Iterator[Callable[[], list[str]]]:
    yield lambda: [str(uuid.uuid4()) for _ in range(BURST)]


@pytest.mark.parametrize("server", list(SERVERS))
def test_phone_home_burst_1000(server: str, benchmark: BenchmarkFixture,
                               ids_per_round: Callable[[], list[str]],
                               figures: Figures) -> None:
    bursts: list[Burst] = []

    def one_burst(ids: list[str]) -> None:
        bursts.append(asyncio.run(SERVERS[server](ids)))

    benchmark.pedantic(one_burst, setup=lambda: ((ids_per_round(),), {}),
                       rounds=ROUNDS, iterations=1)

    assert len(bursts) == ROUNDS
    assert all(b.recorded == BURST for b in bursts)
    skews = [s for b in bursts for s in b.skews_ms()]
    stats = {
        "skew_p50_ms": _percentile(skews, 50),
        "skew_p99_ms": _percentile(skews, 99),
        "skew_max_ms": max(skews),
    }
    benchmark.extra_info.update({"posts_per_burst": BURST, "bursts": ROUNDS,
                                 "recorded_per_burst": [b.recorded for b in bursts],
                                 "what": "send-to-record skew: mostly this test's own client "
                                         "(1000 connections opened from one Python loop), "
                                         "the same for both servers; compare, do not read "
                                         "as a guest's delay",
                                 **{k: round(v, 3) for k, v in stats.items()}})
    figures(f"burst 1000 {server}",
            "send-to-record skew, mostly the test's own one-loop client (compare servers, "
            f"not absolute): p50 {stats['skew_p50_ms']:.1f} ms, p99 {stats['skew_p99_ms']:.1f} ms, "
            f"max {stats['skew_max_ms']:.1f} ms over {ROUNDS}x{BURST} POSTs, "
            f"burst {1000 * benchmark.stats.stats.mean:.0f} ms mean; all recorded once")
