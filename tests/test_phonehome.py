"""The registration server, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest

from osbench.errors import UserError
from osbench.fdlimit import raise_open_file_limit
from osbench.kinds.boot.connection_guard import FD_RESERVE
from osbench.kinds.boot.phonehome import Arrival, RegistrationServer
from osbench.kinds.boot.registration_http import parse_form
from osbench.kinds.boot.run import default_advertise_address

RSA_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQC+/x9= root@test-1\n"
ED25519_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOW9ls+/= root@test-1\n"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class StepClock:
    """A clock that advances one second per reading, so stamps are predictable."""

    modelled = False

    def __init__(self) -> None:
        self.readings = 0

    def monotonic(self) -> float:
        self.readings += 1
        return 1000.0 + self.readings

    def now(self) -> datetime:
        return START + timedelta(seconds=self.readings)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def seen() -> list[Arrival]:
    return []


@pytest.fixture
async def server(seen: list[Arrival]) -> AsyncIterator[RegistrationServer]:
    async with RegistrationServer(clock=StepClock(), journal=seen.extend) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        yield client


def url(srv: RegistrationServer, instance_id: str, host: str = "127.0.0.1") -> str:
    return srv.url_template(host).replace("$INSTANCE_ID", instance_id)


async def raw_request(host: str, port: int, head: str, body: bytes = b"") -> int:
    """Send one HTTP request byte for byte; return the response status."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.encode("ascii") + b"\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=30)
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


async def test_cloud_init_form_post_is_recorded(
    server: RegistrationServer, seen: list[Arrival]
) -> None:
    # What cloud-init's phone_home (requests, `post: all`) puts on the wire.
    instance_id = str(uuid.uuid4())
    server.expect([instance_id])
    fields = {
        "pub_key_rsa": RSA_KEY,
        "pub_key_ecdsa": "N/A",
        "pub_key_ed25519": ED25519_KEY,
        "instance_id": instance_id,
        "hostname": "test-1",
        "fqdn": "test-1.novalocal",
    }
    body = urlencode(fields).encode("ascii")
    head = (
        f"POST /{server.token}/{instance_id}/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "User-Agent: Cloud-Init/23.1.2\r\n"
        "Accept-Encoding: gzip, deflate\r\n"
        "Accept: */*\r\n"
        "Connection: keep-alive\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
    )

    assert await raw_request("127.0.0.1", server.port, head, body) == 200

    assert server.arrivals == seen
    [arrival] = seen
    assert arrival.instance_id == instance_id
    assert dict(arrival.fields) == fields
    assert arrival.hostname == "test-1"
    assert arrival.fqdn == "test-1.novalocal"
    assert arrival.user_agent == "Cloud-Init/23.1.2"
    assert arrival.source_address == "127.0.0.1"
    assert arrival.address_family == "ipv4"
    assert arrival.wall_time == START  # taken before the monotonic reading
    assert arrival.wall_time.tzinfo is UTC
    assert arrival.monotonic == 1001.0
    assert arrival.known
    assert not arrival.duplicate
    assert server.phoned_home() == {instance_id}
    assert server.strays == []


async def test_json_object_is_accepted_and_na_kept_verbatim(
    server: RegistrationServer, seen: list[Arrival], session: aiohttp.ClientSession
) -> None:
    server.expect(["vm-1"])
    payload = {"hostname": "N/A", "attempt": 2, "note": None}
    async with session.post(url(server, "vm-1"), json=payload) as response:
        assert response.status == 200
    [arrival] = seen
    assert arrival.hostname == "N/A"
    assert arrival.fqdn is None
    assert dict(arrival.fields) == {"hostname": "N/A", "attempt": "2", "note": "null"}


async def test_url_without_trailing_slash_and_empty_body(
    server: RegistrationServer, seen: list[Arrival], session: aiohttp.ClientSession
) -> None:
    server.expect(["vm-1"])
    async with session.post(url(server, "vm-1").rstrip("/")) as response:
        assert response.status == 200
    assert [a.instance_id for a in seen] == ["vm-1"]
    assert dict(seen[0].fields) == {}
    assert seen[0].hostname is None


