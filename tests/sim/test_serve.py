"""`osbench sim serve` standalone: its printed clouds.yaml entry works with
openstacksdk, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import openstack
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_serve_prints_a_working_clouds_yaml_entry(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "osbench", "sim", "serve", "--profile", "big-pets",
         "--cloud-name", "standalone"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            if not line.strip() and any(x.startswith("clouds:") for x in lines):
                break
            lines.append(line)
        entry = yaml.safe_load("".join(lines))
        assert list(entry["clouds"]) == ["standalone"]
        clouds = tmp_path / "clouds.yaml"
        clouds.write_text("".join(lines))
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        conn = openstack.connect(cloud="standalone")
        try:
            flavors = {f.name for f in conn.compute.flavors()}
            networks = {n.name for n in conn.network.networks()}
        finally:
            conn.close()
        assert "c1.small" in flavors
        assert "demo-network" in networks
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "# stopped" in err
    assert "Traceback" not in err
