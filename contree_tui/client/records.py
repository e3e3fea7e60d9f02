"""Images and operations as the client layer hands them out: frozen records built from contree-client's models.

The wire models have every field optional (`...` for "not sent"); these records settle each field once
(None when unknown), parse timestamps, and add what the API does not carry but the tree needs: an image's
parent and children (derived in lineage.py) and an operation's exit code and command (only in a full
`GET /operations/{id}`, so they are None until that has been read once; a terminal operation never changes,
so once read they are cached for good).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import EllipsisType
from typing import Any, TypeVar

from contree_client.models import (
    Image,
    ImageImportMetadata,
    OperationInstanceMetadata,
    OperationResponse,
    OperationStatus,
    OperationSummary,
    parse_datetime,
)

from contree_tui.client.command_line import command_line
from contree_tui.client.step_label import label_of

T = TypeVar("T")

EPOCH = datetime.fromtimestamp(0, UTC)
IMPORT_KIND = "image_import"  # an operation's kind when it imports an image (the other: "instance")
TIMED_OUT_EXIT = 124  # what coreutils' timeout(1) exits with when it killed the command


def known(value: T | EllipsisType) -> T | None:
    """A wire field's value, None when the server did not send it."""
    return None if value is Ellipsis else value  # type: ignore[return-value]


def parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            moment = parse_datetime(value)
        except ValueError:
            return EPOCH
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return EPOCH


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An image (a snapshot). `parent` is the source image of the operation that made it; None for imports,
    public images and images whose producing operation is unknown. `children` are the images made by runs
    on this one (a run that changed nothing makes no child)."""

    uuid: str
    tags: tuple[str, ...]
    created_at: datetime
    operation_uuid: str | None
    parent: str | None = None
    children: tuple[str, ...] = ()

    @classmethod
    def from_wire(cls, image: Image) -> ImageRecord:
        tag = known(image.tag)
        return cls(uuid=str(image.uuid).lower(), tags=(tag,) if tag else (),
                   created_at=parse_time(known(image.created_at)), operation_uuid=_lower(known(image.operation_uuid)))

    @property
    def short(self) -> str:
        return self.uuid[:8]

    def label(self) -> str:
        """How a listing names it: its tags, else its short uuid."""
        return ", ".join(self.tags) if self.tags else self.short

    def to_json(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "tags": list(self.tags), "created_at": self.created_at.isoformat(),
                "operation": self.operation_uuid, "parent": self.parent, "children": list(self.children)}


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """An operation: a run (`instance`) or an import. `image_uuid` is the source image (None for imports),
    `result_image_uuid` the image it left (equal to the source when the run changed nothing, None for
    disposable runs and failures). `exit_code` is the main process's (-1 killed by a signal, None unknown)."""

    uuid: str
    kind: str
    status: OperationStatus
    created_at: datetime
    error: str | None = None
    duration: float | None = None  # seconds
    image_uuid: str | None = None
    result_image_uuid: str | None = None
    image_size: int | None = None  # bytes written for the result layer
    cpu_seconds: float | None = None
    memory: int | None = None  # peak max_rss, in the server's getrusage units
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool | None = None
    command: str | None = None
    detailed: bool = False  # exit code, signal and command come from a full GET (or the event log)

    @classmethod
    def from_summary(cls, op: OperationSummary | OperationResponse) -> OperationRecord:
        status = known(op.status)
        return cls(
            uuid=str(op.uuid).lower(), kind=str(known(op.kind) or "instance"),
            status=OperationStatus(status) if status is not None else OperationStatus.PENDING,
            created_at=parse_time(known(op.created_at)), error=known(op.error), duration=known(op.duration),
            image_uuid=_lower(known(op.image_uuid)), result_image_uuid=_lower(known(op.result_image_uuid)),
            image_size=known(op.image_size), cpu_seconds=known(op.consumed_cpu), memory=known(op.consumed_memory))

    @classmethod
    def from_response(cls, op: OperationResponse) -> OperationRecord:
        record = cls.from_summary(op)
        metadata = known(op.metadata)
        if isinstance(metadata, ImageImportMetadata):  # its "command": what it imported, as `:import` said it
            registry = known(metadata.registry)
            url = known(registry.url) if registry is not None else None
            tag = known(metadata.tag)
            return replace(record, command=import_command(url or "?", tag if isinstance(tag, str) else None),
                           detailed=record.status.is_terminal())
        if not isinstance(metadata, OperationInstanceMetadata):
            return replace(record, detailed=record.status.is_terminal())
        result = known(metadata.result)
        state = known(result.state) if result is not None else None
        return replace(
            record, command=label_of(known(metadata.env))  # a pipeline step: its name
            or command_line(metadata.command, known(metadata.args), known(metadata.shell)),
            exit_code=known(state.exit_code) if state is not None else None,
            signal=known(state.signal) if state is not None else None,
            timed_out=known(state.timed_out) if state is not None else None,
            detailed=record.status.is_terminal())

    @property
    def short(self) -> str:
        return self.uuid[:8]

    @property
    def terminal(self) -> bool:
        return self.status.is_terminal()

    @property
    def changed_filesystem(self) -> bool:
        """A run that left a new image (the API's sign of "nothing changed" is result == source)."""
        return self.result_image_uuid is not None and self.result_image_uuid != self.image_uuid

    def shell_exit_code(self) -> int | None:
        """The exit code a shell would report: the code, or 128 + the signal that killed the process, 124 if
        its timeout did (as `contree-tui run` exits then)."""
        if self.exit_code is None:
            return None
        if self.timed_out:
            return TIMED_OUT_EXIT
        if self.exit_code < 0 and self.signal is not None and self.signal > 0:
            return 128 + self.signal
        return self.exit_code

    def merged(self, newer: OperationRecord) -> OperationRecord:
        """`newer` (e.g. a list row) keeping the details this record already had (a list row lacks them)."""
        if newer.detailed or not (self.detailed or self.command or self.exit_code is not None):
            return newer
        return replace(newer, exit_code=self.exit_code, signal=self.signal, timed_out=self.timed_out,
                       command=self.command or newer.command,
                       detailed=self.detailed and newer.status == self.status)

    def to_json(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "kind": self.kind, "status": self.status.value, "error": self.error,
                "created_at": self.created_at.isoformat(), "duration": self.duration, "image": self.image_uuid,
                "result_image": self.result_image_uuid, "image_size": self.image_size,
                "cpu_seconds": self.cpu_seconds, "memory": self.memory, "exit_code": self.exit_code,
                "signal": self.signal, "timed_out": self.timed_out, "command": self.command}


def import_command(ref: str, tag: str | None) -> str:
    """How an import is named where a run shows its command: `import oci:/x:t1 as mine:1`."""
    return f"import {ref}" + (f" as {tag}" if tag else "")


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) and value else None
