"""The engine's records, named after the Contree API's concepts (images, operations, events, files)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TRUNCATE_OUTPUT_AT = 1 << 20
MAX_TRUNCATE_OUTPUT_AT = 10 << 20
DEFAULT_MAX_LAYER_BYTES = 12 << 30
DEFAULT_HOSTNAME = "linuxkit"


class OperationStatus(str, enum.Enum):
    PENDING = "PENDING"
    ASSIGNED = "ASSIGNED"
    EXECUTING = "EXECUTING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (OperationStatus.SUCCESS, OperationStatus.FAILED, OperationStatus.CANCELLED)


ACTIVE_STATUSES = (OperationStatus.PENDING, OperationStatus.ASSIGNED, OperationStatus.EXECUTING)


class EngineError(Exception):
    """A request the engine refuses; `status` is the HTTP status the API layer answers with."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class Unprocessable(EngineError):
    """422: the request is well formed but names the wrong kind of thing (a directory to download...)."""

    status = 422


@dataclass(frozen=True)
class FileMount:
    """An uploaded file placed into the sandbox (`files` in the spawn request)."""

    path: str
    file_uuid: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class StdinSpec:
    data: bytes = b""
    close: bool = True


@dataclass(frozen=True)
class SpawnRequest:
    """A validated `InstanceSpawnRequest`; `image` is already resolved to a UUID."""

    image: str
    command: str
    args: tuple[str, ...] = ()
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    uid: int = 0
    gid: int = 0
    hostname: str = DEFAULT_HOSTNAME
    disposable: bool = False
    timeout: float | None = None
    truncate_output_at: int = DEFAULT_TRUNCATE_OUTPUT_AT
    stdin: StdinSpec = field(default_factory=StdinSpec)
    files: tuple[FileMount, ...] = ()
    max_layer_bytes: int = DEFAULT_MAX_LAYER_BYTES
    networking: bool = True
    preserve_env: bool = False
    preserve_cwd: bool = False
    raw: dict[str, Any] = field(default_factory=dict)  # the request as received, echoed in metadata


@dataclass(frozen=True)
class Image:
    uuid: str
    created_at: float
    layers: tuple[str, ...]  # bottom first
    parent: str | None = None
    operation_uuid: str | None = None
    tags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = ""  # the default cwd of runs (preserve_cwd)
    size: int = 0
    user: str = ""  # an imported image's config User and WorkingDir: recorded, not applied (the spec)
    config_workdir: str = ""

    @property
    def tag(self) -> str | None:
        return self.tags[0] if self.tags else None


@dataclass(frozen=True)
class Operation:
    uuid: str
    kind: str
    status: OperationStatus
    created_at: float
    image_uuid: str | None
    request: dict[str, Any]
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    result_image_uuid: str | None = None
    result_tag: str | None = None
    image_size: int | None = None
    consumed_cpu: float | None = None
    consumed_memory: int | None = None
    result: dict[str, Any] | None = None  # InstanceResult of the main process

    @property
    def duration(self) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, (self.finished_at or self.started_at) - self.started_at)


@dataclass(frozen=True)
class Event:
    id: int
    ts: str
    type: str
    spid: int | None
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "ts": self.ts, "type": self.type, "data": self.data}
        if self.spid is not None:
            out["spid"] = self.spid
        return out


@dataclass(frozen=True)
class StoredFile:
    uuid: str
    sha256: str
    size: int
    created_at: float
    updated_at: float
