"""Running a pipeline tree on Contree through the client: a Serial runs each child on the previous child's
result snapshot, a Parallel runs every child from the same snapshot (asyncio tasks, bounded by `max_concurrent`
on any ancestor), and every Exec's result is a checkpoint (its image uuid recorded, tagged when the node asks).

Each node has a state, P/Q/R/D/E/K as Conducto shows them (pending, queued for a slot, running, done, error,
killed), with skip an overlay on top; every change and every chunk of output is an event that subscribers (the
TUI's view, the headless printer) receive synchronously on the event loop.

Snapshots flow as: a node's own `image` (set on it) restarts the chain there; otherwise it runs on what its
parent hands it (the root: its inherited image, or the run's default image). A Serial hands its next child the
previous child's result (a disposable or skipped child leaves it unchanged); a Parallel hands each child its own
source, and its result (what a following sibling gets) is that same source: its branches are side by side, none
of them is "the" continuation, unless the Parallel names one (`continue_from=`): then that child's result.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from contree_client.exceptions import APIStatusError, NotFoundError
from contree_client.models import FileSpec, InstanceNetworking, OperationStatus

from contree_tui.client.connection import Connection
from contree_tui.client.operations import FULL_OUTPUT, RunOutcome, cancel_operation, follow_events, stream_bytes
from contree_tui.client.records import OperationRecord
from contree_tui.client.step_label import STEP_LABEL_ENV, step_label
from contree_tui.client.step_result import RESULT_MARK, ReadableStdout
from contree_tui.client.sync import DirectoryState, Syncer, SyncError
from contree_tui.pipeline.functions import RUNNER_PATH, RUNNER_SOURCE, SANDBOX_DIR, ReturnValue, split_result
from contree_tui.pipeline.network_notes import step_network_note
from contree_tui.pipeline.nodes import Effective, Exec, Node, Parallel, Parent, PipelineError, Serial
from contree_tui.pipeline.python_image import python_image_hint
from contree_tui.pipeline.step_cache import CachedStep, StepCache, StepInputs, content_digest

log = logging.getLogger("contree_tui.pipeline")
EXIT_NOT_FOUND = 127  # the shell's "command not found"


class State(enum.Enum):
    PENDING = "P"
    QUEUED = "Q"
    RUNNING = "R"
    DONE = "D"
    ERROR = "E"
    KILLED = "K"

    @property
    def finished(self) -> bool:
        return self in (State.DONE, State.ERROR, State.KILLED)


@dataclass
class NodeRun:
    """One node's progress in this run (its checkpoint, operation, log, return value)."""

    path: str
    kind: str
    state: State = State.PENDING
    skipped: bool = False
    source: str | None = None  # the snapshot it ran on
    result: str | None = None  # its checkpoint: the snapshot it left (Exec), or hands on (parents)
    tag: str | None = None
    operation: str | None = None
    cached: bool = False
    exit_code: int | None = None
    error: str | None = None
    return_value: ReturnValue | None = None
    started: float | None = None  # time.monotonic() when it began running
    finished: float | None = None
    output: bytearray = field(default_factory=bytearray)  # stdout and stderr as they came

    @property
    def duration(self) -> float | None:
        return None if self.started is None or self.finished is None else self.finished - self.started


@dataclass(frozen=True)
class PipelineEvent:
    kind: Literal["state", "output"]
    run: NodeRun
    stream: Literal["stdout", "stderr"] | None = None
    data: bytes = b""


Listener = Callable[[PipelineEvent], None]


