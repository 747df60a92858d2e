"""The simulated Neutron's security groups and rules, driven by openstacksdk unmodified
over real HTTP: the default group as Neutron makes it, create/show/list/delete of
groups and rules, Neutron's refusals, and ports that carry their server's groups."""

from __future__ import annotations

from typing import Any

import pytest
from openstack import exceptions as os_exc

from osbench.sim import SimCloud
from tests.sim.conftest import SDK_INTERNAL_WARNINGS, sdk

pytestmark = SDK_INTERNAL_WARNINGS


@pytest.fixture
async def sim() -> Any:
    async with SimCloud("healthy", seed=1, time_scale=100) as cloud:
        yield cloud


async def test_default_group_is_neutrons(sim: SimCloud) -> None:
    def work(conn: Any) -> Any:
        return list(conn.network.security_groups())

    (group,) = await sdk(sim, work)
    assert (group.id, group.name) == (sim.security_group_id, "default")
    rules = sorted((r["direction"], r["ethertype"], r["remote_group_id"])
                   for r in group.security_group_rules)
    assert rules == [("egress", "IPv4", None), ("egress", "IPv6", None),
                     ("ingress", "IPv4", group.id), ("ingress", "IPv6", group.id)]


async def test_create_show_list_delete_groups_and_rules(sim: SimCloud) -> None:
    def work(conn: Any) -> tuple[Any, ...]:
        group = conn.network.create_security_group(name="web", description="w")
        rule = conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", protocol="tcp",
            port_range_min=8080, port_range_max=8080, remote_ip_prefix="0.0.0.0/0")
        shown = conn.network.get_security_group_rule(rule.id)
        listed = [r.id for r in conn.network.security_group_rules(
            security_group_id=group.id, direction="ingress")]
        with pytest.raises(os_exc.ConflictException, match="already exists"):
            conn.network.create_security_group_rule(
                security_group_id=group.id, direction="ingress", protocol="tcp",
                port_range_min=8080, port_range_max=8080, remote_ip_prefix="0.0.0.0/0")
        with pytest.raises(os_exc.BadRequestException, match="port_range_min"):
            conn.network.create_security_group_rule(
                security_group_id=group.id, direction="ingress", protocol="tcp",
                port_range_min=90, port_range_max=80)
        with pytest.raises(os_exc.ConflictException, match="default security group"):
            conn.network.delete_security_group(sim.security_group_id)
        with_rules = conn.network.get_security_group(group.id)
        conn.network.delete_security_group(group.id)
        with pytest.raises(os_exc.NotFoundException):
            conn.network.get_security_group(group.id)
        return rule, shown, listed, with_rules, list(conn.network.security_group_rules(
            security_group_id=group.id))

    rule, shown, listed, with_rules, left = await sdk(sim, work)
    assert (shown.port_range_min, shown.port_range_max, shown.protocol,
            shown.remote_ip_prefix) == (8080, 8080, "tcp", "0.0.0.0/0")
    assert listed == [rule.id]
    assert len(with_rules.security_group_rules) == 3  # two egress, made by Neutron, + ours
    assert left == []


async def test_ports_carry_their_servers_groups(sim: SimCloud) -> None:
    await sdk(sim, lambda conn: conn.compute.create_server(
        name="a", image_id=sim.image_id, flavor_id=sim.flavor_id,
        networks=[{"uuid": sim.network_id}]))
    ports: list[Any] = []
    for _ in range(100):  # the port exists once nova-compute made it (modelled seconds)
        ports = await sdk(sim, lambda conn: list(conn.network.ports()))
        if ports:
            break
        await sim.clock.sleep(2.0)
    assert len(ports) == 1
    assert ports[0].security_group_ids == [sim.security_group_id]
