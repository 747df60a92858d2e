"""What a benchmark comparing clients reads from the simulator: load and truth.

Two routes of the simulator's own (not OpenStack's, never counted), beside
`GET /osbench-sim/requests` (`osbench.sim.server`), so a benchmark driving a
served simulator (`osbench sim serve`) with any client (osbench, Rally,
openstacksdk) measures all of them the same way, at the cloud:

- `GET /osbench-sim/request-rate`: the requests served in each modelled
  second, per service and per route, so a benchmark finds the peak requests
  per second a client put on the cloud, in all or of one kind (its polls).
  Kept for the last `MAX_SECONDS` seconds only.
- `GET /osbench-sim/truth`: every server the cloud was asked for, with the
  model's true times (modelled seconds): when its create request arrived,
  when it became ACTIVE or ERROR, when it was deleted. A client's reported
  time to ACTIVE is then checked against `active_s - create_s`, whatever
  clock the client kept.

Like the request counts, neither needs a token: they are the simulator's
instruments, not a cloud's API, and tell nothing a client could misuse.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from osbench.sim.server import CLOUD

if TYPE_CHECKING:
    from osbench.sim.cloud import SimCloud

REQUEST_RATE_PATH = "/osbench-sim/request-rate"
TRUTH_PATH = "/osbench-sim/truth"
#: Seconds of per-second counts kept: 2 h of modelled time, a few routes each
#: second (~10-30 MB at worst), is longer than any benchmark run here (~15 min).
MAX_SECONDS = 2 * 3600


class RequestRate:
    """Requests per whole modelled second and (service, method, route template); the
    oldest seconds are dropped past MAX_SECONDS, so memory is bounded however long
    the simulator serves."""

    def __init__(self) -> None:
        self._seconds: OrderedDict[int, Counter[tuple[str, str, str]]] = OrderedDict()

    def count(self, key: tuple[str, str, str], now: float) -> None:
        second = int(now)
        counts = self._seconds.get(second)
        if counts is None:
            # A request counted at an instant read before another's: keep the order.
            late = bool(self._seconds) and second < next(reversed(self._seconds))
            counts = self._seconds[second] = Counter()
            if late:
                self._seconds = OrderedDict(sorted(self._seconds.items()))
            while len(self._seconds) > MAX_SECONDS:
                self._seconds.popitem(last=False)
        counts[key] += 1

    def rows(self) -> list[dict[str, Any]]:
        """One row per second that saw a request: `second`, `total`, the counts per
        service, and per route as "service METHOD template"."""
        rows = []
        for second, counts in self._seconds.items():
            services: Counter[str] = Counter()
            for (service, _, _), n in counts.items():
                services[service] += n
            rows.append({"second": second, "total": sum(counts.values()),
                         "services": dict(services),
                         "routes": {" ".join(key): n for key, n in sorted(counts.items())}})
        return rows


def truth_rows(cloud: SimCloud) -> list[dict[str, Any]]:
    """Each server asked for, in the order the model planned them, with its true times.

    The model plans each create request's instances in order (`model.creates`,
    `model.timelines`); a server's timeline object says which request it came from."""
    create_of: dict[int, float] = {}
    position = 0
    for create in cloud.model.creates:
        for timeline in cloud.model.timelines[position:position + create.count]:
            create_of[id(timeline)] = create.t0
        position += create.count
    rows = []
    for server in cloud.servers.values():
        tl = server.timeline
        rows.append({"id": server.id, "name": server.name,
                     "create_s": create_of.get(id(tl)), "visible_s": tl.visible_at,
                     "active_s": tl.active_at, "failed_s": tl.failed_at,
                     "deleted_s": server.deleted_at})
    return rows


async def _request_rate(request: web.Request) -> web.Response:
    cloud = request.app[CLOUD]
    return web.json_response({"time_scale": cloud.time_scale,
                              "seconds": cloud.request_rate.rows()})


async def _truth(request: web.Request) -> web.Response:
    cloud = request.app[CLOUD]
    return web.json_response({
        "time_scale": cloud.time_scale, "profile": cloud.profile.name, "seed": cloud.seed,
        "wall_origin": cloud.wall_origin.isoformat(), "now_s": cloud.now(),
        "servers": truth_rows(cloud)})


def add_routes(app: web.Application) -> None:
    """Serve this module's two routes on the simulator's application."""
    app.router.add_get(REQUEST_RATE_PATH, _request_rate)
    app.router.add_get(TRUTH_PATH, _truth)
