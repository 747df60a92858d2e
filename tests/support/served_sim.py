"""`osbench sim serve` in a process of its own, for tests that need a simulated cloud
which outlives a run (signals, kill -9, real clients), and the clouds.yaml it prints.

The benchmarks have their own (tests/perf/served.py), which also reads the process's
CPU and memory from /proc; folding the two into one class is left to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openstack
import yaml

from tests.boot.conftest import leftovers

ROOT = Path(__file__).resolve().parents[2]
#: Start-up bound only (imports and the first bind take a few seconds).
START_S = 60


class ServedSim:
    """`osbench sim serve --port 0 --cloud-name CLOUD [ARGS]`: the member's entry is
    CLOUD, the admin's CLOUD-admin, both written to `clouds`."""

    def __init__(self, clouds: Path, *args: str, cloud: str = "served") -> None:
        self.cloud = cloud
        # A file, not a pipe nobody reads until stop(): a long-lived simulator that
        # logs more than a pipe's buffer would block on its next write.
        self._stderr = (clouds.parent / f"{clouds.stem}-sim-serve.stderr").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "osbench", "sim", "serve", "--port", "0",
             "--cloud-name", cloud, *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + START_S
        # The entries end with an empty line (print's own).
        while not lines or lines[-1].strip() or not any(x.startswith("clouds:") for x in lines):
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                raise AssertionError(f"sim serve ended: {self._read_stderr()}")
            lines.append(line)
            assert time.monotonic() < deadline, "sim serve printed no clouds.yaml"
        text = "".join(x for x in lines if not x.startswith("#"))
        clouds.write_text(text)
        self.clouds = clouds
        self.entries: dict[str, dict[str, Any]] = yaml.safe_load(text)["clouds"]
        self.entry = self.entries[cloud]

    def env(self, cloud: str | None = None) -> dict[str, str]:
        """This process's environment without OS_* and with `cloud` (None: no OS_CLOUD,
        for `--cloud NAME`) named in the served clouds.yaml."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds)
        if cloud is not None:
            env["OS_CLOUD"] = cloud
        return env

    def connect(self, cloud: str | None = None) -> Any:
        return openstack.connect(load_yaml_config=False, load_envvars=False,
                                 **self.entries[cloud or self.cloud])

    def leftovers(self) -> tuple[list[str], list[str]]:
        return leftovers(self.connect())

    def wait_for_a_server(self, timeout_s: float = 60) -> None:
        """Until nova-api has made the first server of a create: one listing every
        50 ms, bounded."""
        conn = self.connect()
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if next(iter(conn.compute.servers()), None) is not None:
                    return
                time.sleep(0.05)
        finally:
            conn.close()
        raise AssertionError(f"no server appeared within {timeout_s} s")

    def _read_stderr(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read()
        self._stderr.close()
        return text

    def stop(self) -> str:
        """Ctrl-C, as a user stops it; its stderr."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self._read_stderr()
