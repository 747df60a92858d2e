"""`osbench cleanup RUN`: delete what a killed run left on its cloud, and nothing else."""

from __future__ import annotations

import argparse

from osbench import api


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "cleanup", help="delete leftovers of a killed run",
        description="Delete the servers (and their ports) a run created, found by the run's "
        "name prefix AND its run-id metadata; nothing else is touched.")
    p.add_argument("run", metavar="RUN", help="the run's directory under results/")
    p.add_argument("--cloud", help="clouds.yaml entry (default: the cloud the run used)")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_ = api.load_run(args.run)
    done = api.cleanup_run(run_, cloud=args.cloud, dry_run=args.dry_run)
    if done.nothing_to_do:
        print(done.nothing_to_do)
        return 0
    reports, cloud = done.reports, done.cloud
    matched = sum(len(r.matched) for r in reports)
    foreign = sum(len(r.skipped_foreign) for r in reports)
    if args.dry_run:
        print(f"{run_.run_id} on {cloud}: would delete {matched} server(s)"
              + "".join(f"\n  {sid}" for r in reports for sid in r.matched))
        return 0
    left = done.left_over
    print(f"{run_.run_id} on {cloud}: deleted {sum(len(r.deleted) for r in reports)} "
          f"server(s), {sum(len(r.deleted_ports) for r in reports)} port(s); "
          f"{left} left over" + (f"; {foreign} server(s) with the prefix but not this run's "
                                 "metadata left alone" if foreign else ""))
    return 1 if left else 0
