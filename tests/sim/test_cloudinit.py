"""osbench.cloudinit: the phone_home every guest plays (simulated and minicloud's),
read against cloud-init's cc_phone_home and url_helper.readurl."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import formatdate

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from osbench import cloudinit
from osbench.cloudinit import POST_ALL, Outcome, PhoneHome, RetryPolicy, Skipped


def parse(text: str) -> PhoneHome | Skipped:
    return cloudinit.parse_user_data(text)


def config(text: str) -> PhoneHome:
    result = parse(text)
    assert isinstance(result, PhoneHome), result
    return result


def skipped(text: str | bytes | None) -> Skipped:
    result = cloudinit.parse_user_data(text)
    assert isinstance(result, Skipped), result
    return result


# -- the user data -----------------------------------------------------------

def test_a_valid_phone_home() -> None:
    ph = config("#cloud-config\npackages: [curl]\nphone_home:\n"
                "  url: http://127.0.0.1:8000/tok/$INSTANCE_ID/\n"
                "  post: [instance_id, hostname, fqdn]\n  tries: 4\n")
    assert ph == PhoneHome(url="http://127.0.0.1:8000/tok/$INSTANCE_ID/",
                           post=("instance_id", "hostname", "fqdn"), tries=4)
    assert ph.url_for("abc") == "http://127.0.0.1:8000/tok/abc/"
    assert ph.form({"instance_id": "abc", "hostname": "h"}) == {
        "instance_id": "abc", "hostname": "h", "fqdn": "N/A"}


def test_post_all_is_the_default_and_braced_instance_id() -> None:
    for post in ("", "\n  post: all"):
        ph = config(f"#cloud-config\nphone_home:\n  url: http://x/${{INSTANCE_ID}}/$INSTANCE_ID{post}\n")
        assert ph.post == POST_ALL == ("pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519",
                                       "instance_id", "hostname", "fqdn")
        assert ph.tries == 10 and ph.url_for("i-1") == "http://x/i-1/i-1"


def test_unknown_keys_are_posted_as_na_and_repeats_once() -> None:
    ph = config("#cloud-config\nphone_home: {url: 'http://x/', "
                "post: [hostname, favourite_colour, hostname, 5]}\n")
    assert ph.post == ("hostname", "favourite_colour", "5")
    assert ph.form({"hostname": "vm"}) == {"hostname": "vm", "favourite_colour": "N/A",
                                           "5": "N/A"}


def test_cloud_config_header_as_cloud_init_matches_it() -> None:
    assert isinstance(parse("  \n#Cloud-Config\nphone_home: {url: 'http://x/'}\n"), PhoneHome)
    assert isinstance(cloudinit.parse_user_data(b"#cloud-config\nphone_home: {url: u}\n"),
                      PhoneHome)


@pytest.mark.parametrize("user_data", [None, "", b"", "#!/bin/sh\necho hi\n",
                                       "#cloud-config\npackages: [curl]\n",
                                       b"\xff\xfe#cloud-config\n"])
def test_not_asked_to_phone_home(user_data: str | bytes | None) -> None:
    assert not skipped(user_data).malformed


@pytest.mark.parametrize(("text", "reason"), [
    ("#cloud-config\nphone_home: {post: all}\n", "no url"),
    ("#cloud-config\nphone_home: {url: }\n", "url"),
    ("#cloud-config\nphone_home: {url: '  '}\n", "url"),
    ("#cloud-config\nphone_home: {url: [http://x/]}\n", "url"),
    ("#cloud-config\n: : bad yaml [\n", "YAML"),
    ("#cloud-config\nphone_home: {url: 'http://x/'\n", "YAML"),
    ("#cloud-config\n- phone_home\n", "list, not a mapping"),
    ("#cloud-config\n", "NoneType, not a mapping"),
    ("#cloud-config\nphone_home: http://x/\n", "phone_home is a str"),
    ("#cloud-config\nphone_home: {url: 'http://x/$HOME/$INSTANCE_ID'}\n", "'HOME'"),
    ("#cloud-config\nphone_home: {url: 'http://x/$INSTANCE_ID.json'}\n", "INSTANCE_ID.json"),
    ("#cloud-config\nphone_home: {url: 'http://x/', post: hostname}\n", "post"),
    ("#cloud-config\nphone_home: {url: 'http://x/', post: }\n", "post"),
    ("#cloud-config\nphone_home: {url: 'http://x/', post: {hostname: 1}}\n", "post"),
    ("#cloud-config\nphone_home: {url: 'http://x/', post: [[hostname]]}\n", "post"),
    ("#cloud-config\nphone_home: {url: 'http://x/', tries: .inf}\n", "tries"),
])
def test_malformed_phone_home_is_skipped_with_a_reason(text: str, reason: str) -> None:
    result = skipped(text)
    assert result.malformed and reason in result.reason


@pytest.mark.parametrize(("tries", "configured", "attempts"), [
    ("", 10, 10), ("\n  tries: x", 10, 10), ("\n  tries: ", 10, 10),
    ("\n  tries: .nan", 10, 10), ("\n  tries: '3'", 3, 3), ("\n  tries: 2.9", 2, 2),
    ("\n  tries: true", 1, 1), ("\n  tries: 1", 1, 1), ("\n  tries: 0", 0, 1),
    ("\n  tries: -5", -5, 1), ("\n  tries: 1000", 1000, 1000),
])
def test_tries_as_cloud_init_reads_them(tries: str, configured: int, attempts: int) -> None:
    ph = config(f"#cloud-config\nphone_home:\n  url: http://x/{tries}\n")
    assert (ph.tries, ph.attempts, ph.retry_policy().attempts) == (configured, attempts, attempts)


@pytest.mark.parametrize(("domain", "fqdn"), [
    ("novalocal", "vm-1.novalocal"), ("example.org", "vm-1.example.org"),
    ("", "vm-1"), ("localdomain", "vm-1")])
def test_hostname_and_fqdn_as_nova_serves_and_cloud_init_reads_them(domain: str,
                                                                     fqdn: str) -> None:
    values = cloudinit.instance_values("i-1", "vm-1", dhcp_domain=domain,
                                       host_keys={"pub_key_rsa": "ssh-rsa AAAA"})
    assert values == {"instance_id": "i-1", "hostname": "vm-1", "fqdn": fqdn,
                      "pub_key_rsa": "ssh-rsa AAAA"}
    assert cloudinit.instance_values("i-1", "vm-1")["fqdn"] == "vm-1.novalocal"


# -- the retry policy ----------------------------------------------------------

def test_failures_are_retried_3s_apart_until_the_tries_are_used() -> None:
    policy = RetryPolicy(tries=3)
    for failure in (Outcome(status=500), Outcome(status=404), Outcome(error="refused")):
        assert [policy.wait_after(n, failure) for n in (1, 2, 3)] == [3.0, 3.0, None]
    for success in (Outcome(status=200), Outcome(status=302), Outcome(status=399)):
        assert policy.wait_after(1, success) is None and success.ok
    assert policy.wait_after(1, Outcome(error="certificate verify failed", tls=True)) is None
    assert RetryPolicy(tries=0).wait_after(1, Outcome(status=500)) is None


def test_503_waits_its_retry_after_past_the_tries() -> None:
    policy = RetryPolicy(tries=2)
    assert policy.wait_after(50, Outcome(status=503)) == 1.0
    assert policy.wait_after(50, Outcome(status=503, retry_after="7")) == 7.0
    assert policy.wait_after(50, Outcome(status=503, retry_after="soon")) == 1.0
    assert policy.wait_after(50, Outcome(status=503, retry_after="-4")) == 1.0
    past = formatdate(1_000_000_000.0, usegmt=True)
    assert policy.wait_after(50, Outcome(status=503, retry_after=past)) == 1.0
    later = formatdate(1_000_000_030.0, usegmt=True)
    assert policy.wait_after(50, Outcome(status=503, retry_after=later),
                             now=1_000_000_000.0) == 30.0
    # Retry-After: 0 is falsy in readurl: an ordinary retry, counted, 3 s later.
    zero = Outcome(status=503, retry_after="0")
    assert [policy.wait_after(n, zero) for n in (1, 2)] == [3.0, None]


# -- against a real server -----------------------------------------------------

@dataclass
class Script:
    """A server on 127.0.0.1 that answers POSTs with `statuses` in turn, then 200."""

    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    posts: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
async def script() -> AsyncIterator[Script]:
    s = Script()

    async def handle(request: web.Request) -> web.Response:
        s.posts.append({"path": request.path, "agent": request.headers["User-Agent"],
                        "type": request.content_type,
                        **{k: str(v) for k, v in (await request.post()).items()}})
        status = s.statuses.pop(0) if s.statuses else 200
        headers = {"Retry-After": s.retry_after} if status == 503 and s.retry_after else {}
        return web.Response(status=status, headers=headers)

    app = web.Application()
    app.router.add_post("/{iid}/", handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:  # a real socket
        s.url = f"http://127.0.0.1:{server.port}/$INSTANCE_ID/"
        yield s


async def post(ph: PhoneHome, *, sec_between: float = 0.01,
               url: str | None = None) -> tuple[cloudinit.Result, list[float], list[Outcome]]:
    waits: list[float] = []
    outcomes: list[Outcome] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with aiohttp.ClientSession() as session:
        result = await cloudinit.post_form(
            session, url or ph.url_for("i-1"), ph.form({"instance_id": "i-1", "hostname": "vm"}),
            policy=ph.retry_policy(sec_between), version="25.1", sleep=sleep,
            timeout_s=10.0, on_attempt=outcomes.append)
    return result, waits, outcomes


async def test_503s_then_200_take_as_many_tries_as_they_need(script: Script) -> None:
    script.statuses, script.retry_after = [503, 503, 503], "0.05"
    ph = config(f"#cloud-config\nphone_home: {{url: '{script.url}', post: [instance_id, "
                f"hostname, fqdn], tries: 2}}\n")
    result, waits, outcomes = await post(ph)
    assert result == cloudinit.Result(url=ph.url_for("i-1"), ok=True, attempts=4, status=200)
    assert waits == [0.05, 0.05, 0.05]
    assert [o.status for o in outcomes] == [503, 503, 503, 200]
    assert len(script.posts) == 4
    assert script.posts[-1] == {"path": "/i-1/", "agent": "Cloud-Init/25.1",
                                "type": "application/x-www-form-urlencoded",
                                "instance_id": "i-1", "hostname": "vm", "fqdn": "N/A"}


async def test_503s_count_as_tries_for_the_failure_after_them(script: Script) -> None:
    script.statuses, script.retry_after = [503, 503, 503, 500, 500], "0.01"
    result, waits, _ = await post(PhoneHome(url=script.url, tries=2))
    assert (result.ok, result.attempts, result.status, result.error) == (False, 4, 500,
                                                                         "HTTP 500")
    assert waits == [0.01, 0.01, 0.01] and len(script.posts) == 4


async def test_http_errors_use_up_the_tries(script: Script) -> None:
    script.statuses = [500, 403, 500]
    result, waits, _ = await post(PhoneHome(url=script.url, tries=3), sec_between=0.02)
    assert (result.ok, result.attempts, result.error) == (False, 3, "HTTP 500")
    assert waits == [0.02, 0.02] and len(script.posts) == 3
    script.statuses = [500, 500]
    result, waits, _ = await post(PhoneHome(url=script.url, tries=3))
    assert (result.ok, result.attempts, result.status) == (True, 3, 200)


async def test_connection_errors_use_up_the_tries() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result, waits, outcomes = await post(PhoneHome(url=f"http://127.0.0.1:{port}/x/", tries=2))
    assert (result.ok, result.attempts, result.status) == (False, 2, None)
    assert result.error and waits == [0.01]
    assert all(o.status is None and not o.tls for o in outcomes)
