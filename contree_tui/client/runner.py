"""Run a shell command on a workspace's working snapshot: sync the folder if asked, spawn, stream the
output as events arrive, and move the working position to the result.

Split in two so a caller can arm Ctrl-C between them: `start_run` returns once the operation exists (its
`interrupter` is then usable), `StartedRun.follow` streams until the completion event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from contree_client.exceptions import APIStatusError, NotFoundError
from contree_client.models import InstanceNetworking, OperationResponse, OperationStatus

from contree_tui.client.operations import FULL_OUTPUT, EventCursor, Interrupter, RunOutcome, follow_events, stream_bytes
from contree_tui.client.records import OperationRecord
from contree_tui.client.sync import SyncReport
from contree_tui.client.workspace import Workspace

OutputSink = Callable[[Literal["stdout", "stderr"], bytes], None]


@dataclass(frozen=True)
class RunSpec:
    command: str
    image: str | None = None  # a reference (workspace.py); None: the working snapshot
    disposable: bool = False
    sync: bool | None = None  # None: as the folder is configured (`contree-tui sync`)
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None  # default: the sync destination when syncing, else the image's
    timeout: int | None = None  # seconds; None: no limit
    networking: bool = True  # False: the sandbox gets no network (where the engine has none to give, too)


@dataclass(frozen=True)
class RunResult:
    operation: str
    source: str
    status: OperationStatus
    exit_code: int  # what a shell would report; 1 when the operation did not succeed
    result_image: str | None
    error: str | None = None
    timed_out: bool = False
    moved: bool = False  # the working position moved to the result
    position: str | None = None
    synced: SyncReport | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is OperationStatus.SUCCESS

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "source": self.source, "status": self.status.value,
                "exit_code": self.exit_code, "result_image": self.result_image, "error": self.error,
                "timed_out": self.timed_out, "moved": self.moved, "position": self.position}


class StartedRun:
    def __init__(self, workspace: Workspace, spec: RunSpec, operation_id: str, source: str,
                 synced: SyncReport | None) -> None:
        self.workspace = workspace
        self.spec = spec
        self.operation_id = operation_id
        self.source = source
        self.synced = synced
        self.position_at_start = workspace.position.image  # another client may move it while this runs
        self.interrupter = Interrupter(workspace.connection, operation_id)
        self.cursor = EventCursor()
        self.outcome = RunOutcome()

    async def follow(self, on_output: OutputSink | None = None) -> RunResult:
        """Stream the run's output (main process and early engine messages) to `on_output` until it ends,
        then record it in the lineage and the working position."""
        ws = self.workspace
        try:
            async for event in follow_events(ws.connection, self.operation_id, cursor=self.cursor):
                self.outcome.observe(event)
                data = stream_bytes(event)
                if data and on_output is not None and event.spid in (0, 1):
                    on_output(event.type, data)  # type: ignore[arg-type]
        except NotFoundError:
            pass  # a log the server dropped (cancelled runs on a hosted Contree): the status says the rest
        response = await ws.connection.call(lambda: ws.connection.client.get_operation_status(self.operation_id))
        return await self._finish(response)

    async def _finish(self, response: OperationResponse) -> RunResult:
        ws = self.workspace
        record = ws.lineage.learn_operation(response)
        outcome = self.outcome
        status = outcome.status or record.status
        result_image = outcome.result_image_uuid if outcome.done else record.result_image_uuid
        if outcome.exit_code is None and record.exit_code is not None:  # no exit event reached us
            outcome.exit_code, outcome.signal = record.exit_code, record.signal
            outcome.timed_out = bool(record.timed_out)
        outcome.status = status
        exit_code = outcome.shell_exit_code()
        if result_image and result_image != self.source:
            try:
                image = await ws.connection.call(lambda: ws.connection.client.inspect_image(result_image))
            except APIStatusError:
                pass  # the lineage's next refresh lists it
            else:
                ws.lineage.learn_image(image)
        moved_to_result = status is OperationStatus.SUCCESS and not self.spec.disposable and bool(result_image)
        before = ws.position.reload().image
        entry = ws.position.record_run(
            self.source, result_image, operation=self.operation_id, command=self.spec.command,
            exit_code=exit_code if status is OperationStatus.SUCCESS else None, moved=moved_to_result,
            if_at=self.position_at_start)  # moved elsewhere meanwhile: no silent fork (client/position.py)
        return RunResult(operation=self.operation_id, source=self.source, status=status, exit_code=exit_code,
                         result_image=result_image, error=outcome.error or record.error,
                         timed_out=outcome.timed_out, moved=entry.image != before, position=entry.image,
                         synced=self.synced)


async def start_run(workspace: Workspace, spec: RunSpec) -> StartedRun:
    """Resolve the base image, sync the folder if it is to be synced, and spawn the run."""
    ws = workspace
    source = await ws.base_image(spec.image)
    settings = ws.sync_settings
    sync = settings.enabled if spec.sync is None else spec.sync
    files = None
    report = None
    cwd = spec.cwd
    if sync:
        report = await ws.syncer(settings).sync()
        files = report.state.files()
        if cwd is None:
            cwd = settings.destination
    client = ws.connection.client
    options: dict[str, Any] = {"shell": True, "disposable": spec.disposable, "truncate_output_at": FULL_OUTPUT}
    if files:
        options["files"] = files
    if spec.env:
        options["env"] = dict(spec.env)
    if cwd:
        options["cwd"] = cwd
    if spec.timeout is not None:
        options["timeout"] = spec.timeout
    if not spec.networking:
        options["networking"] = InstanceNetworking(enabled=False)
    spawned = await ws.connection.call(lambda: client.spawn_instance(spec.command, source, **options),
                                       idempotent=False)
    operation_id = str(spawned.uuid).lower()
    ws.lineage.learn_operation(OperationRecord(uuid=operation_id, kind="instance", status=OperationStatus.PENDING,
                                               created_at=datetime.now(UTC), image_uuid=source, command=spec.command))
    return StartedRun(ws, spec, operation_id, source, report)


__all__ = ["RunResult", "RunSpec", "StartedRun", "start_run"]
