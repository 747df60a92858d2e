"""List paging and field selection shared by the simulated services.

A `next` link repeats the request's query as it came, every repeated
parameter included (`status=ACTIVE&status=BUILD`), with only `marker` and
`limit` replaced: a client following it must get the rest of the same
listing. Neutron's `fields=` keeps only the named keys of each item.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDict
from yarl import URL

from osbench.sim.server import CLOUD


def next_href(request: web.Request, marker: str, limit: int, path: str | None = None) -> str:
    """The URL of the page after `marker`: the request's query, repeats kept.
    With `path` (Glance's `next` is relative to its endpoint) only that path
    and the query."""
    query: MultiDict[str] = MultiDict(
        (k, v) for k, v in request.query.items() if k not in ("marker", "limit"))
    query.add("limit", str(limit))
    query.add("marker", marker)
    url = URL(path) if path is not None else URL(request.app[CLOUD].base_url + request.path)
    return str(url.with_query(query))


def select_fields(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutron's `fields=a&fields=b` (or `fields=a,b`): only those keys of each item."""
    wanted = [name for value in request.query.getall("fields", []) for name in value.split(",")
              if name]
    if not wanted:
        return items
    return [{k: v for k, v in item.items() if k in wanted} for item in items]
