"""Servers on a simulated cloud for the firewall check to find: some in scope
(`web-`), one not (`db-1`), and a rule in the `default` group opening tcp 8080."""

from __future__ import annotations

import time
from typing import Any

from tests.boot.conftest import SimThread


def boot(sim: SimThread, names: tuple[str, ...] = ("web-1", "web-2", "web-3", "db-1")
         ) -> dict[str, tuple[str, str]]:
    """`names` ACTIVE, and tcp 8080 open in `default`: name -> (id, fixed IP)."""
    conn = sim.sim.connect()
    try:
        conn.network.create_security_group_rule(
            security_group_id=sim.sim.security_group_id, direction="ingress", protocol="tcp",
            port_range_min=8080, port_range_max=8080, remote_ip_prefix="0.0.0.0/0")
        for name in names:
            conn.compute.create_server(name=name, image_id=sim.sim.image_id,
                                       flavor_id=sim.sim.flavor_id,
                                       networks=[{"uuid": sim.sim.network_id}])
        servers: list[Any] = []
        for _ in range(300):  # ~1 s of real time per 60 modelled seconds
            servers = list(conn.compute.servers())
            if len(servers) == len(names) and all(s.status == "ACTIVE" for s in servers):
                break
            time.sleep(0.1)
        assert sorted(s.status for s in servers) == ["ACTIVE"] * len(names)
        ports = {p.device_id: p.fixed_ips[0]["ip_address"] for p in conn.network.ports()}
        return {s.name: (s.id, ports[s.id]) for s in servers}
    finally:
        conn.close()
