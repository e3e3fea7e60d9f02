"""`contree-tui build [SOURCE] [--image REF] [--install CMD] [--build CMD] [--test CMD] [--resume-from CP]
[--no-network]`:
seed 003's staged build (pipeline/staged_build.py) run headless, a progress line per stage, then the stages'
checkpoints, and on a failure the failed stage and the exact command that resumes. Exit 0 built and tested, 1 a
stage failed, 2 a build that cannot start as asked (no SOURCE project, no or unknown image, no checkpoint)."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from typing import TYPE_CHECKING

from contree_tui.pipeline.build_stages import DEFAULT_BUILD, DEFAULT_INSTALL, DEFAULT_TEST, RESUMABLE

if TYPE_CHECKING:  # the grammar (parser.py) imports this module: the run's modules load when a build runs
    from contree_tui.cli.console import Console, Options
    from contree_tui.client.workspace import Workspace
    from contree_tui.pipeline.staged_build import BuildSpec

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
# what `docker pull` would take: [docker://][registry/]name[:tag][@digest]; anything else is not imported
OFFLINE_SCHEMES = ("oci:", "oci-archive:", "docker-archive:", "rootfs:")  # as `contree-tui import` takes them
# [docker://][HOST[:PORT]/]NAME[:TAG][@sha256:…]: the port matters for a registry of one's own (127.0.0.1:5000/…)
REGISTRY_REF = re.compile(r"^(docker://)?([a-z0-9][a-z0-9.-]*(:[0-9]+)?/)?[a-z0-9][a-z0-9._/-]*"
                          r"(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?(@sha256:[0-9a-f]{64})?$")


def add_build_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    text = ("seed 003's staged build: setup (SOURCE synced to /app) -> deps (checkpoint deps-installed) -> build "
            "(checkpoint build-complete) -> test (disposable); unchanged stages are cache hits")
    cmd = sub.add_parser("build", help=text, description=text + (
        ". The source is synced before deps, so a changed file re-runs the build from deps. On a failure: the "
        "failed stage, the rollback points and the command that resumes (--resume-from)."), parents=[common])
    cmd.add_argument("source", nargs="?", help="the project's folder (default: -C, else the current one)")
    cmd.add_argument("--image", help="the base image: a tag, uuid, a registry name (imported if absent, e.g. "
                     "python:3.11-slim) or a local archive or layout (oci:DIR, docker-archive:TAR, ...; imported); "
                     "default: the folder's working snapshot")
    for option, default, stage in (("--install", DEFAULT_INSTALL, "deps"), ("--build", DEFAULT_BUILD, "build"),
                                   ("--test", DEFAULT_TEST, "test")):
        cmd.add_argument(option, default=default, metavar="CMD", help=f"the {stage} stage (default {default!r})")
    cmd.add_argument("--resume-from", metavar="CHECKPOINT", choices=tuple(RESUMABLE),
                     help=f"start on a checkpoint of an earlier build ({' or '.join(RESUMABLE)}), running the "
                     "later stages only")
    cmd.add_argument("--force", action="store_true", help="run every stage, even unchanged ones")
    cmd.add_argument("--no-network", action="store_true", help="every stage runs without a network (loopback "
                     "only; works where the engine cannot give one): the commands must need none (pip from a local "
                     "wheelhouse)")
    cmd.set_defaults(func=build_main)


def build_main(args: argparse.Namespace, argv: list[str] | None = None, console: Console | None = None) -> int:
    """Check what can be checked without Contree (SOURCE), then run the build in the folder's workspace."""
    from contree_tui.cli.commands import execute
    from contree_tui.cli.console import Console
    from contree_tui.pipeline.staged_build import BuildInputError, BuildSpec, check_resume, check_source

    console = console or Console()
    opts = vars(args)
    try:
        source = check_source(opts.get("source") or opts.get("folder") or os.getcwd())
        spec = BuildSpec(source, install=opts["install"], build=opts["build"], test=opts["test"],
                         resume_from=check_resume(opts.get("resume_from")))
    except BuildInputError as exc:
        console.note(f"build: {exc}")
        return EXIT_BAD_INPUT
    argv = list(sys.argv[1:] if argv is None else argv)

    async def command(ws: Workspace, opts: Options, console: Console) -> int:
        return await run_build(ws, spec, opts, console, argv)

    return execute("build", {**opts, "folder": str(source)}, console, command=command)


