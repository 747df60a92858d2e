"""NIC channel (queue) settings: read with `ethtool -l`, set with `ethtool -L`,
verified by reading back, and always restored.

Drivers differ: virtio-net exposes `combined` channels; veth exposes `rx` and
`tx` separately (and no combined). `mode="auto"` uses combined when the
driver has a combined maximum, else rx and tx together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from osbench.errors import HostError

ChannelMode = Literal["auto", "combined", "rxtx"]

_FIELD = re.compile(r"^(RX|TX|Other|Combined):\s*(\S+)", re.MULTILINE)


class CommandRunner(Protocol):
    """What this module needs of a host (osbench.hosts.Host has it)."""

    name: str

    async def run(self, argv: list[str], *, timeout_s: float = ...,
                  check: bool = ...) -> _Result: ...


class _Result(Protocol):
    stdout: str


@dataclass(frozen=True)
class Channels:
    """One side of `ethtool -l`: None where the driver says n/a."""

    rx: int | None
    tx: int | None
    other: int | None
    combined: int | None

    def as_dict(self) -> dict[str, int | None]:
        return {"rx": self.rx, "tx": self.tx, "other": self.other, "combined": self.combined}


@dataclass(frozen=True)
class ChannelInfo:
    """`ethtool -l DEV`: the maxima and the current settings."""

    maximum: Channels
    current: Channels

    def mode(self, wanted: ChannelMode) -> Literal["combined", "rxtx"]:
        """The mode `wanted` resolves to on this driver."""
        if wanted != "auto":
            return wanted
        return "combined" if self.maximum.combined else "rxtx"

    def queues(self, mode: Literal["combined", "rxtx"]) -> int | None:
        """The queue count in use, as `mode` counts it (rx == tx for rxtx)."""
        if mode == "combined":
            return self.current.combined
        return self.current.rx if self.current.rx == self.current.tx else None


def parse_ethtool_l(text: str) -> ChannelInfo:
    """Parse `ethtool -l` output; ValueError if the two sections are not there."""
    parts = re.split(r"^Current hardware settings:\s*$", text, flags=re.MULTILINE)
    if len(parts) != 2 or "Pre-set maximums:" not in parts[0]:
        raise ValueError(f"not `ethtool -l` output: {text[:120]!r}")

    def side(chunk: str) -> Channels:
        values = {k.lower(): (None if v == "n/a" else int(v)) for k, v in _FIELD.findall(chunk)}
        return Channels(rx=values.get("rx"), tx=values.get("tx"), other=values.get("other"),
                        combined=values.get("combined"))

    return ChannelInfo(maximum=side(parts[0]), current=side(parts[1]))


async def read(host: CommandRunner, interface: str) -> ChannelInfo:
    result = await host.run(["ethtool", "-l", interface], timeout_s=15)
    try:
        return parse_ethtool_l(result.stdout)
    except ValueError as exc:
        raise HostError(str(exc), host=host.name, command=f"ethtool -l {interface}") from None


def set_argv(interface: str, mode: Literal["combined", "rxtx"], queues: int) -> list[str]:
    if mode == "combined":
        return ["ethtool", "-L", interface, "combined", str(queues)]
    return ["ethtool", "-L", interface, "rx", str(queues), "tx", str(queues)]


def restore_argv(interface: str, original: Channels) -> list[str]:
    """`ethtool -L` that puts back every channel count the driver reported."""
    argv = ["ethtool", "-L", interface]
    for key, value in original.as_dict().items():
        if value is not None:
            argv += [key, str(value)]
    return argv


async def set_queues(host: CommandRunner, interface: str, mode: ChannelMode,
                     queues: int) -> ChannelInfo:
    """Set `queues` channels and verify by reading back."""
    before = await read(host, interface)
    resolved = before.mode(mode)
    limit = before.maximum.combined if resolved == "combined" else min(
        before.maximum.rx or 0, before.maximum.tx or 0)
    if not limit or queues > limit:
        raise HostError(f"{interface} supports at most {limit or 0} {resolved} channel(s); "
                        f"{queues} requested", host=host.name,
                        command=f"ethtool -l {interface}")
    if before.queues(resolved) != queues:
        await host.run(set_argv(interface, resolved, queues), timeout_s=30)
    after = await read(host, interface)
    if after.queues(resolved) != queues:
        raise HostError(f"{interface}: asked for {queues} {resolved} channel(s), the driver "
                        f"reports {after.current.as_dict()}", host=host.name,
                        command=" ".join(set_argv(interface, resolved, queues)))
    return after


async def restore(host: CommandRunner, interface: str, original: Channels) -> Channels:
    """Put `original` back and verify; returns what is read back."""
    now = await read(host, interface)
    if now.current != original:
        await host.run(restore_argv(interface, original), timeout_s=30)
        now = await read(host, interface)
    if now.current != original:
        raise HostError(f"{interface}: could not restore channels {original.as_dict()}; "
                        f"now {now.current.as_dict()}", host=host.name,
                        command=" ".join(restore_argv(interface, original)))
    return now.current
