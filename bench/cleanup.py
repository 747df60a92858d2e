"""Deleting what a run created, and nothing else.

A server is deleted only when its name matches the run's prefix AND its
metadata names the run id: a name match alone (another tool, a person who
copied the prefix) is never enough.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.cloud import CloudClient

RUN_METADATA_KEY = "osbench_run"
CASE_METADATA_KEY = "osbench_case"


def run_tag(run_id: str) -> str:
    """The short, unique part of a run id used in server names (its random suffix)."""
    return run_id.rsplit("-", 1)[-1]


def run_name_regex(name_prefix: str, run_id: str) -> str:
    """Nova `name` filter (a regex) matching every server the run named."""
    return f"^{re.escape(name_prefix)}-{re.escape(run_tag(run_id))}-"


@dataclass
class CleanupReport:
    """What a cleanup found and did."""

    matched: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: Servers with the run's name prefix but not its metadata: left alone.
    skipped_foreign: list[str] = field(default_factory=list)
    leftover_servers: list[str] = field(default_factory=list)
    deleted_ports: list[str] = field(default_factory=list)
    leftover_ports: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.leftover_servers and not self.leftover_ports


def owned(server: dict[str, Any], run_id: str) -> bool:
    return (server.get("metadata") or {}).get(RUN_METADATA_KEY) == run_id


async def delete_run_servers(
    client: CloudClient,
    *,
    run_id: str,
    name_regex: str,
    network_ids: Iterable[str] = (),
    concurrency: int = 20,
    poll_interval_s: float = 2.0,
    timeout_s: float = 900.0,
    dry_run: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> CleanupReport:
    """Delete the servers matching `name_regex` that carry the run's metadata
    (bounded concurrency), wait until they are gone, then remove ports they
    left on `network_ids`."""
    report = CleanupReport()
    regex = name_regex
    servers = await client.list_servers(name_regex=regex)
    ours = [s for s in servers if owned(s, run_id)]
    report.skipped_foreign = [s["id"] for s in servers if not owned(s, run_id)]
    report.matched = [s["id"] for s in ours]
    if dry_run or not ours:
        return report
    gate = asyncio.Semaphore(concurrency)

    async def delete(server_id: str) -> None:
        async with gate:
            if await client.delete_server(server_id):
                report.deleted.append(server_id)

    await asyncio.gather(*(delete(s["id"]) for s in ours))
    if on_progress:
        on_progress(f"cleanup: delete requested for {len(report.deleted)} server(s)")
    ids = set(report.matched)
    deadline = client.clock.monotonic() + timeout_s
    remaining = ids
    while True:
        listed = await client.list_servers(name_regex=regex, all_fields=False)
        remaining = {s["id"] for s in listed} & ids
        if not remaining or client.clock.monotonic() > deadline:
            break
        await client.clock.sleep(poll_interval_s)
    report.leftover_servers = sorted(remaining)
    for network_id in network_ids:
        ports = await client.list_ports(network_id=network_id)
        for port in ports:
            # Nova deletes the ports it made; one still here belonged to a
            # deleted server of this run.
            gone = port.get("device_id") in ids and port["device_id"] not in remaining
            if gone and await client.delete_port(port["id"]):
                report.deleted_ports.append(port["id"])
        ports = await client.list_ports(network_id=network_id)
        report.leftover_ports += [p["id"] for p in ports if p.get("device_id") in ids]
    return report
