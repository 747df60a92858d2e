"""openstacksdk, unmodified, performs every call osbench makes against the
simulated cloud over real HTTP."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from openstack import exceptions as os_exc

from osbench.sim import SimCloud
from tests.sim.conftest import SDK_INTERNAL_WARNINGS, Receiver, sdk, wait_until

pytestmark = SDK_INTERNAL_WARNINGS


@pytest.fixture
async def sim() -> Any:
    async with SimCloud("healthy", seed=1, time_scale=100) as cloud:
        yield cloud


async def test_discovery_flavors_images_networks_keypair(sim: SimCloud) -> None:
    def work(conn: Any) -> tuple[Any, ...]:
        return (conn.compute.find_flavor("c1.small", ignore_missing=False),
                conn.image.find_image("cirros-sim", ignore_missing=False),
                conn.network.find_network("demo-network", ignore_missing=False),
                conn.compute.find_keypair("mykey", ignore_missing=False),
                list(conn.network.subnets(network_id=sim.network_id)))

    flavor, image, network, keypair, subnets = await sdk(sim, work)
    assert (flavor.vcpus, flavor.ram, flavor.id) == (1, 1024, sim.flavor_id)
    assert image.id == sim.image_id and network.id == sim.network_id
    assert keypair.name == "mykey" and len(subnets) == 1
    counts = sim.request_counts()
    assert counts[("identity", "POST", "/auth/tokens")] == 1
    assert counts[("compute", "GET", "/flavors/detail")] >= 1
    sim.reset_request_counts()
    assert not sim.request_counts()


async def test_multicreate_list_show_console_ports_delete(
    sim: SimCloud, receiver: Receiver
) -> None:
    since = sim.clock.now() - timedelta(seconds=1)

    def create(conn: Any) -> Any:
        return conn.compute.create_server(
            name="bench-r1", image_id=sim.image_id, flavor_id=sim.flavor_id,
            networks=[{"uuid": sim.network_id}], min_count=3, max_count=3,
            user_data=receiver.user_data(), key_name="mykey",
            security_groups=[{"name": "default"}], metadata={"osbench_run": "r1"},
        )

    first = await sdk(sim, create)
    servers = await sdk(sim, lambda c: list(c.compute.servers(details=True, name="^bench-r1-")))
    assert sorted(s.name for s in servers) == ["bench-r1-1", "bench-r1-2", "bench-r1-3"]
    assert first.id in {s.id for s in servers}
    assert all(s.metadata == {"osbench_run": "r1"} for s in servers)
    reservation = servers[0].reservation_id
    await wait_until(sim, lambda: len(receiver.posts) == 3, 600)

    def inspect(conn: Any) -> tuple[Any, ...]:
        paged = list(conn.compute.servers(details=True, reservation_id=reservation,
                                          changes_since=since.isoformat(), limit=1))
        shown = conn.compute.get_server(first.id)
        console = conn.compute.get_server_console_output(first.id, length=50)["output"]
        ports = list(conn.network.ports(device_id=first.id, status="ACTIVE"))
        limits = conn.compute.get_limits().absolute
        return paged, shown, console, ports, limits

    paged, shown, console, ports, limits = await sdk(sim, inspect)
    assert len(paged) == 3 and shown.status == "ACTIVE"
    assert sim.request_counts()[("compute", "GET", "/servers/detail")] >= 4  # pages followed
    assert "DHCPACK" in console and "Cloud-init" in console and "phone home" in console
    assert len(ports) == 1 and ports[0].fixed_ips[0]["ip_address"] in str(shown.addresses)
    assert limits.instances_used == 3 and limits.total_cores_used == 3
    assert {p["path_id"] for p in receiver.posts} == {s.id for s in servers}
    assert all(p["agent"].startswith("Cloud-Init/") for p in receiver.posts)
    assert all(p["type"] == "application/x-www-form-urlencoded" for p in receiver.posts)

    def delete(conn: Any) -> tuple[Any, ...]:
        for server in servers:
            conn.compute.delete_server(server)
        after = list(conn.compute.servers(details=True, name="^bench-r1-"))
        deleted = list(conn.compute.servers(details=True, changes_since=since.isoformat()))
        left_ports = list(conn.network.ports(device_id=first.id))
        with pytest.raises(os_exc.NotFoundException):
            conn.compute.get_server(first.id)
        return after, deleted, left_ports

    after, deleted, left_ports = await sdk(sim, delete)
    assert after == [] and left_ports == []
    assert {s.status for s in deleted} == {"DELETED"}  # changes-since shows deletions


async def test_return_reservation_id_via_raw_post(sim: SimCloud) -> None:
    body = {"server": {"name": "rr", "imageRef": sim.image_id, "flavorRef": sim.flavor_id,
                       "networks": [{"uuid": sim.network_id}], "min_count": 4, "max_count": 4,
                       "return_reservation_id": True}}

    def work(conn: Any) -> tuple[Any, ...]:
        response = conn.compute.post("/servers", json=body, microversion="2.79")
        rid = response.json()["reservation_id"]
        listed = list(conn.compute.servers(reservation_id=rid))
        return response.status_code, rid, listed

    status, rid, listed = await sdk(sim, work)
    assert status == 202 and rid.startswith("r-") and len(listed) == 4


async def test_quota_min_max_semantics(sim: SimCloud) -> None:
    def work(conn: Any) -> tuple[Any, ...]:
        conn.compute.update_quota_set(sim.project_id, instances=5)
        made = conn.compute.post("/servers", microversion="2.79", json={"server": {
            "name": "q", "imageRef": sim.image_id, "flavorRef": sim.flavor_id,
            "networks": "auto", "min_count": 2, "max_count": 10,
            "return_reservation_id": True}})
        listed = list(conn.compute.servers(reservation_id=made.json()["reservation_id"]))
        refused = conn.compute.post("/servers", microversion="2.79", json={"server": {
            "name": "q2", "imageRef": sim.image_id, "flavorRef": sim.flavor_id,
            "networks": "auto", "min_count": 1}})
        quota = conn.compute.get_quota_set(sim.project_id, usage=True)
        return listed, refused, quota

    listed, refused, quota = await sdk(sim, work)
    assert len(listed) == 5  # fewer than max_count, at least min_count: built quietly
    assert refused.status_code == 403
    assert "Quota exceeded for instances" in refused.json()["forbidden"]["message"]
    assert quota.instances == 5 and quota.usage["instances"] == 5


async def test_token_expiry_forces_reauthentication() -> None:
    from osbench.sim import load_profile

    # keystoneauth itself renews tokens with < 120 s left, so the TTL must exceed
    # that for the simulator's 401 to be what triggers re-authentication.
    profile = load_profile("healthy").with_overrides({"keystone.token_ttl_s": 300})
    async with SimCloud(profile, time_scale=400) as sim:
        def work(conn: Any) -> int:
            conn.compute.find_flavor("c1.small", ignore_missing=False)
            import time
            time.sleep(1.0)  # 400 modelled seconds: the token has expired
            return len(list(conn.compute.flavors()))

        assert await sdk(sim, work) == 3
        counts = sim.request_counts()
        assert counts[("identity", "POST", "/auth/tokens")] == 2


async def test_user_data_is_base64_decoded(sim: SimCloud) -> None:
    text = "#cloud-config\nphone_home: {url: 'http://127.0.0.1:9/x', tries: 1}\n"
    encoded = base64.b64encode(text.encode()).decode()
    await sdk(sim, lambda c: c.compute.create_server(
        name="ud", image_id=sim.image_id, flavor_id=sim.flavor_id,
        networks=[{"uuid": sim.network_id}], user_data=encoded))
    (server,) = sim.servers.values()
    assert server.user_data == text and server.phone_home is not None
    assert server.phone_home.tries == 1
