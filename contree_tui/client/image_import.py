"""Image imports through the client layer: start one with contree-client's import call, then fold the
operation's events into what a progress bar shows (the CLI's line, the TUI's operations table).

An import reports itself on spid 0 (the engine's shared contract, issue #11): `import_progress`
{phase, layer, layers, digest, done, total, bytes_done, bytes_total}, at most 10 a second plus one at each
phase change; `import_log` {message} human lines; then `completion`. A hosted Contree sends none of the
first two: the fold then knows only the status, and a bar shows no fraction.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from contree_client.models import (
    EventDataCompletion,
    ImageImportRegistry,
    ImageImportRegistryCredentials,
    OperationEvent,
    OperationStatus,
)
from contree_client.operations import build_import_image, parse_import_image

from contree_tui.client.connection import Connection
from contree_tui.client.lineage import Lineage
from contree_tui.client.operations import EventCursor, follow_events
from contree_tui.client.records import ImageRecord

PHASES = ("resolve", "download", "extract", "reuse", "commit")
# The offline schemes name a path on this machine: PATH[:REF] split at the first `:` (as skopeo and the engine
# split them), rootfs: the whole rest.
PATH_SCHEMES = ("docker-archive:", "oci-archive:", "oci:")
ROOTFS_SCHEME = "rootfs:"


def absolute_source(ref: str, cwd: str | None = None) -> str:
    """`ref` with an offline source's relative path (or `~`) made absolute against `cwd` (this process's by
    default), as the shell that typed it meant it: the engine runs in its own directory and takes absolute
    paths only. Registry references come back unchanged."""
    if ref.startswith(ROOTFS_SCHEME):
        scheme, path, rest = ROOTFS_SCHEME, ref[len(ROOTFS_SCHEME):], ""
    else:
        scheme = next((s for s in PATH_SCHEMES if ref.startswith(s)), None)
        if scheme is None:
            return ref
        path, colon, ref_part = ref[len(scheme):].partition(":")
        rest = colon + ref_part
    expanded = os.path.expanduser(path)
    if not path or os.path.isabs(path):
        return ref  # nothing to resolve (an empty path: the engine says what is missing)
    if not os.path.isabs(expanded):
        expanded = os.path.normpath(os.path.join(cwd or os.getcwd(), expanded))
    return f"{scheme}{expanded}{rest}"


@dataclass(frozen=True)
class ImportSpec:
    ref: str  # docker://…, name[:tag], or our offline schemes (oci:DIR[:REF], docker-archive:PATH, …)
    tag: str | None = None  # omitted: the image is private, reachable by its uuid only (the spec)
    insecure: bool = False  # plain HTTP to a registry that is not on loopback (our engine's extension)
    username: str | None = None
    password: str | None = None
    timeout: int | None = None  # seconds; None: the server's default (300 in the spec)

    def registry(self) -> ImageImportRegistry:
        if self.username is None:
            return ImageImportRegistry(url=self.ref)
        credentials = ImageImportRegistryCredentials(username=self.username, password=self.password or "")
        return ImageImportRegistry(url=self.ref, credentials=credentials)


async def start_import(connection: Connection, spec: ImportSpec) -> str:
    """POST /images/import; the operation's uuid. Not retried once sent (an import is not idempotent).
    An offline source's relative path is made absolute first (absolute_source)."""
    client = connection.client
    spec = replace(spec, ref=absolute_source(spec.ref))
    tag = spec.tag if spec.tag else ...
    timeout = spec.timeout if spec.timeout is not None else ...
    if not spec.insecure:
        return str(await connection.call(lambda: client.import_image(spec.registry(), tag=tag, timeout=timeout),
                                         idempotent=False))
    # `registry.insecure` is not in the spec's model: the same request as contree-client builds it, plus it.
    request = build_import_image(spec.registry(), tag=tag, timeout=timeout)
    assert isinstance(request.body, bytes)  # build_import_image serialises the payload itself
    body = json.loads(request.body)
    body["registry"]["insecure"] = True
    request = dataclasses.replace(request, body=json.dumps(body).encode())

    async def post() -> str:
        return parse_import_image(await client.call(request))

    return await connection.call(post, idempotent=False)