class PipelineRun:
    """One run of a tree: `await run()` returns the root's final state; `runs` maps each path to its NodeRun."""

    def __init__(self, root: Node, connection: Connection, *, image: str | None = None,
                 force: bool | Iterable[str] = False, cache: StepCache | None = None,
                 max_concurrent: int | None = None) -> None:
        """`image`: for nodes that set none. `force`: True runs every step even if cached; paths run the steps
        of those subtrees again (re-run a node or subtree: the rest, unchanged, are cache hits). `cache`: the
        target's StepCache by default. `max_concurrent`: Execs running at once over the whole run (None:
        unbounded)."""
        self.root = root
        self.connection = connection
        self.default_image = image
        self.force = force if isinstance(force, bool) else False
        self.forced_paths = () if isinstance(force, bool) else tuple(p.rstrip("/") + "/" for p in force)
        self.cache = cache if cache is not None else StepCache.for_key(connection.cache_key)
        self.nodes: dict[str, Node] = {n.path: n for n in root.walk()}
        self.runs: dict[str, NodeRun] = {p: NodeRun(p, n.kind) for p, n in self.nodes.items()}
        self._listeners: list[Listener] = []
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._global = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        self._resolved: dict[str, str] = {}
        self._digests: dict[Path, str] = {}
        self._uploaded: dict[str, str] = {}  # sha256 -> file uuid on this target
        # folders synced this run, by (folder, destination, excludes): function steps' and `sync=` ones
        self._folders: dict[tuple[Path, str, tuple[str, ...]], DirectoryState] = {}
        self._sync_locks: dict[tuple[Path, str, tuple[str, ...]], asyncio.Lock] = {}
        # a finished child of a running Parallel started again mid-run (the TUI's `r`, tui/pipeline_rerun.py):
        # the Parallel waits for it and takes its result instead of the first one
        self.again: dict[str, asyncio.Task[str | None]] = {}
        for path, node in self.nodes.items():
            if node.effective().skip:
                self.runs[path].skipped = True
        check_runnable(root, image)
        unknown = [p for p in self.forced_paths if p.rstrip("/") not in self.nodes and p != "/"]
        if unknown:
            raise PipelineError(f"no node {unknown[0].rstrip('/')} to re-run (nodes: {', '.join(self.nodes)})")

    # ---- observing ----
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: PipelineEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken view must not stop the pipeline (as client/observable.py's subscribers)
                log.exception("pipeline listener failed")

    def _set(self, run: NodeRun, state: State) -> None:
        if run.state is state:
            return
        now = time.monotonic()
        if state is State.RUNNING and run.started is None:
            run.started = now
        if state.finished:
            run.finished = now
        run.state = state
        self._emit(PipelineEvent("state", run))

    def counts(self, path: str = "/") -> dict[State, int]:
        """Exec leaves of the subtree at `path` per state (skipped ones in their base state, as Conducto does)."""
        found = dict.fromkeys(State, 0)
        prefix = path.rstrip("/") + "/"
        for p, run in self.runs.items():
            if run.kind == "exec" and (p == path or p.startswith(prefix)):
                found[run.state] += 1
        return found

    # ---- running ----
    async def run(self) -> State:
        """Run the tree to its end. Cancelling the task that awaits this kills the run: the operations in
        flight are cancelled on the server and every queued or running node ends Killed."""
        try:
            await self._node(self.root, None)
        except (asyncio.CancelledError, Exception):
            # killed, or a node raised (an image not found, the engine gone): by now every branch beside it
            # was cancelled (_parallel), its operation too; what was still queued or running ends Killed
            for task in self.again.values():
                task.cancel()
            for run in self.runs.values():
                if run.state in (State.QUEUED, State.RUNNING):
                    self._set(run, State.KILLED)
            raise
        return self.runs[self.root.path].state

    async def _node(self, node: Node, source: str | None) -> str | None:
        """Run `node` on `source`; the snapshot it hands on, or None if it failed."""
        if node.params.image is not None:
            source = await self._resolve(node.params.image)
        elif source is None:
            image = node.effective(self.default_image).image
            source = await self._resolve(image) if image else None
        run = self.runs[node.path]
        run.source = source
        if run.skipped:
            run.result = source
            self._emit(PipelineEvent("state", run))
            return source
        if isinstance(node, Exec):
            return await self._exec(node, run, source)
        if isinstance(node, Serial):
            return await self._serial(node, run, source)
        if isinstance(node, Parallel):
            return await self._parallel(node, run, source)
        raise PipelineError(f"{node.path}: unknown node type {type(node).__name__}")

    async def _serial(self, node: Serial, run: NodeRun, source: str | None) -> str | None:
        self._set(run, State.RUNNING)
        current, failed = source, False
        for child in node.children.values():
            result = await self._node(child, current)
            if result is None:
                failed = True
                if node.stop_on_error:
                    break  # the later children stay Pending, as Conducto leaves them
            else:
                current = result
        run.result = None if failed else current
        self._set(run, State.ERROR if failed else State.DONE)
        return run.result

    async def _parallel(self, node: Parallel, run: NodeRun, source: str | None) -> str | None:
        self._set(run, State.RUNNING)
        children = list(node.children.values())
        # a TaskGroup, not gather: when a branch raises (not a failed step: the engine gone, an image not
        # found), gather passes the exception on at once and leaves the other branches running their
        # sandboxes; the group cancels them (each cancels its operation on the server, _exec_in_slot) and
        # waits for that before the exception goes on, once (the first; the group itself is unwrapped)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._node(child, source)) for child in children]
        except BaseExceptionGroup as raised:
            raise first_exception(raised) from None
        results = {child.path: task.result() for child, task in zip(children, tasks, strict=True)}
        while again := [child.path for child in children if child.path in self.again]:
            results[again[0]] = await self.again[again[0]]
            del self.again[again[0]]
        failed = any(r is None for r in results.values())
        named = node.children.get(node.continue_from or "")
        handed = results[named.path] if named is not None else source
        run.result = None if failed else handed
        self._set(run, State.ERROR if failed else State.DONE)
        return run.result

    async def _exec(self, node: Exec, run: NodeRun, source: str | None) -> str | None:
        if source is None:
            return self._fail(run, "no image to run on: set image= on the node or a parent, or give the run an image")
        eff = node.effective(self.default_image)
        run.tag = eff.tag
        self._set(run, State.QUEUED)
        slots = self._slots_for(node)
        for slot in slots:
            await slot.acquire()
        try:
            return await self._exec_in_slot(node, run, source, eff)
        except (APIStatusError, PipelineError) as exc:
            return self._fail(run, str(exc))
        finally:
            for slot in reversed(slots):
                slot.release()

    async def _exec_in_slot(self, node: Exec, run: NodeRun, source: str, eff: Effective) -> str | None:
        env, cwd, disposable, timeout = eff.env, eff.cwd, eff.disposable, eff.timeout
        command = node.function.sandbox_command() if node.function else node.command
        folder: DirectoryState | None = None
        digests: dict[str, str] = {}
        files: dict[str, FileSpec] = {}
        if eff.sync is not None:  # a user's folder (a staged build's SOURCE): its digest is one of the inputs
            synced = await self._folder_state(eff.sync.local, eff.sync.dest, eff.sync.excludes)
            files.update(synced.files())
            digests[eff.sync.dest] = synced.digest
        if node.function:  # the runner and the pipeline's folder go along; both are in the step's inputs
            folder = await self._folder_state(node.function.folder)
            digests.update({RUNNER_PATH: content_digest(RUNNER_SOURCE, self._digests), SANDBOX_DIR: folder.digest})
        inputs = StepInputs(source=source, command=command, env=dict(env), cwd=cwd, disposable=disposable,
                            files=digests, network=eff.network)
        key = inputs.key
        if not self._forced(node):
            hit = self.cache.get(key)
            if hit is not None and await self._still_there(hit.result_image, source):
                return await self._cache_hit(run, hit)
        options: dict[str, Any] = {"shell": True, "disposable": disposable, "truncate_output_at": FULL_OUTPUT}
        if folder is not None:
            runner = FileSpec(uuid=await self._upload(RUNNER_SOURCE, digests[RUNNER_PATH]), mode="0644")
            files.update({**folder.files(), RUNNER_PATH: runner})
        if files:
            options["files"] = files
        if env or node.function:
            # a function step's operation carries its readable name (client/step_label.py): not in `inputs`
            label = {STEP_LABEL_ENV: step_label(node.path, node.function.name, node.function.argv)} \
                if node.function else {}
            options["env"] = {**label, **env}
        if cwd:
            options["cwd"] = cwd
        if timeout is not None:
            options["timeout"] = timeout
        if not eff.network:
            options["networking"] = InstanceNetworking(enabled=False)
        client = self.connection.client
        spawned = await self.connection.call(lambda: client.spawn_instance(command, source, **options),
                                             idempotent=False)
        run.operation = op = str(spawned.uuid).lower()
        self._set(run, State.RUNNING)  # once the operation exists: a listener can show it, cancel it
        outcome = RunOutcome()
        records = ReadableStdout(drop=True)  # a function's result record, cut anywhere by the chunks, not shown
        try:
            async for event in follow_events(self.connection, op):
                outcome.observe(event)
                data = stream_bytes(event)
                if data and event.spid in (0, 1):
                    run.output += data
                    shown = records.feed(data) if node.function and event.type == "stdout" else data
                    if shown:
                        self._emit(PipelineEvent("output", run, event.type, shown))  # type: ignore[arg-type]
            if held := records.flush():
                self._emit(PipelineEvent("output", run, "stdout", held))
        except NotFoundError:
            pass
        except asyncio.CancelledError:
            # the run is being killed: stop the sandbox too (shielded, so the cancel request itself completes)
            with contextlib.suppress(Exception):
                await asyncio.shield(cancel_operation(self.connection, op))
            raise
        if not outcome.done or outcome.exit_code is None:
            # no completion or no parsed exit event reached us (contree-client leaves a timed-out run's exit
            # event a plain dict, so RunOutcome misses it): the operation's record has both, as runner.py reads it
            record = OperationRecord.from_response(
                await self.connection.call(lambda: client.get_operation_status(op)))
            outcome.status = outcome.status or record.status
            outcome.result_image_uuid = outcome.result_image_uuid or record.result_image_uuid
            outcome.error = outcome.error or record.error
            if outcome.exit_code is None:
                outcome.exit_code, outcome.signal = record.exit_code, record.signal
                outcome.timed_out = bool(record.timed_out)
        if node.function:
            stdout, run.return_value = split_result(bytes(run.output))
            run.output = bytearray(stdout)
        run.exit_code = outcome.shell_exit_code()
        if outcome.status is not OperationStatus.SUCCESS or run.exit_code != 0:
            reason = outcome.error or (f"timed out after {timeout} s" if outcome.timed_out else
                                       f"exit {run.exit_code}" if outcome.status is OperationStatus.SUCCESS else
                                       f"operation {outcome.status.value if outcome.status else 'lost'}")
            if node.function and run.exit_code == EXIT_NOT_FOUND and b"python3" in run.output:
                reason += f": the image has no python3, which function steps need (nothing else; {python_image_hint()})"
            if eff.network_overridden:  # the likely cause of a failure when a step that wants a network has none
                reason += f" ({step_network_note(node)})"
            run.result = outcome.result_image_uuid
            return self._fail(run, reason)
        result = source if disposable else (outcome.result_image_uuid or source)
        run.result = result
        if run.tag:
            await self._tag(result, run.tag)
        self.cache.put(key, CachedStep(result, op, _result_json(run.return_value), bytes(run.output)))
        self._set(run, State.DONE)
        return result

    async def _cache_hit(self, run: NodeRun, hit: CachedStep) -> str:
        run.cached = True
        run.result = hit.result_image
        run.operation = hit.operation
        run.output = bytearray(hit.output)
        run.exit_code = 0
        if hit.return_value is not None:
            _out, run.return_value = split_result(RESULT_MARK.encode() + hit.return_value.encode() + b"\n")
        if run.tag:
            await self._tag(hit.result_image, run.tag)
        run.started = time.monotonic()
        self._set(run, State.DONE)
        return hit.result_image

    def _fail(self, run: NodeRun, reason: str) -> None:
        run.error = reason
        self._set(run, State.ERROR)
        return None

    def _forced(self, node: Node) -> bool:
        return self.force or (bool(self.forced_paths) and (node.path + "/").startswith(self.forced_paths))

    def _slots_for(self, node: Node) -> list[asyncio.Semaphore]:
        """The run's slot, then each ancestor's with max_concurrent, root first: one order everywhere, so
        two Execs never hold each other's next slot (no deadlock)."""
        slots = [self._global] if self._global is not None else []
        for parent in node.ancestors():
            if isinstance(parent, Parent) and parent.max_concurrent:
                slot = self._slots.get(parent.path)
                if slot is None:
                    slot = self._slots[parent.path] = asyncio.Semaphore(parent.max_concurrent)
                slots.append(slot)
        return slots

    async def _resolve(self, ref: str) -> str:
        if ref not in self._resolved:
            client = self.connection.client
            try:
                self._resolved[ref] = (await self.connection.call(lambda: client.resolve_image(ref))).lower()
            except NotFoundError:
                raise PipelineError(f"image {ref!r} not found on {self.connection.target.describe()}") from None
        return self._resolved[ref]

    async def _still_there(self, image: str, source: str) -> bool:
        if image == source:
            return True
        try:
            await self.connection.call(lambda: self.connection.client.inspect_image(image))
        except NotFoundError:
            return False
        return True

    async def _folder_state(self, folder: Path, dest: str = SANDBOX_DIR,
                            excludes: tuple[str, ...] = ()) -> DirectoryState:
        """The folder synced (once per run and destination, whichever step asks first): what its steps'
        sandboxes get."""
        key = (folder, dest, excludes)
        lock = self._sync_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._folders:
                try:
                    syncer = Syncer(self.connection, folder, dest, excludes=excludes)
                    try:
                        self._folders[key] = (await syncer.sync()).state
                    finally:
                        syncer.close()
                except SyncError as exc:
                    what = "the pipeline's folder" if dest == SANDBOX_DIR and not excludes else str(folder)
                    raise PipelineError(f"cannot send {what}: {exc}") from None
        return self._folders[key]

    async def _upload(self, path: Path, sha256: str) -> str:
        if sha256 not in self._uploaded:
            data = path.read_bytes()
            response = await self.connection.call(lambda: self.connection.client.ensure_file(data, sha256=sha256))
            self._uploaded[sha256] = str(response.uuid).lower()
        return self._uploaded[sha256]

    async def _tag(self, image: str, tag: str) -> None:
        await self.connection.call(lambda: self.connection.client.update_image_tag(image, tag))


def check_runnable(root: Node, default_image: str | None) -> None:
    """What would fail half-way, refused before anything runs: a Parallel continuing from no child of its own,
    a step with no image to run on, a tag on a disposable step (it leaves no snapshot to name), one tag on two
    steps (the second would steal it)."""
    tags: dict[str, str] = {}
    for node in root.walk():
        if isinstance(node, Parallel):
            node.check_continue_from()  # children added after the Parallel was built: checked now
        if not isinstance(node, Exec):
            continue
        eff = node.effective(default_image)
        if eff.image is None:
            needs = f" with python3, which a function step needs ({python_image_hint()})" if node.function else ""
            raise PipelineError(f"{node.path}: no image to run on: set image= on it or a parent, or give the run "
                                "an image (--image; without it, the folder's working snapshot: it has none yet)"
                                f"{needs}")
        if eff.tag is not None:
            if eff.disposable:
                raise PipelineError(f"{node.path}: tag {eff.tag!r} on a disposable step, which leaves no snapshot "
                                    "to tag")
            if eff.tag in tags:
                raise PipelineError(f"{node.path}: tag {eff.tag!r} is already {tags[eff.tag]}'s checkpoint")
            tags[eff.tag] = node.path


def first_exception(group: BaseExceptionGroup) -> BaseException:
    """The first exception a TaskGroup collected (nested groups opened): what a Parallel reports."""
    first = group.exceptions[0]
    return first_exception(first) if isinstance(first, BaseExceptionGroup) else first


def _result_json(value: ReturnValue | None) -> str | None:
    if value is None:
        return None
    return json.dumps({"repr": value.text} if value.text is not None else {"json": value.data}, sort_keys=True)


async def run_pipeline(root: Node, connection: Connection, *, image: str | None = None,
                       force: bool | Iterable[str] = False,
                       listener: Listener | None = None, cache: StepCache | None = None) -> PipelineRun:
    """Run the tree to the end; the PipelineRun holds every node's outcome."""
    run = PipelineRun(root, connection, image=image, force=force, cache=cache)
    if listener is not None:
        run.subscribe(listener)
    await run.run()
    return run


__all__ = ["NodeRun", "PipelineEvent", "PipelineRun", "State", "run_pipeline"]
