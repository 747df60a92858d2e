"""Glance v2 subset: version discovery, image list (with `name`/`status`
filters and `limit`/`marker` paging via `next`) and image show.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from osbench.sim.server import CLOUD, ApiError, Route, query_int
from osbench.sim.state import Image

VERSION = "2.16"


async def versions(request: web.Request, now: float) -> web.Response:
    base = request.app[CLOUD].base_url
    return web.json_response({"versions": [{
        "id": f"v{VERSION}", "status": "CURRENT",
        "links": [{"rel": "self", "href": f"{base}/image/v2/"}],
    }]}, status=300)


def _body(request: web.Request, image: Image) -> dict[str, Any]:
    cloud = request.app[CLOUD]
    return {
        "id": image.id, "name": image.name, "status": "active", "visibility": "public",
        "protected": False, "os_hidden": False, "owner": cloud.project_id,
        "container_format": "bare", "disk_format": "qcow2", "size": image.size,
        "virtual_size": 117440512, "min_disk": 0, "min_ram": 0, "checksum": None,
        "os_hash_algo": "sha512", "os_hash_value": None, "tags": [],
        "created_at": image.created, "updated_at": image.created,
        "self": f"/v2/images/{image.id}", "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
    }


async def list_images(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    images = [_body(request, i) for i in cloud.images.values()]
    for key in ("name", "status", "visibility", "id"):
        if key in request.query:
            images = [i for i in images if str(i[key]) == request.query[key]]
    marker = request.query.get("marker")
    if marker is not None:
        ids = [i["id"] for i in images]
        if marker not in ids:
            raise ApiError(400, f"marker {marker} could not be found.")
        images = images[ids.index(marker) + 1:]
    limit = query_int(request, "limit", 25) or 25
    body: dict[str, Any] = {"images": images[:limit], "schema": "/v2/schemas/images",
                            "first": "/v2/images"}
    if len(images) > limit:
        body["next"] = f"/v2/images?marker={images[limit - 1]['id']}&limit={limit}"
    return web.json_response(body)


async def show_image(request: web.Request, now: float) -> web.Response:
    image = request.app[CLOUD].images.get(request.match_info["image_id"])
    if image is None:
        raise ApiError(404, f"No image found with ID {request.match_info['image_id']}")
    return web.json_response(_body(request, image))


ROUTES = [
    Route("GET", "/", versions, authenticated=False),
    Route("GET", "/v2/images", list_images),
    Route("GET", "/v2/images/{image_id}", show_image),
]
