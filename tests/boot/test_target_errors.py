"""A cloud that cannot be used ends `osbench run` in one line, never a hang or a
traceback (issue 13, part 5): a server that accepts and never answers, clouds.yaml
entries that lack what keystoneauth needs, a port already taken by `sim serve`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from osbench import results
from osbench.cloudclient import DEFAULT_API_TIMEOUT_S, connect
from tests.boot.conftest import CLOUD_NAME, SimThread, boot_yaml

ROOT = Path(__file__).resolve().parents[2]


class SilentServer:
    """Accepts TCP connections on loopback and never answers (nor reads, for raw)."""

    def __init__(self, read_request: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.read_request = read_request
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            if self.read_request:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    conn.recv(65536)  # the whole HTTP request; no reply ever
            self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture(params=[False, True], ids=["raw-tcp", "http"])
def silent(request: pytest.FixtureRequest) -> Iterator[SilentServer]:
    server = SilentServer(read_request=request.param)
    yield server
    server.close()


def entry(port: int, **extra: Any) -> dict[str, Any]:
    return {"auth": {"auth_url": f"http://127.0.0.1:{port}/v3", "username": "u",
                     "password": "secret-pw", "project_name": "p",
                     "user_domain_name": "Default", "project_domain_name": "Default"},
            **extra}


def run_osbench(tmp_path: Path, clouds: dict[str, Any], cloud: str,
                ) -> subprocess.Popen[str]:
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump({"clouds": clouds}))
    scenario = tmp_path / "boot.yaml"
    scenario.write_text(boot_yaml(5))
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml")}
    env.pop("OS_CLOUD", None)
    return subprocess.Popen(
        [sys.executable, "-m", "osbench", "run", str(scenario), "--cloud", cloud,
         "--results", str(tmp_path / "results")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_silent_api_times_out_in_one_line(tmp_path: Path, silent: SilentServer) -> None:
    proc = run_osbench(tmp_path, {"silent": entry(silent.port, api_timeout=1)}, "silent")
    _, err = proc.communicate(timeout=60)  # before the fix: hung for ever
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [
        f"osbench: error: cloud 'silent': cannot authenticate at "
        f"http://127.0.0.1:{silent.port}/v3: Request to http://127.0.0.1:{silent.port}"
        f"/v3/auth/tokens timed out (check the entry; every request times out after 1 s "
        f"(api_timeout))"], err
    assert "secret-pw" not in err
    # The run had started (it needs the network to fail): its directory says why.
    (run_dir,) = (tmp_path / "results").iterdir()
    run = results.load(run_dir)
    assert run.manifest["status"] == "error"
    assert "timed out" in run.manifest["error"]
    assert "secret-pw" not in (run_dir / "manifest.json").read_text()
    report = subprocess.run(
        [sys.executable, "-m", "osbench", "report", str(run_dir), "--out", str(tmp_path / "rep"),
         "--format", "md"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| status | error |" in text
    assert "timed out" in text


def test_a_signal_stops_a_run_stuck_on_a_silent_api_at_once(tmp_path: Path,
                                                            silent: SilentServer) -> None:
    """No api_timeout: the default (60 s) would end it; a signal ends it now, though
    the SDK call is still stuck in its thread (before: only kill -9 ended it)."""
    proc = run_osbench(tmp_path, {"silent": entry(silent.port)}, "silent")
    deadline = time.monotonic() + 60
    while not silent.held and time.monotonic() < deadline:  # it is waiting on us
        time.sleep(0.05)
    assert silent.held, "osbench never connected"
    proc.send_signal(signal.SIGTERM)
    # Within 30 s, half the 60 s default: only the signal can have ended it.
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err  # nothing was created: nothing to clean up
    assert "SIGTERM: stopping" in err
    assert "Traceback" not in err
    (run_dir,) = (tmp_path / "results").iterdir()
    assert results.load(run_dir).manifest["status"] == "interrupted"


def test_default_api_timeout_and_the_entrys_own(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with SimThread() as sim:
        clouds = {CLOUD_NAME: sim.sim.cloud_config(),
                  "own": {**sim.sim.cloud_config(), "api_timeout": 7}}
        (tmp_path / "clouds.yaml").write_text(yaml.safe_dump({"clouds": clouds}))
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
        for name, expected in ((CLOUD_NAME, DEFAULT_API_TIMEOUT_S), ("own", 7.0)):
            conn = connect(name)
            try:
                assert conn.session.timeout == expected
            finally:
                conn.close()


@pytest.mark.parametrize(("cloud", "config", "message"), [
    ("nopw", {"auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "u",
                       "project_name": "p"}},
     "cloud 'nopw': clouds.yaml entry lacks auth.password"),
    ("noauthurl", {"auth": {"username": "u", "password": "x", "project_name": "p"}},
     "cloud 'noauthurl': clouds.yaml entry lacks auth.auth_url"),
    ("badtype", {"auth_type": "nosuch", "auth": {"auth_url": "http://127.0.0.1:9/v3"}},
     "cloud 'badtype': auth_type 'nosuch' is not a keystoneauth plugin"),
    ("unknown", None, "cloud 'unknown': Cloud unknown was not found."),
])
def test_unusable_clouds_yaml_entries_are_one_line_and_write_no_run(
        tmp_path: Path, cloud: str, config: dict[str, Any] | None, message: str) -> None:
    clouds = {cloud: config} if config else {"other": entry(9)}
    proc = run_osbench(tmp_path, clouds, cloud)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    (line,) = err.strip().splitlines()  # no traceback, no library warnings
    assert line.startswith(f"osbench: error: {message}"), line
    assert not (tmp_path / "results").exists()  # a run that never started leaves nothing


def test_sim_serve_on_a_port_in_use_is_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "osbench", "sim", "serve", "--port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"osbench: error: sim serve: cannot listen on 127.0.0.1:{port}: "
                           ), line
    assert "address already in use" in line
