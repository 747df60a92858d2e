"""A simulated cloud on its own thread, reachable through a clouds.yaml entry.

Runs against it take the production path (`--cloud NAME`, openstacksdk reading
clouds.yaml) while the test can still read the simulator's request counters
and list what is left on it after the run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from osbench.sim import SimCloud

CLOUD_NAME = "simtest"


def boot_yaml(count: int, *, poll: str = "5s", sla: str = "phone_home_ok_pct == 100",
              extra: str = "", name: str = "boot-test") -> str:
    """A boot scenario on the simulated cloud's image, flavor and network."""
    return f"""\
name: {name}
kind: boot
params:
  count: {count}
  image: cirros-sim
  flavor: c1.small
  networks: [demo-network]
  poll_interval_s: {poll}
  phone_home_port: 0  # a named cloud defaults to 8000, which another run may hold
{extra}
sla: ["{sla}"]
"""


class SimThread:
    """A SimCloud serving from a background thread with its own event loop."""

    def __init__(self, profile: str = "healthy", seed: int = 0, time_scale: float = 60) -> None:
        self.sim = SimCloud(profile=profile, seed=seed, time_scale=time_scale)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> SimThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def write_clouds_yaml(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({"clouds": {CLOUD_NAME: self.sim.cloud_config()}}))
        return path

    def leftovers(self) -> tuple[list[str], list[str]]:
        """Names of servers, and ids of instance ports, still on the cloud."""
        return leftovers(self.sim.connect())


def leftovers(conn: Any) -> tuple[list[str], list[str]]:
    """Names of servers, and ids of instance ports, on the cloud of `conn` (closed)."""
    try:
        servers = [s.name for s in conn.compute.servers()]
        ports = [p.id for p in conn.network.ports()
                 if str(p.device_owner or "").startswith("compute:")]
    finally:
        conn.close()
    return servers, ports


@pytest.fixture
def sim_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimThread]:
    """`--cloud simtest` reaches a healthy simulated cloud for the test's duration."""
    with SimThread(profile="healthy") as sim:
        clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml")
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        monkeypatch.delenv("OS_CLOUD", raising=False)
        yield sim