async def test_wrong_token_is_403_and_not_recorded(
    server: RegistrationServer, seen: list[Arrival], session: aiohttp.ClientSession
) -> None:
    server.expect(["vm-1"])
    wrong = f"http://127.0.0.1:{server.port}/{server.token}x/vm-1/"
    async with session.post(wrong, data={"hostname": "h"}) as response:
        assert response.status == 403
    assert seen == []
    assert server.arrivals == []
    assert server.phoned_home() == set()


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/{token}/vm-1/", "GET", 405),
        ("/{token}/vm-1/", "PUT", 405),
        ("/{token}/", "POST", 404),
        ("/{token}//", "POST", 404),
        ("/{token}/vm-1/extra/", "POST", 404),
        ("/{token}/vm_1%2Fx/", "POST", 400),
        ("/{token}/" + "a" * 65 + "/", "POST", 400),
    ],
)
async def test_bad_requests_are_refused_and_not_recorded(
    server: RegistrationServer,
    seen: list[Arrival],
    session: aiohttp.ClientSession,
    path: str,
    method: str,
    status: int,
) -> None:
    target = f"http://127.0.0.1:{server.port}" + path.format(token=server.token)
    async with session.request(method, target) as response:
        assert response.status == status
    assert seen == []


async def test_body_over_limit_is_413_by_content_length(
    seen: list[Arrival], session: aiohttp.ClientSession
) -> None:
    async with RegistrationServer(
        clock=StepClock(), journal=seen.extend, max_body_bytes=100
    ) as srv:
        async with session.post(url(srv, "vm-1"), data=b"a=" + b"x" * 98) as response:
            assert response.status == 200  # exactly at the limit
        async with session.post(url(srv, "vm-2"), data=b"a=" + b"x" * 99) as response:
            assert response.status == 413
    assert [a.instance_id for a in seen] == ["vm-1"]


async def test_chunked_body_over_limit_is_413(
    seen: list[Arrival], session: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a="
        for _ in range(10):
            yield b"x" * 20

    async with (
        RegistrationServer(clock=StepClock(), journal=seen.extend, max_body_bytes=100) as srv,
        session.post(url(srv, "vm-1"), data=chunks()) as response,
    ):
        assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert response.status == 413
    assert seen == []


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-www-form-urlencoded", b"hostname=\xff\xfe", 400),
        ("application/x-www-form-urlencoded", b"hostname=%ff", 400),
        ("application/x-www-form-urlencoded", b"hostname&fqdn", 400),
        ("application/json", b'["hostname", "h"]', 400),
        ("application/json", b'{"hostname": ', 400),
        ("application/json", b'{"hostname": "\xff"}', 400),
        ("multipart/form-data; boundary=x", b"--x--", 415),
    ],
)
async def test_malformed_body_is_refused_and_not_recorded(
    server: RegistrationServer,
    seen: list[Arrival],
    session: aiohttp.ClientSession,
    content_type: str,
    body: bytes,
    status: int,
) -> None:
    headers = {"Content-Type": content_type}
    async with session.post(url(server, "vm-1"), data=body, headers=headers) as response:
        assert response.status == status
    assert seen == []


async def test_unknown_instance_is_a_stray_until_expected(
    server: RegistrationServer, seen: list[Arrival], session: aiohttp.ClientSession
) -> None:
    server.expect(["vm-1"])
    async with session.post(url(server, "vm-2"), data={"hostname": "other"}) as response:
        assert response.status == 200
    [arrival] = seen
    assert not arrival.known
    assert server.strays == [arrival]
    assert server.phoned_home() == set()

    # Its listing came late (e.g. after a 504 on create): it counts from now on.
    server.expect(["vm-2"])
    assert server.phoned_home() == {"vm-2"}
    assert server.strays == []
    assert not server.arrivals[0].known  # as it was on arrival


async def test_repeated_post_is_marked_duplicate(
    server: RegistrationServer, seen: list[Arrival], session: aiohttp.ClientSession
) -> None:
    server.expect(["vm-1", "vm-2"])
    for instance_id in ["vm-1", "vm-2", "vm-1"]:
        async with session.post(url(server, instance_id)) as response:
            assert response.status == 200
    assert [(a.instance_id, a.duplicate) for a in seen] == [
        ("vm-1", False),
        ("vm-2", False),
        ("vm-1", True),
    ]
    assert server.phoned_home() == {"vm-1", "vm-2"}


