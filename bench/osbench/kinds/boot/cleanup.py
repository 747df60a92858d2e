"""Deleting what a run created, and nothing else.

A server is deleted only when its name matches the run's prefix AND its
metadata names the run id: a name match alone (another tool, a person who
copied the prefix) is never enough.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from osbench.cloudclient import CloudClient, CloudTarget, open_cloud
from osbench.scenario import TargetSpec

if TYPE_CHECKING:
    from osbench.results import Run

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
    #: Names a create of unknown outcome may still add that never appeared
    #: before the wait for them ended: they may appear later.
    unaccounted: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.leftover_servers or self.leftover_ports or self.unaccounted)


def owned(server: dict[str, Any], run_id: str) -> bool:
    return (server.get("metadata") or {}).get(RUN_METADATA_KEY) == run_id


async def delete_run_servers(
    client: CloudClient,
    *,
    run_id: str,
    name_regex: str,
    network_ids: Iterable[str] = (),
    may_appear: Collection[str] = (),
    appear_until: float | None = None,
    concurrency: int = 20,
    poll_interval_s: float = 2.0,
    timeout_s: float = 900.0,
    dry_run: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> CleanupReport:
    """Delete the servers matching `name_regex` that carry the run's metadata
    (bounded concurrency) until none is listed, then remove ports they left on
    `network_ids`.

    `may_appear` names servers a create of unknown outcome may still add: the
    listing is repeated until each has been seen (and deleted) or the clock
    passes `appear_until`; those never seen are reported as `unaccounted`.
    """
    report = CleanupReport()
    gate = asyncio.Semaphore(concurrency)

    async def delete(server_id: str) -> None:
        async with gate:
            if await client.delete_server(server_id):
                report.deleted.append(server_id)

    waiting_for = set(may_appear)
    start = client.clock.monotonic()
    appear_until = start if appear_until is None else appear_until
    deadline = start + timeout_s
    ids: set[str] = set()
    foreign: set[str] = set()
    remaining: set[str] = set()
    look_for_new = True  # the first listing, and while a create may still add servers
    while True:
        listed = await client.list_servers(name_regex=name_regex, all_fields=look_for_new)
        fresh: list[str] = []
        if look_for_new:  # metadata is only in the detailed listing
            ours = [s for s in listed if owned(s, run_id)]
            foreign |= {s["id"] for s in listed if not owned(s, run_id)}
            waiting_for -= {s.get("name") for s in ours}
            fresh = [s["id"] for s in ours if s["id"] not in ids]
            ids.update(fresh)
            report.matched += fresh
        remaining = {s["id"] for s in listed} & ids
        if dry_run:
            break
        await asyncio.gather(*(delete(i) for i in fresh))
        if fresh and on_progress:
            on_progress(f"cleanup: delete requested for {len(fresh)} server(s)")
        now = client.clock.monotonic()  # one reading for both bounds
        look_for_new = bool(waiting_for) and now < appear_until
        if not remaining and not look_for_new:
            break
        if now > deadline:
            break
        if look_for_new and on_progress:
            on_progress(f"cleanup: waiting for {len(waiting_for)} server(s) a create of "
                        "unknown outcome may still add")
        await client.clock.sleep(poll_interval_s)
    report.skipped_foreign = sorted(foreign)
    report.leftover_servers = [] if dry_run else sorted(remaining)
    report.unaccounted = sorted(waiting_for)
    if dry_run:
        return report
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


async def cleanup_run(run: Run, cloud: str, *, dry_run: bool = False) -> list[CleanupReport]:
    """Delete (or, with `dry_run`, list) what a boot run left on `cloud`: servers named
    by the run's `resources` rows (else its name prefix) AND carrying its run id."""
    reports = []
    async with open_cloud(TargetSpec(cloud=cloud), seed=0) as target:
        assert isinstance(target, CloudTarget)
        for regex in _name_regexes(run):
            reports.append(await delete_run_servers(
                target.client, run_id=run.run_id, name_regex=regex,
                network_ids=_network_ids(run), dry_run=dry_run))
    return reports


def _name_regexes(run: Run) -> list[str]:
    resources = run.table("resources")
    if not resources.empty and "name_regex" in resources:
        return sorted(set(resources["name_regex"]))
    params: dict[str, Any] = run.manifest.get("scenario", {}).get("params", {})
    return [run_name_regex(params.get("name_prefix", "osbench"), run.run_id)]


def _network_ids(run: Run) -> list[str]:
    resources = run.table("resources")
    if resources.empty or "network_ids" not in resources:
        return []
    return sorted({n for ids in resources["network_ids"] for n in ids})
