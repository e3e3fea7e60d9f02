"""`contree-tui pipeline FILE:FUNC [ARGS] [--image REF] [--force] [--headless]`: build the pipeline from an
ordinary Python file and run it (the steps that set no image: on --image, else the folder's working snapshot, as
`:pipeline` in the TUI). `--headless` prints one progress line per step and exits with the pipeline's
status (0 Done, 1 failed, 2 a pipeline that cannot be built or a Contree that cannot be reached); without it,
main.py opens the TUI on the pipeline view with the tree built here.

The function's own arguments follow FILE:FUNC (`pipe.py:primes --n=30`); this command's options are read
anywhere among them up to a `--`, after which everything is the function's (`-- --image=x` passes it on).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from contree_client.exceptions import APIConnectionError, ContreeError

from contree_tui.client.connection import ConnectionProblem, open_connection
from contree_tui.pipeline.entry import pipeline_headless_main
from contree_tui.pipeline.function_runner import EXIT_BAD_CALL
from contree_tui.pipeline.launch import PipelineLaunch
from contree_tui.pipeline.loader import load_pipeline
from contree_tui.pipeline.nodes import PipelineError, default_network
from contree_tui.pipeline.working_image import working_snapshot

EXIT_UNAVAILABLE = 2  # Contree could not be reached or used, as the other commands say it
EXIT_INTERRUPTED = 130
FLAGS = ("--headless", "--force", "--no-network")
VALUED = {"--image": "image", "--state-dir": "state_dir", "--profile": "profile", "--folder": "folder",
          "-C": "folder"}  # the global options too: `pipeline pipe.py:f 30 --state-dir D` means the engine's


def add_pipeline_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    text = ("run a pipeline: FILE:FUNC builds the tree (its arguments follow); the TUI shows it live, "
            "--headless prints progress and exits 0 (done), 1 (a step failed) or 2 (cannot build or reach)")
    cmd = sub.add_parser("pipeline", help=text, description=text, parents=[common])
    # FILE:FUNC is the first of one REMAINDER, not a positional of its own: argparse drops a `--` that follows a
    # positional directly, so `pipe.py:f -- --image=x` lost the `--` and --image was taken as this command's
    cmd.add_argument("args", nargs=argparse.REMAINDER, metavar="FILE:FUNC [ARGS]",
                     help="the pipeline file and the function returning its root, then the function's arguments "
                     "(30, --n=30); --image, --force, --no-network and --headless are read among them up to a `--`")
    cmd.add_argument("--image", help="the image for the nodes that set none (tag:NAME or a UUID); default: the "
                     "folder's working snapshot (-C, else the current folder), as `:pipeline` in the TUI")
    cmd.add_argument("--force", action="store_true", help="run every step, even those with a cached result")
    cmd.add_argument("--no-network", action="store_true", help="every step runs without a network, even one "
                     "that sets network=True (loopback only; works where the engine cannot give one)")
    cmd.add_argument("--headless", action="store_true", help="no TUI: progress lines, the pipeline's exit status")
    cmd.set_defaults(func=pipeline_command)


def split_own_options(argv: Sequence[str]) -> tuple[dict[str, object], list[str]]:
    """This command's options found among the function's arguments (before a `--`), and the rest."""
    own: dict[str, object] = {}
    rest: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item == "--":
            rest += items[i + 1:]
            break
        name, eq, value = item.partition("=")
        if item in FLAGS:
            own[item[2:]] = True
        elif name in VALUED and eq:
            own[VALUED[name]] = value
        elif item in VALUED:
            if i + 1 >= len(items) or items[i + 1].startswith("--"):
                raise PipelineError(f"{item} needs a value")
            own[VALUED[item]] = items[i + 1]
            i += 1
        else:
            rest.append(item)
        i += 1
    return own, rest


def _options(args: argparse.Namespace) -> tuple[str | None, bool, bool, list[str]]:
    if getattr(args, "spec", None) is None:  # the REMAINDER starts at the first word that is not an option
        words = list(args.args or [])
        if not words:
            raise PipelineError("give the pipeline: FILE:FUNC, e.g. pipe.py:main")
        args.spec, args.args = words[0], words[1:]
    own, rest = split_own_options(args.args or [])
    for dest in ("state_dir", "profile", "folder"):
        if dest in own:
            setattr(args, dest, own[dest])
    args.no_network = bool(own.get("no-network", getattr(args, "no_network", False)))
    image = own.get("image", args.image)
    return (str(image) if image else None, bool(own.get("force", args.force)),
            bool(own.get("headless", args.headless)), rest)


def wants_tui(args: argparse.Namespace) -> bool:
    """main.py asks: does this `pipeline` command open the TUI (no --headless, wherever it was given)?"""
    try:
        return not _options(args)[2]
    except PipelineError:
        return False  # the headless path reports the bad option


def build_launch(args: argparse.Namespace, err: TextIO | None = None) -> PipelineLaunch | int:
    """The tree built for the TUI, or the exit code after a one-line message (a pipeline that cannot be built)."""
    err = err or sys.stderr
    try:
        image, force, _headless, rest = _options(args)
        root = default_network(load_pipeline(args.spec, rest), not args.no_network)
        return PipelineLaunch(root, args.spec, image=image, force=force)
    except PipelineError as exc:
        print(f"contree-tui pipeline: {exc}", file=err)
        return EXIT_BAD_CALL


def pipeline_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`--headless`: run it printing progress; the pipeline's exit status."""
    err = err or sys.stderr
    try:
        image, force, _headless, rest = _options(args)
    except PipelineError as exc:
        print(f"contree-tui pipeline: {exc}", file=err)
        return EXIT_BAD_CALL

    async def go() -> int:
        connection = await open_connection(getattr(args, "profile", None), state_dir=getattr(args, "state_dir", None))
        try:
            chosen = image or working_snapshot(getattr(args, "folder", None), connection)  # as `:pipeline` does
            return await pipeline_headless_main(args.spec, rest, connection, image=chosen, force=force, out=out,
                                                err=err, network=not args.no_network)
        finally:
            await connection.aclose()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ConnectionProblem as exc:
        print(f"contree-tui pipeline: {str(exc).replace(chr(10), ' | ')}", file=err)
        return EXIT_UNAVAILABLE
    except (APIConnectionError, ContreeError, TimeoutError) as exc:
        print(f"contree-tui pipeline: {type(exc).__name__}: {exc}", file=err)
        return EXIT_UNAVAILABLE


__all__ = ["add_pipeline_command", "build_launch", "pipeline_command", "split_own_options", "wants_tui"]