async def test_failing_recorder_gets_500_and_the_retry_is_offered_again(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    offered: list[Arrival] = []

    def flaky_journal(arrivals: Sequence[Arrival]) -> None:
        offered.extend(arrivals)
        if len(offered) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")

    async with RegistrationServer(clock=StepClock(), journal=flaky_journal) as srv:
        srv.expect(["vm-1"])
        with caplog.at_level(logging.ERROR, logger="osbench.kinds.boot.phonehome"):
            async with session.post(url(srv, "vm-1")) as response:
                assert response.status == 500
        async with session.post(url(srv, "vm-1")) as response:
            assert response.status == 200
        assert srv.phoned_home() == {"vm-1"}
        assert srv.arrivals == offered
    assert [a.duplicate for a in offered] == [False, True]
    assert "vm-1" in caplog.text


async def test_address_family_of_ipv4_and_ipv6_clients(
    server: RegistrationServer, seen: list[Arrival], session: aiohttp.ClientSession
) -> None:
    if not has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1), cannot test IPv6 clients")
    assert server.host == "::"  # dual-stack: one socket for both families
    server.expect(["vm-4", "vm-6"])
    async with session.post(url(server, "vm-4", "127.0.0.1")) as response:
        assert response.status == 200
    async with session.post(url(server, "vm-6", "::1")) as response:
        assert response.status == 200
    assert [(a.source_address, a.address_family) for a in seen] == [
        ("127.0.0.1", "ipv4"),
        ("::1", "ipv6"),
    ]


async def test_falls_back_to_ipv4_when_ipv6_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    seen: list[Arrival],
    session: aiohttp.ClientSession,
) -> None:
    # Simulates a kernel without IPv6, which cannot be had here for real.
    real_create_server = socket.create_server

    def no_ipv6(address: tuple[str, int], **kwargs: object) -> socket.socket:
        if kwargs.get("family") == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real_create_server(address, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_server", no_ipv6)
    with caplog.at_level(logging.WARNING, logger="osbench.kinds.boot.phonehome"):
        async with RegistrationServer(clock=StepClock(), journal=seen.extend) as srv:
            assert srv.host == "0.0.0.0"
            async with session.post(url(srv, "vm-1")) as response:
                assert response.status == 200
    assert "falls back to 0.0.0.0" in caplog.text
    assert [a.address_family for a in seen] == ["ipv4"]


async def test_burst_of_1000_simultaneous_posts_all_recorded_once(
    server: RegistrationServer, seen: list[Arrival]
) -> None:
    # Both ends of 1000 connections in this process, under the server's cap
    # per source (a quarter of what the limit leaves: at least 1000).
    if (limit := raise_open_file_limit()) < 4 * 1000 + FD_RESERVE:
        pytest.skip(f"needs an open-file limit of {4 * 1000 + FD_RESERVE}, the hard limit "
                    f"here is {limit}")
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    server.expect(ids)
    connector = aiohttp.TCPConnector(limit=1000, force_close=True)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def phone_home(instance_id: str) -> int:
            form = {"instance_id": instance_id, "hostname": instance_id[:8]}
            async with client.post(url(server, instance_id), data=form) as response:
                return response.status

        statuses = await asyncio.gather(*(phone_home(i) for i in ids))
    assert statuses == [200] * 1000
    assert sorted(a.instance_id for a in seen) == sorted(ids)
    assert not any(a.duplicate for a in seen)
    assert server.phoned_home() == set(ids)


async def test_url_template(seen: list[Arrival]) -> None:
    async with RegistrationServer(clock=StepClock(), journal=seen.extend) as srv:
        base = f"/{srv.token}/$INSTANCE_ID/"
        assert srv.url_template("10.0.0.5") == f"http://10.0.0.5:{srv.port}{base}"
        assert srv.url_template("2001:db8::5") == f"http://[2001:db8::5]:{srv.port}{base}"
        assert srv.url_template("[2001:db8::5]") == f"http://[2001:db8::5]:{srv.port}{base}"
        with pytest.raises(ValueError, match="advertise_host"):
            srv.url_template()  # bound to "::": no address a guest could use
    async with RegistrationServer(
        clock=StepClock(), journal=seen.extend, host="127.0.0.1", token="run-42-secret"
    ) as srv:
        assert srv.url_template() == f"http://127.0.0.1:{srv.port}/run-42-secret/$INSTANCE_ID/"
        # Bound to one address: the only one a guest can reach it on.
        assert srv.url_template("10.0.0.5") == srv.url_template()
    proxied = RegistrationServer(
        clock=StepClock(),
        journal=seen.extend,
        token="run-42-secret",
        advertised_url="http://phone.example.org:8080/",
    )
    assert proxied.url_template("10.0.0.5") == (
        "http://phone.example.org:8080/run-42-secret/$INSTANCE_ID/"
    )


def test_url_template_needs_a_started_server() -> None:
    srv = RegistrationServer(clock=StepClock(), journal=lambda arrivals: None)
    with pytest.raises(RuntimeError, match="not started"):
        srv.url_template("10.0.0.5")


def test_token_is_random_per_server_and_validated() -> None:
    first = RegistrationServer(clock=StepClock(), journal=lambda arrivals: None)
    second = RegistrationServer(clock=StepClock(), journal=lambda arrivals: None)
    assert first.token != second.token
    assert len(first.token) >= 16
    with pytest.raises(UserError, match="token"):
        RegistrationServer(clock=StepClock(), journal=lambda arrivals: None, token="a/b/c/d/e")


@pytest.mark.parametrize(
    "api_url", ["http://127.0.0.1:5000/v3", "https://localhost/identity", "http://[::1]:5000"]
)
def test_default_advertise_address_for_loopback_targets(api_url: str) -> None:
    if "::1" in api_url and not has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    assert default_advertise_address(api_url) == "127.0.0.1"


def test_default_advertise_address_is_a_local_non_loopback_address() -> None:
    # TEST-NET-2; a UDP connect only consults the routing table, sends nothing.
    try:
        address = default_advertise_address("http://198.51.100.7:5000/v3")
    except UserError as exc:
        pytest.skip(f"this machine has no route to a non-local IPv4 address: {exc}")
    assert not ipaddress.ip_address(address).is_loopback
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))  # only a local address can be bound