async def run_build(ws: Workspace, spec: BuildSpec, opts: Options, console: Console, argv: list[str]) -> int:
    from contree_tui.pipeline.executor import PipelineRun, State
    from contree_tui.pipeline.headless import run_with_progress
    from contree_tui.pipeline.nodes import PipelineError, default_network
    from contree_tui.pipeline.staged_build import BuildInputError, build_pipeline, report_lines

    try:
        base = await _base_image(ws, spec, opts.get("image"), console)
        root = default_network(build_pipeline(spec, base), not opts.get("no_network"))
        run = PipelineRun(root, ws.connection, force=bool(opts.get("force")))
    except (BuildInputError, PipelineError) as exc:
        console.note(f"build: {exc}")
        return EXIT_BAD_INPUT
    start = f"checkpoint {spec.resume_from}" if spec.resume_from else "base image"
    console.print(f"build {spec.source} on {start} {base}: {' -> '.join(spec.stages())}")
    state = await run_with_progress(run, console.out)  # on a terminal the steps' bar too, erased at the end
    lines = report_lines(run, spec, base, argv)
    if state is State.DONE:
        for line in lines:
            console.print(line)
        return 0
    for line in lines:
        print(line, file=console.err, flush=True)
    return EXIT_FAILED


async def _base_image(ws: Workspace, spec: BuildSpec, ref: str | None, console: Console) -> str:
    """The image the first stage runs on: the resumed checkpoint, else --image (imported when it is a registry
    name the target lacks), else the folder's working snapshot."""
    from contree_client.runtime import is_uuid

    from contree_tui.client.workspace import UnknownReference
    from contree_tui.pipeline.python_image import bootstrapped_image
    from contree_tui.pipeline.staged_build import BuildInputError

    if spec.resume_from is not None:
        tag = spec.checkpoint_tag(spec.resume_from)
        try:
            return await ws.resolve_image(f"tag:{tag}")
        except UnknownReference:
            raise BuildInputError(f"no checkpoint {spec.resume_from} for {spec.source.name} yet (tag {tag}): run the "
                                  "build without --resume-from first") from None
    if not ref:
        if ws.position.image is not None:
            return ws.position.image
        # not busybox, as `run` falls back to: a Python build needs an image with Python
        raise BuildInputError(f"no image: give --image REF, an image with Python: {bootstrapped_image()} (`contree-tui "
                              "engine bootstrap debian` makes it, with pip, build and pytest), or a registry's (e.g. "
                              "python:3.11-slim, imported if absent); the folder has no working snapshot to default to")
    if ref.startswith(OFFLINE_SCHEMES):  # a local archive or layout: imported (an unchanged one is the same image)
        return await _import(ws, ref, None, console)
    name = ref.removeprefix("docker://").split("@")[0]  # the tag an import here gives it
    try:
        return await ws.resolve_image(ref)
    except UnknownReference as exc:
        if ref.startswith("tag:") or is_uuid(ref) or not REGISTRY_REF.match(ref):
            raise BuildInputError(f"unknown image {ref!r}: {exc}") from None
    if name != ref:  # docker://NAME: imported before under NAME
        with contextlib.suppress(UnknownReference):
            return await ws.resolve_image(name)
    # tagged with its name, so the next build finds it without importing
    return await _import(ws, ref, name, console)


async def _import(ws: Workspace, ref: str, tag: str | None, console: Console) -> str:
    """Seed 003's "import if needed" (a registry image the target lacks, or a local archive or layout)."""
    from contree_tui.client.image_import import ImportSpec, follow_import, learn_imported, start_import
    from contree_tui.client.progress import ProgressLine
    from contree_tui.pipeline.staged_build import BuildInputError

    console.note(f"build: importing {ref}" + (f" (tag {tag}): it is not on {ws.connection.target.describe()}"
                                              if tag else ""))
    operation = await start_import(ws.connection, ImportSpec(ref=ref, tag=tag))
    line = ProgressLine(console.err, tag or ref)
    try:
        result = await follow_import(ws.connection, operation, line.update)
    finally:
        line.close()
    if not result.succeeded or not result.image:
        reason = f": {result.error}" if result.error else ""
        raise BuildInputError(f"unknown image {ref!r}: its import {result.status.value}{reason}")
    await learn_imported(ws.connection, ws.lineage, result)
    return result.image


__all__ = ["add_build_command", "build_main", "run_build"]
