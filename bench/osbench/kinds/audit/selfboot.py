"""The firewall check's own probe instances: one per hypervisor, booted for the
audit and deleted after it, so every hypervisor's enforcement is checked even
where no instance of the scope runs ("all on the same 5 hypervisors").

Each is placed with `availability_zone: nova:<host>` (admin only: the list of
hypervisors needs admin too), named `osbench-<run>-audit-<n>` and tagged with
the run id in its metadata. What may be deleted is journaled (`resources`)
before the first create, and the deletion is registered before it too, so a
crash or Ctrl-C still deletes them, and `osbench cleanup RUN` finds them: the
boot kind's cleanup, which deletes only servers with the run's name AND its id.
Nothing else on the cloud is touched: they use the groups the scenario names
(default: the project's `default`), and no group or rule is changed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from osbench.cloudclient import CloudClient
from osbench.errors import CloudError, CloudOutcomeUnknown, UserError
from osbench.kinds import CaseContext
from osbench.kinds.audit.params import BootProbes
from osbench.kinds.boot.cleanup import (
    CASE_METADATA_KEY,
    RUN_METADATA_KEY,
    delete_run_servers,
    run_name_regex,
    run_tag,
)

NAME_PREFIX = "osbench"
#: How long the cleanup looks for a server whose create had an unknown outcome.
APPEAR_WAIT_S = 60.0


def name_prefix(run_id: str) -> str:
    """Every probe instance's name starts with this (and only theirs: the run's tag)."""
    return f"{NAME_PREFIX}-{run_tag(run_id)}-audit-"


async def hypervisors(client: CloudClient) -> list[str]:
    """The compute hosts of the enabled, up hypervisors; UserError without admin rights.

    The host, not the hypervisor's name: `nova:<host>` names the compute service's
    host (what `OS-EXT-SRV-ATTR:host` shows), and libvirt's hypervisor_hostname is
    often the machine's FQDN where the service's host is its short name."""
    try:
        body = await client.get_json("compute", "/os-hypervisors/detail")
    except CloudError as exc:
        if exc.status_code == 403:
            raise UserError("params.firewall.boot needs admin rights (the hypervisors' list "
                            "and the placement on each)",
                            hint="use a clouds.yaml entry of an admin, or scope the audit to "
                                 "existing instances (project, name_prefix, tag)") from None
        raise
    return sorted(str((h.get("service") or {}).get("host") or h["hypervisor_hostname"])
                  for h in body.get("hypervisors", [])
                  if h.get("state", "up") == "up" and h.get("status", "enabled") == "enabled")


async def _ids(client: CloudClient, b: BootProbes,
               defaults: dict[str, Any]) -> tuple[str, str, str]:
    image = b.image or defaults.get("image")
    flavor = b.flavor or defaults.get("flavor")
    network = b.network or defaults.get("network")
    if not (image and flavor and network):
        raise UserError("params.firewall.boot: image, flavor and network must be set for a "
                        "real cloud", hint="name an image, flavor and network the probe "
                                           "instances can use")
    return ((await client.find_image(image))["id"], (await client.find_flavor(flavor))["id"],
            (await client.find_network(network))["id"])


async def boot(client: CloudClient, ctx: CaseContext, b: BootProbes,
               defaults: dict[str, Any]) -> str:
    """Boot one probe instance per hypervisor and wait for them (bounded); returns
    the name prefix that scopes them. Their deletion is registered first."""
    hosts = await hypervisors(client)
    if not hosts:
        raise UserError("params.firewall.boot: the cloud lists no enabled hypervisor")
    if len(hosts) > b.max_instances:
        raise UserError(f"params.firewall.boot: {len(hosts)} hypervisors, max_instances is "
                        f"{b.max_instances}", hint="raise max_instances to boot one per "
                                                   "hypervisor")
    image, flavor, network = await _ids(client, b, defaults)
    regex = run_name_regex(NAME_PREFIX, ctx.run_id)
    ctx.record("resources", {"name_regex": regex, "network_ids": [network]})

    #: Names whose create had an unknown outcome (a 504, a stop mid-POST): the cloud may
    #: still add them, so the cleanup waits a while for each (the boot kind's 60 s).
    unknown: list[str] = []

    async def delete() -> None:
        report = await delete_run_servers(
            client, run_id=ctx.run_id, name_regex=regex, network_ids=[network],
            may_appear=unknown, appear_until=client.clock.monotonic() + APPEAR_WAIT_S,
            timeout_s=b.timeout_s)
        ctx.record("boot_cleanup", {"deleted": len(report.deleted),
                                    "leftover": ",".join(report.leftover_servers)})

    ctx.add_cleanup(delete, f"delete the audit's {len(hosts)} probe instance(s)")
    prefix = name_prefix(ctx.run_id)
    groups = [{"name": g} for g in b.security_groups]
    asked: dict[str, str] = {}
    for i, host in enumerate(hosts):
        name = f"{prefix}{i:03d}"
        asked[name] = host
        try:
            await client.create_servers({
                "name": name, "imageRef": image, "flavorRef": flavor,
                "networks": [{"uuid": network}], "availability_zone": f"nova:{host}",
                "security_groups": groups, "min_count": 1, "max_count": 1,
                "metadata": {RUN_METADATA_KEY: ctx.run_id,
                             CASE_METADATA_KEY: ctx.case.case_id}})
        except (CloudOutcomeUnknown, asyncio.CancelledError):
            unknown.append(name)  # a 504, or stopped while the POST was out
            raise
        ctx.record("boot", {"name": name, "asked_host": host})
    await _wait(client, ctx, b, regex, asked)
    return prefix


async def _wait(client: CloudClient, ctx: CaseContext, b: BootProbes, regex: str,
                asked: dict[str, str]) -> None:
    """Until every probe instance is ACTIVE or ERROR, or `timeout_s` passed."""
    count = len(asked)
    deadline = ctx.clock.monotonic() + b.timeout_s
    while True:
        servers = await client.list_servers(name_regex=regex)
        done = [s for s in servers if s.get("status") in ("ACTIVE", "ERROR")]
        ctx.progress(booted=len(done), of=count)
        if len(done) == count or ctx.clock.monotonic() > deadline:
            break
        await ctx.clock.sleep(b.poll_interval_s)
    misplaced = []
    for server in servers:
        landed = server.get("OS-EXT-SRV-ATTR:host")
        wanted = asked.get(str(server.get("name")))
        ctx.record("boot_result", {"name": server.get("name"), "id": server.get("id"),
                                   "status": server.get("status"), "asked_host": wanted,
                                   "landed_host": landed})
        if landed and wanted and landed != wanted:
            misplaced.append(f"{server.get('name')} asked {wanted}, on {landed}")
    if misplaced:
        ctx.record("audit_notes", {"check": "firewall", "level": "warning", "message":
                                   f"{len(misplaced)} probe instance(s) not on the hypervisor "
                                   "asked for (the cloud ignored the placement): "
                                   + "; ".join(misplaced[:5])})
    late = count - len(done)
    if late:
        ctx.record("audit_notes", {"check": "firewall", "level": "warning", "message":
                                   f"{late} probe instance(s) not ACTIVE or ERROR after "
                                   f"{b.timeout_s:g} s: not probed"})
