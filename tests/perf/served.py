"""The simulated cloud in a process of its own, so the harness is measured alone.

`ServedSim` runs `osbench sim serve` (a fresh process per measurement), writes
the clouds.yaml entry it prints, and reads from outside what that process
spends: CPU seconds (utime + stime of /proc/PID/stat, 10 ms ticks) and resident
memory (VmRSS, and VmHWM, the peak since it started, of /proc/PID/status). The
simulator's request counts come from its own counter
(`GET /osbench-sim/requests`, osbench.sim.server), which sees every client's
calls, whoever makes them.

`boot_served` runs one boot in a child process (tests/perf/child.py) with
`--cloud` naming the served simulator: the child's figures are the harness's
alone; the simulator's CPU over the child's life is added beside them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
#: The clouds.yaml entry's name.
CLOUD = "perf-sim"
#: Only kills a hung child; a 10,000 boot takes ~1-2 min.
CHILD_TIMEOUT_S = 900.0
_TICKS = os.sysconf("SC_CLK_TCK")


class ServedSim:
    """`osbench sim serve --profile PROFILE --port 0` and a clouds.yaml naming it."""

    def __init__(self, profile: str | Path, folder: Path, *, time_scale: float | None = None,
                 seed: int = 0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.clouds = folder / "clouds.yaml"
        self._stderr = (folder / "sim-serve.stderr").open("w+")
        self.stderr_text = ""
        command = [sys.executable, "-m", "osbench", "sim", "serve", "--profile", str(profile),
                   "--port", "0", "--cloud-name", CLOUD, "--seed", str(seed)]
        if time_scale is not None:
            command += ["--time-scale", str(time_scale)]
        self.proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        lines: list[str] = []
        self.counts_url = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.stop()
                raise AssertionError(f"sim serve ended: {self.stderr_text[-2000:]}")
            if line.startswith("# requests served so far: GET "):
                self.counts_url = line.split()[-1]
            lines.append(line)
            if line.strip().startswith("interface:"):  # the entry's last key
                break
        assert self.counts_url, lines
        doc = yaml.safe_load("".join(ln for ln in lines if not ln.startswith("#")))
        self.clouds.write_text(yaml.safe_dump(doc), encoding="utf-8")
        self.entry: dict[str, Any] = doc["clouds"][CLOUD]

    def __enter__(self) -> ServedSim:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def cpu_s(self) -> float:
        """CPU seconds (user + system, every thread) the simulator has used so far."""
        text = Path(f"/proc/{self.pid}/stat").read_text()
        fields = text.rpartition(")")[2].split()  # field 3 (state) is fields[0]
        return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14, 15

    def memory_mib(self) -> dict[str, float]:
        """Resident memory now (`rss`) and its peak since start-up (`peak`), MiB."""
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss" if key == "VmRSS" else "peak"] = int(value.split()[0]) / 1024
        return out

    def request_counts(self) -> Counter[tuple[str, str, str]]:
        """Requests the simulator has served, by (service, method, route template)."""
        with urllib.request.urlopen(self.counts_url, timeout=30) as answer:
            rows = json.load(answer)["requests"]
        return Counter({(r["service"], r["method"], r["route"]): r["count"] for r in rows})

    def env(self) -> dict[str, str]:
        """This process's environment with `--cloud perf-sim` resolving to the simulator."""
        env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds)}
        env.pop("OS_CLOUD", None)
        return env

    def stop(self) -> None:
        """SIGINT (as Ctrl-C), then its stderr is in `stderr_text`; again: nothing."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
        if not self._stderr.closed:
            self._stderr.seek(0)
            self.stderr_text = self._stderr.read()
            self._stderr.close()


def boot_served(sim: ServedSim, scenario: Path, results_dir: Path, *,
                allow_large: bool = False) -> dict[str, Any]:
    """One boot of `scenario` by the harness in a child process against `sim`.

    Returns the child's figures (the harness's own: wall, CPU, memory, loop
    waiting) and, beside them, the simulator's CPU seconds over the child's
    life (`sim_cpu_s`; it idles while the child imports), its resident memory
    before and its peak (`sim_rss_before_mib`, `sim_peak_rss_mib`, VmHWM: since
    the simulator started) and the requests it served (`sim_requests`)."""
    command = [sys.executable, "-m", "tests.perf.child", "boot", str(scenario),
               str(results_dir), "--cloud", CLOUD, *(["--allow-large"] if allow_large else [])]
    cpu0, memory0 = sim.cpu_s(), sim.memory_mib()
    counts0 = sim.request_counts()
    done = subprocess.run(command, cwd=REPO, env=sim.env(), capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, check=False)
    cpu1, memory1 = sim.cpu_s(), sim.memory_mib()
    counts = sim.request_counts() - counts0
    assert done.returncode == 0, done.stderr[-4000:]
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    figures.update({
        "sim_cpu_s": cpu1 - cpu0,
        "sim_rss_before_mib": memory0["rss"],
        "sim_peak_rss_mib": memory1["peak"],
        "sim_requests": sum(counts.values()),
        "sim_request_counts": counts,
    })
    return figures
