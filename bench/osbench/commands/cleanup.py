"""`osbench cleanup RUN`: delete what a killed run left on its cloud, and nothing else."""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import Any

from osbench import results
from osbench.cleanup import CleanupReport, delete_run_servers, run_tag
from osbench.cloud import open_cloud
from osbench.errors import UserError
from osbench.scenario import TargetSpec


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "cleanup", help="delete leftovers of a killed run",
        description="Delete the servers (and their ports) a run created, found by the run's "
        "name prefix AND its run-id metadata; nothing else is touched.")
    p.add_argument("run", metavar="RUN", help="the run's directory under results/")
    p.add_argument("--cloud", help="clouds.yaml entry (default: the cloud the run used)")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    p.set_defaults(func=run)


def _cloud_of(run: results.Run, override: str | None) -> str | None:
    if override:
        return override
    for target in run.manifest.get("targets", []):
        if target.get("type") == "cloud":
            return str(target["cloud"])
    return None


def _name_regexes(run: results.Run) -> list[str]:
    resources = run.table("resources")
    if not resources.empty and "name_regex" in resources:
        return sorted(set(resources["name_regex"]))
    params: dict[str, Any] = run.manifest.get("scenario", {}).get("params", {})
    prefix = params.get("name_prefix", "osbench")
    return [f"^{re.escape(prefix)}-{re.escape(run_tag(run.run_id))}-"]


def _network_ids(run: results.Run) -> list[str]:
    resources = run.table("resources")
    if resources.empty or "network_ids" not in resources:
        return []
    return sorted({n for ids in resources["network_ids"] for n in ids})


async def _cleanup(run: results.Run, cloud: str, dry_run: bool) -> list[CleanupReport]:
    reports = []
    async with open_cloud(TargetSpec(cloud=cloud), seed=0) as target:
        client = target.client  # type: ignore[attr-defined]
        for regex in _name_regexes(run):
            reports.append(await delete_run_servers(
                client, run_id=run.run_id, name_regex=regex,
                network_ids=_network_ids(run), dry_run=dry_run))
    return reports


def run(args: argparse.Namespace) -> int:
    run_ = results.load(args.run)
    if run_.manifest.get("scenario", {}).get("kind") != "boot":
        print(f"{run_.run_id}: a {run_.manifest.get('scenario', {}).get('kind')} run creates "
              "nothing on a cloud; nothing to clean")
        return 0
    cloud = _cloud_of(run_, args.cloud)
    if cloud is None:
        if any(t.get("simulated") for t in run_.manifest.get("targets", [])):
            print(f"{run_.run_id} ran on the embedded simulated cloud, which ended with it: "
                  "nothing can be left")
            return 0
        raise UserError(f"{args.run}: the manifest names no cloud", hint="pass --cloud NAME")
    reports = asyncio.run(_cleanup(run_, cloud, args.dry_run))
    matched = sum(len(r.matched) for r in reports)
    foreign = sum(len(r.skipped_foreign) for r in reports)
    if args.dry_run:
        print(f"{run_.run_id} on {cloud}: would delete {matched} server(s)"
              + "".join(f"\n  {sid}" for r in reports for sid in r.matched))
        return 0
    left = sum(len(r.leftover_servers) + len(r.leftover_ports) for r in reports)
    print(f"{run_.run_id} on {cloud}: deleted {sum(len(r.deleted) for r in reports)} "
          f"server(s), {sum(len(r.deleted_ports) for r in reports)} port(s); "
          f"{left} left over" + (f"; {foreign} server(s) with the prefix but not this run's "
                                 "metadata left alone" if foreign else ""))
    return 1 if left else 0
