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

from osbench.sim.server import CLOUD, query_int


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


def neutron_matches(item: dict[str, Any], request: web.Request, keys: tuple[str, ...]) -> bool:
    """Neutron's filters: each given key must match one of its values."""
    for key in keys:
        wanted = request.query.getall(key, [])
        if wanted and str(item.get(key)) not in wanted:
            return False
    return True


def neutron_page(request: web.Request, items: list[dict[str, Any]], key: str) -> web.Response:
    """A Neutron listing: from after `marker`, `limit` items, `fields=` applied, and a
    `{key}_links` next link while more remain."""
    limit = query_int(request, "limit")
    marker = request.query.get("marker")
    if marker is not None:
        ids = [i["id"] for i in items]
        items = items[ids.index(marker) + 1:] if marker in ids else []
    body: dict[str, Any] = {key: select_fields(request, items[:limit] if limit else items)}
    if limit and len(items) > limit:
        href = next_href(request, items[limit - 1]["id"], limit)
        body[f"{key}_links"] = [{"rel": "next", "href": href}]
    return web.json_response(body)
