"""The `hosts` target: an inventory file, or the local lab's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osbench import targets
from osbench.errors import UserError
from osbench.hosts import SSHHost
from osbench.hosts.target import open_hosts
from osbench.lab import STATE_DIR_ENV
from osbench.scenario import TargetSpec


async def test_no_inventory_and_no_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "no-lab"))
    with pytest.raises(UserError) as info:
        async with open_hosts(TargetSpec(), 0):
            pass
    assert str(info.value) == (
        "no host inventory given and the local lab is not up (run `osbench lab up` as root, "
        "or name an inventory with --hosts FILE)")


async def test_an_inventory_file(tmp_path: Path) -> None:
    file = tmp_path / "inv.yaml"
    file.write_text("hosts:\n  nn: {address: 198.18.0.1, key_file: secret_key, "
                    "password_env: NN_PW, roles: [network_node], interfaces: [eth3]}\n")
    async with open_hosts(TargetSpec(hosts=str(file)), 0) as target:
        assert target.simulated is False
        assert isinstance(target.hosts["nn"], SSHHost)
        assert target.inventory.hosts["nn"].interfaces == ("eth3",)
        described = json.dumps(target.describe())
        assert "secret_key" not in described and "NN_PW" not in described
        assert target.describe()["hosts"]["nn"]["roles"] == ["network_node"]


def test_registered_as_the_hosts_opener() -> None:
    import osbench.hosts.target  # noqa: F401  (registers at import)

    assert targets._openers["hosts"] is open_hosts
