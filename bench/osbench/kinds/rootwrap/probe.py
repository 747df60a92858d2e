"""Runs the rootwrap probe: here in a worker thread, or on a host through the helper.

Here (no host, no namespace): the helper runs as a child process of
osbench's Python and every sample is journaled the moment it is taken. On a
host (an SSH host, a lab host, or this machine inside a named namespace) the
helper's source runs there with that host's Python and oslo.rootwrap, and its
samples are journaled when it ends.

Both ways a ProbeFailure (denied command, missing wrapper, failing command)
becomes a HostError naming the host, the mode and the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from osbench.errors import HostError
from osbench.hosts import Host
from osbench.kinds.rootwrap import helper

#: The DHCP agent's call, once per port (field notes, finding 4).
DEFAULT_COMMAND = ("ip", "netns", "exec", "{netns}", "ip", "route", "list")

#: The port the probe gives a namespace it creates, so `ip route list` prints a
#: real route (as in a DHCP namespace with its tap port) rather than nothing.
#: 198.18.0.0/15 is the benchmarking range; it exists only inside the namespace.
PORT_DEVICE = "tap0"
PEER_DEVICE = "tap0p"
PORT_ADDRESS = "198.18.250.1/24"

Sample = dict[str, Any]

#: What runs on a host: the helper module's own source (stdlib + oslo.rootwrap).
HELPER_SOURCE = Path(helper.__file__).read_text()


@dataclass(frozen=True)
class ProbeSpec:
    """What the helper needs: modes, the command (already formatted), configuration."""

    modes: tuple[str, ...]
    command: tuple[str, ...]
    samples: int
    warmup: int
    timeout_s: float
    conf: str | None = None
    #: Let the helper write its own configuration on the host (and remove it).
    generate_conf: bool = False
    wrapper: str | None = None
    daemon_wrapper: str | None = None

    def as_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class ProbeResult:
    """Per mode the first call (daemon: includes its start-up), the reference
    output every call was compared with, and the calls whose output differed."""

    startup: list[dict[str, Any]]
    reference: str | None
    mismatches: list[dict[str, Any]]


def qdhcp_name() -> str:
    """A fresh DHCP-agent style namespace name, `qdhcp-<uuid>`."""
    return f"qdhcp-{uuid.uuid4()}"


def format_command(command: tuple[str, ...], netns: str) -> tuple[str, ...]:
    """`command` (default: the DHCP agent's call) with `{netns}` replaced."""
    return tuple(part.replace("{netns}", netns) for part in (command or DEFAULT_COMMAND))


async def add_namespace(host: Host, name: str) -> None:
    """`ip netns add NAME` (then `add_port`, once its removal is arranged)."""
    await host.run(["ip", "netns", "add", name], timeout_s=30)


async def add_port(host: Host, name: str) -> None:
    """Give namespace `name` one up port with an address, so it has a route.

    A veth pair with both ends inside (the `dummy` module is missing from
    many kernels, containers' included)."""
    for argv in (["link", "set", "lo", "up"],
                 ["link", "add", PORT_DEVICE, "type", "veth", "peer", "name", PEER_DEVICE],
                 ["addr", "add", PORT_ADDRESS, "dev", PORT_DEVICE],
                 ["link", "set", PEER_DEVICE, "up"],
                 ["link", "set", PORT_DEVICE, "up"]):
        await host.run(["ip", "-n", name, *argv], timeout_s=30)


async def remove_namespace(host: Host, name: str) -> None:
    await host.run(["ip", "netns", "delete", name], timeout_s=30)


def _host_error(host: str, failure: helper.ProbeFailure) -> HostError:
    return HostError(f"mode {failure.mode}: {failure.message}", host=host,
                     command=" ".join(failure.command))


async def run_here(spec: ProbeSpec, on_sample: Callable[[Sample], None], *,
                   host_name: str = "local", python: str | None = None) -> ProbeResult:
    """The probe on this machine: the helper as a child process of osbench's
    Python, its samples journaled line by line as they are taken.

    If the case is cancelled the helper gets SIGTERM and is waited for (it
    stops its daemon), so the cleanup never removes the namespace under a
    running command.
    """
    argv = [python or sys.executable, "-c", HELPER_SOURCE, spec.as_json()]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    stderr_task = asyncio.ensure_future(proc.stderr.read())
    last: dict[str, Any] | None = None
    try:
        async for line in proc.stdout:
            last = _line(line, on_sample) or last
        await proc.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 15)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        stderr_task.cancel()
        raise
    stderr = (await stderr_task).decode(errors="replace")
    return _outcome(host_name, last, proc.returncode or 0, stderr, argv[0])


async def run_on_host(host: Host, spec: ProbeSpec, python: str,
                      on_sample: Callable[[Sample], None]) -> ProbeResult:
    """The probe on `host` through the helper, run by `python` there; the
    samples arrive together when it ends (a host's command is not streamed)."""
    calls = (spec.samples + spec.warmup + 1) * len(spec.modes)
    result = await host.run([python, "-c", HELPER_SOURCE, spec.as_json()],
                            timeout_s=60 + calls * spec.timeout_s, check=False)
    last: dict[str, Any] | None = None
    for line in result.stdout.splitlines():
        last = _line(line.encode(), on_sample) or last
    return _outcome(host.name, last, result.exit_status, result.stderr, python)


def _line(line: bytes, on_sample: Callable[[Sample], None]) -> dict[str, Any] | None:
    """Hand a sample line to `on_sample`; return a final (done/error) line."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if "sample" in doc:
        on_sample(doc["sample"])
        return None
    return doc


def _outcome(host: str, last: Mapping[str, Any] | None, exit_status: int, stderr: str,
             python: str) -> ProbeResult:
    if last is not None and "error" in last:
        err = last["error"]
        raise _host_error(host, helper.ProbeFailure(err["mode"], err["command"],
                                                    err["message"]))
    if last is None or "done" not in last:
        tail = " ".join(stderr.split())[-400:]
        raise HostError(f"the rootwrap helper failed with exit status {exit_status}"
                        + (f": {tail}" if tail else ""), host=host,
                        command=f"{python} -c <osbench rootwrap helper>")
    done = last["done"]
    return ProbeResult(done["startup"], done["reference"], done["mismatches"])


async def has_sudo(host: Host) -> bool:
    """Whether `sudo` is on the host's PATH."""
    result = await host.run(["sh", "-c", "command -v sudo"], timeout_s=30, check=False)
    return result.exit_status == 0
