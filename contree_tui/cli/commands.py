"""The headless commands behind `contree-tui images | run | import | ops | logs | sync | rollback | forward |
tag | download | use | history | export | engine df | prune`: each opens the folder's workspace, does one thing,
prints text (or `--json`) and returns the process's exit code. parser.py parses the arguments and calls
`execute`.

Errors never surface as tracebacks: every failure a user can cause or meet (an unknown image, a refused
token, an unreachable server, an impossible rollback) becomes one `contree-tui: …` line on stderr and a
non-zero exit code (1, or 2 when Contree itself cannot be reached or used).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from contree_client.exceptions import APIConnectionError, APIStatusError, ContreeError, NotFoundError
from contree_client.models import OperationStatus

from contree_tui.cli.diff_command import diff as diff_command
from contree_tui.cli.render import (
    clip,
    history_lines,
    image_label,
    local_time,
    operation_header,
    operation_line,
    tree_lines,
)
from contree_tui.client.connection import Connection, ConnectionProblem
from contree_tui.client.disk import DiskError, disk_usage, make_plan, parse_duration, prune
from contree_tui.client.image_export import ExportError, default_name, export_image
from contree_tui.client.image_files import save_stream
from contree_tui.client.image_import import ImportSpec, follow_import, learn_imported, start_import
from contree_tui.client.operations import (
    InterruptStage,
    RunOutcome,
    cancel_operation,
    follow_events,
    stream_bytes,
)
from contree_tui.client.position import HistoryEntry, PositionError, SyncSettings
from contree_tui.client.progress import ByteProgress, ProgressLine, SyncProgressLine
from contree_tui.client.reconnect import ConnectionState, LinkState
from contree_tui.client.records import TIMED_OUT_EXIT
from contree_tui.client.runner import RunResult, RunSpec, start_run
from contree_tui.client.sizes import human_size
from contree_tui.client.sync import SyncError
from contree_tui.client.workspace import UnknownReference, Workspace

Options = Mapping[str, Any]
EXIT_UNAVAILABLE = 2  # Contree could not be reached or used (like the engine's EngineError)


class CommandError(Exception):
    """A command that cannot do what was asked; `str()` is the whole message."""


class Console:
    """Where a command writes: text and bytes, stdout and stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"contree-tui: {text}", file=self.err, flush=True)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2), file=self.out, flush=True)

    def write_bytes(self, stream: str, data: bytes) -> None:
        target = self.err if stream == "stderr" else self.out
        target.flush()
        buffer = getattr(target, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            target.write(data.decode("utf-8", errors="replace"))
            target.flush()


# -- images, operations, output ------------------------------------------------------------------------

async def images(ws: Workspace, opts: Options, console: Console) -> int:
    await ws.lineage.refresh(full=bool(opts.get("full")))
    tree = ws.lineage.tree
    position = ws.position.image
    if opts.get("json"):
        rows = []
        for _depth, image in tree.walk():
            op = tree.producing_operation(image.uuid)
            rows.append({**image.to_json(), "command": op.command if op else None, "current": image.uuid == position})
        console.json(rows)
        return 0
    for line in tree_lines(tree, position):
        console.print(line)
    return 0


async def ops(ws: Workspace, opts: Options, console: Console) -> int:
    await ws.lineage.refresh()
    found = sorted(ws.lineage.tree.operations.values(), key=lambda op: (op.created_at, op.uuid), reverse=True)
    status = opts.get("status")
    if status:
        wanted = {s.strip().upper() for s in status.split(",")}
        unknown = wanted - {s.value for s in OperationStatus}
        if unknown:
            raise CommandError(f"--status: unknown {', '.join(sorted(unknown))} (one of "
                               f"{', '.join(s.value for s in OperationStatus)})")
        found = [op for op in found if op.status.value in wanted]
    limit = opts.get("limit")
    if limit is not None and not opts.get("all"):
        found = found[:limit]
    # exit codes and commands are in the full record only; terminal ones are fetched once, then cached
    missing = [op.uuid for op in found if op.kind == "instance" and not op.detailed]
    if missing:
        details = {op.uuid: op for op in await ws.lineage.details(missing)}
        found = [details.get(op.uuid, op) for op in found]
    if opts.get("json"):
        console.json([op.to_json() for op in found])
        return 0
    console.print(operation_header())
    for op in reversed(found):
        console.print(operation_line(op))
    return 0


async def logs(ws: Workspace, opts: Options, console: Console) -> int:
    operation = await ws.resolve_operation(opts.get("operation") or "@")
    client = ws.connection.client
    as_json = bool(opts.get("json"))

    def emit(event: Any) -> None:
        if as_json:
            console.print(json.dumps(event.to_dict()))
            return
        data = stream_bytes(event)
        if data:
            console.write_bytes(event.type, data)

    try:
        if opts.get("follow"):
            outcome = RunOutcome()
            async for event in follow_events(ws.connection, operation):
                outcome.observe(event)
                emit(event)
            return await _report_followed(ws, operation, outcome, console)
        else:
            async def dump() -> list[Any]:
                return [e async for e in client.iter_operation_events(operation, follow=False)]

            for event in await ws.connection.call(dump):
                emit(event)
    except NotFoundError:
        return await _logs_from_status(ws, operation, console, as_json)
    except APIStatusError as exc:
        if exc.status != 425:
            raise
        console.note(f"operation {operation} has not started yet (follow it with -f)")
    return 0


async def _report_followed(ws: Workspace, operation: str, outcome: RunOutcome, console: Console) -> int:
    """After `logs -f`: an operation that did not succeed (cancelled, or failed because its engine stopped)
    says why on stderr and makes the exit status 1, as `run` would have."""
    status, error = outcome.status, outcome.error
    if status is None:  # the completion event never reached us (a log resumed past it): ask
        response = await ws.connection.call(lambda: ws.connection.client.get_operation_status(operation))
        status = OperationStatus(response.status)
        error = response.error if isinstance(response.error, str) and response.error else None
    if status is OperationStatus.SUCCESS or not status.is_terminal():
        return 0
    console.note(f"operation {operation} {status.value}{f': {error}' if error else ''}")
    return 1


async def _logs_from_status(ws: Workspace, operation: str, console: Console, as_json: bool) -> int:
    """No event log (an unknown operation, or one whose log was dropped): the folded result, if any."""
    try:
        response = await ws.connection.call(lambda: ws.connection.client.get_operation_status(operation))
    except NotFoundError:
        raise CommandError(f"no operation {operation}") from None
    result = getattr(response.metadata, "result", None)
    if as_json:
        console.json(response.to_dict())
        return 0
    if result is None or result is Ellipsis:
        console.note(f"operation {operation} ({response.status}) has no output to show")
        return 0
    for stream in ("stdout", "stderr"):
        repr_ = getattr(result, stream, None)
        if repr_ is not None and repr_ is not Ellipsis:
            console.write_bytes(stream, repr_.as_bytes())
    return 0


# -- run ---------------------------------------------------------------------------------------------------

async def run(ws: Workspace, opts: Options, console: Console) -> int:
    words = list(opts.get("command") or [])
    if words[:1] == ["--"]:
        words = words[1:]
    if not words:
        raise CommandError("run: give a command, e.g. contree-tui run -- 'make test'")
    env = {}
    for item in opts.get("env") or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--env {item!r}: expected KEY=VALUE")
        env[key] = value
    spec = RunSpec(command=" ".join(words), image=opts.get("image"), disposable=bool(opts.get("disposable")),
                   sync=opts.get("sync"), env=env, cwd=opts.get("cwd"), timeout=opts.get("timeout"))
    as_json = bool(opts.get("json"))
    started = await start_run(ws, spec)
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def interrupt() -> None:
        stage = await started.interrupter.interrupt()
        if stage is InterruptStage.SIGNALLED:
            console.note("sent SIGINT to the command; Ctrl-C again cancels the operation")
        elif stage is InterruptStage.CANCELLED:
            console.note(f"cancelling operation {started.operation_id}")

    def on_sigint() -> None:
        task = loop.create_task(interrupt())
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        result = await started.follow(None if as_json else console.write_bytes)
    except BrokenPipeError:
        # nobody reads the output any more (`run … | head`): stop the run too, as a local pipeline would
        await cancel_operation(ws.connection, started.operation_id)
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return _report_run(result, console, as_json)


def _report_run(result: RunResult, console: Console, as_json: bool) -> int:
    if as_json:
        console.json(result.to_json())
    if result.timed_out:
        console.note(f"operation {result.operation}: the command timed out and was killed (exit {TIMED_OUT_EXIT})")
    if not result.succeeded:
        reason = f": {result.error}" if result.error else ""
        console.note(f"operation {result.operation} {result.status.value}{reason}")
        return 1
    return result.exit_code


# -- import ------------------------------------------------------------------------------------------------

async def import_image(ws: Workspace, opts: Options, console: Console) -> int:
    """Start an import, show its progress (a live bar on a terminal, a line a step otherwise) and exit 0 when
    it succeeded, 1 with the reason on stderr when not; Ctrl-C cancels it (DELETE the operation)."""
    ref = str(opts.get("ref") or "").strip()
    if not ref:
        raise CommandError("import: give an image, e.g. contree-tui import alpine:3 or oci:./layout:latest")
    spec = ImportSpec(ref=ref, tag=opts.get("tag") or None, insecure=bool(opts.get("insecure")),
                      username=opts.get("username"), password=_import_password(opts), timeout=opts.get("timeout"))
    as_json = bool(opts.get("json"))
    operation = await start_import(ws.connection, spec)
    line = ProgressLine(console.err, spec.tag or ref, live=False if as_json else None)
    if not line.live:
        console.note(f"importing {ref} (operation {operation})")
    loop = asyncio.get_running_loop()
    cancelling: list[asyncio.Task[bool]] = []

    def on_sigint() -> None:
        if not cancelling:  # a second Ctrl-C changes nothing: the cancel is on its way
            line.close()
            console.note(f"cancelling the import (operation {operation})")
            cancelling.append(loop.create_task(cancel_operation(ws.connection, operation)))

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        result = await follow_import(ws.connection, operation, line.update)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        line.close()
        if cancelling:
            await asyncio.gather(*cancelling, return_exceptions=True)
    if result.succeeded and result.image:
        await learn_imported(ws.connection, ws.lineage, result)  # `images` shows it, and a moved tag
    if as_json:
        console.json(result.to_json())
    if not result.succeeded:
        reason = f": {result.error}" if result.error else ""
        console.note(f"import of {ref} {result.status.value}{reason}")
        return 130 if cancelling and result.status is OperationStatus.CANCELLED else 1
    if not as_json:
        console.print(result.image or "")
        console.note(f"imported {ref} as {(result.image or '')[:8]}" + (f" (tag {result.tag})" if result.tag else ""))
    return 0


def _import_password(opts: Options) -> str | None:
    """`--password-stdin` reads the first line of stdin (as `docker login` does: not in argv, not in the
    shell's history); with no such flag a terminal is asked."""
    username = opts.get("username")
    if opts.get("password_stdin"):
        if not username:
            raise CommandError("--password-stdin needs --username")
        return sys.stdin.readline().rstrip("\r\n")
    if username is None:
        return None
    if not sys.stdin.isatty():
        raise CommandError("--username needs --password-stdin (no terminal to ask for the password on)")
    return getpass.getpass(f"password for {username}: ")


# -- position ------------------------------------------------------------------------------------------

def _position_json(ws: Workspace, entry: HistoryEntry | None = None) -> dict[str, Any]:
    position = ws.position.reload()
    image = ws.lineage.tree.image(position.image) if position.image else None
    return {"folder": position.folder, "image": position.image, "tags": list(image.tags) if image else [],
            "previous": entry.previous if entry else None, "redo": list(position.redo)}


def _print_position(ws: Workspace, console: Console, opts: Options, entry: HistoryEntry | None) -> int:
    if opts.get("json"):
        console.json(_position_json(ws, entry))
        return 0
    position = ws.position.reload()
    if position.image is None:
        console.print("no working snapshot yet (the next run starts from the default image)")
        return 0
    label = image_label(ws.lineage.tree.image(position.image), position.image)
    redo = f"  (forward: {len(position.redo)})" if position.redo else ""
    console.print(f"{label}{redo}")
    return 0


async def rollback(ws: Workspace, opts: Options, console: Console) -> int:
    await ws.lineage.refresh()
    current = ws.position.image
    if current is not None and current not in ws.lineage.tree:
        raise CommandError(f"the working snapshot {current} is not among {ws.connection.target.describe()}'s "
                           "images any more (`contree-tui use IMAGE` picks another)")
    entry = ws.position.rollback(ws.lineage.tree.parent, int(opts.get("steps") or 1))
    return _print_position(ws, console, opts, entry)


async def forward(ws: Workspace, opts: Options, console: Console) -> int:
    entry = ws.position.forward(int(opts.get("steps") or 1))
    await ws.lineage.refresh()
    return _print_position(ws, console, opts, entry)


async def use(ws: Workspace, opts: Options, console: Console) -> int:
    ref = opts.get("image")
    entry = None
    if ref:
        image = await ws.resolve_image(ref)
        await ws.lineage.refresh()
        entry = ws.position.jump(image, ancestors=ws.lineage.tree.ancestors, note=ref)
    return _print_position(ws, console, opts, entry)


async def history(ws: Workspace, opts: Options, console: Console) -> int:
    entries = ws.position.history(opts.get("limit"))
    if opts.get("json"):
        console.json([e.to_json() for e in entries])
        return 0
    for line in history_lines(entries):
        console.print(line)
    return 0


# -- tags, files, sync ---------------------------------------------------------------------------------

async def tag(ws: Workspace, opts: Options, console: Console) -> int:
    args = list(opts.get("args") or [])
    client = ws.connection.client
    if opts.get("remove"):
        if len(args) > 2:
            raise CommandError("tag --rm: give [IMAGE] TAG, or IMAGE alone to remove all its tags")
        if len(args) == 1 and not _looks_like_image(args[0]):
            name: str | None = args[0]
            image = await ws.resolve_image(f"tag:{name}")
        else:
            image = await ws.resolve_image(args[0] if args else "@")
            name = args[1] if len(args) == 2 else None
        try:
            await ws.connection.call(lambda: client.delete_image_tag(image, tag=name))
        except NotFoundError:
            raise CommandError(f"image {image} has no tag {name!r}") from None
        remaining = () if name is None else tuple(t for t in _tags_of(ws, image) if t != name)
        ws.lineage.set_tags(image, remaining)
        console.print(f"{image} untagged{f' {name}' if name else ''}")
        return 0
    if not 1 <= len(args) <= 2:
        raise CommandError("tag: give [IMAGE] TAG (IMAGE defaults to the working snapshot @)")
    image = await ws.resolve_image(args[0] if len(args) == 2 else "@")
    name = args[-1]
    tagged = await ws.connection.call(lambda: client.update_image_tag(image, name))
    ws.lineage.set_tags(image, tuple(dict.fromkeys((*_tags_of(ws, image), name))))
    ws.lineage.learn_image(tagged)
    console.print(f"{image} tagged {name}")
    return 0


def _looks_like_image(ref: str) -> bool:
    return ref.startswith(("@", "tag:")) or _uuid_like(ref)


def _uuid_like(ref: str) -> bool:
    return len(ref) >= 8 and all(c in "0123456789abcdef-" for c in ref.lower())


def _tags_of(ws: Workspace, image: str) -> tuple[str, ...]:
    record = ws.lineage.tree.image(image)
    return record.tags if record else ()


async def download(ws: Workspace, opts: Options, console: Console) -> int:
    path = opts["path"]
    if not path.startswith("/"):
        raise CommandError(f"download: {path!r} is not an absolute path in the image")
    image = await ws.resolve_image(opts.get("image") or "@")
    client = ws.connection.client
    dest = opts.get("dest") or os.path.basename(path.rstrip("/")) or "download"
    try:
        if dest == "-":
            async for chunk in client.inspect_image_download_stream(image, path):
                console.write_bytes("stdout", chunk)
            return 0
        target = Path(dest)
        if target.is_dir():
            target = target / os.path.basename(path.rstrip("/"))
        size = await save_stream(client.inspect_image_download_stream(image, path), target)
    except NotFoundError:
        raise CommandError(f"no file {path} in image {image}") from None
    except APIStatusError as exc:
        if exc.status == 422:
            raise CommandError(f"{path} in image {image} is not a regular file") from None
        raise
    console.note(f"{path} -> {target} ({human_size(size)})")
    return 0


async def export(ws: Workspace, opts: Options, console: Console) -> int:
    image = await ws.resolve_image(opts["image"])
    record = ws.lineage.tree.image(image)
    name = opts.get("name") or default_name(image, record.tags if record else ())
    fmt = opts.get("format") or "oci-archive"
    progress = ByteProgress(console.err, f"exporting {image[:8]}")
    try:
        result = await export_image(ws.connection, image, fmt, opts["out"], name=name, progress=progress.update)
    except ExportError as exc:
        raise CommandError(f"export: {exc}") from None
    finally:
        progress.finish()
    for note in result.notes:
        console.note(note)
    console.note(f"{image[:8]} -> {result.path} ({fmt}, {result.name}; layer {result.layer_digest[:19]}…, "
                 f"{human_size(result.tar_bytes)} of files, archive {human_size(result.archive_bytes)})")
    return 0


# -- disk ------------------------------------------------------------------------------------------------

async def df(ws: Workspace, opts: Options, console: Console) -> int:
    usage = await disk_usage(ws.connection)
    if opts.get("json"):
        console.json(usage)
        return 0
    await ws.lineage.refresh()
    tree = ws.lineage.tree
    console.print(f"{'IMAGE':<10} {'CREATED':<19} {'OWN':>10} {'SHARED':>10}  TAGS / COMMAND")
    for row in sorted(usage["images"], key=lambda r: (r["created_at"], r["uuid"])):
        op = tree.producing_operation(row["uuid"])
        what = ", ".join(row["tags"]) or (clip(op.command, 50) if op and op.command else "")
        created = local_time(datetime.fromtimestamp(row["created_at"], UTC))
        console.print(f"{row['uuid'][:8]:<10} {created:<19} {human_size(row['own']):>10} "
                      f"{human_size(row['shared']):>10}  {what}")
    total, fs = usage["total"], usage["filesystem"]
    unreferenced = f", {human_size(total['unreferenced_bytes'])} in layers no image uses" \
        if total["unreferenced_bytes"] else ""
    console.print(f"{total['images']} images, {total['layers']} layers: {human_size(total['layer_bytes'])} on disk"
                  f"{unreferenced}; {human_size(fs['free'])} free of {human_size(fs['size'])}")
    return 0


async def prune_command(ws: Workspace, opts: Options, console: Console) -> int:
    older = opts.get("older_than")
    await ws.lineage.refresh(full=True)
    plan = await make_plan(ws.connection, ws.lineage.tree, ws.positions,
                           older_than=parse_duration(older) if older else None)
    if opts.get("dry_run") or not plan.remove:
        if opts.get("json"):
            console.json({"dry_run": bool(opts.get("dry_run")), "remove": [c.uuid for c in plan.remove],
                          "estimated_bytes": plan.estimated_bytes, "kept": plan.kept})
            return 0
        for candidate in plan.remove:
            when = local_time(datetime.fromtimestamp(candidate.created_at, UTC))
            console.print(f"would remove {candidate.uuid[:8]}  {when}  {human_size(candidate.own):>10}  "
                          f"{clip(candidate.command, 50) if candidate.command else ''}".rstrip())
        estimate = f", ~{human_size(plan.estimated_bytes)}" if plan.estimated_bytes is not None else ""
        console.note(f"{len(plan.remove)} of {plan.images} images unreferenced{estimate}"
                     f"{'' if plan.remove else ': nothing to remove'}")
        return 0
    result = await prune(ws.connection, plan.remove)
    await ws.lineage.refresh(full=True)  # forget what is gone
    if opts.get("json"):
        console.json({"removed": result.removed, "refused": dict(result.refused), "freed_bytes": result.freed_bytes})
        return 0
    for uuid in result.removed:
        console.print(f"removed {uuid}")
    for uuid, reason in result.refused:
        console.note(f"kept {uuid[:8]}: {reason}")
    console.note(f"removed {len(result.removed)} images, freed {human_size(result.freed_bytes)}")
    return 0


async def sync(ws: Workspace, opts: Options, console: Console) -> int:
    current = ws.sync_settings
    if opts.get("off"):
        ws.save_sync_settings(SyncSettings(False, current.destination, current.excludes))
        console.print(f"sync off for {ws.folder}")
        return 0
    destination = opts.get("dest") or current.destination
    excludes = tuple(opts.get("exclude") or ()) or current.excludes
    settings = SyncSettings(True, destination, excludes)
    syncer = ws.syncer(settings)
    line = SyncProgressLine(console.err, str(ws.folder), syncer.status, live=False if opts.get("json") else None)
    try:
        report = await syncer.sync()
    finally:
        line.close()
    ws.save_sync_settings(settings)
    if opts.get("json"):
        console.json({"folder": str(ws.folder), "destination": destination, "files": len(report.state),
                      "bytes": report.state.total_bytes, "digest": report.state.digest, "hashed": report.hashed,
                      "uploaded": report.uploaded, "uploaded_bytes": report.uploaded_bytes,
                      "added": list(report.added), "changed": list(report.changed), "removed": list(report.removed),
                      "skipped": [str(s) for s in report.skipped]})
        return 0
    console.print(f"{ws.folder} -> {destination}: {len(report.state)} files ({human_size(report.state.total_bytes)}); "
                  f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed; "
                  f"{report.uploaded} uploaded ({human_size(report.uploaded_bytes)})")
    return 0  # skipped files were reported as they were met (dir_scan's warnings, see execute)


COMMANDS: dict[str, Callable[[Workspace, Options, Console], Awaitable[int]]] = {
    "images": images, "ops": ops, "logs": logs, "run": run, "import": import_image, "rollback": rollback,
    "forward": forward, "use": use, "history": history, "tag": tag, "download": download, "sync": sync,
    "export": export, "df": df, "prune": prune_command, "diff": diff_command,
}


def execute(name: str, opts: Options, console: Console | None = None,
            command: Callable[[Workspace, Options, Console], Awaitable[int]] | None = None) -> int:
    """Run command `name` (or `command`, a command of another module: build_command.py) with parsed options
    (`profile`, `state_dir`, `folder` and the command's own); returns the exit code. Prints errors as one line
    each."""
    console = console or Console()
    command = command or COMMANDS[name]
    _warnings_to(console)

    async def go() -> int:
        ws = await Workspace.open(opts.get("folder") or os.getcwd(), profile=opts.get("profile"),
                                  state_dir=opts.get("state_dir"))
        async with ws:
            unwatch = _announce_outages(ws.connection, console)
            try:
                return await command(ws, opts, console)
            finally:
                unwatch()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away: exit like a shell pipeline does, without a second error at interpreter exit
        # when Python flushes the dead stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CommandError, UnknownReference, PositionError, SyncError, DiskError) as exc:
        console.note(str(exc))
        return 1
    except ConnectionProblem as exc:
        console.note(str(exc).replace("\n", " | "))
        return EXIT_UNAVAILABLE
    except APIStatusError as exc:
        console.note(f"the server refused: HTTP {exc.status}: {_error_text(exc.error)}")
        return 1
    except (APIConnectionError, ContreeError, TimeoutError) as exc:
        console.note(f"{type(exc).__name__}: {exc}")
        return EXIT_UNAVAILABLE
    except OSError as exc:
        console.note(str(exc))
        return 1
    except Exception as exc:  # the promise is "one line, never a traceback"
        if os.environ.get("CONTREE_TUI_DEBUG"):
            raise
        console.note(f"internal error: {type(exc).__name__}: {exc} (CONTREE_TUI_DEBUG=1 shows the traceback)")
        return 70  # EX_SOFTWARE


def _announce_outages(connection: Connection, console: Console) -> Callable[[], None]:
    """One stderr line when the link goes down, not one per retry: the connection (or a follow) retries on its
    own, and either gets the server back or ends the command with the reason. Returns the unsubscriber."""
    what = "engine" if connection.target.embedded else connection.target.describe()
    down = False

    def changed(state: ConnectionState) -> None:
        nonlocal down
        if state.state is LinkState.RECONNECTING and not down:
            down = True
            console.note(f"{what} unreachable, reconnecting…")
        elif state.state is LinkState.CONNECTED:
            down = False

    return connection.status.subscribe(changed)


def _warnings_to(console: Console) -> None:
    """The client layer's warnings (a skipped file in a sync, a failing status subscriber) as `contree-tui:`
    lines on stderr, instead of the bare text logging's last-resort handler would print."""
    log = logging.getLogger("contree_tui")
    if not log.handlers:
        handler = logging.StreamHandler(console.err)
        handler.setFormatter(logging.Formatter("contree-tui: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
        log.propagate = False


def _error_text(error: Any) -> str:
    if isinstance(error, str):
        return error
    return json.dumps(error) if error is not None else "no reason given"


__all__ = ["COMMANDS", "CommandError", "Console", "execute"]