def test_default_advertise_address_refuses_url_without_host() -> None:
    with pytest.raises(UserError, match="host"):
        default_advertise_address("not a url")


async def test_port_in_use_is_a_clear_error_not_an_ipv4_fallback(seen: list[Arrival]) -> None:
    from osbench.errors import UserError

    async with RegistrationServer(clock=StepClock(), journal=seen.extend) as first:
        second = RegistrationServer(clock=StepClock(), journal=seen.extend,
                                    port=first.port)
        with pytest.raises(UserError) as exc:
            await second.start()
    assert str(exc.value) == (
        f"registration server cannot listen on [::]:{first.port}: Address already in use "
        "(free that port, or set params.phone_home_port (0 picks a free one) and "
        "phone_home_bind)")


def test_form_bodies_read_as_parse_qsl_reads_them() -> None:
    # The server's own form reader stands in for parse_qsl (a third of its
    # cost): the same fields, or a ValueError where parse_qsl raises one.
    def qsl(text: str) -> dict[str, str] | str:
        try:
            return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True,
                                  errors="strict", max_num_fields=64))
        except ValueError:
            return "error"

    def ours(text: str) -> dict[str, str] | str:
        try:
            return parse_form(text)
        except ValueError:
            return "error"

    rng = random.Random(19)
    alphabet = "ab=&+ ;%2F%zz%C3%A9%ff%%4"
    texts = ["", "a", "=", "a=1&a=2", "&", "a=1&", "&".join(["a=1"] * 64),
             "&".join(["a=1"] * 65), "pub_key_rsa=ssh-rsa+AAAA+root%40h%0A&x=%E2%82%AC"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
              for _ in range(3000)]
    assert [ours(t) for t in texts] == [qsl(t) for t in texts]
