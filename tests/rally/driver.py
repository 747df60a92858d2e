"""Rally (rally-openstack, in a virtualenv of its own) driven against a served simulator.

Rally pins many libraries (SQLAlchemy, oslo.*, its own clients), so it never
shares a virtualenv with osbench: `nox -s rally` (and `nox -s perf`) make
RALLY_VENV and install it there; this module runs its `rally` command as a
subprocess, with HOME and the database in a folder of the caller's, so no
~/.rally of the machine is read or written.

`RallyEnv` is one Rally deployment ("env") pointing at one simulator: its
admin and its member user as existing users (Rally then creates no user or
project of its own). `run_task` starts a task unmodified (Rally's own
scenario plugins, default configuration), and returns Rally's own results:
the JSON report (`rally task report --json`) and the task's log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: Where `nox -s rally` installs Rally (git-ignored, like every nox virtualenv).
RALLY_VENV = REPO / ".nox" / "rally-venv"
#: Overrides RALLY_VENV: the path of a `rally` executable.
RALLY_ENV_VAR = "OSBENCH_RALLY"
#: A Rally command that takes longer has hung: a 100-server task at time scale 1
#: takes ~8 min here (10 rounds of ~45 s at concurrency 10).
COMMAND_TIMEOUT_S = 1800.0
_TASK_ID = re.compile(r"Task\s+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def _rally_path() -> Path:
    given = os.environ.get(RALLY_ENV_VAR)
    return Path(given) if given else RALLY_VENV / "bin" / "rally"


def rally_command() -> Path | None:
    """The `rally` executable to run, or None if Rally is not installed."""
    path = _rally_path()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def not_installed_reason() -> str:
    source = f"${RALLY_ENV_VAR}" if os.environ.get(RALLY_ENV_VAR) else "the default"
    return (f"Rally is not installed: no executable {_rally_path()} ({source}); "
            "`nox -s rally` installs it")


@dataclass
class TaskRun:
    """One Rally task: its id, Rally's JSON report, and what Rally printed."""

    uuid: str
    report: dict[str, Any]
    log: str
    returncode: int

    def workloads(self) -> list[dict[str, Any]]:
        return [w for task in self.report["tasks"] for sub in task["subtasks"]
                for w in sub["workloads"]]

    def iteration_errors(self) -> list[str]:
        """Every iteration's error, as Rally reports it (empty when all passed)."""
        errors = []
        for workload in self.workloads():
            for iteration in workload["data"]:
                if iteration["error"]:
                    errors.append(f"{workload['name']}: {' '.join(map(str, iteration['error']))}")
        return errors

    def logged_errors(self) -> list[str]:
        """Lines Rally logged at ERROR level (its cleanup logs failures there)."""
        return [line for line in self.log.splitlines() if re.search(r"\bERROR\b", line)]


class RallyEnv:
    """A Rally database and env in `folder`, for the simulator at `auth_url`."""

    def __init__(self, rally: Path, folder: Path, *, auth_url: str, region: str,
                 project: str, member: tuple[str, str], admin: tuple[str, str]) -> None:
        self.rally = rally
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "rally.conf"
        self.config.write_text(
            f"[database]\nconnection = sqlite:///{folder / 'rally.sqlite'}\n", encoding="utf-8")

        def user(name: str, password: str) -> dict[str, str]:
            return {"username": name, "password": password, "project_name": project,
                    "user_domain_name": "Default", "project_domain_name": "Default"}

        spec = {"openstack": {"auth_url": auth_url, "region_name": region,
                              "https_insecure": False, "admin": user(*admin),
                              "users": [user(*member)]}}
        spec_file = folder / "env.json"
        spec_file.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        self.run("db", "create")
        self.run("env", "create", "--name", "osbench-sim", "--spec", str(spec_file))

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["HOME"] = str(self.folder)  # ~/.rally: the default env and task
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(self.rally), "--config-file", str(self.config), *args],
                              cwd=self.folder, env=self._env(), capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"rally {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done

    def check(self) -> str:
        """`rally env check`: Rally's own view of the cloud's services and users."""
        done = self.run("env", "check", "--detailed")
        return done.stdout + done.stderr

    def run_task(self, task: dict[str, Any], name: str) -> TaskRun:
        """Start `task` (Rally's task format v2), wait for it, and read its results."""
        task_file = self.folder / f"{name}.json"
        task_file.write_text(json.dumps(task, indent=2), encoding="utf-8")
        started = self.run("task", "start", "--env", "osbench-sim", str(task_file), check=False)
        log = started.stdout + started.stderr
        found = _TASK_ID.search(log)
        if found is None:
            raise AssertionError(f"rally task start printed no task id (exit "
                                 f"{started.returncode}):\n{log[-4000:]}")
        report_file = self.folder / f"{name}-report.json"
        self.run("task", "report", "--json", "--out", str(report_file), found.group(1))
        report = json.loads(report_file.read_text(encoding="utf-8"))
        return TaskRun(found.group(1), report, log, started.returncode)


def boot_and_delete_task(*, times: int, concurrency: int, image: str, flavor: str,
                         network_id: str) -> dict[str, Any]:
    """NovaServers.boot_and_delete_server, `times` iterations at `concurrency`."""
    return _task("NovaServers.boot_and_delete_server",
                 {"image": {"name": image}, "flavor": {"name": flavor},
                  "nics": [{"net-id": network_id}]},
                 {"type": "constant", "times": times, "concurrency": concurrency})


def boot_and_delete_multiple_task(*, count: int, image: str, flavor: str,
                                  network_id: str) -> dict[str, Any]:
    """NovaServers.boot_and_delete_multiple_servers: one request for `count` servers."""
    return _task("NovaServers.boot_and_delete_multiple_servers",
                 {"image": {"name": image}, "flavor": {"name": flavor}, "count": count,
                  "nics": [{"net-id": network_id}]},
                 {"type": "constant", "times": 1, "concurrency": 1})


def _task(scenario: str, args: dict[str, Any], runner: dict[str, Any]) -> dict[str, Any]:
    return {"version": 2, "title": f"osbench: {scenario} on the simulated cloud",
            "subtasks": [{"title": scenario, "workloads": [{
                "scenario": {scenario: args}, "runner": {runner.pop("type"): runner},
                "sla": {"failure_rate": {"max": 0}}}]}]}
