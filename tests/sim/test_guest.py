"""Simulated guests follow cloud-init's phone_home semantics."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import aiohttp

from osbench.sim import SimCloud, load_profile
from osbench.sim.guest import GuestIdentity, parse_phone_home, phone_home_request
from tests.sim.conftest import Receiver, has_ipv6_loopback, wait_until


def test_parse_phone_home_defaults_and_fallbacks() -> None:
    cfg = parse_phone_home("#cloud-config\nphone_home:\n  url: http://h/$INSTANCE_ID/\n")
    assert cfg is not None and cfg.tries == 10 and "pub_key_ed25519" in cfg.post
    assert parse_phone_home("#cloud-config\nphone_home: {post: all}\n") is None  # no url
    assert parse_phone_home("#!/bin/sh\necho hi\n") is None
    assert parse_phone_home("#cloud-config\n: : bad yaml [\n") is None
    bad_tries = parse_phone_home("#cloud-config\nphone_home: {url: 'http://h/', tries: x}\n")
    assert bad_tries is not None and bad_tries.tries == 10


def test_url_substitution_and_missing_fields() -> None:
    cfg = parse_phone_home(
        "#cloud-config\nphone_home:\n  url: http://127.0.0.1:8000/${INSTANCE_ID}/$INSTANCE_ID\n"
        "  post: [hostname, fqdn, instance_id, favourite_colour]\n")
    assert cfg is not None
    url, form = phone_home_request(cfg, GuestIdentity("abc", "test-1"), ipv6=True)
    assert url == "http://[::1]:8000/abc/abc"
    assert form == {"hostname": "test-1", "fqdn": "test-1.novalocal", "instance_id": "abc",
                    "favourite_colour": "N/A"}


def _create(sim: SimCloud, user_data: str, count: int) -> dict[str, Any]:
    return {"server": {"name": "g", "imageRef": sim.image_id, "flavorRef": sim.flavor_id,
                       "networks": [{"uuid": sim.network_id}], "user_data": user_data,
                       "min_count": count, "max_count": count}}


async def _post_create(sim: SimCloud, body: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as http:
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": sim.username, "password": sim.password}}},
            "scope": {"project": {"name": sim.project_name}}}}
        async with http.post(sim.auth_url + "/auth/tokens", json=auth) as r:
            token = r.headers["X-Subject-Token"]
        async with http.post(f"{sim.base_url}/compute/v2.1/servers", json=body,
                             headers={"X-Auth-Token": token}) as r:
            return r.status


async def test_retries_after_http_errors_3s_apart(receiver: Receiver) -> None:
    receiver.fail_first = 2
    async with SimCloud("healthy", time_scale=50) as sim:
        receiver.clock = sim.now  # modelled seconds
        assert await _post_create(sim, _create(sim, receiver.user_data(), 1)) == 202
        # The guest counts an attempt once it has the reply, after the receiver
        # recorded the POST: wait for the guest's own success, then count.
        await wait_until(sim, lambda: sim.guest_stats["phone_home_ok"] == 1, 600)
        assert sim.guest_stats["phone_home_attempts"] == 3
        assert len(receiver.posts) == 1
    # cloud-init's sec_between (3 s, cc_phone_home), on the modelled clock. A gap
    # is the wait plus a loopback round trip, which time scale 50 stretches by 50:
    # the bound below leaves that 60 ms of real time and still tells one wait from two.
    times = receiver.post_times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2 and all(3.0 <= gap < 6.0 for gap in gaps), gaps


async def test_gives_up_after_tries() -> None:
    text = "#cloud-config\nphone_home: {url: 'http://127.0.0.1:9/$INSTANCE_ID', tries: 2}\n"
    async with SimCloud("healthy", time_scale=100) as sim:
        await _post_create(sim, _create(sim, base64.b64encode(text.encode()).decode(), 1))
        await wait_until(sim, lambda: sim.guest_stats["phone_home_failed"] == 1, 600)
        assert sim.guest_stats["phone_home_attempts"] == 2


async def test_ipv6_share_shows_in_the_address_family(receiver: Receiver) -> None:
    if not has_ipv6_loopback():
        import pytest

        pytest.skip("no IPv6 loopback (::1) on this machine")
    profile = load_profile("dual-stack")
    async with SimCloud(profile, seed=2, time_scale=100) as sim:
        await _post_create(sim, _create(sim, receiver.user_data(), 100))
        await wait_until(sim, lambda: len(receiver.posts) == 100, 900)
    v6 = sum(p["family"] == 6 for p in receiver.posts)
    planned = sum(s.timeline.ipv6 for s in sim.servers.values())
    assert v6 == planned and 5 <= v6 <= 25  # share 0.14 of 100
