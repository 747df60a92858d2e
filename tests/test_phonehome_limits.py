"""The registration server's defences, one at a time, over real loopback
connections: caps per source and in all, idle / header / body timeouts,
bounded JSON nesting, throttled logs, the open-file limit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from osbench.clock import RealClock
from osbench.fdlimit import open_file_limit, raise_open_file_limit
from osbench.kinds.boot.connection_guard import max_connections_for
from osbench.kinds.boot.phonehome import Arrival, RegistrationServer
from osbench.logthrottle import Throttle

#: How long a test waits for something that should happen at once, or after
#: a sub-second timeout: a bound against hanging, not a speed check.
PATIENCE_S = 10.0


@contextlib.asynccontextmanager
async def connection(port: int, source: str = "127.0.0.1") -> AsyncIterator[
        tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes (FIN or RST); False if it answers instead."""
    try:
        data = await asyncio.wait_for(reader.read(), PATIENCE_S)
    except ConnectionResetError:
        return True
    return data == b""


async def post(port: int, token: str, instance_id: str, source: str = "127.0.0.1",
               body: bytes = b"hostname=h",
               content_type: str = "application/x-www-form-urlencoded") -> tuple[int, bytes]:
    """One POST on its own connection: (status, whole response)."""
    async with connection(port, source) as (reader, writer):
        writer.write((f"POST /{token}/{instance_id}/ HTTP/1.1\r\nHost: x\r\n"
                      f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
                     .encode() + body)
        response = await asyncio.wait_for(reader.read(), PATIENCE_S)
    return int(response.split()[1]), response


def serving(seen: list[Arrival], **options: Any) -> RegistrationServer:
    """A server on 127.0.0.1 that appends to `seen`; `options` as the constructor's."""
    return RegistrationServer(clock=RealClock(), journal=seen.extend, host="127.0.0.1",
                              **options)


@pytest.fixture
def seen() -> list[Arrival]:
    return []


@pytest.fixture
async def server(seen: list[Arrival]) -> AsyncIterator[RegistrationServer]:
    async with serving(seen) as srv:
        yield srv


# -- caps ------------------------------------------------------------------

async def test_connections_over_the_cap_per_source_are_closed_at_once(
        seen: list[Arrival]) -> None:
    async with serving(seen, max_connections=5, max_connections_per_source=3,
                       idle_timeout_s=60) as srv, contextlib.AsyncExitStack() as held:
        for _ in range(3):
            await held.enter_async_context(connection(srv.port))
        async with connection(srv.port) as (reader, _writer):
            assert await closed_by_server(reader)
        assert srv.closed_early == {"per_source": 1}
        # Other addresses still get in, up to the cap in all ...
        assert (await post(srv.port, srv.token, "vm-2", "127.0.0.2"))[0] == 200
        await held.enter_async_context(connection(srv.port, "127.0.0.3"))
        await held.enter_async_context(connection(srv.port, "127.0.0.3"))
        async with connection(srv.port, "127.0.0.4") as (reader, _writer):
            assert await closed_by_server(reader)
        assert srv.closed_early == {"per_source": 1, "total": 1}
        await held.aclose()
        # The server sees the closes a little later; no event to wait on.
        async with asyncio.timeout(PATIENCE_S):
            while srv.open_connections:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        # ... and a closed connection frees its place.
        assert (await post(srv.port, srv.token, "vm-1", "127.0.0.1"))[0] == 200
    assert [a.instance_id for a in seen] == ["vm-2", "vm-1"]


def test_default_caps_follow_the_open_file_limit() -> None:
    assert max_connections_for(1024) == 768  # FD_RESERVE kept for the rest
    assert max_connections_for(256) == 128  # at least half the limit
    assert max_connections_for(1_048_576) == 16384  # MAX_CONNECTIONS


async def test_default_caps_are_set_at_start(server: RegistrationServer) -> None:
    assert server.max_connections == max_connections_for(open_file_limit())
    assert server.max_connections_per_source == server.max_connections // 4


# -- timeouts --------------------------------------------------------------

async def test_silent_connection_is_closed_after_idle_timeout(seen: list[Arrival]) -> None:
    async with serving(seen, idle_timeout_s=0.2) as srv:
        async with connection(srv.port) as (reader, _writer):
            assert await closed_by_server(reader)
        assert srv.closed_early == {"idle": 1}


async def test_headers_sent_a_byte_at_a_time_are_cut_off(seen: list[Arrival]) -> None:
    async with serving(seen, idle_timeout_s=0.2, header_timeout_s=0.6) as srv:
        head = f"POST /{srv.token}/vm-1/ HTTP/1.1\r\nHost: x\r\nX-Pad: ".encode() + b"a" * 100
        async with connection(srv.port) as (reader, writer):
            closed = False
            for index in range(len(head)):  # never idle for 0.2 s; 10 s in all
                try:
                    writer.write(head[index:index + 1])
                    await writer.drain()
                    closed = await asyncio.wait_for(reader.read(), 0.1) == b""
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    closed = True
                break
            assert closed
        assert srv.closed_early == {"header": 1}
    assert seen == []


async def test_body_that_stops_coming_gets_408(seen: list[Arrival]) -> None:
    async with serving(seen, body_timeout_s=0.3) as srv:
        async with connection(srv.port) as (reader, writer):
            writer.write(f"POST /{srv.token}/vm-1/ HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 100\r\n\r\nhostname=".encode())
            response = await asyncio.wait_for(reader.read(), PATIENCE_S)
        assert response.startswith(b"HTTP/1.1 408 ")
        assert srv.closed_early == {"body": 1}
    assert seen == []


async def test_oversized_head_is_cut_off(seen: list[Arrival]) -> None:
    async with serving(seen, max_body_bytes=100) as srv:
        async with connection(srv.port) as (reader, writer):
            writer.write(f"POST /{srv.token}/vm-1/ HTTP/1.1\r\n".encode())
            for index in range(100):  # 20 KB of headers, each well within aiohttp's limits
                writer.write(f"X-Pad-{index}: {'a' * 200}\r\n".encode())
            with contextlib.suppress(ConnectionResetError):
                await writer.drain()
            assert await closed_by_server(reader)
        assert srv.closed_early == {"oversize": 1}


async def test_every_reply_closes_its_connection(server: RegistrationServer) -> None:
    status, response = await post(server.port, server.token, "vm-1")
    assert status == 200
    assert b"\r\nConnection: close\r\n" in response


# -- hostile bodies --------------------------------------------------------

@pytest.mark.parametrize("depth", [1000, 8000])
async def test_deeply_nested_json_is_400_without_a_traceback(
        server: RegistrationServer, seen: list[Arrival], caplog: pytest.LogCaptureFixture,
        depth: int) -> None:
    body = b'{"hostname": ' + b"[" * depth + b"]" * depth + b"}"
    with caplog.at_level(logging.DEBUG):
        status, response = await post(server.port, server.token, "vm-1", body=body,
                                      content_type="application/json")
    assert status == 400
    assert f"nested {depth + 1} deep".encode() in response
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    assert seen == []


async def test_moderately_nested_json_is_kept_as_json_text(
        server: RegistrationServer, seen: list[Arrival]) -> None:
    value = b"[" * 31 + b'"}]{\\""' + b"]" * 31  # brackets inside a string do not count
    status, _ = await post(server.port, server.token, "vm-1", body=b'{"note": ' + value + b"}",
                           content_type="application/json")
    assert status == 200
    [arrival] = seen
    assert arrival.fields["note"].startswith("[[[")


# -- logs ------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttled() -> Iterator[tuple[Throttle, FakeClock, logging.Logger]]:
    clock = FakeClock()
    throttle = Throttle(10.0, clock)
    logger = logging.getLogger("tests.phonehome.throttled")
    throttle.attach(logger.name)
    try:
        yield throttle, clock, logger
    finally:
        throttle.detach(logger.name)


def test_same_message_passes_once_per_interval_with_a_count(
        throttled: tuple[Throttle, FakeClock, logging.Logger],
        caplog: pytest.LogCaptureFixture) -> None:
    _throttle, clock, logger = throttled
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for second in range(25):
            clock.now = float(second)
            for _ in range(100):
                logger.warning("refused a connection from %s", f"10.0.0.{second}")
            logger.warning("another complaint")
    assert caplog.messages == [
        "refused a connection from 10.0.0.0",
        "another complaint",
        "refused a connection from 10.0.0.10 [999 more like this in the last 10 s]",
        "another complaint [9 more like this in the last 10 s]",
        "refused a connection from 10.0.0.20 [999 more like this in the last 10 s]",
        "another complaint [9 more like this in the last 10 s]",
    ]


async def test_asyncio_accept_errors_are_throttled_while_serving(
        server: RegistrationServer, caplog: pytest.LogCaptureFixture) -> None:
    # What asyncio's accept loop reports when the process is out of files;
    # the socket's repr on the second line differs from report to report.
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        for index in range(1000):
            loop.call_exception_handler({
                "message": "socket.accept() out of system resource",
                "exception": OSError(24, "Too many open files"),
                "socket": f"<socket fd={index}>"})
    assert len([r for r in caplog.records if r.name == "asyncio"]) == 1


# -- the open-file limit ---------------------------------------------------

def test_raise_open_file_limit_raises_the_soft_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    try:
        assert raise_open_file_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        assert raise_open_file_limit() == hard  # again: nothing to do
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- floods (issue 19) -----------------------------------------------------

async def test_a_100_mb_chunked_body_is_cut_off_at_the_limit(seen: list[Arrival]) -> None:
    async with serving(seen) as srv:
        sent = 0
        chunk = b"%x\r\n%s\r\n" % (8192, b"x" * 8192)  # the limit (16 KB) in the 3rd
        async with connection(srv.port) as (reader, writer):
            writer.write(f"POST /{srv.token}/vm-1/ HTTP/1.1\r\nHost: x\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n".encode())
            with contextlib.suppress(ConnectionError):
                while sent < 100 * 2**20:  # stops at the server's answer, or its reset
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
                    if reader.at_eof() or reader._buffer:  # the answer came
                        break
            with contextlib.suppress(ConnectionError):
                response = await asyncio.wait_for(reader.read(), PATIENCE_S)
                assert response == b"" or response.startswith(b"HTTP/1.1 413 "), response[:80]
        # Refused at the limit, not read to its end (1-4 MB sent here: kernel buffers).
        assert sent < 16 * 2**20, sent  # LINGER_BYTES read, the rest in socket buffers
        assert (await post(srv.port, srv.token, "vm-2"))[0] == 200
    assert [a.instance_id for a in seen] == ["vm-2"]


async def test_5000_concurrent_bogus_requests_leave_phone_homes_recorded(
        seen: list[Arrival]) -> None:
    if raise_open_file_limit() < 2 * 5000 + 512:
        pytest.skip("needs an open-file limit of 10,512 for both ends of 5000 connections")
    bogus = [b"POST /wrong-token-123/vm-1/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
             b"GARBAGE\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
             b"POST /{token}/vm-9/ HTTP/1.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 5\r\n\r\n[1,2]"]

    async def attack(index: int) -> int:
        try:
            async with connection(server.port) as (reader, writer):
                writer.write(bogus[index % len(bogus)].replace(b"{token}",
                                                                server.token.encode()))
                response = await asyncio.wait_for(reader.read(), PATIENCE_S * 3)
            return int(response.split()[1]) if response else 0
        except (ConnectionError, TimeoutError):
            return 0

    async with serving(seen) as server:
        ids = [f"vm-{i}" for i in range(50)]
        server.expect(ids)
        attacks = [asyncio.create_task(attack(i)) for i in range(5000)]
        guests = [asyncio.create_task(post(server.port, server.token, instance_id,
                                           f"127.0.0.{2 + i}"))
                  for i, instance_id in enumerate(ids)]
        statuses = [status for status, _ in await asyncio.gather(*guests)]
        answered = await asyncio.gather(*attacks)
        assert statuses == [200] * len(ids)
        assert server.phoned_home() == set(ids)
        # The attack was answered (or refused over the per-source cap), never recorded.
        assert set(answered) <= {0, 400, 403}, set(answered)
        assert answered.count(403) > 0 and answered.count(400) > 0
        async with asyncio.timeout(PATIENCE_S):
            while server.open_connections:  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.01)
        assert (await post(server.port, server.token, "vm-0"))[0] == 200
    assert sorted(a.instance_id for a in seen if not a.duplicate) == sorted(ids)
