"""Images: list with filters, tag add/move (PATCH) and removal (DELETE), import (an image_import operation)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contree_tui.engine.http.context import api_path, engine_of, is_token_client
from contree_tui.engine.http.errors import ApiError
from contree_tui.engine.http.params import flag, int_param, json_object, path_uuid, time_param, uuid_value
from contree_tui.engine.http.serialize import image_json
from contree_tui.engine.image_sources import ARCHIVE_SCHEMES, ROOTFS_SCHEME
from contree_tui.engine.spawn_request import TAG_RE

LOCAL_SCHEMES = (*ARCHIVE_SCHEMES, ROOTFS_SCHEME)  # sources that are paths on the engine's host

MAX_TAG = 256


def valid_tag(tag: object, name: str = "tag") -> str:
    if not isinstance(tag, str) or not tag:
        raise ApiError(f"{name}: required, a string like busybox:latest")
    if len(tag) > MAX_TAG or not TAG_RE.match(tag):
        raise ApiError(f"{name}: {tag[:MAX_TAG]!r} is not a valid tag (letters, digits, _ and - with : / . "
                       f"separators, at most {MAX_TAG} characters)")
    return tag


async def list_images(request: Request) -> Response:
    # `kind`, contree-sdk's ImageKind (not in the spec): 1 = imported images (roots: imports, built-in
    # busybox), 0 = images made by instances; anything else is tolerated and ignored.
    kind = request.query_params.get("kind")
    tag = request.query_params.get("tag")
    uuid = request.query_params.get("uuid")
    images = engine_of(request).store.list_images(
        limit=int_param(request, "limit", 100, 1, 1000), offset=int_param(request, "offset", 0, 0),
        tagged=flag(request, "tagged"), tag_prefix=tag or None,
        uuid=uuid_value(uuid, "uuid") if uuid else None,
        since=time_param(request, "since"), until=time_param(request, "until"),
        roots={"1": True, "0": False}.get(kind or ""))
    # The spec's Image has one `tag`: an image with several is listed once per tag (contree-client folds the
    # rows by uuid), once untagged otherwise; with `tag=PREFIX`, only the tags that match.
    rows = []
    for image in images:
        tags = [t for t in image.tags if tag is None or t.startswith(tag)] or [None]
        rows += [{**image_json(image), "tag": t} for t in tags]
    return JSONResponse({"images": rows})


async def tag_image(request: Request) -> Response:
    image_uuid = path_uuid(request, "image_uuid", "image")
    body = await json_object(request)
    tag = valid_tag(body.get("tag"))
    image = engine_of(request).store.set_tag(image_uuid, tag)
    return JSONResponse({**image_json(image), "tag": tag})  # the one just set, not the image's first of several


async def untag_image(request: Request) -> Response:
    image_uuid = path_uuid(request, "image_uuid", "image")
    tag = request.query_params.get("tag")
    engine_of(request).store.remove_tags(image_uuid, tag or None)
    return Response(status_code=204)


async def import_image(request: Request) -> Response:
    """ImageImportRequest → 201 {"uuid"} + Location; the request is checked here (400), the import runs on."""
    body = await json_object(request)
    registry = body.get("registry")
    url = registry.get("url") if isinstance(registry, dict) else None
    if isinstance(url, str) and url.strip().startswith(LOCAL_SCHEMES) and is_token_client(request):
        raise ApiError("registry.url: host paths (oci:, oci-archive:, docker-archive:, rootfs:) are imported only "
                       "for clients of the engine's Unix socket; a client with the TCP token may use the engine, "
                       "not read the host's files through it", status=403)
    op = engine_of(request).import_image(body)
    return JSONResponse({"uuid": op.uuid}, status_code=201,
                        headers={"Location": api_path(request, f"/operations/{op.uuid}")})


routes = [
    Route("/v1/images", list_images, methods=["GET"]),
    Route("/v1/images/import", import_image, methods=["POST"]),
    Route("/v1/images/{image_uuid}/tag", tag_image, methods=["PATCH"]),
    Route("/v1/images/{image_uuid}/tag", untag_image, methods=["DELETE"]),
]
