"""Runs the rootwrap probe: here in a worker thread, or on a host through the helper.

Here (no host, no namespace): `helper.measure` runs in a worker thread and
every sample is journaled the moment it is taken. On a host (an SSH host, a
lab host, or this machine inside a named namespace) the helper's source runs
there with that host's Python and oslo.rootwrap and returns every sample in
one JSON document, journaled when it arrives.

Both ways a ProbeFailure (denied command, missing wrapper, failing command)
becomes a HostError naming the host, the mode and the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.errors import HostError
from bench.hosts import Host
from bench.rootwrap import helper

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
                   host_name: str = "local") -> ProbeResult:
    """The probe on this machine, each call timed in a worker thread.

    `on_sample` runs on the event loop as each sample is taken. If the case
    is cancelled the thread stops before its next call and is waited for, so
    the cleanup never removes the namespace under a running command.
    """
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def from_thread(row: Sample) -> None:
        loop.call_soon_threadsafe(on_sample, row)

    def work() -> dict[str, Any]:
        return helper.measure(json.loads(spec.as_json()), from_thread, stop.is_set)

    future = loop.run_in_executor(None, work)
    try:
        out = await asyncio.shield(future)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(Exception):
            await future
        raise
    except helper.ProbeFailure as exc:
        raise _host_error(host_name, exc) from None
    await asyncio.sleep(0)  # let the last call_soon_threadsafe rows through
    return ProbeResult(out["startup"], out["reference"], out["mismatches"])


async def run_on_host(host: Host, spec: ProbeSpec, python: str,
                      on_sample: Callable[[Sample], None]) -> ProbeResult:
    """The probe on `host` through the helper, run by `python` there."""
    source = HELPER_SOURCE
    calls = (spec.samples + spec.warmup + 1) * len(spec.modes)
    result = await host.run([python, "-c", source, spec.as_json()],
                            timeout_s=60 + calls * spec.timeout_s, check=False)
    try:
        doc: Mapping[str, Any] = json.loads(result.stdout)
    except ValueError:
        tail = " ".join(result.stderr.split())[-400:]
        raise HostError(f"the rootwrap helper failed with exit status {result.exit_status}"
                        + (f": {tail}" if tail else ""), host=host.name,
                        command=f"{python} -c <osbench rootwrap helper>") from None
    if "error" in doc:
        err = doc["error"]
        raise _host_error(host.name, helper.ProbeFailure(err["mode"], err["command"],
                                                         err["message"]))
    for row in doc["samples"]:
        on_sample(row)
    return ProbeResult(doc["startup"], doc["reference"], doc["mismatches"])


async def has_sudo(host: Host) -> bool:
    """Whether `sudo` is on the host's PATH."""
    result = await host.run(["sh", "-c", "command -v sudo"], timeout_s=30, check=False)
    return result.exit_status == 0
