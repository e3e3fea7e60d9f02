"""What the CLI's `contree-tui call FILE FUNC [args]` and `contree-tui pipeline FILE:FUNC [args] --headless` run:
messages for bad input (no traceback of ours), exit codes, output. The CLI only parses and dispatches here."""

from __future__ import annotations

import json
import pprint
import sys
import traceback
from typing import TextIO

from contree_tui.client.connection import Connection
from contree_tui.pipeline.function_runner import EXIT_BAD_CALL, ArgumentError, decode_call, find_function
from contree_tui.pipeline.headless import run_headless
from contree_tui.pipeline.loader import load_pipeline
from contree_tui.pipeline.nodes import PipelineError


def call_main(file: str, func: str, argv: list[str], *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Reproduce a function step on the host: 0 and its return value printed (as the step shows it), 1 and its
    traceback if it raised, 2 and a message if the call does not fit the function."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        function = find_function(file, func)
        args, kwargs = decode_call(function, argv)
    except (ArgumentError, FileNotFoundError, ImportError, SyntaxError) as exc:
        print(f"contree-tui call: {exc}", file=err)
        return EXIT_BAD_CALL
    try:
        value = function(*args, **kwargs)
    except Exception:  # noqa: BLE001  (the user's function failed: its traceback is the answer)
        traceback.print_exc(file=err)
        return 1
    if value is not None:
        try:
            print(json.dumps(value, sort_keys=True), file=out)
        except (TypeError, ValueError):
            print(pprint.pformat(value), file=out)
    return 0


async def pipeline_headless_main(spec: str, argv: list[str], connection: Connection, *, image: str | None = None,
                                 force: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Build the pipeline from FILE:FUNC and run it printing progress: 0 Done, 1 failed, 2 a pipeline that cannot
    be built or run as written (the message on `err`)."""
    err = err or sys.stderr
    try:
        root = load_pipeline(spec, argv)
        return await run_headless(root, connection, image=image, force=force, out=out)
    except PipelineError as exc:
        print(f"contree-tui pipeline: {exc}", file=err)
        return EXIT_BAD_CALL


__all__ = ["call_main", "pipeline_headless_main"]
