"""The harness's own cloud calls as a monitor: the API's response time as a user sees it.

Not a sampler: every request the cloud client makes during the case (creates,
listings, console reads, deletes, retries included) becomes one `monitor` row
when its reply arrives, `t_s` being when it was sent:

    source "api", metric "api_latency_s", labels operation, status, request_id

`status` is 0 when no reply came (a connection failure or a timeout). The
request id is the cloud's (`x-openstack-request-id`), so a slow call can be
found in the services' logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osbench.monitors.sampler import Reading

if TYPE_CHECKING:
    from osbench.cloudclient import RequestRecord
    from osbench.monitors.session import MonitorSession

SOURCE = "api"
METRIC = "api_latency_s"


class ApiObserver:
    """Journals each request of the case's cloud client (attached by the session)."""

    def __init__(self, session: MonitorSession) -> None:
        self.session = session

    def __call__(self, request: RequestRecord) -> None:
        labels = {"operation": request.operation, "status": str(request.status),
                  "request_id": request.request_id or ""}
        t_s = request.sent - self.session.ctx.t0
        self.session.record(SOURCE, t_s, [Reading(METRIC, request.latency_s, labels)])
