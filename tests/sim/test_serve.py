"""`osbench sim serve` standalone: its printed clouds.yaml entry works with
openstacksdk, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
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
        assert list(entry["clouds"]) == ["standalone", "standalone-admin"]
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
        # The simulator counts what it served, every client's (the perf suite counts
        # openstacksdk's requests this way); reading the counts is not counted.
        counts_url = next(line.split("GET ", 1)[1].strip() for line in lines
                          if line.startswith("# requests served so far: GET "))
        first, second = _counts(counts_url), _counts(counts_url)
        assert first == second
        assert any(service == "compute" and method == "GET" and "flavors" in route
                   for service, method, route in first), first
        assert any(service == "network" and method == "GET" and "networks" in route
                   for service, method, route in first), first
        assert all(n >= 1 for n in first.values())
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "# stopped" in err
    assert "Traceback" not in err


def _counts(url: str) -> dict[tuple[str, str, str], int]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        rows = json.load(reply)["requests"]
    return {(r["service"], r["method"], r["route"]): r["count"] for r in rows}