@dataclass
class ImportProgress:
    """An import as its events tell it so far."""

    phase: str | None = None
    layer: int | None = None  # 0-based, of `layers`
    layers: int = 0
    done: int = 0  # bytes of the current layer
    total: int = -1  # -1: unknown
    bytes_done: int = 0  # of every layer to fetch (reused ones are not counted)
    bytes_total: int = 0
    status: OperationStatus | None = None  # set by `completion`
    image: str | None = None
    error: str | None = None
    messages: list[str] = field(default_factory=list)
    extracted: dict[int, int] = field(default_factory=dict)  # layer -> its blob's bytes extracted so far

    @property
    def fraction(self) -> float | None:
        """How far the work on the layers to fetch is, 0..1: each is downloaded, then extracted from its blob
        (the engine reports both in the blob's bytes), so the two count alike. A bar of downloads alone sat
        at 100% through a long extraction. None while unknown (or nothing is fetched: all reused)."""
        if self.bytes_total <= 0:
            return None
        work = self.bytes_done + sum(self.extracted.values())
        return min(1.0, max(0.0, work / (2 * self.bytes_total)))

    @property
    def step(self) -> str:
        """What it is doing: `download 2/5`, `commit`, or '' before the first event."""
        if self.phase is None:
            return ""
        if self.layer is not None and self.layers:
            return f"{self.phase} {self.layer + 1}/{self.layers}"
        return self.phase

    def observe(self, event: OperationEvent) -> str | None:
        """Fold one event in; returns the human line an `import_log` event carries, else None."""
        data: Any = event.data
        if event.type == "import_progress" and isinstance(data, dict):
            phase = data.get("phase")
            self.phase = phase if isinstance(phase, str) else self.phase
            layer = data.get("layer")
            self.layer = layer if isinstance(layer, int) and not isinstance(layer, bool) else None
            for name in ("layers", "done", "total", "bytes_done", "bytes_total"):
                value = data.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    setattr(self, name, value)
            if self.phase == "extract" and self.layer is not None and self.total > 0:
                self.extracted[self.layer] = max(self.extracted.get(self.layer, 0), min(self.done, self.total))
        elif event.type == "import_log" and isinstance(data, dict) and isinstance(data.get("message"), str):
            message = " ".join(str(data["message"]).split())  # one line, whatever the server sent
            self.messages.append(message)
            return message
        elif event.type == "completion" and isinstance(data, EventDataCompletion):
            self.status = OperationStatus(data.status)
            result = data.result_image_uuid
            self.image = result.lower() if isinstance(result, str) and result else None
            self.error = data.error if isinstance(data.error, str) and data.error else None
            if self.status is OperationStatus.SUCCESS and self.bytes_total > 0:
                self.bytes_done = self.bytes_total
                self.extracted = {-1: self.bytes_total}
        return None


@dataclass(frozen=True)
class ImportResult:
    operation: str
    status: OperationStatus
    image: str | None
    tag: str | None
    error: str | None
    duration: float | None = None  # seconds, as the server measured it

    @property
    def succeeded(self) -> bool:
        return self.status is OperationStatus.SUCCESS

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "status": self.status.value, "image": self.image, "tag": self.tag,
                "error": self.error}


ProgressSink = Callable[[ImportProgress, str | None], None]


async def follow_import(connection: Connection, operation: str, on_change: ProgressSink | None = None,
                        progress: ImportProgress | None = None, cursor: EventCursor | None = None) -> ImportResult:
    """Follow the import's events to its end (a broken stream resumes where it stopped), calling
    `on_change(progress, log_line)` after each; then its final status, image and tag from the server, which
    has the last word: a stream that ended without a `completion` (the engine restarted and its recovery's
    event was not the next one) still ends in the operation's real state. `cursor`: resume after its event."""
    progress = progress or ImportProgress()
    async for event in follow_events(connection, operation, cursor=cursor if cursor is not None else EventCursor()):
        line = progress.observe(event)
        if on_change is not None:
            on_change(progress, line)
    response = await connection.call(lambda: connection.client.get_operation_status(operation))
    status = OperationStatus(response.status)
    result = response.result if response.result is not None and response.result is not ... else None
    image = getattr(result, "image", None) or response.result_image_uuid or progress.image
    tag = getattr(result, "tag", None)
    error = response.error if isinstance(response.error, str) and response.error else progress.error
    duration = response.duration if isinstance(response.duration, int | float) else None
    return ImportResult(operation, status, image if isinstance(image, str) else None,
                        tag if isinstance(tag, str) else None, error, duration)


async def learn_imported(connection: Connection, lineage: Lineage, result: ImportResult) -> ImageRecord:
    """Put an import's image into the lineage as the server has it now, with the import's tag. An incremental
    refresh would miss both cases an import makes often: the same manifest again (the old image, no new
    one) and a tag that moved to it (it leaves the image that had it). The wire's Image carries one `tag`:
    an image tagged twice shows only one there, so the import's own tag is added here."""
    assert result.image is not None
    image = result.image
    found = await connection.call(lambda: connection.client.inspect_image(image))
    record = lineage.learn_image(found)
    tags = tuple(dict.fromkeys((*record.tags, *([result.tag] if result.tag else []))))
    lineage.set_tags(record.uuid, tags)
    return replace(record, tags=tags)
