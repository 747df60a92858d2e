"""Glance v2 subset: version discovery, image list (with `name`/`status`/
`visibility`/`id` filters, each also as `in:a,b`, and `limit`/`marker` paging
via `next`), image show, and the image and images JSON schemas
python-glanceclient fetches before it trusts any image body.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from osbench.sim.paging import next_href
from osbench.sim.server import CLOUD, ApiError, Route, query_int
from osbench.sim.state import Image

VERSION = "2.16"


async def versions(request: web.Request, now: float) -> web.Response:
    """The version list: 300 at the root, 200 at `/versions` (python-glanceclient's
    shell discovers the version there), as Glance answers."""
    base = request.app[CLOUD].base_url
    return web.json_response({"versions": [{
        "id": f"v{VERSION}", "status": "CURRENT",
        "links": [{"rel": "self", "href": f"{base}/image/v2/"}],
    }]}, status=200 if request.path.endswith("/versions") else 300)


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


def _wanted(value: str) -> set[str]:
    """The values a filter accepts: `in:a,b` (`openstack server list` asks for its
    Image column with `id=in:...`) or one value."""
    if value.startswith("in:"):
        return {v.strip('"') for v in value[3:].split(",")}
    return {value}


async def list_images(request: web.Request, now: float) -> web.Response:
    cloud = request.app[CLOUD]
    images = [_body(request, i) for i in cloud.images.values()]
    for key in ("name", "status", "visibility", "id"):
        if key in request.query:
            wanted = _wanted(request.query[key])
            images = [i for i in images if str(i[key]) in wanted]
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
        body["next"] = next_href(request, images[limit - 1]["id"], limit, "/v2/images")
    return web.json_response(body)


async def show_image(request: web.Request, now: float) -> web.Response:
    image = request.app[CLOUD].images.get(request.match_info["image_id"])
    if image is None:
        raise ApiError(404, f"No image found with ID {request.match_info['image_id']}")
    return web.json_response(_body(request, image))


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": ["null", kind], **extra}


#: Glance's image schema (glance/api/v2/images.py: get_schema), the properties the
#: simulator's bodies carry; extra properties are strings, as in Glance.
IMAGE_SCHEMA: dict[str, Any] = {
    "name": "image",
    "properties": {
        "id": {"type": "string", "description": "An identifier for the image",
               "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                          "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
        "name": _nullable("string", maxLength=255),
        "status": {"type": "string", "readOnly": True, "enum": [
            "queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]},
        "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "checksum": _nullable("string", readOnly=True, maxLength=32),
        "os_hash_algo": _nullable("string", readOnly=True, maxLength=64),
        "os_hash_value": _nullable("string", readOnly=True, maxLength=128),
        "owner": _nullable("string", maxLength=255),
        "size": _nullable("integer", readOnly=True),
        "virtual_size": _nullable("integer", readOnly=True),
        "container_format": _nullable("string", enum=[
            None, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]),
        "disk_format": _nullable("string", enum=[
            None, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
            "ploop"]),
        "created_at": {"type": "string", "readOnly": True},
        "updated_at": {"type": "string", "readOnly": True},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
        "direct_url": {"type": "string", "readOnly": True},
        "min_ram": {"type": "integer"},
        "min_disk": {"type": "integer"},
        "self": {"type": "string", "readOnly": True},
        "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
        "locations": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": {"type": "string"},
    "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
              {"rel": "describedby", "href": "{schema}"}],
}

IMAGES_SCHEMA: dict[str, Any] = {
    "name": "images",
    "properties": {"images": {"type": "array", "items": IMAGE_SCHEMA},
                   "schema": {"type": "string"}, "first": {"type": "string"},
                   "next": {"type": "string"}},
    "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
              {"rel": "describedby", "href": "{schema}"}],
}


async def image_schema(request: web.Request, now: float) -> web.Response:
    return web.json_response(IMAGE_SCHEMA)


async def images_schema(request: web.Request, now: float) -> web.Response:
    return web.json_response(IMAGES_SCHEMA)


ROUTES = [
    Route("GET", "/", versions, authenticated=False),
    Route("GET", "/versions", versions, authenticated=False),
    Route("GET", "/v2/schemas/image", image_schema),
    Route("GET", "/v2/schemas/images", images_schema),
    Route("GET", "/v2/images", list_images),
    Route("GET", "/v2/images/{image_id}", show_image),
]
